//! Task: one attempt resolves its input and timeouts, records that it is scheduled and
//! started, calls the handler (and, for `.waitForTaskToken`, waits for the token's answer),
//! then records the outcome.

use super::cursor::Cursor;
use super::data_flow::{num_value, params_input};
use super::{Interpreter, StatesError, Visit, check_size};
use crate::clock::Clock;
use crate::definition::{Num, State, TaskSpec};
use crate::history::HistoryFull;
use crate::task::{self, ParsedResource, Pattern, ResourceKind, TaskRequest};
use crate::tokens::TokenMsg;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

/// What one attempt of a Task state calls, resolved before anything is recorded.
struct Call {
    res: ParsedResource,
    /// For `.waitForTaskToken`: the token and where its answer arrives.
    token: Option<(String, UnboundedReceiver<TokenMsg>)>,
    params: Value,
    ctx: Value,
    timeout: Option<f64>,
    heartbeat: Option<f64>,
}

/// How a Task's events are named and shaped: `LambdaFunction*` for a bare function ARN,
/// `Task*` (each with the resource type and name) otherwise.
struct TaskEvents {
    lambda: bool,
    resource: Value,
}

impl TaskEvents {
    fn new(res: &ParsedResource) -> Self {
        TaskEvents {
            lambda: res.kind == ResourceKind::LambdaArn,
            resource: json!({"resourceType": res.resource_type, "resource": res.resource_name}),
        }
    }

    /// `extra` with the resource type and name added.
    fn with(&self, extra: Value) -> Value {
        let mut m = self.resource.as_object().cloned().unwrap_or_default();
        if let Value::Object(e) = extra {
            m.extend(e);
        }
        Value::Object(m)
    }

    fn scheduled(
        &self,
        at: &mut Cursor<'_>,
        spec: &TaskSpec,
        call: &Call,
        region: &str,
    ) -> Result<(), HistoryFull> {
        if self.lambda {
            let mut d = json!({"resource": spec.resource, "input": call.params.to_string(), "inputDetails": {"truncated": false}});
            if let Some(t) = call.timeout {
                d["timeoutInSeconds"] = json!(t as u64);
            }
            at.record(
                "LambdaFunctionScheduled",
                Some("lambdaFunctionScheduledEventDetails"),
                d,
            )?;
            at.record("LambdaFunctionStarted", None, json!({}))
        } else {
            let mut d = self.with(json!({"region": region, "parameters": call.params.to_string()}));
            if let Some(t) = call.timeout {
                d["timeoutInSeconds"] = json!(t as u64);
            }
            if let Some(h) = call.heartbeat {
                d["heartbeatInSeconds"] = json!(h as u64);
            }
            at.record("TaskScheduled", Some("taskScheduledEventDetails"), d)?;
            at.record(
                "TaskStarted",
                Some("taskStartedEventDetails"),
                self.resource.clone(),
            )
        }
    }

    fn succeeded(&self, at: &mut Cursor<'_>, result: &Value) -> Result<(), HistoryFull> {
        let d = json!({"output": result.to_string(), "outputDetails": {"truncated": false}});
        if self.lambda {
            at.record(
                "LambdaFunctionSucceeded",
                Some("lambdaFunctionSucceededEventDetails"),
                d,
            )
        } else {
            at.record(
                "TaskSucceeded",
                Some("taskSucceededEventDetails"),
                self.with(d),
            )
        }
    }

    fn failed(&self, at: &mut Cursor<'_>, e: &StatesError) -> Result<(), HistoryFull> {
        let is_timeout = e.error == "States.Timeout" || e.error == "States.HeartbeatTimeout";
        let d = json!({"error": e.error, "cause": e.cause});
        match (self.lambda, is_timeout) {
            (true, true) => at.record(
                "LambdaFunctionTimedOut",
                Some("lambdaFunctionTimedOutEventDetails"),
                d,
            ),
            (true, false) => at.record(
                "LambdaFunctionFailed",
                Some("lambdaFunctionFailedEventDetails"),
                d,
            ),
            (false, true) => at.record(
                "TaskTimedOut",
                Some("taskTimedOutEventDetails"),
                self.with(d),
            ),
            (false, false) => at.record("TaskFailed", Some("taskFailedEventDetails"), self.with(d)),
        }
    }
}

