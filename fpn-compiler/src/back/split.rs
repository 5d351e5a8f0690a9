//! Splitting the generated `init`, `from_weights` and `forward` into functions of bounded size.
//!
//! rustc's memory and time grow faster than linearly in the size of one function body (borrow
//! checking and drop elaboration over thousands of live locals and `?` exits: a 1000-conv
//! `from_weights` took 18.8 GB; issue 11 item 1). Past [`PART`] fields or statements, the Rust
//! back end emits one private helper per run of at most [`PART`] of them; the public functions
//! only call the helpers and move the results, so compile cost is linear in the spec. Small
//! specs (the common case) keep one function each, as readable as before.

use std::ops::Range;

use proc_macro2::{TokenStream, TokenTree};

use crate::ops::Field;

/// At most this many fields per loader helper and this many statements per `forward` helper.
pub(crate) const PART: usize = 64;

/// A run of fields built by one loader helper, with the parameter tensors `t{k}` that only they
/// use (tensors are loaded, or drawn from the seeded generator, in index order, so the runs'
/// tensor ranges are consecutive and `init` draws the same numbers as one function would).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldPart {
    /// Indices into the field list.
    pub(crate) fields: Range<usize>,
    /// Indices of the parameter tensors (`t{k}` locals) the run loads.
    pub(crate) tensors: Range<usize>,
}

/// The tensor locals `t{k}` a token stream mentions (the back end names tensor locals `t{k}`
/// and nothing else so: fields are `p_…`, field locals `f{k}`).
fn tensor_refs(ts: &TokenStream, out: &mut Vec<usize>) {
    for tt in ts.clone() {
        match tt {
            TokenTree::Group(g) => tensor_refs(&g.stream(), out),
            TokenTree::Ident(i) => {
                let s = i.to_string();
                if let Some(d) = s.strip_prefix('t') {
                    if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) {
                        if let Ok(k) = d.parse() {
                            out.push(k);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The smallest and largest tensor index field `f` uses, if any.
fn tensor_span(f: &Field) -> Option<(usize, usize)> {
    let mut refs = Vec::new();
    for ts in [Some(&f.value), f.init_value.as_ref(), Some(&f.prep)]
        .into_iter()
        .flatten()
    {
        tensor_refs(ts, &mut refs);
    }
    Some((*refs.iter().min()?, *refs.iter().max()?))
}

/// Splits `fields` (using tensors `0..n_tensors`) into runs of at least `part` fields, cutting
/// only where no tensor is used on both sides. One run when there are at most `part` fields.
pub(crate) fn field_parts(fields: &[Field], n_tensors: usize, part: usize) -> Vec<FieldPart> {
    let spans: Vec<Option<(usize, usize)>> = fields.iter().map(tensor_span).collect();
    // suffix_min[i]: the smallest tensor index used by fields i.. (None: they use none)
    let mut suffix_min = vec![None; fields.len() + 1];
    for i in (0..fields.len()).rev() {
        suffix_min[i] = match (spans[i], suffix_min[i + 1]) {
            (Some((lo, _)), Some(m)) => Some(lo.min(m)),
            (Some((lo, _)), None) => Some(lo),
            (None, m) => m,
        };
    }
    let mut parts = Vec::new();
    let (mut start, mut t_start) = (0, 0);
    let mut prefix_max: Option<usize> = None;
    for (i, span) in spans.iter().enumerate() {
        if let Some((_, hi)) = *span {
            prefix_max = Some(prefix_max.map_or(hi, |m| m.max(hi)));
        }
        let next = i + 1;
        if next - start < part || next == fields.len() {
            continue;
        }
        let t_cut = suffix_min[next].unwrap_or(n_tensors);
        if prefix_max.is_some_and(|m| m >= t_cut) || t_cut < t_start {
            continue; // a tensor shared across the cut: cut later
        }
        parts.push(FieldPart {
            fields: start..next,
            tensors: t_start..t_cut,
        });
        (start, t_start) = (next, t_cut);
    }
    parts.push(FieldPart {
        fields: start..fields.len(),
        tensors: t_start..n_tensors.max(t_start),
    });
    parts
}

/// Splits statement positions `0..n` into runs of `part` positions that do work (`counts(pos)`
/// is false for positions that emit nothing, such as input bindings). One run when at most
/// `part` positions do work.
pub(crate) fn stmt_parts(n: usize, counts: impl Fn(usize) -> bool, part: usize) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let (mut start, mut k) = (0, 0);
    for pos in 0..n {
        if counts(pos) {
            k += 1;
        }
        if k == part && pos + 1 < n {
            parts.push(start..pos + 1);
            (start, k) = (pos + 1, 0);
        }
    }
    parts.push(start..n);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::{format_ident, quote};

    fn field(tensors: &[usize]) -> Field {
        let ts: Vec<_> = tensors.iter().map(|k| format_ident!("t{}", k)).collect();
        Field {
            ident: format_ident!("p_x"),
            ty: quote!(T),
            doc: String::new(),
            value: quote!(make(#(#ts),*)?),
            init_value: None,
            prep: TokenStream::new(),
        }
    }

    #[test]
    fn cuts_only_between_tensor_ranges() {
        // fields 0..6 use tensors 2k, 2k+1; field 3 also uses tensor 9 (shared with field 4)
        let mut fs: Vec<Field> = (0..6).map(|k| field(&[2 * k, 2 * k + 1])).collect();
        fs[3] = field(&[6, 7, 9]);
        let parts = field_parts(&fs, 12, 2);
        assert_eq!(
            parts,
            vec![
                FieldPart {
                    fields: 0..2,
                    tensors: 0..4
                },
                FieldPart {
                    fields: 2..5,
                    tensors: 4..10
                },
                FieldPart {
                    fields: 5..6,
                    tensors: 10..12
                },
            ]
        );
        // one run when small
        assert_eq!(
            field_parts(&fs, 12, 6),
            vec![FieldPart {
                fields: 0..6,
                tensors: 0..12
            }]
        );
        // fields without tensors
        let none: Vec<Field> = (0..3).map(|_| field(&[])).collect();
        assert_eq!(
            field_parts(&none, 0, 1),
            vec![
                FieldPart {
                    fields: 0..1,
                    tensors: 0..0
                },
                FieldPart {
                    fields: 1..2,
                    tensors: 0..0
                },
                FieldPart {
                    fields: 2..3,
                    tensors: 0..0
                },
            ]
        );
    }

    #[test]
    fn statement_runs_skip_idle_positions() {
        assert_eq!(stmt_parts(5, |p| p != 0, 2), vec![0..3, 3..5]);
        assert_eq!(stmt_parts(4, |_| true, 2), vec![0..2, 2..4]);
        assert_eq!(stmt_parts(3, |_| true, 8), vec![0..3]);
        assert_eq!(stmt_parts(0, |_| true, 8), vec![0..0]);
    }
}
