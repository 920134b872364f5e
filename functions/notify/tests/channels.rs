//! The plan's notice channels (issue 17) against moto's Secrets Manager (behind notify's IAM
//! gate) and the local Statuspage and Slack webhook (`rollback-channels`): the incident opens
//! on approval, is updated, resolved; a failure leaves it open; a retried open after a lost
//! answer creates one incident; Slack gets every milestone and never an approval link; and a
//! channel that fails never fails the notice.

mod common;

use common::*;
use rollback_channels::{Fault, SlackWebhook, StatuspageServer};
use rollback_core::approval_link::LinkKey;
use rollback_fault_proxy::gate::test_stack;
use rollback_moto::MotoServer;
use rollback_moto::inbox::Delivery;
use rollback_notify::channels::marker;
use rollback_notify::{Config, handle};
use serde_json::{Value, json};

const PAGE: &str = "kctbh9vrtdwd";
const COMPONENT: &str = "8kbf7d35c070";
const APPROVAL_URL: &str = "http://approve.test/approval";

struct World {
    page: StatuspageServer,
    slack: SlackWebhook,
    topic_arn: String,
    queue: String,
    service: String,
    key: String,
}

/// A service's topic, its channel secrets in moto (under the default ChannelSecretPrefix,
/// `notice-channels/<service>`), a local page with one component, a local webhook.
async fn world(service: &str) -> World {
    let key = format!("sp-key-{service}-do-not-log");
    let page = StatuspageServer::start(PAGE, &key).await;
    page.add_component(COMPONENT, "Checkout");
    let slack = SlackWebhook::start().await;
    seed_channel_secrets(service, &key, &slack.url()).await;
    let (topic_arn, queue) = MotoServer::shared()
        .topic_with_queue(&format!("{service}-notices"), Delivery::Raw)
        .await;
    World {
        page,
        slack,
        topic_arn,
        queue,
        service: service.to_owned(),
        key,
    }
}

impl World {
    fn plan(&self) -> Value {
        json!({
            "service": self.service,
            "images": [{"repository": format!("{}-backend", self.service), "release_tag": "prod", "stable_tag": "stable"}],
            "channels": {
                "statuspage": {"page_id": PAGE, "api_key_secret": format!("notice-channels/{}/statuspage", self.service),
                               "api_base": self.page.api_base(), "component_ids": [COMPONENT],
                               "messages": {"identified": "Checkout may fail: we are putting the previous version back."}},
                "slack": {"webhook_secret": format!("notice-channels/{}/slack", self.service)}
            }
        })
    }

    fn config(&self) -> Config {
        Config::local(&self.topic_arn, APPROVAL_URL, LinkKey::generate())
    }

    async fn send(&self, execution: &str, action: Value) -> Value {
        let mut payload = action;
        payload["plan"] = self.plan();
        payload["execution"] = json!(execution);
        payload["request"] =
            json!({"trigger": {"kind": "manual"}, "reason": "5xx after v42", "scope": "app"});
        let gate = gate(&test_stack(&self.service));
        let out = handle(&clients(&gate), &self.config(), payload)
            .await
            .expect("the notice goes out whatever the channels do");
        // Every notice reached the topic.
        MotoServer::shared().next_message(&self.queue).await;
        assert!(gate.violations().is_empty(), "{:?}", gate.violations());
        out
    }

    /// The Statuspage calls as `METHOD path` with the incident id shown as `{id}`.
    fn page_calls(&self) -> Vec<String> {
        self.page
            .calls()
            .iter()
            .map(|c| {
                let path = c.path.split("/incidents").nth(1).unwrap_or("");
                let path = match path {
                    "" => "incidents".to_owned(),
                    "/unresolved" => "incidents/unresolved".to_owned(),
                    _ => "incidents/{id}".to_owned(),
                };
                format!("{} {path} {}", c.method, c.status)
            })
            .collect()
    }

