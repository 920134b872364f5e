//! `cleanup-drill`: delete a drill's scratch restore. Only resources tagged as this execution's
//! drill copy are deleted; production is never touched.

use aws_sdk_rds::Client;
use rollback_core::RollbackError;
use rollback_core::contract::restore::{CleanupReport, InstanceStatus, tags};

use crate::db::{self, error_code};
use crate::start::Target;

pub async fn cleanup_one(
    rds: &Client,
    target: &Target<'_>,
) -> Result<CleanupReport, RollbackError> {
    debug_assert!(target.drill);
    let db = target.db;
    let target_id = target.id();
    let report = |state: &str, instances: Vec<InstanceStatus>| CleanupReport {
        database: db.id.clone(),
        target: target_id.clone(),
        state: state.to_owned(),
        instances,
    };
    let Some(state) = db::describe(rds, db.kind, &target_id).await? else {
        return Ok(report("deleted", Vec::new()));
    };
    if !target.owns(&state) {
        return Err(RollbackError::RestoreFailed(format!(
            "{target_id} is not tagged as this execution's drill copy of {}; not deleting it",
            db.id
        )));
    }
    if !db.kind.is_cluster() {
        if state.status != "deleting" {
            delete_instance(rds, &target_id).await?;
        }
        let gone = db::instance(rds, &target_id).await?.is_none();
        return Ok(report(
            if gone { "deleted" } else { "deleting" },
            Vec::new(),
        ));
    }

    // A cluster can only be deleted once its instances are gone.
    let count: usize = state
        .tag(tags::INSTANCES)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut remaining = Vec::new();
    for id in db::member_ids(&target_id, count)
        .into_iter()
        .chain(state.members.clone())
    {
        if remaining.iter().any(|i: &InstanceStatus| i.id == id) {
            continue;
        }
        let Some(instance) = db::instance(rds, &id).await? else {
            continue;
        };
        if instance.status != "deleting" {
            delete_instance(rds, &id).await?;
        }
        if let Some(left) = db::instance(rds, &id).await? {
            remaining.push(InstanceStatus {
                id,
                status: left.status,
            });
        }
    }
    if !remaining.is_empty() {
        return Ok(report("waiting-for-instances", remaining));
    }
    if state.status != "deleting" {
        match rds
            .delete_db_cluster()
            .db_cluster_identifier(&target_id)
            .skip_final_snapshot(true)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("DBClusterNotFoundFault") => {}
            Err(e) => {
                let failed = RollbackError::from_sdk("DeleteDBCluster", e);
                let now = db::cluster(rds, &target_id).await?;
                deleted_anyway(now.as_ref().map(|s| s.status.as_str()), failed)?;
            }
        }
    }
    let gone = db::cluster(rds, &target_id).await?.is_none();
    Ok(report(
        if gone { "deleted" } else { "deleting" },
        Vec::new(),
    ))
}

/// Deletes a scratch instance without a final snapshot: it is a copy of a snapshot that stays.
async fn delete_instance(rds: &Client, id: &str) -> Result<(), RollbackError> {
    match rds
        .delete_db_instance()
        .db_instance_identifier(id)
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("DBInstanceNotFound") => Ok(()),
        Err(e) => {
            let failed = RollbackError::from_sdk("DeleteDBInstance", e);
            let now = db::instance(rds, id).await?;
            deleted_anyway(now.as_ref().map(|s| s.status.as_str()), failed)
        }
    }
}

/// After a failed delete, what was observed decides: a copy that is gone or `deleting` was
/// deleted — by this call, whose answer was lost or turned into a 5xx, or by an SDK retry of
/// it, which IAM then refuses because a resource that no longer exists has no
/// `rollback:role` tag to satisfy the delete's condition. Anything else is the failure.
fn deleted_anyway(status_now: Option<&str>, failed: RollbackError) -> Result<(), RollbackError> {
    match status_now {
        None | Some("deleting") => {
            tracing::info!(error = %failed, "the delete failed, but the copy is going: done");
            Ok(())
        }
        Some(_) => Err(failed),
    }
}
