//! State transitions per second on a representative definition (~30 states: a Choice loop
//! with tasks, a Parallel of three branches with retrying tasks, a Map of ten items with
//! MaxConcurrency 4 and Wait states) with instant in-process tasks on the virtual clock.
//! When the project's `.venv` has moto, also runs the same definition (tasks as Pass states)
//! on moto's executor and prints the ratio.

use rollback_engine::{Engine, EngineConfig, ExecutionStatus, LambdaRegistry};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 300;
const CONCURRENT: usize = 8;

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let def_path = manifest.join("benches/representative.asl.json");
    let def = std::fs::read_to_string(&def_path).expect("representative definition");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (transitions, elapsed) = rt.block_on(async {
        let registry = LambdaRegistry::new();
        registry.register("work", |v, _| async move { Ok(v) });
        let engine = Engine::new(Arc::new(registry), EngineConfig::default());
        let sm = engine
            .create_state_machine(
                "bench",
                &def,
                "arn:aws:iam::123456789012:role/r",
                &BTreeMap::new(),
            )
            .expect("definition");
        println!("definition: {} states", sm.parsed.state_count());
        let t0 = Instant::now();
        let mut transitions = 0usize;
        for batch in 0..RUNS / CONCURRENT {
            let mut arns = Vec::new();
            for i in 0..CONCURRENT {
                let (arn, _) = engine
                    .start_execution(&sm.arn, Some(&format!("r{batch}-{i}")), Some("{}"))
                    .expect("start");
                arns.push(arn);
            }
            for arn in arns {
                let d = engine
                    .wait_for_completion(&arn, Duration::from_secs(30))
                    .await
                    .expect("describe");
                assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
                transitions += engine
                    .history(&arn)
                    .expect("history")
                    .iter()
                    .filter(|e| e.event_type.ends_with("StateEntered"))
                    .count();
            }
        }
        (transitions, t0.elapsed())
    });
    let rate = transitions as f64 / elapsed.as_secs_f64();
    println!(
        "engine: {transitions} state transitions in {:.2?} over {} executions = {rate:.0} transitions/s",
        elapsed,
        RUNS / CONCURRENT * CONCURRENT
    );

    let python = rollback_moto::venv_python();
    if python.exists() {
        let out = std::process::Command::new(&python)
            .arg(manifest.join("benches/moto_transitions.py"))
            .arg(&def_path)
            .arg("5")
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let moto: f64 = String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0.0);
                if moto > 0.0 {
                    println!(
                        "moto executor (same definition, tasks and waits as Pass): {moto:.0} transitions/s; engine/moto ratio: {:.0}x",
                        rate / moto
                    );
                }
            }
            Ok(o) => println!(
                "moto comparison failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
            Err(e) => println!("moto comparison skipped: {e}"),
        }
    } else {
        println!("moto comparison skipped: no .venv (run `make venv`)");
    }
}
