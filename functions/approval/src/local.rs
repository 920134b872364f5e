//! The approval page on a local port (drills, browser tests): the same handler as the
//! Lambda, behind a small axum server. With sign-in configured, the server does what API
//! Gateway's JWT authorizer does in AWS before the handler runs: a POST without a valid token
//! (issuer, audience, expiry, signature, `kid`; `rollback_core::oidc::validate`) gets 401
//! `{"message":"Unauthorized"}`, and a valid one reaches the handler with its claims.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{Method, StatusCode, header};
use rollback_core::oidc::{Jwks, TokenError};
use tokio::sync::Mutex;

use crate::login::{Login, SignedIn};
use crate::{MAX_BODY, Services};

struct Shared {
    services: Services,
    /// The identity provider's keys, as the authorizer caches them (read again for an
    /// unknown `kid`, as after a key rotation).
    jwks: Mutex<Option<Jwks>>,
}

/// Binds `addr` (use port 0 for a free port), serves in the background, and returns the
/// bound address. The server lives as long as the runtime it was spawned on.
pub async fn serve_local(
    addr: SocketAddr,
    services: Services,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let shared = Arc::new(Shared {
        services,
        jwks: Mutex::new(None),
    });
    let app = axum::Router::new().fallback(any).with_state(shared);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "local approval server stopped");
        }
    });
    Ok((bound, task))
}

async fn any(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    if parts.method == Method::POST
        && let Some(login) = &shared.services.login
    {
        match authorize(&shared, login, &parts.headers).await {
            Ok(signed_in) => {
                parts.extensions.insert(signed_in);
            }
            Err(why) => {
                tracing::info!(reason = %why, "local JWT authorizer refused the request");
                return unauthorized();
            }
        }
    }
    let body = match axum::body::to_bytes(body, MAX_BODY + 1).await {
        Ok(bytes) => bytes.to_vec(),
        // Over the limit: let the handler answer 413.
        Err(_) => vec![0; MAX_BODY + 1],
    };
    let response =
        crate::handle_request(&shared.services, http::Request::from_parts(parts, body)).await;
    response.map(Body::from)
}

/// The JWT authorizer's checks on `Authorization` (identity source
/// `$request.header.Authorization`).
async fn authorize(
    shared: &Shared,
    login: &Login,
    headers: &http::HeaderMap,
) -> Result<SignedIn, String> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization header")?;
    let now = chrono::Utc::now();
    let mut fresh = false;
    loop {
        let jwks = {
            let mut cached = shared.jwks.lock().await;
            if cached.is_none() || fresh {
                *cached = Some(login.jwks().await.map_err(|e| e.to_string())?);
            }
            cached.clone().expect("just read")
        };
        match rollback_core::oidc::validate(token, &jwks, &login.config, now) {
            Ok(claims) => {
                return Ok(SignedIn {
                    claims: claims.into_raw(),
                });
            }
            Err(TokenError::UnknownKid(_)) if !fresh => fresh = true,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// API Gateway's answer when its JWT authorizer refuses a request.
fn unauthorized() -> Response {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::WWW_AUTHENTICATE, "Bearer")
        .body(Body::from(r#"{"message":"Unauthorized"}"#))
        .expect("static response")
}
