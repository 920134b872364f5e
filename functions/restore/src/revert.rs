//! `revert`: every plan database back under its original identifier.
//!
//! The rule (DESIGN, "observe, then speak"; every destructive step has a way back): a swap
//! that began and did not finish for every database is undone for every database, because
//! an application whose databases come from two different points in time is worse than one
//! left as it was. A swap that finished for every database is kept when the execution fails
//! later (smoke tests, deployments): the data is consistent and reverting would lose the
//! restore. The state machine calls `revert` after a failed or timed-out swap (undo all), and
//! with `only_if_incomplete` on every other failure path.
//!
//! Like `swap`, each call observes every database and moves each one step: the restored
//! copy leaves the original identifier (back to its restore identifier, kept for
//! inspection), then the previous database is renamed back. Nothing is deleted. What cannot
//! be put back automatically (a name taken by something else, a database nowhere to be
//! found) is reported as `needs-person` with the exact commands.

use aws_sdk_rds::Client;
use rollback_core::RollbackError;
use rollback_core::contract::restore::{Placement, RevertReport, RevertState, tags};

use crate::db;
use crate::placement::{
    FailedRename, Observation, describe_command, judge_failed_rename, rename_command,
};
use crate::start::Target;

/// One step back for every target (or nothing, when `only_if_incomplete` and every swap is
/// complete); reports what was observed afterwards.
pub async fn revert_all(
    rds: &Client,
    targets: &[Target<'_>],
    only_if_incomplete: bool,
) -> Result<Vec<RevertReport>, RollbackError> {
    let mut observed = Vec::with_capacity(targets.len());
    for target in targets {
        observed.push(Observation::take(rds, target).await?);
    }
    let all_swapped = observed.iter().all(|o| o.placement == Placement::Swapped);
    if only_if_incomplete && all_swapped && !observed.is_empty() {
        return Ok(targets
            .iter()
            .zip(&observed)
            .map(|(t, o)| RevertReport {
                database: t.db.id.clone(),
                kind: t.db.kind,
                state: RevertState::KeptSwap,
                observed: o.report(&t.db.id),
                reverted: false,
                note: "the swap completed for every database, so it is kept".into(),
                commands: Vec::new(),
            })
            .collect());
    }
    let mut reports = Vec::with_capacity(targets.len());
    for (target, o) in targets.iter().zip(observed) {
        let asked_error = step_back(rds, target, &o).await?;
        let now = Observation::take(rds, target).await?;
        reports.push(report(target, &now, asked_error));
    }
    Ok(reports)
}

/// Asks RDS for the next rename back, if one is due. Returns the error of a rename that did
/// not take effect and cannot be retried (the report then says a person is needed).
async fn step_back(
    rds: &Client,
    target: &Target<'_>,
    o: &Observation,
) -> Result<Option<String>, RollbackError> {
    let (from, to) = match o.placement {
        // The restored copy leaves first; its restore identifier is free after a swap.
        Placement::Swapped if o.restored.is_none() => (&o.original_id, &o.restore_id),
        Placement::Swapped => {
            return Ok(Some(format!(
                "the restored copy cannot leave {}: its restore identifier {} is taken",
                o.original_id, o.restore_id
            )));
        }
        Placement::Between if o.aside.is_some() => {
            // Marks the database we put back, so a later call can say it was reverted.
            if let Some(arn) = o.aside.as_ref().and_then(|a| a.arn.as_deref()) {
                db::add_tag(rds, arn, tags::REVERTED, target.execution.as_str()).await?;
            }
            (&o.aside_id, &o.original_id)
        }
        _ => return Ok(None),
    };
    let Err(e) = db::rename(rds, o.kind, from, to).await else {
        tracing::info!(from = %from, to = %to, "rename back asked");
        return Ok(None);
    };
    match judge_failed_rename(rds, target, o, (from, to), e).await? {
        FailedRename::TookEffect(_) => Ok(None),
        FailedRename::Retry(e) => Err(e),
        FailedRename::Refused { message, .. } => Ok(Some(message)),
    }
}

fn report(target: &Target<'_>, now: &Observation, failed: Option<String>) -> RevertReport {
    let db = target.db;
    // The tag sits on the database we put back: at the original name, or still aside.
    let reverted = [&now.original, &now.aside]
        .into_iter()
        .flatten()
        .any(|s| s.tag(tags::REVERTED) == Some(target.execution.as_str()));
    let (state, note) = match (now.placement, &failed) {
        (Placement::Drill, _) => (RevertState::SkippedDrill, now.summary()),
        (_, Some(error)) => (
            RevertState::NeedsPerson,
            format!("{error}; {}", now.summary()),
        ),
        (Placement::Original, _) => (RevertState::Back, now.summary()),
        (p, _) if p.needs_person() => (RevertState::NeedsPerson, now.summary()),
        _ => (RevertState::Reverting, now.summary()),
    };
    let commands = if state == RevertState::NeedsPerson {
        person_commands(now)
    } else {
        Vec::new()
    };
    RevertReport {
        database: db.id.clone(),
        kind: db.kind,
        state,
        observed: now.report(&db.id),
        reverted,
        note,
        commands,
    }
}

/// What a person runs to put the previous database back under its identifier.
fn person_commands(o: &Observation) -> Vec<String> {
    let kind = o.kind;
    let mut commands = vec![
        describe_command(kind, &o.original_id),
        describe_command(kind, &o.aside_id),
        describe_command(kind, &o.restore_id),
    ];
    if o.original_is_copy {
        commands.push(rename_command(kind, &o.original_id, &o.restore_id));
    }
    if o.aside.is_some() {
        commands.push(rename_command(kind, &o.aside_id, &o.original_id));
    }
    commands
}
