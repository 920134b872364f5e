//! The `retag` Lambda: resolves the digests behind each plan image's stable and release tags,
//! and points the release tag back at the stable digest.
//!
//! Retagging is BatchGetImage of the stable manifest (asking for every manifest media type we
//! support, or a multi-arch image comes back as one platform's manifest) followed by PutImage of
//! the same bytes under the release tag with the same `imageManifestMediaType` (OCI manifests are
//! rejected without it). Before the release tag moves, its digest is tagged
//! `rolled-back-<execution>` so the bad image stays inspectable and no lifecycle policy can
//! sweep it as untagged. Digests are only ever compared, never computed: ECR (and moto) decide
//! what a digest is.
//!
//! Deployed as `RetagFunction`; inputs and outputs in `rollback_core::contract::retag`. Tests:
//! `cargo test -p rollback-retag` (moto via `make venv`).

mod apply;
mod ecr;
mod resolve;

use chrono::Utc;
use rollback_core::contract::retag::RetagAction;
use rollback_core::decision::{self, DecisionVerifier, Needed};
use rollback_core::step::to_output;
use rollback_core::{RollbackError, Scope, StepInput};
use serde_json::Value;

pub use apply::apply;
pub use ecr::ACCEPTED_MEDIA_TYPES;
pub use resolve::resolve;

/// The AWS clients the function uses.
#[derive(Clone)]
pub struct Clients {
    pub ecr: aws_sdk_ecr::Client,
    /// Verifies the signed approval decision before a live `apply`.
    pub approval: DecisionVerifier,
}

impl Clients {
    /// Clients from `config`; `decision_key` is the ARN of the approval decision key.
    pub fn new(config: &aws_config::SdkConfig, decision_key: &str) -> Self {
        Clients {
            ecr: aws_sdk_ecr::Client::new(config),
            approval: DecisionVerifier::new(aws_sdk_kms::Client::new(config), decision_key),
        }
    }
}

/// Entry point for every action: validates the envelope, then runs the action.
pub async fn handle(clients: &Clients, input: Value) -> Result<Value, RollbackError> {
    let given = input.get("images").cloned();
    let input = StepInput::<RetagAction>::parse(input)?;
    match &input.action {
        RetagAction::Resolve => to_output(&resolve(clients, &input.plan).await?),
        RetagAction::Apply { images } => {
            // Live, moving a release tag needs a signed decision for these very images.
            if !input.request.mode.is_drill() {
                let needed = Needed {
                    scope: Scope::APP,
                    resolved: Some(("images", given.as_ref())),
                };
                decision::require(&clients.approval, &input, needed, Utc::now()).await?;
            }
            to_output(
                &apply(
                    clients,
                    &input.plan,
                    &input.execution,
                    input.request.mode,
                    images,
                )
                .await?,
            )
        }
    }
}
