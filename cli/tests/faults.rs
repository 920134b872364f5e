//! Proof under faults: the full drill under seeded random AWS fault schedules (throttling,
//! 5xx, dropped connections, answers lost after moto acted) and Kubernetes API errors, and
//! crash-in-the-middle (the execution is stopped at a state boundary and started again).
//! After every run the invariants below must hold.
//!
//! The default run is small enough for `make test`; `make faults` runs the full counts
//! (`ROLLBACK_FAULT_RUNS=200`, `ROLLBACK_CRASH_EVERY=1`). A failing run prints its seed.

mod common;

use std::time::Duration;

use rollback_fault_proxy::{FaultKind, FaultSchedule};
use rollbackctl::drill::{Drill, DrillOptions, DrillReport, Outcome};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fault run's drill: quiet unless `ROLLBACK_FAULT_VERBOSE` is set.
fn options(tag: &str) -> DrillOptions {
    DrillOptions {
        timeout: Duration::from_secs(240),
        quiet: std::env::var("ROLLBACK_FAULT_VERBOSE").is_err(),
        ..common::options(tag)
    }
}

/// What must be true after any run, whatever failed along the way.
async fn check_invariants(drill: &Drill, report: &DrillReport) -> Result<(), String> {
    let sdk = &drill.stack.sdk;
    // 1. The execution ended in success, or in the contingency path with a notice.
    match report.outcome {
        Outcome::RolledBack => {
            let last = report.emails.last().ok_or("no notice at all")?;
            if !last.subject.contains("finished") {
                return Err(format!(
                    "succeeded, but the last notice is {:?}",
                    last.subject
                ));
            }
        }
        Outcome::Failed => {
            if !report
                .emails
                .iter()
                .any(|m| m.body.contains("WHERE THE BACKUPS ARE"))
            {
                return Err(format!(
                    "ended {} ({:?}) without a contingency notice",
                    report.status, report.error
                ));
            }
        }
        Outcome::Rejected => return Err("nobody rejected".into()),
    }
    // 2. Every database still exists at its identifier (the original or the restored copy);
    //    nothing without a backup was deleted; retries made no second copy.
    let rds = aws_sdk_rds::Client::new(sdk);
    let instances: Vec<String> = rds
        .describe_db_instances()
        .send()
        .await
        .map_err(|e| format!("DescribeDBInstances: {e}"))?
        .db_instances()
        .iter()
        .filter_map(|d| d.db_instance_identifier().map(str::to_owned))
        .collect();
    if !instances.iter().any(|i| i == "mint-replica-db") {
        return Err(format!("mint-replica-db is gone: {instances:?}"));
    }
    let clusters: Vec<String> = rds
        .describe_db_clusters()
        .send()
        .await
        .map_err(|e| format!("DescribeDBClusters: {e}"))?
        .db_clusters()
        .iter()
        .filter_map(|c| c.db_cluster_identifier().map(str::to_owned))
        .collect();
    if !clusters.iter().any(|c| c == "mint-replica-docs") {
        return Err(format!("mint-replica-docs is gone: {clusters:?}"));
    }
    // Every plan database identifier resolves to an available database (renames finish
    // asynchronously: a few describes let a rename asked for at the end complete).
    for (id, cluster) in [("mint-replica-db", false), ("mint-replica-docs", true)] {
        let mut status = String::new();
        for _ in 0..5 {
            status = if cluster {
                rds.describe_db_clusters()
                    .db_cluster_identifier(id)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.db_clusters().first()?.status().map(str::to_owned))
            } else {
                rds.describe_db_instances()
                    .db_instance_identifier(id)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| {
                        o.db_instances()
                            .first()?
                            .db_instance_status()
                            .map(str::to_owned)
                    })
            }
            .unwrap_or_else(|| "missing".into());
            if status == "available" {
                break;
            }
        }
        if status != "available" {
            return Err(format!("{id} resolves to no available database ({status})"));
        }
    }
    // A failure notice states what was observed, never "not reported".
    if report.outcome == Outcome::Failed
        && let Some(notice) = report
            .emails
            .iter()
            .find(|m| m.body.contains("WHERE THE BACKUPS ARE"))
        && notice.body.contains("not reported")
    {
        return Err("the contingency notice reports a resource as \"not reported\"".into());
    }
    let snaps = rds
        .describe_db_snapshots()
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cluster_snaps = rds
        .describe_db_cluster_snapshots()
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let snapshot_ids: Vec<&str> = snaps
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .chain(
            cluster_snaps
                .db_cluster_snapshots()
                .iter()
                .filter_map(|s| s.db_cluster_snapshot_identifier()),
        )
        .collect();
    for (db, identifiers) in [
        ("mint-replica-db", &instances),
        ("mint-replica-docs", &clusters),
    ] {
        // Per execution (the 8-hex suffix): at most one restored copy and one database aside,
        // however often a step was retried; and whatever was put aside has its backup.
        let mut per_execution: std::collections::BTreeMap<&str, (usize, usize)> =
            Default::default();
        for id in identifiers.iter() {
            if let Some(exec) = id
                .strip_prefix(&format!("{db}-restored-"))
                .filter(|e| e.len() == 8)
            {
                per_execution.entry(exec).or_default().0 += 1;
            }
            if let Some(exec) = id
                .strip_prefix(&format!("{db}-pre-rollback-"))
                .filter(|e| e.len() == 8)
            {
                per_execution.entry(exec).or_default().1 += 1;
                let backup = format!("rollback-mint-replica-{exec}-{db}");
                if !snapshot_ids.contains(&backup.as_str()) {
                    return Err(format!(
                        "{db} was put aside as {id} without the backup snapshot {backup}"
                    ));
                }
            }
        }
        if let Some((exec, counts)) = per_execution
            .iter()
            .find(|(_, (restored, aside))| *restored > 1 || *aside > 1)
        {
            return Err(format!(
                "{db}: execution {exec} duplicated resources {counts:?}: {identifiers:?}"
            ));
        }
    }
    // 3. Every release tag points at a digest that exists.
    for (repository, ..) in &drill.stack.seeded.images {
        if common::prod_digest(drill, repository).await?.is_none() {
            return Err(format!("{repository}:prod points nowhere"));
        }
    }
    // 4. Each deployment runs a known revision: all bad or all stable, never a mix or nothing.
    for (_, deployment, stable, bad) in &drill.stack.seeded.images {
        let running = drill.stack.running_images(deployment);
        if !(running.contains(stable) || running.contains(bad)) {
            return Err(format!(
                "{deployment} runs {running:?}, neither the stable nor the bad image"
            ));
        }
        if report.outcome == Outcome::RolledBack && !running.contains(stable) {
            return Err(format!("rolled back, but {deployment} runs {running:?}"));
        }
    }
    // 5. The report says what happened.
    let markdown = std::fs::read_to_string(&report.report_path).map_err(|e| e.to_string())?;
    if !markdown.contains(&format!("**Outcome:** {}", report.status)) {
        return Err(format!(
            "report.md does not state the outcome {}",
            report.status
        ));
    }
    Ok(())
}