fn timed_out(error: &str) -> StatesError {
    StatesError::new(error, "")
}

/// `seconds` from now on the clock.
fn after(clock: &Clock, seconds: f64) -> DateTime<Utc> {
    clock.now() + TimeDelta::milliseconds((seconds * 1000.0) as i64)
}

/// Sleeps until `d`, or forever without one.
async fn sleep_until_opt(clock: &Arc<Clock>, d: Option<DateTime<Utc>>) {
    match d {
        Some(d) => clock.sleep_until(d).await,
        None => futures::future::pending().await,
    }
}

impl Interpreter {
    pub(super) async fn task_attempt(
        &self,
        state: &State,
        spec: &TaskSpec,
        raw: Value,
        at: &mut Cursor<'_>,
        mut visit: Visit<'_>,
    ) -> Result<Value, StatesError> {
        let name = state.name.as_str();
        let call = self.prepare_task(state, spec, &raw, &mut visit)?;
        let events = TaskEvents::new(&call.res);
        // `lambda:invoke` wraps the function's result (after its size is checked).
        let envelope = call.res.kind == ResourceKind::LambdaInvoke
            && call.res.pattern == Pattern::RequestResponse;
        events.scheduled(at, spec, &call, &self.info.region)?;
        let outcome = self
            .call_task(name, spec, call, &events, at)
            .await?
            .and_then(|value| {
                check_size(name, &value, "result")?;
                Ok(value)
            });
        match outcome {
            Ok(result) => {
                let result = if envelope {
                    task::lambda_invoke_envelope(result, &uuid::Uuid::new_v4().to_string())
                } else {
                    result
                };
                events.succeeded(at, &result)?;
                self.finish(state, &spec.common, raw, result, &visit)
            }
            Err(e) => {
                events.failed(at, &e)?;
                Err(e)
            }
        }
    }

    /// InputPath, the task token (issued first, so Parameters can read `$$.Task.Token`),
    /// Parameters, and the timeouts.
    fn prepare_task(
        &self,
        state: &State,
        spec: &TaskSpec,
        raw: &Value,
        visit: &mut Visit<'_>,
    ) -> Result<Call, StatesError> {
        let name = state.name.as_str();
        let effective_input = self.input_path(state, raw, visit)?;
        let res = task::parse_resource(&spec.resource);
        let token = if res.pattern == Pattern::WaitForTaskToken {
            let (t, rx) = self.tokens.issue(&self.info.arn);
            visit.token = Some(t.clone());
            Some((t, rx))
        } else {
            None
        };
        let params = match &spec.common.parameters {
            Some(t) => self.resolve(t, &effective_input, visit, "Parameters")?,
            None => effective_input,
        };
        check_size(name, &params, "input (after Parameters)")?;
        let ctx = self.context(visit);
        let secs = |n: &Option<Num>, what: &str| -> Result<Option<f64>, StatesError> {
            match n {
                None => Ok(None),
                Some(n) => {
                    let s = num_value(n, &params_input(raw, state, &ctx), &ctx)
                        .map_err(|e| StatesError::runtime(name, e))?;
                    if s <= 0.0 {
                        return Err(StatesError::runtime(
                            name,
                            format!("{what} must be positive, got {s}"),
                        ));
                    }
                    Ok(Some(s))
                }
            }
        };
        // AWS: a Task has no default timeout (the spec's 60 s default does not apply).
        let timeout = secs(&spec.timeout, "TimeoutSeconds")?;
        let heartbeat = secs(&spec.heartbeat, "HeartbeatSeconds")?;
        Ok(Call {
            res,
            token,
            params,
            ctx,
            timeout,
            heartbeat,
        })
    }

