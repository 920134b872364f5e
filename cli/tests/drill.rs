//! The drill end to end: the real definition and functions on the local stack, from the alarm
//! to the report, for each way it can end. State is checked in moto and the Kubernetes API,
//! not only in what the drill says.

mod common;
use common::{options, prod_digest};

use std::time::Duration;

use rollback_stores::ReleaseStatus;
use rollbackctl::drill::{Approve, Drill, DrillOptions, LatencyModel, Outcome, mobile};

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

/// The execution wrote its post-mortem to the report bucket in moto's S3 before its final
/// notice, which links it; the drill checked it is the renderer's text of the execution's first
/// events, and it differs from the drill's own report.md only by what came after.
fn assert_report_in_s3(report: &rollbackctl::drill::DrillReport, outcome: &str) {
    let s3 = report
        .s3_report
        .as_ref()
        .unwrap_or_else(|e| panic!("no report in S3: {e}"));
    let name = report.execution_arn.rsplit(':').next().unwrap();
    assert_eq!(
        s3.uri,
        format!(
            "s3://{}/reports/{name}/report.md",
            rollbackctl::drill::REPORT_BUCKET
        )
    );
    assert!(s3.events < s3.total_events, "{s3:?}");
    assert!(
        s3.only_in_s3
            .iter()
            .any(|l| l.starts_with("- **Report written:** ")),
        "{s3:?}"
    );
    assert!(
        !s3.only_in_s3
            .iter()
            .any(|l| l.starts_with("- **Outcome:**")),
        "the same outcome ({outcome}) as the drill's report: {s3:?}"
    );
    let notice = report.emails.last().expect("a final notice");
    assert!(
        notice
            .body
            .contains(&format!("POST-MORTEM REPORT (timeline, decision, changes, data-loss window; sections to fill in)\n  {}\n", s3.uri)),
        "{}",
        notice.body
    );
    let local = std::fs::read_to_string(&report.report_path).unwrap();
    assert!(
        local.contains(&format!("- **Outcome:** {outcome}\n")),
        "{local}"
    );
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
        let digest = prod_digest(&drill, repository).await.unwrap().unwrap();
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
    // The bad mobile release is stopped in both stores; Android's minimum is raised (its safe
    // build is live), iOS's is not (issue 16).
    let stores = &drill.stack.stores;
    let track = stores.play_track(mobile::PACKAGE, "production").unwrap();
    let statuses: Vec<_> = track.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [ReleaseStatus::Completed, ReleaseStatus::Halted]);
    let seen = mobile::what_users_see(&drill.stack.sdk, stores).await;
    assert!(seen[1].ends_with("Paused"), "{seen:?}");
    assert!(
        seen[2].contains(&format!(
            "{} = {}",
            mobile::ANDROID_MINIMUM,
            mobile::SAFE_VERSION
        )) && seen[2].contains(&format!("{} = 4.0.0", mobile::IOS_MINIMUM)),
        "{seen:?}"
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
    // The plan was read from SSM when the execution started; the approver sees which version.
    let approval = report
        .emails
        .iter()
        .find(|m| m.subject.contains("needs your decision"))
        .unwrap();
    assert!(
        approval
            .body
            .contains("plan: /mint-replica/rollback-plan@1\n"),
        "{}",
        approval.body
    );
    let markdown = std::fs::read_to_string(&report.report_path).unwrap();
    for needle in [
        "## Timeline",
        "drill@example.com",
        "pre-rollback",
        "## Data-loss window",
        "mint-replica-5xx",
        "- **Plan:** `/mint-replica/rollback-plan@1`",
        // The alarm's scope is the plan's triggers.alarm_scope, as the emails say (issue 18 4b).
        "Requested scope: app + database (`app+database`)",
        // What users of the mobile apps now get (issue 16).
        "**Mobile**",
        "halted 4.2.0 (42) at 20 %",
    ] {
        assert!(
            markdown.contains(needle),
            "report.md lacks {needle}:\n{markdown}"
        );
    }
    assert!(
        approval
            .body
            .contains("Scope:      app + database (requested)"),
        "{}",
        approval.body
    );
    assert!(report.history_path.exists());
    assert!(report.transitions > 30);
    assert_report_in_s3(&report, "SUCCEEDED");
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
            v.push(prod_digest(&drill, repository).await.unwrap().unwrap());
        }
        v
    };
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(report.outcome.exit_code(), 3);
    assert!(!on_stable(&drill), "nothing was rolled back");
    for ((repository, ..), before) in drill.stack.seeded.images.iter().zip(digests_before) {
        assert_eq!(
            prod_digest(&drill, repository).await.unwrap().unwrap(),
            before
        );
    }
    let dbs = db_identifiers(&drill).await;
    assert!(
        !dbs.iter()
            .any(|d| d.contains("pre-rollback") || d.contains("restored")),
        "{dbs:?}"
    );
    assert_report_in_s3(&report, "SUCCEEDED");
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
    assert_report_in_s3(&report, "FAILED");
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
    // The drill approves the widest scope: databases and infrastructure.
    let parts = rollbackctl::drill::latency::Parts {
        databases: true,
        infrastructure: true,
        pre_approved_grace: None,
    };
    let critical = model.critical_path(parts).as_secs() as i64;
    let interval = drill.stack.seeded.plan.polling.interval_seconds as i64;
    let simulated = report.engine_seconds;
    assert!(
        simulated >= critical,
        "simulated {simulated} s is shorter than the critical path {critical} s"
    );
    assert!(
        simulated <= critical + model.waits(parts) as i64 * interval,
        "polling added more than one interval per wait: {simulated} s vs {critical} s"
    );
    assert!(simulated < model.sequential_runbook(parts).as_secs() as i64);
}

