//! `suspend-gitops`: stop the GitOps controllers that apply the plan's deployments from
//! re-applying the bad release, before the deployments change. Resumes nothing.
//!
//! - Argo CD Application (`argoproj.io/v1alpha1 applications`): a JSON merge patch removes
//!   `spec.syncPolicy.automated` (`{"spec":{"syncPolicy":{"automated":null}}}`); the removed
//!   policy is kept in the Application's `deploy-rollback/suspended-automated` annotation so the
//!   resume command puts back exactly that. `automated.enabled: false` (Argo CD ≥ 2.14) counts
//!   as not auto-syncing.
//! - Flux Kustomization (`kustomize.toolkit.fluxcd.io/v1 kustomizations`): `spec.suspend: true`.
//!
//! Both record `deploy-rollback/suspended-by: <execution>` in the same patch, which carries the
//! resourceVersion read, so a concurrent change fails the step (retryable) instead of being
//! recorded wrong. Idempotent: an object this execution already suspended is left alone; one
//! that was not auto-syncing before is left as it was and said so. After a failed patch the
//! object is read again: a suspension that took effect (its answer was lost) counts as done.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use rollback_core::contract::deploy_undo::{
    GITOPS_RBAC_MANIFESTS, GitOpsOutcome, GitOpsOutput, GitOpsResult, GitOpsState,
    SUSPENDED_AUTOMATED, SUSPENDED_BY,
};
use rollback_core::plan::{GitOpsKind, GitOpsRef};
use rollback_core::{ExecutionId, RollbackError};
use serde_json::{Value, json};

use crate::cluster::{Cluster, k8s_error_granted_by};

const MANAGER: &str = "rollback-deploy-undo";

fn api_resource(kind: GitOpsKind) -> ApiResource {
    let (group, version, kind, plural) = match kind {
        GitOpsKind::Argocd => ("argoproj.io", "v1alpha1", "Application", "applications"),
        GitOpsKind::Flux => (
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
        ),
    };
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn manifest(kind: GitOpsKind) -> &'static str {
    GITOPS_RBAC_MANIFESTS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, m)| *m)
        .unwrap_or(rollback_core::contract::deploy_undo::RBAC_MANIFEST)
}

/// What one object's auto-sync looks like now.
struct Sync {
    /// It does not sync on its own.
    suspended: bool,
    /// The execution that suspended it (the annotation).
    by: Option<String>,
    /// Argo CD: the live `automated` policy (when syncing) or the recorded one (when suspended).
    automated: Option<Value>,
    resource_version: Option<String>,
}

fn sync_of(kind: GitOpsKind, obj: &DynamicObject) -> Sync {
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    let by = annotations.get(SUSPENDED_BY).cloned();
    let resource_version = obj.metadata.resource_version.clone();
    match kind {
        GitOpsKind::Argocd => {
            let live = obj
                .data
                .pointer("/spec/syncPolicy/automated")
                .filter(|a| !a.is_null())
                .cloned();
            let enabled = live
                .as_ref()
                .is_some_and(|a| a.get("enabled") != Some(&Value::Bool(false)));
            let recorded = annotations
                .get(SUSPENDED_AUTOMATED)
                .and_then(|r| serde_json::from_str(r).ok());
            Sync {
                suspended: !enabled,
                by,
                automated: if enabled { live } else { recorded },
                resource_version,
            }
        }
        GitOpsKind::Flux => Sync {
            suspended: obj.data.pointer("/spec/suspend") == Some(&Value::Bool(true)),
            by,
            automated: None,
            resource_version,
        },
    }
}

async fn get(
    api: &Api<DynamicObject>,
    g: &GitOpsRef,
    name: &str,
) -> Result<DynamicObject, RollbackError> {
    api.get(name).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => RollbackError::Kubernetes {
            operation: format!("get {}", g.kind.resource()),
            message: format!(
                "{} does not exist, so its auto-sync cannot be suspended; fix the plan's \
                 cluster.gitops (or remove the entry if that controller no longer applies these \
                 deployments)",
                g.describe()
            ),
            retryable: false,
        },
        e => k8s_error_granted_by(&format!("get {}", g.kind.resource()), e, manifest(g.kind)),
    })
}

