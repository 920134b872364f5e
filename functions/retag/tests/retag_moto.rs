//! retag against a real moto server: every manifest media type, no-op, idempotency, missing
//! stable tag, drill, drift and immutable tags. moto's ECR digests are not sha256 of the
//! manifest, so digests are only ever read back from ECR, never computed by the code under test.

use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability};
use rollback_core::contract::retag::{
    ApplyOutput, ResolveOutput, RetagOutcome, drill_tag, rolled_back_tag,
};
use rollback_core::plan::Plan;
use rollback_core::resolved::ImageResolution;
use rollback_core::{ExecutionId, Mode, Scope};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use rollback_retag::{ACCEPTED_MEDIA_TYPES, Clients, apply, resolve};
use serde_json::json;
use sha2::{Digest, Sha256};

const DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The plan's service: the role's repositories are `mint-replica-*` and `mint-replica/*`.
const SERVICE: &str = "mint-replica";

/// What the test seeds and asserts with: moto directly (one per test process).
fn clients() -> Clients {
    let moto = MotoServer::shared();
    Clients::new(&moto.sdk_config(), moto.decision_key())
}

/// What retag runs with: its own role, checked against the template on every call.
fn gate() -> IamGate {
    IamGate::start(
        &MotoServer::shared().endpoint(),
        "retag",
        &test_stack(SERVICE),
    )
}

/// retag's clients: its own credentials, through `gate`.
fn retag(gate: &IamGate) -> Clients {
    Clients::new(&gate.sdk_config(), MotoServer::shared().decision_key())
}

fn sha(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// A manifest of `media_type` whose content depends on `flavour` (stable / bad / …).
fn manifest(media_type: &str, flavour: &str) -> String {
    let layer = |n: &str| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1234, "digest": sha(&format!("{flavour}-{n}"))});
    let value = match media_type {
        DOCKER | OCI => json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 321, "digest": sha(&format!("{flavour}-config"))},
            "layers": [layer("a"), layer("b")],
        }),
        _ => {
            let child = if media_type == DOCKER_LIST {
                DOCKER
            } else {
                OCI
            };
            json!({
                "schemaVersion": 2,
                "mediaType": media_type,
                "manifests": [
                    {"mediaType": child, "size": 500, "digest": sha(&format!("{flavour}-amd64")), "platform": {"architecture": "amd64", "os": "linux"}},
                    {"mediaType": child, "size": 500, "digest": sha(&format!("{flavour}-arm64")), "platform": {"architecture": "arm64", "os": "linux"}},
                ],
            })
        }
    };
    serde_json::to_string_pretty(&value).unwrap()
}

async fn create_repo(c: &Clients, repo: &str, immutable: bool) {
    let mut req = c.ecr.create_repository().repository_name(repo);
    if immutable {
        req = req.image_tag_mutability(ImageTagMutability::Immutable);
    }
    req.send().await.unwrap();
}

async fn push(c: &Clients, repo: &str, media_type: &str, body: &str, tag: &str) -> String {
    let mut req = c
        .ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(body)
        .image_manifest_media_type(media_type)
        .image_tag(tag);
    // moto makes up a digest for manifests without layers from a random number below 101, so
    // two indexes could collide; give it one (ECR would compute the same from the bytes).
    if media_type == DOCKER_LIST || media_type == OCI_INDEX {
        req = req.image_digest(sha(body));
    }
    let out = req.send().await.unwrap();
    out.image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned()
}

async fn digest_of(c: &Clients, repo: &str, tag: &str) -> Option<String> {
    let out = c
        .ecr
        .describe_images()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .ok()?;
    out.image_details()
        .first()?
        .image_digest()
        .map(str::to_owned)
}

