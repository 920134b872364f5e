//! What the tests share: an HTTP client with a bounded wait, and credentials made the way a
//! client of the stores makes them (with `jsonwebtoken`, from the key files the stores issue).
#![allow(dead_code)] // Each test binary uses part of this.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use rollback_stores::StoreServer;
use rollback_stores::google::{ANDROID_PUBLISHER_SCOPE, JWT_BEARER};
use rollback_stores::test_keys;
use serde_json::{Map, Value, json};

pub const SERVICE_ACCOUNT: &str = "rollback@acme-mobile.iam.gserviceaccount.com";
pub const OTHER_ACCOUNT: &str = "release-bot@acme-mobile.iam.gserviceaccount.com";
pub const PACKAGE: &str = "com.acme.shop";

pub const KEY_ID: &str = "2X9R4HXF34";
pub const ISSUER_ID: &str = "57246542-96fe-1a63-e053-0824d011072a";
pub const APP_ID: &str = "1452013590";

/// Every request is bounded: a hung server fails the test instead of stalling the suite.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Merges `overrides` into `base`; a `null` override removes the claim.
fn merged(mut base: Map<String, Value>, overrides: Value) -> Map<String, Value> {
    let Value::Object(overrides) = overrides else {
        panic!("overrides must be a JSON object")
    };
    for (name, value) in overrides {
        if value.is_null() {
            base.remove(&name);
        } else {
            base.insert(name, value);
        }
    }
    base
}

/// A server with the service account registered; its key file.
pub async fn google_server() -> (StoreServer, Value) {
    let server = StoreServer::start().await;
    let (key_file, public) =
        test_keys::google_service_account(SERVICE_ACCOUNT, &server.google_token_uri());
    server
        .register_service_account(SERVICE_ACCOUNT, &public)
        .unwrap();
    (server, key_file)
}

/// The RS256 assertion a Google client library makes from `key_file`, with `overrides`
/// merged into the claims.
pub fn assertion(key_file: &Value, overrides: Value) -> String {
    assertion_signed_with(
        key_file,
        key_file["private_key"].as_str().unwrap(),
        overrides,
    )
}

pub fn assertion_signed_with(key_file: &Value, private_pem: &str, overrides: Value) -> String {
    let iat = now();
    let claims = json!({
        "iss": key_file["client_email"],
        "scope": ANDROID_PUBLISHER_SCOPE,
        "aud": key_file["token_uri"],
        "iat": iat,
        "exp": iat + 3600,
    });
    let Value::Object(claims) = claims else {
        unreachable!()
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = key_file["private_key_id"].as_str().map(str::to_string);
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("PKCS#8 RSA key");
    jsonwebtoken::encode(&header, &merged(claims, overrides), &key).unwrap()
}

/// Posts the JWT-bearer grant: the status and the JSON answer.
pub async fn token_request(server: &StoreServer, assertion: &str) -> (StatusCode, Value) {
    let answer = http()
        .post(server.google_token_uri())
        .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
        .send()
        .await
        .unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap())
}

/// An access token for `key_file`'s account.
pub async fn access_token(server: &StoreServer, key_file: &Value) -> String {
    let (status, body) = token_request(server, &assertion(key_file, json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// A Google server with a second registered account (same key: see `test_keys`).
pub fn register_other_account(server: &StoreServer) -> Value {
    let (key_file, public) =
        test_keys::google_service_account(OTHER_ACCOUNT, &server.google_token_uri());
    server
        .register_service_account(OTHER_ACCOUNT, &public)
        .unwrap();
    key_file
}

/// One Android Publisher call: the status and the JSON answer (`null` when empty).
pub async fn play(
    server: &StoreServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!(
        "{}/androidpublisher/v3/applications/{path}",
        server.android_publisher_url()
    );
    let mut request = http().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    (status, json)
}

/// Opens an edit of `PACKAGE`: its id.
pub async fn insert_edit(server: &StoreServer, token: &str) -> String {
    let (status, edit) = play(
        server,
        Some(token),
        Method::POST,
        &format!("{PACKAGE}/edits"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edit}");
    edit["id"].as_str().unwrap().to_string()
}

/// The message and reason of a Google API error body.
pub fn google_error(body: &Value) -> (&str, &str) {
    (
        body["error"]["message"].as_str().unwrap_or_default(),
        body["error"]["errors"][0]["reason"]
            .as_str()
            .unwrap_or_default(),
    )
}

/// A server with the App Store Connect key registered; the `.p8` private key.
pub async fn app_store_server() -> (StoreServer, String) {
    let server = StoreServer::start().await;
    let (private, public) = test_keys::app_store_key();
    server
        .register_app_store_key(KEY_ID, ISSUER_ID, &public)
        .unwrap();
    (server, private)
}

/// An App Store Connect token as Apple documents it, with `overrides` merged into the
/// claims.
pub fn asc_token(private_p8: &str, overrides: Value) -> String {
    asc_token_with_header(private_p8, KEY_ID, Some("JWT"), overrides)
}

pub fn asc_token_with_header(
    private_p8: &str,
    kid: &str,
    typ: Option<&str>,
    overrides: Value,
) -> String {
    let iat = now();
    let Value::Object(claims) = json!({
        "iss": ISSUER_ID,
        "iat": iat,
        "exp": iat + 20 * 60,
        "aud": "appstoreconnect-v1",
    }) else {
        unreachable!()
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    header.typ = typ.map(str::to_string);
    let key = EncodingKey::from_ec_pem(private_p8.as_bytes()).expect("PKCS#8 P-256 key");
    jsonwebtoken::encode(&header, &merged(claims, overrides), &key).unwrap()
}

/// One App Store Connect call (`path` from `/v1`): the status and the JSON answer.
pub async fn asc(
    server: &StoreServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http().request(method, format!("{}{path}", server.app_store_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap())
}
