//! Logs checks: CloudWatch Logs FilterLogEvents with the plan's filter pattern over its log
//! groups, from the window's start to the smoke run's start. The search is bounded in pages and
//! time, and stops once the count is over `max_matches` (one more match cannot change the
//! verdict). The reason gives the count and quotes the first few matching lines, flattened,
//! redacted and cut. A log group that does not exist, or that the role may not read, is a
//! configuration error naming it.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rollback_core::RollbackError;
use rollback_core::contract::smoke_test::{
    CheckKind, CheckResult, MAX_LOG_SAMPLE_CHARS, MAX_LOG_SAMPLES, MAX_LOGS_REASON_CHARS,
};
use rollback_core::plan::LogsCheck;

use crate::redact::redact;
use crate::{millis, one_line};

/// FilterLogEvents calls one check may make over all its groups. CloudWatch Logs may answer
/// with empty pages while it scans, so the count of pages, not of events, bounds the search.
pub const MAX_PAGES: u32 = 20;
/// FilterLogEvents' own maximum `limit`.
const MAX_PAGE_EVENTS: u32 = 10_000;

/// The time range one check searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// The last `window_minutes` before the run started, never before the rollout finished:
    /// events the bad release logged before it was replaced do not count.
    pub fn for_check(
        check: &LogsCheck,
        run_started: DateTime<Utc>,
        rollout_finished_at: Option<DateTime<Utc>>,
    ) -> Window {
        let lookback = run_started - chrono::Duration::minutes(i64::from(check.window_minutes));
        let start = rollout_finished_at
            .map_or(lookback, |finished| finished.max(lookback))
            .min(run_started);
        Window {
            start,
            end: run_started,
        }
    }
}

/// Why a logs check cannot run as configured. The state machine does not retry these.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogsError {
    #[error(
        "logs check {check:?}: log group {group} does not exist in this account and region; \
         fix smoke.logs[].log_groups in the plan (FilterLogEvents: {message})"
    )]
    NoSuchGroup {
        check: String,
        group: String,
        message: String,
    },
    #[error(
        "logs check {check:?}: the function may not read log group {group} ({message}); the \
         smoke-test role reads the groups under the stack's SmokeLogGroupPrefix (default \
         /aws/containerinsights/<ClusterName>/application)"
    )]
    AccessDenied {
        check: String,
        group: String,
        message: String,
    },
}

impl From<LogsError> for RollbackError {
    fn from(e: LogsError) -> Self {
        RollbackError::SmokeConfig(e.to_string())
    }
}

/// What the search found.
#[derive(Debug, Default)]
struct Found {
    matches: u64,
    pages: u32,
    samples: Vec<String>,
    /// Stopped at `max_matches + 1`: there may be more.
    stopped_early: bool,
    /// Ran out of pages before the end.
    incomplete: bool,
}

pub(crate) async fn run(
    client: &aws_sdk_cloudwatchlogs::Client,
    check: &LogsCheck,
    window: Window,
) -> Result<CheckResult, RollbackError> {
    let start = Instant::now();
    let timeout = Duration::from_millis(check.timeout_ms);
    let outcome = tokio::time::timeout(timeout, search(client, check, window)).await;
    let (passed, reason) = match outcome {
        Err(_) => (
            false,
            format!(
                "the search did not finish within {} ms; narrow window_minutes or log_groups, \
                 or raise timeout_ms",
                check.timeout_ms
            ),
        ),
        Ok(Err(SearchError::Config(e))) => return Err(e.into()),
        // Throttling or a transient failure: a failed check, re-run by the state machine.
        Ok(Err(SearchError::Aws(e))) => (false, one_line(&e.to_string(), 300)),
        Ok(Ok(found)) => judge(check, window, &found),
    };
    let reason = one_line(&reason, MAX_LOGS_REASON_CHARS);
    Ok(CheckResult {
        kind: CheckKind::Logs,
        name: check.name.clone(),
        passed,
        elapsed_ms: millis(start.elapsed()),
        attempts: 1,
        reason,
    })
}

enum SearchError {
    Config(LogsError),
    Aws(RollbackError),
}

async fn search(
    client: &aws_sdk_cloudwatchlogs::Client,
    check: &LogsCheck,
    window: Window,
) -> Result<Found, SearchError> {
    let threshold = u64::from(check.max_matches);
    let mut found = Found::default();
    for group in &check.log_groups {
        let mut token: Option<String> = None;
        loop {
            if found.pages >= MAX_PAGES {
                found.incomplete = true;
                return Ok(found);
            }
            // Ask for no more than what can still change the verdict.
            let wanted = (threshold + 1 - found.matches).min(u64::from(MAX_PAGE_EVENTS));
            let page = client
                .filter_log_events()
                .log_group_name(group)
                .filter_pattern(&check.filter_pattern)
                .start_time(window.start.timestamp_millis())
                .end_time(window.end.timestamp_millis())
                .limit(i32::try_from(wanted).unwrap_or(i32::MAX))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    classify(check, group, RollbackError::from_sdk("FilterLogEvents", e))
                })?;
            found.pages += 1;
            for event in page.events() {
                found.matches += 1;
                if found.samples.len() < MAX_LOG_SAMPLES {
                    found
                        .samples
                        .push(sample(event.message().unwrap_or_default()));
                }
            }
            if found.matches > threshold {
                found.stopped_early = true;
                return Ok(found);
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
    }
    Ok(found)
}

