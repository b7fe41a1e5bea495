//! The calculator MCP service as a library, so that tests and other binaries
//! can embed its [`Calculator`] handler.

pub mod tools;

pub use tools::{Calculation, Calculator};
