//! `rollbackctl approve`: an approval from the command line is signed with the stack's decision
//! key (the destructive functions verify it) under the operator's credentials, or refused with
//! the way to approve; a plan that asks two people cannot be approved by one from here.

use std::collections::BTreeMap;
use std::time::Duration;

use rollback_core::decision::{DecisionSigner, DecisionVerifier};
use rollback_engine::{Engine, LambdaRegistry, Mode};
use serde_json::{Value, json};

/// An execution waiting in a waitForTaskToken task shaped like the definition's approval task.
async fn waiting(plan: Value) -> (Engine, rollback_engine::Server, String) {
    let registry = LambdaRegistry::new();
    registry.register("ask", |_payload: Value, _req| async { Ok(json!({})) });
    let (engine, server) = rollback_engine::serve_on_loopback(registry, Mode::Embedded)
        .await
        .expect("the engine's endpoint binds");
    let definition = json!({
        "StartAt": "Ask for approval",
        "States": {"Ask for approval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "ask", "Payload": {
                "action": "approval-request",
                "task_token.$": "$$.Task.Token",
                "plan.$": "$.plan",
                "fingerprint": "resolved-fingerprint"
            }},
            "End": true
        }}
    });
    let machine = engine
        .create_state_machine(
            "cli-approve",
            &definition.to_string(),
            "arn:aws:iam::123456789012:role/r",
            &BTreeMap::new(),
        )
        .unwrap();
    let (execution, _) = engine
        .start_execution(
            &machine.arn,
            Some("cli-approve-1"),
            Some(&json!({"plan": plan}).to_string()),
        )
        .unwrap();
    // Until the task is scheduled (5 s at most).
    let client = sfn(&server).await;
    for _ in 0..50 {
        let events = rollbackctl::ops::history(&client, &execution)
            .await
            .unwrap();
        if rollbackctl::ops::pending_approval(&events).is_some() {
            return (engine, server, execution);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{execution} never waited for its approval");
}

/// Step Functions at the engine, as `rollbackctl --endpoint-url` reaches it.
async fn sfn(server: &rollback_engine::Server) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&rollbackctl::ops::sdk_config(Some(&server.url)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_signs_with_the_decision_key_or_says_how_to_approve() {
    let plan = json!({"service": "mint-replica", "images": [
        {"repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable"}]});
    let (engine, server, execution) = waiting(plan.clone()).await;
    let sfn = sfn(&server).await;
    let moto = rollback_moto::MotoServer::shared();
    let kms = aws_sdk_kms::Client::new(&moto.sdk_config());

    let refused = rollbackctl::ops::decide(&sfn, &execution, true, "app", "ops@example.com", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("--decision-key"), "{refused}");

    let signer = DecisionSigner::new(kms.clone(), moto.decision_key());
    rollbackctl::ops::decide(
        &sfn,
        &execution,
        true,
        "app",
        "ops@example.com",
        Some(&signer),
    )
    .await
    .unwrap();
    let done = engine
        .wait_for_completion(&execution, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status.as_str(), "SUCCEEDED", "{done:?}");
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    let claims = DecisionVerifier::new(kms, moto.decision_key())
        .key()
        .await
        .unwrap()
        .open(output["signed"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.execution, "cli-approve-1");
    assert_eq!(claims.approvers, ["ops@example.com"]);
    assert_eq!(claims.fingerprint, "resolved-fingerprint");
    let plan: rollback_core::Plan = serde_json::from_value(plan).unwrap();
    assert_eq!(
        claims.plan_fingerprint,
        rollback_core::fingerprint::fingerprint(&plan)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_asks_two_people_is_not_approved_by_one_from_the_command_line() {
    let plan = json!({"service": "mint-replica",
        "databases": [{"kind": "rds-instance", "id": "mint-replica-db"}],
        "approval": {"database_approvers": 2}});
    let (_engine, server, execution) = waiting(plan).await;
    let moto = rollback_moto::MotoServer::shared();
    let signer = DecisionSigner::new(
        aws_sdk_kms::Client::new(&moto.sdk_config()),
        moto.decision_key(),
    );
    let refused = rollbackctl::ops::decide(
        &sfn(&server).await,
        &execution,
        true,
        "app+database",
        "ops@example.com",
        Some(&signer),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("asks 2 different people"), "{refused}");
}