async fn manifest_of(c: &Clients, repo: &str, tag: &str) -> (String, String) {
    let out = c
        .ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .set_accepted_media_types(Some(
            ACCEPTED_MEDIA_TYPES.iter().map(|s| s.to_string()).collect(),
        ))
        .send()
        .await
        .unwrap();
    let image = &out.images()[0];
    (
        image.image_manifest().unwrap().to_owned(),
        image
            .image_manifest_media_type()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn plan(repos: &[&str]) -> Plan {
    let images: Vec<_> = repos
        .iter()
        .map(|r| json!({"repository": r, "release_tag": "prod", "stable_tag": "stable"}))
        .collect();
    Plan::from_value(json!({"service": "mint-replica", "images": images})).unwrap()
}

/// A repository whose `stable` tag is a good image and `prod` a bad one.
async fn seed(c: &Clients, repo: &str, media_type: &str) -> (String, String) {
    create_repo(c, repo, false).await;
    let stable = push(c, repo, media_type, &manifest(media_type, "good"), "stable").await;
    let bad = push(c, repo, media_type, &manifest(media_type, "bad"), "prod").await;
    assert_ne!(stable, bad);
    (stable, bad)
}

async fn resolved(c: &Clients, plan: &Plan) -> Vec<ImageResolution> {
    resolve(c, plan).await.unwrap().images
}

#[tokio::test]
async fn every_manifest_media_type_is_retagged_byte_for_byte_and_the_bad_digest_kept() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let exec = ExecutionId::new("exec-media-types");
    for (i, media_type) in [DOCKER, DOCKER_LIST, OCI, OCI_INDEX]
        .into_iter()
        .enumerate()
    {
        let repo = format!("mint-replica/media/type-{i}");
        let (stable, bad) = seed(&c, &repo, media_type).await;
        let plan = plan(&[&repo]);
        let images = resolved(&rt, &plan).await;
        let r = &images[0];
        assert_eq!(
            (r.stable_digest.as_str(), r.release_digest.as_deref()),
            (stable.as_str(), Some(bad.as_str()))
        );
        assert!(r.retag_needed && !r.immutable_tags, "{r:?}");
        assert!(r.stable_pushed_at.is_some() && r.release_pushed_at.is_some());

        let out = apply(&rt, &plan, &exec, Mode::Live, &images).await.unwrap();
        let result = &out.images[0];
        assert_eq!(
            result.outcome,
            RetagOutcome::Retagged,
            "{media_type}: {result:?}"
        );
        assert_eq!(result.media_type, media_type);
        assert_eq!(result.previous_digest.as_deref(), Some(bad.as_str()));
        assert_eq!(
            result.kept_as.as_deref(),
            Some(rolled_back_tag(&exec).as_str())
        );

        assert_eq!(
            digest_of(&c, &repo, "prod").await.as_deref(),
            Some(stable.as_str()),
            "{media_type}"
        );
        assert_eq!(
            digest_of(&c, &repo, &rolled_back_tag(&exec))
                .await
                .as_deref(),
            Some(bad.as_str())
        );
        assert_eq!(
            digest_of(&c, &repo, "stable").await.as_deref(),
            Some(stable.as_str())
        );
        let (body, served_type) = manifest_of(&c, &repo, "prod").await;
        assert_eq!(
            body,
            manifest(media_type, "good"),
            "{media_type}: same manifest bytes"
        );
        assert_eq!(served_type, media_type);
    }
}

#[tokio::test]
async fn release_already_at_stable_is_a_reported_no_op() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let repo = "mint-replica/noop/app";
    create_repo(&c, repo, false).await;
    let body = manifest(OCI, "good");
    let stable = push(&c, repo, OCI, &body, "stable").await;
    push_existing_tag(&c, repo, OCI, &body, "prod").await;
    let plan = plan(&[repo]);
    let images = resolved(&rt, &plan).await;
    assert!(!images[0].retag_needed);
    assert!(
        images[0]
            .note
            .as_deref()
            .unwrap()
            .contains("nothing to retag")
    );
    let exec = ExecutionId::new("exec-noop");
    let out = apply(&rt, &plan, &exec, Mode::Live, &images).await.unwrap();
    assert_eq!(out.images[0].outcome, RetagOutcome::AlreadyStable);
    assert_eq!(out.images[0].kept_as, None);
    assert_eq!(
        digest_of(&c, repo, "prod").await.as_deref(),
        Some(stable.as_str())
    );
    assert_eq!(
        digest_of(&c, repo, &rolled_back_tag(&exec)).await,
        None,
        "nothing written"
    );
}

