//! Canned function outputs, built from the contract types in `rollback_core::contract` (never
//! hand-written JSON), shaped as the real functions answer for a healthy rollback. Each takes
//! the parsed input, so names derive from the execution and drill mode shows as it would.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rollback_core::contract::{
    deploy_undo, infra, mobile, notify, restore, retag, smoke_test, snapshot,
    snapshot::{SKIPPED_DRILL, SnapshotPurpose},
};
use rollback_core::resolved::{
    DataLossWindow, DatabaseResolution, DeploymentResolution, ImageResolution,
};
use rollback_core::{ExecutionId, Plan, RollbackRequest, ids};

/// When the bad release rolled out (deploy-undo `resolve`'s `release_time`).
pub fn release_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 11, 0, 0).unwrap()
}

/// The release the pre-deploy snapshots were taken for.
pub const RELEASE: &str = "v42";

fn digest(text: &str) -> String {
    rollback_core::fingerprint::fingerprint(&text)
}

pub fn stable_digest(repository: &str) -> String {
    format!("sha256:{}", digest(&format!("{repository}:stable")))
}

pub fn bad_digest(repository: &str) -> String {
    format!("sha256:{}", digest(&format!("{repository}:bad")))
}

pub fn retag_resolve(plan: &Plan) -> retag::ResolveOutput {
    retag::ResolveOutput {
        images: plan
            .images
            .iter()
            .map(|i| ImageResolution {
                repository: i.repository.clone(),
                release_tag: i.release_tag.clone(),
                stable_tag: i.stable_tag.clone(),
                stable_digest: stable_digest(&i.repository),
                release_digest: Some(bad_digest(&i.repository)),
                stable_pushed_at: Some(release_time() - Duration::days(2)),
                release_pushed_at: Some(release_time() - Duration::minutes(10)),
                retag_needed: true,
                immutable_tags: false,
                note: None,
            })
            .collect(),
    }
}

pub fn retag_apply(
    request: &RollbackRequest,
    execution: &ExecutionId,
    images: &[ImageResolution],
) -> retag::ApplyOutput {
    let drill = request.mode.is_drill();
    retag::ApplyOutput {
        drill,
        images: images
            .iter()
            .map(|i| retag::RetagResult {
                repository: i.repository.clone(),
                tag: if drill {
                    retag::drill_tag(execution)
                } else {
                    i.release_tag.clone()
                },
                outcome: if drill {
                    retag::RetagOutcome::DrillTagged
                } else {
                    retag::RetagOutcome::Retagged
                },
                stable_digest: i.stable_digest.clone(),
                previous_digest: i.release_digest.clone(),
                kept_as: (!drill).then(|| retag::rolled_back_tag(execution)),
                media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
                message: "release tag points at the stable digest".into(),
            })
            .collect(),
    }
}

fn image_ref(plan: &Plan, index: usize, digest: String) -> String {
    let repo = plan
        .images
        .get(index % plan.images.len().max(1))
        .map(|i| i.repository.clone())
        .unwrap_or_else(|| "app".into());
    format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{repo}@{digest}")
}

pub fn deployments(plan: &Plan) -> Vec<DeploymentResolution> {
    let Some(cluster) = &plan.cluster else {
        return Vec::new();
    };
    cluster
        .deployments
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let repo = plan
                .images
                .get(n % plan.images.len().max(1))
                .map(|i| i.repository.clone())
                .unwrap_or_default();
            DeploymentResolution {
                name: name.clone(),
                namespace: cluster.namespace.clone(),
                current_revision: 3,
                target_revision: Some(2),
                current_images: vec![image_ref(plan, n, bad_digest(&repo))],
                target_images: vec![image_ref(plan, n, stable_digest(&repo))],
                current_rolled_out_at: Some(release_time()),
                replicas: 2,
                matches_stable: Some(true),
                restart_needed: false,
                pull_policy_keeps_cache: false,
                note: None,
            }
        })
        .collect()
}

pub fn undo_resolve(plan: &Plan) -> deploy_undo::ResolveOutput {
    deploy_undo::ResolveOutput {
        deployments: deployments(plan),
        release_time: plan.cluster.as_ref().map(|_| release_time()),
        warnings: Vec::new(),
        restart_needed: false,
    }
}

