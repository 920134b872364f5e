//! Google's OAuth 2.0 token endpoint for service accounts, and the bearer check and error
//! bodies of Google APIs.
//!
//! `POST /google/token` implements the JWT-bearer grant of "Using OAuth 2.0 for Server to
//! Server Applications"
//! (<https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests>):
//! a form with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion`, an
//! RS256 JWT whose claims are `iss` (the service account's `client_email`), `scope`
//! (space-delimited), `aud` (the token endpoint, "always `https://oauth2.googleapis.com/token`"
//! there, [`crate::StoreServer::google_token_uri`] here), `iat` and `exp` ("a maximum of 1
//! hour after the issued time"). Checks, in order, each answered 400 with Google's OAuth body
//! `{"error", "error_description"}` in the wording Google sends (recorded from real answers
//! by public client tests and troubleshooting notes, e.g.
//! <https://httpfixer.dev/blog/oauth/fix-google-oauth-invalid-grant/> for the short-lived
//! token; wording marked local was not found):
//!
//! | check | `error` | `error_description` |
//! |---|---|---|
//! | `grant_type` | `unsupported_grant_type` | `Invalid grant_type: <value>` |
//! | no `assertion`, or not a JWS | `invalid_request` / `invalid_grant` | `Missing required parameter: assertion` (local wording) / `Invalid JWT Signature.` |
//! | no `iss` | `invalid_grant` | `Invalid email or User ID.` |
//! | `iss` not a registered account | `invalid_grant` | `Invalid grant: account not found` (Google's answer for a deleted or unknown account) |
//! | header `alg` not RS256, or signature | `invalid_grant` | `Invalid JWT Signature.` |
//! | `aud` | `invalid_grant` | `Invalid JWT: Failed audience check.` |
//! | `iat`, `exp` missing | `invalid_grant` | `Invalid JWT: iat (issued at) is not set.` / `Invalid JWT: exp (expiration time) is not set.` |
//! | `exp` − `iat` > 3600 s, `exp` ≤ `iat`, `iat` in the future or `exp` past (60 s clock skew either way) | `invalid_grant` | `Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.` |
//! | `sub` other than `iss` (domain-wide delegation, which no Play account has) | `unauthorized_client` (401) | `Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.` |
//! | no `scope` | `invalid_scope` | `Invalid OAuth scope or ID token audience provided.` |
//!
//! The answer is `{"access_token", "expires_in": 3599, "token_type": "Bearer"}`: Google's
//! tokens last an hour and it reports 3599 seconds. The token is an opaque random string the
//! server remembers with its account, scopes and expiry;
//! [`crate::StoreServer::expire_tokens`] ends them all early.
//!
//! A Google API call without a valid token gets 401 with Google's `UNAUTHENTICATED` body and
//! `WWW-Authenticate: Bearer realm="https://accounts.google.com/"`: "Login Required." with
//! reason `required` when the header is missing, "Invalid Credentials" with reason `authError`
//! when the token is unknown or expired. A token without the
//! `https://www.googleapis.com/auth/androidpublisher` scope gets 403 `PERMISSION_DENIED`
//! "Request had insufficient authentication scopes." (reason `insufficientPermissions`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use rand::RngCore as _;
use serde_json::{Map, Value, json};

use crate::state::AccessToken;
use crate::{Shared, now};

/// The only grant type the token endpoint serves (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The scope the Android Publisher API requires.
pub const ANDROID_PUBLISHER_SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
/// `expires_in` of every access token: Google's hour, as Google reports it.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 3599;
/// The longest assertion Google accepts: `exp` at most an hour after `iat`.
pub const MAX_ASSERTION_SECS: i64 = 3600;
/// The clock skew allowed on `iat` and `exp`.
pub const CLOCK_SKEW_SECS: i64 = 60;

pub(crate) const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
pub(crate) const BAD_SIGNATURE: &str = "Invalid JWT Signature.";
pub(crate) const ACCOUNT_NOT_FOUND: &str = "Invalid grant: account not found";
pub(crate) const FAILED_AUDIENCE: &str = "Invalid JWT: Failed audience check.";

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new().route("/google/token", post(token))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// The claims of a compact JWS, read without checking anything.
pub(crate) fn unverified_claims(jwt: &str) -> Option<Map<String, Value>> {
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// Checks the signature only: the claims are checked by hand, each with its own answer.
pub(crate) fn signature_verifies(
    jwt: &str,
    algorithm: Algorithm,
    key: &jsonwebtoken::DecodingKey,
) -> bool {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, key, &validation).is_ok()
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if form_type != Some(true) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body must be application/x-www-form-urlencoded.",
        );
    }
    let params: HashMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    match params.get("grant_type").map(String::as_str) {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: grant_type",
            );
        }
    }
    let Some(assertion) = params.get("assertion") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    match grant(&shared, assertion) {
        Ok(token) => {
            let mut response = axum::Json(json!({
                "access_token": token,
                "expires_in": ACCESS_TOKEN_TTL_SECS,
                "token_type": "Bearer",
            }))
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(refusal) => refusal,
    }
}

