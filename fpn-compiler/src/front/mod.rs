//! Front ends: the two surfaces a spec is written in, both turned into the same spanned
//! [`Value`](crate::value::Value) tree.
//!
//! - [`yaml`] reads a YAML file (`specs/*.yaml`); spans are byte offsets into its text.
//! - [`dsl`] reads the tokens of an `fpn!{…}` invocation; spans are indices into the token table
//!   it returns next to the tree.
//!
//! Both enforce the invariants documented in [`crate::value`] (unique keys, depth at most
//! [`MAX_DEPTH`](crate::value::MAX_DEPTH), at most [`MAX_NODES`](crate::value::MAX_NODES) values,
//! integers that fit `i64`, finite floats) and report violations with the same codes:
//!
//! | code  | meaning |
//! |-------|---------|
//! | E0001 | YAML syntax error |
//! | E0002 | the spec is empty |
//! | E0003 | number too large for `i64`, or not finite |
//! | E0004 | duplicate key in a map |
//! | E0005 | nesting deeper than `MAX_DEPTH` |
//! | E0006 | spec too large (more than `MAX_NODES` values, aliases expanded) |
//! | E0007 | map key that is not a scalar |
//! | E0008 | unsupported YAML feature (several documents, tags, recursive aliases) |
//! | E0009 | the spec file is not UTF-8 text |
//! | E0010 | `fpn!{}` syntax error |

pub mod dsl;
pub mod yaml;
