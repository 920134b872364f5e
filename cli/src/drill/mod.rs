//! `rollbackctl drill` (what `make drill` runs): the real definition and the real function code
//! on this machine, from alarm to report, against moto, a local Kubernetes API, the local
//! engine's Step Functions endpoint and the approval page.

mod alarm;
mod approver;
pub mod channels;
mod demo_app;
mod follow;
mod functions;
pub mod inbox;
pub mod latency;
pub mod mobile;
mod s3_report;
mod seed;
mod stack;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::Value;

pub use functions::{FUNCTIONS, INJECTED_ERROR, substitutions};
pub use latency::LatencyModel;
pub use s3_report::S3Report;
pub use seed::REPORT_BUCKET;
pub use stack::{LocalStack, STACK_NAME, stack_values, template_path};

/// The drill ran, but a function made calls its role in `infra/template.yaml` does not allow
/// (each was refused as AWS refuses it). Displays one line per distinct call:
/// "function restore called rds:ModifyDBInstance on arn:…, which its role does not allow
/// (template.yaml, policy …)".
#[derive(Debug)]
pub struct IamViolations {
    pub violations: Vec<rollback_fault_proxy::Violation>,
    pub report: Box<DrillReport>,
}

impl std::fmt::Display for IamViolations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.violations.iter().map(|v| v.to_string()).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for IamViolations {}

/// How the drill's plan databases are restored (`--restore`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Restore {
    /// From the pre-deploy snapshots the seed takes (the plan's default).
    #[default]
    Snapshot,
    /// `"restore": "point-in-time"` for every plan database: RDS restores them to the cutoff.
    PointInTime,
}

impl Restore {
    pub fn method(self) -> rollback_core::plan::RestoreMethod {
        match self {
            Restore::Snapshot => rollback_core::plan::RestoreMethod::Snapshot,
            Restore::PointInTime => rollback_core::plan::RestoreMethod::PointInTime,
        }
    }
}

/// How the approval is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Approve {
    /// Follow the emailed approve link with the widest scope (app + database + infrastructure)
    /// like a person: GET the page, POST the form.
    Auto,
    /// Follow the "approve (app only)" link.
    AppOnly,
    /// Print the links and wait for the operator to open one.
    Manual,
    /// Follow the "reject" link.
    Reject,
}

#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub approve: Approve,
    /// Inject a failure into the task of this state.
    pub fail_at: Option<String>,
    pub output_dir: PathBuf,
    /// Real-time bound on the whole drill.
    pub timeout: Duration,
    /// Print nothing (fault and race suites run many drills).
    pub quiet: bool,
    /// Start a local PostgreSQL for the smoke test's SQL probe (when the machine has one).
    pub postgres: bool,
    /// Route the functions' AWS calls through the fault proxy with this schedule.
    pub faults: Option<rollback_fault_proxy::FaultSchedule>,
    /// Give operations realistic durations on the engine's virtual clock (the MTTR model).
    pub latency: Option<LatencyModel>,
    /// Crash-in-the-middle: stop the execution once this many states have been entered, then
    /// start it again with the same input (as an operator would after the process died).
    pub crash_at_transition: Option<usize>,
    /// How the plan's databases are restored.
    pub restore: Restore,
    /// How many people approve the database rollback (the plan's `database_approvers`); the
    /// drill approves as that many people, one after the other.
    pub approvers: u8,
    /// Approvers sign in at a local identity provider (OIDC) instead of typing an address.
    pub sign_in: bool,
    /// The template text whose function roles the IAM check enforces, instead of
    /// `infra/template.yaml` (tests remove a permission to see the drill fail).
    pub iam_template: Option<String>,
    /// The plan pre-approves the drill's app-only rollback ([`PRE_APPROVAL_GRACE_SECONDS`]).
    pub pre_approved: bool,
}

