//! `start` under a fault on each state-changing call it makes (the restore itself, and a
//! cluster's member instances): the answer lost after RDS carried the call out, a 500 after
//! it, and throttling before it. Each time the call is repeated (by the SDK or by the next
//! attempt, as Step Functions would), and the end state must be exactly one copy, this
//! execution's, with its members, and the live database untouched. moto replaced a cluster
//! on a repeated create until `local/moto/rules/rds.py` refused it the way RDS does.

mod common;

use common::*;
use rollback_core::contract::restore::StartOutput;
use rollback_core::{ExecutionId, RollbackError, ids};
use rollback_fault_proxy::gate::IamGate;
use rollback_fault_proxy::{FaultKind, FaultSchedule};
use rollback_restore::{Clients, handle};
use serde_json::{Value, json};

/// Every database here is named `sf-…`: the roles' `DatabaseIdPrefix`.
const PREFIX: &str = "sf";

/// The most attempts a test gives `start` (each as Step Functions would retry it).
const MAX_ATTEMPTS: usize = 6;

struct Case {
    gate: IamGate,
    clients: Clients,
    databases: Value,
    exec: String,
}

impl Case {
    /// A database `id` of `kind` with a pre-deploy snapshot, and the restore function's
    /// client through its gate (no faults yet).
    async fn new(exec: &str, id: &str, kind: &str) -> Case {
        let rds = rds();
        if kind == "rds-instance" {
            instance(&rds, id, "db.t3.micro").await;
        } else {
            aurora(&rds, id).await;
        }
        pre_deploy(&gate("snapshot", PREFIX), id, kind, "v1").await;
        let gate = gate("restore", PREFIX);
        Case {
            clients: clients(&gate),
            gate,
            databases: json!([{"kind": kind, "id": id}]),
            exec: exec.to_owned(),
        }
    }

    async fn call(&self, action: Value) -> Result<Value, RollbackError> {
        let request = request("live", json!({}));
        handle(
            &self.clients,
            envelope(action, self.databases.clone(), request, &self.exec),
        )
        .await
    }

    /// `start` until it answers, retrying what Step Functions would retry.
    async fn start(&self, resolved: &Value) -> StartOutput {
        let action = json!({"action": "start", "resolved": resolved});
        for _ in 0..MAX_ATTEMPTS {
            match self.call(action.clone()).await {
                Ok(out) => return serde_json::from_value(out).unwrap(),
                Err(e) if e.is_retryable() => {}
                Err(e) => panic!("start failed: {e}\n{}", self.gate.proxy().report()),
            }
        }
        panic!("start did not answer within {MAX_ATTEMPTS} attempts");
    }
}

