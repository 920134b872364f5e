//! Execution history, shaped like GetExecutionHistory's `HistoryEvent`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::sync::Mutex;

/// AWS fails an execution whose history would exceed 25,000 events; we do the same, which
/// also bounds runaway loops under the virtual clock.
pub const MAX_EVENTS: usize = 25_000;

/// One event of an execution's history.
#[derive(Debug, Clone)]
pub struct HistoryEvent {
    /// Its 1-based position in the history.
    pub id: u64,
    /// The id of the event it follows in its branch (0 for the first).
    pub previous_event_id: u64,
    /// When it happened, on the execution's clock.
    pub timestamp: DateTime<Utc>,
    /// The event type, e.g. `TaskStateEntered` or `ExecutionSucceeded`.
    pub event_type: String,
    /// e.g. `taskScheduledEventDetails`; `None` for events without details.
    pub details_key: Option<&'static str>,
    /// The details object, reported under `details_key`.
    pub details: Value,
}

impl HistoryEvent {
    /// The AWS JSON-protocol shape (timestamps as epoch seconds).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("timestamp".into(), json!(epoch(self.timestamp)));
        m.insert("type".into(), json!(self.event_type));
        m.insert("id".into(), json!(self.id));
        m.insert("previousEventId".into(), json!(self.previous_event_id));
        if let Some(k) = self.details_key {
            m.insert(k.into(), self.details.clone());
        }
        Value::Object(m)
    }
}

/// Epoch seconds with millisecond precision: how the AWS JSON protocol writes timestamps.
pub fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// An execution's events, appended by the interpreter and read by the API, from any thread.
#[derive(Default)]
pub struct History {
    events: Mutex<Vec<HistoryEvent>>,
}

/// The error when an event would exceed [`MAX_EVENTS`]; it fails the execution with States.Runtime.
#[derive(Debug, thiserror::Error)]
#[error("the execution history exceeded the limit of {MAX_EVENTS} events")]
pub struct HistoryFull;

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HistoryEvent>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event and returns its id. `prev` is the id of the event this one follows in
    /// its branch (0 for the first).
    pub fn push(
        &self,
        prev: u64,
        at: DateTime<Utc>,
        event_type: &str,
        details_key: Option<&'static str>,
        details: Value,
    ) -> Result<u64, HistoryFull> {
        let mut ev = self.lock();
        if ev.len() >= MAX_EVENTS {
            return Err(HistoryFull);
        }
        let id = ev.len() as u64 + 1;
        ev.push(HistoryEvent {
            id,
            previous_event_id: prev,
            timestamp: at,
            event_type: event_type.to_string(),
            details_key,
            details,
        });
        Ok(id)
    }

    /// Terminal events are always recorded, even past the limit, so the outcome is visible.
    pub fn push_final(
        &self,
        prev: u64,
        at: DateTime<Utc>,
        event_type: &str,
        key: &'static str,
        details: Value,
    ) -> u64 {
        let mut ev = self.lock();
        let id = ev.len() as u64 + 1;
        ev.push(HistoryEvent {
            id,
            previous_event_id: prev,
            timestamp: at,
            event_type: event_type.to_string(),
            details_key: Some(key),
            details,
        });
        id
    }

    /// A copy of every event so far, oldest first.
    pub fn snapshot(&self) -> Vec<HistoryEvent> {
        self.lock().clone()
    }

    /// The number of events so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no event has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of the latest event (0 when there is none).
    pub fn last_id(&self) -> u64 {
        self.lock().len() as u64
    }
}
