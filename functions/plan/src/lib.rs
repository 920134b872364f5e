//! The `plan` function: the first two states of every rollback execution.
//!
//! - [`validate()`]: reads the execution input and the plan (from SSM, [`PlanStore`], at the
//!   start of every execution), decides whether to act, and returns the state the rest of the
//!   definition works on: the plan, and the parameter and version it came from
//!   (`request.plan_source`), so every later step uses exactly that plan;
//! - [`guard()`]: one rollback per service at a time (executions of the same state machine
//!   naming another service do not count);
//! - [`preapprove::pre_approve`]: the plan's `approval.auto_approve_app_only` policy applied
//!   to one execution (a signed decision, or why people decide).
//!
//! Deployed as `PlanFunction`; inputs and outputs in `rollback_core::contract::plan`. Tests:
//! `cargo test -p rollback-plan` (moto via `make venv`).

mod guard;
pub mod preapprove;
pub mod settle;
mod store;
mod timing;
mod validate;

use rollback_core::RollbackError;
use rollback_core::contract::plan::{FingerprintOutput, PlanAction, ValidateInput};
use rollback_core::step::{StepInput, to_output};
use serde_json::Value;

pub use guard::guard;
pub use rollback_core::plan_store::{PARAMETER_ENV, PATH_ENV};
pub use store::{PlanStore, StoredPlan};
pub use timing::timing;
pub use validate::{load_plan, validate, validate_with_alarms};

/// Where `validate` gets the plan.
#[derive(Clone, Copy, Debug)]
pub enum Plans<'a> {
    /// Read from SSM at the start of each execution (the Lambda, the drill).
    Stored(&'a PlanStore),
    /// A plan text the caller holds (tests that script every function); the execution
    /// carries no `plan_source`.
    Given(&'a str),
}

/// The AWS clients the function calls.
#[derive(Clone, Debug)]
pub struct Clients {
    pub sfn: aws_sdk_sfn::Client,
    /// DescribeAlarms for the smoke settle window (`validate`). `None`: the periods are not
    /// read and the window is the plan's `smoke.max_settle_minutes` (tests that script every
    /// function).
    pub cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    /// Signs `pre-approve`'s decisions with the decision key. `None`: the policy never
    /// approves (people decide, and the reason says the key is missing).
    pub signer: Option<rollback_core::decision::DecisionSigner>,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            sfn: aws_sdk_sfn::Client::new(config),
            cloudwatch: Some(aws_sdk_cloudwatch::Client::new(config)),
            signer: None,
        }
    }

    /// Signs pre-approved decisions with `signer` (the decision key).
    pub fn with_signer(mut self, signer: rollback_core::decision::DecisionSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Step Functions at one endpoint (the drill's engine), CloudWatch at another (moto).
    pub fn with_cloudwatch(mut self, config: Option<&aws_config::SdkConfig>) -> Self {
        self.cloudwatch = config.map(aws_sdk_cloudwatch::Client::new);
        self
    }
}

/// Dispatches one invocation with a plan text the caller holds ([`Plans::Given`]: tests that
/// script every function).
pub async fn handle(
    clients: &Clients,
    plan_text: &str,
    input: Value,
) -> Result<Value, RollbackError> {
    handle_with(clients, Plans::Given(plan_text), input).await
}

/// Dispatches one invocation; `validate` reads the plan from `plans` (the Lambda:
/// [`Plans::Stored`]).
pub async fn handle_with(
    clients: &Clients,
    plans: Plans<'_>,
    input: Value,
) -> Result<Value, RollbackError> {
    let action = input
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match action {
        "validate" => {
            let input: ValidateInput = rollback_core::validation::from_value(input)
                .map_err(|e| RollbackError::InvalidInput(e.to_string()))?;
            to_output(&validate_with_alarms(clients.cloudwatch.as_ref(), plans, input).await?)
        }
        _ => {
            let step = StepInput::<PlanAction>::parse(input)?;
            match &step.action {
                PlanAction::Guard(guard_input) => {
                    let service_required = match plans {
                        Plans::Stored(store) => store.requires_service(),
                        Plans::Given(_) => false,
                    };
                    to_output(&guard(&clients.sfn, &step, guard_input, service_required).await?)
                }
                PlanAction::Fingerprint { resolved } => to_output(&FingerprintOutput {
                    fingerprint: rollback_core::fingerprint::fingerprint(resolved),
                }),
                PlanAction::PreApprove {
                    resolved,
                    fingerprint,
                } => to_output(
                    &preapprove::pre_approve(
                        clients.signer.as_ref(),
                        &step,
                        resolved,
                        fingerprint,
                        chrono::Utc::now(),
                    )
                    .await?,
                ),
            }
        }
    }
}
