//! `resolve`: which snapshot each database goes back to, and what that costs in data.

use std::collections::BTreeMap;

use aws_sdk_rds::Client;
use chrono::{DateTime, Utc};
use rollback_core::RollbackError;
use rollback_core::contract::restore::{CutoffSource, ResolveNote, ResolveOutput};
use rollback_core::contract::snapshot::tags;
use rollback_core::plan::DatabaseRef;
use rollback_core::resolved::{DataLossWindow, DatabaseResolution};
use rollback_snapshot::rds::tag_map;

use crate::db::error_code;

/// A snapshot of one database, instance or cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub source: String,
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    /// `manual`, `automated`, `shared`, `public`, `awsbackup` (a recovery point AWS Backup
    /// made: see [`is_aws_backup`]).
    pub snapshot_type: String,
    pub tags: BTreeMap<String, String>,
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Every manual and automated snapshot RDS lists for the database, and (instances) the
/// recovery points AWS Backup made of it.
pub async fn list_snapshots(
    rds: &Client,
    db: &DatabaseRef,
) -> Result<Vec<Candidate>, RollbackError> {
    let mut out = Vec::new();
    if db.kind.is_cluster() {
        let mut pages = rds
            .describe_db_cluster_snapshots()
            .db_cluster_identifier(&db.id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) if error_code(&e) == Some("DBClusterSnapshotNotFoundFault") => break,
                Err(e) => return Err(RollbackError::from_sdk("DescribeDBClusterSnapshots", e)),
            };
            out.extend(page.db_cluster_snapshots().iter().map(|s| {
                Candidate {
                    id: s
                        .db_cluster_snapshot_identifier()
                        .unwrap_or_default()
                        .to_owned(),
                    source: s.db_cluster_identifier().unwrap_or_default().to_owned(),
                    status: s.status().unwrap_or("unknown").to_owned(),
                    created_at: s.snapshot_create_time().and_then(to_chrono),
                    snapshot_type: s.snapshot_type().unwrap_or("unknown").to_owned(),
                    tags: tag_map(s.tag_list()),
                }
            }));
        }
    } else {
        // Without a SnapshotType, DescribeDBSnapshots lists manual and automated snapshots
        // only; the snapshots AWS Backup manages (`awsbackup:job-…`) need SnapshotType
        // `awsbackup`. (Aurora recovery points are cluster snapshots with `awsbackup:` ids,
        // listed above.)
        for snapshot_type in [None, Some("awsbackup")] {
            let mut pages = rds
                .describe_db_snapshots()
                .db_instance_identifier(&db.id)
                .set_snapshot_type(snapshot_type.map(str::to_owned))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(page) => page,
                    Err(e) if error_code(&e) == Some("DBSnapshotNotFound") => break,
                    Err(e) => return Err(RollbackError::from_sdk("DescribeDBSnapshots", e)),
                };
                for s in page.db_snapshots() {
                    let id = s.db_snapshot_identifier().unwrap_or_default();
                    if out.iter().any(|c: &Candidate| c.id == id) {
                        continue;
                    }
                    out.push(Candidate {
                        id: id.to_owned(),
                        source: s.db_instance_identifier().unwrap_or_default().to_owned(),
                        status: s.status().unwrap_or("unknown").to_owned(),
                        created_at: s.snapshot_create_time().and_then(to_chrono),
                        snapshot_type: s.snapshot_type().unwrap_or("unknown").to_owned(),
                        tags: tag_map(s.tag_list()),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A recovery point AWS Backup made: RDS lists it with SnapshotType `awsbackup` and an id
/// `awsbackup:job-…` (Aurora cluster recovery points carry the id only). It restores like any
/// snapshot of the account (RestoreDBInstanceFromDBSnapshot / RestoreDBClusterFromSnapshot
/// with its identifier; only snapshots shared from another account need the ARN).
pub fn is_aws_backup(c: &Candidate) -> bool {
    c.snapshot_type == "awsbackup" || c.id.starts_with("awsbackup:")
}

/// `an AWS Backup recovery point`, `a manual snapshot`.
fn with_article(words: &str) -> String {
    let article = if words.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {words}")
}

/// What kind of snapshot `c` is, in plain words.
pub fn kind_words(c: &Candidate) -> &'static str {
    if is_aws_backup(c) {
        "AWS Backup recovery point"
    } else {
        match c.snapshot_type.as_str() {
            "automated" => "automated RDS snapshot",
            "manual" => "manual snapshot",
            "shared" => "snapshot shared from another account",
            "public" => "public snapshot",
            _ => "snapshot",
        }
    }
}

/// What the choice needs to know besides the snapshots.
pub struct Criteria<'a> {
    pub service: &'a str,
    /// `request.release`: a pre-deploy snapshot of exactly this release wins.
    pub release: Option<&'a str>,
    pub cutoff: DateTime<Utc>,
    pub cutoff_source: CutoffSource,
    pub now: DateTime<Utc>,
}

/// Picks the snapshot for one database, or explains why none qualifies.
///
/// Eligible: of this database, `available`, created before the cutoff, manual, automated or
/// an AWS Backup recovery point, and not a `pre-rollback` backup (that holds the state being
/// rolled back). Among those, a pre-deploy snapshot tagged for this service is preferred (it
/// was taken right before a release, by the pipeline, for exactly this purpose; with
/// `request.release`, the one of that release); otherwise the newest eligible snapshot,
/// automated (`rds:…`), AWS Backup (`awsbackup:…`) or manual. The resolution's
/// `snapshot_type` is `awsbackup` for an AWS Backup recovery point; the note says the kind in
/// words.
pub fn choose(
    db: &DatabaseRef,
    criteria: &Criteria<'_>,
    candidates: &[Candidate],
) -> Result<(DatabaseResolution, ResolveNote), RollbackError> {
    let (eligible, rejected) = eligible_snapshots(db, criteria, candidates);
    let Some(((snapshot, created_at), source, why)) = preferred(criteria, eligible) else {
        return Err(none_qualifies(db, criteria, candidates.len(), &rejected));
    };
    let resolution = DatabaseResolution {
        database: db.id.clone(),
        kind: db.kind,
        snapshot_id: snapshot.id.clone(),
        snapshot_created_at: created_at,
        snapshot_type: if is_aws_backup(snapshot) {
            "awsbackup".to_owned()
        } else {
            snapshot.snapshot_type.clone()
        },
        release: snapshot.tags.get(tags::RELEASE).cloned(),
        data_loss: DataLossWindow::new(created_at, criteria.now),
        method: Default::default(),
        restore_time: None,
        restorable_window: None,
        read_replicas: Vec::new(),
    };
    let skipped = if rejected.is_empty() {
        String::new()
    } else {
        format!("; not used: {}", counted(&rejected))
    };
    let note = ResolveNote {
        database: db.id.clone(),
        source: source.to_owned(),
        considered: candidates.len(),
        explanation: format!(
            "{} ({}, {}): {why}{skipped}",
            snapshot.id,
            kind_words(snapshot),
            created_at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    };
    Ok((resolution, note))
}

/// A snapshot and its creation time.
type Dated<'c> = (&'c Candidate, DateTime<Utc>);

/// The eligible snapshots (with their creation times) and, for the others, how many were set
/// aside for each reason.
fn eligible_snapshots<'c>(
    db: &DatabaseRef,
    criteria: &Criteria<'_>,
    candidates: &'c [Candidate],
) -> (Vec<Dated<'c>>, BTreeMap<String, usize>) {
    let mut rejected: BTreeMap<String, usize> = BTreeMap::new();
    let mut eligible: Vec<(&Candidate, DateTime<Utc>)> = Vec::new();
    for c in candidates {
        match eligibility(db, criteria, c) {
            Ok(t) => eligible.push((c, t)),
            Err(reason) => *rejected.entry(reason).or_default() += 1,
        }
    }
    (eligible, rejected)
}

/// A candidate's creation time if it is eligible, or why it is not.
fn eligibility(
    db: &DatabaseRef,
    criteria: &Criteria<'_>,
    c: &Candidate,
) -> Result<DateTime<Utc>, String> {
    if !c.source.eq_ignore_ascii_case(&db.id) {
        Err("of another database".to_owned())
    } else if c.tags.get(tags::PURPOSE).map(String::as_str) == Some("pre-rollback") {
        Err("a pre-rollback backup (the state being rolled back)".to_owned())
    } else if !is_aws_backup(c) && !matches!(c.snapshot_type.as_str(), "manual" | "automated") {
        Err(format!("of type {}", c.snapshot_type))
    } else if c.status != "available" {
        Err(format!("not available (status {})", c.status))
    } else {
        match c.created_at {
            None => Err("without a creation time".to_owned()),
            Some(t) if t >= criteria.cutoff => Err("created after the cutoff".to_owned()),
            Some(t) => Ok(t),
        }
    }
}

/// The preferred eligible snapshot, with the resolution's `source` and why it was chosen:
/// the pre-deploy snapshot of `criteria.release`, else the newest pre-deploy snapshot, else
/// the newest eligible one.
fn preferred<'c>(
    criteria: &Criteria<'_>,
    eligible: Vec<Dated<'c>>,
) -> Option<(Dated<'c>, &'static str, String)> {
    let is_pre_deploy = |c: &Candidate| {
        c.snapshot_type == "manual"
            && !is_aws_backup(c)
            && c.tags.get(tags::PURPOSE).map(String::as_str) == Some("pre-deploy")
            && c.tags.get(tags::SERVICE).map(String::as_str) == Some(criteria.service)
    };
    let pre_deploy: Vec<_> = eligible
        .iter()
        .copied()
        .filter(|(c, _)| is_pre_deploy(c))
        .collect();
    let of_release = criteria.release.and_then(|release| {
        newest(
            pre_deploy
                .iter()
                .copied()
                .filter(|(c, _)| c.tags.get(tags::RELEASE).map(String::as_str) == Some(release))
                .collect(),
        )
    });
    if let Some(found) = of_release {
        Some((
            found,
            "pre-deploy",
            format!(
                "the pre-deploy snapshot taken before release {}",
                criteria.release.unwrap_or_default()
            ),
        ))
    } else if let Some(found) = newest(pre_deploy) {
        let release = found
            .0
            .tags
            .get(tags::RELEASE)
            .map(|r| format!(" (before release {r})"))
            .unwrap_or_default();
        Some((
            found,
            "pre-deploy",
            format!("the newest pre-deploy snapshot before the cutoff{release}"),
        ))
    } else {
        newest(eligible).map(|found| {
            (
                found,
                "fallback",
                format!(
                    "no pre-deploy snapshot of this database qualifies, so the newest snapshot \
                     before the cutoff, {}",
                    with_article(kind_words(found.0))
                ),
            )
        })
    }
}

