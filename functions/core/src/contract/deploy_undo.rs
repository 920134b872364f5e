//! Contract of the `deploy-undo` function: the plan's EKS deployments.
//!
//! - `resolve` (optional `images`: retag's resolved images, optional `to_revision`): per
//!   deployment, the current and target revision from the ReplicaSets' revision annotations,
//!   their images, when the current revision rolled out, and whether the target revision runs
//!   the stable digests (→ [`ResolveOutput`]). Changes nothing.
//! - `pause` / `resume`: scale to zero and back to the recorded replica counts (the count is
//!   kept in the deployment's [`PAUSED_REPLICAS`] annotation so retries are idempotent)
//!   (→ [`ScaleOutput`]).
//! - `undo` (required `deployments`: resolve's approved output; optional `to_revision`):
//!   `kubectl rollout undo` semantics (→ [`UndoOutput`]). Drill: server-side dry run.
//! - `status`: complete exactly when `kubectl rollout status` would say so (→ [`StatusOutput`]);
//!   `ProgressDeadlineExceeded` → `Rollback.RolloutStuck`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::resolved::{DeploymentResolution, ImageResolution};

pub const ACTIONS: &[&str] = &["resolve", "pause", "undo", "status", "resume"];

/// Annotation that records the replica count `pause` scaled down from.
pub const PAUSED_REPLICAS: &str = "deploy-rollback/paused-replicas";
/// Annotation naming the execution that paused the deployment.
pub const PAUSED_BY: &str = "deploy-rollback/paused-by";

/// The Kubernetes group the EKS access entry maps the function's IAM role to
/// (`--kubernetes-groups`, infra/DEPLOY.md), bound by [`RBAC_MANIFEST`]'s RoleBinding.
pub const KUBERNETES_GROUP: &str = "rollback-deploy-undo";
/// The Role and RoleBinding that grant the function exactly the requests it makes, relative
/// to the repository root (`kubectl apply -f` it; the local Kubernetes API enforces it).
pub const RBAC_MANIFEST: &str = "infra/k8s/rollback-rbac.yaml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum DeployUndoAction {
    Resolve {
        /// retag's resolved images: the target revision's images are compared with them.
        #[serde(default)]
        images: Vec<ImageResolution>,
        /// Roll back to this revision instead of the previous one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_revision: Option<i64>,
    },
    Pause,
    Resume {
        /// resolve's output: the replica counts to fall back on when a deployment was scaled
        /// to zero but its pause annotation is gone.
        #[serde(default)]
        deployments: Vec<DeploymentResolution>,
    },
    Undo {
        /// The approved resolve output (drift check and target revision).
        deployments: Vec<DeploymentResolution>,
        /// Overrides each resolution's `target_revision` (`kubectl rollout undo --to-revision`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_revision: Option<i64>,
    },
    Status,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveOutput {
    pub deployments: Vec<DeploymentResolution>,
    /// When the bad release started rolling out: the earliest current-revision rollout time
    /// over the deployments (the default database cutoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_time: Option<DateTime<Utc>>,
    /// Things the approver must see (image mismatch, missing history, paused deployments).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleOutput {
    pub drill: bool,
    pub deployments: Vec<ScaleResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleResult {
    pub name: String,
    pub namespace: String,
    pub replicas_before: i32,
    pub replicas_after: i32,
    /// False when the deployment was already in the wanted state (a retry, or nothing to do).
    pub changed: bool,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoOutput {
    pub drill: bool,
    pub deployments: Vec<UndoResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoResult {
    pub name: String,
    pub namespace: String,
    pub outcome: UndoOutcome,
    /// The revision that was current before the undo.
    pub from_revision: i64,
    /// The revision whose template was restored.
    pub to_revision: i64,
    /// The deployment's revision after the undo, when the controller already numbered it
    /// (a rollback creates a new revision number, like kubectl).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_revision: Option<i64>,
    /// Container images of the restored template.
    pub images: Vec<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UndoOutcome {
    RolledBack,
    /// The deployment already runs the target template (a retry, or undo to the current one).
    AlreadyAtTarget,
    /// Drill: the server accepted the change in a dry run; nothing changed.
    DryRun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusOutput {
    /// Every deployment's rollout is complete.
    pub complete: bool,
    pub deployments: Vec<RolloutStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutStatus {
    pub name: String,
    pub namespace: String,
    pub complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    pub generation: i64,
    pub observed_generation: i64,
    /// Desired replicas (`spec.replicas`).
    pub replicas: i32,
    pub updated_replicas: i32,
    /// All pods, old and new (`status.replicas`).
    pub total_replicas: i32,
    pub available_replicas: i32,
    pub images: Vec<String>,
    /// The replica count `pause` recorded (its annotation) while the deployment is paused:
    /// what `resume` (or a person) scales it back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_replicas: Option<i32>,
    /// What `kubectl rollout status` would print.
    pub message: String,
}
