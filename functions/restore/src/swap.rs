//! `swap`: the restored copies take the original identifiers, all databases or none.
//!
//! Each call observes every database ([`Observation`]) and moves each one step further:
//! original → aside, then restored copy → original. RDS renames asynchronously, so the
//! caller calls again until `complete`. Before the first rename of the run, every restored
//! copy must be this execution's and `available` and every original `available`; otherwise
//! nothing is renamed. A rename that fails is followed by a new observation: if RDS carried
//! it out (the answer was lost), that is progress; a throttle or 5xx that changed nothing is
//! retried by the caller; anything else is `Rollback.SwapFailed`, after which the state
//! machine calls `revert` to put every database back (see `crate::revert`).

use aws_sdk_rds::Client;
use rollback_core::RollbackError;
use rollback_core::contract::restore::{Placement, SwapReport, SwapState};

use crate::db;
use crate::placement::{FailedRename, Observation, judge_failed_rename};
use crate::start::Target;

/// One step of the swap for every target; reports what was observed afterwards.
pub async fn swap_all(
    rds: &Client,
    targets: &[Target<'_>],
) -> Result<Vec<SwapReport>, RollbackError> {
    let mut observed = Vec::with_capacity(targets.len());
    for target in targets {
        observed.push(Observation::take(rds, target).await?);
    }
    if let Some(stuck) = observed
        .iter()
        .find(|o| o.placement.needs_person() || o.placement == Placement::MovingOut)
    {
        return Err(RollbackError::SwapFailed(format!(
            "{} cannot be swapped: {}. Observed just now: {}",
            stuck.original_id,
            stuck.summary(),
            summaries(&observed)
        )));
    }
    if observed.iter().all(|o| o.placement == Placement::Original) {
        preflight(targets, &observed)?;
    }
    for (i, target) in targets.iter().enumerate() {
        let after = step(rds, target, &observed[i]).await;
        match after {
            Ok(Some(now)) => observed[i] = now,
            Ok(None) => {}
            Err(e) => {
                return Err(match e {
                    Failure::Propagate(e) => e,
                    Failure::Stop { message, now } => {
                        observed[i] = *now;
                        RollbackError::SwapFailed(format!(
                            "{message}. Observed just now: {}",
                            summaries(&observed)
                        ))
                    }
                });
            }
        }
    }
    let mut reports = Vec::with_capacity(targets.len());
    for target in targets {
        let now = Observation::take(rds, target).await?;
        reports.push(report(target, &now));
    }
    Ok(reports)
}

/// Nothing has moved yet: refuse to start unless every database can be swapped.
fn preflight(targets: &[Target<'_>], observed: &[Observation]) -> Result<(), RollbackError> {
    let mut problems = Vec::new();
    for (target, o) in targets.iter().zip(observed) {
        match &o.restored {
            None => problems.push(format!(
                "the restored copy {} does not exist (run start and wait for status)",
                o.restore_id
            )),
            Some(copy) if !target.owns(copy) => problems.push(format!(
                "{} is not tagged as this execution's restore of {}",
                o.restore_id, o.original_id
            )),
            Some(copy) if !copy.is_available() => problems.push(format!(
                "the restored copy {} is {}, not available",
                o.restore_id, copy.status
            )),
            Some(_) => {}
        }
        if let Some(current) = &o.original
            && !current.is_available()
        {
            problems.push(format!(
                "{} is {}; RDS renames only an available database",
                o.original_id, current.status
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(RollbackError::SwapFailed(format!(
        "{}. Nothing was renamed: observed just now, {}",
        problems.join("; "),
        summaries(observed)
    )))
}

enum Failure {
    /// Passed on as it is: throttled or 5xx and nothing changed (the caller retries the
    /// whole call), or an observation that failed.
    Propagate(RollbackError),
    /// The swap cannot go on; `now` is the observation after the failed call.
    Stop {
        message: String,
        now: Box<Observation>,
    },
}

impl From<RollbackError> for Failure {
    fn from(e: RollbackError) -> Self {
        Failure::Propagate(e)
    }
}

/// Moves one database a step; returns a fresh observation when it asked RDS for a rename.
async fn step(
    rds: &Client,
    target: &Target<'_>,
    o: &Observation,
) -> Result<Option<Observation>, Failure> {
    let copy_ready = o.restored_ready() && o.restored.as_ref().is_some_and(|c| target.owns(c));
    let (from, to) = match o.placement {
        Placement::Original if copy_ready => (&o.original_id, &o.aside_id),
        Placement::Original => {
            let message = format!(
                "{} is not ready to take {}'s place",
                o.restore_id, o.original_id
            );
            return Err(stop(rds, target, message).await);
        }
        Placement::Between if o.foreign_aside => {
            let message = format!(
                "{} is empty because an earlier rollback stopped between its renames and left \
                 the previous database at {}; this rollback puts it back (revert) instead of \
                 swapping",
                o.original_id, o.aside_id
            );
            return Err(stop(rds, target, message).await);
        }
        Placement::Between if copy_ready => (&o.restore_id, &o.original_id),
        Placement::Between => {
            let message = format!(
                "{} is free but the restored copy {} is not there and available to take it",
                o.original_id, o.restore_id
            );
            return Err(stop(rds, target, message).await);
        }
        // A rename is under way, or this database is done.
        _ => return Ok(None),
    };
    match db::rename(rds, o.kind, from, to).await {
        Ok(()) => {
            let now = Observation::take(rds, target).await?;
            tracing::info!(from = %from, to = %to, placement = ?now.placement, "rename asked");
            Ok(Some(now))
        }
        Err(e) => match judge_failed_rename(rds, target, o, (from, to), e).await? {
            FailedRename::TookEffect(now) => Ok(Some(now)),
            FailedRename::Retry(e) => Err(Failure::Propagate(e)),
            FailedRename::Refused { message, now } => Err(Failure::Stop {
                message,
                now: Box::new(now),
            }),
        },
    }
}

/// The swap cannot go on for this database: say so with what is there now.
async fn stop(rds: &Client, target: &Target<'_>, message: String) -> Failure {
    match Observation::take(rds, target).await {
        Ok(now) => Failure::Stop {
            message,
            now: Box::new(now),
        },
        Err(e) => Failure::Propagate(e),
    }
}

fn report(target: &Target<'_>, o: &Observation) -> SwapReport {
    let state = match o.placement {
        Placement::Drill => SwapState::SkippedDrill,
        Placement::Swapped => SwapState::Done,
        Placement::Original | Placement::MovingAside => SwapState::RenamingAside,
        _ => SwapState::RenamingRestored,
    };
    SwapReport {
        database: target.db.id.clone(),
        kind: target.db.kind,
        state,
        aside: o.aside_id.clone(),
        restored_from: o.restore_id.clone(),
        note: o.summary(),
    }
}

fn summaries(observed: &[Observation]) -> String {
    observed
        .iter()
        .map(Observation::summary)
        .collect::<Vec<_>>()
        .join("; ")
}
