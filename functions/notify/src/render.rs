//! The plain-text messages. Pure functions of their inputs (and `now`), so tests and the
//! local drill can print exactly what SNS would carry.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rollback_core::contract::notify::SmokeWait;
use rollback_core::contract::notify::{
    EscalateNotice, FailureNotice, ProgressNotice, ProgressRecord, ReportLink, ResolvedPlan,
    StepStatus, SuccessNotice,
};
use rollback_core::contract::smoke_test::SmokeReport;
use rollback_core::ids::{self, ExecutionId};
use rollback_core::plan::Plan;
use rollback_core::request::{RollbackRequest, Scope, Trigger};
use rollback_core::resolved::{
    DatabaseResolution, DeploymentResolution, ImageResolution, human_duration,
};

use crate::runbook;
use crate::text::{clean, short_digest};

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

/// SNS accepts 256 KiB; stay well below it.
pub const MAX_BODY_CHARS: usize = 100_000;

/// What the envelope says about this execution.
pub struct Context<'a> {
    pub plan: &'a Plan,
    pub request: &'a RollbackRequest,
    pub execution: &'a ExecutionId,
    pub now: DateTime<Utc>,
}

impl Context<'_> {
    pub fn service(&self) -> String {
        clean(&self.plan.service, 60)
    }

    pub fn subject_prefix(&self) -> &'static str {
        if self.request.mode.is_drill() {
            "[rollback DRILL]"
        } else {
            "[rollback]"
        }
    }

    /// `alarm X (ALARM since …)` or `manual (by Y)`.
    pub fn trigger_short(&self) -> String {
        match &self.request.trigger {
            Trigger::Alarm(a) => format!("alarm {}", clean(&a.alarm_name, 60)),
            Trigger::Manual { requested_by } => match requested_by {
                Some(by) => format!("manual, by {}", clean(by, 60)),
                None => "manual".to_owned(),
            },
        }
    }

    /// The header every message starts with: service, trigger, reason, mode, execution, timing.
    pub fn header(&self, out: &mut String, started_at: Option<DateTime<Utc>>) {
        let _ = writeln!(out, "Service:    {}", self.service());
        match &self.request.trigger {
            Trigger::Alarm(a) => {
                let _ = writeln!(
                    out,
                    "Trigger:    alarm {} went {} at {}",
                    clean(&a.alarm_name, 120),
                    a.state.as_str(),
                    fmt_time(a.state_changed_at)
                );
                if !a.state_reason.is_empty() {
                    let _ = writeln!(out, "            {}", clean(&a.state_reason, 300));
                }
            }
            Trigger::Manual { requested_by } => {
                let by = requested_by
                    .as_deref()
                    .map(|b| format!(" by {}", clean(b, 120)))
                    .unwrap_or_default();
                let _ = writeln!(out, "Trigger:    manual start{by}");
            }
        }
        let _ = writeln!(out, "Reason:     {}", clean(&self.request.reason, 300));
        let requested = match self.request.scope {
            Scope::APP => "app".to_owned(),
            scope => scope.label(),
        };
        let _ = writeln!(out, "Scope:      {requested} (requested)");
        if self.request.mode.is_drill() {
            let _ = writeln!(
                out,
                "Mode:       DRILL - every step runs in its non-destructive form"
            );
        }
        let _ = writeln!(out, "Execution:  {}", clean(self.execution.as_str(), 80));
        if let Some(started) = started_at {
            let _ = writeln!(
                out,
                "Started:    {} ({} ago)",
                fmt_time(started),
                human_duration((self.now - started).num_seconds().max(0))
            );
        }
    }
}

pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A resolution's `snapshot_type` in plain words.
pub fn snapshot_kind(snapshot_type: &str) -> String {
    match snapshot_type {
        "awsbackup" => "AWS Backup recovery point".to_owned(),
        "automated" => "automated RDS snapshot".to_owned(),
        "manual" => "manual snapshot".to_owned(),
        other => clean(other, 20),
    }
}

fn finish(mut body: String) -> String {
    if body.chars().count() > MAX_BODY_CHARS {
        body = crate::text::cut(&body, MAX_BODY_CHARS);
        body.push_str("\n[message cut: too long]\n");
    }
    body
}

/// The resolved plan, one block per kind. `future`: "will" (approval) or past tense (success).
pub fn resolved_plan(out: &mut String, ctx: &Context<'_>, resolved: &ResolvedPlan, future: bool) {
    if resolved.is_empty() {
        let _ = writeln!(out, "  (the resolve steps reported nothing to change)");
        return;
    }
    if !resolved.databases.is_empty() {
        let _ = writeln!(
            out,
            "Databases{}:",
            if future {
                " (restored only with \"approve app + database\")"
            } else {
                ""
            }
        );
        for db in &resolved.databases {
            database(out, ctx, db, future);
        }
    }
    if !resolved.images.is_empty() {
        let _ = writeln!(out, "Images:");
        for image in &resolved.images {
            image_retag(out, image, future);
        }
    }
    if !resolved.deployments.is_empty() {
        let _ = writeln!(out, "Deployments:");
        for d in &resolved.deployments {
            deployment(out, ctx, d, future);
        }
        if future {
            gitops_plan(out, ctx);
        }
    }
    if let Some(infra) = &resolved.infrastructure {
        crate::infrastructure::section(out, infra, future);
    }
    if let Some(mobile) = &resolved.mobile {
        crate::mobile::section(out, mobile, future);
    }
}

