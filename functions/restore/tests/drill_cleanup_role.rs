//! The restore binary runs as two deployments (infra/template.yaml): `RestoreFunction`, whose
//! role restores, renames and tags but may not delete, and `DrillCleanupFunction`, which serves
//! only `cleanup-drill` and whose role may delete a drill's tagged scratch copies and nothing
//! else (no rename, no tag). IAM cannot see a rename's new name, so one role with both could
//! rename a live database into a drill copy's name, tag it and delete it. Each call here goes
//! through the IAM gate (the drill's check of the template's roles) to moto.

mod common;

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use common::{
    aurora, clients, cluster_state, envelope, gate, instance, instance_state, rds, request,
};
use rollback_core::contract::restore::{CleanupOutput, StartOutput, tags};
use rollback_core::{ErrorKind, ExecutionId, RollbackError, ids};
use rollback_fault_proxy::gate::IamGate;
use rollback_fault_proxy::{FaultKind, FaultSchedule};
use rollback_restore::db::error_code;
use rollback_restore::{ACTIONS_ENV, Clients, Served, handle_served};
use serde_json::{Value, json};

/// The roles cover databases named `dcr` and `dcr-*` (`DatabaseIdPrefix`).
const PREFIX: &str = "dcr";

/// A pre-deploy snapshot, by the snapshot function under its own gate.
async fn pre_deploy(db: &str, kind: &str) {
    common::pre_deploy(&gate("snapshot", PREFIX), db, kind, "v1").await;
}

/// One deployment of the restore binary: its role's gate, its clients through that gate, and
/// the actions it serves.
struct Deployment {
    gate: IamGate,
    clients: Clients,
    served: Served,
}

impl Deployment {
    /// `RestoreFunction`: the restore role.
    fn restore() -> Deployment {
        Deployment::new("restore", Served::restore())
    }

    /// `DrillCleanupFunction`: the drill-cleanup role.
    fn drill_cleanup() -> Deployment {
        Deployment::new("drill-cleanup", Served::drill_cleanup())
    }

    fn new(function: &str, served: Served) -> Deployment {
        let gate = gate(function, PREFIX);
        Deployment {
            clients: clients(&gate),
            gate,
            served,
        }
    }

    /// Runs `action` (a drill) on the one database `db` of kind `kind`.
    async fn call(
        &self,
        action: Value,
        db: &str,
        kind: &str,
        exec: &str,
    ) -> Result<Value, RollbackError> {
        let databases = json!([{"kind": kind, "id": db}]);
        handle_served(
            &self.clients,
            &self.served,
            envelope(action, databases, request("drill", json!({})), exec),
        )
        .await
    }
}

/// The restore deployment makes the drill's scratch copy (tagged as one) and checks it is up.
async fn drill_copy(restore: &Deployment, db: &str, kind: &str, exec: &str) -> String {
    let resolved = restore
        .call(json!({"action": "resolve"}), db, kind, exec)
        .await
        .unwrap()["databases"]
        .clone();
    let started: StartOutput = serde_json::from_value(
        restore
            .call(
                json!({"action": "start", "resolved": resolved}),
                db,
                kind,
                exec,
            )
            .await
            .unwrap(),
    )
    .unwrap();
    let scratch = ids::restore_identifier(db, &ExecutionId::new(exec), true);
    assert_eq!(started.databases[0].target, scratch);
    scratch
}

async fn cleanup_until_complete(cleanup: &Deployment, db: &str, kind: &str, exec: &str) {
    for _ in 0..10 {
        let out: CleanupOutput = serde_json::from_value(
            cleanup
                .call(json!({"action": "cleanup-drill"}), db, kind, exec)
                .await
                .unwrap(),
        )
        .unwrap();
        if out.complete {
            return;
        }
    }
    panic!("cleanup-drill of {db} did not complete");
}

fn access_denied<T, E: ProvideErrorMetadata, R>(what: &str, result: Result<T, SdkError<E, R>>) {
    match result {
        Ok(_) => panic!("{what}: allowed"),
        Err(e) => assert_eq!(error_code(&e), Some("AccessDenied"), "{what}"),
    }
}

