//! The `restore` function: resolve the snapshot each database goes back to, restore it beside
//! the live database, and swap identifiers so the application's endpoint stays the same.
//! See `rollback_core::contract::restore` for the contract.
//!
//! Input: `StepInput<RestoreAction>` JSON from the state machine; output: the action's answer,
//! or a `Rollback.*` error. Deployed twice (infra/template.yaml): `RestoreFunction` serves every
//! action but `cleanup-drill`, which only `DrillCleanupFunction` (the role that may delete)
//! serves. Tests: `cargo test -p rollback-restore` (moto via `make venv`).

pub mod cleanup;
pub mod db;
pub mod placement;
pub mod resolve;
pub mod resolve_pitr;
pub mod revert;
pub mod served;
pub mod start;
pub mod status;
pub mod swap;

pub use served::{ACTIONS_ENV, DRILL_CLEANUP_ACTIONS, Served};

use chrono::{DateTime, Utc};
use rollback_core::contract::restore::{
    CleanupOutput, CutoffSource, ObserveOutput, ResolveOutput, RestoreAction, RevertOutput,
    RevertState, StartOutput, StatusOutput, SwapOutput, SwapState,
};
use rollback_core::decision::{self, DecisionVerifier, Needed};
use rollback_core::plan::{DatabaseRef, Plan};
use rollback_core::resolved::DatabaseResolution;
use rollback_core::step::to_output;
use rollback_core::validation::ValidationErrors;
use rollback_core::{RollbackError, Scope, StepInput, ids, wait};
use serde_json::Value;

use crate::start::Target;

/// The AWS clients the function uses.
#[derive(Clone)]
pub struct Clients {
    pub rds: aws_sdk_rds::Client,
    /// Verifies the signed approval decision before `start` and `swap` (live).
    pub approval: DecisionVerifier,
}

impl Clients {
    /// Clients from `config`; `decision_key` is the ARN of the approval decision key.
    pub fn new(config: &aws_config::SdkConfig, decision_key: &str) -> Clients {
        Clients {
            rds: aws_sdk_rds::Client::new(config),
            approval: DecisionVerifier::new(aws_sdk_kms::Client::new(config), decision_key),
        }
    }
}

type Input = StepInput<RestoreAction>;

/// Lambda handler body: parses and validates the envelope, runs the action. Serves every
/// action (see [`handle_served`] for a deployment).
pub async fn handle(clients: &Clients, payload: Value) -> Result<Value, RollbackError> {
    handle_served(clients, &Served::all(), payload).await
}

/// [`handle`] for a deployment serving `served`: an action it does not serve is refused
/// before the envelope is read or any AWS call is made.
pub async fn handle_served(
    clients: &Clients,
    served: &Served,
    payload: Value,
) -> Result<Value, RollbackError> {
    if let Some(action) = payload.get("action").and_then(Value::as_str) {
        served.check(action)?;
    }
    let given = payload.get("resolved").cloned();
    let input = Input::parse(payload)?;
    require_approval(clients, &input, given.as_ref()).await?;
    match &input.action {
        RestoreAction::Resolve { release_time } => {
            to_output(&resolve(clients, &input, *release_time, Utc::now()).await?)
        }
        RestoreAction::Start { resolved } => to_output(&start(clients, &input, resolved).await?),
        RestoreAction::Status {
            databases,
            keep_looking,
        } => to_output(&status(clients, &input, databases.as_deref(), *keep_looking).await?),
        RestoreAction::Swap { databases } => {
            to_output(&swap(clients, &input, databases.as_deref()).await?)
        }
        RestoreAction::Revert {
            databases,
            only_if_incomplete,
        } => to_output(&revert(clients, &input, databases.as_deref(), *only_if_incomplete).await?),
        RestoreAction::Observe { databases } => {
            to_output(&observe(clients, &input, databases.as_deref()).await?)
        }
        RestoreAction::CleanupDrill { databases } => {
            to_output(&cleanup_drill(clients, &input, databases.as_deref()).await?)
        }
    }
}

/// `start` and `swap` change which database serves the application: live, they run only with
/// a signed decision that covers databases (and, for `start`, these very resolutions).
async fn require_approval(
    clients: &Clients,
    input: &Input,
    given_resolved: Option<&Value>,
) -> Result<(), RollbackError> {
    if input.request.mode.is_drill() {
        return Ok(());
    }
    let needed = match &input.action {
        RestoreAction::Start { .. } => Needed {
            scope: Scope::APP_AND_DATABASE,
            resolved: Some(("databases", given_resolved)),
        },
        RestoreAction::Swap { .. } => Needed {
            scope: Scope::APP_AND_DATABASE,
            resolved: None,
        },
        _ => return Ok(()),
    };
    decision::require(&clients.approval, input, needed, Utc::now()).await?;
    Ok(())
}

