//! Prints an execution's progress from its history, as it happens: each state as it enters and
//! leaves it, with virtual (engine clock) and real timings; polling loops fold into a progress line.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rollback_core::resolved::human_duration;

use crate::history::{Event, History};

pub struct Follower {
    execution_arn: String,
    seen: usize,
    started: Option<DateTime<Utc>>,
    entered: HashMap<String, (DateTime<Utc>, Instant)>,
    visits: HashMap<String, u32>,
    /// Upper bound of polls per wait loop, for the progress bar.
    max_polls: u32,
    tty: bool,
    quiet: bool,
    /// A `\r` progress line is on screen and needs a newline before the next line.
    progress_open: bool,
    pub transitions: usize,
    pub events: Vec<Event>,
}

impl Follower {
    pub fn new(execution_arn: &str, max_polls: u32, quiet: bool) -> Self {
        Follower {
            execution_arn: execution_arn.to_owned(),
            seen: 0,
            started: None,
            entered: HashMap::new(),
            visits: HashMap::new(),
            max_polls: max_polls.max(1),
            tty: std::io::stdout().is_terminal(),
            quiet,
            progress_open: false,
            transitions: 0,
            events: Vec::new(),
        }
    }

    /// Fetches the history and prints what is new. Returns the new events.
    pub async fn poll(&mut self, sfn: &aws_sdk_sfn::Client) -> Result<Vec<Event>> {
        let events = crate::ops::history(sfn, &self.execution_arn)
            .await
            .context("following the execution")?;
        let history = History::from_sdk(&events);
        let new: Vec<Event> = history.events.into_iter().skip(self.seen).collect();
        self.seen += new.len();
        for event in &new {
            self.print(event);
        }
        self.events.extend(new.iter().cloned());
        Ok(new)
    }

    fn offset(&self, t: DateTime<Utc>) -> String {
        let secs = self
            .started
            .map(|s| (t - s).num_seconds())
            .unwrap_or_default();
        format!("T+{:>5}", format!("{}:{:02}", secs / 60, secs % 60))
    }

    fn print(&mut self, event: &Event) {
        if event.kind.ends_with("StateEntered") {
            self.transitions += 1;
        }
        if self.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        let repeat_visit = event.kind.ends_with("StateEntered")
            && event
                .detail_str("name")
                .filter(|n| in_wait_loop(n))
                .and_then(|n| self.visits.get(n))
                .is_some();
        if self.progress_open && !repeat_visit {
            let _ = writeln!(out);
            self.progress_open = false;
        }
        match event.kind.as_str() {
            "ExecutionStarted" => {
                self.started = Some(event.timestamp);
                let _ = writeln!(out, "{} ● execution started", self.offset(event.timestamp));
            }
            kind if kind.ends_with("StateEntered") => self.state_entered(&mut out, event),
            kind if kind.ends_with("StateExited") => self.state_exited(&mut out, event),
            "TaskFailed" | "LambdaFunctionFailed" | "TaskTimedOut" => {
                let _ = writeln!(
                    out,
                    "{}   ✖ {}: {}",
                    self.offset(event.timestamp),
                    event.detail_str("error").unwrap_or("error"),
                    event.detail_str("cause").unwrap_or_default()
                );
            }
            "ExecutionSucceeded" => {
                let _ = writeln!(
                    out,
                    "{} ● execution succeeded",
                    self.offset(event.timestamp)
                );
            }
            "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut" => {
                let _ = writeln!(
                    out,
                    "{} ● execution {}: {} {}",
                    self.offset(event.timestamp),
                    event.kind.trim_start_matches("Execution").to_lowercase(),
                    event.detail_str("error").unwrap_or_default(),
                    event.detail_str("cause").unwrap_or_default()
                );
            }
            _ => {}
        }
    }

    /// A state entered: its line on the first visit (or on every visit outside a polling
    /// loop), else the loop's progress; and the retry after a failed smoke run.
    fn state_entered(&mut self, out: &mut impl Write, event: &Event) {
        let name = event.detail_str("name").unwrap_or("?").to_owned();
        let visit = {
            let count = self.visits.entry(name.clone()).or_default();
            *count += 1;
            *count
        };
        self.entered
            .insert(name.clone(), (event.timestamp, Instant::now()));
        if visit == 1 || !in_wait_loop(&name) {
            let again = if visit > 1 {
                format!(" (visit {visit})")
            } else {
                String::new()
            };
            let _ = writeln!(out, "{} ▶ {name}{again}", self.offset(event.timestamp));
        } else {
            self.progress(out, &name, visit);
        }
        // The wait after a failed smoke run (its input carries that run's report).
        if let Some(wait) = event
            .detail_json("input")
            .filter(|input| {
                name.starts_with("Wait ")
                    && input.pointer("/smoke/passed") == Some(&serde_json::Value::Bool(false))
            })
            .and_then(|input| input.pointer("/smoke_retry/wait").and_then(|w| w.as_u64()))
        {
            let _ = writeln!(out, "        ↻ re-running the smoke tests in {wait} s");
        }
    }

