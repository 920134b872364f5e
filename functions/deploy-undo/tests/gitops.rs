//! GitOps: `suspend-gitops` stops Argo CD / Flux from re-applying the bad release before the
//! deployments change, idempotently, observing after a failed patch, resuming nothing; what
//! it suspended (and the exact command that resumes it) is in its answer and in `status`.
//!
//! The local Kubernetes API stores the Applications and Kustomizations as custom resources and
//! authorizes the function with the shipped Roles (infra/k8s/rollback-rbac*.yaml).

mod common;

use std::path::PathBuf;

use common::{
    Env, NS, STABLE, assert_kubernetes_error, assert_text_at, env_with, shipped_rbac,
    shipped_rbac_with_gitops, undo_action,
};
use rollback_core::contract::deploy_undo::{GitOpsOutput, GitOpsResult, GitOpsState, StatusOutput};
use rollback_core::{ErrorKind, RollbackError};
use rollback_kube_api::{DEFAULT_TOKEN, Fault};
use rollback_moto::MotoServer;
use serde_json::{Value, json};

const ARGO: (&str, &str) = ("argoproj.io/v1alpha1", "Application");
const FLUX: (&str, &str) = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization");

fn plan(cluster: &str, gitops: Value) -> Value {
    json!({
        "service": "mint-replica",
        "cluster": {"name": cluster, "namespace": NS, "deployments": ["backend"], "gitops": gitops},
    })
}

/// The Argo CD Application `mint-replica` (in `argocd`) alone.
fn argo_only() -> Value {
    json!([{"kind": "argocd", "application": "mint-replica"}])
}

fn both() -> Value {
    json!([
        {"kind": "argocd", "application": "mint-replica"},
        {"kind": "flux", "kustomization": "mint-replica", "namespace": "flux-system"}
    ])
}

async fn seeded(cluster: &str, rbac: &str) -> Env {
    let e = env_with(cluster, vec![DEFAULT_TOKEN.into()], rbac).await;
    e.seed_backend();
    e.kube
        .seed_argocd_application(
            "argocd",
            "mint-replica",
            NS,
            Some(json!({"prune": true, "selfHeal": true})),
        )
        .unwrap();
    e.kube
        .seed_flux_kustomization("flux-system", "mint-replica", NS, false)
        .unwrap();
    e
}

fn object(e: &Env, (api_version, kind): (&str, &str), ns: &str) -> Value {
    e.kube
        .custom_object(api_version, kind, ns, "mint-replica")
        .unwrap()
}

/// The Argo CD Application `argocd/mint-replica` still has its `automated` sync policy.
fn argo_auto_syncing(e: &Env) -> bool {
    object(e, ARGO, "argocd")
        .pointer("/spec/syncPolicy/automated")
        .is_some()
}

/// `suspend-gitops` with a plan naming `gitops`.
async fn suspend(e: &Env, gitops: Value, drill: bool) -> Result<Value, RollbackError> {
    e.call_plan(
        plan(&e.cluster, gitops),
        json!({"action": "suspend-gitops"}),
        drill,
    )
    .await
}

