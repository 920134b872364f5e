//! `pause` / `resume`: scale to zero and back. The count scaled down from is written into the
//! deployment's own annotations in the same patch, so a retried pause never records zero and
//! a retried resume finds nothing left to do.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rollback_core::contract::deploy_undo::{PAUSED_BY, PAUSED_REPLICAS, ScaleOutput, ScaleResult};
use rollback_core::resolved::DeploymentResolution;
use rollback_core::{ExecutionId, RollbackError};
use serde_json::json;

use crate::cluster::{Cluster, k8s_error};
use crate::history::annotation;

const MANAGER: &str = "rollback-deploy-undo";

pub async fn pause(
    cluster: &Cluster,
    deployments: &[String],
    execution: &ExecutionId,
    drill: bool,
) -> Result<ScaleOutput, RollbackError> {
    let client = cluster.client().await?;
    let api: Api<Deployment> = Api::namespaced(client, &cluster.namespace);
    let mut results = Vec::new();
    for name in deployments {
        let d = get(&api, &cluster.namespace, name).await?;
        let spec_replicas = d.spec.replicas.unwrap_or(1);
        let ours = annotation(&d.metadata, PAUSED_BY) == Some(execution.as_str());
        let recorded = annotation(&d.metadata, PAUSED_REPLICAS).and_then(|r| r.parse::<i32>().ok());
        let (before, patch) = match (ours, recorded) {
            // A retry (or someone scaled it back up meanwhile): keep the first record.
            (true, Some(n)) if spec_replicas == 0 => (n, None),
            (true, Some(n)) => (n, Some(json!({"spec": {"replicas": 0}}))),
            _ => (
                spec_replicas,
                Some(json!({
                    "metadata": {
                        "annotations": {PAUSED_REPLICAS: spec_replicas.to_string(), PAUSED_BY: execution.as_str()},
                        "resourceVersion": d.metadata.resource_version,
                    },
                    "spec": {"replicas": 0}
                })),
            ),
        };
        let changed = patch.is_some();
        if let Some(patch) = patch {
            patch_deployment(&api, name, &patch, drill).await?;
        }
        results.push(ScaleResult {
            name: name.clone(),
            namespace: cluster.namespace.clone(),
            replicas_before: before,
            replicas_after: 0,
            changed: changed && !drill,
            message: match (drill, changed) {
                (true, _) => format!("drill: scaling {name} from {before} to 0 passed a server-side dry run; nothing changed"),
                (false, true) => format!("scaled {name} from {before} to 0 replicas"),
                (false, false) => format!("{name} was already scaled to 0 by this rollback (from {before})"),
            },
        });
    }
    Ok(ScaleOutput {
        drill,
        deployments: results,
    })
}

pub async fn resume(
    cluster: &Cluster,
    deployments: &[String],
    execution: &ExecutionId,
    drill: bool,
    approved: &[DeploymentResolution],
) -> Result<ScaleOutput, RollbackError> {
    let client = cluster.client().await?;
    let api: Api<Deployment> = Api::namespaced(client, &cluster.namespace);
    let mut results = Vec::new();
    for name in deployments {
        let d = get(&api, &cluster.namespace, name).await?;
        let spec_replicas = d.spec.replicas.unwrap_or(1);
        let ours = annotation(&d.metadata, PAUSED_BY) == Some(execution.as_str());
        let recorded = annotation(&d.metadata, PAUSED_REPLICAS).and_then(|r| r.parse::<i32>().ok());
        let fallback = approved
            .iter()
            .find(|r| &r.name == name)
            .map(|r| r.replicas);
        let (target, message) = match (ours, recorded, fallback) {
            (true, Some(n), _) => (
                Some(n),
                format!("scaled {name} back to its recorded {n} replicas"),
            ),
            (_, _, Some(n)) if spec_replicas == 0 && n > 0 => (
                Some(n),
                format!(
                    "{name} had no pause record from this rollback; scaled it to the {n} replicas resolve saw"
                ),
            ),
            _ => (
                None,
                format!(
                    "{name} is not paused by this rollback ({spec_replicas} replicas): nothing to do"
                ),
            ),
        };
        let Some(target) = target else {
            results.push(ScaleResult {
                name: name.clone(),
                namespace: cluster.namespace.clone(),
                replicas_before: spec_replicas,
                replicas_after: spec_replicas,
                changed: false,
                message,
            });
            continue;
        };
        let mut patch = json!({"spec": {"replicas": target}});
        if ours {
            patch["metadata"] = json!({"annotations": {PAUSED_REPLICAS: null, PAUSED_BY: null}});
        }
        patch_deployment(&api, name, &patch, drill).await?;
        results.push(ScaleResult {
            name: name.clone(),
            namespace: cluster.namespace.clone(),
            replicas_before: spec_replicas,
            replicas_after: target,
            changed: !drill,
            message: if drill {
                format!("drill: scaling {name} to {target} passed a server-side dry run; nothing changed")
            } else {
                message
            },
        });
    }
    Ok(ScaleOutput {
        drill,
        deployments: results,
    })
}

async fn get(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
) -> Result<Deployment, RollbackError> {
    api.get(name).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => RollbackError::Kubernetes {
            operation: "get deployment".into(),
            message: format!("deployment {namespace}/{name} does not exist"),
            retryable: false,
        },
        e => k8s_error("get deployment", e),
    })
}

async fn patch_deployment(
    api: &Api<Deployment>,
    name: &str,
    patch: &serde_json::Value,
    drill: bool,
) -> Result<(), RollbackError> {
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        dry_run: drill,
        ..Default::default()
    };
    api.patch(name, &params, &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(|e| k8s_error("patch deployment replicas", e))
}
