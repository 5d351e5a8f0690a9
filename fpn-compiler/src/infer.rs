//! Shape inference and shape validation (contract; being implemented).
use crate::dim::Dim;
use petgraph::graph::NodeIndex;

/// A tensor shape without the batch: channels, height, width.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Channels.
    pub c: i64,
    /// Height.
    pub h: Dim,
    /// Width.
    pub w: Dim,
}

/// One parameter tensor of the model, by PyTorch `state_dict` name.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// Full name, e.g. `fpn.inner_blocks.0.0.weight`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// The first node that uses it (shared heads use one tensor from several nodes).
    pub node: NodeIndex,
}

/// Everything inference learns about a graph.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// Output shape of each node, by node index.
    pub shapes: Vec<Shape>,
    /// Parameters, unique by name, in first-use order.
    pub params: Vec<ParamInfo>,
    /// Parameter count of each node (shared tensors counted at first use).
    pub param_counts: Vec<i64>,
    /// FLOPs of each node for batch 1 (multiply-add = 2), `None` when sizes are symbolic.
    pub flops: Vec<Option<i64>>,
}

/// What a size constraint protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// An op's output height or width must be at least 1.
    Positive,
    /// Reflect padding must be smaller than the padded size.
    ReflectPad,
    /// Circular padding must not exceed the padded size.
    CircularPad,
    /// Inputs of an elementwise merge must have equal sizes.
    MergeEq,
    /// A division in an input size must be exact: `lhs = d·floor(a/d)` equals `rhs = a`.
    ExactDiv,
}

/// A condition on the input sizes, `lhs >= rhs` or `lhs == rhs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    /// Which rule.
    pub kind: CheckKind,
    /// The node it belongs to.
    pub node: NodeIndex,
    /// Axis: 0 height, 1 width.
    pub axis: usize,
    /// Left side.
    pub lhs: Dim,
    /// Right side.
    pub rhs: Dim,
    /// For merges, which input slot `lhs` (slot 0) and `rhs` come from.
    pub slots: (usize, usize),
}

impl Constraint {
    /// `size ≥ 1` for axis `axis` of node `node`: the non-empty-output rule.
    pub fn positive(node: NodeIndex, axis: usize, size: Dim) -> Self {
        Self {
            kind: CheckKind::Positive,
            node,
            axis,
            lhs: size,
            rhs: Dim::Const(1),
            slots: (0, 0),
        }
    }

    /// Whether it holds for symbol values `env`; `None` on overflow.
    pub fn holds(&self, env: &[i64]) -> Option<bool> {
        let (a, b) = (self.lhs.eval(env)?, self.rhs.eval(env)?);
        Some(match self.kind {
            CheckKind::MergeEq | CheckKind::ExactDiv => a == b,
            _ => a >= b,
        })
    }
}

use crate::diag::Diagnostic;
use crate::ir::{Graph, Op};

