//! Turns an execution history into the post-mortem skeleton: timeline, trigger, decision, every
//! change made, the data-loss window, failures, and the sections people fill in.
//!
//! One renderer for both places the report is written: `rollbackctl report` (from a finished
//! execution's history, or a saved `history.json`) and the notify function's `report` action,
//! which writes `report.md` and `history.json` to the stack's bucket at the end of every
//! execution that sends a final notice. That step runs before the final notice, so its history
//! has no end event yet; the outcome then comes from the step's own `TaskScheduled` event
//! (its `action: report` payload names the outcome and, on failure, the error), so the same
//! events always render the same text, whichever program reads them.
//!
//! [`Analysis`] reads one event at a time (the report step streams a history of up to 25,000
//! events page by page); [`analyse`] is the same over a whole [`History`].

pub mod history;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::RollbackRequest;
use crate::contract::approval::ApprovalDecision;
use crate::contract::deploy_undo::UndoResult;
use crate::contract::infra::BuildStatus;
use crate::contract::notify::{ReportOutcome, StepError, StepRecord, StepStatus};
use crate::contract::restore::{SwapReport, SwapState};
use crate::contract::retag::RetagResult;
use crate::contract::snapshot::{SnapshotPurpose, SnapshotReport};
use crate::request::Trigger;
use crate::resolved::{DatabaseResolution, human_duration};

use history::{Event, History};

/// The notify action that writes the report (`report`), as the definition's Payload names it.
pub const REPORT_ACTION: &str = "report";

/// One state's activity: loops (status polls) fold into one row with a count.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    /// The state's name.
    pub state: String,
    /// When it was first entered.
    pub entered: DateTime<Utc>,
    /// When it was last exited (`None`: still running).
    pub exited: Option<DateTime<Utc>>,
    /// How many times it was entered.
    pub visits: u32,
}

/// What the report found in the history, before rendering.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// The execution name.
    pub execution: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `ABORTED` or `TIMED_OUT`.
    pub status: String,
    /// When the execution started.
    pub started: Option<DateTime<Utc>>,
    /// When it ended (`None`: no end event yet).
    pub ended: Option<DateTime<Utc>>,
    /// The rollback request: the validated one once `validate` ran, else the start input.
    pub request: Option<RollbackRequest>,
    /// The stored plan the execution ran (`validate`'s `request.plan_source`).
    pub plan_source: Option<crate::plan_store::PlanSource>,
    /// Each state entered, in first-entered order.
    pub timeline: Vec<TimelineRow>,
    /// The approval decision, as the approval task returned it.
    pub decision: Option<Value>,
    /// Each failure as `(state, error, cause)`; `(execution)` for the execution's own.
    pub failures: Vec<(String, String, String)>,
    /// Facts found in state outputs, by category, deduplicated, in first-seen order.
    pub changes: BTreeMap<&'static str, Vec<String>>,
    /// The data-loss window of each restored database, one line each.
    pub data_loss: Vec<String>,
    /// States entered, loops counted each time.
    pub transitions: usize,
    /// When the history has no end event but the execution's report step ran: when it was
    /// scheduled (the history ends there; the final notice and the end come after).
    pub report_written: Option<DateTime<Utc>>,
}

/// The findings of a whole history (see [`Analysis`] to read one event at a time).
pub fn analyse(execution: &str, history: &History) -> Findings {
    let mut analysis = Analysis::new(execution);
    for event in &history.events {
        analysis.event(event);
    }
    analysis.finish()
}

/// What the execution's report step said when it was scheduled: the outcome it records, and
/// the error a failed execution ends with.
#[derive(Debug, Clone)]
struct ReportStep {
    at: DateTime<Utc>,
    outcome: ReportOutcome,
    error: Option<StepError>,
}

/// [`analyse`], one event at a time.
#[derive(Debug, Clone)]
pub struct Analysis {
    f: Findings,
    open: BTreeMap<String, usize>,
    last_state: String,
    report_step: Option<ReportStep>,
    /// Whether `f.request` is the validated request (the trigger policy applied, as every
    /// notice shows it), not the raw execution input.
    request_validated: bool,
}

