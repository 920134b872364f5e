//! Tag-pinned deployments: the bad and the stable revision both run `repo:prod`, so undo alone
//! does not change the image reference and running pods keep the bad image. resolve flags
//! them (`restart_needed`, and a pull-policy warning with the fix when the node's cache would
//! win); after retag → undo, `restart` restarts them like `kubectl rollout restart`.
//!
//! ECR is moto (through each function's IAM gate); the cluster is the local Kubernetes API,
//! whose pods pull per their pull policy from a tag → digest registry the test keeps equal to
//! moto's ECR, on one node with an image cache (local/kube-api/src/pods.rs).

mod common;

use common::{
    Env, NS, REGISTRY, Retag, assert_kubernetes_error, assert_text_at, ecr, env, repository,
    tag_digest, undo_action,
};
use k8s_openapi::api::apps::v1::Deployment;
use rollback_kube_api::{Fault, LocalKube};
use serde_json::{Value, json};

/// Revision 1 of `name`: one container `app` running `image`, with `pull_policy` (None: the
/// API server's default).
fn create(kube: &LocalKube, name: &str, image: &str, pull_policy: Option<&str>) {
    let mut container = json!({"name": "app", "image": image});
    if let Some(p) = pull_policy {
        container["imagePullPolicy"] = json!(p);
    }
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name},
                     "annotations": {"kubernetes.io/change-cause": "release v41"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [container]}}}
    }))
    .unwrap();
    kube.create_deployment(&d).unwrap();
}

/// The bad release of a tag-pinned deployment: `prod` was pushed, then the pipeline ran
/// `kubectl rollout restart` (revision 2, same image reference).
fn release(kube: &LocalKube, name: &str) {
    kube.merge_patch_deployment(
        NS,
        name,
        &json!({
            "metadata": {"annotations": {"kubernetes.io/change-cause": "release v42"}},
            "spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2024-05-01T11:00:00Z"}}}}
        }),
    )
    .unwrap();
}

/// The digests the deployment's pods run, from their `status.containerStatuses[].imageID`.
fn running(kube: &LocalKube, name: &str) -> Vec<String> {
    kube.pods(NS)
        .into_iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str)
                == Some(name)
        })
        .flat_map(|p| {
            p.status
                .and_then(|s| s.container_statuses)
                .unwrap_or_default()
        })
        .map(|c| c.image_id)
        .collect()
}

/// retag resolve, then deploy-undo resolve with the images it answered: (images, resolved).
async fn resolve(e: &Env, retag: &Retag, plan: &Value) -> (Value, Value) {
    let images = retag.call(plan, json!({"action": "resolve"})).await["images"].clone();
    let resolved = e
        .run(plan, json!({"action": "resolve", "images": images}))
        .await;
    (images, resolved)
}

/// The `restart` action for the deployments resolve answered.
fn restart(resolved: &Value, restarted_at: &str) -> Value {
    json!({"action": "restart", "deployments": resolved["deployments"], "restarted_at": restarted_at})
}

fn plan(cluster: &str, repo: &str, deployments: &[&str]) -> Value {
    json!({
        "service": "mint-replica",
        "images": [{"repository": repo, "release_tag": "prod", "stable_tag": "stable"}],
        "cluster": {"name": cluster, "namespace": NS, "deployments": deployments},
    })
}

