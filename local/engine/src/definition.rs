//! The typed model of an ASL definition, parsed and validated once at load so that the
//! interpreter never meets a malformed field at run time.

use crate::choice::{self, ChoiceRule};
use crate::intrinsics::Call;
use crate::paths::JsonPath;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

/// Why a definition was refused.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// The text is not JSON.
    #[error("definition is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not a valid state machine: every problem found, each starting with where it is
    /// (e.g. `/States/A/Next`).
    #[error("invalid state machine definition:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Replaces `${Name}` placeholders (SAM/CloudFormation `DefinitionSubstitutions`) in the raw
/// definition text. Unknown placeholders are left as they are, like CloudFormation leaves text
/// it has no substitution for.
pub fn substitute(definition: &str, subs: &BTreeMap<String, String>) -> String {
    let re = regex::Regex::new(r"\$\{([A-Za-z0-9_.:-]+)\}").expect("static regex");
    re.replace_all(definition, |c: &regex::Captures| {
        subs.get(&c[1]).cloned().unwrap_or_else(|| c[0].to_string())
    })
    .into_owned()
}

/// A validated state machine: the top-level definition, a Parallel branch or a Map's item
/// processor.
#[derive(Debug, Clone)]
pub struct StateMachine {
    /// `StartAt`: the state the machine begins in.
    pub start_at: String,
    /// The states, by name.
    pub states: BTreeMap<String, State>,
    /// `TimeoutSeconds` of the whole execution; read at the top level only.
    pub timeout_seconds: Option<u64>,
}

/// One state: the fields every type shares, and its type-specific part.
#[derive(Debug, Clone)]
pub struct State {
    /// The state's name (its key in `States`).
    pub name: String,
    /// `InputPath` (default `$`); `None` (JSON null) gives the state `{}` as input.
    pub input_path: Option<JsonPath>,
    /// `OutputPath` (default `$`); `None` (JSON null) makes the output `{}`.
    pub output_path: Option<JsonPath>,
    /// `Next`; `None` when the state has `End: true` or is a Choice, Succeed or Fail.
    pub next: Option<String>,
    /// The type and its own fields.
    pub kind: StateKind,
}

/// `ResultPath`: `None` (JSON null) discards the result and keeps the input.
pub type ResultPath = Option<JsonPath>;

/// A state's type and the fields only that type has.
#[derive(Debug, Clone)]
pub enum StateKind {
    /// Pass: outputs `Result`, else the resolved `Parameters`, else its effective input.
    Pass {
        /// `Parameters`: a template over the effective input.
        parameters: Option<Template>,
        /// `Result`: a fixed value, used in place of the input.
        result: Option<Value>,
        /// `ResultPath`: where the result goes in the state's input.
        result_path: ResultPath,
    },
    /// Task: runs `Resource` through the engine's [`TaskHandler`](crate::task::TaskHandler).
    Task(Box<TaskSpec>),
    /// Choice: goes to the `Next` of the first rule that matches, else to `Default`.
    Choice {
        /// `Choices`: the rules in order, each with the state it leads to.
        choices: Vec<(ChoiceRule, String)>,
        /// `Default`; without it, no match fails the execution with States.NoChoiceMatched.
        default: Option<String>,
    },
    /// Wait: waits on the execution's clock for a time, or until a timestamp.
    Wait(WaitSpec),
    /// Succeed: ends the machine successfully.
    Succeed,
    /// Fail: ends the machine with an error and cause.
    Fail {
        /// `Error` or `ErrorPath`.
        error: Option<StrSource>,
        /// `Cause` or `CausePath`.
        cause: Option<StrSource>,
    },
    /// Parallel: runs every branch on the same input; the output is the array of their outputs.
    Parallel {
        /// `Branches`: one sub-machine each.
        branches: Vec<StateMachine>,
        /// Parameters, ResultSelector, ResultPath, Retry and Catch.
        common: Box<Compound>,
    },
    /// Map (INLINE only): runs `processor` once per item of an array; the output is the array of
    /// their outputs.
    Map {
        /// `ItemProcessor` (or the older `Iterator`).
        processor: Box<StateMachine>,
        /// `ItemsPath` (default `$`): where the items are in the effective input.
        items_path: Option<JsonPath>,
        /// `ItemSelector` (or the older `Parameters`): each iteration's input, built per item.
        item_selector: Option<Template>,
        /// `MaxConcurrency` or `MaxConcurrencyPath`: iterations at a time; absent or 0 means all.
        max_concurrency: Option<Num>,
        /// Parameters (moved into `item_selector`), ResultSelector, ResultPath, Retry and Catch.
        common: Box<Compound>,
    },
}

