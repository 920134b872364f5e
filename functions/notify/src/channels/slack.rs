//! The notices in a Slack channel, through an incoming webhook: `POST <webhook URL>` with
//! `{"text", "blocks"}` (Block Kit: a header, the notice as a section, a context line with the
//! execution and the post-mortem link), answered `200 ok`. No buttons and never the approval
//! links: approval stays on the authenticated page. The webhook URL is a secret (anyone holding
//! it can post): it is read from Secrets Manager and never logged or quoted in an error.

use rollback_core::plan::channels::{SLACK_WEBHOOK_PREFIX, SlackRef, check_endpoint};
use serde_json::{Value, json};

use super::{ChannelError, Milestone, Notice, secret_value};
use crate::text::cut;

/// Block Kit's limits: a header's plain text, a section's text.
pub const MAX_HEADER_CHARS: usize = 150;
pub const MAX_SECTION_CHARS: usize = 3000;
const MAX_WEBHOOK_CHARS: usize = 500;

/// Posts the notice; returns what Slack said.
pub(crate) async fn post(
    http: &reqwest::Client,
    secrets: &aws_sdk_secretsmanager::Client,
    slack: &SlackRef,
    notice: &Notice<'_>,
) -> Result<String, ChannelError> {
    let what = "the Slack incoming webhook URL";
    let url = secret_value(secrets, &slack.webhook_secret, what).await?;
    let url =
        check_endpoint(&url, Some(SLACK_WEBHOOK_PREFIX), MAX_WEBHOOK_CHARS).map_err(|reason| {
            ChannelError::SecretShape {
                secret: cut(&slack.webhook_secret, 120),
                what,
                reason: format!("the URL {reason}"),
            }
        })?;
    let payload = payload(notice);
    let call = "Slack webhook POST";
    let response = http
        .post(url)
        .json(&payload)
        .send()
        .await
        .map_err(|e| ChannelError::http(call, e))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| ChannelError::http(call, e))?;
    let body = cut(&crate::text::clean(&body, 100), 100);
    if status.is_success() && body == "ok" {
        Ok(format!("posted {}", milestone_name(notice.milestone)))
    } else {
        Err(ChannelError::Status {
            call: call.into(),
            status: status.as_u16(),
            body,
        })
    }
}

fn milestone_name(m: Milestone) -> &'static str {
    match m {
        Milestone::Started => "rollback started",
        Milestone::Approved => "rollback approved",
        Milestone::Progress => "progress",
        Milestone::Rejected => "rejection",
        Milestone::Succeeded => "success",
        Milestone::Failed => "contingency notice",
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped; escaped, a notice cannot mention
/// `<!channel>` or forge a link either.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Block Kit message for a notice.
pub(crate) fn payload(notice: &Notice<'_>) -> Value {
    let header = cut(&notice.message.subject, MAX_HEADER_CHARS);
    // The notice as it went to the topic, in a code block (its columns kept), without any line
    // holding the approval page's address, cut at a line to Block Kit's section limit.
    let budget = MAX_SECTION_CHARS - 120;
    let mut text = String::new();
    let mut cut_short = false;
    for line in notice.message.body.lines() {
        if notice
            .approval_url
            .is_some_and(|u| !u.is_empty() && line.contains(u))
            || line.contains("?t=")
        {
            continue;
        }
        let line = escape(line);
        if text.chars().count() + line.chars().count() + 1 > budget {
            cut_short = true;
            break;
        }
        text.push_str(&line);
        text.push('\n');
    }
    let mut section = format!("```\n{}```", text);
    if cut_short {
        section.push_str("\n_Cut short: the full notice went to the notices topic._");
    }
    let mut context = vec![json!({
        "type": "mrkdwn",
        "text": format!("{} · execution `{}`", escape(notice.service), escape(notice.execution)),
    })];
    if let Some(url) = notice.report_url
        && !url.contains(['|', '>', '<'])
    {
        context.push(json!({
            "type": "mrkdwn",
            "text": format!("<{}|post-mortem report>", url.replace('&', "&amp;")),
        }));
    }
    json!({
        "text": header,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "context", "elements": context},
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Message;

    fn notice<'a>(message: &'a Message, approval_url: Option<&'a str>) -> Notice<'a> {
        Notice {
            milestone: Milestone::Succeeded,
            message,
            execution: "exec-7",
            service: "svc",
            report_url: Some(
                "https://console.aws.amazon.com/s3/object/b?prefix=r/x&region=us-east-1",
            ),
            approval_url,
            approved: true,
        }
    }

    #[test]
    fn block_kit_shape_header_section_context_and_no_buttons() {
        let message = Message {
            subject: "[rollback] svc ROLLED BACK".into(),
            body: "Rolled back <!channel> & done\n  column kept\n".into(),
        };
        let p = payload(&notice(&message, None));
        assert_eq!(p["text"], "[rollback] svc ROLLED BACK");
        let blocks = p["blocks"].as_array().unwrap();
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["header", "section", "context"]);
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        let section = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(
            section.contains("Rolled back &lt;!channel&gt; &amp; done"),
            "{section}"
        );
        assert!(section.contains("\n  column kept\n"), "{section}");
        let context = blocks[2]["elements"].to_string();
        assert!(context.contains("execution `exec-7`"), "{context}");
        assert!(context.contains("prefix=r/x&amp;region"), "{context}");
        assert!(!p.to_string().contains("\"actions\"") && !p.to_string().contains("button"));
    }

    #[test]
    fn never_an_approval_link_and_bounded_to_block_kit_limits() {
        let mut body = String::from("Approve here: https://approve.example/approval?t=sealed\n");
        body.push_str("see https://approve.example/approval for the page\n");
        for i in 0..500 {
            body.push_str(&format!("line {i} of a long contingency notice\n"));
        }
        let message = Message {
            subject: "s".repeat(300),
            body,
        };
        let p = payload(&notice(&message, Some("https://approve.example/approval")));
        let text = p.to_string();
        assert!(!text.contains("approve.example"), "{text}");
        assert!(!text.contains("?t="), "{text}");
        let header = p["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= MAX_HEADER_CHARS);
        let section = p["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(
            section.chars().count() <= MAX_SECTION_CHARS,
            "{}",
            section.len()
        );
        assert!(section.contains("Cut short"));
    }
}
