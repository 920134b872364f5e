//! Execution history in the JSON shape `aws stepfunctions get-execution-history` prints, so a
//! history saved by the drill and one fetched from AWS read the same way.

use aws_sdk_sfn::types::HistoryEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// One history event: its type, time, and the details object AWS attaches to that type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The event's number in the history (from 1).
    pub id: i64,
    /// The event it follows (0 for the first).
    #[serde(default)]
    pub previous_event_id: i64,
    /// The event type (`TaskStateEntered`, `LambdaFunctionFailed`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    #[serde(with = "epoch_or_rfc3339")]
    pub timestamp: DateTime<Utc>,
    /// Every `*EventDetails` field, keyed as AWS keys it.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl Event {
    /// The details object, whatever its key (`stateEnteredEventDetails`, `taskFailedEventDetails`, …).
    pub fn detail(&self) -> Option<&Map<String, Value>> {
        self.details.values().find_map(Value::as_object)
    }

    /// A string field of the details object (`name`, `error`, `cause`, …).
    pub fn detail_str(&self, key: &str) -> Option<&str> {
        self.detail()?.get(key)?.as_str()
    }

    /// `input`/`output`/`parameters` are JSON documents inside strings.
    pub fn detail_json(&self, key: &str) -> Option<Value> {
        serde_json::from_str(self.detail_str(key)?).ok()
    }

    /// One event of an SDK `GetExecutionHistory` page.
    pub fn from_sdk(event: &HistoryEvent) -> Event {
        event_from_sdk(event)
    }

    /// Replaces every task token in a scheduled task's parameters (`task_token`, `TaskToken`,
    /// `taskToken`: the approval request's `$$.Task.Token`) with [`REDACTED_TOKEN`], for a
    /// copy of the history kept outside Step Functions (the report bucket). A finished task's
    /// token no longer works, but a copy kept for a year has no use for it either. Returns
    /// whether anything was replaced.
    pub fn redact_task_tokens(&mut self) -> bool {
        let Some(Value::Object(detail)) = self.details.get_mut("taskScheduledEventDetails") else {
            return false;
        };
        let Some(Value::String(text)) = detail.get("parameters") else {
            return false;
        };
        if !text.contains("oken") {
            return false;
        }
        let Ok(mut parameters) = serde_json::from_str::<Value>(text) else {
            return false;
        };
        if !redact(&mut parameters) {
            return false;
        }
        detail.insert("parameters".into(), Value::String(parameters.to_string()));
        true
    }
}

/// What [`Event::redact_task_tokens`] leaves in place of a task token.
pub const REDACTED_TOKEN: &str = "(task token removed)";

fn is_token_key(key: &str) -> bool {
    matches!(key, "task_token" | "TaskToken" | "taskToken")
}

fn redact(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            for (key, v) in map.iter_mut() {
                if is_token_key(key) && v.is_string() {
                    if v.as_str() != Some(REDACTED_TOKEN) {
                        *v = Value::String(REDACTED_TOKEN.to_owned());
                        changed = true;
                    }
                } else {
                    changed |= redact(v);
                }
            }
            changed
        }
        Value::Array(items) => {
            // Every item, not just up to the first with a token.
            let mut changed = false;
            for v in items {
                changed |= redact(v);
            }
            changed
        }
        _ => false,
    }
}

/// The whole `{"events": [...]}` document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    /// The events, oldest first.
    pub events: Vec<Event>,
}

impl History {
    /// The document from the SDK's `GetExecutionHistory` events.
    pub fn from_sdk(events: &[HistoryEvent]) -> History {
        History {
            events: events.iter().map(event_from_sdk).collect(),
        }
    }
}

fn event_from_sdk(e: &HistoryEvent) -> Event {
    let mut details = Map::new();
    state_details(e, &mut details);
    task_details(e, &mut details);
    execution_details(e, &mut details);
    let millis = e.timestamp.to_millis().unwrap_or_default();
    Event {
        id: e.id,
        previous_event_id: e.previous_event_id,
        kind: e.r#type.as_str().to_owned(),
        timestamp: DateTime::from_timestamp_millis(millis).unwrap_or_default(),
        details,
    }
}

/// A state's entered/exited details, keyed as the AWS CLI prints them.
fn state_details(e: &HistoryEvent, details: &mut Map<String, Value>) {
    let mut put = |key: &str, value: Value| {
        details.insert(key.to_owned(), value);
    };
    if let Some(d) = &e.state_entered_event_details {
        put(
            "stateEnteredEventDetails",
            json!({"name": d.name, "input": d.input}),
        );
    }
    if let Some(d) = &e.state_exited_event_details {
        put(
            "stateExitedEventDetails",
            json!({"name": d.name, "output": d.output}),
        );
    }
}

/// A task's (or Lambda function's) scheduled/succeeded/failed/timed-out details.
fn task_details(e: &HistoryEvent, details: &mut Map<String, Value>) {
    let mut put = |key: &str, value: Value| {
        details.insert(key.to_owned(), value);
    };
    if let Some(d) = &e.task_scheduled_event_details {
        put(
            "taskScheduledEventDetails",
            json!({"resourceType": d.resource_type, "resource": d.resource, "region": d.region, "parameters": d.parameters}),
        );
    }
    if let Some(d) = &e.task_succeeded_event_details {
        put(
            "taskSucceededEventDetails",
            json!({"resourceType": d.resource_type, "resource": d.resource, "output": d.output}),
        );
    }
    if let Some(d) = &e.task_failed_event_details {
        put(
            "taskFailedEventDetails",
            json!({"resourceType": d.resource_type, "resource": d.resource, "error": d.error, "cause": d.cause}),
        );
    }
    if let Some(d) = &e.task_timed_out_event_details {
        put(
            "taskTimedOutEventDetails",
            json!({"resourceType": d.resource_type, "resource": d.resource, "error": d.error, "cause": d.cause}),
        );
    }
    if let Some(d) = &e.lambda_function_failed_event_details {
        put(
            "lambdaFunctionFailedEventDetails",
            json!({"error": d.error, "cause": d.cause}),
        );
    }
}

/// The execution's own started/succeeded/failed/aborted/timed-out details.
fn execution_details(e: &HistoryEvent, details: &mut Map<String, Value>) {
    let mut put = |key: &str, value: Value| {
        details.insert(key.to_owned(), value);
    };
    if let Some(d) = &e.execution_started_event_details {
        put(
            "executionStartedEventDetails",
            json!({"input": d.input, "roleArn": d.role_arn}),
        );
    }
    if let Some(d) = &e.execution_succeeded_event_details {
        put(
            "executionSucceededEventDetails",
            json!({"output": d.output}),
        );
    }
    if let Some(d) = &e.execution_failed_event_details {
        put(
            "executionFailedEventDetails",
            json!({"error": d.error, "cause": d.cause}),
        );
    }
    if let Some(d) = &e.execution_aborted_event_details {
        put(
            "executionAbortedEventDetails",
            json!({"error": d.error, "cause": d.cause}),
        );
    }
    if let Some(d) = &e.execution_timed_out_event_details {
        put(
            "executionTimedOutEventDetails",
            json!({"error": d.error, "cause": d.cause}),
        );
    }
}

/// The AWS CLI prints epoch seconds (with fractions) or ISO 8601 depending on its settings.
mod epoch_or_rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => {
                let secs = n.as_f64().unwrap_or_default();
                DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
                    .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
            }
            Value::String(s) => DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "not a timestamp: {other}"
            ))),
        }
    }
}
