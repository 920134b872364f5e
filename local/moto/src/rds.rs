//! The RDS databases the tests of several crates create in moto the same way, and the tags
//! of the snapshots taken of them. Seeding is test setup: these panic when moto refuses.

use aws_sdk_rds::types::Tag;

use crate::MotoServer;

/// What may differ between the PostgreSQL instances of [`MotoServer::postgres_instance`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Postgres<'a> {
    /// The instance's tags (none by default).
    pub tags: &'a [(&'a str, &'a str)],
    /// `BackupRetentionPeriod` in days (moto's default when `None`).
    pub backup_retention_days: Option<i32>,
}

impl MotoServer {
    fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk_config())
    }

    /// A PostgreSQL instance `id` (db.t3.micro, 20 GB) with `options`.
    pub async fn postgres_instance(&self, id: &str, options: Postgres<'_>) {
        let mut create = self
            .rds()
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .master_username("admin")
            .master_user_password("password123")
            .allocated_storage(20)
            .set_backup_retention_period(options.backup_retention_days);
        for (key, value) in options.tags {
            create = create.tags(Tag::builder().key(*key).value(*value).build());
        }
        create.send().await.expect("CreateDBInstance");
    }

    /// An Aurora PostgreSQL cluster `id` with one writer, `<id>-1` (db.r6g.large).
    pub async fn aurora_postgres(&self, id: &str) {
        let rds = self.rds();
        rds.create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("admin")
            .master_user_password("password123")
            .send()
            .await
            .expect("CreateDBCluster");
        rds.create_db_instance()
            .db_instance_identifier(format!("{id}-1"))
            .db_cluster_identifier(id)
            .db_instance_class("db.r6g.large")
            .engine("aurora-postgresql")
            .send()
            .await
            .expect("CreateDBInstance");
    }

    /// The tags of the instance snapshot `id`, as (key, value) pairs in RDS's order.
    pub async fn instance_snapshot_tags(&self, id: &str) -> Vec<(String, String)> {
        let out = self
            .rds()
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await
            .expect("DescribeDBSnapshots");
        pairs(out.db_snapshots()[0].tag_list())
    }

    /// The tags of the cluster snapshot `id`, as (key, value) pairs in RDS's order.
    pub async fn cluster_snapshot_tags(&self, id: &str) -> Vec<(String, String)> {
        let out = self
            .rds()
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .expect("DescribeDBClusterSnapshots");
        pairs(out.db_cluster_snapshots()[0].tag_list())
    }
}

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
