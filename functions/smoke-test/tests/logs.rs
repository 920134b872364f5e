//! Logs checks against moto's CloudWatch Logs, under smoke-test's role (the IAM gate): by
//! default the role reads the cluster's Container Insights application group
//! (`/aws/containerinsights/smoke-svc-eks/application` for the test stack); with
//! `SmokeLogGroupPrefix` the groups under that prefix. Tests share moto and that group, so each
//! writes its own stream and looks for its own words (moto matches every term of a pattern).

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use chrono::{Duration, Utc};
use rollback_core::contract::smoke_test::CheckKind;
use rollback_core::plan::Plan;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_smoke_test::{handle, run};
use serde_json::{Value, json};

mod common;
use common::{check, clients, gate};
use rollback_moto::MotoServer;

const APP_GROUP: &str = "/aws/containerinsights/smoke-svc-eks/application";

/// smoke-test's role reading the groups under `/smoke-svc/`.
fn prefix_gate() -> IamGate {
    let stack = test_stack("smoke-svc").parameter("SmokeLogGroupPrefix", "/smoke-svc/");
    IamGate::start(&MotoServer::shared().endpoint(), "smoke-test", &stack)
}

fn plan(logs: Value) -> Plan {
    Plan::from_value(json!({
        "service": "smoke-svc",
        "images": [{"repository": "smoke-svc/api", "release_tag": "prod", "stable_tag": "stable"}],
        "smoke": {"logs": logs},
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn logs_client() -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&MotoServer::shared().sdk_config())
}

/// Creates the group (once) and a stream, and writes `lines` at `minutes_ago`.
async fn put_lines(group: &str, stream: &str, minutes_ago: i64, lines: &[&str]) {
    let logs = logs_client();
    // Another test may have created the group already.
    let _ = logs.create_log_group().log_group_name(group).send().await;
    let _ = logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    let at = (Utc::now() - Duration::minutes(minutes_ago)).timestamp_millis();
    let events = lines.iter().enumerate().map(|(i, line)| {
        InputLogEvent::builder()
            .timestamp(at + i as i64)
            .message(*line)
            .build()
            .unwrap()
    });
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events.collect()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn matches_above_and_below_the_threshold() {
    let gate = gate();
    put_lines(
        APP_GROUP,
        "pod-threshold",
        1,
        &[
            "ERROR orders-7 payment failed\n\tcaused by: upstream 503 password=hunter2",
            "INFO orders-7 served GET /health",
            "ERROR orders-7 payment failed again Authorization: Bearer eyJhbGciOi.tok.sig",
            &format!("ERROR orders-7 {}", "long ".repeat(100)),
        ],
    )
    .await;
    let pattern = "ERROR orders-7";
    let report = run(
        &clients(&gate),
        &plan(json!([
            {"name": "under", "log_groups": [APP_GROUP], "filter_pattern": pattern, "max_matches": 3},
            {"name": "over", "log_groups": [APP_GROUP], "filter_pattern": pattern, "max_matches": 1},
            {"name": "default zero", "log_groups": [APP_GROUP], "filter_pattern": pattern},
        ])),
    )
    .await
    .unwrap();
    println!("{report:#?}");
    assert!(report.checks.iter().all(|c| c.kind == CheckKind::Logs));
    assert!(
        report
            .summary
            .starts_with("1 of 3 checks passed; failed: over (at least 2 matches"),
        "{}",
        report.summary
    );

    let under = &check(&report, "under");
    assert!(under.passed, "{under:?}");
    let reason = &under.reason;
    assert!(
        reason.starts_with(&format!("3 matches of \"{pattern}\" in {APP_GROUP} since "))
            && reason.contains("(at most 3 allowed): \"ERROR orders-7 payment failed"),
        "{reason}"
    );
    // Three quoted lines, flattened, redacted, the long one cut.
    assert_eq!(reason.matches(" | ").count(), 2, "{reason}");
    for secret in ["hunter2", "eyJhbGciOi", "\n", "\t"] {
        assert!(!reason.contains(secret), "{secret:?} in {reason}");
    }
    for shown in ["password=[redacted]", "Bearer [redacted]", "long long…"] {
        assert!(reason.contains(shown), "{shown:?} not in {reason}");
    }

    // Over the threshold: the search stops at max_matches + 1.
    let over = check(&report, "over");
    assert!(!over.passed, "{over:?}");
    assert!(
        over.reason
            .starts_with("at least 2 matches of \"ERROR orders-7\"")
            && over.reason.contains("(at most 1 allowed)"),
        "{}",
        over.reason
    );
    let zero = check(&report, "default zero");
    assert!(
        !zero.passed && zero.reason.starts_with("at least 1 match of"),
        "{zero:?}"
    );
}

#[tokio::test]
async fn no_match_and_an_empty_window_pass() {
    let gate = gate();
    // Logged two hours ago: outside the window.
    put_lines(
        APP_GROUP,
        "pod-stale",
        120,
        &["ERROR stale-7 from the bad release"],
    )
    .await;
    let report = run(
        &clients(&gate),
        &plan(json!([
            {"name": "no match", "log_groups": [APP_GROUP], "filter_pattern": "ERROR nothing-7"},
            {"name": "empty window", "log_groups": [APP_GROUP], "filter_pattern": "ERROR stale-7",
             "window_minutes": 30},
        ])),
    )
    .await
    .unwrap();
    assert!(report.passed, "{report:#?}");
    let none = check(&report, "no match");
    assert!(
        none.reason.starts_with("0 matches of \"ERROR nothing-7\""),
        "{}",
        none.reason
    );
    let empty = check(&report, "empty window");
    assert!(
        empty.reason.starts_with("0 matches of \"ERROR stale-7\""),
        "{}",
        empty.reason
    );
    // The window is the last 30 minutes: it starts after the stale line.
    let since = empty.reason.split(" since ").nth(1).unwrap();
    let since = chrono::DateTime::parse_from_rfc3339(&since[..20]).unwrap();
    let age = Utc::now() - since.with_timezone(&Utc);
    assert!((29..=31).contains(&age.num_minutes()), "{age:?}");
}

#[tokio::test]
async fn matches_count_across_log_groups_under_the_stack_prefix() {
    let gate = prefix_gate();
    put_lines(
        "/smoke-svc/api",
        "pod-1",
        2,
        &["WARN groups-7 slow", "WARN groups-7 slower"],
    )
    .await;
    put_lines(
        "/smoke-svc/worker",
        "pod-1",
        2,
        &["WARN groups-7 queue deep"],
    )
    .await;
    let groups = json!(["/smoke-svc/api", "/smoke-svc/worker"]);
    let report = run(
        &clients(&gate),
        &plan(json!([
            {"name": "both", "log_groups": groups, "filter_pattern": "WARN groups-7", "max_matches": 3},
            {"name": "too many", "log_groups": groups, "filter_pattern": "WARN groups-7", "max_matches": 2},
        ])),
    )
    .await
    .unwrap();
    println!("{report:#?}");
    let both = check(&report, "both");
    assert!(both.passed, "{both:?}");
    assert!(
        both.reason
            .starts_with("3 matches of \"WARN groups-7\" in 2 log groups"),
        "{}",
        both.reason
    );
    let too_many = check(&report, "too many");
    assert!(!too_many.passed);
    assert!(
        too_many.reason.starts_with("at least 3 matches"),
        "{}",
        too_many.reason
    );
}

#[tokio::test]
async fn the_rollout_time_from_the_input_starts_the_window() {
    let gate = gate();
    // The bad release logged this 10 minutes ago; the rollout finished 5 minutes ago.
    put_lines(
        APP_GROUP,
        "pod-rollout",
        10,
        &["ERROR rollout-7 from the bad release"],
    )
    .await;
    let input = |rollout: Option<String>| {
        let mut input = json!({
            "action": "run",
            "plan": {"service": "smoke-svc",
                     "images": [{"repository": "smoke-svc/api", "release_tag": "prod", "stable_tag": "stable"}],
                     "smoke": {"logs": [{"name": "errors", "log_groups": [APP_GROUP],
                                         "filter_pattern": "ERROR rollout-7", "window_minutes": 15}]}},
            "execution": "exec-logs-1"
        });
        if let Some(at) = rollout {
            input["rollout_finished_at"] = json!(at);
        }
        input
    };
    let rollout = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    let after_rollout = handle(&clients(&gate), input(Some(rollout))).await.unwrap();
    assert_eq!(after_rollout["passed"], json!(true), "{after_rollout:#}");
    assert_eq!(after_rollout["checks"][0]["kind"], json!("logs"));

    let whole_window = handle(&clients(&gate), input(None)).await.unwrap();
    assert_eq!(whole_window["passed"], json!(false), "{whole_window:#}");
    let reason = whole_window["checks"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("at least 1 match of"), "{reason}");
}

#[tokio::test]
async fn a_missing_log_group_is_a_configuration_error_naming_it() {
    let gate = prefix_gate();
    let err = run(
        &clients(&gate),
        &plan(
            json!([{"name": "errors", "log_groups": ["/smoke-svc/no-such-group"],
                      "filter_pattern": "ERROR"}]),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig", "{err}");
    let message = err.to_string();
    assert!(
        message.contains("log group /smoke-svc/no-such-group does not exist")
            && message.contains("\"errors\""),
        "{message}"
    );
}

#[tokio::test]
async fn a_log_group_outside_the_role_is_refused_naming_group_and_parameter() {
    let gate = gate();
    put_lines("/other-team/app", "pod-1", 1, &["ERROR not ours"]).await;
    let err = run(
        &clients(&gate),
        &plan(json!([{"name": "theirs", "log_groups": ["/other-team/app"], "filter_pattern": "ERROR"}])),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig", "{err}");
    let message = err.to_string();
    assert!(
        message.contains("may not read log group /other-team/app")
            && message.contains("SmokeLogGroupPrefix"),
        "{message}"
    );
    // The refusal was AWS's (the gate's), for exactly that group.
    let refused = gate.take_violations();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let refused = refused[0].to_string();
    assert!(
        refused.contains("logs:FilterLogEvents") && refused.contains("log-group:/other-team/app:*"),
        "{refused}"
    );
}
