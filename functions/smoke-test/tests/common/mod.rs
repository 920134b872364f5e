//! A local integration endpoint that requires credentials and answers JSON, and the
//! credentials secrets in moto, for the HTTP request tests and the leak test.

#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use rollback_core::contract::smoke_test::{CheckResult, SmokeReport};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use rollback_smoke_test::Clients;
use serde_json::{Value, json};

/// The bearer token the endpoint accepts, and a wrong one.
pub const TOKEN: &str = "tok-Ab3xY9-integration-bearer-7f2c";
pub const WRONG_TOKEN: &str = "tok-Wr0ng-bearer-value-0c1d";
/// The basic-auth credentials the endpoint accepts.
pub const USERNAME: &str = "smoke-probe";
pub const PASSWORD: &str = "pw-Kq8zR2-basic-secret-55e1";

/// smoke-test's role, checking every call it makes.
pub fn gate() -> IamGate {
    IamGate::start(
        &MotoServer::shared().endpoint(),
        "smoke-test",
        &test_stack("smoke-svc"),
    )
}

/// smoke-test's clients: its own credentials, through `gate`.
pub fn clients(gate: &IamGate) -> Clients {
    Clients::new(&gate.sdk_config())
}

/// The result of the check named `name`.
pub fn check<'a>(report: &'a SmokeReport, name: &str) -> &'a CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#?}"))
}

/// Stores `value` as secret `name` (the test stack's role reads `smoke-svc/…`); an existing
/// secret of that name (another test in the same process) gets the value as a new version.
pub async fn put_secret(name: &str, value: &Value) -> String {
    let sm = aws_sdk_secretsmanager::Client::new(&MotoServer::shared().sdk_config());
    match sm
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .send()
        .await
    {
        Ok(out) => out.arn().unwrap().to_owned(),
        Err(_) => sm
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap()
            .arn()
            .unwrap()
            .to_owned(),
    }
}

/// The secrets of the credential kinds: bearer (right and wrong) and basic.
pub struct Secrets {
    pub bearer: String,
    pub wrong_bearer: String,
    pub basic: String,
}

pub async fn secrets(prefix: &str) -> Secrets {
    Secrets {
        bearer: put_secret(
            &format!("smoke-svc/{prefix}-bearer"),
            &json!({"type": "bearer", "token": TOKEN}),
        )
        .await,
        wrong_bearer: put_secret(
            &format!("smoke-svc/{prefix}-wrong-bearer"),
            &json!({"type": "bearer", "token": WRONG_TOKEN}),
        )
        .await,
        basic: put_secret(
            &format!("smoke-svc/{prefix}-basic"),
            &json!({"type": "basic", "username": USERNAME, "password": PASSWORD}),
        )
        .await,
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"));
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    given == format!("Bearer {TOKEN}") || given == format!("Basic {basic}")
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong credentials",
    )
        .into_response()
}

/// `/status` (GET, JSON), `/orders` (POST with a JSON body and `X-Probe: smoke`), `/notes`
/// (PUT with a text body), `/echo` (200 with the Authorization header it got, as a broken
/// service might), `/text` (not JSON); all but `/echo` require the bearer token or basic auth.
pub async fn integration() -> String {
    let app = Router::new()
        .route("/status", get(status))
        .route("/orders", any(orders))
        .route("/notes", any(notes))
        .route("/echo", get(echo))
        .route(
            "/text",
            get(|headers: HeaderMap| async move {
                if authorized(&headers) {
                    "plain text, not JSON".into_response()
                } else {
                    unauthorized()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn status(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    axum::Json(json!({
        "status": "ok",
        "release": {"version": "4.2.1", "major": 4},
        "integrations": [{"name": "aggregator", "up": true}, {"name": "credit-score", "up": true}]
    }))
    .into_response()
}

async fn orders(method: Method, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let probe = headers.get("x-probe").and_then(|v| v.to_str().ok());
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    if method != Method::POST
        || content_type != Some("application/json")
        || probe != Some("smoke")
        || body != Some(json!({"dry_run": true, "amount": 10}))
    {
        return (
            StatusCode::BAD_REQUEST,
            "not the request the probe should send",
        )
            .into_response();
    }
    axum::Json(json!({"accepted": true, "dry_run": true, "quote": {"score": 712}})).into_response()
}

async fn notes(method: Method, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if method != Method::PUT
        || content_type != Some("text/plain; charset=utf-8")
        || &body[..] != b"rollback smoke note"
    {
        return (
            StatusCode::BAD_REQUEST,
            "expected a PUT of the note as text",
        )
            .into_response();
    }
    (StatusCode::CREATED, "stored").into_response()
}

async fn echo(headers: HeaderMap) -> String {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    format!("debug: you sent {given}; status degraded")
}
