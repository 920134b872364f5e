//! `approval-request`: the mail the approvers act on, with one signed link per decision.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use rollback_core::RollbackError;
use rollback_core::approval_link::{ApproverRules, Decision, LinkKey, LinkPayload, LinkSummary};
use rollback_core::contract::notify::{ApprovalRequest, ResolvedPlan};
use rollback_core::request::{Scope, Trigger};

use crate::render::{self, Context, Message, fmt_time};
use crate::text::{clean, cut};

/// One link in the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalLink {
    pub label: String,
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

/// Where the links point and how they are sealed.
pub struct ApprovalPage<'a> {
    /// The approval page's URL.
    pub url: &'a str,
    pub key: &'a LinkKey,
    /// Whether the page requires a login through the organisation's identity provider
    /// (otherwise the approver's identity is self-asserted, and the mail says so).
    pub login: bool,
}

/// The approval page's URL carrying `payload`, sealed with `key`.
pub(crate) fn sealed_url(
    base: &url::Url,
    key: &LinkKey,
    payload: &LinkPayload,
    label: &str,
) -> Result<String, RollbackError> {
    let token = key
        .seal(payload)
        .map_err(|e| RollbackError::InvalidInput(format!("cannot build the {label} link: {e}")))?;
    let mut url = base.clone();
    url.query_pairs_mut().append_pair("t", &token);
    Ok(url.to_string())
}

pub fn render(
    ctx: &Context<'_>,
    request: &ApprovalRequest,
    page: &ApprovalPage<'_>,
) -> Result<RenderedApproval, RollbackError> {
    let key = page.key;
    let base = approval_base(page.url)?;
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
    let expires_at = deadline(ctx, request)?;
    let reason = why(&ctx.trigger_short(), &clean(&ctx.request.reason, 150));
    if let Some(grace) = &request.pre_approved {
        let stop = crate::preapproved::StopLink {
            base: &base,
            key,
            fingerprint: &fingerprint,
            reason: &reason,
        };
        return crate::preapproved::render(ctx, request, grace, &stop);
    }

    let links = signed_links(ctx, request, &base, key, &reason, expires_at, &fingerprint)?;

    let mut body = String::new();
    resent_notice(&mut body, request.attempt);
    opening(&mut body, ctx, request, expires_at);
    what_will_be_done(&mut body, ctx, request);
    decide(&mut body, &links);
    who_decides(&mut body, ctx, !resolved.databases.is_empty(), page.login);
    provenance(&mut body, ctx, &fingerprint);
    let subject = subject(ctx, request.attempt);
    Ok(RenderedApproval {
        message: Message { subject, body },
        links,
        expires_at,
        fingerprint,
    })
}

/// The approval page's URL, which must be an absolute http(s) URL.
fn approval_base(base_url: &str) -> Result<url::Url, RollbackError> {
    url::Url::parse(base_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            RollbackError::InvalidInput(format!(
                "approval_url {:?} is not an absolute http(s) URL",
                clean(base_url, 100)
            ))
        })
}

/// When the links stop working: the request's own deadline, or the plan's approval timeout
/// from now; never one already past.
fn deadline(ctx: &Context<'_>, request: &ApprovalRequest) -> Result<DateTime<Utc>, RollbackError> {
    let expires_at = request.expires_at.unwrap_or_else(|| {
        ctx.now + Duration::minutes(i64::from(ctx.plan.approval.timeout_minutes))
    });
    if expires_at <= ctx.now {
        return Err(RollbackError::InvalidInput(format!(
            "expires_at {} is in the past",
            fmt_time(expires_at)
        )));
    }
    Ok(expires_at)
}

