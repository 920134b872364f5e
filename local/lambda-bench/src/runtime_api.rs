//! A minimal Lambda Runtime API (the `2018-06-01` interface a custom runtime polls), on
//! loopback, enough for `lambda_runtime` 1.x and a plain urllib loop:
//!
//! - `GET  /2018-06-01/runtime/invocation/next` long-polls until an event is queued, and
//!   answers with the headers `lambda_runtime` reads (`Lambda-Runtime-Aws-Request-Id` and
//!   `Lambda-Runtime-Deadline-Ms`, which it requires; the function ARN and trace id, which
//!   it copies into the context);
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `/error`;
//! - `POST /2018-06-01/runtime/init/error`.
//!
//! Every request is reported as an [`Event`] with the instant it arrived, which is what the
//! cold-start measurement reads.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

const PREFIX: &str = "/2018-06-01/runtime";
/// What `AWS_LAMBDA_FUNCTION_TIMEOUT` would be; only used for the deadline header.
const DEADLINE: Duration = Duration::from_secs(900);

/// One queued invocation.
#[derive(Debug, Clone)]
struct Invocation {
    request_id: String,
    payload: Bytes,
}

/// What the function did, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A `GET …/invocation/next` arrived (before any event is handed out).
    NextPolled { at: Instant },
    /// `POST …/invocation/{id}/response`.
    Response {
        request_id: String,
        body: Bytes,
        at: Instant,
    },
    /// `POST …/invocation/{id}/error`; `error_type` is the body's `errorType`.
    Error {
        request_id: String,
        error_type: String,
        body: Bytes,
        at: Instant,
    },
    /// `POST …/init/error`.
    InitError { error_type: String, body: Bytes },
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("could not listen on 127.0.0.1: {0}")]
    Bind(std::io::Error),
}

struct Shared {
    /// The long poll takes the receiver for as long as it waits; a poll dropped by a dying
    /// client releases it without losing the queued invocation.
    queue: Mutex<mpsc::UnboundedReceiver<Invocation>>,
    events: mpsc::UnboundedSender<Event>,
    function_arn: String,
    /// Request ids handed out and not yet answered, so a stray id is refused like Lambda does.
    open: StdMutex<HashSet<String>>,
}

/// The server; stops accepting when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    enqueue: mpsc::UnboundedSender<Invocation>,
    events: mpsc::UnboundedReceiver<Event>,
    accept: JoinHandle<()>,
    next_id: AtomicU64,
}

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn start(function_name: &str) -> Result<RuntimeApi, RuntimeApiError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(RuntimeApiError::Bind)?;
        let addr = listener.local_addr().map_err(RuntimeApiError::Bind)?;
        let (enqueue, queue) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            events: events_tx,
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            open: StdMutex::new(HashSet::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(RuntimeApi {
            addr,
            shared,
            enqueue,
            events,
            accept,
            next_id: AtomicU64::new(1),
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API` (`host:port`, no scheme, as Lambda sets it).
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues an invocation for the next `/next`; returns its request id.
    pub fn invoke(&self, payload: &serde_json::Value) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("00000000-0000-4000-8000-{n:012}");
        self.shared
            .open
            .lock()
            .expect("open ids")
            .insert(request_id.clone());
        // The receiver lives in `shared`, which `self` keeps alive: the send cannot fail.
        let _ = self.enqueue.send(Invocation {
            request_id: request_id.clone(),
            payload: Bytes::from(payload.to_string()),
        });
        request_id
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Runtime clients send small requests and wait: no Nagle delay on the answers.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(&shared, req).await) }
            });
            // A client killed mid-poll just closes its connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return status(StatusCode::NOT_FOUND, "unknown path");
    };
    match (method, rest) {
        (Method::GET, "/invocation/next") => {
            let _ = shared.events.send(Event::NextPolled { at });
            next(shared).await
        }
        (Method::POST, "/init/error") => {
            let body = read_body(req).await;
            let error_type = error_type(&body);
            let _ = shared.events.send(Event::InitError { error_type, body });
            accepted()
        }
        (Method::POST, rest) if rest.starts_with("/invocation/") => {
            let tail = &rest["/invocation/".len()..];
            let (request_id, outcome) = match tail.rsplit_once('/') {
                Some((id, kind @ ("response" | "error"))) => (id.to_owned(), kind),
                _ => return status(StatusCode::NOT_FOUND, "unknown path"),
            };
            let known = shared.open.lock().expect("open ids").remove(&request_id);
            if !known {
                return status(
                    StatusCode::BAD_REQUEST,
                    "unknown or already answered request id",
                );
            }
            let body = read_body(req).await;
            let event = if outcome == "response" {
                Event::Response {
                    request_id,
                    body,
                    at: Instant::now(),
                }
            } else {
                Event::Error {
                    request_id,
                    error_type: error_type(&body),
                    body,
                    at: Instant::now(),
                }
            };
            let _ = shared.events.send(event);
            accepted()
        }
        _ => status(StatusCode::NOT_FOUND, "unknown path"),
    }
}

/// The long poll: waits for an invocation as long as the client keeps the connection.
async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    let mut queue = shared.queue.lock().await;
    let Some(invocation) = queue.recv().await else {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "the server is stopping");
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + DEADLINE;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &invocation.request_id)
        .header(
            "lambda-runtime-deadline-ms",
            deadline.as_millis().to_string(),
        )
        .header("lambda-runtime-invoked-function-arn", &shared.function_arn)
        .header(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
        )
        .body(Full::new(invocation.payload))
        .expect("static response parts")
}

async fn read_body(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

/// `errorType` from a Diagnostic body, as Lambda reports it.
fn error_type(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn accepted() -> Response<Full<Bytes>> {
    status(StatusCode::ACCEPTED, "OK")
}

fn status(code: StatusCode, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({ "status": message }).to_string(),
        )))
        .expect("static response parts")
}
