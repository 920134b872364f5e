//! Shared test helpers: a kube client configured from the generated kubeconfig.
#![allow(dead_code)]

use k8s_openapi::api::apps::v1::Deployment;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rollback_kube_api::LocalKube;
use serde_json::json;

/// A client that reaches the server exactly as a user would: through the kubeconfig it writes
/// (endpoint + CA data + bearer token).
pub async fn client(kube: &LocalKube, token: &str) -> Client {
    rollback_kube_api::install_default_crypto_provider();
    let kc = Kubeconfig::from_yaml(&kube.kubeconfig(token)).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

/// The HTTP code of a kube API error (panics on transport errors: those are test failures).
pub fn code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "tier": "web"}},
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}}
    }))
    .expect("valid deployment")
}

pub fn image(d: &Deployment) -> String {
    d.spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

pub fn annotation(d: &Deployment, key: &str) -> Option<String> {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key).cloned())
}

pub fn progressing_reason(d: &Deployment) -> Option<String> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .and_then(|c| c.reason.clone())
}

/// The cluster, credentials and Kubernetes identity of "the function" in these tests.
pub const CLUSTER: &str = "mint-replica-eks";
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "AKIDFUNCTION";
pub const SECRET_KEY: &str = "function-secret";
pub const FUNCTION_USER: &str = "arn:aws:sts::123456789012:assumed-role/deploy-undo/fn";
pub const FUNCTION_GROUP: &str = "rollback-deploy-undo";

/// The shipped RBAC manifest, as `kubectl apply` would read it.
pub fn shipped_rbac() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/k8s/rollback-rbac.yaml"
    ))
    .expect("infra/k8s/rollback-rbac.yaml")
}

/// Options with EKS token verification for the function's principal and the shipped RBAC.
pub fn eks_options() -> rollback_kube_api::Options {
    rollback_kube_api::Options {
        eks: Some(rollback_kube_api::EksAuth {
            cluster: CLUSTER.into(),
            region: Some(REGION.into()),
            principals: vec![rollback_kube_api::AwsPrincipal {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: SECRET_KEY.into(),
                username: FUNCTION_USER.into(),
                groups: vec![FUNCTION_GROUP.into()],
            }],
        }),
        rbac: Some(rollback_kube_api::Rbac::from_manifest(&shipped_rbac()).expect("manifest")),
        ..rollback_kube_api::Options::default()
    }
}

/// An EKS token made the way deploy-undo makes it, signed with `secret` for `cluster` at `at`.
pub fn eks_token(secret: &str, cluster: &str, at: std::time::SystemTime) -> String {
    let creds = aws_credential_types::Credentials::new(ACCESS_KEY, secret, None, None, "test");
    rollback_core::eks_token::token_for(&creds, REGION, cluster, at)
        .expect("token")
        .secret()
        .to_string()
}

/// The function's token, now.
pub fn function_token() -> String {
    eks_token(SECRET_KEY, CLUSTER, std::time::SystemTime::now())
}
