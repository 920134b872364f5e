//! The engine: state machines, executions and task tokens, with Step Functions' API semantics.
//! The HTTP endpoint (`service::http`) is a thin JSON layer over these methods; embedders such
//! as the drill can call them directly.

use crate::clock::{Clock, ClockMode};
use crate::definition::{self, StateMachine};
use crate::history::{History, HistoryEvent};
use crate::interpreter::{ExecInfo, Interpreter, MAX_PAYLOAD_BYTES, StatesError};
use crate::task::TaskHandler;
use crate::tokens::{TokenError, TokenMsg, Tokens};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Errors named and shaped like the Step Functions API's (`__type` on the wire).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// An ARN is malformed.
    #[error("{0}")]
    InvalidArn(String),
    /// A state machine or execution name is not 1-80 letters, digits, `-` or `_`.
    #[error("{0}")]
    InvalidName(String),
    /// The definition does not parse or validate.
    #[error("{0}")]
    InvalidDefinition(String),
    /// The execution input is not JSON, or exceeds the payload limit.
    #[error("{0}")]
    InvalidExecutionInput(String),
    /// SendTaskSuccess output is not JSON.
    #[error("{0}")]
    InvalidOutput(String),
    /// A task token that does not decode.
    #[error("{0}")]
    InvalidToken(String),
    /// A well-formed task token that this engine never issued.
    #[error("{0}")]
    TaskDoesNotExist(String),
    /// A task token whose task has already finished.
    #[error("{0}")]
    TaskTimedOut(String),
    /// An execution of that name exists (and is not the same running one started again).
    #[error("{0}")]
    ExecutionAlreadyExists(String),
    /// No execution has that ARN.
    #[error("{0}")]
    ExecutionDoesNotExist(String),
    /// No state machine has that ARN.
    #[error("{0}")]
    StateMachineDoesNotExist(String),
    /// A different state machine already has that name.
    #[error("{0}")]
    StateMachineAlreadyExists(String),
    /// A request refused for another reason: a missing field, a bad filter or pagination token, an
    /// unsupported option.
    #[error("{0}")]
    ValidationException(String),
    /// An operation the endpoint does not answer (state machine operations in embedded mode).
    #[error("{0}")]
    UnknownOperation(String),
}

impl ServiceError {
    /// The `__type` the AWS SDKs map to typed errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServiceError::InvalidArn(_) => "InvalidArn",
            ServiceError::InvalidName(_) => "InvalidName",
            ServiceError::InvalidDefinition(_) => "InvalidDefinition",
            ServiceError::InvalidExecutionInput(_) => "InvalidExecutionInput",
            ServiceError::InvalidOutput(_) => "InvalidOutput",
            ServiceError::InvalidToken(_) => "InvalidToken",
            ServiceError::TaskDoesNotExist(_) => "TaskDoesNotExist",
            ServiceError::TaskTimedOut(_) => "TaskTimedOut",
            ServiceError::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            ServiceError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            ServiceError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            ServiceError::StateMachineAlreadyExists(_) => "StateMachineAlreadyExists",
            ServiceError::ValidationException(_) => "ValidationException",
            ServiceError::UnknownOperation(_) => "UnknownOperationException",
        }
    }
}

impl From<TokenError> for ServiceError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid(_) => ServiceError::InvalidToken(e.to_string()),
            TokenError::DoesNotExist => ServiceError::TaskDoesNotExist(e.to_string()),
            TokenError::TimedOut => ServiceError::TaskTimedOut(e.to_string()),
        }
    }
}

/// Engine-wide settings. The default: virtual clock, region `us-east-1`, account `123456789012`,
/// token waits holding the clock.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The clock mode every execution runs on.
    pub clock: ClockMode,
    /// The region written into ARNs and TaskScheduled events.
    pub region: String,
    /// The account id written into ARNs.
    pub account: String,
    /// Token waits hold the virtual clock still (the default; a person may be about to answer).
    pub token_waits_hold_clock: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            clock: ClockMode::Virtual,
            region: "us-east-1".into(),
            account: "123456789012".into(),
            token_waits_hold_clock: true,
        }
    }
}

