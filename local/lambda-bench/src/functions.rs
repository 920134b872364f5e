//! The Lambda functions under test, the environment Lambda gives them, and where their
//! release binaries are.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a function's `main` reads at cold start beyond the standard Lambda variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// `ROLLBACK_PLAN_PARAMETER`: where the plan is (an SSM parameter name; the plan itself
    /// is read by `validate`, per execution, not at init).
    Plan,
    /// The SNS topics, approval URL and link key secret name (the key itself is read lazily).
    NotifyConfig,
    /// The link key secret's name (its keys are read on the first request with a link; the
    /// bench's request has none): served by moto.
    LinkKeySecret,
    /// `ROLLBACK_RESTORE_ACTIONS`: which actions this deployment of the restore binary serves
    /// (as in the SAM template).
    RestoreActions(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    /// The SAM function's short name.
    pub name: &'static str,
    pub package: &'static str,
    /// `MemorySize` in the SAM template.
    pub memory_mb: u32,
    pub needs: Needs,
}

pub const FUNCTIONS: &[FunctionSpec] = &[
    spec("plan", "rollback-plan", 256, Needs::Plan),
    spec("snapshot", "rollback-snapshot", 256, Needs::Nothing),
    spec(
        "restore",
        "rollback-restore",
        256,
        Needs::RestoreActions("resolve,start,status,swap,revert,observe"),
    ),
    spec(
        "drill-cleanup",
        "rollback-restore",
        256,
        Needs::RestoreActions("cleanup-drill"),
    ),
    spec("retag", "rollback-retag", 256, Needs::Nothing),
    spec("deploy-undo", "rollback-deploy-undo", 256, Needs::Nothing),
    spec("infra", "rollback-infra", 256, Needs::Nothing),
    spec("smoke-test", "rollback-smoke-test", 512, Needs::Nothing),
    spec("notify", "rollback-notify", 256, Needs::NotifyConfig),
    spec("approval", "rollback-approval", 256, Needs::LinkKeySecret),
    spec("mobile", "rollback-mobile", 256, Needs::Nothing),
];

const fn spec(
    name: &'static str,
    package: &'static str,
    memory_mb: u32,
    needs: Needs,
) -> FunctionSpec {
    FunctionSpec {
        name,
        package,
        memory_mb,
        needs,
    }
}

/// `rollback_core::decision::DECISION_KEY_ENV`: the approval decision key's ARN, which every
/// function's `main` requires (approval signs with it, restore, retag, deploy-undo and infra
/// verify).
pub const DECISION_KEY_ENV: &str = "ROLLBACK_DECISION_KEY";
/// A key ARN nothing resolves: no function calls KMS at init.
pub const BENCH_DECISION_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000";

/// Where nothing goes: AWS calls made during init fail fast instead of leaving the machine.
pub const DEAD_ENDPOINT: &str = "http://127.0.0.1:9";

/// The variables Lambda sets for a `provided.al2023` function, with dummy credentials and
/// the SDK endpoint pointed at `endpoint`. `home` should be an empty directory, so no
/// `~/.aws` profile of the machine is read.
pub fn lambda_env(
    function: &str,
    memory_mb: u32,
    endpoint: &str,
    home: &Path,
) -> Vec<(OsString, OsString)> {
    let pairs: Vec<(&str, String)> = vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ("HOME", home.display().to_string()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("_HANDLER", "bootstrap".into()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2025/01/01/[$LATEST]00000000000000000000000000000000".into(),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", "testing".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("RUST_LOG", "info".into()),
    ];
    pairs
        .into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("`cargo metadata` failed: {0}")]
    Cargo(String),
}

/// The binary targets of each workspace package, from `cargo metadata`: the bench finds the
/// functions by package, whatever their binaries are called.
pub fn bin_targets(
    cargo: &Path,
    workspace: &Path,
) -> Result<BTreeMap<String, Vec<String>>, MetadataError> {
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .output()
        .map_err(|e| MetadataError::Cargo(e.to_string()))?;
    if !output.status.success() {
        return Err(MetadataError::Cargo(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| MetadataError::Cargo(e.to_string()))?;
    let mut bins = BTreeMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let Some(name) = package["name"].as_str() else {
            continue;
        };
        let names: Vec<String> = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bin"))
            })
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        bins.insert(name.to_owned(), names);
    }
    Ok(bins)
}

/// The workspace this crate belongs to.
pub use rollback_moto::workspace_root;

/// The Python handler the Rust functions are compared with.
pub fn python_handler() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/handler.py")
}

impl FunctionSpec {
    /// The event each cold start is handed: invalid input, which every function rejects
    /// before any AWS call (`Rollback.InvalidInput`); for the approval page, an API Gateway
    /// HTTP API request for `/approval` without a link token, answered with its error page.
    pub fn bench_event(&self) -> serde_json::Value {
        if self.needs != Needs::LinkKeySecret {
            return serde_json::json!({});
        }
        serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /approval",
            "rawPath": "/approval",
            "rawQueryString": "",
            "headers": {"host": "approval.example.invalid", "accept": "text/html"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "bench",
                "domainName": "approval.example.invalid",
                "domainPrefix": "approval",
                "http": {
                    "method": "GET",
                    "path": "/approval",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "lambda-bench"
                },
                "requestId": "bench",
                "routeKey": "GET /approval",
                "stage": "$default",
                "time": "01/Jan/2025:00:00:00 +0000",
                "timeEpoch": 1735689600000u64
            },
            "isBase64Encoded": false
        })
    }
}