#[tokio::test]
async fn auto_sync_is_suspended_before_the_undo_and_the_resume_commands_are_exact() {
    let e = seeded("gitops-suspend", &shipped_rbac_with_gitops()).await;
    let plan = plan(&e.cluster, both());
    let exec = format!("exec-{}", e.cluster);
    let resolved = e.run(&plan, json!({"action": "resolve"})).await;
    let suspended = e.run(&plan, json!({"action": "suspend-gitops"})).await;
    e.run(&plan, undo_action(&resolved)).await;
    assert_eq!(e.images("backend"), vec![STABLE]);

    // Order, as the API server saw it: both suspensions, then the undo's update.
    let writes: Vec<String> = e
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" || r.method == "PUT")
        .map(|r| format!("{} {}", r.method, r.uri.split('?').next().unwrap_or("")))
        .collect();
    assert_eq!(
        writes,
        vec![
            "PATCH /apis/argoproj.io/v1alpha1/namespaces/argocd/applications/mint-replica",
            "PATCH /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/mint-replica",
            "PUT /apis/apps/v1/namespaces/mint/deployments/backend",
        ]
    );

    let argo_resume = "kubectl -n argocd patch applications.argoproj.io mint-replica --type \
                       merge -p '{\"metadata\":{\"annotations\":{\"deploy-rollback/suspended-by\":\
                       null,\"deploy-rollback/suspended-automated\":null}},\"spec\":\
                       {\"syncPolicy\":{\"automated\":{\"prune\":true,\"selfHeal\":true}}}}'";
    let flux_resume = "kubectl -n flux-system patch kustomizations.kustomize.toolkit.fluxcd.io \
                       mint-replica --type merge -p '{\"metadata\":{\"annotations\":\
                       {\"deploy-rollback/suspended-by\":null}},\"spec\":{\"suspend\":false}}'";
    assert_eq!(
        suspended,
        json!({
            "drill": false,
            "objects": [
                {"kind": "argocd", "namespace": "argocd", "name": "mint-replica", "outcome": "suspended",
                 "previous": "{\"prune\":true,\"selfHeal\":true}", "suspended_by": exec,
                 "message": "auto-sync SUSPENDED by this rollback; nothing resumes it automatically"},
                {"kind": "flux", "namespace": "flux-system", "name": "mint-replica", "outcome": "suspended",
                 "suspended_by": exec,
                 "message": "auto-sync SUSPENDED by this rollback; nothing resumes it automatically"}
            ],
            "summary": "GitOps auto-sync suspended (argocd/mint-replica, flux-system/mint-replica); nothing resumes it automatically"
        })
    );
    let resume_commands = [Some(argo_resume.to_owned()), Some(flux_resume.to_owned())];
    let output: GitOpsOutput = serde_json::from_value(suspended).unwrap();
    assert_eq!(
        output.objects[..2]
            .iter()
            .map(GitOpsResult::resume_command)
            .collect::<Vec<_>>(),
        resume_commands
    );
    let app = object(&e, ARGO, "argocd");
    assert!(app.pointer("/spec/syncPolicy/automated").is_none(), "{app}");
    assert_eq!(
        app["metadata"]["annotations"]["deploy-rollback/suspended-by"],
        json!(exec)
    );
    let ks = object(&e, FLUX, "flux-system");
    assert_eq!(ks["spec"]["suspend"], true);

    // status observes it (the contingency notice reads this), with the same commands.
    let status = e.run(&plan, json!({"action": "status"})).await;
    assert_eq!(status["gitops"][0]["suspended"], true, "{status}");
    assert_eq!(status["gitops"][0]["suspended_by"], json!(exec));
    let observed: StatusOutput = serde_json::from_value(status).unwrap();
    assert_eq!(
        observed.gitops[..2]
            .iter()
            .map(GitOpsState::resume_command)
            .collect::<Vec<_>>(),
        resume_commands
    );

    // The commands are exact: the real kubectl runs them and everything is as before.
    let Some(kubectl) = kubectl_path() else {
        eprintln!("\n!!!!! SKIPPED: kubectl not found; the resume commands were not run !!!!!\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    e.kube.write_kubeconfig(&kubeconfig, DEFAULT_TOKEN).unwrap();
    for command in [argo_resume, flux_resume] {
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .env(
                "PATH",
                kubectl.parent().unwrap().to_string_lossy().to_string() + ":/usr/bin:/bin",
            )
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), out)
            .await
            .expect("kubectl finishes")
            .unwrap();
        assert!(out.status.success(), "{command}: {out:?}");
    }
    let app = object(&e, ARGO, "argocd");
    assert_eq!(
        app["spec"]["syncPolicy"]["automated"],
        json!({"prune": true, "selfHeal": true})
    );
    assert!(
        app["metadata"]
            .get("annotations")
            .is_none_or(|a| a.as_object().unwrap().is_empty()),
        "{app}"
    );
    assert_eq!(object(&e, FLUX, "flux-system")["spec"]["suspend"], false);
}

