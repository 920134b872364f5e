//! `status`: rollout progress, judged exactly as `kubectl rollout status` judges it.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use rollback_core::contract::deploy_undo::{PAUSED_REPLICAS, RolloutStatus, StatusOutput};
use rollback_core::plan::GitOpsRef;
use rollback_core::plan::PollingPolicy;
use rollback_core::{RollbackError, wait};

use crate::cluster::{Cluster, k8s_error};
use crate::history::{self, REVISION, annotation};

/// The rollout of `deployments`; with `polling`, looks again until complete for the plan's
/// `polling.status_wait_seconds` ([`rollback_core::wait`]). A stuck rollout is an error at
/// the look that sees it.
pub async fn status(
    cluster: &Cluster,
    deployments: &[String],
    gitops: &[GitOpsRef],
    polling: Option<&PollingPolicy>,
) -> Result<StatusOutput, RollbackError> {
    let client = cluster.client().await?;
    let api: Api<Deployment> = Api::namespaced(client, &cluster.namespace);
    let look = || async {
        let mut out = Vec::with_capacity(deployments.len());
        for name in deployments {
            let d = api
                .get(name)
                .await
                .map_err(|e| k8s_error("get deployment", e))?;
            out.push(judge(&cluster.namespace, name, &d)?);
        }
        Ok(StatusOutput {
            complete: out.iter().all(|d| d.complete),
            deployments: out,
            gitops: crate::gitops::observe(cluster, gitops).await,
        })
    };
    wait::keep_checking(polling, look, |s: &StatusOutput| s.complete).await
}

/// kubectl's `DeploymentStatusViewer.Status`, condition by condition.
pub fn judge(namespace: &str, name: &str, d: &Deployment) -> Result<RolloutStatus, RollbackError> {
    let spec = &d.spec;
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    let desired = spec.replicas;
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let (complete, message) = if generation <= observed {
        let progressing = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_.as_deref() == Some("Progressing"));
        if let Some(c) = progressing
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            return Err(RollbackError::RolloutStuck(format!(
                "deployment {namespace}/{name} exceeded its progress deadline ({}): {updated} of \
                 {} new replicas updated, {available} available. Look at its pods' events \
                 (`kubectl describe rs -n {namespace}`); the rollback stops here",
                c.message.as_deref().unwrap_or("no message"),
                desired.unwrap_or(1)
            )));
        }
        match desired {
            Some(want) if updated < want => (
                false,
                format!(
                    "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {want} new replicas have been updated..."
                ),
            ),
            _ if total > updated => (
                false,
                format!(
                    "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
                    total - updated
                ),
            ),
            _ if available < updated => (
                false,
                format!(
                    "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
                ),
            ),
            _ => (
                true,
                format!("deployment \"{name}\" successfully rolled out"),
            ),
        }
    } else {
        (
            false,
            "Waiting for deployment spec update to be observed...".to_owned(),
        )
    };
    Ok(RolloutStatus {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        complete,
        revision: annotation(&d.metadata, REVISION).and_then(|r| r.parse().ok()),
        generation,
        observed_generation: observed,
        replicas: desired.unwrap_or(1),
        updated_replicas: updated,
        total_replicas: total,
        available_replicas: available,
        images: history::images(Some(&spec.template)),
        paused_replicas: annotation(&d.metadata, PAUSED_REPLICAS).and_then(|r| r.parse().ok()),
        message,
    })
}
