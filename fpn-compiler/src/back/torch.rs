//! The PyTorch back end: one self-contained Python module per spec (`fpn gen --target torch`),
//! an `nn.Module` whose `state_dict()` has the spec's names and shapes, so a model trained in
//! PyTorch loads into the generated Rust (or `fpn run`) unchanged.
//!
//! Each op writes its own `__init__` module and `forward` line ([`crate::ops`]'s
//! `OpDef::torch`, dispatched by the registry); this module holds the driver and the helpers.
//!
//! Invariants:
//! - spec text never becomes code: parameter prefixes appear only inside string literals and
//!   only when they are dot-separated ASCII identifiers or numbers; the class and input names
//!   (Rust identifiers already) must not be Python keywords; variables are `_v{index}`; the spec's
//!   `doc:` becomes `#` comment lines without control characters;
//! - the module imports only `torch` (its `nn` and `nn.functional`);
//! - parameters live in nested modules at their `state_dict` prefix (`_put`), registered once per
//!   prefix, so shared weights (a shared head, a repeated `module:`: the same op with the same
//!   settings, E0311) are one module called from each node; a batch norm
//!   carries no `num_batches_tracked` (the spec's `state_dict` has none), so
//!   `load_state_dict(..., strict=True)` takes exactly the spec's tensors;
//! - `forward(self, <inputs>)` returns a dict of the spec's outputs, in order;
//! - output is deterministic.

use std::collections::HashMap;
use std::fmt::Write as _;

use petgraph::graph::NodeIndex;

use crate::infer::{Analysis, Shape};
use crate::ir::{Graph, Node, Op};
use crate::span::Span;

/// Why a graph could not be written as a PyTorch module.
#[derive(Debug, thiserror::Error)]
pub enum TorchError {
    /// A name that must become Python code or a module path does not map to one.
    #[error("{what} `{name}` cannot be used in the PyTorch module: {reason}")]
    BadName {
        /// What the name is.
        what: &'static str,
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A node PyTorch cannot express as written.
    #[error("node `{node}` ({op}) cannot be written as PyTorch: {reason}")]
    Node {
        /// The node's name.
        node: String,
        /// Its op kind.
        op: &'static str,
        /// Where it is written.
        span: Span,
        /// What is missing.
        reason: String,
    },
}

impl TorchError {
    /// The spec location at fault, if there is one.
    pub fn span(&self) -> Option<Span> {
        match self {
            TorchError::Node { span, .. } => Some(*span),
            TorchError::BadName { .. } => None,
        }
    }
}

/// Result of the PyTorch back end.
pub type TResult<T> = Result<T, TorchError>;

/// Python's keywords (and the three constants), which no generated name may be.
const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "torch", "nn", "F",
];

/// `name` as a Python identifier (ASCII, not a keyword or one of the module's imports).
fn py_ident(name: &str, what: &'static str) -> TResult<String> {
    let bad = |reason: &str| TorchError::BadName {
        what,
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return Err(bad("it must start with an ASCII letter or `_`")),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad("only ASCII letters, digits and `_` are allowed"));
    }
    if PY_KEYWORDS.contains(&name) || name.starts_with("_v") {
        return Err(bad(
            "it is a Python keyword or a name the module uses (`_v…`); rename it",
        ));
    }
    Ok(name.to_string())
}

/// A `state_dict` prefix or output name as a Python string literal: dot-separated parts of
/// ASCII letters, digits and `_` only, so the literal needs no escaping.
pub(crate) fn py_str(s: &str, what: &'static str) -> TResult<String> {
    let ok = !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if ok {
        Ok(format!("'{s}'"))
    } else {
        Err(TorchError::BadName {
            what,
            name: s.to_string(),
            reason: "only dot-separated ASCII letters, digits and `_` are allowed".into(),
        })
    }
}

/// A Python float literal (`1e-05`, `2.0`, `float('-inf')`).
pub(crate) fn py_float(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:?}");
        if s.contains(['.', 'e', 'E']) {
            s
        } else {
            format!("{s}.0")
        }
    } else if v > 0.0 {
        "float('inf')".into()
    } else if v < 0.0 {
        "float('-inf')".into()
    } else {
        "float('nan')".into()
    }
}

/// A Python pair `(a, b)`.
pub(crate) fn py_pair(v: [i64; 2]) -> String {
    format!("({}, {})", v[0], v[1])
}

/// A Python bool.
pub(crate) fn py_bool(v: bool) -> &'static str {
    if v {
        "True"
    } else {
        "False"
    }
}

/// The `padding_mode` of `nn.Conv2d` for `m`.
pub(crate) fn conv_mode(m: fpn_runtime::PaddingMode) -> &'static str {
    use fpn_runtime::PaddingMode as M;
    match m {
        M::Zeros => "zeros",
        M::Reflect => "reflect",
        M::Replicate => "replicate",
        M::Circular => "circular",
    }
}

