//! The fpn compiler.
pub mod ast;
pub mod diag;
pub mod dim;
pub mod span;
pub mod value;
