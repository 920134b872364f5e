//! Point-in-time resolution (`"restore": "point-in-time"`): the database goes back to the
//! cutoff itself, if RDS can restore to it. RDS restores an instance or cluster to any second
//! inside `[EarliestRestorableTime, LatestRestorableTime]` (automated backups plus transaction
//! logs); outside it there is nothing to restore from, so resolve refuses before anyone is
//! asked to approve.
//!
//! Where RDS does not report an end of the window it is recorded as unknown, never guessed:
//! instances report `LatestRestorableTime` on `DescribeDBInstances` and the earliest time only
//! on `DescribeDBInstanceAutomatedBackups` (`RestoreWindow`); when that is missing, the window
//! keeps `earliest: None` and a bound it certainly does not precede (creation time, now minus
//! the backup retention), which is all that is checked at that end.

use aws_sdk_rds::Client;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use rollback_core::RollbackError;
use rollback_core::contract::restore::{CutoffSource, ResolveNote};
use rollback_core::plan::{DatabaseRef, RestoreMethod};
use rollback_core::resolved::{DataLossWindow, DatabaseResolution, RestorableWindow};

use crate::db::{describe_cluster, describe_instance};
use crate::resolve::{Criteria, choose, list_snapshots};

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The window RDS reports for the database now.
pub async fn window(
    rds: &Client,
    db: &DatabaseRef,
    now: DateTime<Utc>,
) -> Result<RestorableWindow, RollbackError> {
    let gone = || {
        RollbackError::InvalidInput(format!(
            "{} ({}) does not exist, so it cannot be restored to a point in time; fix the \
             plan's database id or restore it from a snapshot (\"restore\": \"snapshot\")",
            db.id,
            db.kind.as_str()
        ))
    };
    let (retention, created, earliest, latest, mut note) = if db.kind.is_cluster() {
        let c = describe_cluster(rds, &db.id).await?.ok_or_else(gone)?;
        (
            c.backup_retention_period(),
            c.cluster_create_time().and_then(to_chrono),
            c.earliest_restorable_time().and_then(to_chrono),
            c.latest_restorable_time().and_then(to_chrono),
            "EarliestRestorableTime and LatestRestorableTime from DescribeDBClusters".to_owned(),
        )
    } else {
        let i = describe_instance(rds, &db.id).await?.ok_or_else(gone)?;
        let (earliest, from) = automated_backup_window(rds, &db.id).await?;
        (
            i.backup_retention_period(),
            i.instance_create_time().and_then(to_chrono),
            earliest,
            i.latest_restorable_time().and_then(to_chrono),
            format!("LatestRestorableTime from DescribeDBInstances; earliest time {from}"),
        )
    };
    if retention == Some(0) {
        return Err(RollbackError::InvalidInput(format!(
            "{} ({}) has automated backups turned off (backup retention 0 days), so RDS cannot \
             restore it to a point in time; set \"restore\": \"snapshot\" for it in the plan, or \
             enable automated backups (they cover only the time after they are enabled)",
            db.id,
            db.kind.as_str()
        )));
    }
    let earliest_bound = if earliest.is_none() {
        let by_retention = retention.map(|days| now - Duration::days(i64::from(days)));
        // To the second, rounded down: the restore time is whole seconds too.
        let bound = [created, by_retention]
            .into_iter()
            .flatten()
            .max()
            .map(|b| b.trunc_subsecs(0));
        note.push_str(&match bound {
            Some(b) => format!(
                "; RDS reported no earliest restorable time: unknown, but not before {} \
                 (creation time / backup retention)",
                utc(b)
            ),
            None => "; RDS reported no earliest restorable time: unknown".to_owned(),
        });
        bound
    } else {
        None
    };
    if latest.is_none() {
        note.push_str(
            "; RDS reported no latest restorable time: unknown (the restore call itself refuses \
             a time after it)",
        );
    }
    Ok(RestorableWindow {
        earliest,
        latest,
        earliest_bound,
        note,
    })
}

/// `RestoreWindow.EarliestTime` of the instance's active automated backup, and where it came
/// from (or why it is unknown).
async fn automated_backup_window(
    rds: &Client,
    id: &str,
) -> Result<(Option<DateTime<Utc>>, String), RollbackError> {
    match rds
        .describe_db_instance_automated_backups()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => {
            let earliest = out
                .db_instance_automated_backups()
                .iter()
                .filter(|b| matches!(b.status(), Some("active") | None))
                .filter_map(|b| b.restore_window()?.earliest_time().and_then(to_chrono))
                .min();
            Ok(match earliest {
                Some(t) => (
                    Some(t),
                    "from DescribeDBInstanceAutomatedBackups".to_owned(),
                ),
                None => (
                    None,
                    "not in DescribeDBInstanceAutomatedBackups (no RestoreWindow)".to_owned(),
                ),
            })
        }
        Err(e) => match RollbackError::from_sdk("DescribeDBInstanceAutomatedBackups", e) {
            err @ (RollbackError::Throttled { .. } | RollbackError::Transient { .. }) => Err(err),
            err => Ok((None, format!("unknown: {err}"))),
        },
    }
}

