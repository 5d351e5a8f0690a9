//! The spanned value tree both front ends produce and the AST is read from.
//!
//! YAML text ([`crate::front::yaml`]) and `fpn!{}` tokens ([`crate::front::dsl`]) both become a
//! [`Value`]; [`crate::ast`] reads a spec from it. One reader means the two surfaces share every
//! keyword and every diagnostic by construction.
//!
//! Invariants the front ends guarantee: maps have no duplicate keys, nesting depth is at most
//! [`MAX_DEPTH`], the tree has at most [`MAX_NODES`] values, integers fit `i64`, floats are finite.

use crate::span::Span;

/// Deepest nesting of sequences and maps a front end accepts.
pub const MAX_DEPTH: usize = 64;
/// Most values one spec may hold (after alias expansion).
pub const MAX_NODES: usize = 200_000;

/// A value with the span of the source text or tokens it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// What the value is.
    pub kind: ValueKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of values.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// `null`, `~`, or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// Any other scalar: names, references (`neck.p3`), ranges (`32..2048`), quoted strings.
    Str(String),
    /// A sequence `[a, b]` or a YAML block list.
    Seq(Vec<Value>),
    /// A map in source order, keys unique.
    Map(Vec<(Key, Value)>),
}

/// A map key.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where the key is.
    pub span: Span,
}

impl Value {
    /// A short word for the kind, for "expected X, found Y" messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ValueKind::Null => "nothing",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::Int(_) => "an integer",
            ValueKind::Float(_) => "a number",
            ValueKind::Str(_) => "a name",
            ValueKind::Seq(_) => "a list",
            ValueKind::Map(_) => "a map",
        }
    }
}