/// The data-flow and error-handling fields Task, Parallel and Map share.
#[derive(Debug, Clone)]
pub struct Compound {
    /// `Parameters`: the effective input, as a template over the input.
    pub parameters: Option<Template>,
    /// `ResultSelector`: reshapes the raw result before `ResultPath` places it.
    pub result_selector: Option<Template>,
    /// `ResultPath` (default `$`): where the result goes in the state's input.
    pub result_path: ResultPath,
    /// `Retry`, in order; the first retrier whose errors match handles a failure.
    pub retry: Vec<Retrier>,
    /// `Catch`, in order; consulted once retries are exhausted.
    pub catch: Vec<Catcher>,
}

/// A Task state's fields.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// `Resource`, after definition substitutions.
    pub resource: String,
    /// Parameters, ResultSelector, ResultPath, Retry and Catch.
    pub common: Compound,
    /// `TimeoutSeconds` or `TimeoutSecondsPath`; absent means no timeout.
    pub timeout: Option<Num>,
    /// `HeartbeatSeconds` or `HeartbeatSecondsPath`: the longest a `.waitForTaskToken` task may go
    /// without SendTaskHeartbeat.
    pub heartbeat: Option<Num>,
}

/// A number given literally or through a `*Path` field.
#[derive(Debug, Clone)]
pub enum Num {
    /// A literal number.
    Lit(f64),
    /// A path to the number, read when the state runs.
    Path(JsonPath),
}

/// A string given literally, by a path, or by an intrinsic function (the `…Path` fields accept
/// either).
#[derive(Debug, Clone)]
pub enum StrSource {
    /// A literal string.
    Lit(String),
    /// A path to the string, read when the state runs.
    Path(JsonPath),
    /// An intrinsic function call, such as `States.Format(...)`.
    Intrinsic(Call),
}

/// What a Wait state waits for.
#[derive(Debug, Clone)]
pub enum WaitSpec {
    /// `Seconds` or `SecondsPath`.
    Seconds(Num),
    /// `Timestamp`: an RFC 3339 time, checked when the definition loads.
    Timestamp(String),
    /// `TimestampPath`: a path to an RFC 3339 time.
    TimestampPath(JsonPath),
}

/// One `Retry` entry.
#[derive(Debug, Clone)]
pub struct Retrier {
    /// `ErrorEquals`: the error names it handles.
    pub errors: Vec<String>,
    /// `IntervalSeconds` (default 1): the wait before the first retry.
    pub interval: f64,
    /// `MaxAttempts` (default 3): retries allowed; 0 means none.
    pub max_attempts: u32,
    /// `BackoffRate` (default 2.0): the factor each further wait is multiplied by.
    pub backoff: f64,
    /// `MaxDelaySeconds`: a cap on any one wait.
    pub max_delay: Option<f64>,
    /// `JitterStrategy: FULL`: each wait is a random fraction of the computed one.
    pub jitter_full: bool,
}

/// One `Catch` entry.
#[derive(Debug, Clone)]
pub struct Catcher {
    /// `ErrorEquals`: the error names it handles.
    pub errors: Vec<String>,
    /// `Next`: the state to go to.
    pub next: String,
    /// `ResultPath` (default `$`): where the error output goes in the state's input.
    pub result_path: ResultPath,
}

/// A `Parameters`-style payload template with `.$` fields compiled.
#[derive(Debug, Clone)]
pub enum Template {
    /// A value used as is.
    Lit(Value),
    /// A `key.$` path, resolved against the input or the context object.
    Path(JsonPath),
    /// A `key.$` intrinsic function call.
    Intrinsic(Call),
    /// An object, its fields in order (keys without the `.$` suffix).
    Object(Vec<(String, Template)>),
    /// An array of templates.
    Array(Vec<Template>),
}

