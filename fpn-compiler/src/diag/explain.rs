//! From a failed size constraint to an error a user can act on: which node, which sizes, the
//! exact input sizes that work and padding or `match` changes verified by re-running the
//! analysis.

use petgraph::graph::NodeIndex;

use crate::diag::{Code, Diagnostic};
use crate::dim::Dim;
use crate::infer::{self, Analysis, CheckKind, Constraint, Failure};
use crate::ir::{self, Graph, Op};
use crate::ops;
use crate::sizes::{self, Accepted};
use crate::span;

/// For a spec with one fixed-size input: the accepted heights and widths, found by re-running
/// inference with the input's sizes made symbolic.
pub(crate) struct FixedSizeHint {
    input: String,
    size: [i64; 2],
    accepted: [Option<Accepted>; 2],
    /// The graph with the input's sizes made the symbols `H` and `W`.
    sym: Graph,
    /// Re-analyses of changed graphs left for suggestions: each costs a pass over the whole
    /// graph, so a spec with thousands of failures gets them for its first failures only
    /// (issue 11 item 7: otherwise quadratic).
    budget: std::cell::Cell<usize>,
}

/// Re-analyses of changed graphs one compilation may run for suggestions (see
/// [`FixedSizeHint`]).
const MAX_REANALYSES: usize = 3 * MAX_PADDING_TRIES;

/// Accepted heights and widths of a symbolized graph.
fn accepted_of(sym: &Graph) -> [Option<Accepted>; 2] {
    let (_, cons, diags) = infer::infer(sym);
    if diags.iter().any(Diagnostic::is_error) {
        return [None, None];
    }
    let mut acc = sizes::analyse(sym, &cons).into_iter().map(Result::ok);
    [acc.next().flatten(), acc.next().flatten()]
}

impl FixedSizeHint {
    pub(crate) fn new(g: &Graph) -> Option<FixedSizeHint> {
        let [inp] = g.inputs.as_slice() else { return None };
        let Op::Input(crate::ops::input::Input { name, size, .. }) = &g.node(*inp).op else {
            return None;
        };
        let fixed = [size[0].as_const()?, size[1].as_const()?];
        let mut sym = g.clone();
        sym.symbols = ["H", "W"]
            .iter()
            .map(|n| ir::Symbol {
                name: n.to_string(),
                span: g.node(*inp).span,
                min: 1,
                max: None,
            })
            .collect();
        if let Op::Input(crate::ops::input::Input { size, .. }) = &mut sym.graph[*inp].op {
            *size = [Dim::Sym(0), Dim::Sym(1)];
        }
        let accepted = accepted_of(&sym);
        Some(FixedSizeHint {
            input: name.clone(),
            size: fixed,
            accepted,
            sym,
            budget: std::cell::Cell::new(MAX_REANALYSES),
        })
    }

    /// Takes one re-analysis from the budget; false when it is spent, or when the spec's own
    /// analysis was too large (a changed graph would be too: each try would hit the work cap).
    fn spend(&self) -> bool {
        if self.accepted.iter().all(Option::is_none) {
            return false;
        }
        let left = self.budget.get();
        self.budget.set(left.saturating_sub(1));
        left > 0
    }

    fn help(&self, axis: usize) -> Option<String> {
        let acc = self.accepted[axis].as_ref()?;
        let v = self.size[axis];
        let word = if axis == 0 { "height" } else { "width" };
        if acc.is_empty() {
            return Some(format!("no input {word} works for this spec"));
        }
        let (lo, hi) = acc.nearest(v);
        let fix = match (lo, hi) {
            (Some(l), Some(h)) => format!("pad the input to {h} or crop it to {l}"),
            (None, Some(h)) => format!("pad the input to {h}"),
            (Some(l), None) => format!("crop the input to {l}"),
            (None, None) => String::new(),
        };
        Some(format!(
            "input `{}` {word} {v} is not accepted ({}); {fix}",
            self.input,
            acc.describe()
        ))
    }