/// `--pre-approved`: the plan's policy approves the app-only rollback the alarm starts; nobody
/// decides, the grace period passes, and the app is back within the modelled few minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pre_approved_drill_rolls_the_app_back_without_a_decision() {
    let model = LatencyModel::realistic();
    let drill = Drill::prepare(DrillOptions {
        latency: Some(model),
        pre_approved: true,
        ..options("pre-approved")
    })
    .await
    .unwrap();
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.error);
    assert!(on_stable(&drill), "the app is back on its stable images");
    let visited = |state: &str| {
        report
            .history
            .events
            .iter()
            .any(|e| e.detail_str("name") == Some(state))
    };
    assert!(visited("Take the policy decision"));
    assert!(!visited("Request approval"), "nobody was asked");
    assert!(!visited("Start restores"), "the databases stay as they are");
    let markdown = std::fs::read_to_string(&report.report_path).unwrap();
    assert!(
        markdown.contains(rollback_plan::preapprove::POLICY_APPROVER),
        "the report names the policy:\n{markdown}"
    );
    let parts = rollbackctl::drill::latency::Parts {
        databases: false,
        infrastructure: false,
        pre_approved_grace: Some(Duration::from_secs(60)),
    };
    let critical = model.critical_path(parts).as_secs() as i64;
    assert_eq!(
        critical,
        3 * 60 + 30,
        "grace 60 s + rollout 2 min + smoke 30 s"
    );
    let interval = drill.stack.seeded.plan.polling.interval_seconds as i64;
    assert!(
        (critical..=critical + model.waits(parts) as i64 * interval)
            .contains(&report.engine_seconds),
        "simulated {} s vs critical path {critical} s",
        report.engine_seconds
    );
}

/// `--pre-approved --approve reject`: the emailed "stop it now" link, used within the grace
/// period, ends the rollback with nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_it_now_ends_a_pre_approved_drill_with_nothing_changed() {
    let drill = Drill::prepare(DrillOptions {
        approve: Approve::Reject,
        pre_approved: true,
        ..options("pre-approved-stop")
    })
    .await
    .unwrap();
    let mut digests_before = Vec::new();
    for (repository, ..) in &drill.stack.seeded.images {
        digests_before.push(prod_digest(&drill, repository).await.unwrap().unwrap());
    }
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::Rejected, "{:?}", report.error);
    assert!(!on_stable(&drill), "nothing was rolled back");
    for ((repository, ..), before) in drill.stack.seeded.images.iter().zip(digests_before) {
        assert_eq!(
            prod_digest(&drill, repository).await.unwrap().unwrap(),
            before
        );
    }
    assert!(
        report
            .emails
            .iter()
            .any(|m| m.subject.contains("PRE-APPROVED")),
        "the pre-approved email went out"
    );
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

