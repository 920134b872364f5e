//! `guard` against moto's Step Functions (ListExecutions / DescribeExecution). moto keeps
//! executions RUNNING until stopped (its execution simulation is off by default), which is
//! exactly the "another rollback is in flight" situation. plan runs under its role in
//! infra/template.yaml (the IAM gate); the tests seed through moto directly.

use chrono::Utc;
use rollback_core::ExecutionId;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use rollback_plan::Clients;
use serde_json::{Value, json};

/// The test's own Step Functions client (one moto per test process).
fn moto_sfn() -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&MotoServer::shared().sdk_config())
}

/// plan's clients under its role in a stack named `stack_name`, whose state machine is
/// `<stack_name>-rollback`.
fn plan_under_role(stack_name: &str) -> (IamGate, Clients) {
    let mut stack = test_stack("svc");
    stack.stack_name = stack_name.to_owned();
    let gate = IamGate::start(&MotoServer::shared().endpoint(), "plan", &stack);
    let clients = Clients::new(&gate.sdk_config());
    (gate, clients)
}

const DEFINITION: &str = r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#;

fn plan() -> Value {
    json!({"service": "svc", "images": [{"repository": "svc-app", "release_tag": "prod", "stable_tag": "stable"}]})
}

fn alarm_event(prev: &str, state: &str, at: &str) -> Value {
    json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "id": "e",
           "detail": {"alarmName": "svc-5xx",
                      "state": {"value": state, "reason": "r", "timestamp": at},
                      "previousState": {"value": prev, "reason": "", "timestamp": "2024-05-01T11:00:00.000+0000"}}})
}

/// The stack `name`'s state machine on moto, and plan's clients under that stack's role.
async fn setup(name: &str) -> (IamGate, Clients, String) {
    let arn = moto_sfn()
        .create_state_machine()
        .name(format!("{name}-rollback"))
        .definition(DEFINITION)
        .role_arn("arn:aws:iam::123456789012:role/rollback-test")
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn
        .clone();
    let (gate, clients) = plan_under_role(name);
    (gate, clients, arn)
}

async fn start(sm: &str, name: &str, input: &Value) {
    moto_sfn()
        .start_execution()
        .state_machine_arn(sm)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .expect("start execution");
}

async fn guard(
    clients: &Clients,
    sm: &str,
    me: &str,
    input: &Value,
) -> Result<Value, rollback_core::RollbackError> {
    let dedup = rollback_core::RollbackRequest::from_start_input(input.clone())
        .unwrap()
        .dedup_execution_name();
    rollback_plan::handle(
        clients,
        "",
        json!({"action": "guard", "plan": plan(), "execution": ExecutionId::new(me),
               "state_machine": sm, "started_at": Utc::now(), "dedup_key": dedup}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_earlier_rollback_proceeds_and_the_later_one_is_refused_naming_it() {
    let (_gate, clients, sm) = setup("guard-concurrent").await;
    start(&sm, "a-first", &json!({})).await;
    start(&sm, "b-second", &json!({"reason": "again"})).await;

    let first = guard(&clients, &sm, "a-first", &json!({})).await.unwrap();
    assert_eq!(first["proceed"], true, "{first}");
    assert_eq!(first["running_checked"], 2, "{first}");

    let err = guard(&clients, &sm, "b-second", &json!({"reason": "again"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.ConcurrentRollback");
    assert!(err.to_string().contains("a-first"), "{err}");
    assert!(err.to_string().contains("svc"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_alarm_delivery_ends_quietly() {
    let (_gate, clients, sm) = setup("guard-duplicate").await;
    let event = alarm_event("OK", "ALARM", "2024-05-01T12:00:00.000+0000");
    start(&sm, "a-delivery-1", &event).await;
    start(&sm, "b-delivery-2", &event).await;

    let out = guard(&clients, &sm, "b-delivery-2", &event).await.unwrap();
    assert_eq!(out["proceed"], false, "{out}");
    assert_eq!(out["duplicate_of"], "a-delivery-1", "{out}");
    // A different transition of the same alarm is a second rollback, not a duplicate.
    let later = alarm_event("OK", "ALARM", "2024-05-01T12:30:00.000+0000");
    start(&sm, "c-later", &later).await;
    let err = guard(&clients, &sm, "c-later", &later).await.unwrap_err();
    assert_eq!(err.error_name(), "Rollback.ConcurrentRollback");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_earlier_execution_that_will_not_act_does_not_block() {
    let (_gate, clients, sm) = setup("guard-ignorable").await;
    start(
        &sm,
        "a-back-to-ok",
        &alarm_event("ALARM", "OK", "2024-05-01T12:00:00.000+0000"),
    )
    .await;
    start(&sm, "b-bad-input", &json!({"scope": "nonsense"})).await;
    start(&sm, "c-real", &json!({})).await;
    let out = guard(&clients, &sm, "c-real", &json!({})).await.unwrap();
    assert_eq!(out["proceed"], true, "{out}");
    assert_eq!(out["duplicate_of"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_execution_does_not_block() {
    let (_gate, clients, sm) = setup("guard-stopped").await;
    start(&sm, "a-stopped", &json!({})).await;
    let sfn = moto_sfn();
    let listed = sfn
        .list_executions()
        .state_machine_arn(&sm)
        .send()
        .await
        .unwrap();
    let arn = listed.executions()[0].execution_arn().to_owned();
    sfn.stop_execution()
        .execution_arn(arn)
        .send()
        .await
        .unwrap();
    start(&sm, "b-now", &json!({})).await;
    let out = guard(&clients, &sm, "b-now", &json!({})).await.unwrap();
    assert_eq!(out["proceed"], true, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_state_machine_is_a_typed_aws_error() {
    // The stack's own state machine, never created.
    let (_gate, clients) = plan_under_role("guard-unknown");
    let err = guard(
        &clients,
        "arn:aws:states:us-east-1:123456789012:stateMachine:guard-unknown-rollback",
        "x",
        &json!({}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.AwsError", "{err}");
    assert!(err.to_string().contains("ListExecutions"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fingerprint_matches_core_and_changes_with_the_plan() {
    let (_gate, clients) = plan_under_role("guard-fingerprint");
    let resolved = json!({"images": [{"repository": "svc-app", "release_tag": "prod", "stable_tag": "stable",
                                       "stable_digest": "sha256:aa", "retag_needed": true, "immutable_tags": false}]});
    let call = |resolved: Value| {
        rollback_plan::handle(
            &clients,
            "",
            json!({"action": "fingerprint", "plan": plan(), "execution": "e", "resolved": resolved}),
        )
    };
    let a = call(resolved.clone()).await.unwrap();
    let typed: rollback_core::contract::notify::ResolvedPlan =
        serde_json::from_value(resolved.clone()).unwrap();
    assert_eq!(
        a["fingerprint"],
        rollback_core::fingerprint::fingerprint(&typed)
    );
    let mut changed = resolved;
    changed["images"][0]["stable_digest"] = json!("sha256:bb");
    let b = call(changed).await.unwrap();
    assert_ne!(a["fingerprint"], b["fingerprint"]);
}