/// SnapshotNotFound, with how many snapshots were considered and why each was set aside.
fn none_qualifies(
    db: &DatabaseRef,
    criteria: &Criteria<'_>,
    considered: usize,
    rejected: &BTreeMap<String, usize>,
) -> RollbackError {
    let reasons = if rejected.is_empty() {
        "RDS lists no snapshots for it".to_owned()
    } else {
        counted(rejected)
    };
    RollbackError::SnapshotNotFound(format!(
        "no usable snapshot of {} ({}) created before the cutoff {} ({}): {} snapshot(s) \
         considered: {reasons}. Take a snapshot of a known-good state, or start the \
         rollback with a later cutoff, or roll back the app only",
        db.id,
        db.kind.as_str(),
        criteria.cutoff.format("%Y-%m-%d %H:%M:%S UTC"),
        cutoff_words(criteria.cutoff_source),
        considered,
    ))
}

/// "2 of another database, 1 created after the cutoff".
fn counted(rejected: &BTreeMap<String, usize>) -> String {
    rejected
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn newest(list: Vec<(&Candidate, DateTime<Utc>)>) -> Option<(&Candidate, DateTime<Utc>)> {
    list.into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)))
}

fn cutoff_words(source: CutoffSource) -> &'static str {
    match source {
        CutoffSource::Request => "the request's cutoff",
        CutoffSource::ReleaseTime => "when the bad release rolled out",
        CutoffSource::Now => "now: neither a cutoff nor the release time was given",
    }
}