fn kubectl_path() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
    })
}

#[tokio::test]
async fn a_lost_patch_answer_and_a_retry_are_fine_and_keep_the_first_record() {
    let e = seeded("gitops-lost-answer", &shipped_rbac_with_gitops()).await;
    // A 500 before the API server acts (kube-rs itself retries 429/503/504): retryable, and
    // nothing changed.
    e.kube.inject_fault(
        Fault::status(500, 1)
            .on_method("PATCH")
            .on_path("/applications/mint-replica"),
    );
    let err = suspend(&e, argo_only(), false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(argo_auto_syncing(&e), "still auto-syncing");
    // The answer is lost after the API server acted: observed, it counts.
    e.kube.inject_fault(
        Fault::lost_answer(500, 1)
            .on_method("PATCH")
            .on_path("/applications/mint-replica"),
    );
    let out = suspend(&e, argo_only(), false).await.unwrap();
    assert_eq!(out["objects"][0]["outcome"], "suspended", "{out}");
    assert_text_at(
        &out,
        "/objects/0/message",
        "the answer to the patch was lost; observed it suspended",
    );
    let first: GitOpsOutput = serde_json::from_value(out.clone()).unwrap();
    // A Step Functions retry: nothing to do, and the recorded policy is still the first one.
    let again = suspend(&e, argo_only(), false).await.unwrap();
    assert_eq!(
        again["objects"][0]["outcome"], "already-suspended",
        "{again}"
    );
    assert_eq!(
        again["objects"][0]["previous"],
        "{\"prune\":true,\"selfHeal\":true}"
    );
    let again: GitOpsOutput = serde_json::from_value(again).unwrap();
    assert_eq!(
        again.objects[0].resume_command(),
        first.objects[0].resume_command()
    );
    assert!(again.objects[0].resume_command().is_some());
    // The execution started again after a crash: it leaves the first one's suspension and
    // still names the command that undoes it.
    let mut suspend = json!({"action": "suspend-gitops", "plan": plan(&e.cluster, argo_only()),
               "execution": "restarted-after-a-crash",
               "request": {"trigger": {"kind": "manual"}, "reason": "test", "mode": "live"}});
    rollback_moto::decision::approve(
        MotoServer::shared(),
        &mut suspend,
        rollback_core::Scope::APP,
    )
    .await;
    let restarted = rollback_deploy_undo::handle(&e.clients, suspend)
        .await
        .unwrap();
    let restarted: GitOpsOutput = serde_json::from_value(restarted).unwrap();
    assert_eq!(
        restarted.objects[0].outcome,
        rollback_core::contract::deploy_undo::GitOpsOutcome::NotAutoSyncing
    );
    assert_eq!(
        restarted.objects[0].suspended_by.as_deref(),
        Some(format!("exec-{}", e.cluster).as_str())
    );
    assert_eq!(
        restarted.objects[0].resume_command(),
        first.objects[0].resume_command()
    );
    let patches = e
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(
        patches, 2,
        "the 500 and the lost answer; the retries only read"
    );
}

#[tokio::test]
async fn objects_already_off_unnamed_or_in_a_drill_are_left_as_they_are_and_said_so() {
    let e = env_with("gitops-left-alone", Vec::new(), &shipped_rbac_with_gitops()).await;
    e.seed_backend();
    e.kube
        .seed_argocd_application("argocd", "mint-replica", NS, None)
        .unwrap();
    e.kube
        .seed_flux_kustomization("flux-system", "mint-replica", NS, true)
        .unwrap();
    let gitops = json!([
        {"kind": "argocd", "application": "mint-replica"},
        {"kind": "flux", "kustomization": "mint-replica"},
        {"kind": "argocd", "namespace": "argocd"}
    ]);
    let out = suspend(&e, gitops, true).await.unwrap();
    let outcomes: Vec<&str> = out["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["not-auto-syncing", "not-auto-syncing", "not-named"],
        "{out}"
    );
    let parsed: GitOpsOutput = serde_json::from_value(out.clone()).unwrap();
    assert!(
        parsed.objects.iter().all(|o| o.resume_command().is_none()),
        "nothing of ours to resume"
    );
    assert_eq!(
        out["objects"][2]["message"],
        "NOT SUSPENDED: the plan does not name it (cluster.gitops: add `application`), so it \
         may re-apply the bad release; pause its sync by hand"
    );
    assert_text_at(
        &out,
        "/summary",
        "1 GitOps object(s) not named in the plan were NOT suspended",
    );
    assert!(
        e.kube.requests().iter().all(|r| r.method == "GET"),
        "nothing to change, nothing written"
    );

    // A drill with an auto-syncing Application: a server-side dry run, nothing changes.
    let e = seeded("gitops-drill", &shipped_rbac_with_gitops()).await;
    let out = suspend(&e, both(), true).await.unwrap();
    assert_eq!(out["objects"][0]["outcome"], "dry-run", "{out}");
    assert_eq!(out["objects"][1]["outcome"], "dry-run", "{out}");
    assert!(argo_auto_syncing(&e));
    assert_eq!(object(&e, FLUX, "flux-system")["spec"]["suspend"], false);
}

#[tokio::test]
async fn the_gitops_roles_grant_exactly_the_named_objects() {
    // Without the Argo CD Role: refused before anything changed, naming the manifest.
    let e = seeded("gitops-no-role", &shipped_rbac()).await;
    let err = suspend(&e, argo_only(), false).await.unwrap_err();
    assert_kubernetes_error(
        &err,
        "the deploy-undo role may not get applications in argocd: add the verb to \
         infra/k8s/rollback-rbac-argocd.yaml",
    );
    // status still observes the deployments and says why the Application was not observed.
    let status = e
        .run(&plan(&e.cluster, argo_only()), json!({"action": "status"}))
        .await;
    assert_eq!(status["deployments"][0]["name"], "backend");
    assert!(status["gitops"][0].get("suspended").is_none(), "{status}");
    assert_text_at(&status, "/gitops/0/message", "not observed");

    // With the Roles, an Application the Role does not name is refused too (resourceNames).
    let e = seeded("gitops-other-app", &shipped_rbac_with_gitops()).await;
    e.kube
        .seed_argocd_application("argocd", "payments", NS, Some(json!({})))
        .unwrap();
    let err = suspend(
        &e,
        json!([{"kind": "argocd", "application": "payments"}]),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("may not get applications in argocd"),
        "{err}"
    );
    // The objects the Roles name are allowed.
    let err = suspend(
        &e,
        json!([{"kind": "flux", "kustomization": "mint-replica", "namespace": "flux-system"},
               {"kind": "argocd", "application": "mint-replica", "namespace": "argocd"}]),
        false,
    )
    .await;
    assert!(err.is_ok(), "the named objects are allowed: {err:?}");
    let manifest = shipped_rbac_with_gitops().replace(
        "resourceNames: [\"mint-replica\"]\n    verbs: [\"get\", \"patch\"]",
        "resourceNames: [\"mint-replica\"]\n    verbs: [\"get\"]",
    );
    assert_ne!(
        manifest,
        shipped_rbac_with_gitops(),
        "the shipped Roles grant get and patch"
    );
    let e = seeded("gitops-no-patch", &manifest).await;
    let err = suspend(&e, argo_only(), false).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "the deploy-undo role may not patch applications in argocd: add the verb to \
             infra/k8s/rollback-rbac-argocd.yaml"
        ),
        "{err}"
    );
    assert!(argo_auto_syncing(&e), "a refused patch changed nothing");
}

#[tokio::test]
async fn a_gitops_object_that_does_not_exist_fails_the_step_by_name() {
    let e = env_with("gitops-missing", Vec::new(), &shipped_rbac_with_gitops()).await;
    e.seed_backend();
    let err = suspend(&e, argo_only(), false).await.unwrap_err();
    assert_kubernetes_error(
        &err,
        "Argo CD Application argocd/mint-replica does not exist",
    );
}
