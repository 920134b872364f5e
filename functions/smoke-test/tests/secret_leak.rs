//! The HTTP checks' credentials never reach the logs, even at TRACE (which also records what
//! the AWS SDK and the HTTP client log), nor the report, nor an error. A secret an application
//! wrote into a log line a logs check quotes never reaches the report; in the function's own
//! logs it appears only in the AWS SDK's TRACE records of the FilterLogEvents response (the
//! SDK logs every response at TRACE; the stack runs at INFO). Mirrors
//! functions/approval/tests/logs.rs.

mod common;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use base64::Engine;
use common::*;
use rollback_core::plan::Plan;
use rollback_moto::MotoServer;
use rollback_moto::log_capture::capture_all_logs;
use rollback_smoke_test::{Clients, handle, run};
use serde_json::{Value, json};

const APP_GROUP: &str = "/aws/containerinsights/smoke-svc-eks/application";
/// Credentials the application itself logged, which the logs check quotes a line of.
const LOGGED_KEY: &str = "sk_live_9fQ2mZ7xR4tW1pL8";
const LOGGED_TOKEN: &str = "app-bearer-5d1e7a";

async fn log_a_leaky_line() {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&MotoServer::shared().sdk_config());
    let _ = logs
        .create_log_group()
        .log_group_name(APP_GROUP)
        .send()
        .await;
    let _ = logs
        .create_log_stream()
        .log_group_name(APP_GROUP)
        .log_stream_name("pod-leak")
        .send()
        .await;
    let event = InputLogEvent::builder()
        .timestamp(chrono::Utc::now().timestamp_millis() - 60_000)
        .message(format!(
            "ERROR leak-7 charge failed api_key={LOGGED_KEY} Authorization: Bearer {LOGGED_TOKEN}"
        ))
        .build()
        .unwrap();
    logs.put_log_events()
        .log_group_name(APP_GROUP)
        .log_stream_name("pod-leak")
        .log_events(event)
        .send()
        .await
        .unwrap();
}

/// A run that sends each credential (accepted, refused, echoed back, to a closed port) and
/// quotes the application's leaky log line.
fn every_credential_use(base: &str, s: &Secrets) -> Value {
    json!({
        "action": "run",
        "execution": "exec-leak-1",
        "plan": {"service": "smoke-svc",
                 "images": [{"repository": "smoke-svc/api", "release_tag": "prod", "stable_tag": "stable"}],
                 "smoke": {
                    "http": [
                        {"name": "bearer", "url": format!("{base}/status"), "credentials_secret": s.bearer,
                         "expect_json": [{"pointer": "/status", "equals": "degraded"}]},
                        {"name": "basic", "url": format!("{base}/orders"), "method": "POST",
                         "credentials_secret": s.basic, "headers": {"X-Probe": "smoke"},
                         "body": {"dry_run": true, "amount": 10}},
                        {"name": "wrong", "url": format!("{base}/status"), "credentials_secret": s.wrong_bearer},
                        {"name": "echo", "url": format!("{base}/echo"), "credentials_secret": s.bearer,
                         "body_contains": "never"},
                        {"name": "echo basic", "url": format!("{base}/echo"), "credentials_secret": s.basic,
                         "body_contains": "never"},
                        {"name": "refused", "url": "http://127.0.0.1:9/x", "credentials_secret": s.bearer,
                         "retries": 1}
                    ],
                    "logs": [{"name": "leaky log", "log_groups": [APP_GROUP], "filter_pattern": "ERROR leak-7"}]
                 }}
    })
}

#[tokio::test]
async fn credentials_never_reach_logs_reports_or_errors() {
    let gate = gate();
    let base = integration().await;
    let s = secrets("leak").await;
    log_a_leaky_line().await;
    let clients = Clients::new(&gate.sdk_config());
    let bad = put_secret(
        "smoke-svc/leak-malformed",
        &json!({"type": "basic", "username": USERNAME, "password": [PASSWORD]}),
    )
    .await;

    let captured = capture_all_logs();

    let output = handle(&clients, every_credential_use(&base, &s))
        .await
        .unwrap();
    let plan_with = |secret: &str| {
        Plan::from_value(json!({"service": "smoke-svc",
            "images": [{"repository": "smoke-svc/api", "release_tag": "prod", "stable_tag": "stable"}],
            "smoke": {"http": [{"name": "h", "url": format!("{base}/status"), "credentials_secret": secret}]}}))
        .unwrap()
    };
    let malformed = run(&clients, &plan_with(&bad))
        .await
        .unwrap_err()
        .to_string();

    let logs = captured.text();
    assert!(logs.contains("smoke run finished"), "{logs}");
    assert!(
        logs.contains("GetSecretValue"),
        "the SDK's TRACE output was captured: {logs}"
    );
    let report = output.to_string();
    assert_eq!(output["checks"].as_array().unwrap().len(), 7, "{output:#}");
    assert!(report.contains("[redacted]"), "{report}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"));
    for (what, text) in [("logs", &logs), ("report", &report), ("error", &malformed)] {
        for secret in [TOKEN, WRONG_TOKEN, PASSWORD, basic.as_str()] {
            let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
            assert!(leaks.is_empty(), "{secret} in the {what}: {leaks:#?}");
        }
    }
    for logged in [LOGGED_KEY, LOGGED_TOKEN] {
        assert!(!report.contains(logged), "{logged} in the report: {report}");
        let ours: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(logged) && !is_sdk_trace_of_filter_log_events(l))
            .collect();
        assert!(ours.is_empty(), "{logged} logged: {ours:#?}");
    }
}

fn is_sdk_trace_of_filter_log_events(line: &str) -> bool {
    line.contains(" TRACE ")
        && line.contains("FilterLogEvents")
        && line.contains("aws_smithy_runtime::client::orchestrator")
}
