//! The post-mortem skeleton from an execution history: the shared renderer in
//! `rollback_core::report`, which the notify function's `report` action also runs in AWS, so
//! `rollbackctl report` and the report in the stack's bucket are the same text for the same
//! events.

pub use rollback_core::report::*;
