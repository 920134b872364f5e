//! The Step Functions wire protocol (AWS JSON 1.0): `POST /` with
//! `X-Amz-Target: AWSStepFunctions.<Operation>`, JSON bodies, epoch-second timestamps, and
//! errors as `{"__type": ..., "message": ...}` with HTTP 400, which the SDKs map to typed errors.

use crate::engine::{Engine, ExecutionDescription, ExecutionStatus, ServiceError};
use crate::history::epoch;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Which operations the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Executions and tasks only (the embedded drill registers its own machine).
    Embedded,
    /// Also Create/Describe/List/Update/DeleteStateMachine.
    Standalone,
}

pub struct Server {
    pub url: String,
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn shutdown(self) {
        self.handle.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Serves `engine` on `addr` (use `127.0.0.1:0` for a free loopback port).
pub async fn serve(engine: Engine, mode: Mode, addr: SocketAddr) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(engine, mode);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("step functions endpoint stopped: {e}");
        }
    });
    Ok(Server {
        url: format!("http://{addr}"),
        addr,
        handle,
    })
}

pub fn router(engine: Engine, mode: Mode) -> Router {
    Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let engine = engine.clone();
            async move { handle(&engine, mode, &headers, &body).await }
        }),
    )
}

fn respond(status: StatusCode, v: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
        v.to_string(),
    )
        .into_response()
}

fn error(e: ServiceError) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        json!({"__type": e.type_name(), "message": e.to_string()}),
    )
}

async fn handle(engine: &Engine, mode: Mode, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(op) = target.strip_prefix("AWSStepFunctions.") else {
        return error(ServiceError::UnknownOperation(format!(
            "missing or unknown X-Amz-Target '{target}'"
        )));
    };
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return error(ServiceError::ValidationException(format!(
                    "request body is not JSON: {e}"
                )));
            }
        }
    };
    match dispatch(engine, mode, op, &req).await {
        Ok(v) => respond(StatusCode::OK, v),
        Err(e) => error(e),
    }
}

fn s<'a>(req: &'a Value, k: &str) -> Option<&'a str> {
    req.get(k).and_then(Value::as_str)
}

fn req_s<'a>(req: &'a Value, k: &str) -> Result<&'a str, ServiceError> {
    s(req, k).ok_or_else(|| ServiceError::ValidationException(format!("1 validation error detected: Value null at '{k}' failed to satisfy constraint: Member must not be null")))
}

fn page(req: &Value, len: usize, default_max: usize) -> Result<(usize, usize), ServiceError> {
    let start = match s(req, "nextToken") {
        None => 0,
        Some(t) => t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= len)
            .ok_or_else(|| {
                ServiceError::ValidationException(format!("Invalid pagination token '{t}'"))
            })?,
    };
    let max = req
        .get("maxResults")
        .and_then(Value::as_u64)
        .filter(|m| *m > 0)
        .map(|m| m.min(1000) as usize)
        .unwrap_or(default_max);
    Ok((start, (start + max).min(len)))
}

fn with_token(mut v: Value, end: usize, len: usize) -> Value {
    if end < len {
        v["nextToken"] = json!(format!("page-{end}"));
    }
    v
}

fn describe_json(d: &ExecutionDescription) -> Value {
    let mut v = json!({
        "executionArn": d.arn,
        "stateMachineArn": d.state_machine_arn,
        "name": d.name,
        "status": d.status.as_str(),
        "startDate": epoch(d.start),
        "input": d.input,
        "inputDetails": {"included": true},
    });
    if let Some(t) = d.stop {
        v["stopDate"] = json!(epoch(t));
    }
    if let Some(o) = &d.output {
        v["output"] = json!(o);
        v["outputDetails"] = json!({"included": true});
    }
    if let Some(e) = &d.error {
        v["error"] = json!(e);
    }
    if let Some(c) = &d.cause {
        v["cause"] = json!(c);
    }
    v
}

