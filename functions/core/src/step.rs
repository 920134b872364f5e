//! The envelope every function receives: `{"action": …, "plan": …, "request": …, "execution": …, …}`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decision::ApprovalProof;
use crate::error::RollbackError;
use crate::ids::ExecutionId;
use crate::plan::Plan;
use crate::request::RollbackRequest;
use crate::validation;

/// `A` is the function's action enum, internally tagged by `action`
/// (`#[serde(tag = "action", rename_all = "kebab-case")]`), carrying the action's own fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepInput<A> {
    /// The action and its own fields (flattened: `action` is a key of the input).
    #[serde(flatten)]
    pub action: A,
    /// The plan the execution runs (as `validate` read it).
    pub plan: Plan,
    /// The validated request.
    #[serde(default)]
    pub request: RollbackRequest,
    /// `$$.Execution.Name`: names of created resources derive from it.
    pub execution: ExecutionId,
    /// The signed approval decision, for destructive actions (see [`crate::decision`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalProof>,
}

impl<A: DeserializeOwned> StepInput<A> {
    /// Reads and validates a function's input. Nothing runs unless this succeeds, and the
    /// error names the offending field.
    pub fn parse(payload: Value) -> Result<Self, RollbackError> {
        let input: StepInput<A> = validation::from_value(payload).map_err(|errors| {
            if errors.iter().any(|e| e.path.starts_with("plan")) {
                RollbackError::InvalidPlan(errors)
            } else {
                RollbackError::InvalidInput(errors.to_string())
            }
        })?;
        input
            .plan
            .validate()
            .map_err(|errors| RollbackError::InvalidPlan(errors.prefixed("plan")))?;
        input
            .request
            .validate()
            .map_err(|errors| RollbackError::InvalidRequest(errors.prefixed("request")))?;
        if input.execution.as_str().is_empty() || input.execution.as_str().len() > 80 {
            return Err(RollbackError::InvalidInput(
                "execution: give the execution name ($$.Execution.Name, 1-80 characters)".into(),
            ));
        }
        Ok(input)
    }
}

/// A function's output as the JSON it returns to Step Functions. The one way every handler
/// encodes its output: a failure here is our defect (`Rollback.Internal`), never the caller's
/// input (that is [`StepInput::parse`]'s `Rollback.InvalidInput`).
pub fn to_output<T: Serialize + ?Sized>(output: &T) -> Result<Value, RollbackError> {
    serde_json::to_value(output)
        .map_err(|e| RollbackError::Internal(format!("could not encode the output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(tag = "action", rename_all = "kebab-case")]
    enum Action {
        Create,
        Status { snapshot_id: String },
    }

    fn plan() -> Value {
        json!({"service": "svc", "databases": [{"kind": "rds-instance", "id": "db1"}]})
    }

    #[test]
    fn parses_action_with_fields() {
        let input: StepInput<Action> = StepInput::parse(json!({
            "action": "status", "snapshot_id": "s1", "plan": plan(), "execution": "e1"
        }))
        .unwrap();
        assert_eq!(
            input.action,
            Action::Status {
                snapshot_id: "s1".into()
            }
        );
        assert_eq!(input.request, RollbackRequest::default());
    }

    #[test]
    fn unknown_action_is_invalid_input_naming_the_choices() {
        let err = StepInput::<Action>::parse(
            json!({"action": "explode", "plan": plan(), "execution": "e1"}),
        )
        .unwrap_err();
        assert_eq!(err.error_name(), "Rollback.InvalidInput");
        assert!(err.to_string().contains("create"), "{err}");
    }

    #[test]
    fn bad_plan_names_the_plan_field() {
        let mut bad = plan();
        bad["databases"][0]["id"] = json!("1bad--id");
        let err =
            StepInput::<Action>::parse(json!({"action": "create", "plan": bad, "execution": "e1"}))
                .unwrap_err();
        assert_eq!(err.error_name(), "Rollback.InvalidPlan");
        assert!(err.to_string().contains("plan.databases[0].id"), "{err}");
    }
}
