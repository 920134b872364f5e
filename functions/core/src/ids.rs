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
    /// Wraps an execution name.
    pub fn new(name: impl Into<String>) -> Self {
        ExecutionId(name.into())
    }

    /// The execution name.
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

/// The copies a rollback makes of a plan database, each under a name derived from the
/// database id and the execution: `<database>-<label>-<execution short>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Derived {
    /// The current database, renamed aside by the swap (`-pre-rollback-`).
    Aside,
    /// The restored copy before the swap (`-restored-`).
    Restored,
    /// A drill's scratch copy (`-drill-`).
    Drill,
}

impl Derived {
    /// Every kind of derived identifier.
    pub const ALL: [Derived; 3] = [Derived::Aside, Derived::Restored, Derived::Drill];

    /// The word in the derived name.
    pub fn label(self) -> &'static str {
        match self {
            Derived::Aside => "pre-rollback",
            Derived::Restored => "restored",
            Derived::Drill => "drill",
        }
    }

    /// What the copy is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Derived::Aside => "moved-aside (pre-rollback) name",
            Derived::Restored => "restored-copy name",
            Derived::Drill => "drill-copy name",
        }
    }
}

/// Hex digits of the execution in every derived name (`ExecutionId::short`).
const SHORT_LEN: usize = 8;
/// Hex digits of the database id's SHA-256 that replace the tail of an id cut to fit.
const ID_HASH_LEN: usize = 6;

/// The name of one copy of `database` made by `execution`. Collision-free: distinct database
/// ids give distinct names even when they must be cut to fit 63 characters (see
/// [`with_suffix`]), and distinct executions give distinct names.
pub fn derived_identifier(database: &str, kind: Derived, execution: &ExecutionId) -> String {
    with_suffix(
        database,
        &format!("-{}-{}", kind.label(), execution.short()),
    )
}

/// Every name of this kind derived from `database` is this stem followed by the execution's
/// eight hex digits: the cut (and hash) depends on lengths only, never on the execution.
pub fn derived_stem(database: &str, kind: Derived) -> String {
    let placeholder = "0".repeat(SHORT_LEN);
    let mut name = with_suffix(database, &format!("-{}-{placeholder}", kind.label()));
    name.truncate(name.len() - SHORT_LEN);
    name
}

