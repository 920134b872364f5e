//! `start`: restore the approved snapshot (or point in time) beside the live database, with
//! its settings (see [`settings`] for what is copied and how).

pub mod settings;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{ServerlessV2ScalingConfiguration, Tag};
use chrono::{DateTime, Utc};
use rollback_core::contract::restore::{StartedRestore, tags};
use rollback_core::plan::{DatabaseKind, DatabaseRef};
use rollback_core::resolved::DatabaseResolution;
use rollback_core::{ExecutionId, RollbackError, ids};

use crate::db::{self, DbState, error_code};
use crate::resolve::Candidate;
use settings::{ClusterSettings, InstanceSettings, MemberSettings, merged_tags};

/// Tag on a point-in-time copy: the exact time it was restored to (RFC 3339).
pub const RESTORE_TIME_TAG: &str = "rollback:restore-time";

/// What the copy is made from.
#[derive(Debug, Clone, Copy)]
enum RestoreFrom<'a> {
    Snapshot(&'a str),
    PointInTime(DateTime<Utc>),
}

/// What `start` needs besides the resolution.
pub struct Target<'a> {
    pub db: &'a DatabaseRef,
    pub execution: &'a ExecutionId,
    pub drill: bool,
}

impl Target<'_> {
    pub fn id(&self) -> String {
        ids::restore_identifier(&self.db.id, self.execution, self.drill)
    }

    pub fn role(&self) -> &'static str {
        if self.drill { "drill" } else { "restored" }
    }

    /// True when `state` was created by this execution's restore of this very database (and
    /// is not someone's database that happens to carry the name, nor this execution's copy of
    /// another plan database): execution, role and source (`rollback:source` = the plan
    /// database id) tags all match. RDS identifiers are case-insensitive, so is the source.
    pub fn owns(&self, state: &DbState) -> bool {
        state.tag(tags::EXECUTION) == Some(self.execution.as_str())
            && state.tag(tags::ROLE) == Some(self.role())
            && state
                .tag(tags::SOURCE)
                .is_some_and(|source| source.eq_ignore_ascii_case(&self.db.id))
    }
}

/// Restores one database. Idempotent: an existing target of this execution is returned (and a
/// cluster's missing instances are created); after a swap, the swapped database is reported.
pub async fn start_one(
    rds: &Client,
    target: &Target<'_>,
    resolution: &DatabaseResolution,
) -> Result<StartedRestore, RollbackError> {
    let db = target.db;
    let target_id = target.id();
    let report =
        |status: String, instances: Vec<String>, created_now: bool, at: String| StartedRestore {
            database: db.id.clone(),
            kind: db.kind,
            snapshot_id: resolution.snapshot_id.clone(),
            target: at,
            instances,
            status,
            created_now,
        };

    if let Some(existing) = db::describe(rds, db.kind, &target_id).await? {
        if !target.owns(&existing) {
            return Err(RollbackError::RestoreFailed(format!(
                "{target_id} already exists but is not this execution's {} copy of {}; \
                 nothing was restored. Rename or delete {target_id} and retry",
                target.role(),
                db.id
            )));
        }
        let instances = if db.kind.is_cluster() {
            ensure_members(rds, target, &existing, None).await?
        } else {
            Vec::new()
        };
        return Ok(report(existing.status, instances, false, target_id));
    }
    // A retry after the swap: the restored database already sits at the original identifier.
    if !target.drill
        && let Some(current) = db::describe(rds, db.kind, &db.id).await?
        && target.owns(&current)
    {
        return Ok(report(current.status, Vec::new(), false, db.id.clone()));
    }

    let from = restore_from(rds, db, resolution).await?;
    let tags = restore_tags(target, from);
    if db.kind.is_cluster() {
        let (state, instances) = start_cluster(rds, target, &target_id, from, tags).await?;
        Ok(report(state.status, instances, true, target_id))
    } else {
        let state = start_instance(rds, target, &target_id, from, tags).await?;
        Ok(report(state.status, Vec::new(), true, target_id))
    }
}

