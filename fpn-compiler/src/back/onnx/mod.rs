//! The ONNX back end: a checked graph as an ONNX model (`fpn export --onnx`).
//!
//! Each op writes its own ONNX nodes ([`crate::ops`]'s `OpDef::onnx`, dispatched by the
//! registry with a complete `match`); this module holds the driver and the helpers they use.
//!
//! Invariants:
//! - graph inputs are `[N, C, H, W]` f32 with `N` a dynamic dimension called `N` and each
//!   symbolic height or width a dynamic dimension named by its expression in the spec's symbols
//!   (`H`, `H/2`); graph outputs are named as the spec's outputs with the inferred dims;
//! - initializers carry the spec's `state_dict` names (`Analysis::params`, in that order) and
//!   shapes; with `fold_bn` the batch norms folded into a conv disappear and the conv's
//!   `weight`/`bias` hold the folded values. Helper constants (pads, scales, axes) are
//!   initializers named `<node>/<what>`, after the parameters;
//! - nodes are emitted in the graph's node order, which is topological;
//! - every op is exported as the ONNX op(s) with PyTorch's semantics (see each op's `onnx`);
//!   an op or attribute the chosen opset cannot express is an [`ExportError::Node`] naming the
//!   node and its span, never a panic;
//! - output is deterministic: same graph, parameters and options, same bytes.

pub mod proto;

use std::collections::{HashMap, HashSet};

use fpn_runtime::ndarray::{ArrayD, Ix1, Ix4};
use petgraph::graph::NodeIndex;
use prost::Message;

use crate::dim::Dim;
use crate::infer::{Analysis, Shape};
use crate::interp::Params;
use crate::ir::{Graph, Node, Op};
use crate::span::Span;
use proto::{
    data_type, AttributeProto, DimValue, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};

/// The opset `fpn export` writes unless told otherwise.
pub const DEFAULT_OPSET: i64 = 17;
/// The oldest opset fpn exports to: `HardSwish` and `Relu`-14, `Resize`-13 with an empty `roi`,
/// `Split`/`Unsqueeze`/`ReduceSum` taking their axes as inputs.
pub const MIN_OPSET: i64 = 14;
/// The newest opset whose semantics of every op used here fpn has been checked against.
pub const MAX_OPSET: i64 = 21;

/// Export options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// ONNX opset of the default domain.
    pub opset: i64,
    /// Fold each batch norm into the conv before it where that conv feeds only it (as the
    /// generated Rust does); the initializers are then no longer the `state_dict`.
    pub fold_bn: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            opset: DEFAULT_OPSET,
            fold_bn: false,
        }
    }
}

/// Why a graph could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The requested opset is outside what fpn exports.
    #[error("ONNX opset {opset} is not supported: fpn exports opsets {MIN_OPSET} to {MAX_OPSET}")]
    Opset {
        /// The opset asked for.
        opset: i64,
    },
    /// A node the chosen opset cannot express.
    #[error("node `{node}` ({op}) cannot be exported to ONNX opset {opset}: {reason}")]
    Node {
        /// The node's name.
        node: String,
        /// Its op kind.
        op: &'static str,
        /// Where it is written in the spec.
        span: Span,
        /// The opset.
        opset: i64,
        /// What is missing.
        reason: String,
        /// What to do.
        help: String,
    },
    /// A parameter tensor is missing or has another shape than the spec's.
    #[error("parameter `{name}`: {reason}")]
    Param {
        /// The `state_dict` name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl ExportError {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            ExportError::Opset { .. } => {
                format!("pass `--opset N` with {MIN_OPSET} ≤ N ≤ {MAX_OPSET} (default {DEFAULT_OPSET})")
            }
            ExportError::Node { help, .. } => help.clone(),
            ExportError::Param { .. } => {
                "export from weights that load with `fpn run` (the same names and shapes)".into()
            }
        }
    }

    /// The spec location at fault, if there is one.
    pub fn span(&self) -> Option<Span> {
        match self {
            ExportError::Node { span, .. } => Some(*span),
            _ => None,
        }
    }
}

/// Result of export.
pub type EResult<T> = Result<T, ExportError>;

/// The IR version that goes with `opset` (the ONNX versioning table: IR 7 up to opset 14,
/// IR 8 up to 18, IR 9 up to 20, IR 10 for 21).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// `AttributeProto` builders.
pub(crate) mod attr {
    use super::proto::{attribute_type, AttributeProto};

