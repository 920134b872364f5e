//! HTTP(S) serving: connection handling, authentication, fault injection, routing to the
//! REST layer, and watch streams.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};

use crate::api::{self, Part, WriteOptions};
use crate::auth::{AuthConfig, percent_decode};
use crate::discovery;
use crate::error::{ApiError, ApiResult};
use crate::fault::{self, Fault, FaultKind};
use crate::meta::{self, FieldSelector, Selector};
use crate::patch::PatchKind;
use crate::protobuf;
use crate::rbac::{self, Attributes, Decision, Rbac, UserInfo};
use crate::store::{EventType, Kind, Store, WatchEvent};
use crate::table;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Watches without timeoutSeconds end after this (the real server picks 30–60 minutes).
const DEFAULT_WATCH_SECONDS: u64 = 1800;
const REQUEST_LOG_LEN: usize = 2000;

/// One served request, as recorded for tests ("what did kubectl send?").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    pub content_type: Option<String>,
    pub status: u16,
    /// Request body, for writes (PATCH/PUT/POST), lossily as UTF-8.
    pub body: Option<String>,
}

pub struct Shared {
    pub store: Mutex<Store>,
    pub auth: AuthConfig,
    /// RBAC rules; None = every authenticated request is allowed.
    pub rbac: Mutex<Option<Rbac>>,
    pub faults: Mutex<Vec<Fault>>,
    pub requests: Mutex<VecDeque<RequestRecord>>,
    pub shutdown: watch::Receiver<bool>,
    /// host:port the server listens on (for discovery's serverAddressByClientCIDRs).
    pub address: String,
}

/// Lock ignoring poisoning: a panicking test thread must not wedge the server for others.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accept connections until shutdown; each connection is served on its own task.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut shutdown = shared.shutdown.clone();
            let serve = async {
                match tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(s) => serve_connection(s, shared.clone()).await,
                        Err(e) => tracing::debug!("TLS handshake failed: {e}"),
                    },
                    None => serve_connection(stream, shared.clone()).await,
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: S,
    shared: Arc<Shared>,
) {
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
    {
        tracing::debug!("connection ended: {e}");
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let mut resp = Response::new(full(serde_json::to_vec(value).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = json_response(err.code, &err.to_status());
    if err.code == 429 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error_response(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                "request body too large",
            ));
        }
    };

    let served = serve(&shared, &method, &path, &parts.uri, &parts.headers, &bytes);
    let response = with_injected_fault(&shared, &method, &path, served).await;

    let record = RequestRecord {
        method: method.to_string(),
        uri,
        content_type,
        status: response.status().as_u16(),
        body: (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned()),
    };
    let mut log = lock(&shared.requests);
    if log.len() == REQUEST_LOG_LEN {
        log.pop_front();
    }
    log.push_back(record);
    response
}