/// Adds `tag` to an image already in the repository (same manifest bytes).
async fn push_existing_tag(c: &Clients, repo: &str, media_type: &str, body: &str, tag: &str) {
    c.ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(body)
        .image_manifest_media_type(media_type)
        .image_tag(tag)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn apply_is_idempotent_under_retries_and_after_a_partial_attempt() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let repo = "mint-replica/idem/app";
    let (stable, bad) = seed(&c, repo, DOCKER).await;
    let plan = plan(&[repo]);
    let images = resolved(&rt, &plan).await;
    let exec = ExecutionId::new("exec-idem");
    // A first attempt that died after keeping the bad digest but before moving the tag.
    push_existing_tag(
        &c,
        repo,
        DOCKER,
        &manifest(DOCKER, "bad"),
        &rolled_back_tag(&exec),
    )
    .await;
    let first: ApplyOutput = apply(&rt, &plan, &exec, Mode::Live, &images).await.unwrap();
    assert_eq!(first.images[0].outcome, RetagOutcome::Retagged);
    // Step Functions retries the whole step with the same input.
    let second = apply(&rt, &plan, &exec, Mode::Live, &images).await.unwrap();
    assert_eq!(second.images[0].outcome, RetagOutcome::AlreadyStable);
    assert_eq!(
        second.images[0].kept_as.as_deref(),
        Some(rolled_back_tag(&exec).as_str())
    );
    assert_eq!(
        digest_of(&c, repo, "prod").await.as_deref(),
        Some(stable.as_str())
    );
    assert_eq!(
        digest_of(&c, repo, &rolled_back_tag(&exec))
            .await
            .as_deref(),
        Some(bad.as_str())
    );
}

#[tokio::test]
async fn a_missing_stable_tag_is_named() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let repo = "mint-replica/missing/stable";
    create_repo(&c, repo, false).await;
    push(&c, repo, DOCKER, &manifest(DOCKER, "bad"), "prod").await;
    let err = resolve(&rt, &plan(&[repo])).await.unwrap_err();
    assert_eq!(err.error_name(), "Rollback.StableImageNotFound");
    let text = err.to_string();
    assert!(text.contains(repo) && text.contains("\"stable\""), "{text}");

    let err = resolve(&rt, &plan(&["mint-replica/no-such/repository"]))
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.StableImageNotFound");
    assert!(
        err.to_string().contains("mint-replica/no-such/repository"),
        "{err}"
    );
}

#[tokio::test]
async fn drill_writes_only_the_drill_tag() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let repo = "mint-replica/drill/app";
    let (stable, bad) = seed(&c, repo, OCI_INDEX).await;
    let plan = plan(&[repo]);
    let images = resolved(&rt, &plan).await;
    let exec = ExecutionId::new("exec-drill");
    for _ in 0..2 {
        let out = apply(&rt, &plan, &exec, Mode::Drill, &images)
            .await
            .unwrap();
        assert!(out.drill);
        assert_eq!(out.images[0].outcome, RetagOutcome::DrillTagged);
        assert_eq!(out.images[0].tag, drill_tag(&exec));
    }
    assert_eq!(
        digest_of(&c, repo, &drill_tag(&exec)).await.as_deref(),
        Some(stable.as_str())
    );
    assert_eq!(
        digest_of(&c, repo, "prod").await.as_deref(),
        Some(bad.as_str()),
        "release tag untouched"
    );
    assert_eq!(digest_of(&c, repo, &rolled_back_tag(&exec)).await, None);
}

#[tokio::test]
async fn drift_since_approval_is_refused() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let exec = ExecutionId::new("exec-drift");

    // The stable tag moved to another image after approval.
    let repo = "mint-replica/drift/stable";
    seed(&c, repo, DOCKER).await;
    let plan_a = plan(&[repo]);
    let images = resolved(&rt, &plan_a).await;
    push(&c, repo, DOCKER, &manifest(DOCKER, "newer-good"), "stable").await;
    let err = apply(&rt, &plan_a, &exec, Mode::Live, &images)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.PlanDrifted");
    assert!(err.to_string().contains(&images[0].stable_digest), "{err}");

    // A new release was pushed after approval.
    let repo = "mint-replica/drift/release";
    let (_, bad) = seed(&c, repo, DOCKER).await;
    let plan_b = plan(&[repo]);
    let images = resolved(&rt, &plan_b).await;
    push(&c, repo, DOCKER, &manifest(DOCKER, "hotfix"), "prod").await;
    let err = apply(&rt, &plan_b, &exec, Mode::Live, &images)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.PlanDrifted");
    assert!(err.to_string().contains(&bad), "{err}");
    assert_eq!(
        digest_of(&c, repo, &rolled_back_tag(&exec)).await,
        None,
        "nothing written"
    );
}

