//! `rollbackctl snapshot --pre-deploy --service S --release R`: the deploy pipeline's backup.
//!
//! rollbackctl invokes the stack's snapshot function. moto's Lambda would need a container
//! runtime to run it, so the function here is the real snapshot handler called in-process
//! ([`InProcess`], answering as Lambda does), its RDS client signing with the function's key
//! through its IAM gate (checked against its role in `infra/template.yaml`) in front of moto.
//! The binary's own Lambda `Invoke` goes to a small local endpoint that runs that same handler
//! (`--lambda-endpoint-url`); the plan comes from moto's SSM, where `plan push` stores it.

use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::Client;
use rollback_core::contract::snapshot::{SnapshotOutput, tags};
use rollback_core::{ErrorKind, ids};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use rollback_moto::rds::Postgres;
use rollbackctl::pre_deploy::{
    self, BoxFuture, InProcess, Invoked, PlanFrom, PreDeployError, SnapshotFunction, WaitOptions,
};
use serde_json::{Value, json};

/// The plan's service: the snapshot role allows `predeploy-pdp-*` snapshots of databases
/// named `pdp` / `pdp-*` (the default `DatabaseIdPrefix`, the service name).
const SERVICE: &str = "pdp";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:pdp-stack-snapshot";

/// The instances here keep automated backups for a day.
const ONE_DAY_BACKUPS: Postgres = Postgres {
    tags: &[],
    backup_retention_days: Some(1),
};

fn rds() -> Client {
    Client::new(&MotoServer::shared().sdk_config())
}

fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&MotoServer::shared().sdk_config())
}

/// `function`'s IAM gate in front of moto, for the stack of [`SERVICE`].
fn gate(function: &str) -> IamGate {
    IamGate::start(
        &MotoServer::shared().endpoint(),
        function,
        &test_stack(SERVICE),
    )
}

/// The snapshot function as the pipeline reaches it, through its role's gate.
fn function(gate: &IamGate) -> InProcess {
    InProcess {
        clients: rollback_snapshot::Clients::new(&gate.sdk_config()),
        name: FUNCTION_ARN.to_owned(),
    }
}

fn fast() -> WaitOptions {
    WaitOptions {
        timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
        attempts: 3,
        retry_delay: Duration::from_millis(10),
    }
}

