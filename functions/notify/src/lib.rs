//! The `notify` function: one SNS message per action, written for the on-call engineer who
//! reads it at 3 a.m. `approval-request` carries signed links to the approval page; `failure`
//! is the contingency notice (what completed, what did not, where the backups are, what to do).

pub mod approval;
mod observed;
pub mod render;
mod replicas;
mod runbook;
pub mod text;

use chrono::Utc;
use rollback_core::approval_link::{KEY_SECRET_ENV, KeyCache, LinkKey};
use rollback_core::contract::notify::{NotifyAction, NotifyOutput};
use rollback_core::{RollbackError, StepInput};
use serde_json::Value;

pub use approval::{ApprovalLink, RenderedApproval};
pub use render::{Context, Message};

pub const TOPIC_ENV: &str = "ROLLBACK_TOPIC_ARN";
pub const ESCALATION_TOPIC_ENV: &str = "ROLLBACK_ESCALATION_TOPIC_ARN";
pub const APPROVAL_URL_ENV: &str = "ROLLBACK_APPROVAL_URL";

#[derive(Clone, Debug)]
pub struct Clients {
    pub sns: aws_sdk_sns::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Clients {
        Clients {
            sns: aws_sdk_sns::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

/// Deployment settings; each can be overridden per message by the input.
pub struct Config {
    pub topic_arn: Option<String>,
    pub escalation_topic_arn: Option<String>,
    pub approval_url: Option<String>,
    /// The approval link key, read once per process.
    pub key: KeyCache,
}

impl Config {
    pub fn from_env() -> Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Config {
            topic_arn: var(TOPIC_ENV),
            escalation_topic_arn: var(ESCALATION_TOPIC_ENV),
            approval_url: var(APPROVAL_URL_ENV),
            key: KeyCache::new(var(KEY_SECRET_ENV).unwrap_or_default()),
        }
    }

    /// For tests and the local drill: everything explicit, the key in hand.
    pub fn local(topic_arn: &str, approval_url: &str, key: LinkKey) -> Config {
        Config {
            topic_arn: Some(topic_arn.to_owned()),
            escalation_topic_arn: None,
            approval_url: Some(approval_url.to_owned()),
            key: KeyCache::with_key(key),
        }
    }
}

/// The Lambda entry point.
pub async fn handle(
    clients: &Clients,
    config: &Config,
    input: Value,
) -> Result<Value, RollbackError> {
    let input = StepInput::<NotifyAction>::parse(input)?;
    let out = notify(clients, config, &input).await?;
    Ok(serde_json::to_value(out)?)
}

/// Renders and publishes one notification.
pub async fn notify(
    clients: &Clients,
    config: &Config,
    input: &StepInput<NotifyAction>,
) -> Result<NotifyOutput, RollbackError> {
    let ctx = Context {
        plan: &input.plan,
        request: &input.request,
        execution: &input.execution,
        now: Utc::now(),
    };
    let (message, topic) = match &input.action {
        NotifyAction::ApprovalRequest(request) => {
            let base_url = request
                .approval_url
                .as_deref()
                .or(config.approval_url.as_deref())
                .ok_or_else(|| {
                    RollbackError::InvalidInput(format!(
                        "no approval page URL: pass approval_url or set {APPROVAL_URL_ENV}"
                    ))
                })?;
            let key = config.key.get(&clients.secrets).await?;
            let rendered = approval::render(&ctx, request, base_url, key)?;
            (rendered.message, request.topic_arn.as_deref())
        }
        NotifyAction::Progress(n) => (render::progress(&ctx, n), n.topic_arn.as_deref()),
        NotifyAction::Success(n) => (render::success(&ctx, n), n.topic_arn.as_deref()),
        NotifyAction::Failure(n) => (render::failure(&ctx, n), n.topic_arn.as_deref()),
        NotifyAction::Escalate(n) => (
            render::escalate(&ctx, n),
            n.topic_arn
                .as_deref()
                .or(config.escalation_topic_arn.as_deref()),
        ),
    };
    let topic = topic
        .or(config.topic_arn.as_deref())
        .ok_or_else(|| {
            RollbackError::InvalidInput(format!("no SNS topic: pass topic_arn or set {TOPIC_ENV}"))
        })?
        .to_owned();
    let out = clients
        .sns
        .publish()
        .topic_arn(&topic)
        .subject(&message.subject)
        .message(&message.body)
        .send()
        .await
        .map_err(|e| RollbackError::from_sdk("Publish", e))?;
    let message_id = out.message_id().unwrap_or_default().to_owned();
    tracing::info!(
        action = action_name(&input.action),
        topic = %topic,
        message_id = %message_id,
        "notification published"
    );
    Ok(NotifyOutput {
        message_id,
        topic_arn: topic,
        subject: message.subject,
    })
}

fn action_name(action: &NotifyAction) -> &'static str {
    match action {
        NotifyAction::ApprovalRequest(_) => "approval-request",
        NotifyAction::Progress(_) => "progress",
        NotifyAction::Success(_) => "success",
        NotifyAction::Failure(_) => "failure",
        NotifyAction::Escalate(_) => "escalate",
    }
}
