//! A real Step Functions executor for the approval tests: the shared moto with state machine
//! execution switched on (`MotoServer::shared_executing`), running a `waitForTaskToken` task
//! whose token moto hands out through an SQS message (`$$.Task.Token` in the message body).
//! The page decides through the IAM gate ([`gate`], [`approval_sfn`]): every call it makes is
//! checked against the approval role in infra/template.yaml; the tests seed and read with
//! moto's own [`sfn`].

#![allow(dead_code)]

use std::time::Duration;

use chrono::Utc;
use rollback_core::approval_link::{Decision, LinkKey, LinkPayload, LinkSummary};
use rollback_core::request::Scope;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use serde_json::{Value, json};

pub fn sfn() -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&MotoServer::shared_executing().sdk_config())
}

/// The approval role in front of moto (SendTaskSuccess / SendTaskFailure on `*`; the link
/// key `mint-replica-approval-link-key`).
pub fn gate() -> IamGate {
    IamGate::start(
        &MotoServer::shared_executing().endpoint(),
        "approval",
        &test_stack("mint-replica"),
    )
}

/// The page's Step Functions client: the approval role's credentials, through `gate`.
pub fn approval_sfn(gate: &IamGate) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&gate.sdk_config())
}

/// The page's services: Step Functions and KMS under the approval role (through `gate`),
/// `key` to open links, and the shared moto's decision key to sign approvals.
pub fn page(gate: &IamGate, key: &LinkKey) -> rollback_approval::Services {
    rollback_approval::Services::with_key(approval_sfn(gate), key.clone(), signer(gate))
}

/// The shared moto's decision key, used under the approval role (through `gate`).
pub fn signer(gate: &IamGate) -> rollback_core::decision::DecisionSigner {
    rollback_core::decision::DecisionSigner::new(
        aws_sdk_kms::Client::new(&gate.sdk_config()),
        MotoServer::shared_executing().decision_key(),
    )
}

/// The approvals ledger in the test stack's report bucket, written under the approval role
/// (through `gate`); the bucket is made with moto's own credentials.
pub async fn ledger(gate: &IamGate) -> rollback_approval::ledger::Ledger {
    let bucket = rollback_fault_proxy::gate::report_bucket("mint-replica");
    let _ = rollback_core::aws::s3_client(&MotoServer::shared_executing().sdk_config())
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await;
    rollback_approval::ledger::Ledger::new(
        rollback_core::aws::s3_client(&gate.sdk_config()),
        bucket,
    )
}

/// notify, which mails the links, under its own role: its topics are
/// `<service>-approvals|notices|escalations`.
pub fn notify_gate(service: &str) -> IamGate {
    IamGate::start(
        &MotoServer::shared_executing().endpoint(),
        "notify",
        &test_stack(service),
    )
}

/// An execution waiting in its approval task.
pub struct Waiting {
    pub execution_arn: String,
    pub token: String,
}

/// Starts a machine whose only state waits for a task token; `timeout` bounds the wait.
pub async fn waiting_execution(name: &str, timeout_seconds: Option<u32>) -> Waiting {
    let queue_url = aws_sdk_sqs::Client::new(&MotoServer::shared_executing().sdk_config())
        .create_queue()
        .queue_name(format!("{name}-tokens"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
        "End": true
    });
    if let Some(t) = timeout_seconds {
        task["TimeoutSeconds"] = json!(t);
    }
    let definition = json!({"StartAt": "Approve", "States": {"Approve": task}});
    let sfn = sfn();
    let machine = sfn
        .create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/approval-test")
        .send()
        .await
        .unwrap();
    let execution = sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name(format!("{name}-exec"))
        .input("{}")
        .send()
        .await
        .unwrap();
    let token = read_token(&queue_url).await;
    Waiting {
        execution_arn: execution.execution_arn().to_owned(),
        token,
    }
}

async fn read_token(queue_url: &str) -> String {
    let body = MotoServer::shared_executing().next_message(queue_url).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Status, output and error of an execution.
pub async fn describe(arn: &str) -> (String, Option<String>, Option<String>, Option<String>) {
    let out = sfn()
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .unwrap();
    (
        out.status().as_str().to_owned(),
        out.output().map(str::to_owned),
        out.error().map(str::to_owned),
        out.cause().map(str::to_owned),
    )
}

/// Waits (bounded) until the execution leaves RUNNING.
pub async fn finished(arn: &str) -> (String, Option<String>, Option<String>, Option<String>) {
    for _ in 0..100 {
        let d = describe(arn).await;
        if d.0 != "RUNNING" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("execution {arn} still running");
}

pub fn payload(token: &str, decision: Decision, scope: Scope) -> LinkPayload {
    LinkPayload {
        task_token: token.to_owned(),
        decision,
        scope,
        expires_at: Utc::now().timestamp() + 3600,
        execution: "approval-test-exec".into(),
        fingerprint: "fp-1234567890abcdef".into(),
        plan_fingerprint: String::new(),
        summary: LinkSummary {
            service: "mint-replica".into(),
            reason: "alarm mint-replica-5xx: 5xx after v42".into(),
            lines: vec![
                "restore database mint-replica-db from predeploy-v42 (2024-05-01 11:02)".into(),
                "<script>alert('x')</script> deployment mint/backend revision 7 -> 6".into(),
            ],
        },
        rules: Default::default(),
    }
}

pub fn link(key: &LinkKey, payload: &LinkPayload) -> String {
    key.seal(payload).unwrap()
}

/// `GET /approval?t=<token>`, as a mail client opens the link.
pub fn get(token: &str) -> http::Request<Vec<u8>> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("t", token)
        .finish();
    http::Request::builder()
        .method(http::Method::GET)
        .uri(format!("/approval?{query}"))
        .header("host", "approve.test")
        .body(Vec::new())
        .unwrap()
}

/// The confirmation form's `POST`, from the page's own origin.
pub fn post(token: &str, approver: &str) -> http::Request<Vec<u8>> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("t", token)
        .append_pair("approver", approver)
        .finish();
    http::Request::builder()
        .method(http::Method::POST)
        .uri("/approval")
        .header("host", "approve.test")
        .header("origin", "https://approve.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into_bytes())
        .unwrap()
}
