//! Fuzzing the parsers that meet outside input: the plan, the start request and the approval
//! link. `targets` turns bytes into calls and checks `invariants`; `generate` makes inputs for
//! the stable driver (`src/bin/stable.rs`) where libFuzzer (nightly) is not available.

pub mod generate;
pub mod invariants;
pub mod targets;
