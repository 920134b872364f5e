//! Contract of the `notify` function: one SNS message per action, plain text for a tired
//! on-call engineer. Every action accepts an optional `topic_arn`; without it the function's
//! `ROLLBACK_TOPIC_ARN` (or `ROLLBACK_ESCALATION_TOPIC_ARN` for `escalate`) is used. One action
//! publishes nothing: `report` writes the post-mortem (`report.md`, `history.json`) to the
//! stack's report bucket just before the final notice, which links to it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::approval::ApprovalDecision;
use crate::contract::infra::InfrastructureResolution;
use crate::contract::mobile::MobileResolution;
use crate::contract::restore::{ObserveOutput, RevertReport};
use crate::contract::smoke_test::SmokeReport;
use crate::contract::{deploy_undo, retag};
use crate::resolved::{DatabaseResolution, DeploymentResolution, ImageResolution};

/// The actions the state machine may call on this function.
pub const ACTIONS: &[&str] = &[
    "approval-request",
    "progress",
    "success",
    "failure",
    "escalate",
    "report",
];

/// The input of one `notify` invocation, tagged by `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum NotifyAction {
    /// Email the approver the signed decision links.
    ApprovalRequest(ApprovalRequest),
    /// Tell the subscribers a stage started or finished.
    Progress(ProgressNotice),
    /// The rollback finished and the smoke tests passed.
    Success(SuccessNotice),
    /// The contingency notice: something failed.
    Failure(FailureNotice),
    /// Nobody decided in time: tell the escalation topic.
    Escalate(EscalateNotice),
    /// Write the post-mortem to the report bucket; publishes nothing.
    Report(ReportRequest),
}

/// What the resolve steps found: restore/retag/deploy-undo `resolve` outputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolvedPlan {
    /// restore `resolve`'s databases.
    #[serde(default)]
    pub databases: Vec<DatabaseResolution>,
    /// retag `resolve`'s images.
    #[serde(default)]
    pub images: Vec<ImageResolution>,
    /// deploy-undo `resolve`'s deployments.
    #[serde(default)]
    pub deployments: Vec<DeploymentResolution>,
    /// `infra` `summary` (or `resolve`) output; `null` when the plan has no infrastructure.
    /// Always serialized, as the definition passes it: the fingerprint covers it.
    #[serde(default)]
    pub infrastructure: Option<Box<InfrastructureResolution>>,
    /// `mobile` `resolve` output (or the error that kept it from reading the stores); `null`
    /// when the plan has no mobile section. Always serialized, like `infrastructure`.
    #[serde(default)]
    pub mobile: Option<Box<MobileResolution>>,
}

impl ResolvedPlan {
    /// Nothing was resolved: no databases, images, deployments, infrastructure or mobile section.
    pub fn is_empty(&self) -> bool {
        self.databases.is_empty()
            && self.images.is_empty()
            && self.deployments.is_empty()
            && self.infrastructure.is_none()
            && self.mobile.is_none()
    }
}

/// `approval-request`: invoked with `lambda:invoke.waitForTaskToken`; the email carries signed
/// links (approve app + database — only when the plan restores databases —, approve app only,
/// reject) to the approval page.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// `$$.Task.Token`. Sealed into the links, never printed.
    pub task_token: String,
    /// What the approver is asked to approve.
    #[serde(default)]
    pub resolved: ResolvedPlan,
    /// Fingerprint of the plan being approved (`rollback_core::fingerprint` of what the
    /// destructive steps will re-check). Defaults to the fingerprint of `resolved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Base URL of the approval page; defaults to `ROLLBACK_APPROVAL_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_url: Option<String>,
    /// SNS topic to publish to, instead of `ROLLBACK_TOPIC_ARN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// When the links stop working; defaults to now + `plan.approval.timeout_minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the execution started (`$$.Execution.StartTime`), for the timings line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// `$$.State.RetryCount`: 0 for the first request. A retry after an earlier attempt may
    /// already have sent an email whose links carry the old task token, which no longer works;
    /// the email says it was resent and that only its own links work.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// `timing.smoke_settle_reason`: how long smoke tests will be re-run after the rollback,
    /// and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_settle: Option<String>,
    /// Set when the plan's policy pre-approved the rollback (`plan` `pre-approve`): the email
    /// says what is about to happen and carries one link, "stop it now", which works for the
    /// grace period (the task's timeout) and ends the rollback before its first change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_approved: Option<PreApprovedGrace>,
}

