//! The API surface through a real client (kube-rs over HTTPS with the generated CA).

mod common;

use std::time::Duration;

use common::{annotation, client, code, deployment, image};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use rollback_kube_api::{DEFAULT_TOKEN, LocalKube, Options};
use serde_json::json;

#[tokio::test]
async fn crud_with_conflicts_and_selectors() {
    let kube = LocalKube::start(Options::default()).await.unwrap();
    let client = client(&kube, DEFAULT_TOKEN).await;
    let web: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let other: Api<Deployment> = Api::namespaced(client.clone(), "other");

    let created = web
        .create(&PostParams::default(), &deployment("web", "web:1", 2))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    assert_eq!(
        code(
            web.create(&PostParams::default(), &deployment("web", "web:1", 2))
                .await
                .unwrap_err()
        ),
        409
    );
    other
        .create(&PostParams::default(), &deployment("api", "api:1", 1))
        .await
        .unwrap();

    // Label selectors, per namespace and across namespaces.
    let all: Api<Deployment> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default().labels("tier=web"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        web.list(&ListParams::default().labels("tier=web"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        all.list(&ListParams::default().labels("app in (api)"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        all.list(&ListParams::default().labels("app notin (api,web)"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );

    // PUT with a stale resourceVersion is a conflict; with the current one it applies.
    let mut stale = created.clone();
    stale.spec.replicas = Some(5);
    assert_eq!(
        code(
            web.replace("web", &PostParams::default(), &stale)
                .await
                .unwrap_err()
        ),
        409
    );
    let mut current = web.get("web").await.unwrap();
    current.spec.replicas = Some(5);
    let replaced = web
        .replace("web", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(replaced.spec.replicas, Some(5));
    assert_eq!(
        replaced.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );

    // Metadata-only change keeps generation.
    let labelled = web
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));

    // Strategic merge: containers merge by name (env added, image kept).
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]}}}});
    let patched = web
        .patch("web", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let c = &patched.spec.template.spec.as_ref().unwrap().containers;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].image.as_deref(), Some("web:1"));
    assert_eq!(c[0].env.as_ref().unwrap()[0].name, "A");

    // Invalid: the template no longer matches the selector.
    let bad = json!({"spec": {"template": {"metadata": {"labels": {"app": "nope"}}}}});
    assert_eq!(
        code(
            web.patch("web", &PatchParams::default(), &Patch::Merge(bad))
                .await
                .unwrap_err()
        ),
        422
    );
    // Selector is immutable.
    let sel = json!({"spec": {"selector": {"matchLabels": {"app": "web", "v": "2"}}, "template": {"metadata": {"labels": {"v": "2"}}}}});
    assert_eq!(
        code(
            web.patch("web", &PatchParams::default(), &Patch::Merge(sel))
                .await
                .unwrap_err()
        ),
        422
    );

    web.delete("web", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(web.get("web").await.unwrap_err()), 404);
    let rs: Api<ReplicaSet> = Api::namespaced(client, "shop");
    assert!(
        rs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "owned ReplicaSets are garbage-collected"
    );
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let kube = LocalKube::start(Options::default()).await.unwrap();
    let client = client(&kube, DEFAULT_TOKEN).await;
    let api: Api<Deployment> = Api::namespaced(client, "shop");
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answered = api
        .create(&dry, &deployment("web", "web:1", 2))
        .await
        .unwrap();
    assert_eq!(
        answered.spec.revision_history_limit,
        Some(10),
        "dry run still defaults"
    );
    assert!(kube.deployment("shop", "web").is_none());

    api.create(&PostParams::default(), &deployment("web", "web:1", 2))
        .await
        .unwrap();
    let before = kube.deployment("shop", "web").unwrap();
    let patch = Patch::Strategic(
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}}),
    );
    let answered = api
        .patch("web", &PatchParams::default().dry_run(), &patch)
        .await
        .unwrap();
    assert_eq!(image(&answered), "web:2");
    assert_eq!(kube.deployment("shop", "web").unwrap(), before);
    assert_eq!(
        kube.replica_sets("shop", "web").len(),
        1,
        "no rollout from a dry run"
    );
    let invalid = Patch::Merge(json!({"spec": {"replicas": -1}}));
    assert_eq!(
        code(
            api.patch("web", &PatchParams::default().dry_run(), &invalid)
                .await
                .unwrap_err()
        ),
        422
    );
}

