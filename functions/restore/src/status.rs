//! `status`: is the restored copy (and, for clusters, each of its instances) available yet?

use aws_sdk_rds::Client;
use rollback_core::RollbackError;
use rollback_core::contract::restore::{InstanceStatus, TargetStatus, tags};

use crate::db::{self, DbState};
use crate::start::Target;

/// RDS states a restore does not recover from by waiting.
const BROKEN: &[&str] = &[
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "incompatible-option-group",
    "inaccessible-encryption-credentials",
    "storage-full",
    "deleting",
];

pub async fn status_one(rds: &Client, target: &Target<'_>) -> Result<TargetStatus, RollbackError> {
    let db = target.db;
    let target_id = target.id();
    let (state, swapped) = match db::describe(rds, db.kind, &target_id).await? {
        Some(state) => (state, false),
        None => match db::describe(rds, db.kind, &db.id).await? {
            Some(current) if !target.drill && target.owns(&current) => (current, true),
            _ => {
                return Err(RollbackError::RestoreFailed(format!(
                    "no restore of {} found at {target_id} (nor swapped into {}): run start \
                     first; if it ran, the copy was deleted",
                    db.id, db.id
                )));
            }
        },
    };
    if BROKEN.contains(&state.status.as_str()) {
        return Err(RollbackError::RestoreFailed(format!(
            "the restore of {} into {} is {}: it will not become available; check the RDS \
             events of {}. The live database is untouched{}",
            db.id,
            state.id,
            state.status,
            state.id,
            if swapped { " (already swapped)" } else { "" }
        )));
    }
    let mut instances = Vec::new();
    if db.kind.is_cluster() {
        // Instances keep the names start gave them (`<restore id>-n`), also after the swap.
        let count: usize = state
            .tag(tags::INSTANCES)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for id in db::member_ids(&target_id, count) {
            let status = db::instance(rds, &id)
                .await?
                .map(|i: DbState| i.status)
                .unwrap_or_else(|| "missing".to_owned());
            instances.push(InstanceStatus { id, status });
        }
    }
    // Settings only ModifyDB* takes (maintenance window, Performance Insights, monitoring;
    // DocumentDB backups) are applied once the copy is available, before the swap.
    let mut state = state;
    if !swapped && state.is_available() {
        let applying =
            crate::start::settings::converge(rds, db.kind, &db.id, &state.id, target.drill).await?;
        if !applying.is_empty() {
            state.status = "modifying".to_owned();
        }
    }
    let available = state.is_available()
        && (!db.kind.is_cluster() || !instances.is_empty())
        && instances.iter().all(|i| i.status == "available");
    Ok(TargetStatus {
        database: db.id.clone(),
        kind: db.kind,
        target: state.id,
        swapped,
        status: state.status,
        instances,
        available,
    })
}
