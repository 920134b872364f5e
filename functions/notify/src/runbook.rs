//! The contingency notice's facts: where the backups are and what to do next, by error.

use rollback_core::contract::notify::{ProgressRecord, StepStatus};
use rollback_core::error::ErrorKind;
use rollback_core::ids;

use crate::render::Context;
use crate::text::clean;

/// Step Functions passes a Lambda error's Cause as JSON (`{"errorType", "errorMessage"}`);
/// other causes are text.
pub fn cause_text(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| cause.to_owned())
}

/// Every backup the rollback made or would have made, reported ones first. Names derive
/// from the execution, so they are known even when the progress record is incomplete.
pub fn backups(ctx: &Context<'_>, record: &ProgressRecord) -> Vec<String> {
    let mut lines = Vec::new();
    for b in &record.backups {
        let mut parts = Vec::new();
        if let Some(s) = &b.snapshot_id {
            parts.push(format!("snapshot {}", clean(s, 255)));
        }
        if let Some(a) = &b.aside_id {
            parts.push(format!("previous database kept as {}", clean(a, 63)));
        }
        lines.push(format!(
            "{}: {}",
            clean(&b.database, 63),
            if parts.is_empty() {
                "no backup reported".to_owned()
            } else {
                parts.join("; ")
            }
        ));
    }
    for db in &ctx.plan.databases {
        if record.backups.iter().any(|b| b.database == db.id) {
            continue;
        }
        lines.push(format!(
            "{}: snapshot {} (if the backup step ran); previous database kept as {} (if the \
             swap started)",
            clean(&db.id, 63),
            ids::rollback_snapshot_id(&ctx.plan.service, ctx.execution, &db.id),
            ids::aside_identifier(&db.id, ctx.execution)
        ));
    }
    if lines.is_empty() {
        lines.push(
            "no databases in this plan; images keep the bad digest tagged \
                    rolled-back-<execution>"
                .to_owned(),
        );
    } else if !ctx.plan.images.is_empty() {
        lines.push(format!(
            "images: the bad digest stays tagged rolled-back-{}",
            clean(ctx.execution.as_str(), 80)
        ));
    }
    lines
}

/// What the on-call engineer does next, from the runbook, by error name.
pub fn next_steps(ctx: &Context<'_>, error: &str, record: &ProgressRecord) -> Vec<String> {
    let failed_step = record
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
        .map(|s| clean(&s.name, 80));
    let mut steps = by_error(ctx, error, failed_step.as_deref());
    if let Some(mobile) = ctx
        .plan
        .mobile
        .as_ref()
        .filter(|_| failed_step.as_deref() == Some("mobile"))
    {
        steps.extend(crate::mobile::by_hand(mobile));
    }
    steps.push(
        "Never delete the backups listed above until the service is confirmed healthy.".into(),
    );
    steps
}

/// The runbook's steps for the error, before the mobile ones and the closing warning.
fn by_error(ctx: &Context<'_>, error: &str, failed_step: Option<&str>) -> Vec<String> {
    match ErrorKind::from_error_name(error) {
        Some(ErrorKind::SwapFailed) => swap_failed(ctx),
        Some(ErrorKind::RestoreFailed) => restore_failed(ctx),
        Some(ErrorKind::SnapshotFailed | ErrorKind::SnapshotNotFound) => vec![
            "No database was restored. Check the snapshots (aws rds describe-db-snapshots \
             / describe-db-cluster-snapshots); if no pre-deploy snapshot exists, decide with \
             the service owner whether to roll back the app only (start again with scope app)."
                .to_owned(),
        ],
        Some(ErrorKind::StableImageNotFound | ErrorKind::RetagFailed) => image_tags(ctx),
        Some(ErrorKind::RolloutStuck | ErrorKind::Kubernetes | ErrorKind::NoRolloutHistory) => {
            rollout(ctx)
        }
        Some(ErrorKind::PlanDrifted) => vec![
            "Live state changed after the approval (someone deployed or restored meanwhile). \
             Nothing further was changed; start a new rollback to get a fresh plan and approval."
                .to_owned(),
        ],
        Some(ErrorKind::ConcurrentRollback) => vec![
            "Another rollback of this service is running; follow that execution instead."
                .to_owned(),
        ],
        Some(ErrorKind::WaitTimedOut) => vec![
            "A wait ran past the plan's polling limit: the resource may still finish on its \
             own. Check it (see the state above) before retrying."
                .to_owned(),
        ],
        Some(ErrorKind::SmokeConfig) => vec![
            "The smoke tests are misconfigured (see the cause); the rollback itself may have \
             worked. Check the service by hand, then fix the plan's smoke section."
                .to_owned(),
        ],
        Some(ErrorKind::InvalidPlan | ErrorKind::InvalidRequest | ErrorKind::InvalidInput) => {
            vec![
                "Nothing was changed: the plan or the request is invalid (see the cause). Fix it \
                 and start again."
                    .to_owned(),
            ]
        }
        _ => any_other(ctx, failed_step),
    }
}

