//! `validate`: the execution input and the plan, checked before anything runs. The plan is
//! read here, once per execution (from SSM: [`crate::PlanStore`]), and travels in the
//! execution's state from here on, with its parameter and version in `request.plan_source`.

use rollback_core::contract::plan::{ScopeFlags, ValidateInput, ValidateOutput};
use rollback_core::plan_store::PlanSource;
use rollback_core::request::{RollbackRequest, StartInput, Trigger};
use rollback_core::validation::{FieldError, ValidationErrors};
use rollback_core::{ExecutionId, Plan, RollbackError};

use crate::Plans;
use crate::settle::{self, SettleWindow};
use crate::timing::timing;

/// Parses a plan text; an empty one is refused naming the fix.
pub fn load_plan(plan_text: &str) -> Result<Plan, RollbackError> {
    if plan_text.trim().is_empty() {
        let mut errors = ValidationErrors::default();
        errors.push(
            ".",
            "the rollback plan is empty; store the plan with rollbackctl plan push PLAN.json \
             --parameter NAME (the stack's RollbackPlanParameter, or RollbackPlanPath/<service>)",
        );
        return Err(RollbackError::InvalidPlan(errors));
    }
    Plan::from_json(plan_text).map_err(RollbackError::InvalidPlan)
}

/// Reads the plan (`plans`), then [`validate`]s with the smoke settle window from the plan's
/// alarms (DescribeAlarms; the plan's maximum when they cannot be read). Alarms are read only
/// for a rollback that acts.
pub async fn validate_with_alarms(
    cloudwatch: Option<&aws_sdk_cloudwatch::Client>,
    plans: Plans<'_>,
    input: ValidateInput,
) -> Result<ValidateOutput, RollbackError> {
    check_envelope(&input)?;
    let start = StartInput::parse(input.input).map_err(RollbackError::InvalidRequest)?;
    let mut out = match plans {
        Plans::Given(text) => decide(text, None, false, start, input.execution)?,
        Plans::Stored(store) => {
            let stored = store.read(start.service.as_deref()).await?;
            tracing::info!(execution = %input.execution, plan = %stored.source, "read the plan");
            decide(
                &stored.text,
                Some(stored.source),
                store.requires_service(),
                start,
                input.execution,
            )?
        }
    };
    if out.act {
        let needs = settle::alarm_needs(cloudwatch, &out.plan).await;
        if let Err(why) = &needs {
            tracing::warn!(%why, "smoke settle window: the plan maximum");
        }
        out.timing = timing(&out.plan, &settle::window(&out.plan, needs));
    }
    Ok(out)
}

/// Checks the input and a given plan text. The smoke settle window here ignores the alarms'
/// periods (no AWS call): the plan's maximum when it lists alarms ([`validate_with_alarms`]
/// reads them).
pub fn validate(plan_text: &str, input: ValidateInput) -> Result<ValidateOutput, RollbackError> {
    check_envelope(&input)?;
    let start = StartInput::parse(input.input).map_err(RollbackError::InvalidRequest)?;
    decide(plan_text, None, false, start, input.execution)
}

fn check_envelope(input: &ValidateInput) -> Result<(), RollbackError> {
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
    Ok(())
}

