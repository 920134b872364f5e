//! The drill end to end: the real definition and functions on the local stack, from the alarm
//! to the report, for each way it can end. State is checked in moto and the Kubernetes API,
//! not only in what the drill says.

use std::time::Duration;

use rollbackctl::drill::{Approve, Drill, DrillOptions, LatencyModel, Outcome};

fn options(name: &str) -> DrillOptions {
    DrillOptions {
        output_dir: std::env::temp_dir()
            .join(format!("rollback-drill-test-{name}-{}", std::process::id())),
        timeout: Duration::from_secs(300),
        quiet: true,
        postgres: false,
        ..Default::default()
    }
}

async fn db_identifiers(drill: &Drill) -> Vec<String> {
    let rds = aws_sdk_rds::Client::new(&drill.stack.sdk);
    let out = rds.describe_db_instances().send().await.unwrap();
    out.db_instances()
        .iter()
        .filter_map(|d| d.db_instance_identifier().map(str::to_owned))
        .collect()
}

async fn snapshot_ids(drill: &Drill) -> Vec<String> {
    let rds = aws_sdk_rds::Client::new(&drill.stack.sdk);
    let out = rds.describe_db_snapshots().send().await.unwrap();
    out.db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_owned))
        .collect()
}

async fn release_digest(drill: &Drill, repository: &str) -> String {
    let ecr = aws_sdk_ecr::Client::new(&drill.stack.sdk);
    let out = ecr
        .describe_images()
        .repository_name(repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("prod")
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.image_details()[0].image_digest().unwrap().to_owned()
}

fn on_stable(drill: &Drill) -> bool {
    drill
        .stack
        .seeded
        .images
        .iter()
        .all(|(_, deployment, stable, _)| drill.stack.running_images(deployment).contains(stable))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_drill_rolls_back_app_and_databases_and_writes_the_report() {
    let drill = Drill::prepare(options("approve")).await.unwrap();
    assert!(!on_stable(&drill), "the bad release runs before the drill");
    assert!(drill.stack.health().await.starts_with("503"));

    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.error);
    assert_eq!(report.outcome.exit_code(), 0);
    assert!(on_stable(&drill), "every deployment runs its stable image");
    assert!(drill.stack.health().await.starts_with("200"));
    for (repository, _, stable, _) in &drill.stack.seeded.images {
        let digest = release_digest(&drill, repository).await;
        assert!(
            stable.ends_with(&digest),
            "{repository}:prod points at the stable digest"
        );
    }
    // The database kept its identifier, the previous one is kept aside, the backup exists.
    let dbs = db_identifiers(&drill).await;
    assert!(dbs.contains(&"mint-replica-db".to_owned()), "{dbs:?}");
    assert!(
        dbs.iter()
            .any(|d| d.starts_with("mint-replica-db-pre-rollback-")),
        "{dbs:?}"
    );
    assert!(
        snapshot_ids(&drill)
            .await
            .iter()
            .any(|s| s.starts_with("rollback-mint-replica-"))
    );
    // People were asked, then told.
    let subjects: Vec<&str> = report.emails.iter().map(|m| m.subject.as_str()).collect();
    assert!(
        subjects.iter().any(|s| s.contains("needs your decision")),
        "{subjects:?}"
    );
    assert!(
        subjects.last().unwrap().contains("finished"),
        "{subjects:?}"
    );
    let markdown = std::fs::read_to_string(&report.report_path).unwrap();
    for needle in [
        "## Timeline",
        "drill@example.com",
        "pre-rollback",
        "## Data-loss window",
        "mint-replica-5xx",
    ] {
        assert!(
            markdown.contains(needle),
            "report.md lacks {needle}:\n{markdown}"
        );
    }
    assert!(report.history_path.exists());
    assert!(report.transitions > 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejected_drill_changes_nothing() {
    let drill = Drill::prepare(DrillOptions {
        approve: Approve::Reject,
        ..options("reject")
    })
    .await
    .unwrap();
    let digests_before: Vec<String> = {
        let mut v = Vec::new();
        for (repository, ..) in &drill.stack.seeded.images {
            v.push(release_digest(&drill, repository).await);
        }
        v
    };
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(report.outcome.exit_code(), 3);
    assert!(!on_stable(&drill), "nothing was rolled back");
    for ((repository, ..), before) in drill.stack.seeded.images.iter().zip(digests_before) {
        assert_eq!(release_digest(&drill, repository).await, before);
    }
    let dbs = db_identifiers(&drill).await;
    assert!(
        !dbs.iter()
            .any(|d| d.contains("pre-rollback") || d.contains("restored")),
        "{dbs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failure_mid_restore_ends_in_the_contingency_notice_and_keeps_the_database() {
    let drill = Drill::prepare(DrillOptions {
        fail_at: Some("Swap databases".into()),
        ..options("fail")
    })
    .await
    .unwrap();
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.outcome.exit_code(), 1);
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("--fail-at"),
        "{:?}",
        report.error
    );
    let notice = report.emails.last().expect("a notice went out");
    assert!(
        notice.body.contains("WHERE THE BACKUPS ARE"),
        "{}",
        notice.body
    );
    // The service still has a database at its identifier; the restored copy is beside it.
    let dbs = db_identifiers(&drill).await;
    assert!(dbs.contains(&"mint-replica-db".to_owned()), "{dbs:?}");
    assert!(
        snapshot_ids(&drill)
            .await
            .iter()
            .any(|s| s.starts_with("rollback-mint-replica-"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn realistic_durations_take_the_critical_path_not_the_runbook_sum() {
    let model = LatencyModel::realistic();
    let drill = Drill::prepare(DrillOptions {
        latency: Some(model),
        ..options("mttr")
    })
    .await
    .unwrap();
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.error);
    let critical = model.critical_path(true).as_secs() as i64;
    let interval = drill.stack.seeded.plan.polling.interval_seconds as i64;
    let simulated = report.engine_seconds;
    assert!(
        simulated >= critical,
        "simulated {simulated} s is shorter than the critical path {critical} s"
    );
    assert!(
        simulated <= critical + model.waits(true) as i64 * interval,
        "polling added more than one interval per wait: {simulated} s vs {critical} s"
    );
    assert!(simulated < model.sequential_runbook(true).as_secs() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn point_in_time_drill_restores_to_the_release_time_and_reports_it() {
    let drill = Drill::prepare(DrillOptions {
        restore: rollbackctl::drill::Restore::PointInTime,
        ..options("pitr")
    })
    .await
    .unwrap();
    assert!(
        drill
            .stack
            .seeded
            .plan
            .databases
            .iter()
            .all(|d| !d.restore.is_snapshot()),
        "the drill's plan databases use point-in-time restore"
    );
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.error);
    let approval = report
        .emails
        .iter()
        .find(|m| m.subject.contains("needs your decision"))
        .expect("an approval email");
    assert!(
        approval.body.contains("restore to point in time "),
        "{}",
        approval.body
    );
    let markdown = std::fs::read_to_string(&report.report_path).unwrap();
    for needle in [
        "mint-replica-db: restored to point in time ",
        "mint-replica-docs: restored to point in time ",
        "are not in the copy restored to that point in time",
    ] {
        assert!(
            markdown.contains(needle),
            "report.md lacks {needle}:\n{markdown}"
        );
    }
    let dbs = db_identifiers(&drill).await;
    assert!(dbs.contains(&"mint-replica-db".to_owned()), "{dbs:?}");
}
