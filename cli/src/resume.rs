//! `rollbackctl resume`: scale the deployments a rollback execution paused back to the replica
//! counts `pause` recorded, with the real `deploy-undo` function code (its `resume` action,
//! idempotent: a deployment already resumed is left alone).
//!
//! The plan and request are the ones the execution ran with: the output of its "Validate
//! request" state in the execution history. Refused while the execution is still running,
//! since the rollback itself scales the deployments (unless forced).

use anyhow::{Result, anyhow, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use rollback_core::resolved::DeploymentResolution;
use rollback_core::{Plan, RollbackError};
use serde_json::{Value, json};

use crate::history::History;

/// The state whose output carries the plan and request the execution ran with.
pub const VALIDATE_STATE: &str = "Validate request";
/// The state that scales the deployments to zero.
pub const PAUSE_STATE: &str = "Pause writes";
/// The state whose output carries resolve's replica counts (the fallback when a pause record
/// is gone).
pub const RESOLVE_STATE: &str = "Find previous revisions";

/// What `resume` did for one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeReport {
    /// The execution name (`$$.Execution.Name`, the pause annotation's value).
    pub execution: String,
    /// The execution's status when resume ran (`SUCCEEDED`, `FAILED`, …).
    pub status: String,
    /// The execution ran as a drill: its pause was a server-side dry run.
    pub drill: bool,
    /// The execution entered its pause state (otherwise it scaled nothing to zero).
    pub paused: bool,
    pub deployments: Vec<DeploymentResume>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentResume {
    pub name: String,
    pub namespace: String,
    pub outcome: ResumeOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResumeOutcome {
    /// Scaled from `before` to `after`, the count recorded when it was paused.
    Resumed {
        before: i32,
        after: i32,
        message: String,
    },
    /// Not paused by this execution and not at zero (already resumed, or never paused).
    NothingToDo { replicas: i32, message: String },
    /// Still at zero replicas, or the function failed for it: a person must act.
    NotResumed { reason: String },
}

impl DeploymentResume {
    pub fn resumed_or_running(&self) -> bool {
        !matches!(self.outcome, ResumeOutcome::NotResumed { .. })
    }

    /// One line for the operator: name, replicas before → after, or why not.
    pub fn line(&self) -> String {
        let name = format!("{}/{}", self.namespace, self.name);
        match &self.outcome {
            ResumeOutcome::Resumed {
                before,
                after,
                message,
            } => format!("{name}: {before} → {after} replicas ({message})"),
            ResumeOutcome::NothingToDo { replicas, message } => {
                format!("{name}: {replicas} → {replicas} replicas, unchanged ({message})")
            }
            ResumeOutcome::NotResumed { reason } => format!("{name}: NOT resumed: {reason}"),
        }
    }
}

impl ResumeReport {
    /// 0: every deployment is resumed (or was running); 1: some deployment was not resumed.
    pub fn exit_code(&self) -> u8 {
        if self
            .deployments
            .iter()
            .all(DeploymentResume::resumed_or_running)
        {
            0
        } else {
            1
        }
    }

    /// What `rollbackctl resume` prints: a header, one line per deployment, a verdict.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "execution {} ({}){}",
            self.execution,
            self.status,
            if self.drill {
                ": a drill, its pause was a dry run and changed nothing"
            } else {
                ""
            }
        )];
        if !self.paused {
            lines.push(format!(
                "  it never entered '{PAUSE_STATE}': it scaled nothing to zero, so there is nothing to resume"
            ));
            return lines;
        }
        lines.extend(self.deployments.iter().map(|d| format!("  {}", d.line())));
        let resumed = self
            .deployments
            .iter()
            .filter(|d| matches!(d.outcome, ResumeOutcome::Resumed { .. }))
            .count();
        let failed = self
            .deployments
            .iter()
            .filter(|d| !d.resumed_or_running())
            .count();
        lines.push(if failed == 0 {
            format!(
                "resumed {resumed} of {} deployment(s); the others were already running. Running it again changes nothing.",
                self.deployments.len()
            )
        } else {
            format!(
                "{failed} deployment(s) NOT resumed: run the command shown for each, or fix the cause and run `rollbackctl resume` again (it is safe to repeat)"
            )
        });
        lines
    }
}

