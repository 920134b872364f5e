//! `undo`: `kubectl rollout undo [--to-revision=N]`, with a drift check first.
//!
//! Like kubectl: the target ReplicaSet's pod template, minus its `pod-template-hash` label,
//! becomes the deployment's template; the deployment's annotations become the ReplicaSet's
//! (change-cause and the like) except the ones kubectl skips, whose current values are kept;
//! a paused deployment is refused; the controller then gives the restored template a new
//! revision number. kubectl sends this as a JSON patch replacing `/spec/template` and
//! `/metadata/annotations`; we send the same object as an update (PUT) carrying the
//! `resourceVersion` we read, so a concurrent change makes the step fail with a retryable
//! conflict instead of being overwritten. One deviation: this function's own pause annotations
//! are kept from the deployment (never taken from an old ReplicaSet), so `resume` still finds
//! its record.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Api;
use kube::api::PostParams;
use rollback_core::RollbackError;
use rollback_core::contract::deploy_undo::{
    PAUSED_BY, PAUSED_REPLICAS, UndoOutcome, UndoOutput, UndoResult,
};
use rollback_core::resolved::DeploymentResolution;

use crate::cluster::{Cluster, k8s_error};
use crate::history::{
    self, History, POD_TEMPLATE_HASH, REVISION, annotation, revision_history, revision_of,
    rs_template, templates_equal,
};

/// Annotations kubectl's rollback never copies from the ReplicaSet.
pub const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];
const OWN_ANNOTATIONS: [&str; 2] = [PAUSED_REPLICAS, PAUSED_BY];
const MANAGER: &str = "rollback-deploy-undo";

enum Step {
    Skip(UndoResult),
    Rollback {
        deployment: Box<Deployment>,
        result: UndoResult,
    },
}

pub async fn undo(
    cluster: &Cluster,
    deployments: &[String],
    approved: &[DeploymentResolution],
    to_revision: Option<i64>,
    drill: bool,
) -> Result<UndoOutput, RollbackError> {
    let client = cluster.client().await?;
    // Check every deployment before changing any.
    let mut steps = Vec::with_capacity(deployments.len());
    for name in deployments {
        let resolution = approved.iter().find(|r| &r.name == name).ok_or_else(|| {
            RollbackError::InvalidInput(format!(
                "deployments: no approved resolution for {name}; pass deploy-undo resolve's \
                 `deployments` output"
            ))
        })?;
        let history = History::load(&client, &cluster.namespace, name).await?;
        steps.push(plan_one(
            &cluster.namespace,
            &history,
            resolution,
            to_revision,
        )?);
    }
    let api: Api<Deployment> = Api::namespaced(client, &cluster.namespace);
    let mut results = Vec::with_capacity(steps.len());
    for step in steps {
        match step {
            Step::Skip(result) => results.push(result),
            Step::Rollback {
                deployment,
                mut result,
            } => {
                let name = result.name.clone();
                let params = PostParams {
                    dry_run: drill,
                    field_manager: Some(MANAGER.into()),
                };
                let updated = api
                    .replace(&name, &params, &deployment)
                    .await
                    .map_err(|e| k8s_error("update deployment (rollout undo)", e))?;
                if drill {
                    result.outcome = UndoOutcome::DryRun;
                    result.message = format!(
                        "drill: rolling {name} back from revision {} to revision {} passed a \
                         server-side dry run; nothing changed",
                        result.from_revision, result.to_revision
                    );
                } else {
                    result.new_revision = annotation(&updated.metadata, REVISION)
                        .and_then(|r| r.parse().ok())
                        .filter(|r| *r != result.from_revision);
                }
                tracing::info!(deployment = %name, outcome = ?result.outcome, "rollout undo");
                results.push(result);
            }
        }
    }
    Ok(UndoOutput {
        drill,
        deployments: results,
    })
}

/// Checks one deployment against its approved resolution (before anything changes) and says
/// what undo does with it.
fn plan_one(
    namespace: &str,
    history: &History,
    approved: &DeploymentResolution,
    to_revision: Option<i64>,
) -> Result<Step, RollbackError> {
    let name = history.name();
    let deployment = &history.deployment;
    let spec = &deployment.spec;
    if spec.paused == Some(true) {
        return Err(RollbackError::Kubernetes {
            operation: "rollout undo".into(),
            message: format!(
                "you cannot roll back a paused deployment; resume {namespace}/{name} first with \
                 `kubectl rollout resume deployment/{name} -n {namespace}` and retry"
            ),
            retryable: false,
        });
    }
    let target_revision = to_revision.or(approved.target_revision).ok_or_else(|| {
        RollbackError::NoRolloutHistory(format!(
            "deployment {namespace}/{name} has no earlier revision to roll back to: its \
             ReplicaSet history holds only the current revision (revisionHistoryLimit: {}). \
             Redeploy the stable image instead",
            history.revision_history_limit()
        ))
    })?;
    let current_revision = history.current_revision().unwrap_or(0);

    if current_revision != approved.current_revision {
        return done_or_drifted(
            namespace,
            history,
            approved,
            current_revision,
            target_revision,
        );
    }
    let (target, target_template) = target_of(namespace, history, target_revision)?;
    if templates_equal(target_template, &spec.template) {
        return Ok(skip_step(
            namespace,
            history,
            current_revision,
            target_revision,
            format!(
                "{name}'s current template already matches revision {target_revision}: skipped \
                 rollback, like kubectl"
            ),
        ));
    }
    Ok(rollback_step(
        namespace,
        history,
        target,
        target_template,
        current_revision,
        target_revision,
    ))
}

