//! Inputs and outputs of every function action: the contract between the functions and the
//! state machine. Each function's module lists its actions in `ACTIONS`, so a test can check
//! that the definition only calls actions that exist.

pub mod approval;
pub mod deploy_undo;
pub mod infra;
pub mod notify;
pub mod plan;
pub mod restore;
pub mod retag;
pub mod smoke;
pub mod snapshot;
