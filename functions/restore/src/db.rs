//! Instances and clusters, one shape: what the restore actions read and the few calls they
//! make (describe, rename, delete). DocumentDB clusters speak the same cluster API.

use std::collections::BTreeMap;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance};
use rollback_core::RollbackError;
use rollback_core::plan::DatabaseKind;
use rollback_snapshot::rds::tag_map;
pub use rollback_snapshot::rds::{error_code, tag};

/// A DB instance or DB cluster as the restore actions need it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbState {
    pub id: String,
    /// For tagging (AddTagsToResource takes the ARN).
    pub arn: Option<String>,
    pub status: String,
    pub tags: BTreeMap<String, String>,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    /// Instances only (cluster instances: their class).
    pub class: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    /// DB parameter group (instances) or DB cluster parameter group (clusters).
    pub parameter_group: Option<String>,
    pub multi_az: Option<bool>,
    pub deletion_protection: Option<bool>,
    pub port: Option<i32>,
    /// Instances: the cluster they belong to.
    pub cluster: Option<String>,
    /// Clusters: member instance ids, writer first.
    pub members: Vec<String>,
    pub serverless_v2: Option<(f64, f64)>,
}

impl DbState {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// The instance's DB subnet group name.
pub fn instance_subnet_group(i: &DbInstance) -> Option<String> {
    i.db_subnet_group()
        .and_then(|g| g.db_subnet_group_name())
        .map(str::to_owned)
}

/// The instance's VPC security group ids.
pub fn instance_security_groups(i: &DbInstance) -> Vec<String> {
    i.vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
        .collect()
}

/// The instance's (first) DB parameter group name.
pub fn instance_parameter_group(i: &DbInstance) -> Option<String> {
    i.db_parameter_groups()
        .first()
        .and_then(|g| g.db_parameter_group_name())
        .map(str::to_owned)
}

impl From<&DbInstance> for DbState {
    fn from(i: &DbInstance) -> Self {
        DbState {
            id: i.db_instance_identifier().unwrap_or_default().to_owned(),
            arn: i.db_instance_arn().map(str::to_owned),
            status: i.db_instance_status().unwrap_or("unknown").to_owned(),
            tags: tag_map(i.tag_list()),
            engine: i.engine().map(str::to_owned),
            engine_version: i.engine_version().map(str::to_owned),
            class: i.db_instance_class().map(str::to_owned),
            subnet_group: instance_subnet_group(i),
            security_groups: instance_security_groups(i),
            parameter_group: instance_parameter_group(i),
            multi_az: i.multi_az(),
            deletion_protection: i.deletion_protection(),
            port: i.endpoint().and_then(|e| e.port()).or(i.db_instance_port()),
            cluster: i.db_cluster_identifier().map(str::to_owned),
            members: Vec::new(),
            serverless_v2: None,
        }
    }
}

impl From<&DbCluster> for DbState {
    fn from(c: &DbCluster) -> Self {
        let mut members: Vec<_> = c.db_cluster_members().iter().collect();
        members.sort_by_key(|m| !m.is_cluster_writer().unwrap_or(false));
        DbState {
            id: c.db_cluster_identifier().unwrap_or_default().to_owned(),
            arn: c.db_cluster_arn().map(str::to_owned),
            status: c.status().unwrap_or("unknown").to_owned(),
            tags: tag_map(c.tag_list()),
            engine: c.engine().map(str::to_owned),
            engine_version: c.engine_version().map(str::to_owned),
            class: c.db_cluster_instance_class().map(str::to_owned),
            subnet_group: c.db_subnet_group().map(str::to_owned),
            security_groups: c
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                .collect(),
            parameter_group: c.db_cluster_parameter_group().map(str::to_owned),
            multi_az: c.multi_az(),
            deletion_protection: c.deletion_protection(),
            port: c.port(),
            cluster: None,
            members: members
                .iter()
                .filter_map(|m| m.db_instance_identifier().map(str::to_owned))
                .collect(),
            serverless_v2: c
                .serverless_v2_scaling_configuration()
                .and_then(|s| Some((s.min_capacity()?, s.max_capacity()?))),
        }
    }
}

/// The instance as RDS describes it (every field), or `None`.
pub async fn describe_instance(
    rds: &Client,
    id: &str,
) -> Result<Option<DbInstance>, RollbackError> {
    match rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) if error_code(&e) == Some("DBInstanceNotFound") => Ok(None),
        Err(e) => Err(RollbackError::from_sdk("DescribeDBInstances", e)),
    }
}

/// The cluster as RDS describes it (every field), or `None`.
pub async fn describe_cluster(rds: &Client, id: &str) -> Result<Option<DbCluster>, RollbackError> {
    match rds
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_clusters().first().cloned()),
        Err(e) if error_code(&e) == Some("DBClusterNotFoundFault") => Ok(None),
        Err(e) => Err(RollbackError::from_sdk("DescribeDBClusters", e)),
    }
}

