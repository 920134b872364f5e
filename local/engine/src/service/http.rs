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

/// A running endpoint; it stops serving when dropped or shut down.
pub struct Server {
    /// `http://<addr>`, for an SDK's endpoint URL.
    pub url: String,
    /// The address it listens on (the actual port when 0 was asked for).
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stops serving (as dropping the server does).
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

/// The routes answering the JSON 1.0 protocol for `engine`; [`serve`] runs them on a listener of
/// its own.
pub fn router(engine: Engine, mode: Mode) -> Router {
    Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let engine = engine.clone();
            async move { handle(&engine, mode, &headers, &body).await }
        }),
    )
}

fn respond(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
        body.to_string(),
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
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let Some(operation) = target.strip_prefix("AWSStepFunctions.") else {
        return error(ServiceError::UnknownOperation(format!(
            "missing or unknown X-Amz-Target '{target}'"
        )));
    };
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(e) => {
                return error(ServiceError::ValidationException(format!(
                    "request body is not JSON: {e}"
                )));
            }
        }
    };
    match dispatch(engine, mode, operation, &request).await {
        Ok(answer) => respond(StatusCode::OK, answer),
        Err(e) => error(e),
    }
}

/// A string field of the request, if it has one.
fn optional_str<'a>(request: &'a Value, key: &str) -> Option<&'a str> {
    request.get(key).and_then(Value::as_str)
}

/// A string field the operation needs: AWS's validation error without it.
fn required_str<'a>(request: &'a Value, key: &str) -> Result<&'a str, ServiceError> {
    optional_str(request, key).ok_or_else(|| ServiceError::ValidationException(format!("1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null")))
}

/// The `[start, end)` slice of a listing of `len` items that `nextToken` and `maxResults` ask for.
fn page(request: &Value, len: usize, default_max: usize) -> Result<(usize, usize), ServiceError> {
    let start = match optional_str(request, "nextToken") {
        None => 0,
        Some(token) => token
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= len)
            .ok_or_else(|| {
                ServiceError::ValidationException(format!("Invalid pagination token '{token}'"))
            })?,
    };
    let max = request
        .get("maxResults")
        .and_then(Value::as_u64)
        .filter(|m| *m > 0)
        .map(|m| m.min(1000) as usize)
        .unwrap_or(default_max);
    Ok((start, (start + max).min(len)))
}

fn with_token(mut answer: Value, end: usize, len: usize) -> Value {
    if end < len {
        answer["nextToken"] = json!(format!("page-{end}"));
    }
    answer
}

fn describe_json(description: &ExecutionDescription) -> Value {
    let mut answer = json!({
        "executionArn": description.arn,
        "stateMachineArn": description.state_machine_arn,
        "name": description.name,
        "status": description.status.as_str(),
        "startDate": epoch(description.start),
        "input": description.input,
        "inputDetails": {"included": true},
    });
    if let Some(stop) = description.stop {
        answer["stopDate"] = json!(epoch(stop));
    }
    if let Some(output) = &description.output {
        answer["output"] = json!(output);
        answer["outputDetails"] = json!({"included": true});
    }
    if let Some(error) = &description.error {
        answer["error"] = json!(error);
    }
    if let Some(cause) = &description.cause {
        answer["cause"] = json!(cause);
    }
    answer
}

/// Runs one API operation: a flat table of the execution and task actions, each reading its
/// request fields and shaping the answer; the state machine actions are in
/// [`state_machine_operation`].
async fn dispatch(
    engine: &Engine,
    mode: Mode,
    operation: &str,
    request: &Value,
) -> Result<Value, ServiceError> {
    match operation {
        "StartExecution" => {
            let (arn, start) = engine.start_execution(
                required_str(request, "stateMachineArn")?,
                optional_str(request, "name"),
                optional_str(request, "input"),
            )?;
            Ok(json!({"executionArn": arn, "startDate": epoch(start)}))
        }
        "DescribeExecution" => Ok(describe_json(
            &engine.describe_execution(required_str(request, "executionArn")?)?,
        )),
        "GetExecutionHistory" => execution_history(engine, request),
        "ListExecutions" => list_executions(engine, request),
        "StopExecution" => {
            let stopped = engine
                .stop_execution(
                    required_str(request, "executionArn")?,
                    optional_str(request, "error"),
                    optional_str(request, "cause"),
                )
                .await?;
            Ok(json!({"stopDate": epoch(stopped)}))
        }
        "SendTaskSuccess" => {
            engine.send_task_success(
                required_str(request, "taskToken")?,
                required_str(request, "output")?,
            )?;
            Ok(json!({}))
        }
        "SendTaskFailure" => {
            engine.send_task_failure(
                required_str(request, "taskToken")?,
                optional_str(request, "error"),
                optional_str(request, "cause"),
            )?;
            Ok(json!({}))
        }
        "SendTaskHeartbeat" => {
            engine.send_task_heartbeat(required_str(request, "taskToken")?)?;
            Ok(json!({}))
        }
        _ => state_machine_operation(engine, mode, operation, request),
    }
}

