//! Who may approve, and how many: the plan's approver list (403 for others), two people for
//! databases (the first approval recorded in the ledger and shown to the second, only the
//! second sends the task token), and a starter who may not approve alone. Against moto's real
//! Step Functions executor, S3 and KMS, under the approval role.

mod common;

use common::*;
use http::StatusCode;
use rollback_approval::{Services, handle_request};
use rollback_core::approval_link::{ApproverRules, Decision, LinkKey};
use rollback_core::contract::approval::ApprovalDecision;
use rollback_core::request::Scope;
use rollback_moto::MotoServer;

fn rules(approvers: &[&str], needed: u8, starter: Option<&str>) -> ApproverRules {
    ApproverRules {
        approvers: approvers.iter().map(|a| a.to_string()).collect(),
        needed,
        starter: starter.map(str::to_owned),
    }
}

/// A link to `w`'s task with these rules, and the page with a ledger.
async fn setup(
    name: &str,
    decision: Decision,
    scope: Scope,
    rules: ApproverRules,
) -> (
    Services,
    Waiting,
    String,
    rollback_fault_proxy::gate::IamGate,
) {
    let gate = gate();
    let key = LinkKey::generate();
    let services = page(&gate, &key).with_ledger(ledger(&gate).await);
    let w = waiting_execution(name, None).await;
    let mut p = payload(&w.token, decision, scope);
    p.rules = rules;
    let link = link(&key, &p);
    (services, w, link, gate)
}

async fn decided_output(arn: &str) -> ApprovalDecision {
    let (status, output, ..) = finished(arn).await;
    assert_eq!(status, "SUCCEEDED");
    serde_json::from_str(&output.unwrap()).unwrap()
}

#[tokio::test]
async fn a_person_the_plan_does_not_list_gets_403_and_nothing_is_decided() {
    let listed = rules(&["oncall@example.com"], 1, None);
    let (services, w, approve, _gate) =
        setup("appr-listed", Decision::Approve, Scope::APP, listed).await;
    let response = handle_request(&services, post(&approve, "intruder@example.com")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.body().contains("Not an approver"),
        "{}",
        response.body()
    );
    assert!(response.body().contains("intruder@example.com"));
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");

    // Listed, in whatever case the person types.
    let response = handle_request(&services, post(&approve, "OnCall@Example.com")).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
    assert_eq!(
        decided_output(&w.execution_arn).await.approver,
        "oncall@example.com"
    );
}

#[tokio::test]
async fn a_list_of_groups_refuses_self_asserted_approvers_and_says_why() {
    let groups = rules(&["group:sre-oncall"], 1, None);
    let (services, w, reject, _gate) =
        setup("appr-groups", Decision::Reject, Scope::APP, groups).await;
    let response = handle_request(&services, post(&reject, "oncall@example.com")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.body().contains("identity provider"),
        "{}",
        response.body()
    );
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");
}

#[tokio::test]
async fn two_people_for_databases_the_first_is_recorded_and_shown_to_the_second() {
    let two = rules(&[], 2, None);
    let (services, w, approve, _gate) =
        setup("appr-two", Decision::Approve, Scope::APP_AND_DATABASE, two).await;

    let first = handle_request(&services, post(&approve, "alice@example.com")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED, "{}", first.body());
    assert!(first.body().contains("Approval recorded"));
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");

    // A double click counts once.
    let again = handle_request(&services, post(&approve, "Alice@example.com")).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.body().contains("Already counted"), "{}", again.body());
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");

    // The second approver sees the first.
    let shown = handle_request(&services, get(&approve)).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert!(
        shown
            .body()
            .contains("Approved so far by alice@example.com"),
        "{}",
        shown.body()
    );
    assert!(shown.body().contains("needs 2 different people"));

    let second = handle_request(&services, post(&approve, "bob@example.com")).await;
    assert_eq!(second.status(), StatusCode::OK, "{}", second.body());
    assert!(
        second
            .body()
            .contains("alice@example.com and bob@example.com")
    );
    let decision = decided_output(&w.execution_arn).await;
    assert_eq!(decision.approver, "bob@example.com");
    assert_eq!(decision.approvers, ["alice@example.com", "bob@example.com"]);
    assert!(
        decision
            .approved_by()
            .starts_with("alice@example.com and bob@example.com")
    );
    let claims = rollback_core::decision::DecisionVerifier::new(
        aws_sdk_kms::Client::new(&MotoServer::shared_executing().sdk_config()),
        MotoServer::shared_executing().decision_key(),
    )
    .key()
    .await
    .unwrap()
    .open(&decision.signed)
    .unwrap();
    assert_eq!(claims.approvers, decision.approvers);

    // A third person is told it is done.
    let third = handle_request(&services, post(&approve, "carol@example.com")).await;
    assert_eq!(third.status(), StatusCode::CONFLICT);
    assert!(
        third
            .body()
            .contains("approved already by alice@example.com and bob@example.com")
    );
}