/// The `mode` of `F.pad` for `m`.
pub(crate) fn pad_mode(m: fpn_runtime::PaddingMode) -> &'static str {
    match m {
        fpn_runtime::PaddingMode::Zeros => "constant",
        other => conv_mode(other),
    }
}

/// What an op's `torch` gets: its node, input and output variables, and the builders.
pub(crate) struct TorchCx<'a> {
    /// Shapes of every node.
    pub shapes: &'a [Shape],
    /// The node.
    pub node: &'a Node,
    ins: Vec<String>,
    out: String,
    /// Prefix → the constructor registered for it.
    modules: &'a mut Vec<(String, String)>,
    lines: &'a mut Vec<String>,
    /// Module-level helpers some op needs (added after the prelude once each, in first-use
    /// order, so a module that needs none is unchanged).
    helpers: &'a mut Vec<&'static str>,
}

impl TorchCx<'_> {
    /// The variable of input `k`.
    pub fn x(&self, k: usize) -> TResult<String> {
        self.ins
            .get(k)
            .cloned()
            .ok_or_else(|| self.unsupported(format!("it lacks input {k} (a bug in fpn)")))
    }

    /// The variables of every input.
    pub fn xs(&self) -> Vec<String> {
        self.ins.clone()
    }

    /// The input channels.
    pub fn cin(&self) -> TResult<i64> {
        self.node
            .inputs
            .first()
            .and_then(|j| self.shapes.get(j.index()))
            .map(|s| s.c)
            .ok_or_else(|| self.unsupported("no shape for its input (a bug in fpn)".into()))
    }

    /// The error for something PyTorch cannot express.
    pub fn unsupported(&self, reason: String) -> TorchError {
        TorchError::Node {
            node: self.node.name.clone(),
            op: self.node.op.kind(),
            span: self.node.span,
            reason,
        }
    }

    /// Adds the module-level Python `src` (a function or class) once.
    pub fn helper(&mut self, src: &'static str) {
        if !self.helpers.contains(&src) {
            self.helpers.push(src);
        }
    }

    /// `x` padded by TensorFlow's `SAME` padding of this window (timm's `pad_same`), with
    /// `fill` (a Python float expression).
    pub fn pad_same(&mut self, x: &str, kernel: [i64; 2], stride: [i64; 2], dilation: [i64; 2], fill: &str) -> String {
        self.helper(PAD_SAME);
        format!(
            "_pad_same({x}, {}, {}, {}, {fill})",
            py_pair(kernel),
            py_pair(stride),
            py_pair(dilation)
        )
    }

    /// A fresh temporary variable of this node.
    pub fn tmp(&self, what: &str) -> String {
        format!("{}_{what}", self.out)
    }

    /// A `forward` line `var = expr`.
    pub fn set(&mut self, var: &str, expr: &str) {
        self.lines.push(format!("{var} = {expr}"));
    }

    /// The `forward` line computing this node: `out = expr`.
    pub fn assign(&mut self, expr: &str) {
        let out = self.out.clone();
        self.set(&out, expr);
    }

    /// `out = module(arg)` with the module of this node's parameter prefix, built by `ctor`
    /// (registered in `__init__` the first time). Nodes sharing a prefix are the same op with
    /// the same settings (the checker's E0311), so a second node with another constructor is
    /// refused rather than guessed at.
    pub fn call_module(&mut self, ctor: String, arg: &str) -> TResult<()> {
        let p = self
            .node
            .param
            .clone()
            .ok_or_else(|| self.unsupported("it has no parameter prefix (a bug in fpn)".into()))?;
        let lit = py_str(&p, "parameter prefix")?;
        match self.modules.iter().find(|(q, _)| *q == p) {
            Some((_, c)) if *c != ctor => {
                return Err(self.unsupported(format!(
                    "it shares the weights of `{p}` with a node of other settings (`{c}`)"
                )))
            }
            Some(_) => {}
            None => self.modules.push((p, ctor)),
        }
        self.assign(&format!("self.get_submodule({lit})({arg})"));
        Ok(())
    }
}

const PRELUDE: &str = r#"import torch
import torch.nn as nn
import torch.nn.functional as F


def _put(root, path, module):
    """Registers `module` at the dotted `path` under `root`, making plain containers on the way,
    so its parameters are named `path.weight` … in `root.state_dict()`."""
    *parents, last = path.split(".")
    for p in parents:
        if p not in root._modules:
            root.add_module(p, nn.Module())
        root = root._modules[p]
    root.add_module(last, module)


