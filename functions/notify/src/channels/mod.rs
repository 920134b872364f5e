//! The plan's notice channels (`plan.channels`, issue 17): after a notice is published to SNS,
//! the same milestone goes to a Slack channel (`slack`) and drives the users' Statuspage
//! incident (`statuspage`).
//!
//! Which notice is which milestone:
//!
//! | notice | Slack | Statuspage |
//! |---|---|---|
//! | `progress` stage `started…` (the "rollback started" broadcast) | posted | — |
//! | `progress` stage `approved…` (after the decision is checked) | posted | opened, `identified` |
//! | any other `progress` (e.g. `rolled back, verifying`) | posted | updated, `monitoring` (when open) |
//! | `progress` stage `rejected` | posted | — |
//! | `success` | posted | resolved (when open) |
//! | `failure` (the contingency notice) | posted | updated, stays `identified` (opened first when the rollback had been approved) |
//! | `approval-request`, `escalate`, `report` | never | — |
//!
//! A channel never fails the notice: its outcome is returned and logged, and Step Functions'
//! retries only repeat what the channel does not already show (the incident is found by a
//! marker holding the execution name, not by a stored id; an update the incident already
//! shows is not posted again).
//!
//! Neither the Statuspage API key nor the webhook URL (a secret: anyone holding it can post)
//! is ever logged, returned or put in an error.

mod slack;
mod statuspage;

use std::time::Duration;

use rollback_core::StepInput;
use rollback_core::contract::notify::StepStatus;
use rollback_core::contract::notify::{
    ChannelOutcome, MAX_CHANNEL_DETAIL_CHARS, NotifyAction, ReportLink,
};

use crate::render::Message;
use crate::text::cut;

pub use statuspage::marker;

/// A `progress` stage starting with this is the approved-rollback milestone: the status page
/// incident opens.
pub const APPROVED_STAGE: &str = "approved";
/// The "rollback started" broadcast (before approval).
pub const STARTED_STAGE: &str = "started";
/// The rejection's notice.
pub const REJECTED_STAGE: &str = "rejected";

/// How long one channel call may take (connect included), and all channels of one notice.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The HTTP client and bounds the channels use.
#[derive(Clone, Debug)]
pub struct ChannelSettings {
    pub http: reqwest::Client,
    /// Bound of everything the channels do for one notice (they run side by side).
    pub deadline: Duration,
}

impl ChannelSettings {
    /// Bounded timeouts, no redirects (a redirect could carry the API key elsewhere), rustls.
    pub fn new(request_timeout: Duration, deadline: Duration) -> ChannelSettings {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(request_timeout))
            .timeout(request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rollback-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        ChannelSettings { http, deadline }
    }
}

impl Default for ChannelSettings {
    fn default() -> Self {
        ChannelSettings::new(REQUEST_TIMEOUT, DEADLINE)
    }
}

/// Which milestone a notice is, for the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// The "rollback started" broadcast, before approval.
    Started,
    /// The rollback was approved and begins.
    Approved,
    /// A later stage of an approved rollback.
    Progress,
    Rejected,
    Succeeded,
    Failed,
}

impl Milestone {
    /// `None` for what never goes to a channel (approval requests carry the approval links;
    /// escalations go to their own topic; reports publish nothing).
    pub fn of(action: &NotifyAction) -> Option<Milestone> {
        match action {
            NotifyAction::Progress(n) => {
                let stage = n.stage.trim().to_ascii_lowercase();
                Some(if stage.starts_with(STARTED_STAGE) {
                    Milestone::Started
                } else if stage.starts_with(REJECTED_STAGE) {
                    Milestone::Rejected
                } else if stage.starts_with(APPROVED_STAGE) {
                    Milestone::Approved
                } else {
                    Milestone::Progress
                })
            }
            NotifyAction::Success(_) => Some(Milestone::Succeeded),
            NotifyAction::Failure(_) => Some(Milestone::Failed),
            NotifyAction::ApprovalRequest(_)
            | NotifyAction::Escalate(_)
            | NotifyAction::Report(_) => None,
        }
    }
}

/// What one notice gives the channels.
pub(crate) struct Notice<'a> {
    pub milestone: Milestone,
    pub message: &'a Message,
    pub execution: &'a str,
    pub service: &'a str,
    /// The post-mortem's console page, when the notice links one.
    pub report_url: Option<&'a str>,
    /// The approval page's URL: no line containing it ever reaches Slack.
    pub approval_url: Option<&'a str>,
    /// A failure after the rollback was approved (the progress record's approval step is
    /// done): the status page incident is opened if it is not yet.
    pub approved: bool,
}

/// Why a channel could not do its part. Never holds a credential or the webhook URL.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "cannot read secret {secret}: {reason}; create it (its value: {what}) and let the \
         notify role read it (infra/template.yaml, ChannelSecretPrefix)"
    )]
    Secret {
        secret: String,
        what: &'static str,
        reason: String,
    },
    #[error("secret {secret} does not hold {what}: {reason}")]
    SecretShape {
        secret: String,
        what: &'static str,
        reason: String,
    },
    #[error("{call}: {reason}")]
    Http { call: String, reason: String },
    #[error("{call} answered HTTP {status}: {body}")]
    Status {
        call: String,
        status: u16,
        body: String,
    },
    #[error("{call}: unexpected answer ({reason})")]
    Answer { call: String, reason: String },
    #[error("gave up after {0:?} (channels deadline)")]
    Deadline(Duration),
}

