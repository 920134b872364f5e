//! The infrastructure paths of `statemachine/rollback.asl.json` on the local engine, with the
//! functions scripted: the Terraform plan is made and summarized before the approval request,
//! applied only when the decision covers infrastructure, and a stale plan or a failed
//! planning step each end where they should.

use rollback_core::contract::infra::InfrastructureResolution;
use rollback_core::contract::notify::{NotifyAction, StepStatus};
use rollback_core::{Scope, StepInput};
use rollback_e2e::script::failure;
use rollback_e2e::*;
use rollback_engine::ExecutionStatus;
use serde_json::{Value, json};

/// The example plan with an `infrastructure` section.
fn plan_with_infrastructure() -> String {
    let mut plan: Value = serde_json::from_str(&plan_text()).unwrap();
    plan["infrastructure"] = json!({
        "codebuild_project": "mint-replica-terraform",
        "stable_commit_parameter": "/mint-replica/terraform/stable-commit",
        "current_commit_parameter": "/mint-replica/terraform/current-commit",
        "artifact_bucket": "mint-replica-terraform-plans"
    });
    plan.to_string()
}

fn request() -> Value {
    json!({"scope": "app+database", "reason": "bad release v42", "requested_by": "oncall@example.com"})
}

/// What the approval request showed.
fn resolved_infrastructure(request: &Call) -> Option<InfrastructureResolution> {
    serde_json::from_value(request.payload["resolved"]["infrastructure"].clone()).unwrap()
}

const PLANNING: [(&str, &str); 4] = [
    ("infra", "resolve"),
    ("infra", "plan"),
    ("infra", "status"),
    ("infra", "summary"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_is_shown_before_approval_and_applied_after_it() {
    let h = Harness::scripted_with(&plan_with_infrastructure());
    let exec = h.start(request());
    let approval = h.approval_request(&exec).await;
    let calls = h.calls(&exec);
    let before: Vec<(String, String)> = pairs(&calls)
        .into_iter()
        .filter(|(f, _)| f == "infra")
        .collect();
    let planning: Vec<(String, String)> = PLANNING
        .iter()
        .map(|(f, a)| (f.to_string(), a.to_string()))
        .collect();
    assert_eq!(before, planning, "planned before the approval request");
    let shown = resolved_infrastructure(&approval).expect("the approver sees the plan");
    assert_eq!(
        shown.summary.as_ref().map(|s| (s.add, s.change, s.destroy)),
        Some((1, 2, 0))
    );
    // The fingerprint the approver approves covers what was shown, infrastructure included.
    let fingerprinted = calls.iter().find(|c| c.is("plan", "fingerprint")).unwrap();
    assert_eq!(
        fingerprinted.payload["resolved"]["infrastructure"],
        approval.payload["resolved"]["infrastructure"]
    );

    h.approve(&approval, Scope::APP_AND_DATABASE.and_infrastructure(false));
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    assert_nothing_destructive_before_approval(&calls, true);
    let apply = calls
        .iter()
        .find(|c| c.is("infra", "apply"))
        .expect("applied");
    // Exactly the approved plan, with the decision and the resolved document it approved.
    assert_eq!(
        apply.payload["infrastructure"],
        approval.payload["resolved"]["infrastructure"]
    );
    assert_eq!(
        apply.payload["approval"]["resolved"]["infrastructure"],
        approval.payload["resolved"]["infrastructure"]
    );
    let notice = the_notice(&calls, "success");
    let NotifyAction::Success(success) = StepInput::<NotifyAction>::parse(notice.payload)
        .unwrap()
        .action
    else {
        panic!("not a success notice")
    };
    let steps = step_statuses(&success.progress.unwrap());
    assert_eq!(steps["infrastructure"], StepStatus::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_infrastructure_in_the_decision_nothing_is_applied() {
    let h = Harness::scripted_with(&plan_with_infrastructure());
    let exec = h.start(request());
    let approval = h.approval_request(&exec).await;
    h.approve(&approval, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    assert!(
        !calls.iter().any(|c| c.is("infra", "apply")),
        "{:?}",
        pairs(&calls)
    );
    let notice = the_notice(&calls, "success");
    let NotifyAction::Success(success) = StepInput::<NotifyAction>::parse(notice.payload)
        .unwrap()
        .action
    else {
        panic!("not a success notice")
    };
    assert_eq!(
        step_statuses(&success.progress.unwrap())["infrastructure"],
        StepStatus::Skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_plan_at_apply_ends_in_the_contingency_notice() {
    let h = Harness::scripted_with(&plan_with_infrastructure());
    h.script.on("infra", "status", |call, _| {
        (call.payload["build"]["purpose"] == "apply").then(|| {
            Err(failure(
                "Rollback.PlanStale",
                "the approved Terraform plan is stale: Terraform refused the saved plan; re-plan and approve again",
            ))
        })
    });
    let exec = h.start(request());
    let approval = h.approval_request(&exec).await;
    h.approve(&approval, Scope::APP_AND_DATABASE.and_infrastructure(false));
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    let calls = h.calls(&exec);
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.PlanStale");
    assert!(
        notice.error.cause.contains("re-plan and approve again"),
        "{}",
        notice.error.cause
    );
    let steps = step_statuses(&notice.progress);
    assert_eq!(steps["infrastructure"], StepStatus::Failed);
    // The other branches finished; the notice says so.
    assert_eq!(steps["images"], StepStatus::Done);
    assert_eq!(steps["databases"], StepStatus::Done);
    // After the failed branch nothing else changed the deployments.
    assert!(!calls.iter().any(|c| c.is("deploy-undo", "undo")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_plan_build_leaves_infrastructure_out_and_the_app_rollback_goes_on() {
    let h = Harness::scripted_with(&plan_with_infrastructure());
    h.script.on("infra", "status", |_, _| {
        Some(Err(failure(
            "Rollback.InfrastructureFailed",
            "infrastructure: the plan build mint-replica-terraform:1 of commit abc ended FAILED",
        )))
    });
    let exec = h.start(request());
    let approval = h.approval_request(&exec).await;
    let shown = resolved_infrastructure(&approval).expect("the approver is told");
    let error = shown.plan_error.expect("why there is no plan");
    assert_eq!(error.error, "Rollback.InfrastructureFailed");
    assert!(shown.summary.is_none());
    assert!(!h.calls(&exec).iter().any(|c| c.is("infra", "summary")));

    // Even a decision that names infrastructure applies nothing: there is no plan.
    h.approve(&approval, Scope::APP_AND_DATABASE.and_infrastructure(false));
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert!(!h.calls(&exec).iter().any(|c| c.is("infra", "apply")));
}