impl Analysis {
    /// An analysis of `execution` that has read no event yet.
    pub fn new(execution: &str) -> Analysis {
        Analysis {
            f: Findings {
                execution: execution.to_owned(),
                status: "RUNNING".to_owned(),
                ..Default::default()
            },
            open: BTreeMap::new(),
            last_state: String::new(),
            report_step: None,
            request_validated: false,
        }
    }

    /// Events read so far.
    pub fn event(&mut self, event: &Event) {
        let f = &mut self.f;
        match event.kind.as_str() {
            "ExecutionStarted" => {
                f.started = Some(event.timestamp);
                f.request = event
                    .detail_json("input")
                    .and_then(|input| RollbackRequest::from_start_input(input).ok());
            }
            "ExecutionSucceeded" => finish(f, event, "SUCCEEDED"),
            "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut" => {
                execution_failed(f, event);
            }
            kind if kind.ends_with("StateEntered") => self.state_entered(event),
            kind if kind.ends_with("StateExited") => self.state_exited(event),
            "TaskFailed" | "LambdaFunctionFailed" | "TaskTimedOut" | "LambdaFunctionTimedOut" => {
                f.failures.push((
                    self.last_state.clone(),
                    event.detail_str("error").unwrap_or("unknown").to_owned(),
                    event.detail_str("cause").unwrap_or_default().to_owned(),
                ));
            }
            "TaskSucceeded" => {
                if let Some(output) = event.detail_json("output") {
                    collect_facts(&output, f);
                }
            }
            "TaskScheduled" => {
                if let Some(step) = report_step(event) {
                    self.report_step = Some(step);
                }
            }
            _ => {}
        }
    }

    /// A state entered: counted, and a timeline row opened (or a loop's row revisited).
    fn state_entered(&mut self, event: &Event) {
        let f = &mut self.f;
        let name = event.detail_str("name").unwrap_or("?").to_owned();
        f.transitions += 1;
        self.last_state = name.clone();
        match f.timeline.iter().position(|r| r.state == name) {
            Some(i) => {
                f.timeline[i].visits += 1;
                self.open.insert(name, i);
            }
            None => {
                f.timeline.push(TimelineRow {
                    state: name.clone(),
                    entered: event.timestamp,
                    exited: None,
                    visits: 1,
                });
                self.open.insert(name, f.timeline.len() - 1);
            }
        }
    }

    /// A state exited: its row closed, and its output read for the request, the plan source
    /// and the facts.
    fn state_exited(&mut self, event: &Event) {
        let f = &mut self.f;
        let name = event.detail_str("name").unwrap_or("?");
        if let Some(&i) = self.open.get(name) {
            f.timeline[i].exited = Some(event.timestamp);
        }
        if let Some(output) = event.detail_json("output") {
            if !self.request_validated
                && let Some(request) = output
                    .get("request")
                    .and_then(|r| serde_json::from_value(r.clone()).ok())
            {
                // One source of truth with the notices: an alarm's scope is the plan's
                // `triggers.alarm_scope`, which the input does not carry.
                f.request = Some(request);
                self.request_validated = true;
            }
            if f.plan_source.is_none() {
                f.plan_source = output
                    .get("request")
                    .and_then(|r| r.get("plan_source"))
                    .and_then(|s| serde_json::from_value(s.clone()).ok());
            }
            collect_facts(&output, f);
        }
    }

    /// The findings. A history without an end event whose report step ran (the report the
    /// execution writes itself, before its final notice) takes the outcome that step records.
    pub fn finish(self) -> Findings {
        let mut f = self.f;
        if f.ended.is_none()
            && let Some(step) = self.report_step
        {
            f.status = step.outcome.execution_status().to_owned();
            f.report_written = Some(step.at);
            if let Some(error) = step.error {
                f.failures
                    .push(("(execution)".to_owned(), error.error, error.cause));
            }
        }
        f
    }
}