pub async fn suspend(
    cluster: &Cluster,
    gitops: &[GitOpsRef],
    execution: &ExecutionId,
    drill: bool,
) -> Result<GitOpsOutput, RollbackError> {
    let client = cluster.client().await?;
    let mut objects = Vec::with_capacity(gitops.len());
    for g in gitops {
        let ns = g.namespace().to_owned();
        let Some(name) = g.name() else {
            objects.push(GitOpsResult {
                kind: g.kind,
                namespace: ns,
                name: None,
                outcome: GitOpsOutcome::NotNamed,
                previous: None,
                suspended_by: None,
                message: format!(
                    "NOT SUSPENDED: the plan does not name it (cluster.gitops: add `{}`), so it \
                     may re-apply the bad release; pause its sync by hand",
                    g.kind.name_field()
                ),
            });
            continue;
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &api_resource(g.kind));
        let target = Target {
            api: &api,
            g,
            ns: &ns,
            name,
            execution,
            drill,
        };
        objects.push(target.suspend().await?);
    }
    let summary = summary(&objects, drill);
    Ok(GitOpsOutput {
        drill,
        objects,
        summary: rollback_core::validation::truncate(&summary, 300),
    })
}

/// One named GitOps object to suspend, for this execution.
struct Target<'a> {
    api: &'a Api<DynamicObject>,
    g: &'a GitOpsRef,
    ns: &'a String,
    name: &'a str,
    execution: &'a ExecutionId,
    drill: bool,
}

impl Target<'_> {
    fn result(&self, outcome: GitOpsOutcome, sync: &Sync, message: String) -> GitOpsResult {
        GitOpsResult {
            kind: self.g.kind,
            namespace: self.ns.clone(),
            name: Some(self.name.to_owned()),
            outcome,
            previous: sync.automated.as_ref().map(Value::to_string),
            suspended_by: match outcome {
                GitOpsOutcome::Suspended | GitOpsOutcome::AlreadySuspended => {
                    Some(self.execution.as_str().to_owned())
                }
                GitOpsOutcome::NotAutoSyncing => sync.by.clone(),
                GitOpsOutcome::NotNamed | GitOpsOutcome::DryRun => None,
            },
            message,
        }
    }

    /// Reads the object; one that does not sync on its own is left as it is, any other is
    /// patched.
    async fn suspend(&self) -> Result<GitOpsResult, RollbackError> {
        let obj = get(self.api, self.g, self.name).await?;
        let sync = sync_of(self.g.kind, &obj);
        if sync.suspended {
            return Ok(self.already_suspended(&sync));
        }
        self.patch(&sync).await
    }

    /// The object does not sync on its own: suspended by this execution earlier, or by someone
    /// else (another rollback, or by hand).
    fn already_suspended(&self, sync: &Sync) -> GitOpsResult {
        let ours = sync.by.as_deref() == Some(self.execution.as_str());
        if ours {
            self.result(
                GitOpsOutcome::AlreadySuspended,
                sync,
                "auto-sync SUSPENDED by this rollback (already, on an earlier attempt); \
                 nothing resumes it automatically"
                    .to_owned(),
            )
        } else {
            self.result(
                GitOpsOutcome::NotAutoSyncing,
                sync,
                match &sync.by {
                    Some(other) => {
                        format!(
                            "auto-sync was already suspended by rollback {other}; left as it is"
                        )
                    }
                    None => {
                        "auto-sync was already off before the rollback; left as it is".to_owned()
                    }
                },
            )
        }
    }

    /// The suspending merge patch, carrying the resourceVersion read.
    fn suspend_patch(&self, sync: &Sync) -> Value {
        let execution = self.execution;
        match self.g.kind {
            GitOpsKind::Argocd => json!({
                "metadata": {
                    "annotations": {
                        SUSPENDED_BY: execution.as_str(),
                        SUSPENDED_AUTOMATED: sync.automated.as_ref().map(Value::to_string),
                    },
                    "resourceVersion": sync.resource_version,
                },
                "spec": {"syncPolicy": {"automated": null}}
            }),
            GitOpsKind::Flux => json!({
                "metadata": {
                    "annotations": {SUSPENDED_BY: execution.as_str()},
                    "resourceVersion": sync.resource_version,
                },
                "spec": {"suspend": true}
            }),
        }
    }

    /// Sends the patch (a server-side dry run in a drill); after a failed one, the object is
    /// read again.
    async fn patch(&self, sync: &Sync) -> Result<GitOpsResult, RollbackError> {
        let (api, g, name, execution, drill) =
            (self.api, self.g, self.name, self.execution, self.drill);
        let patch = self.suspend_patch(sync);
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            dry_run: drill,
            ..Default::default()
        };
        let operation = format!("patch {} (suspend auto-sync)", g.kind.resource());
        let result = match api.patch(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) if drill => self.result(
                GitOpsOutcome::DryRun,
                sync,
                "drill: suspending its auto-sync passed a server-side dry run; nothing changed"
                    .to_owned(),
            ),
            Ok(_) => self.result(
                GitOpsOutcome::Suspended,
                sync,
                "auto-sync SUSPENDED by this rollback; nothing resumes it automatically".to_owned(),
            ),
            Err(err) => {
                let err = k8s_error_granted_by(&operation, err, manifest(g.kind));
                if drill {
                    return Err(err);
                }
                // Observe before deciding: the patch may have taken effect.
                let seen = api.get(name).await.ok().map(|o| sync_of(g.kind, &o));
                match seen {
                    Some(s) if s.suspended && s.by.as_deref() == Some(execution.as_str()) => self
                        .result(
                            GitOpsOutcome::Suspended,
                            &s,
                            "auto-sync SUSPENDED by this rollback (the answer to the patch was \
                             lost; observed it suspended); nothing resumes it automatically"
                                .to_owned(),
                        ),
                    _ => return Err(err),
                }
            }
        };
        tracing::info!(object = %g.describe(), drill, "GitOps auto-sync suspended");
        Ok(result)
    }
}