/// The read replicas of the live database, as RDS lists them now: an instance's replica
/// instances (`ReadReplicaDBInstanceIdentifiers`) and replica clusters
/// (`ReadReplicaDBClusterIdentifiers`), a cluster's replica clusters (`ReadReplicaIdentifiers`,
/// usually cross-region ARNs). None when the database does not exist.
pub async fn read_replicas(rds: &Client, db: &DatabaseRef) -> Result<Vec<String>, RollbackError> {
    let mut out: Vec<String> = Vec::new();
    if db.kind.is_cluster() {
        match rds
            .describe_db_clusters()
            .db_cluster_identifier(&db.id)
            .send()
            .await
        {
            Ok(found) => {
                for c in found.db_clusters() {
                    out.extend(c.read_replica_identifiers().iter().cloned());
                }
            }
            Err(e) if error_code(&e) == Some("DBClusterNotFoundFault") => {}
            Err(e) => return Err(RollbackError::from_sdk("DescribeDBClusters", e)),
        }
    } else {
        match rds
            .describe_db_instances()
            .db_instance_identifier(&db.id)
            .send()
            .await
        {
            Ok(found) => {
                for i in found.db_instances() {
                    out.extend(i.read_replica_db_instance_identifiers().iter().cloned());
                    out.extend(i.read_replica_db_cluster_identifiers().iter().cloned());
                }
            }
            Err(e) if error_code(&e) == Some("DBInstanceNotFound") => {}
            Err(e) => return Err(RollbackError::from_sdk("DescribeDBInstances", e)),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Resolves every plan database (none when the scope leaves databases alone).
pub async fn resolve(
    rds: &Client,
    databases: &[DatabaseRef],
    criteria: &Criteria<'_>,
    in_scope: bool,
) -> Result<ResolveOutput, RollbackError> {
    let mut resolved = Vec::new();
    let mut notes = Vec::new();
    if in_scope {
        for db in databases {
            let (mut resolution, mut note) = if db.restore.is_snapshot() {
                choose(db, criteria, &list_snapshots(rds, db).await?)?
            } else {
                crate::resolve_pitr::resolve_one(rds, db, criteria).await?
            };
            resolution.read_replicas = read_replicas(rds, db).await?;
            if !resolution.read_replicas.is_empty() {
                note.explanation.push_str(&format!(
                    "; read replicas {}: they stay attached to the database moved aside and do \
                     not follow the restored copy (recreating them is not automated)",
                    resolution.read_replicas.join(", ")
                ));
            }
            tracing::info!(database = %db.id, snapshot = %resolution.snapshot_id, "resolved");
            resolved.push(resolution);
            notes.push(note);
        }
    }
    Ok(ResolveOutput {
        in_scope,
        cutoff: criteria.cutoff,
        cutoff_source: criteria.cutoff_source,
        databases: resolved,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollback_core::plan::DatabaseKind;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn snap(
        id: &str,
        source: &str,
        status: &str,
        at: &str,
        kind: &str,
        tags: &[(&str, &str)],
    ) -> Candidate {
        Candidate {
            id: id.into(),
            source: source.into(),
            status: status.into(),
            created_at: Some(t(at)),
            snapshot_type: kind.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn criteria(release: Option<&str>) -> Criteria<'_> {
        Criteria {
            service: "svc",
            release,
            cutoff: t("2024-05-01T12:00:00Z"),
            cutoff_source: CutoffSource::Request,
            now: t("2024-05-01T13:00:00Z"),
        }
    }

    fn db() -> DatabaseRef {
        DatabaseRef {
            kind: DatabaseKind::RdsInstance,
            id: "db1".into(),
            restore: Default::default(),
        }
    }

    const PRE: &[(&str, &str)] = &[
        ("rollback:purpose", "pre-deploy"),
        ("rollback:service", "svc"),
    ];

    #[test]
    fn prefers_pre_deploy_over_a_newer_automated_snapshot() {
        let list = vec![
            snap(
                "rds:db1-a",
                "db1",
                "available",
                "2024-05-01T11:30:00Z",
                "automated",
                &[],
            ),
            snap(
                "pre",
                "db1",
                "available",
                "2024-05-01T11:00:00Z",
                "manual",
                PRE,
            ),
            snap(
                "late",
                "db1",
                "available",
                "2024-05-01T12:30:00Z",
                "manual",
                PRE,
            ),
            snap(
                "creating",
                "db1",
                "creating",
                "2024-05-01T11:50:00Z",
                "manual",
                PRE,
            ),
        ];
        let (r, note) = choose(&db(), &criteria(None), &list).unwrap();
        assert_eq!(r.snapshot_id, "pre");
        assert_eq!(note.source, "pre-deploy");
        assert_eq!(r.data_loss.seconds, 7200);
        assert!(
            note.explanation.contains("1 created after the cutoff"),
            "{}",
            note.explanation
        );
        assert!(
            note.explanation.contains("status creating"),
            "{}",
            note.explanation
        );
    }

    #[test]
    fn the_requested_release_wins_among_pre_deploy_snapshots() {
        let v1 = [PRE, &[("rollback:release", "v1")]].concat();
        let v2 = [PRE, &[("rollback:release", "v2")]].concat();
        let list = vec![
            snap(
                "pre-v1",
                "db1",
                "available",
                "2024-05-01T10:00:00Z",
                "manual",
                &v1,
            ),
            snap(
                "pre-v2",
                "db1",
                "available",
                "2024-05-01T11:00:00Z",
                "manual",
                &v2,
            ),
        ];
        let (r, _) = choose(&db(), &criteria(Some("v1")), &list).unwrap();
        assert_eq!(r.snapshot_id, "pre-v1");
        assert_eq!(r.release.as_deref(), Some("v1"));
        let (r, _) = choose(&db(), &criteria(None), &list).unwrap();
        assert_eq!(r.snapshot_id, "pre-v2");
    }

    #[test]
    fn falls_back_to_automated_and_never_uses_backups_or_other_services() {
        let other_service = [
            ("rollback:purpose", "pre-deploy"),
            ("rollback:service", "other"),
        ];
        let backup = [
            ("rollback:purpose", "pre-rollback"),
            ("rollback:service", "svc"),
        ];
        let list = vec![
            snap(
                "rds:db1-old",
                "db1",
                "available",
                "2024-04-30T03:00:00Z",
                "automated",
                &[],
            ),
            snap(
                "backup",
                "db1",
                "available",
                "2024-05-01T11:59:00Z",
                "manual",
                &backup,
            ),
            snap(
                "foreign",
                "db1",
                "available",
                "2024-04-29T03:00:00Z",
                "manual",
                &other_service,
            ),
            snap(
                "shared",
                "db1",
                "available",
                "2024-05-01T11:00:00Z",
                "shared",
                &[],
            ),
        ];
        let (r, note) = choose(&db(), &criteria(None), &list).unwrap();
        assert_eq!(r.snapshot_id, "rds:db1-old");
        assert_eq!(r.snapshot_type, "automated");
        assert_eq!(note.source, "fallback");
        assert!(
            note.explanation.contains("pre-rollback backup"),
            "{}",
            note.explanation
        );
    }

    /// AWS Backup recovery points qualify: the newest snapshot before the cutoff wins when no
    /// pre-deploy snapshot qualifies, and the resolution and note say what it is. A pre-deploy
    /// snapshot still wins over a newer recovery point.
    #[test]
    fn an_aws_backup_recovery_point_is_chosen_and_named() {
        let job = "awsbackup:job-be59cf2a-2343-4402-bd8b-226993d23453";
        let mut list = vec![
            snap(
                "rds:db1-2024-05-01-03-00",
                "db1",
                "available",
                "2024-05-01T03:00:00Z",
                "automated",
                &[],
            ),
            snap(
                job,
                "db1",
                "available",
                "2024-05-01T11:00:00Z",
                "awsbackup",
                &[],
            ),
            snap(
                "awsbackup:job-late",
                "db1",
                "available",
                "2024-05-01T12:10:00Z",
                "awsbackup",
                &[],
            ),
        ];
        let (r, note) = choose(&db(), &criteria(None), &list).unwrap();
        assert_eq!(r.snapshot_id, job);
        assert_eq!(r.snapshot_type, "awsbackup");
        assert_eq!(note.source, "fallback");
        assert!(
            note.explanation.starts_with(&format!(
                "{job} (AWS Backup recovery point, 2024-05-01 11:00:00 UTC): no pre-deploy \
                 snapshot of this database qualifies, so the newest snapshot before the cutoff, \
                 an AWS Backup recovery point"
            )),
            "{}",
            note.explanation
        );
        // An Aurora recovery point listed without the awsbackup type is recognised by its id.
        let cluster_point = snap(
            job,
            "db1",
            "available",
            "2024-05-01T11:00:00Z",
            "manual",
            PRE,
        );
        let (r, _) = choose(&db(), &criteria(None), &[cluster_point]).unwrap();
        assert_eq!(
            r.snapshot_type, "awsbackup",
            "not taken for a pre-deploy snapshot"
        );

        list.push(snap(
            "pre",
            "db1",
            "available",
            "2024-05-01T10:00:00Z",
            "manual",
            PRE,
        ));
        let (r, note) = choose(&db(), &criteria(None), &list).unwrap();
        assert_eq!(r.snapshot_id, "pre");
        assert_eq!(note.source, "pre-deploy");
        assert!(
            note.explanation.contains("(manual snapshot, "),
            "{}",
            note.explanation
        );
    }

    #[test]
    fn nothing_eligible_explains_what_was_searched() {
        let list = vec![
            snap(
                "late",
                "db1",
                "available",
                "2024-05-01T12:30:00Z",
                "manual",
                PRE,
            ),
            snap(
                "creating",
                "db1",
                "creating",
                "2024-05-01T11:50:00Z",
                "manual",
                PRE,
            ),
            snap(
                "other",
                "db2",
                "available",
                "2024-05-01T11:00:00Z",
                "manual",
                PRE,
            ),
        ];
        let err = choose(&db(), &criteria(None), &list).unwrap_err();
        assert_eq!(err.error_name(), "Rollback.SnapshotNotFound");
        let text = err.to_string();
        for part in [
            "db1",
            "2024-05-01 12:00:00 UTC",
            "3 snapshot(s) considered",
            "1 created after the cutoff",
            "1 not available (status creating)",
            "1 of another database",
        ] {
            assert!(text.contains(part), "{part} missing in {text}");
        }
        let err = choose(&db(), &criteria(None), &[]).unwrap_err();
        assert!(err.to_string().contains("RDS lists no snapshots"), "{err}");
    }
}
