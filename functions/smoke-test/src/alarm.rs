//! Alarm checks: the plan's CloudWatch alarms must be back to `OK` (policy `ok`) or at least
//! out of `ALARM` (policy `not-alarm`). An alarm that does not exist is a configuration error.

use std::time::Instant;

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use rollback_core::RollbackError;
use rollback_core::contract::smoke_test::{CheckKind, CheckResult};
use rollback_core::plan::{AlarmPolicy, SmokeChecks};

use crate::{millis, one_line};

pub(crate) async fn check_all(
    client: &aws_sdk_cloudwatch::Client,
    smoke: &SmokeChecks,
) -> Result<Vec<CheckResult>, RollbackError> {
    if smoke.alarms.is_empty() {
        return Ok(Vec::new());
    }
    let start = Instant::now();
    // The plan allows at most 20 alarms; DescribeAlarms takes 100 names per call.
    let out = client
        .describe_alarms()
        .set_alarm_names(Some(smoke.alarms.clone()))
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .max_records(100)
        .send()
        .await
        .map_err(|e| RollbackError::from_sdk("DescribeAlarms", e))?;
    let took = millis(start.elapsed());
    let mut states: Vec<(String, Option<StateValue>, String, Option<String>)> = Vec::new();
    for a in out.metric_alarms() {
        states.push((
            a.alarm_name().unwrap_or_default().to_owned(),
            a.state_value().cloned(),
            a.state_reason().unwrap_or_default().to_owned(),
            a.state_updated_timestamp().map(|t| t.to_string()),
        ));
    }
    for a in out.composite_alarms() {
        states.push((
            a.alarm_name().unwrap_or_default().to_owned(),
            a.state_value().cloned(),
            a.state_reason().unwrap_or_default().to_owned(),
            a.state_updated_timestamp().map(|t| t.to_string()),
        ));
    }
    let mut results = Vec::new();
    for name in &smoke.alarms {
        let Some((_, state, reason, since)) = states.iter().find(|(n, ..)| n == name) else {
            return Err(RollbackError::SmokeConfig(format!(
                "alarm {:?} does not exist in this account and region; fix smoke.alarms in the plan",
                one_line(name, 120)
            )));
        };
        let state_name = state.as_ref().map(|s| s.as_str()).unwrap_or("UNKNOWN");
        let passed = matches!(
            (smoke.alarm_policy, state),
            (_, Some(StateValue::Ok)) | (AlarmPolicy::NotAlarm, Some(StateValue::InsufficientData))
        );
        let since = since
            .as_deref()
            .map(|t| format!(" since {t}"))
            .unwrap_or_default();
        let reason = if passed {
            format!("state {state_name}{since}")
        } else {
            let wanted = match smoke.alarm_policy {
                AlarmPolicy::Ok => "OK",
                AlarmPolicy::NotAlarm => "not ALARM",
            };
            format!(
                "state {state_name}{since}, wanted {wanted}: {}",
                one_line(reason, 120)
            )
        };
        results.push(CheckResult {
            kind: CheckKind::Alarm,
            name: name.clone(),
            passed,
            elapsed_ms: took,
            attempts: 1,
            reason,
        });
    }
    Ok(results)
}
