//! The RDS calls behind the snapshot actions, one shape for instance and cluster snapshots.
//! DocumentDB clusters speak the same cluster API (engine `docdb`).

use std::collections::BTreeMap;

use aws_sdk_rds::Client;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::{DbClusterSnapshot, DbSnapshot, Tag};
use chrono::{DateTime, Utc};
use rollback_core::RollbackError;
use rollback_core::plan::{DatabaseKind, DatabaseRef};
use rollback_core::validation::ValidationErrors;

/// A DB snapshot or DB cluster snapshot, as the actions need it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
    pub id: String,
    /// The instance or cluster it was taken of.
    pub source: Option<String>,
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub progress_percent: Option<i32>,
    /// Its tags (the `rollback:…` ones, baselines among them).
    pub tags: BTreeMap<String, String>,
}

pub fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

impl From<&DbSnapshot> for SnapshotInfo {
    fn from(s: &DbSnapshot) -> Self {
        SnapshotInfo {
            id: s.db_snapshot_identifier().unwrap_or_default().to_owned(),
            source: s.db_instance_identifier().map(str::to_owned),
            status: s.status().unwrap_or("unknown").to_owned(),
            created_at: s.snapshot_create_time().and_then(to_chrono),
            progress_percent: s.percent_progress(),
            tags: tag_map(s.tag_list()),
        }
    }
}

impl From<&DbClusterSnapshot> for SnapshotInfo {
    fn from(s: &DbClusterSnapshot) -> Self {
        SnapshotInfo {
            id: s
                .db_cluster_snapshot_identifier()
                .unwrap_or_default()
                .to_owned(),
            source: s.db_cluster_identifier().map(str::to_owned),
            status: s.status().unwrap_or("unknown").to_owned(),
            created_at: s.snapshot_create_time().and_then(to_chrono),
            progress_percent: s.percent_progress(),
            tags: tag_map(s.tag_list()),
        }
    }
}

/// The service error code of a failed call, if the service answered.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// The snapshot with this id, or `None`.
pub async fn describe_snapshot(
    rds: &Client,
    kind: DatabaseKind,
    snapshot_id: &str,
) -> Result<Option<SnapshotInfo>, RollbackError> {
    if kind.is_cluster() {
        match rds
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(snapshot_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_cluster_snapshots().first().map(SnapshotInfo::from)),
            Err(e) if error_code(&e) == Some("DBClusterSnapshotNotFoundFault") => Ok(None),
            Err(e) => Err(RollbackError::from_sdk("DescribeDBClusterSnapshots", e)),
        }
    } else {
        match rds
            .describe_db_snapshots()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_snapshots().first().map(SnapshotInfo::from)),
            Err(e) if error_code(&e) == Some("DBSnapshotNotFound") => Ok(None),
            Err(e) => Err(RollbackError::from_sdk("DescribeDBSnapshots", e)),
        }
    }
}

/// Checks that the plan's database exists and is of the kind the plan says, so a snapshot
/// request fails with the plan field to fix rather than an RDS error code.
pub async fn check_source(
    rds: &Client,
    db: &DatabaseRef,
    index: usize,
) -> Result<String, RollbackError> {
    if db.kind.is_cluster() {
        check_cluster_source(rds, db, index).await
    } else {
        check_instance_source(rds, db, index).await
    }
}

/// The plan error for `plan.databases[index].field`.
fn invalid_source(index: usize, field: &str, message: String) -> RollbackError {
    let path = format!("plan.databases[{index}]");
    let mut errors = ValidationErrors::default();
    errors.push(format!("{path}.{field}"), message);
    RollbackError::InvalidPlan(errors)
}

