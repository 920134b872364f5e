//! The deployment controller's revision bookkeeping and rollout progress.

mod common;

use common::{annotation, client, deployment, image, progressing_reason};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rollback_kube_api::{
    DEFAULT_TOKEN, LocalKube, Options, POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY,
};
use serde_json::json;

fn revisions(kube: &LocalKube, ns: &str, name: &str) -> Vec<(String, String)> {
    kube.replica_sets(ns, name)
        .iter()
        .map(|rs| {
            let rev = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION).cloned())
                .unwrap_or_default();
            let img = rs
                .spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .and_then(|s| s.containers[0].image.clone())
                .unwrap_or_default();
            (rev, img)
        })
        .collect()
}

#[tokio::test]
async fn template_changes_create_revisions_and_rollback_adopts_the_old_replica_set() {
    let kube = LocalKube::start(Options::http()).await.unwrap();
    let d = kube
        .seed_two_revisions("mint", "web", "app", "web:stable", "web:bad", 2)
        .unwrap();
    assert_eq!(annotation(&d, REVISION).as_deref(), Some("2"));
    assert_eq!(
        revisions(&kube, "mint", "web"),
        vec![
            ("1".into(), "web:stable".into()),
            ("2".into(), "web:bad".into())
        ]
    );

    let rss = kube.replica_sets("mint", "web");
    let hash = rss[0].metadata.labels.as_ref().unwrap()[POD_TEMPLATE_HASH].clone();
    assert_eq!(
        rss[0].metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(
        rss[0].spec.selector.match_labels.as_ref().unwrap()[POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(rss[0].spec.replicas, Some(0), "old ReplicaSet scaled down");
    assert_eq!(rss[1].spec.replicas, Some(2));
    assert_eq!(
        rss[0].metadata.annotations.as_ref().unwrap()["kubernetes.io/change-cause"],
        "release web:stable",
        "change-cause copied to the ReplicaSet"
    );

    // Going back to the stable template re-uses revision 1's ReplicaSet as revision 3.
    kube.set_images("mint", "web", &[("app", "web:stable")], None)
        .unwrap();
    assert_eq!(
        revisions(&kube, "mint", "web"),
        vec![
            ("2".into(), "web:bad".into()),
            ("3".into(), "web:stable".into())
        ]
    );
    let adopted = kube.replica_sets("mint", "web").pop().unwrap();
    assert_eq!(
        adopted.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(
        adopted.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY],
        "1"
    );
    let d = kube.deployment("mint", "web").unwrap();
    assert_eq!(annotation(&d, REVISION).as_deref(), Some("3"));
    let status = d.status.unwrap();
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.available_replicas
        ),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(status.observed_generation, d.metadata.generation);
}

#[tokio::test]
async fn old_replica_sets_are_pruned_to_the_history_limit() {
    let kube = LocalKube::start(Options::http()).await.unwrap();
    let mut d = deployment("web", "web:0", 1);
    d.metadata.namespace = Some("mint".into());
    d.spec.revision_history_limit = Some(2);
    kube.create_deployment(&d).unwrap();
    for i in 1..=5 {
        kube.set_images("mint", "web", &[("app", &format!("web:{i}"))], None)
            .unwrap();
    }
    let revs: Vec<String> = revisions(&kube, "mint", "web")
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(
        revs,
        vec!["4", "5", "6"],
        "new ReplicaSet plus the two newest old ones"
    );

    // Limit 0: no history at all.
    kube.merge_patch_deployment("mint", "web", &json!({"spec": {"revisionHistoryLimit": 0}}))
        .unwrap();
    assert_eq!(
        revisions(&kube, "mint", "web"),
        vec![("6".into(), "web:5".into())]
    );
}

#[tokio::test]
async fn paused_deployments_do_not_roll_out() {
    let kube = LocalKube::start(Options::default()).await.unwrap();
    let api: Api<Deployment> = Api::namespaced(client(&kube, DEFAULT_TOKEN).await, "mint");
    api.create(&PostParams::default(), &deployment("web", "web:1", 2))
        .await
        .unwrap();
    let pp = PatchParams::default();
    api.patch(
        "web",
        &pp,
        &Patch::Strategic(json!({"spec": {"paused": true}})),
    )
    .await
    .unwrap();
    kube.set_images("mint", "web", &[("app", "web:2")], None)
        .unwrap();
    let d = kube.deployment("mint", "web").unwrap();
    assert_eq!(image(&d), "web:2");
    assert_eq!(
        kube.replica_sets("mint", "web").len(),
        1,
        "no new ReplicaSet while paused"
    );
    assert_eq!(annotation(&d, REVISION).as_deref(), Some("1"));
    assert_eq!(progressing_reason(&d).as_deref(), Some("DeploymentPaused"));

    // Scaling still works while paused.
    api.patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .unwrap();
    assert_eq!(kube.replica_sets("mint", "web")[0].spec.replicas, Some(4));

    api.patch(
        "web",
        &pp,
        &Patch::Strategic(json!({"spec": {"paused": null}})),
    )
    .await
    .unwrap();
    let d = kube.deployment("mint", "web").unwrap();
    assert_eq!(annotation(&d, REVISION).as_deref(), Some("2"));
    assert_eq!(revisions(&kube, "mint", "web").last().unwrap().1, "web:2");
    assert_eq!(
        progressing_reason(&d).as_deref(),
        Some("NewReplicaSetAvailable")
    );
}

#[tokio::test]
async fn stepwise_progress_and_deadline_expiry() {
    let kube = LocalKube::start(Options::http()).await.unwrap();
    kube.seed_deployment("mint", "web", &[("app", "web:1")], 2, None)
        .unwrap();
    kube.set_auto_progress(false);
    kube.set_images("mint", "web", &[("app", "web:2")], None)
        .unwrap();

    let d = kube.deployment("mint", "web").unwrap();
    let st = d.status.clone().unwrap();
    assert_eq!(
        progressing_reason(&d).as_deref(),
        Some("NewReplicaSetCreated")
    );
    assert_eq!(
        st.updated_replicas.unwrap_or(0),
        0,
        "zero counts are omitted, as in the API"
    );
    assert_eq!(st.replicas, Some(2), "old pods still running");
    assert_eq!(st.observed_generation, d.metadata.generation);

    assert!(kube.step());
    let d = kube.deployment("mint", "web").unwrap();
    assert_eq!(progressing_reason(&d).as_deref(), Some("ReplicaSetUpdated"));
    assert!(d.status.unwrap().updated_replicas.unwrap() >= 1);

    // Stuck: no progress, deadline passes.
    kube.expire_progress_deadline("mint", "web").unwrap();
    let d = kube.deployment("mint", "web").unwrap();
    assert_eq!(
        progressing_reason(&d).as_deref(),
        Some("ProgressDeadlineExceeded")
    );
    let cond = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .unwrap();
    assert_eq!(cond.status.as_deref(), Some("False"));

    // Progress resumes and completes.
    let steps = kube.settle(50);
    assert!(steps > 0 && steps < 50);
    let d = kube.deployment("mint", "web").unwrap();
    assert_eq!(
        progressing_reason(&d).as_deref(),
        Some("NewReplicaSetAvailable")
    );
    let st = d.status.unwrap();
    assert_eq!(
        (st.replicas, st.updated_replicas, st.available_replicas),
        (Some(2), Some(2), Some(2))
    );
    assert!(!kube.step(), "settled");
}

#[tokio::test]
async fn orphan_replica_sets_are_adopted() {
    let kube = LocalKube::start(Options::http()).await.unwrap();
    kube.seed_deployment("mint", "web", &[("app", "web:1")], 1, None)
        .unwrap();
    let mut rs = kube.replica_sets("mint", "web").pop().unwrap();
    // An orphan with an older template that matches the deployment's selector.
    rs.metadata = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some("web-orphan".into()),
        namespace: Some("mint".into()),
        labels: rs.metadata.labels.clone(),
        annotations: Some([(REVISION.to_string(), "7".to_string())].into()),
        ..Default::default()
    };
    rs.spec
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("web:0".into());
    rs.status = None;
    kube.create_replica_set(&rs).unwrap();
    let revs = revisions(&kube, "mint", "web");
    assert_eq!(revs.len(), 2, "adopted: {revs:?}");
    // The current ReplicaSet must stay the newest revision, so it moves above the orphan's 7
    // (as the real controller does), and the next rollout continues from there.
    assert_eq!(
        revs.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        vec!["7", "8"]
    );
    assert_eq!(
        annotation(&kube.deployment("mint", "web").unwrap(), REVISION).as_deref(),
        Some("8")
    );
    kube.set_images("mint", "web", &[("app", "web:2")], None)
        .unwrap();
    assert_eq!(
        annotation(&kube.deployment("mint", "web").unwrap(), REVISION).as_deref(),
        Some("9")
    );
}
