//! Where a plan database is right now. `swap`, `revert` and `observe` decide only from this
//! observation, taken again after every failed rename: a rename whose answer was lost may
//! have been carried out, and what we say about a database must be what we just saw.

use aws_sdk_rds::Client;
use rollback_core::RollbackError;
use rollback_core::contract::restore::{ObservedDatabase, Placement};
use rollback_core::ids;
use rollback_core::plan::DatabaseKind;

use crate::db::{self, DbState};
use crate::start::Target;

/// The three identifiers of one plan database, described.
#[derive(Debug, Clone)]
pub struct Observation {
    pub kind: DatabaseKind,
    pub original_id: String,
    pub aside_id: String,
    pub restore_id: String,
    pub original: Option<DbState>,
    pub aside: Option<DbState>,
    pub restored: Option<DbState>,
    /// The original identifier holds this execution's restored copy.
    pub original_is_copy: bool,
    /// The database found aside is another execution's (`aside_id` is its name): that
    /// execution stopped between the two renames and left the identifier empty.
    pub foreign_aside: bool,
    pub placement: Placement,
}

/// How often an observation that may be torn is taken again (see [`Observation::take`]).
const RETAKES: usize = 3;

fn renaming(state: &Option<DbState>) -> bool {
    state.as_ref().is_some_and(|s| s.status == "renaming")
}

impl Observation {
    /// Describes the original, aside and restore identifiers of `target`'s database. The
    /// three describes are not atomic: a rename that finishes between two of them shows the
    /// database at neither name (or at both). Such a view is taken again before anyone is
    /// told a database is missing.
    pub async fn take(rds: &Client, target: &Target<'_>) -> Result<Observation, RollbackError> {
        let mut seen = Self::take_once(rds, target).await?;
        for _ in 0..RETAKES {
            if !seen.may_be_torn() {
                break;
            }
            seen = Self::take_once(rds, target).await?;
        }
        Ok(seen)
    }

    /// A view in which a database seems to have vanished: missing or in conflict, or the
    /// original name free while the restored copy is gone too. The three describes are not
    /// atomic: a rename that completes between them (restored → original after the original
    /// was read) looks exactly like this, so it is taken again before anyone acts on it.
    fn may_be_torn(&self) -> bool {
        self.placement.needs_person()
            || (self.placement == Placement::Between && self.restored.is_none())
    }

    async fn take_once(rds: &Client, target: &Target<'_>) -> Result<Observation, RollbackError> {
        let kind = target.db.kind;
        let original_id = target.db.id.clone();
        let aside_id = ids::aside_identifier(&original_id, target.execution);
        let restore_id = target.id();
        let original = db::describe(rds, kind, &original_id).await?;
        let mut aside_id = aside_id;
        let mut aside = db::describe(rds, kind, &aside_id).await?;
        let restored = db::describe(rds, kind, &restore_id).await?;
        let original_is_copy = original.as_ref().is_some_and(|s| target.owns(s));
        let mut foreign_aside = false;
        if original.is_none()
            && aside.is_none()
            && !target.drill
            && let Some(other) = foreign_aside_of(rds, kind, &original_id).await?
        {
            aside_id = other.id.clone();
            aside = Some(other);
            foreign_aside = true;
        }
        let placement = if target.drill {
            Placement::Drill
        } else {
            classify(&original, &aside, &restored, original_is_copy)
        };
        Ok(Observation {
            kind,
            original_id,
            aside_id,
            restore_id,
            original,
            aside,
            restored,
            original_is_copy,
            foreign_aside,
            placement,
        })
    }

    pub fn restored_ready(&self) -> bool {
        self.restored
            .as_ref()
            .is_some_and(|s| s.is_available() && s.status != "renaming")
    }

    /// The observation as the contract reports it, with one plain sentence.
    pub fn report(&self, database: &str) -> ObservedDatabase {
        let status = |s: &Option<DbState>| s.as_ref().map(|s| s.status.clone());
        ObservedDatabase {
            database: database.to_owned(),
            kind: self.kind,
            placement: self.placement,
            status: status(&self.original),
            aside: self.aside_id.clone(),
            aside_status: status(&self.aside),
            restore_id: self.restore_id.clone(),
            restore_status: status(&self.restored),
            summary: self.summary(),
        }
    }