/// An execution's status, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// Still running.
    Running,
    /// Reached its end successfully.
    Succeeded,
    /// Ended with an error: a Fail state or an error nothing caught.
    Failed,
    /// Ran past the machine's `TimeoutSeconds`.
    TimedOut,
    /// Stopped by StopExecution.
    Aborted,
}

impl ExecutionStatus {
    /// The API's spelling (`RUNNING`, `TIMED_OUT`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }
    /// The status with the API spelling `s`, as ListExecutions' `statusFilter` gives it.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::TimedOut,
            Self::Aborted,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A registered state machine, as DescribeStateMachine reports it.
#[derive(Debug, Clone)]
pub struct StateMachineRecord {
    /// The state machine ARN.
    pub arn: String,
    /// The state machine name.
    pub name: String,
    /// The definition text as stored (CreateStateMachine applies substitutions first).
    pub definition: String,
    /// The role ARN; only reported (history, context object), never checked.
    pub role_arn: String,
    /// When it was created (wall clock).
    pub created: DateTime<Utc>,
    /// When UpdateStateMachine last changed it.
    pub updated: Option<DateTime<Utc>>,
    /// The validated model that new executions run.
    pub parsed: Arc<StateMachine>,
}

/// A snapshot of an execution, as DescribeExecution reports it.
#[derive(Debug, Clone)]
pub struct ExecutionDescription {
    /// The execution ARN.
    pub arn: String,
    /// The execution name.
    pub name: String,
    /// The ARN of the state machine it runs.
    pub state_machine_arn: String,
    /// Its status when the snapshot was taken.
    pub status: ExecutionStatus,
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended, on the execution's clock; `None` while running.
    pub stop: Option<DateTime<Utc>>,
    /// The input, as sent.
    pub input: String,
    /// The output JSON, once it has succeeded.
    pub output: Option<String>,
    /// The error name, once it has failed, timed out, or been stopped with one.
    pub error: Option<String>,
    /// The cause that goes with `error`.
    pub cause: Option<String>,
}

struct Outcome {
    status: ExecutionStatus,
    stop: Option<DateTime<Utc>>,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

struct ExecutionRecord {
    arn: String,
    name: String,
    state_machine_arn: String,
    input: String,
    start: DateTime<Utc>,
    history: Arc<History>,
    clock: Arc<Clock>,
    outcome: Mutex<Outcome>,
    done: watch::Sender<bool>,
    stop: Mutex<Option<oneshot::Sender<(String, String)>>>,
}

impl ExecutionRecord {
    fn describe(&self) -> ExecutionDescription {
        let o = lock(&self.outcome);
        ExecutionDescription {
            arn: self.arn.clone(),
            name: self.name.clone(),
            state_machine_arn: self.state_machine_arn.clone(),
            status: o.status,
            start: self.start,
            stop: o.stop,
            input: self.input.clone(),
            output: o.output.clone(),
            error: o.error.clone(),
            cause: o.cause.clone(),
        }
    }

