//! The execution-history budget and the smoke re-run schedule, both derived from the plan.
//!
//! A Standard Step Functions execution fails hard (`States.Runtime`, no Catch, no contingency
//! notice) when its history would pass 25,000 events. Every wait loop of the definition is
//! bounded by the plan (`polling`, `smoke.max_settle_minutes`), so the worst case is known
//! before anything runs: [`worst_case_events`]. Plan validation refuses a plan whose worst case
//! is above [`HISTORY_BUDGET`], naming the fields to change.
//!
//! The model (checked against `statemachine/rollback.asl.json` by the e2e suite,
//! `tests/tests/history_budget.rs`, which also runs the worst case on the local engine):
//! - a Lambda task visit is 5 events (`TaskStateEntered`, `TaskScheduled`, `TaskStarted`,
//!   `TaskSucceeded`/`TaskFailed`, `TaskStateExited`), 6 with a task token (`TaskSubmitted`);
//!   Pass, Choice, Wait, Succeed and Fail states 2 (entered, exited); a Parallel state 4 plus
//!   its branches' states; the execution itself 2 (started, ended);
//! - one loop iteration (status or acting Task, Choice, counting Pass, Wait) is 11 events, as
//!   is one smoke re-run (smoke Task, Choice, back-off Pass, Wait);
//! - status loops ([`CHECK_LOOPS`]) iterate at most `polling.max_checks()` times: each check
//!   keeps looking for `polling.status_wait_seconds` ([`crate::wait`]); loops whose every
//!   iteration acts ([`POLL_LOOPS`]: swap, revert, clean-up) iterate `polling.max_polls()`
//!   times, one interval apart;
//! - a loop that reaches its limit ends the path it is on (timed out → contingency), so one
//!   execution runs at most [`CHECK_LOOPS_PER_EXECUTION`] status loops (backup, restores,
//!   swapped-databases check, rollout) and [`POLL_LOOPS_PER_EXECUTION`] acting loops (swap,
//!   then the failure path's put-back) at their limit — the other loops (drill cleanup,
//!   revert) are on other paths with fewer loops;
//! - with `infrastructure`, both Terraform build loops ([`INFRA_POLL_LOOPS`]) at their own
//!   limit (`infrastructure.max_build_minutes`): the plan's limit leaves infrastructure out and
//!   goes on, and the apply runs in its own branch beside the databases;
//! - every state of the definition once on top ([`STRAIGHT_EVENTS`], an over-count: no
//!   execution visits every state).
//!
//! Task retries are not in the bound: each retried attempt adds 3 events (failed, scheduled,
//! started). The margin between [`HISTORY_BUDGET`] and [`HISTORY_LIMIT`] (5,000 events) leaves
//! room for ≈ 1,600 retried attempts.

use crate::plan::{Plan, PollingPolicy};

/// Where Step Functions fails a Standard execution.
pub const HISTORY_LIMIT: u64 = 25_000;
/// What a plan may use at worst; the rest is the margin for task retries.
pub const HISTORY_BUDGET: u64 = 20_000;

/// Events of one loop iteration: Task 5 + Choice 2 + Pass 2 + Wait 2.
pub const POLL_ITERATION_EVENTS: u64 = 11;
/// Events of one smoke re-run: Task 5 + Choice 2 + Pass 2 + Wait 2.
pub const SMOKE_ITERATION_EVENTS: u64 = 11;
/// The Choice states of the definition's status loops (bounded by `$.timing.max_checks`).
pub const CHECK_LOOPS: &[&str] = &[
    "Backup ready?",
    "Restores ready?",
    "Swapped databases ready?",
    "Rollout finished?",
];
/// The Choice states of the loops whose every iteration acts again (bounded by
/// `$.timing.max_polls`).
pub const POLL_LOOPS: &[&str] = &[
    "Swap complete?",
    "Drill copies gone?",
    "Databases back?",
    "Unfinished swap put back?",
];
/// The status loops of the Terraform builds, bounded by `$.timing.infra_max_polls`
/// (`infrastructure.max_build_minutes`): one execution can run both at their limit.
pub const INFRA_POLL_LOOPS: &[&str] = &["Infrastructure plan ready?", "Infrastructure applied?"];
/// Status loops one execution can run at their limit (see the module documentation).
pub const CHECK_LOOPS_PER_EXECUTION: u64 = 4;
/// Acting loops one execution can run at their limit (see the module documentation).
pub const POLL_LOOPS_PER_EXECUTION: u64 = 2;
/// Every state of the definition once, at its largest cost, plus the execution's own events.
/// The e2e suite recomputes it from the definition and fails when it is too small.
pub const STRAIGHT_EVENTS: u64 = 480;

