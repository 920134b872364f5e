//! `validate` reads the plan from SSM (moto) at the start of each execution, under the plan
//! role of infra/template.yaml (the IAM gate), in both layouts: the stack's one plan
//! (`RollbackPlanParameter`) and a plan per service under a path (`RollbackPlanPath`). The
//! tests seed and change the parameters through moto directly.

use chrono::Utc;
use rollback_core::plan_store::PlanLocation;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_fault_proxy::iam::StackValues;
use rollback_moto::MotoServer;
use rollback_plan::{Clients, PlanStore, Plans};
use serde_json::{Value, json};

fn moto_ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&MotoServer::shared().sdk_config())
}

fn plan(service: &str, approval_minutes: u32) -> Value {
    json!({"service": service,
           "images": [{"repository": format!("{service}-app"), "release_tag": "prod", "stable_tag": "stable"}],
           "approval": {"timeout_minutes": approval_minutes, "escalate_after_minutes": 10}})
}

/// Stores `value` as `name` (as `rollbackctl plan push` does) and returns the new version.
async fn put(name: &str, value: &Value) -> i64 {
    MotoServer::shared()
        .put_parameter(name, &value.to_string())
        .await
}

/// The stack's one plan at `/<service>/rollback-plan` (test_stack's RollbackPlanParameter).
fn one_plan_stack(service: &str) -> (StackValues, PlanLocation) {
    (
        test_stack(service),
        PlanLocation::Parameter(format!("/{service}/rollback-plan")),
    )
}

/// Plans per service under `/<stack service>/plans`.
fn plan_path_stack(service: &str) -> (StackValues, PlanLocation) {
    let path = format!("/{service}/plans");
    (
        test_stack(service)
            .parameter("RollbackPlanParameter", "")
            .parameter("RollbackPlanPath", &path),
        PlanLocation::Path(path),
    )
}

/// The plan function under its role (the gate), reading from `location`.
fn plan_function(values: &StackValues, location: PlanLocation) -> (IamGate, Clients, PlanStore) {
    let gate = IamGate::start(&MotoServer::shared().endpoint(), "plan", values);
    let config = gate.sdk_config();
    let clients = Clients::new(&config).with_cloudwatch(None);
    let store = PlanStore::new(aws_sdk_ssm::Client::new(&config), location);
    (gate, clients, store)
}

async fn validate(
    clients: &Clients,
    store: &PlanStore,
    execution: &str,
    input: Value,
) -> Result<Value, rollback_core::RollbackError> {
    rollback_plan::handle_with(
        clients,
        Plans::Stored(store),
        json!({"action": "validate", "input": input, "execution": execution}),
    )
    .await
}

