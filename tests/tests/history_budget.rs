//! The history budget (`rollback_core::history_budget`): the model matches the definition, and
//! the worst-case accepted plan, with every wait loop run to its limit on the local engine,
//! stays within the bound plan validation computes — and the bound within 20,000 events.

use rollback_core::history_budget::{
    self, CHECK_LOOPS, HISTORY_BUDGET, INFRA_POLL_LOOPS, POLL_ITERATION_EVENTS, POLL_LOOPS,
    SMOKE_ITERATION_EVENTS, STRAIGHT_EVENTS,
};
use rollback_core::{Plan, Scope};
use rollback_e2e::*;
use rollback_engine::ExecutionStatus;
use serde_json::{Map, Value, json};

/// Events one visit of a state costs at most (not counting its branches' states).
fn cost(state: &Value) -> u64 {
    match state["Type"].as_str().unwrap() {
        "Task" => {
            if state["Resource"]
                .as_str()
                .is_some_and(|r| r.ends_with(".waitForTaskToken"))
            {
                6
            } else {
                5
            }
        }
        "Parallel" => 4,
        _ => 2,
    }
}

/// Every (name, state) of the definition, branches included.
fn all_states(states: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (name, s) in states {
        out.push((name.clone(), s.clone()));
        for b in s["Branches"].as_array().into_iter().flatten() {
            all_states(b["States"].as_object().unwrap(), out);
        }
    }
}

fn nexts(s: &Value) -> Vec<String> {
    let mut n: Vec<String> = Vec::new();
    if let Some(x) = s["Next"].as_str() {
        n.push(x.into());
    }
    if let Some(x) = s["Default"].as_str() {
        n.push(x.into());
    }
    for c in s["Choices"].as_array().into_iter().flatten() {
        n.push(c["Next"].as_str().unwrap().into());
    }
    n
}

#[test]
fn the_budget_model_matches_the_definition() {
    let def: Value = serde_json::from_str(&definition()).unwrap();
    let mut states = Vec::new();
    all_states(def["States"].as_object().unwrap(), &mut states);
    let by_name: std::collections::HashMap<&str, &Value> =
        states.iter().map(|(n, s)| (n.as_str(), s)).collect();

    // Every state once, plus ExecutionStarted and the end event.
    let straight: u64 = states.iter().map(|(_, s)| cost(s)).sum::<u64>() + 2;
    assert!(
        straight <= STRAIGHT_EVENTS,
        "the definition's states cost {straight} events once each; raise \
         history_budget::STRAIGHT_EVENTS (now {STRAIGHT_EVENTS})"
    );

    // Each loop: from its Choice, the Default path back to the Choice.
    let mut loops = Vec::new();
    let mut check_loops = Vec::new();
    let mut infra_loops = Vec::new();
    for (name, s) in &states {
        let Some(rule) = s["Choices"].as_array().and_then(|c| {
            c.iter().find(|r| {
                r["NumericGreaterThanEqualsPath"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("$.timing."))
            })
        }) else {
            continue;
        };
        let bound = rule["NumericGreaterThanEqualsPath"].as_str().unwrap();
        let mut at = s["Default"].as_str().unwrap().to_owned();
        let mut iteration = cost(s);
        let mut steps = 0;
        while at != *name {
            let st = by_name[at.as_str()];
            iteration += cost(st);
            at = nexts(st)[0].clone();
            steps += 1;
            assert!(steps < 10, "{name}: the Default path does not come back");
        }
        let expected = if bound == "$.timing.max_polls" {
            loops.push(name.clone());
            POLL_ITERATION_EVENTS
        } else if bound == "$.timing.max_checks" {
            check_loops.push(name.clone());
            POLL_ITERATION_EVENTS
        } else if bound == "$.timing.infra_max_polls" {
            infra_loops.push(name.clone());
            POLL_ITERATION_EVENTS
        } else {
            assert_eq!(bound, "$.timing.smoke_max_retries", "{name}");
            SMOKE_ITERATION_EVENTS
        };
        assert_eq!(iteration, expected, "one iteration of the loop at {name}");
    }
    loops.sort();
    let mut model: Vec<String> = POLL_LOOPS.iter().map(|s| s.to_string()).collect();
    model.sort();
    assert_eq!(loops, model, "history_budget::POLL_LOOPS");
    check_loops.sort();
    let mut model: Vec<String> = CHECK_LOOPS.iter().map(|s| s.to_string()).collect();
    model.sort();
    assert_eq!(check_loops, model, "history_budget::CHECK_LOOPS");
    // A status loop's check keeps looking; the definition must ask it to.
    for name in CHECK_LOOPS.iter().chain(INFRA_POLL_LOOPS) {
        let check = states
            .iter()
            .find(|(_, s)| nexts(s).iter().any(|n| n == name) && s["Type"] == "Task")
            .unwrap_or_else(|| panic!("no status task before {name}"));
        assert_eq!(
            check.1["Parameters"]["Payload"]["keep_looking"],
            json!(true),
            "{}: a status check in a wait loop keeps looking",
            check.0
        );
    }
    infra_loops.sort();
    let mut model: Vec<String> = INFRA_POLL_LOOPS.iter().map(|s| s.to_string()).collect();
    model.sort();
    assert_eq!(infra_loops, model, "history_budget::INFRA_POLL_LOOPS");
}

