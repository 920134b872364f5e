//! Test support for the end-to-end suites (`tests/tests/*.rs`): the real definition on the
//! local engine, with the functions played by a [`script::Script`].
//!
//! Input: `statemachine/rollback.asl.json` and `infra/plans/mint-replica.json`; output: each
//! path's execution history, asserted call by call. Alone: `cargo test -p rollback-e2e` (the
//! pre-approved and stored-plan suites use the shared moto: `make venv` first).

pub mod canned;
pub mod script;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rollback_core::contract::approval::{
    ApprovalDecision, Decision, REJECTED_ERROR, RejectionCause,
};
use rollback_core::contract::notify::{FailureNotice, NotifyAction, StepStatus};
use rollback_core::{Scope, StepInput};
use rollback_engine::{Engine, EngineConfig, ExecutionDescription, ExecutionStatus};
use serde_json::{Value, json};

use rollback_core::contract::DESTRUCTIVE;
use rollback_moto::workspace_root;
pub use script::{Call, Script};

pub const APPROVAL_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:rollback-approvals";

/// notify actions that end an execution (one per execution, last).
pub const NOTICES: &[&str] = &["success", "failure", "progress"];

pub fn definition() -> String {
    std::fs::read_to_string(workspace_root().join("statemachine/rollback.asl.json"))
        .expect("statemachine/rollback.asl.json")
}

/// The example plan the repository ships (two databases, two images, two deployments).
pub fn plan_text() -> String {
    std::fs::read_to_string(workspace_root().join("infra/plans/mint-replica.json"))
        .expect("infra/plans/mint-replica.json")
}

pub fn plan() -> rollback_core::Plan {
    rollback_core::Plan::from_json(&plan_text()).expect("the example plan is valid")
}

/// An EventBridge "CloudWatch Alarm State Change" event.
pub fn alarm_event(previous: &str, state: &str, at: &str, event_id: &str) -> Value {
    json!({
        "version": "0",
        "id": event_id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": at,
        "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:mint-replica-5xx"],
        "detail": {
            "alarmName": "mint-replica-5xx",
            "state": {"value": state, "reason": "Threshold Crossed: 42 5xx in 1 minute", "timestamp": at},
            "previousState": {"value": previous, "reason": "", "timestamp": "2024-05-01T10:00:00.000+0000"}
        }
    })
}

/// The real definition on an in-process engine (virtual clock) with scripted functions.
pub struct Harness {
    pub engine: Engine,
    pub script: Script,
    pub state_machine: String,
    /// The Step Functions endpoint, when served (races use the real guard through it).
    pub server: Option<rollback_engine::Server>,
}

impl Harness {
    /// Every function scripted; `guard` answers `proceed`.
    pub fn scripted() -> Harness {
        Self::scripted_with(&plan_text())
    }

    /// [`Harness::scripted`] with another plan text.
    pub fn scripted_with(plan_text: &str) -> Harness {
        let script = Script::new(plan_text, false);
        // validate and fingerprint run the real plan function, which never calls AWS for them.
        // No CloudWatch: the smoke settle window is the plan's maximum.
        script.set_plan_clients(
            rollback_plan::Clients::new(&rollback_core::aws::for_endpoint(
                "http://127.0.0.1:9",
                rollback_core::aws::LOCAL_REGION,
            ))
            .with_cloudwatch(None),
        );
        Self::with(script, None)
    }

    /// [`Harness::scripted_with`], and the plan function signs its pre-approved decisions with
    /// the shared moto's decision key (`pre-approve`).
    pub fn scripted_with_signer(plan_text: &str) -> Harness {
        let script = Script::new(plan_text, false);
        let moto = rollback_moto::MotoServer::shared();
        script.set_plan_clients(
            rollback_plan::Clients::new(&rollback_core::aws::for_endpoint(
                "http://127.0.0.1:9",
                rollback_core::aws::LOCAL_REGION,
            ))
            .with_cloudwatch(None)
            .with_signer(rollback_core::decision::DecisionSigner::new(
                aws_sdk_kms::Client::new(&moto.sdk_config()),
                moto.decision_key(),
            )),
        );
        Self::with(script, None)
    }