/// Runs `served` (the request, not yet started) unless a fault injected for it answers
/// instead: a status before it runs, or a lost answer after it ran; a stall delays it.
async fn with_injected_fault(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    served: impl Future<Output = Response<Body>>,
) -> Response<Body> {
    let injected = fault::take(&mut lock(&shared.faults), method.as_str(), path);
    let lost_answer = match injected {
        Some(FaultKind::Status(code)) => {
            let err = ApiError::new(
                code,
                fault::reason_for(code),
                format!("injected fault: {code}"),
            );
            return error_response(&err);
        }
        Some(FaultKind::Stall(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(FaultKind::AfterServe(code)) => Some(code),
        None => None,
    };
    let response = served.await;
    match lost_answer {
        Some(code) => error_response(&ApiError::new(
            code,
            fault::reason_for(code),
            format!("injected fault: {code} after the request was served"),
        )),
        None => response,
    }
}

/// Authenticate, authorize and route one request.
async fn serve(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response<Body> {
    let query = parse_query(uri.query().unwrap_or(""));
    // system:public-info-viewer lets anyone, even unauthenticated, read these.
    let public = matches!(path, "/healthz" | "/livez" | "/readyz" | "/version");
    let user = if public {
        UserInfo::admin()
    } else {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match shared.auth.authenticate(auth) {
            Ok(user) => user,
            Err(e) => return error_response(&e),
        }
    };
    let attrs = Attributes::from_request(method.as_str(), path, &query);
    if let Some(rules) = lock(&shared.rbac).as_ref()
        && rules.authorize(&user, &attrs) == Decision::Deny
    {
        return error_response(&rbac::forbidden(&user, &attrs));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let req = Req {
        user: &user,
        method,
        path,
        query: &query,
        accept,
        content_type,
        body,
    };
    match route(shared, &req) {
        Ok(Reply::Json(code, v)) => json_response(code, &v),
        Ok(Reply::Text(t)) => {
            let mut resp = Response::new(full(t));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            resp
        }
        Ok(Reply::Watch(w)) => watch_response(shared, w),
        Err(e) => error_response(&e),
    }
}

struct Req<'a> {
    user: &'a UserInfo,
    method: &'a Method,
    path: &'a str,
    query: &'a BTreeMap<String, String>,
    accept: &'a str,
    content_type: &'a str,
    body: &'a Bytes,
}

impl Req<'_> {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }

    fn dry_run(&self) -> ApiResult<WriteOptions> {
        match self.q("dryRun") {
            None | Some("") => Ok(WriteOptions { dry_run: false }),
            Some("All") => Ok(WriteOptions { dry_run: true }),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dryRun value {other:?}: only \"All\" is supported"
            ))),
        }
    }

    fn json_body(&self) -> ApiResult<Value> {
        serde_json::from_slice(self.body).map_err(|e| {
            if self.content_type.contains("protobuf") {
                ApiError::unsupported_media_type(self.content_type)
            } else {
                ApiError::bad_request(format!("error decoding request body as JSON: {e}"))
            }
        })
    }

    fn selectors(&self) -> ApiResult<(Selector, FieldSelector)> {
        Ok((
            Selector::parse(self.q("labelSelector").unwrap_or(""))?,
            FieldSelector::parse(self.q("fieldSelector").unwrap_or(""))?,
        ))
    }

    fn is_watch(&self) -> bool {
        matches!(self.q("watch"), Some("true" | "1"))
    }
}

