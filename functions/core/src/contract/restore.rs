//! Contract of the `restore` function: put the plan's databases back to a snapshot while the
//! endpoint the application uses stays the same.
//!
//! Input envelope: [`crate::step::StepInput<RestoreAction>`].
//!
//! - `resolve` → [`ResolveOutput`]: per database, the newest *available* snapshot created
//!   before the cutoff. Preference: manual `pre-deploy` snapshots tagged for this service
//!   (`rollback:purpose=pre-deploy`, `rollback:service=<service>`); when none qualifies, any
//!   other snapshot of the database (automated `rds:…` or manual), reported as such in
//!   `snapshot_type` and `notes`. Never a `pre-rollback` backup (that is the bad state).
//!   Cutoff: `request.cutoff`, else the input `release_time`, else now. With scope `app`,
//!   nothing is resolved (`in_scope: false`).
//! - `start` → [`StartOutput`]: restore each approved resolution into
//!   `<db>-restored-<exec>` (drill: `<db>-drill-<exec>`) with the source's class / cluster
//!   settings, subnet group, security groups and parameter groups; clusters also get their
//!   instances (`<target>-1`, `-2`, …; a drill creates only the writer). Refuses
//!   (`Rollback.PlanDrifted`) when the approved snapshot is no longer available.
//! - `status` → [`StatusOutput`]: whether each restore target and its instances are available
//!   (after a swap, the restored database is found under the original identifier).
//! - `swap` → [`SwapOutput`]: rename current → `<db>-pre-rollback-<exec>`, restored → `<db>`.
//!   Re-entrant: call it again (after a Wait) until `complete`; renames are asynchronous in
//!   RDS. Never deletes; reverts the first rename when the second fails. A drill swaps nothing.
//! - `cleanup-drill` → [`CleanupOutput`]: delete a drill's scratch restore (only resources
//!   tagged as this execution's drill copy); call again until `complete`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::DatabaseKind;
use crate::resolved::DatabaseResolution;

pub const ACTIONS: &[&str] = &["resolve", "start", "status", "swap", "cleanup-drill"];

/// Tag keys written on restored databases, so later steps (and people) recognise them.
pub mod tags {
    pub const EXECUTION: &str = "rollback:execution";
    /// `restored` or `drill`.
    pub const ROLE: &str = "rollback:role";
    /// The plan database the copy was made for.
    pub const SOURCE: &str = "rollback:source";
    pub const SNAPSHOT: &str = "rollback:snapshot";
    /// Clusters: how many instances `start` creates (`<target>-1` … `<target>-n`).
    pub const INSTANCES: &str = "rollback:instances";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RestoreAction {
    Resolve {
        /// When the bad release rolled out (`deploy-undo:resolve` reports it); the cutoff when
        /// the request gives none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release_time: Option<DateTime<Utc>>,
    },
    Start {
        /// The approved resolutions (`resolve`'s `databases`).
        resolved: Vec<DatabaseResolution>,
    },
    Status {
        /// Plan database ids (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
    },
    Swap {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
    },
    CleanupDrill {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutoffSource {
    /// `request.cutoff`.
    Request,
    /// The input `release_time`.
    ReleaseTime,
    /// Neither was given: the newest snapshot overall.
    Now,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveOutput {
    /// False when the request's scope leaves databases alone (nothing resolved).
    pub in_scope: bool,
    pub cutoff: DateTime<Utc>,
    pub cutoff_source: CutoffSource,
    pub databases: Vec<DatabaseResolution>,
    /// Why each snapshot was chosen, in plain words (one per database).
    pub notes: Vec<ResolveNote>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveNote {
    pub database: String,
    /// `pre-deploy` (preferred), or `fallback` (automated or other manual snapshot).
    pub source: String,
    /// Snapshots of the database that were looked at.
    pub considered: usize,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartOutput {
    pub drill: bool,
    pub databases: Vec<StartedRestore>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedRestore {
    pub database: String,
    pub kind: DatabaseKind,
    pub snapshot_id: String,
    /// Identifier the restore goes to.
    pub target: String,
    /// Clusters: the instances created in the restored cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    pub status: String,
    /// False when a previous attempt had already started it.
    pub created_now: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusOutput {
    pub drill: bool,
    pub databases: Vec<TargetStatus>,
    pub all_available: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub database: String,
    pub kind: DatabaseKind,
    /// Where the restored data lives now: the restore id, or the original id after the swap.
    pub target: String,
    pub swapped: bool,
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceStatus>,
    pub available: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapOutput {
    pub drill: bool,
    /// True when every database holds the restored data under its original identifier.
    pub complete: bool,
    pub databases: Vec<SwapReport>,
    /// Databases renamed aside (the pre-rollback state): keep until nobody needs them, then
    /// delete by hand.
    pub aside: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwapState {
    /// The current database is being renamed aside; call `swap` again.
    RenamingAside,
    /// The restored database is being renamed to the original identifier; call `swap` again.
    RenamingRestored,
    /// The original identifier now holds the restored data.
    Done,
    /// Drill: nothing renamed.
    SkippedDrill,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapReport {
    pub database: String,
    pub kind: DatabaseKind,
    pub state: SwapState,
    /// Where the previous database is (or will be) kept.
    pub aside: String,
    /// The restore identifier the restored database came from.
    pub restored_from: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupOutput {
    pub complete: bool,
    pub databases: Vec<CleanupReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    pub database: String,
    pub target: String,
    /// `deleting`, `deleted` (gone), or `waiting-for-instances` (clusters).
    pub state: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_action_parses() {
        for name in ACTIONS {
            let v = json!({"action": name, "resolved": []});
            assert!(serde_json::from_value::<RestoreAction>(v).is_ok(), "{name}");
        }
        let err = serde_json::from_value::<RestoreAction>(json!({"action": "start"})).unwrap_err();
        assert!(err.to_string().contains("resolved"), "{err}");
    }
}
