//! Engine behaviour that moto cannot serve as an oracle for: Task dispatch, lambda:invoke
//! envelopes, timeouts and heartbeats on the virtual clock, task tokens, history events,
//! StopExecution, execution timeouts, payload limits.

use rollback_engine::task::{LambdaRegistry, TaskFailure};
use rollback_engine::{Engine, EngineConfig, ExecutionDescription, ExecutionStatus, ServiceError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FN_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

fn registry() -> LambdaRegistry {
    let r = LambdaRegistry::new();
    r.register("echo", |v, _req| async move { Ok(json!({"echo": v})) });
    r.register("boom", |_v, _req| async move {
        Err(TaskFailure::new("Rollback.Boom", "exploded"))
    });
    r.register("big", |_v, _req| async move {
        Ok(json!("x".repeat(300 * 1024)))
    });
    r
}

async fn run_with(engine: &Engine, def: Value, input: Value) -> ExecutionDescription {
    let name = format!("sm-{}", uuid::Uuid::new_v4().simple());
    let mut subs = BTreeMap::new();
    subs.insert("EchoArn".to_string(), FN_ARN.to_string());
    let sm = engine
        .create_state_machine(
            &name,
            &def.to_string(),
            "arn:aws:iam::123456789012:role/r",
            &subs,
        )
        .expect("valid definition");
    let (arn, _) = engine
        .start_execution(&sm.arn, None, Some(&input.to_string()))
        .expect("start");
    let d = engine
        .wait_for_completion(&arn, Duration::from_secs(10))
        .await
        .expect("describe");
    assert_ne!(
        d.status,
        ExecutionStatus::Running,
        "execution did not finish: {arn}"
    );
    d
}

async fn run(def: Value, input: Value) -> ExecutionDescription {
    let engine = Engine::new(Arc::new(registry()), EngineConfig::default());
    run_with(&engine, def, input).await
}

fn output(d: &ExecutionDescription) -> Value {
    serde_json::from_str(d.output.as_deref().expect("output")).expect("json output")
}

#[tokio::test]
async fn lambda_invoke_wraps_the_payload_and_bare_arn_does_not() {
    let d = run(
        json!({"StartAt": "Invoke", "States": {
            "Invoke": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${EchoArn}", "Payload": {"x.$": "$.x"}},
                "ResultSelector": {"p.$": "$.Payload", "code.$": "$.StatusCode"}, "ResultPath": "$.wrapped", "Next": "Bare"},
            "Bare": {"Type": "Task", "Resource": "${EchoArn}", "InputPath": "$.x", "ResultPath": "$.bare", "End": true}}}),
        json!({"x": 7}),
    )
    .await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(
        output(&d),
        json!({"x": 7, "wrapped": {"p": {"echo": {"x": 7}}, "code": 200}, "bare": {"echo": 7}})
    );
}

#[tokio::test]
async fn task_errors_retry_with_backoff_on_the_virtual_clock_then_catch() {
    let real = Instant::now();
    let d = run(
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "boom"},
                "Retry": [{"ErrorEquals": ["Rollback.Boom"], "IntervalSeconds": 600, "MaxAttempts": 3, "BackoffRate": 2.0, "MaxDelaySeconds": 900}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Done"}], "End": true},
            "Done": {"Type": "Pass", "End": true}}}),
        json!({}),
    )
    .await;
    assert!(
        real.elapsed() < Duration::from_secs(2),
        "virtual waits must not sleep"
    );
    assert_eq!(
        output(&d),
        json!({"err": {"Error": "Rollback.Boom", "Cause": "exploded"}})
    );
    // 600 + min(1200, 900) + min(2400, 900) seconds of virtual time.
    let elapsed = d.stop.expect("stop") - d.start;
    assert_eq!(elapsed.num_seconds(), 2400, "{elapsed:?}");
}

#[tokio::test]
async fn unknown_resources_fail_with_a_clear_cause() {
    let d = run(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true}}}),
        json!({}),
    )
    .await;
    assert_eq!(d.error.as_deref(), Some("States.TaskFailed"));
    assert!(
        d.cause
            .as_deref()
            .unwrap_or("")
            .contains("arn:aws:states:::sns:publish"),
        "{:?}",
        d.cause
    );
}