/// Checks the assertion; the new access token, or Google's refusal.
fn grant(shared: &Shared, assertion: &str) -> Result<String, Response> {
    let claims = unverified_claims(assertion).ok_or_else(|| invalid_grant(BAD_SIGNATURE))?;
    let email = claims
        .get("iss")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid_grant("Invalid email or User ID."))?
        .to_string();
    let key = shared
        .stores()
        .service_accounts
        .get(&email)
        .cloned()
        .ok_or_else(|| invalid_grant(ACCOUNT_NOT_FOUND))?;
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| invalid_grant(BAD_SIGNATURE))?;
    if header.alg != Algorithm::RS256 || !signature_verifies(assertion, Algorithm::RS256, &key) {
        return Err(invalid_grant(BAD_SIGNATURE));
    }
    if claims.get("aud").and_then(Value::as_str) != Some(shared.token_uri().as_str()) {
        return Err(invalid_grant(FAILED_AUDIENCE));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid_grant("Invalid JWT: iat (issued at) is not set."))?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid_grant("Invalid JWT: exp (expiration time) is not set."))?;
    let now = now();
    if exp <= iat
        || exp - iat > MAX_ASSERTION_SECS
        || iat > now + CLOCK_SKEW_SECS
        || exp < now - CLOCK_SKEW_SECS
    {
        return Err(invalid_grant(SHORT_LIVED));
    }
    if let Some(sub) = claims.get("sub").and_then(Value::as_str)
        && sub != email
    {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        ));
    }
    let scopes: Vec<String> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ));
    }
    let mut random = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut random);
    let token = format!("ya29.{}", URL_SAFE_NO_PAD.encode(random));
    shared.stores().access_tokens.insert(
        token.clone(),
        AccessToken {
            client_email: email,
            scopes,
            expires_at: now + ACCESS_TOKEN_TTL_SECS,
        },
    );
    Ok(token)
}

/// The gRPC status name Google's JSON errors carry for an HTTP status.
fn grpc_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        _ => "INTERNAL",
    }
}

/// A Google API error body: `{"error": {"code", "message", "errors": [{"message", "domain",
/// "reason"}], "status"}}` (<https://cloud.google.com/apis/design/errors#http_mapping> and the
/// legacy `errors` array the Android Publisher API still sends).
pub(crate) fn api_error(status: StatusCode, domain: &str, reason: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": {
                "code": status.as_u16(),
                "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
                "status": grpc_status(status),
            }
        })),
    )
        .into_response()
}

const CREDENTIALS_HELP: &str = "Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

fn unauthenticated(missing: bool) -> Response {
    let (message, detail, reason) = if missing {
        (
            format!("Request is missing required authentication credential. {CREDENTIALS_HELP}"),
            "Login Required.",
            "required",
        )
    } else {
        (
            format!("Request had invalid authentication credentials. {CREDENTIALS_HELP}"),
            "Invalid Credentials",
            "authError",
        )
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({
            "error": {
                "code": 401,
                "message": message,
                "errors": [{
                    "message": detail,
                    "domain": "global",
                    "reason": reason,
                    "location": "Authorization",
                    "locationType": "header"
                }],
                "status": "UNAUTHENTICATED"
            }
        })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    response
}

/// The bearer token of `headers` if it is one this server issued, is not expired and grants
/// `scope`: the service account it was issued to, or Google's 401/403.
pub(crate) fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    scope: &str,
) -> Result<String, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthenticated(true));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| unauthenticated(false))?;
    let stores = shared.stores();
    let grant = stores
        .access_tokens
        .get(token)
        .filter(|t| t.expires_at > now())
        .ok_or_else(|| unauthenticated(false))?;
    if !grant.scopes.iter().any(|s| s == scope) {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "global",
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        ));
    }
    Ok(grant.client_email.clone())
}
