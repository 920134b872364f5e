//! Contract of the `approval` function: an HTTP handler (API Gateway HTTP API) behind the
//! signed links in the approval email. It has no Step Functions actions; what it produces is
//! the output of the approval task (`SendTaskSuccess`), or the error `Rollback.Rejected`
//! (`SendTaskFailure`). Link payloads are in [`crate::approval_link`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::approval_link::Decision;
pub use crate::decision::Identity;
use crate::request::Scope;

/// Not invoked by the state machine with an action.
pub const ACTIONS: &[&str] = &[];

/// The error name the approval task fails with on reject.
pub const REJECTED_ERROR: &str = "Rollback.Rejected";

/// The approval task's output on approve: `{decision, scope, approver, decided_at, fingerprint}`.
/// Destructive steps compare `fingerprint` with the live plan and refuse on drift; `scope`
/// says whether databases may be restored (`app+database`) or not (`app`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    /// Always [`Decision::Approve`] here: a reject fails the task with [`REJECTED_ERROR`] instead.
    pub decision: Decision,
    /// What was approved: `app`, or `app+database` (databases may be restored too).
    pub scope: Scope,
    /// Who completed the decision: their email address as typed on the confirmation page, or
    /// the identity provider's claim when the page requires a login (`identity`).
    pub approver: String,
    /// Everyone who approved, in order, when the plan asked more than one person (the last is
    /// `approver`); empty when one approval was enough.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// How the approvers' identity was established.
    #[serde(default = "self_asserted")]
    pub identity: Identity,
    /// When the decision was completed.
    pub decided_at: DateTime<Utc>,
    /// Fingerprint of what was resolved and shown to the approver: destructive steps refuse when
    /// the live plan no longer matches it.
    pub fingerprint: String,
    /// The decision signed with the decision key: what destructive steps verify
    /// ([`crate::decision`]).
    #[serde(default)]
    pub signed: String,
}

fn self_asserted() -> Identity {
    Identity::SelfAsserted
}

impl ApprovalDecision {
    /// "a@x", or "a@x and b@x" when several people approved, with how they were identified.
    pub fn approved_by(&self) -> String {
        approved_by(&self.approver, &self.approvers, self.identity)
    }
}

/// How reports and notices name who approved: the people, then how they were identified.
pub fn approved_by(approver: &str, approvers: &[String], identity: Identity) -> String {
    let people = if approvers.len() > 1 {
        let (last, first) = approvers.split_last().expect("more than one");
        format!("{} and {last}", first.join(", "))
    } else {
        approver.to_owned()
    };
    match identity {
        Identity::SelfAsserted => format!("{people} (self-asserted)"),
        Identity::Authenticated => format!("{people} (signed in)"),
        Identity::PlanPolicy => format!("{people} (pre-approved, no person asked)"),
    }
}

/// The `Cause` of a `Rollback.Rejected` failure (JSON text), so the reject path can report who
/// rejected and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionCause {
    /// Who rejected (as for [`ApprovalDecision::approver`]).
    pub approver: String,
    /// When the reject was decided.
    pub decided_at: DateTime<Utc>,
    /// Fingerprint of what the approver was shown.
    pub fingerprint: String,
    /// Human-readable explanation of the reject, for the notice and the report.
    pub message: String,
}
