//! The ASL interpreter: runs one execution as a single future (see `clock` for why).

use crate::clock::Clock;
use crate::definition::{
    Catcher, Compound, Num, ResultPath, State, StateKind, StateMachine, StrSource, Template,
    WaitSpec,
};
use crate::history::{History, HistoryFull};
use crate::paths::JsonPath;
use crate::task::{self, BoxFuture, Pattern, ResourceKind, TaskFailure, TaskHandler, TaskRequest};
use crate::tokens::{TokenMsg, Tokens};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// AWS's payload limit for state input/output and task results.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A failure as Step Functions names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct StatesError {
    pub error: String,
    pub cause: String,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        StatesError {
            error: error.into(),
            cause: cause.into(),
        }
    }
    fn runtime(state: &str, cause: impl std::fmt::Display) -> Self {
        Self::new(
            "States.Runtime",
            format!("An error occurred while executing the state '{state}'. {cause}"),
        )
    }
}

impl From<HistoryFull> for StatesError {
    fn from(e: HistoryFull) -> Self {
        StatesError::new("States.Runtime", e.to_string())
    }
}

impl From<TaskFailure> for StatesError {
    fn from(f: TaskFailure) -> Self {
        StatesError::new(f.error, f.cause)
    }
}

/// Whether a Retry/Catch `ErrorEquals` list matches `error`. AWS: `States.ALL` matches every
/// error except the terminal `States.Runtime` and `States.DataLimitExceeded`;
/// `States.TaskFailed` matches every error except `States.Timeout` (and those two).
pub fn error_matches(list: &[String], error: &str) -> bool {
    let terminal = error == "States.Runtime" || error == "States.DataLimitExceeded";
    list.iter().any(|e| {
        e == error
            || (e == "States.ALL" && !terminal)
            || (e == "States.TaskFailed" && !terminal && error != "States.Timeout")
    })
}

/// Fixed facts about an execution that the context object exposes.
#[derive(Debug, Clone)]
pub struct ExecInfo {
    pub arn: String,
    pub name: String,
    pub input: Value,
    pub start: DateTime<Utc>,
    pub role_arn: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub region: String,
}

pub struct Interp {
    pub handler: Arc<dyn TaskHandler>,
    pub tokens: Arc<Tokens>,
    pub clock: Arc<Clock>,
    pub history: Arc<History>,
    pub info: ExecInfo,
    /// When false, token waits don't hold the virtual clock still (see `clock`).
    pub token_waits_hold_clock: bool,
}

type Prev = u64;

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn type_name(k: &StateKind) -> &'static str {
    match k {
        StateKind::Pass { .. } => "Pass",
        StateKind::Task(_) => "Task",
        StateKind::Choice { .. } => "Choice",
        StateKind::Wait(_) => "Wait",
        StateKind::Succeed => "Succeed",
        StateKind::Fail { .. } => "Fail",
        StateKind::Parallel { .. } => "Parallel",
        StateKind::Map { .. } => "Map",
    }
}

/// Per-state-visit facts for the context object.
#[derive(Clone)]
struct Visit<'a> {
    state: &'a str,
    entered: DateTime<Utc>,
    retry_count: u32,
    token: Option<String>,
    item: Option<&'a (usize, Value)>,
}

fn check_size(state: &str, v: &Value, what: &str) -> Result<(), StatesError> {
    let n = serde_json::to_string(v).map(|s| s.len()).unwrap_or(0);
    if n > MAX_PAYLOAD_BYTES {
        return Err(StatesError::new(
            "States.DataLimitExceeded",
            format!(
                "The state/task '{state}' returned a {what} of {n} bytes, larger than the maximum of {MAX_PAYLOAD_BYTES} bytes."
            ),
        ));
    }
    Ok(())
}

enum Flow {
    Next(String),
    End,
}

impl Interp {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn push(
        &self,
        prev: Prev,
        ty: &str,
        key: Option<&'static str>,
        details: Value,
    ) -> Result<Prev, StatesError> {
        Ok(self.history.push(prev, self.now(), ty, key, details)?)
    }

