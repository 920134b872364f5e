//! Swap and revert against moto with the RDS rules it lacks (asynchronous renames, no rename
//! onto a taken name; `local/moto/rules/rds.py`), through the fault proxy: answers lost or
//! turned into 500s after RDS carried a rename out, and a database that fails while another
//! is mid-swap. After each, every original identifier must resolve to an available
//! database, and what the function says must be what is there. The function's calls, the
//! faulted ones too, go through its IAM gate: checked against its role for databases `sr-…`.

mod common;

use common::*;
use rollback_core::contract::restore::{
    ObserveOutput, Placement, RevertOutput, RevertState, SwapOutput,
};
use rollback_core::{ErrorKind, ExecutionId, RollbackError, ids};
use rollback_fault_proxy::gate::IamGate;
use rollback_fault_proxy::{FaultKind, FaultProxy, FaultSchedule};
use rollback_restore::{Clients, handle};
use serde_json::{Value, json};

/// The most calls a re-entrant action gets before a test gives up (renames finish after a
/// couple of Describe calls).
const MAX_CALLS: usize = 25;

/// Every database here is named `sr-…`: the roles' `DatabaseIdPrefix`.
const PREFIX: &str = "sr";

struct Case {
    clients: Clients,
    /// The restore function's IAM gate; its proxy adds the faults.
    gate: IamGate,
    databases: Value,
    exec: String,
}

impl Case {
    /// Databases (id, kind) restored by this execution and ready to swap; the function's
    /// client goes through its IAM gate with no faults yet.
    async fn ready(exec: &str, dbs: &[(&str, &str)]) -> Case {
        let rds = rds();
        let snapshot = gate("snapshot", PREFIX);
        for (id, kind) in dbs {
            if *kind == "rds-instance" {
                instance(&rds, id, "db.t3.micro").await;
            } else {
                aurora(&rds, id).await;
            }
            pre_deploy(&snapshot, id, kind, "v1").await;
        }
        let databases = Value::Array(
            dbs.iter()
                .map(|(id, kind)| json!({"kind": kind, "id": id}))
                .collect(),
        );
        let case = Case::through_proxy(exec, databases);
        let resolved = case.call(json!({"action": "resolve"})).await.unwrap();
        case.call(json!({"action": "start", "resolved": resolved["databases"]}))
            .await
            .unwrap();
        for _ in 0..MAX_CALLS {
            let status = case.call(json!({"action": "status"})).await.unwrap();
            if status["all_available"] == true {
                return case;
            }
        }
        panic!("restores of {dbs:?} never became available");
    }

    /// The function's client for `exec` over `databases`, through its IAM gate with no
    /// faults yet (nothing is created).
    fn through_proxy(exec: &str, databases: Value) -> Case {
        let gate = gate("restore", PREFIX);
        Case {
            clients: clients(&gate),
            gate,
            databases,
            exec: exec.to_owned(),
        }
    }

    /// The fault proxy under the gate.
    fn proxy(&self) -> &FaultProxy {
        self.gate.proxy()
    }

    /// Another execution over the same databases (nothing created).
    fn other_execution(&self, exec: &str) -> Case {
        Case::through_proxy(exec, self.databases.clone())
    }

    /// How many `operation` calls reached the proxy.
    fn calls_of(&self, operation: &str) -> usize {
        self.proxy()
            .log()
            .iter()
            .filter(|r| r.request.operation == operation)
            .count()
    }

    async fn call(&self, action: Value) -> Result<Value, RollbackError> {
        handle(
            &self.clients,
            envelope(
                action,
                self.databases.clone(),
                request("live", json!({})),
                &self.exec,
            ),
        )
        .await
    }

    /// Calls `action` until its `complete` is true or it fails permanently.
    async fn until_complete(&self, action: Value) -> Result<Value, RollbackError> {
        for _ in 0..MAX_CALLS {
            match self.call(action.clone()).await {
                Ok(out) if out["complete"] == true => return Ok(out),
                Ok(_) => {}
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
        }
        panic!("{action} did not complete within {MAX_CALLS} calls");
    }

    async fn observe(&self) -> ObserveOutput {
        serde_json::from_value(self.call(json!({"action": "observe"})).await.unwrap()).unwrap()
    }

    fn fail_next(&self, count: u32, operation: &str, kind: FaultKind) {
        self.proxy()
            .set_schedule(FaultSchedule::none().fail_next(count, operation, kind));
    }
}

/// Every original identifier holds an available database.
async fn all_serving(case: &Case, expect: Placement) {
    for db in case.observe().await.databases {
        assert_eq!(db.placement, expect, "{}: {}", db.database, db.summary);
        assert_eq!(db.status.as_deref(), Some("available"), "{}", db.summary);
    }
}

fn rename_operation(kind: &str) -> &'static str {
    if kind == "rds-instance" {
        "ModifyDBInstance"
    } else {
        "ModifyDBCluster"
    }
}

