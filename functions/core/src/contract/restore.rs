//! Contract of the `restore` function: put the plan's databases back to a snapshot (or a point
//! in time) while the endpoint the application uses stays the same.
//!
//! Input envelope: [`crate::step::StepInput<RestoreAction>`].
//!
//! - `resolve` → [`ResolveOutput`]: per database, the newest *available* snapshot created
//!   before the cutoff. Preference: manual `pre-deploy` snapshots tagged for this service
//!   (`rollback:purpose=pre-deploy`, `rollback:service=<service>`); when none qualifies, the
//!   newest other snapshot of the database: automated (`rds:…`), an AWS Backup recovery point
//!   (`awsbackup:job-…`; instances: listed by DescribeDBSnapshots only with SnapshotType
//!   `awsbackup`, so resolve asks for them too; Aurora: cluster snapshots with that id prefix)
//!   or manual, reported as such in `snapshot_type` (`automated`, `awsbackup`, `manual`) and
//!   in plain words in `notes` ("AWS Backup recovery point"). A recovery point restores like
//!   any snapshot of the account, by its identifier (only shared snapshots need the ARN).
//!   Never a `pre-rollback` backup (that is the bad state); never a shared or public snapshot.
//!   Cutoff: `request.cutoff`, else the input `release_time`, else now. With scope `app`,
//!   nothing is resolved (`in_scope: false`). Each resolution also lists the live database's
//!   read replicas (`read_replicas`: DescribeDBInstances `ReadReplicaDBInstanceIdentifiers` /
//!   `ReadReplicaDBClusterIdentifiers`, DescribeDBClusters `ReadReplicaIdentifiers`): they stay
//!   attached to the database moved aside and do not follow the restored copy; the approval
//!   email tells the operator how to recreate them (not automated).
//!   A plan database with `"restore": "point-in-time"` gets no snapshot: its resolution has
//!   `method: point-in-time` and `restore_time` = the cutoff (to the second, rounded down),
//!   the window RDS reported (`restorable_window`: `EarliestRestorableTime` /
//!   `LatestRestorableTime` of DescribeDBClusters; instances: `LatestRestorableTime` of
//!   DescribeDBInstances and `RestoreWindow.EarliestTime` of DescribeDBInstanceAutomatedBackups,
//!   an end RDS does not report being recorded as unknown, with only a bound it certainly does
//!   not precede: creation time, now minus the backup retention), and a data-loss window from
//!   the restore time to now. A cutoff outside the window, or automated backups turned off, is
//!   refused (`Rollback.InvalidInput`, naming the database, the time and the window).
//!   `"restore": "snapshot-or-point-in-time"`: a pre-deploy snapshot when one qualifies, else
//!   point in time as above, else (RDS cannot restore to the cutoff) the newest other
//!   snapshot; the note says which and why.
//! - `start` → [`StartOutput`]: restore each approved resolution into
//!   `<db>-restored-<exec>` (drill: `<db>-drill-<exec>`; names from `ids::derived_identifier`:
//!   an id too long to fit 63 characters is cut and a hash of the whole id replaces the cut
//!   tail, so no two plan databases share a name, and plan validation refuses a plan whose
//!   names would still coincide) configured like the source: everything the restore call
//!   accepts and the source has (class, subnet group, security groups, parameter and option
//!   groups, Multi-AZ, port, deletion protection, storage type / IOPS / throughput, IAM
//!   authentication, CloudWatch log exports, backup retention and window, CA certificate,
//!   public access, copy-tags-to-snapshot, the source's own tags plus ours; clusters: their own
//!   list, DocumentDB only what its API takes), one mapping in the restore crate's
//!   `start::settings`. A drill's scratch copy has deletion protection and Multi-AZ off. KMS:
//!   a snapshot restore keeps the snapshot's key; a point-in-time restore keeps the source's
//!   (clusters are given its `KmsKeyId`). Clusters also get their instances (`<target>-1`,
//!   `-2`, …, each with its source member's class, parameter group, Performance Insights,
//!   monitoring, CA certificate, maintenance window, promotion tier; no AZ pinned; a drill
//!   creates only the writer). Refuses (`Rollback.PlanDrifted`) when the approved snapshot is
//!   no longer available. Point in time: `RestoreDBInstanceToPointInTime` /
//!   `RestoreDBClusterToPointInTime` (full copy, never copy-on-write) to `restore_time`, after
//!   checking it is still inside the window (`Rollback.InvalidInput` otherwise); the copy is
//!   tagged `rollback:restore-time`.
//! - `status` → [`StatusOutput`]: whether each restore target and its instances are available
//!   (after a swap, the restored database is found under the original identifier). Before the
//!   swap, once a copy is `available`, status applies what the restore calls do not take
//!   (instances: maintenance window, Performance Insights, enhanced monitoring; clusters:
//!   maintenance window, DocumentDB backup retention and window) with one `ModifyDB*`: it
//!   describes source and copy first and sends only what differs, then tags the copy
//!   `rollback:settings-applied` so a later poll never modifies again; the copy reports
//!   `modifying` (not available) meanwhile.
//! - `swap` → [`SwapOutput`]: rename current → `<db>-pre-rollback-<exec>`, restored → `<db>`.
//!   Re-entrant: call it again (after a Wait) until `complete`; renames are asynchronous in
//!   RDS. All or nothing across the plan's databases: before the first rename it checks that
//!   every restored copy is this execution's and `available` and every original is
//!   `available`; after a failed rename it describes both names again and counts a rename
//!   that took effect (answer lost) as done. A permanent failure is `Rollback.SwapFailed`,
//!   and the caller then calls `revert`. Never deletes. A drill swaps nothing.
//! - `revert` → [`RevertOutput`]: put every database back under its original identifier (the
//!   restored copy goes back to its restore identifier and is kept). Re-entrant like `swap`:
//!   call until `complete`. With `only_if_incomplete`, a swap that completed for every
//!   database is kept (the rule: a swap that began and did not finish is reverted; a finished
//!   swap is kept whatever fails later, e.g. smoke tests). Databases it cannot put back are
//!   `needs-person`, with the exact commands.
//! - `observe` → [`ObserveOutput`]: read-only; what each plan database's identifiers hold now
//!   (original, restored copy, nothing, a rename in progress), for the contingency notice.
//! - `cleanup-drill` → [`CleanupOutput`]: delete a drill's scratch restore (only resources
//!   tagged as this execution's drill copy); call again until `complete`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::DatabaseKind;
use crate::resolved::DatabaseResolution;

