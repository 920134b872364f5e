//! `guard`: one rollback per service at a time. A stack's state machine may serve several
//! services (plans under a path), so "another rollback of this service" is "another running
//! execution of this state machine whose input names this service" (or names none, on a
//! stack with one plan).

use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, Utc};
use rollback_core::RollbackError;
use rollback_core::contract::plan::{GuardInput, GuardOutput, PlanAction};
use rollback_core::request::StartInput;
use rollback_core::step::StepInput;
use serde_json::Value;

/// ListExecutions pages read at most (1000 executions each): running rollbacks are few.
const MAX_PAGES: usize = 10;

#[derive(Debug, Clone)]
struct Running {
    name: String,
    arn: String,
    started_at: DateTime<Utc>,
}

/// What an earlier running execution means for this one.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// It will not act (its input is invalid or its trigger does not call for a rollback), or
    /// it rolls back another service.
    Ignorable,
    /// It handles the same alarm transition: this one is a duplicate delivery.
    Duplicate,
    Conflict,
}

/// `service_required`: the stack keeps a plan per service, so an execution whose input names
/// no service cannot act (validate refuses it).
pub async fn guard(
    sfn: &aws_sdk_sfn::Client,
    step: &StepInput<PlanAction>,
    input: &GuardInput,
    service_required: bool,
) -> Result<GuardOutput, RollbackError> {
    let me = step.execution.as_str();
    let running = list_running(sfn, &input.state_machine).await?;
    // Our own entry, when listed, has the same clock and precision as the others'.
    let my_start = running
        .iter()
        .find(|r| r.name == me)
        .map(|r| r.started_at)
        .unwrap_or(input.started_at);
    let mut earlier: Vec<&Running> = running
        .iter()
        .filter(|r| r.name != me && (r.started_at, r.name.as_str()) < (my_start, me))
        .collect();
    earlier.sort_by(|a, b| (a.started_at, &a.name).cmp(&(b.started_at, &b.name)));

    let mut conflict: Option<&Running> = None;
    for other in &earlier {
        match classify(sfn, step, input, other, service_required).await? {
            Verdict::Duplicate => {
                tracing::info!(execution = me, duplicate_of = %other.name, "duplicate alarm delivery; not acting");
                return Ok(GuardOutput {
                    proceed: false,
                    duplicate_of: Some(other.name.clone()),
                    running_checked: running.len() as u32,
                });
            }
            Verdict::Conflict => {
                conflict.get_or_insert(other);
            }
            Verdict::Ignorable => {}
        }
    }
    if let Some(other) = conflict {
        return Err(RollbackError::ConcurrentRollback(format!(
            "execution {} (started {}) is already rolling back {}; this execution ({me}) changed \
             nothing and stops. Let that one finish (or stop it: {}), then start again if still needed",
            other.name,
            other.started_at.to_rfc3339(),
            step.plan.service,
            other.arn
        )));
    }
    Ok(GuardOutput {
        proceed: true,
        duplicate_of: None,
        running_checked: running.len() as u32,
    })
}

