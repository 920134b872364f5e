//! What the emails say about a database's read replicas (`DatabaseResolution.read_replicas`).
//!
//! The swap renames the live database aside and gives its identifier to the restored copy. RDS
//! replicates by resource, not by name: the replicas keep following the database moved aside
//! (the state being rolled back) and never follow the restored copy. Recreating them is not
//! automated; the email says so and gives the commands, with new replica names derived from the
//! old ones and the execution (`ids::with_suffix`, collision-free).

use rollback_core::ids::{self, ExecutionId};
use rollback_core::plan::DatabaseKind;
use rollback_core::resolved::DatabaseResolution;

use crate::text::clean;

/// A replica as RDS names it: an identifier, or the ARN of a cross-region replica.
struct Replica {
    /// `Some` for a cross-region replica (from its ARN).
    region: Option<String>,
    account: Option<String>,
    name: String,
}

fn parse(id: &str) -> Replica {
    // arn:aws:rds:eu-west-1:123456789012:db:name  /  …:cluster:name
    let parts: Vec<&str> = id.split(':').collect();
    if parts.len() == 7 && parts[0] == "arn" && parts[2] == "rds" {
        Replica {
            region: Some(parts[3].to_owned()),
            account: Some(parts[4].to_owned()),
            name: parts[6].to_owned(),
        }
    } else {
        Replica {
            region: None,
            account: None,
            name: id.to_owned(),
        }
    }
}

/// Lines (without indentation) for one database; none when it has no read replicas.
/// `future`: the approval email ("will NOT follow"); otherwise past tense (success notice).
pub fn lines(db: &DatabaseResolution, execution: &ExecutionId, future: bool) -> Vec<String> {
    if db.read_replicas.is_empty() {
        return Vec::new();
    }
    let name = clean(&db.database, 80);
    let aside = ids::aside_identifier(&db.database, execution);
    let replicas: Vec<String> = db.read_replicas.iter().map(|r| clean(r, 255)).collect();
    let (stay, follow) = if future {
        ("they stay", "will NOT follow")
    } else {
        ("they stayed", "did NOT follow")
    };
    let mut out = vec![format!(
        "READ REPLICAS: {name} has read replicas {}: {stay} attached to the database moved aside \
         ({aside}) and {follow} the restored copy; after the rollback create new replicas of \
         {name} and repoint readers, then delete the old replicas. Recreating replicas is not \
         automated; the commands, per replica:",
        replicas.join(", ")
    )];
    for replica in &replicas {
        let r = parse(replica);
        let new = ids::with_suffix(&r.name, &format!("-{}", execution.short()));
        let region = r
            .region
            .as_deref()
            .map(|region| format!(" --region {region}"))
            .unwrap_or_default();
        // A cross-region replica is created in its region from the source's ARN.
        let source = |kind: &str| match (&r.region, &r.account) {
            (Some(_), Some(account)) => {
                format!("arn:aws:rds:<region of {name}>:{account}:{kind}:{name}")
            }
            _ => name.clone(),
        };
        if db.kind == DatabaseKind::RdsInstance {
            out.push(format!(
                "  {}: aws rds create-db-instance-read-replica{region} \
                 --db-instance-identifier {new} --source-db-instance-identifier {}",
                r.name,
                source("db")
            ));
            out.push(format!(
                "    aws rds wait db-instance-available{region} --db-instance-identifier {new}"
            ));
            out.push(format!(
                "    then point the readers of {} at {new}, and when nothing reads from it: \
                 aws rds delete-db-instance{region} --db-instance-identifier {} \
                 --skip-final-snapshot",
                r.name, r.name
            ));
        } else {
            out.push(format!(
                "  {}: aws rds create-db-cluster{region} --db-cluster-identifier {new} \
                 --engine <engine of {name}> --replication-source-identifier {}",
                r.name,
                if r.region.is_some() {
                    source("cluster")
                } else {
                    format!("<ARN of {name}>")
                }
            ));
            out.push(format!(
                "    then add its instances (aws rds create-db-instance{region} \
                 --db-cluster-identifier {new} --db-instance-identifier {new}-1 \
                 --db-instance-class <class> --engine <engine of {name}>), point the readers of \
                 {} at {new}, and delete the old replica cluster's instances and the cluster \
                 (aws rds delete-db-cluster{region} --db-cluster-identifier {} \
                 --skip-final-snapshot)",
                r.name, r.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use rollback_core::resolved::DataLossWindow;

    fn resolution(kind: DatabaseKind, replicas: &[&str]) -> DatabaseResolution {
        let at: DateTime<Utc> = "2024-05-01T11:00:00Z".parse().unwrap();
        serde_json::from_value(serde_json::json!({
            "database": "db1", "kind": kind, "snapshot_id": "s", "snapshot_created_at": at,
            "snapshot_type": "manual", "data_loss": DataLossWindow::new(at, at),
            "read_replicas": replicas,
        }))
        .unwrap()
    }

    #[test]
    fn no_replicas_no_lines() {
        let exec = ExecutionId::new("e1");
        assert!(lines(&resolution(DatabaseKind::RdsInstance, &[]), &exec, true).is_empty());
    }

    #[test]
    fn cross_region_replicas_are_created_in_their_region() {
        let exec = ExecutionId::new("e1");
        let text = lines(
            &resolution(
                DatabaseKind::RdsInstance,
                &["arn:aws:rds:eu-west-1:123456789012:db:db1-eu"],
            ),
            &exec,
            false,
        )
        .join("\n");
        assert!(text.contains("they stayed attached"), "{text}");
        assert!(
            text.contains(&format!(
                "aws rds create-db-instance-read-replica --region eu-west-1 \
                 --db-instance-identifier db1-eu-{} --source-db-instance-identifier \
                 arn:aws:rds:<region of db1>:123456789012:db:db1",
                exec.short()
            )),
            "{text}"
        );
        let text = lines(
            &resolution(
                DatabaseKind::AuroraCluster,
                &["arn:aws:rds:eu-west-1:123456789012:cluster:db1-eu"],
            ),
            &exec,
            true,
        )
        .join("\n");
        assert!(
            text.contains("aws rds create-db-cluster --region eu-west-1"),
            "{text}"
        );
    }
}
