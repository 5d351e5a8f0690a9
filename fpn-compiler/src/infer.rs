//! Shape inference and size constraints: the driver over the ops' own rules ([`crate::ops`]),
//! shared-weight checks, parameter and FLOP totals, and [`check`] for given sizes.
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
    /// How `init(seed)` fills it (declared by its op).
    pub init: crate::ops::InitKind,
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
    /// Every size rule of the graph, in node order: the only size checks. The interpreter
    /// evaluates them and the Rust back end emits them, both with [`Constraint::describe`].
    pub constraints: Vec<Constraint>,
}

/// One piece of a [`Constraint::describe`] message.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// The value of the left side.
    Lhs,
    /// The value of the right side.
    Rhs,
}

/// What a size constraint protects: the runtime's condition kinds (one list for both).
pub use fpn_runtime::rules::CondKind as CheckKind;

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

    /// What a failure of this constraint means, with holes for the two sides' values: the one
    /// message of the interpreter and the generated `check_sizes`.
    pub fn describe(&self, g: &Graph, a: &Analysis) -> Vec<Part> {
        let names = g.symbol_names();
        let node = g.node(self.node);
        let axis = if self.axis == 0 { "height" } else { "width" };
        let t = |s: String| Part::Text(s);
        let input = |k: usize| node.inputs.get(k).map(|&j| g.node(j).name.as_str()).unwrap_or("?");
        match self.kind {
            CheckKind::Positive if matches!(node.op, crate::ops::Op::Input(_)) => vec![
                t(format!("input `{}` would have {axis} ", node.name)),
                Part::Lhs,
                t(format!(" (= {}), below 1", self.lhs.display(&names))),
            ],
            CheckKind::Positive => vec![
                t(format!("node `{}` ({}) would have {axis} ", node.name, node.op.kind())),
                Part::Lhs,
                t(format!(" (= {}), below 1", self.lhs.display(&names))),
            ],
            CheckKind::ReflectPad | CheckKind::CircularPad => {
                let mode = if self.kind == CheckKind::ReflectPad {
                    "reflect"
                } else {
                    "circular"
                };
                vec![
                    t(format!("node `{}` pads its input `{}` of {axis} ", node.name, input(0))),
                    Part::Lhs,
                    t(format!(" in {mode} mode, which needs {axis} ≥ ")),
                    Part::Rhs,
                ]
            }
            CheckKind::Equal => vec![
                t(format!(
                    "node `{}` ({}) merges `{}` of {axis} ",
                    node.name,
                    node.op.kind(),
                    input(self.slots.0)
                )),
                Part::Lhs,
                t(format!(" and `{}` of {axis} ", input(self.slots.1))),
                Part::Rhs,
                t(", which differ".into()),
            ],
            CheckKind::Fits if node.op.kind() == "pad" => vec![
                t(format!(
                    "node `{}` (pad) pads its input `{}` of {axis} ",
                    node.name,
                    input(0)
                )),
                Part::Rhs,
                t(format!(" to the {axis} of `{}`, ", input(1))),
                Part::Lhs,
                t(", which is smaller".into()),
            ],
            CheckKind::Fits => vec![
                t(format!("node `{}` ({}) needs {axis} ", node.name, node.op.kind())),
                Part::Rhs,
                t(format!(" but its input `{}` has {axis} ", input(0))),
                Part::Lhs,
            ],
            CheckKind::Divisible => vec![
                t(format!(
                    "node `{}` ({}) needs an input {axis} divisible by its factor, but `{}` has {axis} ",
                    node.name,
                    node.op.kind(),
                    input(0)
                )),
                Part::Rhs,
            ],
            CheckKind::ExactDiv => vec![
                t(format!(
                    "input `{}` has {axis} `{}`, but `/` divides exactly and `{}` = ",
                    node.name,
                    a.shapes.get(self.node.index()).map_or(String::new(), |s| {
                        if self.axis == 0 {
                            s.h.display(&names).to_string()
                        } else {
                            s.w.display(&names).to_string()
                        }
                    }),
                    self.rhs.display(&names)
                )),
                Part::Rhs,
                t(" is not a multiple of the divisor".into()),
            ],
        }
    }

    /// Renders [`Constraint::describe`] with the sides' values.
    pub fn message(&self, g: &Graph, a: &Analysis, lhs: i64, rhs: i64) -> String {
        self.describe(g, a)
            .into_iter()
            .map(|p| match p {
                Part::Text(s) => s,
                Part::Lhs => lhs.to_string(),
                Part::Rhs => rhs.to_string(),
            })
            .collect()
    }

    /// Whether it holds for symbol values `env`; `None` on overflow.
    pub fn holds(&self, env: &[i64]) -> Option<bool> {
        let (a, b) = (self.lhs.eval(env)?, self.rhs.eval(env)?);
        Some(match self.kind {
            CheckKind::Equal | CheckKind::ExactDiv => a == b,
            _ => a >= b,
        })
    }
}

