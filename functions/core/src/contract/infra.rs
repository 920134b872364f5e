//! Contract of the `infra` function: Terraform back to the stable commit, through the team's
//! own CodeBuild project (`plan.infrastructure`, buildspec `infra/terraform/buildspec.yml`).
//!
//! - `resolve` reads the stable commit (and the current one, when the plan names where it is
//!   recorded) from SSM (→ [`InfrastructureResolution`] without a plan). Changes nothing.
//! - `plan` starts the plan build of the stable commit (→ [`BuildRef`]). A retry finds the
//!   build the first call started (it is tagged with the execution) instead of starting another.
//! - `status` reads a build (→ [`BuildStatus`]); a failed build is `Rollback.InfrastructureFailed`,
//!   a failed apply whose plan Terraform called stale is `Rollback.PlanStale`.
//! - `summary` reads what the plan build wrote (`plan.json`, `plan.sha256`) and summarizes it for
//!   the approver (→ the completed [`InfrastructureResolution`]). Changes nothing.
//! - `apply` takes the approved resolution back, checks it against live state (the stable commit
//!   and the saved plan's hash), refuses a destroy of a protected type unless the decision allows
//!   destroys, and starts the apply build of exactly that plan (→ [`BuildRef`]). In drill mode,
//!   or when the plan changes nothing, it starts nothing (`skipped` says why).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::notify::StepError;
use crate::ids::ExecutionId;
use crate::terraform_plan::PlanSummary;

/// The actions the state machine may call on this function.
pub const ACTIONS: &[&str] = &["resolve", "plan", "status", "summary", "apply"];

/// Environment variables the buildspec reads (`infra/terraform/buildspec.yml`).
pub mod build_env {
    /// `plan` or `apply`: which half of the rollback the build runs ([`super::BuildPurpose`]).
    pub const ACTION: &str = "ROLLBACK_TF_ACTION";
    /// The S3 bucket the builds keep their artifacts in.
    pub const BUCKET: &str = "ROLLBACK_ARTIFACT_BUCKET";
    /// The key prefix of this execution's artifacts in that bucket.
    pub const KEY: &str = "ROLLBACK_PLAN_KEY";
    /// The approved plan's SHA-256: the apply build refuses any other saved plan.
    pub const SHA256: &str = "ROLLBACK_PLAN_SHA256";
    /// Not read by the buildspec: it marks the build as this execution's, so a retried start
    /// finds it.
    pub const EXECUTION: &str = "ROLLBACK_EXECUTION";
}

/// Objects the builds write under the artifact key.
pub mod artifact {
    /// The saved Terraform plan the apply build applies.
    pub const PLAN: &str = "plan.tfplan";
    /// The plan as `terraform show -json` prints it, for the summary.
    pub const PLAN_JSON: &str = "plan.json";
    /// SHA-256 of the saved plan.
    pub const PLAN_SHA256: &str = "plan.sha256";
    /// `{"outcome": "applied" | "stale" | "hash-mismatch" | …, "detail": …}`.
    pub const APPLY_RESULT: &str = "apply-result.json";
}

/// The input of one `infra` invocation, tagged by `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum InfraAction {
    /// Read the stable (and current) commit; changes nothing.
    Resolve,
    /// Start the plan build of the stable commit.
    Plan {
        /// `resolve`'s output.
        infrastructure: InfrastructureResolution,
    },
    /// Read a build's status.
    Status {
        /// The build to read.
        build: BuildRef,
        /// Look again, `polling.interval_seconds` apart, for up to
        /// `polling.status_wait_seconds` until done (the definition's wait loops); otherwise
        /// one look.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_looking: bool,
    },
    /// Summarize what the plan build wrote, for the approver.
    Summary {
        /// `resolve`'s output and the plan build.
        infrastructure: InfrastructureResolution,
        /// The finished plan build.
        build: BuildRef,
    },
    /// Start the apply build of the approved plan.
    Apply {
        /// The approved resolution (`resolved.infrastructure`).
        infrastructure: InfrastructureResolution,
    },
}

/// What "infrastructure back to stable" means for this execution: shown to the approver and
/// fingerprinted with the rest of the resolved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfrastructureResolution {
    /// The team's CodeBuild project that runs Terraform (the plan's `infrastructure`).
    pub codebuild_project: String,
    /// The commit the release pipeline recorded as stable.
    pub stable_commit: String,
    /// The commit applied now, when the plan names where it is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_commit: Option<String>,
    /// `false` when the current commit is the stable one: nothing to plan or apply.
    pub needs_plan: bool,
    /// Where the builds keep the saved plan and its JSON (`s3://bucket/key/…`).
    pub artifact_bucket: String,
    /// The key prefix of this execution's artifacts ([`artifact_key`]).
    pub artifact_key: String,
    /// The plan build, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_build: Option<String>,
    /// SHA-256 of the saved plan (`plan.tfplan`): the apply build applies only this plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
    /// What the saved plan changes, once the plan build is summarized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<PlanSummary>,
    /// Why there is no plan to approve: the planning step's error (`{Error, Cause}`, put here
    /// by the definition's Catch). Infrastructure is then left out of this rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_error: Option<StepError>,
}