impl Template {
    /// Compiles the JSON template `v` found at `at`, adding any problems to `errs`; a bad field
    /// compiles to null so that the rest is still checked.
    pub fn compile(v: &Value, at: &str, errs: &mut Vec<String>) -> Template {
        match v {
            Value::Object(o) => Template::Object(
                o.iter()
                    .map(|(k, v)| {
                        let here = format!("{at}/{k}");
                        if let Some(base) = k.strip_suffix(".$") {
                            let t = match v.as_str() {
                                Some(s) if s.starts_with("States.") => match Call::parse(s) {
                                    Ok(c) => Template::Intrinsic(c),
                                    Err(e) => {
                                        errs.push(format!("{here}: {e}"));
                                        Template::Lit(Value::Null)
                                    }
                                },
                                Some(s) => match JsonPath::parse(s) {
                                    Ok(p) => Template::Path(p),
                                    Err(e) => {
                                        errs.push(format!("{here}: {e}"));
                                        Template::Lit(Value::Null)
                                    }
                                },
                                None => {
                                    errs.push(format!("{here}: a field ending in '.$' must be a string path or intrinsic function"));
                                    Template::Lit(Value::Null)
                                }
                            };
                            (base.to_string(), t)
                        } else {
                            (k.clone(), Template::compile(v, &here, errs))
                        }
                    })
                    .collect(),
            ),
            Value::Array(a) => Template::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| Template::compile(v, &format!("{at}[{i}]"), errs))
                    .collect(),
            ),
            other => Template::Lit(other.clone()),
        }
    }
}

impl StateMachine {
    /// Parses and validates definition text (substitutions already applied).
    pub fn from_json_str(s: &str) -> Result<StateMachine, DefinitionError> {
        let v: Value = serde_json::from_str(s)?;
        Self::from_value(&v)
    }

    /// Validates a JSON definition, reporting every problem found at once.
    pub fn from_value(v: &Value) -> Result<StateMachine, DefinitionError> {
        let mut errs = Vec::new();
        let sm = parse_machine(v, "", &mut errs, true);
        if errs.is_empty() {
            Ok(sm)
        } else {
            Err(DefinitionError::Invalid(errs))
        }
    }

    /// Number of states, nested ones included.
    pub fn state_count(&self) -> usize {
        self.states
            .values()
            .map(|s| {
                1 + match &s.kind {
                    StateKind::Parallel { branches, .. } => {
                        branches.iter().map(|b| b.state_count()).sum()
                    }
                    StateKind::Map { processor, .. } => processor.state_count(),
                    _ => 0,
                }
            })
            .sum()
    }
}

const COMMON: &[&str] = &["Type", "Comment", "Next", "End", "InputPath", "OutputPath"];

fn allowed(ty: &str) -> &'static [&'static str] {
    match ty {
        "Pass" => &["Parameters", "Result", "ResultPath"],
        "Task" => &[
            "Resource",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
        ],
        "Choice" => &["Choices", "Default"],
        "Wait" => &["Seconds", "SecondsPath", "Timestamp", "TimestampPath"],
        "Succeed" => &[],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "Branches",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
        ],
        "Map" => &[
            "Iterator",
            "ItemProcessor",
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "ToleratedFailurePercentage",
            "ToleratedFailureCount",
            "Label",
        ],
        _ => &[],
    }
}

fn parse_machine(v: &Value, at: &str, errs: &mut Vec<String>, top: bool) -> StateMachine {
    let empty = Map::new();
    let o = match v.as_object() {
        Some(o) => o,
        None => {
            errs.push(format!("{at}: a state machine must be a JSON object"));
            &empty
        }
    };
    let start_at = match o.get("StartAt").and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => {
            errs.push(format!("{at}/StartAt: missing or not a string"));
            String::new()
        }
    };
    let timeout_seconds = match o.get("TimeoutSeconds") {
        None => None,
        Some(t) if top => match t.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                errs.push(format!("{at}/TimeoutSeconds: must be a positive integer"));
                None
            }
        },
        Some(_) => None,
    };
    for k in o.keys() {
        if ![
            "StartAt",
            "States",
            "Comment",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
            "ProcessorConfig",
        ]
        .contains(&k.as_str())
        {
            errs.push(format!("{at}: unknown field '{k}'"));
        }
    }
    if let Some(q) = o.get("QueryLanguage")
        && q != "JSONPath"
    {
        errs.push(format!(
            "{at}/QueryLanguage: only JSONPath is supported, got {q}"
        ));
    }
    let mut states = BTreeMap::new();
    match o.get("States").and_then(Value::as_object) {
        Some(m) if !m.is_empty() => {
            for (name, definition) in m {
                if name.is_empty() || name.len() > 80 {
                    errs.push(format!(
                        "{at}/States/{name}: state names must be 1-80 characters"
                    ));
                }
                let state = parse_state(name, definition, &format!("{at}/States/{name}"), errs);
                states.insert(name.clone(), state);
            }
        }
        _ => errs.push(format!("{at}/States: missing or empty")),
    }
    let sm = StateMachine {
        start_at,
        states,
        timeout_seconds,
    };
    check_transitions(&sm, at, errs);
    sm
}

