//! Names of everything a rollback creates. They derive from the execution, so a retried step
//! finds what its first attempt created instead of creating a second one.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The Step Functions execution name (`$$.Execution.Name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(pub String);

impl ExecutionId {
    pub fn new(name: impl Into<String>) -> Self {
        ExecutionId(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Eight hex digits that stand for this execution inside identifiers with tight length
    /// limits (RDS identifiers are at most 63 characters). The full name goes into tags.
    pub fn short(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..4])
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RDS identifiers (instances, clusters, snapshots): 63 characters for instances and clusters.
pub const RDS_IDENTIFIER_MAX: usize = 63;
/// RDS snapshot identifiers may be up to 255 characters.
pub const RDS_SNAPSHOT_MAX: usize = 255;

/// Snapshot taken by a rollback of the current state before anything is restored.
pub fn rollback_snapshot_id(service: &str, execution: &ExecutionId, database: &str) -> String {
    fit_identifier(
        &format!("rollback-{service}-{}-{database}", execution.short()),
        RDS_SNAPSHOT_MAX,
    )
}

/// Snapshot taken by the deploy pipeline before a release.
pub fn pre_deploy_snapshot_id(service: &str, release: &str, database: &str) -> String {
    fit_identifier(
        &format!("predeploy-{service}-{release}-{database}"),
        RDS_SNAPSHOT_MAX,
    )
}

/// Where the current database is renamed to when the restored one takes its identifier.
pub fn aside_identifier(database: &str, execution: &ExecutionId) -> String {
    with_suffix(database, &format!("-pre-rollback-{}", execution.short()))
}

/// The identifier a restore is created under before the swap.
pub fn restore_identifier(database: &str, execution: &ExecutionId, drill: bool) -> String {
    let kind = if drill { "drill" } else { "restored" };
    with_suffix(database, &format!("-{kind}-{}", execution.short()))
}

/// `base` + `suffix`, cutting `base` so the result stays a valid RDS identifier.
fn with_suffix(base: &str, suffix: &str) -> String {
    let room = RDS_IDENTIFIER_MAX.saturating_sub(suffix.len());
    let mut head: String = base.chars().take(room).collect();
    while head.ends_with('-') {
        head.pop();
    }
    fit_identifier(&format!("{head}{suffix}"), RDS_IDENTIFIER_MAX)
}

/// Makes `raw` a valid RDS identifier: letters, digits, single hyphens, starts with a letter.
pub fn fit_identifier(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 'r');
    }
    out.truncate(max);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// A Step Functions execution name: at most 80 characters of `[A-Za-z0-9-_]`.
pub fn execution_name(prefix: &str, subject: &str, stamp: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let tail = format!("-{}", clean(stamp));
    let head = format!("{}-{}", clean(prefix), clean(subject));
    // Keep the stamp whole; a long alarm name is cut and made unique by a digest.
    let room = 80 - tail.len();
    let head = if head.len() > room {
        let digest = hex::encode(&Sha256::digest(subject.as_bytes())[..3]);
        format!("{}-{digest}", &head[..room - 7])
    } else {
        head
    };
    format!("{head}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::rules::RDS_IDENTIFIER;

    #[test]
    fn short_is_stable_and_distinct() {
        let a = ExecutionId::new("exec-a");
        assert_eq!(a.short(), ExecutionId::new("exec-a").short());
        assert_ne!(a.short(), ExecutionId::new("exec-b").short());
        assert_eq!(a.short().len(), 8);
    }

    #[test]
    fn derived_identifiers_are_valid_rds_identifiers_even_for_long_inputs() {
        let exec = ExecutionId::new("alarm-mint-replica-5xx-20240501T120000Z");
        let long = "a".repeat(63);
        for id in [
            aside_identifier(&long, &exec),
            restore_identifier(&long, &exec, false),
            restore_identifier("db-", &exec, true),
            aside_identifier("mint-replica-db", &exec),
        ] {
            assert!(
                RDS_IDENTIFIER.is_valid(&id),
                "{id} is not a valid identifier"
            );
            assert!(id.ends_with(&exec.short()));
        }
        assert_eq!(
            aside_identifier("mint-replica-db", &exec),
            format!("mint-replica-db-pre-rollback-{}", exec.short())
        );
    }

    #[test]
    fn snapshot_ids_are_valid() {
        let exec = ExecutionId::new("e1");
        let id = rollback_snapshot_id("mint-replica", &exec, "mint-replica-db");
        assert_eq!(
            id,
            format!("rollback-mint-replica-{}-mint-replica-db", exec.short())
        );
        assert_eq!(
            pre_deploy_snapshot_id("svc", "v1.2.3", "db"),
            "predeploy-svc-v1-2-3-db"
        );
        assert_eq!(fit_identifier("1--a__b-", 63), "r1-a-b");
    }

    #[test]
    fn execution_names_fit_and_stay_unique() {
        let name = execution_name("alarm", "mint replica/5xx", "20240501T120000Z");
        assert_eq!(name, "alarm-mint-replica-5xx-20240501T120000Z");
        let long_a = execution_name("alarm", &"x".repeat(300), "20240501T120000Z");
        let long_b = execution_name(
            "alarm",
            &format!("{}y", "x".repeat(299)),
            "20240501T120000Z",
        );
        assert!(long_a.len() <= 80 && long_b.len() <= 80);
        assert_ne!(long_a, long_b);
        assert!(long_a.ends_with("-20240501T120000Z"));
    }
}
