//! The plan's limits in the units the definition's Wait and Task states need.

use rollback_core::Plan;
use rollback_core::contract::plan::{ESCALATION_TAIL_GRACE_SECONDS, Timing};
use rollback_core::history_budget::smoke_max_retries;

use crate::settle::SettleWindow;

/// Smoke re-runs are one poll interval apart, as many as cover the settle window (the
/// definition's loop counts them against `smoke_max_retries`).
pub fn timing(plan: &Plan, settle: &SettleWindow) -> Timing {
    let approval_timeout_seconds = u64::from(plan.approval.timeout_minutes) * 60;
    let escalate_after_seconds = u64::from(plan.approval.escalate_after_minutes) * 60;
    let poll_interval_seconds = u64::from(plan.polling.interval_seconds.max(1));
    Timing {
        approval_timeout_seconds,
        escalate_after_seconds,
        escalation_tail_seconds: approval_timeout_seconds.saturating_sub(escalate_after_seconds)
            + ESCALATION_TAIL_GRACE_SECONDS,
        poll_interval_seconds,
        max_polls: u64::from(plan.polling.max_polls()),
        max_checks: u64::from(plan.polling.max_checks()),
        infra_max_polls: plan
            .infrastructure
            .as_ref()
            .map_or(0, |i| u64::from(i.max_build_polls(&plan.polling))),
        smoke_max_retries: smoke_max_retries(settle.seconds, poll_interval_seconds),
        smoke_retry_seconds: poll_interval_seconds,
        smoke_settle_seconds: settle.seconds,
        smoke_settle_reason: settle.reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_minutes_and_outlasts_the_approval_timeout() {
        let mut plan = Plan::from_json(r#"{"service": "svc", "images": [{"repository": "svc-app", "release_tag": "prod", "stable_tag": "stable"}]}"#).unwrap();
        plan.approval.timeout_minutes = 60;
        plan.approval.escalate_after_minutes = 15;
        plan.polling.interval_seconds = 20;
        plan.polling.max_wait_minutes = 30;
        let settle = crate::settle::window(
            &plan,
            Ok(vec![crate::settle::AlarmNeed {
                name: "svc-5xx".into(),
                period_seconds: 300,
                evaluation_periods: 3,
            }]),
        );
        let t = timing(&plan, &settle);
        assert_eq!(t.approval_timeout_seconds, 3600);
        assert_eq!(t.escalate_after_seconds, 900);
        // The escalation branch must still be waiting when the approval task times out.
        assert!(t.escalate_after_seconds + t.escalation_tail_seconds > t.approval_timeout_seconds);
        assert_eq!(t.max_polls, 90);
        // A check keeps looking for 240 s, then the definition waits 20 s: 1800 / 260.
        assert_eq!(t.max_checks, 6);
        assert_eq!(t.poll_interval_seconds, 20);
        // 300 s × 3 periods: re-runs 20 s apart for 15 minutes.
        assert_eq!(t.smoke_settle_seconds, 900);
        assert_eq!(t.smoke_max_retries, 45);
        assert!(t.smoke_max_retries * t.smoke_retry_seconds >= 900);
    }
}
