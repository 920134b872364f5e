//! Legacy (unaggregated) discovery documents. kubectl 1.32 first asks /api and /apis for the
//! aggregated `apidiscovery.k8s.io/v2` form; answering with plain `APIVersions` /
//! `APIGroupList` JSON makes it fall back to fetching each group-version's APIResourceList,
//! which is all it needs to map `deploy`/`rs` and find the scale subresource's kind.

use serde_json::{Value, json};

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-rollback-local",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn apps_group() -> Value {
    json!({
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    })
}

fn authorization_group() -> Value {
    json!({
        "name": "authorization.k8s.io",
        "versions": [{"groupVersion": "authorization.k8s.io/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "authorization.k8s.io/v1", "version": "v1"},
    })
}

pub fn api_group_list() -> Value {
    let mut groups = vec![apps_group(), authorization_group()];
    groups.extend(CUSTOM_GROUPS.iter().filter_map(|(g, _)| custom_group(g)));
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The custom resource groups served (as their CRDs register them): group → version.
const CUSTOM_GROUPS: &[(&str, &str)] = &[
    ("argoproj.io", "v1alpha1"),
    ("kustomize.toolkit.fluxcd.io", "v1"),
];

/// The APIGroup entry of a custom resource group.
pub fn custom_group(group: &str) -> Option<Value> {
    let (name, version) = CUSTOM_GROUPS.iter().find(|(g, _)| *g == group)?;
    let gv = format!("{name}/{version}");
    Some(json!({
        "name": name,
        "versions": [{"groupVersion": gv, "version": version}],
        "preferredVersion": {"groupVersion": gv, "version": version},
    }))
}

pub fn custom_api_group(group: &str) -> Option<Value> {
    let mut g = custom_group(group)?;
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// The APIResourceList of a custom group-version: Argo CD's `applications` (short names
/// `app`, `apps`; no status subresource) and Flux's `kustomizations` (`ks`; with status).
pub fn custom_resources(group: &str, version: &str) -> Option<Value> {
    let resources = match (group, version) {
        ("argoproj.io", "v1alpha1") => json!([
            {"name": "applications", "singularName": "application", "namespaced": true,
             "kind": "Application", "verbs": RW_VERBS, "shortNames": ["app", "apps"]},
        ]),
        ("kustomize.toolkit.fluxcd.io", "v1") => json!([
            {"name": "kustomizations", "singularName": "kustomization", "namespaced": true,
             "kind": "Kustomization", "verbs": RW_VERBS, "shortNames": ["ks"]},
            {"name": "kustomizations/status", "singularName": "", "namespaced": true,
             "kind": "Kustomization", "verbs": SUB_VERBS},
        ]),
        _ => return None,
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{group}/{version}"),
        "resources": resources,
    }))
}

pub fn authorization_api_group() -> Value {
    let mut g = authorization_group();
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    g
}

/// Only SelfSubjectAccessReview (what `kubectl auth can-i` creates).
pub fn authorization_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "authorization.k8s.io/v1",
        "resources": [
            {"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
             "namespaced": false, "kind": "SelfSubjectAccessReview", "verbs": ["create"]},
        ],
    })
}

pub fn apps_api_group() -> Value {
    let mut g = apps_group();
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    g
}

const RW_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const SUB_VERBS: [&str; 3] = ["get", "patch", "update"];

pub fn core_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": ["get", "list"], "shortNames": ["ns"]},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["get", "list", "watch"], "shortNames": ["po"], "categories": ["all"]},
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event",
             "verbs": ["get", "list", "watch"], "shortNames": ["ev"]},
        ],
    })
}

pub fn apps_v1_resources() -> Value {
    let main = |name: &str, singular: &str, kind: &str, short: &str| {
        json!({"name": name, "singularName": singular, "namespaced": true, "kind": kind,
               "verbs": RW_VERBS, "shortNames": [short], "categories": ["all"]})
    };
    let scale = |name: &str| {
        json!({"name": format!("{name}/scale"), "singularName": "", "namespaced": true,
               "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": SUB_VERBS})
    };
    let status = |name: &str, kind: &str| json!({"name": format!("{name}/status"), "singularName": "", "namespaced": true, "kind": kind, "verbs": SUB_VERBS});
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            main("deployments", "deployment", "Deployment", "deploy"),
            scale("deployments"),
            status("deployments", "Deployment"),
            main("replicasets", "replicaset", "ReplicaSet", "rs"),
            scale("replicasets"),
            status("replicasets", "ReplicaSet"),
        ],
    })
}
