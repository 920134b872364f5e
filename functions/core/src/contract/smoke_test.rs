//! Contract of the `smoke-test` function: one action, `run`, that executes the plan's
//! `smoke` section (HTTP checks, SQL probes, CloudWatch alarms, CloudWatch Logs matches) and
//! reports every check.
//! A failed check is a result (`passed: false`); only configuration problems are errors
//! (`Rollback.SmokeConfig`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The actions the state machine may call on this function.
pub const ACTIONS: &[&str] = &["run"];

/// A check's reason is cut to this many characters (what the notice shows); a logs check's
/// to [`MAX_LOGS_REASON_CHARS`]. Reasons travel in the execution's state, 60 checks of them.
pub const MAX_REASON_CHARS: usize = 200;

/// Most matching lines a logs check quotes in its reason.
pub const MAX_LOG_SAMPLES: usize = 3;
/// Each quoted line is cut to this many characters (line breaks removed, secrets redacted).
pub const MAX_LOG_SAMPLE_CHARS: usize = 150;
/// A logs check's whole reason (count, pattern, groups, window and the quoted lines) is cut
/// to this many characters: it travels in the execution's state.
pub const MAX_LOGS_REASON_CHARS: usize = 600;

/// `{"action": "run", "plan": …, "request": …, "execution": …}`, optionally with
/// `"rollout_finished_at"` (`$.progress.rollout.at`): logs checks then never count events from
/// before the rollout finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum SmokeAction {
    /// Run every check of the plan's `smoke` section and report each one.
    Run {
        /// When the rollout finished; logs checks ignore events before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollout_finished_at: Option<DateTime<Utc>>,
    },
}

/// Which kind of check a [`CheckResult`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// An HTTP request against the service.
    Http,
    /// A SQL probe against a database.
    Sql,
    /// A CloudWatch alarm's state.
    Alarm,
    /// A CloudWatch Logs filter pattern that may match at most `max_matches` events.
    Logs,
}

impl CheckKind {
    /// The wire name (`http`, `sql`, `alarm`, `logs`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Sql => "sql",
            CheckKind::Alarm => "alarm",
            CheckKind::Logs => "logs",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// What kind of check this was.
    pub kind: CheckKind,
    /// The check's name from the plan (the alarm name for alarm checks).
    pub name: String,
    /// Whether the check passed.
    pub passed: bool,
    /// Wall time spent on this check, retries included.
    pub elapsed_ms: u64,
    /// Tries made, the first included (0: the smoke budget ran out before the check finished).
    pub attempts: u32,
    /// One line: what was seen (`200 OK in 12 ms`, `expected 1 row, got 0`, `1 row, first value
    /// 1,204 ≥ baseline 1,204 of pre-deploy snapshot …`, `state ALARM: …`,
    /// `2 matches of "ERROR" …: "first line" | "second line"`). A logs check quotes up to
    /// [`MAX_LOG_SAMPLES`] matching lines of [`MAX_LOG_SAMPLE_CHARS`] each, in at most
    /// [`MAX_LOGS_REASON_CHARS`].
    pub reason: String,
}

/// Output of `run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeReport {
    /// Every check passed (vacuously true when the plan lists none).
    pub passed: bool,
    /// Every check's outcome.
    pub checks: Vec<CheckResult>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// Wall time of the whole run.
    pub elapsed_ms: u64,
    /// `smoke.budget_seconds` ran out; checks not finished by then failed with that reason.
    pub budget_exhausted: bool,
    /// e.g. `3 of 4 checks passed; failed: api health (503 Service Unavailable)`.
    pub summary: String,
}