    fn incident(&self) -> Value {
        let all = self.page.incidents();
        assert_eq!(all.len(), 1, "exactly one incident: {all:#?}");
        all[0].clone()
    }
}

fn progress(stage: &str) -> Value {
    json!({"action": "progress", "stage": stage, "message": "see the plan"})
}

fn success() -> Value {
    json!({"action": "success", "report": {"uri": "s3://b/reports/x/report.md", "history_uri": "s3://b/reports/x/history.json",
           "console_url": "https://console.aws.amazon.com/s3/object/b?region=us-east-1&prefix=reports/x/report.md"}})
}

fn failure(approved: bool) -> Value {
    json!({"action": "failure", "error": {"Error": "Rollback.SwapFailed", "Cause": "swap of db1 failed"},
           "progress": {"steps": [{"name": "approval", "status": if approved { "done" } else { "not-started" }}]}})
}

fn updates(incident: &Value) -> Vec<(String, String)> {
    incident["incident_updates"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|u| {
            (
                u["status"].as_str().unwrap().to_owned(),
                u["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn opened_on_approval_updated_resolved_and_slack_gets_every_milestone() {
    let w = world("notify-ch-seq").await;
    let exec = "exec-seq-1";
    let started = w
        .send(exec, progress("started, resolving what to roll back"))
        .await;
    assert_eq!(
        started["channels"][0]["detail"],
        "nothing to show users before approval"
    );
    // The approval request goes to the approvers only: no channel sees it.
    let approval = w
        .send(
            exec,
            json!({"action": "approval-request", "task_token": "tok-secret-123"}),
        )
        .await;
    assert!(approval.get("channels").is_none(), "{approval}");
    w.send(exec, progress("approved, rolling back")).await;
    assert_eq!(
        w.page.component_status(COMPONENT).as_deref(),
        Some("degraded_performance")
    );
    w.send(exec, progress("rolled back, verifying")).await;
    let out = w.send(exec, success()).await;
    assert_eq!(out["channels"][0]["channel"], "statuspage");
    assert_eq!(out["channels"][0]["ok"], true, "{out}");
    assert_eq!(
        out["channels"][1],
        json!({"channel": "slack", "ok": true, "detail": "posted success"})
    );

    assert_eq!(
        w.page_calls(),
        [
            "GET incidents/unresolved 200",
            "POST incidents 201",
            "GET incidents/unresolved 200",
            "PATCH incidents/{id} 200",
            "GET incidents/unresolved 200",
            "PATCH incidents/{id} 200",
        ]
    );
    assert!(w.page.calls().iter().all(|c| c.authorized));
    let incident = w.incident();
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["name"], "Problems after our latest release");
    let updates = updates(&incident);
    let statuses: Vec<&str> = updates.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["identified", "monitoring", "resolved"]);
    assert!(
        updates[0]
            .1
            .starts_with("Checkout may fail: we are putting the previous version back.")
    );
    assert!(updates[0].1.ends_with(&marker(exec)), "{}", updates[0].1);
    assert_eq!(
        w.page.component_status(COMPONENT).as_deref(),
        Some("operational")
    );

    // Slack: the four milestones of the notices topic, Block Kit, no buttons, no approval link.
    let messages = w.slack.messages();
    let headers: Vec<String> = messages
        .iter()
        .map(|m| m["blocks"][0]["text"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages.len(), 4, "{headers:#?}");
    assert!(
        headers[3].contains("ROLLED BACK") || headers[3].to_lowercase().contains("rolled back"),
        "{headers:#?}"
    );
    for m in &messages {
        let text = m.to_string();
        assert!(
            !text.contains("approve.test") && !text.contains("tok-secret"),
            "{text}"
        );
        let kinds: Vec<&str> = m["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["header", "section", "context"]);
        assert!(m["blocks"][2].to_string().contains(exec));
    }
    assert!(
        messages[3]["blocks"][2]
            .to_string()
            .contains("post-mortem report")
    );

    // Step Functions retries a notice: the page already says it, nothing is posted again.
    let again = w.send(exec, success()).await;
    assert_eq!(
        again["channels"][0]["detail"],
        "no open incident: nothing to resolve"
    );
}

#[tokio::test]
async fn a_failure_leaves_the_incident_open_with_the_failure_text() {
    let w = world("notify-ch-fail").await;
    let exec = "exec-fail-1";
    w.send(exec, progress("approved, rolling back")).await;
    let out = w.send(exec, failure(true)).await;
    assert_eq!(out["channels"][0]["ok"], true, "{out}");
    let incident = w.incident();
    assert_eq!(incident["status"], "identified");
    let updates = updates(&incident);
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[1].0, "identified");
    assert!(updates[1].1.contains("did not complete"), "{updates:?}");
    // Still listed as unresolved; the components stay degraded.
    assert_eq!(w.page_calls().last().unwrap(), "PATCH incidents/{id} 200");
    assert_eq!(
        w.page.component_status(COMPONENT).as_deref(),
        Some("degraded_performance")
    );
    // The contingency notice reached Slack too.
    let last = w.slack.messages().pop().unwrap();
    assert!(
        last["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Rollback.SwapFailed"),
        "{last}"
    );
    // A retried failure notice posts nothing new.
    w.send(exec, failure(true)).await;
    assert_eq!(self::updates(&w.incident()).len(), 2);

    // A failure before approval shows users nothing; one after an approval whose opening
    // notice never came opens the incident with the failure text.
    w.send("exec-fail-2", failure(false)).await;
    assert_eq!(w.page.incidents().len(), 1);
    w.send("exec-fail-3", failure(true)).await;
    let all = w.page.incidents();
    assert_eq!(all.len(), 2);
    assert!(
        all[0]["incident_updates"][0]["body"]
            .as_str()
            .unwrap()
            .contains(&marker("exec-fail-3"))
    );
}

#[tokio::test]
async fn an_open_whose_answer_was_lost_creates_exactly_one_incident() {
    let w = world("notify-ch-lost").await;
    let exec = "exec-lost-1";
    w.page
        .inject("POST", "/incidents", Fault::AnswerLostAfter, 1);
    let out = w.send(exec, progress("approved, rolling back")).await;
    assert_eq!(out["channels"][0]["ok"], true, "{out}");
    assert!(
        out["channels"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("already open"),
        "{out}"
    );
    assert_eq!(
        w.page_calls(),
        [
            "GET incidents/unresolved 200",
            "POST incidents 201",
            "GET incidents/unresolved 200"
        ]
    );
    // And Step Functions' retry of the whole notice finds it too.
    w.page.inject("PATCH", "/incidents/", Fault::ErrorAfter, 1);
    w.send(exec, progress("approved, rolling back")).await;
    w.send(exec, progress("rolled back, verifying")).await;
    let incident = w.incident();
    let statuses: Vec<String> = updates(&incident).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        statuses,
        ["identified", "monitoring"],
        "a PATCH applied before its 503 is not repeated"
    );
}

#[tokio::test]
async fn failing_channels_never_fail_the_notice_and_never_echo_their_secrets() {
    let w = world("notify-ch-down").await;
    // The page refuses the key (another key in the secret), Slack is down after applying.
    let secrets = aws_sdk_secretsmanager::Client::new(&MotoServer::shared().sdk_config());
    secrets
        .put_secret_value()
        .secret_id("notice-channels/notify-ch-down/statuspage")
        .secret_string("sp-wrong-key-do-not-log")
        .send()
        .await
        .unwrap();
    w.slack.inject(Fault::ErrorAfter, 1);
    let out = w
        .send("exec-down-1", progress("approved, rolling back"))
        .await;
    let channels = out["channels"].as_array().unwrap();
    assert_eq!(channels[0]["ok"], false, "{out}");
    assert!(
        channels[0]["detail"].as_str().unwrap().contains("HTTP 401"),
        "{out}"
    );
    assert_eq!(channels[1]["ok"], false, "{out}");
    assert!(
        channels[1]["detail"].as_str().unwrap().contains("HTTP 503"),
        "{out}"
    );
    let text = out.to_string();
    let secret_path = w.slack.url().rsplit('/').next().unwrap().to_owned();
    assert!(
        !text.contains("do-not-log") && !text.contains(&w.key) && !text.contains(&secret_path),
        "{text}"
    );
    assert!(w.page.incidents().is_empty());

    // A secret the notify role may not read (outside notice-channels/<service>/) is refused
    // as in AWS, and said so.
    let mut plan_outside = w.plan();
    plan_outside["channels"]["slack"]["webhook_secret"] = json!("elsewhere/slack");
    let gate = gate(&test_stack(&w.service));
    let out = handle(
        &clients(&gate),
        &w.config(),
        json!({"action": "progress", "stage": "rolled back, verifying", "plan": plan_outside, "execution": "exec-down-2"}),
    )
    .await
    .unwrap();
    MotoServer::shared().next_message(&w.queue).await;
    let slack = &out["channels"][1];
    assert_eq!(slack["ok"], false, "{out}");
    assert!(
        slack["detail"]
            .as_str()
            .unwrap()
            .contains("cannot read secret elsewhere/slack"),
        "{out}"
    );
    assert!(slack["detail"].as_str().unwrap().chars().count() <= 200);
    let refused = gate.take_violations();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].to_string().contains("secret:elsewhere/slack"),
        "{refused:?}"
    );

    // A webhook secret that is not a Slack URL is refused without quoting it.
    secrets
        .create_secret()
        .name("notice-channels/notify-ch-down/not-slack")
        .secret_string("https://hooks.example.com/services/T0/B0/leaky-path")
        .send()
        .await
        .unwrap();
    let mut plan = w.plan();
    plan["channels"]["slack"]["webhook_secret"] = json!("notice-channels/notify-ch-down/not-slack");
    let out = handle(
        &clients(&gate),
        &w.config(),
        json!({"action": "progress", "stage": "started", "plan": plan, "execution": "exec-down-3"}),
    )
    .await
    .unwrap();
    MotoServer::shared().next_message(&w.queue).await;
    let detail = out["channels"][1]["detail"].as_str().unwrap();
    assert!(
        detail.contains("must start with https://hooks.slack.com/") && !detail.contains("leaky"),
        "{detail}"
    );
}

#[tokio::test]
async fn the_approval_email_shows_what_the_status_page_will_say() {
    let w = world("notify-ch-mail").await;
    let (approvals, queue) = MotoServer::shared()
        .topic_with_queue("notify-ch-mail-approvals", Delivery::Raw)
        .await;
    let mut payload = json!({"action": "approval-request", "task_token": "tok-1", "topic_arn": approvals,
        "plan": w.plan(), "execution": "exec-mail-1",
        "request": {"trigger": {"kind": "manual"}, "reason": "5xx", "scope": "app"}});
    payload["resolved"] = json!({"images": [{
        "repository": "notify-ch-mail-backend", "release_tag": "prod", "stable_tag": "stable",
        "stable_digest": "sha256:600d", "release_digest": "sha256:bad", "retag_needed": true, "immutable_tags": false}]});
    let gate = gate(&test_stack(&w.service));
    handle(&clients(&gate), &w.config(), payload).await.unwrap();
    let body = MotoServer::shared().next_message(&queue).await;
    assert!(
        body.contains("Status page will say (on approval): \"Problems after our latest release: Checkout may fail: we are putting the previous version back.\""),
        "{body}"
    );
    assert!(w.page.calls().is_empty() && w.slack.calls().is_empty());
}
