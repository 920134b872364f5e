//! `rollbackctl snapshot --pre-deploy --service S --release R`: the deploy pipeline's backup
//! of the plan's databases before release R, and the wait until it is usable.
//!
//! rollbackctl does not snapshot anything itself: it invokes the stack's `SnapshotFunction`
//! with the same step envelope the state machine sends (`action: pre-deploy`), then with
//! `action: status` until every snapshot is `available`. So the snapshots are named and tagged
//! in one place (`predeploy-<service>-<release>-<db>`, `rollback:purpose=pre-deploy`,
//! `rollback:release=R`, which is what `restore:resolve` looks for), RDS is called under the
//! function's role, scoped to the stack's databases, and the pipeline needs only
//! `lambda:InvokeFunction` on that one function (plus `ssm:GetParameter` on the plan when the
//! plan comes from Parameter Store).
//!
//! The function is reached through [`SnapshotFunction`]: [`Lambda`] (Lambda's `Invoke`, as in
//! AWS) or [`InProcess`] (the real handler called in this process, answering as Lambda does:
//! the function's error as `{"errorType", "errorMessage"}` with a `FunctionError`), so tests run
//! the payloads and the answers through the real function without a Lambda runtime.
//!
//! Taking the snapshot again for the same release is safe: the function finds the snapshot the
//! first run started (by its name, of the same database) and reports it, so a retried pipeline
//! step waits for the backup taken before the first attempt instead of taking a second one.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use aws_sdk_ssm::types::ParameterType;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rollback_core::contract::snapshot::{
    SnapshotAction, SnapshotOutput, SnapshotPurpose, SnapshotReport,
};
use rollback_core::plan_store::PlanSource;
use rollback_core::validation::ValidationErrors;
use rollback_core::{ErrorKind, ExecutionId, Plan, RollbackRequest, StepInput};
use serde_json::Value;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one invocation answered, as Lambda's `Invoke` returns it.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// Lambda's `FunctionError` (`Unhandled`): the payload is then the function's error,
    /// `{"errorType": "Rollback.…", "errorMessage": "…"}`.
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

/// The deployed snapshot function, or a stand-in answering the same way.
pub trait SnapshotFunction: Send + Sync {
    /// One synchronous invocation (`RequestResponse`) with `payload`. `Err`: no answer from
    /// the function (permissions, no such function, network) — [`PreDeployError::Invoke`].
    fn invoke(&self, payload: Value) -> BoxFuture<'_, Result<Invoked, PreDeployError>>;
    /// How messages name the function.
    fn name(&self) -> &str;
}

/// The `SnapshotFunction` deployed by the stack, invoked through Lambda.
pub struct Lambda {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl Lambda {
    /// `function_name`: the stack output `SnapshotFunctionArn` (a name or partial ARN works
    /// too). The client's per-attempt timeout covers the function's own 60 s timeout.
    pub fn new(config: &aws_config::SdkConfig, function_name: &str) -> Lambda {
        let mut builder = aws_sdk_lambda::config::Builder::from(config).timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(75))
                .operation_timeout(Duration::from_secs(240))
                .build(),
        );
        if let Some(region) = arn_region(function_name) {
            builder = builder.region(aws_config::Region::new(region.to_owned()));
        }
        Lambda {
            client: aws_sdk_lambda::Client::from_conf(builder.build()),
            function_name: function_name.to_owned(),
        }
    }
}

impl SnapshotFunction for Lambda {
    fn invoke(&self, payload: Value) -> BoxFuture<'_, Result<Invoked, PreDeployError>> {
        Box::pin(async move {
            let out = self
                .client
                .invoke()
                .function_name(&self.function_name)
                .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
                .payload(aws_smithy_types::Blob::new(payload.to_string()))
                .send()
                .await
                .map_err(|err| {
                    let (code, message) = match err.as_service_error() {
                        Some(e) => (
                            e.code().unwrap_or("Unknown").to_owned(),
                            e.message().unwrap_or_default().to_owned(),
                        ),
                        None => (
                            "RequestFailed".to_owned(),
                            rollback_core::RollbackError::from_sdk("Invoke", err).to_string(),
                        ),
                    };
                    let hint = match code.as_str() {
                        "AccessDeniedException" | "AccessDenied" => {
                            "; this identity may not lambda:InvokeFunction it: attach the \
                             stack's PipelineSnapshotPolicyArn to the pipeline's role \
                             (infra/DEPLOY.md, \"Releases\")"
                        }
                        "ResourceNotFoundException" => {
                            "; give --function-name the stack output SnapshotFunctionArn (its \
                             region is the stack's)"
                        }
                        _ => "",
                    };
                    PreDeployError::Invoke(format!(
                        "Invoke {}: {code}: {message}{hint}",
                        self.function_name
                    ))
                })?;
            Ok(Invoked {
                function_error: out.function_error,
                payload: out.payload.map(|b| b.into_inner()).unwrap_or_default(),
            })
        })
    }

    fn name(&self) -> &str {
        &self.function_name
    }
}

