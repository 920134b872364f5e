//! The `smoke-test` function: after a rollback, are the service's health endpoints, its
//! integrations, databases, alarms and application logs good again? Every check is reported
//! with its timing and a one-line reason; a failed check is a result, so the state machine
//! decides whether to retry or give up. Only configuration problems (unknown secret, alarm or
//! log group, unsupported engine) are errors.
//!
//! Deployed as `SmokeTestFunction`: invoked with `StepInput<SmokeAction>` JSON (`run`), it
//! answers a `SmokeReport` (`rollback_core::contract::smoke_test`) or a `Rollback.*` error. Tests:
//! `cargo test -p rollback-smoke-test` (moto via `make venv`, Debian PostgreSQL).

mod alarm;
mod baseline;
mod credentials;
mod http;
mod logs;
mod redact;
mod sql;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rollback_core::contract::smoke_test::{CheckKind, CheckResult, SmokeAction, SmokeReport};
use rollback_core::plan::Plan;
use rollback_core::validation::one_line;
use rollback_core::{RollbackError, StepInput};
use serde_json::Value;

pub use redact::redact;
pub use rollback_sql_probe::{DbSecret, SslMode};

/// The AWS clients smoke tests use.
#[derive(Clone, Debug)]
pub struct Clients {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// The snapshot tags SQL probes' baselines are read from.
    pub rds: aws_sdk_rds::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Clients {
        Clients {
            secrets: aws_sdk_secretsmanager::Client::new(config),
            rds: aws_sdk_rds::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
        }
    }
}

/// What a run knows besides the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// When the rollout finished (`$.progress.rollout.at`): logs checks start no earlier.
    pub rollout_finished_at: Option<DateTime<Utc>>,
    /// The execution: a database it restored from a snapshot is compared with that
    /// snapshot's baselines.
    pub execution: Option<String>,
    /// The release rolled back (`request.release`): otherwise, baselines come from its
    /// pre-deploy snapshot.
    pub release: Option<String>,
}

/// The Lambda entry point: parses the envelope and runs the action.
pub async fn handle(clients: &Clients, input: Value) -> Result<Value, RollbackError> {
    let input = StepInput::<SmokeAction>::parse(input)?;
    match input.action {
        SmokeAction::Run {
            rollout_finished_at,
        } => {
            let options = RunOptions {
                rollout_finished_at,
                execution: Some(input.execution.as_str().to_owned()),
                release: input.request.release.clone(),
            };
            let report = run_with(clients, &input.plan, options).await?;
            rollback_core::step::to_output(&report)
        }
    }
}

/// [`run_with`] without a rollout time.
pub async fn run(clients: &Clients, plan: &Plan) -> Result<SmokeReport, RollbackError> {
    run_with(clients, plan, RunOptions::default()).await
}

/// Runs every check of `plan.smoke` concurrently within `smoke.budget_seconds`.
pub async fn run_with(
    clients: &Clients,
    plan: &Plan,
    options: RunOptions,
) -> Result<SmokeReport, RollbackError> {
    let started_at = Utc::now();
    let start = Instant::now();
    let budget = Duration::from_secs(plan.smoke.budget_seconds);
    let deadline = tokio::time::Instant::now() + budget;
    let bound = |kind, name| Bound {
        deadline,
        budget,
        kind,
        name,
    };

    // Configuration first: a missing secret or alarm is an error, not a failed check. A log
    // group shows it is missing only when searched: that error comes after the run.
    let secrets = sql::load_secrets(&clients.secrets, &plan.smoke.sql).await?;
    let http_credentials = credentials::load_all(&clients.secrets, &plan.smoke.http).await?;
    let alarms = alarm::check_all(&clients.cloudwatch, &plan.smoke).await?;
    let mut baselines = baseline::load_all(
        &clients.rds,
        plan,
        options.execution.as_deref(),
        options.release.as_deref(),
    )
    .await;

    let http_client = http::client()?;
    let http_checks = plan.smoke.http.iter().map(|check| {
        let credentials = check
            .credentials_secret
            .as_ref()
            .and_then(|secret| http_credentials.get(secret));
        bound(CheckKind::Http, &check.name).run(infallible(http::run(
            &http_client,
            check,
            credentials,
            deadline,
        )))
    });
    let sql_checks = plan.smoke.sql.iter().enumerate().map(|(i, probe)| {
        let target = secrets
            .get(&probe.secret_arn)
            .cloned()
            .expect("load_secrets loads every probe's secret");
        let baseline = baselines.remove(&i);
        bound(CheckKind::Sql, &probe.name).run(infallible(sql::run(probe, target, baseline)))
    });
    let logs_checks = plan.smoke.logs.iter().map(|check| {
        let window = logs::Window::for_check(check, started_at, options.rollout_finished_at);
        bound(CheckKind::Logs, &check.name).run(logs::run(&clients.logs, check, window))
    });
    let (http_results, sql_results, logs_results) = futures::join!(
        futures::future::join_all(http_checks),
        futures::future::join_all(sql_checks),
        futures::future::join_all(logs_checks)
    );
    let mut checks = Vec::new();
    for result in http_results
        .into_iter()
        .chain(sql_results)
        .chain(logs_results)
    {
        checks.push(result?);
    }
    checks.extend(alarms);
    Ok(report(checks, started_at, start, deadline))
}

fn report(
    checks: Vec<CheckResult>,
    started_at: DateTime<Utc>,
    start: Instant,
    deadline: tokio::time::Instant,
) -> SmokeReport {
    let budget_exhausted = tokio::time::Instant::now() >= deadline;
    let passed = checks.iter().all(|c| c.passed);
    let summary = summarize(&checks);
    tracing::info!(passed, checks = checks.len(), %summary, "smoke run finished");
    SmokeReport {
        passed,
        checks,
        started_at,
        elapsed_ms: millis(start.elapsed()),
        budget_exhausted,
        summary,
    }
}

/// A check whose failures are all results (HTTP, SQL).
async fn infallible(
    check: impl Future<Output = CheckResult>,
) -> Result<CheckResult, RollbackError> {
    Ok(check.await)
}

/// One check under the overall deadline.
struct Bound<'a> {
    deadline: tokio::time::Instant,
    budget: Duration,
    kind: CheckKind,
    name: &'a str,
}

impl Bound<'_> {
    /// A check that did not finish before the overall deadline fails with that reason; a
    /// configuration error stays an error.
    async fn run(
        self,
        check: impl Future<Output = Result<CheckResult, RollbackError>>,
    ) -> Result<CheckResult, RollbackError> {
        let start = Instant::now();
        match tokio::time::timeout_at(self.deadline, check).await {
            Ok(result) => result.map(bounded_reason),
            Err(_) => Ok(CheckResult {
                kind: self.kind,
                name: self.name.to_owned(),
                passed: false,
                elapsed_ms: millis(start.elapsed()),
                attempts: 0,
                reason: format!(
                    "not finished within the smoke budget of {} s",
                    self.budget.as_secs()
                ),
            }),
        }
    }
}

/// The check with its reason cut to what the notice shows (the state carries every reason).
fn bounded_reason(mut check: CheckResult) -> CheckResult {
    let max = match check.kind {
        CheckKind::Logs => rollback_core::contract::smoke_test::MAX_LOGS_REASON_CHARS,
        _ => rollback_core::contract::smoke_test::MAX_REASON_CHARS,
    };
    if check.reason.chars().count() > max {
        check.reason = one_line(&check.reason, max);
    }
    check
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
