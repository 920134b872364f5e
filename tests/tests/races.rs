//! Races between alarm events for one service (issue 8). The real `rollback-plan` function runs
//! validate, guard and fingerprint against the engine's own Step Functions endpoint (as in the
//! drill); the other functions are scripted. Whatever the interleaving, exactly one rollback
//! runs, and every other execution ends quietly (a duplicate delivery, an OK transition) or
//! with a notice (a second rollback of the same service).

use aws_sdk_sfn::error::SdkError;
use rollback_core::{RollbackRequest, Scope};
use rollback_e2e::*;
use rollback_engine::ExecutionStatus;
use serde_json::Value;

/// StartExecution through the SDK, as EventBridge (no name) or `rollbackctl start` (the
/// request's deterministic name) does.
async fn start(h: &Harness, input: &Value, name: Option<String>) -> String {
    h.sfn()
        .start_execution()
        .state_machine_arn(&h.state_machine)
        .input(input.to_string())
        .set_name(name)
        .send()
        .await
        .expect("StartExecution")
        .execution_arn
}

fn dedup_name(event: &Value) -> String {
    RollbackRequest::from_start_input(event.clone())
        .unwrap()
        .dedup_execution_name()
        .expect("alarm requests have a deterministic name")
}

fn name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap()
}

/// Waits until one of `executions` asks for approval and every other one has ended; checks
/// that nobody else asked or changed anything. Returns (the rollback, its approval request).
async fn the_one_rollback(h: &Harness, executions: &[String]) -> (String, Call) {
    let request = h
        .script
        .wait_for("an approval request", |c| {
            executions.contains(&c.execution) && c.is("notify", "approval-request")
        })
        .await;
    let winner = request.execution.clone();
    for other in executions.iter().filter(|e| **e != winner) {
        let d = h.finish(other).await;
        assert_ne!(d.status, ExecutionStatus::Running);
        let calls = h.calls(other);
        assert!(
            !calls
                .iter()
                .any(|c| is_destructive(c) || c.is("notify", "approval-request")),
            "{other} went further than the guard: {:?}",
            pairs(&calls)
        );
    }
    (winner, request)
}

/// Approves the one rollback and checks it completes, and that it alone changed anything.
async fn approve_and_finish(h: &Harness, winner: &str, request: &Call, executions: &[String]) {
    h.approve(request, Scope::APP);
    let d = h.finish(winner).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(h.states(winner).last().unwrap(), "Rollback complete");
    let changed: Vec<&String> = executions
        .iter()
        .filter(|e| h.calls(e).iter().any(is_destructive))
        .collect();
    assert_eq!(
        changed,
        vec![winner],
        "exactly one execution changes anything"
    );
    let approvals = h
        .script
        .calls()
        .iter()
        .filter(|c| c.is("notify", "approval-request"))
        .count();
    assert_eq!(approvals, 1, "exactly one approval request went out");
}

