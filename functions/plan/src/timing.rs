//! The plan's limits in the units the definition's Wait and Task states need.

use rollback_core::Plan;
use rollback_core::contract::plan::{ESCALATION_TAIL_GRACE_SECONDS, Timing};

/// Smoke re-runs: the first waits one poll interval, each next one twice as long (the
/// definition doubles the delay with `States.MathAdd(d, d)`): 15 s → 4 re-runs within 225 s.
pub const SMOKE_MAX_RETRIES: u64 = 4;

pub fn timing(plan: &Plan) -> Timing {
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
        smoke_max_retries: SMOKE_MAX_RETRIES,
        smoke_retry_seconds: poll_interval_seconds,
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
        let t = timing(&plan);
        assert_eq!(t.approval_timeout_seconds, 3600);
        assert_eq!(t.escalate_after_seconds, 900);
        // The escalation branch must still be waiting when the approval task times out.
        assert!(t.escalate_after_seconds + t.escalation_tail_seconds > t.approval_timeout_seconds);
        assert_eq!(t.max_polls, 90);
        assert_eq!(t.poll_interval_seconds, 20);
    }
}