/// A rename whose answer is lost (or turned into a 500) after RDS carried it out: the next
/// observation counts it as done, the swap completes, nothing is left without a database.
async fn rename_fault_is_observed(
    exec: &str,
    id: &str,
    kind: &str,
    second: bool,
    fault: FaultKind,
) {
    rename_faults_are_observed(exec, id, kind, second, fault, 10).await;
}

/// [`rename_fault_is_observed`] with `times` faulted calls: once, the SDK's own retry of the
/// rename meets the name the lost one is already taking (`DBInstanceAlreadyExists`), and the
/// observation after it may be torn by the rename completing between its describes.
async fn rename_faults_are_observed(
    exec: &str,
    id: &str,
    kind: &str,
    second: bool,
    fault: FaultKind,
    times: u32,
) {
    let case = Case::ready(exec, &[(id, kind)]).await;
    if second {
        // First rename asked without faults; fail the next one (restored → original).
        let out: SwapOutput =
            serde_json::from_value(case.call(json!({"action": "swap"})).await.unwrap()).unwrap();
        assert!(!out.complete);
        for _ in 0..MAX_CALLS {
            if case.observe().await.databases[0].placement == Placement::Between {
                break;
            }
        }
        assert_eq!(
            case.observe().await.databases[0].placement,
            Placement::Between
        );
    }
    case.fail_next(times, rename_operation(kind), fault);
    let out = case
        .until_complete(json!({"action": "swap"}))
        .await
        .unwrap();
    assert!(
        case.proxy().faulted_count() >= 1,
        "the fault never fired: {}",
        case.proxy().report()
    );
    let out: SwapOutput = serde_json::from_value(out).unwrap();
    assert!(out.complete, "{out:?}");
    all_serving(&case, Placement::Swapped).await;
    let aside = ids::aside_identifier(id, &ExecutionId::new(exec));
    assert_eq!(out.aside, [aside]);
}

#[tokio::test]
async fn instance_first_rename_answer_lost() {
    rename_fault_is_observed(
        "x-i1d",
        "sr-i1d",
        "rds-instance",
        false,
        FaultKind::DropAfterForward,
    )
    .await;
}

#[tokio::test]
async fn instance_first_rename_500_after_it_was_done() {
    rename_fault_is_observed(
        "x-i1e",
        "sr-i1e",
        "rds-instance",
        false,
        FaultKind::ErrorAfterForward,
    )
    .await;
}

#[tokio::test]
async fn instance_second_rename_answer_lost() {
    rename_fault_is_observed(
        "x-i2d",
        "sr-i2d",
        "rds-instance",
        true,
        FaultKind::DropAfterForward,
    )
    .await;
}

#[tokio::test]
async fn instance_second_rename_answer_lost_once() {
    rename_faults_are_observed(
        "x-i2o",
        "sr-i2o",
        "rds-instance",
        true,
        FaultKind::DropAfterForward,
        1,
    )
    .await;
}

#[tokio::test]
async fn cluster_second_rename_answer_lost_once() {
    rename_faults_are_observed(
        "x-c2o",
        "sr-c2o",
        "aurora-cluster",
        true,
        FaultKind::DropAfterForward,
        1,
    )
    .await;
}

#[tokio::test]
async fn instance_first_rename_answer_lost_once() {
    rename_faults_are_observed(
        "x-i1o",
        "sr-i1o",
        "rds-instance",
        false,
        FaultKind::DropAfterForward,
        1,
    )
    .await;
}

#[tokio::test]
async fn instance_second_rename_500_after_it_was_done() {
    rename_fault_is_observed(
        "x-i2e",
        "sr-i2e",
        "rds-instance",
        true,
        FaultKind::ErrorAfterForward,
    )
    .await;
}

#[tokio::test]
async fn cluster_first_rename_answer_lost() {
    rename_fault_is_observed(
        "x-c1d",
        "sr-c1d",
        "aurora-cluster",
        false,
        FaultKind::DropAfterForward,
    )
    .await;
}

