//! The API surface through a real client (kube-rs over HTTPS with the generated CA).

mod common;

use std::time::{Duration, SystemTime};

use common::{
    CLUSTER, FUNCTION_USER, SECRET_KEY, annotation, client, code, deployment, eks_options,
    eks_token, function_token, image, shipped_rbac,
};
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
}

/// The 401 Status for a token, or None when the request got through authentication.
async fn unauthorized(kube: &LocalKube, token: &str) -> Option<kube::core::Status> {
    let api: Api<Deployment> = Api::namespaced(client(kube, token).await, "mint");
    match api.get("backend-deployment").await {
        Err(kube::Error::Api(s)) if s.code == 401 => Some(*s),
        _ => None,
    }
}

#[tokio::test]
async fn eks_tokens_are_verified_like_eks_does() {
    let kube = LocalKube::start(eks_options()).await.unwrap();
    kube.seed_mint_demo(&rollback_kube_api::MintImages::example())
        .unwrap();
    let now = SystemTime::now();

    // The function's token for this cluster works.
    assert!(unauthorized(&kube, &function_token()).await.is_none());
    let api: Api<Deployment> = Api::namespaced(client(&kube, &function_token()).await, "mint");
    api.get("backend-deployment").await.unwrap();

    // A token for another cluster, signed with the same good credentials.
    let other = unauthorized(&kube, &eks_token(SECRET_KEY, "other-cluster", now)).await;
    let other = other.expect("a token for another cluster is refused");
    assert_eq!(other.reason, "Unauthorized");
    assert!(
        other.message.contains("does not verify for cluster"),
        "{}",
        other.message
    );

    // Expired: X-Amz-Date 16 minutes ago (X-Amz-Expires says 60 s; EKS allows 15 minutes).
    let old = now - Duration::from_secs(16 * 60);
    let expired = unauthorized(&kube, &eks_token(SECRET_KEY, CLUSTER, old)).await;
    assert!(expired.expect("expired").message.contains("expired"));
    let fourteen = now - Duration::from_secs(14 * 60);
    assert!(
        unauthorized(&kube, &eks_token(SECRET_KEY, CLUSTER, fourteen))
            .await
            .is_none()
    );

    // A tampered signature, and a token signed with a secret the cluster does not know.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let good = function_token();
    let url = String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(good.strip_prefix("k8s-aws-v1.").unwrap())
            .unwrap(),
    )
    .unwrap();
    let at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &url[at..=at] == "a" { "b" } else { "a" };
    let tampered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    let tampered = format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(tampered));
    assert!(unauthorized(&kube, &tampered).await.is_some());
    assert!(
        unauthorized(&kube, &eks_token("guessed", CLUSTER, now))
            .await
            .is_some()
    );

    // The raw 401 body is the real Status object.
    let raw = reqwest_like_get(&kube, &tampered).await;
    assert_eq!(raw["kind"], "Status");
    assert_eq!(raw["status"], "Failure");
    assert_eq!(raw["reason"], "Unauthorized");
    assert_eq!(raw["code"], 401);
}

/// GET one deployment with `token` through kube's raw request path; the JSON body.
async fn reqwest_like_get(kube: &LocalKube, token: &str) -> serde_json::Value {
    let client = client(kube, token).await;
    let request =
        http::Request::get("/apis/apps/v1/namespaces/mint/deployments/backend-deployment")
            .body(Vec::new())
            .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn rbac_allows_the_function_exactly_the_shipped_role() {
    let kube = LocalKube::start(eks_options()).await.unwrap();
    kube.seed_mint_demo(&rollback_kube_api::MintImages::example())
        .unwrap();
    let function = client(&kube, &function_token()).await;
    let deployments: Api<Deployment> = Api::namespaced(function.clone(), "mint");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(function.clone(), "mint");

    let d = deployments.get("backend-deployment").await.unwrap();
    replica_sets.list(&ListParams::default()).await.unwrap();
    deployments
        .patch(
            "backend-deployment",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"x": "y"}}})),
        )
        .await
        .unwrap();
    let mut d = deployments.get("backend-deployment").await.unwrap_or(d);
    d.metadata.managed_fields = None;
    deployments
        .replace("backend-deployment", &PostParams::default(), &d)
        .await
        .unwrap();

    // Everything else is 403 with the API server's message.
    let err = |e: kube::Error| match e {
        kube::Error::Api(s) => *s,
        other => panic!("{other:?}"),
    };
    let denied = err(deployments
        .delete("backend-deployment", &DeleteParams::default())
        .await
        .unwrap_err());
    assert_eq!((denied.code, denied.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        denied.message,
        format!(
            "deployments.apps \"backend-deployment\" is forbidden: User \"{FUNCTION_USER}\" cannot \
             delete resource \"deployments\" in API group \"apps\" in the namespace \"mint\""
        )
    );
    let scale = err(deployments
        .patch_scale(
            "backend-deployment",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap_err());
    assert!(
        scale
            .message
            .contains("cannot patch resource \"deployments/scale\""),
        "{}",
        scale.message
    );
    let list = err(deployments.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        list.message,
        format!(
            "deployments.apps is forbidden: User \"{FUNCTION_USER}\" cannot list resource \
             \"deployments\" in API group \"apps\" in the namespace \"mint\""
        )
    );
    let elsewhere: Api<Deployment> = Api::namespaced(function.clone(), "default");
    assert_eq!(
        err(elsewhere.get("backend-deployment").await.unwrap_err()).code,
        403
    );
    let all: Api<ReplicaSet> = Api::all(function.clone());
    assert!(
        err(all.list(&ListParams::default()).await.unwrap_err())
            .message
            .ends_with("at the cluster scope")
    );

    // The admin token (the harness) is in system:masters and is never denied.
    let admin: Api<Deployment> = Api::namespaced(client(&kube, DEFAULT_TOKEN).await, "mint");
    admin.list(&ListParams::default()).await.unwrap();

    // A manifest without `update` takes it away at once, as `kubectl apply` would.
    let without_update = shipped_rbac().replace(
        r#"verbs: ["get", "patch", "update"]"#,
        r#"verbs: ["get", "patch"]"#,
    );
    kube.set_rbac(Some(
        rollback_kube_api::Rbac::from_manifest(&without_update).unwrap(),
    ));
    let d = deployments.get("backend-deployment").await.unwrap();
    let denied = err(deployments
        .replace("backend-deployment", &PostParams::default(), &d)
        .await
        .unwrap_err());
    assert!(
        denied
            .message
            .contains("cannot update resource \"deployments\""),
        "{}",
        denied.message
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
