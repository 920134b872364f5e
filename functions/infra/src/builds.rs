//! Starting and reading the Terraform builds.
//!
//! A start is idempotent twice over: CodeBuild's `idempotencyToken` (derived from the execution,
//! the purpose and the plan) makes a repeated StartBuild within 5 minutes return the same build,
//! and every build carries `ROLLBACK_EXECUTION`, so a retry after that window, or after an
//! answer that was lost although the build started, finds the build instead of starting a
//! second plan or a second apply.

use aws_sdk_codebuild::types::{
    Build, EnvironmentVariable, EnvironmentVariableType, SortOrderType,
};
use rollback_core::contract::infra::{
    BuildPurpose, BuildRef, BuildStatus, InfrastructureResolution, artifact, build_env,
};
use rollback_core::plan::PollingPolicy;
use rollback_core::{ExecutionId, RollbackError, wait};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Clients;
use crate::artifacts::{self, Unreadable};

/// Builds of the project read when looking for this execution's (newest first). A project
/// that ran more builds than this since the execution's start would hide it; a service's
/// Terraform project does not.
const BUILDS_SEARCHED: usize = 100;

/// `plan`: the plan build of the stable commit.
pub async fn start_plan(
    clients: &Clients,
    resolved: &InfrastructureResolution,
    execution: &ExecutionId,
) -> Result<BuildRef, RollbackError> {
    if !resolved.needs_plan {
        return Ok(skipped(
            resolved,
            BuildPurpose::Plan,
            "the current commit is the stable commit",
        ));
    }
    start(clients, resolved, BuildPurpose::Plan, None, execution).await
}

/// The build `id` of `resolved`'s commit and artifacts.
pub(crate) fn reference(
    resolved: &InfrastructureResolution,
    purpose: BuildPurpose,
    id: String,
    started_now: bool,
) -> BuildRef {
    BuildRef {
        id,
        purpose,
        codebuild_project: resolved.codebuild_project.clone(),
        source_version: resolved.stable_commit.clone(),
        artifact_bucket: resolved.artifact_bucket.clone(),
        artifact_key: resolved.artifact_key.clone(),
        started_now,
        skipped: None,
    }
}

/// A build that was not started, and why.
pub(crate) fn skipped(
    resolved: &InfrastructureResolution,
    purpose: BuildPurpose,
    why: &str,
) -> BuildRef {
    BuildRef {
        skipped: Some(why.to_owned()),
        ..reference(resolved, purpose, String::new(), false)
    }
}