/// The pre-approval an email announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreApprovedGrace {
    /// `pre-approve`'s reason (names the policy and the alarm).
    pub reason: String,
    /// How long the "stop it now" link works (the task's `TimeoutSecondsPath`).
    pub grace_seconds: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Never prints the task token: whoever holds it can decide the approval (a failed step's
/// input, or a `{:?}` in a log line, must not leak it).
impl std::fmt::Debug for ApprovalRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalRequest")
            .field("task_token", &"<redacted>")
            .field("resolved", &self.resolved)
            .field("fingerprint", &self.fingerprint)
            .field("approval_url", &self.approval_url)
            .field("topic_arn", &self.topic_arn)
            .field("expires_at", &self.expires_at)
            .field("started_at", &self.started_at)
            .field("attempt", &self.attempt)
            .field("smoke_settle", &self.smoke_settle)
            .field("pre_approved", &self.pre_approved)
            .finish()
    }
}

/// How long the smoke tests were re-run before they passed, and the window they had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeWait {
    /// Re-runs after the first run (`$.smoke_retry.count`).
    pub reruns: u64,
    /// Seconds between re-runs (`timing.smoke_retry_seconds`).
    pub retry_seconds: u64,
    /// `timing.smoke_settle_seconds`.
    pub settle_seconds: u64,
    /// `timing.smoke_settle_reason`.
    pub reason: String,
}

/// `progress`: a stage started or finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressNotice {
    /// e.g. `restoring databases`.
    pub stage: String,
    /// More about the stage, printed under it.
    #[serde(default)]
    pub message: String,
    /// What the execution has done so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressRecord>,
    /// When the execution started (`$$.Execution.StartTime`), for the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// SNS topic to publish to, instead of `ROLLBACK_TOPIC_ARN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// The post-mortem the `report` step wrote (a rejection's notice), or why it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportLink>,
}

/// `success`: the rollback finished and the smoke tests passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuccessNotice {
    /// What was rolled back.
    #[serde(default)]
    pub resolved: ResolvedPlan,
    /// The approval decision the rollback ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<ApprovalDecision>,
    /// The smoke run that passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeReport>,
    /// How long the smoke tests were re-run before passing, and why they could be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_wait: Option<SmokeWait>,
    /// What `deploy-undo suspend-gitops` suspended (`$.progress.gitops.objects`): the notice
    /// says so and gives each resume command, since nothing resumes them automatically.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gitops: Vec<deploy_undo::GitOpsResult>,
    /// What the execution has done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressRecord>,
    /// When the execution started (`$$.Execution.StartTime`), for the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// SNS topic to publish to, instead of `ROLLBACK_TOPIC_ARN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// The post-mortem the `report` step wrote, or why it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportLink>,
}

/// `failure`: the contingency notice, from a Catch's `{Error, Cause}` and the progress record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureNotice {
    /// The error that ended the rollback (a Catch's `{Error, Cause}`).
    pub error: StepError,
    /// What the execution had done before it failed.
    #[serde(default)]
    pub progress: ProgressRecord,
    /// What the failure path's `restore:revert` (only an unfinished swap) did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted: Option<RevertSummary>,
    /// What is live now, observed by the failure path just before this notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<LiveState>,
    /// When the execution started (`$$.Execution.StartTime`), for the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// SNS topic to publish to, instead of `ROLLBACK_TOPIC_ARN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// The post-mortem the `report` step wrote, or why it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportLink>,
}

/// `escalate`: nobody decided within `plan.approval.escalate_after_minutes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateNotice {
    /// When the approval request went out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// What is waiting for a decision.
    #[serde(default)]
    pub resolved: ResolvedPlan,
    /// SNS topic to publish to, instead of `ROLLBACK_ESCALATION_TOPIC_ARN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
}

