//! The restore actions against a real moto server.

mod common;

use common::*;
use rollback_core::contract::restore::{
    CleanupOutput, ResolveOutput, StartOutput, StatusOutput, SwapOutput, SwapState,
};
use rollback_core::{ErrorKind, ExecutionId, ids};
use rollback_fault_proxy::gate::IamGate;
use rollback_restore::handle;
use serde_json::{Value, json};

/// Every database here is named `res-…`: the roles' `DatabaseIdPrefix`. The functions'
/// calls go through their IAM gates ([`Gates`]), checked against their roles.
const PREFIX: &str = "res";

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn resolve_prefers_the_pre_deploy_snapshot_before_the_cutoff() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    instance(&rds, "res-pick-db", "db.t3.micro").await;
    instance(&rds, "res-pick-other", "db.t3.micro").await;
    let v1 = gates.pre_deploy("res-pick-db", "rds-instance", "v1").await;
    gates
        .pre_deploy("res-pick-other", "rds-instance", "v1")
        .await;
    // A newer manual snapshot without our tags, still before the cutoff.
    let manual = rds
        .create_db_snapshot()
        .db_instance_identifier("res-pick-db")
        .db_snapshot_identifier("res-pick-db-by-hand")
        .send()
        .await
        .unwrap();
    let manual_at = manual
        .db_snapshot()
        .unwrap()
        .snapshot_create_time()
        .unwrap();
    let manual_at =
        chrono::DateTime::from_timestamp(manual_at.secs(), manual_at.subsec_nanos()).unwrap();
    let v2 = gates.pre_deploy("res-pick-db", "rds-instance", "v2").await;
    assert!(
        v1 < manual_at && manual_at < v2,
        "snapshots must have distinct times"
    );
    let cutoff = midpoint(manual_at, v2);

    let out: ResolveOutput = parse(
        handle(
            &gates.clients(),
            envelope(
                json!({"action": "resolve"}),
                json!([{"kind": "rds-instance", "id": "res-pick-db"}]),
                request("live", json!({"cutoff": cutoff})),
                "exec-pick",
            ),
        )
        .await
        .unwrap(),
    );
    assert!(out.in_scope);
    assert_eq!(out.cutoff, cutoff);
    let r = &out.databases[0];
    assert_eq!(
        r.snapshot_id,
        ids::pre_deploy_snapshot_id("svc", "v1", "res-pick-db")
    );
    assert_eq!(r.snapshot_created_at, v1);
    assert_eq!(r.snapshot_type, "manual");
    assert_eq!(r.release.as_deref(), Some("v1"));
    assert_eq!(r.data_loss.from, v1);
    assert!(r.data_loss.seconds >= 0);
    let note = &out.notes[0];
    assert_eq!(note.source, "pre-deploy");
    // automated + v1 + by-hand + v2 (the other instance's snapshot is not listed at all)
    assert_eq!(note.considered, 4, "{note:?}");
    assert!(
        note.explanation.contains("1 created after the cutoff"),
        "{}",
        note.explanation
    );

    // The release time from deploy-undo is the cutoff when the request has none.
    let out: ResolveOutput = parse(
        handle(
            &gates.clients(),
            envelope(
                json!({"action": "resolve", "release_time": v2 + chrono::Duration::milliseconds(1)}),
                json!([{"kind": "rds-instance", "id": "res-pick-db"}]),
                request("live", json!({})),
                "exec-pick",
            ),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        out.databases[0].snapshot_id,
        ids::pre_deploy_snapshot_id("svc", "v2", "res-pick-db")
    );
}

#[tokio::test]
async fn resolve_falls_back_to_the_automated_snapshot() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    instance(&rds, "res-auto-db", "db.t3.micro").await;
    let out: ResolveOutput = parse(
        handle(
            &gates.clients(),
            envelope(
                json!({"action": "resolve"}),
                json!([{"kind": "rds-instance", "id": "res-auto-db"}]),
                request("live", json!({})),
                "exec-auto",
            ),
        )
        .await
        .unwrap(),
    );
    let r = &out.databases[0];
    assert!(
        r.snapshot_id.starts_with("rds:res-auto-db"),
        "{}",
        r.snapshot_id
    );
    assert_eq!(r.snapshot_type, "automated");
    assert_eq!(out.notes[0].source, "fallback");
    assert_eq!(
        out.cutoff_source,
        rollback_core::contract::restore::CutoffSource::Now
    );
}

#[tokio::test]
async fn resolve_without_an_eligible_snapshot_explains_the_search() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    instance(&rds, "res-none-db", "db.t3.micro").await;
    let cutoff = chrono::Utc::now() - chrono::Duration::days(1);
    let err = handle(
        &gates.clients(),
        envelope(
            json!({"action": "resolve"}),
            json!([{"kind": "rds-instance", "id": "res-none-db"}]),
            request("live", json!({"cutoff": cutoff})),
            "exec-none",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SnapshotNotFound);
    let text = err.to_string();
    assert!(text.contains("res-none-db"), "{text}");
    assert!(
        text.contains("1 snapshot(s) considered: 1 created after the cutoff"),
        "{text}"
    );
}

