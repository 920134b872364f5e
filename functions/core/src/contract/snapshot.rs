//! Contract of the `snapshot` function: backups of the plan's databases.
//!
//! Input envelope: [`crate::step::StepInput<SnapshotAction>`]. Every action answers with
//! [`SnapshotOutput`].
//!
//! - `create`: snapshot the current state of the plan's databases before anything is restored
//!   (`rollback-<service>-<exec>-<db>`, purpose `pre-rollback`). A retry finds the snapshot its
//!   first attempt started and reports it instead of making a second one. In drill mode nothing
//!   is created: the databases are checked and the snapshots that a live run would take are
//!   reported with status `skipped-drill` (manual snapshots are never deleted automatically,
//!   so drills would otherwise pile them up).
//! - `status`: the state of the snapshots `create` (or `pre-deploy`) names; a failed snapshot is
//!   `Rollback.SnapshotFailed`, a missing one `Rollback.SnapshotNotFound`.
//! - `pre-deploy`: called by the deploy pipeline before a release; snapshot
//!   `predeploy-<service>-<release>-<db>` (purpose `pre-deploy`), which `restore:resolve` prefers.
//!   The plan's SQL probes with `compare.baseline` run against the live database just before
//!   its snapshot starts; their values are created with the snapshot as tags
//!   `rollback:baseline:<probe name>`, which the smoke test compares with after a rollback. A
//!   probe that cannot be recorded is an error and nothing is snapshotted.
//!
//! Tags on every snapshot: `rollback:execution`, `rollback:purpose`, `rollback:release` (when
//! known), `rollback:service`; on pre-deploy snapshots, the baselines.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::DatabaseKind;

/// The actions the state machine (or the deploy pipeline) may call on this function.
pub const ACTIONS: &[&str] = &["create", "status", "pre-deploy"];

/// Tag keys the snapshot function writes and `restore:resolve` reads.
pub mod tags {
    /// The execution that took the snapshot.
    pub const EXECUTION: &str = "rollback:execution";
    /// Why it was taken: `pre-rollback` or `pre-deploy` ([`super::SnapshotPurpose`]).
    pub const PURPOSE: &str = "rollback:purpose";
    /// The release it was taken for, when known.
    pub const RELEASE: &str = "rollback:release";
    /// The plan's service.
    pub const SERVICE: &str = "rollback:service";
    /// `rollback:baseline:<probe name>` on a pre-deploy snapshot: the value of that SQL probe
    /// (`compare.baseline: "pre-deploy-snapshot"`) just before the snapshot was taken.
    pub const BASELINE_PREFIX: &str = "rollback:baseline:";

    /// The tag key of a probe's baseline.
    pub fn baseline(probe_name: &str) -> String {
        format!("{BASELINE_PREFIX}{probe_name}")
    }
}

/// RDS tag values have at most this many characters; a baseline is a number's text.
pub const MAX_BASELINE_VALUE_CHARS: usize = 256;

/// The input of one `snapshot` invocation, tagged by `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum SnapshotAction {
    /// Back up the current state (purpose `pre-rollback`).
    Create {
        /// Plan database ids to snapshot (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
    },
    /// Report the snapshots `create` (or `pre-deploy`) made.
    Status {
        /// Plan database ids to report (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
        /// Which snapshots: `pre-rollback` (default) or `pre-deploy` (then `release` is needed).
        #[serde(default)]
        purpose: SnapshotPurpose,
        /// Release of `pre-deploy` snapshots (default: `request.release`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release: Option<String>,
        /// Look again, `polling.interval_seconds` apart, for up to
        /// `polling.status_wait_seconds` until done (the definition's wait loops); otherwise
        /// one look.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_looking: bool,
    },
    /// Snapshot before a release (purpose `pre-deploy`).
    PreDeploy {
        /// The release about to be deployed (default: `request.release`; one of them is required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release: Option<String>,
        /// Plan database ids to snapshot (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
    },
}

/// Why a snapshot was taken; written as the `rollback:purpose` tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotPurpose {
    /// Backup of the current state taken by a rollback before it restores anything.
    #[default]
    PreRollback,
    /// Taken by the deploy pipeline before a release: the state to go back to.
    PreDeploy,
}

impl SnapshotPurpose {
    /// The tag value (`pre-rollback`, `pre-deploy`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotPurpose::PreRollback => "pre-rollback",
            SnapshotPurpose::PreDeploy => "pre-deploy",
        }
    }
}

/// What every `snapshot` action answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOutput {
    /// One report per database.
    pub snapshots: Vec<SnapshotReport>,
    /// True when every snapshot is `available` (or skipped in a drill).
    pub all_available: bool,
    /// The execution ran in drill mode (nothing was created).
    #[serde(default)]
    pub drill: bool,
}

/// One database's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotReport {
    /// Plan database id.
    pub database: String,
    /// What kind of database it is (RDS instance, Aurora or DocumentDB cluster).
    pub kind: DatabaseKind,
    /// The RDS snapshot identifier.
    pub snapshot_id: String,
    /// Why the snapshot was taken.
    pub purpose: SnapshotPurpose,
    /// RDS status: `creating`, `available`, …, or `skipped-drill`.
    pub status: String,
    /// RDS's snapshot creation time, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// RDS's progress of the snapshot, in percent, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_percent: Option<i32>,
    /// False when this call found the snapshot already there (a retry, or a second call).
    #[serde(default)]
    pub created_now: bool,
}

/// Status value reported for snapshots a drill does not take.
pub const SKIPPED_DRILL: &str = "skipped-drill";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_parse_from_the_envelope_fields() {
        let a: SnapshotAction = serde_json::from_value(json!({"action": "create"})).unwrap();
        assert_eq!(a, SnapshotAction::Create { databases: None });
        let a: SnapshotAction = serde_json::from_value(
            json!({"action": "status", "purpose": "pre-deploy", "release": "v1"}),
        )
        .unwrap();
        assert_eq!(
            a,
            SnapshotAction::Status {
                databases: None,
                purpose: SnapshotPurpose::PreDeploy,
                release: Some("v1".into()),
                keep_looking: false,
            }
        );
        for name in ACTIONS {
            let v = json!({"action": name, "release": "v1"});
            assert!(
                serde_json::from_value::<SnapshotAction>(v).is_ok(),
                "{name}"
            );
        }
    }
}