/// How one fault run ended: the outcome and, for a contingency, the execution's error.
async fn run_with_faults(seed: u64) -> Result<(Outcome, Option<String>), String> {
    let kinds = [
        FaultKind::Throttle,
        FaultKind::InternalError,
        FaultKind::Unavailable,
        FaultKind::Drop,
        FaultKind::DropAfterForward,
        FaultKind::ErrorAfterForward,
    ];
    let rate = 0.05 + (seed % 4) as f64 * 0.05;
    let schedule = FaultSchedule::seeded(seed, rate, &kinds);
    let drill = Drill::prepare(DrillOptions {
        faults: Some(schedule),
        ..options(&format!("seed{seed}"))
    })
    .await
    .map_err(|e| format!("setup: {e:#}"))?;
    // The Kubernetes API fails a few requests too.
    drill.stack.kube.fail_next(
        (seed % 3) as u32,
        if seed.is_multiple_of(2) { 500 } else { 503 },
    );
    let report = drill.execute().await.map_err(|e| format!("drill: {e:#}"))?;
    let checked = check_invariants(&drill, &report).await;
    let proxy = drill
        .stack
        .fault_proxy
        .as_ref()
        .map(|p| p.report())
        .unwrap_or_default();
    checked.map_err(|e| format!("{e}\n{}", proxy.lines().next().unwrap_or_default()))?;
    Ok((report.outcome, report.error.clone()))
}