/// Restores `id` with `fault` on the first `operation` call, and checks the end state.
async fn start_survives(exec: &str, id: &str, kind: &str, operation: &str, fault: FaultKind) {
    let case = Case::new(exec, id, kind).await;
    let resolved = case.call(json!({"action": "resolve"})).await.unwrap()["databases"].clone();
    case.gate
        .proxy()
        .set_schedule(FaultSchedule::none().fail_next(1, operation, fault));
    let out = case.start(&resolved).await;
    assert_eq!(
        case.gate.proxy().faulted_count(),
        1,
        "the fault never fired: {}",
        case.gate.proxy().report()
    );

    let copy = ids::restore_identifier(id, &ExecutionId::new(exec), false);
    assert_eq!(out.databases[0].target, copy);
    let rds = rds();
    let tags = |list: Option<&[aws_sdk_rds::types::Tag]>| -> Vec<(String, String)> {
        list.unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or("").to_owned(),
                    t.value().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let ours = ("rollback:execution".to_owned(), exec.to_owned());
    if kind == "rds-instance" {
        let state = instance_state(&rds, &copy).await.expect("the copy exists");
        assert!(tags(state.tag_list.as_deref()).contains(&ours), "{state:?}");
    } else {
        let state = cluster_state(&rds, &copy).await.expect("the copy exists");
        assert!(tags(state.tag_list.as_deref()).contains(&ours), "{state:?}");
        // Both members (the fixture's two), in the copy; a repeated create that replaced the
        // cluster would have dropped them.
        let members = [format!("{copy}-1"), format!("{copy}-2")];
        assert_eq!(out.databases[0].instances, members);
        for member in &members {
            let member = instance_state(&rds, member)
                .await
                .expect("the member exists");
            assert_eq!(member.db_cluster_identifier(), Some(copy.as_str()));
        }
        assert_eq!(state.db_cluster_members().len(), 2, "{state:?}");
    }
    // Exactly one copy of this database, and the live one untouched.
    let live_and_copies: Vec<String> = if kind == "rds-instance" {
        let out = rds.describe_db_instances().send().await.unwrap();
        out.db_instances()
            .iter()
            .filter_map(|d| d.db_instance_identifier().map(str::to_owned))
            .filter(|d| d.starts_with(id) && d.len() > id.len())
            .collect()
    } else {
        let out = rds.describe_db_clusters().send().await.unwrap();
        out.db_clusters()
            .iter()
            .filter_map(|d| d.db_cluster_identifier().map(str::to_owned))
            .filter(|d| d.starts_with(id) && d.len() > id.len())
            .collect()
    };
    assert_eq!(live_and_copies, [copy]);
    assert!(
        if kind == "rds-instance" {
            instance_state(&rds, id).await.is_some()
        } else {
            cluster_state(&rds, id).await.is_some()
        },
        "the live database is still there"
    );
}

#[tokio::test]
async fn instance_restore_answer_lost() {
    start_survives(
        "sf-x1",
        "sf-i1",
        "rds-instance",
        "RestoreDBInstanceFromDBSnapshot",
        FaultKind::DropAfterForward,
    )
    .await;
}

#[tokio::test]
async fn instance_restore_500_after_it_was_done() {
    start_survives(
        "sf-x2",
        "sf-i2",
        "rds-instance",
        "RestoreDBInstanceFromDBSnapshot",
        FaultKind::ErrorAfterForward,
    )
    .await;
}

#[tokio::test]
async fn instance_restore_throttled() {
    start_survives(
        "sf-x3",
        "sf-i3",
        "rds-instance",
        "RestoreDBInstanceFromDBSnapshot",
        FaultKind::Throttle,
    )
    .await;
}

#[tokio::test]
async fn cluster_restore_answer_lost() {
    start_survives(
        "sf-x4",
        "sf-c4",
        "aurora-cluster",
        "RestoreDBClusterFromSnapshot",
        FaultKind::DropAfterForward,
    )
    .await;
}

#[tokio::test]
async fn cluster_restore_500_after_it_was_done() {
    start_survives(
        "sf-x5",
        "sf-c5",
        "aurora-cluster",
        "RestoreDBClusterFromSnapshot",
        FaultKind::ErrorAfterForward,
    )
    .await;
}

#[tokio::test]
async fn cluster_restore_throttled() {
    start_survives(
        "sf-x6",
        "sf-c6",
        "aurora-cluster",
        "RestoreDBClusterFromSnapshot",
        FaultKind::Throttle,
    )
    .await;
}

#[tokio::test]
async fn cluster_member_answer_lost() {
    start_survives(
        "sf-x7",
        "sf-c7",
        "aurora-cluster",
        "CreateDBInstance",
        FaultKind::DropAfterForward,
    )
    .await;
}

#[tokio::test]
async fn cluster_member_500_after_it_was_done() {
    start_survives(
        "sf-x8",
        "sf-c8",
        "aurora-cluster",
        "CreateDBInstance",
        FaultKind::ErrorAfterForward,
    )
    .await;
}

#[tokio::test]
async fn cluster_member_throttled() {
    start_survives(
        "sf-x9",
        "sf-c9",
        "aurora-cluster",
        "CreateDBInstance",
        FaultKind::Throttle,
    )
    .await;
}

/// Someone else's database at the copy's name: `start` refuses rather than adopt it.
#[tokio::test]
async fn a_copy_name_taken_by_someone_else_is_not_adopted() {
    let case = Case::new("sf-x10", "sf-c10", "aurora-cluster").await;
    let resolved = case.call(json!({"action": "resolve"})).await.unwrap()["databases"].clone();
    let copy = ids::restore_identifier("sf-c10", &ExecutionId::new("sf-x10"), false);
    aurora(&rds(), &copy).await;
    let err = case
        .call(json!({"action": "start", "resolved": resolved}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not this execution's"), "{err}");
}
