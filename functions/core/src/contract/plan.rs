//! Contract of the `plan` function: the first two states of every execution.
//!
//! - `validate` reads the execution input (an EventBridge alarm event or a manual start) and the
//!   plan (from SSM, at the start of the execution: `crate::plan_store`), checks both, decides
//!   whether to act, and emits the state every later step reads (`plan`, `request` with the
//!   plan's parameter and version in `plan_source`, `execution`, `timing`, flags the Choice
//!   states test).
//! - `guard` enforces one rollback per service at a time: it fails `Rollback.ConcurrentRollback`
//!   when another execution of this state machine started earlier and is still running.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::notify::ResolvedPlan;
use crate::ids::ExecutionId;
use crate::plan::Plan;
use crate::request::RollbackRequest;

/// The actions the state machine may call on this function.
pub const ACTIONS: &[&str] = &["validate", "guard", "fingerprint", "pre-approve"];

/// `validate`'s input. The plan is not an input: the function reads it itself from the stack's
/// SSM parameter (`ROLLBACK_PLAN_PARAMETER`, or `ROLLBACK_PLAN_PATH/<service>`), so an
/// execution input cannot change what gets rolled back; it may only name the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateInput {
    /// Always `"validate"`.
    pub action: String,
    /// The raw execution input (`$`): an EventBridge event, `{}` or a manual start document.
    #[serde(default)]
    pub input: Value,
    /// `$$.Execution.Name`.
    pub execution: ExecutionId,
}

/// `validate`'s output: the execution's state from here on (the definition keeps it at `$`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateOutput {
    /// The validated plan, as read from SSM at the start of the execution.
    pub plan: Plan,
    /// The validated request (its `plan_source` names the plan's parameter and version).
    pub request: RollbackRequest,
    /// This execution's name.
    pub execution: ExecutionId,
    /// `false`: the trigger does not call for a rollback (see `skip_reason`); the execution
    /// ends quietly.
    pub act: bool,
    /// Always present (`null` when acting): the definition's ResultSelector reads it, and a
    /// missing path is a runtime error in Step Functions.
    #[serde(default)]
    pub skip_reason: Option<String>,
    /// For alarm triggers: a key naming the alarm transition, so duplicate deliveries of one
    /// transition are recognised by the guard. Always present (`null` for manual starts).
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// What the execution touches, for the definition's Choice states.
    pub scope: ScopeFlags,
    /// The plan's time limits for the definition's Wait and timeout fields.
    pub timing: Timing,
}

/// Booleans the Choice states branch on (ASL cannot compute them from the plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeFlags {
    /// The request asks for `app+database` and the plan lists databases.
    pub databases: bool,
    /// The plan lists images (ECR tags to move back).
    pub images: bool,
    /// The plan names an EKS cluster (deployments to undo).
    pub cluster: bool,
    /// The plan names `infrastructure`: the Terraform plan is made and shown to the approver,
    /// who decides whether it is applied.
    #[serde(default)]
    pub infrastructure: bool,
    /// The plan names `mobile`: the live store releases are read and shown to the approver,
    /// who decides whether they are halted.
    #[serde(default)]
    pub mobile: bool,
}

