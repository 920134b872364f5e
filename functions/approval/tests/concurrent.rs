//! Races on one approval: 50 people (or double clicks) post approve and reject at once. Exactly
//! one decision takes effect; every other post gets a clear "already decided" page, never a 5xx.
//! The Step Functions side is the local engine's real endpoint with a waitForTaskToken task.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollback_core::approval_link::{Decision, LinkKey, LinkPayload, LinkSummary};
use rollback_core::request::Scope;
use rollback_engine::{Engine, EngineConfig, LambdaRegistry, Mode};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use serde_json::{Value, json};

const DEFINITION: &str = r#"{
  "StartAt": "Ask",
  "States": {
    "Ask": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": {"FunctionName": "ask", "Payload": {"task_token.$": "$$.Task.Token"}},
      "End": true
    }
  }
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_decisions_exactly_one_wins() {
    // The engine, with a function that hands the task token to the test.
    let token: Arc<Mutex<Option<String>>> = Arc::default();
    let registry = LambdaRegistry::new();
    let captured = token.clone();
    registry.register("ask", move |payload: Value, _req| {
        let captured = captured.clone();
        async move {
            *captured.lock().unwrap() = payload["task_token"].as_str().map(str::to_owned);
            Ok(json!({}))
        }
    });
    let engine = Engine::new(Arc::new(registry), EngineConfig::default());
    let server = rollback_engine::serve(
        engine.clone(),
        Mode::Embedded,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let machine = engine
        .create_state_machine(
            "approval-race",
            DEFINITION,
            "arn:aws:iam::123456789012:role/r",
            &BTreeMap::new(),
        )
        .unwrap();
    let (execution, _) = engine
        .start_execution(&machine.arn, Some("race"), Some("{}"))
        .unwrap();
    let task_token = {
        let mut found = None;
        for _ in 0..200 {
            found = token.lock().unwrap().clone();
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        found.expect("the task token reached the function")
    };

    // The approval page, deciding through the engine's endpoint under the approval role.
    let gate = IamGate::start(&server.url, "approval", &test_stack("mint-replica"));
    let sfn = aws_sdk_sfn::Client::new(&gate.sdk_config());
    let key = LinkKey::generate();
    // Signing goes to moto's KMS, under the approval role too.
    let moto = rollback_moto::MotoServer::shared();
    let kms_gate = IamGate::start(&moto.endpoint(), "approval", &test_stack("mint-replica"));
    let services = rollback_approval::Services::with_key(
        sfn,
        key.clone(),
        rollback_core::decision::DecisionSigner::new(
            aws_sdk_kms::Client::new(&kms_gate.sdk_config()),
            moto.decision_key(),
        ),
    );
    let (addr, _page) =
        rollback_approval::serve_local(SocketAddr::from(([127, 0, 0, 1], 0)), services)
            .await
            .unwrap();
    let link_for = |decision: Decision| {
        let payload = LinkPayload {
            task_token: task_token.clone(),
            decision,
            scope: Scope::App,
            expires_at: (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp(),
            execution: "race".into(),
            fingerprint: "f".repeat(64),
            plan_fingerprint: String::new(),
            summary: LinkSummary {
                service: "mint-replica".into(),
                ..Default::default()
            },
        };
        key.seal(&payload).unwrap()
    };
    let (approve, reject) = (link_for(Decision::Approve), link_for(Decision::Reject));

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("http://{addr}/approval");
    let posts = (0..50).map(|i| {
        let (client, url) = (client.clone(), url.clone());
        let t = if i % 2 == 0 {
            approve.clone()
        } else {
            reject.clone()
        };
        tokio::spawn(async move {
            let response = client
                .post(&url)
                .form(&[
                    ("t", t.as_str()),
                    ("approver", &format!("person{i}@example.com")),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (i, status, response.text().await.unwrap())
        })
    });
    let mut answers = Vec::new();
    for post in posts {
        answers.push(post.await.unwrap());
    }

    let winners: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| *status == 200)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one decision takes effect: {:?}",
        answers.iter().map(|a| a.1).collect::<Vec<_>>()
    );
    for (i, status, page) in &answers {
        assert!(
            *status == 200 || *status == 409,
            "post {i} got {status}: {page}"
        );
        assert!(
            page.contains("<html") || page.contains("<!DOCTYPE"),
            "post {i} got no page"
        );
        if *status == 409 {
            assert!(
                page.to_lowercase().contains("already decided"),
                "post {i}: {page}"
            );
        }
    }

    // The execution ended the way the winner decided.
    let winner_approved = winners[0].0 % 2 == 0;
    let done = engine
        .wait_for_completion(&execution, Duration::from_secs(10))
        .await
        .unwrap();
    if winner_approved {
        assert_eq!(done.status.as_str(), "SUCCEEDED", "{done:?}");
        let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
        assert_eq!(
            output["approver"],
            format!("person{}@example.com", winners[0].0)
        );
    } else {
        assert_eq!(done.status.as_str(), "FAILED", "{done:?}");
        assert_eq!(done.error.as_deref(), Some("Rollback.Rejected"));
    }
}
