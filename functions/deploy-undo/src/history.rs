//! A deployment's rollout history as kubectl reads it: its ReplicaSets (selected by label and
//! owned by the deployment), numbered by the `deployment.kubernetes.io/revision` annotation.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Api;
use kube::api::ListParams;
use rollback_core::RollbackError;
use serde_json::Value;

use crate::cluster::k8s_error;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

pub struct History {
    pub deployment: Deployment,
    /// Owned ReplicaSets, lowest revision first.
    pub replica_sets: Vec<ReplicaSet>,
}

impl History {
    pub async fn load(
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<History, RollbackError> {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let deployment = deployments.get(name).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 => RollbackError::Kubernetes {
                operation: "get deployment".into(),
                message: format!(
                    "deployment {namespace}/{name} does not exist; check the plan's cluster.namespace and deployments"
                ),
                retryable: false,
            },
            e => k8s_error("get deployment", e),
        })?;
        let selector = deployment
            .spec
            .selector
            .match_labels
            .as_ref()
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
        let listed = replica_sets
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| k8s_error("list replicasets", e))?;
        let uid = deployment.metadata.uid.clone();
        let mut owned: Vec<ReplicaSet> = listed
            .items
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
            })
            .collect();
        owned.sort_by_key(|rs| revision_of(rs).unwrap_or(0));
        Ok(History {
            deployment,
            replica_sets: owned,
        })
    }

    pub fn template(&self) -> Option<&PodTemplateSpec> {
        Some(&self.deployment.spec.template)
    }

    /// The ReplicaSet running the deployment's current template (kubectl's "new" RS: the
    /// oldest one whose template matches, ignoring the hash label).
    pub fn current(&self) -> Option<&ReplicaSet> {
        let template = self.template()?;
        let mut matching: Vec<&ReplicaSet> = self
            .replica_sets
            .iter()
            .filter(|rs| rs_template(rs).is_some_and(|t| templates_equal(t, template)))
            .collect();
        matching.sort_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0));
        matching.first().copied()
    }

    /// The current revision: the new ReplicaSet's, or the deployment's annotation.
    pub fn current_revision(&self) -> Option<i64> {
        self.current().and_then(revision_of).or_else(|| {
            annotation(&self.deployment.metadata, REVISION).and_then(|v| v.parse().ok())
        })
    }

    /// kubectl's default undo target: the second-highest revision.
    pub fn previous(&self) -> Option<&ReplicaSet> {
        let mut revisions: Vec<(&ReplicaSet, i64)> = self
            .replica_sets
            .iter()
            .filter_map(|rs| revision_of(rs).map(|r| (rs, r)))
            .collect();
        revisions.sort_by_key(|(_, r)| *r);
        revisions.len().checked_sub(2).map(|i| revisions[i].0)
    }

    pub fn by_revision(&self, revision: i64) -> Option<&ReplicaSet> {
        self.replica_sets
            .iter()
            .find(|rs| revision_of(rs) == Some(revision))
    }

    pub fn revision_history_limit(&self) -> i32 {
        self.deployment.spec.revision_history_limit.unwrap_or(10)
    }

    pub fn name(&self) -> String {
        self.deployment.metadata.name.clone().unwrap_or_default()
    }
}

pub fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

pub fn revision_of(rs: &ReplicaSet) -> Option<i64> {
    annotation(&rs.metadata, REVISION)?.parse().ok()
}

/// Earlier revision numbers this ReplicaSet carried (the controller records them when an
/// old template comes back).
pub fn revision_history(rs: &ReplicaSet) -> Vec<i64> {
    annotation(&rs.metadata, REVISION_HISTORY)
        .map(|h| h.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_default()
}

pub fn rs_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.template.as_ref()
}

/// kubectl's `equalIgnoreHash`: equal templates once the hash label is dropped, with empty
/// and absent maps and lists treated alike (as apimachinery's semantic equality does).
pub fn templates_equal(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(template: &PodTemplateSpec) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
    }
    prune(&mut value);
    value
}

fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(prune);
            map.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The template's container images, in order.
pub fn images(template: Option<&PodTemplateSpec>) -> Vec<String> {
    template
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .map(|c| c.image.clone().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// Kubernetes timestamps (jiff) as chrono's.
pub fn to_chrono(t: &k8s_openapi::jiff::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
}
