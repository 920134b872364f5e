//! Hostile content (HTML, header-injection attempts, control and bidi characters, NUL, 100 KB
//! strings) in alarm descriptions, request fields, step errors and resolve outputs reaches the
//! on-call engineer neutralised: every message published to SNS (read back from moto through an
//! SQS subscription *without* raw delivery, so the SNS envelope shows the real Subject) has a
//! single-line ASCII subject under 100 characters, a body without control or bidi characters,
//! no line an attacker started, and a bounded size. Plan fields cannot carry such content at
//! all: a hostile plan is refused before anything is published.

mod common;

use common::{clients, gate};
use rollback_core::approval_link::LinkKey;
use rollback_fault_proxy::gate::test_stack;
use rollback_moto::MotoServer;
use rollback_moto::inbox::Delivery;
use rollback_notify::{Config, handle};
use serde_json::{Value, json};

/// The next message's (Subject, Message) from the SNS envelope (bounded wait).
async fn next_envelope(queue_url: &str) -> (String, String) {
    let body = MotoServer::shared().next_message(queue_url).await;
    let envelope: Value = serde_json::from_str(&body).unwrap();
    (
        envelope["Subject"].as_str().unwrap_or_default().to_owned(),
        envelope["Message"].as_str().unwrap().to_owned(),
    )
}

const BIG: usize = 100_000;

/// One line of everything an attacker might try, `pad` bytes long.
fn hostile(pad: usize) -> String {
    format!(
        "<script>alert(1)</script>\"><img src=x onerror=alert(2)>\r\nBcc: victim@example.com\r\n\
         \r\nInjected-Body\u{0}NUL\u{1b}[2J\u{7}\u{202E}evil\u{2066}x\u{200F}\u{85}NEL{}",
        "A".repeat(pad)
    )
}

const INJECTED_LINES: &[&str] = &["Bcc:", "Injected-Body"];

fn assert_subject_safe(subject: &str) {
    assert!(!subject.is_empty());
    assert!(subject.len() < 100, "subject of {} bytes", subject.len());
    assert!(
        subject
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control()),
        "subject {subject:?}"
    );
}

fn assert_body_safe(body: &str) {
    for c in body.chars() {
        assert!(
            c == '\n' || !c.is_control(),
            "control character {:?} in the body",
            c
        );
        assert!(
            !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}'),
            "bidi control {c:?} in the body"
        );
    }
    for line in body.lines() {
        for injected in INJECTED_LINES {
            assert!(
                !line.trim_start().starts_with(injected),
                "an input started its own line: {line:?}"
            );
        }
    }
    // 100 KB inputs are cut to their fields' bounds; the body stays readable.
    assert!(body.len() < 30_000, "body of {} bytes", body.len());
}

fn plan() -> Value {
    json!({
        "service": "mint-replica",
        "databases": [{"kind": "rds-instance", "id": "mint-replica-db"}],
        "images": [{"repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable"}],
        "cluster": {"name": "mint-eks", "namespace": "mint", "deployments": ["backend"]}
    })
}

/// An alarm-started request whose every free-text field is hostile.
fn hostile_request() -> Value {
    json!({
        "trigger": {"kind": "alarm", "alarm_name": hostile(200), "state": "ALARM",
                    "previous_state": "OK", "state_changed_at": "2024-05-01T12:31:00Z",
                    "state_reason": hostile(900), "event_id": hostile(50)},
        // The request's own bound is 1000 characters.
        "reason": hostile(800).chars().take(1000).collect::<String>(),
        "scope": "app+database"
    })
}

fn hostile_resolved() -> Value {
    json!({
        "databases": [{
            "database": "mint-replica-db", "kind": "rds-instance",
            "snapshot_id": hostile(BIG), "snapshot_created_at": "2024-05-01T11:02:00Z",
            "snapshot_type": "manual", "release": hostile(40),
            "data_loss": {"from": "2024-05-01T11:02:00Z", "to": "2024-05-01T12:30:00Z",
                          "seconds": 5280, "summary": hostile(BIG)}
        }],
        "images": [{
            "repository": hostile(60), "release_tag": hostile(10), "stable_tag": "stable",
            "stable_digest": hostile(BIG), "release_digest": hostile(100), "retag_needed": true,
            "immutable_tags": false, "note": hostile(BIG)
        }],
        "deployments": [{
            "name": hostile(30), "namespace": hostile(30), "current_revision": 7,
            "target_revision": 6, "current_images": [hostile(BIG)],
            "target_images": [hostile(200)], "replicas": 3, "note": hostile(BIG)
        }]
    })
}

fn hostile_progress() -> Value {
    json!({
        "steps": [
            {"name": hostile(100), "status": "done", "detail": hostile(BIG)},
            {"name": "swap", "status": "failed", "detail": hostile(BIG)}
        ],
        "resources": [{"resource": hostile(500), "state": hostile(BIG)}],
        "backups": [{"database": hostile(100), "snapshot_id": hostile(BIG), "aside_id": hostile(300)}]
    })
}