/// Checks the ARN's shape before asking the endpoint, so a pasted state machine ARN or an
/// execution name gets a precise answer.
pub fn check_execution_arn(arn: &str) -> Result<()> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 8
        && parts[0] == "arn"
        && parts[2] == "states"
        && parts[5] == "execution"
        && !parts[7].is_empty()
    {
        return Ok(());
    }
    if parts.len() >= 6 && parts[0] == "arn" && parts[5] == "stateMachine" {
        bail!(
            "{arn} is a state machine ARN; give the execution's ARN \
             (arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME): `aws stepfunctions \
             list-executions --state-machine-arn {arn}` lists them"
        );
    }
    bail!(
        "{arn:?} is not an execution ARN; give arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME \
         (`rollbackctl start` prints it; `aws stepfunctions list-executions` lists them)"
    )
}

/// Refuses to resume under a running execution (it would race the rollback's own pause,
/// undo and resume) unless forced.
pub fn check_not_running(
    execution_arn: &str,
    status: &ExecutionStatus,
    last_state: Option<&str>,
    force: bool,
) -> Result<()> {
    if *status == ExecutionStatus::Running && !force {
        bail!(
            "execution {execution_arn} is still RUNNING (last state entered: {}); resuming now \
             would race the rollback, which scales the deployments itself. Wait for it to end \
             (`rollbackctl status {execution_arn}`), or stop it (`aws stepfunctions stop-execution \
             --execution-arn {execution_arn}`) and run resume again; --force resumes anyway",
            last_state.unwrap_or("(none)")
        );
    }
    Ok(())
}

/// What the execution ran with, read from its history.
#[derive(Debug, Clone)]
pub struct ExecutionInputs {
    pub plan: Value,
    pub request: Value,
    /// resolve's view of the deployments (replica counts), when the execution got that far.
    pub resolved: Vec<DeploymentResolution>,
    pub paused: bool,
    pub last_state: Option<String>,
}

/// Finds the plan and request in the "Validate request" state's output.
pub fn inputs_from_history(execution_arn: &str, history: &History) -> Result<ExecutionInputs> {
    if history.events.is_empty() {
        bail!(
            "execution {execution_arn} has no history events; check the ARN and --endpoint-url \
             (the history is kept 90 days after the execution ends)"
        );
    }
    let exited = |state: &str| {
        history
            .events
            .iter()
            .rev()
            .find(|e| e.kind.ends_with("StateExited") && e.detail_str("name") == Some(state))
            .and_then(|e| e.detail_json("output"))
    };
    let output = exited(VALIDATE_STATE).ok_or_else(|| {
        anyhow!(
            "execution {execution_arn} never completed its '{VALIDATE_STATE}' state, so its \
             history holds no plan (the request or plan was invalid, or the execution ended \
             before); nothing was paused by it. `rollbackctl status {execution_arn}` shows why"
        )
    })?;
    let object = |key: &str| {
        output
            .get(key)
            .filter(|v| v.is_object())
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "the output of '{VALIDATE_STATE}' in execution {execution_arn} has no `{key}` \
                     object; is this a rollback execution of statemachine/rollback.asl.json?"
                )
            })
    };
    let plan = object("plan")?;
    let request = object("request")?;
    let resolved = exited(RESOLVE_STATE)
        .and_then(|o| o.pointer("/found/undo/output/deployments").cloned())
        .and_then(|d| serde_json::from_value(d).ok())
        .unwrap_or_default();
    let paused = history
        .events
        .iter()
        .any(|e| e.kind.ends_with("StateEntered") && e.detail_str("name") == Some(PAUSE_STATE));
    let last_state = history
        .events
        .iter()
        .rev()
        .find(|e| e.kind.ends_with("StateEntered"))
        .and_then(|e| e.detail_str("name").map(str::to_owned));
    Ok(ExecutionInputs {
        plan,
        request,
        resolved,
        paused,
        last_state,
    })
}

