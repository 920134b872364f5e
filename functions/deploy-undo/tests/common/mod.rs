//! Shared test setup: moto (for eks:DescribeCluster, behind the IAM gate: deploy-undo's role in
//! infra/template.yaml) plus a local Kubernetes API that only accepts verified EKS tokens and
//! authorizes them with the shipped RBAC manifest, reached through the endpoint/CA override.
#![allow(dead_code)]

use aws_sdk_ecr::types::ImageIdentifier;
use aws_sdk_eks::types::VpcConfigRequest;
use rollback_core::contract::deploy_undo::ResolveOutput;
use rollback_core::contract::deploy_undo::{KUBERNETES_GROUP, RBAC_MANIFEST};
use rollback_core::{ErrorKind, RollbackError};
use rollback_deploy_undo::{ApiOverride, Clients};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_fault_proxy::iam::access_key_id;
use rollback_kube_api::{AwsPrincipal, EksAuth, LocalKube, Options, Rbac, RequestRecord};
use rollback_moto::MotoServer;
use serde_json::{Value, json};

pub const NS: &str = "mint";

/// The digest-pinned stable and bad images of `backend` (seeded with `seed_two_revisions`).
pub const STABLE: &str = "registry.local/mint/backend@sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub const BAD: &str = "registry.local/mint/backend@sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// moto's ECR registry (the account and region of the local SDK configuration).
pub const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

pub struct Env {
    pub kube: LocalKube,
    /// deploy-undo's clients: its own credentials, through `gate`.
    pub clients: Clients,
    pub cluster: String,
    /// deploy-undo's role for a stack whose `ClusterName` is `cluster`.
    pub gate: IamGate,
}

/// The Kubernetes user the test access entry maps the function's credentials to.
pub const FUNCTION_USER: &str =
    "arn:aws:sts::123456789012:assumed-role/DeployUndoFunctionRole/rollback-deploy-undo";

/// The shipped RBAC manifest (`infra/k8s/rollback-rbac.yaml`).
pub fn shipped_rbac() -> String {
    let path = rollback_moto::workspace_root().join(RBAC_MANIFEST);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh local API (EKS tokens only, plus `extra_tokens` as the admin) set up as EKS is by
/// infra/DEPLOY.md: tokens verified for `cluster` with the function's (local) credentials,
/// mapped to the deploy-undo group, authorized by `rbac_manifest`; and an EKS cluster in moto
/// named after the test, which the stack's `ClusterName` names.
pub async fn env_with(cluster: &str, extra_tokens: Vec<String>, rbac_manifest: &str) -> Env {
    let kube = LocalKube::start(Options {
        static_tokens: extra_tokens,
        eks: Some(EksAuth {
            cluster: cluster.into(),
            region: Some(rollback_core::aws::LOCAL_REGION.into()),
            principals: vec![AwsPrincipal {
                access_key_id: access_key_id("deploy-undo"),
                secret_access_key: rollback_core::aws::LOCAL_SECRET_ACCESS_KEY.into(),
                username: FUNCTION_USER.into(),
                groups: vec![KUBERNETES_GROUP.into()],
            }],
        }),
        rbac: Some(Rbac::from_manifest(rbac_manifest).unwrap()),
        ..Options::default()
    })
    .await
    .unwrap();
    let eks = aws_sdk_eks::Client::new(&MotoServer::shared().sdk_config());
    eks.create_cluster()
        .name(cluster)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .subnet_ids("subnet-0123")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let stack = test_stack("mint-replica").parameter("ClusterName", cluster);
    let gate = IamGate::start(&MotoServer::shared().endpoint(), "deploy-undo", &stack);
    let clients = Clients::new(
        &gate.sdk_config(),
        MotoServer::shared().decision_key(),
        Some(ApiOverride {
            url: kube.url(),
            ca_pem: kube.ca_pem().map(str::to_owned),
        }),
    );
    Env {
        kube,
        clients,
        cluster: cluster.to_owned(),
        gate,
    }
}

/// The shipped RBAC manifest plus the GitOps Roles (`GITOPS_RBAC_MANIFESTS`), as a cluster
/// running Argo CD and Flux would have them applied.
pub fn shipped_rbac_with_gitops() -> String {
    let mut all = shipped_rbac();
    for (_, path) in rollback_core::contract::deploy_undo::GITOPS_RBAC_MANIFESTS {
        let path = rollback_moto::workspace_root().join(path);
        all.push_str("\n---\n");
        all.push_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        );
    }
    all
}

/// [`env_with`] the shipped RBAC manifest.
pub async fn env_with_tokens(cluster: &str, extra_tokens: Vec<String>) -> Env {
    env_with(cluster, extra_tokens, &shipped_rbac()).await
}

pub async fn env(cluster: &str) -> Env {
    env_with_tokens(cluster, Vec::new()).await
}

impl Env {
    pub fn plan(&self, deployments: &[&str]) -> Value {
        json!({
            "service": "mint-replica",
            "cluster": {"name": self.cluster, "namespace": NS, "deployments": deployments},
        })
    }

    /// Runs one action through the Lambda handler.
    pub async fn call(
        &self,
        deployments: &[&str],
        action: Value,
        drill: bool,
    ) -> Result<Value, rollback_core::RollbackError> {
        self.call_plan(self.plan(deployments), action, drill).await
    }

