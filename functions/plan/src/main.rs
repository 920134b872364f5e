//! Lambda entry point: wires the runtime; the logic is in the library.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollback_plan::{Clients, PlanStore, Plans};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollback_core::telemetry::init_lambda();
    let config = rollback_core::aws::from_env().await;
    let mut clients = Clients::new(&config);
    // The decision key signs pre-approved app-only rollbacks (approval.auto_approve_app_only).
    // Without it the policy never approves: people decide, and the notices say why.
    match rollback_core::decision::DecisionSigner::from_env(&config) {
        Ok(signer) => clients = clients.with_signer(signer),
        Err(why) => tracing::warn!(%why, "pre-approval disabled"),
    }
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
