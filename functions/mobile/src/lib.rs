//! The `mobile` Lambda: stops the bad mobile release in the app stores (`plan.mobile`,
//! issue 16). See `rollback_core::contract::mobile` for the actions.
//!
//! Neither store can roll a build back: Google Play halts the release (users who installed it
//! keep it; Play serves the previous completed release to new and eligible users), App Store
//! Connect pauses the phased release (anyone may still update by hand). The forced update is
//! the backend's minimum supported version, raised only when a safe build is live.
//!
//! Deployed as `MobileFunction`: invoked with `StepInput<MobileAction>` JSON, it answers the
//! action's output or a `Rollback.*` error. Tests: `cargo test -p rollback-mobile` (moto via
//! `make venv`; the local app stores run in-process).

mod appstore;
mod credentials;
mod halt;
mod http;
mod minimum;
mod play;
mod resolve;

use chrono::Utc;
use rollback_core::contract::mobile::MobileAction;
use rollback_core::decision::{self, DecisionVerifier, Needed};
use rollback_core::plan::MobileRef;
use rollback_core::step::to_output;
use rollback_core::{RollbackError, Scope, StepInput};
use serde_json::Value;

pub use credentials::{AppStoreKey, GOOGLE_TOKEN_URL, GoogleKey};
pub use halt::halt;
pub use minimum::raise_minimum;
pub use resolve::resolve;

/// Where the stores are. The real ones by default; a test or a drill points them at a local
/// server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Google's token endpoint; `None`: the key file's `token_uri` (else
    /// [`GOOGLE_TOKEN_URL`]).
    pub google_token: Option<String>,
    /// The Android Publisher API v3, up to `/androidpublisher/v3`.
    pub play: String,
    /// App Store Connect, up to (not including) `/v1`.
    pub app_store: String,
}

/// Env vars that override the stores' addresses (a drill against a local store server).
pub const GOOGLE_TOKEN_URL_ENV: &str = "ROLLBACK_GOOGLE_TOKEN_URL";
pub const PLAY_API_URL_ENV: &str = "ROLLBACK_PLAY_API_URL";
pub const APP_STORE_API_URL_ENV: &str = "ROLLBACK_APP_STORE_API_URL";

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            google_token: None,
            play: "https://androidpublisher.googleapis.com/androidpublisher/v3".to_owned(),
            app_store: "https://api.appstoreconnect.apple.com".to_owned(),
        }
    }
}

impl Endpoints {
    /// The defaults, with any of [`GOOGLE_TOKEN_URL_ENV`], [`PLAY_API_URL_ENV`] and
    /// [`APP_STORE_API_URL_ENV`] that is set.
    pub fn from_env() -> Endpoints {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let defaults = Endpoints::default();
        Endpoints {
            google_token: var(GOOGLE_TOKEN_URL_ENV),
            play: var(PLAY_API_URL_ENV).unwrap_or(defaults.play),
            app_store: var(APP_STORE_API_URL_ENV).unwrap_or(defaults.app_store),
        }
    }
}

/// The clients the function uses.
#[derive(Clone)]
pub struct Clients {
    /// The stores' HTTPS client (rustls).
    pub http: reqwest::Client,
    /// The stores' credentials.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The minimum supported version parameters.
    pub ssm: aws_sdk_ssm::Client,
    pub endpoints: Endpoints,
    /// Verifies the signed approval decision before `halt` and `raise-minimum`.
    pub approval: DecisionVerifier,
}

impl Clients {
    /// Clients from `config`; `decision_key` is the ARN of the approval decision key.
    pub fn new(config: &aws_config::SdkConfig, decision_key: &str, endpoints: Endpoints) -> Self {
        Clients {
            http: reqwest::Client::builder()
                .timeout(http::CALL_TIMEOUT)
                .build()
                .unwrap_or_default(),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            endpoints,
            approval: DecisionVerifier::new(aws_sdk_kms::Client::new(config), decision_key),
        }
    }
}

/// Entry point for every action: validates the envelope, then runs the action.
pub async fn handle(clients: &Clients, input: Value) -> Result<Value, RollbackError> {
    let given = input.get("mobile").cloned();
    let step = StepInput::<MobileAction>::parse(input)?;
    let mobile = section(&step)?;
    let drill = step.request.mode.is_drill();
    match &step.action {
        MobileAction::Resolve | MobileAction::Status => to_output(&resolve(clients, mobile).await?),
        MobileAction::Halt { mobile: approved } => {
            approve(clients, &step, given.as_ref()).await?;
            to_output(&halt(clients, mobile, approved, drill).await?)
        }
        MobileAction::RaiseMinimum { mobile: approved } => {
            approve(clients, &step, given.as_ref()).await?;
            to_output(&raise_minimum(clients, mobile, approved, drill).await?)
        }
    }
}

/// Live, `halt` and `raise-minimum` need a signed decision whose scope includes `mobile`, for
/// this very resolution (what the approver was shown).
async fn approve(
    clients: &Clients,
    step: &StepInput<MobileAction>,
    given: Option<&Value>,
) -> Result<(), RollbackError> {
    if step.request.mode.is_drill() {
        return Ok(());
    }
    let needed = Needed {
        scope: Scope::APP.and_mobile(),
        resolved: Some(("mobile", given)),
    };
    decision::require(&clients.approval, step, needed, Utc::now())
        .await
        .map(drop)
}

fn section<A>(step: &StepInput<A>) -> Result<&MobileRef, RollbackError> {
    step.plan.mobile.as_ref().ok_or_else(|| {
        RollbackError::InvalidInput(
            "plan.mobile: this plan has no mobile section, so there is no store release to \
             stop; add one (android: package_name, credentials_secret; ios: app_id, \
             credentials_secret) or do not call the mobile function"
                .into(),
        )
    })
}
