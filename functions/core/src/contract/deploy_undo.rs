//! Contract of the `deploy-undo` function: the plan's EKS deployments.
//!
//! - `resolve` (optional `images`: retag's resolved images, optional `to_revision`): per
//!   deployment, the current and target revision from the ReplicaSets' revision annotations,
//!   their images, when the current revision rolled out, and whether the target revision runs
//!   the stable digests (→ [`ResolveOutput`]). Changes nothing.
//! - `pause` / `resume`: scale to zero and back to the recorded replica counts (the count is
//!   kept in the deployment's [`PAUSED_REPLICAS`] annotation so retries are idempotent)
//!   (→ [`ScaleOutput`]).
//!   Tag-pinned deployments (the target revision runs a release tag the retag moves, with the
//!   same reference as the current revision) are flagged `restart_needed`; a container whose
//!   pull policy would keep a node's cached image under such a tag gets a pull-policy warning
//!   with the fix.
//! - `suspend-gitops`: before the deployments change, suspends the auto-sync of every GitOps
//!   object the plan names (`cluster.gitops`): Argo CD Application → `spec.syncPolicy.automated`
//!   removed (kept in [`SUSPENDED_AUTOMATED`]), Flux Kustomization → `spec.suspend: true`; marks
//!   it [`SUSPENDED_BY`] the execution; idempotent; resumes nothing (→ [`GitOpsOutput`], each
//!   with the exact `kubectl` command that resumes it). Drill: server-side dry run.
//! - `undo` (required `deployments`: resolve's approved output; optional `to_revision`):
//!   `kubectl rollout undo` semantics (→ [`UndoOutput`]). Drill: server-side dry run.
//! - `restart` (required `deployments`: resolve's approved output; required `restarted_at`,
//!   the state's entered time, so a retry writes the same value): after the retag, for each
//!   deployment resolve flagged `restart_needed`, `kubectl rollout restart` — the pod
//!   template's [`RESTARTED_AT`] annotation set to `restarted_at` (→ [`RestartOutput`]). Drill:
//!   server-side dry run.
//! - `status`: complete exactly when `kubectl rollout status` would say so (→ [`StatusOutput`]);
//!   `ProgressDeadlineExceeded` → `Rollback.RolloutStuck`. Also reports, as observed, whether
//!   each named GitOps object's auto-sync is suspended and how to resume it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::GitOpsKind;
use crate::resolved::{DeploymentResolution, ImageResolution};

/// The actions the state machine may call on this function.
pub const ACTIONS: &[&str] = &[
    "resolve",
    "pause",
    "suspend-gitops",
    "undo",
    "restart",
    "status",
    "resume",
];

/// The pod-template annotation `kubectl rollout restart` sets (an RFC 3339 time).
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// Annotation naming the execution that suspended a GitOps object's auto-sync.
pub const SUSPENDED_BY: &str = "deploy-rollback/suspended-by";
/// Argo CD: the `spec.syncPolicy.automated` that `suspend-gitops` removed (JSON), so the resume
/// command puts back exactly that.
pub const SUSPENDED_AUTOMATED: &str = "deploy-rollback/suspended-automated";
/// The Role and RoleBinding that let the function suspend the GitOps objects, per kind
/// (applied only where that controller runs; the namespace must exist).
pub const GITOPS_RBAC_MANIFESTS: &[(GitOpsKind, &str)] = &[
    (GitOpsKind::Argocd, "infra/k8s/rollback-rbac-argocd.yaml"),
    (GitOpsKind::Flux, "infra/k8s/rollback-rbac-flux.yaml"),
];

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