/// Progress lines, collected.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Lines {
    fn push(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }
    fn all(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

fn plan_json(databases: Value) -> Value {
    json!({
        "service": SERVICE,
        "databases": databases,
        "images": [{"repository": "pdp-backend", "release_tag": "prod", "stable_tag": "stable"}]
    })
}

/// Stores `plan` as `parameter` the way operators do (`rollbackctl plan push`).
async fn push(parameter: &str, plan: &Value) {
    rollbackctl::plan_push::push(&ssm(), &plan.to_string(), parameter)
        .await
        .unwrap();
}

async fn manual_snapshots(instance: &str, cluster: &str) -> (usize, usize) {
    let instances = rds()
        .describe_db_snapshots()
        .db_instance_identifier(instance)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let clusters = rds()
        .describe_db_cluster_snapshots()
        .db_cluster_identifier(cluster)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    (
        instances.db_snapshots().len(),
        clusters.db_cluster_snapshots().len(),
    )
}

#[tokio::test]
async fn every_plan_database_is_snapshotted_with_the_release_and_a_second_run_reuses_it() {
    let snapshot_gate = gate("snapshot");
    let function = function(&snapshot_gate);
    MotoServer::shared()
        .postgres_instance("pdp-orders-db", ONE_DAY_BACKUPS)
        .await;
    MotoServer::shared()
        .aurora_postgres("pdp-orders-docs")
        .await;
    let parameter = "/rollback/plans/pdp";
    push(
        parameter,
        &plan_json(json!([
            {"kind": "rds-instance", "id": "pdp-orders-db"},
            {"kind": "aurora-cluster", "id": "pdp-orders-docs"}
        ])),
    )
    .await;
    let loaded = pre_deploy::load_plan(
        Some(&ssm()),
        &PlanFrom::Parameter(parameter.into()),
        SERVICE,
    )
    .await
    .unwrap();
    assert!(
        loaded.source.starts_with("/rollback/plans/pdp@"),
        "{}",
        loaded.source
    );

    let lines = Lines::default();
    let first = pre_deploy::take(&function, &loaded.plan, "2024.05.1", &fast(), &|l: &str| {
        lines.push(l)
    })
    .await
    .unwrap();
    let db_id = ids::pre_deploy_snapshot_id(SERVICE, "2024.05.1", "pdp-orders-db");
    let docs_id = ids::pre_deploy_snapshot_id(SERVICE, "2024.05.1", "pdp-orders-docs");
    let got: Vec<_> = first
        .snapshots
        .iter()
        .map(|s| {
            (
                s.database.as_str(),
                s.snapshot_id.as_str(),
                s.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("pdp-orders-db", db_id.as_str(), "available"),
            ("pdp-orders-docs", docs_id.as_str(), "available")
        ]
    );
    assert!(first.snapshots.iter().all(|s| s.created_now));
    assert!(
        lines.all().contains(&format!("{db_id} started")),
        "{}",
        lines.all()
    );
    let printed = pre_deploy::result_lines(&first).join("\n");
    assert!(
        printed.contains(&format!("pdp-orders-db (rds-instance): {db_id} available")),
        "{printed}"
    );
    assert!(printed.contains("(taken now)"), "{printed}");

    for tags in [
        MotoServer::shared().instance_snapshot_tags(&db_id).await,
        MotoServer::shared().cluster_snapshot_tags(&docs_id).await,
    ] {
        for (k, v) in [
            (tags::PURPOSE, "pre-deploy"),
            (tags::RELEASE, "2024.05.1"),
            (tags::SERVICE, SERVICE),
            (tags::EXECUTION, "pre-deploy-2024.05.1"),
        ] {
            assert!(
                tags.contains(&(k.to_owned(), v.to_owned())),
                "{k}={v} missing in {tags:?}"
            );
        }
    }

    // The pipeline step retried: the same snapshots, none taken twice.
    let lines = Lines::default();
    let again = pre_deploy::take(&function, &loaded.plan, "2024.05.1", &fast(), &|l: &str| {
        lines.push(l)
    })
    .await
    .unwrap();
    assert_eq!(
        again
            .snapshots
            .iter()
            .map(|s| s.snapshot_id.clone())
            .collect::<Vec<_>>(),
        [db_id.clone(), docs_id.clone()]
    );
    assert!(again.snapshots.iter().all(|s| !s.created_now));
    assert!(
        lines.all().contains("already taken for this release"),
        "{}",
        lines.all()
    );
    assert_eq!(
        manual_snapshots("pdp-orders-db", "pdp-orders-docs").await,
        (1, 1)
    );

    // What a rollback of that release restores: exactly these snapshots.
    let restore_gate = gate("restore");
    let restore = rollback_restore::Clients::new(
        &restore_gate.sdk_config(),
        MotoServer::shared().decision_key(),
    );
    let resolved = rollback_restore::handle(
        &restore,
        json!({
            "action": "resolve",
            "plan": plan_json(json!([
                {"kind": "rds-instance", "id": "pdp-orders-db"},
                {"kind": "aurora-cluster", "id": "pdp-orders-docs"}
            ])),
            "request": {"trigger": {"kind": "manual"}, "reason": "bad release",
                        "scope": "app+database", "release": "2024.05.1"},
            "execution": "exec-pdp-resolve"
        }),
    )
    .await
    .unwrap();
    let chosen: Vec<_> = resolved["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["snapshot_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(chosen, [db_id, docs_id], "{resolved:#}");
    assert!(
        resolved["notes"][0]["explanation"]
            .as_str()
            .unwrap()
            .contains("before release 2024.05.1"),
        "{resolved:#}"
    );
}

/// Reports the first `creating_answers` answers as still `creating`, as RDS does for a while.
struct SlowRds<'a> {
    inner: &'a InProcess,
    creating_answers: Mutex<usize>,
    throttle_first: Mutex<bool>,
}

impl SnapshotFunction for SlowRds<'_> {
    fn invoke(&self, payload: Value) -> BoxFuture<'_, Result<Invoked, PreDeployError>> {
        Box::pin(async move {
            if std::mem::take(&mut *self.throttle_first.lock().unwrap()) {
                return Ok(Invoked {
                    function_error: Some("Unhandled".into()),
                    payload: serde_json::to_vec(&json!({
                        "errorType": "Rollback.Throttled",
                        "errorMessage": "DescribeDBSnapshots: Throttling: Rate exceeded"
                    }))
                    .unwrap(),
                });
            }
            let mut invoked = self.inner.invoke(payload).await?;
            let mut left = self.creating_answers.lock().unwrap();
            if *left > 0 && invoked.function_error.is_none() {
                *left -= 1;
                let mut out: SnapshotOutput = serde_json::from_slice(&invoked.payload).unwrap();
                for s in &mut out.snapshots {
                    s.status = "creating".into();
                    s.progress_percent = Some(40);
                }
                out.all_available = false;
                invoked.payload = serde_json::to_vec(&out).unwrap();
            }
            Ok(invoked)
        })
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}

#[tokio::test]
async fn it_waits_with_progress_until_available_and_gives_up_at_the_timeout() {
    let snapshot_gate = gate("snapshot");
    let function = function(&snapshot_gate);
    MotoServer::shared()
        .postgres_instance("pdp-wait-db", ONE_DAY_BACKUPS)
        .await;
    let plan = rollback_core::Plan::from_json(
        &plan_json(json!([{"kind": "rds-instance", "id": "pdp-wait-db"}])).to_string(),
    )
    .unwrap();

    // A throttled first call is retried; two answers say `creating`, the third `available`.
    let slow = SlowRds {
        inner: &function,
        creating_answers: Mutex::new(2),
        throttle_first: Mutex::new(true),
    };
    let lines = Lines::default();
    let taken = pre_deploy::take(&slow, &plan, "r1", &fast(), &|l: &str| lines.push(l))
        .await
        .unwrap();
    let text = lines.all();
    assert!(
        text.contains("Rollback.Throttled") && text.contains("trying again"),
        "{text}"
    );
    assert!(
        text.contains("waiting for predeploy-pdp-r1-pdp-wait-db creating, 40%"),
        "{text}"
    );
    assert!(text.contains("every snapshot is available"), "{text}");
    assert_eq!(taken.snapshots[0].status, "available");
    assert!(
        taken.snapshots[0].created_now,
        "taken by this run, reported as such"
    );

    // Never available: a bounded wait, then a clear refusal (exit 1), nothing deleted.
    let stuck = SlowRds {
        inner: &function,
        creating_answers: Mutex::new(usize::MAX),
        throttle_first: Mutex::new(false),
    };
    let options = WaitOptions {
        timeout: Duration::from_millis(300),
        ..fast()
    };
    let err = pre_deploy::take(&stuck, &plan, "r1", &options, &|_: &str| {})
        .await
        .unwrap_err();
    assert!(matches!(err, PreDeployError::NotReady { .. }), "{err}");
    assert_eq!(err.exit_code(), 1);
    let message = err.to_string();
    assert!(
        message.contains("--timeout-minutes")
            && message.contains("predeploy-pdp-r1-pdp-wait-db creating, 40%"),
        "{message}"
    );
    assert!(err.advice().unwrap().contains("run the same command again"));
}

#[tokio::test]
async fn a_database_the_function_cannot_snapshot_fails_the_step() {
    let snapshot_gate = gate("snapshot");
    let function = function(&snapshot_gate);
    let plan = rollback_core::Plan::from_json(
        &plan_json(json!([{"kind": "rds-instance", "id": "pdp-never-created"}])).to_string(),
    )
    .unwrap();
    let err = pre_deploy::take(&function, &plan, "r2", &fast(), &|_: &str| {})
        .await
        .unwrap_err();
    let PreDeployError::Function {
        error_type,
        message,
    } = &err
    else {
        panic!("{err}");
    };
    assert!(error_type.starts_with("Rollback."), "{error_type}");
    assert_ne!(error_type, ErrorKind::Throttled.error_name());
    assert!(message.contains("pdp-never-created"), "{message}");
    assert_eq!(err.exit_code(), 1);
    assert!(err.advice().unwrap().starts_with("do not deploy"));
}

// ---- the binary, as a pipeline runs it --------------------------------------------------

/// A local stand-in for Lambda's Invoke API (`POST /2015-03-31/functions/<name>/invocations`)
/// running the real snapshot handler; it records the function names it was asked for.
struct FakeLambda {
    addr: SocketAddr,
    called: Arc<Mutex<Vec<String>>>,
    _gate: Arc<IamGate>,
}

/// The fake's state: the function, and the names it was invoked by.
type LambdaState = (Arc<InProcess>, Arc<Mutex<Vec<String>>>);

async fn fake_lambda() -> FakeLambda {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};

    let gate = Arc::new(gate("snapshot"));
    let function = Arc::new(function(&gate));
    let called = Arc::new(Mutex::new(Vec::new()));
    let state = (function, called.clone());
    let app = axum::Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(
                |State((function, called)): State<LambdaState>,
                 Path(name): Path<String>,
                 body: axum::body::Bytes| async move {
                    called.lock().unwrap().push(name);
                    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let invoked = function.invoke(payload).await.unwrap();
                    let mut headers = HeaderMap::new();
                    if let Some(kind) = invoked.function_error {
                        headers.insert("X-Amz-Function-Error", kind.parse().unwrap());
                    }
                    (StatusCode::OK, headers, invoked.payload)
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeLambda {
        addr,
        called,
        _gate: gate,
    }
}

async fn rollbackctl(args: &[&str], lambda: Option<SocketAddr>) -> Output {
    rollbackctl_with_env(args, lambda, &[]).await
}

/// [`rollbackctl`] with `env` set (after the ones it clears).
async fn rollbackctl_with_env(
    args: &[&str],
    lambda: Option<SocketAddr>,
    env: &[(&str, &str)],
) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollbackctl"));
    command
        .args(args)
        .arg("--endpoint-url")
        .arg(MotoServer::shared().endpoint())
        .env("AWS_REGION", rollback_core::aws::LOCAL_REGION)
        .env_remove("ROLLBACK_ENDPOINT_URL")
        .env_remove("ROLLBACK_PLAN_PARAMETER")
        .env_remove("ROLLBACK_SNAPSHOT_FUNCTION")
        .env_remove("ROLLBACK_LAMBDA_ENDPOINT_URL")
        .envs(env.iter().copied());
    match lambda {
        Some(addr) => command
            .arg("--lambda-endpoint-url")
            .arg(format!("http://{addr}")),
        // Nothing listens there: a test that must not invoke the function fails if it does.
        None => command
            .arg("--lambda-endpoint-url")
            .arg("http://127.0.0.1:9"),
    };
    command.output().await.expect("run rollbackctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_invokes_the_function_and_prints_the_snapshot_ids() {
    let lambda = fake_lambda().await;
    MotoServer::shared()
        .postgres_instance("pdp-cli-db", ONE_DAY_BACKUPS)
        .await;
    let parameter = "/rollback/pdp-cli/plan";
    push(
        parameter,
        &plan_json(json!([{"kind": "rds-instance", "id": "pdp-cli-db"}])),
    )
    .await;
    let args = [
        "snapshot",
        "--pre-deploy",
        "--service",
        SERVICE,
        "--release",
        "2024.06.0",
        "--plan-parameter",
        parameter,
        "--function-name",
        FUNCTION_ARN,
        "--poll-seconds",
        "1",
    ];
    let out = rollbackctl(&args, Some(lambda.addr)).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let id = ids::pre_deploy_snapshot_id(SERVICE, "2024.06.0", "pdp-cli-db");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "pdp-cli-db (rds-instance): {id} available, created "
        )) && stdout.trim_end().ends_with("(taken now)"),
        "{stdout}"
    );
    assert!(stderr.contains("/rollback/pdp-cli/plan@"), "{stderr}");
    assert!(
        stderr.contains("release 2024.06.0 may be deployed"),
        "{stderr}"
    );
    assert_eq!(*lambda.called.lock().unwrap(), [FUNCTION_ARN]);

    // Again, as JSON: the same snapshot, taken earlier.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = rollbackctl(&json_args, Some(lambda.addr)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: SnapshotOutput = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.snapshots.len(), 1);
    assert_eq!(report.snapshots[0].snapshot_id, id);
    assert!(!report.snapshots[0].created_now && report.all_available);

    // The function's error reaches the pipeline as a failed step (exit 1) with the advice.
    let bad = "/rollback/pdp-cli/missing-db-plan";
    push(
        bad,
        &plan_json(json!([{"kind": "rds-instance", "id": "pdp-cli-gone"}])),
    )
    .await;
    let mut bad_args = args.to_vec();
    bad_args[7] = bad;
    let out = rollbackctl(&bad_args, Some(lambda.addr)).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the snapshot function failed: Rollback.")
            && stderr.contains("pdp-cli-gone"),
        "{stderr}"
    );
    assert!(stderr.contains("do not deploy"), "{stderr}");
}