/// Per database, the newest available snapshot before the cutoff, and the data-loss window.
pub async fn resolve(
    clients: &Clients,
    input: &Input,
    release_time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<ResolveOutput, RollbackError> {
    let in_scope = input.request.scope.includes_database();
    if in_scope {
        require_databases(&input.plan)?;
    }
    let (cutoff, cutoff_source) = match (input.request.cutoff, release_time) {
        (Some(cutoff), _) => (cutoff, CutoffSource::Request),
        (None, Some(at)) => (at, CutoffSource::ReleaseTime),
        (None, None) => (now, CutoffSource::Now),
    };
    if cutoff > now {
        return Err(RollbackError::InvalidInput(format!(
            "{}: {cutoff} is in the future; give the time the bad release rolled out",
            match cutoff_source {
                CutoffSource::Request => "request.cutoff",
                _ => "release_time",
            }
        )));
    }
    let criteria = resolve::Criteria {
        service: &input.plan.service,
        release: input.request.release.as_deref(),
        cutoff,
        cutoff_source,
        now,
    };
    resolve::resolve(&clients.rds, &input.plan.databases, &criteria, in_scope).await
}

/// Restores each approved resolution into its restore identifier (a scratch one in a drill).
pub async fn start(
    clients: &Clients,
    input: &Input,
    resolved: &[DatabaseResolution],
) -> Result<StartOutput, RollbackError> {
    require_database_scope(input, "start")?;
    if resolved.is_empty() {
        return Err(RollbackError::InvalidInput(
            "resolved: empty; pass the `databases` that resolve returned and the approver saw"
                .into(),
        ));
    }
    let mut plan_dbs = Vec::new();
    for (i, r) in resolved.iter().enumerate() {
        let db = input
            .plan
            .databases
            .iter()
            .find(|d| d.id == r.database)
            .ok_or_else(|| {
                RollbackError::InvalidInput(format!(
                    "resolved[{i}].database: {:?} is not one of the plan's databases",
                    r.database
                ))
            })?;
        if db.kind != r.kind {
            return Err(RollbackError::InvalidInput(format!(
                "resolved[{i}].kind: {} but the plan says {}",
                r.kind.as_str(),
                db.kind.as_str()
            )));
        }
        if resolved[..i].iter().any(|o| o.database == r.database) {
            return Err(RollbackError::InvalidInput(format!(
                "resolved[{i}].database: {:?} is listed twice",
                r.database
            )));
        }
        plan_dbs.push(db);
    }
    let drill = input.request.mode.is_drill();
    let mut databases = Vec::new();
    for (db, r) in plan_dbs.into_iter().zip(resolved) {
        databases.push(start::start_one(&clients.rds, &target(input, db), r).await?);
    }
    Ok(StartOutput { drill, databases })
}

/// Availability of each restored copy. With `keep_looking`, looks again for the plan's
/// `polling.status_wait_seconds` until all are available ([`rollback_core::wait`]); the
/// caller's loop bounds the whole wait.
pub async fn status(
    clients: &Clients,
    input: &Input,
    filter: Option<&[String]>,
    keep_looking: bool,
) -> Result<StatusOutput, RollbackError> {
    let selected = input.plan.select_databases(filter)?;
    let look = || async {
        let mut databases = Vec::new();
        for (_, db) in &selected {
            databases.push(status::status_one(&clients.rds, &target(input, db)).await?);
        }
        let all_available = databases.iter().all(|d| d.available);
        Ok(StatusOutput {
            drill: input.request.mode.is_drill(),
            databases,
            all_available,
        })
    };
    let polling = keep_looking.then_some(&input.plan.polling);
    wait::keep_checking(polling, look, |s: &StatusOutput| s.all_available).await
}

/// Renames current → aside and restored → original for every database, or none; call again
/// until `complete`. A drill renames nothing.
pub async fn swap(
    clients: &Clients,
    input: &Input,
    filter: Option<&[String]>,
) -> Result<SwapOutput, RollbackError> {
    let drill = input.request.mode.is_drill();
    let dbs = input.plan.select_databases(filter)?;
    if !drill {
        require_database_scope(input, "swap")?;
    }
    let targets: Vec<_> = dbs.into_iter().map(|(_, db)| target(input, db)).collect();
    let reports = if drill {
        targets
            .iter()
            .map(|t| rollback_core::contract::restore::SwapReport {
                database: t.db.id.clone(),
                kind: t.db.kind,
                state: SwapState::SkippedDrill,
                aside: ids::aside_identifier(&t.db.id, &input.execution),
                restored_from: t.id(),
                note: "drill: nothing renamed; the scratch copy is deleted by cleanup-drill".into(),
            })
            .collect()
    } else {
        swap::swap_all(&clients.rds, &targets).await?
    };
    let complete = reports
        .iter()
        .all(|r| matches!(r.state, SwapState::Done | SwapState::SkippedDrill));
    let aside = reports
        .iter()
        .filter(|r| r.state != SwapState::SkippedDrill)
        .map(|r| r.aside.clone())
        .collect();
    Ok(SwapOutput {
        drill,
        complete,
        databases: reports,
        aside,
    })
}

/// Puts every database back under its identifier (or keeps a complete swap when
/// `only_if_incomplete`); call again until `complete`. Nothing to do in a drill or when the
/// request leaves the databases alone.
pub async fn revert(
    clients: &Clients,
    input: &Input,
    filter: Option<&[String]>,
    only_if_incomplete: bool,
) -> Result<RevertOutput, RollbackError> {
    let drill = input.request.mode.is_drill();
    let in_scope = input.request.scope.includes_database();
    let dbs = if in_scope {
        input.plan.select_databases(filter)?
    } else {
        Vec::new()
    };
    let targets: Vec<_> = dbs.into_iter().map(|(_, db)| target(input, db)).collect();
    let databases = if drill || targets.is_empty() {
        Vec::new()
    } else {
        revert::revert_all(&clients.rds, &targets, only_if_incomplete).await?
    };
    let complete = databases.iter().all(|d| d.state != RevertState::Reverting);
    let needs_person = databases
        .iter()
        .any(|d| d.state == RevertState::NeedsPerson);
    let kept_swap = databases.iter().any(|d| d.state == RevertState::KeptSwap);
    Ok(RevertOutput {
        drill,
        complete,
        needs_person,
        kept_swap,
        databases,
    })
}

/// Read-only: what each plan database's identifiers hold now.
pub async fn observe(
    clients: &Clients,
    input: &Input,
    filter: Option<&[String]>,
) -> Result<ObserveOutput, RollbackError> {
    let mut databases = Vec::new();
    for (_, db) in input.plan.select_databases(filter)? {
        let t = target(input, db);
        let o = placement::Observation::take(&clients.rds, &t).await?;
        databases.push(o.report(&db.id));
    }
    Ok(ObserveOutput {
        drill: input.request.mode.is_drill(),
        databases,
    })
}

/// Deletes a drill's scratch copies; call again until `complete`.
pub async fn cleanup_drill(
    clients: &Clients,
    input: &Input,
    filter: Option<&[String]>,
) -> Result<CleanupOutput, RollbackError> {
    if !input.request.mode.is_drill() {
        return Err(RollbackError::InvalidInput(
            "request.mode: cleanup-drill only deletes a drill's scratch copies and the request \
             is live; restored databases of a live rollback are kept"
                .into(),
        ));
    }
    let mut databases = Vec::new();
    for (_, db) in input.plan.select_databases(filter)? {
        databases.push(cleanup::cleanup_one(&clients.rds, &target(input, db)).await?);
    }
    let complete = databases.iter().all(|d| d.state == "deleted");
    Ok(CleanupOutput {
        complete,
        databases,
    })
}

fn target<'a>(input: &'a Input, db: &'a DatabaseRef) -> Target<'a> {
    Target {
        db,
        execution: &input.execution,
        drill: input.request.mode.is_drill(),
    }
}

fn require_databases(plan: &Plan) -> Result<(), RollbackError> {
    if plan.databases.is_empty() {
        let mut errors = ValidationErrors::default();
        errors.push(
            "plan.databases",
            "the request's scope is app+database but the plan lists no databases",
        );
        return Err(RollbackError::InvalidPlan(errors));
    }
    Ok(())
}

/// Destructive actions refuse to run when the request leaves databases alone.
fn require_database_scope(input: &Input, action: &str) -> Result<(), RollbackError> {
    if !input.request.scope.includes_database() {
        return Err(RollbackError::InvalidInput(format!(
            "request.scope: {action} restores databases but the request's scope is app; \
             start a rollback with scope app+database to restore databases"
        )));
    }
    require_databases(&input.plan)
}
