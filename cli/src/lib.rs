//! `rollbackctl`: operate rollbacks against AWS or any Step Functions-compatible endpoint, and
//! rehearse them offline (`drill`). The logic lives here so tests call it directly.
//!
//! Input: a subcommand and its flags (`rollbackctl --help`); against AWS, the usual SDK
//! credentials and region. `drill` needs nothing deployed: it starts moto, the local Step
//! Functions engine, Kubernetes API and stores, and runs the functions in-process. Output: text
//! on stdout, and a non-zero exit status when the command fails. Run it with `make drill` or
//! `cargo run -p rollbackctl -- drill`; tests: `cargo test -p rollbackctl` (moto via `make venv`).

pub mod drill;
pub mod history;
pub mod ops;
pub mod plan_push;
pub mod pre_deploy;
pub mod report;
pub mod resume;
