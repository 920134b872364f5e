//! `restart`: `kubectl rollout restart` for the tag-pinned deployments resolve flagged, after
//! the retag moved their tag back to the stable digest.
//!
//! Like kubectl: a patch of the pod template's `kubectl.kubernetes.io/restartedAt` annotation
//! (a strategic merge patch, as kubectl sends it), which makes the controller roll out new pods;
//! a paused deployment is refused. The value is the step's entered time (`restarted_at`), the
//! same on every retry of the step: a deployment whose template already carries it was
//! restarted by an earlier attempt and is left alone. After a failed patch the deployment is
//! read again, and a restart that took effect (its answer was lost) counts as done.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rollback_core::RollbackError;
use rollback_core::contract::deploy_undo::{
    RESTARTED_AT, RestartOutcome, RestartOutput, RestartResult,
};
use rollback_core::resolved::DeploymentResolution;
use serde_json::json;

use crate::cluster::{Cluster, k8s_error};

const MANAGER: &str = "rollback-deploy-undo";

/// The annotation's value: RFC 3339 in whole seconds, as kubectl writes it.
pub fn restart_value(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn restarted_value(d: &Deployment) -> Option<&str> {
    d.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(RESTARTED_AT)
        .map(String::as_str)
}

pub async fn restart(
    cluster: &Cluster,
    deployments: &[String],
    approved: &[DeploymentResolution],
    restarted_at: DateTime<Utc>,
    drill: bool,
) -> Result<RestartOutput, RollbackError> {
    let value = restart_value(restarted_at);
    let client = cluster.client().await?;
    let api: Api<Deployment> = Api::namespaced(client, &cluster.namespace);
    let ns = &cluster.namespace;
    let mut results = Vec::with_capacity(deployments.len());
    for name in deployments {
        let resolution = approved.iter().find(|r| &r.name == name);
        let one = Restart {
            api: &api,
            ns,
            name,
            value: &value,
            drill,
        };
        if !resolution.is_some_and(|r| r.restart_needed) {
            results.push(one.result(
                RestartOutcome::NotNeeded,
                Vec::new(),
                format!("{name} is not tag-pinned: undo alone puts its image back"),
            ));
            continue;
        }
        results.push(one.run().await?);
    }
    Ok(RestartOutput {
        drill,
        deployments: results,
    })
}

/// One tag-pinned deployment's restart, with the annotation value this step writes.
struct Restart<'a> {
    api: &'a Api<Deployment>,
    ns: &'a String,
    name: &'a String,
    value: &'a String,
    drill: bool,
}

impl Restart<'_> {
    fn result(
        &self,
        outcome: RestartOutcome,
        images: Vec<String>,
        message: String,
    ) -> RestartResult {
        RestartResult {
            name: self.name.clone(),
            namespace: self.ns.clone(),
            outcome,
            restarted_at: self.value.clone(),
            images,
            message,
        }
    }

    /// Reads the deployment, leaves it alone if this step already restarted it, refuses a
    /// paused one, and otherwise patches it.
    async fn run(&self) -> Result<RestartResult, RollbackError> {
        let (name, ns, value) = (self.name, self.ns, self.value);
        let current = self
            .api
            .get(name)
            .await
            .map_err(|e| k8s_error("get deployment", e))?;
        // The tag references whose pods pull again.
        let images: Vec<String> = crate::history::images(Some(&current.spec.template))
            .into_iter()
            .filter(|i| !i.contains('@'))
            .collect();
        if restarted_value(&current) == Some(value.as_str()) {
            return Ok(self.result(
                RestartOutcome::AlreadyRestarted,
                images,
                format!("{name} was already restarted by this step ({RESTARTED_AT}={value})"),
            ));
        }
        if current.spec.paused == Some(true) {
            return Err(RollbackError::Kubernetes {
                operation: "rollout restart".into(),
                message: format!(
                    "can't restart paused deployment {ns}/{name} (run `kubectl rollout resume \
                     deployment/{name} -n {ns}` first), then `kubectl rollout restart \
                     deployment/{name} -n {ns}` so its pods pull the stable image"
                ),
                retryable: false,
            });
        }
        self.patch(images).await
    }

    /// The `restartedAt` patch (a dry run in a drill); after a failed one, the deployment is
    /// read again.
    async fn patch(&self, images: Vec<String>) -> Result<RestartResult, RollbackError> {
        let (api, name, value, drill) = (self.api, self.name, self.value, self.drill);
        let patch =
            json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: value}}}}});
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            dry_run: drill,
            ..Default::default()
        };
        let result = match api.patch(name, &params, &Patch::Strategic(&patch)).await {
            Ok(_) if drill => self.result(
                RestartOutcome::DryRun,
                images,
                format!(
                    "drill: restarting {name} ({RESTARTED_AT}={value}) passed a server-side dry \
                     run; nothing changed"
                ),
            ),
            Ok(_) => self.result(
                RestartOutcome::Restarted,
                images.clone(),
                format!(
                    "restarted {name} like `kubectl rollout restart` ({RESTARTED_AT}={value}): \
                     its new pods pull {} again, now the stable image",
                    images.join(", ")
                ),
            ),
            Err(err) => {
                let err = k8s_error("patch deployment (rollout restart)", err);
                if drill {
                    return Err(err);
                }
                // Observe before deciding: the patch may have taken effect.
                let seen = api.get(name).await.ok();
                if seen.as_ref().and_then(restarted_value) == Some(value.as_str()) {
                    self.result(
                        RestartOutcome::Restarted,
                        images,
                        format!(
                            "restarted {name} ({RESTARTED_AT}={value}): the answer to the patch \
                             was lost, and the restart was observed in place"
                        ),
                    )
                } else {
                    return Err(err);
                }
            }
        };
        tracing::info!(deployment = %name, value = %value, "rollout restart");
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_is_kubectls_rfc3339_in_whole_seconds() {
        let at = DateTime::parse_from_rfc3339("2024-05-01T12:00:07.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(restart_value(at), "2024-05-01T12:00:07Z");
    }
}
