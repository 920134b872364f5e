//! The `plan` function: the first two states of every rollback execution.
//!
//! - [`validate()`]: reads the execution input and the deploy-time plan, decides whether to act,
//!   and returns the state the rest of the definition works on;
//! - [`guard()`]: one rollback per service at a time (one state machine per service).

mod guard;
pub mod settle;
mod timing;
mod validate;

use rollback_core::RollbackError;
use rollback_core::contract::plan::{FingerprintOutput, PlanAction, ValidateInput};
use rollback_core::step::StepInput;
use serde_json::Value;

pub use guard::guard;
pub use timing::timing;
pub use validate::{load_plan, validate, validate_with_alarms};

/// The environment variable holding the plan's JSON (set by the template from an SSM parameter).
pub const PLAN_ENV: &str = "ROLLBACK_PLAN";

/// The AWS clients the function calls.
#[derive(Clone, Debug)]
pub struct Clients {
    pub sfn: aws_sdk_sfn::Client,
    /// DescribeAlarms for the smoke settle window (`validate`). `None`: the periods are not
    /// read and the window is the plan's `smoke.max_settle_minutes` (tests that script every
    /// function).
    pub cloudwatch: Option<aws_sdk_cloudwatch::Client>,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            sfn: aws_sdk_sfn::Client::new(config),
            cloudwatch: Some(aws_sdk_cloudwatch::Client::new(config)),
        }
    }

    /// Step Functions at one endpoint (the drill's engine), CloudWatch at another (moto).
    pub fn with_cloudwatch(mut self, config: Option<&aws_config::SdkConfig>) -> Self {
        self.cloudwatch = config.map(aws_sdk_cloudwatch::Client::new);
        self
    }
}

/// Dispatches one invocation. `plan_text` is the deploy-time plan (the Lambda reads
/// [`PLAN_ENV`]; the local engine passes its plan file).
pub async fn handle(
    clients: &Clients,
    plan_text: &str,
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
            Ok(serde_json::to_value(
                validate_with_alarms(clients.cloudwatch.as_ref(), plan_text, input).await?,
            )?)
        }
        _ => {
            let step = StepInput::<PlanAction>::parse(input)?;
            match &step.action {
                PlanAction::Guard(guard_input) => Ok(serde_json::to_value(
                    guard(&clients.sfn, &step, guard_input).await?,
                )?),
                PlanAction::Fingerprint { resolved } => {
                    Ok(serde_json::to_value(FingerprintOutput {
                        fingerprint: rollback_core::fingerprint::fingerprint(resolved),
                    })?)
                }
            }
        }
    }
}
