//! Differential conformance: every case under tests/conformance/cases runs on the engine and
//! must match the outcome moto's executor recorded in tests/conformance/fixtures (regenerate
//! with `make conformance-fixtures`), or, for the cases in divergences.json, AWS's documented
//! behaviour.

use rollback_engine::{Engine, EngineConfig, ExecutionStatus, NoTasks};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn read(p: &Path) -> Value {
    let s = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Compares an engine outcome with an expectation; returns a description of any mismatch.
fn mismatch(expected: &Value, got: &rollback_engine::ExecutionDescription) -> Option<String> {
    let status = got.status.as_str();
    if expected["status"] != status {
        return Some(format!(
            "status: expected {}, got {status} (error {:?}, cause {:?})",
            expected["status"], got.error, got.cause
        ));
    }
    if got.status == ExecutionStatus::Succeeded {
        let out: Value = serde_json::from_str(got.output.as_deref().unwrap_or("null")).ok()?;
        if expected["output"] != out {
            return Some(format!(
                "output: expected {}, got {out}",
                expected["output"]
            ));
        }
    } else {
        let want_err = expected.get("error").and_then(Value::as_str);
        if want_err != got.error.as_deref() {
            return Some(format!(
                "error: expected {want_err:?}, got {:?} ({:?})",
                got.error, got.cause
            ));
        }
        // Causes of user errors are deterministic; the engine's own causes are worded differently.
        if let Some(e) = want_err
            && !e.starts_with("States.")
            && expected.get("cause").and_then(Value::as_str) != got.cause.as_deref()
        {
            return Some(format!(
                "cause: expected {:?}, got {:?}",
                expected.get("cause"),
                got.cause
            ));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_cases_match_the_oracle() {
    let divergences = read(&dir().join("divergences.json"));
    let engine = Engine::new(Arc::new(NoTasks), EngineConfig::default());
    let mut names: Vec<String> = std::fs::read_dir(dir().join("cases"))
        .expect("cases dir")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 40,
        "expected at least 40 conformance cases, found {}",
        names.len()
    );

    let mut started = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let case = read(&dir().join("cases").join(format!("{name}.json")));
        let sm = engine
            .create_state_machine(
                &format!("case-{i}"),
                &case["definition"].to_string(),
                "arn:aws:iam::123456789012:role/r",
                &BTreeMap::new(),
            )
            .unwrap_or_else(|e| panic!("{name}: definition rejected: {e}"));
        let (arn, _) = engine
            .start_execution(&sm.arn, Some("run"), Some(&case["input"].to_string()))
            .expect("start");
        started.push((name.clone(), arn));
    }
    let mut failures = Vec::new();
    for (name, arn) in &started {
        let got = engine
            .wait_for_completion(arn, Duration::from_secs(20))
            .await
            .expect("describe");
        let fixture = read(&dir().join("fixtures").join(format!("{name}.json")));
        let expected = match divergences.get(name) {
            Some(d) => {
                // A recorded divergence must still diverge; if moto changed, re-check the case.
                if mismatch(&d["aws"], &fake(&fixture)).is_none() {
                    failures.push(format!(
                        "{name}: listed as a divergence but moto now agrees with AWS; remove it"
                    ));
                }
                d["aws"].clone()
            }
            None => fixture,
        };
        if let Some(m) = mismatch(&expected, &got) {
            failures.push(format!("{name}: {m}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        started.len(),
        failures.join("\n")
    );
}

/// The fixture as if it were an engine outcome, to compare a divergence with moto's result.
fn fake(f: &Value) -> rollback_engine::ExecutionDescription {
    let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
    rollback_engine::ExecutionDescription {
        arn: String::new(),
        name: String::new(),
        state_machine_arn: String::new(),
        status: ExecutionStatus::parse(f["status"].as_str().unwrap_or(""))
            .unwrap_or(ExecutionStatus::Aborted),
        start: chrono::Utc::now(),
        stop: None,
        input: String::new(),
        output: f.get("output").map(|o| o.to_string()),
        error: s("error"),
        cause: s("cause"),
    }
}