fn check_transitions(sm: &StateMachine, at: &str, errs: &mut Vec<String>) {
    if !sm.states.is_empty() && !sm.states.contains_key(&sm.start_at) {
        errs.push(format!("{at}/StartAt: '{}' is not a state", sm.start_at));
        return;
    }
    let targets = |s: &State| -> Vec<(String, String)> {
        let mut t = Vec::new();
        if let Some(n) = &s.next {
            t.push(("Next".to_string(), n.clone()));
        }
        match &s.kind {
            StateKind::Choice { choices, default } => {
                for (i, (_, n)) in choices.iter().enumerate() {
                    t.push((format!("Choices[{i}]/Next"), n.clone()));
                }
                if let Some(d) = default {
                    t.push(("Default".into(), d.clone()));
                }
            }
            StateKind::Task(ts) => {
                for (i, c) in ts.common.catch.iter().enumerate() {
                    t.push((format!("Catch[{i}]/Next"), c.next.clone()));
                }
            }
            StateKind::Parallel { common, .. } | StateKind::Map { common, .. } => {
                for (i, c) in common.catch.iter().enumerate() {
                    t.push((format!("Catch[{i}]/Next"), c.next.clone()));
                }
            }
            _ => {}
        }
        t
    };
    for (name, s) in &sm.states {
        for (field, target) in targets(s) {
            if !sm.states.contains_key(&target) {
                errs.push(format!("{at}/States/{name}/{field}: no state named '{target}' (MISSING_TRANSITION_TARGET)"));
            }
        }
    }
    // AWS rejects definitions with states that can never be entered.
    let mut seen = HashSet::new();
    let mut stack = vec![sm.start_at.clone()];
    while let Some(n) = stack.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(s) = sm.states.get(&n) {
            stack.extend(targets(s).into_iter().map(|(_, t)| t));
        }
    }
    for name in sm.states.keys() {
        if !seen.contains(name) {
            errs.push(format!(
                "{at}/States/{name}: state is not reachable from StartAt"
            ));
        }
    }
}

fn opt_path(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
    errs: &mut Vec<String>,
    reference: bool,
) -> Option<Option<JsonPath>> {
    match o.get(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => {
            let r = if reference {
                JsonPath::parse_reference(s)
            } else {
                JsonPath::parse(s)
            };
            match r {
                Ok(p) => Some(Some(p)),
                Err(e) => {
                    errs.push(format!("{at}/{key}: {e}"));
                    None
                }
            }
        }
        Some(_) => {
            errs.push(format!("{at}/{key}: must be a string or null"));
            None
        }
    }
}

fn root() -> JsonPath {
    JsonPath::parse("$").expect("'$' is a valid path")
}

fn data_path(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
    errs: &mut Vec<String>,
    reference: bool,
) -> Option<JsonPath> {
    opt_path(o, key, at, errs, reference).unwrap_or_else(|| Some(root()))
}

fn template(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
    errs: &mut Vec<String>,
) -> Option<Template> {
    o.get(key)
        .map(|v| Template::compile(v, &format!("{at}/{key}"), errs))
}

fn num_field(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
    errs: &mut Vec<String>,
    positive: bool,
) -> Option<Num> {
    let path_key = format!("{key}Path");
    match (o.get(key), o.get(&path_key)) {
        (Some(_), Some(_)) => {
            errs.push(format!("{at}: only one of {key} and {path_key} may be set"));
            None
        }
        (Some(v), None) => match v.as_f64() {
            Some(n) if n.fract() == 0.0 && (n > 0.0 || (!positive && n >= 0.0)) => {
                Some(Num::Lit(n))
            }
            _ => {
                errs.push(format!(
                    "{at}/{key}: must be a {} integer",
                    if positive { "positive" } else { "non-negative" }
                ));
                None
            }
        },
        (None, Some(_)) => opt_path(o, &path_key, at, errs, true)
            .flatten()
            .map(Num::Path),
        (None, None) => None,
    }
}

fn str_source(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
    errs: &mut Vec<String>,
) -> Option<StrSource> {
    let path_key = format!("{key}Path");
    match (o.get(key), o.get(&path_key)) {
        (Some(_), Some(_)) => {
            errs.push(format!("{at}: only one of {key} and {path_key} may be set"));
            None
        }
        (Some(Value::String(s)), None) => Some(StrSource::Lit(s.clone())),
        (Some(_), None) => {
            errs.push(format!("{at}/{key}: must be a string"));
            None
        }
        (None, Some(Value::String(s))) => {
            let r = if s.starts_with("States.") {
                Call::parse(s)
                    .map(StrSource::Intrinsic)
                    .map_err(|e| e.to_string())
            } else {
                JsonPath::parse(s)
                    .map(StrSource::Path)
                    .map_err(|e| e.to_string())
            };
            r.map_err(|e| errs.push(format!("{at}/{path_key}: {e}")))
                .ok()
        }
        (None, Some(_)) => {
            errs.push(format!("{at}/{path_key}: must be a string"));
            None
        }
        (None, None) => None,
    }
}

