//! The approvers' inbox: notices published to SNS, read back through a raw-delivery SQS
//! subscription, printed as the emails people would get.

use anyhow::{Context, Result};

pub struct Inbox {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

/// One published notice (SNS subject + body, as the email subscribers get it).
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

impl Mail {
    /// True when the notice is about this execution (its `Execution:` header line). After a
    /// crash and restart, the stopped execution's emails may still arrive; their links are dead.
    pub fn is_for(&self, execution_name: &str) -> bool {
        self.body
            .lines()
            .any(|l| l.trim().strip_prefix("Execution:").map(str::trim) == Some(execution_name))
    }

    /// The email of a pre-approved rollback (one "stop it now" link, no approve links).
    pub fn is_pre_approved(&self) -> bool {
        self.subject.contains("PRE-APPROVED")
            && self
                .links()
                .iter()
                .any(|(label, _)| label.contains("stop it now"))
    }

    pub fn is_approval_request(&self) -> bool {
        self.links()
            .iter()
            .any(|(label, _)| label.contains("reject"))
    }

    /// `(label, url)` for each link line: the line before (or the text before) a URL.
    pub fn links(&self) -> Vec<(String, String)> {
        let mut links = Vec::new();
        let mut previous = String::new();
        for line in self.body.lines() {
            let trimmed = line.trim();
            if let Some(start) = trimmed.find("http://").or_else(|| trimmed.find("https://")) {
                let url = trimmed[start..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let before = trimmed[..start].trim().trim_end_matches(':').to_lowercase();
                let label = if before.is_empty() {
                    previous.to_lowercase()
                } else {
                    before
                };
                links.push((label, url));
            }
            if !trimmed.is_empty() {
                previous = trimmed.to_owned();
            }
        }
        links
    }

    pub fn link(&self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        self.links()
            .into_iter()
            .find(|(label, _)| wanted(label))
            .map(|(_, url)| url)
    }

    pub fn print(&self) {
        println!("\n  ┌─ email: {}", self.subject);
        for line in self.body.lines() {
            println!("  │ {line}");
        }
        println!("  └─");
    }
}

impl Inbox {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: &str) -> Self {
        Inbox {
            sqs,
            queue_url: queue_url.to_owned(),
        }
    }

    /// Whatever arrived since the last poll (no long polling: the drill polls often).
    pub async fn poll(&mut self) -> Result<Vec<Mail>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .context("ReceiveMessage")?;
        let mut mails = Vec::new();
        for message in out.messages.unwrap_or_default() {
            if let Some(handle) = &message.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .context("DeleteMessage")?;
            }
            let body = message.body.unwrap_or_default();
            // Raw delivery carries the SNS subject in no attribute; notify puts it on the first line too.
            let subject = message
                .message_attributes
                .as_ref()
                .and_then(|a| a.get("subject"))
                .and_then(|v| v.string_value.clone())
                .unwrap_or_else(|| body.lines().next().unwrap_or_default().to_owned());
            mails.push(Mail { subject, body });
        }
        Ok(mails)
    }
}