/// resolve for a plan whose deployments are tag-pinned (the first one): `restart` follows `undo`.
pub fn undo_resolve_tag_pinned(plan: &Plan) -> deploy_undo::ResolveOutput {
    let mut out = undo_resolve(plan);
    if let Some(d) = out.deployments.first_mut() {
        d.restart_needed = true;
    }
    out.restart_needed = true;
    out
}

/// `suspend-gitops`: every named object suspended by this execution.
pub fn suspend_gitops(
    plan: &Plan,
    request: &RollbackRequest,
    execution: &ExecutionId,
) -> deploy_undo::GitOpsOutput {
    let drill = request.mode.is_drill();
    let gitops = plan
        .cluster
        .as_ref()
        .map(|c| c.gitops.clone())
        .unwrap_or_default();
    let objects = gitops
        .iter()
        .map(|g| {
            let name = g.name().map(str::to_owned);
            deploy_undo::GitOpsResult {
                kind: g.kind,
                namespace: g.namespace().to_owned(),
                outcome: match (&name, drill) {
                    (None, _) => deploy_undo::GitOpsOutcome::NotNamed,
                    (Some(_), true) => deploy_undo::GitOpsOutcome::DryRun,
                    (Some(_), false) => deploy_undo::GitOpsOutcome::Suspended,
                },
                previous: None,
                suspended_by: (!drill).then(|| execution.as_str().to_owned()),
                message: format!("auto-sync suspended by {}", execution.as_str()),
                name,
            }
        })
        .collect();
    deploy_undo::GitOpsOutput {
        drill,
        objects,
        summary: "GitOps auto-sync suspended".into(),
    }
}

/// `restart`: the flagged deployments restarted.
pub fn restart(
    request: &RollbackRequest,
    approved: &[DeploymentResolution],
) -> deploy_undo::RestartOutput {
    let drill = request.mode.is_drill();
    deploy_undo::RestartOutput {
        drill,
        deployments: approved
            .iter()
            .map(|d| deploy_undo::RestartResult {
                name: d.name.clone(),
                namespace: d.namespace.clone(),
                outcome: match (d.restart_needed, drill) {
                    (false, _) => deploy_undo::RestartOutcome::NotNeeded,
                    (true, true) => deploy_undo::RestartOutcome::DryRun,
                    (true, false) => deploy_undo::RestartOutcome::Restarted,
                },
                restarted_at: "2024-05-01T12:00:00Z".into(),
                images: if d.restart_needed {
                    d.target_images.clone()
                } else {
                    Vec::new()
                },
                message: "restarted".into(),
            })
            .collect(),
    }
}

pub fn scale(plan: &Plan, request: &RollbackRequest, pause: bool) -> deploy_undo::ScaleOutput {
    deploy_undo::ScaleOutput {
        drill: request.mode.is_drill(),
        deployments: deployments(plan)
            .into_iter()
            .map(|d| deploy_undo::ScaleResult {
                name: d.name,
                namespace: d.namespace,
                replicas_before: if pause { d.replicas } else { 0 },
                replicas_after: if pause { 0 } else { d.replicas },
                changed: true,
                message: if pause {
                    "scaled to zero"
                } else {
                    "scaled back"
                }
                .into(),
            })
            .collect(),
    }
}

pub fn undo(
    request: &RollbackRequest,
    approved: &[DeploymentResolution],
) -> deploy_undo::UndoOutput {
    let drill = request.mode.is_drill();
    deploy_undo::UndoOutput {
        drill,
        deployments: approved
            .iter()
            .map(|d| deploy_undo::UndoResult {
                name: d.name.clone(),
                namespace: d.namespace.clone(),
                outcome: if drill {
                    deploy_undo::UndoOutcome::DryRun
                } else {
                    deploy_undo::UndoOutcome::RolledBack
                },
                from_revision: d.current_revision,
                to_revision: d.target_revision.unwrap_or(d.current_revision - 1),
                new_revision: (!drill).then_some(d.current_revision + 1),
                images: d.target_images.clone(),
                message: "rolled back".into(),
            })
            .collect(),
    }
}

