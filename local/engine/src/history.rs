//! Execution history, shaped like GetExecutionHistory's `HistoryEvent`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::sync::Mutex;

/// AWS fails an execution whose history would exceed 25,000 events; we do the same, which
/// also bounds runaway loops under the virtual clock.
pub const MAX_EVENTS: usize = 25_000;

#[derive(Debug, Clone)]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    pub timestamp: DateTime<Utc>,
    pub event_type: String,
    /// e.g. `taskScheduledEventDetails`; `None` for events without details.
    pub details_key: Option<&'static str>,
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

pub fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

#[derive(Default)]
pub struct History {
    events: Mutex<Vec<HistoryEvent>>,
}

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

    pub fn snapshot(&self) -> Vec<HistoryEvent> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn last_id(&self) -> u64 {
        self.lock().len() as u64
    }
}
