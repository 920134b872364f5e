// The SDK futures nest deeply; the default limit is too low for the layout computation.
#![recursion_limit = "256"]

use lambda_runtime::{LambdaEvent, service_fn};
use rollback_notify::{Clients, Config, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rollback_core::telemetry::init_lambda();
    let sdk = rollback_core::aws::from_env().await;
    let clients = Clients::new(&sdk);
    // The link key is read from Secrets Manager on first use and kept for the process.
    let config = Config::from_env();
    let (clients, config) = (&clients, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(clients, config, event.payload)
            .await
            .map_err(lambda_runtime::Diagnostic::from)
    }))
    .await
}