#[tokio::test]
async fn resolve_with_app_scope_resolves_nothing() {
    let gates = Gates::start(PREFIX);
    let out: ResolveOutput = parse(
        handle(
            &gates.clients(),
            envelope(
                json!({"action": "resolve"}),
                json!([{"kind": "rds-instance", "id": "res-scope-never-created"}]),
                json!({"trigger": {"kind": "manual"}, "reason": "r"}),
                "exec-scope",
            ),
        )
        .await
        .unwrap(),
    );
    assert!(!out.in_scope);
    assert!(out.databases.is_empty());
}

/// One database of a test and the execution acting on it: the restore function's calls
/// about it go through `gate` (`restore`, or `drill-cleanup` for cleanup-drill).
#[derive(Clone, Copy)]
struct Db<'a> {
    gate: &'a IamGate,
    id: &'a str,
    kind: &'a str,
    exec: &'a str,
    mode: &'a str,
}

impl<'a> Db<'a> {
    /// The same database and execution, its calls through `gate`.
    fn through(self, gate: &'a IamGate) -> Db<'a> {
        Db { gate, ..self }
    }

    /// Calls the restore function with `action` about this database.
    async fn act(&self, action: Value) -> Result<Value, rollback_core::RollbackError> {
        handle(
            &clients(self.gate),
            envelope(
                action,
                json!([{"kind": self.kind, "id": self.id}]),
                request(self.mode, json!({})),
                self.exec,
            ),
        )
        .await
    }

    /// [`Db::act`], which must succeed, its output read as `T`.
    async fn ok<T: serde::de::DeserializeOwned>(&self, action: Value) -> T {
        parse(self.act(action).await.unwrap())
    }

    /// What resolve finds for this database (its output's `databases`).
    async fn resolved(&self) -> Value {
        self.act(json!({"action": "resolve"})).await.unwrap()["databases"].clone()
    }

    /// Calls swap until it reports complete: RDS (and the local moto rules) rename
    /// asynchronously.
    async fn swap_until_complete(&self) -> SwapOutput {
        for _ in 0..20 {
            let out: SwapOutput = self.ok(json!({"action": "swap"})).await;
            if out.complete {
                return out;
            }
        }
        panic!("swap of {} did not complete within 20 calls", self.id);
    }

    /// Calls status until the copy is available (a follow-up call or two).
    async fn available_after_follow_up(&self) -> StatusOutput {
        for _ in 0..5 {
            let status: StatusOutput = self.ok(json!({"action": "status"})).await;
            if status.all_available {
                return status;
            }
        }
        panic!(
            "the copy of {} did not become available after the follow-up",
            self.id
        );
    }
}

#[tokio::test]
async fn start_copies_the_source_settings_and_is_idempotent() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    instance(&rds, "res-start-db", "db.m5.large").await;
    gates.pre_deploy("res-start-db", "rds-instance", "v1").await;
    let database = Db {
        gate: &gates.restore,
        id: "res-start-db",
        kind: "rds-instance",
        exec: "exec-start",
        mode: "live",
    };
    let resolved = database.resolved().await;

    let first: StartOutput = database
        .ok(json!({"action": "start", "resolved": resolved}))
        .await;
    let again: StartOutput = database
        .ok(json!({"action": "start", "resolved": resolved}))
        .await;
    let target = ids::restore_identifier("res-start-db", &ExecutionId::new("exec-start"), false);
    assert_eq!(first.databases[0].target, target);
    assert!(first.databases[0].created_now);
    assert!(
        !again.databases[0].created_now,
        "a retry must not restore twice"
    );

    let copy = instance_state(&rds, &target)
        .await
        .expect("restored instance");
    assert_eq!(copy.db_instance_class(), Some("db.m5.large"));
    assert_eq!(
        copy.db_parameter_groups()[0].db_parameter_group_name(),
        Some("res-start-db-params")
    );
    let groups: Vec<_> = copy
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, ["sg-0a1", "sg-0b2"]);

    let status: StatusOutput = database.ok(json!({"action": "status"})).await;
    assert!(status.all_available);
    assert_eq!(status.databases[0].target, target);
    assert!(!status.databases[0].swapped);
}

