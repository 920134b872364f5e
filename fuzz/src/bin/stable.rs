//! The fuzz targets on a stable toolchain: feeds each target N deterministic inputs from
//! `rollback_fuzz::generate` and prints cases/s. A failing input is saved under
//! `artifacts/stable/` (replay it with `cargo +nightly fuzz run <target> <file>` or
//! `stable --replay <target> <file>`).
//!
//!   cargo run --release --no-default-features --bin stable -- [--runs N] [--seed S] [targets…]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::Instant;

use rollback_fuzz::generate::{self, Rng};
use rollback_fuzz::invariants::Outcome;
use rollback_fuzz::targets;

const TARGETS: &[&str] = &["plan", "request", "approval_link"];

fn run_target(name: &str, data: &[u8]) -> Outcome {
    match name {
        "plan" => targets::plan(data),
        "request" => targets::request(data),
        _ => targets::approval_link(data),
    }
}

fn main() -> ExitCode {
    let mut runs: u64 = 100_000;
    let mut seed: u64 = 1;
    let mut chosen = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("--seed S"),
            "--replay" => {
                let (target, file) = (args.next().expect("target"), args.next().expect("file"));
                let data = std::fs::read(&file).expect("readable input");
                println!("{target} on {file}: {:?}", run_target(&target, &data));
                return ExitCode::SUCCESS;
            }
            t if TARGETS.contains(&t) => chosen.push(t.to_owned()),
            other => {
                eprintln!("unknown argument {other:?}; targets are {TARGETS:?}");
                return ExitCode::from(2);
            }
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let plan_seeds = generate::plan_seeds();
    let request_seeds = generate::request_seeds();
    let mut total = 0u64;
    for name in &chosen {
        let mut rng = Rng::new(seed ^ fnv(name));
        let (mut accepted, mut rejected) = (0u64, 0u64);
        let started = Instant::now();
        for case in 0..runs {
            let data = match name.as_str() {
                "plan" => generate::json_input(&mut rng, &plan_seeds),
                "request" => generate::json_input(&mut rng, &request_seeds),
                _ => generate::link_input(&mut rng),
            };
            match catch_unwind(AssertUnwindSafe(|| run_target(name, &data))) {
                Ok(Outcome::Accepted) => accepted += 1,
                Ok(Outcome::Rejected) => rejected += 1,
                Err(_) => {
                    let dir = std::path::Path::new("artifacts/stable");
                    let _ = std::fs::create_dir_all(dir);
                    let file = dir.join(format!("{name}-seed{seed}-case{case}"));
                    let _ = std::fs::write(&file, &data);
                    eprintln!(
                        "FAILED: {name} case {case} (seed {seed}); input saved to {}",
                        file.display()
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        total += runs;
        println!(
            "{name:<14} {runs} cases in {secs:.2} s = {:.0} cases/s \
             (accepted {accepted}, rejected {rejected}), seed {seed}",
            runs as f64 / secs.max(1e-9)
        );
    }
    println!("fuzz: {total} cases, 0 failures");
    ExitCode::SUCCESS
}

/// Each target gets its own input stream from one seed.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