/// `report`: the post-mortem of this execution, written to the report bucket at the end of every
/// execution that sends a final notice (success, failure, rejection), just before that notice:
/// `<prefix>/<execution name>/history.json` (the execution's history so far, in the
/// `get-execution-history` JSON shape `rollbackctl report --history` reads, task tokens
/// removed) and `<prefix>/<execution name>/report.md` (`rollback_core::report`'s rendering of
/// it, as `rollbackctl report` renders the same events). Publishes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// `$$.Execution.Id`: the execution whose history is read (its name must be `execution`).
    pub execution_arn: String,
    /// How the execution is ending; the report's outcome, since its history has no end yet.
    pub outcome: ReportOutcome,
    /// `failed`: the error the execution fails with (`$.failure`), listed as the execution's
    /// failure as its `ExecutionFailed` event would be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// The bucket; defaults to `ROLLBACK_REPORT_BUCKET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
}

/// How an execution that writes its report ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportOutcome {
    /// The rollback finished (`Rollback complete`).
    RolledBack,
    /// The approver rejected (`Rollback rejected`: the execution succeeds).
    Rejected,
    /// The contingency path (`Rollback failed`).
    Failed,
}

impl ReportOutcome {
    /// The execution status this outcome ends in.
    pub fn execution_status(self) -> &'static str {
        match self {
            ReportOutcome::RolledBack | ReportOutcome::Rejected => "SUCCEEDED",
            ReportOutcome::Failed => "FAILED",
        }
    }
}

/// Output of `report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportOutput {
    /// The bucket the report was written to.
    pub bucket: String,
    /// `<prefix>/<execution name>/report.md`.
    pub report_key: String,
    /// `<prefix>/<execution name>/history.json`.
    pub history_key: String,
    /// `s3://<bucket>/<report_key>`.
    pub uri: String,
    /// `s3://<bucket>/<history_key>`.
    pub history_uri: String,
    /// The S3 console page of `report.md` (sign-in required: no credentials in the link).
    pub console_url: String,
    /// History events the report covers.
    pub events: u64,
    /// `report.md`'s version (the bucket is versioned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// What the final notice gets at `report`: where the report is (the `report` step's
/// output, as the definition selects it), or the step's error (its Catch's `{Error, Cause}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportLink {
    /// The report step's output: where the report is.
    Written(ReportLocation),
    /// The report step failed: its error.
    NotWritten(StepError),
}

/// Where the report is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLocation {
    /// `s3://<bucket>/<prefix>/<execution name>/report.md`.
    pub uri: String,
    /// `s3://<bucket>/<prefix>/<execution name>/history.json`.
    pub history_uri: String,
    /// The S3 console page of `report.md`.
    pub console_url: String,
}

/// `restore:revert`'s answer as the state machine keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertSummary {
    /// Nothing more to wait for (see [`crate::contract::restore::RevertOutput`]).
    pub complete: bool,
    /// Some database needs a person.
    #[serde(default)]
    pub needs_person: bool,
    /// A completed swap was kept.
    #[serde(default)]
    pub kept_swap: bool,
    /// One report per database.
    #[serde(default)]
    pub databases: Vec<RevertReport>,
}

/// Each resource's live state, from the read-only actions of the functions that own it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    /// What each plan database's identifiers hold (restore `observe`).
    pub databases: Observed<ObserveOutput>,
    /// What each image's tags point at (retag `resolve`).
    pub images: Observed<retag::ResolveOutput>,
    /// The deployments' rollout state (deploy-undo `status`).
    pub deployments: Observed<deploy_undo::StatusOutput>,
    /// When the observation was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// A read-only action's answer, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Observed<T> {
    /// The action's answer.
    Seen(T),
    /// Why the action gave no answer (the failure path did not reach it, or it failed).
    NotSeen {
        /// Why, in plain words.
        not_observed: String,
    },
}