#[tokio::test]
async fn start_refuses_a_snapshot_that_is_gone() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    instance(&rds, "res-drift-db", "db.t3.micro").await;
    gates.pre_deploy("res-drift-db", "rds-instance", "v1").await;
    let database = Db {
        gate: &gates.restore,
        id: "res-drift-db",
        kind: "rds-instance",
        exec: "exec-drift",
        mode: "live",
    };
    let resolved = database.resolved().await;
    rds.delete_db_snapshot()
        .db_snapshot_identifier(resolved[0]["snapshot_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let err = database
        .act(json!({"action": "start", "resolved": resolved}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PlanDrifted);
    assert!(err.to_string().contains("no longer exists"), "{err}");
    let target = ids::restore_identifier("res-drift-db", &ExecutionId::new("exec-drift"), false);
    assert!(instance_state(&rds, &target).await.is_none());
}

#[tokio::test]
async fn swap_keeps_the_identifier_and_is_idempotent() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    instance(&rds, "res-swap-db", "db.t3.micro").await;
    gates.pre_deploy("res-swap-db", "rds-instance", "v1").await;
    let exec = "exec-swap";
    let database = Db {
        gate: &gates.restore,
        id: "res-swap-db",
        kind: "rds-instance",
        exec,
        mode: "live",
    };
    let resolved = database.resolved().await;
    let endpoint_before = instance_state(&rds, "res-swap-db")
        .await
        .unwrap()
        .endpoint()
        .unwrap()
        .address()
        .map(str::to_owned);
    database
        .act(json!({"action": "start", "resolved": resolved}))
        .await
        .unwrap();

    let swap = database.swap_until_complete().await;
    let aside = ids::aside_identifier("res-swap-db", &ExecutionId::new(exec));
    assert!(swap.complete);
    assert_eq!(swap.databases[0].state, SwapState::Done);
    assert_eq!(swap.aside, std::slice::from_ref(&aside));

    let now_serving = instance_state(&rds, "res-swap-db").await.unwrap();
    let tags: Vec<_> = now_serving
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(tags.contains(&("rollback:role", "restored")), "{tags:?}");
    assert_eq!(
        now_serving.endpoint().unwrap().address().map(str::to_owned),
        endpoint_before
    );
    assert!(
        instance_state(&rds, &aside).await.is_some(),
        "the previous database is kept aside"
    );
    let restored_id = ids::restore_identifier("res-swap-db", &ExecutionId::new(exec), false);
    assert!(instance_state(&rds, &restored_id).await.is_none());

    let again: SwapOutput = database.ok(json!({"action": "swap"})).await;
    assert!(again.complete);
    assert!(instance_state(&rds, &aside).await.is_some());

    // status and start after the swap find the restored database at the original identifier.
    let status: StatusOutput = database.ok(json!({"action": "status"})).await;
    assert!(status.databases[0].swapped && status.all_available);
    assert_eq!(status.databases[0].target, "res-swap-db");
    let restart: StartOutput = database
        .ok(json!({"action": "start", "resolved": resolved}))
        .await;
    assert!(!restart.databases[0].created_now);
    assert_eq!(restart.databases[0].target, "res-swap-db");
}

#[tokio::test]
async fn swap_before_the_restore_renames_nothing() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    instance(&rds, "res-early-db", "db.t3.micro").await;
    let database = Db {
        gate: &gates.restore,
        id: "res-early-db",
        kind: "rds-instance",
        exec: "exec-early",
        mode: "live",
    };
    let err = database.act(json!({"action": "swap"})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SwapFailed);
    assert!(err.to_string().contains("Nothing was renamed"), "{err}");
    assert!(instance_state(&rds, "res-early-db").await.is_some());
}

#[tokio::test]
async fn aurora_cluster_restores_with_its_instances_and_swaps() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    aurora(&rds, "res-aurora").await;
    gates.pre_deploy("res-aurora", "aurora-cluster", "v1").await;
    let exec = "exec-aurora";
    let database = Db {
        gate: &gates.restore,
        id: "res-aurora",
        kind: "aurora-cluster",
        exec,
        mode: "live",
    };
    let resolved = database.resolved().await;
    assert_eq!(resolved[0]["snapshot_type"], "manual");

    let started: StartOutput = database
        .ok(json!({"action": "start", "resolved": resolved}))
        .await;
    let target = ids::restore_identifier("res-aurora", &ExecutionId::new(exec), false);
    assert_eq!(
        started.databases[0].instances,
        [format!("{target}-1"), format!("{target}-2")]
    );
    let cluster = rds
        .describe_db_clusters()
        .db_cluster_identifier(&target)
        .send()
        .await
        .unwrap();
    let cluster = &cluster.db_clusters()[0];
    assert_eq!(cluster.engine(), Some("aurora-postgresql"));
    assert_eq!(cluster.engine_version(), Some("15.4"));
    assert_eq!(
        cluster.vpc_security_groups()[0].vpc_security_group_id(),
        Some("sg-0c3")
    );
    let classes: Vec<_> = futures_classes(&rds, &started.databases[0].instances).await;
    assert_eq!(classes, ["db.r6g.large", "db.r6g.xlarge"]);

    let again: StartOutput = database
        .ok(json!({"action": "start", "resolved": resolved}))
        .await;
    assert!(!again.databases[0].created_now);

    let status: StatusOutput = database.ok(json!({"action": "status"})).await;
    assert!(status.all_available, "{status:?}");
    assert_eq!(status.databases[0].instances.len(), 2);

    let swap = database.swap_until_complete().await;
    assert!(swap.complete);
    let aside = ids::aside_identifier("res-aurora", &ExecutionId::new(exec));
    let current = rds
        .describe_db_clusters()
        .db_cluster_identifier("res-aurora")
        .send()
        .await
        .unwrap();
    assert!(
        current.db_clusters()[0]
            .tag_list()
            .iter()
            .any(|t| t.value() == Some("restored"))
    );
    assert!(
        rds.describe_db_clusters()
            .db_cluster_identifier(&aside)
            .send()
            .await
            .is_ok()
    );
}

async fn futures_classes(rds: &aws_sdk_rds::Client, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            instance_state(rds, id)
                .await
                .unwrap()
                .db_instance_class()
                .unwrap()
                .to_owned(),
        );
    }
    out
}