/// The actions the state machine may call on this function.
pub const ACTIONS: &[&str] = &[
    "resolve",
    "start",
    "status",
    "swap",
    "revert",
    "observe",
    "cleanup-drill",
];

/// Tag keys written on restored databases, so later steps (and people) recognise them.
pub mod tags {
    /// The execution that made the copy.
    pub const EXECUTION: &str = "rollback:execution";
    /// `restored` or `drill`.
    pub const ROLE: &str = "rollback:role";
    /// The plan database the copy was made for; `start` reuses an existing copy only when
    /// execution, role and source all match (`Target::owns`).
    pub const SOURCE: &str = "rollback:source";
    /// The snapshot the copy was restored from (snapshot restores only).
    pub const SNAPSHOT: &str = "rollback:snapshot";
    /// Clusters: how many instances `start` creates (`<target>-1` … `<target>-n`).
    pub const INSTANCES: &str = "rollback:instances";
    /// On a database `revert` renamed back under its identifier: the execution.
    pub const REVERTED: &str = "rollback:reverted";
}

/// The input of one `restore` invocation, tagged by `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RestoreAction {
    /// Pick, per database, the snapshot (or point in time) to restore; changes nothing.
    Resolve {
        /// When the bad release rolled out (`deploy-undo:resolve` reports it); the cutoff when
        /// the request gives none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release_time: Option<DateTime<Utc>>,
    },
    /// Restore each approved resolution into a new identifier beside the live database.
    Start {
        /// The approved resolutions (`resolve`'s `databases`).
        resolved: Vec<DatabaseResolution>,
    },
    /// Report whether the restored copies are available.
    Status {
        /// Plan database ids (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
        /// Look again, `polling.interval_seconds` apart, for up to
        /// `polling.status_wait_seconds` until done (the definition's wait loops); otherwise
        /// one look.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_looking: bool,
    },
    /// Rename the live databases aside and the restored copies into their identifiers.
    Swap {
        /// Plan database ids (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
    },
    /// Put every database back under its original identifier.
    Revert {
        /// Plan database ids (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
        /// Keep a swap that completed for every database (the execution failed later).
        #[serde(default)]
        only_if_incomplete: bool,
    },
    /// Read-only: what each database's identifiers hold now.
    Observe {
        /// Plan database ids (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
    },
    /// Delete a drill's scratch copies.
    CleanupDrill {
        /// Plan database ids (default: every database in the plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        databases: Option<Vec<String>>,
    },
}