/// The input of one `deploy-undo` invocation, tagged by `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum DeployUndoAction {
    /// Find each deployment's current and target revision; changes nothing.
    Resolve {
        /// retag's resolved images: the target revision's images are compared with them.
        #[serde(default)]
        images: Vec<ImageResolution>,
        /// Roll back to this revision instead of the previous one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_revision: Option<i64>,
    },
    /// Scale every deployment to zero, recording its replica count.
    Pause,
    /// Suspend the auto-sync of the plan's GitOps objects.
    SuspendGitops,
    /// Scale every deployment back to its recorded replica count.
    Resume {
        /// resolve's output: the replica counts to fall back on when a deployment was scaled
        /// to zero but its pause annotation is gone.
        #[serde(default)]
        deployments: Vec<DeploymentResolution>,
    },
    /// Roll each deployment back to its target revision (`kubectl rollout undo`).
    Undo {
        /// The approved resolve output (drift check and target revision).
        deployments: Vec<DeploymentResolution>,
        /// Overrides each resolution's `target_revision` (`kubectl rollout undo --to-revision`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_revision: Option<i64>,
    },
    /// Restart the tag-pinned deployments after the retag (`kubectl rollout restart`).
    Restart {
        /// The approved resolve output: only deployments flagged `restart_needed` restart.
        deployments: Vec<DeploymentResolution>,
        /// The value of the restart annotation (`$$.State.EnteredTime`): the same on every
        /// retry of the step, so a retry does not restart twice.
        restarted_at: DateTime<Utc>,
    },
    /// Report each deployment's rollout (`kubectl rollout status`).
    Status {
        /// Look again, `polling.interval_seconds` apart, for up to
        /// `polling.status_wait_seconds` until done (the definition's wait loops); otherwise
        /// one look.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_looking: bool,
    },
}

/// Output of `resolve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveOutput {
    /// One resolution per plan deployment.
    pub deployments: Vec<DeploymentResolution>,
    /// When the bad release started rolling out: the earliest current-revision rollout time
    /// over the deployments (the default database cutoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_time: Option<DateTime<Utc>>,
    /// Things the approver must see (image mismatch, missing history, paused deployments).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Some deployment is tag-pinned (its `restart_needed`): the definition runs `restart`
    /// after `undo`.
    #[serde(default)]
    pub restart_needed: bool,
}

/// Output of `pause` and `resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleOutput {
    /// The execution ran in drill mode (server-side dry runs only).
    pub drill: bool,
    /// One result per deployment.
    pub deployments: Vec<ScaleResult>,
}

/// One deployment scaled by `pause` or `resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleResult {
    /// The deployment's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `pause`: the replica count it recorded; `resume`: the spec's count before this call.
    pub replicas_before: i32,
    /// Replicas after this call: 0 for `pause`, the count scaled back to for `resume`.
    pub replicas_after: i32,
    /// False when the deployment was already in the wanted state (a retry, or nothing to do).
    pub changed: bool,
    /// What happened, in plain words.
    pub message: String,
}

/// Output of `undo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoOutput {
    /// The execution ran in drill mode (server-side dry runs only).
    pub drill: bool,
    /// One result per deployment.
    pub deployments: Vec<UndoResult>,
}

/// One deployment rolled back by `undo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoResult {
    /// The deployment's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// What happened.
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
    /// What happened, in plain words.
    pub message: String,
}

/// What `undo` did to one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UndoOutcome {
    /// Its pod template is now the target revision's.
    RolledBack,
    /// The deployment already runs the target template (a retry, or undo to the current one).
    AlreadyAtTarget,
    /// Drill: the server accepted the change in a dry run; nothing changed.
    DryRun,
}

/// Output of `restart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartOutput {
    /// The execution ran in drill mode (server-side dry runs only).
    pub drill: bool,
    /// One result per deployment.
    pub deployments: Vec<RestartResult>,
}

/// One deployment's `restart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartResult {
    /// The deployment's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// What happened.
    pub outcome: RestartOutcome,
    /// The [`RESTARTED_AT`] value written (or found).
    pub restarted_at: String,
    /// The tag references whose pods were restarted.
    #[serde(default)]
    pub images: Vec<String>,
    /// What happened, in plain words.
    pub message: String,
}

/// What `restart` did to one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartOutcome {
    /// The restart annotation was written now.
    Restarted,
    /// The template already carries this restart (a retry, or a lost answer observed).
    AlreadyRestarted,
    /// resolve did not flag it.
    NotNeeded,
    /// Drill: the server accepted the change in a dry run; nothing changed.
    DryRun,
}

/// `suspend-gitops`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitOpsOutput {
    /// The execution ran in drill mode (server-side dry runs only).
    pub drill: bool,
    /// One result per GitOps object the plan names.
    pub objects: Vec<GitOpsResult>,
    /// One line for the progress record.
    pub summary: String,
}