/// The real snapshot handler, called in this process with `clients`, answering as Lambda does
/// (the function's error becomes a `FunctionError` with lambda_runtime's error document).
pub struct InProcess {
    pub clients: rollback_snapshot::Clients,
    pub name: String,
}

impl SnapshotFunction for InProcess {
    fn invoke(&self, payload: Value) -> BoxFuture<'_, Result<Invoked, PreDeployError>> {
        Box::pin(async move {
            Ok(
                match rollback_snapshot::handle(&self.clients, payload).await {
                    Ok(answer) => Invoked {
                        function_error: None,
                        payload: serde_json::to_vec(&answer).unwrap_or_default(),
                    },
                    Err(err) => Invoked {
                        function_error: Some("Unhandled".to_owned()),
                        payload: serde_json::to_vec(&lambda_runtime::Diagnostic::from(err))
                            .unwrap_or_default(),
                    },
                },
            )
        })
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The region of a Lambda function ARN (`arn:aws:lambda:eu-west-1:…:function:…`): the stack's,
/// where the function and the plan parameter are.
pub fn arn_region(function_name: &str) -> Option<&str> {
    let mut parts = function_name.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.nth(2))
        .flatten()
        .filter(|r| !r.is_empty())
}

/// Why no usable backup was reported.
#[derive(Debug, thiserror::Error)]
pub enum PreDeployError {
    /// A flag is missing or wrong; nothing was done.
    #[error("{flag}: {message}")]
    Usage { flag: &'static str, message: String },
    /// The plan could not be read; nothing was done.
    #[error("{0}")]
    Plan(String),
    /// The plan is invalid: every problem with its JSON path; nothing was done.
    #[error("the plan {plan} is invalid ({} problem(s))", errors.len())]
    InvalidPlan {
        plan: String,
        errors: ValidationErrors,
    },
    /// The snapshot function could not be invoked, or answered with something that is not
    /// its report.
    #[error("{0}")]
    Invoke(String),
    /// The function ran and failed: the backup is missing or unusable.
    #[error("the snapshot function failed: {error_type}: {message}")]
    Function { error_type: String, message: String },
    /// Not every snapshot was available within the wait.
    #[error(
        "not every pre-deploy snapshot is available after {} (--timeout-minutes): {}",
        crate::pre_deploy::minutes_seconds(*waited),
        pending(snapshots)
    )]
    NotReady {
        waited: Duration,
        snapshots: Vec<SnapshotReport>,
    },
}

impl PreDeployError {
    /// 1: the function ran and there is no usable backup (yet): do not deploy. 2: rollbackctl
    /// could not do its part (flags, plan, invoke).
    pub fn exit_code(&self) -> u8 {
        match self {
            PreDeployError::Function { .. } | PreDeployError::NotReady { .. } => 1,
            _ => 2,
        }
    }