    /// A state exited: its engine-clock and real durations (not for a polling loop's later
    /// visits), and a smoke run's failures.
    fn state_exited(&self, out: &mut impl Write, event: &Event) {
        let name = event.detail_str("name").unwrap_or("?").to_owned();
        let visit = self.visits.get(&name).copied().unwrap_or(1);
        if let Some((t, real)) = self.entered.get(&name)
            && (visit == 1 || !in_wait_loop(&name))
        {
            let _ = writeln!(
                out,
                "{} ✔ {name} ({} on the engine clock, {} ms real)",
                self.offset(event.timestamp),
                human_duration((event.timestamp - *t).num_seconds()),
                real.elapsed().as_millis()
            );
        }
        // The smoke run's own exit (later states carry its result too).
        if let Some(output) = event
            .detail_json("output")
            .filter(|_| event.kind == "TaskStateExited")
        {
            smoke_failures(out, &output);
        }
    }

    /// A polling loop's later visits: a bar on a terminal, every tenth visit in a log.
    fn progress(&mut self, out: &mut impl Write, name: &str, visit: u32) {
        let width = 30usize;
        let filled = ((visit as usize * width) / self.max_polls as usize).min(width);
        let bar = format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled));
        if self.tty {
            let _ = write!(
                out,
                "\r        ⏳ {name} {bar} poll {visit}/{}   ",
                self.max_polls
            );
            let _ = out.flush();
            self.progress_open = true;
        } else if visit.is_multiple_of(10) {
            let _ = writeln!(
                out,
                "        ⏳ {name} {bar} poll {visit}/{}",
                self.max_polls
            );
        }
    }
}

/// States of a status-polling loop (check, decide, count, wait): their later visits fold into
/// one progress line. Every other state prints each visit (a smoke re-run shows twice).
fn in_wait_loop(name: &str) -> bool {
    ["Check ", "Count ", "Wait "]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || name.ends_with('?')
}

/// After a smoke run that failed: the checks that failed and why, before the re-run.
fn smoke_failures(out: &mut impl Write, output: &serde_json::Value) {
    let Some(report) = output
        .get("smoke")
        .filter(|s| s.get("passed") == Some(&serde_json::Value::Bool(false)))
        .and_then(|s| {
            serde_json::from_value::<rollback_core::contract::smoke_test::SmokeReport>(s.clone())
                .ok()
        })
    else {
        return;
    };
    for check in report.checks.iter().filter(|c| !c.passed) {
        let _ = writeln!(out, "        ✖ {}: {}", check.name, check.reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_polling_states_fold_their_visits() {
        for name in [
            "Check rollout",
            "Rollout finished?",
            "Count rollout poll",
            "Wait for rollout",
        ] {
            assert!(in_wait_loop(name), "{name}");
        }
        for name in ["Run smoke tests", "Swap databases", "Put databases back"] {
            assert!(!in_wait_loop(name), "{name}");
        }
    }

    #[test]
    fn a_failed_smoke_run_says_which_checks_failed() {
        let output = serde_json::json!({"smoke": {
            "passed": false, "started_at": "2026-11-27T01:00:00Z", "elapsed_ms": 12,
            "budget_exhausted": false, "summary": "1 of 2 checks passed",
            "checks": [
                {"kind": "http", "name": "api health", "passed": true, "elapsed_ms": 3, "attempts": 1, "reason": "200 OK"},
                {"kind": "alarm", "name": "mint-replica-5xx", "passed": false, "elapsed_ms": 2, "attempts": 1, "reason": "state ALARM"}
            ]}, "smoke_retry": {"count": 0}});
        let mut out = Vec::new();
        smoke_failures(&mut out, &output);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "        ✖ mint-replica-5xx: state ALARM\n");
        let mut out = Vec::new();
        smoke_failures(&mut out, &serde_json::json!({"smoke": {"passed": true}}));
        assert!(out.is_empty());
    }
}
