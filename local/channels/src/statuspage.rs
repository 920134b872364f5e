//! A local Atlassian Statuspage: one page, its components, its realtime incidents.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Authorized, Call, Fault, Recorder, lock, random_id, record};

/// Realtime incident statuses (scheduled maintenances have others, not served here).
pub const INCIDENT_STATUSES: &[&str] = &["investigating", "identified", "monitoring", "resolved"];
pub const COMPONENT_STATUSES: &[&str] = &[
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
];
/// The incident attributes the API takes (others are refused here: a typo must not pass).
const INCIDENT_FIELDS: &[&str] = &[
    "name",
    "status",
    "body",
    "component_ids",
    "components",
    "deliver_notifications",
    "impact_override",
    "metadata",
    "auto_tweet_on_creation",
];

#[derive(Debug, Clone)]
struct Update {
    id: String,
    status: String,
    body: String,
    at: String,
}

#[derive(Debug, Clone)]
struct Incident {
    id: String,
    name: String,
    status: String,
    created_at: String,
    resolved_at: Option<String>,
    component_ids: Vec<String>,
    /// Oldest first here; listed newest first.
    updates: Vec<Update>,
}

struct Page {
    id: String,
    key: String,
    /// id → (name, status).
    components: BTreeMap<String, (String, String)>,
    incidents: Vec<Incident>,
}

struct Shared {
    base: String,
    page: Mutex<Page>,
    recorder: Arc<Recorder>,
}

/// A running local Statuspage on 127.0.0.1; dropping it stops the server.
pub struct StatuspageServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for StatuspageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StatuspageServer {
    /// Serves page `page_id`, accepting `Authorization: OAuth <api_key>` only.
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound.
    pub async fn start(page_id: &str, api_key: &str) -> StatuspageServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("the Statuspage server binds a free port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        let recorder = Arc::new(Recorder::default());
        let shared = Arc::new(Shared {
            base: format!("http://{addr}/v1"),
            page: Mutex::new(Page {
                id: page_id.to_owned(),
                key: api_key.to_owned(),
                components: BTreeMap::new(),
                incidents: Vec::new(),
            }),
            recorder: recorder.clone(),
        });
        let app = Router::new()
            .route("/v1/pages/{page}/incidents", get(list_all).post(create))
            .route(
                "/v1/pages/{page}/incidents/unresolved",
                get(list_unresolved),
            )
            .route("/v1/pages/{page}/incidents/{id}", get(show).patch(update))
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": "Not found"})),
                )
            })
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(recorder, record));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StatuspageServer { shared, addr, task }
    }

    /// The API root (`http://127.0.0.1:PORT/v1`): the plan's `api_base`.
    pub fn api_base(&self) -> &str {
        &self.shared.base
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a component to the page (status `operational`).
    pub fn add_component(&self, id: &str, name: &str) {
        lock(&self.shared.page)
            .components
            .insert(id.to_owned(), (name.to_owned(), "operational".to_owned()));
    }

    /// A component's status.
    pub fn component_status(&self, id: &str) -> Option<String> {
        lock(&self.shared.page)
            .components
            .get(id)
            .map(|(_, s)| s.clone())
    }

    /// Every incident as the API shows it (newest first, updates newest first).
    pub fn incidents(&self) -> Vec<Value> {
        let page = lock(&self.shared.page);
        page.incidents
            .iter()
            .rev()
            .map(|i| show_incident(&page, i))
            .collect()
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.recorder.calls()
    }

    /// The next `times` requests with `method` whose path contains `path_contains` get `fault`.
    pub fn inject(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        self.shared
            .recorder
            .inject(method, path_contains, fault, times);
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The key and the page: 401 without the right key, 404 for another page.
fn check(shared: &Shared, headers: &HeaderMap, page_id: &str) -> Result<(), Response> {
    let page = lock(&shared.page);
    let expected = format!("OAuth {}", page.key);
    let sent = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if sent != Some(expected.as_str()) {
        return Err(error(StatusCode::UNAUTHORIZED, "Could not authenticate"));
    }
    if page_id != page.id {
        let mut response = error(StatusCode::NOT_FOUND, "The page could not be found");
        response.extensions_mut().insert(Authorized);
        return Err(response);
    }
    Ok(())
}

fn authorized(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(Authorized);
    response
}

fn show_incident(page: &Page, i: &Incident) -> Value {
    json!({
        "id": i.id,
        "page_id": page.id,
        "name": i.name,
        "status": i.status,
        "created_at": i.created_at,
        "updated_at": i.updates.last().map(|u| u.at.clone()).unwrap_or_else(|| i.created_at.clone()),
        "resolved_at": i.resolved_at,
        "shortlink": format!("http://stspg.io/{}", i.id),
        "components": i.component_ids.iter().map(|id| {
            let (name, status) = page.components.get(id).cloned().unwrap_or_default();
            json!({"id": id, "name": name, "status": status})
        }).collect::<Vec<_>>(),
        "incident_updates": i.updates.iter().rev().map(|u| json!({
            "id": u.id, "incident_id": i.id, "status": u.status, "body": u.body,
            "created_at": u.at, "display_at": u.at,
        })).collect::<Vec<_>>(),
    })
}

/// The `incident` object of a request body, its attributes checked like the API does.
struct Change {
    name: Option<String>,
    status: Option<String>,
    body: Option<String>,
    component_ids: Option<Vec<String>>,
    components: Option<Map<String, Value>>,
}

/// The request body's `incident`, checked in this order: JSON with an `incident` object, no
/// unknown attributes, the status, the component ids, the component statuses, then the name's
/// and body's types.
fn parse_change(page: &Page, body: &[u8]) -> Result<Change, Response> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON",
        )
    })?;
    let Some(incident) = value.get("incident").and_then(Value::as_object) else {
        return Err(error(StatusCode::BAD_REQUEST, "incident is missing"));
    };
    if let Some(unknown) = incident
        .keys()
        .find(|k| !INCIDENT_FIELDS.contains(&k.as_str()))
    {
        return Err(unprocessable(&format!(
            "unknown incident attribute {unknown:?}"
        )));
    }
    let status = string_attribute(incident, "status")?;
    if let Some(status) = &status
        && !INCIDENT_STATUSES.contains(&status.as_str())
    {
        return Err(unprocessable(&format!(
            "Status {status:?} is not included in the list ({})",
            INCIDENT_STATUSES.join(", ")
        )));
    }
    let component_ids = component_ids(page, incident)?;
    let components = component_statuses(page, incident)?;
    Ok(Change {
        name: string_attribute(incident, "name")?,
        status,
        body: string_attribute(incident, "body")?,
        component_ids,
        components,
    })
}

