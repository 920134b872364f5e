//! The whole application rollback, as the state machine runs it: retag resolve → deploy-undo
//! resolve → retag apply → deploy-undo undo → deploy-undo status until complete. ECR and EKS
//! are moto; the cluster is the local Kubernetes API (reached with the EKS token path).

mod common;

use common::{NS, REGISTRY, Retag, ecr, env, repository, tag_digest};
use rollback_kube_api::MintImages;
use rollback_moto::MotoServer;
use serde_json::{Value, json};

#[tokio::test]
async fn application_rollback_ends_on_the_stable_digests() {
    let e = env("mint-replica-eks").await;
    let ecr = ecr();
    let repos = ["mint-replica-backend", "mint-replica-frontend"];
    let mut stable = Vec::new();
    let mut bad = Vec::new();
    for repo in repos {
        let (s, b) = repository(&ecr, repo).await;
        stable.push(s);
        bad.push(b);
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
    let retag = Retag::new();

    // 1. retag resolve
    let images = retag.call(&plan, json!({"action": "resolve"})).await["images"].clone();
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
    let applied = retag
        .call(&plan, json!({"action": "apply", "images": images}))
        .await;
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
    let mut undo = envelope(json!({"action": "undo", "deployments": resolved["deployments"]}));
    rollback_moto::decision::approve(MotoServer::shared(), &mut undo, rollback_core::Scope::APP)
        .await;
    let undone = rollback_deploy_undo::handle(&e.clients, undo)
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