    /// What to do about it, after the error itself.
    pub fn advice(&self) -> Option<String> {
        match self {
            PreDeployError::Function { error_type, .. }
                if error_type == ErrorKind::SnapshotFailed.error_name() =>
            {
                Some(
                    "do not deploy: this release's backup is unusable. Delete the failed \
                     snapshot (aws rds delete-db-snapshot / delete-db-cluster-snapshot \
                     --…-snapshot-identifier ID) and run this command again."
                        .to_owned(),
                )
            }
            PreDeployError::Function { .. } => Some(
                "do not deploy: the pre-deploy snapshot was not taken. Fix the cause and run \
                 this command again (a snapshot already started for this release is reused)."
                    .to_owned(),
            ),
            PreDeployError::NotReady { .. } => Some(
                "do not deploy yet: run the same command again to keep waiting (it takes no \
                 second snapshot), or give a longer --timeout-minutes."
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

fn pending(snapshots: &[SnapshotReport]) -> String {
    snapshots
        .iter()
        .filter(|s| s.status != "available")
        .map(|s| format!("{} {}", s.snapshot_id, progress_words(s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the plan comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanFrom {
    /// The SSM parameter the stack reads (`RollbackPlanParameter`, or
    /// `RollbackPlanPath/<service>`).
    Parameter(String),
    /// A plan file (the one `rollbackctl plan push` stores).
    File(std::path::PathBuf),
}

/// The plan, and where it was read (`/rollback/mint-replica/plan@3`, or the file).
#[derive(Debug, Clone)]
pub struct LoadedPlan {
    pub plan: Plan,
    pub source: String,
}

/// Reads and validates the plan (the plan function's own validation), and checks it is
/// `service`'s. `ssm` reads a [`PlanFrom::Parameter`] (a file needs none).
pub async fn load_plan(
    ssm: Option<&aws_sdk_ssm::Client>,
    from: &PlanFrom,
    service: &str,
) -> Result<LoadedPlan, PreDeployError> {
    let (text, source) = match from {
        PlanFrom::File(path) => (
            std::fs::read_to_string(path).map_err(|e| PreDeployError::Usage {
                flag: "--plan",
                message: format!("reading {}: {e}", path.display()),
            })?,
            path.display().to_string(),
        ),
        PlanFrom::Parameter(name) => {
            rollback_core::plan_store::check_parameter_name(name).map_err(|message| {
                PreDeployError::Usage {
                    flag: "--plan-parameter",
                    message,
                }
            })?;
            let ssm = ssm.ok_or_else(|| {
                PreDeployError::Plan(format!("no SSM client to read the parameter {name}"))
            })?;
            read_parameter(ssm, name).await?
        }
    };
    let plan = Plan::from_json(&text).map_err(|errors| PreDeployError::InvalidPlan {
        plan: source.clone(),
        errors,
    })?;
    if plan.service != service {
        return Err(PreDeployError::Usage {
            flag: "--service",
            message: format!(
                "the plan {source} is for service {:?}, not {service:?}: give the plan of \
                 {service:?} (with a plan per service, --plan-parameter <RollbackPlanPath>/{service})",
                plan.service
            ),
        });
    }
    Ok(LoadedPlan { plan, source })
}

async fn read_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<(String, String), PreDeployError> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(false)
        .send()
        .await
        .map_err(|err| {
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found())
            {
                return PreDeployError::Plan(format!(
                    "--plan-parameter: the SSM parameter {name} does not exist (in this \
                     region: the stack's). Store the plan first: rollbackctl plan push \
                     PLAN.json --parameter {name}"
                ));
            }
            let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
            let hint = if code.contains("AccessDenied") {
                ": this identity needs ssm:GetParameter on it (the stack's \
                 PipelineSnapshotPolicyArn grants it)"
            } else {
                ""
            };
            PreDeployError::Plan(format!(
                "reading the plan: {}{hint}",
                rollback_core::RollbackError::from_sdk(&format!("GetParameter {name}"), err)
            ))
        })?;
    let parameter = out
        .parameter
        .ok_or_else(|| PreDeployError::Plan(format!("GetParameter {name}: no parameter")))?;
    if let Some(kind) = parameter.r#type()
        && *kind != ParameterType::String
    {
        return Err(PreDeployError::Plan(format!(
            "--plan-parameter: {name} is a {}; the stack reads the plan only from a String \
             parameter (rollbackctl plan push stores one)",
            kind.as_str()
        )));
    }
    let source = PlanSource {
        parameter: parameter.name.clone().unwrap_or_else(|| name.to_owned()),
        version: parameter.version,
    };
    Ok((parameter.value.unwrap_or_default(), source.to_string()))
}

/// `--release`: the same rule as an execution's `release` (an image tag's: 1-128 letters,
/// digits, `_ . -`), so a rollback can name it.
pub fn check_release(release: &str) -> Result<(), PreDeployError> {
    if rollback_core::plan::rules::IMAGE_TAG.is_valid(release) {
        return Ok(());
    }
    Err(PreDeployError::Usage {
        flag: "--release",
        message: format!(
            "{:?}: release names have 1-128 letters, digits, _ . - (as image tags do), like \
             the `release` a rollback execution names",
            rollback_core::validation::truncate(release, 40)
        ),
    })
}

/// The envelope the function receives, as the state machine builds it: `execution` is
/// `pre-deploy-<release>` (it becomes the `rollback:execution` tag; names come from the
/// release), `request.release` the release.
pub fn envelope(plan: &Plan, release: &str, action: SnapshotAction) -> Value {
    let mut execution = format!("pre-deploy-{release}");
    execution.truncate(80);
    let input = StepInput {
        action,
        plan: plan.clone(),
        request: RollbackRequest {
            reason: format!("pre-deploy snapshot before release {release}"),
            release: Some(release.to_owned()),
            ..RollbackRequest::default()
        },
        execution: ExecutionId::new(execution),
        approval: None,
    };
    serde_json::to_value(input).expect("a step envelope serializes")
}

pub fn pre_deploy_action(release: &str) -> SnapshotAction {
    SnapshotAction::PreDeploy {
        release: Some(release.to_owned()),
        databases: None,
    }
}

pub fn status_action(release: &str) -> SnapshotAction {
    SnapshotAction::Status {
        databases: None,
        purpose: SnapshotPurpose::PreDeploy,
        release: Some(release.to_owned()),
        // The command paces its own looks and prints each.
        keep_looking: false,
    }
}

/// Reads one answer: the function's report, or its error.
pub fn answer(function: &str, invoked: Invoked) -> Result<SnapshotOutput, PreDeployError> {
    if let Some(kind) = invoked.function_error {
        let document: Value = serde_json::from_slice(&invoked.payload).unwrap_or(Value::Null);
        let field = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_owned);
        return Err(PreDeployError::Function {
            error_type: field("errorType").unwrap_or(kind),
            message: field("errorMessage")
                .unwrap_or_else(|| String::from_utf8_lossy(&invoked.payload).into_owned()),
        });
    }
    serde_json::from_slice(&invoked.payload).map_err(|e| {
        PreDeployError::Invoke(format!(
            "{function} answered with something that is not the snapshot function's report \
             ({e}): is --function-name the stack's SnapshotFunctionArn? It answered: {}",
            rollback_core::validation::truncate(&String::from_utf8_lossy(&invoked.payload), 300)
        ))
    })
}

/// Function errors worth another invocation: a throttled or failing AWS call inside it, or a
/// timed-out invocation (each action is idempotent).
fn retryable(error_type: &str) -> bool {
    error_type == ErrorKind::Throttled.error_name()
        || error_type == ErrorKind::Transient.error_name()
        || error_type == "Sandbox.Timedout"
}

/// How long to wait, and how often to ask.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// Until every snapshot is available; then [`PreDeployError::NotReady`].
    pub timeout: Duration,
    /// Between `status` invocations.
    pub poll_interval: Duration,
    /// Invocations of one action when the function fails retryably (throttled, transient).
    pub attempts: u32,
    /// Before a retry (doubled each time).
    pub retry_delay: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(60 * 60),
            poll_interval: Duration::from_secs(30),
            attempts: 4,
            retry_delay: Duration::from_secs(2),
        }
    }
}

/// The snapshots, every one available.
#[derive(Debug, Clone)]
pub struct Taken {
    pub snapshots: Vec<SnapshotReport>,
    /// How long the wait took (from the first invocation).
    pub waited: Duration,
}

/// Takes the pre-deploy snapshots of every plan database for `release` (or finds the ones a
/// previous run took) and waits until all are available, telling `progress` what it sees. A
/// plan without databases takes nothing (no invocation).
pub async fn take(
    function: &dyn SnapshotFunction,
    plan: &Plan,
    release: &str,
    options: &WaitOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Taken, PreDeployError> {
    let started = Instant::now();
    if plan.databases.is_empty() {
        return Ok(Taken {
            snapshots: Vec::new(),
            waited: Duration::ZERO,
        });
    }
    let first = call(
        function,
        envelope(plan, release, pre_deploy_action(release)),
        options,
        progress,
    )
    .await?;
    for s in &first.snapshots {
        let how = if s.created_now {
            "started"
        } else {
            "already taken for this release"
        };
        progress(&format!(
            "{} ({}): {} {how}, {}",
            s.database,
            s.kind.as_str(),
            s.snapshot_id,
            progress_words(s)
        ));
    }
    let created_now: Vec<String> = first
        .snapshots
        .iter()
        .filter(|s| s.created_now)
        .map(|s| s.database.clone())
        .collect();
    let mut last = first;
    while !last.all_available {
        let waited = started.elapsed();
        if waited >= options.timeout {
            return Err(PreDeployError::NotReady {
                waited,
                snapshots: last.snapshots,
            });
        }
        tokio::time::sleep(options.poll_interval.min(options.timeout - waited)).await;
        last = call(
            function,
            envelope(plan, release, status_action(release)),
            options,
            progress,
        )
        .await?;
        let waiting: Vec<String> = last
            .snapshots
            .iter()
            .filter(|s| s.status != "available")
            .map(|s| format!("{} {}", s.snapshot_id, progress_words(s)))
            .collect();
        let elapsed = minutes_seconds(started.elapsed());
        if waiting.is_empty() {
            progress(&format!("after {elapsed}: every snapshot is available"));
        } else {
            progress(&format!(
                "after {elapsed}: waiting for {}",
                waiting.join(", ")
            ));
        }
    }
    let mut snapshots = last.snapshots;
    for s in &mut snapshots {
        s.created_now = created_now.contains(&s.database);
    }
    Ok(Taken {
        snapshots,
        waited: started.elapsed(),
    })
}

/// One action, retried while the function fails retryably.
async fn call(
    function: &dyn SnapshotFunction,
    payload: Value,
    options: &WaitOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SnapshotOutput, PreDeployError> {
    let mut delay = options.retry_delay;
    let mut attempt = 1;
    loop {
        let invoked = function.invoke(payload.clone()).await?;
        match answer(function.name(), invoked) {
            Err(PreDeployError::Function {
                error_type,
                message,
            }) if retryable(&error_type) && attempt < options.attempts.max(1) => {
                progress(&format!(
                    "{error_type} ({message}); trying again in {}",
                    minutes_seconds(delay)
                ));
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// `creating, 45%` / `available`.
fn progress_words(s: &SnapshotReport) -> String {
    match s.progress_percent {
        Some(p) if s.status != "available" => format!("{}, {p}%", s.status),
        _ => s.status.clone(),
    }
}

/// `2m05s`, `40s`.
pub fn minutes_seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// One stdout line per snapshot: `<database> (<kind>): <snapshot id> available, created <time>
/// (taken now | taken earlier for this release)`.
pub fn result_lines(taken: &Taken) -> Vec<String> {
    taken
        .snapshots
        .iter()
        .map(|s| {
            let created = s
                .created_at
                .map(|t| format!(", created {}", t.format("%Y-%m-%dT%H:%M:%SZ")))
                .unwrap_or_default();
            let when = if s.created_now {
                "taken now"
            } else {
                "taken earlier for this release"
            };
            format!(
                "{} ({}): {} {}{created} ({when})",
                s.database,
                s.kind.as_str(),
                s.snapshot_id,
                s.status
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan() -> Plan {
        Plan::from_json(
            &json!({"service": "svc", "databases": [{"kind": "rds-instance", "id": "svc-db"}]})
                .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn the_envelope_is_the_functions_own() {
        let payload = envelope(&plan(), "2024.05.1", pre_deploy_action("2024.05.1"));
        assert_eq!(payload["action"], "pre-deploy");
        assert_eq!(payload["release"], "2024.05.1");
        assert_eq!(payload["execution"], "pre-deploy-2024.05.1");
        assert_eq!(payload["request"]["release"], "2024.05.1");
        let parsed = StepInput::<SnapshotAction>::parse(payload).unwrap();
        assert_eq!(parsed.action, pre_deploy_action("2024.05.1"));
        let long = "r".repeat(128);
        let payload = envelope(&plan(), &long, status_action(&long));
        assert_eq!(payload["purpose"], "pre-deploy");
        assert!(StepInput::<SnapshotAction>::parse(payload).is_ok());
    }

    #[test]
    fn answers_and_function_errors() {
        let err = answer(
            "f",
            Invoked {
                function_error: Some("Unhandled".into()),
                payload: br#"{"errorType":"Rollback.SnapshotFailed","errorMessage":"x is failed"}"#
                    .to_vec(),
            },
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(
            err.to_string()
                .contains("Rollback.SnapshotFailed: x is failed")
        );
        assert!(err.advice().unwrap().contains("Delete the failed snapshot"));
        let timed_out = answer(
            "f",
            Invoked {
                function_error: Some("Unhandled".into()),
                payload: b"Task timed out".to_vec(),
            },
        )
        .unwrap_err();
        assert!(timed_out.to_string().contains("Unhandled: Task timed out"));
        let wrong = answer(
            "f",
            Invoked {
                function_error: None,
                payload: br#"{"statusCode":200}"#.to_vec(),
            },
        )
        .unwrap_err();
        assert_eq!(wrong.exit_code(), 2);
        assert!(wrong.to_string().contains("SnapshotFunctionArn"), "{wrong}");
    }

    #[test]
    fn arn_regions_and_releases() {
        assert_eq!(
            arn_region("arn:aws:lambda:eu-west-1:123456789012:function:x-snapshot"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("x-snapshot"), None);
        assert!(check_release("2024.05.1-rc_2").is_ok());
        let bad = check_release("release 1").unwrap_err();
        assert!(bad.to_string().starts_with("--release:"), "{bad}");
        assert_eq!(minutes_seconds(Duration::from_secs(125)), "2m05s");
    }
}
