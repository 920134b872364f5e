//! The snapshot actions against a real moto server. The function's calls go through its IAM
//! gate, checked against its role in `infra/template.yaml`; seeding and assertions go to moto
//! directly.

use aws_sdk_rds::Client;
use rollback_core::contract::snapshot::{SnapshotOutput, tags};
use rollback_core::{ErrorKind, ExecutionId, ids};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;
use rollback_moto::rds::Postgres;
use rollback_snapshot::{Clients, handle};
use serde_json::{Value, json};

/// The plan service of every [`envelope`]: it names the snapshots, which the role scopes by
/// `ServiceName` (`rollback-svc-*`, `predeploy-svc-*`).
const SERVICE: &str = "svc";

/// Every database here is named `snap-…`: the role's `DatabaseIdPrefix`.
const PREFIX: &str = "snap";

/// The test's own client (seeding and assertions): straight to moto, never IAM-checked.
fn rds() -> Client {
    Client::new(&MotoServer::shared().sdk_config())
}

/// The snapshot function's IAM gate in front of moto; the test fails when it is dropped if
/// the role refused a call.
fn snapshot_gate() -> IamGate {
    let stack = test_stack(SERVICE).parameter("DatabaseIdPrefix", PREFIX);
    IamGate::start(&MotoServer::shared().endpoint(), "snapshot", &stack)
}

/// The function's clients, through `gate`.
fn clients(gate: &IamGate) -> Clients {
    Clients::new(&gate.sdk_config())
}

fn envelope(action: Value, databases: Value, execution: &str) -> Value {
    let mut v = action;
    v["plan"] = json!({"service": SERVICE, "databases": databases});
    v["execution"] = json!(execution);
    v
}

