//! Cold start, peak RSS and zipped size of each release Lambda binary, next to a Python
//! handler that imports boto3. See the crate docs; run via `scripts/bench-lambdas.sh`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use rollback_lambda_bench::functions::{self, DEAD_ENDPOINT, FUNCTIONS, FunctionSpec, Needs};
use rollback_lambda_bench::measure::{self, ColdStart, Launch, Limits, Outcome};
use rollback_lambda_bench::stats::{Summary, ms};
use rollback_lambda_bench::{machine, package};

const TARGET_MS: f64 = 20.0;
const TARGET_RSS_MB: f64 = 30.0;
const TARGET_RATIO: f64 = 10.0;
const TARGET_ZIP_MB: f64 = 8.0;

#[derive(Parser)]
#[command(
    about = "Cold start (exec → first /next), peak RSS and zipped size of the release Lambda binaries, against a Python handler importing boto3"
)]
struct Args {
    /// Measured cold starts per function (after one discarded warm-up round).
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Only these functions (comma-separated short names, e.g. plan,notify).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where the release binaries are (default: $CARGO_TARGET_DIR/release or target/release).
    #[arg(long)]
    release_dir: Option<PathBuf>,
    /// The Python with boto3 (default: the workspace's .venv/bin/python).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Skip the Python comparison.
    #[arg(long)]
    no_python: bool,
    /// Exit with status 2 when a target is missed.
    #[arg(long)]
    enforce: bool,
}

/// One row of the table.
struct Row {
    name: String,
    program: String,
    launch: Launch,
    zip_bytes: Option<u64>,
    binary_bytes: Option<u64>,
    /// Counted against the targets (the real functions).
    is_function: bool,
    event: serde_json::Value,
    runs: Vec<ColdStart>,
}

/// Where the bench reads and writes.
struct Paths {
    root: PathBuf,
    release_dir: PathBuf,
    /// `<target dir>/lambda-bench`: `logs/`, `zip/` and `home/`.
    out: PathBuf,
    /// The functions' `HOME`: empty, so no `~/.aws` profile of the machine is read.
    home: PathBuf,
    python: PathBuf,
}

impl Paths {
    /// The paths `args` give or the defaults, with the output directories created.
    fn of(args: &Args) -> Result<Paths> {
        let root = functions::workspace_root();
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let release_dir = args
            .release_dir
            .clone()
            .unwrap_or_else(|| target_dir.join("release"));
        let out = target_dir.join("lambda-bench");
        let home = out.join("home");
        std::fs::create_dir_all(out.join("logs"))?;
        std::fs::create_dir_all(out.join("zip"))?;
        std::fs::create_dir_all(&home)?;
        let python = args
            .python
            .clone()
            .unwrap_or_else(rollback_moto::venv_python);
        Ok(Paths {
            root,
            release_dir,
            out,
            home,
            python,
        })
    }
}

/// The link key secret the approval function reads on first use; moto plays Secrets Manager
/// when a selected function needs it.
struct LinkKey {
    /// Kept running for the whole bench.
    _moto: Option<rollback_moto::MotoServer>,
    endpoint: Option<String>,
    secret: String,
}

