//! `summary`: what the plan build would do, read from the artifacts it wrote, for the approver.

use rollback_core::RollbackError;
use rollback_core::contract::infra::{BuildPurpose, BuildRef, InfrastructureResolution, artifact};
use rollback_core::plan::InfrastructureRef;
use rollback_core::terraform_plan::{self, MAX_PLAN_BYTES};

use crate::Clients;
use crate::artifacts::{self, Unreadable};

/// The resolution completed with the plan build, the saved plan's hash and the summary.
pub async fn summarize(
    clients: &Clients,
    infrastructure: &InfrastructureRef,
    resolved: &InfrastructureResolution,
    build: &BuildRef,
) -> Result<InfrastructureResolution, RollbackError> {
    if build.purpose != BuildPurpose::Plan {
        return Err(RollbackError::InvalidInput(
            "build: summary reads a plan build's artifacts; give the `plan` action's output".into(),
        ));
    }
    if build.skipped.is_some() {
        return Ok(resolved.clone());
    }
    let plan_json = read(clients, build, artifact::PLAN_JSON, MAX_PLAN_BYTES).await?;
    let summary =
        terraform_plan::summarize(&plan_json, &infrastructure.protected_types).map_err(|e| {
            RollbackError::InfrastructureFailed(format!(
                "the plan build {} wrote a {} that cannot be shown to the approver: {e}. \
                 Nothing was applied",
                build.id,
                artifact::PLAN_JSON
            ))
        })?;
    let sha256 = plan_sha256(clients, build).await?;
    Ok(InfrastructureResolution {
        plan_build: Some(build.id.clone()),
        plan_sha256: Some(sha256),
        summary: Some(summary),
        ..resolved.clone()
    })
}

/// The saved plan's SHA-256 as the plan build recorded it (`plan.sha256`, hex).
pub(crate) async fn plan_sha256(
    clients: &Clients,
    build: &BuildRef,
) -> Result<String, RollbackError> {
    let text = read(clients, build, artifact::PLAN_SHA256, 1024).await?;
    let sha = String::from_utf8_lossy(&text)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RollbackError::InfrastructureFailed(format!(
            "{}/{} holds no SHA-256 (64 hex digits); the buildspec writes `sha256sum plan.tfplan` \
             there. Nothing was applied",
            build.artifact_key,
            artifact::PLAN_SHA256
        )));
    }
    Ok(sha)
}

async fn read(
    clients: &Clients,
    build: &BuildRef,
    name: &str,
    limit: usize,
) -> Result<Vec<u8>, RollbackError> {
    artifacts::read(clients, build, name, limit)
        .await
        .map_err(|why| match why {
            Unreadable::Missing(code) => RollbackError::InfrastructureFailed(format!(
                "the plan build {} succeeded but {} is missing or not readable ({code}): the \
                 project must run infra/terraform/buildspec.yml (or write what it writes) to \
                 the plan's artifact bucket and prefix. Nothing was applied",
                build.id,
                artifacts::uri(build, name)
            )),
            Unreadable::TooLarge { bytes, limit } => RollbackError::InfrastructureFailed(format!(
                "{} is {bytes} bytes, more than the {limit} it may be. Nothing was applied",
                artifacts::uri(build, name)
            )),
            Unreadable::Failed(error) => error,
        })
}
