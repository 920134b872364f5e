//! Network-facing parts of the engine.
pub mod http;