#[tokio::test]
async fn drill_restores_to_scratch_and_leaves_production_unchanged() {
    let gates = Gates::start(PREFIX);
    // cleanup-drill runs in its own deployment, whose role may delete drill copies.
    let drill_cleanup = gate("drill-cleanup", PREFIX);
    let rds = rds();
    instance(&rds, "res-drill-db", "db.t3.micro").await;
    gates.pre_deploy("res-drill-db", "rds-instance", "v1").await;
    let exec = "exec-drill";
    let before = instance_state(&rds, "res-drill-db").await.unwrap();
    let snapshots_before = snapshot_ids(&rds, "res-drill-db").await;
    let database = Db {
        gate: &gates.restore,
        id: "res-drill-db",
        kind: "rds-instance",
        exec,
        mode: "drill",
    };

    let resolved = database.resolved().await;
    let started: StartOutput = database
        .ok(json!({"action": "start", "resolved": resolved}))
        .await;
    let scratch = ids::restore_identifier("res-drill-db", &ExecutionId::new(exec), true);
    assert!(started.drill);
    assert_eq!(started.databases[0].target, scratch);
    let status: StatusOutput = database.ok(json!({"action": "status"})).await;
    assert!(status.all_available);
    let swap: SwapOutput = database.ok(json!({"action": "swap"})).await;
    assert_eq!(swap.databases[0].state, SwapState::SkippedDrill);
    assert!(swap.aside.is_empty());

    let cleanup: CleanupOutput = database
        .through(&drill_cleanup)
        .ok(json!({"action": "cleanup-drill"}))
        .await;
    assert!(cleanup.complete);
    assert!(instance_state(&rds, &scratch).await.is_none());
    let again: CleanupOutput = database
        .through(&drill_cleanup)
        .ok(json!({"action": "cleanup-drill"}))
        .await;
    assert!(again.complete);

    let after = instance_state(&rds, "res-drill-db").await.unwrap();
    assert_eq!(after.db_instance_status(), before.db_instance_status());
    assert_eq!(after.db_instance_class(), before.db_instance_class());
    assert_eq!(after.endpoint(), before.endpoint());
    assert_eq!(after.tag_list(), before.tag_list());
    assert_eq!(snapshot_ids(&rds, "res-drill-db").await, snapshots_before);
    let aside = ids::aside_identifier("res-drill-db", &ExecutionId::new(exec));
    assert!(instance_state(&rds, &aside).await.is_none());
}

#[tokio::test]
async fn drill_cleanup_of_a_cluster_deletes_instances_then_cluster() {
    let gates = Gates::start(PREFIX);
    // cleanup-drill runs in its own deployment, whose role may delete drill copies.
    let drill_cleanup = gate("drill-cleanup", PREFIX);
    let rds = rds();
    aurora(&rds, "res-drill-cl").await;
    gates
        .pre_deploy("res-drill-cl", "aurora-cluster", "v1")
        .await;
    let exec = "exec-drill-cl";
    let database = Db {
        gate: &gates.restore,
        id: "res-drill-cl",
        kind: "aurora-cluster",
        exec,
        mode: "drill",
    };
    let resolved = database.resolved().await;
    let started: StartOutput = database
        .ok(json!({"action": "start", "resolved": resolved}))
        .await;
    assert_eq!(
        started.databases[0].instances.len(),
        1,
        "a drill creates only the writer"
    );
    let mut complete = false;
    for _ in 0..5 {
        let out: CleanupOutput = database
            .through(&drill_cleanup)
            .ok(json!({"action": "cleanup-drill"}))
            .await;
        if out.complete {
            complete = true;
            break;
        }
    }
    assert!(complete);
    let scratch = ids::restore_identifier("res-drill-cl", &ExecutionId::new(exec), true);
    assert!(cluster_state(&rds, &scratch).await.is_none());
    assert!(cluster_state(&rds, "res-drill-cl").await.is_some());
    assert!(instance_state(&rds, "res-drill-cl-1").await.is_some());
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let gates = Gates::start(PREFIX);
    let db = json!([{"kind": "rds-instance", "id": "res-bad-db"}]);
    let resolution = json!([{"database": "res-other", "kind": "rds-instance", "snapshot_id": "s",
        "snapshot_created_at": "2024-05-01T00:00:00Z", "snapshot_type": "manual",
        "data_loss": {"from": "2024-05-01T00:00:00Z", "to": "2024-05-01T00:00:00Z", "seconds": 0, "summary": ""}}]);
    let cases = [
        (
            json!({"action": "start", "resolved": resolution}),
            request("live", json!({})),
            ErrorKind::InvalidInput,
            "resolved[0].database",
        ),
        (
            json!({"action": "start", "resolved": []}),
            json!({"trigger": {"kind": "manual"}, "reason": "r"}),
            ErrorKind::InvalidInput,
            "request.scope",
        ),
        (
            json!({"action": "start"}),
            request("live", json!({})),
            ErrorKind::InvalidInput,
            "resolved",
        ),
        (
            json!({"action": "cleanup-drill"}),
            request("live", json!({})),
            ErrorKind::InvalidInput,
            "request.mode",
        ),
        (
            json!({"action": "status", "databases": ["nope"]}),
            request("live", json!({})),
            ErrorKind::InvalidInput,
            "databases[0]",
        ),
        (
            json!({"action": "resolve", "release_time": "2999-01-01T00:00:00Z"}),
            request("live", json!({})),
            ErrorKind::InvalidInput,
            "release_time",
        ),
        (
            json!({"action": "resolve"}),
            request("live", json!({"cutoff": "2999-01-01T00:00:00Z"})),
            ErrorKind::InvalidRequest,
            "request.cutoff",
        ),
        (
            json!({"action": "resolve"}),
            request("live", json!({"mode": "sideways"})),
            // Core maps serde errors outside the plan to InvalidInput, with the path.
            ErrorKind::InvalidInput,
            "request.mode",
        ),
        (
            json!({"action": "restore-everything"}),
            request("live", json!({})),
            ErrorKind::InvalidInput,
            "resolve",
        ),
    ];
    for (action, request, kind, field) in cases {
        let err = handle(
            &gates.clients(),
            envelope(action.clone(), db.clone(), request, "exec-bad"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), kind, "{action}: {err}");
        assert!(
            err.to_string().contains(field),
            "{action}: {field} not named in {err}"
        );
    }
    // Plan problems.
    for (databases, field) in [
        (
            json!([{"kind": "oracle", "id": "x"}]),
            "plan.databases[0].kind",
        ),
        (
            json!([{"kind": "rds-instance", "id": "x--y"}]),
            "plan.databases[0].id",
        ),
    ] {
        let err = handle(
            &gates.clients(),
            envelope(
                json!({"action": "resolve"}),
                databases,
                request("live", json!({})),
                "e",
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidPlan, "{err}");
        assert!(
            err.to_string().contains(field),
            "{field} not named in {err}"
        );
    }
    let err = handle(
        &gates.clients(),
        envelope(
            json!({"action": "resolve"}),
            json!([]),
            request("live", json!({})),
            "e",
        ),
    )
    .await;
    // A plan with neither databases nor anything else is invalid on its own.
    assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidPlan);
}