/// Starts the build, or finds the one an earlier attempt started.
pub(crate) async fn start(
    clients: &Clients,
    resolved: &InfrastructureResolution,
    purpose: BuildPurpose,
    plan_sha256: Option<&str>,
    execution: &ExecutionId,
) -> Result<BuildRef, RollbackError> {
    let mut env = vec![
        (build_env::ACTION, purpose.as_str()),
        (build_env::BUCKET, resolved.artifact_bucket.as_str()),
        (build_env::KEY, resolved.artifact_key.as_str()),
        (build_env::EXECUTION, execution.as_str()),
    ];
    if let Some(sha) = plan_sha256 {
        env.push((build_env::SHA256, sha));
    }
    let reference = |id: String, started_now: bool| reference(resolved, purpose, id, started_now);
    if let Some(id) = find(clients, &resolved.codebuild_project, &env).await? {
        tracing::info!(build = %id, purpose = purpose.as_str(), "found the build an earlier attempt started");
        return Ok(reference(id, false));
    }
    let overrides = env
        .iter()
        .map(|(name, value)| {
            EnvironmentVariable::builder()
                .name(*name)
                .value(*value)
                .r#type(EnvironmentVariableType::Plaintext)
                .build()
                .map_err(|e| RollbackError::Internal(format!("environment variable {name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let started = clients
        .codebuild
        .start_build()
        .project_name(&resolved.codebuild_project)
        .source_version(&resolved.stable_commit)
        .idempotency_token(idempotency_token(&env))
        .set_environment_variables_override(Some(overrides))
        .send()
        .await;
    match started {
        Ok(answer) => {
            let id = answer.build_value().and_then(|b| b.id()).ok_or_else(|| {
                RollbackError::Internal("StartBuild answered without a build id".into())
            })?;
            tracing::info!(build = %id, purpose = purpose.as_str(), "started the build");
            Ok(reference(id.to_owned(), true))
        }
        Err(e) => {
            let error = RollbackError::from_sdk("StartBuild", e);
            // The answer may be lost although CodeBuild started the build: look before
            // reporting a failure (or letting a retry start a second one).
            match find(clients, &resolved.codebuild_project, &env).await {
                Ok(Some(id)) => {
                    tracing::warn!(build = %id, %error, "StartBuild failed but the build exists");
                    Ok(reference(id, true))
                }
                _ => Err(error),
            }
        }
    }
}

/// The same request gets the same token; any difference (another plan hash) another one.
fn idempotency_token(env: &[(&str, &str)]) -> String {
    let mut hash = Sha256::new();
    for (name, value) in env {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(value.as_bytes());
        hash.update([0]);
    }
    format!("rollback-{}", &hex::encode(hash.finalize())[..32])
}

/// This execution's build with exactly these variables, if one exists.
async fn find(
    clients: &Clients,
    project: &str,
    env: &[(&str, &str)],
) -> Result<Option<String>, RollbackError> {
    let listed = clients
        .codebuild
        .list_builds_for_project()
        .project_name(project)
        .sort_order(SortOrderType::Descending)
        .send()
        .await
        .map_err(|e| RollbackError::from_sdk("ListBuildsForProject", e))?;
    let ids: Vec<String> = listed.ids().iter().take(BUILDS_SEARCHED).cloned().collect();
    if ids.is_empty() {
        return Ok(None);
    }
    let builds = describe(clients, ids).await?;
    Ok(builds
        .iter()
        .find(|build| {
            env.iter()
                .all(|(name, value)| variable(build, name) == Some(*value))
        })
        .and_then(|b| b.id().map(str::to_owned)))
}

async fn describe(clients: &Clients, ids: Vec<String>) -> Result<Vec<Build>, RollbackError> {
    let answer = clients
        .codebuild
        .batch_get_builds()
        .set_ids(Some(ids))
        .send()
        .await
        .map_err(|e| RollbackError::from_sdk("BatchGetBuilds", e))?;
    Ok(answer.builds().to_vec())
}

fn variable<'a>(build: &'a Build, name: &str) -> Option<&'a str> {
    build
        .environment()?
        .environment_variables()
        .iter()
        .find(|v| v.name() == name)
        .map(|v| v.value())
}

/// `status`: where the build is; with `polling`, looks again until it is done for the plan's
/// `polling.status_wait_seconds` ([`rollback_core::wait`]). A failed build is an error:
/// `Rollback.PlanStale` when Terraform refused the approved plan as stale,
/// `Rollback.InfrastructureFailed` otherwise.
pub async fn status(
    clients: &Clients,
    build: &BuildRef,
    polling: Option<&PollingPolicy>,
) -> Result<BuildStatus, RollbackError> {
    wait::keep_checking(polling, || look(clients, build), |s: &BuildStatus| s.done).await
}

/// One look at the build [`status`] reports.
async fn look(clients: &Clients, build: &BuildRef) -> Result<BuildStatus, RollbackError> {
    let finished = |status: &str| BuildStatus {
        build: build.clone(),
        done: true,
        status: status.to_owned(),
        phase: None,
        started_at: None,
        ended_at: None,
        log_url: None,
    };
    if build.skipped.is_some() {
        return Ok(finished("SKIPPED"));
    }
    let found = describe(clients, vec![build.id.clone()]).await?;
    let Some(live) = found
        .into_iter()
        .find(|b| b.id() == Some(build.id.as_str()))
    else {
        return Err(RollbackError::InfrastructureFailed(format!(
            "CodeBuild does not know build {} of project {}",
            build.id, build.codebuild_project
        )));
    };
    let status = live
        .build_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "IN_PROGRESS".to_owned());
    let report = BuildStatus {
        done: status == "SUCCEEDED",
        phase: live.current_phase().map(str::to_owned),
        started_at: live.start_time().and_then(to_chrono),
        ended_at: live.end_time().and_then(to_chrono),
        // A deep link to a log group the build never wrote is no link.
        log_url: live
            .logs()
            .filter(|l| l.group_name().is_some())
            .and_then(|l| l.deep_link())
            .map(str::to_owned),
        ..finished(&status)
    };
    match status.as_str() {
        "IN_PROGRESS" | "SUCCEEDED" => Ok(report),
        _ => Err(failed(clients, build, &report).await),
    }
}

fn to_chrono(at: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

/// What the buildspec wrote about a failed apply (`apply-result.json`).
#[derive(Debug, Deserialize)]
struct ApplyResult {
    outcome: String,
    #[serde(default)]
    detail: String,
}

/// The error for a failed build, with what its apply result says.
async fn failed(clients: &Clients, build: &BuildRef, report: &BuildStatus) -> RollbackError {
    let log = report
        .log_url
        .as_deref()
        .map(|url| format!("; log: {url}"))
        .unwrap_or_default();
    let what = format!(
        "the {} build {} of commit {} ended {} (phase {}){log}",
        build.purpose.as_str(),
        build.id,
        build.source_version,
        report.status,
        report.phase.as_deref().unwrap_or("unknown"),
    );
    if build.purpose == BuildPurpose::Plan {
        return RollbackError::InfrastructureFailed(format!(
            "{what}. Nothing was applied; fix the plan build and start a new rollback"
        ));
    }
    let result = match read_apply_result(clients, build).await {
        Ok(result) => result,
        Err(why) => {
            return RollbackError::InfrastructureFailed(format!(
                "{what}, and its result could not be read ({why}): look at the build log and \
                 `terraform plan` before anything else is applied"
            ));
        }
    };
    match result.outcome.as_str() {
        "stale" => RollbackError::PlanStale(format!(
            "{what}: Terraform refused the saved plan because the state changed since it was \
             made ({}). Nothing was applied by this build; re-plan and approve again",
            result.detail
        )),
        "hash-mismatch" => RollbackError::InfrastructureFailed(format!(
            "{what}: the saved plan is not the approved one ({}); nothing was applied. Someone \
             or something rewrote {}",
            result.detail,
            artifacts::uri(build, artifact::PLAN)
        )),
        other => RollbackError::InfrastructureFailed(format!(
            "{what}: outcome {other:?} ({}); Terraform may have applied part of the plan, so \
             look at the build log and run `terraform plan` before anything else",
            result.detail
        )),
    }
}

async fn read_apply_result(clients: &Clients, build: &BuildRef) -> Result<ApplyResult, String> {
    let uri = artifacts::uri(build, artifact::APPLY_RESULT);
    let bytes = artifacts::read(clients, build, artifact::APPLY_RESULT, 64 * 1024)
        .await
        .map_err(|why| match why {
            Unreadable::Missing(_) => format!("the build wrote no readable {uri}"),
            Unreadable::TooLarge { bytes, .. } => format!("{uri} is {bytes} bytes"),
            Unreadable::Failed(error) => format!("{uri}: {error}"),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{uri} is not the buildspec's result: {e}"))
}

#[cfg(test)]
mod tests {
    use super::idempotency_token;

    #[test]
    fn tokens_differ_with_any_variable() {
        let a = idempotency_token(&[("A", "1"), ("B", "2")]);
        assert_eq!(a, idempotency_token(&[("A", "1"), ("B", "2")]));
        assert_ne!(a, idempotency_token(&[("A", "1"), ("B", "3")]));
        assert_ne!(
            a,
            idempotency_token(&[("A", "12"), ("B", "")]),
            "no ambiguity at joins"
        );
    }
}