impl LinkKey {
    fn for_functions(selected: &[&FunctionSpec]) -> Result<LinkKey> {
        let mut link_key = LinkKey {
            _moto: None,
            endpoint: None,
            secret: String::from("rollback-bench-link-key"),
        };
        if selected.iter().any(|f| f.needs == Needs::LinkKeySecret) {
            let moto = rollback_moto::MotoServer::start().context(
                "the approval function reads its link keys from Secrets Manager; moto serves them",
            )?;
            link_key.secret = create_link_key(&moto, &link_key.secret)?;
            link_key.endpoint = Some(moto.endpoint());
            link_key._moto = Some(moto);
        }
        Ok(link_key)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let paths = Paths::of(&args)?;

    println!("# Lambda cold start and package size");
    println!("machine: {}", machine::describe());
    println!(
        "release profile ({}): {}",
        paths.root.join("Cargo.toml").display(),
        release_profile(&paths.root)
    );
    println!("binaries: {}", paths.release_dir.display());

    let selected = select(&args.only)?;
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let bins = functions::bin_targets(&cargo, &paths.root)?;
    let link_key = LinkKey::for_functions(&selected)?;

    let mut rows = Vec::new();
    for spec in &selected {
        rows.push(function_row(spec, &bins, &paths, &link_key)?);
    }
    rows.extend(comparison_rows(&args, &paths)?);
    for row in &rows {
        let _ = std::fs::remove_file(&row.launch.log);
    }

    measure_rounds(&mut rows, args.runs)?;
    let missed = report(&rows);
    if args.enforce && missed > 0 {
        std::process::exit(2);
    }
    Ok(())
}

/// The functions `--only` names (all without it); an error when it names none.
fn select(only: &[String]) -> Result<Vec<&'static FunctionSpec>> {
    let selected: Vec<&FunctionSpec> = FUNCTIONS
        .iter()
        .filter(|f| only.is_empty() || only.iter().any(|o| o == f.name))
        .collect();
    if selected.is_empty() && !only.is_empty() {
        bail!(
            "--only {only:?} names no function; the functions are {}",
            FUNCTIONS
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(selected)
}

/// A function's row: its release binary, zipped as `bootstrap`, run with the environment the
/// template gives it.
fn function_row(
    spec: &FunctionSpec,
    bins: &BTreeMap<String, Vec<String>>,
    paths: &Paths,
    link_key: &LinkKey,
) -> Result<Row> {
    let bin = match bins.get(spec.package).map(Vec::as_slice) {
        Some([bin]) => bin.clone(),
        Some(other) => bail!(
            "{} has binaries {other:?}; expected exactly one",
            spec.package
        ),
        None => bail!("package {} is not in the workspace", spec.package),
    };
    let program = paths.release_dir.join(&bin);
    if !program.exists() {
        bail!(
            "{} is missing: run scripts/bench-lambdas.sh (or cargo build --release -p {})",
            program.display(),
            spec.package
        );
    }
    let env = function_env(spec, &paths.home, link_key);
    let zip_path = paths.out.join("zip").join(format!("{}.zip", spec.name));
    let zip_bytes = package::zip_bootstrap(&python_for_zip(&paths.python), &program, &zip_path)?;
    Ok(Row {
        name: spec.name.to_owned(),
        program: bin,
        launch: launch(spec.name, program.clone(), vec![], env, &paths.out),
        zip_bytes: Some(zip_bytes),
        binary_bytes: std::fs::metadata(&program).ok().map(|m| m.len()),
        is_function: true,
        event: spec.bench_event(),
        runs: Vec::new(),
    })
}

/// Lambda's environment for the function, the decision key every function reads, and what
/// its `main` needs besides.
fn function_env(spec: &FunctionSpec, home: &Path, link_key: &LinkKey) -> Vec<(OsString, OsString)> {
    let endpoint = match spec.needs {
        Needs::LinkKeySecret => link_key
            .endpoint
            .clone()
            .unwrap_or_else(|| DEAD_ENDPOINT.into()),
        _ => DEAD_ENDPOINT.into(),
    };
    let mut env = functions::lambda_env(spec.name, spec.memory_mb, &endpoint, home);
    let mut set = |k: &str, v: &str| env.push((OsString::from(k), OsString::from(v)));
    // As the template's Globals give every function; read at init, used lazily (no call).
    set(functions::DECISION_KEY_ENV, functions::BENCH_DECISION_KEY);
    match spec.needs {
        Needs::Nothing => {}
        // rollback_core::plan_store::PARAMETER_ENV; the plan is read per execution.
        Needs::Plan => set("ROLLBACK_PLAN_PARAMETER", "/rollback/mint-replica/plan"),
        Needs::NotifyConfig => {
            set(
                "ROLLBACK_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:rollback-notices",
            );
            set(
                "ROLLBACK_ESCALATION_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:rollback-escalation",
            );
            set(
                "ROLLBACK_APPROVAL_URL",
                "https://approval.example.invalid/approval",
            );
            set("ROLLBACK_APPROVAL_KEY_SECRET", &link_key.secret);
        }
        Needs::LinkKeySecret => set("ROLLBACK_APPROVAL_KEY_SECRET", &link_key.secret),
        Needs::RestoreActions(actions) => set("ROLLBACK_RESTORE_ACTIONS", actions),
    }
    env
}

/// The rows the functions are compared with: the floor, lambda_runtime alone (built
/// alongside the bench, same profile), when it is there; and Python + boto3 unless
/// `--no-python`.
fn comparison_rows(args: &Args, paths: &Paths) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let echo = std::env::current_exe()?.with_file_name("lambda-bench-echo");
    if echo.exists() {
        rows.push(Row {
            name: "(floor) lambda_runtime echo".into(),
            program: "lambda-bench-echo".into(),
            launch: launch(
                "echo",
                echo.clone(),
                vec![],
                functions::lambda_env("echo", 128, DEAD_ENDPOINT, &paths.home),
                &paths.out,
            ),
            zip_bytes: None,
            binary_bytes: std::fs::metadata(&echo).ok().map(|m| m.len()),
            is_function: false,
            event: serde_json::json!({}),
            runs: Vec::new(),
        });
    }
    if !args.no_python {
        if !paths.python.exists() {
            bail!(
                "{} is missing: run `make venv` (boto3 comes with moto), or pass --no-python",
                paths.python.display()
            );
        }
        let handler = functions::python_handler();
        rows.push(Row {
            name: "python + boto3".into(),
            program: "handler.py".into(),
            launch: launch(
                "python",
                paths.python.clone(),
                vec![handler.into_os_string()],
                functions::lambda_env("python", 256, DEAD_ENDPOINT, &paths.home),
                &paths.out,
            ),
            zip_bytes: None,
            binary_bytes: None,
            is_function: false,
            event: serde_json::json!({}),
            runs: Vec::new(),
        });
    }
    Ok(rows)
}

/// One discarded warm-up round, then `runs` measured rounds, round-robin over the rows.
fn measure_rounds(rows: &mut [Row], runs: usize) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let limits = Limits::default();
    println!("load average before: {}", machine::load_average());
    for round in 0..=runs {
        for row in rows.iter_mut() {
            let run = runtime
                .block_on(measure::cold_start(&row.launch, Some(&row.event), limits))
                .with_context(|| format!("cold start of {}", row.name))?;
            // Round 0 warms the page cache and is not counted.
            if round > 0 {
                row.runs.push(run);
            }
        }
    }
    println!("load average after:  {}", machine::load_average());
    println!(
        "runs: {runs} per row after 1 warm-up round, round-robin; one invalid event per run\n"
    );
    Ok(())
}