#[tokio::test]
async fn a_plan_without_databases_says_so_and_invokes_nothing() {
    let dir = std::env::temp_dir().join(format!("rollbackctl-pre-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("no-databases.json");
    std::fs::write(&file, plan_json(json!([])).to_string()).unwrap();
    // The function comes from the environment, as in a pipeline; --plan wins over a plan
    // parameter the environment names (one that does not exist here).
    let out = rollbackctl_with_env(
        &[
            "snapshot",
            "--pre-deploy",
            "--service",
            SERVICE,
            "--release",
            "r3",
            "--plan",
            file.to_str().unwrap(),
        ],
        None,
        &[
            ("ROLLBACK_SNAPSHOT_FUNCTION", FUNCTION_ARN),
            ("ROLLBACK_PLAN_PARAMETER", "/rollback/pdp-nowhere/plan"),
        ],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("has no databases: no pre-deploy snapshot to take"),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout), "");
}

#[tokio::test]
async fn missing_or_wrong_flags_are_named() {
    let base = [
        "snapshot",
        "--pre-deploy",
        "--service",
        SERVICE,
        "--release",
        "r4",
        "--plan-parameter",
        "/rollback/pdp-flags/plan",
        "--function-name",
        FUNCTION_ARN,
    ];
    let without = |skip: &[&str]| -> Vec<&str> {
        let mut out = Vec::new();
        let mut iter = base.iter().copied();
        while let Some(arg) = iter.next() {
            if skip.contains(&arg) {
                if arg != "--pre-deploy" {
                    iter.next();
                }
                continue;
            }
            out.push(arg);
        }
        out
    };
    for (args, expect) in [
        (without(&["--service"]), vec!["--service"]),
        (without(&["--release"]), vec!["--release"]),
        (
            without(&["--plan-parameter"]),
            vec!["--plan-parameter", "--plan"],
        ),
        (without(&["--function-name"]), vec!["--function-name"]),
        (without(&["--pre-deploy"]), vec!["--pre-deploy"]),
    ] {
        let out = rollbackctl(&args, None).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for flag in expect {
            assert!(
                stderr.contains(flag),
                "{args:?} should name {flag}: {stderr}"
            );
        }
    }

    // No such parameter: named, with the command that stores it.
    let out = rollbackctl(&base, None).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/rollback/pdp-flags/plan does not exist")
            && stderr.contains("rollbackctl plan push"),
        "{stderr}"
    );

    // Another service's plan, and a release a rollback could not name.
    push("/rollback/pdp-flags/plan", &plan_json(json!([]))).await;
    let mut other = base.to_vec();
    other[3] = "payments";
    let out = rollbackctl(&other, None).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--service: the plan /rollback/pdp-flags/plan@")
            && stderr.contains("is for service \"pdp\", not \"payments\""),
        "{stderr}"
    );
    let mut bad_release = base.to_vec();
    bad_release[5] = "release 1";
    let out = rollbackctl(&bad_release, None).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--release:"), "{stderr}");
}