fn error_list(v: Option<&Value>, at: &str, errs: &mut Vec<String>) -> Vec<String> {
    match v.and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|e| {
                let s = e.as_str().map(str::to_string);
                if s.is_none() {
                    errs.push(format!("{at}/ErrorEquals: entries must be strings"));
                }
                s
            })
            .collect(),
        _ => {
            errs.push(format!("{at}/ErrorEquals: must be a non-empty array"));
            vec![]
        }
    }
}

/// AWS: `States.ALL` must appear alone in its ErrorEquals, and only in the last retrier/catcher.
fn check_states_all(lists: &[Vec<String>], at: &str, errs: &mut Vec<String>) {
    for (i, l) in lists.iter().enumerate() {
        if l.iter().any(|e| e == "States.ALL") {
            if l.len() > 1 {
                errs.push(format!(
                    "{at}[{i}]/ErrorEquals: States.ALL must be the only error name"
                ));
            }
            if i + 1 != lists.len() {
                errs.push(format!(
                    "{at}[{i}]: a States.ALL entry must be the last one"
                ));
            }
        }
    }
}

fn compound(o: &Map<String, Value>, at: &str, errs: &mut Vec<String>) -> Compound {
    let parameters = template(o, "Parameters", at, errs);
    let result_selector = template(o, "ResultSelector", at, errs);
    let result_path = data_path(o, "ResultPath", at, errs, true);
    let mut retry = Vec::new();
    if let Some(rs) = o.get("Retry") {
        let Some(rs) = rs.as_array() else {
            errs.push(format!("{at}/Retry: must be an array"));
            return Compound {
                parameters,
                result_selector,
                result_path,
                retry,
                catch: vec![],
            };
        };
        for (i, r) in rs.iter().enumerate() {
            retry.push(parse_retrier(r, &format!("{at}/Retry[{i}]"), errs));
        }
    }
    check_states_all(
        &retry.iter().map(|r| r.errors.clone()).collect::<Vec<_>>(),
        &format!("{at}/Retry"),
        errs,
    );
    let mut catch = Vec::new();
    if let Some(cs) = o.get("Catch") {
        match cs.as_array() {
            Some(cs) => {
                for (i, c) in cs.iter().enumerate() {
                    catch.push(parse_catcher(c, &format!("{at}/Catch[{i}]"), errs));
                }
            }
            None => errs.push(format!("{at}/Catch: must be an array")),
        }
    }
    check_states_all(
        &catch.iter().map(|c| c.errors.clone()).collect::<Vec<_>>(),
        &format!("{at}/Catch"),
        errs,
    );
    Compound {
        parameters,
        result_selector,
        result_path,
        retry,
        catch,
    }
}

/// One Retry entry (at `here`).
fn parse_retrier(r: &Value, here: &str, errs: &mut Vec<String>) -> Retrier {
    let empty = Map::new();
    let r = r.as_object().unwrap_or(&empty);
    // Step Functions' limits; a value outside them fails CreateStateMachine. `None` when the
    // field is absent (the default applies) or refused.
    let mut number = |key: &str, valid: &dyn Fn(f64) -> bool, rule: &str| {
        let v = r.get(key)?;
        let n = v.as_f64().filter(|n| valid(*n));
        if n.is_none() {
            errs.push(format!("{here}/{key}: must be {rule}, got {v}"));
        }
        n
    };
    let whole = |n: f64, low: f64, high: f64| n.fract() == 0.0 && (low..=high).contains(&n);
    let interval = number(
        "IntervalSeconds",
        &|n| whole(n, 1.0, 99_999_999.0),
        "an integer from 1 to 99999999",
    );
    let max_attempts = number(
        "MaxAttempts",
        &|n| whole(n, 0.0, 99_999_999.0),
        "an integer from 0 to 99999999",
    );
    let backoff = number("BackoffRate", &|n| n >= 1.0, "a number >= 1.0");
    let max_delay = number(
        "MaxDelaySeconds",
        &|n| whole(n, 1.0, 31_622_400.0),
        "an integer from 1 to 31622400",
    );
    let jitter_full = match r.get("JitterStrategy").and_then(Value::as_str) {
        None | Some("NONE") => false,
        Some("FULL") => true,
        Some(other) => {
            errs.push(format!(
                "{here}/JitterStrategy: must be FULL or NONE, got '{other}'"
            ));
            false
        }
    };
    Retrier {
        errors: error_list(r.get("ErrorEquals"), here, errs),
        interval: interval.unwrap_or(1.0),
        max_attempts: max_attempts.unwrap_or(3.0) as u32,
        backoff: backoff.unwrap_or(2.0),
        max_delay,
        jitter_full,
    }
}