/// What the copy is made from: the approved restore time, still restorable, or the approved
/// snapshot, still the one approved.
async fn restore_from<'a>(
    rds: &Client,
    db: &DatabaseRef,
    resolution: &'a DatabaseResolution,
) -> Result<RestoreFrom<'a>, RollbackError> {
    if resolution.is_point_in_time() {
        let at = resolution.restore_time.ok_or_else(|| {
            RollbackError::InvalidInput(format!(
                "resolved: {} is a point-in-time resolution without restore_time; pass the \
                 databases resolve returned, unchanged",
                db.id
            ))
        })?;
        // No snapshot to re-check: the time must still be restorable (RDS may have aged it
        // out of the retention since the approval).
        let window = crate::resolve_pitr::window(rds, db, Utc::now()).await?;
        crate::resolve_pitr::check(db, at, &window, "the approved restore time")?;
        Ok(RestoreFrom::PointInTime(at))
    } else {
        check_snapshot(rds, db, resolution).await?;
        Ok(RestoreFrom::Snapshot(&resolution.snapshot_id))
    }
}

/// The source database is gone, so there are no settings to copy.
fn source_missing(db: &DatabaseRef) -> RollbackError {
    RollbackError::RestoreFailed(format!(
        "{} ({}) no longer exists, so its settings (class, network, parameter groups, \
         storage, monitoring, tags) cannot be copied; nothing was restored",
        db.id,
        db.kind.as_str()
    ))
}

/// This execution's tags on the copy: execution, role, source, and what it is made from.
fn restore_tags(target: &Target<'_>, from: RestoreFrom<'_>) -> Vec<Tag> {
    let db = target.db;
    let mut tags = vec![
        db::tag(tags::EXECUTION, target.execution.as_str()),
        db::tag(tags::ROLE, target.role()),
        db::tag(tags::SOURCE, &db.id),
    ];
    match from {
        RestoreFrom::Snapshot(id) => tags.push(db::tag(tags::SNAPSHOT, id)),
        RestoreFrom::PointInTime(at) => tags.push(db::tag(
            RESTORE_TIME_TAG,
            &at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )),
    }
    tags
}

/// Restores a cluster with the source's settings, then creates its instances. Returns the
/// cluster's state and its instance ids.
async fn start_cluster(
    rds: &Client,
    target: &Target<'_>,
    target_id: &str,
    from: RestoreFrom<'_>,
    mut tags: Vec<Tag>,
) -> Result<(DbState, Vec<String>), RollbackError> {
    let db = target.db;
    let source = db::describe_cluster(rds, &db.id)
        .await?
        .ok_or_else(|| source_missing(db))?;
    let member_ids: Vec<String> = DbState::from(&source).members;
    let cluster = ClusterSettings::of(&source, db.kind, target.drill);
    let members = planned_members(rds, target, &db.id, &member_ids).await?;
    tags.push(db::tag(tags::INSTANCES, &members.len().to_string()));
    let tags = merged_tags(&cluster.source_tags, tags);
    let state = restore_cluster(rds, target, target_id, from, &cluster, tags).await?;
    let instances = ensure_members(rds, target, &state, Some(members)).await?;
    tracing::info!(database = %db.id, target = %target_id, "cluster restore started");
    Ok((state, instances))
}

/// Restores an instance with the source's settings.
async fn start_instance(
    rds: &Client,
    target: &Target<'_>,
    target_id: &str,
    from: RestoreFrom<'_>,
    tags: Vec<Tag>,
) -> Result<DbState, RollbackError> {
    let db = target.db;
    let source = db::describe_instance(rds, &db.id)
        .await?
        .ok_or_else(|| source_missing(db))?;
    let wanted = InstanceSettings::of(&source, target.drill);
    let tags = merged_tags(&wanted.source_tags, tags);
    let state = restore_instance(rds, target, target_id, from, &wanted, tags).await?;
    tracing::info!(database = %db.id, target = %target_id, "instance restore started");
    Ok(state)
}

/// The approval covered this snapshot; if it is gone or changed, the plan drifted.
async fn check_snapshot(
    rds: &Client,
    db: &DatabaseRef,
    resolution: &DatabaseResolution,
) -> Result<(), RollbackError> {
    let id = &resolution.snapshot_id;
    let found: Option<Candidate> = crate::resolve::list_snapshots(rds, db)
        .await?
        .into_iter()
        .find(|c| &c.id == id);
    let problem = match &found {
        None => format!("snapshot {id} of {} no longer exists", db.id),
        Some(c) if c.status != "available" => {
            format!("snapshot {id} of {} is now {}", db.id, c.status)
        }
        Some(c) if c.created_at != Some(resolution.snapshot_created_at) => format!(
            "snapshot {id} of {} was replaced (created {:?}, approved {})",
            db.id, c.created_at, resolution.snapshot_created_at
        ),
        Some(_) => return Ok(()),
    };
    Err(RollbackError::PlanDrifted(format!(
        "{problem}; nothing was restored. Resolve again and have the new plan approved"
    )))
}

