//! A [`TaskHandler`] that plays the rollback functions with scripted outcomes and records every
//! call. Every payload is first read with the function's own contract type (as the real
//! function would), so a definition that sends a field a function cannot read fails the test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rollback_core::contract::deploy_undo::DeployUndoAction;
use rollback_core::contract::infra::{BuildPurpose, InfraAction};
use rollback_core::contract::mobile::MobileAction;
use rollback_core::contract::notify::NotifyAction;
use rollback_core::contract::plan::{GuardOutput, PlanAction};
use rollback_core::contract::restore::RestoreAction;
use rollback_core::contract::retag::RetagAction;
use rollback_core::contract::smoke_test::SmokeAction;
use rollback_core::contract::snapshot::SnapshotAction;
use rollback_core::{RollbackError, StepInput};
use rollback_engine::task::{BoxFuture, function_name};
use rollback_engine::{TaskFailure, TaskHandler, TaskRequest};
use serde::Serialize;
use serde_json::Value;

use crate::canned;

pub type Outcome = Result<Value, TaskFailure>;

/// One function invocation as the engine made it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Execution ARN.
    pub execution: String,
    pub state: String,
    /// `plan`, `snapshot`, `restore`, `drill-cleanup`, `retag`, `infra`, `deploy-undo`,
    /// `smoke-test`, `notify`.
    pub function: String,
    pub action: String,
    pub payload: Value,
    pub task_token: Option<String>,
    /// The error the call answered with, if any.
    pub error: Option<String>,
}

impl Call {
    pub fn is(&self, function: &str, action: &str) -> bool {
        self.function == function && self.action == action
    }
}

/// A scripted outcome for one (function, action): gets the call and how many times this
/// execution has made it (1 for the first); `None` falls back to the healthy default.
pub type Rule = Arc<dyn Fn(&Call, u32) -> Option<Outcome> + Send + Sync>;

#[derive(Clone)]
pub struct Script {
    inner: Arc<Inner>,
}

