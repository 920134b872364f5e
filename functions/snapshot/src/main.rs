//! Lambda entry point: wires the runtime; the logic is in the library.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollback_snapshot::Clients;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollback_core::telemetry::init_lambda();
    let clients = Clients::new(&rollback_core::aws::from_env().await);
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rollback_snapshot::handle(clients, event.payload)
            .await
            .map_err(lambda_runtime::Diagnostic::from)
    }))
    .await
}
