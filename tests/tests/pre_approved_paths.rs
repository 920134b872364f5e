//! The pre-approved path (`approval.auto_approve_app_only`) on the engine: an app-only rollback
//! started by a named alarm goes ahead without a person, after a grace period in which the
//! emailed "stop it now" link ends it with nothing changed; databases always wait for people.

use rollback_core::contract::notify::NotifyAction;
use rollback_core::decision::Identity;
use rollback_core::{Scope, StepInput};
use rollback_e2e::*;
use rollback_engine::ExecutionStatus;
use serde_json::{Value, json};

/// The example plan with the policy (the alarm the tests fire, `grace_seconds`).
fn plan_with_policy(grace_seconds: u32) -> String {
    let mut plan: Value = serde_json::from_str(&plan_text()).unwrap();
    plan["approval"]["auto_approve_app_only"] =
        json!({"alarms": ["mint-replica-5xx"], "grace_seconds": grace_seconds});
    plan.to_string()
}

fn alarm() -> Value {
    alarm_event("OK", "ALARM", "2024-05-01T12:00:00Z", "evt-pre-1")
}

/// Up to the pre-approval: an alarm start (scope app: no database is resolved or backed up).
fn until_pre_approval() -> Vec<Expect> {
    vec![
        One("plan", "validate"),
        One("plan", "guard"),
        One("notify", "progress"),
        One("retag", "resolve"),
        One("deploy-undo", "resolve"),
        One("plan", "fingerprint"),
        One("plan", "pre-approve"),
    ]
}

fn with(mut head: Vec<Expect>, tail: impl IntoIterator<Item = Expect>) -> Vec<Expect> {
    head.extend(tail);
    head
}

const APP_ROLLBACK: [Expect; 6] = [
    One("retag", "apply"),
    One("deploy-undo", "undo"),
    One("deploy-undo", "status"),
    One("smoke-test", "run"),
    One("notify", "report"),
    One("notify", "success"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_approved_app_rollback_goes_ahead_after_the_grace_period() {
    let h = Harness::scripted_with_signer(&plan_with_policy(60));
    let exec = h.start(alarm());
    let email = h.approval_request(&exec).await;
    let grace = &email.payload["pre_approved"];
    assert_eq!(grace["grace_seconds"], 60, "{}", email.payload);
    assert!(
        grace["reason"]
            .as_str()
            .unwrap()
            .contains("alarm mint-replica-5xx"),
        "{grace}"
    );
    // Nobody answers: the grace period passes (time stands still while a token waits, until
    // moved) and the policy's decision stands.
    let clock = h.engine.clock(&exec).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !h.calls(&exec).iter().any(is_destructive),
        "nothing before the grace period ends"
    );
    clock.advance(std::time::Duration::from_secs(61));
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &with(
            with(until_pre_approval(), [One("notify", "approval-request")]),
            APP_ROLLBACK,
        ),
    );
    assert_nothing_destructive_before_approval(&calls, true);
    let states = h.states(&exec);
    assert!(states.contains(&"Take the policy decision".to_owned()));
    assert!(
        !states.contains(&"Request approval".to_owned()),
        "{states:?}"
    );

    let notice = the_notice(&calls, "success");
    let step = StepInput::<NotifyAction>::parse(notice.payload.clone()).unwrap();
    let NotifyAction::Success(success) = step.action else {
        panic!("not a success notice")
    };
    let decision = success.decision.expect("the policy's decision");
    assert_eq!(decision.scope, Scope::APP);
    assert_eq!(decision.identity, Identity::PlanPolicy);
    assert_eq!(
        decision.approver,
        rollback_plan::preapprove::POLICY_APPROVER,
        "the notices and the report name the policy"
    );
    // The signed decision the destructive steps were given names the same policy.
    let apply = calls.iter().find(|c| c.is("retag", "apply")).unwrap();
    let signed = apply.payload["approval"]["decision"].as_str().unwrap();
    let claims = rollback_moto_claims(signed);
    assert_eq!(claims["identity"], "plan-policy");
    assert_eq!(claims["scope"], "app");
}

/// The signed decision's claims (its first part), without verifying: the functions' own tests
/// verify signatures.
fn rollback_moto_claims(signed: &str) -> Value {
    use base64::Engine;
    let claims = signed.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_it_now_inside_the_grace_period_changes_nothing() {
    let h = Harness::scripted_with_signer(&plan_with_policy(60));
    let exec = h.start(alarm());
    let email = h.approval_request(&exec).await;
    h.reject(&email);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(h.states(&exec).last().unwrap(), "Rollback rejected");
    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &with(
            until_pre_approval(),
            [
                One("notify", "approval-request"),
                One("notify", "report"),
                One("notify", "progress"),
            ],
        ),
    );
    assert!(!calls.iter().any(is_destructive), "{:?}", pairs(&calls));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_grace_period_goes_ahead_without_an_email() {
    let h = Harness::scripted_with_signer(&plan_with_policy(0));
    let exec = h.start(alarm());
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_calls(&h.calls(&exec), &with(until_pre_approval(), APP_ROLLBACK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_still_wait_for_people() {
    let h = Harness::scripted_with_signer(&plan_with_policy(60));
    let exec = h.start(json!({
        "scope": "app+database",
        "reason": "bad migration in v42",
        "requested_by": "oncall@example.com"
    }));
    let request = h.approval_request(&exec).await;
    assert!(
        request.payload.get("pre_approved").is_none(),
        "a database rollback is not pre-approved: {}",
        request.payload
    );
    let calls = h.calls(&exec);
    assert!(calls.iter().any(|c| c.is("plan", "pre-approve")));
    assert!(!calls.iter().any(is_destructive), "{:?}", pairs(&calls));
    h.reject(&request);
    assert_eq!(h.finish(&exec).await.status, ExecutionStatus::Succeeded);
}

/// Without the policy the plan function is not even asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_without_the_policy_never_asks() {
    let h = Harness::scripted();
    let exec = h.start(alarm());
    let request = h.approval_request(&exec).await;
    assert!(request.payload.get("pre_approved").is_none());
    assert!(!h.calls(&exec).iter().any(|c| c.is("plan", "pre-approve")));
    h.reject(&request);
    assert_eq!(h.finish(&exec).await.status, ExecutionStatus::Succeeded);
}