#[tokio::test]
async fn cluster_first_rename_500_after_it_was_done() {
    rename_fault_is_observed(
        "x-c1e",
        "sr-c1e",
        "aurora-cluster",
        false,
        FaultKind::ErrorAfterForward,
    )
    .await;
}

#[tokio::test]
async fn cluster_second_rename_answer_lost() {
    rename_fault_is_observed(
        "x-c2d",
        "sr-c2d",
        "aurora-cluster",
        true,
        FaultKind::DropAfterForward,
    )
    .await;
}

#[tokio::test]
async fn cluster_second_rename_500_after_it_was_done() {
    rename_fault_is_observed(
        "x-c2e",
        "sr-c2e",
        "aurora-cluster",
        true,
        FaultKind::ErrorAfterForward,
    )
    .await;
}

#[tokio::test]
async fn throttled_rename_is_retried_and_completes() {
    let case = Case::ready("x-thr", &[("sr-thr", "rds-instance")]).await;
    case.fail_next(2, "ModifyDBInstance", FaultKind::Throttle);
    case.until_complete(json!({"action": "swap"}))
        .await
        .unwrap();
    assert!(case.proxy().faulted_count() >= 1);
    all_serving(&case, Placement::Swapped).await;
}

/// Database 2 fails permanently while database 1 is mid-swap: swap stops with what it saw,
/// and revert puts both back under their identifiers and says which were reverted.
#[tokio::test]
async fn a_failure_mid_swap_is_reverted_for_every_database() {
    let case = Case::ready(
        "x-two",
        &[("sr-two-a", "rds-instance"), ("sr-two-b", "rds-instance")],
    )
    .await;
    // Both originals are asked to move aside.
    let first: SwapOutput =
        serde_json::from_value(case.call(json!({"action": "swap"})).await.unwrap()).unwrap();
    assert!(!first.complete);
    // Database 2's restored copy stops being usable (RDS refuses to rename a stopped one).
    let restored_b = ids::restore_identifier("sr-two-b", &ExecutionId::new("x-two"), false);
    rds()
        .stop_db_instance()
        .db_instance_identifier(&restored_b)
        .send()
        .await
        .unwrap();
    let err = case
        .until_complete(json!({"action": "swap"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SwapFailed, "{err}");
    let text = err.to_string();
    assert!(text.contains("Observed just now"), "{text}");
    assert!(!text.contains("Nothing was renamed"), "{text}");

    let reverted: RevertOutput = serde_json::from_value(
        case.until_complete(json!({"action": "revert"}))
            .await
            .unwrap(),
    )
    .unwrap();
    if reverted.needs_person {
        let all: Vec<_> = rds()
            .describe_db_instances()
            .send()
            .await
            .unwrap()
            .db_instances()
            .iter()
            .filter(|d| {
                d.db_instance_identifier()
                    .unwrap_or_default()
                    .starts_with("sr-two")
            })
            .map(|d| {
                format!(
                    "{:?}={:?}",
                    d.db_instance_identifier(),
                    d.db_instance_status()
                )
            })
            .collect();
        panic!("a database needs a person; instances now: {all:?}\n{reverted:?}");
    }
    for db in &reverted.databases {
        assert_eq!(db.state, RevertState::Back, "{db:?}");
        assert!(
            db.reverted,
            "{} was moved and put back: {db:?}",
            db.database
        );
        assert_eq!(db.observed.placement, Placement::Original);
    }
    all_serving(&case, Placement::Original).await;
    // The restored copies are kept for inspection.
    let restored_a = ids::restore_identifier("sr-two-a", &ExecutionId::new("x-two"), false);
    assert!(instance_state(&rds(), &restored_a).await.is_some());
}

#[tokio::test]
async fn revert_with_lost_answers_still_puts_everything_back() {
    let case = Case::ready("x-rvd", &[("sr-rvd", "rds-instance")]).await;
    case.until_complete(json!({"action": "swap"}))
        .await
        .unwrap();
    all_serving(&case, Placement::Swapped).await;
    case.fail_next(10, "ModifyDBInstance", FaultKind::DropAfterForward);
    let out: RevertOutput = serde_json::from_value(
        case.until_complete(json!({"action": "revert"}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(case.proxy().faulted_count() >= 1);
    assert_eq!(out.databases[0].state, RevertState::Back, "{out:?}");
    all_serving(&case, Placement::Original).await;
}

#[tokio::test]
async fn a_complete_swap_is_kept_when_only_an_incomplete_one_is_reverted() {
    let case = Case::ready("x-keep", &[("sr-keep", "rds-instance")]).await;
    case.until_complete(json!({"action": "swap"}))
        .await
        .unwrap();
    let out: RevertOutput = serde_json::from_value(
        case.call(json!({"action": "revert", "only_if_incomplete": true}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(out.complete);
    assert_eq!(out.databases[0].state, RevertState::KeptSwap);
    all_serving(&case, Placement::Swapped).await;
}

#[tokio::test]
async fn revert_of_an_untouched_database_changes_nothing() {
    let case = Case::ready("x-none", &[("sr-none", "rds-instance")]).await;
    let out: RevertOutput = serde_json::from_value(
        case.call(json!({"action": "revert", "only_if_incomplete": true}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(out.complete);
    assert_eq!(out.databases[0].state, RevertState::Back);
    assert!(!out.databases[0].reverted);
    assert_eq!(case.calls_of("ModifyDBInstance"), 0);
}

/// Someone else takes the aside name after the first rename was asked: RDS refuses the name,
/// and the revert names the exact commands for a person.
#[tokio::test]
async fn a_name_taken_by_someone_else_needs_a_person_with_commands() {
    let case = Case::ready("x-taken", &[("sr-taken", "rds-instance")]).await;
    let aside = ids::aside_identifier("sr-taken", &ExecutionId::new("x-taken"));
    // Not ours, and already at the aside name: swap must refuse before renaming anything.
    instance(&rds(), &aside, "db.t3.micro").await;
    let err = case.call(json!({"action": "swap"})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SwapFailed);
    assert!(err.to_string().contains("names taken"), "{err}");
    let out: RevertOutput =
        serde_json::from_value(case.call(json!({"action": "revert"})).await.unwrap()).unwrap();
    assert!(out.needs_person, "{out:?}");
    let commands = out.databases[0].commands.join("\n");
    assert!(
        commands.contains("describe-db-instances --db-instance-identifier sr-taken"),
        "{commands}"
    );
    // The original never moved.
    assert!(instance_state(&rds(), "sr-taken").await.is_some());
}

/// An execution stopped between its two renames (a person stopped it, or it timed out) leaves
/// the identifier empty and the database aside under its name. The next execution's failure
/// path finds that database and puts it back; its swap refuses to build on it.
#[tokio::test]
async fn the_next_execution_puts_back_what_a_stopped_one_left_aside() {
    let stopped = Case::ready("x-stop", &[("sr-stop", "rds-instance")]).await;
    stopped.call(json!({"action": "swap"})).await.unwrap();
    for _ in 0..MAX_CALLS {
        if stopped.observe().await.databases[0].placement == Placement::Between {
            break;
        }
    }
    assert_eq!(
        stopped.observe().await.databases[0].placement,
        Placement::Between
    );

    let next = stopped.other_execution("x-stop-restart");
    let seen = next.observe().await.databases.remove(0);
    assert_eq!(seen.placement, Placement::Between, "{}", seen.summary);
    assert!(
        seen.summary.contains("earlier rollback"),
        "{}",
        seen.summary
    );
    let err = next.call(json!({"action": "swap"})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SwapFailed, "{err}");
    let out: RevertOutput = serde_json::from_value(
        next.until_complete(json!({"action": "revert", "only_if_incomplete": true}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out.databases[0].state, RevertState::Back, "{out:?}");
    assert!(out.databases[0].reverted, "{out:?}");
    all_serving(&next, Placement::Original).await;
}

/// All or nothing from the first rename: a copy that is not this execution's (here its tag was
/// removed) stops the swap before any database moves, not after the first one did.
#[tokio::test]
async fn a_copy_that_is_not_ours_stops_the_swap_before_anything_moves() {
    let case = Case::ready(
        "x-own",
        &[("sr-own-a", "rds-instance"), ("sr-own-b", "rds-instance")],
    )
    .await;
    let restored_b = ids::restore_identifier("sr-own-b", &ExecutionId::new("x-own"), false);
    let arn = instance_state(&rds(), &restored_b)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_owned();
    rds()
        .remove_tags_from_resource()
        .resource_name(arn)
        .tag_keys("rollback:execution")
        .send()
        .await
        .unwrap();
    let err = case.call(json!({"action": "swap"})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SwapFailed, "{err}");
    assert!(err.to_string().contains("Nothing was renamed"), "{err}");
    assert_eq!(
        case.calls_of("ModifyDBInstance"),
        0,
        "nothing may move before every copy is checked"
    );
    all_serving(&case, Placement::Original).await;
}
