//! The mobile paths of `statemachine/rollback.asl.json` on the local engine, with the
//! functions scripted: the store releases are read before the approval request and shown,
//! halted only when the decision covers mobile, and a store's refusal or an unreadable store
//! never stops the app rollback.

use rollback_core::contract::mobile::MobileResolution;
use rollback_core::contract::notify::{NotifyAction, StepStatus, SuccessNotice};
use rollback_core::{Scope, StepInput};
use rollback_e2e::script::failure;
use rollback_e2e::*;
use rollback_engine::ExecutionStatus;
use serde_json::{Value, json};

/// The example plan with a `mobile` section (Android only).
fn plan_with_mobile() -> String {
    let mut plan: Value = serde_json::from_str(&plan_text()).unwrap();
    plan["mobile"] = json!({"android": {
        "package_name": "com.mintreplica.app",
        "credentials_secret": "store-credentials/mint-replica/google-play"
    }});
    plan.to_string()
}

fn request() -> Value {
    json!({"reason": "bad release v42", "requested_by": "oncall@example.com"})
}

fn shown(request: &Call) -> MobileResolution {
    serde_json::from_value(request.payload["resolved"]["mobile"].clone()).unwrap()
}

fn success_notice(calls: &[Call]) -> SuccessNotice {
    let notice = the_notice(calls, "success");
    let NotifyAction::Success(success) = StepInput::<NotifyAction>::parse(notice.payload)
        .unwrap()
        .action
    else {
        panic!("not a success notice")
    };
    success
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_releases_are_shown_before_approval_and_halted_after_it() {
    let h = Harness::scripted_with(&plan_with_mobile());
    let exec = h.start(request());
    let approval = h.approval_request(&exec).await;
    let calls = h.calls(&exec);
    let mobile: Vec<_> = pairs(&calls)
        .into_iter()
        .filter(|(f, _)| f == "mobile")
        .collect();
    assert_eq!(mobile, [("mobile".to_owned(), "resolve".to_owned())]);
    let resolution = shown(&approval);
    assert_eq!(
        resolution
            .android
            .as_ref()
            .unwrap()
            .to_halt
            .as_ref()
            .unwrap()
            .version_codes,
        ["42"]
    );
    let fingerprinted = calls.iter().find(|c| c.is("plan", "fingerprint")).unwrap();
    assert_eq!(
        fingerprinted.payload["resolved"]["mobile"], approval.payload["resolved"]["mobile"],
        "the fingerprint covers what the approver saw"
    );

    h.approve(&approval, Scope::APP.and_mobile());
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    assert_nothing_destructive_before_approval(&calls, true);
    let halt = calls
        .iter()
        .find(|c| c.is("mobile", "halt"))
        .expect("halted");
    assert_eq!(
        halt.payload["mobile"],
        approval.payload["resolved"]["mobile"]
    );
    assert_eq!(
        halt.payload["approval"]["resolved"]["mobile"],
        approval.payload["resolved"]["mobile"]
    );
    assert!(calls.iter().any(|c| c.is("mobile", "raise-minimum")));
    let steps = step_statuses(&success_notice(&calls).progress.unwrap());
    assert_eq!(steps["mobile"], StepStatus::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mobile_in_the_decision_the_stores_are_left_alone() {
    let h = Harness::scripted_with(&plan_with_mobile());
    let exec = h.start(request());
    let approval = h.approval_request(&exec).await;
    h.approve(&approval, Scope::APP);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    assert!(
        !calls
            .iter()
            .any(|c| c.is("mobile", "halt") || c.is("mobile", "raise-minimum")),
        "{:?}",
        pairs(&calls)
    );
    let steps = step_statuses(&success_notice(&calls).progress.unwrap());
    assert_eq!(steps["mobile"], StepStatus::Skipped);
}

/// A store that refuses (a review in progress) fails the mobile step, not the rollback: the
/// deployments are still undone and the notice says the stores need a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_halt_fails_the_mobile_step_and_the_app_rollback_goes_on() {
    let h = Harness::scripted_with(&plan_with_mobile());
    h.script.on("mobile", "halt", |_, _| {
        Some(Err(failure(
            "Rollback.StoreRefused",
            "Google Play refused the commit: you already have changes in review",
        )))
    });
    let exec = h.start(request());
    let approval = h.approval_request(&exec).await;
    h.approve(&approval, Scope::APP.and_mobile());
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    assert!(calls.iter().any(|c| c.is("deploy-undo", "undo")));
    assert!(!calls.iter().any(|c| c.is("mobile", "raise-minimum")));
    let success = success_notice(&calls);
    let record = success.progress.unwrap();
    let mobile = record.steps.iter().find(|s| s.name == "mobile").unwrap();
    assert_eq!(mobile.status, StepStatus::Failed);
    assert!(
        mobile.detail.contains("Rollback.StoreRefused"),
        "{}",
        mobile.detail
    );
    assert_eq!(step_statuses(&record)["undo"], StepStatus::Done);
}

/// Stores that cannot be read before the approval: the approver is told, and even a decision
/// naming mobile halts nothing (nothing was shown to approve).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_stores_leave_mobile_out_and_the_app_rollback_goes_on() {
    let h = Harness::scripted_with(&plan_with_mobile());
    h.script.on("mobile", "resolve", |_, _| {
        Some(Err(failure(
            "Rollback.StoreCredentials",
            "store-credentials/mint-replica/google-play: the token endpoint answered 401",
        )))
    });
    let exec = h.start(request());
    let approval = h.approval_request(&exec).await;
    let resolution = shown(&approval);
    assert!(resolution.android.is_none());
    assert_eq!(
        resolution.error.as_ref().map(|e| e.error.as_str()),
        Some("Rollback.StoreCredentials")
    );
    h.approve(&approval, Scope::APP.and_mobile());
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    assert!(!calls.iter().any(|c| c.is("mobile", "halt")));
    let steps = step_statuses(&success_notice(&calls).progress.unwrap());
    assert_eq!(steps["mobile"], StepStatus::Skipped);
    assert_eq!(steps["undo"], StepStatus::Done);
}
