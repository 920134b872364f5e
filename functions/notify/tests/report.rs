//! notify `report`: the post-mortem in S3, from the execution's own history, under notify's
//! role from infra/template.yaml (one IAM gate in front of moto's S3, one in front of the
//! local Step Functions engine's endpoint). Each test runs a small definition on the engine
//! whose last task is the real function's `report` action, as the rollback definition's is,
//! and reads what it wrote back from moto.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rollback_core::contract::notify::{
    ReportLink, ReportLocation, ReportOutput, StepError, SuccessNotice,
};
use rollback_core::report::history::{History, REDACTED_TOKEN};
use rollback_core::report::{analyse, render};
use rollback_engine::{Engine, EngineConfig, ExecutionStatus, LambdaRegistry, TaskFailure};
use rollback_fault_proxy::gate::{IamGate, report_bucket, test_stack};
use rollback_fault_proxy::{FaultKind, FaultSchedule};
use rollback_moto::MotoServer;
use rollback_notify::{Clients, Config};
use serde_json::{Value, json};

fn plan(service: &str) -> Value {
    json!({"service": service, "databases": [{"kind": "rds-instance", "id": format!("{service}-db")}]})
}

fn request() -> Value {
    json!({"trigger": {"kind": "manual", "requested_by": "oncall@example.com"},
           "reason": "bad migration in v42", "scope": "app+database"})
}

/// The definition: some work (one task whose parameters carry a task token, as the approval
/// request's do; a loop of `loops` turns whose every event carries the input's `pad`), then
/// the report step as the rollback definition writes it, then the end.
fn definition(loops: u32) -> String {
    json!({
        "StartAt": "Ask",
        "States": {
            "Ask": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "rollback-echo",
                                   "Payload": {"task_token": "AAAA-secret-task-token-of-the-approval", "n.$": "$.n"}},
                    "ResultSelector": {"approved.$": "$.Payload.n"}, "ResultPath": "$.asked",
                    "Next": "More?"},
            "More?": {"Type": "Choice",
                      "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": loops, "Next": "Write the success report"}],
                      "Default": "Count"},
            "Count": {"Type": "Pass",
                      "Parameters": {"plan.$": "$.plan", "request.$": "$.request", "pad.$": "$.pad",
                                     "n.$": "States.MathAdd($.n, 1)"},
                      "Next": "More?"},
            "Write the success report": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "rollback-notify",
                               "Payload": {"action": "report", "plan.$": "$.plan", "request.$": "$.request",
                                           "execution.$": "$$.Execution.Name", "execution_arn.$": "$$.Execution.Id",
                                           "outcome": "rolled-back"}},
                "ResultSelector": {"uri.$": "$.Payload.uri", "history_uri.$": "$.Payload.history_uri",
                                   "console_url.$": "$.Payload.console_url", "output.$": "$.Payload"},
                "ResultPath": "$.report",
                "Next": "Rollback complete"},
            "Rollback complete": {"Type": "Succeed"}
        }
    })
    .to_string()
}

/// The engine serving its Step Functions endpoint behind notify's IAM gate, with the real
/// notify function registered.
struct Stack {
    engine: Engine,
    _server: rollback_engine::Server,
    s3_gate: IamGate,
    sfn_gate: IamGate,
    machine: String,
    service: String,
}