enum Reply {
    Json(u16, Value),
    Text(&'static str),
    Watch(WatchRequest),
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A read-only resource: GET answers it, any other method is refused.
fn get_only(req: &Req<'_>, reply: Value) -> ApiResult<Reply> {
    if req.method == Method::GET {
        Ok(Reply::Json(200, reply))
    } else {
        Err(ApiError::method_not_allowed(req.method.as_str(), req.path))
    }
}

/// Routes a request by its path: a flat table of the discovery documents, the core/v1
/// namespaces, pods and events, and the group/version/resource paths of the REST layer.
fn route(shared: &Arc<Shared>, req: &Req<'_>) -> ApiResult<Reply> {
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let get_only = |reply: Value| get_only(req, reply);
    match segments.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => Ok(Reply::Text("ok")),
        ["version"] => get_only(discovery::version()),
        ["api"] => get_only(discovery::api_versions(&shared.address)),
        ["api", "v1"] => get_only(discovery::core_v1_resources()),
        ["apis"] => get_only(discovery::api_group_list()),
        ["apis", "apps"] => get_only(discovery::apps_api_group()),
        ["apis", "apps", "v1"] => get_only(discovery::apps_v1_resources()),
        ["apis", "authorization.k8s.io"] => get_only(discovery::authorization_api_group()),
        ["apis", "authorization.k8s.io", "v1"] => get_only(discovery::authorization_v1_resources()),
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => {
            if req.method != Method::POST {
                return Err(ApiError::method_not_allowed(req.method.as_str(), req.path));
            }
            self_subject_access_review(shared, req)
        }
        ["api", "v1", "namespaces"] => get_only(namespace_list(shared)),
        ["api", "v1", "namespaces", ns] => get_only(namespace(ns)),
        ["api", "v1", resource @ ("pods" | "events")] => {
            pods_or_events(shared, req, resource, None)
        }
        [
            "api",
            "v1",
            "namespaces",
            ns,
            resource @ ("pods" | "events"),
        ] => pods_or_events(shared, req, resource, Some(ns)),
        ["api", "v1", "namespaces", ns, "pods", name] => get_only(pod(shared, ns, name)?),
        ["api", "v1", "namespaces", _, "events", name] => Err(ApiError::not_found("events", name)),
        ["apis", group] if discovery::custom_group(group).is_some() => {
            get_only(discovery::custom_api_group(group).unwrap_or_default())
        }
        ["apis", group, version] => {
            let resources = discovery::custom_resources(group, version)
                .ok_or_else(|| ApiError::path_not_found(req.path))?;
            get_only(resources)
        }
        ["apis", group, version, plural] => {
            let kind = Kind::from_path(group, version, plural)
                .ok_or_else(|| ApiError::path_not_found(req.path))?;
            collection(shared, req, kind, None)
        }
        ["apis", group, version, "namespaces", ns, plural, rest @ ..] => {
            let kind = Kind::from_path(group, version, plural)
                .ok_or_else(|| ApiError::path_not_found(req.path))?;
            namespaced(shared, req, kind, ns, rest)
        }
        // OpenAPI is not served: kubectl get/scale/rollout do not need it, and kubectl
        // treats a 404 here as "no schema" (client-side validation is then skipped).
        _ => Err(ApiError::path_not_found(req.path)),
    }
}

/// Every namespace an object is in, and `default`.
fn namespace_list(shared: &Arc<Shared>) -> Value {
    let store = lock(&shared.store);
    let mut names = store.namespaces();
    names.insert("default".into());
    let items: Vec<Value> = names.iter().map(|n| namespace(n)).collect();
    json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": items})
}

/// The pods (the simulation's, see `pods`) or events (which never happen here) of one
/// namespace or all. Watches on either stay empty.
fn pods_or_events(
    shared: &Arc<Shared>,
    req: &Req<'_>,
    resource: &str,
    ns: Option<&str>,
) -> ApiResult<Reply> {
    if req.is_watch() {
        return Ok(Reply::Watch(WatchRequest::empty(req)?));
    }
    let store = lock(&shared.store);
    let resource_version = store.resource_version().to_string();
    let (kind, items) = if resource == "pods" {
        let (labels, fields) = req.selectors()?;
        let items: Vec<Value> = crate::pods::list(&store, ns)
            .into_iter()
            .filter(|p| labels.matches(&meta::labels_of(p)) && fields.matches(p))
            .collect();
        ("PodList", items)
    } else {
        ("EventList", Vec::new())
    };
    get_only(
        req,
        json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": resource_version}, "items": items}),
    )
}

fn pod(shared: &Arc<Shared>, ns: &str, name: &str) -> ApiResult<Value> {
    let store = lock(&shared.store);
    crate::pods::list(&store, Some(ns))
        .into_iter()
        .find(|p| p.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| ApiError::not_found("pods", name))
}

/// `/apis/<group>/<version>/namespaces/<ns>/<plural>/...`: the collection, one object, or its
/// scale or status subresource.
fn namespaced(
    shared: &Arc<Shared>,
    req: &Req<'_>,
    kind: Kind,
    ns: &str,
    rest: &[&str],
) -> ApiResult<Reply> {
    match rest {
        [] => collection(shared, req, kind, Some(ns)),
        [name] => object(shared, req, kind, ns, name),
        [name, "scale"] if !kind.is_custom() => scale(shared, req, kind, ns, name),
        [name, "status"] if kind.has_status_subresource() => status(shared, req, kind, ns, name),
        _ => Err(ApiError::path_not_found(req.path)),
    }
}

/// `kubectl auth can-i`: the requester's own permission for the attributes in the spec,
/// decided by the same authorizer as every request.
fn self_subject_access_review(shared: &Arc<Shared>, req: &Req<'_>) -> ApiResult<Reply> {
    let mut review = if req.content_type.contains("protobuf") {
        protobuf::self_subject_access_review(req.body).map_err(ApiError::bad_request)?
    } else {
        req.json_body()?
    };
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let attrs = if let Some(r) = spec.get("resourceAttributes") {
        Attributes {
            verb: s(r, "verb"),
            resource_request: true,
            api_group: s(r, "group"),
            api_version: s(r, "version"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            namespace: s(r, "namespace"),
            name: s(r, "name"),
            ..Default::default()
        }
    } else if let Some(n) = spec.get("nonResourceAttributes") {
        Attributes {
            verb: s(n, "verb"),
            path: s(n, "path"),
            ..Default::default()
        }
    } else {
        return Err(ApiError::invalid_review(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    let decision = match lock(&shared.rbac).as_ref() {
        Some(rules) => rules.authorize(req.user, &attrs),
        None => Decision::Allow("authorization is off (AlwaysAllow)".into()),
    };
    let status = match decision {
        Decision::Allow(reason) => json!({"allowed": true, "reason": reason}),
        Decision::Deny => json!({"allowed": false}),
    };
    review["status"] = status;
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    Ok(Reply::Json(201, review))
}

fn namespace(name: &str) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn render(req: &Req<'_>, kind: Kind, objects: Vec<Value>, rv: String, single: bool) -> Value {
    if table::wants_table(req.accept) {
        return table::table(
            kind,
            &objects,
            &rv,
            req.q("includeObject").unwrap_or("Metadata"),
        );
    }
    if single {
        return objects.into_iter().next().unwrap_or(Value::Null);
    }
    json!({"kind": format!("{}List", kind.kind()), "apiVersion": kind.api_version(), "metadata": {"resourceVersion": rv}, "items": objects})
}

fn collection(
    shared: &Arc<Shared>,
    req: &Req<'_>,
    kind: Kind,
    ns: Option<&str>,
) -> ApiResult<Reply> {
    match *req.method {
        Method::GET => {
            let (labels, fields) = req.selectors()?;
            if req.is_watch() {
                return Ok(Reply::Watch(WatchRequest::new(
                    req,
                    Some(kind),
                    ns,
                    labels,
                    fields,
                )?));
            }
            let store = lock(&shared.store);
            let list = api::list(&store, kind, ns, &labels, &fields);
            let items = list["items"].as_array().cloned().unwrap_or_default();
            Ok(Reply::Json(
                200,
                render(
                    req,
                    kind,
                    items,
                    store.resource_version().to_string(),
                    false,
                ),
            ))
        }
        Method::POST => {
            let ns = ns.ok_or_else(|| ApiError::method_not_allowed("POST", req.path))?;
            let body = req.json_body()?;
            let created = api::create(&mut lock(&shared.store), kind, ns, body, req.dry_run()?)?;
            Ok(Reply::Json(201, created))
        }
        _ => Err(ApiError::method_not_allowed(req.method.as_str(), req.path)),
    }
}

fn object(
    shared: &Arc<Shared>,
    req: &Req<'_>,
    kind: Kind,
    ns: &str,
    name: &str,
) -> ApiResult<Reply> {
    let mut store = lock(&shared.store);
    match *req.method {
        Method::GET => {
            let obj = api::get(&store, kind, ns, name)?;
            let rv = store.resource_version().to_string();
            Ok(Reply::Json(200, render(req, kind, vec![obj], rv, true)))
        }
        Method::PUT => Ok(Reply::Json(
            200,
            api::update(
                &mut store,
                kind,
                ns,
                name,
                req.json_body()?,
                Part::Main,
                req.dry_run()?,
            )?,
        )),
        Method::PATCH => {
            let pk = PatchKind::from_content_type(req.content_type)?;
            Ok(Reply::Json(
                200,
                api::patch(
                    &mut store,
                    kind,
                    ns,
                    name,
                    (pk, req.body),
                    Part::Main,
                    req.dry_run()?,
                )?,
            ))
        }
        Method::DELETE => {
            // DeleteOptions may come in the body (kubectl) or the query (kube-rs, curl).
            let opts: Value = if req.body.is_empty() {
                Value::Null
            } else {
                req.json_body()?
            };
            let policy = opts
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .or(req.q("propagationPolicy"))
                .unwrap_or("Background");
            let orphan =
                policy == "Orphan" || opts.get("orphanDependents") == Some(&Value::Bool(true));
            let mut wo = req.dry_run()?;
            if opts
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"))
            {
                wo.dry_run = true;
            }
            Ok(Reply::Json(
                200,
                api::delete(&mut store, kind, ns, name, orphan, wo)?,
            ))
        }
        _ => Err(ApiError::method_not_allowed(req.method.as_str(), req.path)),
    }
}

fn scale(
    shared: &Arc<Shared>,
    req: &Req<'_>,
    kind: Kind,
    ns: &str,
    name: &str,
) -> ApiResult<Reply> {
    let mut store = lock(&shared.store);
    match *req.method {
        Method::GET => Ok(Reply::Json(200, api::get_scale(&store, kind, ns, name)?)),
        Method::PUT => Ok(Reply::Json(
            200,
            api::update_scale(
                &mut store,
                kind,
                ns,
                name,
                &req.json_body()?,
                req.dry_run()?,
            )?,
        )),
        Method::PATCH => {
            let pk = PatchKind::from_content_type(req.content_type)?;
            Ok(Reply::Json(
                200,
                api::patch_scale(&mut store, kind, ns, name, pk, req.body, req.dry_run()?)?,
            ))
        }
        _ => Err(ApiError::method_not_allowed(req.method.as_str(), req.path)),
    }
}

fn status(
    shared: &Arc<Shared>,
    req: &Req<'_>,
    kind: Kind,
    ns: &str,
    name: &str,
) -> ApiResult<Reply> {
    let mut store = lock(&shared.store);
    match *req.method {
        Method::GET => Ok(Reply::Json(200, api::get(&store, kind, ns, name)?)),
        Method::PUT => Ok(Reply::Json(
            200,
            api::update(
                &mut store,
                kind,
                ns,
                name,
                req.json_body()?,
                Part::Status,
                req.dry_run()?,
            )?,
        )),
        Method::PATCH => {
            let pk = PatchKind::from_content_type(req.content_type)?;
            Ok(Reply::Json(
                200,
                api::patch(
                    &mut store,
                    kind,
                    ns,
                    name,
                    (pk, req.body),
                    Part::Status,
                    req.dry_run()?,
                )?,
            ))
        }
        _ => Err(ApiError::method_not_allowed(req.method.as_str(), req.path)),
    }
}

/// A parsed watch request. `kind: None` is a watch on a kind that never has objects.
pub struct WatchRequest {
    kind: Option<Kind>,
    namespace: Option<String>,
    labels: Selector,
    fields: FieldSelector,
    resource_version: Option<u64>,
    timeout: Duration,
    send_initial_events: bool,
}

impl WatchRequest {
    fn new(
        req: &Req<'_>,
        kind: Option<Kind>,
        ns: Option<&str>,
        labels: Selector,
        fields: FieldSelector,
    ) -> ApiResult<Self> {
        let resource_version =
            match req.q("resourceVersion") {
                None | Some("") | Some("0") => None,
                Some(rv) => Some(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
        let timeout = req
            .q("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(DEFAULT_WATCH_SECONDS);
        Ok(WatchRequest {
            kind,
            namespace: ns.map(str::to_string),
            labels,
            fields,
            resource_version,
            timeout: Duration::from_secs(timeout),
            send_initial_events: req.q("sendInitialEvents") == Some("true"),
        })
    }

    fn empty(req: &Req<'_>) -> ApiResult<Self> {
        Self::new(
            req,
            None,
            None,
            Selector::default(),
            FieldSelector::default(),
        )
    }

    fn matches(&self, e: &WatchEvent) -> bool {
        Some(e.kind) == self.kind
            && self.namespace.as_deref().is_none_or(|ns| ns == e.namespace)
            && self.labels.matches(&meta::labels_of(&e.object))
            && self.fields.matches(&e.object)
    }
}

fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Stream watch events as newline-delimited JSON. Without a resourceVersion the current
/// objects come first as ADDED; with one, the logged events after it (410 when too old).
fn watch_response(shared: &Arc<Shared>, watch_request: WatchRequest) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let (live, initial) = watch_start(shared, &watch_request);
    tokio::spawn(send_watch_events(
        initial,
        live,
        tx,
        shared.shutdown.clone(),
        watch_request,
    ));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream.boxed())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Under the store's lock: the subscription to live events, and the lines sent before them
/// (the current objects and the initial-events bookmark, or the logged events after the
/// requested resourceVersion, or the 410 for a version too old).
fn watch_start(
    shared: &Arc<Shared>,
    watch_request: &WatchRequest,
) -> (broadcast::Receiver<WatchEvent>, Vec<Bytes>) {
    let store = lock(&shared.store);
    let resource_version = store.resource_version();
    let mut initial = Vec::new();
    let live = match (watch_request.kind, watch_request.resource_version) {
        (Some(kind), since) if since.is_none() || watch_request.send_initial_events => {
            for obj in store.list(kind, watch_request.namespace.as_deref()) {
                if watch_request.labels.matches(&meta::labels_of(obj))
                    && watch_request.fields.matches(obj)
                {
                    initial.push(event_line(EventType::Added.as_str(), obj));
                }
            }
            if watch_request.send_initial_events {
                let bookmark = json!({"kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": {
                    "resourceVersion": resource_version.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"}}});
                initial.push(event_line("BOOKMARK", &bookmark));
            }
            store.subscribe()
        }
        (Some(_), since) => {
            let (live, backlog) = store.watch_from(since.unwrap_or(0));
            match backlog {
                Some(events) => initial.extend(
                    events
                        .iter()
                        .filter(|e| watch_request.matches(e))
                        .map(|e| event_line(e.event_type.as_str(), &e.object)),
                ),
                None => {
                    let gone = ApiError::gone(format!(
                        "too old resource version: {} ({resource_version})",
                        since.unwrap_or(0)
                    ));
                    initial.push(event_line("ERROR", &gone.to_status()));
                }
            }
            live
        }
        (None, _) => store.subscribe(),
    };
    (live, initial)
}

/// Sends the initial lines, then the live events the watch matches, until its timeout, the
/// server's shutdown, or the client going away.
async fn send_watch_events(
    initial: Vec<Bytes>,
    mut live: broadcast::Receiver<WatchEvent>,
    tx: mpsc::Sender<Bytes>,
    mut shutdown: watch::Receiver<bool>,
    watch_request: WatchRequest,
) {
    for line in initial {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let deadline = tokio::time::sleep(watch_request.timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
            event = live.recv() => match event {
                Ok(e) if watch_request.matches(&e) => {
                    if tx.send(event_line(e.event_type.as_str(), &e.object)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // The client fell too far behind: tell it to relist, as the real server does.
                    let _ = tx.send(event_line("ERROR", &ApiError::gone("watch lagged behind").to_status())).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