#[tokio::test]
async fn tag_pinned_always_pods_end_on_the_stable_digest_after_undo_and_restart() {
    let e = env("tag-pinned-always").await;
    let ecr = ecr();
    let repo = "mint-replica-pinned-always";
    let (stable, bad) = repository(&ecr, repo).await;
    let image = format!("{REGISTRY}/{repo}:prod");
    let (pinned_stable, pinned_bad) = (
        format!("{REGISTRY}/{repo}@{stable}"),
        format!("{REGISTRY}/{repo}@{bad}"),
    );

    // Revision 1, while prod pointed at the stable image; then the bad release under prod.
    e.kube.set_image_digest(&image, &stable);
    create(&e.kube, "backend", &image, Some("Always"));
    assert_eq!(running(&e.kube, "backend"), vec![pinned_stable.clone(); 2]);
    e.kube.set_image_digest(&image, &bad);
    release(&e.kube, "backend");
    assert_eq!(running(&e.kube, "backend"), vec![pinned_bad.clone(); 2]);
    // A digest-pinned neighbour is not tag-pinned.
    e.kube
        .seed_two_revisions(NS, "frontend", "app", &pinned_stable, &pinned_bad, 1)
        .unwrap();

    let plan = plan(&e.cluster, repo, &["backend", "frontend"]);
    let retag = Retag::new();
    let (images, resolved) = resolve(&e, &retag, &plan).await;
    assert_eq!(images[0]["retag_needed"], true, "{images}");
    assert_eq!(resolved["restart_needed"], true, "{resolved}");
    let backend = &resolved["deployments"][0];
    assert_eq!(
        (
            backend["current_revision"].as_i64(),
            backend["target_revision"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(backend["restart_needed"], true, "{backend}");
    assert_eq!(
        backend["matches_stable"], true,
        "prod will be the stable digest"
    );
    assert!(
        backend.get("pull_policy_keeps_cache").is_none(),
        "Always pulls: {backend}"
    );
    let frontend = &resolved["deployments"][1];
    assert!(frontend.get("restart_needed").is_none(), "{frontend}");
    assert_eq!(
        resolved["warnings"],
        json!([
            "mint/backend: TAG-PINNED: undo keeps the tag reference, so the pods restart after the retag."
        ])
    );

    // retag apply moves prod to the stable digest; the registry serves it from now on.
    let applied = retag
        .call(&plan, json!({"action": "apply", "images": images}))
        .await;
    assert_eq!(applied["images"][0]["outcome"], "retagged", "{applied}");
    let prod_now = tag_digest(&ecr, repo, "prod").await;
    assert_eq!(prod_now, stable);
    e.kube.set_image_digest(&image, &prod_now);
    assert_eq!(
        running(&e.kube, "backend"),
        vec![pinned_bad.clone(); 2],
        "moving a tag changes no running pod"
    );

    e.run(&plan, undo_action(&resolved)).await;
    let before_restart = e.revision("backend").unwrap();

    // The restart's answer is lost after the API server applied it: observed, it counts.
    e.kube.inject_fault(
        Fault::lost_answer(500, 1)
            .on_method("PATCH")
            .on_path("/deployments/backend"),
    );
    let restart = restart(&resolved, "2024-05-01T12:00:00.250Z");
    let out = e.run(&plan, restart.clone()).await;
    assert_eq!(out["deployments"][0]["outcome"], "restarted", "{out}");
    assert_text_at(
        &out,
        "/deployments/0/message",
        "answer to the patch was lost",
    );
    assert_eq!(out["deployments"][1]["outcome"], "not-needed", "{out}");
    assert_eq!(
        e.revision("backend"),
        Some(before_restart + 1),
        "one new rollout"
    );
    // A Step Functions retry of the step: same value, nothing restarts twice.
    let again = e.run(&plan, restart).await;
    assert_eq!(
        again["deployments"][0]["outcome"], "already-restarted",
        "{again}"
    );
    assert_eq!(e.revision("backend"), Some(before_restart + 1));

    let status = e.run(&plan, json!({"action": "status"})).await;
    assert_eq!(status["complete"], true, "{status}");
    let template = e.kube.deployment(NS, "backend").unwrap().spec.template;
    assert_eq!(
        template.metadata.unwrap().annotations.unwrap()["kubectl.kubernetes.io/restartedAt"],
        "2024-05-01T12:00:00Z",
        "kubectl's annotation, RFC 3339 in whole seconds"
    );
    assert_eq!(
        running(&e.kube, "backend"),
        vec![pinned_stable.clone(); 2],
        "the restarted pods pulled prod again: the stable digest"
    );
    assert_eq!(e.images("frontend"), vec![pinned_stable]);
    let refused = e.refused();
    assert!(
        refused.is_empty(),
        "the shipped Role allows the restart: {refused:#?}"
    );
}

#[tokio::test]
async fn tag_pinned_if_not_present_is_reported_with_the_fix_and_keeps_the_cached_image() {
    let e = env("tag-pinned-cached").await;
    let ecr = ecr();
    let repo = "mint-replica-pinned-cached";
    let (stable, bad) = repository(&ecr, repo).await;
    let image = format!("{REGISTRY}/{repo}:prod");

    // No pull policy: the API server defaults a non-latest tag to IfNotPresent.
    e.kube.set_image_digest(&image, &stable);
    create(&e.kube, "backend", &image, None);
    let stored = e
        .kube
        .deployment(NS, "backend")
        .unwrap()
        .spec
        .template
        .spec
        .unwrap();
    assert_eq!(
        stored.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    // The bad release runs on a node that joined after it was pushed.
    e.kube.set_image_digest(&image, &bad);
    e.kube.clear_node_cache();
    release(&e.kube, "backend");
    let pinned_bad = format!("{REGISTRY}/{repo}@{bad}");
    assert_eq!(running(&e.kube, "backend"), vec![pinned_bad.clone(); 2]);

    let plan = plan(&e.cluster, repo, &["backend"]);
    let retag = Retag::new();
    let (images, resolved) = resolve(&e, &retag, &plan).await;
    let backend = &resolved["deployments"][0];
    assert_eq!(backend["restart_needed"], true, "{backend}");
    assert_eq!(backend["pull_policy_keeps_cache"], true, "{backend}");
    assert!(
        resolved["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap()
                == "mint/backend: TAG-PINNED: undo keeps the tag reference, so the pods restart \
                after the retag. PULL POLICY keeps cached images: pin by digest or set \
                imagePullPolicy: Always."),
        "{resolved}"
    );

    // What the warning is about, in the local API: retag, undo and restart all run, and the
    // node still serves the pods the bad image it cached under prod.
    retag
        .call(&plan, json!({"action": "apply", "images": images}))
        .await;
    e.kube
        .set_image_digest(&image, &tag_digest(&ecr, repo, "prod").await);
    e.run(&plan, undo_action(&resolved)).await;
    let out = e
        .run(&plan, restart(&resolved, "2024-05-01T12:00:00Z"))
        .await;
    assert_eq!(out["deployments"][0]["outcome"], "restarted", "{out}");
    assert_eq!(
        running(&e.kube, "backend"),
        vec![pinned_bad; 2],
        "IfNotPresent: the cached bad image wins; hence the warning's fix"
    );
}

#[tokio::test]
async fn restart_in_a_drill_is_a_dry_run_and_a_paused_deployment_is_refused() {
    let e = env("tag-pinned-drill").await;
    let image = format!("{REGISTRY}/mint-replica-pinned-drill:prod");
    create(&e.kube, "backend", &image, Some("Always"));
    release(&e.kube, "backend");
    let plan = plan(&e.cluster, "mint-replica-pinned-drill", &["backend"]);
    // Without retag's resolution, the plan's release tags count as moving.
    let resolved = e.run(&plan, json!({"action": "resolve"})).await;
    assert_eq!(
        resolved["deployments"][0]["restart_needed"], true,
        "{resolved}"
    );
    let revision = e.revision("backend");
    let restart = restart(&resolved, "2024-05-01T12:00:00Z");
    let out = e
        .call_plan(plan.clone(), restart.clone(), true)
        .await
        .unwrap();
    assert_eq!(out["deployments"][0]["outcome"], "dry-run", "{out}");
    assert_eq!(e.revision("backend"), revision, "a drill changes nothing");

    e.kube
        .merge_patch_deployment(NS, "backend", &json!({"spec": {"paused": true}}))
        .unwrap();
    let err = e.call_plan(plan, restart, false).await.unwrap_err();
    assert_kubernetes_error(&err, "can't restart paused deployment mint/backend");
}
