//! `fpn`: feature-pyramid topologies declared in YAML or with [`fpn!`], checked at compile time,
//! and run by generated Rust code on [`runtime`].
//!
//! This facade re-exports the procedural macros and the runtime crate that generated code calls,
//! so a user depends on one crate.

pub use fpn_macros::{fpn, include_spec};
/// The tensor ops and weight loading that generated code calls.
pub use fpn_runtime as runtime;