// ---- the pipeline's own permissions ------------------------------------------------------

/// The deploy pipeline's identity behind an IAM gate: the stack's `PipelineSnapshotPolicy`
/// (the policy DEPLOY.md has pipelines attach), read from the template as the check reads a
/// function's role, signing as `pipeline`.
fn pipeline_gate() -> IamGate {
    let path = rollback_moto::workspace_root().join("infra/template.yaml");
    let yaml = std::fs::read_to_string(path).unwrap();
    let mut template = rollback_fault_proxy::iam::template::template_json(&yaml).unwrap();
    let statements = template["Resources"]["PipelineSnapshotPolicy"]["Properties"]
        ["PolicyDocument"]["Statement"]
        .clone();
    assert!(
        statements.is_array(),
        "no PipelineSnapshotPolicy in the template"
    );
    template["Resources"]["PipelineFunction"] = json!({
        "Type": "AWS::Serverless::Function",
        "Properties": {"Policies": [{"Statement": statements}]}
    });
    let stack =
        test_stack(SERVICE).resource("SnapshotFunction", FUNCTION_ARN, &[("Arn", FUNCTION_ARN)]);
    IamGate::start_with_template(
        &MotoServer::shared().endpoint(),
        "pipeline",
        &template.to_string(),
        &stack,
    )
}

