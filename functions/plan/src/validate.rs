//! `validate`: the execution input and the deploy-time plan, checked before anything runs.

use rollback_core::contract::plan::{ScopeFlags, ValidateInput, ValidateOutput};
use rollback_core::validation::ValidationErrors;
use rollback_core::{Plan, RollbackError, RollbackRequest};

use crate::PLAN_ENV;
use crate::settle::{self, SettleWindow};
use crate::timing::timing;

/// Parses the deploy-time plan; an empty text means the deployment did not configure one.
pub fn load_plan(plan_text: &str) -> Result<Plan, RollbackError> {
    if plan_text.trim().is_empty() {
        let mut errors = ValidationErrors::default();
        errors.push(
            ".",
            format!(
                "no rollback plan configured: {PLAN_ENV} is empty; store the plan in the SSM \
                 parameter the stack's RollbackPlanParameter names and redeploy"
            ),
        );
        return Err(RollbackError::InvalidPlan(errors));
    }
    Plan::from_json(plan_text).map_err(RollbackError::InvalidPlan)
}

/// [`validate`], with the smoke settle window from the plan's alarms (DescribeAlarms; the
/// plan's maximum when they cannot be read). Alarms are read only for a rollback that acts.
pub async fn validate_with_alarms(
    cloudwatch: Option<&aws_sdk_cloudwatch::Client>,
    plan_text: &str,
    input: ValidateInput,
) -> Result<ValidateOutput, RollbackError> {
    let mut out = validate(plan_text, input)?;
    if out.act {
        let needs = settle::alarm_needs(cloudwatch, &out.plan).await;
        if let Err(why) = &needs {
            tracing::warn!(%why, "smoke settle window: the plan maximum");
        }
        out.timing = timing(&out.plan, &settle::window(&out.plan, needs));
    }
    Ok(out)
}

