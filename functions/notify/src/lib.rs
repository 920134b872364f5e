//! The `notify` function: one SNS message per action, written for the on-call engineer who
//! reads it at 3 a.m. `approval-request` carries signed links to the approval page; `failure`
//! is the contingency notice (what completed, what did not, where the backups are, what to do).
//! `report` publishes nothing: just before the final notice it writes the post-mortem
//! (`report.md`, `history.json`) to the stack's report bucket ([`report`]), and the notice
//! links to it.
//!
//! Deployed as `NotifyFunction`: invoked with `StepInput<NotifyAction>` JSON, it answers the
//! published message and each channel's outcome (`report`: where the report is), or a
//! `Rollback.*` error. Tests: `cargo test -p rollback-notify` (moto via `make venv`).

pub mod approval;
pub mod channels;
mod infrastructure;
mod mobile;
mod observed;
mod preapproved;
pub mod render;
mod replicas;
pub mod report;
mod runbook;
pub mod text;

use chrono::Utc;
use rollback_core::approval_link::{KEY_SECRET_ENV, KeyCache, LinkKey};
use rollback_core::contract::notify::{NoticeOutput, NotifyAction, NotifyOutput};
use rollback_core::{RollbackError, StepInput};
use serde_json::Value;

pub use approval::{ApprovalLink, RenderedApproval};
pub use render::{Context, Message};

pub const TOPIC_ENV: &str = "ROLLBACK_TOPIC_ARN";
pub const ESCALATION_TOPIC_ENV: &str = "ROLLBACK_ESCALATION_TOPIC_ARN";
pub const APPROVAL_URL_ENV: &str = "ROLLBACK_APPROVAL_URL";
/// The stack's report bucket (`report`).
pub const REPORT_BUCKET_ENV: &str = "ROLLBACK_REPORT_BUCKET";
/// The key prefix reports go under (`<prefix>/<execution name>/report.md`); default
/// [`report::DEFAULT_PREFIX`].
pub const REPORT_PREFIX_ENV: &str = "ROLLBACK_REPORT_PREFIX";

#[derive(Clone, Debug)]
pub struct Clients {
    pub sns: aws_sdk_sns::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// `report`: this execution's history (`states:GetExecutionHistory`).
    pub sfn: aws_sdk_sfn::Client,
    /// `report`: the report bucket (`s3:PutObject`).
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Clients {
        Clients {
            sns: aws_sdk_sns::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            s3: s3_client(config),
        }
    }
}

pub use rollback_core::aws::s3_client;

/// Deployment settings; each can be overridden per message by the input.
pub struct Config {
    pub topic_arn: Option<String>,
    pub escalation_topic_arn: Option<String>,
    pub approval_url: Option<String>,
    /// The approval link key, read on first use and again after `KEY_MAX_AGE`.
    pub key: KeyCache,
    /// Where `report` writes (`ROLLBACK_REPORT_BUCKET`); the input's `bucket` overrides it.
    pub report_bucket: Option<String>,
    /// `ROLLBACK_REPORT_PREFIX`, default [`report::DEFAULT_PREFIX`].
    pub report_prefix: String,
    /// `history.json` goes up in parts of this size once it is larger (multipart upload).
    pub report_part_size: usize,
    /// The approval page requires a login (`ROLLBACK_OIDC_ISSUER` is set): the mail says the
    /// recorded approver comes from the identity provider, not from a typed address.
    pub approval_login: bool,
    /// The plan's notice channels (Statuspage, Slack): HTTP client and bounds.
    pub channels: channels::ChannelSettings,
}

impl Config {
    pub fn from_env() -> Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Config {
            topic_arn: var(TOPIC_ENV),
            escalation_topic_arn: var(ESCALATION_TOPIC_ENV),
            approval_url: var(APPROVAL_URL_ENV),
            key: KeyCache::new(var(KEY_SECRET_ENV).unwrap_or_default()),
            report_bucket: var(REPORT_BUCKET_ENV),
            report_prefix: var(REPORT_PREFIX_ENV)
                .unwrap_or_else(|| report::DEFAULT_PREFIX.to_owned()),
            report_part_size: report::PART_SIZE,
            approval_login: var(rollback_core::oidc::ISSUER_VAR).is_some(),
            channels: channels::ChannelSettings::default(),
        }
    }

    /// For tests and the local drill: everything explicit, the key in hand.
    pub fn local(topic_arn: &str, approval_url: &str, key: LinkKey) -> Config {
        Config {
            topic_arn: Some(topic_arn.to_owned()),
            escalation_topic_arn: None,
            approval_url: Some(approval_url.to_owned()),
            key: KeyCache::with_key(key),
            report_bucket: None,
            report_prefix: report::DEFAULT_PREFIX.to_owned(),
            report_part_size: report::PART_SIZE,
            approval_login: false,
            channels: channels::ChannelSettings::default(),
        }
    }

    /// Reports go to `bucket` (the drill's and the tests' stand-in for the stack's bucket).
    pub fn with_report_bucket(mut self, bucket: &str) -> Config {
        self.report_bucket = Some(bucket.to_owned());
        self
    }
}

/// The Lambda entry point.
pub async fn handle(
    clients: &Clients,
    config: &Config,
    input: Value,
) -> Result<Value, RollbackError> {
    let input = StepInput::<NotifyAction>::parse(input)?;
    if let NotifyAction::Report(request) = &input.action {
        let out = report::write(clients, config, &input, request).await?;
        return rollback_core::step::to_output(&out);
    }
    let (notice, message) = publish(clients, config, &input).await?;
    // The notice went out; the plan's channels (status page, chat) follow, and never fail it.
    let channels = channels::fan_out(clients, config, &input, &message).await;
    rollback_core::step::to_output(&NoticeOutput { notice, channels })
}

/// Renders and publishes one notification (to SNS only; [`handle`] adds the plan's channels).
pub async fn notify(
    clients: &Clients,
    config: &Config,
    input: &StepInput<NotifyAction>,
) -> Result<NotifyOutput, RollbackError> {
    publish(clients, config, input).await.map(|(out, _)| out)
}

async fn publish(
    clients: &Clients,
    config: &Config,
    input: &StepInput<NotifyAction>,
) -> Result<(NotifyOutput, Message), RollbackError> {
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
            let page = approval::ApprovalPage {
                url: base_url,
                key: &key,
                login: config.approval_login,
            };
            let rendered = approval::render(&ctx, request, &page)?;
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
        NotifyAction::Report(_) => {
            return Err(RollbackError::InvalidInput(
                "action: report publishes nothing (it writes the report to S3; see handle)".into(),
            ));
        }
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
    let out = NotifyOutput {
        message_id,
        topic_arn: topic,
        subject: message.subject.clone(),
    };
    Ok((out, message))
}

fn action_name(action: &NotifyAction) -> &'static str {
    match action {
        NotifyAction::ApprovalRequest(_) => "approval-request",
        NotifyAction::Progress(_) => "progress",
        NotifyAction::Success(_) => "success",
        NotifyAction::Failure(_) => "failure",
        NotifyAction::Escalate(_) => "escalate",
        NotifyAction::Report(_) => "report",
    }
}
