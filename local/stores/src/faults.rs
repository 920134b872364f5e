//! Faults a test injects into the stores' answers, to prove the mobile function looks at the
//! store after a failed call before it reports anything: a throttle before the call is
//! carried out, a server error after, and an answer lost after (the connection breaks while
//! the answer is sent).

use std::io;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Shared;
use std::sync::Arc;

/// What happens to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// 429 before the store does anything.
    Throttle,
    /// The store carries the call out, then answers 503.
    ErrorAfter,
    /// The store carries the call out, then the connection breaks mid-answer.
    AnswerLostAfter,
}

/// One injected fault: the next `remaining` requests with this method whose path contains
/// `path_contains` get `fault`.
#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    pub(crate) method: String,
    pub(crate) path_contains: String,
    pub(crate) fault: StoreFault,
    pub(crate) remaining: usize,
}

/// The middleware: takes the first matching rule (one use of it) and applies it.
pub(crate) async fn inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let fault = {
        let mut stores = shared.stores();
        let path = request.uri().path();
        stores
            .faults
            .iter_mut()
            .find(|r| {
                r.remaining > 0
                    && r.method == request.method().as_str()
                    && path.contains(&r.path_contains)
            })
            .map(|rule| {
                rule.remaining -= 1;
                rule.fault
            })
    };
    match fault {
        None => next.run(request).await,
        Some(StoreFault::Throttle) => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(
                json!({"error": {"code": 429, "message": "Rate limit exceeded (injected)",
                                        "status": "RESOURCE_EXHAUSTED"}}),
            ),
        )
            .into_response(),
        Some(StoreFault::ErrorAfter) => {
            let _carried_out = next.run(request).await;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": {"code": 503, "message": "The service is currently unavailable (injected after the call was carried out)",
                                            "status": "UNAVAILABLE"}})),
            )
                .into_response()
        }
        Some(StoreFault::AnswerLostAfter) => {
            let _carried_out = next.run(request).await;
            // Headers go out, then the body fails: the server breaks the connection.
            let broken = futures::stream::once(async {
                Err::<Bytes, io::Error>(io::Error::other("answer lost (injected)"))
            });
            Response::new(Body::from_stream(broken))
        }
    }
}
