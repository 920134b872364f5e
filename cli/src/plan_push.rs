//! `rollbackctl plan push FILE --parameter NAME`: validates a plan file exactly as the plan
//! function validates the plan it reads (`rollback_core::Plan::from_json`), and stores it in
//! SSM Parameter Store, where the next execution reads it. Nothing is written unless the plan
//! is valid.

use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rollback_core::Plan;
use rollback_core::plan_store::{PlanSource, Tier, check_parameter_name};
use rollback_core::validation::ValidationErrors;

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The parameter and its new version.
    pub source: PlanSource,
    pub service: String,
    /// Bytes stored (the plan as compact JSON).
    pub bytes: usize,
    pub tier: Tier,
    /// When the parameter's last path segment is not the plan's service: fine for a stack's
    /// one plan (RollbackPlanParameter), wrong under a plan path (RollbackPlanPath), where the
    /// plan function reads `<path>/<service>`.
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Every problem, each with its JSON path; nothing was written.
    #[error("invalid plan: {0}")]
    InvalidPlan(ValidationErrors),
    #[error("--parameter: {0}")]
    InvalidParameter(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("PutParameter {parameter} failed: {code}: {message}")]
    Ssm {
        parameter: String,
        code: String,
        message: String,
    },
}

/// Validates `text` and, when valid, stores it (compact) as the String parameter `parameter`,
/// overwriting: the standard tier up to 4 KB, the advanced tier above (up to 8 KB).
pub async fn push(
    ssm: &aws_sdk_ssm::Client,
    text: &str,
    parameter: &str,
) -> Result<Pushed, PushError> {
    let plan = Plan::from_json(text).map_err(PushError::InvalidPlan)?;
    check_parameter_name(parameter).map_err(PushError::InvalidParameter)?;
    // from_json parsed it, so it is JSON; stored compact (and in its own key order).
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| PushError::InvalidPlan(one_error(format!("not valid JSON: {e}"))))?;
    let compact = value.to_string();
    let tier = Tier::for_size(compact.len()).map_err(PushError::TooLarge)?;
    let mut put = ssm
        .put_parameter()
        .name(parameter)
        .value(&compact)
        .r#type(ParameterType::String)
        .overwrite(true)
        .description(format!(
            "Rollback plan of {} (rollbackctl plan push)",
            plan.service
        ));
    // Standard is the default tier; an advanced parameter stays advanced.
    if tier == Tier::Advanced {
        put = put.tier(ParameterTier::Advanced);
    }
    let out = put.send().await.map_err(|err| {
        let (code, message) = match err.as_service_error() {
            Some(e) => (
                e.code().unwrap_or("Unknown").to_owned(),
                e.message().unwrap_or_default().to_owned(),
            ),
            None => ("RequestFailed".to_owned(), format!("{err:?}")),
        };
        PushError::Ssm {
            parameter: parameter.to_owned(),
            code,
            message,
        }
    })?;
    let last = parameter.rsplit('/').next().unwrap_or_default();
    let note = (last != plan.service).then(|| {
        format!(
            "the parameter's last segment is {last:?} but the plan is for {:?}: fine as a \
             stack's one plan (RollbackPlanParameter); under a plan path (RollbackPlanPath) the \
             plan function reads <path>/{}",
            plan.service, plan.service
        )
    });
    Ok(Pushed {
        source: PlanSource {
            parameter: parameter.to_owned(),
            version: out.version,
        },
        service: plan.service,
        bytes: compact.len(),
        tier,
        note,
    })
}

fn one_error(message: String) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    errors.push(".", message);
    errors
}
