//! The HTTP side: accept loop, per-request decision, forwarding to moto, fault answers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderName};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::iam::{self, Check, IamChecker};
use crate::protocol::{RequestInfo, access_denied_answer, error_answer};
use crate::record::RequestRecord;
use crate::schedule::{FaultKind, FaultSchedule};

/// Largest request body accepted (AWS bodies here are small); larger ones get a 413.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Largest upstream answer passed on.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;
/// Bound on one forwarded call, so a stuck moto cannot hold a connection forever.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) type UpstreamClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) struct State {
    pub schedule: FaultSchedule,
    pub log: Vec<RequestRecord>,
    /// Index of `log[0]`: records taken out of the log keep their indices unique.
    pub base: u64,
    /// Calls the IAM check refused, in arrival order.
    pub iam_violations: Vec<iam::Violation>,
    /// The policy actions allowed calls used, per function.
    pub iam_coverage: iam::Coverage,
}

pub(crate) struct Shared {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub upstream: String,
    pub client: UpstreamClient,
    pub state: Mutex<State>,
    /// The functions' roles; `None`: no IAM check.
    pub iam: Option<Arc<IamChecker>>,
}

impl Shared {
    pub fn new(upstream: String, schedule: FaultSchedule, iam: Option<Arc<IamChecker>>) -> Shared {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.set_nodelay(true);
        Shared {
            upstream,
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(32)
                .build(connector),
            state: Mutex::new(State {
                schedule,
                log: Vec::new(),
                base: 0,
                iam_violations: Vec::new(),
                iam_coverage: iam::Coverage::new(),
            }),
            iam,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the log with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, index: u64, f: impl FnOnce(&mut RequestRecord)) {
        let mut state = self.lock();
        let position = index.checked_sub(state.base);
        if let Some(record) = position.and_then(|p| state.log.get_mut(p as usize)) {
            f(record);
        }
    }
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the fault schedule")]
struct DropConnection;

type Answer = Result<Response<Full<Bytes>>, DropConnection>;

/// Accepts until `shutdown` fires; connection tasks live in a JoinSet so that returning
/// (or the runtime shutting down) cancels every one of them, slow answers included.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => return,
            // Reap finished connections so the set does not grow over a long drill.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!("accept failed: {e}");
                continue;
            }
        };
        let shared = shared.clone();
        connections.spawn(serve_connection(stream, peer, shared));
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { handle(&shared, req).await }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            let info = RequestInfo::parse(&parts.method, &parts.uri, &parts.headers, &[]);
            let index = record(&mut shared.lock(), info, None);
            shared.update(index, |r| r.client_status = Some(413));
            return Ok(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body over 16 MiB",
            ));
        }
        // The client went away mid-body: nothing to answer.
        Err(_) => return Err(DropConnection),
    };
    let info = RequestInfo::parse(&parts.method, &parts.uri, &parts.headers, &body);
    // moto's own control API (reset, config) is never faulted.
    let control = info.path.starts_with("/moto-api");
    if !control && let Some(violation) = check_iam(shared, &info, &parts, &body).await {
        return refuse(shared, &info, &parts, violation);
    }
    let (index, fault, slow_delay) = {
        let mut state = shared.lock();
        let fault = if control {
            None
        } else {
            state.schedule.decide(&info)
        };
        let slow_delay = state.schedule.slow_delay();
        (record(&mut state, info.clone(), fault), fault, slow_delay)
    };
    if let Some(kind) = fault {
        tracing::debug!(index, operation = %info.operation, %kind, "injecting fault");
    }
    match fault {
        None => {
            let answer = forward(shared, index, &parts, body).await;
            finish(shared, index, answer)
        }
        Some(kind @ (FaultKind::Throttle | FaultKind::InternalError | FaultKind::Unavailable)) => {
            finish(
                shared,
                index,
                Ok(error_response(&info, kind, index, &parts)),
            )
        }
        Some(FaultKind::ErrorAfterForward) => {
            let _ = forward(shared, index, &parts, body).await;
            let response = error_response(&info, FaultKind::InternalError, index, &parts);
            finish(shared, index, Ok(response))
        }
        Some(FaultKind::Slow) => {
            let answer = forward(shared, index, &parts, body).await;
            tokio::time::sleep(slow_delay).await;
            finish(shared, index, answer)
        }
        Some(FaultKind::Drop) => Err(DropConnection),
        Some(FaultKind::DropAfterForward) => {
            let _ = forward(shared, index, &parts, body).await;
            Err(DropConnection)
        }
    }
}

