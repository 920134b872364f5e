//! Contract of the `approval` function: an HTTP handler (API Gateway HTTP API) behind the
//! signed links in the approval email. It has no Step Functions actions; what it produces is
//! the output of the approval task (`SendTaskSuccess`), or the error `Rollback.Rejected`
//! (`SendTaskFailure`). Link payloads are in [`crate::approval_link`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::approval_link::Decision;
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
    pub decision: Decision,
    pub scope: Scope,
    /// The approver's email address as they typed it on the confirmation page.
    pub approver: String,
    pub decided_at: DateTime<Utc>,
    pub fingerprint: String,
    /// The decision signed with the decision key: what destructive steps verify
    /// ([`crate::decision`]).
    #[serde(default)]
    pub signed: String,
}

/// The `Cause` of a `Rollback.Rejected` failure (JSON text), so the reject path can report who
/// rejected and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionCause {
    pub approver: String,
    pub decided_at: DateTime<Utc>,
    pub fingerprint: String,
    pub message: String,
}
