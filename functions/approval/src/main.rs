//! The approval page as a Lambda behind an API Gateway HTTP API.

use lambda_http::{Body, Request, service_fn};
use rollback_core::approval_link::{KEY_SECRET_ENV, LinkKey};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollback_core::telemetry::init_lambda();
    let sdk = rollback_core::aws::from_env().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    // Read once per process; a missing key is a deployment error, so fail the cold start.
    let secret_id = std::env::var(KEY_SECRET_ENV)
        .map_err(|_| anyhow_free(format!("set {KEY_SECRET_ENV} to the link key secret's ARN")))?;
    let key = LinkKey::load(&aws_sdk_secretsmanager::Client::new(&sdk), &secret_id)
        .await
        .map_err(|e| anyhow_free(e.to_string()))?;
    let signer = rollback_core::decision::DecisionSigner::from_env(&sdk).map_err(anyhow_free)?;
    let services = rollback_approval::Services {
        sfn,
        link_key: key,
        signer,
    };
    let services = &services;
    lambda_http::run(service_fn(move |request: Request| async move {
        let (parts, body) = request.into_parts();
        let body = match body {
            Body::Empty => Vec::new(),
            Body::Text(text) => text.into_bytes(),
            Body::Binary(bytes) => bytes,
            _ => Vec::new(),
        };
        let response =
            rollback_approval::handle_request(services, http::Request::from_parts(parts, body))
                .await;
        Ok::<_, std::convert::Infallible>(response.map(Body::Text))
    }))
    .await
}

fn anyhow_free(message: String) -> lambda_http::Error {
    message.into()
}