/// Where `resolve`'s cutoff came from.
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

/// Output of `resolve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveOutput {
    /// False when the request's scope leaves databases alone (nothing resolved).
    pub in_scope: bool,
    /// Snapshots must have been created before this time.
    pub cutoff: DateTime<Utc>,
    /// Where `cutoff` came from.
    pub cutoff_source: CutoffSource,
    /// One resolution per database in scope.
    pub databases: Vec<DatabaseResolution>,
    /// Why each snapshot was chosen, in plain words (one per database).
    pub notes: Vec<ResolveNote>,
}

/// Why one database's snapshot was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveNote {
    /// Plan database id.
    pub database: String,
    /// `pre-deploy` (preferred), `fallback` (automated snapshot, AWS Backup recovery point or
    /// other manual snapshot; the explanation says which), or `point-in-time`.
    pub source: String,
    /// Snapshots of the database that were looked at.
    pub considered: usize,
    /// The choice in plain words, for the approver.
    pub explanation: String,
}

/// Output of `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartOutput {
    /// The execution ran in drill mode (copies are scratch copies).
    pub drill: bool,
    /// One restore per database.
    pub databases: Vec<StartedRestore>,
}

/// One database's restore as `start` left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedRestore {
    /// Plan database id.
    pub database: String,
    /// What kind of database it is.
    pub kind: DatabaseKind,
    /// The snapshot restored from (as resolved).
    pub snapshot_id: String,
    /// Identifier the restore goes to.
    pub target: String,
    /// Clusters: the instances created in the restored cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// RDS status of the target (`creating`, `available`, …).
    pub status: String,
    /// False when a previous attempt had already started it.
    pub created_now: bool,
}

/// Output of `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusOutput {
    /// The execution ran in drill mode.
    pub drill: bool,
    /// One status per database.
    pub databases: Vec<TargetStatus>,
    /// Every target (and each cluster's instances) is available.
    pub all_available: bool,
}

/// One database's restore target as `status` observed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// Plan database id.
    pub database: String,
    /// What kind of database it is.
    pub kind: DatabaseKind,
    /// Where the restored data lives now: the restore id, or the original id after the swap.
    pub target: String,
    /// The restored data already sits at the original identifier.
    pub swapped: bool,
    /// RDS status of the target (`modifying` while `status` applies the remaining settings).
    pub status: String,
    /// Clusters: each instance of the restored cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceStatus>,
    /// The target is available (and so is every cluster instance).
    pub available: bool,
}

/// One cluster instance and its RDS status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The instance identifier.
    pub id: String,
    /// RDS status (`missing` when it does not exist).
    pub status: String,
}

/// Output of `swap`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapOutput {
    /// The execution ran in drill mode (nothing renamed).
    pub drill: bool,
    /// True when every database holds the restored data under its original identifier.
    pub complete: bool,
    /// One report per database.
    pub databases: Vec<SwapReport>,
    /// Databases renamed aside (the pre-rollback state): keep until nobody needs them, then
    /// delete by hand.
    pub aside: Vec<String>,
}

/// How far one database's swap got.
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

/// One database's swap as this call left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapReport {
    /// Plan database id.
    pub database: String,
    /// What kind of database it is.
    pub kind: DatabaseKind,
    /// How far the swap got.
    pub state: SwapState,
    /// Where the previous database is (or will be) kept.
    pub aside: String,
    /// The restore identifier the restored database came from.
    pub restored_from: String,
    /// What happened, in plain words.
    pub note: String,
}