/// [`check_source`] for a cluster kind: the cluster exists and its engine matches the kind.
async fn check_cluster_source(
    rds: &Client,
    db: &DatabaseRef,
    index: usize,
) -> Result<String, RollbackError> {
    let out = match rds
        .describe_db_clusters()
        .db_cluster_identifier(&db.id)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e) == Some("DBClusterNotFoundFault") => {
            return Err(invalid_source(
                index,
                "id",
                format!(
                    "no DB cluster {:?} in this account and region; give the cluster \
                     identifier (kind {})",
                    db.id,
                    db.kind.as_str()
                ),
            ));
        }
        Err(e) => return Err(RollbackError::from_sdk("DescribeDBClusters", e)),
    };
    let cluster = out.db_clusters().first();
    let engine = cluster.and_then(|c| c.engine()).unwrap_or_default();
    let is_docdb = engine == "docdb";
    if is_docdb != (db.kind == DatabaseKind::DocdbCluster) {
        let should = if is_docdb {
            "docdb-cluster"
        } else {
            "aurora-cluster"
        };
        return Err(invalid_source(
            index,
            "kind",
            format!("{:?} runs engine {engine:?}; its kind is {should}", db.id),
        ));
    }
    Ok(cluster
        .and_then(|c| c.status())
        .unwrap_or("unknown")
        .to_owned())
}

/// [`check_source`] for `rds-instance`: the instance exists and is not a cluster member.
async fn check_instance_source(
    rds: &Client,
    db: &DatabaseRef,
    index: usize,
) -> Result<String, RollbackError> {
    let out = match rds
        .describe_db_instances()
        .db_instance_identifier(&db.id)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e) == Some("DBInstanceNotFound") => {
            return Err(invalid_source(
                index,
                "id",
                format!(
                    "no DB instance {:?} in this account and region; give the DB instance \
                     identifier (kind rds-instance)",
                    db.id
                ),
            ));
        }
        Err(e) => return Err(RollbackError::from_sdk("DescribeDBInstances", e)),
    };
    let instance = out.db_instances().first();
    if let Some(cluster) = instance.and_then(|i| i.db_cluster_identifier()) {
        return Err(invalid_source(
            index,
            "kind",
            format!(
                "{:?} is an instance of cluster {cluster:?}: cluster data is snapshotted per \
                 cluster; list the cluster with kind aurora-cluster or docdb-cluster",
                db.id
            ),
        ));
    }
    Ok(instance
        .and_then(|i| i.db_instance_status())
        .unwrap_or("unknown")
        .to_owned())
}

/// Starts a snapshot. `Ok(None)` when a snapshot with this id already exists (a retry raced us).
pub async fn create_snapshot(
    rds: &Client,
    db: &DatabaseRef,
    snapshot_id: &str,
    tags: Vec<Tag>,
) -> Result<Option<SnapshotInfo>, RollbackError> {
    let busy = |op: &str, code: &str, message: Option<&str>| RollbackError::Transient {
        operation: op.to_owned(),
        message: format!(
            "{code}: {} ({} is busy, e.g. being modified or backed up; retry later)",
            message.unwrap_or_default(),
            db.id
        ),
    };
    if db.kind.is_cluster() {
        let op = "CreateDBClusterSnapshot";
        match rds
            .create_db_cluster_snapshot()
            .db_cluster_identifier(&db.id)
            .db_cluster_snapshot_identifier(snapshot_id)
            .set_tags(Some(tags))
            .send()
            .await
        {
            Ok(out) => Ok(out.db_cluster_snapshot().map(SnapshotInfo::from)),
            Err(e) => match error_code(&e) {
                Some("DBClusterSnapshotAlreadyExistsFault") => Ok(None),
                Some(code @ "InvalidDBClusterStateFault") => Err(busy(
                    op,
                    code,
                    e.as_service_error().and_then(|s| s.message()),
                )),
                _ => Err(RollbackError::from_sdk(op, e)),
            },
        }
    } else {
        let op = "CreateDBSnapshot";
        match rds
            .create_db_snapshot()
            .db_instance_identifier(&db.id)
            .db_snapshot_identifier(snapshot_id)
            .set_tags(Some(tags))
            .send()
            .await
        {
            Ok(out) => Ok(out.db_snapshot().map(SnapshotInfo::from)),
            Err(e) => match error_code(&e) {
                Some("DBSnapshotAlreadyExists") => Ok(None),
                Some(code @ "InvalidDBInstanceState") => Err(busy(
                    op,
                    code,
                    e.as_service_error().and_then(|s| s.message()),
                )),
                _ => Err(RollbackError::from_sdk(op, e)),
            },
        }
    }
}

/// Tags as a map (a tag without a value maps to ""): how both the snapshot and the restore
/// function read RDS tags.
pub fn tag_map(list: &[Tag]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}