/// What a Step Functions Catch puts at its ResultPath: `{"Error": …, "Cause": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// The error name (`Rollback.SwapFailed`, `States.TaskFailed`, …).
    #[serde(rename = "Error")]
    pub error: String,
    /// The error's cause: a message, often JSON text.
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// What the execution has done so far; the state machine appends to it as steps finish.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRecord {
    /// Each step so far, in order.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// Current state of each resource the rollback touches.
    #[serde(default)]
    pub resources: Vec<ResourceState>,
    /// Backups taken so far. Missing entries are filled in from the deterministic names
    /// (`ids::rollback_snapshot_id`, `ids::aside_identifier`) and marked "if created".
    #[serde(default)]
    pub backups: Vec<BackupRecord>,
}

/// One step of the execution and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// e.g. `snapshot`, `restore`, `swap`, `retag`, `undo`, `smoke`.
    pub name: String,
    /// How it went.
    pub status: StepStatus,
    /// One line of detail (what changed, or why it failed).
    #[serde(default)]
    pub detail: String,
    /// When the status was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// How a step went, as the notices print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Finished.
    Done,
    /// Failed.
    Failed,
    /// Started, not finished.
    InProgress,
    /// Not reached yet.
    NotStarted,
    /// Left alone on purpose (e.g. databases with scope `app`).
    Skipped,
}

impl StepStatus {
    /// The text the notices print (`done`, `FAILED`, `in progress`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::Failed => "FAILED",
            StepStatus::InProgress => "in progress",
            StepStatus::NotStarted => "not started",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// One resource's current state, for the notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    /// e.g. `rds-instance mint-replica-db`, `ecr mint-replica-backend:prod`.
    pub resource: String,
    /// e.g. `available (restored from …)`, `points at sha256:… (stable)`.
    pub state: String,
}

/// The backups kept of one database: how to get the pre-rollback state back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// Plan database id.
    pub database: String,
    /// Snapshot of the state just before the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The pre-rollback database, renamed aside by the swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aside_id: Option<String>,
}

/// Output of every notify action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyOutput {
    /// SNS's id of the published message.
    pub message_id: String,
    /// The topic published to.
    pub topic_arn: String,
    /// The message's subject line.
    pub subject: String,
}

/// What `handle` returns for a notice: the SNS message, and what each of the plan's channels
/// (`plan.channels`) did with it. A channel's failure never fails the notice: it is recorded
/// here (and logged), briefly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeOutput {
    /// The SNS message.
    #[serde(flatten)]
    pub notice: NotifyOutput,
    /// What each of the plan's channels did with the notice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelOutcome>,
}

/// One channel's outcome for one notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelOutcome {
    /// `statuspage` or `slack`.
    pub channel: String,
    /// `true` when the channel shows what it should (including "nothing to do").
    pub ok: bool,
    /// What was done or why not, at most [`MAX_CHANNEL_DETAIL_CHARS`] characters; never a
    /// credential or the webhook URL.
    pub detail: String,
}

/// Bound of [`ChannelOutcome::detail`].
pub const MAX_CHANNEL_DETAIL_CHARS: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_request_debug_redacts_the_task_token() {
        let token = "AQCEAAAAKgAAAAMAAAAAAAAAAQ-secret-task-token";
        let request: ApprovalRequest = serde_json::from_value(serde_json::json!({
            "task_token": token,
            "fingerprint": "fp-1234",
            "topic_arn": "arn:aws:sns:us-east-1:123456789012:approvals",
            "attempt": 2
        }))
        .unwrap();
        let action = NotifyAction::ApprovalRequest(request.clone());
        for shown in [
            format!("{request:?}"),
            format!("{request:#?}"),
            format!("{action:?}"),
        ] {
            assert!(!shown.contains("secret-task-token"), "{shown}");
            assert!(shown.contains("task_token: \"<redacted>\""), "{shown}");
            // Everything else is still there to debug with.
            assert!(
                shown.contains("fp-1234") && shown.contains("attempt: 2"),
                "{shown}"
            );
        }
        // Serialization is untouched: the token still reaches notify.
        assert_eq!(serde_json::to_value(&request).unwrap()["task_token"], token);
    }
}