/// Without alarms (or with alarms that settle sooner) smoke tests are re-run for this long
/// after a failed run: the rollout may need a moment to serve.
pub const SMOKE_BASE_SETTLE_SECONDS: u64 = 225;

/// `smoke.max_settle_minutes` bounds: at least a minute, at most two hours.
pub const MAX_SETTLE_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 1..=120;

/// The settle window actually used: what the alarms need (`None`: not known), at least
/// [`SMOKE_BASE_SETTLE_SECONDS`], at most `smoke.max_settle_minutes`.
pub fn settle_seconds(plan: &Plan, needed: Option<u64>) -> u64 {
    let cap = u64::from(plan.smoke.max_settle_minutes) * 60;
    match needed {
        Some(n) => n.max(SMOKE_BASE_SETTLE_SECONDS).min(cap),
        None => cap,
    }
}

/// Smoke re-runs, `interval` seconds apart, that cover `settle` seconds (at least one).
pub fn smoke_max_retries(settle: u64, interval: u64) -> u64 {
    settle.div_ceil(interval.max(1)).max(1)
}

/// The worst-case history of an execution under `polling` (its `max_wait_minutes` for every
/// wait, its builds at `build_minutes`) and a smoke settle window of `settle` seconds.
pub fn events_for(polling: &PollingPolicy, settle: u64, build_minutes: Option<u32>) -> u64 {
    let interval = u64::from(polling.interval_seconds.max(1));
    STRAIGHT_EVENTS
        + (POLL_LOOPS_PER_EXECUTION * u64::from(polling.max_polls())
            + CHECK_LOOPS_PER_EXECUTION * u64::from(polling.max_checks()))
            * POLL_ITERATION_EVENTS
        + smoke_max_retries(settle, interval) * SMOKE_ITERATION_EVENTS
        + build_events(build_minutes, polling)
}

/// The worst case of `plan`: every wait loop at `polling.max_wait_minutes` (the Terraform
/// builds' at `infrastructure.max_build_minutes`), smoke re-runs for the whole
/// `smoke.max_settle_minutes` (the alarms' periods are read only at run time).
pub fn worst_case_events(plan: &Plan) -> u64 {
    events_for(
        &plan.polling,
        settle_seconds(plan, None),
        build_minutes(plan),
    )
}

/// The Terraform build loops at their limit (0 without infrastructure).
fn infra_events(plan: &Plan) -> u64 {
    build_events(build_minutes(plan), &plan.polling)
}

fn build_minutes(plan: &Plan) -> Option<u32> {
    plan.infrastructure.as_ref().map(|i| i.max_build_minutes)
}

/// Events of the Terraform build loops at their limit: `build_minutes` is
/// `infrastructure.max_build_minutes` (`None` without infrastructure).
pub fn build_events(build_minutes: Option<u32>, polling: &PollingPolicy) -> u64 {
    build_minutes.map_or(0, |minutes| {
        INFRA_POLL_LOOPS.len() as u64
            * u64::from(polling.checks_within(minutes))
            * POLL_ITERATION_EVENTS
    })
}

/// The largest `polling.max_wait_minutes` within the budget for `polling`'s interval and
/// status wait, this settle window and Terraform build limit (0 when none is).
pub fn max_wait_minutes_within_budget(
    polling: &PollingPolicy,
    max_settle_minutes: u32,
    build_minutes: Option<u32>,
) -> u32 {
    let settle = u64::from(max_settle_minutes) * 60;
    let mut best = 0;
    // The loops' limits grow with max_wait, so the first minute over the budget ends the search.
    for minutes in 1..=24 * 60u32 {
        let candidate = PollingPolicy {
            max_wait_minutes: minutes,
            ..polling.clone()
        };
        if events_for(&candidate, settle, build_minutes) > HISTORY_BUDGET {
            break;
        }
        best = minutes;
    }
    best
}

/// The smallest `polling.interval_seconds` within the budget for `polling`'s wait and status
/// wait, this settle window and Terraform build limit (`None` when no interval up to an hour
/// is).
pub fn min_interval_within_budget(
    polling: &PollingPolicy,
    max_settle_minutes: u32,
    build_minutes: Option<u32>,
) -> Option<u32> {
    let settle = u64::from(max_settle_minutes) * 60;
    (1..=3600u32).find(|&interval_seconds| {
        let candidate = PollingPolicy {
            interval_seconds,
            ..polling.clone()
        };
        events_for(&candidate, settle, build_minutes) <= HISTORY_BUDGET
    })
}

