//! Lambda entry point: wires the runtime; the logic is in the library.
#![recursion_limit = "256"]

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use rollback_deploy_undo::{ApiOverride, Clients};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rollback_core::telemetry::init_lambda();
    let config = rollback_core::aws::from_env().await;
    let api_override = ApiOverride::from_env()?;
    let decision_key = rollback_core::decision::key_from_env()?;
    let clients = Clients::new(&config, &decision_key, api_override);
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rollback_deploy_undo::handle(clients, event.payload)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