/// The step's one-line summary: what was suspended, and what the plan does not name.
fn summary(objects: &[GitOpsResult], drill: bool) -> String {
    let suspended: Vec<String> = objects
        .iter()
        .filter(|o| {
            matches!(
                o.outcome,
                GitOpsOutcome::Suspended | GitOpsOutcome::AlreadySuspended
            )
        })
        .map(|o| format!("{}/{}", o.namespace, o.name.as_deref().unwrap_or("?")))
        .collect();
    let not_named = objects
        .iter()
        .filter(|o| o.outcome == GitOpsOutcome::NotNamed)
        .count();
    let mut summary = if drill {
        "drill: GitOps suspension checked by a dry run; nothing changed".to_owned()
    } else if suspended.is_empty() {
        "no GitOps auto-sync was on to suspend".to_owned()
    } else {
        format!(
            "GitOps auto-sync suspended ({}); nothing resumes it automatically",
            suspended.join(", ")
        )
    };
    if not_named > 0 {
        summary.push_str(&format!(
            "; {not_named} GitOps object(s) not named in the plan were NOT suspended"
        ));
    }
    summary
}

/// Each named object's auto-sync as it is now, for `status` (the failure notice reads it).
/// Never fails: an object that cannot be read says why.
pub async fn observe(cluster: &Cluster, gitops: &[GitOpsRef]) -> Vec<GitOpsState> {
    let client = cluster.client().await.ok();
    let mut out = Vec::with_capacity(gitops.len());
    for g in gitops {
        let ns = g.namespace().to_owned();
        let mut state = GitOpsState {
            kind: g.kind,
            namespace: ns.clone(),
            name: g.name().map(str::to_owned),
            suspended: None,
            suspended_by: None,
            previous: None,
            message: String::new(),
        };
        let (Some(name), Some(client)) = (g.name(), client.as_ref()) else {
            state.message = "not observed (the plan does not name it)".to_owned();
            out.push(state);
            continue;
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &api_resource(g.kind));
        match get(&api, g, name).await {
            Ok(obj) => {
                let sync = sync_of(g.kind, &obj);
                state.suspended = Some(sync.suspended);
                state.message = match (sync.suspended, &sync.by) {
                    (true, Some(by)) => format!("auto-sync SUSPENDED by rollback {by}"),
                    (true, None) => "auto-sync off (not suspended by a rollback)".to_owned(),
                    (false, _) => "auto-sync ON: it may re-apply what is in git".to_owned(),
                };
                if sync.suspended && sync.by.is_some() {
                    state.previous = sync.automated.as_ref().map(Value::to_string);
                }
                state.suspended_by = sync.by;
            }
            Err(e) => {
                state.message =
                    rollback_core::validation::truncate(&format!("not observed ({e})"), 200)
            }
        }
        out.push(state);
    }
    out
}