fn launch(
    name: &str,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    out: &Path,
) -> Launch {
    Launch {
        name: name.to_owned(),
        program,
        args,
        env,
        log: out.join("logs").join(format!("{name}.log")),
    }
}

/// Any Python can zip; prefer the venv's, fall back to the system's.
fn python_for_zip(python: &Path) -> PathBuf {
    if python.exists() {
        python.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// The `[profile.release]` settings, as written in the workspace manifest.
fn release_profile(root: &Path) -> String {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[profile.release]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(", ")
}

fn create_link_key(moto: &rollback_moto::MotoServer, name: &str) -> Result<String> {
    let config = moto.sdk_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = aws_sdk_secretsmanager::Client::new(&config);
        // A fixed bench key: 32 bytes as 64 hex digits, the format LinkKey accepts.
        let out = client
            .create_secret()
            .name(name)
            .secret_string("6b".repeat(32))
            .send()
            .await
            .context("creating the bench link key in moto")?;
        Ok(out.arn().unwrap_or(name).to_owned())
    })
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// KiB → MB (10^6 bytes), the unit of the targets.
fn kib_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn outcome(run: Option<&ColdStart>) -> String {
    match run.and_then(|r| r.outcome.as_ref()) {
        Some(Outcome::Response(body)) => {
            // An HTTP function answers with an API Gateway response: show its status.
            let status = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("statusCode")?.as_u64());
            match status {
                Some(code) => format!("response, HTTP {code}"),
                None => "response".into(),
            }
        }
        Some(Outcome::Error(kind)) => kind.clone(),
        None => "-".into(),
    }
}

/// One row's figures over its runs.
struct Line<'a> {
    row: &'a Row,
    time: Summary,
    init_hwm: u64,
    max_rss: u64,
}

/// Prints each verdict, counting the targets missed.
#[derive(Default)]
struct Verdicts {
    missed: usize,
}

impl Verdicts {
    fn check(&mut self, ok: bool, text: String) {
        if !ok {
            self.missed += 1;
        }
        println!("{} {text}", if ok { "PASS" } else { "MISS" });
    }
}

/// Prints the tables and verdicts; returns how many targets were missed.
fn report(rows: &[Row]) -> usize {
    let lines: Vec<Line> = rows
        .iter()
        .filter_map(|row| {
            let times: Vec<Duration> = row.runs.iter().map(|r| r.to_first_next).collect();
            Some(Line {
                row,
                time: Summary::of(&times)?,
                init_hwm: row.runs.iter().map(|r| r.init_hwm_kib).max().unwrap_or(0),
                max_rss: row.runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0),
            })
        })
        .collect();
    print_cold_starts(&lines);
    let mut verdicts = Verdicts::default();
    println!("\n## Targets");
    check_function_targets(&lines, &mut verdicts);
    print_zips(rows, &mut verdicts);
    verdicts.missed
}

