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
use rollback_core::decision::DecisionVerifier;
use rollback_core::{ErrorKind, ExecutionId, Scope, ids};
use rollback_moto::MotoServer;
use rollback_moto::decision::approve_blocking;
use rollback_restore::{Clients, handle};
use serde_json::{Value, json};

const EXEC: &str = "exec-mock";

/// RDS mocked; the approval decision key is the shared moto's (decisions are real signatures).
fn clients(rules: &[&Rule]) -> Clients {
    let moto = MotoServer::shared();
    Clients {
        rds: mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled())),
        approval: DecisionVerifier::new(
            aws_sdk_kms::Client::new(&moto.sdk_config()),
            moto.decision_key(),
        ),
    }
}

/// The envelope of `action`, with the signed decision the state machine would pass.
fn input(action: Value, kind: &str, id: &str) -> Value {
    let mut v = action;
    v["plan"] = json!({"service": "svc", "databases": [{"kind": kind, "id": id}]});
    v["request"] = json!({"trigger": {"kind": "manual"}, "reason": "r", "scope": "app+database"});
    v["execution"] = json!(EXEC);
    approve_blocking(MotoServer::shared(), &mut v, Scope::APP_AND_DATABASE);
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

/// Issue 11 item 3 and 4: what the restore requests carry, where moto cannot show it (moto's
/// restores copy the snapshot's database whatever the request says, ignore storage types
/// like `aurora-iopt1`, and report no restorable window for instances).
mod carried_settings {
    use super::*;
    use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
    use aws_sdk_rds::operation::modify_db_cluster::ModifyDbClusterOutput;
    use aws_sdk_rds::operation::restore_db_cluster_to_point_in_time::RestoreDbClusterToPointInTimeOutput;
    use aws_sdk_rds::types::{DbParameterGroupStatus, Endpoint, OptionGroupMembership};

    fn tag(k: &str, v: &str) -> Tag {
        Tag::builder().key(k).value(v).build()
    }

    fn has_tag(tags: &[Tag], k: &str, v: &str) -> bool {
        tags.iter()
            .any(|t| t.key() == Some(k) && t.value() == Some(v))
    }

    fn source_instance() -> DbInstance {
        DbInstance::builder()
            .db_instance_identifier("db1")
            .db_instance_arn("arn:aws:rds:us-east-1:123456789012:db:db1")
            .db_instance_status("available")
            .engine("postgres")
            .db_instance_class("db.r6g.2xlarge")
            .db_subnet_group(
                DbSubnetGroup::builder()
                    .db_subnet_group_name("private")
                    .build(),
            )
            .vpc_security_groups(
                VpcSecurityGroupMembership::builder()
                    .vpc_security_group_id("sg-1")
                    .build(),
            )
            .db_parameter_groups(
                DbParameterGroupStatus::builder()
                    .db_parameter_group_name("pg-custom")
                    .build(),
            )
            .option_group_memberships(
                OptionGroupMembership::builder()
                    .option_group_name("og-custom")
                    .build(),
            )
            .multi_az(true)
            .endpoint(Endpoint::builder().port(6432).build())
            .deletion_protection(true)
            .storage_type("io2")
            .iops(20000)
            .allocated_storage(1000)
            .iam_database_authentication_enabled(true)
            .enabled_cloudwatch_logs_exports("postgresql")
            .backup_retention_period(14)
            .preferred_backup_window("03:00-03:30")
            .preferred_maintenance_window("sun:05:00-sun:05:30")
            .ca_certificate_identifier("rds-ca-rsa4096-g1")
            .publicly_accessible(false)
            .copy_tags_to_snapshot(true)
            .auto_minor_version_upgrade(false)
            .performance_insights_enabled(true)
            .performance_insights_kms_key_id("arn:aws:kms:us-east-1:123456789012:key/pi")
            .performance_insights_retention_period(731)
            .monitoring_interval(30)
            .monitoring_role_arn("arn:aws:iam::123456789012:role/rds-monitoring")
            .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/data")
            .tag_list(tag("team", "payments"))
            .tag_list(tag("aws:cloudformation:stack-name", "app"))
            .tag_list(tag("rollback:source", "stale"))
            .build()
    }

    #[tokio::test]
    async fn instance_restore_carries_every_setting_the_call_takes() {
        let restored = leak(ids::restore_identifier("db1", &exec(), false));
        let target = describe_instance(restored).then_error(instance_not_found);
        let source = describe_instance("db1").then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(source_instance())
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
                let tags = r.tags();
                r.db_instance_identifier() == Some(restored)
                    && r.db_snapshot_identifier() == Some("snap")
                    && r.db_instance_class() == Some("db.r6g.2xlarge")
                    && r.db_subnet_group_name() == Some("private")
                    && r.vpc_security_group_ids() == ["sg-1".to_owned()]
                    && r.db_parameter_group_name() == Some("pg-custom")
                    && r.option_group_name() == Some("og-custom")
                    && r.multi_az() == Some(true)
                    && r.port() == Some(6432)
                    && r.deletion_protection() == Some(true)
                    && r.storage_type() == Some("io2")
                    && r.iops() == Some(20000)
                    && r.storage_throughput().is_none()
                    && r.enable_iam_database_authentication() == Some(true)
                    && r.enable_cloudwatch_logs_exports() == ["postgresql".to_owned()]
                    && r.backup_retention_period() == Some(14)
                    && r.preferred_backup_window() == Some("03:00-03:30")
                    && r.ca_certificate_identifier() == Some("rds-ca-rsa4096-g1")
                    && r.publicly_accessible() == Some(false)
                    && r.copy_tags_to_snapshot() == Some(true)
                    && r.auto_minor_version_upgrade() == Some(false)
                    // The source's own tags, not aws: ones; ours win on a clash.
                    && has_tag(tags, "team", "payments")
                    && has_tag(tags, "rollback:source", "db1")
                    && !has_tag(tags, "rollback:source", "stale")
                    && !tags
                        .iter()
                        .any(|t| t.key().is_some_and(|k| k.starts_with("aws:")))
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
        handle(
            &c,
            input(
                json!({"action": "start", "resolved": resolution("rds-instance", "db1", "snap")}),
                "rds-instance",
                "db1",
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            restore.num_calls(),
            1,
            "the restore request lacked a setting"
        );
    }

    /// The copy is available but lacks what only ModifyDBInstance sets: one modify with
    /// exactly those, then a marker so a later poll never modifies twice.
    #[tokio::test]
    async fn follow_up_modify_sets_what_the_restore_call_cannot_and_only_once() {
        let restored = leak(ids::restore_identifier("db1", &exec(), false));
        let copy = move |marked: bool| {
            let mut b = DbInstance::builder()
                .db_instance_identifier(restored)
                .db_instance_arn(format!("arn:aws:rds:us-east-1:123456789012:db:{restored}"))
                .db_instance_status("available")
                .preferred_maintenance_window("wed:06:38-wed:07:08")
                .performance_insights_enabled(false)
                .monitoring_interval(0)
                .set_tag_list(Some(copy_tags("db1")));
            if marked {
                b = b.tag_list(tag("rollback:settings-applied", "x"));
            }
            DescribeDbInstancesOutput::builder()
                .db_instances(b.build())
                .build()
        };
        let target = describe_instance(restored)
            .sequence()
            .output(move || copy(false))
            .times(2)
            .output(move || copy(true))
            .repeatedly()
            .build();
        let source = describe_instance("db1").then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(source_instance())
                .build()
        });
        let modify = mock!(Client::modify_db_instance)
            .match_requests(move |r| {
                r.db_instance_identifier() == Some(restored)
                    && r.apply_immediately() == Some(true)
                    && r.new_db_instance_identifier().is_none()
                    && r.preferred_maintenance_window() == Some("sun:05:00-sun:05:30")
                    && r.enable_performance_insights() == Some(true)
                    && r.performance_insights_kms_key_id()
                        == Some("arn:aws:kms:us-east-1:123456789012:key/pi")
                    && r.performance_insights_retention_period() == Some(731)
                    && r.monitoring_interval() == Some(30)
                    && r.monitoring_role_arn()
                        == Some("arn:aws:iam::123456789012:role/rds-monitoring")
            })
            .then_output(|| ModifyDbInstanceOutput::builder().build());
        let mark = mock!(Client::add_tags_to_resource)
            .match_requests(|r| {
                r.tags()
                    .iter()
                    .any(|t| t.key() == Some("rollback:settings-applied"))
            })
            .then_output(|| AddTagsToResourceOutput::builder().build());
        let c = clients(&[&target, &source, &modify, &mark]);
        let status = || input(json!({"action": "status"}), "rds-instance", "db1");
        let first = handle(&c, status()).await.unwrap();
        assert_eq!(first["all_available"], false, "{first}");
        assert_eq!(first["databases"][0]["status"], "modifying");
        assert_eq!((modify.num_calls(), mark.num_calls()), (1, 1));
        let second = handle(&c, status()).await.unwrap();
        assert_eq!(second["all_available"], true, "{second}");
        assert_eq!(modify.num_calls(), 1, "modified twice");
    }

    fn aurora_source(engine: &str) -> DbCluster {
        DbCluster::builder()
            .db_cluster_identifier("docs")
            .db_cluster_arn("arn:aws:rds:us-east-1:123456789012:cluster:docs")
            .engine(engine)
            .engine_version("8.0.mysql_aurora.3.05.2")
            .status("available")
            .db_subnet_group("docs-subnets")
            .db_cluster_parameter_group("docs-params")
            .port(3306)
            .vpc_security_groups(
                VpcSecurityGroupMembership::builder()
                    .vpc_security_group_id("sg-docs")
                    .build(),
            )
            .deletion_protection(true)
            .iam_database_authentication_enabled(true)
            .enabled_cloudwatch_logs_exports("audit")
            .copy_tags_to_snapshot(true)
            .backtrack_window(86400)
            .storage_type("aurora-iopt1")
            .backup_retention_period(21)
            .preferred_backup_window("02:00-02:30")
            .preferred_maintenance_window("sat:04:00-sat:04:30")
            .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/cluster")
            .tag_list(tag("team", "docs"))
            .db_cluster_members(
                DbClusterMember::builder()
                    .db_instance_identifier("docs-1")
                    .is_cluster_writer(true)
                    .build(),
            )
            .build()
    }

    fn writer(engine: &'static str) -> Rule {
        describe_instance("docs-1").then_output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("docs-1")
                        .db_instance_class("db.r6g.large")
                        .engine(engine)
                        .db_cluster_identifier("docs")
                        .db_parameter_groups(
                            DbParameterGroupStatus::builder()
                                .db_parameter_group_name("docs-instance-params")
                                .build(),
                        )
                        .ca_certificate_identifier("rds-ca-ecc384-g1")
                        .preferred_maintenance_window("mon:01:00-mon:01:30")
                        .promotion_tier(1)
                        .publicly_accessible(false)
                        .auto_minor_version_upgrade(false)
                        .performance_insights_enabled(true)
                        .performance_insights_kms_key_id("pi-key")
                        .performance_insights_retention_period(465)
                        .monitoring_interval(15)
                        .monitoring_role_arn("arn:aws:iam::123456789012:role/mon")
                        .availability_zone("us-east-1b")
                        .tag_list(tag("member", "writer"))
                        .build(),
                )
                .build()
        })
    }

    fn cluster_not_found() -> DescribeDBClustersError {
        DescribeDBClustersError::generic(
            ErrorMetadata::builder()
                .code("DBClusterNotFoundFault")
                .build(),
        )
    }

    fn cluster_snapshots() -> Rule {
        mock!(Client::describe_db_cluster_snapshots).then_output(|| {
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
        })
    }

    #[tokio::test]
    async fn aurora_restore_carries_cluster_and_member_settings() {
        let restored = leak(ids::restore_identifier("docs", &exec(), false));
        let member = leak(format!("{restored}-1"));
        let target = mock!(Client::describe_db_clusters)
            .match_requests(move |r| r.db_cluster_identifier() == Some(restored))
            .then_error(cluster_not_found);
        let source = mock!(Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some("docs"))
            .then_output(|| {
                DescribeDbClustersOutput::builder()
                    .db_clusters(aurora_source("aurora-mysql"))
                    .build()
            });
        let new_member = describe_instance(member).then_error(instance_not_found);
        let restore = mock!(Client::restore_db_cluster_from_snapshot)
            .match_requests(move |r| {
                r.db_cluster_identifier() == Some(restored)
                    && r.engine() == Some("aurora-mysql")
                    && r.db_subnet_group_name() == Some("docs-subnets")
                    && r.db_cluster_parameter_group_name() == Some("docs-params")
                    && r.deletion_protection() == Some(true)
                    && r.enable_iam_database_authentication() == Some(true)
                    && r.enable_cloudwatch_logs_exports() == ["audit".to_owned()]
                    && r.copy_tags_to_snapshot() == Some(true)
                    && r.backtrack_window() == Some(86400)
                    && r.storage_type() == Some("aurora-iopt1")
                    && r.backup_retention_period() == Some(21)
                    && r.preferred_backup_window() == Some("02:00-02:30")
                    // A snapshot restore keeps the snapshot's key.
                    && r.kms_key_id().is_none()
                    // Multi-AZ DB cluster settings: not for Aurora.
                    && r.db_cluster_instance_class().is_none()
                    && has_tag(r.tags(), "team", "docs")
            })
            .then_output(move || {
                RestoreDbClusterFromSnapshotOutput::builder()
                    .db_cluster(
                        DbCluster::builder()
                            .db_cluster_identifier(restored)
                            .engine("aurora-mysql")
                            .status("creating")
                            .build(),
                    )
                    .build()
            });
        let create = mock!(Client::create_db_instance)
            .match_requests(move |r| {
                r.db_instance_identifier() == Some(member)
                    && r.db_instance_class() == Some("db.r6g.large")
                    && r.db_parameter_group_name() == Some("docs-instance-params")
                    && r.ca_certificate_identifier() == Some("rds-ca-ecc384-g1")
                    && r.preferred_maintenance_window() == Some("mon:01:00-mon:01:30")
                    && r.promotion_tier() == Some(1)
                    && r.publicly_accessible() == Some(false)
                    && r.auto_minor_version_upgrade() == Some(false)
                    && r.enable_performance_insights() == Some(true)
                    && r.performance_insights_kms_key_id() == Some("pi-key")
                    && r.performance_insights_retention_period() == Some(465)
                    && r.monitoring_interval() == Some(15)
                    && r.monitoring_role_arn() == Some("arn:aws:iam::123456789012:role/mon")
                    // AZ-agnostic: RDS places the copy.
                    && r.availability_zone().is_none()
                    && has_tag(r.tags(), "member", "writer")
            })
            .then_output(|| CreateDbInstanceOutput::builder().build());
        let snapshots = cluster_snapshots();
        let writer = writer("aurora-mysql");
        let c = clients(&[
            &target,
            &source,
            &snapshots,
            &writer,
            &new_member,
            &restore,
            &create,
        ]);
        handle(
            &c,
            input(
                json!({"action": "start", "resolved": resolution("aurora-cluster", "docs", "snap")}),
                "aurora-cluster",
                "docs",
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            (restore.num_calls(), create.num_calls()),
            (1, 1),
            "a request lacked a setting"
        );
    }

    /// DocumentDB rejects what it does not know: none of it is sent, even when the source
    /// reports it; its backup settings come in the follow-up.
    #[tokio::test]
    async fn documentdb_gets_only_what_documentdb_takes() {
        let restored = leak(ids::restore_identifier("docs", &exec(), false));
        let member = leak(format!("{restored}-1"));
        let target = mock!(Client::describe_db_clusters)
            .match_requests(move |r| r.db_cluster_identifier() == Some(restored))
            .then_error(cluster_not_found);
        let source = mock!(Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some("docs"))
            .then_output(|| {
                DescribeDbClustersOutput::builder()
                    .db_clusters(aurora_source("docdb"))
                    .build()
            });
        let new_member = describe_instance(member).then_error(instance_not_found);
        let restore = mock!(Client::restore_db_cluster_from_snapshot)
            .match_requests(move |r| {
                r.engine() == Some("docdb")
                    && r.enable_cloudwatch_logs_exports() == ["audit".to_owned()]
                    && r.storage_type() == Some("aurora-iopt1")
                    && r.deletion_protection() == Some(true)
                    && r.enable_iam_database_authentication().is_none()
                    && r.copy_tags_to_snapshot().is_none()
                    && r.backtrack_window().is_none()
                    && r.backup_retention_period().is_none()
                    && r.preferred_backup_window().is_none()
                    && r.option_group_name().is_none()
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
                    && r.db_parameter_group_name().is_none()
                    && r.monitoring_interval().is_none()
                    && r.performance_insights_retention_period().is_none()
                    && r.publicly_accessible().is_none()
                    && r.enable_performance_insights() == Some(true)
                    && r.ca_certificate_identifier() == Some("rds-ca-ecc384-g1")
            })
            .then_output(|| CreateDbInstanceOutput::builder().build());
        let snapshots = cluster_snapshots();
        let writer = writer("docdb");
        let c = clients(&[
            &target,
            &source,
            &snapshots,
            &writer,
            &new_member,
            &restore,
            &create,
        ]);
        handle(
            &c,
            input(
                json!({"action": "start", "resolved": resolution("docdb-cluster", "docs", "snap")}),
                "docdb-cluster",
                "docs",
            ),
        )
        .await
        .unwrap();
        assert_eq!((restore.num_calls(), create.num_calls()), (1, 1));

        // Follow-up once the copy is available: backups and maintenance window.
        let available = mock!(Client::describe_db_clusters)
            .match_requests(move |r| r.db_cluster_identifier() == Some(restored))
            .then_output(move || {
                DescribeDbClustersOutput::builder()
                    .db_clusters(
                        DbCluster::builder()
                            .db_cluster_identifier(restored)
                            .db_cluster_arn("arn:aws:rds:us-east-1:123456789012:cluster:copy")
                            .engine("docdb")
                            .status("available")
                            .backup_retention_period(1)
                            .set_tag_list(Some(copy_tags("docs")))
                            .build(),
                    )
                    .build()
            });
        let modify = mock!(Client::modify_db_cluster)
            .match_requests(move |r| {
                r.db_cluster_identifier() == Some(restored)
                    && r.backup_retention_period() == Some(21)
                    && r.preferred_backup_window() == Some("02:00-02:30")
                    && r.preferred_maintenance_window() == Some("sat:04:00-sat:04:30")
                    && r.new_db_cluster_identifier().is_none()
            })
            .then_output(|| ModifyDbClusterOutput::builder().build());
        let mark = mock!(Client::add_tags_to_resource)
            .then_output(|| AddTagsToResourceOutput::builder().build());
        let c = clients(&[&available, &source, &modify, &mark]);
        let out = handle(
            &c,
            input(json!({"action": "status"}), "docdb-cluster", "docs"),
        )
        .await
        .unwrap();
        assert_eq!(out["databases"][0]["status"], "modifying", "{out}");
        assert_eq!(modify.num_calls(), 1);
    }

    fn pitr_resolution(at: &str) -> Value {
        json!([{"database": "docs", "kind": "aurora-cluster", "snapshot_id": format!("point-in-time:{at}"),
            "snapshot_created_at": at, "snapshot_type": "point-in-time", "method": "point-in-time",
            "restore_time": at,
            "data_loss": {"from": at, "to": "2024-05-01T11:00:00Z", "seconds": 1, "summary": "s"}}])
    }

    fn windowed_source() -> Rule {
        mock!(Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some("docs"))
            .then_output(|| {
                let mut c = aurora_source("aurora-mysql");
                c.earliest_restorable_time =
                    Some(aws_smithy_types::DateTime::from_secs(SNAPSHOT_SECS)); // 10:00
                c.latest_restorable_time =
                    Some(aws_smithy_types::DateTime::from_secs(SNAPSHOT_SECS + 3000)); // 10:50
                DescribeDbClustersOutput::builder().db_clusters(c).build()
            })
    }

    #[tokio::test]
    async fn cluster_point_in_time_is_a_full_copy_to_the_exact_time_with_the_source_key() {
        let restored = leak(ids::restore_identifier("docs", &exec(), false));
        let target = mock!(Client::describe_db_clusters)
            .match_requests(move |r| r.db_cluster_identifier() == Some(restored))
            .then_error(cluster_not_found);
        let member = leak(format!("{restored}-1"));
        let new_member = describe_instance(member).then_error(instance_not_found);
        let restore = mock!(Client::restore_db_cluster_to_point_in_time)
            .match_requests(move |r| {
                r.db_cluster_identifier() == Some(restored)
                    && r.source_db_cluster_identifier() == Some("docs")
                    && r.restore_type() == Some("full-copy")
                    && r.restore_to_time()
                        == Some(&aws_smithy_types::DateTime::from_secs(SNAPSHOT_SECS + 1800))
                    && r.use_latest_restorable_time().is_none()
                    && r.kms_key_id() == Some("arn:aws:kms:us-east-1:123456789012:key/cluster")
                    && r.backtrack_window() == Some(86400)
                    && r.storage_type() == Some("aurora-iopt1")
                    && has_tag(r.tags(), "rollback:restore-time", "2024-05-01T10:30:00Z")
                    && !r
                        .tags()
                        .iter()
                        .any(|t| t.key() == Some("rollback:snapshot"))
            })
            .then_output(move || {
                RestoreDbClusterToPointInTimeOutput::builder()
                    .db_cluster(
                        DbCluster::builder()
                            .db_cluster_identifier(restored)
                            .status("creating")
                            .build(),
                    )
                    .build()
            });
        let create = mock!(Client::create_db_instance)
            .then_output(|| CreateDbInstanceOutput::builder().build());
        let source = windowed_source();
        let writer = writer("aurora-mysql");
        let c = clients(&[&target, &source, &writer, &new_member, &restore, &create]);
        handle(
            &c,
            input(
                json!({"action": "start", "resolved": pitr_resolution("2024-05-01T10:30:00Z")}),
                "aurora-cluster",
                "docs",
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            restore.num_calls(),
            1,
            "the request was not the expected PITR"
        );
    }

    #[tokio::test]
    async fn point_in_time_outside_the_window_is_refused_before_anything_is_restored() {
        let source = windowed_source();
        let restore = mock!(Client::restore_db_cluster_to_point_in_time)
            .then_output(|| RestoreDbClusterToPointInTimeOutput::builder().build());
        let c = clients(&[&source, &restore]);
        let mut request = input(json!({"action": "resolve"}), "aurora-cluster", "docs");
        request["plan"]["databases"][0]["restore"] = json!("point-in-time");
        request["request"]["cutoff"] = json!("2024-05-01T09:15:00Z");
        let err = handle(&c, request).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let text = err.to_string();
        for part in [
            "docs",
            "2024-05-01 09:15:00.000 UTC",
            "2024-05-01 10:00:00 UTC to 2024-05-01 10:50:00 UTC",
            "later cutoff",
        ] {
            assert!(text.contains(part), "{part} missing in {text}");
        }

        // The approved time aged out of the window before start: refused, nothing restored.
        let restored = leak(ids::restore_identifier("docs", &exec(), false));
        let target = mock!(Client::describe_db_clusters)
            .match_requests(move |r| r.db_cluster_identifier() == Some(restored))
            .then_error(cluster_not_found);
        let c = clients(&[&target, &source, &restore]);
        let err = handle(
            &c,
            input(
                json!({"action": "start", "resolved": pitr_resolution("2024-05-01T09:59:59Z")}),
                "aurora-cluster",
                "docs",
            ),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("the approved restore time"),
            "{err}"
        );
        assert_eq!(restore.num_calls(), 0);
    }
}