/// One sealed link per choice (see [`choices`]), each carrying its page summary and the
/// approval rules that apply to it.
fn signed_links(
    ctx: &Context<'_>,
    request: &ApprovalRequest,
    base: &url::Url,
    key: &LinkKey,
    reason: &str,
    expires_at: DateTime<Utc>,
    fingerprint: &str,
) -> Result<Vec<ApprovalLink>, RollbackError> {
    let resolved = &request.resolved;
    let mut links = Vec::new();
    for (label, decision, scope) in choices(resolved) {
        let summary = LinkSummary {
            service: ctx.plan.service.clone(),
            reason: reason.to_owned(),
            lines: render::summary_lines(resolved, changed_by(decision, scope)),
        }
        .bounded();
        let payload = LinkPayload {
            task_token: request.task_token.clone(),
            decision,
            scope,
            expires_at: expires_at.timestamp(),
            execution: ctx.execution.as_str().to_owned(),
            fingerprint: fingerprint.to_owned(),
            plan_fingerprint: rollback_core::fingerprint::fingerprint(ctx.plan),
            summary,
            rules: approver_rules(ctx, decision, scope),
        };
        let url = sealed_url(base, key, &payload, &label)?;
        links.push(ApprovalLink {
            label,
            decision,
            scope,
            url,
        });
    }
    Ok(links)
}

/// A resent request (attempt > 0) opens by saying the earlier links no longer work.
fn resent_notice(body: &mut String, attempt: u32) {
    if attempt > 0 {
        let _ = writeln!(
            body,
            "RESENT (attempt {}): earlier approval links no longer work — use the links in \
             this email. An earlier attempt to send this request failed after it may already \
             have reached you; its links carry a task token that is no longer waited for.\n",
            attempt + 1
        );
    }
}

/// What is asked, the execution's header, and the deadline.
fn opening(
    body: &mut String,
    ctx: &Context<'_>,
    request: &ApprovalRequest,
    expires_at: DateTime<Utc>,
) {
    let _ = writeln!(
        body,
        "Rollback of {} needs your decision. Nothing changes until someone approves.\n",
        ctx.service()
    );
    ctx.header(body, request.started_at);
    let _ = writeln!(
        body,
        "Decide by: {} (in {}); after that the rollback stops without changes.",
        fmt_time(expires_at),
        rollback_core::resolved::human_duration((expires_at - ctx.now).num_seconds().max(0))
    );
}

/// WHAT WILL BE DONE: the resolved plan, the smoke tests' settle, and what the status page
/// will say.
fn what_will_be_done(body: &mut String, ctx: &Context<'_>, request: &ApprovalRequest) {
    let _ = writeln!(body, "\nWHAT WILL BE DONE");
    render::resolved_plan(body, ctx, &request.resolved, true);
    if let Some(settle) = &request.smoke_settle {
        let _ = writeln!(
            body,
            "Smoke tests: re-run while they fail; {}.",
            clean(settle, 300)
        );
    }
    // What users will read on the status page once this is approved (plan.channels).
    if let Some(page) = ctx
        .plan
        .channels
        .as_ref()
        .and_then(|c| c.statuspage.as_ref())
    {
        let m = &page.messages;
        let _ = writeln!(
            body,
            "Status page will say (on approval): \"{}: {}\"",
            clean(m.name(), 100),
            clean(m.identified(), 300)
        );
    }
}

/// DECIDE: the links, and how they work.
fn decide(body: &mut String, links: &[ApprovalLink]) {
    let _ = writeln!(body, "\nDECIDE");
    for link in links {
        let _ = writeln!(body, "{}:\n  {}\n", link.label, link.url);
    }
    let _ = writeln!(
        body,
        "Each link opens a confirmation page; nothing happens until you confirm there. The \
         links are for you only: anyone holding one can make that decision."
    );
}

/// The closing lines: the plan fingerprint, and which stored plan this execution runs.
fn provenance(body: &mut String, ctx: &Context<'_>, fingerprint: &str) {
    let _ = writeln!(body, "\nPlan fingerprint: {}", clean(fingerprint, 80));
    // Which stored plan this execution runs (read when it started): `plan: /path@version`.
    if let Some(source) = &ctx.request.plan_source {
        let parameter = clean(&source.parameter, 150);
        let _ = writeln!(body, "plan: {parameter}@{}", source.version);
    }
}

