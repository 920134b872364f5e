//! `start`: restore the approved snapshot beside the live database, with its settings.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{ServerlessV2ScalingConfiguration, Tag};
use rollback_core::contract::restore::{StartedRestore, tags};
use rollback_core::plan::{DatabaseKind, DatabaseRef};
use rollback_core::resolved::DatabaseResolution;
use rollback_core::{ExecutionId, RollbackError, ids};

use crate::db::{self, DbState, error_code};
use crate::resolve::Candidate;

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

    /// True when `state` was created by this execution's restore (and is not someone's
    /// database that happens to carry the name).
    pub fn owns(&self, state: &DbState) -> bool {
        state.tag(tags::EXECUTION) == Some(self.execution.as_str())
            && state.tag(tags::ROLE) == Some(self.role())
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

    check_snapshot(rds, db, resolution).await?;
    let source = db::describe(rds, db.kind, &db.id).await?.ok_or_else(|| {
        RollbackError::RestoreFailed(format!(
            "{} ({}) no longer exists, so its settings (class, subnet group, security groups, \
             parameter group) cannot be copied; nothing was restored",
            db.id,
            db.kind.as_str()
        ))
    })?;

    let mut tags = vec![
        db::tag(tags::EXECUTION, target.execution.as_str()),
        db::tag(tags::ROLE, target.role()),
        db::tag(tags::SOURCE, &db.id),
        db::tag(tags::SNAPSHOT, &resolution.snapshot_id),
    ];
    if db.kind.is_cluster() {
        let members = planned_members(rds, target, &source).await?;
        tags.push(db::tag(tags::INSTANCES, &members.len().to_string()));
        let state = restore_cluster(rds, target, &target_id, resolution, &source, tags).await?;
        let instances = ensure_members(rds, target, &state, Some(members)).await?;
        tracing::info!(database = %db.id, target = %target_id, "cluster restore started");
        Ok(report(state.status, instances, true, target_id))
    } else {
        let state = restore_instance(rds, target, &target_id, resolution, &source, tags).await?;
        tracing::info!(database = %db.id, target = %target_id, "instance restore started");
        Ok(report(state.status, Vec::new(), true, target_id))
    }
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
    resolution: &DatabaseResolution,
    source: &DbState,
    tags: Vec<Tag>,
) -> Result<DbState, RollbackError> {
    let out = rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(target_id)
        .db_snapshot_identifier(&resolution.snapshot_id)
        .set_db_instance_class(source.class.clone())
        .set_db_subnet_group_name(source.subnet_group.clone())
        .set_vpc_security_group_ids(non_empty(&source.security_groups))
        .set_db_parameter_group_name(source.parameter_group.clone())
        .set_multi_az(if target.drill {
            Some(false)
        } else {
            source.multi_az
        })
        .set_port(source.port)
        // The restored copy becomes production; a drill's scratch copy must stay deletable.
        .set_deletion_protection(if target.drill {
            Some(false)
        } else {
            source.deletion_protection
        })
        .set_tags(Some(tags))
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.db_instance().map(DbState::from).unwrap_or_default()),
        Err(e) if error_code(&e) == Some("DBInstanceAlreadyExists") => {
            db::instance(rds, target_id).await?.ok_or_else(|| {
                RollbackError::RestoreFailed(format!("{target_id} exists but is not listed; retry"))
            })
        }
        Err(e) => Err(restore_error("RestoreDBInstanceFromDBSnapshot", e)),
    }
}

