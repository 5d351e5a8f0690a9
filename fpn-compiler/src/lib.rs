//! The fpn compiler.
pub mod ast;
pub mod infer;
pub mod diag;
pub mod dim;
pub mod ir;
pub mod lower;
pub mod span;
pub mod value;
