//! deploy-undo against the local Kubernetes API (EKS token auth, endpoint/CA override).

mod common;

use common::{NS, env};
use rollback_core::contract::deploy_undo::{ScaleOutput, StatusOutput, UndoOutcome, UndoOutput};
use serde_json::{Value, json};

const STABLE: &str = "registry.local/mint/backend@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const BAD: &str = "registry.local/mint/backend@sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn undo_input(resolved: &Value) -> Value {
    json!({"action": "undo", "deployments": resolved["deployments"]})
}

#[tokio::test]
async fn undo_restores_the_previous_revision_as_a_new_one() {
    let e = env("undo-basic").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 2)
        .unwrap();
    let r = e.resolve(&["backend"], json!([])).await;
    let d = &r.deployments[0];
    assert_eq!((d.current_revision, d.target_revision), (2, Some(1)));
    assert_eq!(d.current_images, vec![BAD]);
    assert_eq!(d.target_images, vec![STABLE]);
    assert_eq!(d.replicas, 2);
    assert!(d.current_rolled_out_at.is_some());
    assert_eq!(r.release_time, d.current_rolled_out_at);
    assert_eq!(d.matches_stable, None, "no images given, nothing compared");

    let resolved = serde_json::to_value(&r).unwrap();
    let out: UndoOutput = serde_json::from_value(
        e.call(&["backend"], undo_input(&resolved), false)
            .await
            .unwrap(),
    )
    .unwrap();
    let u = &out.deployments[0];
    assert_eq!(u.outcome, UndoOutcome::RolledBack);
    assert_eq!((u.from_revision, u.to_revision), (2, 1));
    assert_eq!(u.images, vec![STABLE]);
    assert_eq!(e.images("backend"), vec![STABLE]);
    assert_eq!(
        e.revision("backend"),
        Some(3),
        "a rollback gets a new revision number"
    );
    let template = e.kube.deployment(NS, "backend").unwrap().spec.template;
    assert!(
        !template
            .metadata
            .unwrap()
            .labels
            .unwrap()
            .contains_key(rollback_deploy_undo::POD_TEMPLATE_HASH),
        "the hash label is not copied into the deployment"
    );

    // A retry of the same step (same approved input) changes nothing more.
    let again: UndoOutput = serde_json::from_value(
        e.call(&["backend"], undo_input(&resolved), false)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again.deployments[0].outcome, UndoOutcome::AlreadyAtTarget);
    assert_eq!(e.revision("backend"), Some(3));

    let status: StatusOutput = serde_json::from_value(
        e.call(&["backend"], json!({"action": "status"}), false)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(status.complete, "{status:?}");
    assert_eq!(status.deployments[0].images, vec![STABLE]);
}

