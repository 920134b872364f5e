//! What moto cannot show, injected with aws-smithy-mocks: throttling, a second rename that
//! fails (moto renames onto any name, even a taken one), RDS still renaming asynchronously
//! (moto renames instantly), snapshots still `creating` (moto completes them instantly),
//! subnet groups (moto needs EC2 subnets for them), and DocumentDB (moto rejects `docdb`).

use aws_sdk_rds::Client;
use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::error::ErrorMetadata;
use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::{
    DescribeDBClustersError, DescribeDbClustersOutput,
};
use aws_sdk_rds::operation::describe_db_instances::{
    DescribeDBInstancesError, DescribeDbInstancesOutput,
};
use aws_sdk_rds::operation::describe_db_snapshots::{
    DescribeDBSnapshotsError, DescribeDbSnapshotsOutput,
};
use aws_sdk_rds::operation::modify_db_instance::{ModifyDBInstanceError, ModifyDbInstanceOutput};
use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::RestoreDbClusterFromSnapshotOutput;
use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDbInstanceFromDbSnapshotOutput;
use aws_sdk_rds::types::{
    DbCluster, DbClusterMember, DbClusterSnapshot, DbInstance, DbSnapshot, DbSubnetGroup, Tag,
    VpcSecurityGroupMembership,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use rollback_core::contract::restore::{ResolveOutput, StartOutput, SwapOutput, SwapState};
use rollback_core::{ErrorKind, ExecutionId, ids};
use rollback_restore::{Clients, handle};
use serde_json::{Value, json};

const EXEC: &str = "exec-mock";

fn clients(rules: &[&Rule]) -> Clients {
    Clients {
        rds: mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled())),
    }
}

fn input(action: Value, kind: &str, id: &str) -> Value {
    let mut v = action;
    v["plan"] = json!({"service": "svc", "databases": [{"kind": kind, "id": id}]});
    v["request"] = json!({"trigger": {"kind": "manual"}, "reason": "r", "scope": "app+database"});
    v["execution"] = json!(EXEC);
    v
}

fn exec() -> ExecutionId {
    ExecutionId::new(EXEC)
}

/// The tags `start` puts on this execution's restored copy of `db1`.
fn owned_tags() -> Vec<Tag> {
    copy_tags("db1")
}

/// The tags of this execution's restored copy of `source`.
fn copy_tags(source: &str) -> Vec<Tag> {
    vec![
        Tag::builder().key("rollback:execution").value(EXEC).build(),
        Tag::builder()
            .key("rollback:role")
            .value("restored")
            .build(),
        Tag::builder().key("rollback:source").value(source).build(),
    ]
}

fn instance(id: &str, status: &str, tags: Vec<Tag>) -> DescribeDbInstancesOutput {
    DescribeDbInstancesOutput::builder()
        .db_instances(
            DbInstance::builder()
                .db_instance_identifier(id)
                .db_instance_status(status)
                .set_tag_list(Some(tags))
                .build(),
        )
        .build()
}

fn instance_not_found() -> DescribeDBInstancesError {
    DescribeDBInstancesError::generic(ErrorMetadata::builder().code("DBInstanceNotFound").build())
}

fn describe_instance(
    id: &'static str,
) -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesInput,
    DescribeDbInstancesOutput,
    DescribeDBInstancesError,
> {
    mock!(Client::describe_db_instances)
        .match_requests(move |r| r.db_instance_identifier() == Some(id))
}

fn rename(
    from: &str,
    to: &str,
) -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceInput,
    ModifyDbInstanceOutput,
    ModifyDBInstanceError,
