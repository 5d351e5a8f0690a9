//! Value-tree helpers shared by the front-end tests.
#![allow(dead_code)]

use fpn_compiler::span::Span;
use fpn_compiler::value::{Value, ValueKind};

/// A compact, exact rendering of a value's kinds (no spans): ints bare, floats with `f`,
/// strings quoted, maps `{k: v}`, lists `[a, b]`.
pub fn show(v: &Value) -> String {
    match &v.kind {
        ValueKind::Null => "null".into(),
        ValueKind::Bool(b) => b.to_string(),
        ValueKind::Int(i) => i.to_string(),
        ValueKind::Float(f) => format!("{f:?}f"),
        ValueKind::Str(s) => format!("{s:?}"),
        ValueKind::Seq(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
        ValueKind::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", k.name, show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The value at a path of map keys.
pub fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut v = v;
    for k in path {
        match &v.kind {
            ValueKind::Map(entries) => {
                v = &entries
                    .iter()
                    .find(|(key, _)| key.name == *k)
                    .unwrap_or_else(|| panic!("no key {k}"))
                    .1;
            }
            _ => panic!("not a map at {k}"),
        }
    }
    v
}

/// The span of the key at the end of a path.
pub fn key_span(v: &Value, path: &[&str]) -> Span {
    let (last, parent) = path.split_last().expect("path");
    match &get(v, parent).kind {
        ValueKind::Map(entries) => entries.iter().find(|(k, _)| k.name == *last).expect("key").0.span,
        _ => panic!("not a map"),
    }
}
