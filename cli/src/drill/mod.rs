//! `rollbackctl drill` (what `make drill` runs): the real definition and the real function code
//! on this machine, from alarm to report, against moto, a local Kubernetes API, the local
//! engine's Step Functions endpoint and the approval page.

mod demo_app;
mod follow;
mod functions;
mod inbox;
mod seed;
mod stack;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

pub use functions::{FUNCTIONS, INJECTED_ERROR, substitutions};

/// How the approval is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Approve {
    /// Follow the emailed "approve (app + database)" link like a person: GET the page, POST the form.
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

pub struct DrillReport {
    pub outcome: Outcome,
    pub execution_arn: String,
    pub transitions: usize,
    pub wall: Duration,
    pub engine_seconds: i64,
    pub report_path: PathBuf,
    pub history_path: PathBuf,
}

pub async fn run(options: DrillOptions) -> Result<DrillReport> {
    let started = Instant::now();
    println!(
        "rollback drill: starting the local stack (moto, Kubernetes API, Step Functions engine, approval page)"
    );
    let stack = stack::LocalStack::start(&options).await?;
    println!(
        "  moto {}  kube {}  engine {}  approval {}  app {}",
        stack.moto.endpoint(),
        stack.kube.url(),
        stack.engine_url,
        stack.approval_url,
        stack.app.url
    );
    if stack.seeded.sql_probe {
        println!(
            "  PostgreSQL {} plays the database behind the SQL probe",
            stack.postgres_addr.as_deref().unwrap_or("?")
        );
    } else {
        println!(
            "  no local PostgreSQL could be started: the smoke test runs without its SQL probe"
        );
    }
    println!(
        "  DocumentDB: moto rejects engine `docdb`, so an aurora-postgresql cluster (mint-replica-docs) stands in for it"
    );
    println!("  setup took {} ms", started.elapsed().as_millis());

    let health_before = stack.health().await;
    println!(
        "\nthe bad release {} is live: {} answers {health_before}",
        seed::RELEASE_BAD,
        stack.app.url
    );

    // The alarm fires; EventBridge delivers its state change to the state machine.
    let event = stack.fire_alarm().await?;
    let execution_arn = rollbackctl_start(&stack, event).await?;
    println!("execution {execution_arn}\n");

    let mut follower = follow::Follower::new(&execution_arn, stack.seeded.plan.polling.max_polls());
    let mut inbox = inbox::Inbox::new(stack.sqs(), &stack.seeded.queue_url);
    let deadline = Instant::now() + options.timeout;
    let mut decided = false;
    let final_status = loop {
        if Instant::now() > deadline {
            bail!(
                "the drill did not finish within {} s",
                options.timeout.as_secs()
            );
        }
        follower.poll(&stack.sfn).await?;
        for mail in inbox.poll().await? {
            mail.print();
            if !decided && mail.is_approval_request() {
                decided = stack.decide(&mail, options.approve).await?;
            }
        }
        let exec = stack
            .sfn
            .describe_execution()
            .execution_arn(&execution_arn)
            .send()
            .await
            .context("DescribeExecution")?;
        if exec.status != aws_sdk_sfn::types::ExecutionStatus::Running {
            follower.poll(&stack.sfn).await?;
            for mail in inbox.poll().await? {
                mail.print();
            }
            break exec;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

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
    std::fs::write(&report_path, crate::report::render(&findings))?;

    let output = final_status.output.as_deref().unwrap_or("{}");
    let rejected = history
        .events
        .iter()
        .any(|e| e.detail_str("name") == Some("Rollback rejected"));
    let outcome = match final_status.status {
        aws_sdk_sfn::types::ExecutionStatus::Succeeded if rejected => Outcome::Rejected,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
            if history
                .events
                .iter()
                .any(|e| e.detail_str("name") == Some("Rollback complete")) =>
        {
            Outcome::RolledBack
        }
        _ => Outcome::Failed,
    };
    let health_after = stack.health().await;
    let engine_seconds = match (findings.started, findings.ended) {
        (Some(s), Some(e)) => (e - s).num_seconds(),
        _ => 0,
    };
    let wall = started.elapsed();
    println!("\n── drill summary ─────────────────────────────────────────");
    println!(
        "outcome:      {outcome:?} (execution {})",
        final_status.status.as_str()
    );
    println!("app health:   before {health_before}; after {health_after}");
    for (repo, deployment, stable, _) in &stack.seeded.images {
        let running = stack.running_images(deployment);
        println!(
            "{deployment}: runs {running:?} (stable {repo}: {})",
            if running.contains(stable) {
                "yes"
            } else {
                "no"
            }
        );
    }
    println!("transitions:  {}", follower.transitions);
    println!(
        "time:         {:.1} s wall clock ({} ms after setup); {} on the engine's virtual clock",
        wall.as_secs_f64(),
        wall.saturating_sub(Duration::from_millis(0)).as_millis(),
        rollback_core::resolved::human_duration(engine_seconds)
    );
    if outcome == Outcome::Failed {
        println!(
            "error:        {} {}",
            final_status.error.unwrap_or_default(),
            final_status.cause.unwrap_or_default()
        );
    }
    let _ = json!({"output": output});
    println!("report:       {}", report_path.display());
    println!("history:      {}", history_path.display());
    Ok(DrillReport {
        outcome,
        execution_arn,
        transitions: follower.transitions,
        wall,
        engine_seconds,
        report_path,
        history_path,
    })
}

async fn rollbackctl_start(stack: &stack::LocalStack, event: serde_json::Value) -> Result<String> {
    crate::ops::start(&stack.sfn, &stack.state_machine_arn, event, None).await
}