/// `/pdp/rollback-plan`: the stack's `RollbackPlanParameter` in [`test_stack`].
const STACK_PLAN: &str = "/pdp/rollback-plan";

#[tokio::test]
async fn the_pipeline_policy_allows_the_plan_read_the_guard_the_alarm_check_and_the_tag_moves() {
    use aws_sdk_ecr::types::ImageIdentifier;

    let gate = pipeline_gate();
    let pipeline_ssm = aws_sdk_ssm::Client::new(&gate.sdk_config());
    push(STACK_PLAN, &plan_json(json!([]))).await;
    let loaded = pre_deploy::load_plan(
        Some(&pipeline_ssm),
        &PlanFrom::Parameter(STACK_PLAN.into()),
        SERVICE,
    )
    .await
    .unwrap();
    assert!(loaded.source.starts_with(STACK_PLAN), "{}", loaded.source);

    // Another parameter is not the stack's plan: refused, and the message says what to grant.
    push("/rollback/pdp-elsewhere/plan", &plan_json(json!([]))).await;
    let err = pre_deploy::load_plan(
        Some(&pipeline_ssm),
        &PlanFrom::Parameter("/rollback/pdp-elsewhere/plan".into()),
        SERVICE,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("ssm:GetParameter") && err.exit_code() == 2,
        "{err}"
    );
    assert_eq!(gate.take_violations().len(), 1);

    // The stable tag moves to a healthy release's digest as DEPLOY.md does it: the manifest
    // from BatchGetImage, put back under the tag with PutImage (same bytes, media type and
    // digest); the guard (DescribeImages) first.
    let ecr = aws_sdk_ecr::Client::new(&MotoServer::shared().sdk_config());
    ecr.create_repository()
        .repository_name("pdp-backend")
        .send()
        .await
        .unwrap();
    let media_type = "application/vnd.docker.distribution.manifest.v2+json";
    // Layer and config digests are not checked by moto (nor read by a retag).
    let sha = |s: &str| format!("sha256:{}", s.repeat(64 / s.len()));
    let manifest = json!({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 321, "digest": sha("c")},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1234, "digest": sha("a")}]
    })
    .to_string();
    let pushed = ecr
        .put_image()
        .repository_name("pdp-backend")
        .image_manifest(&manifest)
        .image_manifest_media_type(media_type)
        .image_tag("prod")
        .send()
        .await
        .unwrap();
    let digest = pushed
        .image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned();

    let pipeline_ecr = aws_sdk_ecr::Client::new(&gate.sdk_config());
    assert_eq!(
        rollbackctl::ops::guard_image(&pipeline_ecr, "pdp-backend", &digest)
            .await
            .unwrap(),
        None
    );
    let got = pipeline_ecr
        .batch_get_image()
        .repository_name("pdp-backend")
        .image_ids(ImageIdentifier::builder().image_digest(&digest).build())
        .accepted_media_types(media_type)
        .accepted_media_types("application/vnd.docker.distribution.manifest.list.v2+json")
        .accepted_media_types("application/vnd.oci.image.manifest.v1+json")
        .accepted_media_types("application/vnd.oci.image.index.v1+json")
        .send()
        .await
        .unwrap();
    let image = &got.images()[0];
    pipeline_ecr
        .put_image()
        .repository_name("pdp-backend")
        .image_tag("stable")
        .image_digest(&digest)
        .image_manifest(image.image_manifest().unwrap())
        .image_manifest_media_type(image.image_manifest_media_type().unwrap())
        .send()
        .await
        .unwrap();
    let stable = ecr
        .describe_images()
        .repository_name("pdp-backend")
        .image_ids(ImageIdentifier::builder().image_tag("stable").build())
        .send()
        .await
        .unwrap();
    assert_eq!(
        stable.image_details()[0].image_digest(),
        Some(digest.as_str())
    );

    // Before the move: is any of the stack's alarms in ALARM?
    let alarms = aws_sdk_cloudwatch::Client::new(&gate.sdk_config())
        .describe_alarms()
        .alarm_names("pdp-5xx")
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .send()
        .await
        .unwrap();
    assert!(alarms.metric_alarms().is_empty());
    gate.assert_allowed();
}

