//! The local Statuspage and Slack webhook answer like the real ones, and record every call.

use rollback_channels::{Fault, SlackWebhook, StatuspageServer};
use serde_json::{Value, json};

const PAGE: &str = "kctbh9vrtdwd";
const KEY: &str = "sp-key-1234";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn send(
    method: reqwest::Method,
    url: String,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client().request(method, url);
    if let Some(key) = key {
        request = request.header("Authorization", format!("OAuth {key}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn statuspage_incident_lifecycle_with_auth_validation_and_components() {
    let server = StatuspageServer::start(PAGE, KEY).await;
    server.add_component("cmp1", "Checkout");
    let incidents = format!("{}/pages/{PAGE}/incidents", server.api_base());
    use reqwest::Method as M;

    // No key, a wrong key, another page.
    let (status, body) = send(M::GET, format!("{incidents}/unresolved"), None, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("Could not authenticate"))
    );
    let (status, _) = send(
        M::GET,
        format!("{incidents}/unresolved"),
        Some("nope"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let other = format!("{}/pages/otherpage/incidents/unresolved", server.api_base());
    assert_eq!(send(M::GET, other, Some(KEY), None).await.0, 404);

    // Shape checks: an unknown status, component, attribute, a missing name.
    for (incident, words) in [
        (
            json!({"name": "x", "status": "exploded"}),
            "not included in the list",
        ),
        (
            json!({"name": "x", "status": "identified", "component_ids": ["nope"]}),
            "not on this page",
        ),
        (
            json!({"name": "x", "components": {"cmp1": "on_fire"}}),
            "not included in the list",
        ),
        (
            json!({"name": "x", "statuss": "identified"}),
            "unknown incident attribute",
        ),
        (json!({"status": "identified"}), "Name can't be blank"),
    ] {
        let (status, body) = send(
            M::POST,
            incidents.clone(),
            Some(KEY),
            Some(json!({"incident": incident})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"].as_str().unwrap().contains(words), "{body}");
    }
    let (status, _) = send(
        M::POST,
        incidents.clone(),
        Some(KEY),
        Some(json!({"name": "no wrapper"})),
    )
    .await;
    assert_eq!(status, 400);

    // Open, update, resolve.
    let (status, created) = send(
        M::POST,
        incidents.clone(),
        Some(KEY),
        Some(json!({"incident": {
        "name": "Problems", "status": "identified", "body": "We know.",
        "component_ids": ["cmp1"], "components": {"cmp1": "degraded_performance"}}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 12);
    assert_eq!(
        server.component_status("cmp1").as_deref(),
        Some("degraded_performance")
    );
    let (_, open) = send(M::GET, format!("{incidents}/unresolved"), Some(KEY), None).await;
    assert_eq!(open.as_array().unwrap().len(), 1);
    send(
        M::PATCH,
        format!("{incidents}/{id}"),
        Some(KEY),
        Some(json!({"incident": {"status": "monitoring", "body": "Watching."}})),
    )
    .await;
    let (status, resolved) = send(
        M::PATCH,
        format!("{incidents}/{id}"),
        Some(KEY),
        Some(json!({"incident": {
        "status": "resolved", "body": "Fixed.", "components": {"cmp1": "operational"}}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(resolved["status"], "resolved");
    let updates: Vec<(&str, &str)> = resolved["incident_updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["status"].as_str().unwrap(), u["body"].as_str().unwrap()))
        .collect();
    assert_eq!(
        updates,
        [
            ("resolved", "Fixed."),
            ("monitoring", "Watching."),
            ("identified", "We know.")
        ]
    );
    assert_eq!(
        server.component_status("cmp1").as_deref(),
        Some("operational")
    );
    let (_, open) = send(M::GET, format!("{incidents}/unresolved"), Some(KEY), None).await;
    assert_eq!(open, json!([]));

    // Every call recorded, with its body and whether the key was right.
    let calls = server.calls();
    assert_eq!(calls.len(), 14);
    assert!(!calls[0].authorized && calls[3].authorized);
    let opened = calls.iter().find(|c| c.status == 201).unwrap();
    assert_eq!(
        opened.body.as_ref().unwrap()["incident"]["name"],
        "Problems"
    );
}

#[tokio::test]
async fn a_lost_answer_is_applied_all_the_same() {
    let server = StatuspageServer::start(PAGE, KEY).await;
    server.inject("POST", "/incidents", Fault::AnswerLostAfter, 1);
    let incidents = format!("{}/pages/{PAGE}/incidents", server.api_base());
    let sent = client()
        .post(&incidents)
        .header("Authorization", format!("OAuth {KEY}"))
        .json(&json!({"incident": {"name": "x", "status": "identified"}}))
        .send()
        .await;
    let lost = match sent {
        Err(_) => true,
        Ok(response) => response.text().await.is_err(),
    };
    assert!(lost);
    assert_eq!(server.incidents().len(), 1);
    assert_eq!(server.calls()[0].fault, Some(Fault::AnswerLostAfter));
}

#[tokio::test]
async fn slack_webhook_accepts_block_kit_and_refuses_like_slack() {
    let hook = SlackWebhook::start().await;
    let post = |url: String, body: &'static str| async move {
        let response = client()
            .post(url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let ok = r#"{"text": "hi", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "hi"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "body"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "ctx"}]}]}"#;
    assert_eq!(post(hook.url(), ok).await, (200, "ok".into()));
    assert_eq!(
        post(hook.url(), "{not json").await,
        (400, "invalid_payload".into())
    );
    assert_eq!(
        post(hook.url(), r#"{"text": "  "}"#).await,
        (400, "no_text".into())
    );
    assert_eq!(
        post(hook.url(), r#"{"text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]}"#).await,
        (400, "invalid_blocks".into())
    );
    let wrong = format!("{}/services/T0LOCAL/B0LOCAL/guessed", hook.base());
    assert_eq!(post(wrong, ok).await, (404, "no_service".into()));
    assert_eq!(hook.messages().len(), 1);
    assert_eq!(hook.messages()[0]["text"], "hi");
    let statuses: Vec<u16> = hook.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [200, 400, 400, 400, 404]);
}