#[tokio::test]
async fn every_message_neutralises_hostile_alarm_and_step_content() {
    let gate = gate(&test_stack("hostile-all"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("hostile-all-notices", Delivery::Envelope)
        .await;
    let key = LinkKey::generate();
    let mut config = Config::local(&topic_arn, "http://approve.test/approval", key);
    config.escalation_topic_arn = Some(topic_arn.clone());
    let common = |mut action: Value, execution: &str| {
        action["plan"] = plan();
        action["request"] = hostile_request();
        action["execution"] = json!(execution);
        action
    };
    let inputs = [
        json!({"action": "approval-request", "task_token": "tok", "resolved": hostile_resolved(),
               "fingerprint": hostile(40), "started_at": "2024-05-01T12:32:00Z"}),
        json!({"action": "progress", "stage": hostile(BIG), "message": hostile(BIG),
               "progress": hostile_progress()}),
        json!({"action": "success", "resolved": hostile_resolved(), "progress": hostile_progress(),
               "decision": {"decision": "approve", "scope": "app+database", "approver": hostile(300),
                            "decided_at": "2024-05-01T12:40:00Z", "fingerprint": hostile(100)},
               "smoke": {"passed": true, "started_at": "2024-05-01T13:00:00Z", "elapsed_ms": 40,
                         "budget_exhausted": false, "summary": hostile(BIG),
                         "checks": [{"kind": "http", "name": hostile(BIG), "passed": true,
                                     "elapsed_ms": 12, "attempts": 1, "reason": hostile(BIG)}]}}),
        json!({"action": "failure",
               "error": {"Error": hostile(BIG),
                         "Cause": json!({"errorType": hostile(50), "errorMessage": hostile(BIG)}).to_string()},
               "progress": hostile_progress()}),
        json!({"action": "escalate", "requested_at": "2024-05-01T12:32:00Z",
               "resolved": hostile_resolved()}),
    ];
    for (i, input) in inputs.into_iter().enumerate() {
        let action = input["action"].as_str().unwrap().to_owned();
        let out = handle(
            &clients(&gate),
            &config,
            common(input, &format!("exec-hostile-{i}")),
        )
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
        let (subject, body) = next_envelope(&queue).await;
        assert_eq!(out["subject"].as_str(), Some(subject.as_str()), "{action}");
        assert_subject_safe(&subject);
        assert_body_safe(&body);
        // The content is still there, neutralised, so the engineer sees what was sent.
        assert!(
            body.contains("<script>alert(1)</script>"),
            "{action}: the reason vanished"
        );
        assert!(body.contains("Bcc: victim@example.com"), "{action}");
        if action == "progress" {
            // The stage goes into the subject: one line, no "Bcc:" header of its own.
            assert!(
                subject.starts_with("[rollback] mint-replica: <script>"),
                "{subject}"
            );
        }
        println!("{action}: subject {subject:?}, body {} bytes", body.len());
    }
}

#[tokio::test]
async fn a_hostile_plan_is_refused_before_anything_is_published() {
    let gate = gate(&test_stack("hostile-plan"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("hostile-plan-notices", Delivery::Envelope)
        .await;
    let config = Config::local(&topic_arn, "http://approve.test/", LinkKey::generate());
    for (field, value) in [
        ("/service", json!("<script>alert(1)</script>")),
        ("/service", json!("mint\r\nBcc: victim@example.com")),
        ("/databases/0/id", json!("\"><img src=x onerror=alert(1)>")),
        ("/images/0/repository", json!(hostile(BIG))),
        ("/cluster/deployments/0", json!("a\u{0}b")),
        ("/cluster/namespace", json!("\u{202E}mint")),
    ] {
        let mut plan = plan();
        *plan.pointer_mut(field).unwrap() = value;
        let err = handle(
            &clients(&gate),
            &config,
            json!({"action": "progress", "stage": "x", "plan": plan, "execution": "e"}),
        )
        .await
        .expect_err("a hostile plan was accepted");
        assert_eq!(err.error_name(), "Rollback.InvalidPlan", "{field}: {err}");
        // The refusal names the field and does not echo 100 KB back.
        let text = err.to_string();
        let path = field
            .trim_start_matches('/')
            .replace("/0", "[0]")
            .replace('/', ".");
        assert!(
            text.contains(&path),
            "{field}: {}",
            &text[..text.len().min(300)]
        );
        assert!(text.len() < 2_000, "{field}: error of {} bytes", text.len());
    }
    assert!(
        MotoServer::shared().queue_is_empty(&queue).await,
        "something was published"
    );
}

#[tokio::test]
async fn a_fingerprint_too_big_for_a_link_is_a_typed_error_and_nothing_is_sent() {
    let gate = gate(&test_stack("hostile-fingerprint"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("hostile-fingerprint-approvals", Delivery::Envelope)
        .await;
    let config = Config::local(&topic_arn, "http://approve.test/", LinkKey::generate());
    let err = handle(
        &clients(&gate),
        &config,
        json!({"action": "approval-request", "task_token": "tok", "resolved": hostile_resolved(),
               "fingerprint": hostile(BIG), "plan": plan(), "request": hostile_request(),
               "execution": "exec-big"}),
    )
    .await
    .expect_err("a 100 KB fingerprint fit in a link");
    assert_eq!(err.error_name(), "Rollback.InvalidInput");
    assert!(err.to_string().contains("too long"), "{err}");
    assert!(
        MotoServer::shared().queue_is_empty(&queue).await,
        "a mail without links was published"
    );
}