    /// Runs one action with this plan (e.g. one with images or GitOps objects).
    pub async fn call_plan(
        &self,
        plan: Value,
        action: Value,
        drill: bool,
    ) -> Result<Value, rollback_core::RollbackError> {
        let mut input = action;
        input["plan"] = plan;
        input["execution"] = json!(format!("exec-{}", self.cluster));
        input["request"] = json!({
            "trigger": {"kind": "manual"},
            "reason": "test",
            "mode": if drill { "drill" } else { "live" },
        });
        rollback_moto::decision::approve(
            MotoServer::shared(),
            &mut input,
            rollback_core::Scope::APP,
        )
        .await;
        rollback_deploy_undo::handle(&self.clients, input).await
    }

    /// [`Env::call_plan`] live, expecting success.
    pub async fn run(&self, plan: &Value, action: Value) -> Value {
        self.call_plan(plan.clone(), action, false).await.unwrap()
    }

    pub async fn resolve(&self, deployments: &[&str], images: Value) -> ResolveOutput {
        let out = self
            .call(
                deployments,
                json!({"action": "resolve", "images": images}),
                false,
            )
            .await
            .unwrap();
        serde_json::from_value(out).unwrap()
    }

    pub fn images(&self, name: &str) -> Vec<String> {
        let d = self.kube.deployment(NS, name).unwrap();
        d.spec
            .template
            .spec
            .unwrap()
            .containers
            .into_iter()
            .map(|c| c.image.unwrap_or_default())
            .collect()
    }

    pub fn revision(&self, name: &str) -> Option<i64> {
        let d = self.kube.deployment(NS, name).unwrap();
        d.metadata
            .annotations?
            .get(rollback_deploy_undo::REVISION)?
            .parse()
            .ok()
    }

    /// `backend`: revision 2 runs [`BAD`], revision 1 [`STABLE`]; 2 replicas.
    pub fn seed_backend(&self) {
        self.kube
            .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 2)
            .unwrap();
    }

    /// The requests the API server refused (401 or 403).
    pub fn refused(&self) -> Vec<RequestRecord> {
        self.kube
            .requests()
            .into_iter()
            .filter(|r| r.status == 401 || r.status == 403)
            .collect()
    }
}

/// The `undo` action for the deployments resolve answered.
pub fn undo_action(resolved: &Value) -> Value {
    json!({"action": "undo", "deployments": resolved["deployments"]})
}

/// A `Rollback.Kubernetes` error whose text contains `needle`.
pub fn assert_kubernetes_error(err: &RollbackError, needle: &str) {
    assert_eq!(err.kind(), ErrorKind::Kubernetes, "{err}");
    assert!(err.to_string().contains(needle), "{err}");
}

/// The string at `pointer` in `value` contains `needle`.
pub fn assert_text_at(value: &Value, pointer: &str, needle: &str) {
    let text = value.pointer(pointer).and_then(Value::as_str);
    assert!(
        text.is_some_and(|t| t.contains(needle)),
        "{pointer} should contain {needle:?}: {value}"
    );
}

/// A Docker v2 image manifest whose config and layer digests depend on `flavour`.
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

/// The test's own ECR client: straight to moto, never IAM-checked.
pub fn ecr() -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::new(&MotoServer::shared().sdk_config())
}

/// Pushes the `flavour` manifest to `repo` under `tag`; returns its digest.
pub async fn push(ecr: &aws_sdk_ecr::Client, repo: &str, flavour: &str, tag: &str) -> String {
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

/// The digest `tag` points at in `repo`.
pub async fn tag_digest(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> String {
    let out = ecr
        .describe_images()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .unwrap();
    out.image_details()[0].image_digest().unwrap().to_owned()
}

/// A repository with `stable` → S and `prod` → B (the bad release); returns (S, B).
pub async fn repository(ecr: &aws_sdk_ecr::Client, repo: &str) -> (String, String) {
    ecr.create_repository()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    let stable = push(ecr, repo, &format!("{repo}-good"), "stable").await;
    let bad = push(ecr, repo, &format!("{repo}-bad"), "prod").await;
    (stable, bad)
}

/// The retag function under its own role (as deploy-undo is under its own: `Env::gate`).
pub struct Retag {
    clients: rollback_retag::Clients,
    _gate: IamGate,
}

impl Retag {
    pub fn new() -> Retag {
        let gate = IamGate::start(
            &MotoServer::shared().endpoint(),
            "retag",
            &test_stack("mint-replica"),
        );
        Retag {
            clients: rollback_retag::Clients::new(
                &gate.sdk_config(),
                MotoServer::shared().decision_key(),
            ),
            _gate: gate,
        }
    }

    /// Runs one retag action with `plan`, as the state machine's execution
    /// `alarm-mint-replica-5xx-20240501T120000Z`.
    pub async fn call(&self, plan: &Value, action: Value) -> Value {
        let mut input = action;
        input["plan"] = plan.clone();
        input["execution"] = json!("alarm-mint-replica-5xx-20240501T120000Z");
        rollback_moto::decision::approve(
            MotoServer::shared(),
            &mut input,
            rollback_core::Scope::APP,
        )
        .await;
        rollback_retag::handle(&self.clients, input).await.unwrap()
    }
}