/// The report step's `TaskScheduled` event: its Payload is the notify `report` action.
fn report_step(event: &Event) -> Option<ReportStep> {
    let parameters = event.detail_str("parameters")?;
    if !parameters.contains(REPORT_ACTION) {
        return None;
    }
    let parameters: Value = serde_json::from_str(parameters).ok()?;
    let payload = parameters.get("Payload")?;
    if payload.get("action")?.as_str()? != REPORT_ACTION {
        return None;
    }
    Some(ReportStep {
        at: event.timestamp,
        outcome: serde_json::from_value(payload.get("outcome")?.clone()).ok()?,
        error: payload
            .get("error")
            .and_then(|e| serde_json::from_value(e.clone()).ok()),
    })
}

fn finish(f: &mut Findings, event: &Event, status: &str) {
    f.status = status.to_owned();
    f.ended = Some(event.timestamp);
}

/// `ExecutionFailed`, `ExecutionAborted` or `ExecutionTimedOut`: the end, and the execution's
/// own error as a failure.
fn execution_failed(f: &mut Findings, event: &Event) {
    let status = event.kind.trim_start_matches("Execution").to_uppercase();
    finish(f, event, &status);
    if let (Some(error), cause) = (event.detail_str("error"), event.detail_str("cause")) {
        f.failures.push((
            "(execution)".to_owned(),
            error.to_owned(),
            cause.unwrap_or_default().to_owned(),
        ));
    }
}

/// Walks a state's output and records what the rollback did, reading every object as the
/// function contracts (`rollback_core::contract`) that could have produced it.
fn collect_facts(value: &Value, f: &mut Findings) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_facts(v, f)),
        Value::Object(map) => {
            record_object(value, f);
            for v in map.values() {
                if v.is_object() || v.is_array() {
                    collect_facts(v, f);
                }
            }
        }
        _ => {}
    }
}

/// One object, read as the first contract it parses as (in this order: a looser contract
/// later in the chain could also parse an earlier one's output).
fn record_object(value: &Value, f: &mut Findings) {
    let as_type = |v: &Value| v.clone();
    if let Ok(d) = serde_json::from_value::<ApprovalDecision>(as_type(value)) {
        f.decision = Some(serde_json::to_value(d).unwrap_or_default());
    } else if let Ok(s) = serde_json::from_value::<SnapshotReport>(as_type(value)) {
        if s.purpose == SnapshotPurpose::PreRollback {
            push(
                f,
                "Databases",
                format!(
                    "{}: backup snapshot `{}` of the state before the rollback",
                    s.database, s.snapshot_id
                ),
            );
        }
    } else if let Ok(r) = serde_json::from_value::<DatabaseResolution>(as_type(value)) {
        record_restore(f, &r);
    } else if let Ok(s) = serde_json::from_value::<SwapReport>(as_type(value)) {
        if matches!(s.state, SwapState::Done) {
            push(
                f,
                "Databases",
                format!(
                    "{}: now the restored copy; the previous database is kept as `{}` (delete it once the incident is closed)",
                    s.database, s.aside
                ),
            );
        }
    } else if let Ok(r) = serde_json::from_value::<RetagResult>(as_type(value)) {
        push(f, "Images", retag_line(r));
    } else if let Ok(b) = serde_json::from_value::<BuildStatus>(as_type(value)) {
        if b.done && b.build.skipped.is_none() {
            push(f, "Infrastructure", build_line(b));
        }
    } else if let Some(line) = mobile_step(value) {
        push(f, "Mobile", line);
    } else if let Ok(u) = serde_json::from_value::<UndoResult>(as_type(value)) {
        let now = u
            .new_revision
            .map(|n| format!(", now revision {n}"))
            .unwrap_or_default();
        push(
            f,
            "Deployments",
            format!(
                "{}/{}: revision {} → template of revision {}{now} ({})",
                u.namespace, u.name, u.from_revision, u.to_revision, u.message
            ),
        );
    }
}

