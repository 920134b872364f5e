//! The approval page as a Lambda behind an API Gateway HTTP API.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, service_fn};
use rollback_approval::login::{Login, SignedIn};
use rollback_approval::{LinkKeySource, ledger};
use rollback_core::approval_link::KEY_SECRET_ENV;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollback_core::telemetry::init_lambda();
    let sdk = rollback_core::aws::from_env().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    // A missing secret name is a deployment error: fail the cold start. The keys themselves
    // are read on the first request with a link, so init makes no AWS call.
    let secret_id = std::env::var(KEY_SECRET_ENV)
        .map_err(|_| anyhow_free(format!("set {KEY_SECRET_ENV} to the link key secret's ARN")))?;
    let keys = LinkKeySource::from_secret(aws_sdk_secretsmanager::Client::new(&sdk), secret_id);
    let signer = rollback_core::decision::DecisionSigner::from_env(&sdk).map_err(anyhow_free)?;
    let mut services = rollback_approval::Services::new(sfn, keys, signer);
    if let Some(machine) = std::env::var(rollback_approval::fate::STATE_MACHINE_ENV)
        .ok()
        .filter(|m| !m.is_empty())
    {
        services = services.with_state_machine(machine);
    }
    // Without a ledger, decisions that need several people answer "try again" and say why.
    if let Some(bucket) = std::env::var(ledger::BUCKET_ENV)
        .ok()
        .filter(|b| !b.is_empty())
    {
        services = services.with_ledger(ledger::Ledger::new(
            rollback_core::aws::s3_client(&sdk),
            bucket,
        ));
    }
    // Sign-in: the issuer's endpoints are read on first use; a half-set configuration fails
    // the cold start.
    if let Some(login) = Login::from_env().map_err(anyhow_free)? {
        services = services.with_login(login);
    }
    let services = &services;
    lambda_http::run(service_fn(move |request: Request| async move {
        // The claims API Gateway's JWT authorizer validated (POST, when sign-in is on).
        let signed_in = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| SignedIn::from_api_gateway(&jwt.claims)),
            _ => None,
        };
        let (mut parts, body) = request.into_parts();
        if let Some(signed_in) = signed_in {
            parts.extensions.insert(signed_in);
        }
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