async fn restore_instance(
    rds: &Client,
    target: &Target<'_>,
    target_id: &str,
    from: RestoreFrom<'_>,
    wanted: &InstanceSettings,
    tags: Vec<Tag>,
) -> Result<DbState, RollbackError> {
    let (operation, out) = match from {
        RestoreFrom::Snapshot(snapshot) => {
            let call = rds
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(target_id)
                .db_snapshot_identifier(snapshot);
            let out = settings::apply_instance_settings!(call, wanted)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|o| o.db_instance().map(DbState::from).unwrap_or_default());
            (
                "RestoreDBInstanceFromDBSnapshot",
                out.map_err(Restore::from),
            )
        }
        RestoreFrom::PointInTime(at) => {
            let call = rds
                .restore_db_instance_to_point_in_time()
                .source_db_instance_identifier(&target.db.id)
                .target_db_instance_identifier(target_id)
                .restore_time(smithy_time(at));
            let out = settings::apply_instance_settings!(call, wanted)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|o| o.db_instance().map(DbState::from).unwrap_or_default());
            ("RestoreDBInstanceToPointInTime", out.map_err(Restore::from))
        }
    };
    match out {
        Ok(state) => Ok(state),
        Err(e) if e.code.as_deref() == Some("DBInstanceAlreadyExists") => {
            already_created(rds, target, target_id).await
        }
        Err(e) => Err(restore_error(operation, e.error)),
    }
}

async fn restore_cluster(
    rds: &Client,
    target: &Target<'_>,
    target_id: &str,
    from: RestoreFrom<'_>,
    wanted: &ClusterSettings,
    tags: Vec<Tag>,
) -> Result<DbState, RollbackError> {
    let serverless = wanted.serverless_v2.map(|(min, max)| {
        ServerlessV2ScalingConfiguration::builder()
            .min_capacity(min)
            .max_capacity(max)
            .build()
    });
    let (operation, out) = match from {
        RestoreFrom::Snapshot(snapshot) => {
            let engine = wanted
                .engine
                .clone()
                .unwrap_or_else(|| match target.db.kind {
                    DatabaseKind::DocdbCluster => "docdb".to_owned(),
                    _ => "aurora-postgresql".to_owned(),
                });
            // No KMS key: the copy keeps the snapshot's key (see `settings`).
            let call = rds
                .restore_db_cluster_from_snapshot()
                .db_cluster_identifier(target_id)
                .snapshot_identifier(snapshot)
                .engine(engine)
                .set_engine_version(wanted.engine_version.clone());
            let out = settings::apply_cluster_settings!(call, wanted)
                .set_serverless_v2_scaling_configuration(serverless)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|o| o.db_cluster().map(DbState::from).unwrap_or_default());
            ("RestoreDBClusterFromSnapshot", out.map_err(Restore::from))
        }
        RestoreFrom::PointInTime(at) => {
            // A full copy, never copy-on-write: the copy must not share storage with the
            // database it replaces.
            let call = rds
                .restore_db_cluster_to_point_in_time()
                .db_cluster_identifier(target_id)
                .source_db_cluster_identifier(&target.db.id)
                .restore_type("full-copy")
                .restore_to_time(smithy_time(at))
                .set_kms_key_id(wanted.kms_key.clone());
            let out = settings::apply_cluster_settings!(call, wanted)
                .set_serverless_v2_scaling_configuration(serverless)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|o| o.db_cluster().map(DbState::from).unwrap_or_default());
            ("RestoreDBClusterToPointInTime", out.map_err(Restore::from))
        }
    };
    match out {
        Ok(state) => Ok(state),
        Err(e) if e.code.as_deref() == Some("DBClusterAlreadyExistsFault") => {
            already_created(rds, target, target_id).await
        }
        Err(e) => Err(restore_error(operation, e.error)),
    }
}

/// RDS said the copy's name is taken: typically the SDK retried a create whose answer was lost,
/// so the copy is this execution's. Anything else at that name is not ours to report.
async fn already_created(
    rds: &Client,
    target: &Target<'_>,
    target_id: &str,
) -> Result<DbState, RollbackError> {
    match db::describe(rds, target.db.kind, target_id).await? {
        Some(state) if target.owns(&state) => Ok(state),
        Some(_) => Err(RollbackError::RestoreFailed(format!(
            "{target_id} appeared while it was being restored and is not this execution's {} \
             copy of {}; nothing was restored. Rename or delete {target_id} and retry",
            target.role(),
            target.db.id
        ))),
        None => Err(RollbackError::RestoreFailed(format!(
            "{target_id} exists but is not listed; retry"
        ))),
    }
}