class _BatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d` without `num_batches_tracked`, which the spec's state_dict does not have
    (it only matters with `momentum=None`)."""

    def __init__(self, channels, eps):
        super().__init__(channels, eps=eps)
        self.register_buffer("num_batches_tracked", None)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        # version 2: BatchNorm's loader then does not add a `num_batches_tracked` entry itself
        super()._load_from_state_dict(state_dict, prefix, dict(local_metadata, version=2), *args)


class _Fuse(nn.Module):
    """BiFPN fast normalised fusion: sum_i relu(w_i) / (sum_j relu(w_j) + eps) * x_i."""

    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, xs):
        w = F.relu(self.weight)
        w = w / (w.sum() + self.eps)
        out = w[0] * xs[0]
        for i in range(1, len(xs)):
            out = out + w[i] * xs[i]
        return out
"#;

/// timm's `pad_same` (`timm/layers/padding.py`): TensorFlow's `SAME` padding of the input's
/// size, as fpn's `padding: tf_same`.
const PAD_SAME: &str = r#"def _pad_same(x, k, s, d, value):
    """TensorFlow 'SAME' padding for a window k / stride s / dilation d (timm's `pad_same`)."""
    pads = []
    for size, k_, s_, d_ in zip(x.shape[-2:], k, s, d):
        total = max((-(-size // s_) - 1) * s_ + (k_ - 1) * d_ + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    (t, b), (l, r) = pads
    return F.pad(x, (l, r, t, b), value=value)
"#;

/// The modules in first-use order, except that a module whose prefix is the parent of an earlier
/// one's (effdet's `combine`, a fusion, over its `combine.resample.2.conv`) comes just before that
/// one: `_put` of a parent replaces the plain container `_put` made on the way, children and all.
fn parents_first(modules: &[(String, String)]) -> Vec<&(String, String)> {
    let mut out: Vec<&(String, String)> = Vec::with_capacity(modules.len());
    let mut done = vec![false; modules.len()];
    for (i, (p, _)) in modules.iter().enumerate() {
        // the later modules that are ancestors of `p`, shortest prefix first
        let mut ancestors: Vec<usize> = (i + 1..modules.len())
            .filter(|&j| !done[j] && p.starts_with(&format!("{}.", modules[j].0)))
            .collect();
        ancestors.sort_by_key(|&j| modules[j].0.len());
        for j in ancestors.into_iter().chain([i]) {
            if !std::mem::replace(&mut done[j], true) {
                out.push(&modules[j]);
            }
        }
    }
    out
}

/// Generates the PyTorch module of `g` (see the module docs).
///
/// # Errors
/// [`TorchError::BadName`] for a name Python cannot take, [`TorchError::Node`] for a node
/// PyTorch cannot express.
pub fn generate(g: &Graph, a: &Analysis) -> TResult<String> {
    let class = py_ident(&g.name, "model name")?;
    let mut var: HashMap<NodeIndex, String> = HashMap::new();
    let mut args = Vec::new();
    for &i in &g.inputs {
        if let Op::Input(inp) = &g.node(i).op {
            let v = py_ident(&inp.name, "input")?;
            args.push(v.clone());
            var.insert(i, v);
        }
    }
    let mut modules: Vec<(String, String)> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut helpers: Vec<&'static str> = Vec::new();
    for i in g.order() {
        let node = g.node(i);
        let out = var.get(&i).cloned().unwrap_or_else(|| format!("_v{}", i.index()));
        var.insert(i, out.clone());
        let ins = node
            .inputs
            .iter()
            .map(|j| var.get(j).cloned().unwrap_or_else(|| format!("_v{}", j.index())))
            .collect();
        let mut cx = TorchCx {
            shapes: &a.shapes,
            node,
            ins,
            out,
            modules: &mut modules,
            lines: &mut lines,
            helpers: &mut helpers,
        };
        node.op.torch(&mut cx)?;
    }
    let mut outs = Vec::new();
    for o in &g.outputs {
        let v = var
            .get(&o.node)
            .cloned()
            .unwrap_or_else(|| format!("_v{}", o.node.index()));
        outs.push(format!("{}: {v}", py_str(&o.name, "output")?));
    }
    let mut s = String::new();
    let _ = writeln!(s, "# Generated by fpn from the spec `{class}`. Do not edit.");
    if let Some(doc) = &g.doc {
        for l in doc.lines() {
            let clean: String = l.chars().filter(|c| !c.is_control()).collect();
            let _ = writeln!(s, "# {clean}");
        }
    }
    let _ = writeln!(s, "{PRELUDE}\n");
    for h in &helpers {
        let _ = writeln!(s, "{h}\n");
    }
    let _ = writeln!(s, "class {class}(nn.Module):");
    let _ = writeln!(
        s,
        "    \"\"\"`{class}` from its fpn spec: `state_dict()` names and shapes are the spec's.\"\"\"\n"
    );
    let _ = writeln!(s, "    def __init__(self):");
    let _ = writeln!(s, "        super().__init__()");
    for (p, ctor) in parents_first(&modules) {
        let _ = writeln!(s, "        _put(self, {}, {ctor})", py_str(p, "parameter prefix")?);
    }
    let _ = writeln!(s, "\n    def forward(self, {}):", args.join(", "));
    for l in &lines {
        let _ = writeln!(s, "        {l}");
    }
    let _ = writeln!(s, "        return {{{}}}", outs.join(", "));
    Ok(s)
}
