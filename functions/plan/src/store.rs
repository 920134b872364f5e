//! The plans in SSM Parameter Store, read by `validate` at the start of every execution.

use aws_sdk_ssm::types::{Parameter, ParameterType};
use rollback_core::RollbackError;
use rollback_core::plan_store::{PARAMETER_ENV, PATH_ENV, PlanLocation, PlanSource};
use rollback_core::validation::ValidationErrors;

/// GetParametersByPath pages read at most when listing the plans under a path (for the error
/// that names them).
const MAX_LIST_PAGES: usize = 5;
/// Plans named in that error at most.
const MAX_LISTED: usize = 20;

/// The stack's plans: where they are (from the function's environment) and the client that
/// reads them.
#[derive(Clone, Debug)]
pub struct PlanStore {
    ssm: aws_sdk_ssm::Client,
    /// `Err`: the environment names no valid location; every `validate` reports it.
    location: Result<PlanLocation, String>,
}

/// A plan as read: its text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlan {
    pub text: String,
    pub source: PlanSource,
}

impl PlanStore {
    pub fn new(ssm: aws_sdk_ssm::Client, location: PlanLocation) -> PlanStore {
        PlanStore {
            ssm,
            location: Ok(location),
        }
    }

    /// The location from the Lambda environment ([`PARAMETER_ENV`] or [`PATH_ENV`]); a missing
    /// or invalid one is reported by each `validate`, naming the variable.
    pub fn from_env(config: &aws_config::SdkConfig) -> PlanStore {
        let var = |name: &str| std::env::var(name).ok();
        PlanStore {
            ssm: aws_sdk_ssm::Client::new(config),
            location: PlanLocation::from_env_values(
                var(PARAMETER_ENV).as_deref(),
                var(PATH_ENV).as_deref(),
            ),
        }
    }

    /// Whether an execution input must name its service (plans under a path).
    pub fn requires_service(&self) -> bool {
        self.location
            .as_ref()
            .is_ok_and(PlanLocation::requires_service)
    }

    /// Reads the plan of `service` (the execution input's `service`): the parameter's current
    /// value and version. Errors name the input field or the parameter, and the fix.
    pub async fn read(&self, service: Option<&str>) -> Result<StoredPlan, RollbackError> {
        let location = self
            .location
            .as_ref()
            .map_err(|e| invalid_plan(".", e.clone()))?;
        let Some(name) = location.parameter_for(service) else {
            return Err(invalid_request(
                "service",
                format!(
                    "this stack keeps one plan per service under {}; start the execution with \
                     {{\"service\": \"<name>\"}} naming one of: {}",
                    path_of(location),
                    self.listing(location).await
                ),
            ));
        };
        let parameter = self.get_parameter(location, service, &name).await?;
        check_type(&parameter, &name)?;
        Ok(StoredPlan {
            text: parameter.value.unwrap_or_default(),
            source: PlanSource {
                parameter: parameter.name.unwrap_or(name),
                version: parameter.version,
            },
        })
    }

    /// GetParameter `name`; a missing one is reported with the location's fix (`missing`).
    async fn get_parameter(
        &self,
        location: &PlanLocation,
        service: Option<&str>,
        name: &str,
    ) -> Result<Parameter, RollbackError> {
        let answer = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(false)
            .send()
            .await;
        let parameter = match answer {
            Ok(out) => out.parameter,
            Err(err) => {
                let not_found = err
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found());
                if !not_found {
                    // Names the parameter: an AccessDenied here means the stack's role is for
                    // another parameter (RollbackPlanParameter / RollbackPlanPath).
                    return Err(RollbackError::from_sdk(
                        &format!("GetParameter {name}"),
                        err,
                    ));
                }
                return Err(self.missing(location, service, name).await);
            }
        };
        parameter.ok_or_else(|| {
            RollbackError::Internal(format!("GetParameter {name} answered without a parameter"))
        })
    }

    /// No parameter `name`: under a path, the service named is wrong (the error lists the
    /// plans there); a single parameter is not stored yet.
    async fn missing(
        &self,
        location: &PlanLocation,
        service: Option<&str>,
        name: &str,
    ) -> RollbackError {
        match location {
            PlanLocation::Path(path) => invalid_request(
                "service",
                format!(
                    "no plan for service {:?}: there is no parameter {name}. Plans \
                     under {path}: {}. Name one of them, or store this service's \
                     plan: rollbackctl plan push PLAN.json --parameter {name}",
                    service.unwrap_or_default(),
                    self.listing(location).await
                ),
            ),
            PlanLocation::Parameter(_) => invalid_plan(
                ".",
                format!(
                    "no rollback plan stored: the SSM parameter {name} does not exist \
                     (the stack's RollbackPlanParameter). Store it: rollbackctl plan \
                     push PLAN.json --parameter {name}"
                ),
            ),
        }
    }

    /// The plan parameters that exist where `location` says, for an error message.
    async fn listing(&self, location: &PlanLocation) -> String {
        let path = match location {
            PlanLocation::Parameter(name) => return name.clone(),
            PlanLocation::Path(path) => path,
        };
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = self
                .ssm
                .get_parameters_by_path()
                .path(path)
                .recursive(false)
                .with_decryption(false)
                .set_next_token(token.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(err) => {
                    let err = RollbackError::from_sdk("GetParametersByPath", err);
                    return format!("(the plans under {path} could not be listed: {err})");
                }
            };
            names.extend(
                page.parameters()
                    .iter()
                    .filter_map(|p| p.name().map(str::to_owned)),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() && names.len() < MAX_LISTED => {
                    token = Some(next.to_owned())
                }
                _ => break,
            }
        }
        if names.is_empty() {
            return format!(
                "none (no parameter under {path} yet: rollbackctl plan push PLAN.json \
                 --parameter {path}/<service>)"
            );
        }
        names.sort();
        let more = names.len().saturating_sub(MAX_LISTED);
        names.truncate(MAX_LISTED);
        let mut out = names.join(", ");
        if more > 0 {
            out.push_str(&format!(" and {more} more"));
        }
        out
    }
}

/// A plan is stored as a String parameter (a SecureString or StringList is refused).
fn check_type(parameter: &Parameter, name: &str) -> Result<(), RollbackError> {
    match parameter.r#type() {
        Some(ParameterType::String) | None => Ok(()),
        Some(other) => Err(invalid_plan(
            ".",
            format!(
                "the SSM parameter {name} is a {}; store the plan as a String (it holds \
                 no secrets: SQL probes name their secret by ARN): rollbackctl plan push \
                 PLAN.json --parameter {name}",
                other.as_str()
            ),
        )),
    }
}

fn path_of(location: &PlanLocation) -> &str {
    match location {
        PlanLocation::Parameter(name) | PlanLocation::Path(name) => name,
    }
}

fn invalid_plan(path: &str, message: String) -> RollbackError {
    let mut errors = ValidationErrors::default();
    errors.push(path, message);
    RollbackError::InvalidPlan(errors)
}

fn invalid_request(path: &str, message: String) -> RollbackError {
    let mut errors = ValidationErrors::default();
    errors.push(path, message);
    RollbackError::InvalidRequest(errors)
}