/// One line per database of the plan.
fn per_database(ctx: &Context<'_>, f: impl Fn(&str) -> String) -> Vec<String> {
    ctx.plan.databases.iter().map(|d| f(&d.id)).collect()
}

/// `SwapFailed`: put each identifier back first.
fn swap_failed(ctx: &Context<'_>) -> Vec<String> {
    let exec = ctx.execution;
    let mut s = vec![
        "The database swap stopped halfway. FIRST make sure each database identifier \
         exists exactly once:"
            .to_owned(),
    ];
    s.extend(per_database(ctx, |db| {
        format!(
            "  {db}: if it is missing, rename {} back to {db} \
             (aws rds modify-db-instance --db-instance-identifier {} \
             --new-db-instance-identifier {db} --apply-immediately; clusters: \
             modify-db-cluster); the restored copy is {}",
            ids::aside_identifier(db, exec),
            ids::aside_identifier(db, exec),
            ids::restore_identifier(db, exec, false)
        )
    }));
    s
}

/// `RestoreFailed`: the live databases are untouched; delete the partial restores.
fn restore_failed(ctx: &Context<'_>) -> Vec<String> {
    let exec = ctx.execution;
    let mut s = vec![
        "The live databases were NOT changed. Delete any partial restore, then retry \
         the rollback or restore by hand:"
            .to_owned(),
    ];
    s.extend(per_database(ctx, |db| {
        format!(
            "  {db}: partial restore {} (aws rds delete-db-instance \
             --skip-final-snapshot only after checking it is the restore)",
            ids::restore_identifier(db, exec, false)
        )
    }));
    s
}

/// `StableImageNotFound`, `RetagFailed`: point the release tag back by hand.
fn image_tags(ctx: &Context<'_>) -> Vec<String> {
    vec![format!(
        "Check the image tags in ECR (aws ecr describe-images --repository-name <repo>); \
         point the release tag back at the stable digest by hand (aws ecr batch-get-image \
         + put-image with the stable manifest), or fix the stable tag and start again. \
         The bad digest is tagged rolled-back-{} if the retag got that far.",
        clean(ctx.execution.as_str(), 80)
    )]
}

/// `RolloutStuck`, `Kubernetes`, `NoRolloutHistory`: look at the rollout, undo it by hand.
fn rollout(ctx: &Context<'_>) -> Vec<String> {
    let ns = ctx
        .plan
        .cluster
        .as_ref()
        .map(|c| clean(&c.namespace, 63))
        .unwrap_or_else(|| "<namespace>".into());
    vec![format!(
        "Look at the rollout: kubectl -n {ns} rollout status deployment/<name> and \
         kubectl -n {ns} get pods; if pods crash, kubectl -n {ns} rollout undo \
         deployment/<name> --to-revision=<stable revision> by hand."
    )]
}

/// Any other error: read the cause and the history; where the previous database is.
fn any_other(ctx: &Context<'_>, failed_step: Option<&str>) -> Vec<String> {
    vec![format!(
        "Read the cause and the execution history{}; the resources are in the state listed \
         above. If the databases were swapped, {} is the previous database.",
        failed_step
            .map(|s| format!(" (step {s} failed)"))
            .unwrap_or_default(),
        ctx.plan
            .databases
            .first()
            .map(|d| ids::aside_identifier(&d.id, ctx.execution))
            .unwrap_or_else(|| "<db>-pre-rollback-<exec>".to_owned())
    )]
}

/// A follow-up checklist from the team runbook
/// (`shared/runbook-rollback-procedure.txt`), for the final notices.
pub struct Checklist {
    /// Where in the runbook it comes from.
    pub source: &'static str,
    pub items: &'static [&'static str],
}

/// Runbook section 8, "Post-Rollback Actions", after a rollback that finished.
pub const AFTER_ROLLBACK: Checklist = Checklist {
    source: "runbook section 8, post-rollback actions",
    items: &[
        "tell users the service is restored (status page, support)",
        "find the root cause of the bad release",
        "complete the post-mortem report above: timeline, impact, resolution",
        "schedule the post-mortem meeting with everyone involved",
        "update the runbook and the deployment procedure with what was learned",
        "open tickets for the technical debt and improvements found",
    ],
};

/// Runbook section 10, "Documentation and Reporting", after a rollback that failed.
pub const AFTER_FAILED_ROLLBACK: Checklist = Checklist {
    source: "runbook section 10, documentation and reporting",
    items: &[
        "once the service is stable: a full post-mortem in the report above (timeline, root \
         cause, impact, actions taken, lessons, preventive measures)",
        "share it with the stakeholders and every team involved",
        "update the rollback procedure with what this failure taught",
    ],
};
