//! What "back to stable" concretely means, as the resolve steps find it. These are the outputs
//! of `restore:resolve`, `retag:resolve` and `deploy-undo:resolve`; notify renders them in the
//! approval email, and the destructive steps re-check them against live state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::{DatabaseKind, RestoreMethod};

/// The snapshot (or the point in time) one database would be restored to.
///
/// Point-in-time resolutions (`method: point-in-time`) have no snapshot: `snapshot_id` is the
/// label `point-in-time:<restore time>`, `snapshot_created_at` is the restore time,
/// `snapshot_type` is `point-in-time`, and `restore_time` / `restorable_window` say exactly
/// what RDS is asked for and what it reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseResolution {
    /// Plan database id.
    pub database: String,
    /// What kind of database it is.
    pub kind: DatabaseKind,
    /// The snapshot to restore (`point-in-time:<restore time>` for a point-in-time restore).
    pub snapshot_id: String,
    /// When the snapshot was taken (the restore time for a point-in-time restore).
    pub snapshot_created_at: DateTime<Utc>,
    /// `manual` (pre-deploy snapshots), `automated` (`rds:` daily snapshots) or
    /// `point-in-time`.
    pub snapshot_type: String,
    /// The release the snapshot was taken for (its `rollback:release` tag), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The writes a restore to this snapshot loses.
    pub data_loss: DataLossWindow,
    /// `snapshot` (default) or `point-in-time`.
    #[serde(default, skip_serializing_if = "RestoreMethod::is_snapshot")]
    pub method: RestoreMethod,
    /// Point in time: the exact time the copy is restored to (the cutoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_time: Option<DateTime<Utc>>,
    /// Point in time: the restorable window RDS reported when this was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restorable_window: Option<RestorableWindow>,
    /// Read replicas of the live database when this was resolved: instance ids
    /// (`ReadReplicaDBInstanceIdentifiers`), and cluster ids or ARNs of replica clusters
    /// (`ReadReplicaDBClusterIdentifiers`; clusters: `ReadReplicaIdentifiers`, cross-region).
    /// They stay attached to the database moved aside and do not follow the restored copy;
    /// the approval email says what the operator must do (recreating them is not automated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_replicas: Vec<String>,
}

impl DatabaseResolution {
    /// Whether RDS restores this database to a point in time rather than from a snapshot.
    pub fn is_point_in_time(&self) -> bool {
        self.method == RestoreMethod::PointInTime
    }

    /// `restore to point in time 2024-05-01 11:02:03 UTC` or `snapshot <id> (<type>, <time>)`.
    pub fn describe_source(&self) -> String {
        match (self.method, self.restore_time) {
            (RestoreMethod::PointInTime, Some(at)) => format!(
                "restore to point in time {}",
                at.format("%Y-%m-%d %H:%M:%S%.3f UTC")
            ),
            _ => format!(
                "snapshot {} ({}, {})",
                self.snapshot_id,
                self.snapshot_type,
                self.snapshot_created_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        }
    }
}

/// `[EarliestRestorableTime, LatestRestorableTime]` as RDS reported it; `None` where RDS did
/// not report that end (it is then unknown, not assumed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorableWindow {
    /// `EarliestRestorableTime`, when RDS reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest: Option<DateTime<Utc>>,
    /// `LatestRestorableTime`, when RDS reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<DateTime<Utc>>,
    /// When `earliest` is unknown: a time it is certainly not before (the database's creation,
    /// or now minus its backup retention), so a cutoff before it is refused all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_bound: Option<DateTime<Utc>>,
    /// Where the window came from and what is unknown, in plain words.
    pub note: String,
}

impl RestorableWindow {
    /// `2024-05-01 10:00:00 UTC to 2024-05-01 12:55:00 UTC`, with `unknown` for a missing end.
    pub fn describe(&self) -> String {
        let end = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let start = match (self.earliest, self.earliest_bound) {
            (None, Some(bound)) => format!(
                "unknown (not before {})",
                bound.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            (earliest, _) => end(earliest),
        };
        format!("{start} to {}", end(self.latest))
    }

    /// True when `at` is certainly outside the window (an unknown end refuses only what its
    /// bound rules out).
    pub fn excludes(&self, at: DateTime<Utc>) -> bool {
        self.earliest
            .or(self.earliest_bound)
            .is_some_and(|e| at < e)
            || self.latest.is_some_and(|l| at > l)
    }
}

/// Writes made to the live database in this window are not in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLossWindow {
    /// Start of the window: the snapshot's time (or the restore time).
    pub from: DateTime<Utc>,
    /// End of the window: when it was resolved.
    pub to: DateTime<Utc>,
    /// Its length in seconds (0 when `to` is not after `from`).
    pub seconds: i64,
    /// e.g. "writes from 2024-05-01 11:02 UTC to 12:30 UTC (1 h 28 min) …".
    pub summary: String,
}

