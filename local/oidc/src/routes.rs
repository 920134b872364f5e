//! The HTTP endpoints: discovery, JWKS, authorize (form and sign-in) and token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::grants::{Grant, valid_challenge, valid_verifier};
use crate::{Shared, html};

type Params = HashMap<String, String>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_form).post(authorize_sign_in))
        .route("/token", post(token))
        .with_state(shared)
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    let issuer = &shared.issuer;
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "email", "profile"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "email", "email_verified", "groups"
        ],
    }))
    .into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let document = shared.keys.lock().expect("key ring").jwks();
    axum::Json(document).into_response()
}

/// Form or query parameters; a repeated one is refused (RFC 6749 §3.1, §3.2).
fn parse_params(raw: &[u8]) -> Result<Params, String> {
    let mut params = Params::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if params.contains_key(name.as_ref()) {
            return Err(format!("parameter {name:?} appears more than once"));
        }
        params.insert(name.into_owned(), value.into_owned());
    }
    Ok(params)
}

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// A checked authorization request.
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    nonce: Option<String>,
}

impl AuthorizeRequest {
    /// The fields the login form carries back.
    fn hidden_fields(&self) -> Vec<(&str, &str)> {
        let mut fields = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", self.scope.as_str()),
            ("code_challenge", self.code_challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        fields.extend(self.state.as_deref().map(|s| ("state", s)));
        fields.extend(self.nonce.as_deref().map(|n| ("nonce", n)));
        fields
    }
}

/// Why an authorization request is refused, and where that is said.
enum Refusal {
    /// To the person in the browser: the client or redirect URI cannot be trusted with a
    /// redirect (RFC 6749 §4.1.2.1).
    Page(String),
    /// Back to the client's registered redirect URI with an OAuth error.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: &'static str,
        state: Option<String>,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(message) => html_response(
                StatusCode::BAD_REQUEST,
                html::error_page("Invalid sign-in request", &message),
            ),
            Refusal::Redirect {
                redirect_uri,
                error,
                description,
                state,
            } => {
                let mut pairs = vec![("error", error), ("error_description", description)];
                pairs.extend(state.as_deref().map(|s| ("state", s)));
                redirect(&redirect_uri, &pairs)
            }
        }
    }
}

/// Client and redirect URI first (refused on a page), then the rest (refused by redirect).
fn check_authorize(shared: &Shared, params: &Params) -> Result<AuthorizeRequest, Refusal> {
    let client_id = param(params, "client_id")
        .ok_or_else(|| Refusal::Page("The request names no client (client_id).".into()))?;
    let client = shared
        .client(client_id)
        .ok_or_else(|| Refusal::Page(format!("Unknown client {client_id:?}.")))?;
    let redirect_uri = param(params, "redirect_uri")
        .ok_or_else(|| Refusal::Page("The request has no redirect_uri.".into()))?;
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(Refusal::Page(format!(
            "The redirect URI {redirect_uri:?} is not registered for client {client_id:?}."
        )));
    }
    let state = param(params, "state").map(str::to_string);
    let back = |error, description| Refusal::Redirect {
        redirect_uri: redirect_uri.to_string(),
        error,
        description,
        state: state.clone(),
    };
    if param(params, "response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let scope = param(params, "scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(back("invalid_scope", "scope must include openid"));
    }
    if param(params, "code_challenge_method") != Some("S256") {
        return Err(back(
            "invalid_request",
            "PKCE is required, with code_challenge_method=S256",
        ));
    }
    let code_challenge = param(params, "code_challenge")
        .filter(|c| valid_challenge(c))
        .ok_or_else(|| {
            back(
                "invalid_request",
                "code_challenge must be 43 base64url characters",
            )
        })?;
    Ok(AuthorizeRequest {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope: scope.to_string(),
        state,
        code_challenge: code_challenge.to_string(),
        nonce: param(params, "nonce").map(str::to_string),
    })
}

