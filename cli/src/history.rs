//! Execution histories in the `get-execution-history` JSON shape: the shared model in
//! `rollback_core::report::history` (the notify function's `report` action reads them too).

pub use rollback_core::report::history::*;