async fn list_running(
    sfn: &aws_sdk_sfn::Client,
    state_machine: &str,
) -> Result<Vec<Running>, RollbackError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = sfn
            .list_executions()
            .state_machine_arn(state_machine)
            .status_filter(ExecutionStatus::Running)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("ListExecutions", e))?;
        for item in page.executions() {
            out.push(Running {
                name: item.name().to_owned(),
                arn: item.execution_arn().to_owned(),
                started_at: to_chrono(item.start_date()),
            });
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

async fn classify(
    sfn: &aws_sdk_sfn::Client,
    step: &StepInput<PlanAction>,
    input: &GuardInput,
    other: &Running,
    service_required: bool,
) -> Result<Verdict, RollbackError> {
    let described = sfn
        .describe_execution()
        .execution_arn(&other.arn)
        .send()
        .await
        .map_err(|e| RollbackError::from_sdk("DescribeExecution", e))?;
    if described.status() != &ExecutionStatus::Running {
        return Ok(Verdict::Ignorable);
    }
    // No input to read (too large to include): assume it is a real rollback.
    let Some(text) = described.input() else {
        return Ok(Verdict::Conflict);
    };
    Ok(verdict(step, input, text, service_required))
}

fn verdict(
    step: &StepInput<PlanAction>,
    input: &GuardInput,
    other_input: &str,
    service_required: bool,
) -> Verdict {
    let value: Value = match serde_json::from_str(other_input) {
        Ok(v) => v,
        Err(_) => return Verdict::Ignorable,
    };
    let Ok(StartInput { service, request }) = StartInput::parse(value) else {
        return Verdict::Ignorable;
    };
    match service {
        // Another service's rollback (or one validate refuses for naming a service that is
        // not this plan's).
        Some(service) if service != step.plan.service => return Verdict::Ignorable,
        // Plans per service: validate refuses an input that names none.
        None if service_required => return Verdict::Ignorable,
        _ => {}
    }
    if request.should_act(&step.plan.triggers).is_err() {
        return Verdict::Ignorable;
    }
    match (&input.dedup_key, request.dedup_execution_name()) {
        (Some(mine), Some(theirs)) if *mine == theirs => Verdict::Duplicate,
        _ => Verdict::Conflict,
    }
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollback_core::contract::plan::PlanAction;
    use serde_json::json;

    fn step(dedup: Option<&str>) -> (StepInput<PlanAction>, GuardInput) {
        let guard = GuardInput {
            state_machine: "arn:aws:states:us-east-1:123456789012:stateMachine:sm".into(),
            started_at: Utc::now(),
            dedup_key: dedup.map(str::to_owned),
        };
        let step = StepInput::parse(json!({
            "action": "guard",
            "state_machine": guard.state_machine,
            "started_at": guard.started_at,
            "plan": {"service": "svc", "images": [{"repository": "svc-app", "release_tag": "prod", "stable_tag": "stable"}]},
            "execution": "me"
        }))
        .unwrap();
        (step, guard)
    }

    fn alarm(prev: &str, state: &str, at: &str) -> String {
        json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
               "detail": {"alarmName": "svc-5xx",
                          "state": {"value": state, "timestamp": at},
                          "previousState": {"value": prev, "timestamp": "2024-05-01T11:00:00.000+0000"}}})
        .to_string()
    }

    #[test]
    fn verdicts() {
        let key = "alarm-svc-5xx-20240501T120000Z";
        let (s, g) = step(Some(key));
        assert_eq!(
            verdict(
                &s,
                &g,
                &alarm("OK", "ALARM", "2024-05-01T12:00:00.000+0000"),
                false
            ),
            Verdict::Duplicate
        );
        assert_eq!(
            verdict(
                &s,
                &g,
                &alarm("OK", "ALARM", "2024-05-01T12:05:00.000+0000"),
                false
            ),
            Verdict::Conflict
        );
        assert_eq!(
            verdict(
                &s,
                &g,
                &alarm("ALARM", "OK", "2024-05-01T12:00:00.000+0000"),
                false
            ),
            Verdict::Ignorable
        );
        assert_eq!(
            verdict(&s, &g, r#"{"scope": "nonsense"}"#, false),
            Verdict::Ignorable
        );
        assert_eq!(verdict(&s, &g, "{}", false), Verdict::Conflict);
        let (s, g) = step(None);
        assert_eq!(verdict(&s, &g, "{}", false), Verdict::Conflict);
    }

    #[test]
    fn only_rollbacks_of_the_same_service_conflict() {
        let (s, g) = step(None);
        let svc = r#"{"service": "svc"}"#;
        let other = r#"{"service": "payments"}"#;
        for required in [false, true] {
            assert_eq!(verdict(&s, &g, svc, required), Verdict::Conflict);
            assert_eq!(verdict(&s, &g, other, required), Verdict::Ignorable);
        }
        // No service named: the stack's only plan, or (plans per service) refused by validate.
        assert_eq!(verdict(&s, &g, "{}", false), Verdict::Conflict);
        assert_eq!(verdict(&s, &g, "{}", true), Verdict::Ignorable);
        // The EventBridge rule's input names the service of its stack.
        let event: Value =
            serde_json::from_str(&alarm("OK", "ALARM", "2024-05-01T12:00:00.000+0000")).unwrap();
        let wrapped = |service: &str| {
            rollback_core::request::eventbridge_input(service, event.clone()).to_string()
        };
        assert_eq!(verdict(&s, &g, &wrapped("svc"), true), Verdict::Conflict);
        assert_eq!(
            verdict(&s, &g, &wrapped("payments"), true),
            Verdict::Ignorable
        );
    }
}
