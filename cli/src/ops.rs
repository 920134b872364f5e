//! Operations against a Step Functions endpoint (AWS, or the local engine): start, status,
//! approve/reject from the command line, report; and the pipeline guard against ECR.

use anyhow::{Context, Result, anyhow, bail};
use aws_config::SdkConfig;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use chrono::Utc;
use rollback_core::RollbackRequest;
use serde_json::{Value, json};

use crate::history::History;

pub use crate::resume::{ResumeReport, resume};

/// SDK configuration: the standard chain, with an endpoint override when given. A loopback
/// endpoint (the local engine) gets static test credentials so nothing needs configuring.
pub async fn sdk_config(endpoint_url: Option<&str>) -> SdkConfig {
    match endpoint_url {
        Some(url) if is_loopback(url) => {
            let region = std::env::var("AWS_REGION")
                .unwrap_or_else(|_| rollback_core::aws::LOCAL_REGION.to_owned());
            rollback_core::aws::for_endpoint(url, &region)
        }
        Some(url) => {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(url)
                .timeout_config(rollback_core::aws::timeouts())
                .load()
                .await
        }
        None => rollback_core::aws::from_env().await,
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
}

/// Starts an execution. An alarm event gets its deduplicating name, so a pipeline retrying the
/// start cannot launch a second rollback for the same alarm transition.
pub async fn start(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    input: Value,
    name: Option<String>,
) -> Result<String> {
    let request = RollbackRequest::from_start_input(input.clone())
        .map_err(|e| anyhow!("the input is not a valid rollback request: {e}"))?;
    let name = name.or_else(|| request.dedup_execution_name());
    let out = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .input(input.to_string())
        .set_name(name)
        .send()
        .await
        .context("StartExecution")?;
    Ok(out.execution_arn)
}

/// Every history event of an execution (all pages).
pub async fn history(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<Vec<HistoryEvent>> {
    let mut events = Vec::new();
    let mut token = None;
    for _ in 0..1000 {
        let page = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .context("GetExecutionHistory")?;
        events.extend(page.events);
        token = page.next_token;
        if token.is_none() {
            return Ok(events);
        }
    }
    bail!("GetExecutionHistory did not end after 1000 pages")
}

/// A one-paragraph status: execution state, the state it is in, and the error if it failed.
pub async fn status(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<String> {
    let exec = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .context("DescribeExecution")?;
    let events = history(sfn, execution_arn).await?;
    let history = History::from_sdk(&events);
    let current = history
        .events
        .iter()
        .rev()
        .find(|e| e.kind.ends_with("StateEntered"))
        .and_then(|e| e.detail_str("name").map(str::to_owned))
        .unwrap_or_else(|| "(none)".to_owned());
    let mut text = format!(
        "{}: {} (last state entered: {current})",
        exec.name.unwrap_or_default(),
        exec.status.as_str()
    );
    if exec.status == ExecutionStatus::Failed {
        text.push_str(&format!(
            "\n  error: {}\n  cause: {}",
            exec.error.unwrap_or_default(),
            exec.cause.unwrap_or_default()
        ));
    }
    if pending_approval(&events).is_some() {
        text.push_str("\n  waiting for approval: `rollbackctl approve` or `rollbackctl reject`");
    }
    Ok(text)
}

/// The approval task still waiting for a decision: its task token and the plan fingerprint
/// the approver is asked to approve, read from the task's scheduled parameters.
#[derive(Debug, Clone)]
pub struct PendingApproval {
    pub task_token: String,
    pub fingerprint: Option<String>,
    /// The plan the approval task was given (its `plan` parameter), for the signed decision.
    pub plan: Option<Value>,
}

pub fn pending_approval(events: &[HistoryEvent]) -> Option<PendingApproval> {
    let mut pending: Option<(i64, PendingApproval)> = None;
    for e in events {
        if let Some(d) = &e.task_scheduled_event_details
            && d.resource.ends_with(".waitForTaskToken")
        {
            let params: Value = serde_json::from_str(&d.parameters).unwrap_or(Value::Null);
            if let Some(token) = find_key(&params, &|k| {
                k.eq_ignore_ascii_case("task_token") || k == "TaskToken" || k == "taskToken"
            }) {
                let fingerprint = find_key(&params, &|k| k == "fingerprint");
                let plan = find_object(&params, "plan");
                pending = Some((
                    e.id,
                    PendingApproval {
                        task_token: token,
                        fingerprint,
                        plan,
                    },
                ));
            }
        }
        let closes = e.task_succeeded_event_details.is_some()
            || e.task_failed_event_details.is_some()
            || e.task_timed_out_event_details.is_some();
        if closes
            && pending
                .as_ref()
                .is_some_and(|(id, _)| e.previous_event_id >= *id)
        {
            pending = None;
        }
    }
    pending.map(|(_, p)| p)
}

fn find_object(value: &Value, name: &str) -> Option<Value> {
    match value {
        Value::Object(map) => map
            .get(name)
            .filter(|v| v.is_object())
            .cloned()
            .or_else(|| map.values().find_map(|v| find_object(v, name))),
        Value::Array(items) => items.iter().find_map(|v| find_object(v, name)),
        _ => None,
    }
}

fn find_key(value: &Value, wanted: &dyn Fn(&str) -> bool) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(k, v)| match v {
            Value::String(s) if wanted(k) => Some(s.clone()),
            other => find_key(other, wanted),
        }),
        Value::Array(items) => items.iter().find_map(|v| find_key(v, wanted)),
        _ => None,
    }
}

