//! Contract of the `smoke-test` function: one action, `run`, that executes the plan's
//! `smoke` section (HTTP checks, SQL probes, CloudWatch alarms) and reports every check.
//! A failed check is a result (`passed: false`); only configuration problems are errors
//! (`Rollback.SmokeConfig`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const ACTIONS: &[&str] = &["run"];

/// `{"action": "run", "plan": …, "request": …, "execution": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum SmokeAction {
    Run,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    Http,
    Sql,
    Alarm,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub kind: CheckKind,
    /// The check's name from the plan (the alarm name for alarm checks).
    pub name: String,
    pub passed: bool,
    /// Wall time spent on this check, retries included.
    pub elapsed_ms: u64,
    pub attempts: u32,
    /// One line: what was seen (`200 OK in 12 ms`, `expected 1 row, got 0`, `state ALARM: …`).
    pub reason: String,
}

/// Output of `run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeReport {
    /// Every check passed (vacuously true when the plan lists none).
    pub passed: bool,
    pub checks: Vec<CheckResult>,
    pub started_at: DateTime<Utc>,
    pub elapsed_ms: u64,
    /// `smoke.budget_seconds` ran out; checks not finished by then failed with that reason.
    pub budget_exhausted: bool,
    /// e.g. `3 of 4 checks passed; failed: api health (503 Service Unavailable)`.
    pub summary: String,
}
