//! Shared test setup: moto (for eks:DescribeCluster, behind the IAM gate: deploy-undo's role in
//! infra/template.yaml) plus a local Kubernetes API that only accepts verified EKS tokens and
//! authorizes them with the shipped RBAC manifest, reached through the endpoint/CA override.
#![allow(dead_code)]

use aws_sdk_eks::types::VpcConfigRequest;
use rollback_core::contract::deploy_undo::ResolveOutput;
use rollback_core::contract::deploy_undo::{KUBERNETES_GROUP, RBAC_MANIFEST};
use rollback_deploy_undo::{ApiOverride, Clients};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_fault_proxy::iam::access_key_id;
use rollback_kube_api::{AwsPrincipal, EksAuth, LocalKube, Options, Rbac};
use rollback_moto::MotoServer;
use serde_json::{Value, json};

pub const NS: &str = "mint";

/// One moto per test process (the harness keeps it alive past the first test's thread).
pub fn moto() -> &'static MotoServer {
    MotoServer::shared()
}

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
    let eks = aws_sdk_eks::Client::new(&moto().sdk_config());
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
    let gate = IamGate::start(&moto().endpoint(), "deploy-undo", &stack);
    let clients = Clients::new(
        &gate.sdk_config(),
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
        rollback_deploy_undo::handle(&self.clients, input).await
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
}
