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
    /// The Terraform plan build (before the approval request) and the apply build.
    pub terraform_plan: Duration,
    pub terraform_apply: Duration,
}

/// What an execution did, for the model's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub databases: bool,
    pub infrastructure: bool,
    /// The plan's policy pre-approved the rollback: nobody decides, the "stop it now" grace
    /// period takes the approval's place.
    pub pre_approved_grace: Option<Duration>,
}

impl LatencyModel {
    /// Typical figures for a mid-sized service: 10 min until someone approves, a 5 min
    /// snapshot, a 20 min restore, a 2 min rollout, 30 s of smoke tests; a 3 min Terraform
    /// plan build and a 5 min apply build.
    pub fn realistic() -> Self {
        LatencyModel {
            approval: Duration::from_secs(10 * 60),
            snapshot: Duration::from_secs(5 * 60),
            restore: Duration::from_secs(20 * 60),
            rollout: Duration::from_secs(2 * 60),
            smoke: Duration::from_secs(30),
            terraform_plan: Duration::from_secs(3 * 60),
            terraform_apply: Duration::from_secs(5 * 60),
        }
    }

    /// The critical path of the definition: the Terraform plan (if any) before the approval
    /// request; the backup starts before the request goes out and runs while people decide;
    /// after approval the databases branch (rest of the backup, then the restore), the images
    /// branch (near-instant) and the infrastructure branch (the apply build) run side by side,
    /// then the rollout, then the smoke tests.
    pub fn critical_path(&self, parts: Parts) -> Duration {
        let data = if parts.databases {
            self.snapshot.saturating_sub(self.approval) + self.restore
        } else {
            Duration::ZERO
        };
        let (plan, apply) = self.terraform(parts);
        let decide = parts.pre_approved_grace.unwrap_or(self.approval);
        plan + decide + data.max(apply) + self.rollout + self.smoke
    }

    /// The same operations done one after the other, as a runbook would: decide, then back up,
    /// restore, plan and apply Terraform, roll out, smoke-test.
    pub fn sequential_runbook(&self, parts: Parts) -> Duration {
        let data = if parts.databases {
            self.snapshot + self.restore
        } else {
            Duration::ZERO
        };
        let (plan, apply) = self.terraform(parts);
        self.approval + data + plan + apply + self.rollout + self.smoke
    }

    fn terraform(&self, parts: Parts) -> (Duration, Duration) {
        if parts.infrastructure {
            (self.terraform_plan, self.terraform_apply)
        } else {
            (Duration::ZERO, Duration::ZERO)
        }
    }

    /// How many polling waits the critical path has (each may add up to one interval).
    pub fn waits(&self, parts: Parts) -> u32 {
        1 + if parts.databases { 3 } else { 0 } + if parts.infrastructure { 2 } else { 0 }
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
        ("rollback-infra", "plan") => marks.mark("terraform_plan", now),
        ("rollback-infra", "apply") => marks.mark("terraform_apply", now),
        ("rollback-infra", "status") => {
            let (what, duration) = match output.pointer("/build/purpose").and_then(Value::as_str) {
                Some("apply") => ("terraform_apply", model.terraform_apply),
                _ => ("terraform_plan", model.terraform_plan),
            };
            if pending(what, duration) {
                output["done"] = Value::Bool(false);
            }
        }
        ("rollback-smoke-test", "run") => return model.smoke,
        _ => {}
    }
    Duration::ZERO
}