#[tokio::test]
async fn task_timeout_fires_when_the_clock_passes_it() {
    // A running handler is an external wait, so virtual time holds still while it runs (real
    // work takes no virtual time); a hung handler times out once the clock is moved past
    // TimeoutSeconds, here explicitly.
    let r = LambdaRegistry::new();
    r.register("hang", |_v, _req| async move {
        futures::future::pending::<()>().await;
        Ok(json!(null))
    });
    let engine = Engine::new(Arc::new(r), EngineConfig::default());
    let sm = engine
        .create_state_machine("hang", &json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "hang"}, "TimeoutSeconds": 60, "End": true}}}).to_string(), "r", &BTreeMap::new())
        .unwrap();
    let (arn, _) = engine.start_execution(&sm.arn, None, None).unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    engine.clock(&arn).unwrap().advance(Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        engine.describe_execution(&arn).unwrap().status,
        ExecutionStatus::Running
    );
    engine.clock(&arn).unwrap().advance(Duration::from_secs(2));
    let d = engine
        .wait_for_completion(&arn, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(d.error.as_deref(), Some("States.Timeout"));
    let last_task = engine
        .history(&arn)
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.event_type.starts_with("Task"))
        .unwrap();
    assert_eq!(last_task.event_type, "TaskTimedOut");
}

#[tokio::test]
async fn real_time_mode_sleeps_for_real() {
    let engine = Engine::new(
        Arc::new(registry()),
        EngineConfig {
            clock: rollback_engine::ClockMode::Real,
            ..Default::default()
        },
    );
    let t = Instant::now();
    let d = run_with(
        &engine,
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}}),
        json!({}),
    )
    .await;
    assert_eq!(d.status, ExecutionStatus::Succeeded);
    assert!(t.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn wait_for_task_token_success_failure_heartbeat_and_timeouts() {
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let r = LambdaRegistry::new();
    let t2 = tokens.clone();
    r.register("approval", move |v, req| {
        let t2 = t2.clone();
        async move {
            assert_eq!(v["token"].as_str(), req.task_token.as_deref());
            t2.lock()
                .unwrap()
                .push(req.task_token.clone().unwrap_or_default());
            Ok(json!(null))
        }
    });
    let engine = Engine::new(Arc::new(r), EngineConfig::default());
    let def = json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "approval", "Payload": {"token.$": "$$.Task.Token"}},
        "TimeoutSeconds": 3600, "HeartbeatSeconds": 600, "ResultPath": "$.decision", "End": true}}});
    let sm = engine
        .create_state_machine(
            "approval",
            &def.to_string(),
            "arn:aws:iam::1:role/r",
            &BTreeMap::new(),
        )
        .unwrap();

    let next_token = |n: usize| {
        let tokens = tokens.clone();
        async move {
            for _ in 0..200 {
                if let Some(t) = tokens.lock().unwrap().get(n).cloned() {
                    return t;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no token issued");
        }
    };

    // Success: time stands still while waiting; the output lands at ResultPath.
    let (a, _) = engine
        .start_execution(&sm.arn, Some("ok"), Some(r#"{"k":1}"#))
        .unwrap();
    let tok = next_token(0).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        engine.describe_execution(&a).unwrap().status,
        ExecutionStatus::Running
    );
    engine.send_task_heartbeat(&tok).unwrap();
    engine
        .send_task_success(&tok, r#"{"approved":true}"#)
        .unwrap();
    let d = engine
        .wait_for_completion(&a, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(output(&d), json!({"k": 1, "decision": {"approved": true}}));
    assert!(matches!(
        engine.send_task_success(&tok, "{}"),
        Err(ServiceError::TaskTimedOut(_))
    ));
    assert!(matches!(
        engine.send_task_success("nonsense", "{}"),
        Err(ServiceError::InvalidToken(_))
    ));

    // Failure: the error name comes from SendTaskFailure.
    let (b, _) = engine.start_execution(&sm.arn, Some("no"), None).unwrap();
    let tok = next_token(1).await;
    engine
        .send_task_failure(&tok, Some("Rejected"), Some("by alice"))
        .unwrap();
    let d = engine
        .wait_for_completion(&b, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        (d.error.as_deref(), d.cause.as_deref()),
        (Some("Rejected"), Some("by alice"))
    );

    // Heartbeat timeout: advancing the clock past HeartbeatSeconds without a heartbeat.
    let (c, _) = engine.start_execution(&sm.arn, Some("hb"), None).unwrap();
    let tok = next_token(2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    engine.clock(&c).unwrap().advance(Duration::from_secs(601));
    let d = engine
        .wait_for_completion(&c, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(d.error.as_deref(), Some("States.HeartbeatTimeout"));
    assert!(matches!(
        engine.send_task_success(&tok, "{}"),
        Err(ServiceError::TaskTimedOut(_))
    ));
    let types: Vec<String> = engine
        .history(&c)
        .unwrap()
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskTimedOut",
            "ExecutionFailed"
        ]
    );

    // Idempotent StartExecution: same name + same input while running returns the same ARN.
    let (d1, _) = engine
        .start_execution(&sm.arn, Some("dup"), Some("{}"))
        .unwrap();
    let (d2, _) = engine
        .start_execution(&sm.arn, Some("dup"), Some("{}"))
        .unwrap();
    assert_eq!(d1, d2);
    assert!(matches!(
        engine.start_execution(&sm.arn, Some("dup"), Some(r#"{"x":1}"#)),
        Err(ServiceError::ExecutionAlreadyExists(_))
    ));
    engine
        .stop_execution(&d1, Some("Op.Stop"), Some("operator"))
        .await
        .unwrap();
    let d = engine.describe_execution(&d1).unwrap();
    assert_eq!(d.status, ExecutionStatus::Aborted);
    assert_eq!(
        engine.history(&d1).unwrap().last().unwrap().event_type,
        "ExecutionAborted"
    );
}

#[tokio::test]
async fn history_events_are_linked_and_typed() {
    let engine = Engine::new(Arc::new(registry()), EngineConfig::default());
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 86400, "Next": "P"},
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${EchoArn}", "End": true}}},
            {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.xs", "MaxConcurrency": 1,
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}, "End": true}}}], "End": true}}});
    let d = run_with(&engine, def, json!({"xs": [1, 2]})).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!((d.stop.unwrap() - d.start).num_seconds(), 86400);
    let h = engine.history(&d.arn).unwrap();
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1);
        assert!(e.previous_event_id < e.id);
    }
    let types: Vec<&str> = h.iter().map(|e| e.event_type.as_str()).collect();
    for t in [
        "WaitStateEntered",
        "WaitStateExited",
        "ParallelStateEntered",
        "ParallelStateStarted",
        "LambdaFunctionScheduled",
        "LambdaFunctionStarted",
        "LambdaFunctionSucceeded",
        "MapStateStarted",
        "MapIterationStarted",
        "MapIterationSucceeded",
        "MapStateSucceeded",
        "ParallelStateSucceeded",
        "ParallelStateExited",
        "ExecutionSucceeded",
    ] {
        assert!(types.contains(&t), "missing {t} in {types:?}");
    }
    let sched = h
        .iter()
        .find(|e| e.event_type == "LambdaFunctionScheduled")
        .unwrap()
        .to_json();
    assert_eq!(
        sched["lambdaFunctionScheduledEventDetails"]["resource"],
        FN_ARN
    );
    assert!(sched["timestamp"].is_f64());
}