fn out(v: Value) -> SnapshotOutput {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn create_is_idempotent_and_tags_the_backup() {
    let gate = snapshot_gate();
    let c = clients(&gate);
    let rds = rds();
    MotoServer::shared()
        .postgres_instance("snap-idem-db", Postgres::default())
        .await;
    let dbs = json!([{"kind": "rds-instance", "id": "snap-idem-db"}]);
    let mut input = envelope(json!({"action": "create"}), dbs, "exec-idem");
    input["request"] = json!({"trigger": {"kind": "manual"}, "reason": "r", "release": "v2"});

    let first = out(handle(&c, input.clone()).await.unwrap());
    let second = out(handle(&c, input).await.unwrap());

    let expected = ids::rollback_snapshot_id("svc", &ExecutionId::new("exec-idem"), "snap-idem-db");
    assert_eq!(first.snapshots.len(), 1);
    assert_eq!(first.snapshots[0].snapshot_id, expected);
    assert!(first.snapshots[0].created_now);
    assert_eq!(second.snapshots[0].snapshot_id, expected);
    assert!(
        !second.snapshots[0].created_now,
        "the retry must find the first snapshot"
    );
    assert!(second.all_available);
    assert!(second.snapshots[0].created_at.is_some());

    let manual = rds
        .describe_db_snapshots()
        .db_instance_identifier("snap-idem-db")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(manual.db_snapshots().len(), 1, "exactly one backup");

    let tags = MotoServer::shared().instance_snapshot_tags(&expected).await;
    for (k, v) in [
        (tags::EXECUTION, "exec-idem"),
        (tags::PURPOSE, "pre-rollback"),
        (tags::RELEASE, "v2"),
        (tags::SERVICE, "svc"),
    ] {
        assert!(
            tags.contains(&(k.to_owned(), v.to_owned())),
            "{k}={v} missing in {tags:?}"
        );
    }
}

#[tokio::test]
async fn cluster_snapshots_use_the_cluster_api() {
    let gate = snapshot_gate();
    let c = clients(&gate);
    let rds = rds();
    MotoServer::shared().aurora_postgres("snap-aurora").await;
    let dbs = json!([{"kind": "aurora-cluster", "id": "snap-aurora"}]);
    let input = envelope(json!({"action": "create"}), dbs.clone(), "exec-aurora");
    let first = out(handle(&c, input.clone()).await.unwrap());
    let again = out(handle(&c, input).await.unwrap());
    assert!(first.snapshots[0].created_now && !again.snapshots[0].created_now);

    let listed = rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(&first.snapshots[0].snapshot_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.db_cluster_snapshots()[0].db_cluster_identifier(),
        Some("snap-aurora")
    );

    let status = out(handle(
        &c,
        envelope(json!({"action": "status"}), dbs, "exec-aurora"),
    )
    .await
    .unwrap());
    assert_eq!(status.snapshots[0].status, "available");
    assert!(status.all_available);
}

#[tokio::test]
async fn status_without_create_is_snapshot_not_found() {
    let gate = snapshot_gate();
    let c = clients(&gate);
    MotoServer::shared()
        .postgres_instance("snap-missing-db", Postgres::default())
        .await;
    let dbs = json!([{"kind": "rds-instance", "id": "snap-missing-db"}]);
    let err = handle(&c, envelope(json!({"action": "status"}), dbs, "exec-never"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SnapshotNotFound);
    assert!(err.to_string().contains("snap-missing-db"), "{err}");
    assert!(err.to_string().contains("run create first"), "{err}");
}

#[tokio::test]
async fn pre_deploy_snapshots_carry_the_release() {
    let gate = snapshot_gate();
    let c = clients(&gate);
    MotoServer::shared()
        .postgres_instance("snap-predeploy-db", Postgres::default())
        .await;
    let dbs = json!([{"kind": "rds-instance", "id": "snap-predeploy-db"}]);
    let input = envelope(
        json!({"action": "pre-deploy", "release": "v1.4.0"}),
        dbs.clone(),
        "deploy-v1.4.0",
    );
    let first = out(handle(&c, input.clone()).await.unwrap());
    let id = ids::pre_deploy_snapshot_id("svc", "v1.4.0", "snap-predeploy-db");
    assert_eq!(first.snapshots[0].snapshot_id, id);
    assert!(!out(handle(&c, input).await.unwrap()).snapshots[0].created_now);
    let tags = MotoServer::shared().instance_snapshot_tags(&id).await;
    assert!(tags.contains(&(tags::PURPOSE.into(), "pre-deploy".into())));
    assert!(tags.contains(&(tags::RELEASE.into(), "v1.4.0".into())));

    let status = out(handle(
        &c,
        envelope(
            json!({"action": "status", "purpose": "pre-deploy", "release": "v1.4.0"}),
            dbs.clone(),
            "any",
        ),
    )
    .await
    .unwrap());
    assert_eq!(status.snapshots[0].snapshot_id, id);

    let err = handle(
        &c,
        envelope(json!({"action": "pre-deploy"}), dbs, "deploy-x"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().starts_with("invalid input: release:"),
        "{err}"
    );
}

#[tokio::test]
async fn drill_creates_nothing() {
    let gate = snapshot_gate();
    let c = clients(&gate);
    let rds = rds();
    MotoServer::shared()
        .postgres_instance("snap-drill-db", Postgres::default())
        .await;
    let dbs = json!([{"kind": "rds-instance", "id": "snap-drill-db"}]);
    let mut input = envelope(json!({"action": "create"}), dbs, "exec-drill");
    input["request"] = json!({"trigger": {"kind": "manual"}, "reason": "r", "mode": "drill"});
    let result = out(handle(&c, input.clone()).await.unwrap());
    assert!(result.drill && result.all_available);
    assert_eq!(result.snapshots[0].status, "skipped-drill");
    let manual = rds
        .describe_db_snapshots()
        .db_instance_identifier("snap-drill-db")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert!(manual.db_snapshots().is_empty());

    input["action"] = json!("status");
    let status = out(handle(&c, input).await.unwrap());
    assert_eq!(status.snapshots[0].status, "skipped-drill");
}

#[tokio::test]
async fn plan_and_input_mistakes_name_the_field() {
    let gate = snapshot_gate();
    let c = clients(&gate);
    MotoServer::shared()
        .aurora_postgres("snap-kind-cluster")
        .await;

    // A database that does not exist.
    let err = handle(
        &c,
        envelope(
            json!({"action": "create"}),
            json!([{"kind": "rds-instance", "id": "snap-no-such-db"}]),
            "e",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidPlan);
    assert!(err.to_string().contains("plan.databases[0].id"), "{err}");

    // A cluster member listed as an instance.
    let err = handle(
        &c,
        envelope(
            json!({"action": "create"}),
            json!([{"kind": "rds-instance", "id": "snap-kind-cluster-1"}]),
            "e",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidPlan);
    assert!(err.to_string().contains("plan.databases[0].kind"), "{err}");

    // An Aurora cluster listed as DocumentDB.
    let err = handle(
        &c,
        envelope(
            json!({"action": "create"}),
            json!([{"kind": "docdb-cluster", "id": "snap-kind-cluster"}]),
            "e",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidPlan);
    assert!(err.to_string().contains("aurora-cluster"), "{err}");

    // Invalid identifier in the plan: rejected before any AWS call.
    let err = handle(
        &c,
        envelope(
            json!({"action": "create"}),
            json!([{"kind": "rds-instance", "id": "bad--id"}]),
            "e",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidPlan);
    assert!(err.to_string().contains("plan.databases[0].id"), "{err}");

    // A filter naming a database outside the plan.
    let err = handle(
        &c,
        envelope(
            json!({"action": "create", "databases": ["other"]}),
            json!([{"kind": "aurora-cluster", "id": "snap-kind-cluster"}]),
            "e",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("databases[0]"), "{err}");

    // Unknown action.
    let err = handle(
        &c,
        envelope(
            json!({"action": "delete"}),
            json!([{"kind": "aurora-cluster", "id": "snap-kind-cluster"}]),
            "e",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// A real PostgreSQL serving TLS with a generated CA, its secret in moto as `svc/<name>` (the
/// role reads the stack's `<service>/…` secrets), and an `accounts` table of `rows` rows.
async fn baseline_database(name: &str, rows: u32) -> (rollback_postgres::PostgresServer, String) {
    let pg = rollback_postgres::PostgresServer::start_tls_async(rollback_postgres::LOOPBACK_NAMES)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    pg.psql(&format!(
        "create table accounts (id int); insert into accounts select generate_series(1, {rows})"
    ))
    .unwrap();
    let arn = aws_sdk_secretsmanager::Client::new(&MotoServer::shared().sdk_config())
        .create_secret()
        .name(format!("svc/{name}"))
        .secret_string(pg.rds_secret().to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    (pg, arn)
}

fn baseline_plan(db: &str, secret: &str, query: &str) -> Value {
    json!({"service": SERVICE, "databases": [{"kind": "rds-instance", "id": db}],
    "smoke": {"sql": [
        {"name": "accounts rows", "database": db, "secret_arn": secret, "query": query,
         "compare": {"op": "ge", "baseline": "pre-deploy-snapshot"}},
        {"name": "answers", "database": db, "secret_arn": secret, "query": "select 1",
         "expect_rows": 1}
    ]}})
}

#[tokio::test]
async fn pre_deploy_records_baselines_as_snapshot_tags() {
    let gate = snapshot_gate();
    let c = clients(&gate);
    MotoServer::shared()
        .postgres_instance("snap-baseline-db", Postgres::default())
        .await;
    let (pg, secret) = baseline_database("baseline-db", 1204).await;
    let plan = baseline_plan("snap-baseline-db", &secret, "select count(*) from accounts");
    let input = json!({"action": "pre-deploy", "release": "v7", "plan": plan,
        "execution": "deploy-v7"});
    out(handle(&c, input.clone()).await.unwrap());
    let id = ids::pre_deploy_snapshot_id("svc", "v7", "snap-baseline-db");
    let tags = MotoServer::shared().instance_snapshot_tags(&id).await;
    assert!(
        tags.contains(&("rollback:baseline:accounts rows".into(), "1204".into())),
        "{tags:?}"
    );
    // Only probes that compare with a baseline are recorded.
    assert!(
        !tags.iter().any(|(k, _)| k.ends_with(":answers")),
        "{tags:?}"
    );
    // A second call finds the snapshot and leaves its baseline as it was taken.
    pg.psql("insert into accounts values (0)").unwrap();
    let again = out(handle(&c, input).await.unwrap());
    assert!(!again.snapshots[0].created_now);
    let tags = MotoServer::shared().instance_snapshot_tags(&id).await;
    assert!(tags.contains(&("rollback:baseline:accounts rows".into(), "1204".into())));
}

#[tokio::test]
async fn a_baseline_that_cannot_be_recorded_stops_the_snapshot() {
    let gate = snapshot_gate();
    let c = clients(&gate);
    let rds = rds();
    MotoServer::shared()
        .postgres_instance("snap-nobase-db", Postgres::default())
        .await;
    let (_pg, secret) = baseline_database("nobase-db", 3).await;
    for (query, says) in [
        ("select count(*) from no_such_table", "no_such_table"),
        ("select 'v42'", "not a number"),
    ] {
        let plan = baseline_plan("snap-nobase-db", &secret, query);
        let err = handle(
            &c,
            json!({"action": "pre-deploy", "release": "v8", "plan": plan,
                "execution": "deploy-v8"}),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotFailed, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("accounts rows")
                && text.contains(says)
                && text.contains("nothing was snapshotted"),
            "{text}"
        );
    }
    let id = ids::pre_deploy_snapshot_id("svc", "v8", "snap-nobase-db");
    let found = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&id)
        .send()
        .await;
    assert!(
        found.map(|o| o.db_snapshots().is_empty()).unwrap_or(true),
        "no snapshot without its baseline"
    );
}