#[tokio::test]
async fn immutable_tags_are_reported_before_approval_and_refused_clearly() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let repo = "mint-replica/immutable/app";
    create_repo(&c, repo, true).await;
    let stable = push(&c, repo, DOCKER, &manifest(DOCKER, "good"), "stable").await;
    push(&c, repo, DOCKER, &manifest(DOCKER, "bad"), "prod").await;
    let plan = plan(&[repo]);
    let images = resolved(&rt, &plan).await;
    assert!(images[0].immutable_tags && images[0].retag_needed);
    assert!(
        images[0].note.as_deref().unwrap().contains("immutable"),
        "{:?}",
        images[0].note
    );
    let exec = ExecutionId::new("exec-immutable");
    let err = apply(&rt, &plan, &exec, Mode::Live, &images)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.RetagFailed");
    assert!(
        err.to_string().contains("immutable") && err.to_string().contains(repo),
        "{err}"
    );
    // A drill only adds a new tag, which immutable repositories allow.
    let out = apply(&rt, &plan, &exec, Mode::Drill, &images)
        .await
        .unwrap();
    assert_eq!(out.images[0].outcome, RetagOutcome::DrillTagged);
    assert_eq!(
        digest_of(&c, repo, &drill_tag(&exec)).await.as_deref(),
        Some(stable.as_str())
    );
}

#[tokio::test]
async fn the_handler_speaks_the_step_envelope() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let repo = "mint-replica/envelope/app";
    let (stable, _) = seed(&c, repo, DOCKER).await;
    let plan = json!({"service": "mint-replica", "images": [{"repository": repo, "release_tag": "prod", "stable_tag": "stable"}]});
    let out = rollback_retag::handle(
        &rt,
        json!({"action": "resolve", "plan": plan, "execution": "exec-envelope"}),
    )
    .await
    .unwrap();
    let resolved: ResolveOutput = serde_json::from_value(out.clone()).unwrap();
    assert_eq!(resolved.images[0].stable_digest, stable);
    let applied = rollback_retag::handle(
        &rt,
        json!({"action": "apply", "images": out["images"], "plan": plan, "execution": "exec-envelope",
               "request": {"trigger": {"kind": "manual"}, "reason": "test", "mode": "drill"}}),
    )
    .await
    .unwrap();
    assert_eq!(applied["images"][0]["outcome"], "drill-tagged");
    let err = rollback_retag::handle(
        &rt,
        json!({"action": "apply", "plan": plan, "execution": "e"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.InvalidInput");
}

/// Anyone in the account with `lambda:InvokeFunction` on retag can send it any envelope: a
/// live `apply` refuses without a signed decision for this execution, plan and images, and
/// moves no tag.
#[tokio::test]
async fn a_direct_apply_without_a_decision_that_covers_it_moves_nothing() {
    let c = clients();
    let gate = gate();
    let rt = retag(&gate);
    let repo = "mint-replica/direct-invoke/app";
    let (stable, bad) = seed(&c, repo, DOCKER).await;
    let plan = json!({"service": SERVICE,
                      "images": [{"repository": repo, "release_tag": "prod", "stable_tag": "stable"}]});
    let resolved = rollback_retag::handle(
        &rt,
        json!({"action": "resolve", "plan": plan, "execution": "exec-direct"}),
    )
    .await
    .unwrap();
    let envelope = json!({"action": "apply", "images": resolved["images"], "plan": plan,
                          "execution": "exec-direct",
                          "request": {"trigger": {"kind": "manual"}, "reason": "test", "mode": "live"}});
    let moto = MotoServer::shared();
    let cases = rollback_moto::decision::refusal_cases(moto, &envelope, Scope::APP).await;
    assert_eq!(cases.len(), 6);
    for (case, input) in cases {
        let err = rollback_retag::handle(&rt, input)
            .await
            .expect_err(&format!("apply with {case} was not refused"));
        assert_eq!(err.error_name(), "Rollback.NotApproved", "{case}: {err}");
    }
    let puts = gate
        .proxy()
        .log()
        .iter()
        .filter(|r| r.request.operation == "PutImage")
        .count();
    assert_eq!(puts, 0, "a refused apply moved a tag");
    assert_eq!(digest_of(&c, repo, "prod").await, Some(bad));

    // With the decision the state machine passes, the same apply moves the tag.
    let mut approved = envelope.clone();
    rollback_moto::decision::approve(moto, &mut approved, Scope::APP).await;
    let out = rollback_retag::handle(&rt, approved).await.unwrap();
    assert_eq!(out["images"][0]["outcome"], "retagged", "{out}");
    assert_eq!(digest_of(&c, repo, "prod").await, Some(stable));
}