    /// The real `rollback-plan` (validate, guard, fingerprint) against the engine's own HTTP
    /// endpoint, as in the drill; everything else scripted.
    pub async fn served() -> Harness {
        let script = Script::new(&plan_text(), true);
        let mut h = Self::with(script, None);
        let server = rollback_engine::serve(
            h.engine.clone(),
            rollback_engine::Mode::Embedded,
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .expect("serve the engine");
        h.script.set_plan_clients(
            rollback_plan::Clients::new(&rollback_core::aws::for_endpoint(
                &server.url,
                rollback_core::aws::LOCAL_REGION,
            ))
            .with_cloudwatch(None),
        );
        h.server = Some(server);
        h
    }

    /// An SDK client for the engine's endpoint (only for [`Harness::served`]).
    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        let url = &self.server.as_ref().expect("served harness").url;
        aws_sdk_sfn::Client::new(&rollback_core::aws::for_endpoint(
            url,
            rollback_core::aws::LOCAL_REGION,
        ))
    }

    fn with(script: Script, server: Option<rollback_engine::Server>) -> Harness {
        let engine = Engine::new(Arc::new(script.clone()), EngineConfig::default());
        let machine = engine
            .create_state_machine(
                "mint-replica-rollback",
                &definition(),
                "arn:aws:iam::123456789012:role/rollback",
                &rollback_core::contract::local_substitutions(APPROVAL_TOPIC),
            )
            .expect("the engine accepts the definition");
        Harness {
            engine,
            script,
            state_machine: machine.arn,
            server,
        }
    }

    pub fn start(&self, input: Value) -> String {
        self.engine
            .start_execution(&self.state_machine, None, Some(&input.to_string()))
            .expect("StartExecution")
            .0
    }

    /// The approval request of `execution`, once the engine waits for its token.
    pub async fn approval_request(&self, execution: &str) -> Call {
        self.script
            .wait_for("the approval request", |c| {
                c.execution == execution && c.is("notify", "approval-request")
            })
            .await
    }

    /// Answers an approval request as the approval page does on "approve".
    pub fn approve(&self, request: &Call, scope: Scope) {
        let fingerprint = request.payload["fingerprint"]
            .as_str()
            .expect("the approval request carries the plan's fingerprint")
            .to_owned();
        self.decide(request, scope, fingerprint);
    }

    /// Approves with the given fingerprint (a different one rehearses a drifted plan).
    pub fn decide(&self, request: &Call, scope: Scope, fingerprint: String) {
        let decision = ApprovalDecision {
            decision: Decision::Approve,
            scope,
            approver: "oncall@example.com".into(),
            approvers: Vec::new(),
            identity: rollback_core::decision::Identity::SelfAsserted,
            decided_at: Utc::now(),
            fingerprint,
            // The scripted functions verify nothing; the real ones are tested with real
            // signatures (rollback_moto::decision).
            signed: "signed-by-the-script".into(),
        };
        self.engine
            .send_task_success(
                request.task_token.as_deref().expect("a task token"),
                &serde_json::to_string(&decision).unwrap(),
            )
            .expect("SendTaskSuccess");
    }

    /// Answers an approval request as the approval page does on "reject".
    pub fn reject(&self, request: &Call) {
        let cause = RejectionCause {
            approver: "oncall@example.com".into(),
            decided_at: Utc::now(),
            fingerprint: request.payload["fingerprint"]
                .as_str()
                .unwrap_or_default()
                .into(),
            message: "rejected by oncall@example.com on the approval page".into(),
        };
        self.engine
            .send_task_failure(
                request.task_token.as_deref().expect("a task token"),
                Some(REJECTED_ERROR),
                Some(&serde_json::to_string(&cause).unwrap()),
            )
            .expect("SendTaskFailure");
    }