/// `APPROVAL NEEDED: <service> (<trigger>)`, saying so when the request is resent.
fn subject(ctx: &Context<'_>, attempt: u32) -> String {
    crate::text::subject(&format!(
        "{}{} APPROVAL NEEDED: {} ({})",
        ctx.subject_prefix(),
        if attempt > 0 {
            " RESENT - earlier links no longer work -"
        } else {
            ""
        },
        ctx.service(),
        ctx.trigger_short()
    ))
}

/// The page's "Why:" line: the trigger and the reason, once each (an alarm's reason already
/// starts with the alarm: `alarm mint-replica-5xx went OK → ALARM`).
fn why(trigger: &str, reason: &str) -> String {
    if reason.starts_with(trigger) {
        reason.to_owned()
    } else {
        format!("{trigger}: {reason}")
    }
}

/// The scope a link's page summary describes: an approval's own; for a rejection
/// `Scope::APP`, so the lines say which parts are NOT touched.
fn changed_by(decision: Decision, scope: Scope) -> Scope {
    match decision {
        Decision::Approve => scope,
        Decision::Reject => Scope::APP,
    }
}

/// The links an approval email offers: every approve scope, widest first, then Reject.
fn choices(resolved: &ResolvedPlan) -> Vec<(String, Decision, Scope)> {
    let mut choices: Vec<(String, Decision, Scope)> = approve_scopes(resolved)
        .into_iter()
        .map(|scope| (approve_label(scope), Decision::Approve, scope))
        .collect();
    choices.push(("Reject".to_owned(), Decision::Reject, Scope::APP));
    choices
}

/// Widest first. Infrastructure is offered only with a plan that changes something; when it
/// destroys or replaces a protected type, only the "including destroys" form is offered,
/// since the apply refuses any other. With a release to halt or a minimum to raise in the
/// stores, each scope is offered with mobile first, then without: the approver chooses
/// whether mobile is included.
fn approve_scopes(resolved: &ResolvedPlan) -> Vec<Scope> {
    let databases = !resolved.databases.is_empty();
    let infrastructure = resolved
        .infrastructure
        .as_ref()
        .is_some_and(|i| i.has_changes());
    let destroys = resolved
        .infrastructure
        .as_ref()
        .is_some_and(|i| i.destroys_protected());
    let mut scopes = Vec::new();
    if databases && infrastructure {
        scopes.push(Scope::APP_AND_DATABASE.and_infrastructure(destroys));
    }
    if databases {
        scopes.push(Scope::APP_AND_DATABASE);
    }
    if infrastructure {
        scopes.push(Scope::APP.and_infrastructure(destroys));
    }
    scopes.push(Scope::APP);
    if resolved.mobile.as_ref().is_some_and(|m| m.has_work()) {
        scopes = scopes
            .into_iter()
            .flat_map(|scope| [scope.and_mobile(), scope])
            .collect();
    }
    scopes
}

/// `Approve app only`, `Approve app + database + mobile`, `Approve app + infrastructure +
/// mobile, including destroys of protected resources`.
fn approve_label(scope: Scope) -> String {
    match scope {
        Scope::APP => "Approve app only".to_owned(),
        scope if scope.allows_destroys() => format!(
            "Approve {}, including destroys of protected resources",
            // Said once, at the end, rather than as the label's "(destroys allowed)".
            Scope {
                destroys: false,
                ..scope
            }
            .label()
        ),
        scope => format!("Approve {}", scope.label()),
    }
}