/// One row per setting the copy must share with its source: field name, source, copy.
fn instance_fields(i: &aws_sdk_rds::types::DbInstance) -> Vec<(&'static str, String)> {
    let groups =
        |v: Vec<Option<&str>>| format!("{:?}", v.into_iter().flatten().collect::<Vec<_>>());
    vec![
        ("DBInstanceClass", format!("{:?}", i.db_instance_class())),
        ("Engine", format!("{:?}", i.engine())),
        ("EngineVersion", format!("{:?}", i.engine_version())),
        (
            "VpcSecurityGroups",
            groups(
                i.vpc_security_groups()
                    .iter()
                    .map(|g| g.vpc_security_group_id())
                    .collect(),
            ),
        ),
        (
            "DBParameterGroups",
            groups(
                i.db_parameter_groups()
                    .iter()
                    .map(|g| g.db_parameter_group_name())
                    .collect(),
            ),
        ),
        (
            "OptionGroupMemberships",
            groups(
                i.option_group_memberships()
                    .iter()
                    .map(|g| g.option_group_name())
                    .collect(),
            ),
        ),
        ("MultiAZ", format!("{:?}", i.multi_az())),
        (
            "Port",
            format!(
                "{:?}",
                i.endpoint().and_then(|e| e.port()).or(i.db_instance_port())
            ),
        ),
        (
            "DeletionProtection",
            format!("{:?}", i.deletion_protection()),
        ),
        ("StorageType", format!("{:?}", i.storage_type())),
        ("Iops", format!("{:?}", i.iops())),
        ("StorageThroughput", format!("{:?}", i.storage_throughput())),
        ("AllocatedStorage", format!("{:?}", i.allocated_storage())),
        (
            "IAMDatabaseAuthenticationEnabled",
            format!("{:?}", i.iam_database_authentication_enabled()),
        ),
        (
            "EnabledCloudwatchLogsExports",
            format!("{:?}", i.enabled_cloudwatch_logs_exports()),
        ),
        (
            "BackupRetentionPeriod",
            format!("{:?}", i.backup_retention_period()),
        ),
        (
            "PreferredBackupWindow",
            format!("{:?}", i.preferred_backup_window()),
        ),
        (
            "PreferredMaintenanceWindow",
            format!("{:?}", i.preferred_maintenance_window()),
        ),
        (
            "CACertificateIdentifier",
            format!("{:?}", i.ca_certificate_identifier()),
        ),
        (
            "PubliclyAccessible",
            format!("{:?}", i.publicly_accessible()),
        ),
        (
            "CopyTagsToSnapshot",
            format!("{:?}", i.copy_tags_to_snapshot()),
        ),
        (
            "AutoMinorVersionUpgrade",
            format!("{:?}", i.auto_minor_version_upgrade()),
        ),
        (
            "PerformanceInsightsEnabled",
            format!("{:?}", i.performance_insights_enabled()),
        ),
        (
            "PerformanceInsightsKMSKeyId",
            format!("{:?}", i.performance_insights_kms_key_id()),
        ),
        (
            "PerformanceInsightsRetentionPeriod",
            format!("{:?}", i.performance_insights_retention_period()),
        ),
        (
            "MonitoringInterval",
            format!("{:?}", i.monitoring_interval()),
        ),
        (
            "MonitoringRoleArn",
            format!("{:?}", i.monitoring_role_arn()),
        ),
        ("StorageEncrypted", format!("{:?}", i.storage_encrypted())),
        ("KmsKeyId", format!("{:?}", i.kms_key_id())),
        ("Tags (the source's own)", user_tags(i.tag_list())),
    ]
}