/// Each seeded deployment's (spec.replicas, paused-replicas annotation, paused-by annotation).
fn replicas_and_pause_record(drill: &Drill) -> Vec<(String, i32, Option<String>, Option<String>)> {
    use rollback_core::contract::deploy_undo::{PAUSED_BY, PAUSED_REPLICAS};
    drill
        .stack
        .seeded
        .images
        .iter()
        .map(|(_, deployment, ..)| {
            let d = drill
                .stack
                .kube
                .deployment("mint", deployment)
                .unwrap_or_else(|| panic!("deployment {deployment} exists"));
            let annotation = |key: &str| {
                d.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(key).cloned())
            };
            (
                deployment.clone(),
                d.spec.replicas.unwrap_or(1),
                annotation(PAUSED_REPLICAS),
                annotation(PAUSED_BY),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resume_scales_a_failed_rollbacks_paused_deployments_back_and_is_harmless_twice() {
    use rollbackctl::resume::ResumeOutcome;
    let drill = Drill::prepare(DrillOptions {
        fail_at: Some("Undo deployments".into()),
        ..options("resume")
    })
    .await
    .unwrap();
    let before = replicas_and_pause_record(&drill);
    assert!(
        before.iter().all(|(_, replicas, ..)| *replicas > 0),
        "{before:?}"
    );
    let report = drill.execute().await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{:?}", report.error);
    let execution = report.execution_arn.rsplit(':').next().unwrap().to_owned();

    // The failure left every deployment at zero with its count recorded.
    let paused = replicas_and_pause_record(&drill);
    for ((name, was, ..), (_, now, recorded, by)) in before.iter().zip(&paused) {
        assert_eq!(*now, 0, "{name} is paused after the failure: {paused:?}");
        assert_eq!(
            recorded.as_deref(),
            Some(was.to_string().as_str()),
            "{name}"
        );
        assert_eq!(by.as_deref(), Some(execution.as_str()), "{name}");
    }

    let clients = rollback_deploy_undo::Clients::new(
        &drill.stack.sdk,
        "",
        Some(rollback_deploy_undo::ApiOverride {
            url: drill.stack.kube.url(),
            ca_pem: drill.stack.kube.ca_pem().map(str::to_owned),
        }),
    );
    let resumed =
        rollbackctl::ops::resume(&drill.stack.sfn, &clients, &report.execution_arn, false)
            .await
            .unwrap();
    assert_eq!(resumed.exit_code(), 0, "{:#?}", resumed.lines());
    assert!(resumed.paused && !resumed.drill);
    assert_eq!(resumed.deployments.len(), before.len(), "{resumed:#?}");
    for ((name, was, ..), d) in before.iter().zip(&resumed.deployments) {
        assert_eq!(&d.name, name);
        assert!(
            matches!(d.outcome, ResumeOutcome::Resumed { before: 0, after, .. } if after == *was),
            "{name}: {:?}",
            d.outcome
        );
        assert!(
            d.line().contains(&format!("0 → {was} replicas")),
            "{}",
            d.line()
        );
    }
    // Observed in the Kubernetes API: back at the recorded counts, pause records gone.
    let after = replicas_and_pause_record(&drill);
    for ((name, was, ..), (_, now, recorded, by)) in before.iter().zip(&after) {
        assert_eq!(now, was, "{name} is back at its recorded count: {after:?}");
        assert_eq!(
            (recorded, by),
            (&None, &None),
            "{name}'s pause record is cleared"
        );
    }

    // Again: nothing changes, still success.
    let again = rollbackctl::ops::resume(&drill.stack.sfn, &clients, &report.execution_arn, false)
        .await
        .unwrap();
    assert_eq!(again.exit_code(), 0, "{:#?}", again.lines());
    assert!(
        again
            .deployments
            .iter()
            .all(|d| matches!(d.outcome, ResumeOutcome::NothingToDo { .. })),
        "{again:#?}"
    );
    assert_eq!(replicas_and_pause_record(&drill), after);

    // A wrong ARN names what is wrong and touches nothing.
    let missing = report
        .execution_arn
        .replace(&execution, "no-such-execution");
    let e = rollbackctl::ops::resume(&drill.stack.sfn, &clients, &missing, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("there is no execution"), "{e}");
    let e = rollbackctl::ops::resume(
        &drill.stack.sfn,
        &clients,
        &drill.stack.state_machine_arn,
        false,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("state machine ARN"), "{e}");
}

/// `--fail-at` on every destructive state: the contingency notice states what is live for
/// every database identifier, release tag and deployment, as observed after the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_destructive_failure_reports_observed_states_for_every_resource() {
    for state in [
        "Back up databases",
        "Suspend GitOps sync",
        "Pause writes",
        "Start restores",
        "Swap databases",
        "Check swapped databases",
        "Retag images",
        "Undo deployments",
        "Resume writes",
    ] {
        let drill = Drill::prepare(DrillOptions {
            fail_at: Some(state.into()),
            ..options(&format!("observed-{}", state.replace(' ', "-")))
        })
        .await
        .unwrap();
        let report = drill.execute().await.unwrap();
        assert_eq!(report.outcome, Outcome::Failed, "{state}");
        let notice = report
            .emails
            .iter()
            .find(|m| m.body.contains("WHERE THE BACKUPS ARE"))
            .unwrap_or_else(|| panic!("{state}: no contingency notice"));
        let body = &notice.body;
        for expected in [
            "(observed at ",
            "database mint-replica-db (rds-instance): ",
            "database mint-replica-docs (aurora-cluster): ",
            "ecr mint-replica-backend:prod points at ",
            "ecr mint-replica-frontend:prod points at ",
            "deployment mint/backend-deployment: revision ",
            "deployment mint/frontend-deployment: revision ",
        ] {
            assert!(
                body.contains(expected),
                "{state}: no {expected:?} in\n{body}"
            );
        }
        for never in ["not reported", "NOT OBSERVED", "NO DATABASE"] {
            assert!(!body.contains(never), "{state}: {never:?} in\n{body}");
        }
        // Once the swap completed, the restored databases are kept (the images branch runs
        // beside the databases branch, so a failed retag leaves a completed swap); before it,
        // nothing moved.
        let kept = matches!(
            state,
            "Check swapped databases" | "Retag images" | "Undo deployments" | "Resume writes"
        );
        let db_line = body
            .lines()
            .find(|l| l.contains("database mint-replica-db (rds-instance): "))
            .unwrap();
        assert!(
            db_line.contains(if kept {
                "holds this execution's restored copy"
            } else {
                "holds the database the rollback found"
            }),
            "{state}: {db_line}"
        );
        let dbs = db_identifiers(&drill).await;
        assert!(
            dbs.contains(&"mint-replica-db".to_owned()),
            "{state}: {dbs:?}"
        );
    }
}