struct Inner {
    plan_text: String,
    /// Clients for the real `rollback-plan`; set when the engine's endpoint is up.
    plan_clients: OnceLock<rollback_plan::Clients>,
    /// When set, `validate` reads the plan from SSM through it instead of `plan_text`.
    plan_store: OnceLock<rollback_plan::PlanStore>,
    /// Run `guard` for real (against the engine's endpoint) instead of answering `proceed`.
    real_guard: bool,
    rules: Mutex<HashMap<(String, String), Rule>>,
    calls: Mutex<Vec<Call>>,
    violations: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The error a Lambda function's failure shows as in Step Functions.
pub fn failure(error: &str, cause: &str) -> TaskFailure {
    TaskFailure::new(error, cause)
}

fn rollback_failure(e: RollbackError) -> TaskFailure {
    TaskFailure::new(e.error_name(), e.to_string())
}

fn to_value<T: Serialize>(v: T) -> Outcome {
    serde_json::to_value(v).map_err(|e| failure("Rollback.Internal", &e.to_string()))
}

impl Script {
    pub fn new(plan_text: &str, real_guard: bool) -> Script {
        Script {
            inner: Arc::new(Inner {
                plan_text: plan_text.to_owned(),
                plan_clients: OnceLock::new(),
                plan_store: OnceLock::new(),
                real_guard,
                rules: Mutex::new(HashMap::new()),
                calls: Mutex::new(Vec::new()),
                violations: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Clients for the real plan function (validate and fingerprint never call AWS; guard
    /// lists executions).
    pub fn set_plan_clients(&self, clients: rollback_plan::Clients) {
        let _ = self.inner.plan_clients.set(clients);
    }

    /// Makes the real plan function read the plan from SSM (as the Lambda does) instead of
    /// the text the script was made with.
    pub fn set_plan_store(&self, store: rollback_plan::PlanStore) {
        let _ = self.inner.plan_store.set(store);
    }

    /// Scripts `function`'s `action` (replacing an earlier rule for it).
    pub fn on(
        &self,
        function: &str,
        action: &str,
        rule: impl Fn(&Call, u32) -> Option<Outcome> + Send + Sync + 'static,
    ) {
        lock(&self.inner.rules).insert((function.into(), action.into()), Arc::new(rule));
    }

    /// Every call so far, in completion order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.calls).clone()
    }

    pub fn calls_of(&self, execution: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.execution == execution)
            .collect()
    }

    /// Payloads a function could not read (contract mismatches), with the reason.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.inner.violations).clone()
    }

    /// Waits (real time, bounded) until a recorded call satisfies `pred`.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Call) -> bool) -> Call {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(c) = self.calls().into_iter().find(|c| pred(c)) {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; calls so far: {:#?}",
                self.calls()
                    .iter()
                    .map(|c| format!("{} {}:{}", c.execution, c.function, c.action))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn run(&self, req: TaskRequest) -> Outcome {
        let function = req
            .function
            .as_deref()
            .map(function_name)
            .unwrap_or_default()
            .trim_start_matches("rollback-")
            .to_owned();
        let payload = req.payload.clone();
        let action = payload
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut call = Call {
            execution: req.execution_arn.clone(),
            state: req.state_name.clone(),
            function,
            action,
            payload,
            task_token: req.task_token.clone(),
            error: None,
        };
        let nth = 1 + lock(&self.inner.calls)
            .iter()
            .filter(|c| {
                c.execution == call.execution
                    && c.function == call.function
                    && c.action == call.action
            })
            .count() as u32;
        let outcome = self.outcome(&call, nth).await;
        call.error = outcome.as_ref().err().map(|e| e.error.clone());
        lock(&self.inner.calls).push(call);
        outcome
    }

    async fn outcome(&self, call: &Call, nth: u32) -> Outcome {
        // The contract first: a payload the real function would refuse is a defect of the
        // definition, whatever the script says.
        let default = match self.default_outcome(call).await {
            Ok(v) => Ok(v),
            Err(e) if e.error == "Rollback.InvalidInput" || e.error == "Rollback.InvalidPlan" => {
                lock(&self.inner.violations).push(format!(
                    "state '{}' ({}:{}): {}: {}",
                    call.state, call.function, call.action, e.error, e.cause
                ));
                return Err(e);
            }
            Err(e) => Err(e),
        };
        let rule = lock(&self.inner.rules)
            .get(&(call.function.clone(), call.action.clone()))
            .cloned();
        match rule.and_then(|r| r(call, nth)) {
            Some(scripted) => scripted,
            None => default,
        }
    }

    /// What a healthy function answers, after reading the payload with its contract type.
    async fn default_outcome(&self, call: &Call) -> Outcome {
        let p = call.payload.clone();
        match call.function.as_str() {
            "plan" => self.plan_outcome(call, p).await,
            "snapshot" => {
                let s = StepInput::<SnapshotAction>::parse(p).map_err(rollback_failure)?;
                let available = !matches!(s.action, SnapshotAction::Create { .. });
                to_value(canned::snapshots(
                    &s.plan,
                    &s.request,
                    &s.execution,
                    available,
                ))
            }
            // One binary, two deployments (infra/template.yaml): cleanup-drill runs only in
            // drill-cleanup, everything else only in restore; each refuses the other's actions.
            "restore" | "drill-cleanup" => restore_outcome(call, p),
            "retag" => {
                let s = StepInput::<RetagAction>::parse(p).map_err(rollback_failure)?;
                match &s.action {
                    RetagAction::Resolve => to_value(canned::retag_resolve(&s.plan)),
                    RetagAction::Apply { images } => {
                        to_value(canned::retag_apply(&s.request, &s.execution, images))
                    }
                }
            }
            "deploy-undo" => deploy_undo_outcome(p),
            "infra" => infra_outcome(p),
            "mobile" => {
                let s = StepInput::<MobileAction>::parse(p).map_err(rollback_failure)?;
                match &s.action {
                    MobileAction::Resolve | MobileAction::Status => {
                        to_value(canned::mobile_resolve(&s.plan))
                    }
                    MobileAction::Halt { .. } => to_value(canned::mobile_halt()),
                    MobileAction::RaiseMinimum { .. } => to_value(canned::mobile_raise()),
                }
            }
            "smoke-test" => {
                let _ = StepInput::<SmokeAction>::parse(p).map_err(rollback_failure)?;
                to_value(canned::smoke(true))
            }
            "notify" => {
                let s = StepInput::<NotifyAction>::parse(p).map_err(rollback_failure)?;
                match &s.action {
                    NotifyAction::Report(_) => to_value(canned::report_written(&s.execution)),
                    _ => to_value(canned::notified(&call.action, &s.execution)),
                }
            }
            other => Err(failure(
                "States.TaskFailed",
                &format!("no function '{other}' in the script"),
            )),
        }
    }

    /// The plan function runs for real (with the harness's clients and plan); `guard` is
    /// canned unless the test asks for the real one.
    async fn plan_outcome(&self, call: &Call, p: Value) -> Outcome {
        let real = |p: Value| async move {
            let clients = self
                .inner
                .plan_clients
                .get()
                .ok_or_else(|| failure("Rollback.Internal", "plan clients not set"))?;
            let plans = match self.inner.plan_store.get() {
                Some(store) => rollback_plan::Plans::Stored(store),
                None => rollback_plan::Plans::Given(&self.inner.plan_text),
            };
            rollback_plan::handle_with(clients, plans, p)
                .await
                .map_err(rollback_failure)
        };
        if call.action == "guard" && !self.inner.real_guard {
            let _ = StepInput::<PlanAction>::parse(p).map_err(rollback_failure)?;
            return to_value(GuardOutput {
                proceed: true,
                duplicate_of: None,
                running_checked: 1,
            });
        }
        real(p).await
    }
}

fn restore_outcome(call: &Call, p: Value) -> Outcome {
    let s = StepInput::<RestoreAction>::parse(p).map_err(rollback_failure)?;
    let cleanup = matches!(s.action, RestoreAction::CleanupDrill { .. });
    if cleanup != (call.function == "drill-cleanup") {
        return Err(rollback_failure(RollbackError::InvalidInput(format!(
            "action: {} does not run in the {} deployment",
            call.action, call.function
        ))));
    }
    match &s.action {
        RestoreAction::Resolve { release_time } => {
            to_value(canned::restore_resolve(&s.plan, &s.request, *release_time))
        }
        RestoreAction::Start { resolved } => {
            to_value(canned::restore_start(&s.request, &s.execution, resolved))
        }
        RestoreAction::Status { .. } => to_value(canned::restore_status(
            &s.plan,
            &s.request,
            &s.execution,
            true,
        )),
        RestoreAction::Swap { .. } => to_value(canned::swap(&s.plan, &s.request, &s.execution)),
        RestoreAction::Revert { .. } => to_value(canned::revert(&s.request)),
        RestoreAction::Observe { .. } => to_value(canned::observe(&s.request)),
        RestoreAction::CleanupDrill { .. } => {
            to_value(canned::cleanup_drill(&s.plan, &s.execution))
        }
    }
}

fn deploy_undo_outcome(p: Value) -> Outcome {
    let s = StepInput::<DeployUndoAction>::parse(p).map_err(rollback_failure)?;
    match &s.action {
        DeployUndoAction::Resolve { .. } => to_value(canned::undo_resolve(&s.plan)),
        DeployUndoAction::Pause => to_value(canned::scale(&s.plan, &s.request, true)),
        DeployUndoAction::SuspendGitops => {
            to_value(canned::suspend_gitops(&s.plan, &s.request, &s.execution))
        }
        DeployUndoAction::Restart { deployments, .. } => {
            to_value(canned::restart(&s.request, deployments))
        }
        DeployUndoAction::Resume { .. } => to_value(canned::scale(&s.plan, &s.request, false)),
        DeployUndoAction::Undo { deployments, .. } => {
            to_value(canned::undo(&s.request, deployments))
        }
        DeployUndoAction::Status { .. } => to_value(canned::rollout_status(&s.plan, true)),
    }
}

fn infra_outcome(p: Value) -> Outcome {
    let s = StepInput::<InfraAction>::parse(p).map_err(rollback_failure)?;
    match &s.action {
        InfraAction::Resolve => to_value(canned::infra_resolve(&s.plan, &s.execution)),
        InfraAction::Plan { infrastructure } => {
            to_value(canned::infra_build(infrastructure, BuildPurpose::Plan))
        }
        InfraAction::Status { build, .. } => to_value(canned::infra_status(build, true)),
        InfraAction::Summary {
            infrastructure,
            build,
        } => to_value(canned::infra_summary(infrastructure, build)),
        InfraAction::Apply { infrastructure } => {
            to_value(canned::infra_build(infrastructure, BuildPurpose::Apply))
        }
    }
}

impl TaskHandler for Script {
    fn invoke(&self, req: TaskRequest) -> BoxFuture<'static, Result<Value, TaskFailure>> {
        let me = self.clone();
        Box::pin(async move { me.run(req).await })
    }
}
