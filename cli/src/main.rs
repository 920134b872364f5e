//! rollbackctl: command-line wiring only; the logic is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rollback_core::Plan;
use rollbackctl::{history::History, ops, report};
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "rollbackctl",
    version,
    about = "Operate and rehearse deployment rollbacks"
)]
struct Cli {
    /// Step Functions / AWS endpoint override (e.g. the local engine's URL).
    #[arg(long, global = true, env = "ROLLBACK_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rehearse a full rollback offline: local moto, Kubernetes API, Step Functions engine and
    /// approval page; from alarm to report. Exit 0: rolled back; 1: contingency path; 2: the
    /// drill itself could not run; 3: rejected by the approver.
    Drill(DrillArgs),
    /// Validate a rollback plan file; every problem is listed with its JSON path.
    Validate { plan: PathBuf },
    /// Rollback plans in SSM Parameter Store, read by each execution when it starts.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Start a rollback execution.
    Start {
        #[arg(long, env = "ROLLBACK_STATE_MACHINE_ARN")]
        state_machine_arn: String,
        /// Execution input as JSON (a manual start document or an alarm event); default `{}`.
        #[arg(long, default_value = "{}")]
        input: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Show an execution's state.
    Status { execution_arn: String },
    /// Approve the pending approval of an execution.
    Approve {
        execution_arn: String,
        /// `app` or `app+database`.
        #[arg(long, default_value = "app")]
        scope: String,
        #[arg(long, env = "USER", default_value = "rollbackctl")]
        approver: String,
        /// The stack's DecisionKey ARN: the approval is signed with it under your credentials
        /// (only principals the key policy lets kms:Sign can approve from the command line).
        #[arg(long, env = "ROLLBACK_DECISION_KEY")]
        decision_key: Option<String>,
    },
    /// Reject the pending approval of an execution.
    Reject {
        execution_arn: String,
        #[arg(long, env = "USER", default_value = "rollbackctl")]
        approver: String,
    },
    /// Write the post-mortem skeleton for an execution (from the endpoint, or a saved
    /// history.json such as the one in the stack's report bucket).
    Report {
        /// Execution ARN (its history is fetched from the endpoint) — or use --history.
        execution_arn: Option<String>,
        /// A get-execution-history document instead of fetching it; with EXECUTION_ARN too, the
        /// report is titled by the execution's name, as the one in the report bucket is.
        #[arg(long)]
        history: Option<PathBuf>,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Scale the deployments a rollback execution paused back to their recorded replica
    /// counts (after a failed rollback). Safe to repeat. Exit 0: every deployment resumed or
    /// already running; 1: some deployment was not resumed; 2: nothing was done (bad ARN, no
    /// history or plan, execution still running).
    Resume {
        /// The rollback execution whose pause to undo.
        #[arg(long, value_name = "EXECUTION_ARN")]
        execution: String,
        /// Resume even though the execution is still running (it would race the rollback).
        #[arg(long)]
        force: bool,
        /// Endpoint for EKS DescribeCluster when it differs from --endpoint-url (e.g. moto
        /// beside the local engine). The Kubernetes API itself is EKS's, or
        /// ROLLBACK_KUBE_API_URL with ROLLBACK_KUBE_CA_FILE / ROLLBACK_KUBE_CA_PEM.
        #[arg(long, env = "ROLLBACK_EKS_ENDPOINT_URL")]
        eks_endpoint_url: Option<String>,
    },
    /// For the deploy pipeline, before a release: snapshot every plan database
    /// (`predeploy-<service>-<release>-<db>`, what a rollback restores) by invoking the stack's
    /// SnapshotFunction, and wait until every snapshot is available; prints their ids. Safe to
    /// repeat: a snapshot already taken for the release is reused. Exit 0: every snapshot is
    /// available (or the plan has no databases); 1: no usable backup yet (a snapshot failed,
    /// the function refused, or the wait ran out): do not deploy; 2: nothing was done (flags,
    /// plan, the function could not be invoked).
    Snapshot(SnapshotArgs),
    /// For CI/CD: exit 1 when REPO@DIGEST was rolled back by a rollback execution.
    Guard {
        #[arg(long)]
        image: String,
    },
}

// The drill's flags (the subcommand's help is `Command::Drill`'s).
#[derive(clap::Args)]
struct DrillArgs {
    /// How the approval is given: follow the emailed approve link (auto), approve the app
    /// only (app-only), wait for you to open the printed link (manual), or reject.
    #[arg(long, value_enum, default_value = "auto")]
    approve: rollbackctl::drill::Approve,
    /// Make the task in this state fail, to rehearse the contingency path
    /// (e.g. --fail-at "Swap databases").
    #[arg(long, value_name = "STATE")]
    fail_at: Option<String>,
    /// Where report.md and history.json go.
    #[arg(long, default_value = "drill-output")]
    output: PathBuf,
    /// Real-time bound on the whole drill, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout_seconds: u64,
    /// Give operations realistic durations on the engine's virtual clock (restore 20 min,
    /// snapshot 5 min, rollout 2 min, smoke 30 s) and compare with the critical path.
    #[arg(long)]
    realistic_durations: bool,
    /// How the plan's databases are restored: from the pre-deploy snapshots, or
    /// point-in-time (RDS restores each to the cutoff; the report shows the restore time).
    #[arg(long, value_enum, default_value = "snapshot")]
    restore: rollbackctl::drill::Restore,
    /// How many different people must approve the database rollback (the plan's
    /// approval.database_approvers); the drill approves as each in turn, and the report
    /// names them all.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    approvers: u8,
    /// Approvers sign in at a local OpenID Connect identity provider (authorization code
    /// with PKCE), as with the stack's ApprovalLogin parameters; the report names the
    /// signed-in people.
    #[arg(long)]
    sign_in: bool,
    /// The plan pre-approves app-only rollbacks started by the drill's alarm
    /// (approval.auto_approve_app_only, grace period 60 s): no one is asked. With
    /// `--approve reject` the drill follows the emailed "stop it now" link instead.
    #[arg(long)]
    pre_approved: bool,
}

// The pre-deploy snapshot's flags (the subcommand's help is `Command::Snapshot`'s).
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("plan_source").args(["plan_parameter", "plan"])))]
struct SnapshotArgs {
    /// Take the pre-deploy snapshots (the only snapshots rollbackctl takes; a rollback
    /// takes its own backups).
    #[arg(long)]
    pre_deploy: bool,
    /// The plan's service.
    #[arg(long)]
    service: String,
    /// The release about to be deployed (1-128 letters, digits, _ . -); a rollback
    /// execution's `release` names it.
    #[arg(long)]
    release: String,
    /// The SSM parameter holding the plan: the stack's RollbackPlanParameter, or
    /// <RollbackPlanPath>/<service> [env: ROLLBACK_PLAN_PARAMETER, unless --plan is given].
    #[arg(long, value_name = "NAME")]
    plan_parameter: Option<String>,
    /// A plan file instead of the parameter.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// The stack output SnapshotFunctionArn (its region is used for Lambda and SSM).
    #[arg(long, value_name = "ARN", env = "ROLLBACK_SNAPSHOT_FUNCTION")]
    function_name: String,
    /// How long to wait for the snapshots to become available.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=1440))]
    timeout_minutes: u64,
    /// Seconds between status checks.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    poll_seconds: u64,
    /// Print the function's final report as JSON instead of one line per snapshot.
    #[arg(long)]
    json: bool,
    /// Endpoint for Lambda when it differs from --endpoint-url.
    #[arg(long, env = "ROLLBACK_LAMBDA_ENDPOINT_URL")]
    lambda_endpoint_url: Option<String>,
}

