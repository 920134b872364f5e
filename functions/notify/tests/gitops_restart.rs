//! What the approver and the on-call engineer read about tag-pinned deployments (restarted
//! after the retag; pull policies that keep a cached image) and GitOps controllers (suspended
//! before the undo, never resumed automatically, each with its exact resume command). The
//! renderers are pure, so these tests need no moto.

use chrono::{DateTime, Utc};
use rollback_core::approval_link::LinkKey;
use rollback_core::contract::notify::{
    ApprovalRequest, FailureNotice, ResolvedPlan, SuccessNotice,
};
use rollback_core::{ExecutionId, Plan, RollbackRequest};
use rollback_notify::render::{self, Context};
use serde_json::{Value, json};

fn plan(gitops: Value) -> Plan {
    Plan::from_value(json!({
        "service": "mint-replica",
        "images": [{"repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable"}],
        "cluster": {"name": "mint-eks", "namespace": "mint", "deployments": ["backend-deployment"], "gitops": gitops},
        "approval": {"timeout_minutes": 60, "escalate_after_minutes": 15}
    }))
    .unwrap()
}

fn request() -> RollbackRequest {
    serde_json::from_value(
        json!({"trigger": {"kind": "manual"}, "reason": "5xx after v42", "scope": "app"}),
    )
    .unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T12:40:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mint-replica-backend:prod";

fn resolved() -> ResolvedPlan {
    serde_json::from_value(json!({
        "deployments": [{
            "name": "backend-deployment", "namespace": "mint", "current_revision": 7,
            "target_revision": 6, "current_images": [IMAGE], "target_images": [IMAGE],
            "replicas": 3, "matches_stable": true, "restart_needed": true,
            "pull_policy_keeps_cache": true
        }]
    }))
    .unwrap()
}

/// Renders with `plan`, [`request`], execution `exec-1` and [`now`].
fn with_ctx<T>(plan: &Plan, f: impl FnOnce(&Context<'_>) -> T) -> T {
    let request = request();
    let execution = ExecutionId::new("exec-1");
    f(&Context {
        plan,
        request: &request,
        execution: &execution,
        now: now(),
    })
}

/// The command that resumes Argo CD Application argocd/mint-replica with `previous` policy.
fn argo_resume(previous: &str) -> String {
    rollback_core::contract::deploy_undo::gitops_resume_command(
        rollback_core::plan::GitOpsKind::Argocd,
        "argocd",
        "mint-replica",
        Some(previous),
    )
}

fn approval_body(plan: &Plan) -> String {
    let approval: ApprovalRequest = serde_json::from_value(json!({
        "task_token": "token", "resolved": resolved(), "approval_url": "http://approve.test/"
    }))
    .unwrap();
    with_ctx(plan, |ctx| {
        rollback_notify::approval::render(
            ctx,
            &approval,
            &rollback_notify::approval::ApprovalPage {
                url: "http://approve.test/",
                key: &LinkKey::generate(),
                login: false,
            },
        )
        .unwrap()
        .message
        .body
    })
}

#[test]
fn the_approval_email_says_pods_restart_after_the_retag_and_warns_about_the_pull_policy() {
    let body = approval_body(&plan(json!([])));
    println!("{body}");
    assert!(
        body.contains(&format!(
            "    TAG-PINNED: both revisions run {IMAGE}, so undo alone does not change the \
             image: pods will be restarted after the retag so they pull the stable image (like \
             kubectl rollout restart)"
        )),
        "{body}"
    );
    assert!(
        body.contains(
            "    WARNING: its containers run a tag the retag moves with an imagePullPolicy other \
             than Always (IfNotPresent is the default for a tag): a node that cached the bad \
             image keeps running it after the retag, restart or not. Fix: pin the image by \
             digest, or set imagePullPolicy: Always."
        ),
        "{body}"
    );
    assert!(
        !body.contains("GitOps"),
        "no GitOps entry, no GitOps section: {body}"
    );
}

#[test]
fn the_approval_email_names_what_gitops_suspension_will_do_and_what_it_cannot() {
    let body = approval_body(&plan(json!([
        {"kind": "argocd", "application": "mint-replica"},
        {"kind": "flux"}
    ])));
    println!("{body}");
    assert!(body.contains(
        "GitOps (a controller that syncs these deployments from git re-applies the bad release \
         unless its sync is paused):"
    ));
    assert!(body.contains(
        "  - Argo CD Application argocd/mint-replica: its auto-sync will be SUSPENDED before the \
         deployments change. Nothing resumes it automatically"
    ));
    assert!(body.contains(
        "  - WARNING: Flux Kustomization in namespace flux-system (not named in the plan): the \
         rollback CANNOT suspend it (the plan gives no cluster.gitops[1].kustomization). Pause \
         its sync by hand BEFORE approving, or it puts the bad release back: kubectl -n \
         flux-system patch kustomizations.kustomize.toolkit.fluxcd.io <name> --type merge -p \
         '{\"spec\":{\"suspend\":true}}'"
    ));
    let gitops = body.find("GitOps (").unwrap();
    assert!(body.find("Deployments:").unwrap() < gitops && gitops < body.find("DECIDE").unwrap());
}

#[test]
fn the_success_notice_says_what_was_suspended_and_how_to_resume_it() {
    let plan = plan(json!([{"kind": "argocd", "application": "mint-replica"}]));
    let resume = argo_resume(r#"{"selfHeal":true}"#);
    let notice: SuccessNotice = serde_json::from_value(json!({
        "resolved": resolved(),
        "gitops": [{"kind": "argocd", "namespace": "argocd", "name": "mint-replica",
                    "outcome": "suspended", "previous": "{\"selfHeal\":true}", "suspended_by": "exec-1",
                    "message": "auto-sync SUSPENDED by this rollback; nothing resumes it automatically"}]
    }))
    .unwrap();
    let body = with_ctx(&plan, |ctx| render::success(ctx, &notice).body);
    println!("{body}");
    assert!(body.contains("pods restarted after the retag so they pull the stable image"));
    assert!(body.contains("GITOPS (auto-sync stays suspended: nothing resumes it automatically)"));
    assert!(body.contains(
        "  Argo CD Application argocd/mint-replica: auto-sync SUSPENDED by this rollback"
    ));
    assert!(body.contains(&format!(
        "    once git holds the release you want, resume it: {resume}"
    )));
}

#[test]
fn the_contingency_notice_shows_the_observed_suspension_and_the_resume_command() {
    let plan = plan(json!([{"kind": "argocd", "application": "mint-replica"}]));
    let resume = argo_resume(r#"{"prune":true}"#);
    let observed = json!({
        "databases": {"not_observed": "no databases"},
        "images": {"images": []},
        "deployments": {"complete": false, "deployments": [], "gitops": [{
            "kind": "argocd", "namespace": "argocd", "name": "mint-replica", "suspended": true,
            "suspended_by": "exec-1", "previous": "{\"prune\":true}",
            "message": "auto-sync SUSPENDED by rollback exec-1"}]}
    });
    let notice: FailureNotice = serde_json::from_value(json!({
        "error": {"Error": "Rollback.RolloutStuck", "Cause": "stuck"},
        "progress": {"steps": [{"name": "gitops", "status": "done", "detail": "GitOps auto-sync suspended (argocd/mint-replica)"}]},
        "observed": observed
    }))
    .unwrap();
    let body = with_ctx(&plan, |ctx| render::failure(ctx, &notice).body);
    println!("{body}");
    let state = body.find("STATE OF EACH RESOURCE").unwrap();
    let next = body.find("NEXT MANUAL STEP").unwrap();
    assert!(body[state..next].contains(
        "gitops Argo CD Application argocd/mint-replica: auto-sync SUSPENDED by rollback exec-1"
    ));
    assert!(body[next..].contains("GitOps auto-sync this rollback SUSPENDED stays suspended"));
    assert!(body[next..].contains(&format!("    {resume}")));

    // Not observed: the notice says what to check, by name.
    let mut blind = notice.clone();
    blind.observed = None;
    let body = with_ctx(&plan, |ctx| render::failure(ctx, &blind).body);
    assert!(
        body.contains("    kubectl -n argocd get applications.argoproj.io mint-replica -o yaml")
    );
}

#[test]
fn steps_that_do_not_apply_are_left_out_while_not_started() {
    let record = json!({"steps": [
        {"name": "approval", "status": "done"},
        {"name": "gitops", "status": "not-started", "detail": "suspend the GitOps auto-sync"},
        {"name": "undo", "status": "done"},
        {"name": "restart", "status": "not-started", "detail": "restart tag-pinned deployments"}
    ]});
    let without = plan(json!([]));
    let mut plain = resolved();
    plain.deployments[0].restart_needed = false;
    let notice: SuccessNotice =
        serde_json::from_value(json!({"resolved": plain, "progress": record})).unwrap();
    let body = with_ctx(&without, |ctx| render::success(ctx, &notice).body);
    assert!(
        !body.contains("gitops") && !body.contains("restart:"),
        "{body}"
    );
    // A plan with GitOps objects and a tag-pinned deployment keeps them (a failure before them
    // must say they did not run).
    let with = plan(json!([{"kind": "flux", "kustomization": "apps"}]));
    let notice: SuccessNotice =
        serde_json::from_value(json!({"resolved": resolved(), "progress": record})).unwrap();
    let body = with_ctx(&with, |ctx| render::success(ctx, &notice).body);
    assert!(body.contains("[not started] gitops"), "{body}");
    assert!(body.contains("[not started] restart"), "{body}");
}