#[tokio::test]
async fn a_reject_by_anyone_ends_it_after_a_first_approval() {
    let gate = gate();
    let key = LinkKey::generate();
    let services = page(&gate, &key).with_ledger(ledger(&gate).await);
    let w = waiting_execution("appr-two-reject", None).await;
    let mut approve = payload(&w.token, Decision::Approve, Scope::APP_AND_DATABASE);
    approve.rules = rules(&[], 2, None);
    let reject = payload(&w.token, Decision::Reject, Scope::APP);
    let first = handle_request(&services, post(&link(&key, &approve), "alice@example.com")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let no = handle_request(&services, post(&link(&key, &reject), "bob@example.com")).await;
    assert_eq!(no.status(), StatusCode::OK, "{}", no.body());
    let (status, _, error, _) = finished(&w.execution_arn).await;
    assert_eq!(status, "FAILED");
    assert_eq!(error.as_deref(), Some("Rollback.Rejected"));
}

#[tokio::test]
async fn a_starter_who_may_not_approve_alone_needs_a_second_person() {
    let starter = rules(&[], 1, Some("dev@example.com"));
    let (services, w, approve, _gate) =
        setup("appr-starter", Decision::Approve, Scope::APP, starter).await;
    let alone = handle_request(&services, post(&approve, "dev@example.com")).await;
    assert_eq!(alone.status(), StatusCode::ACCEPTED, "{}", alone.body());
    assert!(alone.body().contains("someone besides dev@example.com"));
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");
    let other = handle_request(&services, post(&approve, "ops@example.com")).await;
    assert_eq!(other.status(), StatusCode::OK, "{}", other.body());
    let decision = decided_output(&w.execution_arn).await;
    assert_eq!(decision.approvers, ["dev@example.com", "ops@example.com"]);
}

#[tokio::test]
async fn without_a_ledger_a_decision_for_two_says_try_again_and_decides_nothing() {
    let gate = gate();
    let key = LinkKey::generate();
    let services = page(&gate, &key);
    let w = waiting_execution("appr-no-ledger", None).await;
    let mut p = payload(&w.token, Decision::Approve, Scope::APP_AND_DATABASE);
    p.rules = rules(&[], 2, None);
    let response = handle_request(&services, post(&link(&key, &p), "alice@example.com")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.body().contains("Nothing was decided"));
    assert_eq!(describe(&w.execution_arn).await.0, "RUNNING");
}

/// Targeted faults on the ledger's only state-changing call, PutObject, for each approver:
/// the answer lost after S3 wrote the slot, a 500 after it, throttling before it. The SDK's
/// retry meets its own object (412); the page reads the slot back and reports what happened:
/// the first approval recorded, the second completing the decision, each person once.
#[tokio::test]
async fn ledger_writes_survive_lost_answers_errors_after_and_throttling() {
    use rollback_fault_proxy::{FaultKind, FaultSchedule};
    for (i, kind) in [
        FaultKind::DropAfterForward,
        FaultKind::ErrorAfterForward,
        FaultKind::Throttle,
    ]
    .into_iter()
    .enumerate()
    {
        let two = rules(&[], 2, None);
        let (services, w, approve, gate) = setup(
            &format!("appr-ledger-fault-{i}"),
            Decision::Approve,
            Scope::APP_AND_DATABASE,
            two,
        )
        .await;
        for (person, expected) in [
            ("alice@example.com", StatusCode::ACCEPTED),
            ("bob@example.com", StatusCode::OK),
        ] {
            gate.proxy()
                .set_schedule(FaultSchedule::none().fail_next(1, "PutObject", kind));
            let response = handle_request(&services, post(&approve, person)).await;
            assert_eq!(
                response.status(),
                expected,
                "{kind:?} {person}: {}",
                response.body()
            );
            assert_eq!(
                gate.proxy().faulted_count(),
                1,
                "{kind:?}: the fault never fired: {}",
                gate.proxy().report()
            );
            gate.proxy().set_schedule(FaultSchedule::none());
            gate.proxy().take_log();
        }
        let decision = decided_output(&w.execution_arn).await;
        assert_eq!(
            decision.approvers,
            ["alice@example.com", "bob@example.com"],
            "{kind:?}"
        );
    }
}