impl DataLossWindow {
    /// The window from `from` to `to`, with its summary for a snapshot restore.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let seconds = (to - from).num_seconds().max(0);
        let summary = format!(
            "writes from {} to {} ({}) are not in the snapshot; the live database is backed up \
             before the restore so they can be recovered by hand",
            from.format("%Y-%m-%d %H:%M:%S UTC"),
            to.format("%Y-%m-%d %H:%M:%S UTC"),
            human_duration(seconds)
        );
        DataLossWindow {
            from,
            to,
            seconds,
            summary,
        }
    }
}

impl DataLossWindow {
    /// A point-in-time restore keeps every write up to `restore_time`; later ones are lost.
    pub fn point_in_time(restore_time: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let mut w = DataLossWindow::new(restore_time, now);
        w.summary = format!(
            "writes from {} to {} ({}) are not in the copy restored to that point in time; the \
             live database is backed up before the restore so they can be recovered by hand",
            restore_time.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
            now.format("%Y-%m-%d %H:%M:%S UTC"),
            human_duration(w.seconds)
        );
        w
    }
}

/// `5400` → `1 h 30 min`; `42` → `42 s`.
pub fn human_duration(seconds: i64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) if s == 0 => format!("{m} min"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// The digests behind one repository's tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageResolution {
    /// The ECR repository.
    pub repository: String,
    /// The plan's release tag (the tag the cluster deploys).
    pub release_tag: String,
    /// The plan's stable tag.
    pub stable_tag: String,
    /// The digest the stable tag points at: what the release tag is moved to.
    pub stable_digest: String,
    /// `None` when the release tag does not exist (nothing to move aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_digest: Option<String>,
    /// When the stable image was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_pushed_at: Option<DateTime<Utc>>,
    /// When the release tag's image was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_pushed_at: Option<DateTime<Utc>>,
    /// The release tag does not already point at the stable digest.
    pub retag_needed: bool,
    /// Tags are immutable: the release tag cannot be moved; deploy-undo pins the digest instead.
    pub immutable_tags: bool,
    /// Anything the approver should know about this image, in plain words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One deployment's current and target revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentResolution {
    /// The deployment's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The revision running now.
    pub current_revision: i64,
    /// The revision to go back to (`None`: there is no earlier revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<i64>,
    /// Container images of the current revision.
    pub current_images: Vec<String>,
    /// Container images of the target revision.
    #[serde(default)]
    pub target_images: Vec<String>,
    /// When the current revision rolled out: the default database cutoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_rolled_out_at: Option<DateTime<Utc>>,
    /// The replica count to restore after a pause: the one `pause` recorded, else the spec's.
    pub replicas: i32,
    /// `Some(false)` when the target revision's images are not the stable digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches_stable: Option<bool>,
    /// Tag-pinned: the target revision runs a release tag that the retag moves (e.g.
    /// `repo:prod`, among `target_images`), with the same reference as the current revision,
    /// so undo alone does not make the pods pull again. `deploy-undo restart` restarts them
    /// after the retag (as `kubectl rollout restart`) so they pull the stable image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_needed: bool,
    /// A container of the target revision runs a tag the retag moves with a pull policy that
    /// keeps a node's cached image (`IfNotPresent`, also what the API server sets for a
    /// non-`latest` tag without one, or `Never`): nodes that cached the bad image keep running
    /// it, restart or not. The fix: pin the image by digest, or `imagePullPolicy: Always`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pull_policy_keeps_cache: bool,
    /// Warnings for the approver (image mismatch, restart or pull-policy needs), in plain words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(42), "42 s");
        assert_eq!(human_duration(300), "5 min");
        assert_eq!(human_duration(301), "5 min 1 s");
        assert_eq!(human_duration(5400), "1 h 30 min");
        assert_eq!(human_duration(90_000), "1 d 1 h");
    }

    #[test]
    fn data_loss_window_counts_seconds_and_explains() {
        let from = DateTime::parse_from_rfc3339("2024-05-01T11:02:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let to = DateTime::parse_from_rfc3339("2024-05-01T12:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let w = DataLossWindow::new(from, to);
        assert_eq!(w.seconds, 5280);
        assert!(w.summary.contains("1 h 28 min"), "{}", w.summary);
    }
}
