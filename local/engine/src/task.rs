//! Task dispatch: the embedder implements [`TaskHandler`]; [`LambdaRegistry`] is a ready-made
//! handler that maps Lambda function names to in-process async functions.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

/// A boxed `Send` future, as task handlers and Lambda functions return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a Task's `Resource` is integrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceKind {
    /// `arn:aws:states:::lambda:invoke` (the result is wrapped in `{"Payload": …, "StatusCode": 200, …}`).
    LambdaInvoke,
    /// A bare function ARN (`arn:aws:lambda:…:function:name`): the payload is the result.
    LambdaArn,
    /// Anything else (`arn:aws:states:::sns:publish`, activities, …), passed to the handler as is.
    Other,
}

/// Integration pattern, from the resource's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Call the resource and take its answer as the result.
    RequestResponse,
    /// `.waitForTaskToken`: call the resource, then wait for SendTaskSuccess or SendTaskFailure on
    /// the token.
    WaitForTaskToken,
    /// `.sync` (or `.sync:N`): recognised, but run like `RequestResponse`.
    Sync,
}

/// A Task's `Resource` taken apart: how to call it, and how history names it.
#[derive(Debug, Clone)]
pub struct ParsedResource {
    /// How the resource is integrated.
    pub kind: ResourceKind,
    /// The integration pattern.
    pub pattern: Pattern,
    /// History `resourceType`, e.g. `lambda`.
    pub resource_type: String,
    /// History `resource`: e.g. `invoke.waitForTaskToken`, or the whole ARN when it is not an
    /// `arn:aws:states:::` integration.
    pub resource_name: String,
}

/// Classifies a Task's `Resource`: its integration, its pattern (from the suffix) and its names for
/// history.
pub fn parse_resource(arn: &str) -> ParsedResource {
    let pattern = if arn.ends_with(".waitForTaskToken") {
        Pattern::WaitForTaskToken
    } else if arn.ends_with(".sync") || arn.contains(".sync:") {
        Pattern::Sync
    } else {
        Pattern::RequestResponse
    };
    if let Some(rest) = arn.strip_prefix("arn:aws:states:::") {
        let (svc, op) = rest.split_once(':').unwrap_or((rest, ""));
        let kind = if svc == "lambda" && (op == "invoke" || op.starts_with("invoke.")) {
            ResourceKind::LambdaInvoke
        } else {
            ResourceKind::Other
        };
        return ParsedResource {
            kind,
            pattern,
            resource_type: svc.to_string(),
            resource_name: op.to_string(),
        };
    }
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() >= 7 && parts[2] == "lambda" && parts[5] == "function" {
        return ParsedResource {
            kind: ResourceKind::LambdaArn,
            pattern: Pattern::RequestResponse,
            resource_type: "lambda".into(),
            resource_name: arn.to_string(),
        };
    }
    ParsedResource {
        kind: ResourceKind::Other,
        pattern,
        resource_type: parts.get(2).copied().unwrap_or("unknown").to_string(),
        resource_name: arn.to_string(),
    }
}

/// Everything a handler needs to run one task attempt.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// The resource exactly as written in the definition (after substitutions).
    pub resource: String,
    /// How the resource is integrated.
    pub kind: ResourceKind,
    /// The integration pattern.
    pub pattern: Pattern,
    /// For Lambda resources: `Parameters.FunctionName` (lambda:invoke) or the ARN itself.
    pub function: Option<String>,
    /// The function's input: `Parameters.Payload` for lambda:invoke, the effective input otherwise.
    pub payload: Value,
    /// The effective parameters (after InputPath and Parameters).
    pub parameters: Value,
    /// Set for `.waitForTaskToken` resources.
    pub task_token: Option<String>,
    /// The Task state's name.
    pub state_name: String,
    /// The ARN of the execution running the task.
    pub execution_arn: String,
    /// The context object as the state saw it (`$$`).
    pub context: Value,
}

