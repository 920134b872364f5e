//! Realistic durations on the engine's virtual clock, for the MTTR model: the local stack
//! answers instantly, so status checks are made to report "not yet" until the modelled
//! duration has passed since the operation started, and the smoke test takes its time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rollback_core::plan::PollingPolicy;
use rollback_core::wait;
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

/// What one kind of call means to the model.
enum Modelled {
    /// Starts the operation with this mark.
    Starts(&'static str),
    /// A status check of an operation: which one (from the output, for the infra function's
    /// two builds), and the output field that says it is done.
    Checks(fn(&Value) -> Operation, &'static str),
    /// Takes this long itself.
    Takes(fn(&LatencyModel) -> Duration),
}

use Modelled::{Checks, Starts, Takes};

/// A modelled operation: its start mark and how long it takes.
type Operation = (&'static str, fn(&LatencyModel) -> Duration);

const SNAPSHOT: Operation = ("snapshot", |m| m.snapshot);
const RESTORE: Operation = ("restore", |m| m.restore);
const ROLLOUT: Operation = ("rollout", |m| m.rollout);
const TERRAFORM_PLAN: Operation = ("terraform_plan", |m| m.terraform_plan);
const TERRAFORM_APPLY: Operation = ("terraform_apply", |m| m.terraform_apply);

/// (function, action) → what the call means; calls not listed take no modelled time.
#[rustfmt::skip] // one row per call reads as a table
const CALLS: &[(&str, &str, Modelled)] = &[
    ("rollback-snapshot", "create", Starts(SNAPSHOT.0)),
    ("rollback-snapshot", "status", Checks(|_| SNAPSHOT, "all_available")),
    ("rollback-restore", "start", Starts(RESTORE.0)),
    ("rollback-restore", "status", Checks(|_| RESTORE, "all_available")),
    ("rollback-deploy-undo", "undo", Starts(ROLLOUT.0)),
    ("rollback-deploy-undo", "status", Checks(|_| ROLLOUT, "complete")),
    ("rollback-infra", "plan", Starts(TERRAFORM_PLAN.0)),
    ("rollback-infra", "apply", Starts(TERRAFORM_APPLY.0)),
    ("rollback-infra", "status", Checks(infra_build, "done")),
    ("rollback-smoke-test", "run", Takes(|m| m.smoke)),
];

/// The infra function's status answers for the build it was given: the apply or the plan.
fn infra_build(output: &Value) -> Operation {
    match output.pointer("/build/purpose").and_then(Value::as_str) {
        Some("apply") => TERRAFORM_APPLY,
        _ => TERRAFORM_PLAN,
    }
}

/// Applies the model to one task: records starts, and rewrites status outputs to "not yet".
/// Returns how much virtual time the task itself takes: a status check that keeps looking
/// (`looking`: the plan's polling, [`rollback_core::wait`]) takes until the operation is done,
/// in whole intervals, or its whole status wait.
pub fn apply(
    model: &LatencyModel,
    marks: &Marks,
    call: &Call,
    now: DateTime<Utc>,
    output: &mut Value,
) -> Duration {
    let modelled = CALLS
        .iter()
        .find(|(function, action, _)| *function == call.function && *action == call.action);
    match modelled.map(|(.., m)| m) {
        None => Duration::ZERO,
        Some(Starts(mark)) => {
            marks.mark(mark, now);
            Duration::ZERO
        }
        Some(Takes(duration)) => duration(model),
        Some(Checks(operation, done_field)) => {
            let (mark, duration) = operation(output);
            let (took, done) = check(marks.started(mark), duration(model), call, now);
            if !done {
                output[*done_field] = Value::Bool(false);
            }
            took
        }
    }
}

/// How long a status check takes and whether it sees the operation (started at `start`,
/// taking `duration`) done by then.
fn check(
    start: Option<DateTime<Utc>>,
    duration: Duration,
    call: &Call,
    now: DateTime<Utc>,
) -> (Duration, bool) {
    let Some(start) = start else {
        return (Duration::ZERO, true);
    };
    let remaining = duration.saturating_sub((now - start).to_std().unwrap_or_default());
    if remaining.is_zero() {
        return (Duration::ZERO, true);
    }
    let Some(polling) = &call.looking else {
        return (Duration::ZERO, false);
    };
    let interval = u64::from(polling.interval_seconds.max(1));
    let longest = (u64::from(wait::looks_per_check(polling)) - 1) * interval;
    let needed = remaining.as_secs().div_ceil(interval) * interval;
    if needed <= longest {
        (Duration::from_secs(needed), true)
    } else {
        (Duration::from_secs(longest), false)
    }
}

/// What the model needs to know of one task call.
pub struct Call {
    pub function: String,
    pub action: String,
    /// The plan's polling, when the call is a status check that keeps looking.
    pub looking: Option<PollingPolicy>,
}

impl Call {
    /// Reads the call from a function's input.
    pub fn of(function: &str, payload: &Value) -> Call {
        let looking = (payload.get("keep_looking") == Some(&Value::Bool(true)))
            .then(|| {
                payload
                    .pointer("/plan/polling")
                    .cloned()
                    .map_or_else(|| Ok(PollingPolicy::default()), serde_json::from_value)
                    .ok()
            })
            .flatten();
        Call {
            function: function.to_owned(),
            action: payload
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            looking,
        }
    }
}