    /// Records the terminal outcome once; later attempts (a stop racing completion) lose.
    fn finish(
        &self,
        status: ExecutionStatus,
        output: Option<String>,
        error: Option<String>,
        cause: Option<String>,
    ) -> bool {
        // A Fail state without Error/Cause leaves them out of DescribeExecution, as in AWS.
        let error = error.filter(|e| !e.is_empty());
        let cause = cause.filter(|c| !c.is_empty());
        let mut o = lock(&self.outcome);
        if o.status != ExecutionStatus::Running {
            return false;
        }
        let now = self.clock.now();
        let (ty, key, details) = match status {
            ExecutionStatus::Succeeded => (
                "ExecutionSucceeded",
                "executionSucceededEventDetails",
                serde_json::json!({"output": output.clone().unwrap_or_default(), "outputDetails": {"truncated": false}}),
            ),
            ExecutionStatus::Failed => (
                "ExecutionFailed",
                "executionFailedEventDetails",
                serde_json::json!({"error": error, "cause": cause}),
            ),
            ExecutionStatus::TimedOut => (
                "ExecutionTimedOut",
                "executionTimedOutEventDetails",
                serde_json::json!({"error": error, "cause": cause}),
            ),
            _ => (
                "ExecutionAborted",
                "executionAbortedEventDetails",
                serde_json::json!({"error": error, "cause": cause}),
            ),
        };
        self.history
            .push_final(self.history.last_id(), now, ty, key, details);
        *o = Outcome {
            status,
            stop: Some(now),
            output,
            error,
            cause,
        };
        // send_replace: plain send() drops the value when nobody is subscribed yet.
        self.done.send_replace(true);
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner {
    cfg: EngineConfig,
    handler: Arc<dyn TaskHandler>,
    machines: Mutex<BTreeMap<String, StateMachineRecord>>,
    executions: Mutex<Vec<Arc<ExecutionRecord>>>,
    tokens: Arc<Tokens>,
}

/// The local Step Functions service: state machines, executions and task tokens. Cheap to clone;
/// clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 80
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Engine {
    /// An engine whose Task states run through `handler`.
    pub fn new(handler: Arc<dyn TaskHandler>, cfg: EngineConfig) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                cfg,
                handler,
                machines: Mutex::new(BTreeMap::new()),
                executions: Mutex::new(Vec::new()),
                tokens: Arc::new(Tokens::default()),
            }),
        }
    }

