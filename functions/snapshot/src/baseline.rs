//! Baselines of SQL probes (`compare.baseline: "pre-deploy-snapshot"`).
//!
//! - Recorded by `pre-deploy`: just before a database's pre-deploy snapshot is started, each
//!   baseline probe of that database runs against the live database and its first value
//!   becomes the snapshot's tag `rollback:baseline:<probe name>`, set as the snapshot is
//!   created. A snapshot that already exists is never tagged afterwards: the live database has
//!   moved on since it was taken, so a later value would not describe it.
//! - Read by the smoke test ([`source`]): from the snapshot this execution restored the
//!   database from (the `rollback:snapshot` tag the restore puts on the copy, which keeps the
//!   original identifier after the swap), else from the release's pre-deploy snapshot (or, with
//!   no release in the request, the newest pre-deploy snapshot of the database), which is what
//!   a database that was not restored from a snapshot (point in time, application-only
//!   rollback, drill) is compared with.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::Tag;
use rollback_core::RollbackError;
use rollback_core::contract::restore::tags as restore_tags;
use rollback_core::contract::snapshot::{MAX_BASELINE_VALUE_CHARS, tags};
use rollback_core::plan::{DatabaseRef, Plan};
use rollback_sql_probe::{Number, SecretError, Target};

use crate::rds::{self, error_code, tag_map};

/// Runs the baseline probes of `db` against the live database and returns the tags to create
/// its pre-deploy snapshot with. Any probe that cannot be recorded is an error, and nothing is
/// snapshotted: a pre-deploy snapshot without the baselines the plan asks for would fail
/// every later rollback's smoke test.
pub async fn record(
    secrets: &aws_sdk_secretsmanager::Client,
    plan: &Plan,
    db: &DatabaseRef,
) -> Result<Vec<Tag>, RollbackError> {
    let mut targets: HashMap<&str, Target> = HashMap::new();
    let mut out = Vec::new();
    for (i, probe) in plan.smoke.sql.iter().enumerate() {
        if probe.database != db.id || !probe.records_baseline() {
            continue;
        }
        let what = format!(
            "baseline of SQL probe {:?} (plan.smoke.sql[{i}]) on {}",
            probe.name, db.id
        );
        let target = match targets.get(probe.secret_arn.as_str()) {
            Some(target) => target.clone(),
            None => {
                let target = rollback_sql_probe::load_secret(secrets, &probe.secret_arn)
                    .await
                    .map_err(|e| match e {
                        SecretError::Aws(e) => e,
                        SecretError::Config(why) => RollbackError::SmokeConfig(format!(
                            "{what}: {why}; nothing was snapshotted"
                        )),
                    })?;
                targets.insert(&probe.secret_arn, target.clone());
                target
            }
        };
        let timeout = Duration::from_millis(probe.timeout_ms);
        let rows = rollback_sql_probe::query(&target, &probe.query, timeout, "rollback-snapshot")
            .await
            .map_err(|why| {
                RollbackError::SnapshotFailed(format!(
                    "{what}: {why}; nothing was snapshotted. The function must reach the \
                     database (its VPC, security group and the secret); or remove \
                     compare.baseline from the probe"
                ))
            })?;
        let value = rows.first_number().map_err(|got| {
            RollbackError::SnapshotFailed(format!(
                "{what}: the query's first value is {got}; a baseline is a number (e.g. \
                 select count(*) …); nothing was snapshotted"
            ))
        })?;
        let text = rows.first.clone().flatten().unwrap_or_default();
        let text = text.trim();
        if text.chars().count() > MAX_BASELINE_VALUE_CHARS {
            return Err(RollbackError::SnapshotFailed(format!(
                "{what}: the value has more than {MAX_BASELINE_VALUE_CHARS} characters, more \
                 than an RDS tag holds; nothing was snapshotted"
            )));
        }
        tracing::info!(database = %db.id, probe = %probe.name, %value, "baseline recorded");
        out.push(rds::tag(&tags::baseline(&probe.name), text));
    }
    Ok(out)
}

/// A probe's baseline and the snapshot it was recorded at.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub value: Number,
    pub snapshot_id: String,
}

/// The snapshot a database's baselines are read from, with its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub snapshot_id: String,
    /// `restored` when this execution restored the database from the snapshot.
    pub restored: bool,
    pub tags: BTreeMap<String, String>,
}

impl Source {
    /// The baseline of probe `name`, or why there is none.
    pub fn baseline(&self, name: &str) -> Result<Baseline, String> {
        let key = tags::baseline(name);
        let Some(text) = self.tags.get(&key) else {
            return Err(format!(
                "snapshot {} has no tag {key} (a baseline is recorded when the pre-deploy \
                 snapshot is taken with the probe in the plan)",
                self.snapshot_id
            ));
        };
        let value = Number::parse(text)
            .ok_or_else(|| format!("snapshot {}'s tag {key} is not a number", self.snapshot_id))?;
        Ok(Baseline {
            value,
            snapshot_id: self.snapshot_id.clone(),
        })
    }
}

