//! The `snapshot` function: backs up the plan's databases before a rollback restores them
//! (`create`, `status`) and takes the pre-deploy snapshot a rollback restores (`pre-deploy`).
//! See `rollback_core::contract::snapshot` for the contract.
//!
//! Input: `StepInput<SnapshotAction>` JSON, from the state machine or, for `pre-deploy`, from
//! `rollbackctl snapshot --pre-deploy` in a deploy pipeline; output: a `SnapshotOutput`, or a
//! `Rollback.*` error. Deployed as `SnapshotFunction`. Tests: `cargo test -p rollback-snapshot`
//! (moto via `make venv`, Debian PostgreSQL for the baselines).

pub mod baseline;
pub mod rds;

use rollback_core::contract::snapshot::{
    SKIPPED_DRILL, SnapshotAction, SnapshotOutput, SnapshotPurpose, SnapshotReport, tags,
};
use rollback_core::plan::{DatabaseRef, Plan};
use rollback_core::{RollbackError, StepInput, ids, wait};
use serde_json::Value;

use crate::rds::SnapshotInfo;

/// The AWS clients the function uses.
#[derive(Clone, Debug)]
pub struct Clients {
    pub rds: aws_sdk_rds::Client,
    /// The database secrets of the plan's SQL probes that record a baseline (`pre-deploy`).
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Clients {
        Clients {
            rds: aws_sdk_rds::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

/// Lambda handler body: parses and validates the envelope, runs the action.
pub async fn handle(clients: &Clients, payload: Value) -> Result<Value, RollbackError> {
    let input = StepInput::<SnapshotAction>::parse(payload)?;
    let output = run(clients, &input).await?;
    rollback_core::step::to_output(&output)
}

/// Runs one parsed action.
pub async fn run(
    clients: &Clients,
    input: &StepInput<SnapshotAction>,
) -> Result<SnapshotOutput, RollbackError> {
    match &input.action {
        SnapshotAction::Create { databases } => create(clients, input, databases.as_deref()).await,
        SnapshotAction::Status {
            databases,
            purpose,
            release,
            keep_looking,
        } => {
            status(
                clients,
                input,
                databases.as_deref(),
                *purpose,
                release.as_deref(),
                *keep_looking,
            )
            .await
        }
        SnapshotAction::PreDeploy { release, databases } => {
            let release = release_of(input, release.as_deref())?;
            pre_deploy(clients, input, databases.as_deref(), &release).await
        }
    }
}

/// Backs up the current state of each selected database (`rollback-<service>-<exec>-<db>`).
/// A drill checks the databases and reports what it would take, creating nothing.
pub async fn create(
    clients: &Clients,
    input: &StepInput<SnapshotAction>,
    filter: Option<&[String]>,
) -> Result<SnapshotOutput, RollbackError> {
    let drill = input.request.mode.is_drill();
    let mut snapshots = Vec::new();
    for (index, db) in input.plan.select_databases(filter)? {
        let snapshot_id = ids::rollback_snapshot_id(&input.plan.service, &input.execution, &db.id);
        if drill {
            rds::check_source(&clients.rds, db, index).await?;
            snapshots.push(SnapshotReport {
                database: db.id.clone(),
                kind: db.kind,
                snapshot_id,
                purpose: SnapshotPurpose::PreRollback,
                status: SKIPPED_DRILL.to_owned(),
                created_at: None,
                progress_percent: None,
                created_now: false,
            });
            continue;
        }
        let tags = snapshot_tags(
            input,
            SnapshotPurpose::PreRollback,
            input.request.release.as_deref(),
        );
        snapshots.push(
            ensure_snapshot(
                clients,
                db,
                index,
                &snapshot_id,
                SnapshotPurpose::PreRollback,
                tags,
                None,
            )
            .await?,
        );
    }
    Ok(output(snapshots, drill))
}

/// Takes `predeploy-<service>-<release>-<db>` for each selected database, with the baselines of
/// the plan's SQL probes that compare with it (see [`baseline`]). Called by the deploy
/// pipeline, not by a rollback, so the request's mode does not apply.
pub async fn pre_deploy(
    clients: &Clients,
    input: &StepInput<SnapshotAction>,
    filter: Option<&[String]>,
    release: &str,
) -> Result<SnapshotOutput, RollbackError> {
    let mut snapshots = Vec::new();
    for (index, db) in input.plan.select_databases(filter)? {
        let snapshot_id = ids::pre_deploy_snapshot_id(&input.plan.service, release, &db.id);
        let tags = snapshot_tags(input, SnapshotPurpose::PreDeploy, Some(release));
        snapshots.push(
            ensure_snapshot(
                clients,
                db,
                index,
                &snapshot_id,
                SnapshotPurpose::PreDeploy,
                tags,
                Some(&input.plan),
            )
            .await?,
        );
    }
    Ok(output(snapshots, false))
}

/// Reports the snapshots `create` or `pre-deploy` named for this execution / release. With
/// `keep_looking`, looks again for the plan's `polling.status_wait_seconds` until all are
/// available ([`rollback_core::wait`]).
pub async fn status(
    clients: &Clients,
    input: &StepInput<SnapshotAction>,
    filter: Option<&[String]>,
    purpose: SnapshotPurpose,
    release: Option<&str>,
    keep_looking: bool,
) -> Result<SnapshotOutput, RollbackError> {
    wait::keep_checking(
        keep_looking.then_some(&input.plan.polling),
        || look(clients, input, filter, purpose, release),
        |out: &SnapshotOutput| out.all_available,
    )
    .await
}

/// One look at the snapshots [`status`] reports.
async fn look(
    clients: &Clients,
    input: &StepInput<SnapshotAction>,
    filter: Option<&[String]>,
    purpose: SnapshotPurpose,
    release: Option<&str>,
) -> Result<SnapshotOutput, RollbackError> {
    let release = match purpose {
        SnapshotPurpose::PreDeploy => Some(release_of(input, release)?),
        SnapshotPurpose::PreRollback => None,
    };
    let drill = input.request.mode.is_drill() && purpose == SnapshotPurpose::PreRollback;
    let mut snapshots = Vec::new();
    for (_, db) in input.plan.select_databases(filter)? {
        let snapshot_id = match &release {
            Some(release) => ids::pre_deploy_snapshot_id(&input.plan.service, release, &db.id),
            None => ids::rollback_snapshot_id(&input.plan.service, &input.execution, &db.id),
        };
        if drill {
            snapshots.push(SnapshotReport {
                database: db.id.clone(),
                kind: db.kind,
                snapshot_id,
                purpose,
                status: SKIPPED_DRILL.to_owned(),
                created_at: None,
                progress_percent: None,
                created_now: false,
            });
            continue;
        }
        let Some(info) = rds::describe_snapshot(&clients.rds, db.kind, &snapshot_id).await? else {
            let hint = match &release {
                Some(release) => format!(
                    "the deploy pipeline did not take it before release {release:?} \
                     (snapshot action pre-deploy), or it was deleted"
                ),
                None => format!(
                    "the create step has not run for execution {}, or the snapshot was deleted; \
                     run create first",
                    input.execution
                ),
            };
            return Err(RollbackError::SnapshotNotFound(format!(
                "{} snapshot {snapshot_id} of {} ({}) not found: {hint}",
                purpose.as_str(),
                db.id,
                db.kind.as_str()
            )));
        };
        check_healthy(&info, db)?;
        snapshots.push(report(db, purpose, info, false));
    }
    Ok(output(snapshots, drill))
}

/// Finds the snapshot a previous attempt started, or starts it. With `baselines_of`, the
/// plan's baseline probes of `db` run just before the snapshot is started and their values go
/// into its tags; a snapshot that exists already is left as it is.
async fn ensure_snapshot(
    clients: &Clients,
    db: &DatabaseRef,
    index: usize,
    snapshot_id: &str,
    purpose: SnapshotPurpose,
    mut tags: Vec<aws_sdk_rds::types::Tag>,
    baselines_of: Option<&Plan>,
) -> Result<SnapshotReport, RollbackError> {
    if let Some(info) = rds::describe_snapshot(&clients.rds, db.kind, snapshot_id).await? {
        check_owner(&info, db)?;
        check_healthy(&info, db)?;
        tracing::info!(snapshot = snapshot_id, database = %db.id, "snapshot already exists");
        return Ok(report(db, purpose, info, false));
    }
    rds::check_source(&clients.rds, db, index).await?;
    if let Some(plan) = baselines_of {
        tags.extend(baseline::record(&clients.secrets, plan, db).await?);
    }
    match rds::create_snapshot(&clients.rds, db, snapshot_id, tags).await? {
        Some(info) => {
            tracing::info!(snapshot = snapshot_id, database = %db.id, "snapshot started");
            Ok(report(db, purpose, info, true))
        }
        // Created by a concurrent attempt between our describe and create.
        None => {
            let info = rds::describe_snapshot(&clients.rds, db.kind, snapshot_id)
                .await?
                .ok_or_else(|| {
                    RollbackError::SnapshotFailed(format!(
                        "RDS says snapshot {snapshot_id} exists but does not list it; retry"
                    ))
                })?;
            check_owner(&info, db)?;
            Ok(report(db, purpose, info, false))
        }
    }
}

/// A snapshot with our id but of another database is a naming collision, not our backup.
fn check_owner(info: &SnapshotInfo, db: &DatabaseRef) -> Result<(), RollbackError> {
    match info.source.as_deref() {
        Some(source) if !source.eq_ignore_ascii_case(&db.id) => {
            Err(RollbackError::SnapshotFailed(format!(
                "snapshot {} exists but was taken of {source}, not {}; rename or delete it \
                 and retry",
                info.id, db.id
            )))
        }
        _ => Ok(()),
    }
}

fn check_healthy(info: &SnapshotInfo, db: &DatabaseRef) -> Result<(), RollbackError> {
    if matches!(
        info.status.as_str(),
        "failed" | "error" | "deleting" | "deleted"
    ) {
        return Err(RollbackError::SnapshotFailed(format!(
            "snapshot {} of {} is {}: the backup is unusable; check the RDS events for {} and \
             take a manual snapshot before going on",
            info.id, db.id, info.status, db.id
        )));
    }
    Ok(())
}

fn report(
    db: &DatabaseRef,
    purpose: SnapshotPurpose,
    info: SnapshotInfo,
    created_now: bool,
) -> SnapshotReport {
    SnapshotReport {
        database: db.id.clone(),
        kind: db.kind,
        snapshot_id: info.id,
        purpose,
        status: info.status,
        created_at: info.created_at,
        progress_percent: info.progress_percent,
        created_now,
    }
}

fn output(snapshots: Vec<SnapshotReport>, drill: bool) -> SnapshotOutput {
    let all_available = snapshots
        .iter()
        .all(|s| s.status == "available" || s.status == SKIPPED_DRILL);
    SnapshotOutput {
        snapshots,
        all_available,
        drill,
    }
}

fn snapshot_tags(
    input: &StepInput<SnapshotAction>,
    purpose: SnapshotPurpose,
    release: Option<&str>,
) -> Vec<aws_sdk_rds::types::Tag> {
    let mut tags = vec![
        rds::tag(tags::EXECUTION, input.execution.as_str()),
        rds::tag(tags::PURPOSE, purpose.as_str()),
        rds::tag(tags::SERVICE, &input.plan.service),
    ];
    if let Some(release) = release {
        tags.push(rds::tag(tags::RELEASE, release));
    }
    tags
}

fn release_of(
    input: &StepInput<SnapshotAction>,
    release: Option<&str>,
) -> Result<String, RollbackError> {
    let release = release
        .or(input.request.release.as_deref())
        .unwrap_or_default();
    if release.is_empty() || release.len() > 128 || release.chars().any(|c| c.is_control()) {
        return Err(RollbackError::InvalidInput(
            "release: give the release (1-128 printable characters) in the action's `release` \
             field or in request.release"
                .into(),
        ));
    }
    Ok(release.to_owned())
}