/// The drill's pre-approval policy's grace period (`--pre-approved`).
pub const PRE_APPROVAL_GRACE_SECONDS: u32 = 60;

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            approve: Approve::Auto,
            fail_at: None,
            output_dir: PathBuf::from("drill-output"),
            timeout: Duration::from_secs(900),
            quiet: false,
            postgres: true,
            faults: None,
            latency: None,
            crash_at_transition: None,
            restore: Restore::Snapshot,
            approvers: 1,
            sign_in: false,
            iam_template: None,
            pre_approved: false,
        }
    }
}

/// How the drill ended. The exit codes are documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The service was rolled back and the smoke tests pass.
    RolledBack,
    /// The approver rejected; nothing was changed.
    Rejected,
    /// The execution took the contingency path (or ended otherwise without a rollback).
    Failed,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::RolledBack => 0,
            Outcome::Failed => 1,
            Outcome::Rejected => 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DrillReport {
    pub outcome: Outcome,
    pub execution_arn: String,
    pub status: String,
    pub error: Option<String>,
    pub transitions: usize,
    pub setup: Duration,
    pub wall: Duration,
    pub engine_seconds: i64,
    pub emails: Vec<inbox::Mail>,
    pub history: crate::history::History,
    pub report_path: PathBuf,
    pub history_path: PathBuf,
    /// The report the execution wrote to the report bucket (moto's S3) before its final
    /// notice, checked against the drill's; or why it is not there or does not check out.
    pub s3_report: Result<S3Report, String>,
}

macro_rules! say {
    ($options:expr, $($arg:tt)*) => {
        if !$options.quiet {
            println!($($arg)*);
        }
    };
}

/// A prepared drill: the local stack is up and seeded; [`Drill::execute`] runs the rollback.
pub struct Drill {
    pub stack: LocalStack,
    options: DrillOptions,
    setup: Duration,
}

/// Prepares and runs a drill, printing its progress.
pub async fn run(options: DrillOptions) -> Result<DrillReport> {
    let drill = Drill::prepare(options).await?;
    drill.execute().await
}

/// The execution a drill follows (a rehearsed crash replaces it with its restart), and the mail
/// it has read.
struct Run {
    execution_arn: String,
    follower: follow::Follower,
    inbox: inbox::Inbox,
    emails: Vec<inbox::Mail>,
    /// The current execution's approval request (or pre-approval notice) was answered.
    decided: bool,
}

impl Drill {
    pub async fn prepare(options: DrillOptions) -> Result<Drill> {
        let started = Instant::now();
        say!(
            options,
            "rollback drill: starting the local stack (moto, Kubernetes API, Step Functions engine, approval page)"
        );
        let stack = LocalStack::start(&options).await?;
        say!(
            options,
            "  moto {}  kube {}  engine {}  approval {}  app {}",
            stack.moto.endpoint(),
            stack.kube.url(),
            stack.engine_url,
            stack.approval_url,
            stack.app.url
        );
        if stack.seeded.sql_probe {
            say!(
                options,
                "  PostgreSQL {} plays the database behind the SQL probe",
                stack.postgres_addr.as_deref().unwrap_or("?")
            );
        } else {
            say!(
                options,
                "  no local PostgreSQL: the smoke test runs without its SQL probe"
            );
        }
        say!(
            options,
            "  DocumentDB: moto rejects engine `docdb`, so an aurora-postgresql cluster (mint-replica-docs) stands in for it"
        );
        say!(
            options,
            "  the plan is stored in SSM as {} (as `rollbackctl plan push` stores it); the plan function reads it when the execution starts",
            stack.seeded.plan_source
        );
        if let Some(proxy) = &stack.fault_proxy {
            say!(
                options,
                "  the functions reach moto through the proxy {} (and the engine through {}), which checks each call against the function's role in infra/template.yaml",
                proxy.url(),
                stack.engine_proxy.url()
            );
        }
        let setup = started.elapsed();
        say!(options, "  setup took {} ms", setup.as_millis());
        Ok(Drill {
            stack,
            options,
            setup,
        })
    }