/// A group that is missing or not readable is the plan's or the stack's problem, not a
/// failing service.
fn classify(check: &LogsCheck, group: &str, e: RollbackError) -> SearchError {
    let config = match &e {
        RollbackError::Aws { code, message, .. } if code == "ResourceNotFoundException" => {
            Some(LogsError::NoSuchGroup {
                check: check.name.clone(),
                group: group.to_owned(),
                message: one_line(message, 160),
            })
        }
        RollbackError::Aws { code, message, .. } if code.starts_with("AccessDenied") => {
            Some(LogsError::AccessDenied {
                check: check.name.clone(),
                group: group.to_owned(),
                message: one_line(message, 200),
            })
        }
        _ => None,
    };
    match config {
        Some(config) => SearchError::Config(config),
        None => SearchError::Aws(e),
    }
}

fn judge(check: &LogsCheck, window: Window, found: &Found) -> (bool, String) {
    let noun = if found.matches == 1 {
        "match"
    } else {
        "matches"
    };
    let count = if found.stopped_early {
        format!("at least {} {noun}", found.matches)
    } else {
        format!("{} {noun}", found.matches)
    };
    let groups = match check.log_groups.as_slice() {
        [one] => one_line(one, 120),
        many => format!("{} log groups", many.len()),
    };
    let what = format!(
        "{count} of {:?} in {groups} since {} (at most {} allowed)",
        one_line(&check.filter_pattern, 60),
        window.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        check.max_matches
    );
    let quoted = if found.samples.is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = found.samples.iter().map(|s| format!("{s:?}")).collect();
        format!(": {}", lines.join(" | "))
    };
    if found.incomplete {
        let why = format!(
            "searched {} pages without reaching the end; {what}; narrow window_minutes or \
             log_groups{quoted}",
            found.pages
        );
        return (false, why);
    }
    (
        found.matches <= u64::from(check.max_matches),
        format!("{what}{quoted}"),
    )
}

/// One matching line as quoted: flattened, redacted, cut. Redaction runs before the cut, so a
/// secret cut in half is not left half-visible.
fn sample(message: &str) -> String {
    // Bounds the work on a large event (up to 256 KiB); the sample keeps far less.
    let head: String = message.chars().take(4 * MAX_LOG_SAMPLE_CHARS).collect();
    one_line(&redact(&one_line(&head, usize::MAX)), MAX_LOG_SAMPLE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn check(window_minutes: u32) -> LogsCheck {
        serde_json::from_value(serde_json::json!({
            "name": "errors", "log_groups": ["/g"], "filter_pattern": "ERROR",
            "window_minutes": window_minutes
        }))
        .unwrap()
    }

    #[test]
    fn the_window_never_starts_before_the_rollout_finished() {
        let run = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        let w = Window::for_check(&check(15), run, None);
        assert_eq!((w.start, w.end), (run - chrono::Duration::minutes(15), run));
        let rollout = run - chrono::Duration::minutes(5);
        assert_eq!(
            Window::for_check(&check(15), run, Some(rollout)).start,
            rollout
        );
        let long_ago = run - chrono::Duration::hours(3);
        assert_eq!(
            Window::for_check(&check(15), run, Some(long_ago)).start,
            run - chrono::Duration::minutes(15)
        );
        // A rollout time after the run's start (clock skew) leaves an empty window.
        let later = run + chrono::Duration::minutes(1);
        assert_eq!(Window::for_check(&check(15), run, Some(later)).start, run);
    }

    #[test]
    fn a_search_out_of_pages_fails_even_under_the_threshold() {
        let run = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        let mut c = check(15);
        c.max_matches = 5;
        let window = Window::for_check(&c, run, None);
        let found = Found {
            matches: 2,
            pages: MAX_PAGES,
            samples: vec!["ERROR a".into()],
            stopped_early: false,
            incomplete: true,
        };
        let (passed, reason) = judge(&c, window, &found);
        assert!(!passed);
        assert_eq!(
            reason,
            "searched 20 pages without reaching the end; 2 matches of \"ERROR\" in /g since \
             2025-01-01T11:45:00Z (at most 5 allowed); narrow window_minutes or log_groups: \
             \"ERROR a\""
        );
        let complete = Found {
            incomplete: false,
            ..found
        };
        assert!(judge(&c, window, &complete).0);
    }

    #[test]
    fn samples_are_one_short_redacted_line() {
        let long = format!(
            "ERROR login failed\n\tpassword=hunter2 {} tail",
            "x".repeat(500)
        );
        let s = sample(&long);
        assert!(
            s.starts_with("ERROR login failed password=[redacted] "),
            "{s}"
        );
        assert_eq!(s.chars().count(), MAX_LOG_SAMPLE_CHARS);
        assert!(!s.contains('\n') && !s.contains("hunter2"));
    }
}