#[tokio::test]
async fn execution_timeout_and_payload_limit_and_history_cap() {
    let d = run(
        json!({"TimeoutSeconds": 30, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}}),
        json!({}),
    )
    .await;
    assert_eq!(d.status, ExecutionStatus::TimedOut);

    let d = run(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "big"}, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}], "End": true},
            "C": {"Type": "Pass", "End": true}}}),
        json!({}),
    )
    .await;
    assert_eq!(
        d.error.as_deref(),
        Some("States.DataLimitExceeded"),
        "States.ALL must not catch it"
    );

    // An endless Wait loop is bounded by the 25,000-event history limit.
    let d = run(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Next": "W"}}}),
        json!({}),
    )
    .await;
    assert_eq!(d.error.as_deref(), Some("States.Runtime"));
    assert!(d.cause.unwrap_or_default().contains("25000"));
}

#[tokio::test]
async fn map_concurrency_is_honoured() {
    let in_flight = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let r = LambdaRegistry::new();
    let (f, p) = (in_flight.clone(), peak.clone());
    r.register("count", move |v, _| {
        let (f, p) = (f.clone(), p.clone());
        async move {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            Ok(v)
        }
    });
    let engine = Engine::new(Arc::new(r), EngineConfig::default());
    let d = run_with(
        &engine,
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 2, "ItemProcessor": {"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:count", "End": true}}}, "End": true}}}),
        json!([1, 2, 3, 4, 5, 6]),
    )
    .await;
    assert_eq!(output(&d), json!([1, 2, 3, 4, 5, 6]));
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[test]
fn definitions_are_validated_on_load() {
    let engine = Engine::new(Arc::new(registry()), EngineConfig::default());
    let err = engine
        .create_state_machine(
            "bad",
            r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nowhere"}}}"#,
            "r",
            &BTreeMap::new(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::InvalidDefinition(m) if m.contains("Nowhere")),
        "{err:?}"
    );
}