fn unprocessable(message: &str) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// An optional string attribute of the incident (`null` is absent).
fn string_attribute(incident: &Map<String, Value>, key: &str) -> Result<Option<String>, Response> {
    match incident.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(unprocessable(&format!("{key} must be a string"))),
    }
}

/// `component_ids`: strings, each a component of the page.
fn component_ids(
    page: &Page,
    incident: &Map<String, Value>,
) -> Result<Option<Vec<String>>, Response> {
    match incident.get("component_ids") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(ids)) => {
            let ids: Option<Vec<String>> = ids
                .iter()
                .map(|id| id.as_str().map(str::to_owned))
                .collect();
            let ids = ids.ok_or_else(|| unprocessable("component_ids must be strings"))?;
            if let Some(id) = ids.iter().find(|id| !page.components.contains_key(*id)) {
                return Err(unprocessable(&format!(
                    "Component {id:?} is not on this page"
                )));
            }
            Ok(Some(ids))
        }
        Some(_) => Err(unprocessable("component_ids must be an array")),
    }
}

/// `components`: an object of the page's component ids to component statuses.
fn component_statuses(
    page: &Page,
    incident: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, Response> {
    match incident.get("components") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            for (id, status) in map {
                if !page.components.contains_key(id) {
                    return Err(unprocessable(&format!(
                        "Component {id:?} is not on this page"
                    )));
                }
                if !status
                    .as_str()
                    .is_some_and(|s| COMPONENT_STATUSES.contains(&s))
                {
                    return Err(unprocessable(&format!(
                        "Component status {status} is not included in the list ({})",
                        COMPONENT_STATUSES.join(", ")
                    )));
                }
            }
            Ok(Some(map.clone()))
        }
        Some(_) => Err(unprocessable("components must be an object")),
    }
}