/// A one-line explanation of a plan over the budget, naming the fields and values that fit.
pub fn over_budget_message(plan: &Plan) -> Option<String> {
    let events = worst_case_events(plan);
    if events <= HISTORY_BUDGET {
        return None;
    }
    let polling = &plan.polling;
    let settle = plan.smoke.max_settle_minutes;
    let mut fixes = Vec::new();
    let builds = build_minutes(plan);
    let wait = max_wait_minutes_within_budget(polling, settle, builds);
    if wait > 0 {
        fixes.push(format!(
            "lower polling.max_wait_minutes to at most {wait} (with interval_seconds {})",
            polling.interval_seconds
        ));
    }
    if let Some(interval) = min_interval_within_budget(polling, settle, builds) {
        fixes.push(format!(
            "raise polling.interval_seconds to at least {interval} (with max_wait_minutes {})",
            polling.max_wait_minutes
        ));
    }
    let smoke_events =
        smoke_max_retries(u64::from(settle) * 60, u64::from(polling.interval_seconds))
            * SMOKE_ITERATION_EVENTS;
    if settle > 1 {
        fixes.push("lower smoke.max_settle_minutes".to_owned());
    }
    if builds.is_some_and(|m| m > 1) {
        fixes.push("lower infrastructure.max_build_minutes".to_owned());
    }
    let builds = match infra_events(plan) {
        0 => String::new(),
        n => format!(", {n} for the Terraform build loops over infrastructure.max_build_minutes"),
    };
    Some(format!(
        "at its polling limits a rollback could write {events} history events ({} status loops \
         × {} checks and {} acting loops × {} polls, {POLL_ITERATION_EVENTS} events each, \
         {smoke_events} for smoke re-runs over \
         smoke.max_settle_minutes {settle}{builds}, {STRAIGHT_EVENTS} for the other states); Step \
         Functions fails an execution at {HISTORY_LIMIT} events without the contingency notice, \
         and plans may use at most {HISTORY_BUDGET}: {}",
        CHECK_LOOPS_PER_EXECUTION,
        polling.max_checks(),
        POLL_LOOPS_PER_EXECUTION,
        polling.max_polls(),
        fixes.join(", or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(interval: u32, wait: u32, settle: u32) -> Plan {
        let mut p = Plan::from_json(r#"{"service": "svc", "images": [{"repository": "svc-app", "release_tag": "prod", "stable_tag": "stable"}]}"#).unwrap();
        p.polling.interval_seconds = interval;
        p.polling.max_wait_minutes = wait;
        p.smoke.max_settle_minutes = settle;
        p
    }

    #[test]
    fn the_defaults_fit_and_the_limits_found_are_the_edge() {
        assert!(worst_case_events(&plan(15, 60, 30)) <= HISTORY_BUDGET);
        let wait = max_wait_minutes_within_budget(&plan(15, 60, 30).polling, 30, None);
        assert!(worst_case_events(&plan(15, wait, 30)) <= HISTORY_BUDGET);
        let over = plan(15, wait + 1, 30);
        assert!(worst_case_events(&over) > HISTORY_BUDGET);
        let msg = over_budget_message(&over).unwrap();
        assert!(msg.contains("polling.max_wait_minutes"), "{msg}");
        assert!(msg.contains("polling.interval_seconds"), "{msg}");
        let interval = min_interval_within_budget(&over.polling, 30, None).unwrap();
        assert!(worst_case_events(&plan(interval, wait + 1, 30)) <= HISTORY_BUDGET);
        assert!(worst_case_events(&plan(interval - 1, wait + 1, 30)) > HISTORY_BUDGET);
    }

    #[test]
    fn status_checks_that_wait_leave_room_for_longer_waits() {
        // One look per check: every status loop iterates each interval, as acting loops do.
        let mut looking_once = plan(15, 90, 30);
        looking_once.polling.status_wait_seconds = 0;
        assert!(worst_case_events(&looking_once) > HISTORY_BUDGET);
        let once = max_wait_minutes_within_budget(&looking_once.polling, 30, None);
        assert_eq!(once, 68);
        // Checks that keep looking for 240 s: 90 minutes fit.
        assert!(worst_case_events(&plan(15, 90, 30)) <= HISTORY_BUDGET);
        let waiting = max_wait_minutes_within_budget(&plan(15, 90, 30).polling, 30, None);
        assert!(waiting > 2 * once, "{waiting} vs {once}");
    }

    #[test]
    fn settle_window_is_what_the_alarms_need_within_the_plan_bounds() {
        let p = plan(15, 60, 30);
        assert_eq!(settle_seconds(&p, Some(900)), 900);
        assert_eq!(settle_seconds(&p, Some(60)), SMOKE_BASE_SETTLE_SECONDS);
        assert_eq!(settle_seconds(&p, Some(3000)), 1800);
        assert_eq!(settle_seconds(&p, None), 1800);
        assert_eq!(smoke_max_retries(900, 15), 60);
        assert_eq!(smoke_max_retries(225, 60), 4);
        assert_eq!(smoke_max_retries(1, 60), 1);
    }
}
