//! Lambda entry point: wires the runtime; the logic is in the library.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollback_restore::{ACTIONS_ENV, Clients, Served};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollback_core::telemetry::init_lambda();
    let decision_key = rollback_core::decision::key_from_env()?;
    let clients = Clients::new(&rollback_core::aws::from_env().await, &decision_key);
    // Which actions this deployment serves (RestoreFunction or DrillCleanupFunction).
    let served = Served::from_env(std::env::var(ACTIONS_ENV).ok().as_deref())?;
    let clients = &clients;
    let served = &served;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rollback_restore::handle_served(clients, served, event.payload)
            .await
            .map_err(lambda_runtime::Diagnostic::from)
    }))
    .await
}
