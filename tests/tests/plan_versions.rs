//! The plan is read at run time, from SSM: two executions of the real definition on the local
//! engine, with the plan parameter changed between their starts. The real plan function reads
//! the parameter (moto, under its role from infra/template.yaml); every later step of each
//! execution gets exactly the plan, and the parameter version, that execution started with.

use rollback_core::Plan;
use rollback_core::plan_store::PlanLocation;
use rollback_e2e::*;
use rollback_engine::ExecutionStatus;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use serde_json::{Value, json};

/// The drill-style stack `mint-replica`: its one plan is `/mint-replica/rollback-plan`.
const PARAMETER: &str = "/mint-replica/rollback-plan";

async fn put(text: &str) -> i64 {
    MotoServer::shared().put_parameter(PARAMETER, text).await
}

/// What every step of an execution that read `text` at `version` must receive.
fn expected(text: &str, version: i64) -> (Value, Value) {
    let plan = serde_json::to_value(Plan::from_json(text).unwrap()).unwrap();
    (plan, json!({"parameter": PARAMETER, "version": version}))
}

/// Every call of `execution` after `validate` carries `plan` and `plan_source`; returns how
/// many calls were checked.
fn assert_every_step_used(h: &Harness, execution: &str, plan: &Value, source: &Value) -> usize {
    let calls = h.calls(execution);
    assert!(calls[0].is("plan", "validate"), "{:?}", pairs(&calls));
    for call in &calls[1..] {
        assert_eq!(
            &call.payload["plan"], plan,
            "state '{}' ({}:{}) of {execution} got another plan",
            call.state, call.function, call.action
        );
        assert_eq!(
            &call.payload["request"]["plan_source"], source,
            "state '{}' ({}:{}) of {execution}",
            call.state, call.function, call.action
        );
    }
    calls.len() - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_execution_keeps_the_plan_version_it_started_with() {
    let gate = IamGate::start(
        &MotoServer::shared().endpoint(),
        "plan",
        &test_stack("mint-replica"),
    );
    let h = Harness::scripted();
    h.script.set_plan_store(rollback_plan::PlanStore::new(
        aws_sdk_ssm::Client::new(&gate.sdk_config()),
        PlanLocation::Parameter(PARAMETER.into()),
    ));

    let v1_text = plan_text();
    let v1 = put(&v1_text).await;
    let input =
        json!({"service": "mint-replica", "scope": "app+database", "reason": "bad release"});
    let a = h.start(input.clone());
    let a_request = h.approval_request(&a).await;

    // A new plan version while A waits for its approval: a shorter approval timeout, and one
    // deployment fewer.
    let mut v2_doc: Value = serde_json::from_str(&v1_text).unwrap();
    v2_doc["approval"] = json!({"timeout_minutes": 30, "escalate_after_minutes": 10});
    v2_doc["cluster"]["deployments"] = json!(["backend-deployment"]);
    let v2_text = v2_doc.to_string();
    let v2 = put(&v2_text).await;
    assert_eq!(v2, v1 + 1);
    let a_calls_before_v2 = h.calls(&a).len();

    let b = h.start(input);
    let b_request = h.approval_request(&b).await;
    h.approve(&a_request, rollback_core::Scope::APP_AND_DATABASE);
    h.approve(&b_request, rollback_core::Scope::APP_AND_DATABASE);
    for execution in [&a, &b] {
        let d = h.finish(execution).await;
        assert_eq!(d.status, ExecutionStatus::Succeeded, "{execution}");
    }

    let (plan_v1, source_v1) = expected(&v1_text, v1);
    let (plan_v2, source_v2) = expected(&v2_text, v2);
    assert_ne!(plan_v1, plan_v2);
    assert_every_step_used(&h, &a, &plan_v1, &source_v1);
    let checked_b = assert_every_step_used(&h, &b, &plan_v2, &source_v2);
    // A did its work after the approval (pause, restore, retag, undo, smoke, notice) after v2
    // was stored.
    let a_total = h.calls(&a).len();
    assert!(
        a_total >= a_calls_before_v2 + 5,
        "{a_total} calls, {a_calls_before_v2} before v2"
    );
    assert!(checked_b > 5, "{checked_b}");
    // The undo of each execution covered its own plan's deployments.
    let undone = |execution: &str| -> usize {
        h.calls(execution)
            .iter()
            .find(|c| c.is("deploy-undo", "undo"))
            .map(|c| {
                c.payload["plan"]["cluster"]["deployments"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .expect("an undo")
    };
    assert_eq!((undone(&a), undone(&b)), (2, 1));
    gate.assert_allowed();
}