    /// Calls the handler within the timeout and, for `.waitForTaskToken`, waits for the
    /// token's answer. The outer error is the history's, which ends the attempt at once.
    async fn call_task(
        &self,
        name: &str,
        spec: &TaskSpec,
        call: Call,
        events: &TaskEvents,
        at: &mut Cursor<'_>,
    ) -> Result<Result<Value, StatesError>, HistoryFull> {
        let Call {
            res,
            token,
            params,
            ctx,
            timeout,
            heartbeat,
        } = call;
        let (function, payload) = match res.kind {
            ResourceKind::LambdaInvoke => (
                params
                    .get("FunctionName")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                params.get("Payload").cloned().unwrap_or(json!({})),
            ),
            ResourceKind::LambdaArn => (Some(spec.resource.clone()), params.clone()),
            ResourceKind::Other => (None, params.clone()),
        };
        let req = TaskRequest {
            resource: spec.resource.clone(),
            kind: res.kind.clone(),
            pattern: res.pattern,
            function,
            payload,
            parameters: params,
            task_token: token.as_ref().map(|(t, _)| t.clone()),
            state_name: name.to_string(),
            execution_arn: self.info.arn.clone(),
            context: ctx,
        };
        let deadline = timeout.map(|t| after(&self.clock, t));
        let submitted = tokio::select! {
            r = self.clock.external(self.handler.invoke(req)) => r.map_err(StatesError::from),
            _ = sleep_until_opt(&self.clock, deadline) => Err(timed_out("States.Timeout")),
        };
        let outcome = match token {
            None => submitted,
            Some((tok, mut rx)) => {
                let r = match submitted {
                    // A decision sent on the token while the invocation ran came first: in AWS
                    // the callback completes the task, and the invocation's later failure is
                    // ignored (the approval page may answer before notify's answer is lost).
                    Err(e) => match rx.try_recv() {
                        Ok(TokenMsg::Success(value)) => Ok(value),
                        Ok(TokenMsg::Failure { error, cause }) => {
                            Err(StatesError::new(error, cause))
                        }
                        _ => Err(e),
                    },
                    Ok(_) => {
                        at.record(
                            "TaskSubmitted",
                            Some("taskSubmittedEventDetails"),
                            events.with(
                                json!({"output": "{}", "outputDetails": {"truncated": false}}),
                            ),
                        )?;
                        self.wait_for_token(rx, deadline, heartbeat).await
                    }
                };
                // Later SendTask* calls for this token answer TaskTimedOut, as in AWS.
                self.tokens.close(&tok);
                r
            }
        };
        Ok(outcome)
    }

    /// Waits for SendTaskSuccess/Failure on the token, within the deadline and, when set, the
    /// heartbeat interval (each SendTaskHeartbeat restarts it).
    async fn wait_for_token(
        &self,
        mut rx: UnboundedReceiver<TokenMsg>,
        deadline: Option<DateTime<Utc>>,
        heartbeat: Option<f64>,
    ) -> Result<Value, StatesError> {
        let mut heartbeat_deadline = heartbeat.map(|h| after(&self.clock, h));
        loop {
            let recv = async {
                if self.token_waits_hold_clock {
                    self.clock.external(rx.recv()).await
                } else {
                    rx.recv().await
                }
            };
            let msg = tokio::select! {
                m = recv => m,
                _ = sleep_until_opt(&self.clock, deadline) => return Err(timed_out("States.Timeout")),
                _ = sleep_until_opt(&self.clock, heartbeat_deadline) => return Err(timed_out("States.HeartbeatTimeout")),
            };
            match msg {
                Some(TokenMsg::Success(value)) => return Ok(value),
                Some(TokenMsg::Failure { error, cause }) => {
                    return Err(StatesError::new(error, cause));
                }
                Some(TokenMsg::Heartbeat) => {
                    heartbeat_deadline = heartbeat.map(|h| after(&self.clock, h));
                }
                None => {
                    return Err(StatesError::new(
                        "States.Runtime",
                        "task token channel closed",
                    ));
                }
            }
        }
    }
}