/// One Catch entry (at `here`).
fn parse_catcher(c: &Value, here: &str, errs: &mut Vec<String>) -> Catcher {
    let empty = Map::new();
    let c = c.as_object().unwrap_or(&empty);
    let next = c.get("Next").and_then(Value::as_str).unwrap_or_else(|| {
        errs.push(format!("{here}/Next: missing"));
        ""
    });
    Catcher {
        errors: error_list(c.get("ErrorEquals"), here, errs),
        next: next.to_string(),
        result_path: data_path(c, "ResultPath", here, errs, true),
    }
}

fn parse_state(name: &str, v: &Value, at: &str, errs: &mut Vec<String>) -> State {
    let empty = Map::new();
    let o = v.as_object().unwrap_or_else(|| {
        errs.push(format!("{at}: a state must be a JSON object"));
        &empty
    });
    let ty = o.get("Type").and_then(Value::as_str).unwrap_or("");
    let extra = allowed(ty);
    for k in o.keys() {
        if !COMMON.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
            errs.push(format!("{at}: field '{k}' is not allowed in a {ty} state"));
        }
    }
    let terminal_type = matches!(ty, "Succeed" | "Fail" | "Choice");
    let next = o.get("Next").and_then(Value::as_str).map(str::to_string);
    let end = o.get("End").and_then(Value::as_bool).unwrap_or(false);
    if terminal_type {
        if o.contains_key("Next") || o.contains_key("End") {
            errs.push(format!("{at}: a {ty} state cannot have Next or End"));
        }
    } else if next.is_some() == end {
        errs.push(format!("{at}: exactly one of Next or End:true is required"));
    }
    let (input_path, output_path) = if ty == "Fail" {
        (Some(root()), Some(root()))
    } else {
        (
            data_path(o, "InputPath", at, errs, false),
            data_path(o, "OutputPath", at, errs, false),
        )
    };
    let kind = match ty {
        "Pass" => StateKind::Pass {
            parameters: template(o, "Parameters", at, errs),
            result: o.get("Result").cloned(),
            result_path: data_path(o, "ResultPath", at, errs, true),
        },
        "Task" => parse_task(o, at, errs),
        "Choice" => parse_choice(o, at, errs),
        "Wait" => parse_wait(o, at, errs),
        "Succeed" => StateKind::Succeed,
        "Fail" => StateKind::Fail {
            error: str_source(o, "Error", at, errs),
            cause: str_source(o, "Cause", at, errs),
        },
        "Parallel" => parse_parallel(o, at, errs),
        "Map" => parse_map(o, at, errs),
        "" => {
            errs.push(format!("{at}/Type: missing"));
            StateKind::Succeed
        }
        other => {
            errs.push(format!("{at}/Type: unknown state type '{other}'"));
            StateKind::Succeed
        }
    };
    State {
        name: name.to_string(),
        input_path,
        output_path,
        next,
        kind,
    }
}

fn parse_task(o: &Map<String, Value>, at: &str, errs: &mut Vec<String>) -> StateKind {
    let resource = o
        .get("Resource")
        .and_then(Value::as_str)
        .unwrap_or_else(|| {
            errs.push(format!("{at}/Resource: missing or not a string"));
            ""
        });
    if o.contains_key("Credentials") {
        // Running the task as another role is not something the engine can honour: refusing
        // beats calling the function as the state machine's own role without a word.
        errs.push(format!(
            "{at}/Credentials: the local engine does not assume roles for a task; remove it"
        ));
    }
    let timeout = num_field(o, "TimeoutSeconds", at, errs, true);
    let heartbeat = num_field(o, "HeartbeatSeconds", at, errs, true);
    if let (Some(Num::Lit(t)), Some(Num::Lit(h))) = (&timeout, &heartbeat)
        && h >= t
    {
        errs.push(format!(
            "{at}: HeartbeatSeconds must be smaller than TimeoutSeconds"
        ));
    }
    StateKind::Task(Box::new(TaskSpec {
        resource: resource.to_string(),
        common: compound(o, at, errs),
        timeout,
        heartbeat,
    }))
}