/// The source's own tags as the copy must carry them (`aws:` and `rollback:` keys aside).
fn user_tags(tags: &[aws_sdk_rds::types::Tag]) -> String {
    let mut own: Vec<String> = tags
        .iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
        .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("rollback:"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    own.sort();
    format!("{own:?}")
}

/// Fails with the table of every field whose value differs (field → source → copy).
fn assert_same_settings(
    what: &str,
    source: Vec<(&'static str, String)>,
    copy: Vec<(&'static str, String)>,
) {
    let differ: Vec<String> = source
        .iter()
        .zip(&copy)
        .filter(|((_, s), (_, c))| s != c)
        .map(|((field, s), (_, c))| format!("{field:<36} source {s:<40} copy {c}"))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: the restored copy is not configured like its source:\n{}",
        differ.join("\n")
    );
}

#[tokio::test]
async fn restored_instance_is_configured_like_its_source_field_by_field() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    let db = "res-fields-db";
    rds.create_db_parameter_group()
        .db_parameter_group_name("res-fields-params")
        .db_parameter_group_family("mysql8.0")
        .description("test")
        .send()
        .await
        .unwrap();
    rds.create_option_group()
        .option_group_name("res-fields-options")
        .engine_name("mysql")
        .major_engine_version("8.0")
        .option_group_description("test")
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier(db)
        .db_instance_class("db.r6g.large")
        .engine("mysql")
        .engine_version("8.0.35")
        .master_username("admin")
        .master_user_password("password123")
        .allocated_storage(500)
        .storage_type("gp3")
        .iops(12000)
        .storage_throughput(500)
        .db_parameter_group_name("res-fields-params")
        .option_group_name("res-fields-options")
        .vpc_security_group_ids("sg-0f1")
        .port(3307)
        .multi_az(true)
        .deletion_protection(true)
        .enable_iam_database_authentication(true)
        .enable_cloudwatch_logs_exports("error")
        .enable_cloudwatch_logs_exports("slowquery")
        .backup_retention_period(14)
        .preferred_backup_window("03:00-03:30")
        .preferred_maintenance_window("sun:05:00-sun:05:30")
        .ca_certificate_identifier("rds-ca-rsa2048-g1")
        .publicly_accessible(false)
        .copy_tags_to_snapshot(true)
        .auto_minor_version_upgrade(false)
        .enable_performance_insights(true)
        .performance_insights_kms_key_id("arn:aws:kms:us-east-1:123456789012:key/pi-key")
        .performance_insights_retention_period(731)
        .monitoring_interval(30)
        .monitoring_role_arn("arn:aws:iam::123456789012:role/rds-monitoring")
        .storage_encrypted(true)
        .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/data-key")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value("payments")
                .build(),
        )
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("cost-centre")
                .value("42")
                .build(),
        )
        .send()
        .await
        .unwrap();
    gates.pre_deploy(db, "rds-instance", "v1").await;
    let exec = "exec-fields";
    let database = Db {
        gate: &gates.restore,
        id: db,
        kind: "rds-instance",
        exec,
        mode: "live",
    };
    let resolved = database.resolved().await;
    database
        .act(json!({"action": "start", "resolved": resolved}))
        .await
        .unwrap();
    database.available_after_follow_up().await;

    let target = ids::restore_identifier(db, &ExecutionId::new(exec), false);
    let source = instance_state(&rds, db).await.unwrap();
    let copy = instance_state(&rds, &target).await.expect("restored copy");
    assert_same_settings(db, instance_fields(&source), instance_fields(&copy));
    // Ours are added to the source's tags.
    assert!(
        copy.tag_list()
            .iter()
            .any(|t| t.key() == Some("rollback:role") && t.value() == Some("restored"))
    );
}

/// A database with a read replica: resolve reports it (moto models
/// CreateDBInstanceReadReplica and lists the replica in ReadReplicaDBInstanceIdentifiers); a
/// database without one reports none.
#[tokio::test]
async fn resolve_reports_read_replicas() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    instance(&rds, "res-replica-db", "db.t3.micro").await;
    instance(&rds, "res-replica-none", "db.t3.micro").await;
    rds.create_db_instance_read_replica()
        .db_instance_identifier("res-replica-db-reader")
        .source_db_instance_identifier("res-replica-db")
        .db_instance_class("db.t3.micro")
        .send()
        .await
        .unwrap();
    let out: ResolveOutput = parse(
        handle(
            &gates.clients(),
            envelope(
                json!({"action": "resolve"}),
                json!([{"kind": "rds-instance", "id": "res-replica-db"},
                       {"kind": "rds-instance", "id": "res-replica-none"}]),
                request("live", json!({})),
                "exec-replica",
            ),
        )
        .await
        .unwrap(),
    );
    assert_eq!(out.databases[0].read_replicas, ["res-replica-db-reader"]);
    assert!(
        out.notes[0].explanation.contains(
            "read replicas res-replica-db-reader: they stay attached to the database moved aside"
        ),
        "{}",
        out.notes[0].explanation
    );
    assert!(out.databases[1].read_replicas.is_empty());
    // Empty lists stay out of the JSON the approval email and the state machine carry.
    let json = serde_json::to_value(&out.databases[1]).unwrap();
    assert!(json.get("read_replicas").is_none(), "{json}");
}

