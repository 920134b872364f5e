//! The real function code, registered with the local engine under the names the definition's
//! `DefinitionSubstitutions` give them, with clients pointing at the local stack.

use std::sync::Arc;

use rollback_core::{RollbackError, wait};
use std::sync::OnceLock;

use rollback_engine::{
    LambdaRegistry, TaskFailure, TaskHandler, TaskRequest, clock::Clock, task::BoxFuture,
};

use super::alarm::AlarmFollower;
use super::latency::{self, LatencyModel, Marks};
pub use rollback_core::contract::{FUNCTIONS, local_substitutions as substitutions};
use serde_json::Value;

/// Everything the functions need, built once for the drill.
pub struct FunctionClients {
    /// Where the plan function reads the plan (SSM in moto, through its IAM check).
    pub plan_store: rollback_plan::PlanStore,
    pub plan: rollback_plan::Clients,
    pub snapshot: rollback_snapshot::Clients,
    pub restore: rollback_restore::Clients,
    /// The restore code as the `DrillCleanupFunction` deployment: its own credentials.
    pub drill_cleanup: rollback_restore::Clients,
    pub retag: rollback_retag::Clients,
    pub infra: rollback_infra::Clients,
    pub mobile: rollback_mobile::Clients,
    pub deploy_undo: rollback_deploy_undo::Clients,
    pub smoke: rollback_smoke_test::Clients,
    pub notify: rollback_notify::Clients,
    pub notify_config: rollback_notify::Config,
}

/// A function's error as Step Functions sees it: the Lambda error type and message.
fn failure(err: RollbackError) -> TaskFailure {
    TaskFailure::new(err.error_name(), err.to_string())
}

macro_rules! register {
    ($registry:expr, $clients:expr, $name:literal, |$c:ident, $payload:ident| $call:expr) => {{
        let clients = $clients.clone();
        $registry.register($name, move |$payload: Value, _req: TaskRequest| {
            let clients = clients.clone();
            async move {
                let $c = &*clients;
                $call.await.map_err(failure)
            }
        });
    }};
}

pub fn register_all(registry: &LambdaRegistry, clients: Arc<FunctionClients>) {
    register!(registry, clients, "rollback-plan", |c, p| {
        rollback_plan::handle_with(&c.plan, rollback_plan::Plans::Stored(&c.plan_store), p)
    });
    register!(registry, clients, "rollback-snapshot", |c, p| {
        rollback_snapshot::handle(&c.snapshot, p)
    });
    // One binary, two deployments, each serving its own actions with its own role.
    register!(registry, clients, "rollback-restore", |c, p| async {
        let served = rollback_restore::Served::restore();
        rollback_restore::handle_served(&c.restore, &served, p).await
    });
    register!(registry, clients, "rollback-drill-cleanup", |c, p| async {
        let served = rollback_restore::Served::drill_cleanup();
        rollback_restore::handle_served(&c.drill_cleanup, &served, p).await
    });
    register!(registry, clients, "rollback-retag", |c, p| {
        rollback_retag::handle(&c.retag, p)
    });
    register!(registry, clients, "rollback-infra", |c, p| {
        rollback_infra::handle(&c.infra, p)
    });
    register!(registry, clients, "rollback-mobile", |c, p| {
        rollback_mobile::handle(&c.mobile, p)
    });
    register!(registry, clients, "rollback-deploy-undo", |c, p| {
        rollback_deploy_undo::handle(&c.deploy_undo, p)
    });
    register!(registry, clients, "rollback-smoke-test", |c, p| {
        rollback_smoke_test::handle(&c.smoke, p)
    });
    register!(registry, clients, "rollback-notify", |c, p| {
        rollback_notify::handle(&c.notify, &c.notify_config, p)
    });
}

/// The engine's task handler for the drill: the real functions, plus `--fail-at STATE` (the
/// task in that state fails as a function error would, to rehearse the contingency path) and
/// the optional latency model.
pub struct DrillHandler {
    pub inner: LambdaRegistry,
    pub fail_at: Option<String>,
    pub latency: Option<LatencyModel>,
    pub marks: Arc<Marks>,
    /// Set once the engine exists (the engine owns this handler).
    pub engine: OnceLock<rollback_engine::Engine>,
    /// Set once the demo app runs: the alarm catches up with its health before every task.
    pub alarm: OnceLock<Arc<AlarmFollower>>,
}

pub const INJECTED_ERROR: &str = "Rollback.Internal";

impl TaskHandler for DrillHandler {
    fn invoke(&self, req: TaskRequest) -> BoxFuture<'static, Result<Value, TaskFailure>> {
        if self.fail_at.as_deref() == Some(req.state_name.as_str()) {
            let cause = format!("failure injected at '{}' by --fail-at", req.state_name);
            return Box::pin(async move { Err(TaskFailure::new(INJECTED_ERROR, cause)) });
        }
        let Some(clock) = self
            .engine
            .get()
            .and_then(|engine| engine.clock(&req.execution_arn).ok())
        else {
            return self.inner.invoke(req);
        };
        let function = req
            .function
            .as_deref()
            .map(rollback_engine::task::function_name)
            .unwrap_or_default();
        let modelled = self
            .latency
            .map(|model| (model, latency::Call::of(function, &req.payload)));
        // Status checks that keep looking wait on the execution's clock, as its Wait states do.
        let call = wait::with_pause(pause_on(clock.clone()), self.inner.invoke(req));
        let marks = self.marks.clone();
        let alarm = self.alarm.get().cloned();
        Box::pin(async move {
            if let Some(alarm) = alarm {
                alarm.catch_up().await;
            }
            let mut output = call.await?;
            if let Some((model, call)) = modelled {
                let took = latency::apply(&model, &marks, &call, clock.now(), &mut output);
                if !took.is_zero() {
                    clock.sleep_in_task(took).await;
                }
            }
            Ok(output)
        })
    }
}

/// A status check's pause between looks, on the execution's clock: virtual time (the local
/// emulators count looks, not seconds) that parallel branches share.
fn pause_on(clock: Arc<Clock>) -> wait::Pause {
    Arc::new(move |duration| {
        let clock = clock.clone();
        Box::pin(async move { clock.sleep_in_task(duration).await })
    })
}