/// Where `db`'s baselines are, for the smoke test of `execution` (see the module doc). The
/// error is a reason for the check (one line).
pub async fn source(
    rds: &Client,
    plan: &Plan,
    db: &DatabaseRef,
    execution: &str,
    release: Option<&str>,
) -> Result<Source, String> {
    let aws = |e: RollbackError| e.to_string();
    let live = database_tags(rds, db).await.map_err(aws)?;
    if live.get(restore_tags::EXECUTION).map(String::as_str) == Some(execution)
        && let Some(snapshot_id) = live.get(restore_tags::SNAPSHOT)
    {
        let Some(tags) = snapshot_tags(rds, db, snapshot_id).await.map_err(aws)? else {
            return Err(format!(
                "{} was restored from snapshot {snapshot_id}, which no longer exists",
                db.id
            ));
        };
        return Ok(Source {
            snapshot_id: snapshot_id.clone(),
            restored: true,
            tags,
        });
    }
    let snapshot_id = match release {
        Some(release) => rollback_core::ids::pre_deploy_snapshot_id(&plan.service, release, &db.id),
        None => newest_pre_deploy(rds, plan, db)
            .await
            .map_err(aws)?
            .ok_or_else(|| {
                format!(
                    "{} was not restored from a snapshot by this rollback, the request names no \
                 release, and it has no pre-deploy snapshot",
                    db.id
                )
            })?,
    };
    match snapshot_tags(rds, db, &snapshot_id).await.map_err(aws)? {
        Some(tags) => Ok(Source {
            snapshot_id,
            restored: false,
            tags,
        }),
        None => Err(format!(
            "no pre-deploy snapshot {snapshot_id} (the deploy pipeline takes it with \
             `rollbackctl snapshot --pre-deploy`)"
        )),
    }
}

/// The live database's tags (empty when it does not exist).
async fn database_tags(
    rds: &Client,
    db: &DatabaseRef,
) -> Result<BTreeMap<String, String>, RollbackError> {
    if db.kind.is_cluster() {
        match rds
            .describe_db_clusters()
            .db_cluster_identifier(&db.id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .db_clusters()
                .first()
                .map(|c| tag_map(c.tag_list()))
                .unwrap_or_default()),
            Err(e) if error_code(&e) == Some("DBClusterNotFoundFault") => Ok(BTreeMap::new()),
            Err(e) => Err(RollbackError::from_sdk("DescribeDBClusters", e)),
        }
    } else {
        match rds
            .describe_db_instances()
            .db_instance_identifier(&db.id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .db_instances()
                .first()
                .map(|i| tag_map(i.tag_list()))
                .unwrap_or_default()),
            Err(e) if error_code(&e) == Some("DBInstanceNotFound") => Ok(BTreeMap::new()),
            Err(e) => Err(RollbackError::from_sdk("DescribeDBInstances", e)),
        }
    }
}

/// The tags of snapshot `id` of `db`'s kind, or `None` when there is no such snapshot.
async fn snapshot_tags(
    rds: &Client,
    db: &DatabaseRef,
    id: &str,
) -> Result<Option<BTreeMap<String, String>>, RollbackError> {
    Ok(rds::describe_snapshot(rds, db.kind, id)
        .await?
        .map(|info| info.tags))
}

/// The newest manual snapshot of `db` tagged as this service's pre-deploy snapshot.
async fn newest_pre_deploy(
    rds: &Client,
    plan: &Plan,
    db: &DatabaseRef,
) -> Result<Option<String>, RollbackError> {
    let ours = |t: &BTreeMap<String, String>| {
        t.get(tags::PURPOSE).map(String::as_str) == Some("pre-deploy")
            && t.get(tags::SERVICE) == Some(&plan.service)
    };
    let mut found = Vec::new();
    if db.kind.is_cluster() {
        let out = rds
            .describe_db_cluster_snapshots()
            .db_cluster_identifier(&db.id)
            .snapshot_type("manual")
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("DescribeDBClusterSnapshots", e))?;
        for s in out.db_cluster_snapshots() {
            if ours(&tag_map(s.tag_list())) {
                found.push((
                    s.snapshot_create_time().map(|t| t.secs()),
                    s.db_cluster_snapshot_identifier().map(str::to_owned),
                ));
            }
        }
    } else {
        let out = rds
            .describe_db_snapshots()
            .db_instance_identifier(&db.id)
            .snapshot_type("manual")
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("DescribeDBSnapshots", e))?;
        for s in out.db_snapshots() {
            if ours(&tag_map(s.tag_list())) {
                found.push((
                    s.snapshot_create_time().map(|t| t.secs()),
                    s.db_snapshot_identifier().map(str::to_owned),
                ));
            }
        }
    }
    Ok(found
        .into_iter()
        .max_by_key(|(at, _)| *at)
        .and_then(|(_, id)| id))
}