/// Infers every node's shape, parameters, FLOPs and the size constraints.
///
/// Size-independent problems (channel mismatches, groups, shared weights of different shapes,
/// overflow) come back as diagnostics; size-dependent ones as [`Constraint`]s, which
/// [`check`] evaluates for given sizes and [`crate::sizes`] solves for all sizes.
#[allow(clippy::needless_range_loop)] // `axis` indexes sizes, paddings and strides together
pub fn infer(g: &Graph) -> (Analysis, Vec<Constraint>, Vec<Diagnostic>) {
    let mut a = Analysis::default();
    let mut cons = Vec::new();
    let mut diags = Vec::new();
    let names = g.symbol_names();
    let mut param_index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for i in g.order() {
        let node = g.node(i);
        let ins: Vec<Shape> = node.inputs.iter().map(|j| a.shapes[j.index()].clone()).collect();
        let fallback = ins.first().cloned().unwrap_or(Shape {
            c: 1,
            h: Dim::Const(1),
            w: Dim::Const(1),
        });
        let overflow = |what: &str| {
            Diagnostic::error(
                "E0310",
                node.span,
                format!("arithmetic overflow computing {what} of `{}`", node.name),
            )
            .with_label("numbers too large")
            .with_help("sizes, channels and kernels must stay below 2^63; check for a typo in a large number")
        };
        let mut params: Vec<(String, Vec<i64>)> = Vec::new();
        let mut flops: Option<i64> = Some(0);
        let shape = match &node.op {
            Op::Input { channels, size, .. } => {
                for (axis, d) in size.iter().enumerate() {
                    if matches!(d, Dim::Const(_) | Dim::Sym(_)) {
                        continue;
                    }
                    for (num, div) in d.divisions() {
                        match num.floor_div(div).and_then(|q| q.lin(div, 0)) {
                            Some(lhs) => cons.push(Constraint {
                                kind: CheckKind::ExactDiv,
                                node: i,
                                axis,
                                lhs,
                                rhs: num.clone(),
                                slots: (0, 0),
                            }),
                            None => diags.push(overflow("an input size")),
                        }
                    }
                    cons.push(Constraint::positive(i, axis, d.clone()));
                }
                Shape {
                    c: *channels,
                    h: size[0].clone(),
                    w: size[1].clone(),
                }
            }
            Op::Conv(c) => {
                let x = &ins[0];
                if x.c % c.groups != 0 {
                    diags.push(
                        Diagnostic::error(
                            "E0301",
                            node.span,
                            format!(
                                "groups {} do not divide the {} input channels of `{}`",
                                c.groups, x.c, node.name
                            ),
                        )
                        .with_label(format!("input has {} channels", x.c))
                        .with_note(format!("input shape {}", fmt_shape(x, &names)))
                        .with_help(format!("groups must divide both {} (in) and {} (out)", x.c, c.out)),
                    );
                }
                let mut out = [Dim::Const(1), Dim::Const(1)];
                for axis in 0..2 {
                    let d = if axis == 0 { &x.h } else { &x.w };
                    let (p0, p1) = (c.padding[axis * 2], c.padding[axis * 2 + 1]);
                    let reach = c.dilation[axis].checked_mul(c.kernel[axis] - 1);
                    let r = reach.and_then(|reach| {
                        d.add(p0.checked_add(p1)?.checked_sub(reach)?.checked_sub(1)?)?
                            .floor_div(c.stride[axis])?
                            .add(1)
                    });
                    match r {
                        Some(o) => {
                            cons.push(Constraint::positive(i, axis, o.clone()));
                            out[axis] = o;
                        }
                        None => diags.push(overflow("the output size")),
                    }
                    let pmax = p0.max(p1);
                    match c.mode {
                        fpn_runtime::PaddingMode::Reflect if pmax > 0 => cons.push(Constraint {
                            kind: CheckKind::ReflectPad,
                            node: i,
                            axis,
                            lhs: d.clone(),
                            rhs: Dim::Const(pmax.saturating_add(1)),
                            slots: (0, 0),
                        }),
                        fpn_runtime::PaddingMode::Circular if pmax > 0 => cons.push(Constraint {
                            kind: CheckKind::CircularPad,
                            node: i,
                            axis,
                            lhs: d.clone(),
                            rhs: Dim::Const(pmax),
                            slots: (0, 0),
                        }),
                        _ => {}
                    }
                }
                if let Some(prefix) = &node.param {
                    params.push((
                        format!("{prefix}.weight"),
                        vec![c.out, x.c / c.groups.max(1), c.kernel[0], c.kernel[1]],
                    ));
                    if c.bias {
                        params.push((format!("{prefix}.bias"), vec![c.out]));
                    }
                }
                let [h, w] = out;
                flops = match (h.as_const(), w.as_const()) {
                    (Some(h), Some(w)) => (|| {
                        let macs = (x.c / c.groups.max(1))
                            .checked_mul(c.kernel[0])?
                            .checked_mul(c.kernel[1])?;
                        macs.checked_mul(2)?
                            .checked_mul(c.out)?
                            .checked_mul(h.max(0))?
                            .checked_mul(w.max(0))
                    })(),
                    _ => None,
                };
                Shape { c: c.out, h, w }
            }
            Op::BatchNorm { .. } => {
                if let Some(prefix) = &node.param {
                    for s in ["weight", "bias", "running_mean", "running_var"] {
                        params.push((format!("{prefix}.{s}"), vec![ins[0].c]));
                    }
                }
                flops = elementwise(&ins[0], 2);
                ins[0].clone()
            }
            Op::Act(_) => {
                flops = elementwise(&ins[0], 1);
                ins[0].clone()
            }
            Op::MaxPool(p) | Op::AvgPool(p) => {
                let x = &ins[0];
                let mut out = [Dim::Const(1), Dim::Const(1)];
                for axis in 0..2 {
                    let d = if axis == 0 { &x.h } else { &x.w };
                    match pool_size(
                        d,
                        p.kernel[axis],
                        p.stride[axis],
                        p.padding[axis],
                        p.dilation[axis],
                        p.ceil_mode,
                    ) {
                        Some(o) => {
                            cons.push(Constraint::positive(i, axis, o.clone()));
                            out[axis] = o;
                        }
                        None => diags.push(overflow("the output size")),
                    }
                }
                let [h, w] = out;
                flops = elementwise(
                    &Shape {
                        c: x.c,
                        h: h.clone(),
                        w: w.clone(),
                    },
                    p.kernel[0].saturating_mul(p.kernel[1]),
                );
                Shape { c: x.c, h, w }
            }
            Op::Upsample(u) => {
                let x = &ins[0];
                let s = match (&u.scale, ins.get(1)) {
                    (Some(sc), _) => {
                        let h = x.h.lin(sc[0].0, 0).and_then(|d| d.floor_div(sc[0].1));
                        let w = x.w.lin(sc[1].0, 0).and_then(|d| d.floor_div(sc[1].1));
                        match (h, w) {
                            (Some(h), Some(w)) => {
                                for (axis, d) in [(0, &h), (1, &w)] {
                                    cons.push(Constraint::positive(i, axis, d.clone()));
                                }
                                Shape { c: x.c, h, w }
                            }
                            _ => {
                                diags.push(overflow("the upsampled size"));
                                x.clone()
                            }
                        }
                    }
                    (None, Some(t)) => Shape {
                        c: x.c,
                        h: t.h.clone(),
                        w: t.w.clone(),
                    },
                    (None, None) => x.clone(),
                };
                flops = elementwise(&s, 1);
                s
            }
            Op::Add | Op::Mean | Op::Fuse { .. } | Op::Concat => {
                let first = &ins[0];
                let is_concat = matches!(node.op, Op::Concat);
                let mut c_total: Option<i64> = Some(0);
                for (slot, s) in ins.iter().enumerate() {
                    c_total = c_total.and_then(|t| t.checked_add(s.c));
                    if slot == 0 {
                        continue;
                    }
                    if !is_concat && s.c != first.c {
                        let (a_name, b_name) = (&g.node(node.inputs[0]).name, &g.node(node.inputs[slot]).name);
                        diags.push(
                            Diagnostic::error("E0304", node.span, format!("`{}` ({}) adds tensors with different channel counts: {} vs {}", node.name, node.op.kind(), first.c, s.c))
                                .with_label(format!("{} vs {} channels", first.c, s.c))
                                .with_secondary(g.node(node.inputs[0]).span, format!("`{a_name}` is {}", fmt_shape(first, &names)))
                                .with_secondary(g.node(node.inputs[slot]).span, format!("`{b_name}` is {}", fmt_shape(s, &names)))
                                .with_note(format!("`{a_name}`: {}, `{b_name}`: {}", fmt_shape(first, &names), fmt_shape(s, &names)))
                                .with_help(format!("project both to the same width first, e.g. a 1×1 `conv: {{out: {}, kernel: 1}}` on `{b_name}`", first.c)),
                        );
                    }
                    for axis in 0..2 {
                        let (l, r) = if axis == 0 { (&first.h, &s.h) } else { (&first.w, &s.w) };
                        if l != r {
                            cons.push(Constraint {
                                kind: CheckKind::MergeEq,
                                node: i,
                                axis,
                                lhs: l.clone(),
                                rhs: r.clone(),
                                slots: (0, slot),
                            });
                        }
                    }
                }
                if let (Op::Fuse { .. }, Some(prefix)) = (&node.op, &node.param) {
                    params.push((format!("{prefix}.weight"), vec![ins.len() as i64]));
                }
                let c = if is_concat {
                    c_total.unwrap_or_else(|| {
                        diags.push(overflow("the channel count"));
                        first.c
                    })
                } else {
                    first.c
                };
                let s = Shape {
                    c,
                    h: first.h.clone(),
                    w: first.w.clone(),
                };
                flops = elementwise(&s, ins.len() as i64 - 1);
                s
            }
        };
        let _ = &fallback;
        let mut count = 0i64;
        for (pname, pshape) in params {
            match param_index.get(&pname) {
                Some(&k) => {
                    let prev = &a.params[k];
                    if prev.shape != pshape {
                        diags.push(
                            Diagnostic::error(
                                "E0311",
                                node.span,
                                format!(
                                    "shared weight `{pname}` is {:?} for `{}` but {:?} for `{}`, where it is first used",
                                    pshape,
                                    node.name,
                                    prev.shape,
                                    g.node(prev.node).name
                                ),
                            )
                            .with_label(format!("`{}` reads a {} input", node.name, fmt_shape(&ins[0], &names)))
                            .with_secondary(
                                g.node(node.inputs[0]).span,
                                format!("`{}` gives {} channels", g.node(node.inputs[0]).name, ins[0].c),
                            )
                            .with_secondary(
                                g.node(g.node(prev.node).inputs[0]).span,
                                format!(
                                    "`{}` gives {} channels",
                                    g.node(g.node(prev.node).inputs[0]).name,
                                    a.shapes[g.node(prev.node).inputs[0].index()].c
                                ),
                            )
                            .with_help("a shared head needs the same input channels on every level; project the levels to one width first"),
                        );
                    }
                }
                None => {
                    // Learnable parameters only, as PyTorch's `parameters()` counts them.
                    let numel = pshape.iter().try_fold(1i64, |acc, d| acc.checked_mul(*d));
                    match numel {
                        Some(n) if !pname.ends_with(".running_mean") && !pname.ends_with(".running_var") => {
                            count = count.saturating_add(n);
                        }
                        Some(_) => {}
                        None => diags.push(overflow(&format!("the size of weight `{pname}`"))),
                    }
                    param_index.insert(pname.clone(), a.params.len());
                    a.params.push(ParamInfo {
                        name: pname,
                        shape: pshape,
                        node: i,
                    });
                }
            }
        }
        a.param_counts.push(count);
        a.flops.push(flops);
        a.shapes.push(shape);
    }
    (a, cons, diags)
}