/// The instance with this id, or `None`.
pub async fn instance(rds: &Client, id: &str) -> Result<Option<DbState>, RollbackError> {
    Ok(describe_instance(rds, id)
        .await?
        .as_ref()
        .map(DbState::from))
}

/// The cluster with this id, or `None`.
pub async fn cluster(rds: &Client, id: &str) -> Result<Option<DbState>, RollbackError> {
    Ok(describe_cluster(rds, id).await?.as_ref().map(DbState::from))
}

/// Every instance or cluster (per `kind`) whose identifier starts with `prefix` (all pages;
/// RDS has no identifier-prefix filter).
pub async fn list_with_prefix(
    rds: &Client,
    kind: DatabaseKind,
    prefix: &str,
) -> Result<Vec<DbState>, RollbackError> {
    let prefix = prefix.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut marker = None;
    // Bounded: 100 pages of 100 is more databases than an account holds.
    for _ in 0..100 {
        let (page, next): (Vec<DbState>, Option<String>) = if kind.is_cluster() {
            let out = rds
                .describe_db_clusters()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| RollbackError::from_sdk("DescribeDBClusters", e))?;
            (
                out.db_clusters().iter().map(DbState::from).collect(),
                out.marker().map(str::to_owned),
            )
        } else {
            let out = rds
                .describe_db_instances()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| RollbackError::from_sdk("DescribeDBInstances", e))?;
            (
                out.db_instances().iter().map(DbState::from).collect(),
                out.marker().map(str::to_owned),
            )
        };
        found.extend(
            page.into_iter()
                .filter(|d| d.id.to_ascii_lowercase().starts_with(&prefix)),
        );
        match next {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    Ok(found)
}

/// The instance or cluster with this id, per the plan's kind.
pub async fn describe(
    rds: &Client,
    kind: DatabaseKind,
    id: &str,
) -> Result<Option<DbState>, RollbackError> {
    if kind.is_cluster() {
        cluster(rds, id).await
    } else {
        instance(rds, id).await
    }
}

/// Renames an instance or cluster (applied immediately; RDS completes it asynchronously).
pub async fn rename(
    rds: &Client,
    kind: DatabaseKind,
    from: &str,
    to: &str,
) -> Result<(), RollbackError> {
    if kind.is_cluster() {
        rds.modify_db_cluster()
            .db_cluster_identifier(from)
            .new_db_cluster_identifier(to)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RollbackError::from_sdk("ModifyDBCluster", e))
    } else {
        rds.modify_db_instance()
            .db_instance_identifier(from)
            .new_db_instance_identifier(to)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RollbackError::from_sdk("ModifyDBInstance", e))
    }
}

/// Adds one tag to an instance or cluster (by ARN).
pub async fn add_tag(rds: &Client, arn: &str, key: &str, value: &str) -> Result<(), RollbackError> {
    rds.add_tags_to_resource()
        .resource_name(arn)
        .tags(tag(key, value))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| RollbackError::from_sdk("AddTagsToResource", e))
}

/// Instance ids of a restored cluster: `<target>-1` … `<target>-n`. When that does not fit 63
/// characters, the target is cut and a hash of the whole target replaces its tail
/// (`ids::with_suffix`), so the members of distinct targets (other databases, other
/// executions) never share an id.
pub fn member_ids(target: &str, count: usize) -> Vec<String> {
    (1..=count)
        .map(|n| rollback_core::ids::with_suffix(target, &format!("-{n}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollback_core::plan::rules::RDS_IDENTIFIER;

    #[test]
    fn member_ids_fit_and_stay_distinct() {
        let long = "a".repeat(63);
        let ids = member_ids(&long, 12);
        assert_eq!(ids.len(), 12);
        for id in &ids {
            assert!(RDS_IDENTIFIER.is_valid(id), "{id}");
        }
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 12);
        assert_eq!(
            member_ids("db-restored-1a2b", 1),
            vec!["db-restored-1a2b-1"]
        );
    }

    /// Two 60-character database ids sharing 50 characters: the restored and drill copies of
    /// each, in two executions, give members that are all distinct, valid identifiers.
    #[test]
    fn members_of_long_targets_never_collide() {
        use rollback_core::ExecutionId;
        use rollback_core::ids::restore_identifier;
        let shared = format!("orders-{}", "x".repeat(43));
        let mut all = std::collections::BTreeSet::new();
        let mut count = 0;
        for db in [format!("{shared}-aaaaaaaaa"), format!("{shared}-bbbbbbbbb")] {
            for exec in ["exec-1", "exec-2"] {
                for drill in [false, true] {
                    let target = restore_identifier(&db, &ExecutionId::new(exec), drill);
                    for id in member_ids(&target, 3) {
                        assert!(RDS_IDENTIFIER.is_valid(&id), "{id}");
                        all.insert(id);
                        count += 1;
                    }
                }
            }
        }
        assert_eq!(all.len(), count, "{all:#?}");
    }
}