    fn named(name: &str, ty: i32) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_string()),
            r#type: Some(ty),
            ..Default::default()
        }
    }

    /// An `INT` attribute.
    pub fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto {
            i: Some(v),
            ..named(name, attribute_type::INT)
        }
    }

    /// An `INTS` attribute.
    pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            ints: v.to_vec(),
            ..named(name, attribute_type::INTS)
        }
    }

    /// A `FLOAT` attribute.
    pub fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto {
            f: Some(v),
            ..named(name, attribute_type::FLOAT)
        }
    }

    /// A `STRING` attribute.
    pub fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            s: Some(v.as_bytes().to_vec()),
            ..named(name, attribute_type::STRING)
        }
    }
}

/// An f32 tensor as an initializer, its data as little-endian bytes.
fn f32_tensor(name: &str, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(data_type::FLOAT),
        name: Some(name.to_string()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// An i64 tensor as an initializer.
fn i64_tensor(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(data_type::INT64),
        name: Some(name.to_string()),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// What the export of one graph builds up.
struct State {
    nodes: Vec<NodeProto>,
    consts: Vec<TensorProto>,
    /// Every value and initializer name so far (fresh names avoid them).
    taken: HashSet<String>,
    /// `state_dict` names read by some node.
    used: HashSet<String>,
    /// Parameter values that replace the loaded ones (folded convs).
    overrides: HashMap<String, ArrayD<f32>>,
    /// Batch norm node → the conv it is folded into.
    folded_bn: HashMap<NodeIndex, NodeIndex>,
    /// Conv nodes with a batch norm folded in (each then has a `bias` initializer).
    folded_conv: HashSet<NodeIndex>,
}

/// What an op's `onnx` gets: its node, input and output value names, and the builders.
pub(crate) struct OnnxCx<'a> {
    /// Shapes of every node.
    pub shapes: &'a [Shape],
    /// The node.
    pub node: &'a Node,
    /// Its index.
    pub idx: NodeIndex,
    /// The opset being written.
    pub opset: i64,
    ins: Vec<String>,
    out: String,
    st: &'a mut State,
}

impl OnnxCx<'_> {
    /// The value name of input `k`.
    pub fn x(&self, k: usize) -> EResult<String> {
        self.ins
            .get(k)
            .cloned()
            .ok_or_else(|| self.unsupported(format!("it lacks input {k}"), "this is a bug in fpn".into()))
    }

    /// The value names of every input.
    pub fn xs(&self) -> Vec<String> {
        self.ins.clone()
    }

    /// The shape of input `k` (channels, height, width).
    pub fn in_shape(&self, k: usize) -> EResult<&Shape> {
        self.node
            .inputs
            .get(k)
            .and_then(|j| self.shapes.get(j.index()))
            .ok_or_else(|| self.unsupported(format!("no shape for input {k}"), "this is a bug in fpn".into()))
    }

    /// The error for something this node needs that opset `self.opset` lacks.
    pub fn unsupported(&self, reason: String, help: String) -> ExportError {
        ExportError::Node {
            node: self.node.name.clone(),
            op: self.node.op.kind(),
            span: self.node.span,
            opset: self.opset,
            reason,
            help,
        }
    }

    /// `Err(unsupported)` unless the opset is at least `min` (`what` needs it).
    pub fn need_opset(&self, min: i64, what: &str) -> EResult<()> {
        if self.opset >= min {
            Ok(())
        } else {
            Err(self.unsupported(
                format!("{what} needs opset {min} or newer"),
                format!("export with `--opset {min}` (or newer, up to {MAX_OPSET})"),
            ))
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        let base = format!("{}/{hint}", self.out);
        let mut name = base.clone();
        let mut k = 1;
        while self.st.taken.contains(&name) {
            k += 1;
            name = format!("{base}_{k}");
        }
        self.st.taken.insert(name.clone());
        name
    }

    fn push(&mut self, op_type: &str, inputs: &[impl AsRef<str>], attrs: Vec<AttributeProto>, output: String) {
        let n = self.st.nodes.len();
        self.st.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.as_ref().to_string()).collect(),
            output: vec![output],
            name: Some(format!("{}#{n}:{op_type}", self.node.name)),
            op_type: Some(op_type.to_string()),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Adds an `op_type` node on `inputs` (`""`: an omitted optional input) with `attrs`;
    /// returns its (fresh) output name.
    pub fn op(&mut self, op_type: &str, inputs: &[impl AsRef<str>], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op_type.to_ascii_lowercase());
        self.push(op_type, inputs, attrs, out.clone());
        out
    }

    /// Adds the `op_type` node that computes this node's output.
    pub fn last(&mut self, op_type: &str, inputs: &[impl AsRef<str>], attrs: Vec<AttributeProto>) {
        let out = self.out.clone();
        self.push(op_type, inputs, attrs, out);
    }

    /// This node's output is the value `v` (an `Identity`).
    pub fn alias(&mut self, v: &str) {
        self.last("Identity", &[v], Vec::new());
    }

    /// Folds `op_type` over the inputs left to right (`((x0 ∘ x1) ∘ x2) …`, PyTorch's and
    /// the runtime's order), the last one computing this node's output.
    pub fn chain(&mut self, op_type: &str, xs: &[String]) -> EResult<()> {
        let (Some(first), Some((last, mid))) = (xs.first(), xs.get(1..).and_then(|r| r.split_last())) else {
            return Err(self.unsupported("it has fewer than two inputs".into(), "this is a bug in fpn".into()));
        };
        let mut acc = first.clone();
        for x in mid {
            acc = self.op(op_type, &[&acc, x], Vec::new());
        }
        self.last(op_type, &[&acc, last], Vec::new());
        Ok(())
    }

    /// The node `op_type(x, <prefix>.weight[, <prefix>.bias])` with `attrs` computing this
    /// node's output (the conv family).
    pub fn weighted(&mut self, op_type: &str, x: String, bias: bool, attrs: Vec<AttributeProto>) -> EResult<()> {
        let mut ins = vec![x, self.param("weight")?];
        if bias {
            ins.push(self.param("bias")?);
        }
        self.last(op_type, &ins, attrs);
        Ok(())
    }

    /// The initializer name of this node's parameter `<prefix>.<suffix>`.
    pub fn param(&mut self, suffix: &str) -> EResult<String> {
        let p = self
            .node
            .param
            .as_deref()
            .ok_or_else(|| self.unsupported("it has no parameter prefix".into(), "this is a bug in fpn".into()))?;
        let name = format!("{p}.{suffix}");
        self.st.used.insert(name.clone());
        Ok(name)
    }

    /// A 1-D int64 constant.
    pub fn ints(&mut self, hint: &str, v: &[i64]) -> String {
        let name = self.fresh(hint);
        self.st.consts.push(i64_tensor(&name, &[v.len() as i64], v));
        name
    }

    /// A 0-D int64 constant.
    pub fn int_scalar(&mut self, hint: &str, v: i64) -> String {
        let name = self.fresh(hint);
        self.st.consts.push(i64_tensor(&name, &[], &[v]));
        name
    }

    /// An f32 constant of shape `dims` (empty: a scalar).
    pub fn floats(&mut self, hint: &str, dims: &[i64], v: &[f32]) -> String {
        let name = self.fresh(hint);
        self.st.consts.push(f32_tensor(
            &name,
            dims,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
        name
    }

    /// `Shape(v)[start..end]` (int64, 1-D).
    pub fn dims_of(&mut self, v: &str, start: i64, end: i64) -> String {
        let shape = self.op("Shape", &[v], Vec::new());
        let (s, e, ax) = (
            self.ints("start", &[start]),
            self.ints("end", &[end]),
            self.ints("axes", &[0]),
        );
        self.op("Slice", &[&shape, &s, &e, &ax], Vec::new())
    }

    /// The inputs and attributes of `Pad`-11+ on `v` with the pads value `pads` (int64
    /// `[x1_begin, x2_begin, x3_begin, x4_begin, x1_end, …]`) in `mode` (fill `value` for the
    /// zero mode, PyTorch's `constant`): `reflect` is ONNX `reflect`, `replicate` is `edge`,
    /// `circular` is `wrap` (opset 19).
    pub fn pad_with(
        &mut self,
        v: &str,
        pads: String,
        mode: fpn_runtime::PaddingMode,
        value: f32,
    ) -> EResult<(Vec<String>, Vec<AttributeProto>)> {
        use fpn_runtime::PaddingMode as M;
        let onnx_mode = match mode {
            M::Zeros => {
                let fill = self.floats("value", &[], &[value]);
                return Ok((vec![v.to_string(), pads, fill], vec![attr::string("mode", "constant")]));
            }
            M::Reflect => "reflect",
            M::Replicate => "edge",
            M::Circular => {
                self.need_opset(19, "circular padding (`Pad` mode `wrap`)")?;
                "wrap"
            }
        };
        Ok((vec![v.to_string(), pads], vec![attr::string("mode", onnx_mode)]))
    }

    /// The `Pad` inputs and attributes for a fixed `[top, bottom, left, right]`.
    pub fn pad_fixed(
        &mut self,
        v: &str,
        pad: [i64; 4],
        mode: fpn_runtime::PaddingMode,
        value: f32,
    ) -> EResult<(Vec<String>, Vec<AttributeProto>)> {
        let [t, b, l, r] = pad;
        let pads = self.ints("pads", &[0, 0, t, l, 0, 0, b, r]);
        self.pad_with(v, pads, mode, value)
    }

    /// `v` padded by a fixed `[top, bottom, left, right]` in `mode` (a new value).
    pub fn pad(&mut self, v: &str, pad: [i64; 4], mode: fpn_runtime::PaddingMode, value: f32) -> EResult<String> {
        let (ins, attrs) = self.pad_fixed(v, pad, mode, value)?;
        Ok(self.op("Pad", &ins, attrs))
    }

    /// `v` padded by TensorFlow's `SAME` padding of a window `kernel` / `stride` / `dilation`
    /// (fill `value`), the pads computed in the graph from `v`'s runtime height and width as
    /// `fpn_runtime::rules::same_dynamic_pad` does: `out = ceil(x/s)` (`(x + s − 1) / s` in
    /// int64), `total = max((out − 1)·s + (k − 1)·d + 1 − x, 0)`, `total / 2` before. (`auto_pad =
    /// SAME_UPPER` is the same rule in ONNX's words, but ONNX Runtime 1.32 refuses it for a
    /// dilated conv and where the unclamped total is negative, a kernel smaller than the stride:
    /// measured, docs/onnx.md.)
    pub fn pad_same_dynamic(
        &mut self,
        v: &str,
        kernel: [i64; 2],
        stride: [i64; 2],
        dilation: [i64; 2],
        value: f32,
    ) -> String {
        let span = |a: usize| dilation[a].saturating_mul(kernel[a] - 1).saturating_add(1);
        let hw = self.dims_of(v, 2, 4);
        let s = self.ints("stride", &stride);
        let s_minus_1 = self.ints("stride_minus_1", &[stride[0] - 1, stride[1] - 1]);
        let one = self.ints("one", &[1, 1]);
        let reach = self.ints("span", &[span(0), span(1)]);
        let zero = self.ints("zero", &[0, 0]);
        let two = self.ints("two", &[2, 2]);
        let up = self.op("Add", &[&hw, &s_minus_1], Vec::new());
        let out = self.op("Div", &[&up, &s], Vec::new());
        let last = self.op("Sub", &[&out, &one], Vec::new());
        let start = self.op("Mul", &[&last, &s], Vec::new());
        let end = self.op("Add", &[&start, &reach], Vec::new());
        let raw = self.op("Sub", &[&end, &hw], Vec::new());
        let total = self.op("Max", &[&raw, &zero], Vec::new());
        let before = self.op("Div", &[&total, &two], Vec::new());
        let after = self.op("Sub", &[&total, &before], Vec::new());
        // ONNX `Pad` order: [n, c, h, w] begins, then ends
        let pads = self.op("Concat", &[&zero, &before, &zero, &after], vec![attr::int("axis", 0)]);
        let fill = self.floats("value", &[], &[value]);
        self.op("Pad", &[v, &pads, &fill], vec![attr::string("mode", "constant")])
    }

    /// For a batch norm folded into the conv before it (`fold_bn`): that conv's output.
    pub fn folded_into(&self) -> Option<String> {
        let c = self.st.folded_bn.get(&self.idx)?;
        (self.node.inputs.first() == Some(c)).then(|| self.ins[0].clone())
    }

    /// Whether this conv has a batch norm folded in (it then has a `bias` initializer).
    pub fn is_folded_conv(&self) -> bool {
        self.st.folded_conv.contains(&self.idx)
    }
}

/// The ONNX dimension of a spec size.
fn dim(d: &Dim, names: &[String]) -> Dimension {
    Dimension {
        value: Some(match d.as_const() {
            Some(v) => DimValue::Value(v),
            None => DimValue::Param(d.display(names).to_string()),
        }),
    }
}

/// `name: float32[N, c, h, w]`.
fn value_info(name: &str, s: &Shape, names: &[String]) -> ValueInfoProto {
    let dims = vec![
        Dimension {
            value: Some(DimValue::Param("N".into())),
        },
        Dimension {
            value: Some(DimValue::Value(s.c)),
        },
        dim(&s.h, names),
        dim(&s.w, names),
    ];
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(data_type::FLOAT),
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    }
}

/// Conv → batch norm pairs to fold: the conv feeds only that norm (and is no output), and
/// neither prefix is shared with another node.
fn plan_folds(g: &Graph) -> HashMap<NodeIndex, NodeIndex> {
    let mut uses = vec![0usize; g.graph.node_count()];
    let mut prefix_uses: HashMap<&str, usize> = HashMap::new();
    for i in g.order() {
        let n = g.node(i);
        for j in &n.inputs {
            uses[j.index()] += 1;
        }
        if let Some(p) = &n.param {
            *prefix_uses.entry(p.as_str()).or_default() += 1;
        }
    }
    for o in &g.outputs {
        uses[o.node.index()] += 1;
    }
    let single = |n: &Node| n.param.as_deref().is_some_and(|p| prefix_uses.get(p) == Some(&1));
    let mut folds = HashMap::new();
    for i in g.order() {
        let n = g.node(i);
        if let (Op::BatchNorm(_), [c]) = (&n.op, n.inputs.as_slice()) {
            let cn = g.node(*c);
            if matches!(cn.op, Op::Conv(_)) && uses[c.index()] == 1 && single(n) && single(cn) {
                folds.insert(i, *c);
            }
        }
    }
    folds
}

/// Folds batch norm `bn` into conv `conv`: the new `weight` and `bias` of the conv's prefix.
fn fold(g: &Graph, params: &Params, conv: NodeIndex, bn: NodeIndex) -> EResult<[(String, ArrayD<f32>); 2]> {
    let (cn, bnode) = (g.node(conv), g.node(bn));
    let (Op::Conv(c), Op::BatchNorm(b), Some(p), Some(q)) = (&cn.op, &bnode.op, &cn.param, &bnode.param) else {
        return Err(ExportError::Param {
            name: cn.name.clone(),
            reason: "a fold that is not conv → batch norm".into(),
        });
    };
    let get = |name: String| {
        params.get(&name).cloned().ok_or(ExportError::Param {
            name,
            reason: "missing".into(),
        })
    };
    let bad = |name: &str, e: String| ExportError::Param {
        name: name.to_string(),
        reason: e,
    };
    let one = |name: String| -> EResult<fpn_runtime::ndarray::Array1<f32>> {
        get(name.clone())?
            .into_dimensionality::<Ix1>()
            .map_err(|e| bad(&name, e.to_string()))
    };
    let wname = format!("{p}.weight");
    let mut w = get(wname.clone())?
        .into_dimensionality::<Ix4>()
        .map_err(|e| bad(&wname, e.to_string()))?;
    let bias = if c.bias { Some(one(format!("{p}.bias"))?) } else { None };
    let [gw, gb, gm, gv] = crate::ops::norm::BN_PARAMS.map(|s| one(format!("{q}.{s}")));
    let bnorm = fpn_runtime::BatchNorm {
        weight: gw?,
        bias: gb?,
        running_mean: gm?,
        running_var: gv?,
        eps: b.eps as f32,
    };
    let nb = fpn_runtime::fold_batch_norm(&mut w, bias.as_ref().map(|b| b.view()), &bnorm)
        .map_err(|e| bad(&wname, e.to_string()))?;
    Ok([(wname, w.into_dyn()), (format!("{p}.bias"), nb.into_dyn())])
}

/// Exports `g` (checked, with analysis `a`) with parameters `params` as an ONNX model.
///
/// # Errors
/// [`ExportError::Opset`] for an opset outside [`MIN_OPSET`]..=[`MAX_OPSET`],
/// [`ExportError::Node`] for a node the opset cannot express, [`ExportError::Param`] for a
/// parameter missing from `params` or of another shape than the spec's.
pub fn export(g: &Graph, a: &Analysis, params: &Params, opts: &Options) -> EResult<ModelProto> {
    if !(MIN_OPSET..=MAX_OPSET).contains(&opts.opset) {
        return Err(ExportError::Opset { opset: opts.opset });
    }
    let names = g.symbol_names();
    let mut st = State {
        nodes: Vec::new(),
        consts: Vec::new(),
        taken: HashSet::new(),
        used: HashSet::new(),
        overrides: HashMap::new(),
        folded_bn: HashMap::new(),
        folded_conv: HashSet::new(),
    };
    if opts.fold_bn {
        for (bn, conv) in plan_folds(g) {
            for (name, t) in fold(g, params, conv, bn)? {
                st.overrides.insert(name, t);
            }
            st.folded_bn.insert(bn, conv);
            st.folded_conv.insert(conv);
        }
    }
    // value names: inputs by their names, nodes by theirs; a clash with a parameter, an
    // output or an earlier value gets `#index`
    for p in &a.params {
        st.taken.insert(p.name.clone());
    }
    for o in &g.outputs {
        st.taken.insert(o.name.clone());
    }
    let mut value: Vec<String> = Vec::with_capacity(g.graph.node_count());
    for i in g.order() {
        let n = g.node(i);
        let v = match &n.op {
            Op::Input(inp) => inp.name.clone(),
            _ if st.taken.contains(&n.name) => format!("{}#{}", n.name, i.index()),
            _ => n.name.clone(),
        };
        st.taken.insert(v.clone());
        value.push(v);
    }
    for i in g.order() {
        let node = g.node(i);
        let ins = node.inputs.iter().map(|j| value[j.index()].clone()).collect();
        let mut cx = OnnxCx {
            shapes: &a.shapes,
            node,
            idx: i,
            opset: opts.opset,
            ins,
            out: value[i.index()].clone(),
            st: &mut st,
        };
        node.op.onnx(&mut cx)?;
    }
    let mut outputs = Vec::with_capacity(g.outputs.len());
    for o in &g.outputs {
        let v = &value[o.node.index()];
        let is_input = matches!(g.node(o.node).op, Op::Input(_));
        if *v != o.name || is_input {
            st.nodes.push(NodeProto {
                input: vec![v.clone()],
                output: vec![o.name.clone()],
                name: Some(format!("output {}", o.name)),
                op_type: Some("Identity".into()),
                ..Default::default()
            });
        }
        let s = a.shapes.get(o.node.index()).ok_or_else(|| ExportError::Param {
            name: o.name.clone(),
            reason: "no shape for this output".into(),
        })?;
        outputs.push(value_info(&o.name, s, &names));
    }
    let mut inputs = Vec::with_capacity(g.inputs.len());
    for &i in &g.inputs {
        if let (Op::Input(inp), Some(s)) = (&g.node(i).op, a.shapes.get(i.index())) {
            inputs.push(value_info(&inp.name, s, &names));
        }
    }
    let mut initializer = Vec::with_capacity(a.params.len() + st.consts.len());
    for p in &a.params {
        if !st.used.contains(&p.name) {
            continue;
        }
        let t = match st.overrides.get(&p.name) {
            Some(t) => t,
            None => params.get(&p.name).ok_or_else(|| ExportError::Param {
                name: p.name.clone(),
                reason: "missing from the weights".into(),
            })?,
        };
        let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
        // the fold makes a bias the spec may not have: its shape is the conv's output channels
        if dims != p.shape && !st.overrides.contains_key(&p.name) {
            return Err(ExportError::Param {
                name: p.name.clone(),
                reason: format!("shape {dims:?}, the spec needs {:?}", p.shape),
            });
        }
        initializer.push(f32_tensor(&p.name, &dims, fpn_runtime::f32_le_bytes(t.view())));
    }
    // a folded conv without a bias of its own gains one (not in `a.params`)
    let mut extra: Vec<_> = st
        .overrides
        .iter()
        .filter(|(n, _)| !a.params.iter().any(|p| &p.name == *n))
        .collect();
    extra.sort_by(|x, y| x.0.cmp(y.0));
    for (name, t) in extra {
        let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
        initializer.push(f32_tensor(name, &dims, fpn_runtime::f32_le_bytes(t.view())));
    }
    initializer.append(&mut st.consts);
    Ok(ModelProto {
        ir_version: Some(ir_version(opts.opset)),
        producer_name: Some("fpn".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: g.doc.clone(),
        graph: Some(GraphProto {
            node: st.nodes,
            name: Some(g.name.clone()),
            initializer,
            doc_string: None,
            input: inputs,
            output: outputs,
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opts.opset),
        }],
    })
}

/// The model as protobuf bytes (an `.onnx` file).
pub fn to_bytes(m: &ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

/// Decodes `.onnx` bytes with the same messages (fields fpn does not declare are skipped).
///
/// # Errors
/// The protobuf decoding error.
pub fn from_bytes(bytes: &[u8]) -> Result<ModelProto, prost::DecodeError> {
    ModelProto::decode(bytes)
}