/// `validate` refuses `input` with `error_name`, its text naming each of `mentions`.
async fn assert_refused(
    clients: &Clients,
    store: &PlanStore,
    execution: &str,
    input: Value,
    error_name: &str,
    mentions: &[&str],
) {
    let err = validate(clients, store, execution, input)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), error_name, "{err}");
    let text = err.to_string();
    for part in mentions {
        assert!(text.contains(part), "{part:?} in: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_execution_reads_the_version_current_when_it_starts() {
    let (values, location) = one_plan_stack("pst-one");
    let (_gate, clients, store) = plan_function(&values, location);
    let v1 = put("/pst-one/rollback-plan", &plan("pst-one", 60)).await;

    let a = validate(&clients, &store, "exec-a", json!({}))
        .await
        .unwrap();
    assert_eq!(
        a["request"]["plan_source"],
        json!({"parameter": "/pst-one/rollback-plan", "version": v1})
    );
    assert_eq!(a["plan"]["approval"]["timeout_minutes"], 60);
    assert_eq!(a["timing"]["approval_timeout_seconds"], 3600);

    // A new version while A runs: A's state keeps v1; the next execution reads v2.
    let v2 = put("/pst-one/rollback-plan", &plan("pst-one", 30)).await;
    assert_eq!(v2, v1 + 1);
    let b = validate(&clients, &store, "exec-b", json!({"service": "pst-one"}))
        .await
        .unwrap();
    assert_eq!(b["request"]["plan_source"]["version"], v2);
    assert_eq!(b["plan"]["approval"]["timeout_minutes"], 30);
    assert_eq!(a["plan"]["approval"]["timeout_minutes"], 60);

    // A later step of A gets A's state: the plan and plan_source validate put there.
    let later = rollback_core::StepInput::<rollback_core::contract::plan::PlanAction>::parse(
        json!({"action": "fingerprint", "plan": a["plan"], "request": a["request"],
               "execution": "exec-a", "resolved": {}}),
    )
    .unwrap();
    assert_eq!(later.plan.approval.timeout_minutes, 60);
    assert_eq!(
        later.request.plan_source.unwrap().to_string(),
        format!("/pst-one/rollback-plan@{v1}")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_plan_stack_refusals_name_the_field_or_parameter_and_the_fix() {
    let (values, location) = one_plan_stack("pst-refuse");
    let (gate, clients, store) = plan_function(&values, location);

    // Nothing stored yet.
    assert_refused(
        &clients,
        &store,
        "e1",
        json!({}),
        "Rollback.InvalidPlan",
        &[
            "/pst-refuse/rollback-plan does not exist",
            "rollbackctl plan push PLAN.json --parameter /pst-refuse/rollback-plan",
        ],
    )
    .await;

    // Another service than the stack's plan.
    put("/pst-refuse/rollback-plan", &plan("pst-refuse", 60)).await;
    assert_refused(
        &clients,
        &store,
        "e2",
        json!({"service": "payments"}),
        "Rollback.InvalidRequest",
        &[
            "service: \"payments\" is not served here",
            "/pst-refuse/rollback-plan@1",
        ],
    )
    .await;

    // A plan edited by hand into something invalid: every problem, and where it is.
    put(
        "/pst-refuse/rollback-plan",
        &json!({"service": "pst-refuse", "images": [{"repository": "x", "release_tag": "bad tag", "stable_tag": "stable"}]}),
    )
    .await;
    assert_refused(
        &clients,
        &store,
        "e3",
        json!({}),
        "Rollback.InvalidPlan",
        &[
            "the plan in SSM parameter /pst-refuse/rollback-plan@2 is invalid",
            "images[0].release_tag",
        ],
    )
    .await;

    // A SecureString is refused before its (encrypted) value is read as a plan.
    moto_ssm()
        .put_parameter()
        .name("/pst-refuse/rollback-plan")
        .value(plan("pst-refuse", 60).to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    assert_refused(
        &clients,
        &store,
        "e4",
        json!({}),
        "Rollback.InvalidPlan",
        &["is a SecureString; store the plan as a String"],
    )
    .await;
    gate.assert_allowed();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_role_reads_the_stacks_plan_parameter_and_no_other() {
    let (values, _) = one_plan_stack("pst-role");
    let (gate, clients, store) = plan_function(
        &values,
        PlanLocation::Parameter("/pst-role/other-plan".into()),
    );
    put("/pst-role/other-plan", &plan("pst-role", 60)).await;
    let err = validate(&clients, &store, "e1", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.AwsError", "{err}");
    assert!(
        err.to_string()
            .contains("GetParameter /pst-role/other-plan"),
        "{err}"
    );
    let refused = gate.take_violations();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].action, "ssm:GetParameter");
    assert_eq!(
        refused[0].resource,
        "arn:aws:ssm:us-east-1:123456789012:parameter/pst-role/other-plan"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_per_service_under_a_path() {
    let (values, location) = plan_path_stack("pst");
    let (gate, clients, store) = plan_function(&values, location);
    put("/pst/plans/pst-orders", &plan("pst-orders", 60)).await;
    put("/pst/plans/pst-payments", &plan("pst-payments", 45)).await;

    let out = validate(&clients, &store, "e1", json!({"service": "pst-payments"}))
        .await
        .unwrap();
    assert_eq!(out["plan"]["service"], "pst-payments");
    assert_eq!(
        out["request"]["plan_source"],
        json!({"parameter": "/pst/plans/pst-payments", "version": 1})
    );
    // An alarm event as the stack's EventBridge rule delivers it.
    let event = json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "id": "e",
        "detail": {"alarmName": "pst-orders-5xx",
                   "state": {"value": "ALARM", "reason": "r", "timestamp": "2024-05-01T12:00:00.000+0000"},
                   "previousState": {"value": "OK", "reason": "", "timestamp": "2024-05-01T11:00:00.000+0000"}}});
    let out = validate(
        &clients,
        &store,
        "e2",
        rollback_core::request::eventbridge_input("pst-orders", event.clone()),
    )
    .await
    .unwrap();
    assert_eq!(out["plan"]["service"], "pst-orders");
    assert_eq!(out["act"], true);

    // No service: refused naming the field and the plans there are.
    for input in [json!({}), event] {
        let err = validate(&clients, &store, "e3", input).await.unwrap_err();
        assert_eq!(err.error_name(), "Rollback.InvalidRequest");
        let text = err.to_string();
        assert!(text.starts_with("invalid request: service: "), "{text}");
        assert!(
            text.contains("/pst/plans/pst-orders, /pst/plans/pst-payments"),
            "{text}"
        );
    }
    // An unknown service: the parameter it would be, and the ones there are.
    assert_refused(
        &clients,
        &store,
        "e4",
        json!({"service": "pst-checkout"}),
        "Rollback.InvalidRequest",
        &[
            "no plan for service \"pst-checkout\": there is no parameter /pst/plans/pst-checkout",
            "/pst/plans/pst-orders, /pst/plans/pst-payments",
            "rollbackctl plan push PLAN.json --parameter /pst/plans/pst-checkout",
        ],
    )
    .await;

    // A plan stored under another service's name is the plan's problem, not the input's.
    put("/pst/plans/pst-misfiled", &plan("pst-orders", 60)).await;
    assert_refused(
        &clients,
        &store,
        "e5",
        json!({"service": "pst-misfiled"}),
        "Rollback.InvalidPlan",
        &["/pst/plans/pst-misfiled@1 is for service \"pst-orders\""],
    )
    .await;
    gate.assert_allowed();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guard_stops_a_second_rollback_of_the_same_service_only() {
    let (mut values, location) = plan_path_stack("psg");
    values.stack_name = "psg-stack".into();
    let (gate, clients, store) = plan_function(&values, location);
    let sfn = aws_sdk_sfn::Client::new(&MotoServer::shared().sdk_config());
    let sm = sfn
        .create_state_machine()
        .name("psg-stack-rollback")
        .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/rollback-test")
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    for (name, input) in [
        ("a-payments", json!({"service": "psg-payments"})),
        ("b-orders", json!({"service": "psg-orders"})),
        (
            "c-orders",
            json!({"service": "psg-orders", "reason": "again"}),
        ),
        ("d-no-service", json!({})),
    ] {
        sfn.start_execution()
            .state_machine_arn(&sm)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .unwrap();
    }
    let guard = |me: &'static str| {
        let (clients, store, sm) = (&clients, &store, sm.clone());
        async move {
            rollback_plan::handle_with(
                clients,
                Plans::Stored(store),
                json!({"action": "guard", "plan": plan("psg-orders", 60), "execution": me,
                       "state_machine": sm, "started_at": Utc::now()}),
            )
            .await
        }
    };
    // The payments rollback and the input without a service (refused by validate under a
    // plan path) do not block the first orders rollback…
    let out = guard("b-orders").await.unwrap();
    assert_eq!(out["proceed"], true, "{out}");
    // …which blocks the second.
    let err = guard("c-orders").await.unwrap_err();
    assert_eq!(err.error_name(), "Rollback.ConcurrentRollback");
    assert!(err.to_string().contains("b-orders"), "{err}");
    assert!(err.to_string().contains("psg-orders"), "{err}");
    gate.assert_allowed();
}

/// infra/template.yaml: the plan function gets the plan's location, never the plan (no
/// deploy-time dynamic reference), and the alarm rule's input names the service the way
/// `StartInput` reads it.
#[test]
fn the_template_gives_the_location_and_the_rule_names_the_service() {
    let path = rollback_moto::workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("{{resolve:ssm"),
        "a deploy-time dynamic reference is back"
    );
    let template = rollback_fault_proxy::iam::template::template_json(&text).unwrap();
    let variables =
        &template["Resources"]["PlanFunction"]["Properties"]["Environment"]["Variables"];
    assert!(variables.get("ROLLBACK_PLAN").is_none(), "{variables}");
    assert_eq!(
        variables[rollback_plan::PARAMETER_ENV],
        json!({"Fn::If": ["PlansUnderPath", {"Ref": "AWS::NoValue"}, {"Ref": "RollbackPlanParameter"}]})
    );
    assert_eq!(
        variables[rollback_plan::PATH_ENV],
        json!({"Fn::If": ["PlansUnderPath", {"Ref": "RollbackPlanPath"}, {"Ref": "AWS::NoValue"}]})
    );

    let rule = &template["Resources"]["RollbackStateMachine"]["Properties"]["Events"]["AlarmStateChange"]
        ["Properties"];
    let input_template = rule["InputTransformer"]["InputTemplate"]["Fn::Sub"]
        .as_str()
        .expect("the rule's InputTemplate is a !Sub");
    let event = json!({"version": "0", "id": "e", "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {"alarmName": "mint-replica-5xx",
                   "state": {"value": "ALARM", "reason": "r", "timestamp": "2024-05-01T12:00:00.000+0000"},
                   "previousState": {"value": "OK", "reason": "", "timestamp": "2024-05-01T11:00:00.000+0000"}}});
    // What EventBridge delivers: the stack's ServiceName, the whole event as JSON.
    let delivered = input_template
        .replace("${ServiceName}", "mint-replica")
        .replace("<aws.events.event.json>", &event.to_string());
    let delivered: Value = serde_json::from_str(&delivered).expect("the InputTemplate makes JSON");
    assert_eq!(
        delivered,
        rollback_core::request::eventbridge_input("mint-replica", event)
    );
    let start = rollback_core::request::StartInput::parse(delivered).unwrap();
    assert_eq!(start.service.as_deref(), Some("mint-replica"));
}