    pub fn summary(&self) -> String {
        let (o, a, r) = (&self.original_id, &self.aside_id, &self.restore_id);
        let at = |id: &str, s: &Option<DbState>| match s {
            Some(s) => format!("{id} is {}", s.status),
            None => format!("{id} does not exist"),
        };
        match self.placement {
            Placement::Original => format!(
                "{o} holds the database the rollback found ({}); nothing was renamed",
                self.original.as_ref().map_or("?", |s| s.status.as_str())
            ),
            Placement::MovingAside => format!("RDS is renaming {o} to {a}"),
            Placement::Between if self.foreign_aside => format!(
                "NO DATABASE at {o}: an earlier rollback that stopped between its two renames \
                 left the previous database at {a} ({})",
                self.aside.as_ref().map_or("?", |s| s.status.as_str()),
            ),
            Placement::Between => format!(
                "NO DATABASE at {o}: the previous database is at {a} ({}), the restored copy {}",
                self.aside.as_ref().map_or("?", |s| s.status.as_str()),
                at(r, &self.restored)
            ),
            Placement::MovingIn => format!(
                "RDS is renaming a database into {o} (observed: {}; {})",
                at(a, &self.aside),
                at(r, &self.restored)
            ),
            Placement::Swapped => format!(
                "{o} holds this execution's restored copy ({}); the previous database is kept as \
                 {a} ({})",
                self.original.as_ref().map_or("?", |s| s.status.as_str()),
                self.aside.as_ref().map_or("?", |s| s.status.as_str())
            ),
            Placement::MovingOut => {
                format!("RDS is renaming the restored copy from {o} back to {r}")
            }
            Placement::Missing => format!(
                "NO DATABASE at {o} nor at {a}, and no rename in progress; {}",
                at(r, &self.restored)
            ),
            Placement::Conflict => format!(
                "names taken by something this rollback did not put there: {}; {}; {}",
                at(o, &self.original),
                at(a, &self.aside),
                at(r, &self.restored)
            ),
            Placement::Drill => format!(
                "drill: nothing renamed; {}; scratch copy: {}",
                at(o, &self.original),
                at(r, &self.restored)
            ),
        }
    }
}

/// With the original identifier empty and nothing aside under this execution's name: the one
/// database another execution put aside (`<db>-pre-rollback-<other>`), if there is exactly
/// one. A rollback stopped between its two renames (a person stopped the execution, or it
/// timed out) leaves that; whoever runs next must see it and put it back.
async fn foreign_aside_of(
    rds: &Client,
    kind: DatabaseKind,
    original: &str,
) -> Result<Option<DbState>, RollbackError> {
    let stem = ids::derived_stem(original, ids::Derived::Aside);
    let mut candidates: Vec<DbState> = db::list_with_prefix(rds, kind, &stem)
        .await?
        .into_iter()
        .filter(|d| ids::named_like_copy_of(&d.id, original) == Some(ids::Derived::Aside))
        .filter(|d| d.id.len() == stem.len() + 8)
        .collect();
    if candidates.len() == 1 {
        Ok(candidates.pop())
    } else {
        if candidates.len() > 1 {
            tracing::warn!(
                database = original,
                count = candidates.len(),
                "several databases aside; a person must choose"
            );
        }
        Ok(None)
    }
}

/// The placement from what the three identifiers hold. During an RDS rename the database
/// answers under its old identifier with status `renaming`, then under the new one.
pub fn classify(
    original: &Option<DbState>,
    aside: &Option<DbState>,
    restored: &Option<DbState>,
    original_is_copy: bool,
) -> Placement {
    match (original, aside) {
        (Some(o), Some(_)) if original_is_copy => {
            if o.status == "renaming" {
                Placement::MovingOut
            } else {
                Placement::Swapped
            }
        }
        // Our copy at the original name but no previous database aside: not our doing.
        (Some(_), None) if original_is_copy => Placement::Conflict,
        (Some(o), None) if o.status == "renaming" => Placement::MovingAside,
        (Some(_), None) => Placement::Original,
        // Someone else's database at the original name while ours is aside.
        (Some(_), Some(_)) => Placement::Conflict,
        (None, Some(_)) if renaming(aside) || renaming(restored) => Placement::MovingIn,
        (None, Some(_)) => Placement::Between,
        (None, None) if renaming(restored) => Placement::MovingIn,
        (None, None) => Placement::Missing,
    }
}