fn cluster_fields(c: &aws_sdk_rds::types::DbCluster) -> Vec<(&'static str, String)> {
    vec![
        ("Engine", format!("{:?}", c.engine())),
        ("EngineVersion", format!("{:?}", c.engine_version())),
        (
            "VpcSecurityGroups",
            format!(
                "{:?}",
                c.vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id())
                    .collect::<Vec<_>>()
            ),
        ),
        (
            "DBClusterParameterGroup",
            format!("{:?}", c.db_cluster_parameter_group()),
        ),
        ("Port", format!("{:?}", c.port())),
        (
            "DeletionProtection",
            format!("{:?}", c.deletion_protection()),
        ),
        (
            "IAMDatabaseAuthenticationEnabled",
            format!("{:?}", c.iam_database_authentication_enabled()),
        ),
        (
            "EnabledCloudwatchLogsExports",
            format!("{:?}", c.enabled_cloudwatch_logs_exports()),
        ),
        (
            "CopyTagsToSnapshot",
            format!("{:?}", c.copy_tags_to_snapshot()),
        ),
        ("StorageType", format!("{:?}", c.storage_type())),
        (
            "BackupRetentionPeriod",
            format!("{:?}", c.backup_retention_period()),
        ),
        (
            "PreferredBackupWindow",
            format!("{:?}", c.preferred_backup_window()),
        ),
        (
            "PreferredMaintenanceWindow",
            format!("{:?}", c.preferred_maintenance_window()),
        ),
        ("StorageEncrypted", format!("{:?}", c.storage_encrypted())),
        ("KmsKeyId", format!("{:?}", c.kms_key_id())),
        ("Tags (the source's own)", user_tags(c.tag_list())),
    ]
}

/// Per-instance settings of a cluster member (identifiers and AZ are the copy's own).
fn member_fields(i: &aws_sdk_rds::types::DbInstance) -> Vec<(&'static str, String)> {
    vec![
        ("DBInstanceClass", format!("{:?}", i.db_instance_class())),
        (
            "DBParameterGroups",
            format!(
                "{:?}",
                i.db_parameter_groups()
                    .iter()
                    .filter_map(|g| g.db_parameter_group_name())
                    .collect::<Vec<_>>()
            ),
        ),
        (
            "PreferredMaintenanceWindow",
            format!("{:?}", i.preferred_maintenance_window()),
        ),
        (
            "CACertificateIdentifier",
            format!("{:?}", i.ca_certificate_identifier()),
        ),
        (
            "PubliclyAccessible",
            format!("{:?}", i.publicly_accessible()),
        ),
        (
            "AutoMinorVersionUpgrade",
            format!("{:?}", i.auto_minor_version_upgrade()),
        ),
        ("PromotionTier", format!("{:?}", i.promotion_tier())),
        (
            "PerformanceInsightsEnabled",
            format!("{:?}", i.performance_insights_enabled()),
        ),
        (
            "PerformanceInsightsKMSKeyId",
            format!("{:?}", i.performance_insights_kms_key_id()),
        ),
        (
            "MonitoringInterval",
            format!("{:?}", i.monitoring_interval()),
        ),
        (
            "MonitoringRoleArn",
            format!("{:?}", i.monitoring_role_arn()),
        ),
        ("Tags (the source's own)", user_tags(i.tag_list())),
    ]
}

#[tokio::test]
async fn restored_aurora_cluster_is_configured_like_its_source_field_by_field() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    let db = "res-fields-aurora";
    rds.create_db_cluster_parameter_group()
        .db_cluster_parameter_group_name("res-fields-cluster-params")
        .db_parameter_group_family("aurora-postgresql15")
        .description("test")
        .send()
        .await
        .unwrap();
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    rds.create_db_cluster()
        .db_cluster_identifier(db)
        .engine("aurora-postgresql")
        .engine_version("15.4")
        .master_username("admin")
        .master_user_password("password123")
        .vpc_security_group_ids("sg-0c7")
        .db_cluster_parameter_group_name("res-fields-cluster-params")
        .port(5433)
        .deletion_protection(true)
        .enable_iam_database_authentication(true)
        .enable_cloudwatch_logs_exports("postgresql")
        .copy_tags_to_snapshot(true)
        .backup_retention_period(21)
        .preferred_backup_window("02:00-02:30")
        .preferred_maintenance_window("sat:04:00-sat:04:30")
        .storage_encrypted(true)
        .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/cluster-key")
        .tags(tag("team", "docs"))
        .send()
        .await
        .unwrap();
    for (n, class, tier) in [(1, "db.r6g.large", 0), (2, "db.r6g.xlarge", 2)] {
        rds.create_db_instance()
            .db_instance_identifier(format!("{db}-{n}"))
            .db_cluster_identifier(db)
            .db_instance_class(class)
            .engine("aurora-postgresql")
            .promotion_tier(tier)
            .preferred_maintenance_window("mon:01:00-mon:01:30")
            .ca_certificate_identifier("rds-ca-ecc384-g1")
            .publicly_accessible(false)
            .auto_minor_version_upgrade(false)
            .enable_performance_insights(true)
            .performance_insights_kms_key_id("arn:aws:kms:us-east-1:123456789012:key/pi-key")
            .monitoring_interval(15)
            .monitoring_role_arn("arn:aws:iam::123456789012:role/rds-monitoring")
            .tags(tag("member", &n.to_string()))
            .send()
            .await
            .unwrap();
    }
    gates.pre_deploy(db, "aurora-cluster", "v1").await;
    let exec = "exec-fields-aurora";
    let database = Db {
        gate: &gates.restore,
        id: db,
        kind: "aurora-cluster",
        exec,
        mode: "live",
    };
    let resolved = database.resolved().await;
    let started: StartOutput = database
        .ok(json!({"action": "start", "resolved": resolved}))
        .await;
    database.available_after_follow_up().await;

    let target = ids::restore_identifier(db, &ExecutionId::new(exec), false);
    let describe = |id: String| {
        let rds = rds.clone();
        async move {
            rds.describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .unwrap()
                .db_clusters()[0]
                .clone()
        }
    };
    let (source, copy) = (describe(db.to_owned()).await, describe(target).await);
    assert_same_settings(db, cluster_fields(&source), cluster_fields(&copy));
    for (n, member) in started.databases[0].instances.iter().enumerate() {
        let from = instance_state(&rds, &format!("{db}-{}", n + 1))
            .await
            .unwrap();
        let to = instance_state(&rds, member).await.unwrap();
        assert_same_settings(member, member_fields(&from), member_fields(&to));
    }
}