/// Runs one API operation. Long because it is a flat table: one short arm per Step Functions
/// action, each reading its request fields and shaping the answer.
async fn dispatch(
    engine: &Engine,
    mode: Mode,
    op: &str,
    req: &Value,
) -> Result<Value, ServiceError> {
    let standalone = || {
        if mode == Mode::Standalone {
            Ok(())
        } else {
            Err(ServiceError::UnknownOperation(format!(
                "{op} is only available in standalone mode"
            )))
        }
    };
    match op {
        "StartExecution" => {
            let (arn, start) = engine.start_execution(
                req_s(req, "stateMachineArn")?,
                s(req, "name"),
                s(req, "input"),
            )?;
            Ok(json!({"executionArn": arn, "startDate": epoch(start)}))
        }
        "DescribeExecution" => Ok(describe_json(
            &engine.describe_execution(req_s(req, "executionArn")?)?,
        )),
        "GetExecutionHistory" => {
            let mut events = engine.history(req_s(req, "executionArn")?)?;
            if req
                .get("reverseOrder")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                events.reverse();
            }
            let include_data = req
                .get("includeExecutionData")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let (a, b) = page(req, events.len(), 100)?;
            let list: Vec<Value> = events[a..b]
                .iter()
                .map(|e| {
                    let mut j = e.to_json();
                    if !include_data
                        && let Some(k) = e.details_key
                        && let Some(Value::Object(d)) = j.get_mut(k)
                    {
                        for f in ["input", "output", "inputDetails", "outputDetails"] {
                            d.remove(f);
                        }
                    }
                    j
                })
                .collect();
            Ok(with_token(json!({"events": list}), b, events.len()))
        }
        "ListExecutions" => {
            let status = match s(req, "statusFilter") {
                None => None,
                Some(x) => Some(ExecutionStatus::parse(x).ok_or_else(|| {
                    ServiceError::ValidationException(format!("invalid statusFilter '{x}'"))
                })?),
            };
            let sm = s(req, "stateMachineArn");
            if let Some(a) = sm {
                engine.describe_state_machine(a)?;
            }
            let all = engine.list_executions(sm, status);
            let (a, b) = page(req, all.len(), 100)?;
            let list: Vec<Value> = all[a..b]
                .iter()
                .map(|d| {
                    let mut v = json!({"executionArn": d.arn, "stateMachineArn": d.state_machine_arn, "name": d.name,
                        "status": d.status.as_str(), "startDate": epoch(d.start)});
                    if let Some(t) = d.stop {
                        v["stopDate"] = json!(epoch(t));
                    }
                    v
                })
                .collect();
            Ok(with_token(json!({"executions": list}), b, all.len()))
        }
        "StopExecution" => {
            let t = engine
                .stop_execution(
                    req_s(req, "executionArn")?,
                    s(req, "error"),
                    s(req, "cause"),
                )
                .await?;
            Ok(json!({"stopDate": epoch(t)}))
        }
        "SendTaskSuccess" => {
            engine.send_task_success(req_s(req, "taskToken")?, req_s(req, "output")?)?;
            Ok(json!({}))
        }
        "SendTaskFailure" => {
            engine.send_task_failure(req_s(req, "taskToken")?, s(req, "error"), s(req, "cause"))?;
            Ok(json!({}))
        }
        "SendTaskHeartbeat" => {
            engine.send_task_heartbeat(req_s(req, "taskToken")?)?;
            Ok(json!({}))
        }
        "CreateStateMachine" => {
            standalone()?;
            if let Some(t) = s(req, "type")
                && t != "STANDARD"
            {
                return Err(ServiceError::ValidationException(format!(
                    "only STANDARD state machines are supported, got {t}"
                )));
            }
            let subs: BTreeMap<String, String> = BTreeMap::new();
            let role = s(req, "roleArn").unwrap_or("arn:aws:iam::123456789012:role/local");
            let rec = engine.create_state_machine(
                req_s(req, "name")?,
                req_s(req, "definition")?,
                role,
                &subs,
            )?;
            Ok(json!({"stateMachineArn": rec.arn, "creationDate": epoch(rec.created)}))
        }
        "DescribeStateMachine" => {
            standalone()?;
            let r = engine.describe_state_machine(req_s(req, "stateMachineArn")?)?;
            Ok(
                json!({"stateMachineArn": r.arn, "name": r.name, "status": "ACTIVE", "definition": r.definition,
                "roleArn": r.role_arn, "type": "STANDARD", "creationDate": epoch(r.created)}),
            )
        }
        "ListStateMachines" => {
            standalone()?;
            let all = engine.list_state_machines();
            let (a, b) = page(req, all.len(), 100)?;
            let list: Vec<Value> = all[a..b]
                .iter()
                .map(|r| json!({"stateMachineArn": r.arn, "name": r.name, "type": "STANDARD", "creationDate": epoch(r.created)}))
                .collect();
            Ok(with_token(json!({"stateMachines": list}), b, all.len()))
        }
        "UpdateStateMachine" => {
            standalone()?;
            let t = engine.update_state_machine(
                req_s(req, "stateMachineArn")?,
                s(req, "definition"),
                s(req, "roleArn"),
            )?;
            Ok(json!({"updateDate": epoch(t)}))
        }
        "DeleteStateMachine" => {
            standalone()?;
            engine.delete_state_machine(req_s(req, "stateMachineArn")?)?;
            Ok(Value::Object(Map::new()))
        }
        other => Err(ServiceError::UnknownOperation(format!(
            "operation '{other}' is not supported by the local engine"
        ))),
    }
}