/// What a rename that reported an error turned out to be, judged from a new observation.
pub enum FailedRename {
    /// RDS carried it out anyway (the answer was lost or turned into an error).
    TookEffect(Observation),
    /// Nothing changed and the error is a throttle or 5xx: the caller retries the whole call.
    Retry(RollbackError),
    /// Nothing changed and RDS refused for good.
    Refused { message: String, now: Observation },
}

/// A rename from `before`'s state reported `error`: observe again before deciding what
/// happened (a lost answer does not mean the rename did not happen).
pub async fn judge_failed_rename(
    rds: &Client,
    target: &Target<'_>,
    before: &Observation,
    (from, to): (&str, &str),
    error: RollbackError,
) -> Result<FailedRename, RollbackError> {
    let now = Observation::take(rds, target).await?;
    if now.placement != before.placement {
        tracing::warn!(
            from, to, error = %error, placement = ?now.placement,
            "rename reported an error but took effect"
        );
        return Ok(FailedRename::TookEffect(now));
    }
    if error.is_retryable() {
        return Ok(FailedRename::Retry(error));
    }
    Ok(FailedRename::Refused {
        message: format!("renaming {from} to {to} failed: {error}"),
        now,
    })
}

/// `aws rds` command that renames `from` to `to`.
pub fn rename_command(kind: DatabaseKind, from: &str, to: &str) -> String {
    let (call, flag) = if kind.is_cluster() {
        ("modify-db-cluster", "db-cluster")
    } else {
        ("modify-db-instance", "db-instance")
    };
    format!(
        "aws rds {call} --{flag}-identifier {from} --new-{flag}-identifier {to} \
         --apply-immediately"
    )
}

/// `aws rds` command that shows what an identifier holds.
pub fn describe_command(kind: DatabaseKind, id: &str) -> String {
    if kind.is_cluster() {
        format!("aws rds describe-db-clusters --db-cluster-identifier {id}")
    } else {
        format!("aws rds describe-db-instances --db-instance-identifier {id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(status: &str) -> Option<DbState> {
        Some(DbState {
            status: status.into(),
            ..Default::default()
        })
    }

    #[test]
    fn placements_follow_the_rename_sequence() {
        let none = None;
        // Forward: original → aside, restored → original.
        assert_eq!(
            classify(&at("available"), &none, &at("available"), false),
            Placement::Original
        );
        assert_eq!(
            classify(&at("renaming"), &none, &at("available"), false),
            Placement::MovingAside
        );
        assert_eq!(
            classify(&none, &at("available"), &at("available"), false),
            Placement::Between
        );
        assert_eq!(
            classify(&none, &at("available"), &at("renaming"), false),
            Placement::MovingIn
        );
        assert_eq!(
            classify(&at("available"), &at("available"), &none, true),
            Placement::Swapped
        );
        // Backward: restored copy out, previous database back.
        assert_eq!(
            classify(&at("renaming"), &at("available"), &none, true),
            Placement::MovingOut
        );
        assert_eq!(
            classify(&none, &at("renaming"), &at("available"), false),
            Placement::MovingIn
        );
        // Nobody's doing.
        assert_eq!(classify(&none, &none, &none, false), Placement::Missing);
        assert_eq!(
            classify(&none, &none, &at("available"), false),
            Placement::Missing
        );
        assert_eq!(
            classify(&at("available"), &at("available"), &none, false),
            Placement::Conflict
        );
        assert_eq!(
            classify(&at("available"), &none, &none, true),
            Placement::Conflict
        );
    }

    #[test]
    fn commands_name_the_right_api() {
        assert_eq!(
            rename_command(DatabaseKind::RdsInstance, "a", "b"),
            "aws rds modify-db-instance --db-instance-identifier a --new-db-instance-identifier b \
             --apply-immediately"
        );
        assert!(rename_command(DatabaseKind::DocdbCluster, "a", "b").contains("modify-db-cluster"));
    }
}