fn apply_components(page: &mut Page, change: &Change) {
    if let Some(map) = &change.components {
        for (id, status) in map {
            if let (Some(entry), Some(status)) = (page.components.get_mut(id), status.as_str()) {
                entry.1 = status.to_owned();
            }
        }
    }
}

async fn list(
    shared: Arc<Shared>,
    headers: HeaderMap,
    page_id: String,
    unresolved: bool,
) -> Response {
    if let Err(refused) = check(&shared, &headers, &page_id) {
        return refused;
    }
    let page = lock(&shared.page);
    let shown: Vec<Value> = page
        .incidents
        .iter()
        .rev()
        .filter(|i| !unresolved || i.status != "resolved")
        .map(|i| show_incident(&page, i))
        .collect();
    authorized(axum::Json(shown))
}

async fn list_all(
    State(shared): State<Arc<Shared>>,
    Path(page_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    list(shared, headers, page_id, false).await
}

async fn list_unresolved(
    State(shared): State<Arc<Shared>>,
    Path(page_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    list(shared, headers, page_id, true).await
}

async fn show(
    State(shared): State<Arc<Shared>>,
    Path((page_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = check(&shared, &headers, &page_id) {
        return refused;
    }
    let page = lock(&shared.page);
    match page.incidents.iter().find(|i| i.id == id) {
        Some(i) => authorized(axum::Json(show_incident(&page, i))),
        None => authorized(error(
            StatusCode::NOT_FOUND,
            "The incident could not be found",
        )),
    }
}

async fn body_bytes(request: Request) -> Vec<u8> {
    axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default()
}

/// What `create` and `update` start with: the key and the page checked, then the body read
/// and its `incident` parsed with the page locked. Returns the locked page and the change.
async fn checked_change<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
    page_id: &str,
    request: Request,
) -> Result<(MutexGuard<'a, Page>, Change), Response> {
    check(shared, headers, page_id)?;
    let bytes = body_bytes(request).await;
    let page = lock(&shared.page);
    let change = parse_change(&page, &bytes).map_err(authorized)?;
    Ok((page, change))
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(page_id): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let (mut page, change) = match checked_change(&shared, &headers, &page_id, request).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    let Some(name) = change.name.clone().filter(|n| !n.trim().is_empty()) else {
        return authorized(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Name can't be blank",
        ));
    };
    let status = change
        .status
        .clone()
        .unwrap_or_else(|| "investigating".into());
    let at = now();
    let mut component_ids = change.component_ids.clone().unwrap_or_default();
    if let Some(map) = &change.components {
        for id in map.keys() {
            if !component_ids.contains(id) {
                component_ids.push(id.clone());
            }
        }
    }
    apply_components(&mut page, &change);
    let incident = Incident {
        id: random_id(12),
        name,
        status: status.clone(),
        created_at: at.clone(),
        resolved_at: (status == "resolved").then(|| at.clone()),
        component_ids,
        updates: vec![Update {
            id: random_id(12),
            status,
            body: change.body.clone().unwrap_or_default(),
            at,
        }],
    };
    let shown = show_incident(&page, &incident);
    page.incidents.push(incident);
    authorized((StatusCode::CREATED, axum::Json(shown)))
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((page_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let (mut page, change) = match checked_change(&shared, &headers, &page_id, request).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    let Some(index) = page.incidents.iter().position(|i| i.id == id) else {
        return authorized(error(
            StatusCode::NOT_FOUND,
            "The incident could not be found",
        ));
    };
    apply_components(&mut page, &change);
    let at = now();
    let incident = &mut page.incidents[index];
    if let Some(name) = &change.name {
        incident.name = name.clone();
    }
    if let Some(ids) = &change.component_ids {
        for id in ids {
            if !incident.component_ids.contains(id) {
                incident.component_ids.push(id.clone());
            }
        }
    }
    if change.status.is_some() || change.body.is_some() {
        let status = change
            .status
            .clone()
            .unwrap_or_else(|| incident.status.clone());
        if status == "resolved" && incident.resolved_at.is_none() {
            incident.resolved_at = Some(at.clone());
        }
        incident.status = status.clone();
        incident.updates.push(Update {
            id: random_id(12),
            status,
            body: change.body.clone().unwrap_or_default(),
            at,
        });
    }
    let incident = page.incidents[index].clone();
    authorized(axum::Json(show_incident(&page, &incident)))
}
