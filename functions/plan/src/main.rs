//! Lambda entry point: wires the runtime; the logic is in the library.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollback_plan::{Clients, PLAN_ENV};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollback_core::telemetry::init_lambda();
    let config = rollback_core::aws::from_env().await;
    let clients = Clients::new(&config);
    // Read once per cold start; a missing plan is reported per invocation by `validate`, with
    // the variable's name, rather than crashing the runtime.
    let plan_text = std::env::var(PLAN_ENV).unwrap_or_default();
    let clients = &clients;
    let plan_text = plan_text.as_str();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rollback_plan::handle(clients, plan_text, event.payload)
            .await
            .map_err(lambda_runtime::Diagnostic::from)
    }))
    .await
}