/// A database's restore: what it was restored to, and its data-loss window.
fn record_restore(f: &mut Findings, r: &DatabaseResolution) {
    let line = match (r.is_point_in_time(), r.restore_time) {
        (true, Some(at)) => format!(
            "{}: restored to point in time {} (point-in-time restore)",
            r.database,
            stamp(at)
        ),
        _ => format!(
            "{}: restored from snapshot `{}` taken {}",
            r.database,
            r.snapshot_id,
            stamp(r.snapshot_created_at)
        ),
    };
    push(f, "Databases", line);
    let line = format!("{}: {}", r.database, r.data_loss.summary);
    if !f.data_loss.contains(&line) {
        f.data_loss.push(line);
    }
}

fn retag_line(r: RetagResult) -> String {
    let old = r.previous_digest.as_deref().unwrap_or("(none)");
    let kept = r
        .kept_as
        .map(|k| format!("; the bad image stays tagged `{k}`"))
        .unwrap_or_default();
    format!(
        "{}:{}: {} → {} ({}){kept}",
        r.repository,
        r.tag,
        short_digest(old),
        short_digest(&r.stable_digest),
        r.message
    )
}

fn build_line(b: BuildStatus) -> String {
    format!(
        "Terraform {} build `{}` of commit {}: {}{}",
        b.build.purpose.as_str(),
        b.build.id,
        b.build.source_version,
        b.status,
        b.log_url
            .map(|url| format!(" ([log]({url}))"))
            .unwrap_or_default()
    )
}

/// The mobile step's record once it ended: what the stores and the minimum versions now do
/// for users (its detail joins the halt's and the raise's summaries).
fn mobile_step(value: &Value) -> Option<String> {
    if value.get("name")?.as_str()? != "mobile" {
        return None;
    }
    let record: StepRecord = serde_json::from_value(value.clone()).ok()?;
    match record.status {
        StepStatus::Done => Some(record.detail),
        StepStatus::Failed => Some(format!("failed: {}", record.detail)),
        _ => None,
    }
}

fn push(f: &mut Findings, category: &'static str, line: String) {
    let lines = f.changes.entry(category).or_default();
    if !lines.contains(&line) {
        lines.push(line);
    }
}

fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algo, hex)) if hex.len() > 12 => format!("{algo}:{}", &hex[..12]),
        _ => digest.to_owned(),
    }
}

/// Markdown for `report.md`.
pub fn render(f: &Findings) -> String {
    let mut out = String::new();
    render_summary(&mut out, f);
    render_trigger(&mut out, f);
    render_decision(&mut out, f);
    render_timeline(&mut out, f);
    render_changes(&mut out, f);
    render_data_loss(&mut out, f);
    render_failures(&mut out, f);
    let _ = writeln!(
        out,
        "\n## Post-mortem (to fill in)\n\n### Root cause\n\n_What in the release caused the failure?_\n\n\
         ### Impact\n\n_Who was affected, for how long, and what data (see the data-loss window)?_\n\n\
         ### Lessons\n\n_What went well, what went badly, where we were lucky._\n\n\
         ### Preventive measures\n\n_What changes so this cannot recur; owners and dates._"
    );
    out
}

