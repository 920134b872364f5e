//! Races on one approval: 50 people (or double clicks) post approve and reject at once. Exactly
//! one decision takes effect; every other post gets a clear "already decided" page, never a 5xx.
//! With two approvers required, each person is counted once and only the second sends the
//! token. The Step Functions side is the local engine's real endpoint with a waitForTaskToken
//! task; the ledger is moto's S3 under the approval role.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollback_core::approval_link::{ApproverRules, Decision, LinkKey, LinkPayload, LinkSummary};
use rollback_core::request::Scope;
use rollback_engine::{Engine, LambdaRegistry, Mode};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
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

/// One execution waiting on an approval task, and the approval page deciding it through the
/// engine's endpoint, under the approval role (signing and the ledger in moto).
struct Race {
    engine: Engine,
    execution: String,
    task_token: String,
    key: LinkKey,
    url: String,
    ledger: rollback_approval::ledger::Ledger,
    _server: rollback_engine::Server,
    _gates: Vec<IamGate>,
}

impl Race {
    async fn start(name: &str) -> Race {
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
        let (engine, server) = rollback_engine::serve_on_loopback(registry, Mode::Embedded)
            .await
            .expect("the engine's endpoint binds");
        let machine = engine
            .create_state_machine(
                "approval-race",
                DEFINITION,
                "arn:aws:iam::123456789012:role/r",
                &BTreeMap::new(),
            )
            .unwrap();
        let (execution, _) = engine
            .start_execution(&machine.arn, Some(name), Some("{}"))
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

        let stack = test_stack("mint-replica");
        let gate = IamGate::start(&server.url, "approval", &stack);
        let sfn = aws_sdk_sfn::Client::new(&gate.sdk_config());
        let key = LinkKey::generate();
        // Signing and the ledger go to moto, under the approval role too.
        let moto = MotoServer::shared_executing();
        let moto_gate = IamGate::start(&moto.endpoint(), "approval", &stack);
        let ledger = common::ledger(&moto_gate).await;
        let services = rollback_approval::Services::with_key(
            sfn,
            key.clone(),
            rollback_core::decision::DecisionSigner::new(
                aws_sdk_kms::Client::new(&moto_gate.sdk_config()),
                moto.decision_key(),
            ),
        )
        .with_ledger(ledger.clone());
        let (addr, _page) =
            rollback_approval::serve_local(SocketAddr::from(([127, 0, 0, 1], 0)), services)
                .await
                .unwrap();
        Race {
            engine,
            execution,
            task_token,
            key,
            url: format!("http://{addr}/approval"),
            ledger,
            _server: server,
            _gates: vec![gate, moto_gate],
        }
    }

    fn payload(&self, decision: Decision, scope: Scope, rules: ApproverRules) -> LinkPayload {
        LinkPayload {
            task_token: self.task_token.clone(),
            decision,
            scope,
            expires_at: (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp(),
            execution: self.engine_execution_name(),
            fingerprint: "f".repeat(64),
            plan_fingerprint: String::new(),
            summary: LinkSummary {
                service: "mint-replica".into(),
                ..Default::default()
            },
            rules,
        }
    }

    fn engine_execution_name(&self) -> String {
        self.execution
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// Posts `(link, approver)` pairs all at once; answers `(index, status, page)`.
    async fn post_all(&self, posts: Vec<(String, String)>) -> Vec<(usize, u16, String)> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let tasks = posts.into_iter().enumerate().map(|(i, (t, approver))| {
            let (client, url) = (client.clone(), self.url.clone());
            tokio::spawn(async move {
                let response = client
                    .post(&url)
                    .form(&[("t", t.as_str()), ("approver", approver.as_str())])
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (i, status, response.text().await.unwrap())
            })
        });
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_decisions_exactly_one_wins() {
    let race = Race::start("race").await;
    let link_for = |decision: Decision| {
        race.key
            .seal(&race.payload(decision, Scope::APP, ApproverRules::default()))
            .unwrap()
    };
    let (approve, reject) = (link_for(Decision::Approve), link_for(Decision::Reject));
    let answers = race
        .post_all(
            (0..50)
                .map(|i| {
                    let t = if i % 2 == 0 { &approve } else { &reject };
                    (t.clone(), format!("person{i}@example.com"))
                })
                .collect(),
        )
        .await;
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
    let done = race
        .engine
        .wait_for_completion(&race.execution, Duration::from_secs(10))
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

/// Five people each press "approve (app + database)" ten times at once, where the plan asks two
/// people: exactly one post completes the decision, the ledger holds exactly two distinct
/// people, and the execution's output names both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_posts_two_approvers_each_person_counted_once() {
    let race = Race::start("race-two").await;
    let rules = ApproverRules {
        approvers: Vec::new(),
        needed: 2,
        starter: None,
    };
    let payload = race.payload(Decision::Approve, Scope::APP_AND_DATABASE, rules);
    let link = race.key.seal(&payload).unwrap();
    let answers = race
        .post_all(
            (0..50)
                .map(|i| (link.clone(), format!("person{}@example.com", i % 5)))
                .collect(),
        )
        .await;
    let count = |status: u16| answers.iter().filter(|a| a.1 == status).count();
    assert_eq!(
        count(200),
        1,
        "exactly one post completes: {:?}",
        answers.iter().map(|a| a.1).collect::<Vec<_>>()
    );
    for (i, status, page) in &answers {
        assert!(
            matches!(status, 200 | 202 | 409),
            "post {i} got {status}: {page}"
        );
    }

    let entries = race.ledger.entries(&payload).await.unwrap();
    let people: Vec<&str> = entries.iter().map(|e| e.approver.as_str()).collect();
    assert_eq!(people.len(), 2, "{people:?}");
    assert_ne!(people[0], people[1], "one person counted twice: {people:?}");

    let done = race
        .engine
        .wait_for_completion(&race.execution, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status.as_str(), "SUCCEEDED", "{done:?}");
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["approvers"], json!(people), "{output}");
    assert_eq!(output["approver"], people[1], "{output}");
    assert_eq!(output["scope"], "app+database");
}
