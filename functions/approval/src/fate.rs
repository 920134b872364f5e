//! What became of a rollback whose approval task no longer waits. Step Functions answers a
//! decision on such a task with `TaskTimedOut`, `InvalidToken` or `TaskDoesNotExist` whether
//! someone decided already, the approval timed out, or the execution was stopped; the page
//! reads the execution (`DescribeExecution`) so it says which, instead of guessing
//! "someone already decided" for a link of a rollback that was stopped and started again.

use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, Utc};

/// Env: the state machine the links' executions belong to (its ARN). Without it the page
/// cannot name an execution's fate and says what the error code allows.
pub const STATE_MACHINE_ENV: &str = "ROLLBACK_STATE_MACHINE_ARN";

/// An execution's state when its task no longer waited for this link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionFate {
    /// Still running: the decision was taken (by someone else, or by the timeout path).
    Running,
    Succeeded(DateTime<Utc>),
    /// With the error name (`Rollback.Rejected`, …), never the cause (it can name resources).
    Failed(DateTime<Utc>, Option<String>),
    /// Stopped (by a person, the guard, or a restart after a crash).
    Stopped(DateTime<Utc>),
    TimedOut(DateTime<Utc>),
}

/// Response header of a page for a link whose task no longer waits: the execution's state in
/// one word ([`ExecutionFate::word`]), for programs that follow links (the drill) so they
/// need not read the page's prose.
pub const EXECUTION_STATE_HEADER: &str = "x-rollback-execution-state";

impl ExecutionFate {
    /// One word for [`EXECUTION_STATE_HEADER`]: `running` (the task waits on a newer link, or
    /// someone decided), `succeeded`, `failed`, `stopped`, `timed-out`.
    pub fn word(&self) -> &'static str {
        match self {
            ExecutionFate::Running => "running",
            ExecutionFate::Succeeded(_) => "succeeded",
            ExecutionFate::Failed(..) => "failed",
            ExecutionFate::Stopped(_) => "stopped",
            ExecutionFate::TimedOut(_) => "timed-out",
        }
    }
}

/// The execution's ARN from the state machine's and the execution's name (an ARN passes
/// through).
pub fn execution_arn(state_machine_arn: &str, execution: &str) -> Option<String> {
    if execution.starts_with("arn:") {
        return Some(execution.to_owned());
    }
    let (prefix, machine) = state_machine_arn.split_once(":stateMachine:")?;
    Some(format!("{prefix}:execution:{machine}:{execution}"))
}

/// Reads the execution; `None` when it cannot be read (the page then says less, and the
/// reason is logged).
pub async fn read(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    execution: &str,
) -> Option<ExecutionFate> {
    let arn = execution_arn(state_machine_arn, execution)?;
    let described = match sfn.describe_execution().execution_arn(&arn).send().await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(
                execution,
                error = %aws_sdk_sfn::error::DisplayErrorContext(&e),
                "could not read what became of the execution"
            );
            return None;
        }
    };
    let stopped = described
        .stop_date()
        .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()))
        .unwrap_or_else(Utc::now);
    Some(match described.status() {
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => ExecutionFate::Running,
        ExecutionStatus::Succeeded => ExecutionFate::Succeeded(stopped),
        ExecutionStatus::Aborted => ExecutionFate::Stopped(stopped),
        ExecutionStatus::TimedOut => ExecutionFate::TimedOut(stopped),
        _ => ExecutionFate::Failed(stopped, described.error().map(str::to_owned)),
    })
}

/// The page's explanation for a link whose task is gone (`code`: Step Functions' answer).
pub fn explain(execution: &str, fate: Option<&ExecutionFate>, code: &str) -> String {
    let at = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let nothing = "Nothing was changed by this click.";
    match fate {
        Some(ExecutionFate::Running) => format!(
            "This rollback ({execution}) is still running, but it no longer waits for this \
             link: the approval request was sent again (use the links in the newest email), \
             or someone already approved or rejected it, or the approval timed out and the \
             rollback went on without it. {nothing} Check your email or the execution for \
             what happened. ({code})"
        ),
        Some(ExecutionFate::Succeeded(t)) => format!(
            "This rollback ({execution}) finished at {}: it no longer waits for a decision. \
             {nothing} Its final notice says what was rolled back. ({code})",
            at(t)
        ),
        Some(ExecutionFate::Failed(t, error)) => format!(
            "This rollback ({execution}) ended at {}{}: it no longer waits for a decision. \
             {nothing} Its final notice says what was done and what to do next. ({code})",
            at(t),
            error
                .as_deref()
                .map(|e| format!(" with {e}"))
                .unwrap_or_default()
        ),
        Some(ExecutionFate::Stopped(t)) => format!(
            "This rollback ({execution}) was stopped at {}, so this link decides nothing any \
             more. {nothing} If the rollback was started again, a newer approval email \
             supersedes this one: use its links. ({code})",
            at(t)
        ),
        Some(ExecutionFate::TimedOut(t)) => format!(
            "This rollback ({execution}) ran out of time at {} and was ended by Step \
             Functions: it no longer waits for a decision. {nothing} ({code})",
            at(t)
        ),
        None => format!(
            "This rollback ({execution}) is no longer waiting for a decision: someone already \
             approved or rejected it, the approval timed out, or the rollback was stopped. \
             {nothing} Check your email or the execution for what happened. ({code})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_come_from_the_state_machine() {
        let machine = "arn:aws:states:eu-west-1:123456789012:stateMachine:mint-rollback";
        assert_eq!(
            execution_arn(machine, "alarm-42").as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:mint-rollback:alarm-42")
        );
        let full = "arn:aws:states:eu-west-1:123456789012:execution:mint-rollback:x";
        assert_eq!(execution_arn(machine, full).as_deref(), Some(full));
        assert_eq!(execution_arn("not-an-arn", "x"), None);
    }

    #[test]
    fn each_fate_says_what_happened() {
        let t = DateTime::parse_from_rfc3339("2026-11-27T08:21:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let stopped = explain("r-1", Some(&ExecutionFate::Stopped(t)), "TaskTimedOut");
        assert!(
            stopped.contains("was stopped at 2026-11-27 08:21 UTC"),
            "{stopped}"
        );
        assert!(
            stopped.contains("newer approval email supersedes"),
            "{stopped}"
        );
        assert!(!stopped.contains("someone already"), "{stopped}");
        let failed = explain(
            "r-1",
            Some(&ExecutionFate::Failed(t, Some("Rollback.Rejected".into()))),
            "TaskDoesNotExist",
        );
        assert!(failed.contains("ended at 2026-11-27 08:21 UTC with Rollback.Rejected"));
        let running = explain("r-1", Some(&ExecutionFate::Running), "InvalidToken");
        assert!(running.contains("still running"), "{running}");
        let done = explain("r-1", Some(&ExecutionFate::Succeeded(t)), "InvalidToken");
        assert!(done.contains("finished at"), "{done}");
        let unknown = explain("r-1", None, "TaskTimedOut");
        assert!(unknown.contains("was stopped") && unknown.contains("(TaskTimedOut)"));
        for page in [stopped, failed, running, done, unknown] {
            assert!(
                page.contains("Nothing was changed by this click."),
                "{page}"
            );
        }
    }
}
