//! The execution input names the service whose plan to run: a manual start's `service`, or
//! the stack's EventBridge rule's `{"service": …, "event": <the alarm event>}`.

use rollback_core::plan_store::PlanSource;
use rollback_core::request::{StartInput, Trigger, eventbridge_input};
use rollback_core::{RollbackRequest, Scope};
use serde_json::{Value, json};

fn alarm_event() -> Value {
    json!({
        "version": "0", "id": "evt-1", "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:mint-replica-5xx"],
        "detail": {
            "alarmName": "mint-replica-5xx",
            "state": {"value": "ALARM", "reason": "5xx", "timestamp": "2024-05-01T12:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2024-05-01T11:00:00.000+0000"}
        }
    })
}

#[test]
fn a_manual_start_may_name_the_service() {
    let start =
        StartInput::parse(json!({"service": "mint-replica", "scope": "app+database"})).unwrap();
    assert_eq!(start.service.as_deref(), Some("mint-replica"));
    assert_eq!(start.request.scope, Scope::APP_AND_DATABASE);
    let start = StartInput::parse(json!({})).unwrap();
    assert_eq!(start.service, None);
    assert_eq!(start.request, RollbackRequest::default());
}

#[test]
fn the_rules_wrapped_alarm_event_names_the_service() {
    let wrapped = eventbridge_input("mint-replica", alarm_event());
    let start = StartInput::parse(wrapped.clone()).unwrap();
    assert_eq!(start.service.as_deref(), Some("mint-replica"));
    let Trigger::Alarm(alarm) = &start.request.trigger else {
        panic!("an alarm trigger: {:?}", start.request.trigger);
    };
    assert_eq!(alarm.alarm_name, "mint-replica-5xx");
    // The bare event (a stack with one plan, a redriven event) reads the same, without service.
    let bare = StartInput::parse(alarm_event()).unwrap();
    assert_eq!(bare.service, None);
    assert_eq!(bare.request, start.request);
    assert_eq!(
        RollbackRequest::from_start_input(wrapped).unwrap(),
        start.request
    );
}

#[test]
fn errors_name_the_field() {
    let err = StartInput::parse(json!({"service": "Mint Replica"})).unwrap_err();
    assert!(err.mentions("service"), "{err}");
    let err = StartInput::parse(json!({"service": 7, "scope": "everything"})).unwrap_err();
    assert!(err.mentions("service"), "{err}");
    let mut event = alarm_event();
    event["detail"]["state"]["timestamp"] = json!("yesterday");
    let err = StartInput::parse(eventbridge_input("mint-replica", event)).unwrap_err();
    assert!(err.mentions("event.detail.state.timestamp"), "{err}");
    // An event that is no object is not the rule's input: a manual start's unknown field.
    let err = StartInput::parse(json!({"service": "a", "event": 5})).unwrap_err();
    assert!(err.mentions("event"), "{err}");
    // Anything beside service and event is a manual start with an unknown field.
    let err =
        StartInput::parse(json!({"service": "a", "event": alarm_event(), "x": 1})).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
}

#[test]
fn the_plan_source_is_never_read_from_the_input() {
    let err =
        StartInput::parse(json!({"plan_source": {"parameter": "/p", "version": 1}})).unwrap_err();
    assert!(err.mentions("plan_source"), "{err}");
    // …but travels with the request once validate set it.
    let request = RollbackRequest {
        plan_source: Some(PlanSource {
            parameter: "/rollback/plans/mint-replica".into(),
            version: 3,
        }),
        ..RollbackRequest::default()
    };
    let value = serde_json::to_value(&request).unwrap();
    assert_eq!(
        value["plan_source"],
        json!({"parameter": "/rollback/plans/mint-replica", "version": 3})
    );
    let back: RollbackRequest = serde_json::from_value(value).unwrap();
    assert_eq!(back, request);
    let without = serde_json::to_value(RollbackRequest::default()).unwrap();
    assert!(without.get("plan_source").is_none(), "{without}");
}