fn elementwise(s: &Shape, per: i64) -> Option<i64> {
    s.c.checked_mul(s.h.as_const()?)?
        .checked_mul(s.w.as_const()?)?
        .checked_mul(per)
}

/// PyTorch's `pooling_output_shape`: floor or ceil of `(x + 2p - d(k-1) - 1)/s + 1`, and in
/// ceil mode the last window must start inside the input or its left padding, which is
/// `min(…, ceil((x + p)/s))` (docs/sizes.md).
pub fn pool_size(x: &Dim, k: i64, s: i64, p: i64, d: i64, ceil: bool) -> Option<Dim> {
    let reach = d.checked_mul(k - 1)?;
    let num = x.add(p.checked_mul(2)?.checked_sub(reach)?.checked_sub(1)?)?;
    if ceil {
        let o = num.ceil_div(s)?.add(1)?;
        let bound = x.add(p)?.ceil_div(s)?;
        Some(o.min(&bound))
    } else {
        num.floor_div(s)?.add(1)
    }
}

/// `C×H×W` with symbols.
pub fn fmt_shape(s: &Shape, names: &[String]) -> String {
    format!("{}×{}×{}", s.c, s.h.display(names), s.w.display(names))
}

/// Evaluates the constraints at symbol values `env` (empty for fixed sizes) in node order.
///
/// A node whose constraint fails is reported once; nodes downstream of it are not checked, so
/// one misalignment gives one error while independent branches still report theirs.
pub fn check(g: &Graph, a: &Analysis, cons: &[Constraint], env: &[i64]) -> Vec<Failure> {
    let mut poisoned = vec![false; g.graph.node_count()];
    let mut failures: Vec<Failure> = Vec::new();
    let mut ci = 0;
    for i in g.order() {
        let node = g.node(i);
        if node.inputs.iter().any(|j| poisoned[j.index()]) {
            poisoned[i.index()] = true;
        }
        while ci < cons.len() && cons[ci].node == i {
            let c = &cons[ci];
            ci += 1;
            if poisoned[i.index()] {
                continue;
            }
            if c.holds(env) != Some(true) {
                poisoned[i.index()] = true;
                failures.push(Failure { constraint: c.clone() });
            }
        }
    }
    let _ = a;
    failures
}

/// A constraint that failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The failed constraint.
    pub constraint: Constraint,
}
