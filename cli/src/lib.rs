//! `rollbackctl`: operate rollbacks against AWS or any Step Functions-compatible endpoint, and
//! rehearse them offline (`drill`). The logic lives here so tests call it directly.

pub mod drill;
pub mod history;
pub mod ops;
pub mod plan_push;
pub mod pre_deploy;
pub mod report;
pub mod resume;