/// Which copy of `database` `candidate` is named like, if any, for any execution (RDS
/// identifiers are case-insensitive): a derived name, or (for names that were not cut) one of
/// the instances of a restored cluster (`<derived name>-<n>`).
pub fn named_like_copy_of(candidate: &str, database: &str) -> Option<Derived> {
    let candidate = candidate.to_ascii_lowercase();
    Derived::ALL.into_iter().find(|&kind| {
        let stem = derived_stem(database, kind).to_ascii_lowercase();
        let Some(rest) = candidate.strip_prefix(&stem) else {
            return false;
        };
        let (short, member) = rest.split_at(rest.len().min(SHORT_LEN));
        short.len() == SHORT_LEN
            && short.chars().all(|c| c.is_ascii_hexdigit())
            && (member.is_empty()
                || member
                    .strip_prefix('-')
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
    })
}

/// Where the current database is renamed to when the restored one takes its identifier.
pub fn aside_identifier(database: &str, execution: &ExecutionId) -> String {
    derived_identifier(database, Derived::Aside, execution)
}

/// The identifier a restore is created under before the swap.
pub fn restore_identifier(database: &str, execution: &ExecutionId, drill: bool) -> String {
    let kind = if drill {
        Derived::Drill
    } else {
        Derived::Restored
    };
    derived_identifier(database, kind, execution)
}

/// `base` + `suffix` as a valid RDS identifier (at most 63 characters). When that fits it is
/// exactly `base` + `suffix` (so existing names stay stable). Otherwise `base` is cut and its
/// cut tail replaced by `-` and six hex digits of the SHA-256 of the whole (lowercased) `base`,
/// so two ids that share their first characters still get distinct names.
pub fn with_suffix(base: &str, suffix: &str) -> String {
    let whole = fit_identifier(&format!("{base}{suffix}"), usize::MAX);
    if whole.len() <= RDS_IDENTIFIER_MAX {
        return whole;
    }
    let digest = Sha256::digest(base.to_ascii_lowercase().as_bytes());
    let tag = format!("-{}", &hex::encode(digest)[..ID_HASH_LEN]);
    let room = RDS_IDENTIFIER_MAX.saturating_sub(suffix.len() + tag.len());
    let mut head: String = fit_identifier(base, usize::MAX)
        .chars()
        .take(room)
        .collect();
    while head.ends_with('-') {
        head.pop();
    }
    fit_identifier(&format!("{head}{tag}{suffix}"), RDS_IDENTIFIER_MAX)
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

    /// Two 60-character ids sharing their first 50 characters: every derived name is a valid
    /// RDS identifier and distinct, while a name that fits stays exactly as before.
    #[test]
    fn long_ids_sharing_a_prefix_get_distinct_derived_names() {
        let shared = format!("orders-{}", "x".repeat(43));
        assert_eq!(shared.len(), 50);
        let a = format!("{shared}-aaaaaaaaa");
        let b = format!("{shared}-bbbbbbbbb");
        assert_eq!((a.len(), b.len()), (60, 60));
        let exec = ExecutionId::new("alarm-orders-5xx-20240501T120000Z");
        for kind in Derived::ALL {
            let (na, nb) = (
                derived_identifier(&a, kind, &exec),
                derived_identifier(&b, kind, &exec),
            );
            assert_ne!(na, nb, "{kind:?}");
            for name in [&na, &nb] {
                assert!(RDS_IDENTIFIER.is_valid(name), "{name} ({kind:?})");
                assert!(name.ends_with(&format!("-{}-{}", kind.label(), exec.short())));
                assert_eq!(name.len(), RDS_IDENTIFIER_MAX, "{name}");
            }
            assert_eq!(derived_stem(&a, kind), na[..na.len() - 8]);
            // The same id always gives the same name; case does not matter to RDS.
            assert_eq!(
                derived_identifier(&a.to_uppercase(), kind, &exec).to_lowercase(),
                na
            );
        }
        assert_eq!(
            restore_identifier(&a, &exec, false),
            derived_identifier(&a, Derived::Restored, &exec)
        );
        assert_eq!(
            restore_identifier("mint-replica-db", &exec, true),
            format!("mint-replica-db-drill-{}", exec.short())
        );
        // Another execution: other names.
        let other = ExecutionId::new("alarm-orders-5xx-20240502T120000Z");
        assert_ne!(aside_identifier(&a, &exec), aside_identifier(&a, &other));
    }

    #[test]
    fn copies_are_recognised_by_name_for_any_execution() {
        let exec = ExecutionId::new("e1");
        let long = format!("{}-tail", "p".repeat(55));
        for db in ["mint-replica-db", long.as_str()] {
            for kind in Derived::ALL {
                let name = derived_identifier(db, kind, &exec);
                assert_eq!(named_like_copy_of(&name, db), Some(kind), "{name}");
                assert_eq!(named_like_copy_of(&name.to_uppercase(), db), Some(kind));
            }
        }
        let restored = restore_identifier("mint-replica-db", &exec, false);
        assert_eq!(
            named_like_copy_of(&format!("{restored}-2"), "mint-replica-db"),
            Some(Derived::Restored)
        );
        for not_a_copy in [
            "mint-replica-db",
            "mint-replica-db-pre-rollback",
            "mint-replica-db-pre-rollback-1234567",
            "mint-replica-db-pre-rollback-1234567g",
            "mint-replica-db-restored-12345678-x",
            "mint-replica-db-restored-12345678-",
            "other-db-restored-12345678",
        ] {
            assert_eq!(
                named_like_copy_of(not_a_copy, "mint-replica-db"),
                None,
                "{not_a_copy}"
            );
        }
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
