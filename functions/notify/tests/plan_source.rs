//! The approval request names the stored plan the execution runs, `plan: /path@version`, next
//! to the plan fingerprint (notify against moto, under its role).

mod common;

use common::*;
use rollback_core::approval_link::LinkKey;
use rollback_fault_proxy::gate::test_stack;
use rollback_moto::MotoServer;
use rollback_moto::inbox::Delivery;
use rollback_notify::{Config, handle};
use serde_json::json;

#[tokio::test]
async fn the_approval_request_shows_the_plan_parameter_and_version() {
    let gate = gate(&test_stack("notify-plansource"));
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue("notify-plansource-approvals", Delivery::Raw)
        .await;
    let config = Config::local(
        &topic_arn,
        "http://approve.test/approval",
        LinkKey::generate(),
    );
    let plan = json!({"service": "mint-replica",
        "images": [{"repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable"}]});
    let request = json!({"trigger": {"kind": "manual"}, "reason": "bad release",
        "plan_source": {"parameter": "/rollback/plans/mint-replica", "version": 7}});
    handle(
        &clients(&gate),
        &config,
        json!({"action": "approval-request", "task_token": "token-1", "fingerprint": "f1ngerprint",
               "plan": plan, "request": request, "execution": "exec-plan-source"}),
    )
    .await
    .unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    assert!(
        body.contains("Plan fingerprint: f1ngerprint\nplan: /rollback/plans/mint-replica@7\n"),
        "{body}"
    );
    gate.assert_allowed();
}