/// The target revision's ReplicaSet and its pod template.
fn target_of<'h>(
    namespace: &str,
    history: &'h History,
    target_revision: i64,
) -> Result<(&'h ReplicaSet, &'h PodTemplateSpec), RollbackError> {
    let name = history.name();
    let target = history.by_revision(target_revision).ok_or_else(|| {
        RollbackError::NoRolloutHistory(format!(
            "revision {target_revision} of deployment {namespace}/{name} is not in its \
             ReplicaSet history (revisionHistoryLimit: {}); nothing to roll back to",
            history.revision_history_limit()
        ))
    })?;
    let target_template = rs_template(target).ok_or_else(|| {
        RollbackError::Internal(format!(
            "revision {target_revision} of {namespace}/{name} has no pod template"
        ))
    })?;
    Ok((target, target_template))
}

/// Nothing to change: the deployment already runs the target revision's template.
fn skip_step(
    namespace: &str,
    history: &History,
    current_revision: i64,
    target_revision: i64,
    message: String,
) -> Step {
    Step::Skip(UndoResult {
        name: history.name(),
        namespace: namespace.to_owned(),
        outcome: UndoOutcome::AlreadyAtTarget,
        from_revision: current_revision,
        to_revision: target_revision,
        new_revision: None,
        images: history::images(history.template()),
        message,
    })
}

/// The deployment is no longer at the approved revision: either this step already rolled it
/// back (a skip), or someone deployed since the approval (the plan drifted).
fn done_or_drifted(
    namespace: &str,
    history: &History,
    approved: &DeploymentResolution,
    current_revision: i64,
    target_revision: i64,
) -> Result<Step, RollbackError> {
    let name = history.name();
    // An earlier attempt of this step may have done it: the restored ReplicaSet then has a
    // new revision number and remembers the old one.
    if history
        .current()
        .is_some_and(|rs| revision_history(rs).contains(&target_revision))
    {
        return Ok(skip_step(
            namespace,
            history,
            current_revision,
            target_revision,
            format!(
                "{name} already runs revision {target_revision}'s template (now revision \
                 {current_revision}): nothing to do"
            ),
        ));
    }
    Err(RollbackError::PlanDrifted(format!(
        "deployment {namespace}/{name} is now at revision {current_revision}, but the \
         approved plan saw revision {} (someone deployed since approval); resolve again and \
         re-approve",
        approved.current_revision
    )))
}

/// The deployment with the target ReplicaSet's template (minus its `pod-template-hash` label)
/// and kubectl's annotations, ready to be sent as an update.
fn rollback_step(
    namespace: &str,
    history: &History,
    target: &ReplicaSet,
    target_template: &PodTemplateSpec,
    current_revision: i64,
    target_revision: i64,
) -> Step {
    let name = history.name();
    let deployment = &history.deployment;
    let mut template = target_template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let mut updated = deployment.clone();
    updated.status = None;
    updated.spec.template = template;
    updated.metadata.annotations = Some(rollback_annotations(deployment, target));
    Step::Rollback {
        deployment: Box::new(updated),
        result: UndoResult {
            name: name.clone(),
            namespace: namespace.to_owned(),
            outcome: UndoOutcome::RolledBack,
            from_revision: current_revision,
            to_revision: revision_of(target).unwrap_or(target_revision),
            new_revision: None,
            images: history::images(rs_template(target)),
            message: format!(
                "rolled {name} back from revision {current_revision} to revision \
                 {target_revision}'s template"
            ),
        },
    }
}

/// kubectl's annotation handling: the skipped keys keep the deployment's values, everything
/// else comes from the target ReplicaSet (and our own pause record stays).
fn rollback_annotations(deployment: &Deployment, target: &ReplicaSet) -> BTreeMap<String, String> {
    let current = deployment.metadata.annotations.clone().unwrap_or_default();
    let mut out = BTreeMap::new();
    for key in ANNOTATIONS_TO_SKIP.iter().chain(OWN_ANNOTATIONS.iter()) {
        if let Some(v) = current.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    for (k, v) in target.metadata.annotations.iter().flatten() {
        if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) && !OWN_ANNOTATIONS.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}