async fn restore_cluster(
    rds: &Client,
    target: &Target<'_>,
    target_id: &str,
    resolution: &DatabaseResolution,
    source: &DbState,
    tags: Vec<Tag>,
) -> Result<DbState, RollbackError> {
    let engine = source
        .engine
        .clone()
        .unwrap_or_else(|| match target.db.kind {
            DatabaseKind::DocdbCluster => "docdb".to_owned(),
            _ => "aurora-postgresql".to_owned(),
        });
    let out = rds
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier(target_id)
        .snapshot_identifier(&resolution.snapshot_id)
        .engine(engine)
        .set_engine_version(source.engine_version.clone())
        .set_db_subnet_group_name(source.subnet_group.clone())
        .set_vpc_security_group_ids(non_empty(&source.security_groups))
        .set_db_cluster_parameter_group_name(source.parameter_group.clone())
        .set_port(source.port)
        .set_deletion_protection(if target.drill {
            Some(false)
        } else {
            source.deletion_protection
        })
        .set_serverless_v2_scaling_configuration(source.serverless_v2.map(|(min, max)| {
            ServerlessV2ScalingConfiguration::builder()
                .min_capacity(min)
                .max_capacity(max)
                .build()
        }))
        .set_tags(Some(tags))
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.db_cluster().map(DbState::from).unwrap_or_default()),
        Err(e) if error_code(&e) == Some("DBClusterAlreadyExistsFault") => {
            db::cluster(rds, target_id).await?.ok_or_else(|| {
                RollbackError::RestoreFailed(format!("{target_id} exists but is not listed; retry"))
            })
        }
        Err(e) => Err(restore_error("RestoreDBClusterFromSnapshot", e)),
    }
}

/// Class and instance parameter group of each instance the restored cluster gets: the source's
/// members, writer first (a drill creates only the writer).
async fn planned_members(
    rds: &Client,
    target: &Target<'_>,
    source: &DbState,
) -> Result<Vec<DbState>, RollbackError> {
    let mut members = Vec::new();
    for id in &source.members {
        if let Some(member) = db::instance(rds, id).await? {
            members.push(member);
        }
        if target.drill {
            break;
        }
    }
    if members.is_empty() {
        return Err(RollbackError::RestoreFailed(format!(
            "cluster {} has no instances to copy the instance class from; nothing was restored",
            source.id
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
    planned: Option<Vec<DbState>>,
) -> Result<Vec<String>, RollbackError> {
    let planned = match planned {
        Some(p) => p,
        None => {
            let source = db::cluster(rds, &target.db.id).await?.unwrap_or_default();
            let count: usize = cluster
                .tag(tags::INSTANCES)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let mut p = planned_members(rds, target, &source)
                .await
                .unwrap_or_default();
            p.truncate(count);
            p
        }
    };
    let ids = db::member_ids(&cluster.id, planned.len());
    let docdb = target.db.kind == DatabaseKind::DocdbCluster;
    for (id, member) in ids.iter().zip(&planned) {
        if db::instance(rds, id).await?.is_some() {
            continue;
        }
        let engine = cluster.engine.clone().or_else(|| member.engine.clone());
        let result = rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(&cluster.id)
            .set_engine(engine)
            .set_db_instance_class(member.class.clone())
            // DocumentDB instances take no DB parameter group (the cluster's applies).
            .set_db_parameter_group_name(if docdb {
                None
            } else {
                member.parameter_group.clone()
            })
            .set_tags(Some(vec![
                db::tag(tags::EXECUTION, target.execution.as_str()),
                db::tag(tags::ROLE, target.role()),
                db::tag(tags::SOURCE, &target.db.id),
            ]))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("DBInstanceAlreadyExists") => {}
            Err(e) => return Err(restore_error("CreateDBInstance", e)),
        }
    }
    Ok(ids)
}

fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

/// Throttling and 5xx stay retryable; anything else means this restore cannot go ahead.
fn restore_error<E, R>(operation: &str, err: aws_sdk_rds::error::SdkError<E, R>) -> RollbackError
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match RollbackError::from_sdk(operation, err) {
        RollbackError::Aws {
            operation,
            code,
            message,
        } => RollbackError::RestoreFailed(format!(
            "{operation} failed: {code}: {message}; the live database is untouched"
        )),
        other => other,
    }
}