fn parse_choice(o: &Map<String, Value>, at: &str, errs: &mut Vec<String>) -> StateKind {
    let mut choices = Vec::new();
    match o.get("Choices").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => {
            for (i, c) in a.iter().enumerate() {
                let here = format!("{at}/Choices[{i}]");
                let next = c.get("Next").and_then(Value::as_str);
                if next.is_none() {
                    errs.push(format!("{here}/Next: missing"));
                }
                match choice::parse_rule(c, &here, true) {
                    Ok(r) => choices.push((r, next.unwrap_or("").to_string())),
                    Err(e) => errs.push(e),
                }
            }
        }
        _ => errs.push(format!("{at}/Choices: must be a non-empty array")),
    }
    StateKind::Choice {
        choices,
        default: o.get("Default").and_then(Value::as_str).map(str::to_string),
    }
}

fn parse_wait(o: &Map<String, Value>, at: &str, errs: &mut Vec<String>) -> StateKind {
    let n = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
        .iter()
        .filter(|k| o.contains_key(**k))
        .count();
    if n != 1 {
        errs.push(format!(
            "{at}: exactly one of Seconds, SecondsPath, Timestamp, TimestampPath is required"
        ));
    }
    let spec = if let Some(t) = o.get("Timestamp") {
        let s = t.as_str().unwrap_or("");
        if chrono::DateTime::parse_from_rfc3339(s).is_err() {
            errs.push(format!("{at}/Timestamp: '{s}' is not an RFC3339 timestamp"));
        }
        WaitSpec::Timestamp(s.to_string())
    } else if o.contains_key("TimestampPath") {
        WaitSpec::TimestampPath(
            opt_path(o, "TimestampPath", at, errs, true)
                .flatten()
                .unwrap_or_else(root),
        )
    } else {
        WaitSpec::Seconds(num_field(o, "Seconds", at, errs, false).unwrap_or(Num::Lit(0.0)))
    };
    StateKind::Wait(spec)
}

fn parse_parallel(o: &Map<String, Value>, at: &str, errs: &mut Vec<String>) -> StateKind {
    let branches = match o.get("Branches").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, b)| parse_machine(b, &format!("{at}/Branches[{i}]"), errs, false))
            .collect(),
        _ => {
            errs.push(format!("{at}/Branches: must be a non-empty array"));
            vec![]
        }
    };
    StateKind::Parallel {
        branches,
        common: Box::new(compound(o, at, errs)),
    }
}

