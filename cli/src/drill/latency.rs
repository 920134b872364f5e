//! Realistic durations on the engine's virtual clock, for the MTTR model: the local stack
//! answers instantly, so status checks are made to report "not yet" until the modelled
//! duration has passed since the operation started, and the smoke test takes its time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// How long each operation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyModel {
    /// How long the approvers take to decide (the backup runs meanwhile).
    pub approval: Duration,
    pub snapshot: Duration,
    pub restore: Duration,
    pub rollout: Duration,
    pub smoke: Duration,
}

impl LatencyModel {
    /// Typical figures for a mid-sized service: 10 min until someone approves, a 5 min
    /// snapshot, a 20 min restore, a 2 min rollout, 30 s of smoke tests.
    pub fn realistic() -> Self {
        LatencyModel {
            approval: Duration::from_secs(10 * 60),
            snapshot: Duration::from_secs(5 * 60),
            restore: Duration::from_secs(20 * 60),
            rollout: Duration::from_secs(2 * 60),
            smoke: Duration::from_secs(30),
        }
    }

    /// The critical path of the definition: the backup starts before the approval request
    /// goes out and runs while people decide; after approval the databases branch (rest of the
    /// backup, then the restore) runs beside the images branch (near-instant), then the
    /// rollout, then the smoke tests.
    pub fn critical_path(&self, databases: bool) -> Duration {
        let data = if databases {
            self.snapshot.saturating_sub(self.approval) + self.restore
        } else {
            Duration::ZERO
        };
        self.approval + data + self.rollout + self.smoke
    }

    /// The same operations done one after the other, as a runbook would: decide, then back up,
    /// restore, roll out, smoke-test.
    pub fn sequential_runbook(&self, databases: bool) -> Duration {
        let data = if databases {
            self.snapshot + self.restore
        } else {
            Duration::ZERO
        };
        self.approval + data + self.rollout + self.smoke
    }

    /// How many polling waits the critical path has (each may add up to one interval).
    pub fn waits(&self, databases: bool) -> u32 {
        if databases { 4 } else { 1 }
    }
}

/// When each modelled operation started, on the execution's clock.
#[derive(Default)]
pub struct Marks(Mutex<HashMap<&'static str, DateTime<Utc>>>);

impl Marks {
    fn mark(&self, what: &'static str, at: DateTime<Utc>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(what)
            .or_insert(at);
    }

    fn started(&self, what: &'static str) -> Option<DateTime<Utc>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(what)
            .copied()
    }
}

/// Applies the model to one task: records starts, and rewrites status outputs to "not yet".
/// Returns how much virtual time the task itself takes.
pub fn apply(
    model: &LatencyModel,
    marks: &Marks,
    function: &str,
    action: &str,
    now: DateTime<Utc>,
    output: &mut Value,
) -> Duration {
    let pending = |what: &'static str, duration: Duration| match marks.started(what) {
        Some(start) => (now - start).to_std().unwrap_or_default() < duration,
        None => false,
    };
    match (function, action) {
        ("rollback-snapshot", "create") => marks.mark("snapshot", now),
        ("rollback-snapshot", "status") if pending("snapshot", model.snapshot) => {
            output["all_available"] = Value::Bool(false);
        }
        ("rollback-restore", "start") => marks.mark("restore", now),
        ("rollback-restore", "status") if pending("restore", model.restore) => {
            output["all_available"] = Value::Bool(false);
        }
        ("rollback-deploy-undo", "undo") => marks.mark("rollout", now),
        ("rollback-deploy-undo", "status") if pending("rollout", model.rollout) => {
            output["complete"] = Value::Bool(false);
        }
        ("rollback-smoke-test", "run") => return model.smoke,
        _ => {}
    }
    Duration::ZERO
}
