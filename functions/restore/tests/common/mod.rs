//! Shared fixtures of the restore tests against moto.
#![allow(dead_code)]

use aws_sdk_rds::Client;
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_fault_proxy::iam::StackValues;
use rollback_moto::MotoServer;
use rollback_restore::Clients;
use serde_json::{Value, json};

/// The test's own client (seeding and assertions): straight to moto, never IAM-checked.
pub fn rds() -> Client {
    Client::new(&MotoServer::shared().sdk_config())
}

/// The plan service of every [`envelope`]: it names the snapshots (`predeploy-svc-…`,
/// `rollback-svc-…`), which the snapshot role scopes by `ServiceName`.
pub const SERVICE: &str = "svc";

/// The stack the roles are resolved for: service [`SERVICE`], databases named `<prefix>` or
/// `<prefix>-…` (`DatabaseIdPrefix`).
pub fn stack(prefix: &str) -> StackValues {
    test_stack(SERVICE).parameter("DatabaseIdPrefix", prefix)
}

/// `function`'s IAM gate in front of moto, its role resolved with [`stack`]`(prefix)`: the
/// function's calls through it are checked against `infra/template.yaml`, and the test fails
/// when the gate is dropped if the role refused any.
pub fn gate(function: &str, prefix: &str) -> IamGate {
    IamGate::start(&MotoServer::shared().endpoint(), function, &stack(prefix))
}

/// One test's gates for the restore function and the snapshot function (which makes the
/// pre-deploy snapshots the restore resolves).
pub struct Gates {
    pub restore: IamGate,
    pub snapshot: IamGate,
}

impl Gates {
    /// Both gates, for databases named `<prefix>` or `<prefix>-…`.
    pub fn start(prefix: &str) -> Gates {
        Gates {
            restore: gate("restore", prefix),
            snapshot: gate("snapshot", prefix),
        }
    }

    /// The restore function's clients, through its gate.
    pub fn clients(&self) -> Clients {
        clients(&self.restore)
    }

    /// The snapshot function's clients, through its gate.
    pub fn snapshot_clients(&self) -> rollback_snapshot::Clients {
        snapshot_clients(&self.snapshot)
    }

    /// [`pre_deploy`] through this test's snapshot gate.
    pub async fn pre_deploy(
        &self,
        db: &str,
        kind: &str,
        release: &str,
    ) -> chrono::DateTime<chrono::Utc> {
        pre_deploy(&self.snapshot, db, kind, release).await
    }
}

/// Restore-binary clients through `gate` (a `restore` or `drill-cleanup` gate).
pub fn clients(gate: &IamGate) -> Clients {
    Clients::new(&gate.sdk_config(), MotoServer::shared().decision_key())
}

/// The snapshot function's clients through `gate` (a `snapshot` gate).
pub fn snapshot_clients(gate: &IamGate) -> rollback_snapshot::Clients {
    rollback_snapshot::Clients::new(&gate.sdk_config())
}

/// Creates a pre-deploy snapshot through the snapshot function (its clients from `snapshot`,
/// a `snapshot` gate) and returns its creation time.
pub async fn pre_deploy(
    snapshot: &IamGate,
    db: &str,
    kind: &str,
    release: &str,
) -> chrono::DateTime<chrono::Utc> {
    let out = rollback_snapshot::handle(
        &snapshot_clients(snapshot),
        envelope(
            json!({"action": "pre-deploy", "release": release}),
            json!([{"kind": kind, "id": db}]),
            json!({"trigger": {"kind": "manual"}, "reason": "deploy"}),
            &format!("deploy-{release}"),
        ),
    )
    .await
    .unwrap();
    serde_json::from_value(out["snapshots"][0]["created_at"].clone()).unwrap()
}

/// A PostgreSQL instance with a parameter group and security groups, so `start` has settings
/// to copy.
pub async fn instance(rds: &Client, id: &str, class: &str) {
    let group = format!("{id}-params");
    rds.create_db_parameter_group()
        .db_parameter_group_name(&group)
        .db_parameter_group_family("postgres15")
        .description("test")
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class(class)
        .engine("postgres")
        .engine_version("15.4")
        .master_username("admin")
        .master_user_password("password123")
        .allocated_storage(20)
        .backup_retention_period(7)
        .db_parameter_group_name(group)
        .vpc_security_group_ids("sg-0a1")
        .vpc_security_group_ids("sg-0b2")
        .send()
        .await
        .unwrap();
}

/// An Aurora PostgreSQL cluster with a writer and a reader of different classes.
pub async fn aurora(rds: &Client, id: &str) {
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .engine_version("15.4")
        .master_username("admin")
        .master_user_password("password123")
        .vpc_security_group_ids("sg-0c3")
        .send()
        .await
        .unwrap();
    for (n, class) in [(1, "db.r6g.large"), (2, "db.r6g.xlarge")] {
        rds.create_db_instance()
            .db_instance_identifier(format!("{id}-{n}"))
            .db_cluster_identifier(id)
            .db_instance_class(class)
            .engine("aurora-postgresql")
            .send()
            .await
            .unwrap();
    }
}

pub fn request(mode: &str, extra: Value) -> Value {
    let mut r = json!({"trigger": {"kind": "manual"}, "reason": "bad release",
                       "scope": "app+database", "mode": mode});
    if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(extra.clone());
    }
    r
}

/// The envelope of `action`, with the signed decision (app+database) the state machine would
/// pass after an approval.
pub fn envelope(action: Value, databases: Value, request: Value, execution: &str) -> Value {
    let mut envelope = unapproved(action, databases, request, execution);
    rollback_moto::decision::approve_blocking(
        MotoServer::shared(),
        &mut envelope,
        rollback_core::Scope::APP_AND_DATABASE,
    );
    envelope
}

/// The envelope of `action` without a decision (direct invokes).
pub fn unapproved(action: Value, databases: Value, request: Value, execution: &str) -> Value {
    let mut v = action;
    v["plan"] = json!({"service": SERVICE, "databases": databases});
    v["request"] = request;
    v["execution"] = json!(execution);
    v
}

pub async fn instance_state(rds: &Client, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
    rds.describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.db_instances().first().cloned())
}

pub async fn cluster_state(rds: &Client, id: &str) -> Option<aws_sdk_rds::types::DbCluster> {
    rds.describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.db_clusters().first().cloned())
}

pub async fn snapshot_ids(rds: &Client, db: &str) -> Vec<String> {
    let mut ids: Vec<String> = rds
        .describe_db_snapshots()
        .db_instance_identifier(db)
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

pub fn midpoint(
    a: chrono::DateTime<chrono::Utc>,
    b: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    a + (b - a) / 2
}