    fn context(&self, v: &Visit<'_>) -> Value {
        let mut c = json!({
            "Execution": {
                "Id": self.info.arn,
                "Name": self.info.name,
                "Input": self.info.input,
                "StartTime": ts(self.info.start),
                "RoleArn": self.info.role_arn,
                "RedriveCount": 0,
            },
            "State": {"Name": v.state, "EnteredTime": ts(v.entered), "RetryCount": v.retry_count},
            "StateMachine": {"Id": self.info.state_machine_arn, "Name": self.info.state_machine_name},
        });
        if let Some(t) = &v.token {
            c["Task"] = json!({"Token": t});
        }
        if let Some((i, val)) = v.item {
            c["Map"] = json!({"Item": {"Index": i, "Value": val}});
        }
        c
    }

    /// The context object, built only when the path reads it (most paths don't, and building
    /// it is the bulk of a Pass state's cost).
    fn context_for(&self, p: &JsonPath, v: &Visit<'_>) -> Value {
        if p.is_context() {
            self.context(v)
        } else {
            Value::Null
        }
    }

    /// Runs a whole (sub-)machine; returns its output and the id of its last event.
    pub fn run_machine<'a>(
        &'a self,
        sm: &'a StateMachine,
        input: Value,
        mut prev: Prev,
        item: Option<&'a (usize, Value)>,
    ) -> BoxFuture<'a, Result<(Value, Prev), StatesError>> {
        Box::pin(async move {
            let mut name = sm.start_at.as_str();
            let mut input = input;
            loop {
                let state = sm.states.get(name).ok_or_else(|| {
                    StatesError::new("States.Runtime", format!("no state named '{name}'"))
                })?;
                let ty = type_name(&state.kind);
                let entered = self.now();
                prev = self.push(
                    prev,
                    &format!("{ty}StateEntered"),
                    Some("stateEnteredEventDetails"),
                    json!({"name": name, "input": input.to_string(), "inputDetails": {"truncated": false}}),
                )?;
                let visit = Visit {
                    state: name,
                    entered,
                    retry_count: 0,
                    token: None,
                    item,
                };
                let (output, flow) = self.run_state(state, input, &mut prev, visit).await?;
                check_size(name, &output, "output")?;
                prev = self.push(
                    prev,
                    &format!("{ty}StateExited"),
                    Some("stateExitedEventDetails"),
                    json!({"name": name, "output": output.to_string(), "outputDetails": {"truncated": false}}),
                )?;
                match flow {
                    Flow::End => return Ok((output, prev)),
                    Flow::Next(n) => {
                        name = sm
                            .states
                            .get_key_value(&n)
                            .map(|(k, _)| k.as_str())
                            .ok_or_else(|| {
                                StatesError::new("States.Runtime", format!("no state named '{n}'"))
                            })?;
                        input = output;
                    }
                }
            }
        })
    }

    fn next_of(state: &State) -> Flow {
        match &state.next {
            Some(n) => Flow::Next(n.clone()),
            None => Flow::End,
        }
    }

    fn input_path(
        &self,
        state: &State,
        input: &Value,
        v: &Visit<'_>,
    ) -> Result<Value, StatesError> {
        match &state.input_path {
            None => Ok(json!({})),
            Some(p) => p.select(input, &self.context_for(p, v)).ok_or_else(|| {
                StatesError::runtime(
                    state.name.as_str(),
                    format!("Invalid input path '{p}': could not be found in the input '{input}'"),
                )
            }),
        }
    }

    fn output_path(
        &self,
        state: &State,
        output: Value,
        v: &Visit<'_>,
    ) -> Result<Value, StatesError> {
        match &state.output_path {
            None => Ok(json!({})),
            Some(p) => p.select(&output, &self.context_for(p, v)).ok_or_else(|| {
                StatesError::runtime(
                    state.name.as_str(),
                    format!(
                        "Invalid output path '{p}': could not be found in the output '{output}'"
                    ),
                )
            }),
        }
    }

    fn resolve(
        &self,
        t: &Template,
        input: &Value,
        v: &Visit<'_>,
        field: &str,
    ) -> Result<Value, StatesError> {
        let ctx = self.context(v);
        resolve_template(t, input, &ctx, field)
            .map_err(|cause| StatesError::runtime(v.state, cause))
    }

    fn result_path(
        state: &str,
        rp: &ResultPath,
        raw: Value,
        result: Value,
    ) -> Result<Value, StatesError> {
        match rp {
            None => Ok(raw),
            Some(p) => p.set(raw, result).map_err(|e| {
                StatesError::new(
                    "States.ResultPathMatchFailure",
                    format!("State '{state}': {e}"),
                )
            }),
        }
    }

    async fn run_state(
        &self,
        state: &State,
        input: Value,
        prev: &mut Prev,
        v: Visit<'_>,
    ) -> Result<(Value, Flow), StatesError> {
        let name = state.name.as_str();
        match &state.kind {
            StateKind::Pass {
                parameters,
                result,
                result_path,
            } => {
                let eff = self.input_path(state, &input, &v)?;
                let res = match (result, parameters) {
                    (Some(r), _) => r.clone(),
                    (None, Some(p)) => self.resolve(p, &eff, &v, "Parameters")?,
                    (None, None) => eff,
                };
                let out = Self::result_path(name, result_path, input, res)?;
                Ok((self.output_path(state, out, &v)?, Self::next_of(state)))
            }
            StateKind::Succeed => {
                let eff = self.input_path(state, &input, &v)?;
                Ok((self.output_path(state, eff, &v)?, Flow::End))
            }
            StateKind::Fail { error, cause } => {
                let ctx = self.context(&v);
                let get = |s: &Option<StrSource>,
                           what: &str|
                 -> Result<Option<String>, StatesError> {
                    Ok(match s {
                        None => None,
                        Some(StrSource::Lit(l)) => Some(l.clone()),
                        Some(StrSource::Path(p)) => match p.select(&input, &ctx) {
                            Some(Value::String(s)) => Some(s),
                            Some(other) => {
                                return Err(StatesError::runtime(
                                    name,
                                    format!(
                                        "The {what}Path '{p}' must select a string, got {other}"
                                    ),
                                ));
                            }
                            None => {
                                return Err(StatesError::runtime(
                                    name,
                                    format!(
                                        "The {what}Path '{p}' could not be found in the input '{input}'"
                                    ),
                                ));
                            }
                        },
                        Some(StrSource::Intrinsic(c)) => match c.eval(&input, &ctx) {
                            Ok(Value::String(s)) => Some(s),
                            Ok(other) => Some(other.to_string()),
                            Err(e) => return Err(StatesError::runtime(name, e)),
                        },
                    })
                };
                let error = get(error, "Error")?;
                let cause = get(cause, "Cause")?;
                Err(StatesError {
                    error: error.unwrap_or_default(),
                    cause: cause.unwrap_or_default(),
                })
            }
            StateKind::Choice { choices, default } => {
                let eff = self.input_path(state, &input, &v)?;
                let ctx = self.context(&v);
                let mut target = None;
                for (rule, next) in choices {
                    if rule
                        .eval(&eff, &ctx)
                        .map_err(|e| StatesError::runtime(name, e))?
                    {
                        target = Some(next.clone());
                        break;
                    }
                }
                let target = target.or_else(|| default.clone()).ok_or_else(|| {
                    StatesError::new(
                        "States.NoChoiceMatched",
                        format!("No Matches! (state '{name}')"),
                    )
                })?;
                Ok((self.output_path(state, eff, &v)?, Flow::Next(target)))
            }
            StateKind::Wait(spec) => {
                let eff = self.input_path(state, &input, &v)?;
                let ctx = self.context(&v);
                let until = match spec {
                    WaitSpec::Seconds(n) => {
                        let secs =
                            num_value(n, &eff, &ctx).map_err(|e| StatesError::runtime(name, e))?;
                        if secs < 0.0 || secs.fract() != 0.0 {
                            return Err(StatesError::runtime(
                                name,
                                format!("Wait seconds must be a non-negative integer, got {secs}"),
                            ));
                        }
                        self.now() + TimeDelta::seconds(secs.min(99_999_999.0) as i64)
                    }
                    WaitSpec::Timestamp(t) => {
                        parse_time(t).map_err(|e| StatesError::runtime(name, e))?
                    }
                    WaitSpec::TimestampPath(p) => match p.select(&eff, &ctx) {
                        Some(Value::String(s)) => {
                            parse_time(&s).map_err(|e| StatesError::runtime(name, e))?
                        }
                        other => {
                            return Err(StatesError::runtime(
                                name,
                                format!(
                                    "TimestampPath '{p}' must select an RFC3339 timestamp string, got {other:?}"
                                ),
                            ));
                        }
                    },
                };
                self.clock.sleep_until(until).await;
                Ok((self.output_path(state, eff, &v)?, Self::next_of(state)))
            }
            StateKind::Task(spec) => {
                self.with_retry(state, &spec.common, input, prev, v, |raw, mut p, v| {
                    Box::pin(
                        async move { (self.task_attempt(state, spec, raw, &mut p, v).await, p) },
                    )
                })
                .await
            }
            StateKind::Parallel { branches, common } => {
                self.with_retry(state, common, input, prev, v, |raw, mut p, v| {
                    Box::pin(async move {
                        (
                            self.parallel_attempt(state, branches, common, raw, &mut p, v)
                                .await,
                            p,
                        )
                    })
                })
                .await
            }
            StateKind::Map {
                processor,
                items_path,
                item_selector,
                max_concurrency,
                common,
            } => {
                self.with_retry(state, common, input, prev, v, |raw, mut p, v| {
                    Box::pin(async move {
                        let r = self
                            .map_attempt(
                                state,
                                processor,
                                items_path.as_ref(),
                                item_selector.as_ref(),
                                max_concurrency.as_ref(),
                                common,
                                raw,
                                &mut p,
                                v,
                            )
                            .await;
                        (r, p)
                    })
                })
                .await
            }
        }
    }

    /// Runs attempts of a Task/Parallel/Map state under its Retry and Catch rules.
    async fn with_retry<'s, F>(
        &'s self,
        state: &'s State,
        common: &'s Compound,
        input: Value,
        prev: &mut Prev,
        v: Visit<'s>,
        attempt: F,
    ) -> Result<(Value, Flow), StatesError>
    where
        F: Fn(Value, Prev, Visit<'s>) -> BoxFuture<'s, (Result<Value, StatesError>, Prev)>,
    {
        let mut counts = vec![0u32; common.retry.len()];
        let mut retry_count = 0u32;
        loop {
            let visit = Visit {
                retry_count,
                ..v.clone()
            };
            let (r, p) = attempt(input.clone(), *prev, visit).await;
            *prev = p;
            let err = match r {
                Ok(out) => return Ok((out, Self::next_of(state))),
                Err(e) => e,
            };
            if let Some(i) = common
                .retry
                .iter()
                .position(|r| error_matches(&r.errors, &err.error))
            {
                let r = &common.retry[i];
                if counts[i] < r.max_attempts {
                    let mut delay = r.interval * r.backoff.powi(counts[i] as i32);
                    if let Some(m) = r.max_delay {
                        delay = delay.min(m);
                    }
                    if r.jitter_full {
                        delay *= rand::random::<f64>();
                    }
                    counts[i] += 1;
                    retry_count += 1;
                    self.clock
                        .sleep(Duration::from_secs_f64(delay.clamp(0.0, 1e9)))
                        .await;
                    continue;
                }
            }
            if let Some(c) = common
                .catch
                .iter()
                .find(|c| error_matches(&c.errors, &err.error))
            {
                return self.caught(state, c, input, err);
            }
            return Err(err);
        }
    }

    fn caught(
        &self,
        state: &State,
        c: &Catcher,
        input: Value,
        err: StatesError,
    ) -> Result<(Value, Flow), StatesError> {
        let out = Self::result_path(
            &state.name,
            &c.result_path,
            input,
            json!({"Error": err.error, "Cause": err.cause}),
        )?;
        Ok((out, Flow::Next(c.next.clone())))
    }

    /// ResultSelector → ResultPath → OutputPath, shared by Task, Parallel and Map.
    fn finish(
        &self,
        state: &State,
        common: &Compound,
        raw: Value,
        result: Value,
        v: &Visit<'_>,
    ) -> Result<Value, StatesError> {
        check_size(&state.name, &result, "result")?;
        let result = match &common.result_selector {
            Some(t) => self.resolve(t, &result, v, "ResultSelector")?,
            None => result,
        };
        let out = Self::result_path(&state.name, &common.result_path, raw, result)?;
        self.output_path(state, out, v)
    }

    async fn task_attempt(
        &self,
        state: &State,
        spec: &crate::definition::TaskSpec,
        raw: Value,
        prev: &mut Prev,
        mut v: Visit<'_>,
    ) -> Result<Value, StatesError> {
        let name = state.name.as_str();
        let eff = self.input_path(state, &raw, &v)?;
        let res = task::parse_resource(&spec.resource);
        // The token must exist before Parameters are resolved, so `$$.Task.Token` can be used.
        let token = if res.pattern == Pattern::WaitForTaskToken {
            let (t, rx) = self.tokens.issue(&self.info.arn);
            v.token = Some(t.clone());
            Some((t, rx))
        } else {
            None
        };
        let params = match &spec.common.parameters {
            Some(t) => self.resolve(t, &eff, &v, "Parameters")?,
            None => eff,
        };
        check_size(name, &params, "input (after Parameters)")?;
        let ctx = self.context(&v);
        let secs = |n: &Option<Num>, what: &str| -> Result<Option<f64>, StatesError> {
            match n {
                None => Ok(None),
                Some(n) => {
                    let s = num_value(n, &params_input(&raw, state, &ctx), &ctx)
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
        let lambda_events = res.kind == ResourceKind::LambdaArn;
        let rd = json!({"resourceType": res.resource_type, "resource": res.resource_name});
        let with = |extra: Value| {
            let mut m = rd.as_object().cloned().unwrap_or_default();
            if let Value::Object(e) = extra {
                m.extend(e);
            }
            Value::Object(m)
        };
        if lambda_events {
            let mut d = json!({"resource": spec.resource, "input": params.to_string(), "inputDetails": {"truncated": false}});
            if let Some(t) = timeout {
                d["timeoutInSeconds"] = json!(t as u64);
            }
            *prev = self.push(
                *prev,
                "LambdaFunctionScheduled",
                Some("lambdaFunctionScheduledEventDetails"),
                d,
            )?;
            *prev = self.push(*prev, "LambdaFunctionStarted", None, json!({}))?;
        } else {
            let mut d = with(json!({"region": self.info.region, "parameters": params.to_string()}));
            if let Some(t) = timeout {
                d["timeoutInSeconds"] = json!(t as u64);
            }
            if let Some(h) = heartbeat {
                d["heartbeatInSeconds"] = json!(h as u64);
            }
            *prev = self.push(*prev, "TaskScheduled", Some("taskScheduledEventDetails"), d)?;
            *prev = self.push(
                *prev,
                "TaskStarted",
                Some("taskStartedEventDetails"),
                rd.clone(),
            )?;
        }

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
        let started = self.now();
        let deadline = timeout.map(|t| started + TimeDelta::milliseconds((t * 1000.0) as i64));
        let sleep_opt = |d: Option<DateTime<Utc>>| {
            let c = self.clock.clone();
            async move {
                match d {
                    Some(d) => c.sleep_until(d).await,
                    None => futures::future::pending().await,
                }
            }
        };
        let timed_out = |error: &str| StatesError::new(error, "");

        let outcome: Result<Value, StatesError> = match token {
            None => {
                let call = self.clock.external(self.handler.invoke(req));
                tokio::select! {
                    r = call => r.map_err(StatesError::from),
                    _ = sleep_opt(deadline) => Err(timed_out("States.Timeout")),
                }
            }
            Some((tok, mut rx)) => {
                let submitted = tokio::select! {
                    r = self.clock.external(self.handler.invoke(req)) => r.map_err(StatesError::from),
                    _ = sleep_opt(deadline) => Err(timed_out("States.Timeout")),
                };
                let r = match submitted {
                    Err(e) => Err(e),
                    Ok(_) => {
                        *prev = self.push(
                            *prev,
                            "TaskSubmitted",
                            Some("taskSubmittedEventDetails"),
                            with(json!({"output": "{}", "outputDetails": {"truncated": false}})),
                        )?;
                        let mut hb = heartbeat
                            .map(|h| self.now() + TimeDelta::milliseconds((h * 1000.0) as i64));
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
                                _ = sleep_opt(deadline) => break Err(timed_out("States.Timeout")),
                                _ = sleep_opt(hb) => break Err(timed_out("States.HeartbeatTimeout")),
                            };
                            match msg {
                                Some(TokenMsg::Success(v)) => break Ok(v),
                                Some(TokenMsg::Failure { error, cause }) => {
                                    break Err(StatesError::new(error, cause));
                                }
                                Some(TokenMsg::Heartbeat) => {
                                    hb = heartbeat.map(|h| {
                                        self.now() + TimeDelta::milliseconds((h * 1000.0) as i64)
                                    });
                                }
                                None => {
                                    break Err(StatesError::new(
                                        "States.Runtime",
                                        "task token channel closed",
                                    ));
                                }
                            }
                        }
                    }
                };
                // Later SendTask* calls for this token answer TaskTimedOut, as in AWS.
                self.tokens.close(&tok);
                r
            }
        };

        let outcome = outcome.and_then(|v| {
            check_size(name, &v, "result")?;
            Ok(v)
        });
        match outcome {
            Ok(result) => {
                let result = if res.kind == ResourceKind::LambdaInvoke
                    && res.pattern == Pattern::RequestResponse
                {
                    task::lambda_invoke_envelope(result, &uuid::Uuid::new_v4().to_string())
                } else {
                    result
                };
                if lambda_events {
                    *prev = self.push(*prev, "LambdaFunctionSucceeded", Some("lambdaFunctionSucceededEventDetails"), json!({"output": result.to_string(), "outputDetails": {"truncated": false}}))?;
                } else {
                    *prev = self.push(*prev, "TaskSucceeded", Some("taskSucceededEventDetails"), with(json!({"output": result.to_string(), "outputDetails": {"truncated": false}})))?;
                }
                self.finish(state, &spec.common, raw, result, &v)
            }
            Err(e) => {
                let is_timeout =
                    e.error == "States.Timeout" || e.error == "States.HeartbeatTimeout";
                let d = json!({"error": e.error, "cause": e.cause});
                match (lambda_events, is_timeout) {
                    (true, true) => {
                        *prev = self.push(
                            *prev,
                            "LambdaFunctionTimedOut",
                            Some("lambdaFunctionTimedOutEventDetails"),
                            d,
                        )?
                    }
                    (true, false) => {
                        *prev = self.push(
                            *prev,
                            "LambdaFunctionFailed",
                            Some("lambdaFunctionFailedEventDetails"),
                            d,
                        )?
                    }
                    (false, true) => {
                        *prev = self.push(
                            *prev,
                            "TaskTimedOut",
                            Some("taskTimedOutEventDetails"),
                            with(d),
                        )?
                    }
                    (false, false) => {
                        *prev =
                            self.push(*prev, "TaskFailed", Some("taskFailedEventDetails"), with(d))?
                    }
                }
                Err(e)
            }
        }
    }

    fn effective_input(
        &self,
        state: &State,
        common: &Compound,
        raw: &Value,
        v: &Visit<'_>,
    ) -> Result<Value, StatesError> {
        let eff = self.input_path(state, raw, v)?;
        let eff = match &common.parameters {
            Some(t) => self.resolve(t, &eff, v, "Parameters")?,
            None => eff,
        };
        check_size(&state.name, &eff, "input (after Parameters)")?;
        Ok(eff)
    }

    async fn parallel_attempt(
        &self,
        state: &State,
        branches: &[StateMachine],
        common: &Compound,
        raw: Value,
        prev: &mut Prev,
        v: Visit<'_>,
    ) -> Result<Value, StatesError> {
        let eff = self.effective_input(state, common, &raw, &v)?;
        *prev = self.push(*prev, "ParallelStateStarted", None, json!({}))?;
        let start = *prev;
        let runs = branches.iter().map(|b| {
            let eff = eff.clone();
            async move { self.run_machine(b, eff, start, None).await.map(|(o, _)| o) }
        });
        // try_join_all drops (aborts) the other branches as soon as one fails, like AWS.
        match futures::future::try_join_all(runs).await {
            Ok(outs) => {
                *prev = self.push(*prev, "ParallelStateSucceeded", None, json!({}))?;
                self.finish(state, common, raw, Value::Array(outs), &v)
            }
            Err(e) => {
                *prev = self.push(*prev, "ParallelStateFailed", None, json!({}))?;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn map_attempt(
        &self,
        state: &State,
        processor: &StateMachine,
        items_path: Option<&JsonPath>,
        item_selector: Option<&Template>,
        max_concurrency: Option<&Num>,
        common: &Compound,
        raw: Value,
        prev: &mut Prev,
        v: Visit<'_>,
    ) -> Result<Value, StatesError> {
        let name = state.name.as_str();
        let eff = self.input_path(state, &raw, &v)?;
        let ctx = self.context(&v);
        let items = match items_path {
            None => json!({}),
            Some(p) => p.select(&eff, &ctx).ok_or_else(|| {
                StatesError::runtime(
                    name,
                    format!(
                        "Invalid path '{p}': The ItemsPath field could not be found in the input"
                    ),
                )
            })?,
        };
        let Value::Array(items) = items else {
            return Err(StatesError::runtime(
                name,
                format!("Item selection for Map state '{name}' must be a JSON array, got {items}"),
            ));
        };
        let limit = match max_concurrency {
            None => 0,
            Some(n) => {
                num_value(n, &eff, &ctx).map_err(|e| StatesError::runtime(name, e))? as usize
            }
        };
        let limit = if limit == 0 {
            items.len().max(1)
        } else {
            limit
        };
        *prev = self.push(
            *prev,
            "MapStateStarted",
            Some("mapStateStartedEventDetails"),
            json!({"length": items.len()}),
        )?;
        let start = *prev;
        let mut inputs = Vec::with_capacity(items.len());
        let entries: Vec<(usize, Value)> = items.into_iter().enumerate().collect();
        for entry in &entries {
            let item_input = match item_selector {
                Some(t) => {
                    let iv = Visit {
                        item: Some(entry),
                        ..v.clone()
                    };
                    self.resolve(t, &eff, &iv, "ItemSelector")?
                }
                None => entry.1.clone(),
            };
            inputs.push(item_input);
        }
        let entries = &entries;
        let runs = inputs
            .into_iter()
            .enumerate()
            .map(move |(i, input)| async move {
                let entry = &entries[i];
                let p = self.push(
                    start,
                    "MapIterationStarted",
                    Some("mapIterationStartedEventDetails"),
                    json!({"name": name, "index": i}),
                )?;
                match self.run_machine(processor, input, p, Some(entry)).await {
                    Ok((o, last)) => {
                        self.push(
                            last,
                            "MapIterationSucceeded",
                            Some("mapIterationSucceededEventDetails"),
                            json!({"name": name, "index": i}),
                        )?;
                        Ok(o)
                    }
                    Err(e) => {
                        let _ = self.push(
                            p,
                            "MapIterationFailed",
                            Some("mapIterationFailedEventDetails"),
                            json!({"name": name, "index": i}),
                        );
                        Err(e)
                    }
                }
            });
        let result: Result<Vec<Value>, StatesError> = futures::stream::iter(runs)
            .buffered(limit)
            .try_collect()
            .await;
        match result {
            Ok(outs) => {
                *prev = self.push(*prev, "MapStateSucceeded", None, json!({}))?;
                self.finish(state, common, raw, Value::Array(outs), &v)
            }
            Err(e) => {
                *prev = self.push(*prev, "MapStateFailed", None, json!({}))?;
                Err(e)
            }
        }
    }
}

/// The input `*Path` timeout fields read from: the state's effective input.
fn params_input(raw: &Value, state: &State, ctx: &Value) -> Value {
    match &state.input_path {
        None => json!({}),
        Some(p) => p.select(raw, ctx).unwrap_or(Value::Null),
    }
}

fn num_value(n: &Num, input: &Value, ctx: &Value) -> Result<f64, String> {
    match n {
        Num::Lit(x) => Ok(*x),
        Num::Path(p) => match p.select(input, ctx) {
            Some(Value::Number(x)) => x.as_f64().ok_or_else(|| format!("'{p}' is not a number")),
            Some(other) => Err(format!("The path '{p}' must select a number, got {other}")),
            None => Err(format!(
                "The path '{p}' could not be found in the input '{input}'"
            )),
        },
    }
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("'{s}' is not an RFC3339 timestamp: {e}"))
}

/// Resolves a payload template. Errors are the cause text of a States.Runtime failure.
pub fn resolve_template(
    t: &Template,
    input: &Value,
    ctx: &Value,
    field: &str,
) -> Result<Value, String> {
    match t {
        Template::Lit(v) => Ok(v.clone()),
        Template::Path(p) => p.select(input, ctx).ok_or_else(|| {
            let src = if p.is_context() { ctx } else { input };
            format!("The JSONPath '{p}' specified for the field '{field}.$' could not be found in the input '{src}'")
        }),
        Template::Intrinsic(c) => c.eval(input, ctx).map_err(|e| format!("The function for field '{field}.$' failed: {e}")),
        Template::Object(fields) => {
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert(k.clone(), resolve_template(v, input, ctx, k)?);
            }
            Ok(Value::Object(m))
        }
        Template::Array(items) => items.iter().map(|i| resolve_template(i, input, ctx, field)).collect::<Result<Vec<_>, _>>().map(Value::Array),
    }
}