fn smithy_time(at: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(at.timestamp(), at.timestamp_subsec_nanos())
}

/// A failed restore call: its error code (to recognise "already exists") and the error.
struct Restore {
    code: Option<String>,
    error: RollbackError,
}

impl<E, R> From<aws_sdk_rds::error::SdkError<E, R>> for Restore
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    fn from(e: aws_sdk_rds::error::SdkError<E, R>) -> Self {
        Restore {
            code: error_code(&e).map(str::to_owned),
            error: RollbackError::from_sdk("restore", e),
        }
    }
}

/// The settings of each instance the restored cluster gets: the source's members, writer first
/// (a drill creates only the writer).
async fn planned_members(
    rds: &Client,
    target: &Target<'_>,
    source_id: &str,
    member_ids: &[String],
) -> Result<Vec<MemberSettings>, RollbackError> {
    let docdb = target.db.kind == DatabaseKind::DocdbCluster;
    let mut members = Vec::new();
    for id in member_ids {
        if let Some(member) = db::describe_instance(rds, id).await? {
            members.push(MemberSettings::of(&member, docdb));
        }
        if target.drill {
            break;
        }
    }
    if members.is_empty() {
        return Err(RollbackError::RestoreFailed(format!(
            "cluster {source_id} has no instances to copy the instance class from; nothing was \
             restored"
        )));
    }
    Ok(members)
}

/// Creates the restored cluster's instances that do not exist yet. `planned` comes from the
/// source cluster on the first attempt; a retry reads the count from the cluster's tag and
/// the settings from the source again.
async fn ensure_members(
    rds: &Client,
    target: &Target<'_>,
    cluster: &DbState,
    planned: Option<Vec<MemberSettings>>,
) -> Result<Vec<String>, RollbackError> {
    let planned = match planned {
        Some(p) => p,
        None => {
            let source = db::cluster(rds, &target.db.id).await?.unwrap_or_default();
            let count: usize = cluster
                .tag(tags::INSTANCES)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let mut p = planned_members(rds, target, &source.id, &source.members)
                .await
                .unwrap_or_default();
            p.truncate(count);
            p
        }
    };
    let ids = db::member_ids(&cluster.id, planned.len());
    for (id, member) in ids.iter().zip(&planned) {
        if db::instance(rds, id).await?.is_some() {
            continue;
        }
        let engine = cluster.engine.clone().or_else(|| member.engine.clone());
        let ours = vec![
            db::tag(tags::EXECUTION, target.execution.as_str()),
            db::tag(tags::ROLE, target.role()),
            db::tag(tags::SOURCE, &target.db.id),
        ];
        let insights = &member.insights;
        let result = rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(&cluster.id)
            .set_engine(engine)
            .set_db_instance_class(member.class.clone())
            .set_db_parameter_group_name(member.parameter_group.clone())
            .set_ca_certificate_identifier(member.ca_certificate.clone())
            .set_preferred_maintenance_window(member.maintenance_window.clone())
            .set_auto_minor_version_upgrade(member.auto_minor_version_upgrade)
            .set_promotion_tier(member.promotion_tier)
            .set_publicly_accessible(member.publicly_accessible)
            .set_enable_performance_insights(insights.performance_insights)
            .set_performance_insights_kms_key_id(insights.performance_insights_kms_key.clone())
            .set_performance_insights_retention_period(insights.performance_insights_retention)
            .set_monitoring_interval(insights.monitoring_interval)
            .set_monitoring_role_arn(insights.monitoring_role.clone())
            .set_tags(Some(merged_tags(&member.source_tags, ours)))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("DBInstanceAlreadyExists") => {}
            Err(e) => {
                return Err(restore_error(
                    "CreateDBInstance",
                    RollbackError::from_sdk("CreateDBInstance", e),
                ));
            }
        }
    }
    Ok(ids)
}

/// Throttling and 5xx stay retryable; anything else means this restore cannot go ahead.
fn restore_error(operation: &str, err: RollbackError) -> RollbackError {
    match err {
        RollbackError::Aws { code, message, .. } => RollbackError::RestoreFailed(format!(
            "{operation} failed: {code}: {message}; the live database is untouched"
        )),
        RollbackError::Throttled { message, .. } => RollbackError::Throttled {
            operation: operation.to_owned(),
            message,
        },
        RollbackError::Transient { message, .. } => RollbackError::Transient {
            operation: operation.to_owned(),
            message,
        },
        other => other,
    }
}