/// `GET /authorize`: the login form for a valid request.
async fn authorize_form(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(message) => return Refusal::Page(message).into_response(),
    };
    match check_authorize(&shared, &params) {
        Ok(request) => html_response(
            StatusCode::OK,
            html::login_page(&request.client_id, &request.hidden_fields()),
        ),
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /authorize`: the form came back; sign the user in and redirect with a code.
async fn authorize_sign_in(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let params = match parse_params(&body) {
        Ok(params) => params,
        Err(message) => return Refusal::Page(message).into_response(),
    };
    let request = match check_authorize(&shared, &params) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(user) = param(&params, "username").and_then(|u| shared.user(u)) else {
        return html_response(
            StatusCode::UNAUTHORIZED,
            html::error_page("Sign-in failed", "Unknown user."),
        );
    };
    let code = shared.store_grant(Grant {
        client_id: request.client_id,
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge,
        username: user.username.clone(),
        scope: request.scope,
        nonce: request.nonce,
        expires: Instant::now() + shared.code_ttl,
    });
    let mut pairs = vec![("code", code.as_str())];
    pairs.extend(request.state.as_deref().map(|s| ("state", s)));
    redirect(&request.redirect_uri, &pairs)
}

/// `POST /token`, answered with CORS for the origins of registered redirect URIs: a public
/// client in a browser (the approval page's script) calls it cross-origin, as identity
/// providers allow for single-page-application clients. Other origins get no CORS header, so
/// their scripts cannot read the answer.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = token_grant(&shared, &body);
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| shared.registered_origin(o))
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// The authorization code grant with PKCE (public clients, no secret).
fn token_grant(shared: &Shared, body: &[u8]) -> Response {
    let params = match parse_params(body) {
        Ok(params) => params,
        Err(message) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    match param(&params, "grant_type") {
        Some("authorization_code") => {}
        Some(_) => {
            let message = "only grant_type=authorization_code is supported";
            return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", message);
        }
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "no grant_type"),
    }
    let Some(client_id) = param(&params, "client_id").filter(|c| shared.client(c).is_some()) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    };
    let (Some(code), Some(redirect_uri), Some(verifier)) = (
        param(&params, "code"),
        param(&params, "redirect_uri"),
        param(&params, "code_verifier"),
    ) else {
        let message = "code, redirect_uri and code_verifier are required";
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", message);
    };
    if !valid_verifier(verifier) {
        let message = "code_verifier must be 43 to 128 unreserved characters (RFC 7636)";
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", message);
    }
    match shared.redeem(code, client_id, redirect_uri, verifier) {
        Ok(grant) => token_response(shared, &grant),
        Err(refusal) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            refusal.description(),
        ),
    }
}

fn token_response(shared: &Shared, grant: &Grant) -> Response {
    let Some(user) = shared.user(&grant.username) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown user");
    };
    let now = chrono::Utc::now().timestamp();
    let key = shared.current_key();
    let id_claims = shared.id_token_claims(user, &grant.client_id, grant.nonce.as_deref(), now);
    let access_claims = shared.access_token_claims(user, &grant.client_id, &grant.scope, now);
    let body = json!({
        "id_token": key.sign_claims(&Value::Object(id_claims)),
        "access_token": key.sign_claims(&Value::Object(access_claims)),
        "token_type": "Bearer",
        "expires_in": shared.token_ttl.as_secs(),
        "scope": grant.scope,
    });
    no_store(StatusCode::OK, axum::Json(body))
}

/// An OAuth error response (RFC 6749 §5.2); the description never echoes a code or verifier.
fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    no_store(status, axum::Json(body))
}

/// Token responses must not be cached (RFC 6749 §5.1).
fn no_store(status: StatusCode, body: impl IntoResponse) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn html_response(status: StatusCode, page: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

/// A 302 to `redirect_uri` (registered, so it parses) with `pairs` added to its query.
fn redirect(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        let page = html::error_page("Invalid redirect URI", "The redirect URI does not parse.");
        return html_response(StatusCode::BAD_REQUEST, page);
    };
    url.query_pairs_mut().extend_pairs(pairs);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}
