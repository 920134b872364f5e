//! Lambda entry point: wires the runtime; the logic is in the library.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollback_plan::{Clients, PlanStore, Plans};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollback_core::telemetry::init_lambda();
    let config = rollback_core::aws::from_env().await;
    let clients = Clients::new(&config);
    // Where the plans are (ROLLBACK_PLAN_PARAMETER or ROLLBACK_PLAN_PATH); the plan itself is
    // read by every `validate`. A missing location is reported per invocation, naming the
    // variable, rather than crashing the runtime.
    let store = PlanStore::from_env(&config);
    let clients = &clients;
    let store = &store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rollback_plan::handle_with(clients, Plans::Stored(store), event.payload)
            .await
            .map_err(lambda_runtime::Diagnostic::from)
    }))
    .await
}
