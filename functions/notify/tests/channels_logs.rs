//! Neither the Statuspage API key nor the Slack webhook URL (a secret) reaches the logs, even at
//! TRACE (which also records what the AWS SDK and the HTTP client log), nor the output — when
//! the channels work, when they are refused, and when an answer is lost. Mirrors
//! functions/approval/tests/logs.rs (its own test binary: the capture is global).

mod common;

use common::*;
use rollback_channels::{Fault, SlackWebhook, StatuspageServer};
use rollback_core::approval_link::LinkKey;
use rollback_fault_proxy::gate::test_stack;
use rollback_moto::MotoServer;
use rollback_moto::inbox::Delivery;
use rollback_moto::log_capture::capture_all_logs;
use rollback_notify::{Config, handle};
use serde_json::json;

const KEY: &str = "sp-live-key-7f3c9a1e";

#[tokio::test]
async fn channel_credentials_never_reach_the_logs() {
    let logs = capture_all_logs();
    let service = "notify-ch-logs";
    let page = StatuspageServer::start("logpage1", KEY).await;
    let slack = SlackWebhook::start().await;
    seed_channel_secrets(service, KEY, &slack.url()).await;
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue(&format!("{service}-notices"), Delivery::Raw)
        .await;
    let plan = json!({
        "service": service,
        "images": [{"repository": "logs-backend", "release_tag": "prod", "stable_tag": "stable"}],
        "channels": {
            "statuspage": {"page_id": "logpage1", "api_key_secret": format!("notice-channels/{service}/statuspage"), "api_base": page.api_base()},
            "slack": {"webhook_secret": format!("notice-channels/{service}/slack")}
        }
    });
    let gate = gate(&test_stack(service));
    let config = Config::local(
        &topic_arn,
        "http://approve.test/approval",
        LinkKey::generate(),
    );
    let mut outputs = Vec::new();
    let steps = [
        ("approved, rolling back", None),
        ("rolled back, verifying", Some(Fault::AnswerLostAfter)),
        ("rolled back, verifying", Some(Fault::ErrorAfter)),
    ];
    for (stage, fault) in steps {
        if let Some(fault) = fault {
            page.inject("PATCH", "/incidents/", fault, 1);
            slack.inject(fault, 1);
        }
        let out = handle(
            &clients(&gate),
            &config,
            json!({"action": "progress", "stage": stage, "plan": plan, "execution": "exec-logs-1"}),
        )
        .await
        .unwrap();
        MotoServer::shared().next_message(&queue).await;
        outputs.push(out.to_string());
    }
    // Statuspage throttles both looks: the failure is logged and returned.
    page.inject("GET", "/unresolved", Fault::Throttle, 2);
    let out = handle(
        &clients(&gate),
        &config,
        json!({"action": "success", "plan": plan, "execution": "exec-logs-1"}),
    )
    .await
    .unwrap();
    MotoServer::shared().next_message(&queue).await;
    outputs.push(out.to_string());

    let text = logs.text();
    assert!(
        text.contains("notice channel done"),
        "the channels log what they did"
    );
    assert!(text.contains("notice channel failed"), "and what failed");
    let secret_path = slack.url().rsplit('/').next().unwrap().to_owned();
    for (what, secret) in [("API key", KEY), ("webhook path", secret_path.as_str())] {
        assert!(!text.contains(secret), "the {what} is in the logs");
        for out in &outputs {
            assert!(!out.contains(secret), "the {what} is in an output: {out}");
        }
    }
    // The calls did carry them.
    assert!(
        page.calls()
            .iter()
            .filter(|c| c.fault != Some(Fault::Throttle))
            .all(|c| c.authorized)
    );
    assert!(!slack.messages().is_empty());
}
