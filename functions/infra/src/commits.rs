//! `resolve`: which commit is stable, which one is applied now (SSM, written by the release
//! pipeline), and whether there is anything to roll back.

use aws_sdk_ssm::error::ProvideErrorMetadata;
use rollback_core::contract::infra::{InfrastructureResolution, artifact_key};
use rollback_core::plan::{InfrastructureRef, Plan};
use rollback_core::{ExecutionId, RollbackError};

use crate::Clients;

pub async fn resolve(
    clients: &Clients,
    plan: &Plan,
    infrastructure: &InfrastructureRef,
    execution: &ExecutionId,
) -> Result<InfrastructureResolution, RollbackError> {
    let stable = read_commit(clients, &infrastructure.stable_commit_parameter, "stable")
        .await?
        .ok_or_else(|| {
            RollbackError::InfrastructureFailed(format!(
                "SSM parameter {} (infrastructure.stable_commit_parameter) does not exist: the \
                 release pipeline writes the stable commit there when a release is declared \
                 healthy. Without it there is no known-good Terraform to go back to; roll back \
                 without infrastructure, or write the commit and start again",
                infrastructure.stable_commit_parameter
            ))
        })?;
    let current = match &infrastructure.current_commit_parameter {
        Some(name) => read_commit(clients, name, "current").await?,
        None => None,
    };
    Ok(InfrastructureResolution {
        codebuild_project: infrastructure.codebuild_project.clone(),
        needs_plan: current.as_deref() != Some(stable.as_str()),
        stable_commit: stable,
        current_commit: current,
        artifact_bucket: infrastructure.artifact_bucket.clone(),
        artifact_key: artifact_key(&infrastructure.artifact_prefix, &plan.service, execution),
        plan_build: None,
        plan_sha256: None,
        summary: None,
        plan_error: None,
    })
}

/// The commit in `parameter`; `None` when the parameter does not exist.
pub(crate) async fn read_commit(
    clients: &Clients,
    parameter: &str,
    which: &str,
) -> Result<Option<String>, RollbackError> {
    let answer = match clients.ssm.get_parameter().name(parameter).send().await {
        Ok(answer) => answer,
        Err(e) if e.code() == Some("ParameterNotFound") => return Ok(None),
        Err(e) => return Err(RollbackError::from_sdk("GetParameter", e)),
    };
    let value = answer
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !is_commit(&value) {
        return Err(RollbackError::InfrastructureFailed(format!(
            "SSM parameter {parameter} should hold the {which} commit as a full Git SHA (40 or \
             64 hex digits), but holds {:?}; fix what the release pipeline writes there",
            value.chars().take(80).collect::<String>()
        )));
    }
    Ok(Some(value.to_ascii_lowercase()))
}

/// A full Git object id: SHA-1 (40 hex digits) or SHA-256 (64).
fn is_commit(value: &str) -> bool {
    matches!(value.len(), 40 | 64) && value.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::is_commit;

    #[test]
    fn only_full_shas_are_commits() {
        assert!(is_commit("0123456789abcdef0123456789abcdef01234567"));
        assert!(is_commit(&"a".repeat(64)));
        assert!(!is_commit("0123456"), "a short SHA can become ambiguous");
        assert!(!is_commit("main"), "a branch moves");
        assert!(!is_commit(&"g".repeat(40)));
    }
}
