//! The `infra` Lambda: Terraform back to the stable commit through the team's own CodeBuild
//! project (`plan.infrastructure`), never `apply -auto-approve` of an old checkout.
//!
//! Rolling *forward* to the stable commit: a plan build of that commit writes the saved plan and
//! its `terraform show -json` to S3; the approver sees the summary (what is added, changed,
//! destroyed, replaced); the apply build applies exactly that saved plan, checked by its SHA-256
//! in the buildspec (`infra/terraform/buildspec.yml`), and Terraform itself refuses it if the
//! state moved since ("stale"). See `rollback_core::contract::infra` for the actions.
//!
//! Deployed as `InfraFunction`: invoked with `StepInput<InfraAction>` JSON, it answers the
//! action's output or a `Rollback.*` error. Tests: `cargo test -p rollback-infra` (moto via
//! `make venv`).

mod apply;
mod artifacts;
mod builds;
mod commits;
mod summary;

use chrono::Utc;
use rollback_core::contract::infra::InfraAction;
use rollback_core::decision::{self, DecisionVerifier, Needed};
use rollback_core::plan::InfrastructureRef;
use rollback_core::step::to_output;
use rollback_core::{RollbackError, Scope, StepInput};
use serde_json::Value;

pub use apply::apply;
pub use builds::{start_plan, status};
pub use commits::resolve;
pub use summary::summarize;

/// The AWS clients the function uses.
#[derive(Clone)]
pub struct Clients {
    pub codebuild: aws_sdk_codebuild::Client,
    pub s3: aws_sdk_s3::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// Verifies the signed approval decision before a live `apply`.
    pub approval: DecisionVerifier,
}

impl Clients {
    /// Clients from `config`; `decision_key` is the ARN of the approval decision key.
    pub fn new(config: &aws_config::SdkConfig, decision_key: &str) -> Self {
        Clients {
            codebuild: aws_sdk_codebuild::Client::new(config),
            s3: rollback_core::aws::s3_client(config),
            ssm: aws_sdk_ssm::Client::new(config),
            approval: DecisionVerifier::new(aws_sdk_kms::Client::new(config), decision_key),
        }
    }
}

/// Entry point for every action: validates the envelope, then runs the action.
pub async fn handle(clients: &Clients, input: Value) -> Result<Value, RollbackError> {
    let given = input.get("infrastructure").cloned();
    let step = StepInput::<InfraAction>::parse(input)?;
    let infrastructure = section(&step)?;
    match &step.action {
        InfraAction::Resolve => {
            to_output(&resolve(clients, &step.plan, infrastructure, &step.execution).await?)
        }
        InfraAction::Plan {
            infrastructure: resolved,
        } => to_output(&start_plan(clients, resolved, &step.execution).await?),
        InfraAction::Status {
            build,
            keep_looking,
        } => {
            let polling = keep_looking.then_some(&step.plan.polling);
            to_output(&status(clients, build, polling).await?)
        }
        InfraAction::Summary {
            infrastructure: resolved,
            build,
        } => to_output(&summarize(clients, infrastructure, resolved, build).await?),
        InfraAction::Apply {
            infrastructure: resolved,
        } => {
            // Live, an apply needs a signed decision for this very plan, and one that allows
            // destroys when the plan destroys or replaces a protected resource type.
            if !step.request.mode.is_drill() {
                let needed = Needed {
                    scope: Scope::APP.and_infrastructure(resolved.destroys_protected()),
                    resolved: Some(("infrastructure", given.as_ref())),
                };
                decision::require(&clients.approval, &step, needed, Utc::now()).await?;
            }
            to_output(
                &apply(
                    clients,
                    infrastructure,
                    resolved,
                    &step.execution,
                    step.request.mode,
                )
                .await?,
            )
        }
    }
}

fn section<A>(step: &StepInput<A>) -> Result<&InfrastructureRef, RollbackError> {
    step.plan.infrastructure.as_ref().ok_or_else(|| {
        RollbackError::InvalidInput(
            "plan.infrastructure: this plan has no infrastructure section, so there is no \
             Terraform to roll back; add one (codebuild_project, stable_commit_parameter, \
             artifact_bucket) or do not call the infra function"
                .into(),
        )
    })
}