impl InfrastructureResolution {
    /// Whether applying this plan destroys or replaces a resource of a protected type.
    pub fn destroys_protected(&self) -> bool {
        self.summary.as_ref().is_some_and(|s| s.protected_total > 0)
    }

    /// Whether there is a summarized plan that changes something.
    pub fn has_changes(&self) -> bool {
        self.summary.as_ref().is_some_and(|s| !s.changes_nothing())
    }

    /// `Terraform: stable commit abc1234 (current def5678): 1 to add, 2 to change, 0 to destroy`.
    pub fn headline(&self) -> String {
        let current = match &self.current_commit {
            Some(c) => format!("current {}", short(c)),
            None => "current commit not recorded".to_owned(),
        };
        let what = match (&self.summary, self.needs_plan) {
            (_, false) => "already applied; nothing to do".to_owned(),
            (_, true) if self.plan_error.is_some() => "the plan failed".to_owned(),
            (Some(summary), true) if summary.changes_nothing() => "no changes".to_owned(),
            (Some(summary), true) => summary.line(),
            (None, true) => "not planned yet".to_owned(),
        };
        format!(
            "Terraform: stable commit {} ({current}): {what}",
            short(&self.stable_commit)
        )
    }
}

/// The first 7 characters of a commit, as Git shows it.
pub fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// Which Terraform run a build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildPurpose {
    /// `terraform plan` of the stable commit, saved for approval.
    Plan,
    /// `terraform apply` of the approved saved plan.
    Apply,
}

impl BuildPurpose {
    /// `ROLLBACK_TF_ACTION`.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildPurpose::Plan => "plan",
            BuildPurpose::Apply => "apply",
        }
    }
}

/// A build this execution started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRef {
    /// CodeBuild's build id (empty when `skipped`).
    pub id: String,
    /// Whether it plans or applies.
    pub purpose: BuildPurpose,
    /// The CodeBuild project it runs in.
    pub codebuild_project: String,
    /// The commit it builds (the stable commit).
    pub source_version: String,
    /// The bucket it keeps its artifacts in.
    pub artifact_bucket: String,
    /// The key prefix of its artifacts.
    pub artifact_key: String,
    /// `false`: an earlier attempt had started it (found by its execution tag).
    #[serde(default)]
    pub started_now: bool,
    /// Why no build was started (`id` is empty): drill mode, or a plan that changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Output of `status`: one look at a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStatus {
    /// The build looked at.
    pub build: BuildRef,
    /// The build finished and succeeded (a failed build is an error, not `done`).
    pub done: bool,
    /// CodeBuild's `buildStatus` (`IN_PROGRESS`, `SUCCEEDED`, …).
    pub status: String,
    /// CodeBuild's current phase while it runs (`BUILD`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// When the build started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the build ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The build's log in the console (CloudWatch deep link), for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
}

/// The key under which one execution's builds keep their artifacts:
/// `<artifact_prefix>/<service>/<execution>`.
pub fn artifact_key(prefix: &str, service: &str, execution: &ExecutionId) -> String {
    format!(
        "{}/{service}/{}",
        prefix.trim_end_matches('/'),
        execution.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolution(summary: Option<PlanSummary>, needs_plan: bool) -> InfrastructureResolution {
        InfrastructureResolution {
            codebuild_project: "mint-replica-terraform".into(),
            stable_commit: "abc1234def5678abc1234def5678abc1234def56".into(),
            current_commit: Some("def5678abc1234def5678abc1234def5678abc12".into()),
            needs_plan,
            artifact_bucket: "b".into(),
            artifact_key: "k".into(),
            plan_build: None,
            plan_sha256: None,
            summary,
            plan_error: None,
        }
    }

    #[test]
    fn headline_says_what_terraform_would_do() {
        let summary = PlanSummary {
            add: 1,
            change: 2,
            ..PlanSummary::default()
        };
        assert_eq!(
            resolution(Some(summary), true).headline(),
            "Terraform: stable commit abc1234 (current def5678): 1 to add, 2 to change, 0 to destroy"
        );
        assert_eq!(
            resolution(None, false).headline(),
            "Terraform: stable commit abc1234 (current def5678): already applied; nothing to do"
        );
        assert_eq!(
            resolution(Some(PlanSummary::default()), true).headline(),
            "Terraform: stable commit abc1234 (current def5678): no changes"
        );
    }

    #[test]
    fn artifact_key_names_service_and_execution() {
        let execution = ExecutionId::new("rb-1");
        assert_eq!(
            artifact_key("rollback-plans/", "mint-replica", &execution),
            "rollback-plans/mint-replica/rb-1"
        );
    }
}