#[tokio::test]
async fn scale_subresource_to_zero_and_back() {
    let kube = LocalKube::start(Options::default()).await.unwrap();
    let client = client(&kube, DEFAULT_TOKEN).await;
    let api: Api<Deployment> = Api::namespaced(client, "shop");
    api.create(&PostParams::default(), &deployment("web", "web:1", 3))
        .await
        .unwrap();

    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );

    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    let d = kube.deployment("shop", "web").unwrap();
    assert_eq!(d.spec.replicas, Some(0));
    assert_eq!(d.status.as_ref().unwrap().replicas.unwrap_or(0), 0);
    assert_eq!(kube.replica_sets("shop", "web")[0].spec.replicas, Some(0));

    let mut scale = api.get_scale("web").await.unwrap();
    scale.spec.as_mut().unwrap().replicas = Some(3);
    api.replace_scale("web", &PostParams::default(), &scale)
        .await
        .unwrap();
    let d = kube.deployment("shop", "web").unwrap();
    assert_eq!(d.status.as_ref().unwrap().available_replicas, Some(3));
    assert_eq!(
        kube.replica_sets("shop", "web").len(),
        1,
        "scaling is not a new revision"
    );
    assert_eq!(
        annotation(&d, rollback_kube_api::REVISION).as_deref(),
        Some("1")
    );

    // A stale resourceVersion on the scale is a conflict too.
    assert_eq!(
        code(
            api.replace_scale("web", &PostParams::default(), &scale)
                .await
                .unwrap_err()
        ),
        409
    );
}

#[tokio::test]
async fn auth_rejects_missing_and_malformed_tokens() {
    let kube = LocalKube::start(Options::default()).await.unwrap();
    let bad = client(&kube, "wrong-token").await;
    let api: Api<Deployment> = Api::namespaced(bad, "shop");
    assert_eq!(
        code(api.list(&ListParams::default()).await.unwrap_err()),
        401
    );
    let eks_bad = client(&kube, "k8s-aws-v1.aHR0cHM6Ly9leGFtcGxlLmNvbS8").await;
    let api: Api<Deployment> = Api::namespaced(eks_bad, "shop");
    assert_eq!(
        code(api.list(&ListParams::default()).await.unwrap_err()),
        401
    );

    // A well-formed EKS token (shape only; the signature cannot be checked offline).
    use base64::Engine;
    let now = chrono::Utc::now();
    let url = format!(
        "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKID%2F{}%2Feu-west-1%2Fsts%2Faws4_request&X-Amz-Date={}&X-Amz-Expires=60\
         &X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature={}",
        now.format("%Y%m%d"),
        now.format("%Y%m%dT%H%M%SZ"),
        "0".repeat(64)
    );
    let token = format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    );
    let eks = client(&kube, &token).await;
    let api: Api<Deployment> = Api::namespaced(eks, "shop");
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn injected_faults_then_recovery() {
    let kube = LocalKube::start(Options::http()).await.unwrap();
    let client = client(&kube, DEFAULT_TOKEN).await;
    let api: Api<Deployment> = Api::namespaced(client, "shop");
    kube.fail_next(1, 500);
    assert_eq!(
        code(api.list(&ListParams::default()).await.unwrap_err()),
        500
    );
    // kube's client retries 429 by itself: the fault is served, then the retry succeeds.
    kube.fail_next(1, 429);
    assert!(api.list(&ListParams::default()).await.is_ok());
    let last_two: Vec<u16> = kube
        .requests()
        .iter()
        .rev()
        .take(2)
        .map(|r| r.status)
        .collect();
    assert_eq!(last_two, vec![200, 429]);
    assert!(
        api.list(&ListParams::default()).await.is_ok(),
        "faults are used up"
    );

    kube.stall_next(1, Duration::from_millis(300));
    let started = std::time::Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(kube.requests().iter().any(|r| r.status == 429));
}

#[tokio::test]
async fn watch_sees_the_rollout() {
    let kube = LocalKube::start(Options::default()).await.unwrap();
    let client = client(&kube, DEFAULT_TOKEN).await;
    let api: Api<Deployment> = Api::namespaced(client, "shop");
    api.create(&PostParams::default(), &deployment("web", "web:1", 2))
        .await
        .unwrap();
    let list = api
        .list(&ListParams::default().fields("metadata.name=web"))
        .await
        .unwrap();
    let rv = list.metadata.resource_version.unwrap();

    let stream = api
        .watch(
            &WatchParams::default()
                .fields("metadata.name=web")
                .timeout(10),
            &rv,
        )
        .await
        .unwrap();
    kube.set_images("shop", "web", &[("app", "web:2")], None)
        .unwrap();
    let events: Vec<_> = tokio::time::timeout(
        Duration::from_secs(5),
        stream.take(1).try_collect::<Vec<_>>(),
    )
    .await
    .expect("an event within 5s")
    .unwrap();
    match &events[0] {
        WatchEvent::Modified(d) => assert_eq!(image(d), "web:2"),
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // Resuming from an old version replays what happened since.
    let replay = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap();
    let seen: Vec<_> = replay.try_collect().await.unwrap();
    assert!(seen.iter().any(|e| matches!(e, WatchEvent::Modified(_))));
}

#[tokio::test]
async fn plain_http_and_discovery() {
    let kube = LocalKube::start(Options::http()).await.unwrap();
    assert!(kube.url().starts_with("http://127.0.0.1:"));
    assert!(kube.ca_pem().is_none());
    let client = client(&kube, DEFAULT_TOKEN).await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let groups = client.list_api_groups().await.unwrap();
    assert_eq!(groups.groups[0].name, "apps");
    let resources = client.list_api_group_resources("apps/v1").await.unwrap();
    let names: Vec<&str> = resources
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    for want in [
        "deployments",
        "deployments/scale",
        "deployments/status",
        "replicasets",
        "replicasets/scale",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
}