impl Stack {
    async fn start(service: &str, loops: u32, config: impl FnOnce(Config) -> Config) -> Stack {
        let stack = test_stack(service);
        let s3_gate = gate(&stack);
        let registry = LambdaRegistry::new();
        let engine = Engine::new(Arc::new(registry.clone()), EngineConfig::default());
        let server = rollback_engine::serve(
            engine.clone(),
            rollback_engine::Mode::Embedded,
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let sfn_gate = IamGate::start(&server.url, "notify", &stack);
        let clients = Clients {
            sfn: aws_sdk_sfn::Client::new(&sfn_gate.sdk_config()),
            ..clients(&s3_gate)
        };
        let config = Arc::new(config(Config::local(
            "arn:aws:sns:us-east-1:123456789012:unused",
            "http://approve.test/approval",
            rollback_core::approval_link::LinkKey::generate(),
        )));
        registry.register("rollback-notify", move |payload: Value, _| {
            let (clients, config) = (clients.clone(), config.clone());
            async move {
                rollback_notify::handle(&clients, &config, payload)
                    .await
                    .map_err(|e| TaskFailure::new(e.error_name(), e.to_string()))
            }
        });
        // As the approval request: the token is in the task's parameters, not its answer.
        registry.register("rollback-echo", |payload: Value, _| async move {
            Ok(json!({"n": payload["n"]}))
        });
        // The template allows the history of `${AWS::StackName}-rollback`'s executions.
        let machine = engine
            .create_state_machine(
                &format!("{service}-stack-rollback"),
                &definition(loops),
                "arn:aws:iam::123456789012:role/rollback",
                &Default::default(),
            )
            .unwrap()
            .arn;
        Stack {
            engine,
            _server: server,
            s3_gate,
            sfn_gate,
            machine,
            service: service.to_owned(),
        }
    }

    async fn create_bucket(&self) {
        let s3 = rollback_notify::s3_client(&MotoServer::shared().sdk_config());
        let bucket = report_bucket(&self.service);
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Runs one execution named `name` to its end (bounded) and returns its description.
    async fn run(&self, name: &str, pad: usize) -> rollback_engine::ExecutionDescription {
        let input = json!({"plan": plan(&self.service), "request": request(), "n": 0, "pad": "p".repeat(pad)});
        let (arn, _) = self
            .engine
            .start_execution(&self.machine, Some(name), Some(&input.to_string()))
            .unwrap();
        self.engine
            .wait_for_completion(&arn, Duration::from_secs(60))
            .await
            .unwrap()
    }

    async fn object(&self, key: &str) -> Option<(String, Option<String>)> {
        let s3 = rollback_notify::s3_client(&MotoServer::shared().sdk_config());
        let out = s3
            .get_object()
            .bucket(report_bucket(&self.service))
            .key(key)
            .send()
            .await
            .ok()?;
        let version = out.version_id.clone();
        let bytes = out.body.collect().await.unwrap().into_bytes();
        Some((String::from_utf8(bytes.to_vec()).unwrap(), version))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_the_execution_history_so_far_rendered_as_rollbackctl_renders_it() {
    let stack = Stack::start("notify-report", 2, |c| {
        c.with_report_bucket(&report_bucket("notify-report"))
    })
    .await;
    stack.create_bucket().await;
    let d = stack.run("manual-report-1", 10).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let output: Value = serde_json::from_str(d.output.as_deref().unwrap()).unwrap();
    let written: ReportOutput = serde_json::from_value(output["report"]["output"].clone()).unwrap();
    let bucket = report_bucket("notify-report");
    assert_eq!(written.bucket, bucket);
    assert_eq!(written.report_key, "reports/manual-report-1/report.md");
    assert_eq!(written.history_key, "reports/manual-report-1/history.json");
    assert_eq!(
        written.uri,
        format!("s3://{bucket}/reports/manual-report-1/report.md")
    );
    assert_eq!(
        written.console_url,
        format!(
            "https://console.aws.amazon.com/s3/object/{bucket}?region=us-east-1&bucketType=general&prefix=reports%2Fmanual-report-1%2Freport.md"
        )
    );
    // What the notice gets: the location (the definition selects these three).
    let link: ReportLink = serde_json::from_value(output["report"].clone()).unwrap();
    assert!(matches!(link, ReportLink::Written(ReportLocation { .. })));

    let (text, _) = stack
        .object(&written.history_key)
        .await
        .expect("history.json");
    assert!(
        !text.contains("secret-task-token"),
        "task tokens stay out of the bucket"
    );
    assert!(text.contains(REDACTED_TOKEN));
    let history: History = serde_json::from_str(&text).unwrap();
    assert_eq!(history.events.len() as u64, written.events);
    // The history as the engine has it now, up to the report step's own scheduled event: the
    // step read it while it ran, before the notice and the end.
    let all = stack.engine.history(&d.arn).unwrap();
    let n = history.events.len();
    assert!(n < all.len(), "the end came after the report");
    for (stored, engine) in history.events.iter().zip(&all) {
        assert_eq!(stored.id as u64, engine.id);
        assert_eq!(stored.kind, engine.event_type);
    }
    assert_eq!(history.events.last().unwrap().kind, "TaskStarted");

    // report.md is exactly what `rollbackctl report` renders from that history.json.
    let (markdown, version) = stack.object(&written.report_key).await.expect("report.md");
    assert_eq!(markdown, render(&analyse("manual-report-1", &history)));
    assert_eq!(version, written.version_id, "the bucket is versioned");
    assert!(version.is_some());
    for needle in [
        "# Rollback report: manual-report-1",
        "- **Outcome:** SUCCEEDED\n",
        "- **Report written:** ",
        "by the execution itself before its final notice",
        "## Timeline",
        "| Write the success report | (not exited) | 1 |",
    ] {
        assert!(markdown.contains(needle), "{needle:?} in\n{markdown}");
    }
    stack.s3_gate.assert_allowed();
    stack.sfn_gate.assert_allowed();
}

/// A history larger than a part (here 5 MiB, S3's smallest) goes up as a multipart upload
/// and reads back whole; the role allows it (every part is `s3:PutObject`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_history_goes_up_in_parts() {
    let stack = Stack::start("notify-big", 14, |mut c| {
        c.report_part_size = rollback_notify::report::MIN_PART_SIZE;
        c.with_report_bucket(&report_bucket("notify-big"))
    })
    .await;
    stack.create_bucket().await;
    // ≈ 200 KB of state in each of ≈ 60 events: ≈ 12 MB.
    let d = stack.run("manual-big-1", 200_000).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let (text, _) = stack
        .object("reports/manual-big-1/history.json")
        .await
        .expect("history.json");
    assert!(
        text.len() > 2 * rollback_notify::report::MIN_PART_SIZE,
        "{}",
        text.len()
    );
    let history: History = serde_json::from_str(&text).unwrap();
    let (markdown, _) = stack
        .object("reports/manual-big-1/report.md")
        .await
        .unwrap();
    assert_eq!(markdown, render(&analyse("manual-big-1", &history)));
    assert!(markdown.contains("| Count | 0 s | 14 |"), "{markdown}");
    let parts = stack
        .s3_gate
        .proxy()
        .log()
        .iter()
        .filter(|r| r.request.operation == "UploadPart")
        .count();
    assert!(parts >= 3, "{parts} parts");
    stack.s3_gate.assert_allowed();
    stack.sfn_gate.assert_allowed();
}

/// A part that fails for good: the upload is aborted (no parts left behind, nothing at the
/// key), the step fails as retryable, and its message is short enough for the state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_part_aborts_the_upload_and_fails_retryably() {
    let stack = Stack::start("notify-abort", 14, |mut c| {
        c.report_part_size = rollback_notify::report::MIN_PART_SIZE;
        c.with_report_bucket(&report_bucket("notify-abort"))
    })
    .await;
    stack.create_bucket().await;
    // The first part fails on every attempt the SDK makes.
    stack
        .s3_gate
        .proxy()
        .set_schedule(FaultSchedule::none().fail_next(10, "UploadPart", FaultKind::InternalError));
    let d = stack.run("manual-abort-1", 200_000).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.Transient"), "{d:?}");
    let cause = d.cause.unwrap_or_default();
    assert!(cause.contains("UploadPart"), "{cause}");
    assert!(
        cause.chars().count() <= 2 * rollback_notify::report::MAX_ERROR_MESSAGE,
        "{cause}"
    );
    assert!(
        stack
            .object("reports/manual-abort-1/history.json")
            .await
            .is_none()
    );
    assert!(
        stack
            .object("reports/manual-abort-1/report.md")
            .await
            .is_none()
    );
    let s3 = rollback_notify::s3_client(&MotoServer::shared().sdk_config());
    let uploads = s3
        .list_multipart_uploads()
        .bucket(report_bucket("notify-abort"))
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    let aborted = stack
        .s3_gate
        .proxy()
        .log()
        .iter()
        .any(|r| r.request.operation == "AbortMultipartUpload");
    assert!(aborted);
    stack.s3_gate.assert_allowed();
    stack.sfn_gate.assert_allowed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_another_executions_arn_is_refused() {
    // No bucket: S3's NoSuchBucket, permanent (not retried by the definition).
    let stack = Stack::start("notify-nobucket", 0, |c| {
        c.with_report_bucket(&report_bucket("notify-nobucket"))
    })
    .await;
    let d = stack.run("manual-nobucket-1", 10).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.AwsError"), "{d:?}");
    assert!(d.cause.unwrap_or_default().contains("NoSuchBucket"));
    stack.s3_gate.assert_allowed();

    // No bucket configured at all, and an ARN naming another execution: refused before any call.
    let gate = gate(&test_stack("notify-nobucket"));
    let input = |arn: &str| {
        json!({"action": "report", "execution_arn": arn, "outcome": "failed",
               "error": {"Error": "Rollback.SwapFailed", "Cause": "x"},
               "plan": plan("notify-nobucket"), "request": request(), "execution": "e1"})
    };
    let arn = "arn:aws:states:us-east-1:123456789012:execution:notify-nobucket-stack-rollback";
    let unset = Config::local(
        "t",
        "http://a",
        rollback_core::approval_link::LinkKey::generate(),
    );
    let err = rollback_notify::handle(&clients(&gate), &unset, input(&format!("{arn}:e1")))
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.InvalidInput");
    assert!(err.to_string().contains("ROLLBACK_REPORT_BUCKET"), "{err}");
    let set = unset.with_report_bucket("b");
    let err = rollback_notify::handle(&clients(&gate), &set, input(&format!("{arn}:other")))
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.InvalidInput");
    assert!(err.to_string().contains("\"other\""), "{err}");
    assert!(gate.proxy().log().is_empty(), "no AWS call");
}

/// The final notices link the report, or say why there is none and how to write it.
#[test]
fn notices_link_the_report_or_say_why_not() {
    let plan = rollback_core::Plan::from_value(plan("mint-replica")).unwrap();
    let request: rollback_core::RollbackRequest = serde_json::from_value(request()).unwrap();
    let execution = rollback_core::ExecutionId::new("manual-1");
    let ctx = rollback_notify::Context {
        plan: &plan,
        request: &request,
        execution: &execution,
        now: chrono::Utc::now(),
    };
    let written = ReportLink::Written(ReportLocation {
        uri: "s3://b/reports/manual-1/report.md".into(),
        history_uri: "s3://b/reports/manual-1/history.json".into(),
        console_url: "https://console.aws.amazon.com/s3/object/b?region=us-east-1&bucketType=general&prefix=reports%2Fmanual-1%2Freport.md".into(),
    });
    let success = |report: Option<ReportLink>| SuccessNotice {
        resolved: Default::default(),
        decision: None,
        smoke: None,
        smoke_wait: None,
        gitops: Vec::new(),
        progress: None,
        started_at: None,
        topic_arn: None,
        report,
    };
    let body = rollback_notify::render::success(&ctx, &success(Some(written))).body;
    assert!(
        body.contains(
            "POST-MORTEM REPORT (timeline, decision, changes, data-loss window; sections to fill in)\n  s3://b/reports/manual-1/report.md\n  history: s3://b/reports/manual-1/history.json\n  console: https://console.aws.amazon.com/s3/object/b?"
        ),
        "{body}"
    );
    // The Catch's error, hostile text neutralised.
    let failed = ReportLink::NotWritten(StepError {
        error: "Rollback.AwsError".into(),
        cause: "PutObject failed: AccessDenied\r\nInjected: yes".into(),
    });
    let body = rollback_notify::render::success(&ctx, &success(Some(failed))).body;
    assert!(
        body.contains("  not written to the report bucket (Rollback.AwsError: PutObject failed: AccessDenied Injected: yes).\n  Write it from the history of execution manual-1: rollbackctl report EXECUTION_ARN -o postmortem.md"),
        "{body}"
    );
    let body = rollback_notify::render::success(&ctx, &success(None)).body;
    assert!(!body.contains("POST-MORTEM"), "{body}");
}