impl ChannelError {
    /// A transport error without its URL (reqwest's Display names the URL: the webhook's is
    /// a secret).
    pub(crate) fn http(call: &str, e: reqwest::Error) -> ChannelError {
        let e = e.without_url();
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_body() || e.is_decode() {
            "the answer was cut off"
        } else {
            "request failed"
        };
        ChannelError::Http {
            call: call.to_owned(),
            reason: cut(&format!("{kind} ({e})"), 150),
        }
    }
}

/// Reads one secret's string value (once per notice: each channel asks for its own).
pub(crate) async fn secret_value(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
    what: &'static str,
) -> Result<String, ChannelError> {
    let out = secrets
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| ChannelError::Secret {
            secret: cut(secret, 120),
            what,
            reason: cut(
                &rollback_core::RollbackError::from_sdk("GetSecretValue", e).to_string(),
                200,
            ),
        })?;
    let value = out.secret_string().map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(ChannelError::SecretShape {
            secret: cut(secret, 120),
            what,
            reason: "it has no string value".into(),
        });
    }
    Ok(value.to_owned())
}

/// Posts `message` to the plan's channels for this notice. Returns one outcome per channel
/// (none when the plan has no channels or the notice is not a channel milestone); never fails.
pub async fn fan_out(
    clients: &crate::Clients,
    config: &crate::Config,
    input: &StepInput<NotifyAction>,
    message: &Message,
) -> Vec<ChannelOutcome> {
    let Some(channels) = &input.plan.channels else {
        return Vec::new();
    };
    let Some(milestone) = Milestone::of(&input.action) else {
        return Vec::new();
    };
    let notice = Notice {
        milestone,
        message,
        execution: input.execution.as_str(),
        service: &input.plan.service,
        report_url: report_url(&input.action),
        approval_url: config.approval_url.as_deref(),
        approved: approved(&input.action),
    };
    let settings = &config.channels;
    let page = async {
        match &channels.statuspage {
            Some(page) => Some(
                bounded(
                    settings.deadline,
                    statuspage::drive(&settings.http, &clients.secrets, page, &notice),
                )
                .await,
            ),
            None => None,
        }
    };
    let chat = async {
        match &channels.slack {
            Some(slack) => Some(
                bounded(
                    settings.deadline,
                    slack::post(&settings.http, &clients.secrets, slack, &notice),
                )
                .await,
            ),
            None => None,
        }
    };
    let (page, chat) = tokio::join!(page, chat);
    let mut out = Vec::new();
    for (channel, result) in [("statuspage", page), ("slack", chat)] {
        let Some(result) = result else { continue };
        let outcome = match result {
            Ok(detail) => {
                tracing::info!(channel, execution = notice.execution, detail = %detail, "notice channel done");
                ChannelOutcome {
                    channel: channel.into(),
                    ok: true,
                    detail: cut(&detail, MAX_CHANNEL_DETAIL_CHARS),
                }
            }
            Err(e) => {
                tracing::warn!(channel, execution = notice.execution, error = %e, "notice channel failed; the notice itself went out");
                ChannelOutcome {
                    channel: channel.into(),
                    ok: false,
                    detail: cut(&e.to_string(), MAX_CHANNEL_DETAIL_CHARS),
                }
            }
        };
        out.push(outcome);
    }
    out
}

async fn bounded(
    deadline: Duration,
    work: impl std::future::Future<Output = Result<String, ChannelError>>,
) -> Result<String, ChannelError> {
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or(Err(ChannelError::Deadline(deadline)))
}

fn report_url(action: &NotifyAction) -> Option<&str> {
    let report = match action {
        NotifyAction::Progress(n) => n.report.as_ref(),
        NotifyAction::Success(n) => n.report.as_ref(),
        NotifyAction::Failure(n) => n.report.as_ref(),
        _ => None,
    };
    match report? {
        ReportLink::Written(at) => Some(at.console_url.as_str()),
        ReportLink::NotWritten(_) => None,
    }
}

/// Whether the rollback had been approved: a success always was; a failure when its progress
/// record's approval step is done.
fn approved(action: &NotifyAction) -> bool {
    match action {
        NotifyAction::Success(_) => true,
        NotifyAction::Failure(n) => n
            .progress
            .steps
            .iter()
            .any(|s| s.name == "approval" && s.status == StepStatus::Done),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(v: serde_json::Value) -> NotifyAction {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn milestones_follow_the_definition_stages() {
        let progress = |stage: &str| action(json!({"action": "progress", "stage": stage}));
        assert_eq!(
            Milestone::of(&progress("started, resolving what to roll back")),
            Some(Milestone::Started)
        );
        assert_eq!(
            Milestone::of(&progress("rejected")),
            Some(Milestone::Rejected)
        );
        assert_eq!(
            Milestone::of(&progress("approved, rolling back")),
            Some(Milestone::Approved)
        );
        assert_eq!(
            Milestone::of(&progress("rolled back, verifying")),
            Some(Milestone::Progress)
        );
        let failure = |approval: &str| {
            action(
                json!({"action": "failure", "error": {"Error": "Rollback.X", "Cause": ""},
                "progress": {"steps": [{"name": "approval", "status": approval}]}}),
            )
        };
        assert_eq!(Milestone::of(&failure("done")), Some(Milestone::Failed));
        assert!(approved(&failure("done")));
        assert!(!approved(&failure("not-started")));
        assert_eq!(
            Milestone::of(&action(
                json!({"action": "approval-request", "task_token": "t"})
            )),
            None
        );
        assert_eq!(Milestone::of(&action(json!({"action": "escalate"}))), None);
    }
}
