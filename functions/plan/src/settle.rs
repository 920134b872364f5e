//! The smoke settle window: how long failing smoke tests are re-run after the rollback, so
//! the plan's alarms have time to return to OK.
//!
//! A metric alarm needs `Period × EvaluationPeriods` of good data after the service is healthy
//! before it can be OK again (CloudWatch evaluates the last `EvaluationPeriods` periods). The
//! window is the largest of those among `plan.smoke.alarms`, at least
//! [`SMOKE_BASE_SETTLE_SECONDS`], at most `smoke.max_settle_minutes`. When the periods cannot
//! be read (DescribeAlarms failed, an alarm is missing or composite) the window is the plan's
//! maximum, and the reason says why: a rollback is never blocked, nor reported failed early,
//! because CloudWatch could not be asked.

use aws_sdk_cloudwatch::types::AlarmType;
use rollback_core::Plan;
use rollback_core::contract::plan::SETTLE_REASON_MAX_CHARS;
use rollback_core::history_budget::{SMOKE_BASE_SETTLE_SECONDS, settle_seconds};
use rollback_core::resolved::human_duration;

/// The window and its one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleWindow {
    pub seconds: u64,
    pub reason: String,
}

/// One alarm's need, as read from DescribeAlarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmNeed {
    pub name: String,
    pub period_seconds: u64,
    pub evaluation_periods: u64,
}

impl AlarmNeed {
    pub fn seconds(&self) -> u64 {
        self.period_seconds * self.evaluation_periods
    }

    fn describe(&self) -> String {
        format!(
            "{}: {} s × {} evaluation period{}",
            self.name,
            self.period_seconds,
            self.evaluation_periods,
            if self.evaluation_periods == 1 {
                ""
            } else {
                "s"
            }
        )
    }
}

fn minutes(seconds: u64) -> String {
    human_duration(i64::try_from(seconds).unwrap_or(i64::MAX))
}

fn bounded(mut text: String) -> String {
    if text.chars().count() > SETTLE_REASON_MAX_CHARS {
        text = text.chars().take(SETTLE_REASON_MAX_CHARS - 1).collect();
        text.push('…');
    }
    text
}

/// The window from the alarms' needs (`Err`: why they are not known).
pub fn window(plan: &Plan, needs: Result<Vec<AlarmNeed>, String>) -> SettleWindow {
    let cap = u64::from(plan.smoke.max_settle_minutes) * 60;
    let needs = match needs {
        Ok(needs) => needs,
        Err(why) => {
            let seconds = settle_seconds(plan, None);
            return SettleWindow {
                seconds,
                reason: bounded(format!(
                    "waits up to {} (smoke.max_settle_minutes): {why}",
                    minutes(seconds)
                )),
            };
        }
    };
    let Some(longest) = needs.iter().max_by_key(|n| n.seconds()) else {
        let seconds = settle_seconds(plan, Some(SMOKE_BASE_SETTLE_SECONDS));
        return SettleWindow {
            seconds,
            reason: format!(
                "waits up to {} for the rollout to serve (no smoke alarms in the plan)",
                minutes(seconds)
            ),
        };
    };
    let seconds = settle_seconds(plan, Some(longest.seconds()));
    let reason = if longest.seconds() > cap {
        format!(
            "waits up to {} (smoke.max_settle_minutes), less than {} needs: {}",
            minutes(seconds),
            longest.name,
            longest
                .describe()
                .split_once(": ")
                .map(|x| x.1)
                .unwrap_or("")
        )
    } else if longest.seconds() < SMOKE_BASE_SETTLE_SECONDS {
        format!(
            "waits up to {} for the rollout to serve ({} needs less)",
            minutes(seconds),
            longest.describe()
        )
    } else {
        format!(
            "waits up to {} for {}",
            minutes(seconds),
            longest.describe()
        )
    };
    SettleWindow {
        seconds,
        reason: bounded(reason),
    }
}

