//! The `smoke-test` function: after a rollback, are the service's health endpoints, databases
//! and alarms good again? Every check is reported with its timing and a one-line reason; a
//! failed check is a result, so the state machine decides whether to retry or give up. Only
//! configuration problems (unknown secret or alarm, unsupported engine) are errors.

mod alarm;
mod http;
mod sql;

use std::time::{Duration, Instant};

use chrono::Utc;
use rollback_core::contract::smoke::{CheckKind, CheckResult, SmokeAction, SmokeReport};
use rollback_core::plan::Plan;
use rollback_core::{RollbackError, StepInput};
use serde_json::Value;

pub use sql::{DbSecret, SslMode};

/// The AWS clients smoke tests use.
#[derive(Clone, Debug)]
pub struct Clients {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Clients {
        Clients {
            secrets: aws_sdk_secretsmanager::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
        }
    }
}

/// The Lambda entry point: parses the envelope and runs the action.
pub async fn handle(clients: &Clients, input: Value) -> Result<Value, RollbackError> {
    let input = StepInput::<SmokeAction>::parse(input)?;
    match input.action {
        SmokeAction::Run => {
            let report = run(clients, &input.plan).await?;
            rollback_core::error::output(&report)
        }
    }
}

/// Runs every check of `plan.smoke` concurrently within `smoke.budget_seconds`.
pub async fn run(clients: &Clients, plan: &Plan) -> Result<SmokeReport, RollbackError> {
    let started_at = Utc::now();
    let start = Instant::now();
    let budget = Duration::from_secs(plan.smoke.budget_seconds);
    let deadline = tokio::time::Instant::now() + budget;

    // Configuration first: a missing secret or alarm is an error, not a failed check.
    let secrets = sql::load_secrets(&clients.secrets, &plan.smoke.sql).await?;
    let alarms = alarm::check_all(&clients.cloudwatch, &plan.smoke).await?;

    let http_client = http::client()?;
    let http_checks = plan.smoke.http.iter().map(|check| {
        bounded(
            deadline,
            budget,
            CheckKind::Http,
            &check.name,
            http::run(&http_client, check, deadline),
        )
    });
    let sql_checks = plan.smoke.sql.iter().map(|probe| {
        let secret = secrets
            .get(&probe.secret_arn)
            .cloned()
            .expect("load_secrets loads every probe's secret");
        bounded(
            deadline,
            budget,
            CheckKind::Sql,
            &probe.name,
            sql::run(probe, secret),
        )
    });
    let (mut checks, sql_results) = futures::join!(
        futures::future::join_all(http_checks),
        futures::future::join_all(sql_checks)
    );
    checks.extend(sql_results);
    checks.extend(alarms);

    let budget_exhausted = tokio::time::Instant::now() >= deadline;
    let passed = checks.iter().all(|c| c.passed);
    let summary = summarize(&checks);
    tracing::info!(passed, checks = checks.len(), %summary, "smoke run finished");
    Ok(SmokeReport {
        passed,
        checks,
        started_at,
        elapsed_ms: millis(start.elapsed()),
        budget_exhausted,
        summary,
    })
}

/// A check that did not finish before the overall deadline fails with that reason.
async fn bounded(
    deadline: tokio::time::Instant,
    budget: Duration,
    kind: CheckKind,
    name: &str,
    check: impl Future<Output = CheckResult>,
) -> CheckResult {
    let start = Instant::now();
    match tokio::time::timeout_at(deadline, check).await {
        Ok(result) => result,
        Err(_) => CheckResult {
            kind,
            name: name.to_owned(),
            passed: false,
            elapsed_ms: millis(start.elapsed()),
            attempts: 0,
            reason: format!(
                "not finished within the smoke budget of {} s",
                budget.as_secs()
            ),
        },
    }
}

fn summarize(checks: &[CheckResult]) -> String {
    if checks.is_empty() {
        return "no smoke checks configured".to_owned();
    }
    let passed = checks.iter().filter(|c| c.passed).count();
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} ({})", c.name, one_line(&c.reason, 80)))
        .collect();
    if failed.is_empty() {
        format!("all {} checks passed", checks.len())
    } else {
        format!(
            "{passed} of {} checks passed; failed: {}",
            checks.len(),
            failed.join(", ")
        )
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Control characters out, length bounded: reasons quote what remote systems said.
pub(crate) fn one_line(text: &str, max_chars: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() <= max_chars {
        clean
    } else {
        let mut out: String = clean.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