#[derive(Subcommand)]
enum PlanCommand {
    /// Validate FILE as the plan function does and store it (type String, overwritten; the
    /// advanced tier above 4 KB) as the SSM parameter NAME; prints the new version. The next
    /// execution uses it; running ones keep the version they started with. Exit 1: invalid
    /// plan (every problem with its JSON path) and nothing written.
    Push {
        file: PathBuf,
        /// The stack's RollbackPlanParameter, or RollbackPlanPath/<service>.
        #[arg(long, value_name = "NAME")]
        parameter: String,
    },
}

/// Every problem of a plan file, each with its JSON path, on stderr.
fn print_problems(file: &std::path::Path, errors: &rollback_core::ValidationErrors, tail: &str) {
    eprintln!("{}: {} problem(s){tail}", file.display(), errors.len());
    for e in errors.iter() {
        eprintln!("  {}: {}", e.path, e.message);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    rollback_core::telemetry::init_local();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        // A function called what its role does not allow: the rollback ran and failed, as
        // it would in AWS.
        Err(e)
            if e.downcast_ref::<rollbackctl::drill::IamViolations>()
                .is_some() =>
        {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the subcommand: a flat dispatch, one call per subcommand.
async fn run(cli: Cli) -> Result<ExitCode> {
    let endpoint = cli.endpoint_url.as_deref();
    match cli.command {
        Command::Drill(args) => drill(args).await,
        Command::Validate { plan } => validate(&plan),
        Command::Plan {
            command: PlanCommand::Push { file, parameter },
        } => plan_push(endpoint, &file, &parameter).await,
        Command::Start {
            state_machine_arn,
            input,
            name,
        } => {
            let sfn = aws_sdk_sfn::Client::new(&ops::sdk_config(endpoint).await);
            let input: Value = serde_json::from_str(&input).context("--input is not JSON")?;
            println!(
                "{}",
                ops::start(&sfn, &state_machine_arn, input, name).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { execution_arn } => {
            let sfn = aws_sdk_sfn::Client::new(&ops::sdk_config(endpoint).await);
            println!("{}", ops::status(&sfn, &execution_arn).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Approve {
            execution_arn,
            scope,
            approver,
            decision_key,
        } => approve(endpoint, &execution_arn, &scope, &approver, decision_key).await,
        Command::Reject {
            execution_arn,
            approver,
        } => {
            let sfn = aws_sdk_sfn::Client::new(&ops::sdk_config(endpoint).await);
            ops::decide(&sfn, &execution_arn, false, "app", &approver, None).await?;
            println!("rejected");
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            execution_arn,
            history,
            output,
        } => report_command(endpoint, execution_arn, history, output).await,
        Command::Resume {
            execution,
            force,
            eks_endpoint_url,
        } => resume(endpoint, &execution, force, eks_endpoint_url.as_deref()).await,
        Command::Snapshot(args) => snapshot(endpoint, args).await,
        Command::Guard { image } => guard(endpoint, &image).await,
    }
}

/// `rollbackctl drill`: the exit code says how the rehearsal ended.
async fn drill(args: DrillArgs) -> Result<ExitCode> {
    let report = rollbackctl::drill::run(rollbackctl::drill::DrillOptions {
        approve: args.approve,
        fail_at: args.fail_at,
        output_dir: args.output,
        timeout: std::time::Duration::from_secs(args.timeout_seconds),
        latency: args
            .realistic_durations
            .then(rollbackctl::drill::LatencyModel::realistic),
        restore: args.restore,
        approvers: args.approvers,
        sign_in: args.sign_in,
        pre_approved: args.pre_approved,
        ..Default::default()
    })
    .await?;
    Ok(ExitCode::from(report.outcome.exit_code()))
}

/// `rollbackctl validate`: exit 1 with every problem when the plan is invalid.
fn validate(plan: &std::path::Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(plan).with_context(|| format!("reading {}", plan.display()))?;
    match Plan::from_json(&text) {
        Ok(parsed) => {
            println!(
                "{}: valid plan for {} ({} databases, {} images, {} deployments)",
                plan.display(),
                parsed.service,
                parsed.databases.len(),
                parsed.images.len(),
                parsed.cluster.as_ref().map_or(0, |c| c.deployments.len())
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_problems(plan, &errors, "");
            Ok(ExitCode::from(1))
        }
    }
}

/// `rollbackctl plan push`: exit 1, nothing written, when the plan is invalid.
async fn plan_push(
    endpoint: Option<&str>,
    file: &std::path::Path,
    parameter: &str,
) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let ssm = aws_sdk_ssm::Client::new(&ops::sdk_config(endpoint).await);
    match rollbackctl::plan_push::push(&ssm, &text, parameter).await {
        Ok(pushed) => {
            if let Some(note) = &pushed.note {
                eprintln!("note: {note}");
            }
            println!(
                "{}: plan of {} ({} bytes, {} tier) stored as {}: version {}",
                file.display(),
                pushed.service,
                pushed.bytes,
                pushed.tier.as_str(),
                pushed.source.parameter,
                pushed.source.version
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(rollbackctl::plan_push::PushError::InvalidPlan(errors)) => {
            print_problems(file, &errors, "; nothing was written");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// `rollbackctl approve`: signed with the decision key when one is given.
async fn approve(
    endpoint: Option<&str>,
    execution_arn: &str,
    scope: &str,
    approver: &str,
    decision_key: Option<String>,
) -> Result<ExitCode> {
    let sdk = ops::sdk_config(endpoint).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let signer = decision_key.map(|key| {
        rollback_core::decision::DecisionSigner::new(aws_sdk_kms::Client::new(&sdk), key)
    });
    ops::decide(&sfn, execution_arn, true, scope, approver, signer.as_ref()).await?;
    println!("approved ({scope})");
    Ok(ExitCode::SUCCESS)
}

/// `rollbackctl report`: the post-mortem of a saved history (titled by the execution's name
/// when its ARN is given too) or of the history fetched from the endpoint.
async fn report_command(
    endpoint: Option<&str>,
    execution_arn: Option<String>,
    history: Option<PathBuf>,
    output: Option<PathBuf>,
) -> Result<ExitCode> {
    let (name, history) = match (execution_arn, history) {
        (arn, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let history: History =
                serde_json::from_str(&text).context("not a get-execution-history document")?;
            let name = match &arn {
                Some(arn) => arn.rsplit(':').next().unwrap_or(arn).to_owned(),
                None => path.display().to_string(),
            };
            (name, history)
        }
        (Some(arn), None) => {
            let sfn = aws_sdk_sfn::Client::new(&ops::sdk_config(endpoint).await);
            let events = ops::history(&sfn, &arn).await?;
            let name = arn.rsplit(':').next().unwrap_or(&arn).to_owned();
            (name, History::from_sdk(&events))
        }
        (None, None) => anyhow::bail!("give an execution ARN or --history FILE"),
    };
    let markdown = report::render(&report::analyse(&name, &history));
    match output {
        Some(path) => std::fs::write(&path, markdown)
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{markdown}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `rollbackctl resume`: in-process, with the operator's credentials.
async fn resume(
    endpoint: Option<&str>,
    execution: &str,
    force: bool,
    eks_endpoint_url: Option<&str>,
) -> Result<ExitCode> {
    rollbackctl::resume::check_execution_arn(execution)?;
    let sfn = aws_sdk_sfn::Client::new(&ops::sdk_config(endpoint).await);
    let eks_config = ops::sdk_config(eks_endpoint_url.or(endpoint)).await;
    let api_override = rollback_deploy_undo::ApiOverride::from_env()
        .map_err(|e| anyhow::anyhow!("the Kubernetes API override: {e}"))?;
    // resume runs in-process with the operator's credentials (handle_operator): no
    // signed decision is checked, so no decision key is needed.
    let clients = rollback_deploy_undo::Clients::new(&eks_config, "", api_override);
    let report = ops::resume(&sfn, &clients, execution, force).await?;
    for line in report.lines() {
        println!("{line}");
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// `rollbackctl snapshot --pre-deploy`: its errors printed here, with the exit code they
/// carry.
async fn snapshot(endpoint: Option<&str>, args: SnapshotArgs) -> Result<ExitCode> {
    let options = rollbackctl::pre_deploy::WaitOptions {
        timeout: std::time::Duration::from_secs(args.timeout_minutes * 60),
        poll_interval: std::time::Duration::from_secs(args.poll_seconds),
        ..Default::default()
    };
    // Not clap's `env`: a pipeline setting the variable may still give --plan.
    let plan_parameter = args.plan_parameter.or_else(|| {
        std::env::var("ROLLBACK_PLAN_PARAMETER")
            .ok()
            .filter(|name| !name.trim().is_empty())
    });
    let from = match (args.plan, plan_parameter) {
        (Some(file), _) => Some(rollbackctl::pre_deploy::PlanFrom::File(file)),
        (None, Some(name)) => Some(rollbackctl::pre_deploy::PlanFrom::Parameter(name)),
        (None, None) => None,
    };
    let result = pre_deploy_snapshot(
        endpoint,
        args.lambda_endpoint_url.as_deref(),
        args.pre_deploy,
        &args.service,
        &args.release,
        from.as_ref(),
        &args.function_name,
        &options,
        args.json,
    )
    .await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e}");
            if let rollbackctl::pre_deploy::PreDeployError::InvalidPlan { errors, .. } = &e {
                for problem in errors.iter() {
                    eprintln!("  {}: {}", problem.path, problem.message);
                }
            }
            if let Some(advice) = e.advice() {
                eprintln!("{advice}");
            }
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

/// `rollbackctl guard`: exit 1 when the image was rolled back.
async fn guard(endpoint: Option<&str>, image: &str) -> Result<ExitCode> {
    let (repo, digest) = image
        .split_once('@')
        .context("--image must be REPOSITORY@sha256:DIGEST")?;
    let ecr = aws_sdk_ecr::Client::new(&ops::sdk_config(endpoint).await);
    match ops::guard_image(&ecr, repo, digest).await? {
        Some(tag) => {
            eprintln!(
                "{image} was rolled back (tagged {tag}: execution {}); do not redeploy it",
                tag.trim_start_matches("rolled-back-")
            );
            Ok(ExitCode::from(1))
        }
        None => {
            println!("{image}: not rolled back");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `rollbackctl snapshot --pre-deploy`: read the plan, invoke the stack's snapshot function,
/// wait, print the snapshot ids (progress on stderr).
#[allow(clippy::too_many_arguments)]
async fn pre_deploy_snapshot(
    endpoint: Option<&str>,
    lambda_endpoint: Option<&str>,
    pre_deploy: bool,
    service: &str,
    release: &str,
    from: Option<&rollbackctl::pre_deploy::PlanFrom>,
    function_name: &str,
    options: &rollbackctl::pre_deploy::WaitOptions,
    json: bool,
) -> Result<(), rollbackctl::pre_deploy::PreDeployError> {
    use rollbackctl::pre_deploy as pd;
    let from = check_usage(pre_deploy, release, from, function_name)?;
    // The function and the plan parameter live in the stack's region: the function ARN's.
    let with_region = |mut config: aws_config::SdkConfig| {
        if let Some(region) = pd::arn_region(function_name) {
            config = config
                .into_builder()
                .region(aws_config::Region::new(region.to_owned()))
                .build();
        }
        config
    };
    let ssm = match from {
        pd::PlanFrom::Parameter(_) => Some(aws_sdk_ssm::Client::new(&with_region(
            ops::sdk_config(endpoint).await,
        ))),
        pd::PlanFrom::File(_) => None,
    };
    let loaded = pd::load_plan(ssm.as_ref(), from, service).await?;
    if loaded.plan.databases.is_empty() {
        if json {
            println!(
                "{}",
                serde_json::json!({"snapshots": [], "all_available": true, "drill": false})
            );
        }
        eprintln!(
            "the plan {} of {service} has no databases: no pre-deploy snapshot to take",
            loaded.source
        );
        return Ok(());
    }
    let lambda_config = ops::sdk_config(lambda_endpoint.or(endpoint)).await;
    let function = pd::Lambda::new(&lambda_config, function_name);
    eprintln!(
        "pre-deploy snapshots of {service} before release {release}: {} database(s) of the \
         plan {}, by {function_name}",
        loaded.plan.databases.len(),
        loaded.source
    );
    let progress = |line: &str| eprintln!("  {line}");
    let taken = pd::take(&function, &loaded.plan, release, options, &progress).await?;
    print_taken(&taken, json);
    eprintln!(
        "every pre-deploy snapshot is available (after {}): release {release} may be deployed",
        pd::minutes_seconds(taken.waited)
    );
    Ok(())
}

/// The flags `rollbackctl snapshot` needs: `--pre-deploy`, a valid release, the plan's source
/// and the function.
fn check_usage<'a>(
    pre_deploy: bool,
    release: &str,
    from: Option<&'a rollbackctl::pre_deploy::PlanFrom>,
    function_name: &str,
) -> Result<&'a rollbackctl::pre_deploy::PlanFrom, rollbackctl::pre_deploy::PreDeployError> {
    use rollbackctl::pre_deploy::{self as pd, PreDeployError};
    if !pre_deploy {
        return Err(PreDeployError::Usage {
            flag: "--pre-deploy",
            message: "missing: rollbackctl takes only the pipeline's pre-deploy snapshots \
                      (a rollback takes its own backups); add --pre-deploy"
                .to_owned(),
        });
    }
    pd::check_release(release)?;
    let from = from.ok_or_else(|| PreDeployError::Usage {
        flag: "--plan-parameter",
        message: "give the plan: --plan-parameter NAME (the stack's RollbackPlanParameter, or \
                  <RollbackPlanPath>/<service>; or ROLLBACK_PLAN_PARAMETER), or --plan FILE"
            .to_owned(),
    })?;
    if function_name.trim().is_empty() {
        return Err(PreDeployError::Usage {
            flag: "--function-name",
            message: "give the stack output SnapshotFunctionArn".to_owned(),
        });
    }
    Ok(from)
}

/// The snapshots taken, on stdout: the function's report as JSON, or one line each.
fn print_taken(taken: &rollbackctl::pre_deploy::Taken, json: bool) {
    if json {
        let output = rollback_core::contract::snapshot::SnapshotOutput {
            snapshots: taken.snapshots.clone(),
            all_available: true,
            drill: false,
        };
        println!(
            "{}",
            serde_json::to_string(&output).expect("the report serializes")
        );
    } else {
        for line in rollbackctl::pre_deploy::result_lines(taken) {
            println!("{line}");
        }
    }
}