> {
    let (from, to) = (from.to_owned(), to.to_owned());
    mock!(Client::modify_db_instance).match_requests(move |r| {
        r.db_instance_identifier() == Some(from.as_str())
            && r.new_db_instance_identifier() == Some(to.as_str())
            && r.apply_immediately() == Some(true)
    })
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[tokio::test]
async fn throttled_resolve_is_retryable() {
    let list = mock!(Client::describe_db_snapshots).then_error(|| {
        DescribeDBSnapshotsError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    let c = clients(&[&list]);
    let err = handle(
        &c,
        input(json!({"action": "resolve"}), "rds-instance", "db1"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.Throttled");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn resolve_skips_a_snapshot_still_creating() {
    let list = mock!(Client::describe_db_snapshots).then_output(|| {
        let snap = |id: &str, status: &str, secs: i64, kind: &str, tags: Vec<Tag>| {
            DbSnapshot::builder()
                .db_snapshot_identifier(id)
                .db_instance_identifier("db1")
                .status(status)
                .snapshot_type(kind)
                .snapshot_create_time(aws_smithy_types::DateTime::from_secs(secs))
                .set_tag_list(Some(tags))
                .build()
        };
        let pre = vec![
            Tag::builder()
                .key("rollback:purpose")
                .value("pre-deploy")
                .build(),
            Tag::builder().key("rollback:service").value("svc").build(),
        ];
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(snap(
                "rds:db1-daily",
                "available",
                1_714_500_000,
                "automated",
                vec![],
            ))
            .db_snapshots(snap(
                "predeploy-new",
                "creating",
                1_714_550_000,
                "manual",
                pre,
            ))
            .build()
    });
    let live = describe_instance("db1").then_output(|| instance("db1", "available", vec![]));
    let c = clients(&[&list, &live]);
    let out: ResolveOutput = serde_json::from_value(
        handle(
            &c,
            input(json!({"action": "resolve"}), "rds-instance", "db1"),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(out.databases[0].snapshot_id, "rds:db1-daily");
    assert!(
        out.notes[0]
            .explanation
            .contains("not available (status creating)"),
        "{:?}",
        out.notes
    );
}

/// RDS renames asynchronously: while the old name still answers, swap reports progress and
/// does not try to take the name yet.
#[tokio::test]
async fn swap_waits_while_rds_is_still_renaming() {
    let aside = leak(ids::aside_identifier("db1", &exec()));
    let restored = leak(ids::restore_identifier("db1", &exec(), false));
    let current = describe_instance("db1").then_output(|| instance("db1", "renaming", vec![]));
    let aside_free = describe_instance(aside).then_error(instance_not_found);
    let copy = describe_instance(restored)
        .then_output(move || instance(restored, "available", owned_tags()));
    let step1 = rename("db1", aside).then_output(|| ModifyDbInstanceOutput::builder().build());
    let step2 = rename(restored, "db1").then_output(|| ModifyDbInstanceOutput::builder().build());
    let c = clients(&[&current, &aside_free, &copy, &step1, &step2]);
    let out: SwapOutput = serde_json::from_value(
        handle(&c, input(json!({"action": "swap"}), "rds-instance", "db1"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!out.complete);
    assert_eq!(out.databases[0].state, SwapState::RenamingAside);
    assert_eq!(step2.num_calls(), 0, "the name is not free yet");
}

fn resolution(kind: &str, db: &str, snapshot: &str) -> Value {
    json!([{"database": db, "kind": kind, "snapshot_id": snapshot,
        "snapshot_created_at": "2024-05-01T10:00:00Z", "snapshot_type": "manual",
        "data_loss": {"from": "2024-05-01T10:00:00Z", "to": "2024-05-01T11:00:00Z", "seconds": 3600, "summary": "s"}}])
}

const SNAPSHOT_SECS: i64 = 1_714_557_600; // 2024-05-01T10:00:00Z

#[tokio::test]
async fn instance_restore_copies_the_subnet_group() {
    let restored = leak(ids::restore_identifier("db1", &exec(), false));
    let target = describe_instance(restored).then_error(instance_not_found);
    let source = describe_instance("db1").then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("db1")
                    .db_instance_status("available")
                    .db_instance_class("db.r6g.2xlarge")
                    .multi_az(true)
                    .db_subnet_group(
                        DbSubnetGroup::builder()
                            .db_subnet_group_name("private-subnets")
                            .build(),
                    )
                    .vpc_security_groups(
                        VpcSecurityGroupMembership::builder()
                            .vpc_security_group_id("sg-1")
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let snapshots = mock!(Client::describe_db_snapshots).then_output(|| {
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(
                DbSnapshot::builder()
                    .db_snapshot_identifier("snap")
                    .db_instance_identifier("db1")
                    .status("available")
                    .snapshot_type("manual")
                    .snapshot_create_time(aws_smithy_types::DateTime::from_secs(SNAPSHOT_SECS))
                    .build(),
            )
            .build()
    });
    let restore = mock!(Client::restore_db_instance_from_db_snapshot)
        .match_requests(move |r| {
            r.db_instance_identifier() == Some(restored)
                && r.db_snapshot_identifier() == Some("snap")
                && r.db_subnet_group_name() == Some("private-subnets")
                && r.db_instance_class() == Some("db.r6g.2xlarge")
                && r.multi_az() == Some(true)
                && r.vpc_security_group_ids() == ["sg-1".to_owned()]
        })
        .then_output(move || {
            RestoreDbInstanceFromDbSnapshotOutput::builder()
                .db_instance(
                    DbInstance::builder()
                        .db_instance_identifier(restored)
                        .db_instance_status("creating")
                        .build(),
                )
                .build()
        });
    let c = clients(&[&target, &source, &snapshots, &restore]);
    let out: StartOutput = serde_json::from_value(
        handle(
            &c,
            input(
                json!({"action": "start", "resolved": resolution("rds-instance", "db1", "snap")}),
                "rds-instance",
                "db1",
            ),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(restore.num_calls(), 1);
    assert!(out.databases[0].created_now);
    assert_eq!(out.databases[0].status, "creating");
}

/// DocumentDB: cluster API with engine `docdb`; its instances take no DB parameter group.
#[tokio::test]
async fn documentdb_restore_uses_the_cluster_api() {
    let restored = leak(ids::restore_identifier("docs", &exec(), false));
    let member = leak(format!("{restored}-1"));
    let not_found = || {
        DescribeDBClustersError::generic(
            ErrorMetadata::builder()
                .code("DBClusterNotFoundFault")
                .build(),
        )
    };
    let target = mock!(Client::describe_db_clusters)
        .match_requests(move |r| r.db_cluster_identifier() == Some(restored))
        .then_error(not_found);
    let source = mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some("docs"))
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("docs")
                        .engine("docdb")
                        .engine_version("5.0.0")
                        .status("available")
                        .db_subnet_group("docs-subnets")
                        .db_cluster_parameter_group("docs-params")
                        .port(27017)
                        .vpc_security_groups(
                            VpcSecurityGroupMembership::builder()
                                .vpc_security_group_id("sg-docs")
                                .build(),
                        )
                        .db_cluster_members(
                            DbClusterMember::builder()
                                .db_instance_identifier("docs-1")
                                .is_cluster_writer(true)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let snapshots = mock!(Client::describe_db_cluster_snapshots).then_output(|| {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(
                DbClusterSnapshot::builder()
                    .db_cluster_snapshot_identifier("snap")
                    .db_cluster_identifier("docs")
                    .status("available")
                    .snapshot_type("manual")
                    .snapshot_create_time(aws_smithy_types::DateTime::from_secs(SNAPSHOT_SECS))
                    .build(),
            )
            .build()
    });
    let writer = describe_instance("docs-1").then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("docs-1")
                    .db_instance_class("db.r6g.large")
                    .engine("docdb")
                    .db_cluster_identifier("docs")
                    .build(),
            )
            .build()
    });
    let new_member = describe_instance(member).then_error(instance_not_found);
    let restore = mock!(Client::restore_db_cluster_from_snapshot)
        .match_requests(move |r| {
            r.db_cluster_identifier() == Some(restored)
                && r.engine() == Some("docdb")
                && r.engine_version() == Some("5.0.0")
                && r.db_subnet_group_name() == Some("docs-subnets")
                && r.db_cluster_parameter_group_name() == Some("docs-params")
                && r.port() == Some(27017)
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some("rollback:instances") && t.value() == Some("1"))
        })
        .then_output(move || {
            RestoreDbClusterFromSnapshotOutput::builder()
                .db_cluster(
                    DbCluster::builder()
                        .db_cluster_identifier(restored)
                        .engine("docdb")
                        .status("creating")
                        .build(),
                )
                .build()
        });
    let create = mock!(Client::create_db_instance)
        .match_requests(move |r| {
            r.db_instance_identifier() == Some(member)
                && r.db_cluster_identifier() == Some(restored)
                && r.engine() == Some("docdb")
                && r.db_instance_class() == Some("db.r6g.large")
                && r.db_parameter_group_name().is_none()
        })
        .then_output(|| CreateDbInstanceOutput::builder().build());
    let c = clients(&[
        &target,
        &source,
        &snapshots,
        &writer,
        &new_member,
        &restore,
        &create,
    ]);
    let out: StartOutput = serde_json::from_value(
        handle(
            &c,
            input(
                json!({"action": "start", "resolved": resolution("docdb-cluster", "docs", "snap")}),
                "docdb-cluster",
                "docs",
            ),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!((restore.num_calls(), create.num_calls()), (1, 1));
    assert_eq!(out.databases[0].instances, [member]);
}

/// A copy made by this execution of another plan database is not this database's copy, even
/// under the same name (the names of cut ids used to collide): `owns` checks the source tag.
#[test]
fn a_copy_of_another_database_is_not_owned() {
    use rollback_core::plan::{DatabaseKind, DatabaseRef};
    use rollback_restore::db::DbState;
    use rollback_restore::start::Target;
    let db = DatabaseRef {
        kind: DatabaseKind::RdsInstance,
        id: "db1".into(),
        restore: Default::default(),
    };
    let exec = exec();
    let target = Target {
        db: &db,
        execution: &exec,
        drill: false,
    };
    let state =
        |tags: Vec<Tag>| DbState::from(&DbInstance::builder().set_tag_list(Some(tags)).build());
    assert!(target.owns(&state(copy_tags("db1"))));
    assert!(
        target.owns(&state(copy_tags("DB1"))),
        "RDS ids are case-insensitive"
    );
    assert!(!target.owns(&state(copy_tags("db2"))));
    let mut untagged = copy_tags("db1");
    untagged.pop();
    assert!(!target.owns(&state(untagged)), "no source tag: not ours");
}

/// `start` refuses to reuse a copy of another database found under its target name.
#[tokio::test]
async fn start_does_not_reuse_another_databases_copy() {
    let restored = leak(ids::restore_identifier("db1", &exec(), false));
    let target = describe_instance(restored)
        .then_output(move || instance(restored, "available", copy_tags("db2")));
    let restore = mock!(Client::restore_db_instance_from_db_snapshot)
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let c = clients(&[&target, &restore]);
    let err = handle(
        &c,
        input(
            json!({"action": "start", "resolved": resolution("rds-instance", "db1", "snap")}),
            "rds-instance",
            "db1",
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RestoreFailed, "{err}");
    assert!(
        err.to_string()
            .contains("is not this execution's restored copy of db1"),
        "{err}"
    );
    assert_eq!(restore.num_calls(), 0);
}

/// AWS Backup recovery points are listed only with SnapshotType `awsbackup` (RDS lists manual
/// and automated snapshots without it); resolve asks for them and chooses the newest one before
/// the cutoff, saying what it is; the instance's read replicas are reported.
#[tokio::test]
async fn resolve_chooses_an_aws_backup_recovery_point_and_reports_replicas() {
    let job = "awsbackup:job-be59cf2a-2343-4402-bd8b-226993d23453";
    let snapshot = |id: &str, kind: &str, secs: i64| {
        DbSnapshot::builder()
            .db_snapshot_identifier(id)
            .db_instance_identifier("db1")
            .status("available")
            .snapshot_type(kind)
            .snapshot_create_time(aws_smithy_types::DateTime::from_secs(secs))
            .build()
    };
    let default_list = mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.snapshot_type().is_none())
        .then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(snapshot("rds:db1-daily", "automated", 1_714_500_000))
                .build()
        });
    let backup_list = mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.snapshot_type() == Some("awsbackup"))
        .then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(snapshot(job, "awsbackup", 1_714_550_000))
                .build()
        });
    let live = describe_instance("db1").then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("db1")
                    .db_instance_status("available")
                    .read_replica_db_instance_identifiers("db1-replica-b")
                    .read_replica_db_instance_identifiers("db1-replica-a")
                    .build(),
            )
            .build()
    });
    let c = clients(&[&default_list, &backup_list, &live]);
    let out: ResolveOutput = serde_json::from_value(
        handle(
            &c,
            input(json!({"action": "resolve"}), "rds-instance", "db1"),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(backup_list.num_calls(), 1);
    let db = &out.databases[0];
    assert_eq!(db.snapshot_id, job);
    assert_eq!(db.snapshot_type, "awsbackup");
    assert_eq!(db.read_replicas, ["db1-replica-a", "db1-replica-b"]);
    let note = &out.notes[0].explanation;
    assert!(note.contains("an AWS Backup recovery point"), "{note}");
    assert!(
        note.contains("read replicas db1-replica-a, db1-replica-b"),
        "{note}"
    );
}

/// A cluster's replica clusters (`ReadReplicaIdentifiers`, cross-region ARNs) are reported.
#[tokio::test]
async fn resolve_reports_a_clusters_cross_region_replicas() {
    let replica = "arn:aws:rds:eu-west-1:123456789012:cluster:docs-replica";
    let list = mock!(Client::describe_db_cluster_snapshots).then_output(|| {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(
                DbClusterSnapshot::builder()
                    .db_cluster_snapshot_identifier("rds:docs-daily")
                    .db_cluster_identifier("docs")
                    .status("available")
                    .snapshot_type("automated")
                    .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_714_500_000))
                    .build(),
            )
            .build()
    });
    let live = mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some("docs"))
        .then_output(move || {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("docs")
                        .status("available")
                        .read_replica_identifiers(replica)
                        .build(),
                )
                .build()
        });
    let c = clients(&[&list, &live]);
    let out: ResolveOutput = serde_json::from_value(
        handle(
            &c,
            input(json!({"action": "resolve"}), "docdb-cluster", "docs"),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(out.databases[0].snapshot_id, "rds:docs-daily");
    assert_eq!(out.databases[0].read_replicas, [replica]);
}