/// One database of the resolved plan: what it is restored to, the data it loses, the backups
/// taken first, and its replicas.
fn database(out: &mut String, ctx: &Context<'_>, db: &DatabaseResolution, future: bool) {
    let release = db
        .release
        .as_deref()
        .map(|r| format!(", release {}", clean(r, 60)))
        .unwrap_or_default();
    if let (true, Some(at)) = (db.is_point_in_time(), db.restore_time) {
        let _ = writeln!(
            out,
            "  - {} ({}): {} point in time {} (point-in-time restore by RDS, no \
             snapshot)",
            clean(&db.database, 80),
            db.kind.as_str(),
            if future { "restore to" } else { "restored to" },
            fmt_time(at),
        );
        if let Some(window) = &db.restorable_window {
            let _ = writeln!(
                out,
                "    Restorable window when resolved: {} ({}).",
                window.describe(),
                clean(&window.note, 300)
            );
        }
        let _ = writeln!(
            out,
            "    DATA LOSS: writes from {} to {} ({}) are not in the copy restored to \
             that point in time.",
            fmt_time(db.data_loss.from),
            fmt_time(db.data_loss.to),
            human_duration(db.data_loss.seconds)
        );
    } else {
        let _ = writeln!(
            out,
            "  - {} ({}): {} snapshot {} taken {} ({}{release})",
            clean(&db.database, 80),
            db.kind.as_str(),
            if future {
                "restore from"
            } else {
                "restored from"
            },
            clean(&db.snapshot_id, 255),
            fmt_time(db.snapshot_created_at),
            snapshot_kind(&db.snapshot_type),
        );
        let _ = writeln!(
            out,
            "    DATA LOSS: writes from {} to {} ({}) are not in that snapshot.",
            fmt_time(db.data_loss.from),
            fmt_time(db.data_loss.to),
            human_duration(db.data_loss.seconds)
        );
    }
    let _ = writeln!(
        out,
        "    Backups: the current state is snapshotted as {} and the current database \
         is kept as {}.",
        ids::rollback_snapshot_id(&ctx.plan.service, ctx.execution, &db.database),
        ids::aside_identifier(&db.database, ctx.execution)
    );
    for line in crate::replicas::lines(db, ctx.execution, future) {
        let _ = writeln!(out, "    {line}");
    }
}

/// One image of the resolved plan: the release tag's move back to the stable digest.
fn image_retag(out: &mut String, image: &ImageResolution, future: bool) {
    let from = image
        .release_digest
        .as_deref()
        .map(short_digest)
        .unwrap_or_else(|| "(no release tag)".to_owned());
    let action = if !image.retag_needed {
        "already at the stable digest, nothing to do".to_owned()
    } else if image.immutable_tags {
        "tags are immutable: the deployments are pinned to the stable digest instead".to_owned()
    } else if future {
        format!(
            "tag {} will point at the stable image again",
            clean(&image.release_tag, 128)
        )
    } else {
        format!(
            "tag {} points at the stable image again",
            clean(&image.release_tag, 128)
        )
    };
    let _ = writeln!(
        out,
        "  - {}:{}  {} -> {} ({})",
        clean(&image.repository, 120),
        clean(&image.release_tag, 128),
        from,
        short_digest(&image.stable_digest),
        clean(&image.stable_tag, 128),
    );
    let _ = writeln!(out, "    {action}");
    if let Some(note) = &image.note {
        let _ = writeln!(out, "    note: {}", clean(note, 300));
    }
}