/// Where a plan database is, as just observed at its three identifiers: the original, the
/// aside name (`<db>-pre-rollback-<exec>`) and the restore name (`<db>-restored-<exec>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// The original identifier holds the database the rollback found; nothing moved.
    Original,
    /// RDS is renaming the original database aside.
    MovingAside,
    /// The original identifier is free: the previous database is aside, the restored copy
    /// at its restore identifier (an outage until one of them is renamed in).
    Between,
    /// RDS is renaming a database into the original identifier (the restored copy, or the
    /// previous database going back).
    MovingIn,
    /// The original identifier holds this execution's restored copy; the previous database is
    /// kept aside.
    Swapped,
    /// RDS is renaming the restored copy away from the original identifier (a revert).
    MovingOut,
    /// No database at the original or aside identifier and no rename in progress.
    Missing,
    /// The names are taken by something this rollback did not put there.
    Conflict,
    /// A drill: nothing is renamed.
    Drill,
}

impl Placement {
    /// A rename is in progress; RDS cannot be asked for another one on these names.
    pub fn in_transit(self) -> bool {
        matches!(
            self,
            Placement::MovingAside | Placement::MovingIn | Placement::MovingOut
        )
    }

    /// Only a person can sort this out.
    pub fn needs_person(self) -> bool {
        matches!(self, Placement::Missing | Placement::Conflict)
    }
}

/// What one plan database's identifiers hold, observed just now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedDatabase {
    /// Plan database id.
    pub database: String,
    /// What kind of database it is.
    pub kind: DatabaseKind,
    /// What the identifiers hold, taken together.
    pub placement: Placement,
    /// RDS status at the original identifier (`None`: nothing there).
    pub status: Option<String>,
    /// The aside identifier (`<db>-pre-rollback-<exec>`).
    pub aside: String,
    /// RDS status at the aside identifier (`None`: nothing there).
    pub aside_status: Option<String>,
    /// The restore identifier (`<db>-restored-<exec>`).
    pub restore_id: String,
    /// RDS status at the restore identifier (`None`: nothing there).
    pub restore_status: Option<String>,
    /// The observation in one plain sentence.
    pub summary: String,
}

/// Output of `observe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserveOutput {
    /// The execution ran in drill mode.
    pub drill: bool,
    /// One observation per database.
    pub databases: Vec<ObservedDatabase>,
}

/// How far one database's revert got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevertState {
    /// The original identifier holds the original database (it never moved, or is back).
    Back,
    /// A rename back is under way; call `revert` again.
    Reverting,
    /// The swap had completed for every database and `only_if_incomplete` keeps it.
    KeptSwap,
    /// It cannot be put back automatically; `commands` say what a person must run.
    NeedsPerson,
    /// A drill: nothing was renamed.
    SkippedDrill,
}

/// One database's revert as this call left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertReport {
    /// Plan database id.
    pub database: String,
    /// What kind of database it is.
    pub kind: DatabaseKind,
    /// How far the revert got.
    pub state: RevertState,
    /// What was observed at the identifiers after this call's renames were asked for.
    pub observed: ObservedDatabase,
    /// True when this execution renamed something back for this database (now or earlier).
    pub reverted: bool,
    /// What happened, in plain words.
    pub note: String,
    /// Exact commands for a person (`needs-person`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
}

/// Output of `revert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertOutput {
    /// The execution ran in drill mode (nothing renamed).
    pub drill: bool,
    /// Nothing more to wait for: every database is back, kept swapped, or needs a person.
    pub complete: bool,
    /// Some database needs a person (see its `commands`).
    pub needs_person: bool,
    /// The databases keep a completed swap (`only_if_incomplete`); the state machine then
    /// leaves the service paused rather than resume the bad release on the restored data.
    #[serde(default)]
    pub kept_swap: bool,
    /// One report per database.
    pub databases: Vec<RevertReport>,
}

/// Output of `cleanup-drill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupOutput {
    /// Every scratch copy is gone; otherwise call again.
    pub complete: bool,
    /// One report per database.
    pub databases: Vec<CleanupReport>,
}

/// One database's scratch copy being deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// Plan database id.
    pub database: String,
    /// The scratch copy's identifier.
    pub target: String,
    /// `deleting`, `deleted` (gone), or `waiting-for-instances` (clusters).
    pub state: String,
    /// Clusters: the instances still being deleted.
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