/// The plan's time limits in the units ASL needs (Wait `SecondsPath`, `TimeoutSecondsPath`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// `approval.timeout_minutes` in seconds: the approval task's timeout.
    pub approval_timeout_seconds: u64,
    /// `approval.escalate_after_minutes` in seconds: when the escalation notice goes out.
    pub escalate_after_seconds: u64,
    /// The escalation branch waits this long after escalating: past the approval timeout, so
    /// the approval task's own timeout always ends the wait first.
    pub escalation_tail_seconds: u64,
    /// `polling.interval_seconds` (at least 1): the wait between polls.
    pub poll_interval_seconds: u64,
    /// Polls of a loop that acts on every iteration (swap, revert, drill clean-up) before
    /// `Rollback.WaitTimedOut`.
    pub max_polls: u64,
    /// Checks of a status loop (backup, restores, swapped databases, rollout) before
    /// `Rollback.WaitTimedOut`: each check keeps looking for `polling.status_wait_seconds`.
    pub max_checks: u64,
    /// Checks of a Terraform build before `Rollback.WaitTimedOut`
    /// (`infrastructure.max_build_minutes`; 0 without infrastructure).
    #[serde(default)]
    pub infra_max_polls: u64,
    /// Smoke-test re-runs after a failed run before giving up: enough re-runs,
    /// `smoke_retry_seconds` apart, to cover `smoke_settle_seconds`.
    pub smoke_max_retries: u64,
    /// Seconds between smoke re-runs (the poll interval).
    pub smoke_retry_seconds: u64,
    /// How long failing smoke tests are re-run: what the plan's alarms need to return to OK
    /// (`Period × EvaluationPeriods`, from DescribeAlarms), at least
    /// `history_budget::SMOKE_BASE_SETTLE_SECONDS`, at most `smoke.max_settle_minutes`.
    pub smoke_settle_seconds: u64,
    /// Why, in one line for the emails (at most [`SETTLE_REASON_MAX_CHARS`] characters), e.g.
    /// `waits up to 15 min for mint-replica-5xx: 300 s × 3 evaluation periods`.
    pub smoke_settle_reason: String,
}

/// Bound of [`Timing::smoke_settle_reason`] (it travels in every state of the execution).
pub const SETTLE_REASON_MAX_CHARS: usize = 300;

/// Extra seconds the escalation branch outlasts the approval timeout.
pub const ESCALATION_TAIL_GRACE_SECONDS: u64 = 60;

/// Actions that take the usual envelope (`StepInput<PlanAction>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum PlanAction {
    /// Whether another execution of this service's state machine is already running.
    Guard(GuardInput),
    /// The fingerprint of the resolved plan the approver is shown (`crate::fingerprint` of the
    /// typed [`ResolvedPlan`], as notify computes it), for the decision check after approval.
    Fingerprint {
        /// The resolved plan to fingerprint.
        resolved: ResolvedPlan,
    },
    /// Whether the plan's `approval.auto_approve_app_only` policy approves this execution
    /// without asking people, and if so the signed decision ([`PreApproveOutput`]).
    PreApprove {
        /// The resolved plan the policy judges.
        resolved: ResolvedPlan,
        /// `fingerprint`'s output for `resolved`: what the decision approves.
        fingerprint: String,
    },
}

/// Bound of [`PreApproveOutput::reason`].
pub const PRE_APPROVE_REASON_MAX_CHARS: usize = 300;

/// `pre-approve`'s output. The definition puts it where the approval task puts a person's
/// decision (`$.decided`, `Cause` = the decision as JSON text), with the other fields beside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreApproveOutput {
    /// `true`: no person is asked; `decision` is set.
    pub pre_approved: bool,
    /// Why (either way), one line for the notices and the report (at most
    /// [`PRE_APPROVE_REASON_MAX_CHARS`] characters: it travels in the state).
    pub reason: String,
    /// The policy's decision (`approve`, scope `app`, signed). Always present (`null` when not
    /// pre-approved): the definition reads the path.
    #[serde(default)]
    pub decision: Option<crate::contract::approval::ApprovalDecision>,
    /// The policy's grace period: the "stop it now" link works this long (0: none).
    pub grace_seconds: u64,
}

/// `fingerprint`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintOutput {
    /// The resolved plan's fingerprint (`crate::fingerprint`).
    pub fingerprint: String,
}

/// `guard`'s input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardInput {
    /// `$$.StateMachine.Id`: the state machine whose running executions are checked.
    pub state_machine: String,
    /// `$$.Execution.StartTime`: this execution's start, for "who came first".
    pub started_at: DateTime<Utc>,
    /// `validate`'s `dedup_key` (alarm triggers), to recognise duplicate deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
}

/// `guard`'s output (the definition stores it at `$.guard`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardOutput {
    /// `true`: this execution may proceed.
    pub proceed: bool,
    /// `false` with this set: a duplicate delivery of an alarm transition another execution
    /// is already handling; the execution ends quietly. Always present (`null`).
    #[serde(default)]
    pub duplicate_of: Option<String>,
    /// Running executions checked (for the timeline).
    pub running_checked: u32,
}