/// One deployment of the resolved plan: the revision and images it goes back to, and what
/// could keep the bad image running.
fn deployment(out: &mut String, ctx: &Context<'_>, d: &DeploymentResolution, future: bool) {
    let target = d
        .target_revision
        .map(|r| r.to_string())
        .unwrap_or_else(|| "?".to_owned());
    let images = |list: &[String]| {
        if list.is_empty() {
            "-".to_owned()
        } else {
            list.iter()
                .take(5)
                .map(|i| clean(i, 200))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(
        out,
        "  - {}/{}: revision {} -> {} ({} replicas)",
        clean(&d.namespace, 63),
        clean(&d.name, 253),
        d.current_revision,
        target,
        d.replicas
    );
    let _ = writeln!(
        out,
        "    images {} -> {}",
        images(&d.current_images),
        images(&d.target_images)
    );
    if let Some(at) = d.current_rolled_out_at {
        let _ = writeln!(out, "    bad revision rolled out at {}", fmt_time(at));
    }
    if d.matches_stable == Some(false) {
        let _ = writeln!(
            out,
            "    WARNING: the target revision's images are not the stable digests"
        );
    }
    if d.restart_needed {
        deployment_restart(out, ctx, d, future);
    }
    if d.pull_policy_keeps_cache {
        let _ = writeln!(
            out,
            "    WARNING: its containers run a tag the retag moves with an imagePullPolicy \
             other than Always (IfNotPresent is the default for a tag): a node that cached \
             the bad image keeps running it after the retag, restart or not. Fix: pin the \
             image by digest, or set imagePullPolicy: Always."
        );
    }
    if let Some(note) = &d.note {
        let _ = writeln!(out, "    note: {}", clean(note, 300));
    }
}

/// A tag-pinned deployment: undo alone does not change its image, so its pods are restarted
/// after the retag.
fn deployment_restart(out: &mut String, ctx: &Context<'_>, d: &DeploymentResolution, future: bool) {
    // The plan's release tags among the target images (what the retag moves).
    let release_tag = |image: &str| {
        let (path, tag) = image.rsplit_once(':')?;
        ctx.plan.images.iter().find(|p| {
            p.release_tag == tag
                && (path == p.repository || path.ends_with(&format!("/{}", p.repository)))
        })
    };
    let images = d
        .target_images
        .iter()
        .filter(|i| !i.contains('@') && release_tag(i).is_some())
        .take(5)
        .map(|i| clean(i, 200))
        .collect::<Vec<_>>()
        .join(", ");
    let images = if images.is_empty() {
        "the same release tag".to_owned()
    } else {
        images
    };
    if future {
        let _ = writeln!(
            out,
            "    TAG-PINNED: both revisions run {images}, so undo alone does not \
             change the image: pods will be restarted after the retag so they pull \
             the stable image (like kubectl rollout restart)"
        );
    } else {
        let _ = writeln!(
            out,
            "    pods restarted after the retag so they pull the stable image \
             ({images})"
        );
    }
}

/// What the rollback will do about the GitOps controllers the plan lists (approval and
/// escalation): suspend the named ones before the deployments change, and warn about the
/// ones it cannot suspend.
fn gitops_plan(out: &mut String, ctx: &Context<'_>) {
    use rollback_core::contract::deploy_undo::gitops_suspend_command;
    let Some(cluster) = ctx.plan.cluster.as_ref().filter(|c| !c.gitops.is_empty()) else {
        return;
    };
    let _ = writeln!(
        out,
        "GitOps (a controller that syncs these deployments from git re-applies the bad release \
         unless its sync is paused):"
    );
    for (i, g) in cluster.gitops.iter().enumerate() {
        match g.name() {
            Some(_) => {
                let _ = writeln!(
                    out,
                    "  - {}: its auto-sync will be SUSPENDED before the deployments change. \
                     Nothing resumes it automatically: the notice at the end gives the exact \
                     command that does, once git holds the release you want.",
                    clean(&g.describe(), 200)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  - WARNING: {}: the rollback CANNOT suspend it (the plan gives no \
                     cluster.gitops[{i}].{}). Pause its sync by hand BEFORE approving, or it \
                     puts the bad release back: {}",
                    clean(&g.describe(), 200),
                    g.kind.name_field(),
                    gitops_suspend_command(g.kind, g.namespace(), "<name>")
                );
            }
        }
    }
}

/// What `suspend-gitops` did, with the commands that resume it (success notice).
pub fn gitops_results(
    out: &mut String,
    results: &[rollback_core::contract::deploy_undo::GitOpsResult],
) {
    if results.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nGITOPS (auto-sync stays suspended: nothing resumes it automatically)"
    );
    for r in results.iter().take(20) {
        let _ = writeln!(
            out,
            "  {}: {}",
            clean(&r.describe(), 400),
            clean(&r.message, 400)
        );
        if let Some(command) = r.resume_command() {
            let _ = writeln!(
                out,
                "    once git holds the release you want, resume it: {}",
                clean(&command, 1000)
            );
        }
    }
}

/// Short lines for the confirmation page (carried inside the signed link); `included`: the
/// parts the link's decision would change (a rejection passes `Scope::APP`, so the lines say
/// which parts are NOT touched).
pub fn summary_lines(resolved: &ResolvedPlan, included: Scope) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(infra) = resolved
        .infrastructure
        .as_ref()
        .filter(|i| i.has_changes() || i.plan_error.is_some())
    {
        lines.push(crate::infrastructure::summary_line(
            infra,
            included.includes_infrastructure(),
        ));
    }
    if let Some(mobile) = &resolved.mobile {
        lines.extend(crate::mobile::summary_lines(
            mobile,
            included.includes_mobile(),
        ));
    }
    if included.includes_database() {
        for db in &resolved.databases {
            let from = match (db.is_point_in_time(), db.restore_time) {
                (true, Some(at)) => format!("to point in time {}", fmt_time(at)),
                _ => format!(
                    "from {} ({})",
                    clean(&db.snapshot_id, 80),
                    fmt_time(db.snapshot_created_at)
                ),
            };
            lines.push(format!(
                "restore database {} {from}; writes of {} are lost",
                clean(&db.database, 63),
                human_duration(db.data_loss.seconds)
            ));
        }
    } else if !resolved.databases.is_empty() {
        lines.push(format!(
            "databases NOT restored ({})",
            resolved
                .databases
                .iter()
                .map(|d| clean(&d.database, 63))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for image in &resolved.images {
        lines.push(format!(
            "image {}:{} {} -> {}",
            clean(&image.repository, 60),
            clean(&image.release_tag, 30),
            image
                .release_digest
                .as_deref()
                .map(short_digest)
                .unwrap_or_else(|| "none".into()),
            short_digest(&image.stable_digest)
        ));
    }
    for d in &resolved.deployments {
        lines.push(format!(
            "deployment {}/{} revision {} -> {}{}",
            clean(&d.namespace, 63),
            clean(&d.name, 60),
            d.current_revision,
            d.target_revision
                .map(|r| r.to_string())
                .unwrap_or_else(|| "?".into()),
            if d.restart_needed {
                ", pods restarted after the retag"
            } else {
                ""
            }
        ));
    }
    lines
}

pub fn progress(ctx: &Context<'_>, notice: &ProgressNotice) -> Message {
    let stage = clean(&notice.stage, 80);
    let mut body = String::new();
    let _ = writeln!(body, "Rollback of {} is running: {stage}.", ctx.service());
    if !notice.message.is_empty() {
        let _ = writeln!(body, "{}", clean(&notice.message, 1000));
    }
    let _ = writeln!(body);
    ctx.header(&mut body, notice.started_at);
    if let Some(record) = &notice.progress {
        let _ = writeln!(body);
        steps_except(&mut body, record, &inapplicable_steps(ctx, None));
    }
    if let Some(report) = &notice.report {
        // Only an execution's last notice (a rejection) comes with its report.
        report_link(&mut body, ctx, report);
        let _ = writeln!(body, "\nNo action needed.");
    } else {
        let _ = writeln!(
            body,
            "\nNo action needed; you will get a message when it ends."
        );
    }
    Message {
        subject: crate::text::subject(&format!(
            "{} {}: {stage}",
            ctx.subject_prefix(),
            ctx.service()
        )),
        body: finish(body),
    }
}

/// What the rollback did of `notice.resolved`: the parts the approval left out are removed,
/// and `body` says so.
fn approved_part(body: &mut String, notice: &SuccessNotice) -> ResolvedPlan {
    let mut resolved = notice.resolved.clone();
    let Some(scope) = notice.decision.as_ref().map(|d| d.scope) else {
        return resolved;
    };
    if !scope.includes_database() {
        resolved.databases.clear();
        let _ = writeln!(
            body,
            "Databases: not restored (approved for {}).",
            scope.label()
        );
    }
    if !scope.includes_infrastructure()
        && resolved
            .infrastructure
            .take()
            .is_some_and(|i| i.has_changes())
    {
        let _ = writeln!(
            body,
            "Infrastructure: not changed (approved for {}).",
            scope.label()
        );
    }
    // Unread stores or nothing to halt stay in: the mobile section says so.
    if !scope.includes_mobile() && resolved.mobile.as_ref().is_some_and(|m| m.has_work()) {
        resolved.mobile = None;
        let _ = writeln!(
            body,
            "Mobile releases: not halted, minimum versions not raised (approved for {}): the \
             bad release is still being served in the stores.",
            scope.label()
        );
    }
    resolved
}

pub fn success(ctx: &Context<'_>, notice: &SuccessNotice) -> Message {
    let mut body = String::new();
    // The app rollback goes on when the stores refuse (the definition does not stop for a
    // failed mobile step): then someone must act in the stores.
    let mobile_failed = notice.progress.as_ref().is_some_and(|p| {
        p.steps
            .iter()
            .any(|s| s.name == "mobile" && s.status == StepStatus::Failed)
    });
    success_intro(&mut body, ctx, notice, mobile_failed);
    let _ = writeln!(body, "\nWHAT WAS DONE");
    let resolved = approved_part(&mut body, notice);
    resolved_plan(&mut body, ctx, &resolved, false);
    gitops_results(&mut body, &notice.gitops);
    if let Some(smoke) = &notice.smoke {
        let _ = writeln!(body, "\nSMOKE TESTS");
        if let Some(wait) = &notice.smoke_wait {
            smoke_wait_line(&mut body, wait);
        }
        smoke_lines(&mut body, smoke);
    }
    if let Some(record) = &notice.progress {
        let _ = writeln!(body);
        steps_except(
            &mut body,
            record,
            &inapplicable_steps(ctx, Some(&notice.resolved)),
        );
    }
    if let Some(mobile) = ctx.plan.mobile.as_ref().filter(|_| mobile_failed) {
        let _ = writeln!(body, "\nMOBILE");
        for line in crate::mobile::by_hand(mobile) {
            let _ = writeln!(body, "{line}");
        }
    }
    if let Some(report) = &notice.report {
        report_link(&mut body, ctx, report);
    }
    follow_up(&mut body, &runbook::AFTER_ROLLBACK);
    Message {
        subject: crate::text::subject(&format!(
            "{} DONE{}: {} rolled back",
            ctx.subject_prefix(),
            if mobile_failed {
                " (mobile NOT stopped)"
            } else {
                ""
            },
            ctx.service()
        )),
        body: finish(body),
    }
}

/// The success notice's first lines: the outcome, the header, how long it took and who
/// approved it.
fn success_intro(out: &mut String, ctx: &Context<'_>, notice: &SuccessNotice, mobile_failed: bool) {
    let _ = writeln!(
        out,
        "Rollback of {} finished{}. {}\n",
        ctx.service(),
        match &notice.smoke {
            Some(s) if s.passed => " and the smoke tests passed",
            Some(_) => ", BUT SOME SMOKE TESTS FAILED (see below)",
            None => "",
        },
        if mobile_failed {
            "ACTION NEEDED: the mobile releases were not stopped (see MOBILE below)."
        } else {
            "No action needed."
        }
    );
    ctx.header(out, notice.started_at);
    if let Some(started) = notice.started_at {
        let _ = writeln!(
            out,
            "Took:       {}",
            human_duration((ctx.now - started).num_seconds().max(0))
        );
    }
    if let Some(d) = &notice.decision {
        let _ = writeln!(
            out,
            "Approved:   by {} at {} (scope {})",
            clean(&d.approved_by(), 800),
            fmt_time(d.decided_at),
            d.scope.label()
        );
    }
}

/// The runbook's follow-up after the rollback, as a checklist (the report link above is where
/// the write-up goes).
fn follow_up(out: &mut String, checklist: &runbook::Checklist) {
    let _ = writeln!(out, "\nFOLLOW-UP ({})", checklist.source);
    for item in checklist.items {
        let _ = writeln!(out, "  [ ] {item}");
    }
}

/// Where the post-mortem is (the `report` step's objects in the report bucket), or why it is
/// not there and how to write it from the history.
pub fn report_link(out: &mut String, ctx: &Context<'_>, report: &ReportLink) {
    match report {
        ReportLink::Written(at) => {
            let _ = writeln!(
                out,
                "\nPOST-MORTEM REPORT (timeline, decision, changes, data-loss window; sections to fill in)"
            );
            let _ = writeln!(out, "  {}", clean(&at.uri, 1100));
            let _ = writeln!(out, "  history: {}", clean(&at.history_uri, 1100));
            let _ = writeln!(out, "  console: {}", clean(&at.console_url, 1400));
        }
        ReportLink::NotWritten(error) => {
            let _ = writeln!(out, "\nPOST-MORTEM REPORT");
            let _ = writeln!(
                out,
                "  not written to the report bucket ({}: {}).",
                clean(&error.error, 120),
                clean(&error.cause, 500)
            );
            let _ = writeln!(
                out,
                "  Write it from the history of execution {}: rollbackctl report EXECUTION_ARN -o postmortem.md",
                clean(ctx.execution.as_str(), 80)
            );
        }
    }
}

/// How long the smoke tests were re-run before they passed, and the window they had.
pub fn smoke_wait_line(out: &mut String, wait: &SmokeWait) {
    let waited = wait.reruns.saturating_mul(wait.retry_seconds);
    let waited = if wait.reruns == 0 {
        "passed on the first run".to_owned()
    } else {
        format!(
            "passed after {} re-run{} {} s apart (waited {})",
            wait.reruns,
            if wait.reruns == 1 { "" } else { "s" },
            wait.retry_seconds,
            human_duration(i64::try_from(waited).unwrap_or(i64::MAX))
        )
    };
    let _ = writeln!(
        out,
        "Settle:     {waited}; the window {}",
        clean(&wait.reason, 300)
    );
}

pub fn smoke_lines(out: &mut String, smoke: &SmokeReport) {
    let _ = writeln!(out, "{}", clean(&smoke.summary, 500));
    for c in &smoke.checks {
        let _ = writeln!(
            out,
            "  [{}] {} {}: {} ({} ms)",
            if c.passed { "pass" } else { "FAIL" },
            c.kind.as_str(),
            clean(&c.name, 100),
            // A logs check quotes matching lines (already redacted and bounded).
            clean(
                &c.reason,
                match c.kind {
                    rollback_core::contract::smoke_test::CheckKind::Logs => {
                        rollback_core::contract::smoke_test::MAX_LOGS_REASON_CHARS
                    }
                    _ => rollback_core::contract::smoke_test::MAX_REASON_CHARS,
                }
            ),
            c.elapsed_ms
        );
    }
}

/// Steps that only some rollbacks have, by name: left out of a notice while not started when
/// they do not apply (`gitops` without GitOps objects in the plan, `infrastructure` and
/// `mobile` without their plan sections, `restart` when resolve flagged no tag-pinned
/// deployment).
pub fn inapplicable_steps(ctx: &Context<'_>, resolved: Option<&ResolvedPlan>) -> Vec<&'static str> {
    let mut out = Vec::new();
    if ctx
        .plan
        .cluster
        .as_ref()
        .is_none_or(|c| c.gitops.is_empty())
    {
        out.push("gitops");
    }
    if ctx.plan.infrastructure.is_none() {
        out.push("infrastructure");
    }
    if ctx.plan.mobile.is_none() {
        out.push("mobile");
    }
    if resolved.is_some_and(|r| !r.deployments.iter().any(|d| d.restart_needed)) {
        out.push("restart");
    }
    out
}

pub fn steps(out: &mut String, record: &ProgressRecord) {
    steps_except(out, record, &[]);
}

/// [`steps`] without the not-started steps named in `inapplicable`.
pub fn steps_except(out: &mut String, record: &ProgressRecord, inapplicable: &[&str]) {
    let (done, rest): (Vec<_>, Vec<_>) = record
        .steps
        .iter()
        .filter(|s| {
            !(s.status == StepStatus::NotStarted && inapplicable.contains(&s.name.as_str()))
        })
        .partition(|s| matches!(s.status, StepStatus::Done | StepStatus::Skipped));
    let line = |out: &mut String, s: &rollback_core::contract::notify::StepRecord| {
        let at =
            s.at.map(|t| format!(" at {}", fmt_time(t)))
                .unwrap_or_default();
        let detail = if s.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", clean(&s.detail, 300))
        };
        let _ = writeln!(
            out,
            "  [{}] {}{at}{detail}",
            s.status.as_str(),
            clean(&s.name, 80)
        );
    };
    let _ = writeln!(out, "WHAT COMPLETED");
    if done.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for s in done {
        line(out, s);
    }
    let _ = writeln!(out, "WHAT DID NOT");
    if rest.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for s in rest {
        line(out, s);
    }
}

pub fn escalate(ctx: &Context<'_>, notice: &EscalateNotice) -> Message {
    let waiting = notice
        .requested_at
        .map(|t| human_duration((ctx.now - t).num_seconds().max(0)));
    let mut body = String::new();
    let _ = writeln!(
        body,
        "ESCALATION: the rollback of {} is waiting for approval{} and nobody has decided.\n",
        ctx.service(),
        waiting
            .as_deref()
            .map(|w| format!(" for {w}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        body,
        "The service stays on the bad release until someone decides. The approvers received \
         a mail with the subject \"{} APPROVAL NEEDED: {} ...\"; open a link in it, or decide \
         with `rollbackctl approve|reject {}`. The approval times out after {} minutes from \
         the request.\n",
        ctx.subject_prefix(),
        ctx.service(),
        clean(ctx.execution.as_str(), 80),
        ctx.plan.approval.timeout_minutes
    );
    ctx.header(&mut body, notice.requested_at);
    if !notice.resolved.is_empty() {
        let _ = writeln!(body, "\nWHAT WOULD BE DONE");
        resolved_plan(&mut body, ctx, &notice.resolved, true);
    }
    Message {
        subject: crate::text::subject(&format!(
            "{} ESCALATION: {} approval pending{}",
            ctx.subject_prefix(),
            ctx.service(),
            waiting.map(|w| format!(" {w}")).unwrap_or_default()
        )),
        body: finish(body),
    }
}

pub fn failure(ctx: &Context<'_>, notice: &FailureNotice) -> Message {
    let error = clean(&notice.error.error, 120);
    let cause = runbook::cause_text(&notice.error.cause);
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Rollback of {} FAILED and stopped. Manual action is needed.\n",
        ctx.service()
    );
    let _ = writeln!(body, "Error:      {error}");
    let _ = writeln!(body, "Cause:      {}", clean(&cause, 1500));
    ctx.header(&mut body, notice.started_at);
    let _ = writeln!(body);
    steps_except(&mut body, &notice.progress, &inapplicable_steps(ctx, None));

    resource_states(&mut body, ctx, notice);
    put_back(&mut body, notice);
    let _ = writeln!(body, "WHERE THE BACKUPS ARE");
    for line in runbook::backups(ctx, &notice.progress) {
        let _ = writeln!(body, "  {line}");
    }
    let _ = writeln!(body, "NEXT MANUAL STEP");
    resume_hint(&mut body, ctx, notice);
    gitops_hint(&mut body, ctx, notice);
    for line in runbook::next_steps(ctx, &notice.error.error, &notice.progress) {
        let _ = writeln!(body, "  {line}");
    }
    if let Some(report) = &notice.report {
        report_link(&mut body, ctx, report);
    }
    follow_up(&mut body, &runbook::AFTER_FAILED_ROLLBACK);
    let _ = writeln!(
        body,
        "\nThe full history is in the Step Functions console under execution {}.",
        clean(ctx.execution.as_str(), 80)
    );
    Message {
        subject: crate::text::subject(&format!(
            "{} FAILED: {} - manual action needed ({})",
            ctx.subject_prefix(),
            ctx.service(),
            error
        )),
        body: finish(body),
    }
}

/// What each resource holds: as observed by the failure path, or (an older definition that
/// does not observe) the progress record's resources, else a line saying to check it.
fn resource_states(body: &mut String, ctx: &Context<'_>, notice: &FailureNotice) {
    let _ = writeln!(body, "STATE OF EACH RESOURCE");
    if let Some(live) = &notice.observed {
        for line in crate::observed::live_lines(live) {
            let _ = writeln!(body, "  {line}");
        }
    } else if notice.progress.resources.is_empty() {
        for db in &ctx.plan.databases {
            let _ = writeln!(
                body,
                "  {} {}: not reported - check it (aws rds describe-db-{}s)",
                db.kind.as_str(),
                clean(&db.id, 63),
                if db.kind.is_cluster() {
                    "cluster"
                } else {
                    "instance"
                }
            );
        }
        for image in &ctx.plan.images {
            let _ = writeln!(
                body,
                "  ecr {}:{}: not reported - check which digest it points at",
                clean(&image.repository, 120),
                clean(&image.release_tag, 128)
            );
        }
        if let Some(cluster) = &ctx.plan.cluster {
            for d in &cluster.deployments {
                let _ = writeln!(
                    body,
                    "  deployment {}/{}: not reported - kubectl -n {} rollout history deployment/{}",
                    clean(&cluster.namespace, 63),
                    clean(d, 253),
                    clean(&cluster.namespace, 63),
                    clean(d, 253)
                );
            }
        }
    }
    for r in &notice.progress.resources {
        let _ = writeln!(
            body,
            "  {}: {}",
            clean(&r.resource, 200),
            clean(&r.state, 300)
        );
    }
}

/// Which databases the failure path put back, when any had moved.
fn put_back(body: &mut String, notice: &FailureNotice) {
    // Only when a database had moved: "never moved" for each is already in the state above.
    if let Some(reverted) = notice.reverted.as_ref().filter(|r| {
        r.databases
            .iter()
            .any(|d| d.reverted || d.state != rollback_core::contract::restore::RevertState::Back)
    }) {
        let _ = writeln!(
            body,
            "DATABASES PUT BACK (a swap that began and did not finish is undone)"
        );
        for line in crate::observed::revert_lines(reverted) {
            let _ = writeln!(body, "  {line}");
        }
    }
}

/// GitOps auto-sync this rollback suspended stays suspended: how to resume it. From the
/// observation; when the deployments were not observed, the plan's objects to check.
fn gitops_hint(body: &mut String, ctx: &Context<'_>, notice: &FailureNotice) {
    use rollback_core::contract::notify::Observed;
    let Some(cluster) = ctx.plan.cluster.as_ref().filter(|c| !c.gitops.is_empty()) else {
        return;
    };
    match notice.observed.as_ref().map(|o| &o.deployments) {
        Some(Observed::Seen(status)) => {
            let ours: Vec<_> = status
                .gitops
                .iter()
                .filter(|g| g.suspended_by.as_deref() == Some(ctx.execution.as_str()))
                .collect();
            if !ours.is_empty() {
                let _ = writeln!(
                    body,
                    "  GitOps auto-sync this rollback SUSPENDED stays suspended (nothing resumes \
                     it). Resume each once git holds the release you want, or it re-applies \
                     whatever git says:"
                );
                for g in ours {
                    if let Some(c) = g.resume_command() {
                        let _ = writeln!(body, "    {}", clean(&c, 1000));
                    }
                }
            }
        }
        _ => {
            let _ = writeln!(
                body,
                "  GitOps: not observed - check whether the rollback suspended these (annotation \
                 {}) and resume them once git holds the release you want:",
                rollback_core::contract::deploy_undo::SUSPENDED_BY
            );
            for g in &cluster.gitops {
                let _ = writeln!(
                    body,
                    "    kubectl -n {} get {} {} -o yaml",
                    clean(g.namespace(), 63),
                    g.kind.resource(),
                    clean(g.name().unwrap_or("<name>"), 253)
                );
            }
        }
    }
}

/// The service left paused: how to scale it back.
fn resume_hint(body: &mut String, ctx: &Context<'_>, notice: &FailureNotice) {
    let resume = notice
        .observed
        .as_ref()
        .map(crate::observed::resume_commands)
        .unwrap_or_default();
    if !resume.is_empty() {
        let _ = writeln!(
            body,
            "  The service is PAUSED (scaled to zero). To serve again, run `rollbackctl resume \
             --execution <ARN of execution {}>`, or scale each deployment back to the count the \
             rollback recorded (annotation {}):",
            clean(ctx.execution.as_str(), 80),
            rollback_core::contract::deploy_undo::PAUSED_REPLICAS
        );
        for c in &resume {
            let _ = writeln!(body, "    {c}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobile::fixtures::{plan_with_mobile, staged_and_phased};
    use serde_json::json;

    const HALTED: &str = "Google Play: 4.2.0 (42) halted at 20 %; App Store: 4.2.0 phased \
                          release paused on day 3; minimum versions: Android 4.0.0 → 4.2.1";

    fn steps(mobile: (&str, &str)) -> serde_json::Value {
        json!({"steps": [
            {"name": "approval", "status": "done", "detail": "approved"},
            {"name": "infrastructure", "status": "not-started", "detail": "no infrastructure"},
            {"name": "mobile", "status": mobile.0, "detail": mobile.1},
        ]})
    }

    fn with_plan<T>(plan: &Plan, render: impl FnOnce(&Context<'_>) -> T) -> T {
        let request = RollbackRequest {
            reason: "crash on launch in 4.2.0".into(),
            ..Default::default()
        };
        let execution = ExecutionId::new("exec-mobile-1");
        render(&Context {
            plan,
            request: &request,
            execution: &execution,
            now: Utc::now(),
        })
    }

    fn success_with_scope(scope: &str) -> Message {
        let notice: SuccessNotice = serde_json::from_value(json!({
            "resolved": {"mobile": staged_and_phased(true)},
            "decision": {"decision": "approve", "scope": scope, "approver": "oncall@example.com",
                         "decided_at": "2024-05-01T12:40:00Z", "fingerprint": "f"},
            "progress": steps(("done", HALTED)),
        }))
        .unwrap();
        with_plan(&plan_with_mobile(), |ctx| success(ctx, &notice))
    }

    #[test]
    fn the_success_notice_says_what_the_stores_did_when_mobile_was_approved() {
        let body = success_with_scope("app+mobile").body;
        assert!(body.contains("(scope app + mobile)"), "{body}");
        assert!(
            body.contains(
                "Mobile releases (as found before the approval; the mobile step below says what \
                 was done):\n  - Google Play production: 4.2.0 (42) at 20 % → halted;"
            ),
            "{body}"
        );
        assert!(body.contains(&format!("] mobile: {HALTED}")), "{body}");
        assert!(!body.contains("not in the approved scope"), "{body}");
        assert!(
            !body.contains("infrastructure"),
            "a step the plan does not have is left out: {body}"
        );
    }

    /// The final notices end with the runbook's follow-up as a checklist (issue 17 item 7).
    #[test]
    fn final_notices_carry_the_runbooks_follow_up() {
        let success = success_with_scope("app+mobile").body;
        assert!(
            success
                .contains("FOLLOW-UP (runbook section 8, post-rollback actions)\n  [ ] tell users"),
            "{success}"
        );
        assert!(
            success.contains("[ ] schedule the post-mortem meeting"),
            "{success}"
        );
        let notice: FailureNotice = serde_json::from_value(json!({
            "error": {"Error": "Rollback.RetagFailed", "Cause": "ecr said no"},
            "progress": steps(("not-started", "")),
        }))
        .unwrap();
        let failure = with_plan(&plan_with_mobile(), |ctx| failure(ctx, &notice)).body;
        assert!(
            failure.contains("FOLLOW-UP (runbook section 10, documentation and reporting)"),
            "{failure}"
        );
        assert!(!failure.contains("runbook section 8"), "{failure}");
    }

    /// The definition does not stop the app rollback for a failed mobile step: the success
    /// notice then asks for action in the stores.
    #[test]
    fn a_success_with_a_failed_mobile_step_asks_for_action_in_the_stores() {
        let notice: SuccessNotice = serde_json::from_value(json!({
            "resolved": {"mobile": staged_and_phased(true)},
            "decision": {"decision": "approve", "scope": "app+mobile", "approver": "oncall@example.com",
                         "decided_at": "2024-05-01T12:40:00Z", "fingerprint": "f"},
            "progress": steps(("failed", "Rollback.StoreRefused: You already have changes in review")),
        }))
        .unwrap();
        let message = with_plan(&plan_with_mobile(), |ctx| success(ctx, &notice));
        assert!(
            message.subject.contains("DONE (mobile NOT stopped)"),
            "{}",
            message.subject
        );
        let body = message.body;
        assert!(
            body.contains("ACTION NEEDED: the mobile releases were not stopped"),
            "{body}"
        );
        assert!(!body.contains("No action needed"), "{body}");
        assert!(body.contains("\nMOBILE\nThe mobile step failed"), "{body}");
        assert!(
            body.contains("Play Console > Release > production"),
            "{body}"
        );

        let fine = success_with_scope("app+mobile");
        assert!(fine.body.contains("No action needed"), "{}", fine.body);
        assert!(!fine.subject.contains("NOT stopped"), "{}", fine.subject);
    }

    #[test]
    fn the_success_notice_says_the_bad_release_is_still_served_when_mobile_was_left_out() {
        let body = success_with_scope("app").body;
        assert!(
            body.contains(
                "Mobile releases: not halted, minimum versions not raised (approved for app \
                 only): the bad release is still being served in the stores."
            ),
            "{body}"
        );
        assert!(!body.contains("Mobile releases (as found"), "{body}");
    }

    #[test]
    fn a_failed_mobile_step_says_what_to_check_in_each_store() {
        let notice: FailureNotice = serde_json::from_value(json!({
            "error": {"Error": "Rollback.StoreRefused", "Cause": "Play refused the edit: 403"},
            "progress": steps(("failed", "Rollback.StoreRefused: Play refused the edit: 403")),
        }))
        .unwrap();
        let body = with_plan(&plan_with_mobile(), |ctx| failure(ctx, &notice)).body;
        assert!(
            body.contains("[FAILED] mobile: Rollback.StoreRefused: Play refused the edit: 403"),
            "{body}"
        );
        for expected in [
            "The mobile step failed: the bad release may still be served.",
            "Google Play com.example.mint (production track): Play Console > Release > \
             production > halt the rollout",
            "App Store app 1234567890: App Store Connect",
            "Minimum versions (aws ssm get-parameter --name …): /mint/android/min;",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in\n{body}");
        }
    }

    #[test]
    fn the_mobile_step_is_left_out_of_notices_for_a_plan_without_mobile() {
        let mut plan = plan_with_mobile();
        plan.mobile = None;
        let notice: FailureNotice = serde_json::from_value(json!({
            "error": {"Error": "Rollback.RetagFailed", "Cause": "ecr said no"},
            "progress": steps(("not-started", "the plan names no mobile app")),
        }))
        .unwrap();
        let body = with_plan(&plan, |ctx| failure(ctx, &notice)).body;
        assert!(!body.contains("] mobile"), "{body}");
    }
}
