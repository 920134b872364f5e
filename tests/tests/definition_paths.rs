//! Every path of `statemachine/rollback.asl.json` on the local engine (virtual clock), with the
//! functions' outcomes scripted per test from their contract types. Each test checks the end
//! state, the exact calls in order (nothing destructive before the approval, one notice last),
//! and what reached notify.

use std::time::Duration;

use rollback_core::contract::notify::{NotifyAction, StepStatus};
use rollback_core::contract::plan::GuardOutput;
use rollback_core::{RollbackError, Scope, StepInput};
use rollback_e2e::script::failure;
use rollback_e2e::*;
use rollback_engine::{ExecutionStatus, ServiceError};
use serde_json::{Value, json};

fn full_request() -> Value {
    json!({"scope": "app+database", "reason": "bad migration in v42", "requested_by": "oncall@example.com"})
}

/// Everything up to and including the approval request, for a request that restores databases.
fn until_approval() -> Vec<Expect> {
    vec![
        One("plan", "validate"),
        One("plan", "guard"),
        One("notify", "progress"),
        One("retag", "resolve"),
        One("deploy-undo", "resolve"),
        One("restore", "resolve"),
        One("plan", "fingerprint"),
        One("snapshot", "create"),
        One("notify", "approval-request"),
    ]
}

fn then(mut head: Vec<Expect>, tail: impl IntoIterator<Item = Expect>) -> Vec<Expect> {
    head.extend(tail);
    head
}

const DATABASE_BRANCH: &[(&str, &str)] = &[
    ("snapshot", "status"),
    ("restore", "start"),
    ("restore", "status"),
    ("restore", "swap"),
    ("restore", "status"),
];

fn notice_step(notice: &Call) -> StepInput<NotifyAction> {
    StepInput::<NotifyAction>::parse(notice.payload.clone()).expect("notify reads its input")
}