/// The refused rollback: FAILED through the contingency notice, naming the running one.
fn assert_refused(h: &Harness, refused: &str, winner: &str) {
    let d = h.engine.describe_execution(refused).unwrap();
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.ConcurrentRollback"));
    let calls = h.calls(refused);
    assert_calls(
        &calls,
        &[One("plan", "validate"), One("plan", "guard")]
            .into_iter()
            .chain(contingency())
            .collect::<Vec<_>>(),
    );
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.ConcurrentRollback");
    assert!(
        notice.error.cause.contains(name_of(winner)),
        "the notice names the rollback in flight: {}",
        notice.error.cause
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alarm_transition_started_twice_under_its_name_is_one_execution() {
    let h = Harness::served().await;
    let event = alarm_event("OK", "ALARM", "2024-05-01T12:00:00.000+0000", "evt-1");
    let name = dedup_name(&event);
    // Both at once: Step Functions answers the second with the first (same name, same input).
    let (a, b) = tokio::join!(
        start(&h, &event, Some(name.clone())),
        start(&h, &event, Some(name.clone()))
    );
    assert_eq!(a, b, "the same execution");
    assert_eq!(name_of(&a), name);
    // The same transition in a re-sent event (another event id) is refused by name.
    let resent = alarm_event("OK", "ALARM", "2024-05-01T12:00:00.000+0000", "evt-1-again");
    let err = h
        .sfn()
        .start_execution()
        .state_machine_arn(&h.state_machine)
        .input(resent.to_string())
        .name(&name)
        .send()
        .await
        .expect_err("a second execution under the same name");
    assert!(
        matches!(&err, SdkError::ServiceError(e) if e.err().is_execution_already_exists()),
        "{err:?}"
    );
    assert_eq!(
        h.engine.list_executions(Some(&h.state_machine), None).len(),
        1
    );

    let executions = vec![a.clone()];
    let (winner, request) = the_one_rollback(&h, &executions).await;
    approve_and_finish(&h, &winner, &request, &executions).await;
    // Once it has ended, the name stays taken.
    let err = h
        .sfn()
        .start_execution()
        .state_machine_arn(&h.state_machine)
        .input(event.to_string())
        .name(&name)
        .send()
        .await
        .expect_err("names are not reused");
    assert!(
        matches!(&err, SdkError::ServiceError(e) if e.err().is_execution_already_exists()),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alarm_transition_delivered_twice_by_eventbridge_rolls_back_once() {
    let h = Harness::served().await;
    let event = alarm_event("OK", "ALARM", "2024-05-01T12:00:00.000+0000", "evt-1");
    // EventBridge names executions itself: two deliveries are two executions.
    let (a, b) = tokio::join!(start(&h, &event, None), start(&h, &event, None));
    assert_ne!(a, b);
    let executions = vec![a, b];
    let (winner, request) = the_one_rollback(&h, &executions).await;
    let duplicate = executions.iter().find(|e| **e != winner).unwrap();

    let d = h.engine.describe_execution(duplicate).unwrap();
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(h.states(duplicate).last().unwrap(), "Duplicate ignored");
    let out: Value = serde_json::from_str(d.output.as_deref().unwrap()).unwrap();
    assert_eq!(out["guard"]["duplicate_of"], name_of(&winner), "{out}");
    assert_calls(
        &h.calls(duplicate),
        &[One("plan", "validate"), One("plan", "guard")],
    );
    approve_and_finish(&h, &winner, &request, &executions).await;
}

async fn two_transitions_at_once(named: bool) {
    let h = Harness::served().await;
    let first = alarm_event("OK", "ALARM", "2024-05-01T12:00:00.000+0000", "evt-1");
    let second = alarm_event("OK", "ALARM", "2024-05-01T12:05:00.000+0000", "evt-2");
    let names = if named {
        (Some(dedup_name(&first)), Some(dedup_name(&second)))
    } else {
        (None, None)
    };
    let (a, b) = tokio::join!(start(&h, &first, names.0), start(&h, &second, names.1));
    let executions = vec![a, b];
    let (winner, request) = the_one_rollback(&h, &executions).await;
    let refused = executions.iter().find(|e| **e != winner).unwrap();
    assert_refused(&h, refused, &winner);
    approve_and_finish(&h, &winner, &request, &executions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_alarm_transitions_at_once_roll_back_once_and_the_other_is_refused_with_a_notice() {
    two_transitions_at_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_alarm_transitions_started_by_name_at_once_roll_back_once() {
    two_transitions_at_once(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_alarm_rolls_back_once() {
    let h = Harness::served().await;
    let events = [
        alarm_event("OK", "ALARM", "2024-05-01T12:00:00.000+0000", "evt-alarm-1"),
        alarm_event("ALARM", "OK", "2024-05-01T12:03:00.000+0000", "evt-ok"),
        alarm_event("OK", "ALARM", "2024-05-01T12:06:00.000+0000", "evt-alarm-2"),
    ];
    // Delivered in order, each as soon as the previous start returned: all three run at once.
    let mut executions = Vec::new();
    for event in &events {
        executions.push(start(&h, event, None).await);
    }
    let ok = executions[1].clone();
    let (winner, request) = the_one_rollback(&h, &executions).await;
    assert_ne!(winner, ok, "the OK transition never rolls back");

    let d = h.engine.describe_execution(&ok).unwrap();
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(h.states(&ok).last().unwrap(), "Trigger ignored");
    assert_calls(&h.calls(&ok), &[One("plan", "validate")]);

    let refused = executions
        .iter()
        .find(|e| **e != winner && **e != ok)
        .unwrap();
    assert_refused(&h, refused, &winner);
    approve_and_finish(&h, &winner, &request, &executions).await;
}