#[tokio::test]
async fn only_the_drill_cleanup_deployment_deletes_and_it_may_not_rename_or_tag() {
    let rds = rds();
    let (db, exec) = ("dcr-db", "exec-dcr");
    instance(&rds, db, "db.t3.micro").await;
    pre_deploy(db, "rds-instance").await;
    let restore = Deployment::restore();
    let cleanup = Deployment::drill_cleanup();

    let scratch = drill_copy(&restore, db, "rds-instance", exec).await;
    restore.gate.assert_allowed();
    let copy = instance_state(&rds, &scratch)
        .await
        .expect("the drill copy");
    assert!(
        copy.tag_list()
            .iter()
            .any(|t| t.key() == Some(tags::ROLE) && t.value() == Some("drill")),
        "{:?}",
        copy.tag_list()
    );

    // The restore deployment does not serve cleanup-drill: refused before any call.
    let err = restore
        .call(json!({"action": "cleanup-drill"}), db, "rds-instance", exec)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "invalid input: action: cleanup-drill runs in the DrillCleanupFunction deployment \
         (its role may delete drill copies; this one may not)"
    );
    // Nor may its role delete the tagged drill copy when asked directly.
    access_denied(
        "restore deletes the drill copy",
        restore
            .clients
            .rds
            .delete_db_instance()
            .db_instance_identifier(&scratch)
            .skip_final_snapshot(true)
            .send()
            .await,
    );
    let refused = restore.gate.take_violations();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].action, "rds:DeleteDBInstance");
    assert!(
        refused[0]
            .policy
            .ends_with("no statement allows rds:DeleteDBInstance"),
        "{}",
        refused[0]
    );
    assert!(instance_state(&rds, &scratch).await.is_some());

    // The drill-cleanup role may neither rename a live database into a drill copy's name, nor
    // tag anything, nor delete what is not a tagged drill copy.
    let live_arn = instance_state(&rds, db)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_owned();
    let untagged = "dcr-db-drill-untagged";
    instance(&rds, untagged, "db.t3.micro").await;
    access_denied(
        "drill-cleanup renames the live database",
        cleanup
            .clients
            .rds
            .modify_db_instance()
            .db_instance_identifier(db)
            .new_db_instance_identifier(format!("{db}-drill-x"))
            .apply_immediately(true)
            .send()
            .await,
    );
    let drill_tag = aws_sdk_rds::types::Tag::builder()
        .key(tags::ROLE)
        .value("drill")
        .build();
    access_denied(
        "drill-cleanup tags the live database",
        cleanup
            .clients
            .rds
            .add_tags_to_resource()
            .resource_name(&live_arn)
            .tags(drill_tag.clone())
            .send()
            .await,
    );
    access_denied(
        "drill-cleanup deletes the live database",
        cleanup
            .clients
            .rds
            .delete_db_instance()
            .db_instance_identifier(db)
            .skip_final_snapshot(true)
            .send()
            .await,
    );
    access_denied(
        "drill-cleanup deletes a drill name without the drill tag",
        cleanup
            .clients
            .rds
            .delete_db_instance()
            .db_instance_identifier(untagged)
            .skip_final_snapshot(true)
            .send()
            .await,
    );
    let refused: Vec<String> = cleanup
        .gate
        .take_violations()
        .into_iter()
        .map(|v| format!("{} {}", v.action, v.resource))
        .collect();
    let arn = |id: &str| format!("arn:aws:rds:us-east-1:123456789012:db:{id}");
    assert_eq!(
        refused,
        [
            format!("rds:ModifyDBInstance {}", arn(db)),
            format!("rds:AddTagsToResource {live_arn}"),
            format!("rds:DeleteDBInstance {}", arn(db)),
            format!("rds:DeleteDBInstance {}", arn(untagged)),
        ]
    );
    let live = instance_state(&rds, db).await.expect("the live database");
    assert!(!live.tag_list().iter().any(|t| t.key() == Some(tags::ROLE)));
    assert!(instance_state(&rds, untagged).await.is_some());

    // The drill-cleanup deployment serves nothing of the restore's.
    let err = cleanup
        .call(json!({"action": "swap"}), db, "rds-instance", exec)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: action: swap runs in the RestoreFunction deployment \
         (its role may restore, rename and tag databases; this one may not)"
    );

    // What it is for: cleanup-drill deletes the tagged copy, within its role.
    cleanup_until_complete(&cleanup, db, "rds-instance", exec).await;
    assert!(instance_state(&rds, &scratch).await.is_none());
    assert!(instance_state(&rds, db).await.is_some());
    cleanup.gate.assert_allowed();
}

#[tokio::test]
async fn the_drill_cleanup_role_deletes_a_drill_cluster_and_its_instances() {
    let rds = rds();
    let (db, exec) = ("dcr-cl", "exec-dcr-cl");
    aurora(&rds, db).await;
    pre_deploy(db, "aurora-cluster").await;
    let restore = Deployment::restore();
    let cleanup = Deployment::drill_cleanup();
    let scratch = drill_copy(&restore, db, "aurora-cluster", exec).await;
    restore.gate.assert_allowed();

    cleanup_until_complete(&cleanup, db, "aurora-cluster", exec).await;
    cleanup.gate.assert_allowed();
    assert!(cluster_state(&rds, &scratch).await.is_none());
    assert!(cluster_state(&rds, db).await.is_some());
}