/// Scales every deployment the execution paused back to its recorded count, with the
/// deploy-undo function's `resume` action (one call per deployment, so one that fails does
/// not stop the others). Safe to repeat. `Err` for what stops it before any deployment is
/// touched (bad ARN, no history, no plan, execution still running without `force`).
pub async fn resume(
    sfn: &aws_sdk_sfn::Client,
    clients: &rollback_deploy_undo::Clients,
    execution_arn: &str,
    force: bool,
) -> Result<ResumeReport> {
    check_execution_arn(execution_arn)?;
    let described = describe(sfn, execution_arn).await?;
    let execution = described.name.clone().unwrap_or_else(|| {
        execution_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    let events = crate::ops::history(sfn, execution_arn).await?;
    let history = History::from_sdk(&events);
    let inputs = inputs_from_history(execution_arn, &history)?;
    check_not_running(
        execution_arn,
        &described.status,
        inputs.last_state.as_deref(),
        force,
    )?;
    let plan = Plan::from_value(inputs.plan.clone()).map_err(|errors| {
        anyhow!(
            "the plan in execution {execution_arn}'s history does not validate with this \
             rollbackctl ({errors}); use the rollbackctl built from the same version as the \
             functions"
        )
    })?;
    let cluster = plan.cluster.as_ref().ok_or_else(|| {
        anyhow!(
            "the plan of execution {execution_arn} has no `cluster`: it paused no deployments, \
             there is nothing to resume"
        )
    })?;
    let drill = inputs
        .request
        .get("mode")
        .and_then(Value::as_str)
        .is_some_and(|m| m == "drill");
    let mut report = ResumeReport {
        execution: execution.clone(),
        status: described.status.as_str().to_owned(),
        drill,
        paused: inputs.paused,
        deployments: Vec::new(),
    };
    if !inputs.paused {
        return Ok(report);
    }
    for name in &cluster.deployments {
        let outcome = resume_one(clients, &inputs, &execution, name, &cluster.namespace).await;
        report.deployments.push(DeploymentResume {
            name: name.clone(),
            namespace: cluster.namespace.clone(),
            outcome,
        });
    }
    Ok(report)
}

/// DescribeExecution, its errors told in the operator's terms.
async fn describe(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput> {
    sfn.describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_execution_does_not_exist() => anyhow!(
                "there is no execution {execution_arn} at this endpoint; check the ARN, the \
                 region (AWS_REGION) and --endpoint-url"
            ),
            _ => anyhow!(rollback_core::RollbackError::from_sdk(
                "DescribeExecution",
                e
            ))
            .context(
                "could not ask the Step Functions endpoint about the execution; check \
                 --endpoint-url, AWS_REGION and the credentials",
            ),
        })
}

/// One deployment's `resume` call: the plan narrowed to it, with the execution's resolution
/// of it as the fallback for its recorded replica count.
async fn resume_one(
    clients: &rollback_deploy_undo::Clients,
    inputs: &ExecutionInputs,
    execution: &str,
    name: &str,
    namespace: &str,
) -> ResumeOutcome {
    let mut one = inputs.plan.clone();
    one["cluster"]["deployments"] = json!([name]);
    let fallback: Vec<&DeploymentResolution> =
        inputs.resolved.iter().filter(|r| r.name == name).collect();
    let payload = json!({
        "action": "resume",
        "plan": one,
        "request": inputs.request,
        "execution": execution,
        "deployments": fallback,
    });
    match rollback_deploy_undo::handle_operator(clients, payload).await {
        Ok(output) => classify(name, namespace, execution, output),
        Err(e) => not_resumed(name, namespace, &failure_reason(&e)),
    }
}

fn failure_reason(e: &RollbackError) -> String {
    format!("{}: {e}", e.error_name())
}

fn not_resumed(name: &str, namespace: &str, why: &str) -> ResumeOutcome {
    ResumeOutcome::NotResumed {
        reason: format!(
            "{why}; once the cause is fixed run `rollbackctl resume` again, or scale it by hand: \
             kubectl -n {namespace} scale deployment/{name} --replicas=<its count before the rollback> \
             (the count is in its {} annotation while it is paused)",
            rollback_core::contract::deploy_undo::PAUSED_REPLICAS
        ),
    }
}

fn classify(name: &str, namespace: &str, execution: &str, output: Value) -> ResumeOutcome {
    let parsed: Result<rollback_core::contract::deploy_undo::ScaleOutput, _> =
        serde_json::from_value(output);
    let Some(result) = parsed
        .ok()
        .and_then(|o| o.deployments.into_iter().find(|d| d.name == name))
    else {
        return not_resumed(name, namespace, "deploy-undo returned no result for it");
    };
    if result.changed {
        ResumeOutcome::Resumed {
            before: result.replicas_before,
            after: result.replicas_after,
            message: result.message,
        }
    } else if result.replicas_after > 0 {
        ResumeOutcome::NothingToDo {
            replicas: result.replicas_after,
            message: result.message,
        }
    } else {
        not_resumed(
            name,
            namespace,
            &format!(
                "it is at 0 replicas with no pause record from execution {execution} and no \
                 replica count from its resolve step ({})",
                result.message
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_checked_before_the_endpoint_is_asked() {
        check_execution_arn("arn:aws:states:eu-west-1:123456789012:execution:rb:exec-1").unwrap();
        let e = check_execution_arn("arn:aws:states:eu-west-1:123456789012:stateMachine:rb")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("state machine ARN") && e.contains("list-executions"),
            "{e}"
        );
        let e = check_execution_arn("exec-1").unwrap_err().to_string();
        assert!(e.contains("not an execution ARN"), "{e}");
    }

    #[test]
    fn a_running_execution_is_refused_unless_forced() {
        let arn = "arn:aws:states:eu-west-1:123456789012:execution:rb:exec-1";
        let e = check_not_running(
            arn,
            &ExecutionStatus::Running,
            Some("Wait for restores"),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("still RUNNING") && e.contains("--force") && e.contains("Wait for restores"),
            "{e}"
        );
        check_not_running(arn, &ExecutionStatus::Running, None, true).unwrap();
        check_not_running(arn, &ExecutionStatus::Failed, None, false).unwrap();
        check_not_running(arn, &ExecutionStatus::Succeeded, None, false).unwrap();
    }

    #[test]
    fn a_history_without_the_validate_output_names_what_is_missing() {
        let arn = "arn:aws:states:eu-west-1:123456789012:execution:rb:exec-1";
        let e = inputs_from_history(arn, &History::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no history events"), "{e}");
        let history: History = serde_json::from_value(json!({"events": [
            {"id": 1, "type": "ExecutionStarted", "timestamp": 0,
             "executionStartedEventDetails": {"input": "{}"}},
            {"id": 2, "previousEventId": 1, "type": "TaskStateEntered", "timestamp": 0,
             "stateEnteredEventDetails": {"name": VALIDATE_STATE, "input": "{}"}},
        ]}))
        .unwrap();
        let e = inputs_from_history(arn, &history).unwrap_err().to_string();
        assert!(e.contains("never completed its 'Validate request'"), "{e}");
    }

    #[test]
    fn only_deployments_left_at_zero_or_failed_make_exit_code_1() {
        let d = |outcome| DeploymentResume {
            name: "api".into(),
            namespace: "mint".into(),
            outcome,
        };
        let mut report = ResumeReport {
            execution: "exec-1".into(),
            status: "FAILED".into(),
            drill: false,
            paused: true,
            deployments: vec![
                d(ResumeOutcome::Resumed {
                    before: 0,
                    after: 3,
                    message: "scaled".into(),
                }),
                d(ResumeOutcome::NothingToDo {
                    replicas: 2,
                    message: "not paused".into(),
                }),
            ],
        };
        assert_eq!(report.exit_code(), 0);
        assert!(report.lines()[1].contains("0 → 3 replicas"));
        report
            .deployments
            .push(d(not_resumed("web", "mint", "boom")));
        assert_eq!(report.exit_code(), 1);
        assert!(
            report
                .lines()
                .iter()
                .any(|l| l.contains("NOT resumed: boom"))
        );
    }
}