/// The cold start table: times, RSS and the answer to the event, per row.
fn print_cold_starts(lines: &[Line]) {
    println!("## Cold start: exec → first GET /invocation/next");
    println!(
        "{:<28} {:<22} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}  answer to the event",
        "function", "binary", "min ms", "median", "p95", "max", "init RSS MB", "peak RSS MB",
    );
    for l in lines {
        println!(
            "{:<28} {:<22} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11.1} {:>11.1}  {}",
            l.row.name,
            l.row.program,
            ms(l.time.min),
            ms(l.time.median),
            ms(l.time.p95),
            ms(l.time.max),
            kib_mb(l.init_hwm),
            kib_mb(l.max_rss),
            outcome(l.row.runs.first()),
        );
    }
    if lines.iter().any(|l| l.row.name == "approval") {
        println!(
            "(approval: its init makes no AWS call, it reads the link keys on the first request \
             with a link; its event is an HTTP API GET /approval without a link token)"
        );
    }
    println!(
        "(init RSS: max VmHWM at the first /next; peak RSS: max VmHWM after the event was \
         answered; MB = 10^6 bytes)"
    );
}

/// The functions' cold start and peak RSS targets, and the Python comparison.
fn check_function_targets(lines: &[Line], verdicts: &mut Verdicts) {
    let functions: Vec<&Line> = lines.iter().filter(|l| l.row.is_function).collect();
    let (Some(slowest), Some(heaviest)) = (
        functions.iter().max_by_key(|l| l.time.p95),
        functions.iter().max_by_key(|l| l.max_rss),
    ) else {
        return;
    };
    let slowest_median = functions
        .iter()
        .map(|l| l.time.median)
        .max()
        .unwrap_or_default();
    verdicts.check(
        ms(slowest.time.p95) <= TARGET_MS,
        format!(
            "cold start ≤ {TARGET_MS} ms per function: slowest p95 {:.2} ms ({}), slowest median {:.2} ms",
            ms(slowest.time.p95),
            slowest.row.name,
            ms(slowest_median)
        ),
    );
    verdicts.check(
        kib_mb(heaviest.max_rss) <= TARGET_RSS_MB,
        format!(
            "peak RSS ≤ {TARGET_RSS_MB} MB per function: largest {:.1} MB ({})",
            kib_mb(heaviest.max_rss),
            heaviest.row.name
        ),
    );
    if let Some(py) = lines.iter().find(|l| l.row.program == "handler.py") {
        let ratio = ms(py.time.median) / ms(slowest_median).max(1e-9);
        let ratio_p95 = ms(py.time.p95) / ms(slowest.time.p95).max(1e-9);
        verdicts.check(
            ratio >= TARGET_RATIO,
            format!(
                "Python + boto3 / slowest Rust function ≥ {TARGET_RATIO}×: {ratio:.0}× on the median ({:.1} ms / {:.2} ms), {ratio_p95:.0}× on p95",
                ms(py.time.median),
                ms(slowest_median)
            ),
        );
        let lightest_ratio = kib_mb(py.max_rss) / kib_mb(heaviest.max_rss).max(1e-9);
        println!(
            "     memory: Python + boto3 peaks at {:.1} MB, {lightest_ratio:.1}× the heaviest Rust function",
            kib_mb(py.max_rss)
        );
    }
}

/// The zipped release binaries and the package size target.
fn print_zips(rows: &[Row], verdicts: &mut Verdicts) {
    println!("\n## Release binaries: `bootstrap` zipped (deflate), target ≤ {TARGET_ZIP_MB} MB");
    println!(
        "{:<28} {:<22} {:>12} {:>12}",
        "function", "binary", "binary MB", "zip MB"
    );
    for row in rows.iter().filter(|r| r.zip_bytes.is_some()) {
        println!(
            "{:<28} {:<22} {:>12.2} {:>12.2}",
            row.name,
            row.program,
            mb(row.binary_bytes.unwrap_or(0)),
            mb(row.zip_bytes.unwrap_or(0))
        );
    }
    if let Some(largest) = rows
        .iter()
        .filter(|r| r.zip_bytes.is_some())
        .max_by_key(|r| r.zip_bytes)
    {
        verdicts.check(
            mb(largest.zip_bytes.unwrap_or(0)) <= TARGET_ZIP_MB,
            format!(
                "zip ≤ {TARGET_ZIP_MB} MB: largest {:.2} MB ({}); built for {} (the template deploys arm64)",
                mb(largest.zip_bytes.unwrap_or(0)),
                largest.name,
                std::env::consts::ARCH
            ),
        );
    }
}