/// The first words of a contingency's error, to count causes across runs.
fn cause_of(error: Option<&str>) -> String {
    let text = error.unwrap_or("(no error recorded)");
    text.split_whitespace()
        .take(8)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_drill_keeps_its_invariants_under_random_aws_and_kubernetes_faults() {
    let runs = env_number("ROLLBACK_FAULT_RUNS", 4);
    let first_seed = env_number("ROLLBACK_FAULT_SEED", 1);
    let mut failures = Vec::new();
    let mut rolled_back = 0;
    let mut causes: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for seed in first_seed..first_seed + runs {
        match run_with_faults(seed).await {
            Ok((Outcome::RolledBack, _)) => rolled_back += 1,
            Ok((_, error)) => causes
                .entry(cause_of(error.as_deref()))
                .or_default()
                .push(seed),
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
    }
    println!(
        "{runs} fault schedules: {rolled_back} rolled back, {} contingency, {} invariant failures",
        runs as usize - rolled_back - failures.len(),
        failures.len()
    );
    // Why the contingencies ended there (a rise here with the same seeds is worth a look).
    for (cause, seeds) in &causes {
        println!("  contingency ×{}: {cause} (seeds {seeds:?})", seeds.len());
    }
    assert!(
        failures.is_empty(),
        "rerun with ROLLBACK_FAULT_SEED=<seed> ROLLBACK_FAULT_RUNS=1:\n{}",
        failures.join("\n")
    );
    assert!(rolled_back > 0, "retries should carry most runs through");
}

/// The outage the issue found: every rename's answer lost after RDS carried it out (and, in
/// the second run, turned into a 500). The swap must observe, carry on, and leave every
/// identifier with its database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_rename_answer_lost_still_leaves_every_identifier_with_its_database() {
    for kind in [FaultKind::DropAfterForward, FaultKind::ErrorAfterForward] {
        let mut schedule = FaultSchedule::none();
        for operation in ["ModifyDBInstance", "ModifyDBCluster"] {
            schedule = schedule.fail_next(100, operation, kind);
        }
        let drill = Drill::prepare(DrillOptions {
            faults: Some(schedule),
            ..options(&format!("renames-{kind}"))
        })
        .await
        .unwrap();
        let report = drill.execute().await.unwrap();
        let faulted = drill
            .stack
            .fault_proxy
            .as_ref()
            .map(|p| p.faulted_count())
            .unwrap_or_default();
        assert!(faulted >= 4, "{kind}: only {faulted} renames were faulted");
        if let Err(e) = check_invariants(&drill, &report).await {
            panic!("{kind}: {e}");
        }
        // The swap itself must get through; a contingency may only come from a later step
        // (the drill's alarm follows the demo app in real time and can lag the engine).
        let databases_failed = report
            .emails
            .iter()
            .any(|m| m.body.contains("[failed] databases"));
        assert!(
            !databases_failed,
            "{kind}: the databases branch failed: {:?}",
            report.error
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_a_state_boundary_and_a_restart_keep_the_invariants() {
    // The drill enters about 50 states; crash after every `step`-th one.
    let step = env_number("ROLLBACK_CRASH_EVERY", 17) as usize;
    let mut failures = Vec::new();
    let mut runs = 0;
    for at in (1..=50).step_by(step) {
        runs += 1;
        let drill = Drill::prepare(DrillOptions {
            crash_at_transition: Some(at),
            ..options(&format!("crash{at}"))
        })
        .await
        .unwrap();
        let report = drill.execute().await.unwrap();
        if let Err(e) = check_invariants(&drill, &report).await {
            failures.push(format!("crash after {at} transitions: {e}"));
        }
    }
    println!("{runs} crash points checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
