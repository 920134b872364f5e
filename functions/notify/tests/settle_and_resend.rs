//! The approval email says how long smoke tests will wait for the plan's alarms (read from a
//! real moto alarm by the plan function's `validate`), and a resent approval request says
//! that the earlier links no longer work.

mod common;

use common::*;
use rollback_core::approval_link::LinkKey;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use rollback_moto::inbox::Delivery;
use rollback_notify::{Config, handle};
use serde_json::{Value, json};

const PLAN: &str = r#"{
    "service": "mint-replica",
    "images": [{"repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable"}],
    "smoke": {"alarms": ["mint-replica-5xx-slow"]},
    "approval": {"timeout_minutes": 60, "escalate_after_minutes": 15}
}"#;

fn approval_payload(attempt: u32, settle: Option<&str>) -> Value {
    let plan: Value = serde_json::from_str(PLAN).unwrap();
    let mut p = json!({
        "action": "approval-request",
        "task_token": "tok-123",
        "plan": plan,
        "request": {"trigger": {"kind": "manual"}, "reason": "5xx after v42", "scope": "app"},
        "execution": "exec-settle-1",
        "resolved": {"images": [{
            "repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable",
            "stable_digest": "sha256:600d", "release_digest": "sha256:bad", "retag_needed": true,
            "immutable_tags": false
        }]}
    });
    if attempt > 0 {
        p["attempt"] = json!(attempt);
    }
    if let Some(s) = settle {
        p["smoke_settle"] = json!(s);
    }
    p
}

#[tokio::test]
async fn an_alarm_of_300_s_times_3_gets_a_15_minute_settle_window_shown_in_the_approval_email() {
    let config = MotoServer::shared().sdk_config();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    cloudwatch
        .put_metric_alarm()
        .alarm_name("mint-replica-5xx-slow")
        .namespace("MintReplica")
        .metric_name("5XXError")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(300)
        .evaluation_periods(3)
        .threshold(5.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");

    // The plan function's validate reads the alarm (DescribeAlarms) and derives the window;
    // its calls are checked against the plan role.
    let plan_gate = IamGate::start(
        &MotoServer::shared().endpoint(),
        "plan",
        &test_stack("mint-replica"),
    );
    let plan_clients = rollback_plan::Clients::new(&plan_gate.sdk_config());
    let out = rollback_plan::handle(
        &plan_clients,
        PLAN,
        json!({"action": "validate", "input": {"reason": "5xx after v42"}, "execution": "exec-settle-1"}),
    )
    .await
    .expect("validate");
    let timing = &out["timing"];
    let settle = timing["smoke_settle_seconds"].as_u64().unwrap();
    assert!(settle >= 15 * 60, "{timing}");
    let retries = timing["smoke_max_retries"].as_u64().unwrap();
    let apart = timing["smoke_retry_seconds"].as_u64().unwrap();
    assert!(
        retries * apart >= 15 * 60,
        "the re-runs span the window: {timing}"
    );
    let reason = timing["smoke_settle_reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "waits up to 15 min for mint-replica-5xx-slow: 300 s × 3 evaluation periods"
    );

    // The definition passes timing.smoke_settle_reason to the approval request.
    let gate = gate(&test_stack("notify-settle"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-settle-approvals", Delivery::Raw)
        .await;
    let notify_config = Config::local(&topic_arn, "http://approve.test/", LinkKey::generate());
    handle(
        &clients(&gate),
        &notify_config,
        approval_payload(0, Some(reason)),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    assert!(
        body.contains(
            "Smoke tests: re-run while they fail; waits up to 15 min for mint-replica-5xx-slow: \
             300 s × 3 evaluation periods."
        ),
        "{body}"
    );
    assert!(!body.contains("RESENT"), "{body}");

    // A missing alarm: the plan maximum, and the reason says why.
    let missing = PLAN.replace("mint-replica-5xx-slow", "no-such-alarm");
    let out = rollback_plan::handle(
        &plan_clients,
        &missing,
        json!({"action": "validate", "input": {}, "execution": "exec-settle-2"}),
    )
    .await
    .expect("validate");
    assert_eq!(out["timing"]["smoke_settle_seconds"], json!(30 * 60));
    let reason = out["timing"]["smoke_settle_reason"].as_str().unwrap();
    assert!(reason.contains("no-such-alarm does not exist"), "{reason}");
    assert!(reason.contains("smoke.max_settle_minutes"), "{reason}");
}

#[tokio::test]
async fn a_resent_approval_request_says_the_earlier_links_no_longer_work() {
    let gate = gate(&test_stack("notify-resent"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-resent-approvals", Delivery::Raw)
        .await;
    let config = Config::local(&topic_arn, "http://approve.test/", LinkKey::generate());
    let clients = clients(&gate);

    let out = handle(&clients, &config, approval_payload(0, None))
        .await
        .unwrap();
    let first = out["subject"].as_str().unwrap().to_owned();
    assert!(!first.contains("RESENT"), "{first}");
    let body = MotoServer::shared().next_message(&queue).await;
    assert!(!body.contains("RESENT"), "{body}");

    let out = handle(&clients, &config, approval_payload(2, None))
        .await
        .unwrap();
    let subject = out["subject"].as_str().unwrap();
    assert_eq!(
        subject,
        "[rollback] RESENT - earlier links no longer work - APPROVAL NEEDED: mint-replica (manual)"
    );
    let body = MotoServer::shared().next_message(&queue).await;
    assert!(
        body.starts_with(
            "RESENT (attempt 3): earlier approval links no longer work — use the links in this email."
        ),
        "{body}"
    );
}
