//! Anyone in the account with `lambda:InvokeFunction` on the restore function can send it any
//! envelope. `start` and `swap` (live) must refuse every one that lacks a signed decision
//! covering databases for this execution and plan, and change nothing: no RDS call beyond
//! reading, no copy, no rename.

mod common;

use common::*;
use rollback_core::Scope;
use rollback_moto::MotoServer;
use serde_json::{Value, json};

/// Every database here is named `di-…`: the roles' `DatabaseIdPrefix`.
const PREFIX: &str = "di";
const EXEC: &str = "di-exec";

/// RDS operations that change something; none may reach moto.
const CHANGES: &[&str] = &[
    "RestoreDBInstanceFromDBSnapshot",
    "RestoreDBInstanceToPointInTime",
    "RestoreDBClusterFromSnapshot",
    "RestoreDBClusterToPointInTime",
    "CreateDBInstance",
    "ModifyDBInstance",
    "ModifyDBCluster",
    "AddTagsToResource",
    "DeleteDBInstance",
    "DeleteDBCluster",
];

#[tokio::test]
async fn start_and_swap_refuse_without_a_decision_that_covers_them() {
    let rds = rds();
    instance(&rds, "di-db", "db.t3.micro").await;
    pre_deploy(&gate("snapshot", PREFIX), "di-db", "rds-instance", "v1").await;
    let databases = json!([{"kind": "rds-instance", "id": "di-db"}]);
    let request = request("live", json!({}));
    let gate = gate("restore", PREFIX);
    let clients = clients(&gate);
    let resolved = rollback_restore::handle(
        &clients,
        unapproved(
            json!({"action": "resolve"}),
            databases.clone(),
            request.clone(),
            EXEC,
        ),
    )
    .await
    .unwrap()["databases"]
        .clone();

    let actions = [
        json!({"action": "start", "resolved": resolved}),
        json!({"action": "swap"}),
    ];
    let mut refused = 0;
    for action in actions {
        let envelope = unapproved(action.clone(), databases.clone(), request.clone(), EXEC);
        let cases = rollback_moto::decision::refusal_cases(
            MotoServer::shared(),
            &envelope,
            Scope::APP_AND_DATABASE,
        )
        .await;
        assert_eq!(cases.len(), 8);
        for (case, input) in cases {
            let err = rollback_restore::handle(&clients, input)
                .await
                .expect_err(&format!("{} with {case} was not refused", action["action"]));
            assert_eq!(err.error_name(), "Rollback.NotApproved", "{case}: {err}");
            assert!(
                err.to_string().contains("nothing was changed"),
                "{case}: {err}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 16);

    let changes: Vec<String> = gate
        .proxy()
        .log()
        .iter()
        .map(|r| r.request.operation.clone())
        .filter(|op| CHANGES.contains(&op.as_str()))
        .collect();
    assert!(changes.is_empty(), "refused calls changed RDS: {changes:?}");
    let copies: Vec<String> = rds
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
        .iter()
        .filter_map(|d| d.db_instance_identifier().map(str::to_owned))
        .filter(|id| id.starts_with("di-db-"))
        .collect();
    assert!(copies.is_empty(), "copies were made: {copies:?}");

    // The same start with the decision the state machine passes goes ahead.
    let mut approved = unapproved(
        json!({"action": "start", "resolved": resolved}),
        databases,
        request,
        EXEC,
    );
    rollback_moto::decision::approve(MotoServer::shared(), &mut approved, Scope::APP_AND_DATABASE)
        .await;
    let out: Value = rollback_restore::handle(&clients, approved).await.unwrap();
    assert_eq!(out["databases"][0]["created_now"], true, "{out}");
}