/// Refuses a restore time outside the window, naming the database, the time and the window.
pub fn check(
    db: &DatabaseRef,
    at: DateTime<Utc>,
    window: &RestorableWindow,
    what: &str,
) -> Result<(), RollbackError> {
    if !window.excludes(at) {
        return Ok(());
    }
    let fix = if window.latest.is_some_and(|l| at > l) {
        "RDS has not yet archived the logs up to it; wait a few minutes and resolve again, or \
         give an earlier cutoff"
    } else {
        "it is older than the automated backups reach; give a later cutoff, or set \"restore\": \
         \"snapshot\" for this database and use an older snapshot"
    };
    Err(RollbackError::InvalidInput(format!(
        "{what} {} of {} ({}) is outside its restorable window {} ({}); nothing was restored: \
         {fix}",
        at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
        db.id,
        db.kind.as_str(),
        window.describe(),
        window.note
    )))
}

/// Resolves a database whose plan entry is not plain `snapshot`: `point-in-time`, or
/// `snapshot-or-point-in-time` (a pre-deploy snapshot when one qualifies; else point in time;
/// when RDS cannot restore to the cutoff, the newest other snapshot, saying why).
pub async fn resolve_one(
    rds: &Client,
    db: &DatabaseRef,
    criteria: &Criteria<'_>,
) -> Result<(DatabaseResolution, ResolveNote), RollbackError> {
    if db.restore != RestoreMethod::SnapshotOrPointInTime {
        return point_in_time(rds, db, criteria).await;
    }
    let by_snapshot = choose(db, criteria, &list_snapshots(rds, db).await?);
    if let Ok((_, note)) = &by_snapshot
        && note.source == "pre-deploy"
    {
        return by_snapshot;
    }
    match point_in_time(rds, db, criteria).await {
        Ok((resolution, mut note)) => {
            note.explanation = format!("no pre-deploy snapshot qualifies, so {}", note.explanation);
            Ok((resolution, note))
        }
        Err(RollbackError::InvalidInput(why)) => match by_snapshot {
            Ok((resolution, mut note)) => {
                note.explanation = format!(
                    "{}; point in time was not possible: {why}",
                    note.explanation
                );
                Ok((resolution, note))
            }
            Err(no_snapshot) => Err(RollbackError::SnapshotNotFound(format!(
                "{no_snapshot}; and point in time was not possible either: {why}"
            ))),
        },
        Err(other) => Err(other),
    }
}

/// The restore time is the cutoff (to the second, rounded down so no write after the cutoff is
/// kept), inside the window RDS reports now.
async fn point_in_time(
    rds: &Client,
    db: &DatabaseRef,
    criteria: &Criteria<'_>,
) -> Result<(DatabaseResolution, ResolveNote), RollbackError> {
    let at = criteria.cutoff.trunc_subsecs(0);
    let window = window(rds, db, criteria.now).await?;
    check(db, at, &window, "the cutoff")?;
    let resolution = DatabaseResolution {
        database: db.id.clone(),
        kind: db.kind,
        snapshot_id: format!("point-in-time:{}", at.format("%Y-%m-%dT%H:%M:%SZ")),
        snapshot_created_at: at,
        snapshot_type: "point-in-time".to_owned(),
        release: None,
        data_loss: DataLossWindow::point_in_time(at, criteria.now),
        method: RestoreMethod::PointInTime,
        restore_time: Some(at),
        restorable_window: Some(window.clone()),
        read_replicas: Vec::new(),
    };
    let note = ResolveNote {
        database: db.id.clone(),
        source: "point-in-time".to_owned(),
        considered: 0,
        explanation: format!(
            "restore to point in time {} ({}); restorable window {} ({})",
            utc(at),
            match criteria.cutoff_source {
                CutoffSource::Request => "the request's cutoff",
                CutoffSource::ReleaseTime => "when the bad release rolled out",
                CutoffSource::Now => "now: neither a cutoff nor the release time was given",
            },
            window.describe(),
            window.note
        ),
    };
    tracing::info!(database = %db.id, restore_time = %at, "resolved to a point in time");
    Ok((resolution, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollback_core::plan::DatabaseKind;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn outside_the_window_names_database_time_and_window() {
        let db = DatabaseRef {
            kind: DatabaseKind::AuroraCluster,
            id: "orders".into(),
            restore: RestoreMethod::PointInTime,
        };
        let w = RestorableWindow {
            earliest: Some(t("2024-05-01T10:00:00Z")),
            latest: Some(t("2024-05-01T12:55:00Z")),
            earliest_bound: None,
            note: "n".into(),
        };
        assert!(check(&db, t("2024-05-01T11:00:00Z"), &w, "the cutoff").is_ok());
        let early = check(&db, t("2024-05-01T09:00:00Z"), &w, "the cutoff").unwrap_err();
        let late = check(&db, t("2024-05-01T12:56:00Z"), &w, "the cutoff").unwrap_err();
        for (err, fix) in [(early, "later cutoff"), (late, "wait a few minutes")] {
            assert_eq!(err.error_name(), "Rollback.InvalidInput");
            let text = err.to_string();
            for part in [
                "orders",
                "2024-05-01 10:00:00 UTC to 2024-05-01 12:55:00 UTC",
                fix,
            ] {
                assert!(text.contains(part), "{part} missing in {text}");
            }
        }
        let unknown = RestorableWindow {
            earliest: None,
            latest: None,
            earliest_bound: Some(t("2024-05-01T10:00:00Z")),
            note: "n".into(),
        };
        assert!(check(&db, t("2024-05-01T23:00:00Z"), &unknown, "x").is_ok());
        let err = check(&db, t("2024-05-01T09:00:00Z"), &unknown, "x").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown (not before 2024-05-01 10:00:00 UTC) to unknown"),
            "{err}"
        );
    }
}