/// Reads `Period × EvaluationPeriods` of every smoke alarm (`Err`: why the window cannot be
/// derived).
pub async fn alarm_needs(
    client: Option<&aws_sdk_cloudwatch::Client>,
    plan: &Plan,
) -> Result<Vec<AlarmNeed>, String> {
    let alarms = &plan.smoke.alarms;
    if alarms.is_empty() {
        return Ok(Vec::new());
    }
    let Some(client) = client else {
        return Err("the alarms' periods were not read (no CloudWatch client)".into());
    };
    // The plan allows at most 20 alarms; DescribeAlarms takes 100 names per call.
    let out = client
        .describe_alarms()
        .set_alarm_names(Some(alarms.clone()))
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .max_records(100)
        .send()
        .await
        .map_err(|e| {
            let e = rollback_core::RollbackError::from_sdk("DescribeAlarms", e);
            format!("the alarms' periods could not be read ({e})")
        })?;
    let mut needs = Vec::new();
    for name in alarms {
        if out
            .composite_alarms()
            .iter()
            .any(|a| a.alarm_name() == Some(name.as_str()))
        {
            return Err(format!(
                "{name} is a composite alarm, whose settle time depends on its children"
            ));
        }
        let Some(alarm) = out
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name.as_str()))
        else {
            return Err(format!(
                "alarm {name} does not exist in this account and region (smoke.alarms)"
            ));
        };
        // Metric-math alarms carry the period on each metric query.
        let period = alarm.period().map(i64::from).or_else(|| {
            alarm
                .metrics()
                .iter()
                .filter_map(|m| {
                    m.period()
                        .or_else(|| m.metric_stat().and_then(|s| s.period()))
                        .map(i64::from)
                })
                .max()
        });
        let (Some(period), Some(evaluations)) = (period, alarm.evaluation_periods()) else {
            return Err(format!(
                "{name} has no period or evaluation periods in DescribeAlarms"
            ));
        };
        needs.push(AlarmNeed {
            name: name.clone(),
            period_seconds: u64::try_from(period.max(1)).unwrap_or(1),
            evaluation_periods: u64::try_from(evaluations.max(1)).unwrap_or(1),
        });
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(alarms: &[&str]) -> Plan {
        let mut p = Plan::from_json(r#"{"service": "svc", "images": [{"repository": "svc-app", "release_tag": "prod", "stable_tag": "stable"}]}"#).unwrap();
        p.smoke.alarms = alarms.iter().map(|a| a.to_string()).collect();
        p
    }

    fn need(name: &str, period: u64, n: u64) -> AlarmNeed {
        AlarmNeed {
            name: name.into(),
            period_seconds: period,
            evaluation_periods: n,
        }
    }

    #[test]
    fn the_longest_alarm_sets_the_window_and_the_reason_names_it() {
        let p = plan(&["mint-replica-5xx", "latency"]);
        let w = window(
            &p,
            Ok(vec![
                need("latency", 60, 5),
                need("mint-replica-5xx", 300, 3),
            ]),
        );
        assert_eq!(w.seconds, 900);
        assert_eq!(
            w.reason,
            "waits up to 15 min for mint-replica-5xx: 300 s × 3 evaluation periods"
        );
    }

    #[test]
    fn the_plan_maximum_bounds_the_window_and_unknown_periods_use_it() {
        let p = plan(&["slow"]);
        let w = window(&p, Ok(vec![need("slow", 3600, 5)]));
        assert_eq!(w.seconds, 1800);
        assert!(
            w.reason.contains("smoke.max_settle_minutes"),
            "{}",
            w.reason
        );
        assert!(w.reason.contains("slow"), "{}", w.reason);
        let w = window(&p, Err("DescribeAlarms failed".into()));
        assert_eq!(w.seconds, 1800);
        assert!(w.reason.contains("DescribeAlarms failed"), "{}", w.reason);
        let w = window(&plan(&[]), Ok(vec![]));
        assert_eq!(w.seconds, SMOKE_BASE_SETTLE_SECONDS);
        let w = window(&p, Ok(vec![need("fast", 60, 1)]));
        assert_eq!(w.seconds, SMOKE_BASE_SETTLE_SECONDS);
        assert!(
            w.reason.contains("fast: 60 s × 1 evaluation period "),
            "{}",
            w.reason
        );
    }
}
