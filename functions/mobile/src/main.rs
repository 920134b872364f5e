//! Lambda entry point: wires the runtime; the logic is in the library.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use rollback_mobile::{Clients, Endpoints};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rollback_core::telemetry::init_lambda();
    let config = rollback_core::aws::from_env().await;
    let clients = Clients::new(
        &config,
        &rollback_core::decision::key_from_env()?,
        Endpoints::from_env(),
    );
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rollback_mobile::handle(clients, event.payload)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
