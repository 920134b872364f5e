//! `approval-request`: the mail the approvers act on, with one signed link per decision.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use rollback_core::RollbackError;
use rollback_core::approval_link::{Decision, LinkKey, LinkPayload, LinkSummary};
use rollback_core::contract::notify::ApprovalRequest;
use rollback_core::request::Scope;

use crate::render::{self, Context, Message, fmt_time};
use crate::text::clean;

/// One link in the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalLink {
    pub label: &'static str,
    pub decision: Decision,
    pub scope: Scope,
    pub url: String,
}

/// The rendered request: the message, and the links it contains (for the local drill).
#[derive(Debug, Clone)]
pub struct RenderedApproval {
    pub message: Message,
    pub links: Vec<ApprovalLink>,
    pub expires_at: DateTime<Utc>,
    pub fingerprint: String,
}

pub fn render(
    ctx: &Context<'_>,
    request: &ApprovalRequest,
    base_url: &str,
    key: &LinkKey,
) -> Result<RenderedApproval, RollbackError> {
    let base = url::Url::parse(base_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            RollbackError::InvalidInput(format!(
                "approval_url {:?} is not an absolute http(s) URL",
                clean(base_url, 100)
            ))
        })?;
    if request.task_token.is_empty() {
        return Err(RollbackError::InvalidInput(
            "task_token is empty; pass $$.Task.Token".into(),
        ));
    }
    let resolved = &request.resolved;
    let fingerprint = request
        .fingerprint
        .clone()
        .unwrap_or_else(|| rollback_core::fingerprint::fingerprint(resolved));
    let expires_at = request.expires_at.unwrap_or_else(|| {
        ctx.now + Duration::minutes(i64::from(ctx.plan.approval.timeout_minutes))
    });
    if expires_at <= ctx.now {
        return Err(RollbackError::InvalidInput(format!(
            "expires_at {} is in the past",
            fmt_time(expires_at)
        )));
    }
    let reason = format!(
        "{}: {}",
        ctx.trigger_short(),
        clean(&ctx.request.reason, 150)
    );

    let mut choices = Vec::new();
    if !resolved.databases.is_empty() {
        choices.push((
            "Approve app + database",
            Decision::Approve,
            Scope::AppAndDatabase,
        ));
    }
    choices.push(("Approve app only", Decision::Approve, Scope::App));
    choices.push(("Reject", Decision::Reject, Scope::App));

    let mut links = Vec::new();
    for (label, decision, scope) in choices {
        let summary = LinkSummary {
            service: ctx.plan.service.clone(),
            reason: reason.clone(),
            lines: render::summary_lines(
                resolved,
                decision == Decision::Approve && scope.includes_database(),
            ),
        }
        .bounded();
        let payload = LinkPayload {
            task_token: request.task_token.clone(),
            decision,
            scope,
            expires_at: expires_at.timestamp(),
            execution: ctx.execution.as_str().to_owned(),
            fingerprint: fingerprint.clone(),
            plan_fingerprint: rollback_core::fingerprint::fingerprint(ctx.plan),
            summary,
        };
        let token = key.seal(&payload).map_err(|e| {
            RollbackError::InvalidInput(format!("cannot build the {label} link: {e}"))
        })?;
        let mut url = base.clone();
        url.query_pairs_mut().append_pair("t", &token);
        links.push(ApprovalLink {
            label,
            decision,
            scope,
            url: url.to_string(),
        });
    }

    let mut body = String::new();
    if request.attempt > 0 {
        let _ = writeln!(
            body,
            "RESENT (attempt {}): earlier approval links no longer work — use the links in \
             this email. An earlier attempt to send this request failed after it may already \
             have reached you; its links carry a task token that is no longer waited for.\n",
            request.attempt + 1
        );
    }
    let _ = writeln!(
        body,
        "Rollback of {} needs your decision. Nothing changes until someone approves.\n",
        ctx.service()
    );
    ctx.header(&mut body, request.started_at);
    let _ = writeln!(
        body,
        "Decide by: {} (in {}); after that the rollback stops without changes.",
        fmt_time(expires_at),
        rollback_core::resolved::human_duration((expires_at - ctx.now).num_seconds().max(0))
    );
    let _ = writeln!(body, "\nWHAT WILL BE DONE");
    render::resolved_plan(&mut body, ctx, resolved, true);
    if let Some(settle) = &request.smoke_settle {
        let _ = writeln!(
            body,
            "Smoke tests: re-run while they fail; {}.",
            clean(settle, 300)
        );
    }
    let _ = writeln!(body, "\nDECIDE");
    for link in &links {
        let _ = writeln!(body, "{}:\n  {}\n", link.label, link.url);
    }
    let _ = writeln!(
        body,
        "Each link opens a confirmation page; nothing happens until you confirm there. The \
         links are for you only: anyone holding one can make that decision."
    );
    let _ = writeln!(body, "\nPlan fingerprint: {}", clean(&fingerprint, 80));
    // Which stored plan this execution runs (read when it started): `plan: /path@version`.
    if let Some(source) = &ctx.request.plan_source {
        let parameter = clean(&source.parameter, 150);
        let _ = writeln!(body, "plan: {parameter}@{}", source.version);
    }
    let subject = crate::text::subject(&format!(
        "{}{} APPROVAL NEEDED: {} ({})",
        ctx.subject_prefix(),
        if request.attempt > 0 {
            " RESENT - earlier links no longer work -"
        } else {
            ""
        },
        ctx.service(),
        ctx.trigger_short()
    ));
    Ok(RenderedApproval {
        message: Message { subject, body },
        links,
        expires_at,
        fingerprint,
    })
}
