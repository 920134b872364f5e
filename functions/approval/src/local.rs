//! The approval page on a local port (drills, browser tests): the same handler as the
//! Lambda, behind a small axum server.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

use crate::{MAX_BODY, Services};

/// Binds `addr` (use port 0 for a free port), serves in the background, and returns the
/// bound address. The server lives as long as the runtime it was spawned on.
pub async fn serve_local(
    addr: SocketAddr,
    services: Services,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let shared = Arc::new(services);
    let app = axum::Router::new().fallback(any).with_state(shared);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "local approval server stopped");
        }
    });
    Ok((bound, task))
}

async fn any(State(shared): State<Arc<Services>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY + 1).await {
        Ok(bytes) => bytes.to_vec(),
        // Over the limit: let the handler answer 413.
        Err(_) => vec![0; MAX_BODY + 1],
    };
    let response = crate::handle_request(&shared, http::Request::from_parts(parts, body)).await;
    response.map(Body::from)
}
