//! Which actions one deployment of this binary serves. `RestoreFunction` restores, renames
//! and tags; `DrillCleanupFunction` deletes a drill's tagged scratch copies. Each deployment
//! refuses the other's actions before any AWS call, and each role allows only its own.

use rollback_core::RollbackError;
use rollback_core::contract::restore;

/// The variable that tells a deployment of this binary which actions it serves
/// (comma-separated action names; `infra/template.yaml` sets it on each).
pub const ACTIONS_ENV: &str = "ROLLBACK_RESTORE_ACTIONS";

/// The actions only the `DrillCleanupFunction` deployment serves: its role may delete a
/// drill's tagged scratch copies and may neither rename nor tag. The `RestoreFunction`
/// deployment serves the others: its role renames and tags, and may not delete. IAM cannot
/// see a rename's new name, so one role with both could rename a live database into a drill
/// copy's name and delete it.
pub const DRILL_CLEANUP_ACTIONS: &[&str] = &["cleanup-drill"];

/// The actions one deployment serves; [`handle_served`] refuses the others before doing
/// anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    actions: Vec<&'static str>,
}

impl Served {
    /// Every action: a caller that is not one of the deployments (tests, benches).
    pub fn all() -> Served {
        Served {
            actions: restore::ACTIONS.to_vec(),
        }
    }

    /// The `RestoreFunction` deployment: everything but deleting drill copies.
    pub fn restore() -> Served {
        Served {
            actions: restore::ACTIONS
                .iter()
                .copied()
                .filter(|a| !DRILL_CLEANUP_ACTIONS.contains(a))
                .collect(),
        }
    }

    /// The `DrillCleanupFunction` deployment: `cleanup-drill` only.
    pub fn drill_cleanup() -> Served {
        Served {
            actions: DRILL_CLEANUP_ACTIONS.to_vec(),
        }
    }

    /// [`ACTIONS_ENV`]'s value (`None`: unset).
    pub fn from_env(value: Option<&str>) -> Result<Served, String> {
        let value = value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                format!(
                    "{ACTIONS_ENV} is not set: infra/template.yaml gives each deployment of \
                     rollback-restore the actions it serves"
                )
            })?;
        let mut actions = Vec::new();
        for name in value.split(',').map(str::trim) {
            let action = restore::ACTIONS
                .iter()
                .find(|a| **a == name)
                .ok_or_else(|| {
                    format!(
                        "{ACTIONS_ENV}: {name:?} is not a restore action ({})",
                        restore::ACTIONS.join(", ")
                    )
                })?;
            if !actions.contains(action) {
                actions.push(*action);
            }
        }
        Ok(Served { actions })
    }

    pub fn serves(&self, action: &str) -> bool {
        self.actions.contains(&action)
    }

    /// Refuses an action this deployment does not serve, naming the one that does.
    pub(crate) fn check(&self, action: &str) -> Result<(), RollbackError> {
        if self.serves(action) || !restore::ACTIONS.contains(&action) {
            // An unknown action is the envelope's to report.
            return Ok(());
        }
        let (deployment, why) = if DRILL_CLEANUP_ACTIONS.contains(&action) {
            (
                "DrillCleanupFunction",
                "its role may delete drill copies; this one may not",
            )
        } else {
            (
                "RestoreFunction",
                "its role may restore, rename and tag databases; this one may not",
            )
        };
        Err(RollbackError::InvalidInput(format!(
            "action: {action} runs in the {deployment} deployment ({why})"
        )))
    }
}