#[tokio::test]
async fn point_in_time_restore_inside_the_window_restores_to_the_cutoff() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    let db = "res-pitr-db";
    instance(&rds, db, "db.m5.large").await;
    let created = instance_state(&rds, db)
        .await
        .unwrap()
        .instance_create_time()
        .copied()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let cutoff = chrono::DateTime::from_timestamp(created.secs() + 2, 0).unwrap();
    let plan_db = json!([{"kind": "rds-instance", "id": db, "restore": "point-in-time"}]);
    let exec = "exec-pitr";
    let clients = gates.clients();
    let call = |action: Value| {
        handle(
            &clients,
            envelope(
                action,
                plan_db.clone(),
                request("live", json!({"cutoff": cutoff})),
                exec,
            ),
        )
    };
    let out: ResolveOutput = parse(call(json!({"action": "resolve"})).await.unwrap());
    let r = &out.databases[0];
    assert!(r.is_point_in_time(), "{r:?}");
    assert_eq!(r.restore_time, Some(cutoff));
    assert_eq!(r.data_loss.from, cutoff);
    let window = r.restorable_window.as_ref().unwrap();
    // moto reports LatestRestorableTime but no RestoreWindow: the earliest end is unknown,
    // and said so.
    assert!(window.latest.is_some(), "{window:?}");
    assert!(
        window.note.contains("no earliest restorable time"),
        "{}",
        window.note
    );
    assert!(
        out.notes[0]
            .explanation
            .contains("restore to point in time")
    );

    let started: StartOutput = parse(
        call(json!({"action": "start", "resolved": out.databases}))
            .await
            .unwrap(),
    );
    let target = ids::restore_identifier(db, &ExecutionId::new(exec), false);
    assert_eq!(started.databases[0].target, target);
    let copy = instance_state(&rds, &target)
        .await
        .expect("point-in-time copy");
    let restore_time = copy
        .tag_list()
        .iter()
        .find(|t| t.key() == Some("rollback:restore-time"))
        .and_then(|t| t.value());
    assert_eq!(
        restore_time,
        Some(
            cutoff
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .as_str()
        )
    );
    let source = instance_state(&rds, db).await.unwrap();
    assert_same_settings(db, instance_fields(&source), instance_fields(&copy));
}

#[tokio::test]
async fn point_in_time_before_the_database_existed_is_refused_with_the_window() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    let db = "res-pitr-early";
    instance(&rds, db, "db.m5.large").await;
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    let err = handle(
        &gates.clients(),
        envelope(
            json!({"action": "resolve"}),
            json!([{"kind": "rds-instance", "id": db, "restore": "point-in-time"}]),
            request("live", json!({"cutoff": cutoff})),
            "exec-pitr-early",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    for part in [
        db,
        "outside its restorable window",
        "unknown (not before",
        "later cutoff",
    ] {
        assert!(text.contains(part), "{part} missing in {text}");
    }
}

#[tokio::test]
async fn snapshot_or_point_in_time_prefers_a_pre_deploy_snapshot_else_the_cutoff() {
    let gates = Gates::start(PREFIX);
    let rds = rds();
    let db = "res-fallback-db";
    instance(&rds, db, "db.m5.large").await;
    let created = instance_state(&rds, db)
        .await
        .unwrap()
        .instance_create_time()
        .copied()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let cutoff = chrono::DateTime::from_timestamp(created.secs() + 2, 0).unwrap();
    let clients = gates.clients();
    let resolve = |exec: &'static str| {
        handle(
            &clients,
            envelope(
                json!({"action": "resolve"}),
                json!([{"kind": "rds-instance", "id": db, "restore": "snapshot-or-point-in-time"}]),
                request("live", json!({"cutoff": chrono::Utc::now()})),
                exec,
            ),
        )
    };
    // No pre-deploy snapshot yet (moto's automated one at creation does not count): the
    // cutoff itself, by point-in-time restore.
    let call = envelope(
        json!({"action": "resolve"}),
        json!([{"kind": "rds-instance", "id": db, "restore": "snapshot-or-point-in-time"}]),
        request("live", json!({"cutoff": cutoff})),
        "exec-fallback-1",
    );
    let out: ResolveOutput = parse(handle(&clients, call).await.unwrap());
    assert!(out.databases[0].is_point_in_time(), "{:?}", out.databases);
    assert_eq!(out.databases[0].restore_time, Some(cutoff));
    assert!(
        out.notes[0]
            .explanation
            .starts_with("no pre-deploy snapshot qualifies, so restore to point in time"),
        "{:?}",
        out.notes
    );

    // With a pre-deploy snapshot, that snapshot.
    gates.pre_deploy(db, "rds-instance", "v1").await;
    let out: ResolveOutput = parse(resolve("exec-fallback-2").await.unwrap());
    assert!(!out.databases[0].is_point_in_time(), "{:?}", out.databases);
    assert_eq!(out.notes[0].source, "pre-deploy");
}
