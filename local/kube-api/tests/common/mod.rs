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