    /// Waits (bounded, real time) for the end; panics if it is still running. Also fails on
    /// any payload a function could not read.
    pub async fn finish(&self, execution: &str) -> ExecutionDescription {
        self.finish_within(execution, Duration::from_secs(20)).await
    }

    /// [`Harness::finish`] with another real-time bound (an execution of ≈ 20,000 history
    /// events takes ≈ 8 s on an idle 2-core machine, three times that under load).
    pub async fn finish_within(&self, execution: &str, bound: Duration) -> ExecutionDescription {
        let d = self
            .engine
            .wait_for_completion(execution, bound)
            .await
            .expect("DescribeExecution");
        assert_ne!(
            d.status,
            ExecutionStatus::Running,
            "{execution} did not finish; calls: {:?}",
            pairs(&self.script.calls_of(execution))
        );
        assert_eq!(
            self.script.violations(),
            Vec::<String>::new(),
            "payloads the functions' contracts refuse"
        );
        d
    }

    /// Names of the states entered, in order.
    pub fn states(&self, execution: &str) -> Vec<String> {
        self.engine
            .history(execution)
            .expect("history")
            .into_iter()
            .filter(|e| e.event_type.ends_with("StateEntered"))
            .filter_map(|e| e.details["name"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn calls(&self, execution: &str) -> Vec<Call> {
        self.script.calls_of(execution)
    }
}

pub fn pairs(calls: &[Call]) -> Vec<(String, String)> {
    calls
        .iter()
        .map(|c| (c.function.clone(), c.action.clone()))
        .collect()
}

pub fn is_destructive(c: &Call) -> bool {
    DESTRUCTIVE.iter().any(|(f, a)| c.is(f, a))
}

pub fn is_notice(c: &Call) -> bool {
    c.function == "notify" && NOTICES.contains(&c.action.as_str()) && !is_started_broadcast(c)
}

/// The "rollback started" broadcast (a `progress` notice right after validation), which every
/// acting execution sends first.
pub fn is_started_broadcast(c: &Call) -> bool {
    c.is("notify", "progress")
        && c.payload["stage"]
            .as_str()
            .is_some_and(|s| s.starts_with("started"))
}

/// Expected calls: `One` in sequence; `Par` = the branches of a Parallel state, each in order,
/// interleaved in any way.
#[derive(Debug, Clone)]
pub enum Expect {
    One(&'static str, &'static str),
    Par(Vec<Vec<(&'static str, &'static str)>>),
}

pub use Expect::{One, Par};

/// The failure path after any Catch: an unfinished database swap put back (`revert` keeps a
/// finished one), what is live observed by each function's read-only action, the post-mortem
/// written to S3, the notice.
pub fn contingency() -> Vec<Expect> {
    vec![
        One("restore", "revert"),
        Par(vec![
            vec![("restore", "observe")],
            vec![("retag", "resolve")],
            vec![("deploy-undo", "status")],
        ]),
        One("notify", "report"),
        One("notify", "failure"),
    ]
}

fn interleaves(items: &[(String, String)], branches: &[&[(&'static str, &'static str)]]) -> bool {
    if items.is_empty() {
        return branches.iter().all(|b| b.is_empty());
    }
    let (f, a) = &items[0];
    branches.iter().enumerate().any(|(i, b)| {
        b.first().is_some_and(|(bf, ba)| bf == f && ba == a) && {
            let mut rest = branches.to_vec();
            rest[i] = &b[1..];
            interleaves(&items[1..], &rest)
        }
    })
}

fn matches(items: &[(String, String)], expected: &[Expect]) -> bool {
    match expected.split_first() {
        None => items.is_empty(),
        Some((One(f, a), rest)) => items
            .split_first()
            .is_some_and(|((af, aa), tail)| af == f && aa == a && matches(tail, rest)),
        Some((Par(branches), rest)) => {
            let n: usize = branches.iter().map(Vec::len).sum();
            items.len() >= n && {
                let b: Vec<&[(&str, &str)]> = branches.iter().map(Vec::as_slice).collect();
                interleaves(&items[..n], &b) && matches(&items[n..], rest)
            }
        }
    }
}

/// Asserts the exact (function, action) calls of an execution.
pub fn assert_calls(calls: &[Call], expected: &[Expect]) {
    let got = pairs(calls);
    assert!(
        matches(&got, expected),
        "calls differ\n  got:      {got:?}\n  expected: {expected:?}"
    );
}

/// No destructive action before the approval request was answered (approval-request is the
/// last thing before any of them), and none at all when `approved` is false.
pub fn assert_nothing_destructive_before_approval(calls: &[Call], approved: bool) {
    let approval = calls
        .iter()
        .position(|c| c.is("notify", "approval-request"));
    for (i, c) in calls.iter().enumerate() {
        if is_destructive(c) {
            assert!(
                approved && approval.is_some_and(|a| a < i),
                "destructive {}:{} (state '{}') ran {}: {:?}",
                c.function,
                c.action,
                c.state,
                if approved {
                    "before the approval"
                } else {
                    "without an approval"
                },
                pairs(calls)
            );
        }
    }
}

/// Exactly one notice, the last call, of the given kind; returns it.
pub fn the_notice(calls: &[Call], kind: &str) -> Call {
    let notices: Vec<&Call> = calls.iter().filter(|c| is_notice(c)).collect();
    assert_eq!(
        notices.len(),
        1,
        "exactly one notice expected: {:?}",
        pairs(calls)
    );
    let last = calls.last().expect("calls");
    assert!(
        is_notice(last),
        "the notice must come last: {:?}",
        pairs(calls)
    );
    assert_eq!(last.action, kind, "notice kind");
    last.clone()
}

/// The contingency notice as notify reads it.
pub fn failure_notice(call: &Call) -> FailureNotice {
    let step = StepInput::<NotifyAction>::parse(call.payload.clone()).expect("notify input");
    match step.action {
        NotifyAction::Failure(n) => n,
        other => panic!("not a failure notice: {other:?}"),
    }
}

/// `progress.steps` by name → status.
pub fn step_statuses(
    progress: &rollback_core::contract::notify::ProgressRecord,
) -> BTreeMap<String, StepStatus> {
    progress
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.status))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(f, a)| (f.to_string(), a.to_string()))
            .collect()
    }

    #[test]
    fn expectations_accept_interleavings_and_nothing_else() {
        let expected = [
            One("a", "1"),
            Par(vec![vec![("b", "1"), ("b", "2")], vec![("c", "1")]]),
            One("d", "1"),
        ];
        for ok in [
            &[("a", "1"), ("b", "1"), ("b", "2"), ("c", "1"), ("d", "1")][..],
            &[("a", "1"), ("c", "1"), ("b", "1"), ("b", "2"), ("d", "1")],
            &[("a", "1"), ("b", "1"), ("c", "1"), ("b", "2"), ("d", "1")],
        ] {
            assert!(matches(&items(ok), &expected), "{ok:?}");
        }
        for bad in [
            &[("a", "1"), ("b", "2"), ("b", "1"), ("c", "1"), ("d", "1")][..],
            &[("a", "1"), ("b", "1"), ("b", "2"), ("d", "1")],
            &[
                ("a", "1"),
                ("b", "1"),
                ("b", "2"),
                ("c", "1"),
                ("d", "1"),
                ("d", "1"),
            ],
            &[("b", "1"), ("b", "2"), ("c", "1"), ("d", "1")],
            &[],
        ] {
            assert!(!matches(&items(bad), &expected), "{bad:?}");
        }
    }
}
