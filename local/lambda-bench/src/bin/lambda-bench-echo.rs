//! The smallest `lambda_runtime` function: answers its event back, or fails with the
//! `errorType` named in the event's `"fail"` field. The harness test drives it through the
//! local Runtime API; the bench shows it as the floor under the real functions.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        match event.payload.get("fail").and_then(Value::as_str) {
            Some(kind) => Err(Diagnostic {
                error_type: kind.to_owned(),
                error_message: format!("asked to fail (request {})", event.context.request_id),
            }),
            None => Ok(serde_json::json!({
                "echo": event.payload,
                "request_id": event.context.request_id,
                "function_arn": event.context.invoked_function_arn,
            })),
        }
    }))
    .await
}