/// The plan with the longest polling limits plan validation accepts at a 15 s interval.
fn worst_case_plan() -> (String, Plan) {
    let mut doc: Value = serde_json::from_str(&plan_text()).unwrap();
    let settle = 30;
    let polling: rollback_core::plan::PollingPolicy =
        serde_json::from_value(doc["polling"].clone()).unwrap();
    let wait = history_budget::max_wait_minutes_within_budget(&polling, settle, None);
    doc["polling"]["max_wait_minutes"] = json!(wait);
    doc["smoke"]["max_settle_minutes"] = json!(settle);
    let text = doc.to_string();
    let plan = Plan::from_json(&text).expect("the worst case is accepted");
    // One minute more is refused, naming the fields to change.
    doc["polling"]["max_wait_minutes"] = json!(wait + 1);
    let err = Plan::from_json(&doc.to_string()).unwrap_err().to_string();
    assert!(
        err.contains("polling.max_wait_minutes") && err.contains("polling.interval_seconds"),
        "{err}"
    );
    (text, plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wait_loop_at_its_limit_stays_within_the_computed_bound() {
    let (text, plan) = worst_case_plan();
    let bound = history_budget::worst_case_events(&plan);
    assert!(bound <= HISTORY_BUDGET, "{bound}");
    let polls = plan.polling.max_polls();
    let checks = plan.polling.max_checks();
    // The scripted harness does not read alarm periods: the window is the plan's maximum.
    let settle = history_budget::settle_seconds(&plan, None);
    let smoke_retries =
        history_budget::smoke_max_retries(settle, u64::from(plan.polling.interval_seconds)) as u32;

    let h = Harness::scripted_with(&text);
    // Each status answers "not yet" until its loop has counted max_checks (an acting loop:
    // max_polls), then "done" (the Choice tests the outcome before the count), so every loop
    // runs to its limit.
    let ready = move |nth: u32| nth.is_multiple_of(checks + 1);
    let swapped = move |nth: u32| nth.is_multiple_of(polls + 1);
    h.script.on("snapshot", "status", move |call, nth| {
        let s =
            rollback_core::StepInput::<rollback_core::contract::snapshot::SnapshotAction>::parse(
                call.payload.clone(),
            )
            .unwrap();
        let mut out = canned::snapshots(&s.plan, &s.request, &s.execution, ready(nth));
        out.all_available = ready(nth);
        Some(Ok(serde_json::to_value(out).unwrap()))
    });
    // restore status serves two loops in turn: the restores, then the swapped databases.
    h.script.on("restore", "status", move |call, nth| {
        let s = rollback_core::StepInput::<rollback_core::contract::restore::RestoreAction>::parse(
            call.payload.clone(),
        )
        .unwrap();
        let out = canned::restore_status(&s.plan, &s.request, &s.execution, ready(nth));
        Some(Ok(serde_json::to_value(out).unwrap()))
    });
    h.script.on("restore", "swap", move |call, nth| {
        let s = rollback_core::StepInput::<rollback_core::contract::restore::RestoreAction>::parse(
            call.payload.clone(),
        )
        .unwrap();
        let mut out = canned::swap(&s.plan, &s.request, &s.execution);
        out.complete = swapped(nth);
        Some(Ok(serde_json::to_value(out).unwrap()))
    });
    h.script.on("deploy-undo", "status", move |call, nth| {
        let s = rollback_core::StepInput::<rollback_core::contract::deploy_undo::DeployUndoAction>::parse(
            call.payload.clone(),
        )
        .unwrap();
        Some(Ok(
            serde_json::to_value(canned::rollout_status(&s.plan, ready(nth))).unwrap(),
        ))
    });
    // Smoke tests fail on every run: the failure path then runs its put-back loop to the limit.
    h.script.on("smoke-test", "run", |_, _| {
        Some(Ok(serde_json::to_value(canned::smoke(false)).unwrap()))
    });
    h.script.on("restore", "revert", move |call, _| {
        let s = rollback_core::StepInput::<rollback_core::contract::restore::RestoreAction>::parse(
            call.payload.clone(),
        )
        .unwrap();
        let mut out = canned::revert(&s.request);
        out.complete = false;
        Some(Ok(serde_json::to_value(out).unwrap()))
    });

    let exec = h.start(json!({"reason": "worst case", "scope": "app+database"}));
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h
        .finish_within(&exec, std::time::Duration::from_secs(120))
        .await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.WaitTimedOut"), "{d:?}");

    // Every loop ran to its limit.
    let calls = h.calls(&exec);
    let count = |f: &str, a: &str| calls.iter().filter(|c| c.is(f, a)).count() as u32;
    assert_eq!(count("snapshot", "status"), checks + 1);
    assert_eq!(count("restore", "status"), 2 * (checks + 1));
    assert_eq!(count("restore", "swap"), polls + 1);
    let rollout = calls
        .iter()
        .filter(|c| c.is("deploy-undo", "status") && c.state == "Check rollout")
        .count() as u32;
    assert_eq!(rollout, checks + 1);
    assert_eq!(count("smoke-test", "run"), smoke_retries + 1);
    let put_back = calls
        .iter()
        .filter(|c| c.is("restore", "revert") && c.state == "Put back an unfinished swap")
        .count() as u32;
    assert_eq!(put_back, polls + 1, "the put-back loop");

    let events = h.engine.history(&exec).unwrap().len() as u64;
    println!(
        "worst case: {events} events for polling {:?} (bound {bound}, budget {HISTORY_BUDGET})",
        plan.polling
    );
    assert!(
        events <= bound,
        "{events} events > the computed bound {bound}"
    );
    assert!(
        events * 10 >= bound * 9,
        "the bound ({bound}) should be tight: {events} events"
    );
}