/// GetExecutionHistory: a page of the events, oldest first unless `reverseOrder`, without
/// their input and output when `includeExecutionData` is false.
fn execution_history(engine: &Engine, request: &Value) -> Result<Value, ServiceError> {
    let mut events = engine.history(required_str(request, "executionArn")?)?;
    if request
        .get("reverseOrder")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        events.reverse();
    }
    let include_data = request
        .get("includeExecutionData")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let (start, end) = page(request, events.len(), 100)?;
    let list: Vec<Value> = events[start..end]
        .iter()
        .map(|event| {
            let mut shown = event.to_json();
            if !include_data
                && let Some(key) = event.details_key
                && let Some(Value::Object(details)) = shown.get_mut(key)
            {
                for field in ["input", "output", "inputDetails", "outputDetails"] {
                    details.remove(field);
                }
            }
            shown
        })
        .collect();
    Ok(with_token(json!({"events": list}), end, events.len()))
}

/// ListExecutions: a page of the executions, of one state machine (which must exist) and
/// status when the request names them.
fn list_executions(engine: &Engine, request: &Value) -> Result<Value, ServiceError> {
    let status = match optional_str(request, "statusFilter") {
        None => None,
        Some(filter) => Some(ExecutionStatus::parse(filter).ok_or_else(|| {
            ServiceError::ValidationException(format!("invalid statusFilter '{filter}'"))
        })?),
    };
    let state_machine = optional_str(request, "stateMachineArn");
    if let Some(arn) = state_machine {
        engine.describe_state_machine(arn)?;
    }
    let all = engine.list_executions(state_machine, status);
    let (start, end) = page(request, all.len(), 100)?;
    let list: Vec<Value> = all[start..end]
        .iter()
        .map(|execution| {
            let mut item = json!({"executionArn": execution.arn, "stateMachineArn": execution.state_machine_arn, "name": execution.name,
                "status": execution.status.as_str(), "startDate": epoch(execution.start)});
            if let Some(stop) = execution.stop {
                item["stopDate"] = json!(epoch(stop));
            }
            item
        })
        .collect();
    Ok(with_token(json!({"executions": list}), end, all.len()))
}

/// The state machine actions, answered in standalone mode only; anything else is an unknown
/// operation.
fn state_machine_operation(
    engine: &Engine,
    mode: Mode,
    operation: &str,
    request: &Value,
) -> Result<Value, ServiceError> {
    let standalone = || {
        if mode == Mode::Standalone {
            Ok(())
        } else {
            Err(ServiceError::UnknownOperation(format!(
                "{operation} is only available in standalone mode"
            )))
        }
    };
    match operation {
        "CreateStateMachine" => {
            standalone()?;
            create_state_machine(engine, request)
        }
        "DescribeStateMachine" => {
            standalone()?;
            let record =
                engine.describe_state_machine(required_str(request, "stateMachineArn")?)?;
            Ok(
                json!({"stateMachineArn": record.arn, "name": record.name, "status": "ACTIVE", "definition": record.definition,
                "roleArn": record.role_arn, "type": "STANDARD", "creationDate": epoch(record.created)}),
            )
        }
        "ListStateMachines" => {
            standalone()?;
            let all = engine.list_state_machines();
            let (start, end) = page(request, all.len(), 100)?;
            let list: Vec<Value> = all[start..end]
                .iter()
                .map(|record| json!({"stateMachineArn": record.arn, "name": record.name, "type": "STANDARD", "creationDate": epoch(record.created)}))
                .collect();
            Ok(with_token(json!({"stateMachines": list}), end, all.len()))
        }
        "UpdateStateMachine" => {
            standalone()?;
            let updated = engine.update_state_machine(
                required_str(request, "stateMachineArn")?,
                optional_str(request, "definition"),
                optional_str(request, "roleArn"),
            )?;
            Ok(json!({"updateDate": epoch(updated)}))
        }
        "DeleteStateMachine" => {
            standalone()?;
            engine.delete_state_machine(required_str(request, "stateMachineArn")?)?;
            Ok(Value::Object(Map::new()))
        }
        other => Err(ServiceError::UnknownOperation(format!(
            "operation '{other}' is not supported by the local engine"
        ))),
    }
}

/// CreateStateMachine: STANDARD machines only; the role defaults to a local one.
fn create_state_machine(engine: &Engine, request: &Value) -> Result<Value, ServiceError> {
    if let Some(kind) = optional_str(request, "type")
        && kind != "STANDARD"
    {
        return Err(ServiceError::ValidationException(format!(
            "only STANDARD state machines are supported, got {kind}"
        )));
    }
    let substitutions: BTreeMap<String, String> = BTreeMap::new();
    let role = optional_str(request, "roleArn").unwrap_or("arn:aws:iam::123456789012:role/local");
    let record = engine.create_state_machine(
        required_str(request, "name")?,
        required_str(request, "definition")?,
        role,
        &substitutions,
    )?;
    Ok(json!({"stateMachineArn": record.arn, "creationDate": epoch(record.created)}))
}
