//! deploy-undo under the shipped RBAC manifest (`infra/k8s/rollback-rbac.yaml`), enforced by
//! the local Kubernetes API as EKS enforces it: every action works with exactly the Role's
//! verbs, and a Role missing one fails with a `Rollback.Kubernetes` error that names it.

mod common;

use common::{
    BAD, FUNCTION_USER, STABLE, assert_kubernetes_error, env, env_with, shipped_rbac, undo_action,
};
use rollback_core::ErrorKind;
use serde_json::json;

#[tokio::test]
async fn every_action_needs_only_the_shipped_role() {
    let e = env("rbac-all-actions").await;
    e.seed_backend();
    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    for (action, drill) in [
        (json!({"action": "pause"}), true),
        (json!({"action": "pause"}), false),
        (undo_action(&resolved), true),
        (undo_action(&resolved), false),
        (json!({"action": "status"}), false),
        (
            json!({"action": "resume", "deployments": resolved["deployments"]}),
            false,
        ),
    ] {
        e.call(&["backend"], action.clone(), drill)
            .await
            .unwrap_or_else(|err| panic!("{action} (drill {drill}): {err}"));
    }
    assert_eq!(e.images("backend"), vec![STABLE]);
    let refused = e.refused();
    assert!(refused.is_empty(), "{refused:#?}");
}

#[tokio::test]
async fn a_role_without_update_fails_undo_naming_the_missing_verb() {
    let manifest = shipped_rbac();
    let without_update = manifest.replace(
        r#"verbs: ["get", "patch", "update"]"#,
        r#"verbs: ["get", "patch"]"#,
    );
    assert_ne!(
        manifest, without_update,
        "the shipped Role grants update on deployments"
    );
    let e = env_with("rbac-no-update", Vec::new(), &without_update).await;
    e.seed_backend();
    // resolve only reads: still fine.
    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    let err = e
        .call(&["backend"], undo_action(&resolved), false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Kubernetes);
    assert_eq!(err.kind().error_name(), "Rollback.Kubernetes");
    assert_eq!(
        err.to_string(),
        format!(
            "kubernetes update deployment (rollout undo): the deploy-undo role may not update \
             deployments in mint: add the verb to infra/k8s/rollback-rbac.yaml and kubectl apply \
             it (the API server said: deployments.apps \"backend\" is forbidden: User \
             \"{FUNCTION_USER}\" cannot update resource \"deployments\" in API group \"apps\" in \
             the namespace \"mint\")"
        )
    );
    assert_eq!(e.images("backend"), vec![BAD], "nothing changed");
}

#[tokio::test]
async fn a_role_in_another_namespace_grants_nothing_here() {
    let elsewhere = shipped_rbac().replace("namespace: mint", "namespace: shop");
    let e = env_with("rbac-other-ns", Vec::new(), &elsewhere).await;
    e.seed_backend();
    let err = e
        .call(&["backend"], json!({"action": "status"}), false)
        .await
        .unwrap_err();
    assert_kubernetes_error(&err, "the deploy-undo role may not get deployments in mint");
}