/// A failed task attempt, as a handler reports it; Retry and Catch match on `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskFailure {
    /// The error name, e.g. `States.TaskFailed` or a function's own.
    pub error: String,
    /// A human-readable explanation.
    pub cause: String,
}

impl TaskFailure {
    /// A failure with this error name and cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskFailure {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Runs tasks. For `.waitForTaskToken` resources the returned value is ignored (the task waits
/// for SendTaskSuccess/Failure) but an `Err` fails the task at once, like a failed invocation.
pub trait TaskHandler: Send + Sync {
    /// Runs one attempt of the task `req` describes. `Ok` is the task's result; the interpreter
    /// wraps `lambda:invoke` results in AWS's envelope itself.
    fn invoke(&self, req: TaskRequest) -> BoxFuture<'static, Result<Value, TaskFailure>>;
}

/// A handler that refuses every task.
pub struct NoTasks;

impl TaskHandler for NoTasks {
    fn invoke(&self, req: TaskRequest) -> BoxFuture<'static, Result<Value, TaskFailure>> {
        Box::pin(async move { Err(unsupported(&req, &[])) })
    }
}

/// The error for a resource nobody can run. It is a runtime `States.TaskFailed` (not a refusal
/// at StartExecution) because function names may be computed (`FunctionName.$`) and a branch
/// that never runs should not block the rest; the cause names the resource so it is obvious.
pub fn unsupported(req: &TaskRequest, known: &[String]) -> TaskFailure {
    let what = match &req.function {
        Some(f) => format!("resource '{}' (function '{f}')", req.resource),
        None => format!("resource '{}'", req.resource),
    };
    TaskFailure::new(
        "States.TaskFailed",
        format!(
            "rollback-engine cannot run {what} in state '{}': only Lambda functions registered with the local engine can run; registered: [{}]",
            req.state_name,
            known.join(", ")
        ),
    )
}

/// An in-process Lambda function: called with the payload and the whole request.
pub type LambdaFn =
    Arc<dyn Fn(Value, TaskRequest) -> BoxFuture<'static, Result<Value, TaskFailure>> + Send + Sync>;

/// Maps Lambda function names (or full ARNs, reduced to their name) to in-process functions.
#[derive(Clone, Default)]
pub struct LambdaRegistry {
    fns: Arc<RwLock<BTreeMap<String, LambdaFn>>>,
}

/// `arn:aws:lambda:r:a:function:name[:qualifier]` → `name`; a plain name is returned as is.
pub fn function_name(f: &str) -> &str {
    let parts: Vec<&str> = f.split(':').collect();
    if parts.len() >= 7 && parts[5] == "function" {
        parts[6]
    } else {
        f
    }
}

impl LambdaRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `f` under `name` (a function name, or an ARN reduced to its name), replacing any
    /// function registered there before.
    pub fn register<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(Value, TaskRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskFailure>> + Send + 'static,
    {
        let f: LambdaFn = Arc::new(move |v, r| Box::pin(f(v, r)));
        self.fns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(function_name(name).to_string(), f);
    }

    /// The registered function names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.fns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

impl TaskHandler for LambdaRegistry {
    fn invoke(&self, req: TaskRequest) -> BoxFuture<'static, Result<Value, TaskFailure>> {
        let f = match (&req.kind, &req.function) {
            (ResourceKind::LambdaInvoke | ResourceKind::LambdaArn, Some(name)) => self
                .fns
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(function_name(name))
                .cloned(),
            _ => None,
        };
        match f {
            Some(f) => f(req.payload.clone(), req),
            None => {
                let e = unsupported(&req, &self.names());
                Box::pin(async move { Err(e) })
            }
        }
    }
}

/// The `lambda:invoke` result envelope AWS returns (the Payload is the function's output).
pub fn lambda_invoke_envelope(payload: Value, request_id: &str) -> Value {
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "HttpHeaders": {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": request_id},
            "HttpStatusCode": 200
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200
    })
}