    /// What the accepted set of `axis` becomes if upsample `up` takes `target`'s size instead
    /// of scaling: the analysis re-run on the changed graph. `None` if it cannot be tried.
    fn with_match(&self, up: NodeIndex, target: NodeIndex, axis: usize) -> Option<Accepted> {
        // node indices are a topological order; only an earlier node can be matched
        if target.index() >= up.index() || !self.spend() {
            return None;
        }
        let mut g = self.sym.clone();
        let node = &mut g.graph[up];
        let Op::Upsample(u) = &mut node.op else { return None };
        u.scale = None;
        let x = *node.inputs.first()?;
        node.inputs = vec![x, target];
        let [h, w] = accepted_of(&g);
        if axis == 0 {
            h
        } else {
            w
        }
    }
}

/// Most re-analyses one "change a padding" suggestion may run.
const MAX_PADDING_TRIES: usize = 12;

/// One padding edit: which nodes (all lowered from one place in the spec), and what to write.
struct PaddingEdit {
    nodes: Vec<NodeIndex>,
    span: span::Span,
    name: String,
    what: String,
    apply: fn(&mut Op, i64),
    arg: i64,
}

fn set_conv_padding(op: &mut Op, p: i64) {
    if let Op::Conv(c) = op {
        c.padding = [p; 4];
    }
}

fn set_pool_padding(op: &mut Op, p: i64) {
    if let Op::MaxPool(ops::pool::MaxPool(x)) | Op::AvgPool(ops::pool::AvgPool(x)) = op {
        x.padding = [p; 2];
    }
}

fn set_ceil_mode(op: &mut Op, on: i64) {
    if let Op::MaxPool(ops::pool::MaxPool(x)) | Op::AvgPool(ops::pool::AvgPool(x)) = op {
        x.ceil_mode = on != 0;
    }
}

