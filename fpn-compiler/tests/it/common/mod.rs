//! Helpers shared by integration tests.
pub mod compile;
pub mod values;
