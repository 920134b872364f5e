//! The drill's notice channels (issue 17): a local Statuspage and a local Slack incoming webhook
//! (`rollback-channels`), their credentials in moto's Secrets Manager under the template's
//! default `ChannelSecretPrefix` (`notice-channels/<service>`), and the plan's `channels`
//! section pointing at them. The summary says what each received.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use rollback_channels::{Call, SlackWebhook, StatuspageServer};
use serde_json::{Value, json};

pub const PAGE_ID: &str = "mintreplica1";
pub const COMPONENT_ID: &str = "checkoutapi1";
const STATUSPAGE_SECRET: &str = "notice-channels/mint-replica/statuspage";
const SLACK_SECRET: &str = "notice-channels/mint-replica/slack";

/// The two local receivers, alive as long as the drill's stack.
pub struct DrillChannels {
    pub statuspage: StatuspageServer,
    pub slack: SlackWebhook,
}

impl DrillChannels {
    /// Starts both on 127.0.0.1 and stores their credentials in Secrets Manager.
    pub async fn start(sdk: &SdkConfig) -> Result<DrillChannels> {
        let api_key = format!("drill-{}", uuid::Uuid::new_v4().simple());
        let statuspage = StatuspageServer::start(PAGE_ID, &api_key).await;
        statuspage.add_component(COMPONENT_ID, "Checkout API");
        let slack = SlackWebhook::start().await;
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        for (name, value) in [(STATUSPAGE_SECRET, api_key), (SLACK_SECRET, slack.url())] {
            secrets
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .with_context(|| format!("CreateSecret {name}"))?;
        }
        Ok(DrillChannels { statuspage, slack })
    }

    /// The plan's `channels` section for these receivers.
    pub fn plan_section(&self) -> Value {
        json!({
            "statuspage": {"page_id": PAGE_ID, "api_key_secret": STATUSPAGE_SECRET,
                           "api_base": self.statuspage.api_base(), "component_ids": [COMPONENT_ID],
                           "messages": {"identified": "Checkout may fail after today's release: we are putting the previous version back."}},
            "slack": {"webhook_secret": SLACK_SECRET}
        })
    }

    /// What the status page did, call by call: `opened`, `updated (monitoring)`,
    /// `resolved`…, from the calls it answered with success (the looks are left out).
    pub fn statuspage_events(&self) -> Vec<String> {
        events(&self.statuspage.calls())
    }

    /// The headers of the Slack messages accepted, in order.
    pub fn slack_headers(&self) -> Vec<String> {
        self.slack
            .messages()
            .iter()
            .map(|m| {
                m["blocks"][0]["text"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// The summary's lines: where the calls went (never the webhook's secret path).
    pub fn summary(&self) -> Vec<String> {
        let events = self.statuspage_events();
        let updates = events.iter().filter(|e| e.starts_with("updated")).count();
        let mut said = Vec::new();
        if events.iter().any(|e| e == "opened") {
            said.push("incident opened".to_owned());
        }
        if updates > 0 {
            said.push(format!(
                "{updates} update{}",
                if updates == 1 { "" } else { "s" }
            ));
        }
        if events.iter().any(|e| e == "resolved") {
            said.push("resolved".into());
        } else if events.iter().any(|e| e == "opened") {
            said.push("left open".into());
        }
        if said.is_empty() {
            said.push("no incident".into());
        }
        let looks = self
            .statuspage
            .calls()
            .iter()
            .filter(|c| c.method == "GET")
            .count();
        let headers = self.slack_headers();
        vec![
            format!(
                "Status page (local): {} ({looks} looks) — {}/pages/{PAGE_ID}",
                said.join(", "),
                self.statuspage.api_base()
            ),
            format!(
                "Slack (local webhook): {} message{}{} — {}/services/…",
                headers.len(),
                if headers.len() == 1 { "" } else { "s" },
                if headers.is_empty() {
                    String::new()
                } else {
                    format!(": {}", headers.join(" | "))
                },
                self.slack.base()
            ),
        ]
    }
}

/// `opened`, `updated (<status>)` or `resolved` per successful POST or PATCH.
pub fn events(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| (200..300).contains(&c.status))
        .filter_map(|c| {
            let status = c
                .body
                .as_ref()
                .and_then(|b| b["incident"]["status"].as_str())
                .unwrap_or("");
            match (c.method.as_str(), status) {
                ("POST", _) => Some("opened".to_owned()),
                ("PATCH", "resolved") => Some("resolved".to_owned()),
                ("PATCH", status) => Some(format!("updated ({status})")),
                _ => None,
            }
        })
        .collect()
}
