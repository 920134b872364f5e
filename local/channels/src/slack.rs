//! A local Slack incoming webhook: one secret URL, Slack's answers, every accepted message kept.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Authorized, Call, Fault, Recorder, lock, random_id, record};

/// Block Kit's limits the receiver enforces (<https://api.slack.com/reference/block-kit/blocks>).
pub const MAX_BLOCKS: usize = 50;
pub const MAX_HEADER_CHARS: usize = 150;
pub const MAX_SECTION_CHARS: usize = 3000;
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Known block types; anything else is `invalid_blocks`.
const BLOCK_TYPES: &[&str] = &[
    "header",
    "section",
    "context",
    "divider",
    "actions",
    "image",
    "rich_text",
];

struct Shared {
    /// `/services/T…/B…/<secret>`.
    path: String,
    base: String,
    messages: Mutex<Vec<Value>>,
    recorder: Arc<Recorder>,
}

/// A running local incoming webhook on 127.0.0.1; dropping it stops the server.
pub struct SlackWebhook {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for SlackWebhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SlackWebhook {
    /// A webhook with a fresh secret path.
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound.
    pub async fn start() -> SlackWebhook {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("the Slack webhook binds a free port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        let recorder = Arc::new(Recorder::default());
        let shared = Arc::new(Shared {
            path: format!("/services/T0LOCAL/B0LOCAL/{}", random_id(24)),
            base: format!("http://{addr}"),
            messages: Mutex::new(Vec::new()),
            recorder: recorder.clone(),
        });
        let app = Router::new()
            .fallback(receive)
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(recorder, record));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SlackWebhook { shared, addr, task }
    }

    /// The webhook URL (a secret: whoever holds it can post).
    pub fn url(&self) -> String {
        format!("{}{}", self.shared.base, self.shared.path)
    }

    /// `http://127.0.0.1:PORT`: where it is, without the secret path.
    pub fn base(&self) -> &str {
        &self.shared.base
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The messages Slack accepted (answered `ok`), in order.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.shared.messages).clone()
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.recorder.calls()
    }

    /// The next `times` POSTs get `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        self.shared
            .recorder
            .inject("POST", "/services/", fault, times);
    }
}

fn answer(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    response.extensions_mut().insert(Authorized);
    response
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.uri().path() != shared.path {
        return (StatusCode::NOT_FOUND, "no_service").into_response();
    }
    if request.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
    }
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(&bytes) else {
        return answer(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let text = message.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = message.get("blocks");
    if text.trim().is_empty() && blocks.is_none() {
        return answer(StatusCode::BAD_REQUEST, "no_text");
    }
    if let Some(blocks) = blocks
        && !valid_blocks(blocks)
    {
        return answer(StatusCode::BAD_REQUEST, "invalid_blocks");
    }
    lock(&shared.messages).push(Value::Object(message));
    answer(StatusCode::OK, "ok")
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn valid_blocks(blocks: &Value) -> bool {
    let Some(blocks) = blocks.as_array() else {
        return false;
    };
    blocks.len() <= MAX_BLOCKS
        && blocks.iter().all(|b| {
            let kind = b["type"].as_str().unwrap_or("");
            BLOCK_TYPES.contains(&kind)
                && match kind {
                    "header" => {
                        b["text"]["type"] == "plain_text"
                            && (1..=MAX_HEADER_CHARS).contains(&chars(&b["text"]["text"]))
                    }
                    "section" => {
                        matches!(b["text"]["type"].as_str(), Some("mrkdwn" | "plain_text"))
                            && (1..=MAX_SECTION_CHARS).contains(&chars(&b["text"]["text"]))
                    }
                    "context" => b["elements"].as_array().is_some_and(|e| {
                        (1..=MAX_CONTEXT_ELEMENTS).contains(&e.len())
                            && e.iter().all(|e| {
                                matches!(
                                    e["type"].as_str(),
                                    Some("mrkdwn" | "plain_text" | "image")
                                )
                            })
                    }),
                    _ => true,
                }
        })
}
