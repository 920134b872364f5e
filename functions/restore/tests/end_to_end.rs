//! The database rollback driven end to end against moto by calling the library functions in
//! the order the state machine does: resolve → create backup → start → status → swap.

mod common;

use common::*;
use rollback_core::contract::restore::{ResolveOutput, StartOutput, StatusOutput, SwapOutput};
use rollback_core::contract::snapshot::SnapshotOutput;
use rollback_core::{ExecutionId, ids};
use serde_json::json;

#[tokio::test]
async fn database_rollback_end_to_end() {
    let rds = rds();
    let db = "e2e-mint-db";
    // The functions' calls go through their IAM gates (their roles for databases `e2e-…`).
    let gates = Gates::start("e2e");
    instance(&rds, db, "db.m5.large").await;
    // The pipeline snapshots before the release; then the bad release rolls out.
    let pre_deploy_at = gates.pre_deploy(db, "rds-instance", "v41").await;
    let rolled_out_at = chrono::Utc::now();
    // Mark the live database so the test can tell it apart from the restored copy (moto derives
    // resource ids from the identifier, so they follow a rename).
    let arn = instance_state(&rds, db)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_owned();
    rds.add_tags_to_resource()
        .resource_name(arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("test:identity")
                .value("original")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The copy carries the source's own tags too (issue 11 item 3), so it is told apart by
    // the role tag the restore adds.
    let is_original = |i: &aws_sdk_rds::types::DbInstance| {
        let tags = i.tag_list();
        tags.iter().any(|t| t.key() == Some("test:identity"))
            && !tags.iter().any(|t| t.key() == Some("rollback:role"))
    };

    let exec = "alarm-mint-5xx-20240501T120000Z";
    let databases = json!([{"kind": "rds-instance", "id": db}]);
    let req = request("live", json!({}));
    let call = |action: serde_json::Value| envelope(action, databases.clone(), req.clone(), exec);

    // 1. resolve
    let resolved: ResolveOutput = serde_json::from_value(
        rollback_restore::handle(
            &gates.clients(),
            call(json!({"action": "resolve", "release_time": rolled_out_at})),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let resolution = &resolved.databases[0];
    assert_eq!(
        resolution.snapshot_id,
        ids::pre_deploy_snapshot_id("svc", "v41", db)
    );
    assert_eq!(resolution.snapshot_created_at, pre_deploy_at);

    // 2. back up the current state
    let backup: SnapshotOutput = serde_json::from_value(
        rollback_snapshot::handle(&gates.snapshot_clients(), call(json!({"action": "create"})))
            .await
            .unwrap(),
    )
    .unwrap();
    let backup_id = ids::rollback_snapshot_id("svc", &ExecutionId::new(exec), db);
    assert_eq!(backup.snapshots[0].snapshot_id, backup_id);
    let backup_status: SnapshotOutput = serde_json::from_value(
        rollback_snapshot::handle(&gates.snapshot_clients(), call(json!({"action": "status"})))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(backup_status.all_available);

    // 3. start the restore of the approved resolution
    let started: StartOutput = serde_json::from_value(
        rollback_restore::handle(
            &gates.clients(),
            call(json!({"action": "start", "resolved": resolved.databases})),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let restored_id = started.databases[0].target.clone();

    // 4. wait (bounded) until it is available
    let mut available = false;
    for _ in 0..10 {
        let status: StatusOutput = serde_json::from_value(
            rollback_restore::handle(&gates.clients(), call(json!({"action": "status"})))
                .await
                .unwrap(),
        )
        .unwrap();
        if status.all_available {
            available = true;
            break;
        }
    }
    assert!(
        available,
        "the restore did not become available within 10 polls"
    );

    // 5. swap (re-entrant: call until complete, bounded)
    let mut swap: Option<SwapOutput> = None;
    for _ in 0..5 {
        let out: SwapOutput = serde_json::from_value(
            rollback_restore::handle(&gates.clients(), call(json!({"action": "swap"})))
                .await
                .unwrap(),
        )
        .unwrap();
        let done = out.complete;
        swap = Some(out);
        if done {
            break;
        }
    }
    let swap = swap.unwrap();
    assert!(swap.complete);

    // Final state: the original identifier holds the restored data…
    let serving = instance_state(&rds, db)
        .await
        .expect("the identifier still has a database");
    assert!(
        serving
            .tag_list()
            .iter()
            .any(|t| t.key() == Some("rollback:snapshot")
                && t.value() == Some(resolution.snapshot_id.as_str()))
    );
    assert!(!is_original(&serving));
    assert_eq!(serving.db_instance_class(), Some("db.m5.large"));
    assert!(instance_state(&rds, &restored_id).await.is_none());
    // …the old database is kept aside…
    let aside = ids::aside_identifier(db, &ExecutionId::new(exec));
    assert_eq!(swap.aside, std::slice::from_ref(&aside));
    let kept = instance_state(&rds, &aside)
        .await
        .expect("old database kept aside");
    assert!(is_original(&kept));
    // …and the backup snapshot is present.
    let backup = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&backup_id)
        .send()
        .await
        .unwrap();
    assert_eq!(backup.db_snapshots()[0].status(), Some("available"));
}
