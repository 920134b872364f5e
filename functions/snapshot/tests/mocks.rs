//! Faults and services moto cannot produce, injected with aws-smithy-mocks: throttling, a
//! failed snapshot, the create race, and DocumentDB (moto rejects engine `docdb`).

use aws_sdk_rds::Client;
use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::error::ErrorMetadata;
use aws_sdk_rds::operation::create_db_cluster_snapshot::CreateDbClusterSnapshotOutput;
use aws_sdk_rds::operation::create_db_snapshot::CreateDBSnapshotError;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDBClusterSnapshotsError;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::{
    DescribeDBSnapshotsError, DescribeDbSnapshotsOutput,
};
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use rollback_core::ErrorKind;
use rollback_core::contract::snapshot::SnapshotOutput;
use rollback_snapshot::{Clients, handle};
use serde_json::{Value, json};

fn clients(rules: &[&Rule]) -> Clients {
    Clients {
        rds: mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled())),
        // Never called: these plans have no SQL probes with a baseline.
        secrets: aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version_latest()
                .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
                .build(),
        ),
    }
}

fn input(action: &str, kind: &str, id: &str) -> Value {
    json!({"action": action, "plan": {"service": "svc", "databases": [{"kind": kind, "id": id}]},
           "execution": "exec-mock"})
}

fn not_found_snapshot() -> Rule {
    mock!(Client::describe_db_snapshots).then_error(|| {
        DescribeDBSnapshotsError::generic(
            ErrorMetadata::builder().code("DBSnapshotNotFound").build(),
        )
    })
}

fn available_instance() -> Rule {
    mock!(Client::describe_db_instances).then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("db1")
                    .db_instance_status("available")
                    .build(),
            )
            .build()
    })
}

#[tokio::test]
async fn throttling_is_retryable() {
    let describe = not_found_snapshot();
    let instance = available_instance();
    let create = mock!(Client::create_db_snapshot).then_error(|| {
        CreateDBSnapshotError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    let c = clients(&[&describe, &instance, &create]);
    let err = handle(&c, input("create", "rds-instance", "db1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert!(err.is_retryable());
    assert_eq!(err.error_name(), "Rollback.Throttled");
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn busy_instance_is_transient() {
    let describe = not_found_snapshot();
    let instance = available_instance();
    let create = mock!(Client::create_db_snapshot).then_error(|| {
        CreateDBSnapshotError::generic(
            ErrorMetadata::builder()
                .code("InvalidDBInstanceState")
                .message("Instance db1 is not in available state")
                .build(),
        )
    });
    let c = clients(&[&describe, &instance, &create]);
    let err = handle(&c, input("create", "rds-instance", "db1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("db1 is busy"), "{err}");
}

#[tokio::test]
async fn a_failed_snapshot_is_snapshot_failed() {
    let describe = mock!(Client::describe_db_snapshots).then_output(|| {
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(
                DbSnapshot::builder()
                    .db_snapshot_identifier("x")
                    .db_instance_identifier("db1")
                    .status("failed")
                    .build(),
            )
            .build()
    });
    let c = clients(&[&describe]);
    let err = handle(&c, input("status", "rds-instance", "db1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SnapshotFailed);
    assert!(err.to_string().contains("is failed"), "{err}");
}

#[tokio::test]
async fn a_creating_snapshot_is_not_yet_available() {
    let describe = mock!(Client::describe_db_snapshots).then_output(|| {
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(
                DbSnapshot::builder()
                    .db_snapshot_identifier("x")
                    .db_instance_identifier("db1")
                    .status("creating")
                    .percent_progress(40)
                    .build(),
            )
            .build()
    });
    let c = clients(&[&describe]);
    let out: SnapshotOutput = serde_json::from_value(
        handle(&c, input("status", "rds-instance", "db1"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!out.all_available);
    assert_eq!(out.snapshots[0].progress_percent, Some(40));
}

/// A concurrent attempt created the snapshot between our describe and create.
#[tokio::test]
async fn create_race_returns_the_existing_snapshot() {
    let describe = mock!(Client::describe_db_snapshots)
        .sequence()
        .error(|| {
            DescribeDBSnapshotsError::generic(
                ErrorMetadata::builder().code("DBSnapshotNotFound").build(),
            )
        })
        .output(|| {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(
                    DbSnapshot::builder()
                        .db_snapshot_identifier("the-one")
                        .db_instance_identifier("db1")
                        .status("creating")
                        .build(),
                )
                .build()
        })
        .build();
    let instance = available_instance();
    let create = mock!(Client::create_db_snapshot).then_error(|| {
        CreateDBSnapshotError::generic(
            ErrorMetadata::builder()
                .code("DBSnapshotAlreadyExists")
                .build(),
        )
    });
    let c = clients(&[&describe, &instance, &create]);
    let out: SnapshotOutput = serde_json::from_value(
        handle(&c, input("create", "rds-instance", "db1"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out.snapshots[0].snapshot_id, "the-one");
    assert!(!out.snapshots[0].created_now);
}

/// DocumentDB: same cluster API, engine `docdb` (moto rejects that engine).
#[tokio::test]
async fn documentdb_clusters_are_snapshotted_with_the_cluster_api() {
    let describe = mock!(Client::describe_db_cluster_snapshots).then_error(|| {
        DescribeDBClusterSnapshotsError::generic(
            ErrorMetadata::builder()
                .code("DBClusterSnapshotNotFoundFault")
                .build(),
        )
    });
    let cluster = mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some("docs"))
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("docs")
                        .engine("docdb")
                        .status("available")
                        .build(),
                )
                .build()
        });
    let create = mock!(Client::create_db_cluster_snapshot)
        .match_requests(|r| {
            r.db_cluster_identifier() == Some("docs")
                && r.tags().iter().any(|t| {
                    t.key() == Some("rollback:purpose") && t.value() == Some("pre-rollback")
                })
        })
        .then_output(|| {
            CreateDbClusterSnapshotOutput::builder()
                .db_cluster_snapshot(
                    DbClusterSnapshot::builder()
                        .db_cluster_snapshot_identifier("rollback-svc-x-docs")
                        .db_cluster_identifier("docs")
                        .status("creating")
                        .build(),
                )
                .build()
        });
    let c = clients(&[&describe, &cluster, &create]);
    let out: SnapshotOutput = serde_json::from_value(
        handle(&c, input("create", "docdb-cluster", "docs"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(create.num_calls(), 1);
    assert!(out.snapshots[0].created_now);
    assert!(!out.all_available);

    // The same cluster declared as Aurora is a plan mistake.
    let c = clients(&[&describe, &cluster, &create]);
    let err = handle(&c, input("create", "aurora-cluster", "docs"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidPlan);
    assert!(err.to_string().contains("docdb-cluster"), "{err}");
}
