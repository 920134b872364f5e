//! The `deploy-undo` Lambda: resolves, pauses, rolls back and watches the plan's EKS
//! deployments with `kubectl rollout undo` semantics.
//!
//! # Reaching the cluster
//! As EKS clients do: endpoint and CA from `eks:DescribeCluster`, and a bearer token
//! `k8s-aws-v1.<base64url of a presigned STS GetCallerIdentity URL>` signed for the cluster
//! (`rollback_core::eks_token`), reused within an invocation and renewed before it expires.
//!
//! # Endpoint override (local stacks, private endpoints)
//! `DescribeCluster` still runs, but its endpoint and CA are replaced when these are set
//! (the Lambda reads them in `main`; tests pass an [`ApiOverride`] in [`Clients`]):
//!
//! | variable | meaning |
//! |---|---|
//! | `ROLLBACK_KUBE_API_URL` | API server URL, e.g. `https://127.0.0.1:6443` (`http://` for a plain-HTTP local API) |
//! | `ROLLBACK_KUBE_CA_FILE` | path of the PEM CA that signed the server certificate |
//! | `ROLLBACK_KUBE_CA_PEM`  | the PEM itself (used when `ROLLBACK_KUBE_CA_FILE` is unset) |
//!
//! The EKS token is sent either way, so the authentication path is the one used in AWS.
//!
//! # Actions
//! See `rollback_core::contract::deploy_undo`.
//!
//! Deployed as `DeployUndoFunction` (infra/template.yaml): the state machine invokes it with
//! `StepInput<DeployUndoAction>` JSON and gets the action's output, or a `Rollback.*` error.
//! Tests: `cargo test -p rollback-deploy-undo` (moto via `make venv`, kubectl; the local
//! Kubernetes API runs in-process).

mod cluster;
mod gitops;
mod history;
mod images;
mod resolve;
mod restart;
mod scale;
mod status;
mod undo;

use rollback_core::contract::deploy_undo::DeployUndoAction;
use rollback_core::decision::{self, DecisionVerifier, Needed};
use rollback_core::step::to_output;
use rollback_core::{RollbackError, Scope, StepInput};
use serde_json::Value;

pub use cluster::{ApiOverride, CA_FILE_VAR, CA_PEM_VAR, Cluster, URL_VAR};
pub use gitops::{observe as observe_gitops, suspend as suspend_gitops};
pub use history::{POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY};
pub use resolve::resolve;
pub use restart::{restart, restart_value};
pub use scale::{pause, resume};
pub use status::{judge, status};
pub use undo::{ANNOTATIONS_TO_SKIP, undo};

/// What the function needs: EKS for `DescribeCluster`, the SDK configuration for the
/// credentials and region that sign the token, and the optional endpoint override.
#[derive(Clone)]
pub struct Clients {
    pub eks: aws_sdk_eks::Client,
    pub config: aws_config::SdkConfig,
    pub api_override: Option<ApiOverride>,
    /// Verifies the signed approval decision before a live action that changes the cluster.
    pub approval: DecisionVerifier,
}

impl Clients {
    /// Clients from `config`; `decision_key` is the ARN of the approval decision key.
    pub fn new(
        config: &aws_config::SdkConfig,
        decision_key: &str,
        api_override: Option<ApiOverride>,
    ) -> Self {
        Clients {
            eks: aws_sdk_eks::Client::new(config),
            config: config.clone(),
            api_override,
            approval: DecisionVerifier::new(aws_sdk_kms::Client::new(config), decision_key),
        }
    }
}

/// Entry point for every action: validates the envelope, checks the signed decision of an
/// action that changes the cluster, connects, runs the action.
pub async fn handle(clients: &Clients, input: Value) -> Result<Value, RollbackError> {
    let given = input.get("deployments").cloned();
    let input = StepInput::<DeployUndoAction>::parse(input)?;
    require_approval(clients, &input, given.as_ref()).await?;
    run(clients, &input).await
}

/// [`handle`] without the decision check, for an operator's own tool running in-process with
/// the operator's own credentials (`rollbackctl resume` after a failed execution). The
/// Lambda's entry point is [`handle`]: a direct invoke cannot reach this.
pub async fn handle_operator(clients: &Clients, input: Value) -> Result<Value, RollbackError> {
    run(clients, &StepInput::<DeployUndoAction>::parse(input)?).await
}

async fn run(
    clients: &Clients,
    input: &StepInput<DeployUndoAction>,
) -> Result<Value, RollbackError> {
    let cluster_ref = input.plan.cluster.as_ref().ok_or_else(|| {
        RollbackError::InvalidInput(
            "the plan has no `cluster`: there are no deployments for deploy-undo to act on".into(),
        )
    })?;
    let cluster = Cluster::connect(clients, cluster_ref).await?;
    let names = &cluster_ref.deployments;
    let drill = input.request.mode.is_drill();
    match &input.action {
        DeployUndoAction::Resolve {
            images,
            to_revision,
        } => to_output(&resolve(&cluster, names, images, &input.plan.images, *to_revision).await?),
        DeployUndoAction::Pause => {
            to_output(&pause(&cluster, names, &input.execution, drill).await?)
        }
        DeployUndoAction::SuspendGitops => to_output(
            &suspend_gitops(&cluster, &cluster_ref.gitops, &input.execution, drill).await?,
        ),
        DeployUndoAction::Resume { deployments } => {
            to_output(&resume(&cluster, names, &input.execution, drill, deployments).await?)
        }
        DeployUndoAction::Undo {
            deployments,
            to_revision,
        } => to_output(&undo(&cluster, names, deployments, *to_revision, drill).await?),
        DeployUndoAction::Restart {
            deployments,
            restarted_at,
        } => to_output(&restart(&cluster, names, deployments, *restarted_at, drill).await?),
        DeployUndoAction::Status { keep_looking } => {
            let polling = keep_looking.then_some(&input.plan.polling);
            to_output(&status(&cluster, names, &cluster_ref.gitops, polling).await?)
        }
    }
}

/// Every action that changes the cluster (pause, suspend-gitops, undo, restart, resume) runs
/// live only with a signed decision for this execution and plan, and for the deployments it
/// is given, if any. Resolve and status only read.
async fn require_approval(
    clients: &Clients,
    input: &StepInput<DeployUndoAction>,
    given_deployments: Option<&Value>,
) -> Result<(), RollbackError> {
    if input.request.mode.is_drill()
        || matches!(
            input.action,
            DeployUndoAction::Resolve { .. } | DeployUndoAction::Status { .. }
        )
    {
        return Ok(());
    }
    let needed = Needed {
        scope: Scope::APP,
        resolved: given_deployments.map(|given| ("deployments", Some(given))),
    };
    decision::require(&clients.approval, input, needed, chrono::Utc::now()).await?;
    Ok(())
}