/// The plan read (from `source`, when it came from SSM) against the start input. `per_service`:
/// the plan was read from `<path>/<service>` for the service the input named.
fn decide(
    plan_text: &str,
    source: Option<PlanSource>,
    per_service: bool,
    start: StartInput,
    execution: ExecutionId,
) -> Result<ValidateOutput, RollbackError> {
    let plan = load_plan(plan_text).map_err(|err| match (err, &source) {
        (RollbackError::InvalidPlan(mut errors), Some(source)) => {
            errors.0.insert(
                0,
                FieldError {
                    path: ".".into(),
                    message: format!(
                        "the plan in SSM parameter {source} is invalid; fix the file and push \
                         it again: rollbackctl plan push PLAN.json --parameter {}",
                        source.parameter
                    ),
                },
            );
            RollbackError::InvalidPlan(errors)
        }
        (err, _) => err,
    })?;
    if let Some(service) = &start.service
        && *service != plan.service
    {
        let from = source
            .as_ref()
            .map(|s| format!("the plan in {s}"))
            .unwrap_or_else(|| "this stack's plan".to_owned());
        let mut errors = ValidationErrors::default();
        return Err(if per_service {
            errors.push(
                "service",
                format!(
                    "{from} is for service {:?}, not {service:?}: each service's plan belongs \
                     under the plan path with its own name (rollbackctl plan push PLAN.json \
                     --parameter <path>/<plan's service>)",
                    plan.service
                ),
            );
            RollbackError::InvalidPlan(errors)
        } else {
            errors.push(
                "service",
                format!(
                    "{service:?} is not served here: {from} is for service {:?}; start with \
                     {{\"service\": {:?}}} or leave service out",
                    plan.service, plan.service
                ),
            );
            RollbackError::InvalidRequest(errors)
        });
    }
    let mut request = start.request.with_trigger_policy(&plan.triggers);
    starter_is_named(&plan, &request)?;
    request.plan_source = source;
    let decision = request.should_act(&plan.triggers);
    let scope = ScopeFlags {
        databases: request.scope.includes_database() && !plan.databases.is_empty(),
        images: !plan.images.is_empty(),
        cluster: plan.cluster.is_some(),
        infrastructure: plan.infrastructure.is_some(),
        mobile: plan.mobile.is_some(),
    };
    if let Err(reason) = &decision {
        tracing::info!(%execution, %reason, "not acting on this trigger");
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
        execution,
        act: decision.is_ok(),
        skip_reason: decision.err(),
        scope,
    })
}

/// When the starter may not approve alone, a manual start must say who starts it (as the
/// email address they approve with), or nobody could tell their approval from another's.
fn starter_is_named(plan: &Plan, request: &RollbackRequest) -> Result<(), RollbackError> {
    if plan.approval.starter_may_approve_alone {
        return Ok(());
    }
    let Trigger::Manual { requested_by } = &request.trigger else {
        return Ok(());
    };
    if requested_by
        .as_deref()
        .is_some_and(|by| rollback_core::approval_link::is_email(by.trim()))
    {
        return Ok(());
    }
    let mut errors = ValidationErrors::default();
    errors.push(
        "requested_by",
        "the plan sets approval.starter_may_approve_alone to false, so a manual start must \
         name who starts it by the email address they approve with: add \
         \"requested_by\": \"you@example.com\" to the execution input",
    );
    Err(RollbackError::InvalidRequest(errors))
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
                cluster: true,
                infrastructure: false,
                mobile: false,
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
        assert!(err.to_string().contains("rollbackctl plan push"), "{err}");
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
    fn a_starter_who_may_not_approve_alone_must_be_named() {
        let plan = r#"{
            "service": "mint-replica",
            "images": [{"repository": "mint-replica-backend", "release_tag": "prod", "stable_tag": "stable"}],
            "approval": {"starter_may_approve_alone": false}
        }"#;
        for unnamed in [json!({}), json!({"requested_by": "Jane on call"})] {
            let err = validate(plan, input(unnamed)).unwrap_err();
            assert_eq!(err.error_name(), "Rollback.InvalidRequest");
            let text = err.to_string();
            assert!(text.contains("requested_by"), "{text}");
            assert!(text.contains("starter_may_approve_alone"), "{text}");
        }
        let out = validate(plan, input(json!({"requested_by": "jane@example.com"}))).unwrap();
        assert!(out.act);
        // Alarms start nothing a person could approve alone.
        assert!(
            validate(plan, input(alarm_event("OK", "ALARM")))
                .unwrap()
                .act
        );
        // The default lets the starter approve, named or not.
        assert!(validate(PLAN, input(json!({}))).unwrap().act);
    }

    #[test]
    fn the_input_may_name_the_plans_service_and_no_other() {
        let out = validate(PLAN, input(json!({"service": "mint-replica"}))).unwrap();
        assert!(out.act);
        assert_eq!(out.request.plan_source, None);
        let err = validate(PLAN, input(json!({"service": "payments"}))).unwrap_err();
        assert_eq!(err.error_name(), "Rollback.InvalidRequest");
        let text = err.to_string();
        assert!(
            text.contains("service: \"payments\" is not served here"),
            "{text}"
        );
        assert!(text.contains("\"mint-replica\""), "{text}");
    }

    #[test]
    fn drill_mode_is_carried_through() {
        let out = validate(PLAN, input(json!({"mode": "drill"}))).unwrap();
        assert!(out.request.mode.is_drill());
        assert!(out.act);
    }
}
