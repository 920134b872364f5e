//! The email of a pre-approved rollback (`approval-request` with `pre_approved`): no one is
//! asked to approve; it says what is about to happen, under which policy, and carries one
//! link, "stop it now", which works for the grace period and ends the rollback before its
//! first change.

use std::fmt::Write as _;

use chrono::Duration;
use rollback_core::RollbackError;
use rollback_core::approval_link::{Decision, LinkKey, LinkPayload, LinkSummary};
use rollback_core::contract::notify::{ApprovalRequest, PreApprovedGrace};
use rollback_core::request::Scope;

use crate::approval::{ApprovalLink, RenderedApproval, approver_rules, sealed_url};
use crate::render::{self, Context, Message, fmt_time};
use crate::text::clean;

/// What the stop link is made of.
pub struct StopLink<'a> {
    pub base: &'a url::Url,
    pub key: &'a LinkKey,
    pub fingerprint: &'a str,
    /// The trigger and its reason, one line.
    pub reason: &'a str,
}

pub const STOP_LABEL: &str = "Stop it now";

pub fn render(
    ctx: &Context<'_>,
    request: &ApprovalRequest,
    grace: &PreApprovedGrace,
    stop: &StopLink<'_>,
) -> Result<RenderedApproval, RollbackError> {
    if grace.grace_seconds == 0 {
        return Err(RollbackError::InvalidInput(
            "pre_approved.grace_seconds: 0 means no grace period, so there is no link to \
             send; the definition skips this email then"
                .into(),
        ));
    }
    let seconds = i64::try_from(grace.grace_seconds).unwrap_or(i64::MAX);
    let starts_at = ctx.now + Duration::seconds(seconds);
    let resolved = &request.resolved;
    let payload = LinkPayload {
        task_token: request.task_token.clone(),
        decision: Decision::Reject,
        scope: Scope::APP,
        expires_at: starts_at.timestamp(),
        execution: ctx.execution.as_str().to_owned(),
        fingerprint: stop.fingerprint.to_owned(),
        plan_fingerprint: rollback_core::fingerprint::fingerprint(ctx.plan),
        summary: LinkSummary {
            service: ctx.plan.service.clone(),
            reason: stop.reason.to_owned(),
            lines: render::summary_lines(resolved, Scope::APP),
        }
        .bounded(),
        rules: approver_rules(ctx, Decision::Reject, Scope::APP),
    };
    let link = ApprovalLink {
        label: STOP_LABEL.to_owned(),
        decision: Decision::Reject,
        scope: Scope::APP,
        url: sealed_url(stop.base, stop.key, &payload, STOP_LABEL)?,
    };

    let mut body = String::new();
    let _ = writeln!(
        body,
        "Rollback of {} is PRE-APPROVED and starts at {} (in {}) unless someone stops it.\n\
         {}.\n",
        ctx.service(),
        fmt_time(starts_at),
        rollback_core::resolved::human_duration(seconds),
        clean(&grace.reason, 300)
    );
    ctx.header(&mut body, request.started_at);
    let _ = writeln!(
        body,
        "\nWHAT WILL BE DONE (app only: images and deployments)"
    );
    render::resolved_plan(&mut body, ctx, resolved, true);
    let _ = writeln!(
        body,
        "\nSTOP IT\n{}:\n  {}\n\nThe link works until {}: it ends the rollback before its \
         first change. After that the rollback runs; roll forward or start a new rollback \
         instead.",
        link.label,
        link.url,
        fmt_time(starts_at)
    );
    let _ = writeln!(body, "\nPlan fingerprint: {}", clean(stop.fingerprint, 80));
    let subject = crate::text::subject(&format!(
        "{} PRE-APPROVED: {} ({}) rolls back at {} unless stopped",
        ctx.subject_prefix(),
        ctx.service(),
        ctx.trigger_short(),
        starts_at.format("%H:%M:%S UTC")
    ));
    Ok(RenderedApproval {
        message: Message { subject, body },
        links: vec![link],
        expires_at: starts_at,
        fingerprint: stop.fingerprint.to_owned(),
    })
}