/// One GitOps object's `suspend-gitops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitOpsResult {
    /// Argo CD or Flux.
    pub kind: GitOpsKind,
    /// The object's namespace.
    pub namespace: String,
    /// `None` when the plan does not name the object (nothing could be suspended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What happened.
    pub outcome: GitOpsOutcome,
    /// Argo CD: the `automated` policy that was removed (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The execution whose suspension is in place (this one, or an earlier rollback's, e.g.
    /// before a crash and restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_by: Option<String>,
    /// What happened, after the object's description (`auto-sync SUSPENDED by this rollback…`).
    pub message: String,
}

impl GitOpsResult {
    /// `Argo CD Application argocd/mint-replica`.
    pub fn describe(&self) -> String {
        describe_object(self.kind, &self.namespace, self.name.as_deref())
    }

    /// The exact command that resumes what a rollback suspended (derived, so the state
    /// machine does not carry it); `None` for an object no rollback suspended.
    pub fn resume_command(&self) -> Option<String> {
        resume_command_if(
            self.suspended_by.is_some() && self.outcome != GitOpsOutcome::DryRun,
            self.kind,
            &self.namespace,
            self.name.as_deref(),
            self.previous.as_deref(),
        )
    }
}

/// What `suspend-gitops` did to one GitOps object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GitOpsOutcome {
    /// This call suspended it.
    Suspended,
    /// This rollback had already suspended it (a retry, or a lost answer observed).
    AlreadySuspended,
    /// It was not auto-syncing before the rollback (Argo CD without `automated`, a Flux
    /// Kustomization already suspended by someone else): left as it was.
    NotAutoSyncing,
    /// The plan gives only the kind: the rollback cannot suspend it.
    NotNamed,
    /// Drill: the server accepted the change in a dry run; nothing changed.
    DryRun,
}

/// A GitOps object's auto-sync as `status` observed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitOpsState {
    /// Argo CD or Flux.
    pub kind: GitOpsKind,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name (`None`: the plan does not name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Some(true)`: it does not sync on its own; `None`: not observed (see `message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// The execution whose `suspend-gitops` suspended it (its annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_by: Option<String>,
    /// Argo CD: the `automated` policy a rollback recorded when it suspended it (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// What was observed, in plain words (or why nothing could be).
    pub message: String,
}

impl GitOpsState {
    /// `Argo CD Application argocd/mint-replica`.
    pub fn describe(&self) -> String {
        describe_object(self.kind, &self.namespace, self.name.as_deref())
    }

    /// The command that resumes it, when a rollback suspended it.
    pub fn resume_command(&self) -> Option<String> {
        resume_command_if(
            self.suspended == Some(true) && self.suspended_by.is_some(),
            self.kind,
            &self.namespace,
            self.name.as_deref(),
            self.previous.as_deref(),
        )
    }
}

/// `Argo CD Application argocd/mint-replica`, or `… in namespace argocd` without a name.
fn describe_object(kind: GitOpsKind, namespace: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{} {namespace}/{name}", kind.describe()),
        None => format!("{} in namespace {namespace}", kind.describe()),
    }
}

/// [`gitops_resume_command`] for a named object a rollback `suspended`; `None` otherwise.
fn resume_command_if(
    suspended: bool,
    kind: GitOpsKind,
    namespace: &str,
    name: Option<&str>,
    previous: Option<&str>,
) -> Option<String> {
    let name = name?;
    suspended.then(|| gitops_resume_command(kind, namespace, name, previous))
}

/// `kubectl patch` arguments with the JSON merge patch in single quotes, for a shell.
fn kubectl_patch(
    kind: GitOpsKind,
    namespace: &str,
    name: &str,
    patch: &serde_json::Value,
) -> String {
    format!(
        "kubectl -n {namespace} patch {} {name} --type merge -p '{}'",
        kind.resource(),
        patch.to_string().replace('\'', "'\\''")
    )
}

/// The exact command that puts back what `suspend-gitops` changed: Argo CD's recorded
/// `automated` policy (`previous`, JSON; `{}` when unknown) or Flux's `suspend: false`, and
/// the rollback's annotations removed.
pub fn gitops_resume_command(
    kind: GitOpsKind,
    namespace: &str,
    name: &str,
    previous: Option<&str>,
) -> String {
    let patch = match kind {
        GitOpsKind::Argocd => {
            let automated = previous
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| serde_json::json!({}));
            serde_json::json!({
                "metadata": {"annotations": {SUSPENDED_BY: null, SUSPENDED_AUTOMATED: null}},
                "spec": {"syncPolicy": {"automated": automated}}
            })
        }
        GitOpsKind::Flux => serde_json::json!({
            "metadata": {"annotations": {SUSPENDED_BY: null}},
            "spec": {"suspend": false}
        }),
    };
    kubectl_patch(kind, namespace, name, &patch)
}

