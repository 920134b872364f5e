//! Local stand-ins for the notice channels (issue 17), neither of which has an emulator:
//!
//! - [`StatuspageServer`]: Atlassian Statuspage's REST API v1 for incidents
//!   (<https://developer.statuspage.io/>): `GET /v1/pages/{page_id}/incidents[/unresolved]`,
//!   `POST /v1/pages/{page_id}/incidents`, `GET|PATCH /v1/pages/{page_id}/incidents/{id}`,
//!   `{"incident": {"name", "status", "body", "component_ids", "components", …}}`, with the
//!   API key as `Authorization: OAuth <key>`. Incidents keep their updates (newest first, as
//!   Statuspage lists them) and mark the page's components.
//! - [`SlackWebhook`]: one Slack incoming webhook (`POST /services/T…/B…/<secret>`), answering
//!   `ok`, or Slack's `400 invalid_payload` / `no_text` / `invalid_blocks` and
//!   `404 no_service` (<https://api.slack.com/messaging/webhooks#handling_errors>).
//!
//! Both bind a free port on 127.0.0.1, record every call (method, path, status, JSON body) for
//! tests to read back, and take injected faults ([`Fault`]: a throttle before the call, a
//! server error or a lost answer after it was applied). Never laxer than the real services:
//! what they refuse is refused here; where their exact wording is not documented, the refusal
//! is all the same and its wording local.
//!
//! Tests and the drill start them in-process; `cargo test -p rollback-channels` needs no other
//! service.

// The handlers build their refusals as the services' HTTP answers (`Response`) and return them
// as they are: boxing them would buy nothing on a loopback test server (as in local/stores).
#![allow(clippy::result_large_err)]

mod slack;
mod statuspage;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;

pub use slack::SlackWebhook;
pub use statuspage::StatuspageServer;

/// One request a server received, and how it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub status: u16,
    /// The request body, when it was JSON.
    pub body: Option<Value>,
    /// Whether it carried the right credentials (Statuspage: the API key).
    pub authorized: bool,
    /// The fault injected into this call, if any.
    pub fault: Option<Fault>,
}

/// What happens to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 before anything is done.
    Throttle,
    /// Carried out, then answered 503.
    ErrorAfter,
    /// Carried out, then the connection breaks while the answer is sent.
    AnswerLostAfter,
}

#[derive(Debug, Clone)]
struct FaultRule {
    method: String,
    path_contains: String,
    fault: Fault,
    remaining: usize,
}

/// The calls and faults of one server.
#[derive(Default)]
pub(crate) struct Recorder {
    calls: Mutex<Vec<Call>>,
    faults: Mutex<Vec<FaultRule>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the handler saw the right credentials (set by the handlers on the response).
#[derive(Clone, Copy)]
pub(crate) struct Authorized;

const MAX_BODY: usize = 1 << 20;

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    fn inject(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        lock(&self.faults).push(FaultRule {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            fault,
            remaining: times,
        });
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        lock(&self.faults)
            .iter_mut()
            .find(|r| r.remaining > 0 && r.method == method && path.contains(&r.path_contains))
            .map(|r| {
                r.remaining -= 1;
                r.fault
            })
    }
}

/// The outermost layer: records the call (its JSON body read whole, at most 1 MiB) and applies
/// an injected fault around the handler.
pub(crate) async fn record(
    State(recorder): State<Arc<Recorder>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let call = Call {
                method,
                path,
                status: 413,
                body: None,
                authorized: false,
                fault: None,
            };
            lock(&recorder.calls).push(call);
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
    };
    let body = serde_json::from_slice::<Value>(&bytes).ok();
    let request = Request::from_parts(parts, Body::from(bytes));
    let fault = recorder.take_fault(&method, &path);
    let response = match fault {
        Some(Fault::Throttle) => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({"error": "Rate limit exceeded (injected)"})),
        )
            .into_response(),
        _ => next.run(request).await,
    };
    let authorized = response.extensions().get::<Authorized>().is_some();
    let status = match fault {
        Some(Fault::ErrorAfter) => 503,
        _ => response.status().as_u16(),
    };
    lock(&recorder.calls).push(Call {
        method,
        path,
        status,
        body,
        authorized,
        fault,
    });
    match fault {
        Some(Fault::ErrorAfter) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": "Service unavailable (injected after the call was carried out)"})),
        )
            .into_response(),
        Some(Fault::AnswerLostAfter) => {
            // Headers go out, then the body fails: the connection breaks mid-answer.
            let broken = futures::stream::once(async {
                Err::<Bytes, io::Error>(io::Error::other("answer lost (injected)"))
            });
            Response::new(Body::from_stream(broken))
        }
        _ => response,
    }
}

/// A random id of `len` lowercase letters and digits (Statuspage's ids are 12 of them).
pub(crate) fn random_id(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}