pub fn rollout_status(plan: &Plan, complete: bool) -> deploy_undo::StatusOutput {
    deploy_undo::StatusOutput {
        gitops: Vec::new(),
        complete,
        deployments: deployments(plan)
            .into_iter()
            .map(|d| deploy_undo::RolloutStatus {
                name: d.name.clone(),
                namespace: d.namespace,
                complete,
                revision: Some(d.current_revision + 1),
                generation: 5,
                observed_generation: 5,
                replicas: d.replicas,
                updated_replicas: if complete { d.replicas } else { 1 },
                total_replicas: d.replicas,
                available_replicas: if complete { d.replicas } else { 1 },
                images: d.target_images,
                paused_replicas: None,
                message: if complete {
                    format!("deployment \"{}\" successfully rolled out", d.name)
                } else {
                    format!(
                        "Waiting for deployment \"{}\" rollout to finish: 1 of 2 updated replicas are available...",
                        d.name
                    )
                },
            })
            .collect(),
    }
}

pub fn restore_resolve(
    plan: &Plan,
    request: &RollbackRequest,
    release_time: Option<DateTime<Utc>>,
) -> restore::ResolveOutput {
    let in_scope = request.scope.includes_database();
    let (cutoff, cutoff_source) = match (request.cutoff, release_time) {
        (Some(c), _) => (c, restore::CutoffSource::Request),
        (None, Some(r)) => (r, restore::CutoffSource::ReleaseTime),
        (None, None) => (Utc::now(), restore::CutoffSource::Now),
    };
    let databases: Vec<DatabaseResolution> = if in_scope {
        plan.databases
            .iter()
            .map(|d| {
                let created = cutoff - Duration::minutes(5);
                DatabaseResolution {
                    database: d.id.clone(),
                    kind: d.kind,
                    snapshot_id: ids::pre_deploy_snapshot_id(&plan.service, RELEASE, &d.id),
                    snapshot_created_at: created,
                    snapshot_type: "manual".into(),
                    release: Some(RELEASE.into()),
                    data_loss: DataLossWindow::new(created, release_time.unwrap_or(cutoff)),
                    method: Default::default(),
                    restore_time: None,
                    restorable_window: None,
                    read_replicas: Vec::new(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    restore::ResolveOutput {
        in_scope,
        cutoff,
        cutoff_source,
        notes: databases
            .iter()
            .map(|d| restore::ResolveNote {
                database: d.database.clone(),
                source: "pre-deploy".into(),
                considered: 3,
                explanation: format!("pre-deploy snapshot of release {RELEASE}"),
            })
            .collect(),
        databases,
    }
}

pub fn restore_start(
    request: &RollbackRequest,
    execution: &ExecutionId,
    resolved: &[DatabaseResolution],
) -> restore::StartOutput {
    let drill = request.mode.is_drill();
    restore::StartOutput {
        drill,
        databases: resolved
            .iter()
            .map(|d| restore::StartedRestore {
                database: d.database.clone(),
                kind: d.kind,
                snapshot_id: d.snapshot_id.clone(),
                target: ids::restore_identifier(&d.database, execution, drill),
                instances: Vec::new(),
                status: "creating".into(),
                created_now: true,
            })
            .collect(),
    }
}

pub fn restore_status(
    plan: &Plan,
    request: &RollbackRequest,
    execution: &ExecutionId,
    available: bool,
) -> restore::StatusOutput {
    let drill = request.mode.is_drill();
    restore::StatusOutput {
        drill,
        databases: plan
            .databases
            .iter()
            .map(|d| restore::TargetStatus {
                database: d.id.clone(),
                kind: d.kind,
                target: ids::restore_identifier(&d.id, execution, drill),
                swapped: false,
                status: if available { "available" } else { "creating" }.into(),
                instances: Vec::new(),
                available,
            })
            .collect(),
        all_available: available,
    }
}

pub fn swap(
    plan: &Plan,
    request: &RollbackRequest,
    execution: &ExecutionId,
) -> restore::SwapOutput {
    let drill = request.mode.is_drill();
    let databases: Vec<restore::SwapReport> = plan
        .databases
        .iter()
        .map(|d| restore::SwapReport {
            database: d.id.clone(),
            kind: d.kind,
            state: restore::SwapState::Done,
            aside: ids::aside_identifier(&d.id, execution),
            restored_from: ids::restore_identifier(&d.id, execution, drill),
            note: "renamed".into(),
        })
        .collect();
    restore::SwapOutput {
        drill,
        complete: true,
        aside: databases.iter().map(|d| d.aside.clone()).collect(),
        databases,
    }
}

/// Nothing to put back: the scripted databases are never left mid-swap.
pub fn revert(request: &RollbackRequest) -> restore::RevertOutput {
    restore::RevertOutput {
        drill: request.mode.is_drill(),
        complete: true,
        needs_person: false,
        kept_swap: false,
        databases: Vec::new(),
    }
}

pub fn observe(request: &RollbackRequest) -> restore::ObserveOutput {
    restore::ObserveOutput {
        drill: request.mode.is_drill(),
        databases: Vec::new(),
    }
}

pub fn cleanup_drill(plan: &Plan, execution: &ExecutionId) -> restore::CleanupOutput {
    restore::CleanupOutput {
        complete: true,
        databases: plan
            .databases
            .iter()
            .map(|d| restore::CleanupReport {
                database: d.id.clone(),
                target: ids::restore_identifier(&d.id, execution, true),
                state: "deleted".into(),
                instances: Vec::new(),
            })
            .collect(),
    }
}

pub fn snapshots(
    plan: &Plan,
    request: &RollbackRequest,
    execution: &ExecutionId,
    available: bool,
) -> snapshot::SnapshotOutput {
    let drill = request.mode.is_drill();
    snapshot::SnapshotOutput {
        snapshots: plan
            .databases
            .iter()
            .map(|d| snapshot::SnapshotReport {
                database: d.id.clone(),
                kind: d.kind,
                snapshot_id: ids::rollback_snapshot_id(&plan.service, execution, &d.id),
                purpose: SnapshotPurpose::PreRollback,
                status: if drill {
                    SKIPPED_DRILL.into()
                } else if available {
                    "available".into()
                } else {
                    "creating".into()
                },
                created_at: Some(Utc::now()),
                progress_percent: Some(if available { 100 } else { 0 }),
                created_now: !drill && !available,
            })
            .collect(),
        all_available: drill || available,
        drill,
    }
}

pub fn smoke(passed: bool) -> smoke_test::SmokeReport {
    let check = smoke_test::CheckResult {
        kind: smoke_test::CheckKind::Http,
        name: "api health".into(),
        passed,
        elapsed_ms: 12,
        attempts: if passed { 1 } else { 3 },
        reason: if passed {
            "200 OK in 12 ms".into()
        } else {
            "503 Service Unavailable".into()
        },
    };
    smoke_test::SmokeReport {
        passed,
        summary: if passed {
            "1 of 1 checks passed".into()
        } else {
            "0 of 1 checks passed; failed: api health (503 Service Unavailable)".into()
        },
        checks: vec![check],
        started_at: Utc::now(),
        elapsed_ms: 12,
        budget_exhausted: false,
    }
}

pub fn notified(action: &str, execution: &ExecutionId) -> notify::NotifyOutput {
    notify::NotifyOutput {
        message_id: format!("msg-{}-{action}", execution.short()),
        topic_arn: "arn:aws:sns:us-east-1:123456789012:rollback-notices".into(),
        subject: format!("rollback {action}"),
    }
}

/// What notify's `report` answers: the post-mortem's location in the stack's report bucket.
pub fn report_written(execution: &ExecutionId) -> notify::ReportOutput {
    let base = format!("reports/{execution}");
    notify::ReportOutput {
        bucket: "mint-replica-rollback-reports".into(),
        uri: format!("s3://mint-replica-rollback-reports/{base}/report.md"),
        history_uri: format!("s3://mint-replica-rollback-reports/{base}/history.json"),
        console_url: format!(
            "https://console.aws.amazon.com/s3/object/mint-replica-rollback-reports?region=us-east-1&prefix={base}/report.md"
        ),
        report_key: format!("{base}/report.md"),
        history_key: format!("{base}/history.json"),
        events: 100,
        version_id: None,
    }
}

/// `infra resolve`: the stable commit differs from the current one.
pub fn infra_resolve(plan: &Plan, execution: &ExecutionId) -> infra::InfrastructureResolution {
    let section = plan
        .infrastructure
        .as_ref()
        .expect("a plan with infrastructure");
    infra::InfrastructureResolution {
        codebuild_project: section.codebuild_project.clone(),
        stable_commit: "abc1234f00dfeedbeef0123456789abcdef01234".into(),
        current_commit: Some("def5678badc0ffee0123456789abcdef01234567".into()),
        needs_plan: true,
        artifact_bucket: section.artifact_bucket.clone(),
        artifact_key: infra::artifact_key(&section.artifact_prefix, &plan.service, execution),
        plan_build: None,
        plan_sha256: None,
        summary: None,
        plan_error: None,
    }
}

/// `infra plan` / `apply`: the build started.
pub fn infra_build(
    resolved: &infra::InfrastructureResolution,
    purpose: infra::BuildPurpose,
) -> infra::BuildRef {
    infra::BuildRef {
        id: format!("{}:{}-build", resolved.codebuild_project, purpose.as_str()),
        purpose,
        codebuild_project: resolved.codebuild_project.clone(),
        source_version: resolved.stable_commit.clone(),
        artifact_bucket: resolved.artifact_bucket.clone(),
        artifact_key: resolved.artifact_key.clone(),
        started_now: true,
        skipped: None,
    }
}

/// `infra status`: the build finished (`done`) or is running.
pub fn infra_status(build: &infra::BuildRef, done: bool) -> infra::BuildStatus {
    infra::BuildStatus {
        build: build.clone(),
        done,
        status: if done { "SUCCEEDED" } else { "IN_PROGRESS" }.into(),
        phase: None,
        started_at: None,
        ended_at: None,
        log_url: None,
    }
}

/// `infra summary`: 1 to add, 2 to change, 0 to destroy.
pub fn infra_summary(
    resolved: &infra::InfrastructureResolution,
    build: &infra::BuildRef,
) -> infra::InfrastructureResolution {
    infra::InfrastructureResolution {
        plan_build: Some(build.id.clone()),
        plan_sha256: Some("e".repeat(64)),
        summary: Some(rollback_core::terraform_plan::PlanSummary {
            terraform_version: "1.9.8".into(),
            add: 1,
            change: 2,
            ..Default::default()
        }),
        ..resolved.clone()
    }
}

/// `mobile resolve` / `status`: Play production with 4.1.2 completed and 4.2.0 at 20 %.
pub fn mobile_resolve(plan: &Plan) -> mobile::MobileResolution {
    let android = plan.mobile.as_ref().and_then(|m| m.android.as_ref());
    let release = |name: &str, code: &str, status, fraction| mobile::PlayRelease {
        name: Some(name.into()),
        version_codes: vec![code.into()],
        status,
        user_fraction: fraction,
    };
    let completed = release("4.1.2", "41", mobile::PlayStatus::Completed, None);
    let staged = release("4.2.0", "42", mobile::PlayStatus::InProgress, Some(0.2));
    mobile::MobileResolution {
        android: android.map(|a| mobile::PlayResolution {
            package_name: a.package_name.clone(),
            track: a.track.clone(),
            releases: vec![completed.clone(), staged.clone()],
            to_halt: Some(staged),
            already_halted: None,
            completed: Some(completed),
            minimum_version: None,
        }),
        ios: None,
        error: None,
    }
}

/// `mobile halt`: the staged release halted.
pub fn mobile_halt() -> mobile::HaltOutput {
    mobile::HaltOutput {
        drill: false,
        android: Some(mobile::PlatformHalt {
            outcome: mobile::HaltOutcome::Halted,
            summary: "Google Play production: halted 4.2.0 (42) at 20 %".into(),
        }),
        ios: None,
        summary: String::new(),
    }
    .summarized()
}

/// `mobile raise-minimum`: no minimum version in the plan.
pub fn mobile_raise() -> mobile::RaiseOutput {
    mobile::RaiseOutput {
        drill: false,
        android: None,
        ios: None,
        summary: String::new(),
    }
    .summarized()
}