    pub async fn execute(&self) -> Result<DrillReport> {
        let (options, stack) = (&self.options, &self.stack);
        let started = Instant::now();
        let health_before = stack.health().await;
        say!(
            options,
            "\nthe bad release {} is live: {} answers {health_before}",
            seed::RELEASE_BAD,
            stack.app.url
        );

        // The alarm fires; EventBridge delivers its state change to the state machine.
        let event = stack.fire_alarm(options.quiet).await?;
        let execution_arn =
            crate::ops::start(&stack.sfn, &stack.state_machine_arn, event.clone(), None).await?;
        say!(options, "execution {execution_arn}\n");
        let mut run = Run {
            follower: self.follower(&execution_arn),
            execution_arn,
            inbox: inbox::Inbox::new(stack.sqs(), &stack.seeded.queue_url),
            emails: Vec::new(),
            decided: false,
        };
        let final_status = self.follow(&mut run, &event).await?;
        let report = self.wrap_up(run, final_status, started).await?;
        if !options.quiet {
            self.print_summary(&report, &health_before).await;
        }
        self.check_iam(report)
    }

    fn follower(&self, execution_arn: &str) -> follow::Follower {
        follow::Follower::new(
            execution_arn,
            self.stack.seeded.plan.polling.max_polls(),
            self.options.quiet,
        )
    }