#[tokio::test]
async fn to_revision_picks_an_older_revision_and_the_current_one_is_a_no_op() {
    let e = env("undo-to-revision").await;
    e.kube
        .seed_deployment(NS, "backend", &[("app", "img:v1")], 1, None)
        .unwrap();
    e.kube
        .set_images(NS, "backend", &[("app", "img:v2")], None)
        .unwrap();
    e.kube
        .set_images(NS, "backend", &[("app", "img:v3")], None)
        .unwrap();
    let resolved = e
        .call(
            &["backend"],
            json!({"action": "resolve", "to_revision": 1}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(resolved["deployments"][0]["target_revision"], 1);
    assert_eq!(
        resolved["deployments"][0]["target_images"],
        json!(["img:v1"])
    );

    // Undo "to" the current revision: kubectl skips it, so do we.
    let same = e
        .call(
            &["backend"],
            json!({"action": "undo", "deployments": resolved["deployments"], "to_revision": 3}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(same["deployments"][0]["outcome"], "already-at-target");
    assert_eq!(e.revision("backend"), Some(3));

    let out = e
        .call(&["backend"], undo_input(&resolved), false)
        .await
        .unwrap();
    assert_eq!(out["deployments"][0]["outcome"], "rolled-back");
    assert_eq!(e.images("backend"), vec!["img:v1"]);
    assert_eq!(e.revision("backend"), Some(4));

    // A revision that is not in the history.
    let missing = e
        .call(
            &["backend"],
            json!({"action": "resolve", "to_revision": 9}),
            false,
        )
        .await
        .unwrap();
    assert!(
        missing["deployments"][0]["note"]
            .as_str()
            .unwrap()
            .contains("NoRolloutHistory")
    );
}

#[tokio::test]
async fn pause_and_resume_scale_to_zero_and_back_idempotently() {
    let e = env("pause-resume").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 3)
        .unwrap();
    let replicas = |e: &common::Env| e.kube.deployment(NS, "backend").unwrap().spec.replicas;
    for attempt in 0..2 {
        let out: ScaleOutput = serde_json::from_value(
            e.call(&["backend"], json!({"action": "pause"}), false)
                .await
                .unwrap(),
        )
        .unwrap();
        let s = &out.deployments[0];
        assert_eq!(
            (s.replicas_before, s.replicas_after),
            (3, 0),
            "attempt {attempt}"
        );
        assert_eq!(s.changed, attempt == 0, "a retry changes nothing: {s:?}");
        assert_eq!(replicas(&e), Some(0));
    }
    // resolve while paused still reports the real size.
    assert_eq!(
        e.resolve(&["backend"], json!([])).await.deployments[0].replicas,
        3
    );
    for attempt in 0..2 {
        let out: ScaleOutput = serde_json::from_value(
            e.call(&["backend"], json!({"action": "resume"}), false)
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out.deployments[0].changed, attempt == 0, "{out:?}");
        assert_eq!(replicas(&e), Some(3));
    }
    let annotations = e
        .kube
        .deployment(NS, "backend")
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default();
    assert!(
        !annotations
            .keys()
            .any(|k| k.starts_with("deploy-rollback/")),
        "{annotations:?}"
    );
}

#[tokio::test]
async fn undo_while_paused_keeps_the_pause_record_for_resume() {
    let e = env("pause-undo-resume").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 2)
        .unwrap();
    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    e.call(&["backend"], json!({"action": "pause"}), false)
        .await
        .unwrap();
    e.call(&["backend"], undo_input(&resolved), false)
        .await
        .unwrap();
    assert_eq!(e.images("backend"), vec![STABLE]);
    e.call(&["backend"], json!({"action": "resume"}), false)
        .await
        .unwrap();
    assert_eq!(
        e.kube.deployment(NS, "backend").unwrap().spec.replicas,
        Some(2)
    );
    let status = e
        .call(&["backend"], json!({"action": "status"}), false)
        .await
        .unwrap();
    assert_eq!(status["complete"], true, "{status}");
}

#[tokio::test]
async fn status_follows_the_rollout_like_kubectl() {
    let e = env("status-transitions").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 3)
        .unwrap();
    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    e.kube.set_auto_progress(false);
    e.call(&["backend"], undo_input(&resolved), false)
        .await
        .unwrap();
    let mut messages = Vec::new();
    let mut complete = false;
    for _ in 0..50 {
        let s: StatusOutput = serde_json::from_value(
            e.call(&["backend"], json!({"action": "status"}), false)
                .await
                .unwrap(),
        )
        .unwrap();
        messages.push(s.deployments[0].message.clone());
        if s.complete {
            complete = true;
            break;
        }
        e.kube.step();
    }
    assert!(complete, "never completed: {messages:#?}");
    assert!(
        messages.len() > 2,
        "went through intermediate states: {messages:#?}"
    );
    assert!(
        messages[0].starts_with("Waiting for deployment \"backend\" rollout to finish"),
        "{messages:#?}"
    );
    assert_eq!(
        messages.last().unwrap(),
        "deployment \"backend\" successfully rolled out"
    );
}

#[tokio::test]
async fn a_rollout_past_its_progress_deadline_is_stuck() {
    let e = env("status-stuck").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 2)
        .unwrap();
    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    e.kube.set_auto_progress(false);
    e.call(&["backend"], undo_input(&resolved), false)
        .await
        .unwrap();
    let s = e
        .call(&["backend"], json!({"action": "status"}), false)
        .await
        .unwrap();
    assert_eq!(s["complete"], false);
    e.kube.expire_progress_deadline(NS, "backend").unwrap();
    let err = e
        .call(&["backend"], json!({"action": "status"}), false)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.RolloutStuck");
    assert!(err.to_string().contains("mint/backend"), "{err}");
}