fn statuses(pairs: &[(&str, StepStatus)]) -> std::collections::BTreeMap<String, StepStatus> {
    pairs.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

use StepStatus::{Done, Failed, InProgress, NotStarted, Skipped};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_full_rolls_back_databases_images_and_deployments() {
    let h = Harness::scripted();
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;

    // What the approver sees is what was resolved, fingerprinted by the plan function.
    let calls = h.calls(&exec);
    let fingerprint = calls
        .iter()
        .find(|c| c.is("plan", "fingerprint"))
        .map(|c| c.payload.clone())
        .expect("fingerprint call");
    assert_eq!(request.payload["topic_arn"], APPROVAL_TOPIC);
    assert_eq!(request.payload["resolved"], fingerprint["resolved"]);
    assert_eq!(
        request.payload["resolved"]["databases"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        request.payload["resolved"]["images"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        request.payload["resolved"]["deployments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The database cutoff is the bad release's rollout time from deploy-undo.
    let resolve = calls.iter().find(|c| c.is("restore", "resolve")).unwrap();
    assert_eq!(
        resolve.payload["release_time"],
        json!(rollback_e2e::canned::release_time())
    );
    assert!(
        !calls.iter().any(is_destructive),
        "nothing destructive while waiting for the decision: {:?}",
        pairs(&calls)
    );

    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(h.states(&exec).last().unwrap(), "Rollback complete");

    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &then(
            until_approval(),
            [
                One("deploy-undo", "pause"),
                Par(vec![DATABASE_BRANCH.to_vec(), vec![("retag", "apply")]]),
                One("deploy-undo", "undo"),
                One("deploy-undo", "resume"),
                One("deploy-undo", "status"),
                One("smoke-test", "run"),
                One("notify", "report"),
                One("notify", "success"),
            ],
        ),
    );
    assert_nothing_destructive_before_approval(&calls, true);
    // The destructive steps act on exactly what was approved.
    let start = calls.iter().find(|c| c.is("restore", "start")).unwrap();
    assert_eq!(
        start.payload["resolved"],
        request.payload["resolved"]["databases"]
    );
    let apply = calls.iter().find(|c| c.is("retag", "apply")).unwrap();
    assert_eq!(
        apply.payload["images"],
        request.payload["resolved"]["images"]
    );
    let undo = calls.iter().find(|c| c.is("deploy-undo", "undo")).unwrap();
    assert_eq!(
        undo.payload["deployments"],
        request.payload["resolved"]["deployments"]
    );

    let notice = the_notice(&calls, "success");
    let NotifyAction::Success(success) = notice_step(&notice).action else {
        panic!("not a success notice")
    };
    let decision = success.decision.expect("the decision reaches the report");
    assert_eq!(decision.scope, Scope::APP_AND_DATABASE);
    assert_eq!(decision.approver, "oncall@example.com");
    assert!(success.smoke.expect("smoke report").passed);
    let progress = success.progress.expect("progress");
    let mut steps = step_statuses(&progress);
    // The database branch waited for the backup: the notice says it finished (issue 18 4a).
    let backup = steps.remove("backup");
    assert_eq!(backup, Some(Done));
    assert_eq!(
        steps,
        statuses(&[
            ("approval", Done),
            ("gitops", NotStarted),
            ("pause", Done),
            ("databases", Done),
            ("images", Done),
            // The example plan names no infrastructure and no mobile apps.
            ("infrastructure", NotStarted),
            ("mobile", NotStarted),
            ("undo", Done),
            ("restart", NotStarted),
            ("resume", Done),
            ("rollout", Done),
            ("smoke", Done),
        ])
    );
    assert_eq!(progress.backups.len(), 2, "{progress:?}");
}

/// The "rollback started" broadcast goes out right after validation (issue 17 item 6), and
/// a failure to send it changes nothing else: the state goes on as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_started_broadcast_does_not_stop_the_rollback() {
    let h = Harness::scripted();
    h.script.on("notify", "progress", |call, _| {
        is_started_broadcast(call).then(|| {
            Err(failure(
                "Rollback.AwsError",
                "SNS Publish: the topic does not exist",
            ))
        })
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    let calls = h.calls(&exec);
    let broadcast = calls
        .iter()
        .find(|c| is_started_broadcast(c))
        .expect("the broadcast was attempted");
    assert!(
        broadcast.payload["stage"]
            .as_str()
            .unwrap()
            .starts_with("started")
    );
    h.approve(&request, Scope::APP);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_app_only_leaves_the_databases_and_writes_alone() {
    let h = Harness::scripted();
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");

    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &then(
            until_approval(),
            [
                One("retag", "apply"),
                One("deploy-undo", "undo"),
                One("deploy-undo", "status"),
                One("smoke-test", "run"),
                One("notify", "report"),
                One("notify", "success"),
            ],
        ),
    );
    assert_nothing_destructive_before_approval(&calls, true);
    let notice = the_notice(&calls, "success");
    let NotifyAction::Success(success) = notice_step(&notice).action else {
        panic!("not a success notice")
    };
    assert_eq!(success.decision.unwrap().scope, Scope::APP);
    let steps = step_statuses(&success.progress.unwrap());
    assert_eq!(steps["databases"], Skipped);
    assert_eq!(steps["pause"], NotStarted);
    assert_eq!(steps["resume"], NotStarted);
    assert_eq!(steps["images"], Done);
    assert_eq!(steps["undo"], Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_changes_nothing_and_reports_who_rejected() {
    let h = Harness::scripted();
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.reject(&request);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(h.states(&exec).last().unwrap(), "Rollback rejected");

    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &then(
            until_approval(),
            [One("notify", "report"), One("notify", "progress")],
        ),
    );
    assert_nothing_destructive_before_approval(&calls, false);
    let notice = the_notice(&calls, "progress");
    let NotifyAction::Progress(progress) = notice_step(&notice).action else {
        panic!("not a progress notice")
    };
    assert_eq!(progress.stage, "rejected");
    assert!(
        progress.message.contains("oncall@example.com"),
        "{}",
        progress.message
    );
    let steps = step_statuses(&progress.progress.expect("progress"));
    assert_eq!(steps["approval"], NotStarted);
    assert_eq!(steps["pause"], NotStarted);
    assert_eq!(steps["databases"], NotStarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_timeout_escalates_then_ends_with_the_timeout_notice() {
    let h = Harness::scripted();
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    let timing = plan().approval.clone();
    let escalate_after = Duration::from_secs(u64::from(timing.escalate_after_minutes) * 60);
    let timeout = Duration::from_secs(u64::from(timing.timeout_minutes) * 60);
    let clock = h.engine.clock(&exec).unwrap();

    // Nobody answers: time stands still while the token waits, until we move it.
    let asked_at = clock.now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(clock.now(), asked_at);
    assert!(!h.calls(&exec).iter().any(|c| c.is("notify", "escalate")));
    clock.advance(escalate_after + Duration::from_secs(1));
    let escalation = h
        .script
        .wait_for("the escalation", |c| {
            c.execution == exec && c.is("notify", "escalate")
        })
        .await;
    let NotifyAction::Escalate(esc) = notice_step(&escalation).action else {
        panic!("not an escalation")
    };
    assert_eq!(esc.resolved.images.len(), 2);
    assert_eq!(
        h.engine.describe_execution(&exec).unwrap().status,
        ExecutionStatus::Running,
        "escalating does not end the wait"
    );

    clock.advance(timeout - escalate_after);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("States.Timeout"));
    // A late click finds the task gone.
    let late = h.engine.send_task_success(
        request.task_token.as_deref().unwrap(),
        &json!({"decision": "approve"}).to_string(),
    );
    assert!(
        matches!(late, Err(ServiceError::TaskTimedOut(_))),
        "{late:?}"
    );

    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &then(
            until_approval(),
            then(vec![One("notify", "escalate")], contingency()),
        ),
    );
    assert_nothing_destructive_before_approval(&calls, false);
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "States.Timeout");
    let steps = step_statuses(&notice.progress);
    assert_eq!(steps["approval"], NotStarted);
    assert_eq!(steps["backup"], InProgress);
    assert_eq!(steps["pause"], NotStarted);
    // The backups taken before asking are named so nobody hunts for them.
    assert_eq!(notice.progress.backups.len(), 2, "{:?}", notice.progress);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_failure_ends_in_the_contingency_notice() {
    let h = Harness::scripted();
    h.script.on("restore", "start", |_, _| {
        Some(Err(failure(
            "Rollback.RestoreFailed",
            "RestoreDBInstanceFromDBSnapshot mint-replica-db: InsufficientDBInstanceCapacity",
        )))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.RestoreFailed"));
    assert_eq!(h.states(&exec).last().unwrap(), "Rollback failed");

    let calls = h.calls(&exec);
    // The images branch may or may not have retagged before the databases branch failed.
    let applies = calls.iter().filter(|c| c.is("retag", "apply")).count();
    assert!(applies <= 1);
    let without_apply: Vec<Call> = calls
        .iter()
        .filter(|c| !c.is("retag", "apply"))
        .cloned()
        .collect();
    assert_calls(
        &without_apply,
        &then(
            until_approval(),
            [
                One("deploy-undo", "pause"),
                One("snapshot", "status"),
                One("restore", "start"),
            ]
            .into_iter()
            .chain(contingency()),
        ),
    );
    assert_nothing_destructive_before_approval(&calls, true);
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.RestoreFailed");
    assert!(
        notice.error.cause.contains("mint-replica-db"),
        "{}",
        notice.error.cause
    );
    let steps = step_statuses(&notice.progress);
    assert_eq!(steps["approval"], Done);
    assert_eq!(
        steps["pause"], Done,
        "the notice must say the writes are paused"
    );
    assert_eq!(
        steps["databases"], Failed,
        "the databases branch reports its own failure"
    );
    assert_eq!(steps["undo"], NotStarted);
    assert_eq!(steps["resume"], NotStarted);
    let backups: Vec<&str> = notice
        .progress
        .backups
        .iter()
        .filter_map(|b| b.snapshot_id.as_deref())
        .collect();
    assert_eq!(backups.len(), 2, "{:?}", notice.progress.backups);
    assert!(
        backups
            .iter()
            .all(|b| b.starts_with("rollback-mint-replica-")),
        "{backups:?}"
    );
}

/// The databases branch waits on the backup (virtual time), so the images branch has certainly
/// retagged before the restore fails. The contingency notice should then say the images were
/// retagged: the on-call must know that `prod` now points at the stable digests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contingency_notice_says_the_images_were_retagged_when_the_restore_fails_after() {
    let h = Harness::scripted();
    h.script.on("snapshot", "status", |c, nth| {
        (nth == 1).then(|| {
            let s = StepInput::<rollback_core::contract::snapshot::SnapshotAction>::parse(
                c.payload.clone(),
            )
            .unwrap();
            Ok(serde_json::to_value(rollback_e2e::canned::snapshots(
                &s.plan,
                &s.request,
                &s.execution,
                false,
            ))
            .unwrap())
        })
    });
    h.script.on("restore", "start", |_, _| {
        Some(Err(failure("Rollback.RestoreFailed", "capacity")))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    h.finish(&exec).await;
    let calls = h.calls(&exec);
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.is("retag", "apply") && c.error.is_none())
            .count(),
        1,
        "the images were retagged"
    );
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(step_statuses(&notice.progress)["images"], Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_stuck_ends_in_the_contingency_notice() {
    let h = Harness::scripted();
    h.script.on("deploy-undo", "status", |_, _| {
        Some(Err(failure(
            "Rollback.RolloutStuck",
            "deployment \"backend-deployment\" exceeded its progress deadline",
        )))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.RolloutStuck"));

    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &then(
            until_approval(),
            [
                One("deploy-undo", "pause"),
                Par(vec![DATABASE_BRANCH.to_vec(), vec![("retag", "apply")]]),
                One("deploy-undo", "undo"),
                One("deploy-undo", "resume"),
                One("deploy-undo", "status"),
            ]
            .into_iter()
            .chain(contingency()),
        ),
    );
    assert_nothing_destructive_before_approval(&calls, true);
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.RolloutStuck");
    assert!(notice.error.cause.contains("backend-deployment"));
    assert_eq!(
        step_statuses(&notice.progress),
        statuses(&[
            // The restore waited for the backup, so it is recorded as finished.
            ("backup", Done),
            ("approval", Done),
            ("gitops", NotStarted),
            ("pause", Done),
            ("databases", Done),
            ("images", Done),
            // The example plan names no infrastructure and no mobile apps.
            ("infrastructure", NotStarted),
            ("mobile", NotStarted),
            ("undo", Done),
            ("restart", NotStarted),
            ("resume", Done),
            ("rollout", NotStarted),
            ("smoke", NotStarted),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_that_never_completes_times_out_after_the_plans_polls() {
    // A short polling budget keeps the loop (one status call per check) quick in real time.
    // The scripted status answers at once, so with no status wait every check is one look and
    // the loop's virtual time is the definition's Waits alone.
    let mut short: Value = serde_json::from_str(&plan_text()).unwrap();
    short["polling"] =
        json!({"interval_seconds": 30, "max_wait_minutes": 10, "status_wait_seconds": 0});
    let plan = rollback_core::Plan::from_value(short.clone()).unwrap();
    let h = Harness::scripted_with(&short.to_string());
    let stuck = plan.clone();
    h.script.on("deploy-undo", "status", move |_, _| {
        Some(Ok(serde_json::to_value(
            rollback_e2e::canned::rollout_status(&stuck, false),
        )
        .unwrap()))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.WaitTimedOut"));
    let calls = h.calls(&exec);
    let polls = calls
        .iter()
        .filter(|c| c.is("deploy-undo", "status"))
        .count();
    let max_checks = plan.polling.max_checks() as usize;
    assert_eq!(max_checks, 20);
    assert_eq!(
        polls,
        max_checks + 2,
        "one first check, max_checks re-checks, and the failure path's observation"
    );
    // Only the loop's checks keep looking; the failure path's observation is one look.
    let looking: Vec<bool> = calls
        .iter()
        .filter(|c| c.is("deploy-undo", "status"))
        .map(|c| c.payload["keep_looking"] == json!(true))
        .collect();
    assert_eq!(looking.iter().filter(|k| **k).count(), max_checks + 1);
    assert_eq!(looking.last(), Some(&false), "the observation");
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert!(
        notice.error.cause.contains("kubectl rollout status"),
        "{}",
        notice.error.cause
    );
    // On the virtual clock the wait took the plan's whole polling budget.
    let history = h.engine.history(&exec).unwrap();
    let span = history.last().unwrap().timestamp - history[0].timestamp;
    assert!(
        span.num_seconds() >= i64::from(plan.polling.max_wait_minutes) * 60,
        "virtual span {span}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_failing_after_every_rerun_ends_in_the_contingency_notice() {
    let h = Harness::scripted();
    h.script.on("smoke-test", "run", |_, _| {
        Some(Ok(
            serde_json::to_value(rollback_e2e::canned::smoke(false)).unwrap()
        ))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.WaitTimedOut"));

    let calls = h.calls(&exec);
    // The scripted harness does not read the alarms' periods: the plan's maximum window.
    let plan = plan();
    let settle = rollback_core::history_budget::settle_seconds(&plan, None);
    let runs = rollback_core::history_budget::smoke_max_retries(
        settle,
        u64::from(plan.polling.interval_seconds),
    ) as usize
        + 1;
    let mut tail = vec![
        One("deploy-undo", "pause"),
        Par(vec![DATABASE_BRANCH.to_vec(), vec![("retag", "apply")]]),
        One("deploy-undo", "undo"),
        One("deploy-undo", "resume"),
        One("deploy-undo", "status"),
    ];
    tail.extend(std::iter::repeat_n(One("smoke-test", "run"), runs));
    tail.extend(contingency());
    assert_calls(&calls, &then(until_approval(), tail));
    assert_nothing_destructive_before_approval(&calls, true);
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.WaitTimedOut");
    assert!(
        notice.error.cause.contains("api health"),
        "the cause names the failing check: {}",
        notice.error.cause
    );
    assert!(
        notice
            .error
            .cause
            .contains("waits up to 30 min (smoke.max_settle_minutes)"),
        "the cause says how long the smoke tests were re-run and why: {}",
        notice.error.cause
    );
    let steps = step_statuses(&notice.progress);
    assert_eq!(steps["rollout"], Done);
    assert_eq!(steps["smoke"], NotStarted);
    assert_eq!(steps["undo"], Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_execution_for_the_service_is_refused_with_a_notice() {
    let h = Harness::scripted();
    h.script.on("plan", "guard", |_, _| {
        Some(Err(failure(
            "Rollback.ConcurrentRollback",
            &RollbackError::ConcurrentRollback(
                "execution first (started 2024-05-01T12:00:00Z) is already rolling back mint-replica"
                    .into(),
            )
            .to_string(),
        )))
    });
    let exec = h.start(full_request());
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.ConcurrentRollback"));
    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &then(
            vec![One("plan", "validate"), One("plan", "guard")],
            contingency(),
        ),
    );
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.ConcurrentRollback");
    assert!(notice.error.cause.contains("execution first"));
    assert!(
        step_statuses(&notice.progress)
            .values()
            .all(|s| *s == NotStarted),
        "{:?}",
        notice.progress
    );
    assert!(notice.progress.backups.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_delivery_is_ignored_quietly() {
    let h = Harness::scripted();
    h.script.on("plan", "guard", |_, _| {
        Some(Ok(serde_json::to_value(GuardOutput {
            proceed: false,
            duplicate_of: Some("first-delivery".into()),
            running_checked: 2,
        })
        .unwrap()))
    });
    let exec = h.start(alarm_event(
        "OK",
        "ALARM",
        "2024-05-01T12:00:00.000+0000",
        "evt-2",
    ));
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(h.states(&exec).last().unwrap(), "Duplicate ignored");
    let calls = h.calls(&exec);
    assert_calls(&calls, &[One("plan", "validate"), One("plan", "guard")]);
    // The guard learned which alarm transition this is.
    assert_eq!(
        calls[1].payload["dedup_key"],
        "alarm-mint-replica-5xx-20240501T120000Z"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_runs_every_step_in_its_non_destructive_form() {
    let h = Harness::scripted();
    let exec =
        h.start(json!({"scope": "app+database", "mode": "drill", "reason": "quarterly drill"}));
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");

    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &then(
            until_approval(),
            [
                One("deploy-undo", "pause"),
                Par(vec![
                    vec![
                        ("snapshot", "status"),
                        ("restore", "start"),
                        ("restore", "status"),
                        ("drill-cleanup", "cleanup-drill"),
                    ],
                    vec![("retag", "apply")],
                ]),
                One("deploy-undo", "undo"),
                One("deploy-undo", "resume"),
                One("deploy-undo", "status"),
                One("smoke-test", "run"),
                One("notify", "report"),
                One("notify", "success"),
            ],
        ),
    );
    assert_nothing_destructive_before_approval(&calls, true);
    assert!(
        !calls.iter().any(|c| c.is("restore", "swap")),
        "a drill never swaps"
    );
    for c in &calls {
        let mode = if c.is("plan", "validate") {
            // validate reads the raw start input; everything after gets the request.
            c.payload["input"]["mode"].clone()
        } else {
            c.payload["request"]["mode"].clone()
        };
        assert_eq!(mode, "drill", "{}:{} got mode {mode}", c.function, c.action);
    }
    let notice = the_notice(&calls, "success");
    let NotifyAction::Success(success) = notice_step(&notice).action else {
        panic!("not a success notice")
    };
    let progress = success.progress.unwrap();
    let databases = progress
        .steps
        .iter()
        .find(|s| s.name == "databases")
        .unwrap();
    assert_eq!(databases.status, Done);
    assert!(databases.detail.contains("drill"), "{}", databases.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_for_another_plan_is_refused_before_anything_changes() {
    let h = Harness::scripted();
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    let approved = request.payload["fingerprint"].as_str().unwrap().to_owned();
    h.decide(&request, Scope::APP_AND_DATABASE, "0".repeat(64));
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.PlanDrifted"));

    let calls = h.calls(&exec);
    assert_calls(&calls, &then(until_approval(), contingency()));
    assert_nothing_destructive_before_approval(&calls, false);
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.PlanDrifted");
    assert!(
        notice.error.cause.contains(&approved),
        "{}",
        notice.error.cause
    );
    assert!(
        notice.error.cause.contains(&"0".repeat(64)),
        "{}",
        notice.error.cause
    );
    assert_eq!(step_statuses(&notice.progress)["pause"], NotStarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_going_back_to_ok_is_ignored_without_any_change() {
    let h = Harness::scripted();
    let exec = h.start(alarm_event(
        "ALARM",
        "OK",
        "2024-05-01T12:10:00.000+0000",
        "evt-ok",
    ));
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(h.states(&exec).last().unwrap(), "Trigger ignored");
    let calls = h.calls(&exec);
    assert_calls(&calls, &[One("plan", "validate")]);
    let out: Value = serde_json::from_str(d.output.as_deref().unwrap()).unwrap();
    assert_eq!(out["act"], false);
    assert!(
        out["skip_reason"].as_str().unwrap().contains("not ALARM"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_retag_is_retried_and_the_rollback_succeeds() {
    let h = Harness::scripted();
    h.script.on("retag", "apply", |_, nth| {
        (nth == 1).then(|| {
            Err(failure(
                "Rollback.Throttled",
                "PutImage: ThrottlingException",
            ))
        })
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    let applies: Vec<&Call> = calls.iter().filter(|c| c.is("retag", "apply")).collect();
    assert_eq!(applies.len(), 2, "{:?}", pairs(&calls));
    assert_eq!(applies[0].error.as_deref(), Some("Rollback.Throttled"));
    assert_eq!(applies[1].error, None);
    assert_eq!(
        applies[0].payload, applies[1].payload,
        "a retry sends the same input"
    );
    assert_nothing_destructive_before_approval(&calls, true);
    the_notice(&calls, "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_plan_is_not_retried() {
    let h = Harness::scripted();
    h.script.on("retag", "apply", |_, _| {
        Some(Err(failure(
            "Rollback.InvalidPlan",
            "invalid plan: images[0].repository: not found",
        )))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.InvalidPlan"));
    let calls = h.calls(&exec);
    assert_eq!(
        calls.iter().filter(|c| c.is("retag", "apply")).count(),
        1,
        "{:?}",
        pairs(&calls)
    );
    assert!(!calls.iter().any(|c| c.is("deploy-undo", "undo")));
    assert_nothing_destructive_before_approval(&calls, true);
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.InvalidPlan");
}

/// A swap that fails permanently is undone for every database inside the databases branch
/// (revert, not only-if-incomplete), and the failure path checks again before the notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_swap_is_reverted_before_the_contingency_notice() {
    let h = Harness::scripted();
    h.script.on("restore", "swap", |_, _| {
        Some(Err(failure(
            "Rollback.SwapFailed",
            "renaming mint-replica-db-restored-1 to mint-replica-db failed. Observed just now: …",
        )))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.SwapFailed"));

    let calls = h.calls(&exec);
    let branch = vec![
        ("snapshot", "status"),
        ("restore", "start"),
        ("restore", "status"),
        ("restore", "swap"),
        ("restore", "revert"),
    ];
    assert_calls(
        &calls,
        &then(
            until_approval(),
            [
                One("deploy-undo", "pause"),
                Par(vec![branch, vec![("retag", "apply")]]),
            ]
            .into_iter()
            .chain(contingency()),
        ),
    );
    let reverts: Vec<bool> = calls
        .iter()
        .filter(|c| c.is("restore", "revert"))
        .map(|c| c.payload["only_if_incomplete"] == true)
        .collect();
    assert_eq!(
        reverts,
        [false, true],
        "the branch undoes the swap; the failure path keeps only a finished one"
    );
    let notice = failure_notice(&the_notice(&calls, "failure"));
    assert_eq!(notice.error.error, "Rollback.SwapFailed");
    assert!(notice.reverted.is_some() && notice.observed.is_some());
}

/// `on_failure: resume`: after a failure with no swap kept, the failure path scales the paused
/// deployments back before it observes and notifies; `stay-paused` (the default) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_resume_scales_back_only_when_the_plan_says_so() {
    for (on_failure, resumes) in [("resume", true), ("stay-paused", false)] {
        let mut plan: Value = serde_json::from_str(&plan_text()).unwrap();
        plan["on_failure"] = json!(on_failure);
        let h = Harness::scripted_with(&plan.to_string());
        h.script.on("deploy-undo", "undo", |_, _| {
            Some(Err(failure(
                "Rollback.Kubernetes",
                "deployment mint/backend-deployment: 409 Conflict",
            )))
        });
        let exec = h.start(full_request());
        let request = h.approval_request(&exec).await;
        h.approve(&request, Scope::APP);
        let d = h.finish(&exec).await;
        assert_eq!(d.status, ExecutionStatus::Failed, "{on_failure}: {d:?}");
        let calls = h.calls(&exec);
        let after_failure: Vec<(String, String)> = pairs(&calls)
            .into_iter()
            .skip_while(|(f, a)| !(f == "restore" && a == "revert"))
            .collect();
        let resumed = after_failure
            .iter()
            .any(|(f, a)| f == "deploy-undo" && a == "resume");
        assert_eq!(resumed, resumes, "{on_failure}: {after_failure:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_approval_request_is_sent_as_resent_and_its_links_decide() {
    // The first attempt fails after SNS may already have published: its email's links carry a
    // token nobody waits for. The retry's email must say so.
    let h = Harness::scripted();
    h.script.on("notify", "approval-request", |_, nth| {
        (nth == 1).then(|| {
            Err(failure(
                "Lambda.ServiceException",
                "the function timed out after publishing",
            ))
        })
    });
    let exec = h.start(full_request());
    let retry = h
        .script
        .wait_for("the retried approval request", |c| {
            c.execution == exec && c.is("notify", "approval-request") && c.error.is_none()
        })
        .await;
    let requests: Vec<Call> = h
        .calls(&exec)
        .into_iter()
        .filter(|c| c.is("notify", "approval-request"))
        .collect();
    assert_eq!(requests.len(), 2, "{:?}", pairs(&h.calls(&exec)));
    assert_eq!(requests[0].payload.get("attempt"), Some(&json!(0)));
    assert_eq!(retry.payload["attempt"], json!(1));
    assert_ne!(
        requests[0].task_token, retry.task_token,
        "a retry waits for a new token"
    );

    // What the real notify sends for the retry's payload.
    let step = notice_step(&retry);
    let NotifyAction::ApprovalRequest(request) = &step.action else {
        panic!("not an approval request: {:?}", step.action);
    };
    assert_eq!(request.attempt, 1);
    let ctx = rollback_notify::Context {
        plan: &step.plan,
        request: &step.request,
        execution: &step.execution,
        now: chrono::Utc::now(),
    };
    let key = rollback_core::approval_link::LinkKey::generate();
    let page = rollback_notify::approval::ApprovalPage {
        url: "http://approve.test/",
        key: &key,
        login: false,
    };
    let email = rollback_notify::approval::render(&ctx, request, &page).unwrap();
    assert!(
        email
            .message
            .subject
            .contains("RESENT - earlier links no longer work"),
        "{}",
        email.message.subject
    );
    assert!(
        email.message.body.starts_with(
            "RESENT (attempt 2): earlier approval links no longer work — use the links in this email."
        ),
        "{}",
        email.message.body
    );
    assert!(
        email
            .message
            .body
            .contains("Smoke tests: re-run while they fail; waits up to"),
        "{}",
        email.message.body
    );

    // The retry's links decide; the rollback completes.
    h.approve(&retry, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let calls = h.calls(&exec);
    let success = notice_step(&the_notice(&calls, "success"));
    let NotifyAction::Success(notice) = &success.action else {
        panic!("not a success notice");
    };
    let wait = notice
        .smoke_wait
        .as_ref()
        .expect("the success notice has the smoke wait");
    assert_eq!(wait.reruns, 0);
    assert_eq!(wait.settle_seconds, 30 * 60);
}

/// A swap that never completes within the plan's polls is undone like a failed one: the
/// databases branch calls revert (not only-if-incomplete) before the branch fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_that_times_out_is_reverted_before_the_contingency_notice() {
    let h = Harness::scripted();
    let scripted_plan = plan();
    h.script.on("restore", "swap", move |_, _| {
        let mut out = rollback_e2e::canned::swap(
            &scripted_plan,
            &rollback_core::RollbackRequest::from_start_input(json!({})).unwrap(),
            &rollback_core::ExecutionId::new("x"),
        );
        out.complete = false;
        Some(Ok(serde_json::to_value(out).unwrap()))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("Rollback.WaitTimedOut"));
    let calls = h.calls(&exec);
    let swaps = calls.iter().filter(|c| c.is("restore", "swap")).count();
    assert_eq!(swaps, plan().polling.max_polls() as usize + 1);
    let reverts: Vec<bool> = calls
        .iter()
        .filter(|c| c.is("restore", "revert"))
        .map(|c| c.payload["only_if_incomplete"] == true)
        .collect();
    assert_eq!(
        reverts,
        [false, true],
        "the branch reverts, then the failure path checks"
    );
    let first_revert = calls
        .iter()
        .position(|c| c.is("restore", "revert"))
        .unwrap();
    let last_swap = calls.iter().rposition(|c| c.is("restore", "swap")).unwrap();
    assert!(
        first_revert > last_swap,
        "revert comes after the last swap poll"
    );
}

/// The example plan with an Argo CD Application that syncs its deployments.
fn gitops_plan_text() -> String {
    let mut plan: Value = serde_json::from_str(&plan_text()).unwrap();
    plan["cluster"]["gitops"] = json!([{"kind": "argocd", "application": "mint-replica"}]);
    plan.to_string()
}

/// GitOps: the named Application's auto-sync is suspended after the approval and before the
/// first change to the deployments (the pause on the full path, the undo on the app-only path),
/// and the success notice carries what was suspended with its resume command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitops_sync_is_suspended_before_the_deployments_change_on_both_approvals() {
    for scope in [Scope::APP_AND_DATABASE, Scope::APP] {
        let h = Harness::scripted_with(&gitops_plan_text());
        let exec = h.start(full_request());
        let request = h.approval_request(&exec).await;
        assert!(
            !h.calls(&exec)
                .iter()
                .any(|c| c.is("deploy-undo", "suspend-gitops")),
            "nothing is suspended before the decision"
        );
        h.approve(&request, scope);
        let d = h.finish(&exec).await;
        assert_eq!(d.status, ExecutionStatus::Succeeded, "{scope:?}: {d:?}");
        let calls = h.calls(&exec);
        let tail: Vec<Expect> = if scope == Scope::APP_AND_DATABASE {
            vec![
                One("deploy-undo", "suspend-gitops"),
                One("deploy-undo", "pause"),
                Par(vec![DATABASE_BRANCH.to_vec(), vec![("retag", "apply")]]),
                One("deploy-undo", "undo"),
                One("deploy-undo", "resume"),
                One("deploy-undo", "status"),
                One("smoke-test", "run"),
                One("notify", "report"),
                One("notify", "success"),
            ]
        } else {
            vec![
                One("deploy-undo", "suspend-gitops"),
                One("retag", "apply"),
                One("deploy-undo", "undo"),
                One("deploy-undo", "status"),
                One("smoke-test", "run"),
                One("notify", "report"),
                One("notify", "success"),
            ]
        };
        assert_calls(&calls, &then(until_approval(), tail));
        assert_nothing_destructive_before_approval(&calls, true);
        let notice = the_notice(&calls, "success");
        let NotifyAction::Success(success) = notice_step(&notice).action else {
            panic!("not a success notice")
        };
        assert_eq!(success.gitops.len(), 1, "{scope:?}");
        assert_eq!(success.gitops[0].name.as_deref(), Some("mint-replica"));
        assert!(
            success.gitops[0]
                .resume_command()
                .is_some_and(|c| c
                    .starts_with("kubectl -n argocd patch applications.argoproj.io mint-replica")),
            "{:?}",
            success.gitops[0]
        );
        let steps = step_statuses(&success.progress.unwrap());
        assert_eq!(steps["gitops"], Done);
    }
}

/// A failure after the suspension: the contingency notice still reports the GitOps step done
/// (and observes the deployments, whose status reports the suspension).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_suspension_keeps_it_in_the_contingency_notice() {
    let h = Harness::scripted_with(&gitops_plan_text());
    h.script.on("deploy-undo", "undo", |_, _| {
        Some(Err(failure(
            "Rollback.Kubernetes",
            "deployment mint/backend-deployment: 403 Forbidden",
        )))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    let calls = h.calls(&exec);
    assert_calls(
        &calls,
        &then(
            then(
                until_approval(),
                [
                    One("deploy-undo", "suspend-gitops"),
                    One("retag", "apply"),
                    One("deploy-undo", "undo"),
                ],
            ),
            contingency(),
        ),
    );
    let notice = the_notice(&calls, "failure");
    let NotifyAction::Failure(failure_notice) = notice_step(&notice).action else {
        panic!("not a failure notice")
    };
    let steps = step_statuses(&failure_notice.progress);
    assert_eq!(steps["gitops"], Done);
    assert_eq!(steps["restart"], NotStarted);
}

/// Tag-pinned deployments: when resolve flags one, `restart` runs right after `undo` (so
/// after the retag), with the approved resolutions and the state's entered time as the
/// restart annotation (the same on every retry of the step).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_pinned_deployments_are_restarted_after_the_undo() {
    for scope in [Scope::APP_AND_DATABASE, Scope::APP] {
        let h = Harness::scripted();
        h.script.on("deploy-undo", "resolve", |call, _| {
            let plan: rollback_core::Plan =
                serde_json::from_value(call.payload["plan"].clone()).unwrap();
            Some(Ok(serde_json::to_value(
                rollback_e2e::canned::undo_resolve_tag_pinned(&plan),
            )
            .unwrap()))
        });
        let exec = h.start(full_request());
        let request = h.approval_request(&exec).await;
        h.approve(&request, scope);
        let d = h.finish(&exec).await;
        assert_eq!(d.status, ExecutionStatus::Succeeded, "{scope:?}: {d:?}");
        let calls = h.calls(&exec);
        let tail: Vec<Expect> = if scope == Scope::APP_AND_DATABASE {
            vec![
                One("deploy-undo", "pause"),
                Par(vec![DATABASE_BRANCH.to_vec(), vec![("retag", "apply")]]),
                One("deploy-undo", "undo"),
                One("deploy-undo", "restart"),
                One("deploy-undo", "resume"),
                One("deploy-undo", "status"),
                One("smoke-test", "run"),
                One("notify", "report"),
                One("notify", "success"),
            ]
        } else {
            vec![
                One("retag", "apply"),
                One("deploy-undo", "undo"),
                One("deploy-undo", "restart"),
                One("deploy-undo", "status"),
                One("smoke-test", "run"),
                One("notify", "report"),
                One("notify", "success"),
            ]
        };
        assert_calls(&calls, &then(until_approval(), tail));
        let restart = calls
            .iter()
            .find(|c| c.is("deploy-undo", "restart"))
            .unwrap();
        assert_eq!(
            restart.payload["deployments"], request.payload["resolved"]["deployments"],
            "restart acts on what was approved"
        );
        assert_eq!(restart.payload["deployments"][0]["restart_needed"], true);
        assert!(
            restart.payload["restarted_at"]
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "{}",
            restart.payload
        );
        let notice = the_notice(&calls, "success");
        let NotifyAction::Success(success) = notice_step(&notice).action else {
            panic!("not a success notice")
        };
        assert_eq!(step_statuses(&success.progress.unwrap())["restart"], Done);
    }
}

/// Every final notice comes right after the report step, which reads this execution's history
/// (`$$.Execution.Id`) and records how it ends; the notice links what it wrote. A report that
/// cannot be written (here: the bucket refuses it for good) does not stop the notice, which
/// carries the error instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_final_notice_links_the_report_written_just_before_it() {
    use rollback_core::contract::notify::{ReportLink, ReportOutcome};

    let report_of = |calls: &[Call]| -> rollback_core::contract::notify::ReportRequest {
        let report = calls
            .iter()
            .find(|c| c.is("notify", "report"))
            .expect("a report step");
        match notice_step(report).action {
            NotifyAction::Report(r) => r,
            other => panic!("not a report: {other:?}"),
        }
    };

    // Rolled back: the link reaches the success notice.
    let h = Harness::scripted();
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    assert_eq!(h.finish(&exec).await.status, ExecutionStatus::Succeeded);
    let calls = h.calls(&exec);
    let report = report_of(&calls);
    assert_eq!(report.execution_arn, exec);
    assert_eq!(report.outcome, ReportOutcome::RolledBack);
    assert_eq!(report.error, None);
    let NotifyAction::Success(success) = notice_step(&the_notice(&calls, "success")).action else {
        panic!("not a success notice")
    };
    let Some(ReportLink::Written(at)) = success.report else {
        panic!(
            "the success notice has no report link: {:?}",
            success.report
        )
    };
    let name = exec.rsplit(':').next().unwrap();
    assert_eq!(
        at.uri,
        format!("s3://mint-replica-rollback-reports/reports/{name}/report.md")
    );
    assert!(at.history_uri.ends_with("/history.json"), "{at:?}");

    // Rejected: the rejection report, then the rejection notice with its link.
    let h = Harness::scripted();
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.reject(&request);
    assert_eq!(h.finish(&exec).await.status, ExecutionStatus::Succeeded);
    let calls = h.calls(&exec);
    assert_eq!(report_of(&calls).outcome, ReportOutcome::Rejected);
    let NotifyAction::Progress(rejected) = notice_step(&the_notice(&calls, "progress")).action
    else {
        panic!("not the rejection notice")
    };
    assert!(matches!(rejected.report, Some(ReportLink::Written(_))));

    // Failed, and the report cannot be written: the contingency notice still goes out, with
    // the report step's error; the execution fails with the rollback's error, not the report's.
    let h = Harness::scripted();
    h.script.on("smoke-test", "run", |_, _| {
        Some(Ok(serde_json::to_value(canned::smoke(false)).unwrap()))
    });
    h.script.on("notify", "report", |_, _| {
        Some(Err(failure(
            "Rollback.AwsError",
            "PutObject failed: NoSuchBucket: The specified bucket does not exist",
        )))
    });
    let exec = h.start(full_request());
    let request = h.approval_request(&exec).await;
    h.approve(&request, Scope::APP_AND_DATABASE);
    let d = h.finish(&exec).await;
    assert_eq!(d.status, ExecutionStatus::Failed, "{d:?}");
    assert_ne!(d.error.as_deref(), Some("Rollback.AwsError"), "{d:?}");
    let calls = h.calls(&exec);
    let report = report_of(&calls);
    assert_eq!(report.outcome, ReportOutcome::Failed);
    let error = report.error.expect("the failure report names the error");
    assert_eq!(Some(error.error.as_str()), d.error.as_deref());
    let notice = failure_notice(&the_notice(&calls, "failure"));
    match notice.report {
        Some(ReportLink::NotWritten(e)) => {
            assert_eq!(e.error, "Rollback.AwsError");
            assert!(e.cause.contains("NoSuchBucket"), "{}", e.cause);
        }
        other => panic!("the notice should carry the report's error: {other:?}"),
    }
}