/// The plan's approval policy as it applies to one link.
pub(crate) fn approver_rules(ctx: &Context<'_>, decision: Decision, scope: Scope) -> ApproverRules {
    let policy = &ctx.plan.approval;
    ApproverRules {
        // Emails compare case-insensitively; group values exactly, as the claim carries them.
        approvers: policy
            .approvers
            .iter()
            .map(|a| {
                if a.starts_with(rollback_core::plan::GROUP_PREFIX) {
                    a.clone()
                } else {
                    a.to_ascii_lowercase()
                }
            })
            .collect(),
        needed: match decision {
            Decision::Approve => policy.approvals_needed(scope),
            // One person may stop a rollback.
            Decision::Reject => 1,
        },
        starter: match decision {
            Decision::Approve if !policy.starter_may_approve_alone => starter(ctx),
            _ => None,
        },
    }
}

/// Who started a manual rollback (`requested_by`, lowercased).
fn starter(ctx: &Context<'_>) -> Option<String> {
    match &ctx.request.trigger {
        Trigger::Manual {
            requested_by: Some(by),
        } => Some(by.trim().to_ascii_lowercase()),
        _ => None,
    }
}

/// Who may decide, how many must approve, and how the page knows who they are.
fn who_decides(body: &mut String, ctx: &Context<'_>, databases: bool, login: bool) {
    let policy = &ctx.plan.approval;
    let _ = writeln!(body, "\nWHO DECIDES");
    if policy.approvers.is_empty() {
        let _ = writeln!(body, "Anyone who holds these links.");
    } else {
        let listed: Vec<String> = policy.approvers.iter().map(|a| clean(a, 120)).collect();
        let _ = writeln!(
            body,
            "Only: {}. Others are refused.",
            cut(&listed.join(", "), 800)
        );
    }
    if databases && policy.database_approvers > 1 {
        let _ = writeln!(
            body,
            "App + database needs {} different people to approve: the first approvals are \
             recorded and shown to the next; the last one lets the rollback go on.",
            policy.database_approvers
        );
    }
    if let Some(starter) = (!policy.starter_may_approve_alone)
        .then(|| starter(ctx))
        .flatten()
    {
        let _ = writeln!(
            body,
            "{} started this rollback and may not approve it alone.",
            clean(&starter, 120)
        );
    }
    let _ = writeln!(
        body,
        "{}",
        if login {
            "Approvers sign in with the organisation's identity provider; the recorded name \
             comes from it."
        } else {
            "Approvers type their email address on the page: identity is self-asserted (not \
             verified)."
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobile::fixtures::{staged_and_phased, unread};
    use rollback_core::contract::infra::InfrastructureResolution;
    use rollback_core::contract::mobile::MobileResolution;
    use rollback_core::terraform_plan::PlanSummary;

    fn with_infrastructure(protected_total: usize) -> ResolvedPlan {
        ResolvedPlan {
            infrastructure: Some(Box::new(InfrastructureResolution {
                codebuild_project: "svc-terraform".into(),
                stable_commit: "a".repeat(40),
                current_commit: None,
                needs_plan: true,
                artifact_bucket: "svc-plans".into(),
                artifact_key: "k".into(),
                plan_build: Some("svc-terraform:1".into()),
                plan_sha256: Some("e".repeat(64)),
                summary: Some(PlanSummary {
                    change: 1,
                    destroy: protected_total,
                    protected_total,
                    ..Default::default()
                }),
                plan_error: None,
            })),
            ..ResolvedPlan::default()
        }
    }

    #[test]
    fn the_why_line_names_the_alarm_once() {
        assert_eq!(
            why(
                "alarm mint-replica-5xx",
                "alarm mint-replica-5xx went OK → ALARM"
            ),
            "alarm mint-replica-5xx went OK → ALARM"
        );
        assert_eq!(
            why("manual, by a@x.io", "bad migration"),
            "manual, by a@x.io: bad migration"
        );
    }

    fn offered(resolved: &ResolvedPlan) -> Vec<Scope> {
        choices(resolved)
            .into_iter()
            .filter(|(_, decision, _)| *decision == Decision::Approve)
            .map(|(_, _, scope)| scope)
            .collect()
    }

    #[test]
    fn infrastructure_is_offered_only_with_a_plan_that_changes_something() {
        assert_eq!(offered(&ResolvedPlan::default()), [Scope::APP]);
        assert_eq!(
            offered(&with_infrastructure(0)),
            [Scope::APP.and_infrastructure(false), Scope::APP]
        );
        let mut nothing = with_infrastructure(0);
        if let Some(infra) = nothing.infrastructure.as_mut() {
            infra.summary = Some(PlanSummary::default());
        }
        assert_eq!(offered(&nothing), [Scope::APP]);
    }

    /// The apply refuses a plain `+infrastructure` decision for a plan that destroys a
    /// protected type, so only the `+destroys` form is offered, and it says so.
    #[test]
    fn a_protected_destroy_is_offered_only_as_including_destroys() {
        let choices = choices(&with_infrastructure(1));
        let labels: Vec<&str> = choices.iter().map(|(l, _, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Approve app + infrastructure, including destroys of protected resources",
                "Approve app only",
                "Reject"
            ]
        );
        assert_eq!(choices[0].2, Scope::APP.and_infrastructure(true));
    }

    fn with_database(mut resolved: ResolvedPlan) -> ResolvedPlan {
        resolved.databases = vec![
            serde_json::from_value(serde_json::json!({
                "database": "mint-db", "kind": "rds-instance",
                "snapshot_id": "predeploy-mint-db", "snapshot_created_at": "2024-05-01T11:02:00Z",
                "snapshot_type": "manual",
                "data_loss": {"from": "2024-05-01T11:02:00Z", "to": "2024-05-01T12:30:00Z",
                              "seconds": 5280, "summary": "1 h 28 min of writes"}
            }))
            .unwrap(),
        ];
        resolved
    }

    fn with_mobile(mut resolved: ResolvedPlan, mobile: MobileResolution) -> ResolvedPlan {
        resolved.mobile = Some(Box::new(mobile));
        resolved
    }

    fn labels(resolved: &ResolvedPlan) -> Vec<String> {
        choices(resolved).into_iter().map(|(l, _, _)| l).collect()
    }

    /// Issue 16: the approver chooses whether mobile is included, for every scope offered.
    #[test]
    fn mobile_work_offers_each_scope_with_mobile_first_then_without() {
        let everything = with_mobile(
            with_database(with_infrastructure(0)),
            staged_and_phased(true),
        );
        assert_eq!(
            labels(&everything),
            [
                "Approve app + database + infrastructure + mobile",
                "Approve app + database + infrastructure",
                "Approve app + database + mobile",
                "Approve app + database",
                "Approve app + infrastructure + mobile",
                "Approve app + infrastructure",
                "Approve app + mobile",
                "Approve app only",
                "Reject",
            ]
        );
        let database = Scope::APP_AND_DATABASE;
        let infrastructure = Scope::APP.and_infrastructure(false);
        assert_eq!(
            offered(&everything),
            [
                database.and_infrastructure(false).and_mobile(),
                database.and_infrastructure(false),
                database.and_mobile(),
                database,
                infrastructure.and_mobile(),
                infrastructure,
                Scope::APP.and_mobile(),
                Scope::APP,
            ]
        );
        let app_only = with_mobile(ResolvedPlan::default(), staged_and_phased(false));
        assert_eq!(
            labels(&app_only),
            ["Approve app + mobile", "Approve app only", "Reject"]
        );
    }

    #[test]
    fn a_protected_destroy_with_mobile_says_destroys_once_at_the_end() {
        let choices = choices(&with_mobile(
            with_infrastructure(1),
            staged_and_phased(true),
        ));
        assert_eq!(
            choices[0].0,
            "Approve app + infrastructure + mobile, including destroys of protected resources"
        );
        assert_eq!(
            choices[0].2,
            Scope::APP.and_infrastructure(true).and_mobile()
        );
        assert_eq!(
            choices[1].0,
            "Approve app + infrastructure, including destroys of protected resources"
        );
    }

    /// Unread stores, or stores with nothing to halt and no minimum to raise: the choices are
    /// exactly those without a mobile section.
    #[test]
    fn without_mobile_work_the_choices_are_unchanged() {
        let base = with_database(with_infrastructure(0));
        let mut idle = staged_and_phased(true);
        idle.android = None;
        if let Some(ios) = idle.ios.as_mut() {
            ios.phased_release = None;
            ios.minimum_version = None;
        }
        assert!(!idle.has_work());
        for mobile in [idle, unread(), MobileResolution::default()] {
            assert_eq!(choices(&with_mobile(base.clone(), mobile)), choices(&base));
        }
        assert_eq!(
            labels(&base),
            [
                "Approve app + database + infrastructure",
                "Approve app + database",
                "Approve app + infrastructure",
                "Approve app only",
                "Reject",
            ]
        );
    }

    fn render_with(mobile: MobileResolution) -> (RenderedApproval, LinkKey) {
        let plan = crate::mobile::fixtures::plan_with_mobile();
        let request = rollback_core::request::RollbackRequest {
            trigger: Trigger::Manual {
                requested_by: Some("oncall@example.com".into()),
            },
            reason: "crash on launch in 4.2.0".into(),
            scope: Scope::APP.and_mobile(),
            ..Default::default()
        };
        let execution = rollback_core::ExecutionId::new("exec-mobile-1");
        let ctx = Context {
            plan: &plan,
            request: &request,
            execution: &execution,
            now: chrono::Utc::now(),
        };
        let approval: ApprovalRequest = serde_json::from_value(serde_json::json!({
            "task_token": "tok",
            "resolved": with_mobile(ResolvedPlan::default(), mobile),
        }))
        .unwrap();
        let key = LinkKey::generate();
        let page = ApprovalPage {
            url: "https://approve.test/",
            key: &key,
            login: false,
        };
        (render(&ctx, &approval, &page).unwrap(), key)
    }

    #[test]
    fn the_email_shows_each_store_and_the_links_say_what_mobile_does() {
        let (rendered, key) = render_with(staged_and_phased(true));
        let body = &rendered.message.body;
        for expected in [
            "Scope:      app + mobile (requested)",
            "Mobile releases (halted only with an \"approve … + mobile\" link):",
            "  - Google Play production: 4.2.0 (42) at 20 % → halted; new and eligible users get \
             4.1.2 (41); users who installed 4.2.0 keep it; minimum version 4.0.0 → 4.2.1 (users \
             below must update)",
            "  - App Store: 4.2.0 phased release day 3 (5 % of automatic updates) → paused;",
            "Approve app + mobile:\n  https://approve.test/",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in\n{body}");
        }
        let summaries: Vec<Vec<String>> = rendered
            .links
            .iter()
            .map(|l| {
                let token = l.url.split_once("?t=").unwrap().1;
                key.open(token, chrono::Utc::now()).unwrap().summary.lines
            })
            .collect();
        assert_eq!(
            summaries[0][1],
            "Android: minimum version 4.0.0 → 4.2.1 (users below must update)"
        );
        assert!(
            summaries[1][0].starts_with("mobile releases NOT halted"),
            "{:?}",
            summaries[1]
        );
        assert!(
            summaries[2][0].starts_with("mobile releases NOT halted"),
            "reject"
        );
    }

    #[test]
    fn unread_stores_are_left_out_of_the_email_and_of_every_link() {
        let (rendered, _) = render_with(unread());
        let body = &rendered.message.body;
        assert!(
            body.contains(
                "Mobile releases:\n  The stores could not be read, so the mobile releases are \
                 left out of this rollback"
            ),
            "{body}"
        );
        assert!(
            body.contains("Rollback.StoreCredentials: secret mint/play"),
            "{body}"
        );
        let labels: Vec<&str> = rendered.links.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["Approve app only", "Reject"]);
    }
}