/// Each deployment's `ROLLBACK_RESTORE_ACTIONS` in infra/template.yaml (a line scan: the
/// template's CloudFormation tags are not plain YAML).
fn template_actions(logical_id: &str) -> Option<String> {
    let path = rollback_moto::workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let header = format!("{logical_id}:");
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if line.len() - trimmed.len() == 2 && !trimmed.starts_with('#') {
            inside = trimmed == header;
        } else if inside && let Some(v) = trimmed.strip_prefix(&format!("{ACTIONS_ENV}:")) {
            return Some(v.trim().to_owned());
        }
    }
    None
}

#[test]
fn the_template_gives_each_deployment_its_actions() {
    let of = |id: &str| {
        Served::from_env(template_actions(id).as_deref()).unwrap_or_else(|e| panic!("{id}: {e}"))
    };
    assert_eq!(of("RestoreFunction"), Served::restore());
    assert_eq!(of("DrillCleanupFunction"), Served::drill_cleanup());
    assert!(!Served::restore().serves("cleanup-drill"));
    assert!(Served::drill_cleanup().serves("cleanup-drill"));
    assert!(!Served::drill_cleanup().serves("start"));
    // A deployment without the variable, or with an action that does not exist, does not start.
    assert!(Served::from_env(None).unwrap_err().contains(ACTIONS_ENV));
    let err = Served::from_env(Some("start,delete-everything")).unwrap_err();
    assert!(
        err.contains("\"delete-everything\" is not a restore action"),
        "{err}"
    );
}

/// After a delete whose answer was lost, a 5xx after the delete was carried out, or a throttle
/// before it, `cleanup-drill` observes the copy (deleting, or gone) and completes without
/// deleting anything else.
#[tokio::test]
async fn cleanup_drill_completes_on_retry_after_each_fault_on_its_deletes() {
    let rds = rds();
    for (n, kind) in [
        FaultKind::DropAfterForward,
        FaultKind::ErrorAfterForward,
        FaultKind::Throttle,
    ]
    .into_iter()
    .enumerate()
    {
        for (db_kind, operation) in [
            ("rds-instance", "DeleteDBInstance"),
            ("aurora-cluster", "DeleteDBCluster"),
        ] {
            let db = format!("dcr-f{n}-{}", &db_kind[..3]);
            let exec = format!("exec-{db}");
            if db_kind == "rds-instance" {
                instance(&rds, &db, "db.t3.micro").await;
            } else {
                aurora(&rds, &db).await;
            }
            pre_deploy(&db, db_kind).await;
            let restore = Deployment::restore();
            let scratch = drill_copy(&restore, &db, db_kind, &exec).await;
            let cleanup = Deployment::drill_cleanup();
            cleanup
                .gate
                .proxy()
                .set_schedule(FaultSchedule::none().fail_next(1, operation, kind));

            let first = cleanup
                .call(json!({"action": "cleanup-drill"}), &db, db_kind, &exec)
                .await;
            // The SDK retries each of these once itself; what the function then sees of the
            // copy (gone) decides, not the retry's answer.
            if let Err(e) = &first {
                panic!("{kind:?} on {operation}: the copy is gone, yet cleanup-drill said {e}");
            }
            assert_eq!(
                cleanup.gate.proxy().faulted_count(),
                1,
                "{kind:?} on {operation} was injected"
            );
            // After a fault that followed the delete, the SDK's own retry asks to delete a
            // copy that is gone: IAM refuses it (no tag left to satisfy the condition), and the
            // function, having observed the copy gone, reports success. Nothing else is refused.
            let refused = cleanup.gate.take_violations();
            let expected = if kind == FaultKind::Throttle { 0 } else { 1 };
            assert_eq!(refused.len(), expected, "{kind:?}: {refused:?}");
            for v in &refused {
                assert_eq!(v.action, format!("rds:{operation}"), "{v}");
                assert!(v.resource.ends_with(&format!(":{scratch}")), "{v}");
            }
            cleanup_until_complete(&cleanup, &db, db_kind, &exec).await;
            let gone = if db_kind == "rds-instance" {
                instance_state(&rds, &scratch).await.is_none()
            } else {
                cluster_state(&rds, &scratch).await.is_none()
            };
            assert!(gone, "{kind:?} on {operation}: the copy {scratch} is gone");
            let live = if db_kind == "rds-instance" {
                instance_state(&rds, &db)
                    .await
                    .map(|i| i.db_instance_status)
            } else {
                cluster_state(&rds, &db).await.map(|c| c.status)
            };
            assert_eq!(
                live,
                Some(Some("available".to_owned())),
                "{kind:?} on {operation}: the live database {db} is untouched"
            );
            cleanup.gate.assert_allowed();
        }
    }
}
