//! Shared model of the rollback system.
//!
//! Everything that more than one function (or the local engine, or `rollbackctl`) needs
//! lives here once: the rollback plan and its validation, the request that starts an
//! execution, the envelope every function receives, the error kinds that surface as
//! Step Functions error names, resource naming, and AWS client configuration.
//!
//! The `lambda` feature adds `From<RollbackError> for lambda_runtime::Diagnostic`; only the
//! Lambda crates turn it on, so the engine, the drill and the local services build core
//! without the Lambda runtime.
//!
//! A library; `cargo test -p rollback-core --features lambda` runs its tests alone (no moto or other local
//! service needed).

pub mod approval_link;
pub mod aws;
pub mod contract;
pub mod decision;
pub mod eks_token;
pub mod error;
pub mod fingerprint;
pub mod history_budget;
pub mod html;
pub mod ids;
pub mod oidc;
pub mod plan;
pub mod plan_store;
pub mod report;
pub mod request;
pub mod resolved;
pub mod step;
pub mod telemetry;
pub mod terraform_plan;
pub mod validation;
pub mod wait;

pub use error::{ErrorKind, RollbackError};
pub use ids::ExecutionId;
pub use plan::Plan;
pub use request::{Mode, RollbackRequest, Scope, Trigger};
pub use step::StepInput;
pub use validation::{FieldError, ValidationErrors};

/// Result alias used across the function crates.
pub type Result<T, E = RollbackError> = std::result::Result<T, E>;