/// The title and the summary list: outcome, times, plan, transitions.
fn render_summary(out: &mut String, f: &Findings) {
    let _ = writeln!(out, "# Rollback report: {}\n", f.execution);
    let _ = writeln!(out, "- **Outcome:** {}", f.status);
    if let Some(started) = f.started {
        let _ = writeln!(out, "- **Started:** {}", stamp(started));
    }
    if let (Some(started), Some(ended)) = (f.started, f.ended) {
        let _ = writeln!(
            out,
            "- **Ended:** {} (after {})",
            stamp(ended),
            human_duration((ended - started).num_seconds())
        );
    }
    if let (Some(written), None) = (f.report_written, f.ended) {
        let after = f
            .started
            .map(|started| {
                format!(
                    " (after {})",
                    human_duration((written - started).num_seconds())
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- **Report written:** {}{after}, by the execution itself before its final notice: \
             the timeline ends there (`rollbackctl report` on the execution covers the end)",
            stamp(written)
        );
    }
    if let Some(source) = &f.plan_source {
        let _ = writeln!(out, "- **Plan:** `{}`", one_line(&source.to_string()));
    }
    let _ = writeln!(out, "- **State transitions:** {}\n", f.transitions);
}

fn render_trigger(out: &mut String, f: &Findings) {
    let _ = writeln!(out, "## Trigger\n");
    let Some(request) = &f.request else {
        let _ = writeln!(
            out,
            "(the execution input could not be read as a rollback request)\n"
        );
        return;
    };
    match &request.trigger {
        Trigger::Alarm(alarm) => {
            let _ = writeln!(
                out,
                "CloudWatch alarm `{}` went {} → {} at {}: {}",
                alarm.alarm_name,
                alarm.previous_state.as_str(),
                alarm.state.as_str(),
                stamp(alarm.state_changed_at),
                one_line(&alarm.state_reason)
            );
        }
        Trigger::Manual { requested_by } => {
            let _ = writeln!(
                out,
                "Manual start by {}.",
                requested_by.as_deref().unwrap_or("an operator (console)")
            );
        }
    }
    let _ = writeln!(
        out,
        "\nReason: {}. Requested scope: {} (`{}`). Mode: `{:?}`.\n",
        one_line(&request.reason),
        request.scope.label(),
        request.scope.as_str(),
        request.mode
    );
}

fn render_decision(out: &mut String, f: &Findings) {
    let _ = writeln!(out, "## Decision\n");
    match &f.decision {
        Some(d) => {
            let g = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
            let by =
                serde_json::from_value::<crate::contract::approval::ApprovalDecision>(d.clone())
                    .map(|decision| decision.approved_by())
                    .unwrap_or_else(|_| g("approver"));
            let _ = writeln!(
                out,
                "`{}` (scope `{}`) by {} at {}.\n",
                g("decision"),
                g("scope"),
                one_line(&by),
                g("decided_at")
            );
        }
        None => {
            let _ = writeln!(out, "No approval decision was recorded.\n");
        }
    }
}

fn render_timeline(out: &mut String, f: &Findings) {
    let _ = writeln!(out, "## Timeline\n");
    let _ = writeln!(out, "| Entered (UTC) | State | Duration | Visits |");
    let _ = writeln!(out, "|---|---|---|---|");
    for row in &f.timeline {
        let duration = row
            .exited
            .map(|x| human_duration((x - row.entered).num_seconds()))
            .unwrap_or_else(|| "(not exited)".to_owned());
        let _ = writeln!(
            out,
            "| {} | {} | {duration} | {} |",
            row.entered.format("%H:%M:%S"),
            row.state,
            row.visits
        );
    }
}

fn render_changes(out: &mut String, f: &Findings) {
    let _ = writeln!(out, "\n## Changes made\n");
    if f.changes.is_empty() {
        let _ = writeln!(out, "None recorded.");
    }
    for (category, lines) in &f.changes {
        let _ = writeln!(out, "**{category}**\n");
        for line in lines {
            let _ = writeln!(out, "- {line}");
        }
        let _ = writeln!(out);
    }
}

fn render_data_loss(out: &mut String, f: &Findings) {
    let _ = writeln!(out, "\n## Data-loss window\n");
    if f.data_loss.is_empty() {
        let _ = writeln!(out, "No database was restored.");
    }
    for line in &f.data_loss {
        let _ = writeln!(out, "- {line}");
    }
}

fn render_failures(out: &mut String, f: &Findings) {
    let _ = writeln!(out, "\n## Failures\n");
    if f.failures.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for (state, error, cause) in &f.failures {
        let _ = writeln!(out, "- in `{state}`: `{error}` — {}", one_line(cause));
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Keeps hostile or multi-line text from breaking the Markdown layout.
fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    // Raw HTML passes through Markdown renderers; a pipe would split a table cell.
    let flat = flat
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|");
    crate::validation::truncate(flat.trim(), 300)
}