/// Decides the pending approval from the command line (same decision document the email
/// links send). An approval must be signed with the stack's decision key, which the
/// destructive functions verify: `signer` is that key under the operator's own credentials
/// (break-glass: only principals the key policy lets sign can approve this way).
pub async fn decide(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    approve: bool,
    scope: &str,
    approver: &str,
    signer: Option<&rollback_core::decision::DecisionSigner>,
) -> Result<()> {
    let events = history(sfn, execution_arn).await?;
    let pending = pending_approval(&events)
        .ok_or_else(|| anyhow!("{execution_arn} is not waiting for an approval"))?;
    if approve {
        let Some(signer) = signer else {
            bail!(
                "an approval must be signed with the stack's decision key, which the destructive \
                 functions verify: approve from the link in the approval email, or pass \
                 --decision-key <the DecisionKey ARN> with credentials allowed to kms:Sign with it"
            );
        };
        let parsed_scope =
            rollback_core::Scope::parse(scope).map_err(|e| anyhow!("--scope: {e}"))?;
        let plan: rollback_core::Plan = pending
            .plan
            .clone()
            .and_then(|p| serde_json::from_value(p).ok())
            .ok_or_else(|| anyhow!("the approval task of {execution_arn} carries no plan"))?;
        let needed = plan.approval.approvals_needed(parsed_scope);
        if needed > 1 {
            bail!(
                "the plan asks {needed} different people to approve {scope}: approve from the \
                 approval email's link, where each approval is recorded"
            );
        }
        let fingerprint = pending.fingerprint.clone().unwrap_or_default();
        let execution = execution_arn.rsplit(':').next().unwrap_or(execution_arn);
        let now = Utc::now();
        let claims = rollback_core::decision::DecisionClaims::new(
            execution,
            &rollback_core::fingerprint::fingerprint(&plan),
            &fingerprint,
            parsed_scope,
            &[approver.to_owned()],
            rollback_core::decision::Identity::SelfAsserted,
            now,
        );
        let signed = signer
            .sign(&claims)
            .await
            .context("signing the decision with the decision key")?;
        let decision = json!({
            "decision": "approve",
            // The written form, whatever order the parts were given in: the definition's
            // Choice states match it (`app+database*`, `*mobile`).
            "scope": parsed_scope.as_str(),
            "approver": approver,
            "decided_at": now.to_rfc3339(),
            "fingerprint": pending.fingerprint,
            "signed": signed,
        });
        sfn.send_task_success()
            .task_token(&pending.task_token)
            .output(decision.to_string())
            .send()
            .await
            .context("SendTaskSuccess")?;
    } else {
        sfn.send_task_failure()
            .task_token(&pending.task_token)
            .error("Rollback.Rejected")
            .cause(format!("rejected by {approver} from rollbackctl"))
            .send()
            .await
            .context("SendTaskFailure")?;
    }
    Ok(())
}

/// For CI/CD pipelines: refuses an image digest that a rollback moved away from (retag keeps
/// it under a `rolled-back-<execution>` tag), so the next pipeline run does not redeploy it.
/// `Ok(None)`: not rolled back; `Ok(Some(tag))`: rolled back, the tag names the execution.
pub async fn guard_image(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    digest: &str,
) -> Result<Option<String>> {
    let out = ecr
        .describe_images()
        .repository_name(repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(digest)
                .build(),
        )
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_image_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(anyhow!(e).context("DescribeImages")),
    };
    Ok(out
        .image_details()
        .iter()
        .flat_map(|d| d.image_tags())
        .find(|t| t.starts_with("rolled-back-"))
        .cloned())
}
