//! `pre-approve`: the plan's `approval.auto_approve_app_only` policy, applied to one execution.
//! It approves only what cannot lose anything: an app-only rollback (image tags and
//! deployments) started by an alarm the policy names, with no infrastructure change or mobile
//! release waiting. Anything else is left to people, and the reason says why. The decision is
//! signed with the decision key like a person's, so the destructive functions check it the
//! same way (execution, fingerprint, scope).

use chrono::{DateTime, Utc};
use rollback_core::RollbackError;
use rollback_core::approval_link::Decision;
use rollback_core::contract::approval::ApprovalDecision;
use rollback_core::contract::notify::ResolvedPlan;
use rollback_core::contract::plan::PreApproveOutput;
use rollback_core::decision::{DecisionClaims, DecisionSigner, Identity};
use rollback_core::request::{Scope, Trigger};
use rollback_core::step::StepInput;

/// How the policy is named as the approver in notices and the report.
pub const POLICY_APPROVER: &str = "plan policy approval.auto_approve_app_only";

/// Whether the policy covers this execution, and the reason either way. Pure: no signing.
pub fn assess<A>(step: &StepInput<A>, resolved: &ResolvedPlan) -> Result<String, String> {
    let Some(policy) = &step.plan.approval.auto_approve_app_only else {
        return Err("the plan has no approval.auto_approve_app_only policy".to_owned());
    };
    let Trigger::Alarm(alarm) = &step.request.trigger else {
        return Err("started by hand, not by an alarm the policy names".to_owned());
    };
    if !policy.covers(&alarm.alarm_name) {
        return Err(format!(
            "alarm {} is not among the policy's alarms",
            alarm.alarm_name
        ));
    }
    if step.request.scope != Scope::APP {
        return Err(format!(
            "the rollback asks for {}: databases always wait for people",
            step.request.scope.label()
        ));
    }
    if resolved
        .infrastructure
        .as_ref()
        .is_some_and(|i| i.has_changes())
    {
        return Err("the Terraform plan changes infrastructure: people decide".to_owned());
    }
    if resolved.mobile.as_ref().is_some_and(|m| m.has_work()) {
        return Err("a mobile release could be halted: people decide".to_owned());
    }
    if resolved.images.is_empty() && resolved.deployments.is_empty() {
        return Err("there are no images or deployments to move back".to_owned());
    }
    Ok(format!(
        "pre-approved by plan policy approval.auto_approve_app_only (alarm {}): an app-only \
         rollback, nothing lost",
        alarm.alarm_name
    ))
}

/// [`assess`], and the signed decision when the policy covers the execution.
pub async fn pre_approve<A>(
    signer: Option<&DecisionSigner>,
    step: &StepInput<A>,
    resolved: &ResolvedPlan,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<PreApproveOutput, RollbackError> {
    let grace_seconds = step
        .plan
        .approval
        .auto_approve_app_only
        .as_ref()
        .map_or(0, |p| u64::from(p.grace_seconds));
    let bounded = |reason: String| {
        rollback_core::validation::truncate(
            &reason,
            // truncate appends "…".
            rollback_core::contract::plan::PRE_APPROVE_REASON_MAX_CHARS - 1,
        )
    };
    let not = |reason: String| PreApproveOutput {
        pre_approved: false,
        reason: bounded(reason),
        decision: None,
        grace_seconds,
    };
    let reason = match assess(step, resolved) {
        Ok(reason) => reason,
        Err(reason) => return Ok(not(reason)),
    };
    // The fingerprint the decision approves must be what was resolved: a caller cannot get
    // another plan signed.
    if fingerprint != rollback_core::fingerprint::fingerprint(resolved) {
        return Err(RollbackError::InvalidInput(
            "fingerprint: not the fingerprint of `resolved`; pass the `fingerprint` action's \
             output for the same resolved plan"
                .to_owned(),
        ));
    }
    let Some(signer) = signer else {
        // A deployment without the decision key: people decide, and the reason says why.
        return Ok(not(format!(
            "the policy covers this rollback, but the plan function has no decision key \
             ({}): people decide",
            rollback_core::decision::DECISION_KEY_ENV
        )));
    };
    let claims = DecisionClaims::new(
        step.execution.as_str(),
        &rollback_core::fingerprint::fingerprint(&step.plan),
        fingerprint,
        Scope::APP,
        // The destructive functions count the decision's approvers against the plan's
        // approvals_needed(app) = 1: the policy is the one approver.
        &[POLICY_APPROVER.to_owned()],
        Identity::PlanPolicy,
        now,
    );
    let signed = signer.sign(&claims).await?;
    Ok(PreApproveOutput {
        pre_approved: true,
        reason: bounded(reason),
        decision: Some(ApprovalDecision {
            decision: Decision::Approve,
            scope: Scope::APP,
            approver: POLICY_APPROVER.to_owned(),
            approvers: Vec::new(),
            identity: Identity::PlanPolicy,
            decided_at: now,
            fingerprint: fingerprint.to_owned(),
            signed,
        }),
        grace_seconds,
    })
}
