//! The real `aws-sdk-sfn` client against the engine's HTTP endpoint.

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::types::ExecutionStatus;
use rollback_engine::{LambdaRegistry, Mode};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn client(url: &str) -> aws_sdk_sfn::Client {
    let conf = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(url)
        .build();
    aws_sdk_sfn::Client::from_conf(conf)
}

async fn wait_done(
    c: &aws_sdk_sfn::Client,
    arn: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    for _ in 0..500 {
        let d = c
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("describe");
        if d.status() != &ExecutionStatus::Running {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("execution {arn} did not finish");
}

#[tokio::test]
async fn sdk_drives_a_task_token_execution() {
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let registry = LambdaRegistry::new();
    let t2 = tokens.clone();
    registry.register("notify", move |_payload, req| {
        let t2 = t2.clone();
        async move {
            t2.lock().unwrap().push(req.task_token.unwrap_or_default());
            Ok(json!({}))
        }
    });
    let (_engine, server) = rollback_engine::serve_on_loopback(registry, Mode::Standalone)
        .await
        .expect("the engine's endpoint binds");
    let c = client(&server.url);

    let def = json!({"StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Result": {"step": 1}, "ResultPath": "$.prep", "Next": "Wait"},
        "Wait": {"Type": "Wait", "Seconds": 3600, "Next": "Ask"},
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "notify", "Payload": {"token.$": "$$.Task.Token"}}, "ResultPath": "$.answer", "Next": "Done"},
        "Done": {"Type": "Succeed"}}});
    let sm = c
        .create_state_machine()
        .name("approval")
        .definition(def.to_string())
        .role_arn("arn:aws:iam::123456789012:role/sfn")
        .send()
        .await
        .expect("create");
    let start = c
        .start_execution()
        .state_machine_arn(sm.state_machine_arn())
        .name("run-1")
        .input(r#"{"service":"mint"}"#)
        .send()
        .await
        .expect("start");
    let arn = start.execution_arn().to_string();

    let token = {
        let mut t = None;
        for _ in 0..200 {
            if let Some(x) = tokens.lock().unwrap().first().cloned() {
                t = Some(x);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        t.expect("the handler received a task token")
    };
    c.send_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .expect("heartbeat");
    c.send_task_success()
        .task_token(&token)
        .output(r#"{"approved":true}"#)
        .send()
        .await
        .expect("success");

    let d = wait_done(&c, &arn).await;
    assert_eq!(d.status(), &ExecutionStatus::Succeeded);
    let out: serde_json::Value = serde_json::from_str(d.output().unwrap()).unwrap();
    assert_eq!(
        out,
        json!({"service": "mint", "prep": {"step": 1}, "answer": {"approved": true}})
    );
    // One virtual hour passed without a real one.
    let elapsed = d.stop_date().unwrap().secs() - d.start_date().secs();
    assert!((3600..3700).contains(&elapsed), "{elapsed}");

    // A second answer for a finished task is TaskTimedOut; a garbled token is InvalidToken.
    let err = c
        .send_task_success()
        .task_token(&token)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        SendTaskSuccessError::TaskTimedOut(_)
    ));
    let err = c
        .send_task_success()
        .task_token("garbage")
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        SendTaskSuccessError::InvalidToken(_)
    ));

    // History paginates (3 per page), in both orders.
    let pages: Vec<_> = c
        .get_execution_history()
        .execution_arn(&arn)
        .max_results(3)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("history");
    assert!(pages.len() > 2);
    let events: Vec<_> = pages.iter().flat_map(|p| p.events().to_vec()).collect();
    let ids: Vec<i64> = events.iter().map(|e| e.id()).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
    let types: Vec<String> = events
        .iter()
        .map(|e| e.r#type().as_str().to_string())
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("ExecutionStarted"));
    assert_eq!(types.last().map(String::as_str), Some("ExecutionSucceeded"));
    assert!(
        types.iter().any(|t| t == "TaskSubmitted") && types.iter().any(|t| t == "WaitStateExited")
    );
    let scheduled = events
        .iter()
        .find(|e| e.r#type().as_str() == "TaskScheduled")
        .unwrap();
    let details = scheduled.task_scheduled_event_details().expect("details");
    assert_eq!(
        (details.resource_type(), details.resource()),
        ("lambda", "invoke.waitForTaskToken")
    );
    let rev = c
        .get_execution_history()
        .execution_arn(&arn)
        .reverse_order(true)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(rev.events()[0].r#type().as_str(), "ExecutionSucceeded");
    assert!(rev.next_token().is_some());

    // Typed errors for unknown executions and name reuse.
    let err = c
        .describe_execution()
        .execution_arn(format!("{arn}-nope"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SdkError::ServiceError(ref e) if matches!(e.err(), DescribeExecutionError::ExecutionDoesNotExist(_)))
    );
    let err = c
        .start_execution()
        .state_machine_arn(sm.state_machine_arn())
        .name("run-1")
        .input("{}")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        StartExecutionError::ExecutionAlreadyExists(_)
    ));

    let list = c
        .list_executions()
        .state_machine_arn(sm.state_machine_arn())
        .status_filter(ExecutionStatus::Succeeded)
        .send()
        .await
        .unwrap();
    assert_eq!(list.executions().len(), 1);
    let machines = c.list_state_machines().send().await.unwrap();
    assert_eq!(machines.state_machines().len(), 1);
    server.shutdown();
}

#[tokio::test]
async fn standalone_binary_serves_the_api() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollback-engine"))
        .args(["serve", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rollback-engine");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("startup in time")
        .expect("read")
        .expect("a line");
    let url = line.rsplit(' ').next().expect("url").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let c = client(&url);
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 900, "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "nobody"}, "End": true}}});
    let sm = c
        .create_state_machine()
        .name("demo")
        .definition(def.to_string())
        .role_arn("arn:aws:iam::1:role/r")
        .send()
        .await
        .expect("create");
    let ex = c
        .start_execution()
        .state_machine_arn(sm.state_machine_arn())
        .send()
        .await
        .expect("start");
    let d = wait_done(&c, ex.execution_arn()).await;
    assert_eq!(d.status(), &ExecutionStatus::Failed);
    assert_eq!(d.error(), Some("States.TaskFailed"));
    assert!(
        d.cause().unwrap_or("").contains("function 'nobody'"),
        "{:?}",
        d.cause()
    );
    let err = c
        .create_state_machine()
        .name("bad")
        .definition("{\"StartAt\":\"X\",\"States\":{}}")
        .role_arn("r")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        aws_sdk_sfn::operation::create_state_machine::CreateStateMachineError::InvalidDefinition(_)
    ));
    child.kill().await.expect("kill");
}