/// Checks the input and the plan. The smoke settle window here ignores the alarms' periods
/// (no AWS call): the plan's maximum when it lists alarms ([`validate_with_alarms`] reads them).
pub fn validate(plan_text: &str, input: ValidateInput) -> Result<ValidateOutput, RollbackError> {
    if input.action != "validate" {
        return Err(RollbackError::InvalidInput(format!(
            "action {:?} is not \"validate\"",
            input.action
        )));
    }
    if input.execution.as_str().is_empty() || input.execution.as_str().len() > 80 {
        return Err(RollbackError::InvalidInput(
            "execution: give the execution name ($$.Execution.Name, 1-80 characters)".into(),
        ));
    }
    let plan = load_plan(plan_text)?;
    let request = RollbackRequest::from_start_input(input.input)
        .map_err(RollbackError::InvalidRequest)?
        .with_trigger_policy(&plan.triggers);
    let decision = request.should_act(&plan.triggers);
    let scope = ScopeFlags {
        databases: request.scope.includes_database() && !plan.databases.is_empty(),
        images: !plan.images.is_empty(),
        cluster: plan.cluster.is_some(),
    };
    if let Err(reason) = &decision {
        tracing::info!(execution = %input.execution, %reason, "not acting on this trigger");
    }
    let unread: SettleWindow = settle::window(
        &plan,
        if plan.smoke.alarms.is_empty() {
            Ok(Vec::new())
        } else {
            Err("the alarms' periods were not read".into())
        },
    );
    Ok(ValidateOutput {
        timing: timing(&plan, &unread),
        dedup_key: request.dedup_execution_name(),
        plan,
        request,
        execution: input.execution,
        act: decision.is_ok(),
        skip_reason: decision.err(),
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const PLAN: &str = r#"{
        "service": "mint-replica",
        "databases": [{"kind": "rds-instance", "id": "mint-replica-db"}],
        "images": [{"repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable"}],
        "cluster": {"name": "mint-replica-eks", "namespace": "mint", "deployments": ["backend"]}
    }"#;

    fn input(start: Value) -> ValidateInput {
        ValidateInput {
            action: "validate".into(),
            input: start,
            execution: rollback_core::ExecutionId::new("exec-1"),
        }
    }

    fn alarm_event(previous: &str, state: &str) -> Value {
        json!({
            "version": "0", "id": "evt-1", "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:mint-replica-5xx"],
            "detail": {
                "alarmName": "mint-replica-5xx",
                "state": {"value": state, "reason": "5xx above 5%", "timestamp": "2024-05-01T12:00:00.000+0000"},
                "previousState": {"value": previous, "reason": "", "timestamp": "2024-05-01T11:00:00.000+0000"}
            }
        })
    }

    #[test]
    fn empty_manual_start_acts_on_the_app_only() {
        let out = validate(PLAN, input(json!({}))).unwrap();
        assert!(out.act);
        assert_eq!(out.skip_reason, None);
        assert_eq!(out.dedup_key, None);
        assert_eq!(
            out.scope,
            ScopeFlags {
                databases: false,
                images: true,
                cluster: true
            }
        );
        assert_eq!(out.plan.service, "mint-replica");
        assert_eq!(out.timing.approval_timeout_seconds, 3600);
    }

    #[test]
    fn database_scope_needs_databases_in_the_plan() {
        let out = validate(
            PLAN,
            input(json!({"scope": "app+database", "reason": "bad migration"})),
        )
        .unwrap();
        assert!(out.scope.databases);
        let no_dbs = r#"{"service": "svc", "images": [{"repository": "svc-app", "release_tag": "prod", "stable_tag": "stable"}]}"#;
        let out = validate(no_dbs, input(json!({"scope": "app+database"}))).unwrap();
        assert!(!out.scope.databases);
        assert!(!out.scope.cluster);
    }

    #[test]
    fn alarm_into_alarm_acts_with_a_dedup_key() {
        let out = validate(PLAN, input(alarm_event("OK", "ALARM"))).unwrap();
        assert!(out.act, "{:?}", out.skip_reason);
        assert_eq!(
            out.dedup_key.as_deref(),
            Some("alarm-mint-replica-5xx-20240501T120000Z")
        );
    }

    #[test]
    fn alarm_back_to_ok_or_from_insufficient_data_does_not_act() {
        let out = validate(PLAN, input(alarm_event("ALARM", "OK"))).unwrap();
        assert!(!out.act);
        assert!(out.skip_reason.unwrap().contains("not ALARM"));
        let out = validate(PLAN, input(alarm_event("INSUFFICIENT_DATA", "ALARM"))).unwrap();
        assert!(!out.act);
        assert!(
            out.skip_reason
                .unwrap()
                .contains("act_from_insufficient_data")
        );
    }

    #[test]
    fn missing_or_invalid_plan_is_invalid_plan_naming_the_fix() {
        let err = validate("", input(json!({}))).unwrap_err();
        assert_eq!(err.error_name(), "Rollback.InvalidPlan");
        assert!(err.to_string().contains(PLAN_ENV), "{err}");
        let err = validate(r#"{"service": "Bad Name"}"#, input(json!({}))).unwrap_err();
        assert_eq!(err.error_name(), "Rollback.InvalidPlan");
        assert!(err.to_string().contains("service"), "{err}");
    }

    #[test]
    fn bad_manual_input_is_invalid_request_naming_the_field() {
        let err = validate(PLAN, input(json!({"scope": "everything"}))).unwrap_err();
        assert_eq!(err.error_name(), "Rollback.InvalidRequest");
        assert!(err.to_string().contains("scope"), "{err}");
        let err = validate(PLAN, input(json!({"reasn": "typo"}))).unwrap_err();
        assert_eq!(err.error_name(), "Rollback.InvalidRequest");
    }

    #[test]
    fn drill_mode_is_carried_through() {
        let out = validate(PLAN, input(json!({"mode": "drill"}))).unwrap();
        assert!(out.request.mode.is_drill());
        assert!(out.act);
    }
}