/// The padding edits to try for a failure at `at`: the convs and pools it depends on, nearest
/// first: a pool's `ceil_mode` toggled, then `padding ± 1` (pools within PyTorch's
/// `padding ≤ kernel/2`). An edit changes every node lowered from the same place in the spec (a
/// block body used twice changes twice), and places that lower to differently padded nodes (a
/// pyramid generator) are skipped, because no one spec edit gives them a new padding.
fn padding_edits(g: &Graph, at: NodeIndex) -> Vec<PaddingEdit> {
    let mut seen = vec![false; g.graph.node_count()];
    let mut queue = std::collections::VecDeque::from([at]);
    let mut out = Vec::new();
    let mut spans_done: Vec<span::Span> = Vec::new();
    while let Some(i) = queue.pop_front() {
        if std::mem::replace(&mut seen[i.index()], true) {
            continue;
        }
        let node = g.node(i);
        queue.extend(node.inputs.iter().copied());
        if !matches!(node.op, Op::Conv(_) | Op::MaxPool(_) | Op::AvgPool(_)) || spans_done.contains(&node.span) {
            continue;
        }
        spans_done.push(node.span);
        let same: Vec<NodeIndex> = g
            .order()
            .filter(|&j| {
                g.node(j).span == node.span && matches!(g.node(j).op, Op::Conv(_) | Op::MaxPool(_) | Op::AvgPool(_))
            })
            .collect();
        if same.iter().any(|&j| !same_padding(&g.node(j).op, &node.op)) {
            continue;
        }
        let edit = |what: String, apply: fn(&mut Op, i64), arg: i64| PaddingEdit {
            nodes: same.clone(),
            span: node.span,
            name: node.name.clone(),
            what,
            apply,
            arg,
        };
        match &node.op {
            Op::Conv(c) if !c.tf_same && c.padding.iter().all(|&p| p == c.padding[0]) => {
                let p = c.padding[0];
                for q in [p - 1, p + 1] {
                    if q >= 0 {
                        out.push(edit(format!("`padding: {q}`"), set_conv_padding, q));
                    }
                }
            }
            Op::MaxPool(ops::pool::MaxPool(x)) | Op::AvgPool(ops::pool::AvgPool(x))
                if x.padding[0] == x.padding[1] && x.explicit_pad.is_none() && !x.tf_same =>
            {
                let p = x.padding[0];
                let half = x.kernel[0].min(x.kernel[1]) / 2;
                let on = !x.ceil_mode;
                out.push(edit(format!("`ceil_mode: {on}`"), set_ceil_mode, i64::from(on)));
                for q in [p - 1, p + 1] {
                    if (0..=half).contains(&q) {
                        out.push(edit(format!("`padding: {q}`"), set_pool_padding, q));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether two conv/pool ops have the same padding settings (the only part an edit changes).
fn same_padding(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (Op::Conv(x), Op::Conv(y)) => x.padding == y.padding,
        (Op::MaxPool(ops::pool::MaxPool(x)), Op::MaxPool(ops::pool::MaxPool(y)))
        | (Op::AvgPool(ops::pool::AvgPool(x)), Op::AvgPool(ops::pool::AvgPool(y))) => {
            x.padding == y.padding && x.ceil_mode == y.ceil_mode
        }
        _ => false,
    }
}

/// "Set `padding: 2` on `down.1`": padding edits near the failure, each offered only when
/// re-running the size analysis on the changed graph shows both given sizes then work.
/// Returns `(span, label, help)` of at most two, on different nodes.
fn padding_suggestions(c: &Constraint, hint: &FixedSizeHint) -> Vec<(span::Span, String, String)> {
    let mut out: Vec<(span::Span, String, String)> = Vec::new();
    if hint.budget.get() == 0 {
        // finding the edits walks the graph too
        return out;
    }
    for e in padding_edits(&hint.sym, c.node).into_iter().take(MAX_PADDING_TRIES) {
        if out.iter().any(|(sp, _, _)| *sp == e.span) {
            continue;
        }
        if !hint.spend() {
            break;
        }
        let mut g = hint.sym.clone();
        for &n in &e.nodes {
            (e.apply)(&mut g.graph[n].op, e.arg);
        }
        let acc = accepted_of(&g);
        let works = acc
            .iter()
            .zip(hint.size)
            .all(|(a, v)| a.as_ref().is_some_and(|a| a.contains(v)));
        if !works {
            continue;
        }
        let Some(axis_set) = &acc[c.axis.min(1)] else { continue };
        let (h, w) = (hint.size[0], hint.size[1]);
        let also = if e.nodes.len() > 1 {
            format!(" (it is used {} times; each changes)", e.nodes.len())
        } else {
            String::new()
        };
        out.push((
            e.span,
            format!("set {} here", e.what),
            format!(
                "set {} on `{}`{also}: then {h}×{w} works, and the spec accepts {}",
                e.what,
                e.name,
                axis_set.describe()
            ),
        ));
        if out.len() == 2 {
            break;
        }
    }
    out
}

/// For a merge whose other side is a scale upsample: "make it `match` the skip", offered only
/// when re-running the size analysis on the changed graph shows the current size then works.
fn match_suggestion(g: &Graph, c: &Constraint, hint: Option<&FixedSizeHint>) -> Option<String> {
    let node = g.node(c.node);
    let (a, b) = (node.inputs[c.slots.0], node.inputs[c.slots.1]);
    let (up, target) = [(b, a), (a, b)]
        .into_iter()
        .find(|(u, _)| matches!(&g.node(*u).op, Op::Upsample(x) if x.scale.is_some()))?;
    let up_name = &g.node(up).name;
    let target_name = &g.node(target).name;
    // A skip's merge is named `<skip>.out` and reads the skip's input first: `match: skip`.
    let spelled = if node.name.ends_with(".out") && target == node.inputs[0] {
        "skip".to_string()
    } else if !target_name.contains('.') {
        target_name.clone()
    } else {
        return None;
    };
    let what = format!("make `{up_name}` take `{target_name}`'s size with `upsample: {{match: {spelled}}}`");
    match hint {
        Some(h) => {
            let acc = h.with_match(up, target, c.axis)?;
            let v = h.size[c.axis];
            acc.contains(v)
                .then(|| format!("{what}: then {v} works, and the spec accepts {}", acc.describe()))
        }
        None => Some(what),
    }
}

/// The declared size of input `i` along `axis`.
fn sym_size(g: &Graph, i: NodeIndex, axis: usize) -> Dim {
    match &g.node(i).op {
        Op::Input(crate::ops::input::Input { size, .. }) => size[axis.min(1)].clone(),
        _ => Dim::Const(0),
    }
}

fn axis_word(axis: usize) -> &'static str {
    if axis == 0 {
        "height"
    } else {
        "width"
    }
}

/// A size's value at `env`; without values (a fixed-size failure in a spec with symbols) the
/// expression itself, and `>2^63` when it overflows (sizes only grow, so an overflow is too
/// large, never too small).
fn show(d: &Dim, env: &[i64], names: &[String]) -> String {
    match d.eval(env) {
        Some(v) => v.to_string(),
        None if env.is_empty() => d.display(names).to_string(),
        None => ">2^63".to_string(),
    }
}

fn fmt_inputs(g: &Graph, a: &Analysis, env: &[i64]) -> String {
    let parts: Vec<String> = g
        .inputs
        .iter()
        .map(|i| {
            let s = &a.shapes[i.index()];
            let names = g.symbol_names();
            let ev = |d: &Dim| show(d, env, &names);
            format!("`{}` of {}×{}×{}", g.node(*i).name, s.c, ev(&s.h), ev(&s.w))
        })
        .collect();
    format!("with input {}", parts.join(", "))
}

pub(crate) fn explain(g: &Graph, a: &Analysis, f: &Failure, env: &[i64], hint: Option<&FixedSizeHint>) -> Diagnostic {
    let c = &f.constraint;
    let node = g.node(c.node);
    let names = g.symbol_names();
    let ev = |d: &Dim| show(d, env, &names);
    let shape_of = |i: petgraph::graph::NodeIndex| {
        let s = &a.shapes[i.index()];
        format!("{}×{}×{}", s.c, ev(&s.h), ev(&s.w))
    };
    let axis = axis_word(c.axis);
    let in_shape = node.inputs.first().map(|i| shape_of(*i)).unwrap_or_default();
    let d = match c.kind {
        CheckKind::Positive if matches!(node.op, Op::Input(crate::ops::input::Input { .. })) => Diagnostic::error(
            Code::E0320,
            node.span,
            format!(
                "input `{}` would have {axis} `{}` = {} (it must be at least 1)",
                node.name,
                c.lhs.display(&g.symbol_names()),
                ev(&c.lhs)
            ),
        )
        .with_label(format!("{axis} {}", ev(&c.lhs)))
        .with_note(fmt_inputs(g, a, env)),
        CheckKind::ExactDiv => {
            let names = g.symbol_names();
            let div = match &c.lhs {
                Dim::Lin { mul, .. } => *mul,
                _ => 1,
            };
            Diagnostic::error(
                Code::E0325,
                node.span,
                format!(
                    "input `{}` has {axis} `{}`, which is not a whole number: `{}` = {} is not a multiple of {div}",
                    node.name,
                    sym_size(g, c.node, c.axis).display(&names),
                    c.rhs.display(&names),
                    ev(&c.rhs)
                ),
            )
            .with_label(format!("`{}` must be a multiple of {div}", c.rhs.display(&names)))
            .with_note(format!(
                "`/` in an input size divides exactly, so `{}` is only a size where {div} divides `{}`",
                sym_size(g, c.node, c.axis).display(&names),
                c.rhs.display(&names)
            ))
        }
        CheckKind::Positive => Diagnostic::error(
            Code::E0320,
            node.span,
            format!(
                "`{}` ({}) gets a {} input and would produce an output {} of {} (it must be at least 1)",
                node.name,
                node.op.kind(),
                in_shape,
                axis,
                ev(&c.lhs)
            ),
        )
        .with_label(format!("output {axis} {}", ev(&c.lhs)))
        .with_note(format!(
            "{}: `{}` gets {in_shape} and its window does not fit",
            fmt_inputs(g, a, env),
            node.name
        )),
        CheckKind::ReflectPad | CheckKind::CircularPad => {
            let pad = ev(&c.rhs);
            let (mode, code, need) = if c.kind == CheckKind::ReflectPad {
                ("reflect", Code::E0321, "smaller than the padded size")
            } else {
                ("circular", Code::E0322, "at most the padded size")
            };
            let p = if c.kind == CheckKind::ReflectPad {
                c.rhs.eval(env).map_or(pad.clone(), |v| (v - 1).to_string())
            } else {
                pad
            };
            Diagnostic::error(
                code,
                node.span,
                format!(
                    "{mode} padding {p} of `{}` needs a larger input: its {axis} is {}",
                    node.name,
                    ev(&c.lhs)
                ),
            )
            .with_label(format!("{mode} padding {p} on a {in_shape} input"))
            .with_note(format!(
                "{}; PyTorch requires {mode} padding {need} and fails at run time",
                fmt_inputs(g, a, env)
            ))
        }
        CheckKind::Fits => {
            let what = if node.op.kind() == "pad" {
                format!(
                    "`{}` (pad) pads a {} input to a smaller {axis}: {} < {}",
                    node.name,
                    in_shape,
                    ev(&c.lhs),
                    ev(&c.rhs)
                )
            } else {
                format!(
                    "`{}` ({}) cuts a window of {axis} {} out of a {} input, whose {axis} is {}",
                    node.name,
                    node.op.kind(),
                    ev(&c.rhs),
                    in_shape,
                    ev(&c.lhs)
                )
            };
            Diagnostic::error(Code::E0327, node.span, what)
                .with_label(format!("needs {axis} {} from {}", ev(&c.rhs), ev(&c.lhs)))
                .with_note(format!(
                    "{}; PyTorch's slicing would silently give a smaller tensor",
                    fmt_inputs(g, a, env)
                ))
        }
        CheckKind::Divisible => Diagnostic::error(
            Code::E0328,
            node.span,
            format!(
                "`{}` ({}) gets a {} input whose {axis} {} is not a multiple of its factor",
                node.name,
                node.op.kind(),
                in_shape,
                ev(&c.rhs)
            ),
        )
        .with_label(format!("{axis} {} not divisible", ev(&c.rhs)))
        .with_note(format!(
            "{}; PyTorch: \"should be divisible by downscale_factor\"",
            fmt_inputs(g, a, env)
        )),
        CheckKind::Equal => {
            let (s0, s1) = (node.inputs[c.slots.0], node.inputs[c.slots.1]);
            let (n0, n1) = (g.node(s0), g.node(s1));
            Diagnostic::error(
                Code::E0323,
                node.span,
                format!(
                    "`{}` ({}) merges tensors of different {}: {} vs {}",
                    node.name,
                    node.op.kind(),
                    axis,
                    ev(&c.lhs),
                    ev(&c.rhs)
                ),
            )
            .with_label(format!("{axis} {} vs {}", ev(&c.lhs), ev(&c.rhs)))
            .with_secondary(n0.span, format!("`{}` is {}", n0.name, shape_of(s0)))
            .with_secondary(n1.span, format!("`{}` is {}", n1.name, shape_of(s1)))
            .with_note(format!(
                "{}: `{}` gives {} {} here but `{}` gives {}",
                fmt_inputs(g, a, env),
                n0.name,
                axis,
                ev(&c.lhs),
                n1.name,
                ev(&c.rhs)
            ))
        }
    };
    let mut help = hint.and_then(|h| h.help(c.axis));
    if c.kind == CheckKind::ExactDiv {
        help = Some(format!(
            "give `{}` a size where `{}` is a whole number, or widen the bounds of its symbol",
            node.name,
            sym_size(g, c.node, c.axis).display(&g.symbol_names())
        ));
    }
    if c.kind == CheckKind::Equal {
        if let Some(m) = match_suggestion(g, c, hint) {
            help = Some(match help {
                Some(h) => format!("{h}; or {m}"),
                None => m,
            });
        }
    }
    let mut d = d;
    if let Some(h) = hint {
        for (span, label, text) in padding_suggestions(c, h) {
            d = d.with_secondary(span, label);
            help = Some(match help {
                Some(x) => format!("{x}; or {text}"),
                None => text,
            });
        }
    }
    d.with_help(
        help.unwrap_or_else(|| "change the input size or the strides and paddings on the path to this node".into()),
    )
}

/// E0324: no value of `sym` works (its accepted set `acc` is empty).
pub(crate) fn no_size_accepted(sym: &crate::ir::Symbol, acc: &Accepted) -> Diagnostic {
    let mut d = Diagnostic::error(
        Code::E0324,
        sym.span,
        format!("no value of `{}` works for this spec", sym.name),
    )
    .with_label("no accepted size")
    .with_help("see the errors below for the first node that breaks at the smallest size");
    if let Some(max) = sym.max {
        d = d.with_note(format!("{} is bounded to {}..{}", sym.name, sym.min, max));
    }
    if !acc.dependents.is_empty() {
        let rel: Vec<String> = acc
            .dependents
            .iter()
            .map(|x| format!("{} = {}", x.symbol, x.expr))
            .collect();
        d = d.with_note(format!(
            "merges tie other sizes to {}: {} (`/` exact)",
            sym.name,
            rel.join(", ")
        ));
    }
    d
}