/// AWS's access-denied answer to a call the caller's role refuses; the refusal is logged
/// with the request and kept among the IAM violations.
fn refuse(
    shared: &Shared,
    info: &RequestInfo,
    parts: &http::request::Parts,
    violation: iam::Violation,
) -> Answer {
    let index = record(&mut shared.lock(), info.clone(), None);
    tracing::debug!(index, "{violation}");
    let message = format!(
        "User: arn:aws:sts::{account}:assumed-role/{role}/rollback-{function} \
         is not authorized to perform: {action} on resource: {resource} because no \
         identity-based policy allows the {action} action",
        account = iam::LOCAL_ACCOUNT,
        function = violation.function,
        role = violation.role,
        action = violation.action,
        resource = violation.resource
    );
    let request_id = format!("00000000-0000-4000-8000-{index:012x}");
    let rendered = access_denied_answer(
        info.protocol,
        info.service.as_deref(),
        &message,
        &request_id,
        parts.headers.get(CONTENT_TYPE),
    );
    {
        let mut state = shared.lock();
        if let Some(position) = index.checked_sub(state.base)
            && let Some(r) = state.log.get_mut(position as usize)
        {
            r.iam_denied = Some(violation.to_string());
        }
        state.iam_violations.push(violation);
    }
    finish(shared, index, Ok(rendered_response(rendered)))
}

/// The error answer of `kind` in the request's protocol.
fn error_response(
    info: &RequestInfo,
    kind: FaultKind,
    index: u64,
    parts: &http::request::Parts,
) -> Response<Full<Bytes>> {
    let request_id = format!("00000000-0000-4000-8000-{index:012x}");
    let rendered = error_answer(
        info.protocol,
        kind,
        &request_id,
        parts.headers.get(CONTENT_TYPE),
    );
    rendered_response(rendered)
}

fn rendered_response(rendered: crate::protocol::ErrorAnswer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(rendered.body)));
    *response.status_mut() = rendered.status;
    for (name, value) in rendered.headers {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    response
}

