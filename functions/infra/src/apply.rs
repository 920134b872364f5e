//! `apply`: exactly the approved plan, after checking it is still the plan the approver saw.

use rollback_core::contract::infra::{BuildPurpose, BuildRef, InfrastructureResolution};
use rollback_core::plan::InfrastructureRef;
use rollback_core::request::Mode;
use rollback_core::{ExecutionId, RollbackError};

use crate::Clients;
use crate::builds::{self, skipped};
use crate::commits::read_commit;
use crate::summary::plan_sha256;

pub async fn apply(
    clients: &Clients,
    infrastructure: &InfrastructureRef,
    approved: &InfrastructureResolution,
    execution: &ExecutionId,
    mode: Mode,
) -> Result<BuildRef, RollbackError> {
    if mode.is_drill() {
        return Ok(skipped(
            approved,
            BuildPurpose::Apply,
            "drill: the plan is shown, never applied",
        ));
    }
    if !approved.needs_plan {
        return Ok(skipped(
            approved,
            BuildPurpose::Apply,
            "the current commit is the stable commit",
        ));
    }
    let (Some(plan_build), Some(sha256), Some(summary)) = (
        &approved.plan_build,
        &approved.plan_sha256,
        &approved.summary,
    ) else {
        return Err(RollbackError::InvalidInput(
            "infrastructure: the approved resolution has no plan (plan_build, plan_sha256, \
             summary); give the `summary` action's output that the approver saw"
                .into(),
        ));
    };
    if summary.changes_nothing() {
        return Ok(skipped(
            approved,
            BuildPurpose::Apply,
            "the plan changes nothing",
        ));
    }
    // The approval covers this commit and this saved plan: if either moved, it covers nothing.
    let stable = read_commit(clients, &infrastructure.stable_commit_parameter, "stable").await?;
    if stable.as_deref() != Some(approved.stable_commit.as_str()) {
        return Err(RollbackError::PlanDrifted(format!(
            "the stable commit in {} is now {}, the approved plan was made from {}; nothing was \
             applied. Start a new rollback to plan the new stable commit",
            infrastructure.stable_commit_parameter,
            stable.as_deref().unwrap_or("(missing)"),
            approved.stable_commit
        )));
    }
    let plan = builds::reference(approved, BuildPurpose::Plan, plan_build.clone(), false);
    let saved = plan_sha256(clients, &plan).await?;
    if &saved != sha256 {
        return Err(RollbackError::PlanDrifted(format!(
            "the saved plan under s3://{}/{} now has SHA-256 {saved}, the approved plan {sha256}; \
             nothing was applied",
            approved.artifact_bucket, approved.artifact_key
        )));
    }
    builds::start(
        clients,
        approved,
        BuildPurpose::Apply,
        Some(sha256),
        execution,
    )
    .await
}