fn parse_map(o: &Map<String, Value>, at: &str, errs: &mut Vec<String>) -> StateKind {
    let (key, proc_v) = match (o.get("ItemProcessor"), o.get("Iterator")) {
        (Some(p), None) => ("ItemProcessor", p),
        (None, Some(p)) => ("Iterator", p),
        _ => {
            errs.push(format!(
                "{at}: exactly one of ItemProcessor or Iterator is required"
            ));
            ("ItemProcessor", &Value::Null)
        }
    };
    if let Some(mode) = proc_v
        .pointer("/ProcessorConfig/Mode")
        .and_then(Value::as_str)
        && mode != "INLINE"
    {
        errs.push(format!(
            "{at}/{key}/ProcessorConfig/Mode: only INLINE maps are supported, got {mode}"
        ));
    }
    // Failure tolerance and labels belong to DISTRIBUTED maps (child executions, map runs);
    // an INLINE map fails at its first failed iteration.
    for key in [
        "ToleratedFailurePercentage",
        "ToleratedFailureCount",
        "Label",
    ] {
        if o.contains_key(key) {
            errs.push(format!(
                "{at}/{key}: only DISTRIBUTED maps have it, and the local engine runs INLINE \
                 maps only"
            ));
        }
    }
    if o.contains_key("ItemSelector") && o.contains_key("Parameters") {
        errs.push(format!(
            "{at}: only one of ItemSelector and Parameters may be set"
        ));
    }
    let mut common = compound(o, at, errs);
    let item_selector = template(o, "ItemSelector", at, errs).or(common.parameters.take());
    StateKind::Map {
        processor: Box::new(parse_machine(proc_v, &format!("{at}/{key}"), errs, false)),
        items_path: data_path(o, "ItemsPath", at, errs, true),
        item_selector,
        max_concurrency: num_field(o, "MaxConcurrency", at, errs, false),
        common: Box::new(common),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(v: Value) -> String {
        match StateMachine::from_value(&v) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rejects_bad_definitions() {
        let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}));
        assert!(e.contains("no state named 'B'"), "{e}");
        let e = errors(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "B": {"Type": "Succeed"}}}),
        );
        assert!(e.contains("not reachable"), "{e}");
        let e = errors(
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "x", "End": true,
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "A"}, {"ErrorEquals": ["X"], "Next": "A"}]}}}),
        );
        assert!(e.contains("must be the last"), "{e}");
        let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Wait", "End": true}}}));
        assert!(e.contains("exactly one of Seconds"), "{e}");
        let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Bogus", "End": true}}}));
        assert!(e.contains("unknown state type"), "{e}");
        let e = errors(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "nope"}, "End": true}}}),
        );
        assert!(e.contains("invalid JSONPath"), "{e}");
        let e = errors(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A", "End": true}}}),
        );
        assert!(e.contains("exactly one of Next or End"), "{e}");
    }

    /// A Task state `A` with `retry` as its only Retry entry.
    fn with_retry(retry: Value) -> String {
        errors(
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "x",
            "End": true, "Retry": [retry]}}}),
        )
    }

    #[test]
    fn retry_numbers_follow_step_functions_limits() {
        let ok = with_retry(json!({"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2,
            "MaxAttempts": 0, "BackoffRate": 1.5, "MaxDelaySeconds": 60}));
        assert_eq!(ok, "");
        for (field, value, says) in [
            (
                "IntervalSeconds",
                json!(1.5),
                "an integer from 1 to 99999999",
            ),
            ("IntervalSeconds", json!(0), "an integer from 1 to 99999999"),
            ("MaxAttempts", json!(-1), "an integer from 0 to 99999999"),
            ("BackoffRate", json!(0.5), "a number >= 1.0"),
            (
                "MaxDelaySeconds",
                json!("60"),
                "an integer from 1 to 31622400",
            ),
            ("MaxDelaySeconds", json!(0), "an integer from 1 to 31622400"),
        ] {
            let mut retry = json!({"ErrorEquals": ["States.ALL"]});
            retry[field] = value.clone();
            let e = with_retry(retry);
            assert!(
                e.contains(&format!("Retry[0]/{field}: must be {says}, got {value}")),
                "{field} {value}: {e}"
            );
        }
    }

    #[test]
    fn a_choice_rule_is_exactly_one_thing() {
        let choice = |rule: Value| {
            let mut rule = rule;
            rule["Next"] = json!("B");
            errors(json!({"StartAt": "A", "States": {
                "A": {"Type": "Choice", "Choices": [rule], "Default": "B"},
                "B": {"Type": "Succeed"}}}))
        };
        let e = choice(json!({"Variable": "$.n", "NumericEquals": 1, "NumericGreaterThan": 0}));
        assert!(e.contains("exactly one of And, Or, Not or a comparison operator, this one has NumericEquals, NumericGreaterThan"), "{e}");
        let e = choice(json!({"And": [{"Variable": "$.n", "IsPresent": true}],
            "Or": [{"Variable": "$.n", "IsNull": false}]}));
        assert!(e.contains("this one has And, Or"), "{e}");
        let e = choice(json!({"Variable": "$.n", "Not": {"Variable": "$.n", "IsNull": true}}));
        assert!(e.contains("Variable: not allowed beside Not"), "{e}");
        assert_eq!(choice(json!({"Variable": "$.n", "NumericEquals": 1})), "");
    }

    #[test]
    fn a_task_with_credentials_is_refused_not_run_as_another_role() {
        let e = errors(
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "x",
            "End": true, "Credentials": {"RoleArn": "arn:aws:iam::111122223333:role/other"}}}}),
        );
        assert!(
            e.contains("A/Credentials: the local engine does not assume roles"),
            "{e}"
        );
    }

    #[test]
    fn an_inline_map_refuses_distributed_fields() {
        for field in [
            "ToleratedFailurePercentage",
            "ToleratedFailureCount",
            "Label",
        ] {
            let mut map = json!({"Type": "Map", "End": true,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}});
            map[field] = if field == "Label" {
                json!("items")
            } else {
                json!(10)
            };
            let e = errors(json!({"StartAt": "M", "States": {"M": map}}));
            assert!(
                e.contains(&format!("M/{field}: only DISTRIBUTED maps have it")),
                "{field}: {e}"
            );
        }
    }

    #[test]
    fn substitutions() {
        let mut m = BTreeMap::new();
        m.insert(
            "Fn".to_string(),
            "arn:aws:lambda:us-east-1:1:function:f".to_string(),
        );
        assert_eq!(
            substitute(r#"{"R":"${Fn}","K":"${Other}"}"#, &m),
            r#"{"R":"arn:aws:lambda:us-east-1:1:function:f","K":"${Other}"}"#
        );
    }
}