#[tokio::test]
async fn drill_is_a_server_side_dry_run_that_changes_nothing() {
    let e = env("drill").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 2)
        .unwrap();
    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    let before = e.kube.deployment(NS, "backend").unwrap();
    let rs_before = e.kube.replica_sets(NS, "backend").len();
    let out: UndoOutput = serde_json::from_value(
        e.call(&["backend"], undo_input(&resolved), true)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(out.drill);
    assert_eq!(out.deployments[0].outcome, UndoOutcome::DryRun);
    let paused = e
        .call(&["backend"], json!({"action": "pause"}), true)
        .await
        .unwrap();
    assert_eq!(paused["drill"], true);
    let after = e.kube.deployment(NS, "backend").unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.spec, before.spec);
    assert_eq!(e.kube.replica_sets(NS, "backend").len(), rs_before);
    let writes: Vec<_> = e
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" || r.method == "PATCH")
        .collect();
    assert!(
        !writes.is_empty() && writes.iter().all(|r| r.uri.contains("dryRun=All")),
        "{writes:?}"
    );
}

#[tokio::test]
async fn a_previous_revision_that_is_not_the_stable_image_is_reported() {
    let e = env("mismatch").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", BAD, STABLE, 2)
        .unwrap();
    let images = json!([{
        "repository": "mint/backend", "release_tag": "prod", "stable_tag": "stable",
        "stable_digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
        "release_digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
        "retag_needed": true, "immutable_tags": false,
    }]);
    let r = e.resolve(&["backend"], images.clone()).await;
    let d = &r.deployments[0];
    assert_eq!(d.matches_stable, Some(false));
    let note = d.note.as_deref().unwrap();
    assert!(
        note.contains("MISMATCH") && note.contains("bad release's own digest"),
        "{note}"
    );
    assert_eq!(r.warnings.len(), 1);

    // The same resolution for a deployment whose previous revision is the stable digest.
    let e2 = env("match").await;
    e2.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 2)
        .unwrap();
    let r2 = e2.resolve(&["backend"], images).await;
    assert_eq!(r2.deployments[0].matches_stable, Some(true));
    assert!(r2.warnings.is_empty());
}

#[tokio::test]
async fn no_history_is_reported_by_resolve_and_refused_by_undo() {
    let e = env("no-history").await;
    e.kube
        .seed_deployment(NS, "backend", &[("app", STABLE)], 1, None)
        .unwrap();
    e.kube
        .merge_patch_deployment(NS, "backend", &json!({"spec": {"revisionHistoryLimit": 0}}))
        .unwrap();
    e.kube
        .set_images(NS, "backend", &[("app", BAD)], None)
        .unwrap();
    let resolved = e
        .call(&["backend"], json!({"action": "resolve"}), false)
        .await
        .unwrap();
    let d = &resolved["deployments"][0];
    assert!(d["target_revision"].is_null(), "{d}");
    assert!(
        d["note"]
            .as_str()
            .unwrap()
            .contains("revisionHistoryLimit: 0"),
        "{d}"
    );
    let err = e
        .call(&["backend"], undo_input(&resolved), false)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.NoRolloutHistory");
    assert!(err.to_string().contains("mint/backend"), "{err}");
}

#[tokio::test]
async fn drift_and_paused_deployments_are_refused() {
    let e = env("drift").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 2)
        .unwrap();
    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    e.kube
        .set_images(NS, "backend", &[("app", "img:hotfix")], None)
        .unwrap();
    let err = e
        .call(&["backend"], undo_input(&resolved), false)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.PlanDrifted");
    assert!(err.to_string().contains("revision 3"), "{err}");

    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    e.kube
        .merge_patch_deployment(NS, "backend", &json!({"spec": {"paused": true}}))
        .unwrap();
    let err = e
        .call(&["backend"], undo_input(&resolved), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("paused"), "{err}");
    assert_eq!(e.images("backend"), vec!["img:hotfix"]);
}

#[tokio::test]
async fn the_token_sent_is_an_eks_token_by_the_servers_rules() {
    // The local API here accepts only EKS tokens; everything above authenticated with the one
    // deploy-undo built. Check the token it sends is well-formed by the server's own rules.
    let e = env("token-shape").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 1)
        .unwrap();
    e.resolve(&["backend"], json!([])).await;
    assert!(e.kube.requests().iter().all(|r| r.status != 401));
    let creds = rollback_core::aws::for_endpoint("http://127.0.0.1:1", "us-east-1");
    let cache =
        rollback_core::eks_token::TokenCache::from_sdk_config(&creds, "token-shape").unwrap();
    let token = cache.token().await.unwrap();
    rollback_kube_api::validate_eks_token(token.secret(), Some("us-east-1"), chrono::Utc::now())
        .unwrap();
}