    /// Follows the execution to its end, answering its mail, and rehearses the crash when
    /// `--crash-at` asks for one. Returns the execution as it ended.
    async fn follow(&self, run: &mut Run, event: &Value) -> Result<DescribeExecutionOutput> {
        let (options, stack) = (&self.options, &self.stack);
        let mut crash_at = options.crash_at_transition;
        let deadline = Instant::now() + options.timeout;
        loop {
            if Instant::now() > deadline {
                bail!(
                    "the drill did not finish within {} s",
                    options.timeout.as_secs()
                );
            }
            run.follower.poll(&stack.sfn).await?;
            if crash_at.is_some_and(|at| run.follower.transitions >= at) {
                crash_at = None;
                self.crash_and_restart(run, event).await?;
                continue;
            }
            self.answer_mail(run).await?;
            let exec = stack
                .sfn
                .describe_execution()
                .execution_arn(&run.execution_arn)
                .send()
                .await
                .context("DescribeExecution")?;
            if exec.status != ExecutionStatus::Running {
                run.follower.poll(&stack.sfn).await?;
                for mail in run.inbox.poll().await? {
                    if !options.quiet {
                        mail.print();
                    }
                    run.emails.push(mail);
                }
                return Ok(exec);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the execution (a crash) and starts it again on the same event.
    async fn crash_and_restart(&self, run: &mut Run, event: &Value) -> Result<()> {
        let (options, stack) = (&self.options, &self.stack);
        let crashed = run.execution_arn.clone();
        stack
            .sfn
            .stop_execution()
            .execution_arn(&crashed)
            .error("Drill.Crash")
            .cause("the drill stopped the execution to rehearse a crash")
            .send()
            .await
            .context("StopExecution")?;
        let name = format!("{}-restart", crashed.rsplit(':').next().unwrap_or("drill"));
        run.execution_arn = crate::ops::start(
            &stack.sfn,
            &stack.state_machine_arn,
            event.clone(),
            Some(name),
        )
        .await?;
        say!(
            options,
            "\n✖ crash after {} state transitions: {crashed} stopped; restarted as {}\n",
            run.follower.transitions,
            run.execution_arn
        );
        run.follower = self.follower(&run.execution_arn);
        run.decided = false;
        Ok(())
    }

    /// Reads the new mail; the first approval request (or pre-approval notice) for the
    /// current execution is answered as the options say.
    async fn answer_mail(&self, run: &mut Run) -> Result<()> {
        let (options, stack) = (&self.options, &self.stack);
        for mail in run.inbox.poll().await? {
            if !options.quiet {
                mail.print();
            }
            let execution_arn = &run.execution_arn;
            let current = execution_arn.rsplit(':').next().unwrap_or_default();
            if !run.decided && mail.is_pre_approved() && mail.is_for(current) {
                run.decided = stack
                    .let_pre_approval_stand(&mail, execution_arn, options)
                    .await?;
            } else if !run.decided && mail.is_approval_request() && mail.is_for(current) {
                if let Some(model) = &options.latency {
                    // The approvers take their time; the engine's clock moves on.
                    if let Ok(clock) = stack.engine.clock(execution_arn) {
                        clock.advance(model.approval);
                    }
                }
                run.decided = stack
                    .decide(&mail, options.approve, options.approvers, options.quiet)
                    .await?;
            }
            run.emails.push(mail);
        }
        Ok(())
    }

    /// Writes the history and the post-mortem, checks the one the execution wrote to the
    /// report bucket, and builds the report.
    async fn wrap_up(
        &self,
        run: Run,
        final_status: DescribeExecutionOutput,
        started: Instant,
    ) -> Result<DrillReport> {
        let (options, stack) = (&self.options, &self.stack);
        let Run {
            execution_arn,
            follower,
            emails,
            ..
        } = run;
        std::fs::create_dir_all(&options.output_dir)
            .with_context(|| format!("creating {}", options.output_dir.display()))?;
        let events = crate::ops::history(&stack.sfn, &execution_arn).await?;
        let history = crate::history::History::from_sdk(&events);
        let history_path = options.output_dir.join("history.json");
        std::fs::write(&history_path, serde_json::to_string_pretty(&history)?)?;
        let name = execution_arn
            .rsplit(':')
            .next()
            .unwrap_or(&execution_arn)
            .to_owned();
        let findings = crate::report::analyse(&name, &history);
        let report_path = options.output_dir.join("report.md");
        let markdown = crate::report::render(&findings);
        std::fs::write(&report_path, &markdown)?;
        // The same post-mortem, as the execution wrote it to the report bucket.
        let s3_report = s3_report::check(
            &rollback_notify::s3_client(&stack.sdk),
            &name,
            &history,
            &markdown,
        )
        .await
        .map_err(|e| format!("{e:#}"));

        let reached = |state: &str| {
            history
                .events
                .iter()
                .any(|e| e.detail_str("name") == Some(state))
        };
        let outcome = match final_status.status {
            ExecutionStatus::Succeeded if reached("Rollback rejected") => Outcome::Rejected,
            ExecutionStatus::Succeeded if reached("Rollback complete") => Outcome::RolledBack,
            _ => Outcome::Failed,
        };
        let engine_seconds = match (findings.started, findings.ended) {
            (Some(s), Some(e)) => (e - s).num_seconds(),
            _ => 0,
        };
        let error = final_status
            .error
            .clone()
            .map(|e| format!("{e}: {}", final_status.cause.clone().unwrap_or_default()));
        Ok(DrillReport {
            outcome,
            execution_arn,
            status: final_status.status.as_str().to_owned(),
            error,
            transitions: follower.transitions,
            setup: self.setup,
            wall: started.elapsed(),
            engine_seconds,
            emails,
            history,
            report_path,
            history_path,
            s3_report,
        })
    }

    /// Every call a role would refuse in AWS was refused here too; any fails the drill.
    fn check_iam(&self, report: DrillReport) -> Result<DrillReport> {
        let mut violations = Vec::new();
        for violation in self.stack.iam_violations() {
            if !violations.contains(&violation) {
                violations.push(violation);
            }
        }
        if !violations.is_empty() {
            let failed = IamViolations {
                violations,
                report: Box::new(report),
            };
            say!(self.options, "\nIAM: {failed}");
            return Err(failed.into());
        }
        Ok(report)
    }

    async fn print_summary(&self, report: &DrillReport, health_before: &str) {
        let stack = &self.stack;
        println!("\n── drill summary ─────────────────────────────────────────");
        println!(
            "outcome:      {:?} (execution {}; exit code {})",
            report.outcome,
            report.status,
            report.outcome.exit_code()
        );
        println!("app health:   before: {health_before}");
        println!("              after:  {}", stack.health().await);
        for (repo, deployment, stable, _) in &stack.seeded.images {
            let running = stack.running_images(deployment);
            let on_stable = running.contains(stable);
            println!(
                "{deployment}: {} ({repo})",
                if on_stable {
                    "on the stable image"
                } else {
                    "NOT on the stable image"
                }
            );
        }
        for line in mobile::what_users_see(&stack.sdk, &stack.stores).await {
            println!("mobile:       {line}");
        }
        // Issue 17: where the status page and chat calls went.
        for line in stack.seeded.channels.summary() {
            println!("channels:     {line}");
        }
        println!("transitions:  {}", report.transitions);
        println!(
            "time:         {} ms wall clock after a {} ms setup; {} on the engine's virtual clock",
            report.wall.as_millis(),
            report.setup.as_millis(),
            rollback_core::resolved::human_duration(report.engine_seconds)
        );
        if let Some(model) = &self.options.latency {
            print_mttr(
                model,
                report,
                stack.seeded.plan.polling.interval_seconds as u64,
            );
        }
        if let Some(error) = &report.error {
            println!("error:        {error}");
        }
        println!("report:       {}", report.report_path.display());
        println!("history:      {}", report.history_path.display());
        print_s3_report(report);
    }
}

/// The MTTR model's figures for this drill: the simulated time against the critical path of
/// the states it entered, and both paths (app only, pre-approved; app + database, people
/// decide) against the sequential runbook.
fn print_mttr(model: &LatencyModel, report: &DrillReport, poll_interval: u64) {
    let entered = |state: &str| {
        report
            .history
            .events
            .iter()
            .any(|e| e.detail_str("name") == Some(state))
    };
    let grace = Duration::from_secs(u64::from(PRE_APPROVAL_GRACE_SECONDS));
    let parts = latency::Parts {
        databases: entered("Start restores"),
        infrastructure: entered("Apply infrastructure plan"),
        pre_approved_grace: entered("Take the policy decision").then_some(grace),
    };
    let critical = model.critical_path(parts).as_secs();
    let human = |d: Duration| rollback_core::resolved::human_duration(d.as_secs() as i64);
    println!(
        "MTTR model:   simulated {} in {} transitions vs critical path {} (+ at most {} polls × {poll_interval} s); the sequential runbook takes {}",
        rollback_core::resolved::human_duration(report.engine_seconds),
        report.transitions,
        rollback_core::resolved::human_duration(critical as i64),
        model.waits(parts),
        human(model.sequential_runbook(parts))
    );
    // Both paths, whichever this drill ran: the app alone under the plan's policy, and
    // the app with its databases, decided by people.
    let app_only = latency::Parts {
        databases: false,
        infrastructure: false,
        pre_approved_grace: Some(grace),
    };
    let with_data = latency::Parts {
        databases: true,
        infrastructure: false,
        pre_approved_grace: None,
    };
    println!(
        "MTTR paths:   app only, pre-approved (grace {} s): {} · app + database, people decide: {} · the runbook, app + database in sequence: {}",
        grace.as_secs(),
        human(model.critical_path(app_only)),
        human(model.critical_path(with_data)),
        human(model.sequential_runbook(with_data))
    );
}

/// Where the execution's own report went in S3, and how it compares with the drill's.
fn print_s3_report(report: &DrillReport) {
    match &report.s3_report {
        Ok(s3) => {
            println!(
                "in S3:        {} (+ history.json), written by the execution before its final notice",
                s3.uri
            );
            println!(
                "              ✔ its history.json is the execution's first {} of {} events (task tokens removed), and report.md is exactly what rollbackctl report renders from them",
                s3.events, s3.total_events
            );
            if s3.identical() {
                println!(
                    "              ✔ identical to {}",
                    report.report_path.display()
                );
            } else {
                println!(
                    "              it differs from {} only by what came after the report step ({}):",
                    report.report_path.display(),
                    if s3.after.is_empty() {
                        "the end of the execution".to_owned()
                    } else {
                        format!("{} and the end", s3.after.join(", "))
                    }
                );
                for line in s3.only_in_s3.iter().take(8) {
                    println!("                S3:    {line}");
                }
                for line in s3.only_local.iter().take(8) {
                    println!("                local: {line}");
                }
            }
        }
        Err(e) => println!("in S3:        ✘ {e}"),
    }
}
