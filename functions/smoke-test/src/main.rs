use lambda_runtime::{LambdaEvent, service_fn};
use rollback_smoke_test::{Clients, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rollback_core::telemetry::init_lambda();
    let config = rollback_core::aws::from_env().await;
    let clients = Clients::new(&config);
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(clients, event.payload)
            .await
            .map_err(lambda_runtime::Diagnostic::from)
    }))
    .await
}
