//! The ASL interpreter: runs one execution as a single future (see `clock` for why).
//!
//! One module per concern:
//! - `cursor`: where each thread of the execution is in the history;
//! - `data_flow`: the context object, InputPath/Parameters/ResultSelector/ResultPath/OutputPath;
//! - `simple`: the states that call nothing (Pass, Succeed, Fail, Choice, Wait);
//! - `retry`: Retry and Catch around the attempts of Task, Parallel and Map;
//! - `task_state`: Task (scheduling, invoking or waiting for the token, the outcome);
//! - `parallel` and `map`: the states that run sub-machines.

mod cursor;
mod data_flow;
mod map;
mod parallel;
mod retry;
mod simple;
mod task_state;

use crate::clock::Clock;
use crate::definition::{State, StateKind, StateMachine};
use crate::history::{History, HistoryFull};
use crate::task::{BoxFuture, TaskFailure, TaskHandler};
use crate::tokens::Tokens;
use chrono::{DateTime, SecondsFormat, Utc};
use cursor::Cursor;
pub use data_flow::resolve_template;
use serde_json::{Value, json};
use std::sync::Arc;

/// AWS's payload limit for state input/output and task results.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A failure as Step Functions names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct StatesError {
    /// The error name, e.g. `States.Timeout`; Retry and Catch match on it.
    pub error: String,
    /// A human-readable explanation.
    pub cause: String,
}

impl StatesError {
    /// A failure with this error name and cause.
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
    /// The execution ARN.
    pub arn: String,
    /// The execution name.
    pub name: String,
    /// The execution's input.
    pub input: Value,
    /// When the execution started.
    pub start: DateTime<Utc>,
    /// The state machine's role ARN.
    pub role_arn: String,
    /// The state machine ARN.
    pub state_machine_arn: String,
    /// The state machine name.
    pub state_machine_name: String,
    /// The engine's region, written into TaskScheduled events.
    pub region: String,
}

/// Runs one execution: calls tasks, records history and keeps time on the execution's clock.
pub struct Interpreter {
    /// Runs the Task states.
    pub handler: Arc<dyn TaskHandler>,
    /// Issues `.waitForTaskToken` tokens (the engine's, shared by all executions).
    pub tokens: Arc<Tokens>,
    /// The execution's clock.
    pub clock: Arc<Clock>,
    /// The execution's history.
    pub history: Arc<History>,
    /// What the context object (`$$`) reports about the execution.
    pub info: ExecInfo,
    /// When false, token waits don't hold the virtual clock still (see `clock`).
    pub token_waits_hold_clock: bool,
}

/// The id of a history event (0: none yet).
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

fn check_size(state: &str, value: &Value, what: &str) -> Result<(), StatesError> {
    let n = serde_json::to_string(value).map(|s| s.len()).unwrap_or(0);
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

impl Interpreter {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs a whole (sub-)machine whose first event follows event `prev`; returns its output
    /// and the id of its last event.
    pub fn run_machine<'a>(
        &'a self,
        sm: &'a StateMachine,
        input: Value,
        prev: Prev,
        item: Option<&'a (usize, Value)>,
    ) -> BoxFuture<'a, Result<(Value, Prev), StatesError>> {
        Box::pin(async move {
            let (output, at) = self.run_from(sm, input, self.cursor(prev), item).await?;
            Ok((output, at.last()))
        })
    }

    /// Runs a whole (sub-)machine from `at`; returns its output and where its history ends.
    fn run_from<'a>(
        &'a self,
        sm: &'a StateMachine,
        input: Value,
        mut at: Cursor<'a>,
        item: Option<&'a (usize, Value)>,
    ) -> BoxFuture<'a, Result<(Value, Cursor<'a>), StatesError>> {
        Box::pin(async move {
            let mut name = sm.start_at.as_str();
            let mut input = input;
            loop {
                let state = sm.states.get(name).ok_or_else(|| {
                    StatesError::new("States.Runtime", format!("no state named '{name}'"))
                })?;
                let ty = type_name(&state.kind);
                let entered = self.now();
                at.record(
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
                let (output, flow) = self.run_state(state, input, &mut at, visit).await?;
                check_size(name, &output, "output")?;
                at.record(
                    &format!("{ty}StateExited"),
                    Some("stateExitedEventDetails"),
                    json!({"name": name, "output": output.to_string(), "outputDetails": {"truncated": false}}),
                )?;
                match flow {
                    Flow::End => return Ok((output, at)),
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

    /// Runs one state: a flat dispatch on its type; the states that can fail and be retried
    /// (Task, Parallel, Map) run their attempts under [`Interpreter::with_retry`].
    async fn run_state<'s>(
        &'s self,
        state: &'s State,
        input: Value,
        at: &mut Cursor<'s>,
        visit: Visit<'s>,
    ) -> Result<(Value, Flow), StatesError> {
        match &state.kind {
            StateKind::Pass {
                parameters,
                result,
                result_path,
            } => self.pass(state, parameters, result, result_path, input, &visit),
            StateKind::Succeed => self.succeed(state, input, &visit),
            StateKind::Fail { error, cause } => self.fail(state, error, cause, &input, &visit),
            StateKind::Choice { choices, default } => {
                self.choice(state, choices, default, input, &visit)
            }
            StateKind::Wait(spec) => self.wait(state, spec, input, &visit).await,
            StateKind::Task(spec) => {
                self.with_retry(
                    state,
                    &spec.common,
                    input,
                    at,
                    visit,
                    |raw, mut at, visit| {
                        Box::pin(async move {
                            let r = self.task_attempt(state, spec, raw, &mut at, visit).await;
                            (r, at)
                        })
                    },
                )
                .await
            }
            StateKind::Parallel { branches, common } => {
                self.with_retry(state, common, input, at, visit, |raw, mut at, visit| {
                    Box::pin(async move {
                        let r = self
                            .parallel_attempt(state, branches, common, raw, &mut at, visit)
                            .await;
                        (r, at)
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
                self.with_retry(state, common, input, at, visit, |raw, mut at, visit| {
                    Box::pin(async move {
                        let spec = map::MapSpec {
                            processor,
                            items_path: items_path.as_ref(),
                            item_selector: item_selector.as_ref(),
                            max_concurrency: max_concurrency.as_ref(),
                            common,
                        };
                        let r = self.map_attempt(state, &spec, raw, &mut at, visit).await;
                        (r, at)
                    })
                })
                .await
            }
        }
    }
}