use crate::diag::{Code, Diagnostic};
use crate::ir::Graph;
use crate::ops::{InferCx, InitKind};

/// Infers every node's shape, parameters, FLOPs and the size constraints, each op by its own
/// rule (`crate::ops::OpDef::infer`).
///
/// Size-independent problems (channel mismatches, groups, shared weights of different shapes,
/// overflow) come back as diagnostics; size-dependent ones as [`Constraint`]s, which
/// [`check`] evaluates for given sizes and [`crate::sizes`] solves for all sizes.
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
        let mut cx = InferCx {
            g,
            node,
            idx: i,
            ins: &ins,
            names: &names,
            cons: &mut cons,
            diags: &mut diags,
        };
        let (shape, decls, flops) = match node.op.infer(&mut cx) {
            Ok(x) => (x.shape, x.params, x.flops),
            // reported; shapes downstream go on from a stand-in
            Err(_) => (fallback, Vec::new(), None),
        };
        let params: Vec<(String, Vec<i64>, InitKind, bool)> = match &node.param {
            Some(prefix) => decls
                .into_iter()
                .map(|d| (format!("{prefix}.{}", d.suffix), d.shape, d.init, d.learnable))
                .collect(),
            None => Vec::new(),
        };
        let mut count = 0i64;
        for (pname, pshape, init, learnable) in params {
            match param_index.get(&pname) {
                Some(&k) => {
                    let prev = &a.params[k];
                    let module = g
                        .modules
                        .iter()
                        .filter(|(m, _)| pname.starts_with(&format!("{m}.")))
                        .collect::<Vec<_>>();
                    let differs = prev.shape != pshape || g.node(prev.node).op != node.op;
                    if differs && !module.is_empty() {
                        let first = g.node(prev.node);
                        let what = if prev.shape != pshape {
                            format!(
                                "is {pshape:?} for `{}` but {:?} for `{}`",
                                node.name, prev.shape, first.name
                            )
                        } else {
                            format!(
                                "is read by `{}` ({}) and `{}` ({}), which compute different ops",
                                node.name,
                                node.op.kind(),
                                first.name,
                                first.op.kind()
                            )
                        };
                        let mut d = Diagnostic::error(
                            Code::E0311,
                            node.span,
                            format!("weight `{pname}` of a shared `module:` path {what}"),
                        )
                        .with_label(format!("`{}` reads a {} input", node.name, fmt_shape(&ins[0], &names)))
                        .with_secondary(first.span, format!("`{}` loads `{pname}` first", first.name));
                        for (m, sp) in &module {
                            d = d.with_secondary(*sp, format!("`{m}` is given here"));
                        }
                        diags.push(d.with_help(
                            "nodes sharing a `module:` path share its tensors, so they must be the same op on the same input channels; give each node its own `module:`",
                        ));
                    } else if differs && prev.shape == pshape {
                        diags.push(
                            Diagnostic::error(
                                Code::E0311,
                                node.span,
                                format!(
                                    "shared weight `{pname}` is read by `{}` ({}) and `{}` ({}), which compute different ops",
                                    node.name,
                                    node.op.kind(),
                                    g.node(prev.node).name,
                                    g.node(prev.node).op.kind()
                                ),
                            )
                            .with_label("a different op on the same weight")
                            .with_secondary(g.node(prev.node).span, "first used here")
                            .with_help("give the nodes different names (their `state_dict` prefixes)"),
                        );
                    } else if prev.shape != pshape {
                        diags.push(
                            Diagnostic::error(
                                Code::E0311,
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
                        Some(n) if learnable => count = count.saturating_add(n),
                        Some(_) => {}
                        None => diags.push(
                            Diagnostic::error(
                                Code::E0310,
                                node.span,
                                format!(
                                    "arithmetic overflow computing the size of weight `{pname}` of `{}`",
                                    node.name
                                ),
                            )
                            .with_label("numbers too large")
                            .with_help(
                                "sizes, channels and kernels must stay below 2^63; check for a typo in a large number",
                            ),
                        ),
                    }
                    param_index.insert(pname.clone(), a.params.len());
                    a.params.push(ParamInfo {
                        name: pname,
                        shape: pshape,
                        node: i,
                        init,
                    });
                }
            }
        }
        a.param_counts.push(count);
        a.flops.push(flops);
        a.shapes.push(shape);
    }
    a.constraints = cons.clone();
    (a, cons, diags)
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