/// The command that suspends it by hand (for an object the plan does not name).
pub fn gitops_suspend_command(kind: GitOpsKind, namespace: &str, name: &str) -> String {
    let patch = match kind {
        GitOpsKind::Argocd => serde_json::json!({"spec": {"syncPolicy": {"automated": null}}}),
        GitOpsKind::Flux => serde_json::json!({"spec": {"suspend": true}}),
    };
    kubectl_patch(kind, namespace, name, &patch)
}

/// Output of `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusOutput {
    /// Every deployment's rollout is complete.
    pub complete: bool,
    /// One status per deployment.
    pub deployments: Vec<RolloutStatus>,
    /// The plan's GitOps objects, as observed (only when the plan names some).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gitops: Vec<GitOpsState>,
}

/// One deployment's rollout, as `kubectl rollout status` sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutStatus {
    /// The deployment's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The rollout is complete.
    pub complete: bool,
    /// The deployment's revision annotation, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// `metadata.generation`: the spec version the controller should act on.
    pub generation: i64,
    /// `status.observedGeneration`: the spec version the controller has seen.
    pub observed_generation: i64,
    /// Desired replicas (`spec.replicas`).
    pub replicas: i32,
    /// Pods of the current template (`status.updatedReplicas`).
    pub updated_replicas: i32,
    /// All pods, old and new (`status.replicas`).
    pub total_replicas: i32,
    /// Pods available (`status.availableReplicas`).
    pub available_replicas: i32,
    /// Container images of the pod template.
    pub images: Vec<String>,
    /// The replica count `pause` recorded (its annotation) while the deployment is paused:
    /// what `resume` (or a person) scales it back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_replicas: Option<i32>,
    /// What `kubectl rollout status` would print.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_commands_put_back_exactly_what_was_suspended() {
        assert_eq!(
            gitops_resume_command(
                GitOpsKind::Argocd,
                "argocd",
                "mint-replica",
                Some(r#"{"prune":true,"selfHeal":true}"#)
            ),
            "kubectl -n argocd patch applications.argoproj.io mint-replica --type merge -p \
             '{\"metadata\":{\"annotations\":{\"deploy-rollback/suspended-by\":null,\
             \"deploy-rollback/suspended-automated\":null}},\"spec\":{\"syncPolicy\":{\"automated\":\
             {\"prune\":true,\"selfHeal\":true}}}}'"
        );
        assert_eq!(
            gitops_resume_command(GitOpsKind::Flux, "flux-system", "apps", None),
            "kubectl -n flux-system patch kustomizations.kustomize.toolkit.fluxcd.io apps --type \
             merge -p '{\"metadata\":{\"annotations\":{\"deploy-rollback/suspended-by\":null}},\
             \"spec\":{\"suspend\":false}}'"
        );
        // A quote in a recorded value cannot end the shell's quoting.
        let odd = gitops_resume_command(GitOpsKind::Argocd, "a", "b", Some(r#"{"x":"it's"}"#));
        assert!(odd.contains(r#"it'\''s"#), "{odd}");
        assert_eq!(
            gitops_suspend_command(GitOpsKind::Argocd, "argocd", "web"),
            "kubectl -n argocd patch applications.argoproj.io web --type merge -p \
             '{\"spec\":{\"syncPolicy\":{\"automated\":null}}}'"
        );
    }

    #[test]
    fn actions_parse_by_their_kebab_names() {
        let a: DeployUndoAction =
            serde_json::from_value(serde_json::json!({"action": "suspend-gitops"})).unwrap();
        assert_eq!(a, DeployUndoAction::SuspendGitops);
        let r: DeployUndoAction = serde_json::from_value(serde_json::json!({
            "action": "restart", "deployments": [], "restarted_at": "2024-05-01T12:00:00.123Z"
        }))
        .unwrap();
        assert!(matches!(r, DeployUndoAction::Restart { .. }));
        for name in ACTIONS {
            assert!(!name.is_empty());
        }
    }
}
