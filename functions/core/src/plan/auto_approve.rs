//! `approval.auto_approve_app_only`: rollbacks that only move the app back (image tags and
//! deployments: nothing lost, fully reversible) may go ahead without waiting for people when
//! one of the named alarms started them. Databases, infrastructure and mobile releases always
//! wait for people; the plan function decides per execution (`pre-approve`).

use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

/// Most alarms a policy may name.
pub const MAX_AUTO_APPROVE_ALARMS: usize = 20;
/// Longest grace period: the rollback is meant to be quick.
pub const MAX_GRACE_SECONDS: u32 = 900;

/// `approval.auto_approve_app_only`: which alarms may start an app-only rollback that goes
/// ahead without waiting for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoApprovePolicy {
    /// The CloudWatch alarms whose transition into ALARM may start a pre-approved app rollback
    /// (names, as in the EventBridge event).
    pub alarms: Vec<String>,
    /// How long the emailed "stop it now" link can still stop the rollback before its first
    /// change (default 60; 0: no grace, the email only tells).
    #[serde(default = "default_grace_seconds")]
    pub grace_seconds: u32,
}

fn default_grace_seconds() -> u32 {
    60
}

impl AutoApprovePolicy {
    /// Whether an alarm of this name may start a pre-approved rollback.
    pub fn covers(&self, alarm_name: &str) -> bool {
        self.alarms.iter().any(|a| a == alarm_name)
    }

    pub(super) fn validate(&self, errors: &mut ValidationErrors) {
        let path = "approval.auto_approve_app_only";
        if self.alarms.is_empty() || self.alarms.len() > MAX_AUTO_APPROVE_ALARMS {
            errors.push(
                format!("{path}.alarms"),
                format!(
                    "name 1-{MAX_AUTO_APPROVE_ALARMS} alarms whose transition into ALARM may \
                     roll the app back without waiting for people"
                ),
            );
        }
        for (i, alarm) in self.alarms.iter().enumerate() {
            // CloudWatch alarm names: 1-255 characters, no control characters.
            if alarm.trim().is_empty() || alarm.len() > 255 || alarm.chars().any(char::is_control) {
                errors.push(
                    format!("{path}.alarms[{i}]"),
                    "an alarm name (1-255 characters, no control characters)".to_owned(),
                );
            }
        }
        if self.grace_seconds > MAX_GRACE_SECONDS {
            errors.push(
                format!("{path}.grace_seconds"),
                format!(
                    "use 0-{MAX_GRACE_SECONDS}: how long the \"stop it now\" link works before \
                     the first change (0: no grace period)"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(policy: &AutoApprovePolicy) -> Vec<String> {
        let mut errors = ValidationErrors::default();
        policy.validate(&mut errors);
        errors.iter().map(|e| e.path.clone()).collect()
    }

    #[test]
    fn defaults_and_coverage() {
        let policy: AutoApprovePolicy =
            serde_json::from_str(r#"{"alarms": ["mint-replica-5xx"]}"#).unwrap();
        assert_eq!(policy.grace_seconds, 60);
        assert!(policy.covers("mint-replica-5xx"));
        assert!(!policy.covers("mint-replica-5xx-other"));
        assert!(errors_of(&policy).is_empty());
    }

    #[test]
    fn bad_fields_are_named() {
        let policy = AutoApprovePolicy {
            alarms: vec![String::new()],
            grace_seconds: 901,
        };
        assert_eq!(
            errors_of(&policy),
            [
                "approval.auto_approve_app_only.alarms[0]",
                "approval.auto_approve_app_only.grace_seconds"
            ]
        );
        let none = AutoApprovePolicy {
            alarms: vec![],
            grace_seconds: 0,
        };
        assert_eq!(errors_of(&none), ["approval.auto_approve_app_only.alarms"]);
        assert!(
            serde_json::from_str::<AutoApprovePolicy>(r#"{"alarms": ["a"], "grace": 5}"#).is_err()
        );
    }
}
