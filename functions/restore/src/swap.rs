//! `swap`: the restored copy takes the original identifier (so the endpoint the application
//! uses does not change) and the current database moves aside. Never deletes anything.
//!
//! Re-entrant: each call looks at where things are and takes the next step, so a retry after
//! a crash, or a call while RDS is still renaming, does the right thing.

use aws_sdk_rds::Client;
use rollback_core::contract::restore::{SwapReport, SwapState};
use rollback_core::{RollbackError, ids};

use crate::db::{self, DbState};
use crate::start::Target;

pub async fn swap_one(rds: &Client, target: &Target<'_>) -> Result<SwapReport, RollbackError> {
    let db = target.db;
    let kind = db.kind;
    let original = db.id.as_str();
    let aside = ids::aside_identifier(original, target.execution);
    let restored = target.id();
    let report = |state: SwapState, note: String| SwapReport {
        database: db.id.clone(),
        kind,
        state,
        aside: aside.clone(),
        restored_from: restored.clone(),
        note,
    };

    let current = db::describe(rds, kind, original).await?;
    if let Some(current) = &current {
        if target.owns(current) {
            return Ok(report(
                SwapState::Done,
                format!("{original} holds the restored data; the previous database is {aside}"),
            ));
        }
        // Step 1: move the current database aside.
        let copy = ready_copy(rds, target, &restored).await?;
        if db::describe(rds, kind, &aside).await?.is_some() {
            if current.status == "renaming" {
                return Ok(report(
                    SwapState::RenamingAside,
                    format!("RDS is still renaming {original} to {aside}"),
                ));
            }
            return Err(RollbackError::SwapFailed(format!(
                "both {original} and {aside} exist and {original} is not the restored copy: \
                 something else took one of the names. Nothing was renamed; the restored copy \
                 is {}",
                copy.id
            )));
        }
        db::rename(rds, kind, original, &aside)
            .await
            .map_err(|e| match e {
                e if e.is_retryable() => e,
                e => RollbackError::SwapFailed(format!(
                    "renaming {original} to {aside} failed: {e}. Nothing was renamed; {original} \
                 still serves the application"
                )),
            })?;
        tracing::info!(from = original, to = %aside, "renamed current database aside");
        if db::describe(rds, kind, original).await?.is_some() {
            // RDS renames asynchronously; the next call takes step 2.
            return Ok(report(
                SwapState::RenamingAside,
                format!("renaming {original} to {aside}; call swap again"),
            ));
        }
    } else if db::describe(rds, kind, &aside).await?.is_none() {
        return Err(RollbackError::SwapFailed(format!(
            "neither {original} nor {aside} exists: the database is not where the rollback left \
             it. Check for a rename in progress (RDS console) before doing anything else"
        )));
    }

    // Step 2: the restored copy takes the original identifier.
    let Some(copy) = db::describe(rds, kind, &restored).await? else {
        return Ok(report(
            SwapState::RenamingRestored,
            format!("waiting for RDS to finish renaming {restored} to {original}"),
        ));
    };
    if copy.status == "renaming" {
        return Ok(report(
            SwapState::RenamingRestored,
            format!("RDS is renaming {restored} to {original}"),
        ));
    }
    if let Err(e) = db::rename(rds, kind, &restored, original).await {
        return Err(revert(rds, target, &aside, &restored, e).await);
    }
    tracing::info!(from = %restored, to = original, "restored copy took the identifier");
    let state = if db::describe(rds, kind, original).await?.is_some() {
        SwapState::Done
    } else {
        SwapState::RenamingRestored
    };
    Ok(report(
        state,
        format!(
            "{original} now serves the restored data; the previous database is kept as {aside}"
        ),
    ))
}

/// The restored copy must exist, be this execution's, and be available before anything moves.
async fn ready_copy(
    rds: &Client,
    target: &Target<'_>,
    restored: &str,
) -> Result<DbState, RollbackError> {
    let db = target.db;
    let copy = db::describe(rds, db.kind, restored).await?.ok_or_else(|| {
        RollbackError::SwapFailed(format!(
            "the restored copy {restored} does not exist: run start and wait for status before \
             swapping. Nothing was renamed"
        ))
    })?;
    if !target.owns(&copy) {
        return Err(RollbackError::SwapFailed(format!(
            "{restored} is not tagged as this execution's restore of {}; nothing was renamed",
            db.id
        )));
    }
    if !copy.is_available() {
        return Err(RollbackError::SwapFailed(format!(
            "the restored copy {restored} is {}, not available: wait with status before \
             swapping. Nothing was renamed",
            copy.status
        )));
    }
    Ok(copy)
}

/// The second rename failed: put the original database back under its identifier so the
/// service is never left without one.
async fn revert(
    rds: &Client,
    target: &Target<'_>,
    aside: &str,
    restored: &str,
    cause: RollbackError,
) -> RollbackError {
    let db = target.db;
    let original = db.id.as_str();
    tracing::warn!(database = original, error = %cause, "second rename failed; reverting");
    match db::rename(rds, db.kind, aside, original).await {
        // Back where we started: a retry of swap redoes both steps.
        Ok(()) if cause.is_retryable() => match cause {
            RollbackError::Throttled { operation, message } => RollbackError::Throttled {
                operation,
                message: format!("{message}; {aside} was renamed back to {original}, retry swap"),
            },
            RollbackError::Transient { operation, message } => RollbackError::Transient {
                operation,
                message: format!("{message}; {aside} was renamed back to {original}, retry swap"),
            },
            other => other,
        },
        Ok(()) => RollbackError::SwapFailed(format!(
            "renaming {restored} to {original} failed ({cause}); {aside} was renamed back to \
             {original}, so the service keeps its current database. The restored copy \
             {restored} is kept for inspection"
        )),
        Err(revert_err) => RollbackError::SwapFailed(format!(
            "URGENT: {original} has no database. Renaming {restored} to {original} failed \
             ({cause}) and renaming {aside} back failed too ({revert_err}). Rename by hand now: \
             aws rds {} --{}-identifier {aside} --new-{}-identifier {original} \
             --apply-immediately",
            if db.kind.is_cluster() {
                "modify-db-cluster"
            } else {
                "modify-db-instance"
            },
            if db.kind.is_cluster() {
                "db-cluster"
            } else {
                "db-instance"
            },
            if db.kind.is_cluster() {
                "db-cluster"
            } else {
                "db-instance"
            },
        )),
    }
}