#[tokio::test]
async fn the_documented_lambda_payloads_are_accepted_by_the_function() {
    // infra/DEPLOY.md's `aws lambda invoke` payloads: no request, the plan as stored.
    let snapshot_gate = gate("snapshot");
    let function = function(&snapshot_gate);
    MotoServer::shared()
        .postgres_instance("pdp-raw-db", ONE_DAY_BACKUPS)
        .await;
    let plan = plan_json(json!([{"kind": "rds-instance", "id": "pdp-raw-db"}]));
    let payload = json!({"action": "pre-deploy", "release": "2024.07.0", "plan": plan,
                         "execution": "pre-deploy-2024.07.0"});
    let out = pre_deploy::answer(
        FUNCTION_ARN,
        function.invoke(payload.clone()).await.unwrap(),
    )
    .unwrap();
    assert_eq!(
        out.snapshots[0].snapshot_id,
        ids::pre_deploy_snapshot_id(SERVICE, "2024.07.0", "pdp-raw-db")
    );
    let mut status = payload;
    status["action"] = json!("status");
    status["purpose"] = json!("pre-deploy");
    let out = pre_deploy::answer(FUNCTION_ARN, function.invoke(status).await.unwrap()).unwrap();
    assert!(out.all_available, "{out:?}");
}