    /// The settings the engine was created with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    fn sm_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.inner.cfg.region, self.inner.cfg.account
        )
    }

    fn parse(definition: &str) -> Result<StateMachine, ServiceError> {
        StateMachine::from_json_str(definition)
            .map_err(|e| ServiceError::InvalidDefinition(e.to_string()))
    }

    /// CreateStateMachine. `substitutions` fill `${Name}` placeholders first.
    pub fn create_state_machine(
        &self,
        name: &str,
        definition: &str,
        role_arn: &str,
        substitutions: &BTreeMap<String, String>,
    ) -> Result<StateMachineRecord, ServiceError> {
        if !valid_name(name) {
            return Err(ServiceError::InvalidName(format!("Invalid Name: '{name}'")));
        }
        let definition = definition::substitute(definition, substitutions);
        let parsed = Arc::new(Self::parse(&definition)?);
        let arn = self.sm_arn(name);
        let mut m = lock(&self.inner.machines);
        if let Some(existing) = m.get(&arn) {
            // AWS: creating an identical machine again is idempotent; a different one conflicts.
            if existing.definition == definition && existing.role_arn == role_arn {
                return Ok(existing.clone());
            }
            return Err(ServiceError::StateMachineAlreadyExists(format!(
                "State Machine Already Exists: '{arn}'"
            )));
        }
        let rec = StateMachineRecord {
            arn: arn.clone(),
            name: name.to_string(),
            definition,
            role_arn: role_arn.to_string(),
            created: Utc::now(),
            updated: None,
            parsed,
        };
        m.insert(arn, rec.clone());
        Ok(rec)
    }

    /// DescribeStateMachine: the machine registered at `arn`.
    pub fn describe_state_machine(&self, arn: &str) -> Result<StateMachineRecord, ServiceError> {
        lock(&self.inner.machines).get(arn).cloned().ok_or_else(|| {
            ServiceError::StateMachineDoesNotExist(format!("State Machine Does Not Exist: '{arn}'"))
        })
    }

    /// ListStateMachines: every registered machine, in ARN order.
    pub fn list_state_machines(&self) -> Vec<StateMachineRecord> {
        lock(&self.inner.machines).values().cloned().collect()
    }

    /// UpdateStateMachine: replaces the definition (validated, not substituted) and/or the role;
    /// returns the update time. Running executions keep the definition they started with.
    pub fn update_state_machine(
        &self,
        arn: &str,
        definition: Option<&str>,
        role_arn: Option<&str>,
    ) -> Result<DateTime<Utc>, ServiceError> {
        let parsed = definition.map(Self::parse).transpose()?;
        let mut m = lock(&self.inner.machines);
        let rec = m.get_mut(arn).ok_or_else(|| {
            ServiceError::StateMachineDoesNotExist(format!("State Machine Does Not Exist: '{arn}'"))
        })?;
        if let (Some(d), Some(p)) = (definition, parsed) {
            rec.definition = d.to_string();
            rec.parsed = Arc::new(p);
        }
        if let Some(r) = role_arn {
            rec.role_arn = r.to_string();
        }
        let now = Utc::now();
        rec.updated = Some(now);
        Ok(now)
    }

    /// DeleteStateMachine: forgets the machine (an unknown ARN is not an error); its executions
    /// keep running and stay listed.
    pub fn delete_state_machine(&self, arn: &str) -> Result<(), ServiceError> {
        lock(&self.inner.machines).remove(arn);
        Ok(())
    }

    /// StartExecution. Returns the execution ARN and start date.
    pub fn start_execution(
        &self,
        sm_arn: &str,
        name: Option<&str>,
        input: Option<&str>,
    ) -> Result<(String, DateTime<Utc>), ServiceError> {
        // Executions run as Tokio tasks; refuse rather than panic outside a runtime.
        let rt = tokio::runtime::Handle::try_current().map_err(|_| {
            ServiceError::ValidationException(
                "start_execution must be called within a Tokio runtime".into(),
            )
        })?;
        let sm = self.describe_state_machine(sm_arn)?;
        let (input_str, input) = execution_input(input)?;
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if !valid_name(&name) {
            return Err(ServiceError::InvalidName(format!("Invalid Name: '{name}'")));
        }
        let arn = format!(
            "arn:aws:states:{}:{}:execution:{}:{name}",
            self.inner.cfg.region, self.inner.cfg.account, sm.name
        );
        let mut execs = lock(&self.inner.executions);
        if let Some(e) = execs.iter().find(|e| e.arn == arn) {
            // AWS idempotency: same name and input on a running execution returns it.
            let running = lock(&e.outcome).status == ExecutionStatus::Running;
            if running && e.input == input_str {
                return Ok((e.arn.clone(), e.start));
            }
            return Err(ServiceError::ExecutionAlreadyExists(format!(
                "Execution Already Exists: '{arn}'"
            )));
        }
        let start = Utc::now();
        let (rec, stop_rx) = self.new_execution(&sm, arn.clone(), name, input_str, start);
        execs.push(rec.clone());
        drop(execs);

        let interpreter = self.interpreter_for(&rec, &sm, input.clone());
        let machine = sm.parsed.clone();
        rt.spawn(run_execution(rec, interpreter, machine, input, stop_rx));
        Ok((arn, start))
    }

    /// A running execution's record, its history begun with ExecutionStarted, and the
    /// receiving end of its stop channel.
    fn new_execution(
        &self,
        sm: &StateMachineRecord,
        arn: String,
        name: String,
        input_str: String,
        start: DateTime<Utc>,
    ) -> (Arc<ExecutionRecord>, oneshot::Receiver<(String, String)>) {
        let clock = Clock::new(self.inner.cfg.clock, start);
        let history = Arc::new(History::default());
        let (done, _) = watch::channel(false);
        let (stop_tx, stop_rx) = oneshot::channel();
        let _ = history.push(
            0,
            start,
            "ExecutionStarted",
            Some("executionStartedEventDetails"),
            serde_json::json!({
                "input": input_str, "inputDetails": {"truncated": false}, "roleArn": sm.role_arn,
            }),
        );
        let rec = Arc::new(ExecutionRecord {
            arn,
            name,
            state_machine_arn: sm.arn.clone(),
            input: input_str,
            start,
            history,
            clock,
            outcome: Mutex::new(Outcome {
                status: ExecutionStatus::Running,
                stop: None,
                output: None,
                error: None,
                cause: None,
            }),
            done,
            stop: Mutex::new(Some(stop_tx)),
        });
        (rec, stop_rx)
    }

    /// The interpreter that runs the execution `rec` of `sm` on `input`.
    fn interpreter_for(
        &self,
        rec: &ExecutionRecord,
        sm: &StateMachineRecord,
        input: Value,
    ) -> Arc<Interpreter> {
        Arc::new(Interpreter {
            handler: self.inner.handler.clone(),
            tokens: self.inner.tokens.clone(),
            clock: rec.clock.clone(),
            history: rec.history.clone(),
            info: ExecInfo {
                arn: rec.arn.clone(),
                name: rec.name.clone(),
                input,
                start: rec.start,
                role_arn: sm.role_arn.clone(),
                state_machine_arn: sm.arn.clone(),
                state_machine_name: sm.name.clone(),
                region: self.inner.cfg.region.clone(),
            },
            token_waits_hold_clock: self.inner.cfg.token_waits_hold_clock,
        })
    }

    fn find(&self, arn: &str) -> Result<Arc<ExecutionRecord>, ServiceError> {
        lock(&self.inner.executions)
            .iter()
            .find(|e| e.arn == arn)
            .cloned()
            .ok_or_else(|| {
                ServiceError::ExecutionDoesNotExist(format!("Execution Does Not Exist: '{arn}'"))
            })
    }

    /// DescribeExecution: a snapshot of the execution at `arn`.
    pub fn describe_execution(&self, arn: &str) -> Result<ExecutionDescription, ServiceError> {
        Ok(self.find(arn)?.describe())
    }

    /// GetExecutionHistory: every event of the execution so far, oldest first.
    pub fn history(&self, arn: &str) -> Result<Vec<HistoryEvent>, ServiceError> {
        Ok(self.find(arn)?.history.snapshot())
    }

    /// Events with an id greater than `after`, for embedders that follow an execution live
    /// (the drill prints each state as it runs by polling this).
    pub fn history_after(&self, arn: &str, after: u64) -> Result<Vec<HistoryEvent>, ServiceError> {
        Ok(self
            .find(arn)?
            .history
            .snapshot()
            .into_iter()
            .filter(|e| e.id > after)
            .collect())
    }

    /// The execution's clock, e.g. to [`Clock::advance`] past a token wait's timeout.
    pub fn clock(&self, arn: &str) -> Result<Arc<Clock>, ServiceError> {
        Ok(self.find(arn)?.clock.clone())
    }

    /// Executions newest first, optionally of one state machine and status.
    pub fn list_executions(
        &self,
        sm_arn: Option<&str>,
        status: Option<ExecutionStatus>,
    ) -> Vec<ExecutionDescription> {
        let execs: Vec<_> = lock(&self.inner.executions).clone();
        execs
            .iter()
            .rev()
            .map(|e| e.describe())
            .filter(|d| {
                sm_arn.is_none_or(|a| d.state_machine_arn == a)
                    && status.is_none_or(|s| d.status == s)
            })
            .collect()
    }

    /// StopExecution: aborts the execution with the optional error and cause, waits (at most 5 s
    /// real time) for the abort to be recorded, and returns the stop date. A finished execution is
    /// left as it is.
    pub async fn stop_execution(
        &self,
        arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<DateTime<Utc>, ServiceError> {
        let e = self.find(arn)?;
        if let Some(tx) = lock(&e.stop).take() {
            let _ = tx.send((
                error.unwrap_or_default().to_string(),
                cause.unwrap_or_default().to_string(),
            ));
        }
        // Wait (bounded) for the run loop to record the abort so the answer is consistent.
        let mut rx = e.done.subscribe();
        let wait = async {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        Ok(e.describe().stop.unwrap_or_else(Utc::now))
    }

    /// Waits (in real time, at most `limit`) until the execution is no longer running.
    pub async fn wait_for_completion(
        &self,
        arn: &str,
        limit: Duration,
    ) -> Result<ExecutionDescription, ServiceError> {
        let e = self.find(arn)?;
        let mut rx = e.done.subscribe();
        let wait = async {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        Ok(e.describe())
    }

    /// SendTaskSuccess: completes the task waiting on `token` with `output` (JSON text).
    pub fn send_task_success(&self, token: &str, output: &str) -> Result<(), ServiceError> {
        let v: Value = serde_json::from_str(output)
            .map_err(|e| ServiceError::InvalidOutput(format!("Invalid JSON output: {e}")))?;
        self.inner.tokens.send(token, TokenMsg::Success(v))?;
        Ok(())
    }

    /// SendTaskFailure: fails the task waiting on `token` (error and cause empty when absent).
    pub fn send_task_failure(
        &self,
        token: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), ServiceError> {
        self.inner.tokens.send(
            token,
            TokenMsg::Failure {
                error: error.unwrap_or_default().to_string(),
                cause: cause.unwrap_or_default().to_string(),
            },
        )?;
        Ok(())
    }

    /// SendTaskHeartbeat: restarts the heartbeat timeout of the task waiting on `token`.
    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), ServiceError> {
        self.inner.tokens.send(token, TokenMsg::Heartbeat)?;
        Ok(())
    }
}

/// StartExecution's input: valid JSON (`{}` when absent) within the payload limit; as sent,
/// and parsed.
fn execution_input(input: Option<&str>) -> Result<(String, Value), ServiceError> {
    let input_str = input.unwrap_or("{}").to_string();
    let input: Value = serde_json::from_str(&input_str).map_err(|e| {
        ServiceError::InvalidExecutionInput(format!("Invalid State Machine Execution Input: '{e}'"))
    })?;
    if input_str.len() > MAX_PAYLOAD_BYTES {
        return Err(ServiceError::InvalidExecutionInput(
            "execution input exceeds 262144 bytes".into(),
        ));
    }
    Ok((input_str, input))
}

async fn run_execution(
    rec: Arc<ExecutionRecord>,
    interpreter: Arc<Interpreter>,
    sm: Arc<StateMachine>,
    input: Value,
    stop_rx: oneshot::Receiver<(String, String)>,
) {
    let clock = interpreter.clock.clone();
    let timeout = sm.timeout_seconds;
    let body = {
        let interpreter = interpreter.clone();
        let clock = clock.clone();
        async move {
            let run = interpreter.run_machine(&sm, input, 1, None);
            match timeout {
                Some(t) => tokio::select! {
                    r = run => Some(r.map(|(o, _)| o)),
                    _ = clock.sleep(Duration::from_secs(t)) => None,
                },
                None => Some(run.await.map(|(o, _)| o)),
            }
        }
    };
    let driven = clock.drive(body);
    tokio::select! {
        r = driven => match r {
            Some(Ok(out)) => { rec.finish(ExecutionStatus::Succeeded, Some(out.to_string()), None, None); }
            Some(Err(StatesError { error, cause })) => { rec.finish(ExecutionStatus::Failed, None, Some(error), Some(cause)); }
            None => { rec.finish(ExecutionStatus::TimedOut, None, Some("States.Timeout".into()), Some("The execution timed out".into())); }
        },
        s = stop_rx => {
            let (error, cause) = s.unwrap_or_default();
            rec.finish(ExecutionStatus::Aborted, None, Some(error).filter(|e| !e.is_empty()), Some(cause).filter(|c| !c.is_empty()));
        }
    }
}