/// The IAM check of one request: `Some(violation)` when the caller's role refuses it. Allowed
/// calls record the policy actions they used.
async fn check_iam(
    shared: &Shared,
    info: &RequestInfo,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Option<iam::Violation> {
    let checker = shared.iam.as_ref()?;
    let role = checker.role_for_key(info.access_key.as_deref()?)?;
    let authz = iam::authorization(info, &parts.uri, body, checker.account())?;
    let mut tags = std::collections::BTreeMap::new();
    if let Some(action) = &authz.action
        && checker.needs_resource_tags(role, action)
    {
        for resource in &authz.resources {
            let found = resource_tags(shared, resource, info.region.as_deref()).await;
            tags.insert(resource.clone(), found);
        }
    }
    let context = |resource: &str| -> Vec<(String, String)> {
        tags.get(resource)
            .map(|found: &Vec<(String, String)>| {
                found
                    .iter()
                    .map(|(k, v)| (format!("aws:ResourceTag/{k}"), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let also = iam::request::tag_on_create(info, &authz);
    for authz in std::iter::once(&authz).chain(also.as_ref()) {
        match checker.check(role, authz, &context) {
            Check::Unchecked => {}
            Check::Allowed { function, used } => {
                shared
                    .lock()
                    .iam_coverage
                    .entry(function)
                    .or_default()
                    .extend(used);
            }
            Check::Denied(violation) => return Some(violation),
        }
    }
    None
}

/// An RDS resource's tags, asked of moto (`ListTagsForResource`); none for other services
/// or when moto does not know the resource.
async fn resource_tags(shared: &Shared, arn: &str, region: Option<&str>) -> Vec<(String, String)> {
    if !arn.starts_with("arn:aws:rds:") {
        return Vec::new();
    }
    let region = region.unwrap_or("us-east-1");
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "ListTagsForResource")
        .append_pair("Version", "2014-10-31")
        .append_pair("ResourceName", arn)
        .finish();
    let Ok(uri) = format!("{}/", shared.upstream).parse::<Uri>() else {
        return Vec::new();
    };
    let Ok(request) = Request::post(uri)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            http::header::AUTHORIZATION,
            format!(
                "AWS4-HMAC-SHA256 Credential=fault-proxy/20250101/{region}/rds/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .body(Full::new(Bytes::from(body)))
    else {
        return Vec::new();
    };
    let call = async {
        let response = shared.client.request(request).await.ok()?;
        let bytes = Limited::new(response.into_body(), MAX_UPSTREAM_BODY)
            .collect()
            .await
            .ok()?
            .to_bytes();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    };
    let Ok(Some(xml)) = tokio::time::timeout(UPSTREAM_TIMEOUT, call).await else {
        return Vec::new();
    };
    let field = |tag: &str, name: &str| {
        let open = format!("<{name}>");
        let start = tag.find(&open)? + open.len();
        let end = tag[start..].find(&format!("</{name}>"))?;
        Some(tag[start..start + end].to_owned())
    };
    xml.split("<Tag>")
        .skip(1)
        .filter_map(|tag| Some((field(tag, "Key")?, field(tag, "Value").unwrap_or_default())))
        .collect()
}

fn record(state: &mut State, request: RequestInfo, fault: Option<FaultKind>) -> u64 {
    let index = state.base + state.log.len() as u64;
    state.log.push(RequestRecord {
        index,
        request,
        fault,
        upstream_status: None,
        client_status: None,
        upstream_error: None,
        iam_denied: None,
    });
    index
}

fn finish(shared: &Shared, index: u64, answer: Answer) -> Answer {
    if let Ok(response) = &answer {
        let status = response.status().as_u16();
        shared.update(index, |r| r.client_status = Some(status));
    }
    answer
}

/// Sends the request to moto and buffers its answer; a failure becomes a 502 the SDK
/// treats as transient, and is recorded.
async fn forward(shared: &Shared, index: u64, parts: &http::request::Parts, body: Bytes) -> Answer {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let uri: Uri = match format!("{}{path_and_query}", shared.upstream).parse() {
        Ok(uri) => uri,
        Err(e) => return Ok(upstream_failed(shared, index, format!("bad URI: {e}"))),
    };
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    // The original Host stays: moto builds URLs in its answers from it, and they should
    // point back at the proxy.
    *request.headers_mut() = without_hop_by_hop(&parts.headers);
    let call = async {
        let response = shared.client.request(request).await.map_err(|e| {
            let mut text = e.to_string();
            if let Some(source) = std::error::Error::source(&e) {
                text = format!("{text}: {source}");
            }
            text
        })?;
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, MAX_UPSTREAM_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading moto's answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((parts, bytes))
    };
    let (parts, bytes) = match tokio::time::timeout(UPSTREAM_TIMEOUT, call).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Ok(upstream_failed(shared, index, e)),
        Err(_) => {
            let message = format!("no answer within {UPSTREAM_TIMEOUT:?}");
            return Ok(upstream_failed(shared, index, message));
        }
    };
    shared.update(index, |r| r.upstream_status = Some(parts.status.as_u16()));
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = parts.status;
    *response.headers_mut() = without_hop_by_hop(&parts.headers);
    Ok(response)
}

fn upstream_failed(shared: &Shared, index: u64, message: String) -> Response<Full<Bytes>> {
    tracing::warn!(index, "forwarding to moto failed: {message}");
    shared.update(index, |r| r.upstream_error = Some(message.clone()));
    plain(StatusCode::BAD_GATEWAY, &format!("fault proxy: {message}"))
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Connection-level headers describe one hop and must not be passed on (RFC 9110 §7.6.1).
fn without_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    const HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    let mut out = headers.clone();
    for name in HOP {
        out.remove(name);
    }
    out
}
