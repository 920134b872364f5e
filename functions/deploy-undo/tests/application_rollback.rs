//! The whole application rollback, as the state machine runs it: retag resolve → deploy-undo
//! resolve → retag apply → deploy-undo undo → deploy-undo status until complete. ECR and EKS
//! are moto; the cluster is the local Kubernetes API (reached with the EKS token path).

mod common;

use aws_sdk_ecr::types::ImageIdentifier;
use common::{NS, env};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_kube_api::MintImages;
use serde_json::{Value, json};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

fn manifest(flavour: &str) -> String {
    let digest = |n: &str| {
        use sha2::Digest;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(format!("{flavour}-{n}")))
        )
    };
    serde_json::to_string(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 100, "digest": digest("config")},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 200, "digest": digest("layer")}],
    }))
    .unwrap()
}

async fn push(ecr: &aws_sdk_ecr::Client, repo: &str, flavour: &str, tag: &str) -> String {
    let out = ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(manifest(flavour))
        .image_manifest_media_type("application/vnd.docker.distribution.manifest.v2+json")
        .image_tag(tag)
        .send()
        .await
        .unwrap();
    out.image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned()
}

async fn tag_digest(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> String {
    let out = ecr
        .describe_images()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .unwrap();
    out.image_details()[0].image_digest().unwrap().to_owned()
}

#[tokio::test]
async fn application_rollback_ends_on_the_stable_digests() {
    let e = env("mint-replica-eks").await;
    let ecr = aws_sdk_ecr::Client::new(&common::moto().sdk_config());
    let repos = ["mint-replica-backend", "mint-replica-frontend"];
    let mut stable = Vec::new();
    let mut bad = Vec::new();
    for repo in repos {
        ecr.create_repository()
            .repository_name(repo)
            .send()
            .await
            .unwrap();
        stable.push(push(&ecr, repo, &format!("{repo}-good"), "stable").await);
        bad.push(push(&ecr, repo, &format!("{repo}-bad"), "prod").await);
    }
    let pinned = |i: usize, digest: &str| format!("{REGISTRY}/{}@{digest}", repos[i]);
    e.kube
        .seed_mint_demo(&MintImages {
            backend_stable: pinned(0, &stable[0]),
            backend_bad: pinned(0, &bad[0]),
            frontend_stable: pinned(1, &stable[1]),
            frontend_bad: pinned(1, &bad[1]),
        })
        .unwrap();

    let deployments = ["backend-deployment", "frontend-deployment"];
    let plan = json!({
        "service": "mint-replica",
        "images": repos.iter().map(|r| json!({"repository": r, "release_tag": "prod", "stable_tag": "stable"})).collect::<Vec<_>>(),
        "cluster": {"name": e.cluster, "namespace": NS, "deployments": deployments},
    });
    let envelope = |action: Value| {
        let mut input = action;
        input["plan"] = plan.clone();
        input["execution"] = json!("alarm-mint-replica-5xx-20240501T120000Z");
        input
    };
    // retag under its role, as deploy-undo is under its own (`e.gate`).
    let retag_gate = IamGate::start(
        &common::moto().endpoint(),
        "retag",
        &test_stack("mint-replica"),
    );
    let retag = rollback_retag::Clients::new(&retag_gate.sdk_config());

    // 1. retag resolve
    let images = rollback_retag::handle(&retag, envelope(json!({"action": "resolve"})))
        .await
        .unwrap()["images"]
        .clone();
    for (i, image) in images.as_array().unwrap().iter().enumerate() {
        assert_eq!(image["stable_digest"], json!(stable[i]));
        assert_eq!(image["release_digest"], json!(bad[i]));
        assert_eq!(image["retag_needed"], true);
    }

    // 2. deploy-undo resolve, checked against the stable digests
    let resolved = rollback_deploy_undo::handle(
        &e.clients,
        envelope(json!({"action": "resolve", "images": images})),
    )
    .await
    .unwrap();
    for d in resolved["deployments"].as_array().unwrap() {
        assert_eq!(
            (
                d["current_revision"].as_i64(),
                d["target_revision"].as_i64()
            ),
            (Some(2), Some(1)),
            "{d}"
        );
        assert_eq!(d["matches_stable"], true, "{d}");
    }
    assert!(resolved["release_time"].is_string(), "{resolved}");
    assert_eq!(resolved["warnings"], json!([]));

    // 3. retag apply
    let applied = rollback_retag::handle(
        &retag,
        envelope(json!({"action": "apply", "images": images})),
    )
    .await
    .unwrap();
    assert!(
        applied["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["outcome"] == "retagged"),
        "{applied}"
    );

    // 4. undo, with pods coming up one step at a time
    e.kube.set_auto_progress(false);
    let undone = rollback_deploy_undo::handle(
        &e.clients,
        envelope(json!({"action": "undo", "deployments": resolved["deployments"]})),
    )
    .await
    .unwrap();
    assert!(
        undone["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["outcome"] == "rolled-back"),
        "{undone}"
    );

    // 5. status until complete (bounded)
    let mut polls = 0;
    loop {
        let status =
            rollback_deploy_undo::handle(&e.clients, envelope(json!({"action": "status"})))
                .await
                .unwrap();
        if status["complete"] == true {
            break;
        }
        polls += 1;
        assert!(polls < 100, "rollout never completed: {status}");
        e.kube.step();
    }
    assert!(
        polls > 0,
        "the rollout was observed in progress before completing"
    );

    for (i, name) in deployments.iter().enumerate() {
        let d = e.kube.deployment(NS, name).unwrap();
        let images: Vec<String> = d
            .spec
            .template
            .spec
            .unwrap()
            .containers
            .into_iter()
            .filter_map(|c| c.image)
            .collect();
        assert_eq!(
            images,
            vec![pinned(i, &stable[i])],
            "{name} runs the stable digest"
        );
        assert_eq!(
            tag_digest(&ecr, repos[i], "prod").await,
            stable[i],
            "{} prod → stable",
            repos[i]
        );
    }
}
