//! The primitive ops: one module per op (or small family), registered once in `registry!`.
//!
//! A module holds everything the op means, in the order the pipeline uses it:
//! - its spec keywords and argument reading (`OpDef::read`, into `OpDef::Args`);
//! - lowering of those arguments to its IR attributes (`OpDef::lower`), with parameter checks
//!   taken from [`fpn_runtime::rules`];
//! - its shape rule (`OpDef::infer`): output shape, size [`Constraint`]s from the runtime's
//!   rule functions (the only size rules: the interpreter and the generated `check_sizes` are
//!   produced from these constraints), parameters with their init, FLOPs;
//! - its interpreter call (`OpDef::eval`);
//! - its Rust code generation (`OpDef::fields` for model fields, `OpDef::stmt` for
//!   `forward`);
//! - its ONNX export (`OpDef::onnx`: the ONNX op(s) with PyTorch's semantics, see
//!   [`crate::back::onnx`]) and its PyTorch module and `forward` line (`OpDef::torch`, see
//!   [`crate::back::torch`]).
//!
//! The registry expands to the IR [`Op`] enum, the AST [`Args`] enum, [`keywords`] and every
//! dispatch as complete `match`es, so an op that is added to the list and lacks a piece does not
//! compile. Composites (sequences, skips, blocks, `cna`, heads) live in `crate::composite` and
//! presets (ResNet, pyramid generators) in `crate::presets`; they only build these ops.

pub mod act;
pub mod channels;
pub mod conv;
pub mod conv_transpose;
pub mod input;
pub mod layout;
pub mod merge;
pub mod norm;
pub mod pool;
pub mod upsample;

use std::collections::HashMap;

use fpn_runtime::ndarray::{ArrayView1, ArrayView4};
use petgraph::graph::NodeIndex;
use proc_macro2::{Ident, TokenStream};

use crate::ast::{Reader, Ref};
use crate::back::onnx::{EResult, OnnxCx};
use crate::back::rust::{GResult, StmtCx};
use crate::back::torch::{TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic, Reported};
use crate::dim::Dim;
use crate::infer::{CheckKind, Constraint, Shape};
use crate::interp::Params;
use crate::ir::{Graph, Node};
use crate::lower::{Env, Lower};
use crate::span::Span;
use crate::value::{Key, Value};

/// How a parameter tensor is initialised by `init(seed)` (PyTorch's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitKind {
    /// `Init::conv_weight(shape)`: kaiming-uniform.
    ConvWeight([usize; 4]),
    /// `Init::conv_bias(fan_in, n)`: `U(±1/sqrt(fan_in))`.
    ConvBias {
        /// `cin / groups · kh · kw`.
        fan_in: usize,
        /// Output channels.
        n: usize,
    },
    /// All ones of this shape.
    Ones(Vec<usize>),
    /// All zeros of this shape.
    Zeros(Vec<usize>),
}

/// A parameter an op declares: `state_dict` suffix (`weight`), shape, init.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// Suffix after the node's prefix.
    pub suffix: &'static str,
    /// Shape.
    pub shape: Vec<i64>,
    /// Init rule.
    pub init: InitKind,
    /// Counted by PyTorch's `parameters()` (buffers such as running statistics are not).
    pub learnable: bool,
}

/// What `OpDef::infer` learns about one node.
#[derive(Clone, Debug)]
pub struct Inferred {
    /// Output shape.
    pub shape: Shape,
    /// Parameters (under the node's prefix).
    pub params: Vec<ParamDecl>,
    /// FLOPs for batch 1, `None` when sizes are symbolic or it overflows.
    pub flops: Option<i64>,
}

/// What shape inference gives an op.
pub(crate) struct InferCx<'a> {
    /// The graph.
    pub g: &'a Graph,
    /// The node.
    pub node: &'a Node,
    /// Its index.
    pub idx: NodeIndex,
    /// Shapes of its inputs in order.
    pub ins: &'a [Shape],
    /// Symbol names (for messages).
    pub names: &'a [String],
    /// Size constraints (append).
    pub cons: &'a mut Vec<Constraint>,
    /// Diagnostics (append).
    pub diags: &'a mut Vec<Diagnostic>,
}

impl InferCx<'_> {
    /// Reports an E0310 overflow for `what` of this node (inference goes on with a stand-in
    /// size).
    pub fn overflow(&mut self, what: &str) {
        let _ = Reported::push(
            self.diags,
            Diagnostic::error(
                Code::E0310,
                self.node.span,
                format!("arithmetic overflow computing {what} of `{}`", self.node.name),
            )
            .with_label("numbers too large")
            .with_help("sizes, channels and kernels must stay below 2^63; check for a typo in a large number"),
        );
    }

    /// The shape of input `k`; a node without it is a compiler bug, reported as E0100.
    pub fn input(&mut self, k: usize) -> Checked<Shape> {
        match self.ins.get(k) {
            Some(s) => Ok(s.clone()),
            None => Err(Reported::push(
                self.diags,
                crate::diag::internal(
                    self.node.span,
                    &format!("node `{}` has no input {k} during shape inference", self.node.name),
                ),
            )),
        }
    }

    /// Records the conditions of one axis from a runtime rule as constraints of this node.
    pub fn conds(&mut self, axis: usize, conds: fpn_runtime::rules::Conds<Dim>) {
        for c in conds {
            self.cons.push(Constraint {
                kind: c.kind,
                node: self.idx,
                axis,
                lhs: c.lhs,
                rhs: c.rhs,
                slots: (0, 0),
            });
        }
    }

    /// The output height and width of a per-axis size rule applied to `x`'s height (axis 0) and
    /// width (axis 1). `rule(axis, size)` is the rule's `(output, conditions)`, or `Err(what)`
    /// when its arithmetic overflows: then E0310 is reported for `what` and that axis keeps its
    /// entry of `stand_in` (inference goes on). The conditions become this node's constraints.
    pub fn spatial(
        &mut self,
        x: &Shape,
        stand_in: [Dim; 2],
        mut rule: impl FnMut(usize, &Dim) -> Result<AxisRule, &'static str>,
    ) -> [Dim; 2] {
        let mut out = stand_in;
        for (axis, d) in [&x.h, &x.w].into_iter().enumerate() {
            match rule(axis, d) {
                Ok((o, conds)) => {
                    self.conds(axis, conds);
                    out[axis] = o;
                }
                Err(what) => self.overflow(what),
            }
        }
        out
    }

    /// Constrains the spatial sizes of inputs `slots.0` (`lhs`) and `slots.1` (`rhs`) by `kind`
    /// on each axis where they are not already the same size.
    pub fn relate_sizes(&mut self, kind: CheckKind, lhs: &Shape, rhs: &Shape, slots: (usize, usize)) {
        for (axis, (l, r)) in [(&lhs.h, &rhs.h), (&lhs.w, &rhs.w)].into_iter().enumerate() {
            if l != r {
                self.cons.push(Constraint {
                    kind,
                    node: self.idx,
                    axis,
                    lhs: l.clone(),
                    rhs: r.clone(),
                    slots,
                });
            }
        }
    }
}

/// What a runtime size rule gives for one axis: the output size and the conditions under which
/// it is defined (see [`InferCx::spatial`]).
pub(crate) type AxisRule = (Dim, fpn_runtime::rules::Conds<Dim>);

/// What the interpreter gives an op.
pub(crate) struct EvalCx<'a, 'i> {
    /// The node.
    pub node: &'a Node,
    /// Its inputs in order.
    pub x: Vec<ArrayView4<'a, f32>>,
    /// All parameters.
    pub params: &'a Params,
    /// The graph inputs by name (for [`input::Input`]).
    pub inputs: &'a [(&'a str, ArrayView4<'i, f32>)],
}

impl<'a> EvalCx<'a, '_> {
    /// Input `k`.
    pub fn x(&self, k: usize) -> fpn_runtime::Result<ArrayView4<'a, f32>> {
        self.x.get(k).cloned().ok_or_else(|| fpn_runtime::Error::InvalidParams {
            op: "interp",
            reason: format!("node `{}` lacks input {k}", self.node.name),
        })
    }

    fn pname(&self, suffix: &str) -> fpn_runtime::Result<String> {
        self.node
            .param
            .as_ref()
            .map(|p| format!("{p}.{suffix}"))
            .ok_or_else(|| fpn_runtime::Error::InvalidParams {
                op: "interp",
                reason: format!("node `{}` has no parameter prefix", self.node.name),
            })
    }

    /// The 4-D parameter `<prefix>.<suffix>`.
    pub fn param4(&self, suffix: &str) -> fpn_runtime::Result<ArrayView4<'a, f32>> {
        self.params.view4(&self.pname(suffix)?)
    }

    /// The 1-D parameter `<prefix>.<suffix>`.
    pub fn param1(&self, suffix: &str) -> fpn_runtime::Result<ArrayView1<'a, f32>> {
        self.params.view1(&self.pname(suffix)?)
    }

    /// The error for an attribute the runtime cannot take because it is negative (`what`:
    /// "attribute", "padding"); lowering never produces one.
    pub fn negative(&self, what: &str) -> fpn_runtime::Error {
        fpn_runtime::Error::InvalidParams {
            op: "interp",
            reason: format!("node `{}` has a negative {what}", self.node.name),
        }
    }
}

/// What lowering gives an op: the sequence input, the block environment and the lowering state.
pub(crate) struct LowerCx<'l, 's> {
    /// The lowering state (diagnostics, names, reference resolution).
    pub l: &'l mut Lower<'s>,
    /// The previous value in a sequence (`Ok(None)` for a node with several explicit inputs,
    /// `Err` when its `from` failed).
    pub input: Checked<Option<NodeIndex>>,
    /// Block parameters in scope.
    pub env: &'l Env,
    /// The op key's span.
    pub span: Span,
}

impl LowerCx<'_, '_> {
    /// The sequence input of an op that needs one (E0214 if there is none).
    pub fn input(&mut self) -> Checked<NodeIndex> {
        self.l.need_input(self.input, self.span, "this op")
    }

    /// `op` lowered with the sequence input as its only input (E0214 if there is none).
    pub fn on_input(&mut self, op: Op, has_params: bool) -> Checked<Lowered> {
        Ok(Lowered {
            op,
            inputs: vec![self.input()?],
            has_params,
        })
    }
}

/// A lowered primitive: its IR op, inputs, and whether it has parameters under the prefix.
pub struct Lowered {
    /// The op.
    pub op: Op,
    /// Its inputs.
    pub inputs: Vec<NodeIndex>,
    /// Whether the node owns parameters (gets the `state_dict` prefix).
    pub has_params: bool,
}

/// A model field a Rust back end op adds, built from the loaded `t{k}` tensors.
pub struct Field {
    /// The field.
    pub ident: Ident,
    /// Its type.
    pub ty: TokenStream,
    /// Its rustdoc.
    pub doc: String,
    /// How it is built in `from_weights` (and in `init` unless `init_value` is set).
    pub value: TokenStream,
    /// How `init` builds it when that differs (no `?` there).
    pub init_value: Option<TokenStream>,
    /// Statements to run before the struct literal (batch norm folding).
    pub prep: TokenStream,
}

/// What a generated field is, for the statements that use it.
#[derive(Clone, Debug)]
pub enum FieldKind {
    /// A prepared `Conv2d` with the runtime parameters it was built with.
    Conv(fpn_runtime::Conv2dParams),
    /// A `BatchNorm` with its eps.
    BatchNorm(f64),
    /// A plain tensor.
    Tensor,
}

/// The fields of the model struct being built, by parameter prefix.
pub(crate) struct FieldCx<'a> {
    /// The code generator (planned folds, parameter indices, runtime path).
    pub gen: &'a crate::back::rust::Gen<'a>,
    /// The node.
    pub node: &'a Node,
    /// Its index.
    pub idx: NodeIndex,
    /// Fields so far.
    pub fields: Vec<Field>,
    /// Prefix → field and what it is.
    pub by_prefix: HashMap<String, (Ident, FieldKind)>,
    /// Tensors `t{k}` already moved into a field (later uses clone).
    pub moved: std::collections::HashSet<usize>,
}

impl<'a> FieldCx<'a> {
    /// `t{k}`, moved the first time, cloned after.
    pub fn take(&mut self, k: usize) -> TokenStream {
        let v = quote::format_ident!("t{}", k);
        if self.moved.insert(k) {
            quote::quote!(#v)
        } else {
            quote::quote!(#v.clone())
        }
    }

    /// This node's parameter prefix, or `None` when an earlier node with the same prefix
    /// (shared weights) already added its fields.
    pub fn new_prefix(&self) -> GResult<Option<&'a str>> {
        let p = self.gen.param_prefix(self.idx)?;
        Ok((!self.by_prefix.contains_key(p)).then_some(p))
    }

    /// Records that the fields of parameter prefix `prefix` are made: `ident` holds `kind`.
    pub fn register(&mut self, prefix: &str, ident: Ident, kind: FieldKind) {
        self.by_prefix.insert(prefix.to_string(), (ident, kind));
    }

    /// Adds the field of parameter `<prefix>.<suffix>`, moved (or cloned) from its loaded
    /// tensor, with type `ty` and the rustdoc `doc(full name)`; returns the field's ident.
    pub fn param_field(
        &mut self,
        prefix: &str,
        suffix: &str,
        ty: TokenStream,
        doc: impl FnOnce(&str) -> String,
    ) -> GResult<Ident> {
        let (name, k) = self.gen.pname(prefix, suffix)?;
        let id = crate::back::rust::field_ident(&name)?;
        let value = self.take(k);
        self.push(id.clone(), ty, doc(&name), value);
        Ok(id)
    }

    /// Adds a field built in one expression, the same in `from_weights` and `init`.
    pub fn push(&mut self, ident: Ident, ty: TokenStream, doc: String, value: TokenStream) {
        self.fields.push(Field {
            ident,
            ty,
            doc,
            value,
            init_value: None,
            prep: TokenStream::new(),
        });
    }
}

/// The pieces every primitive op module provides (see the module docs).
pub(crate) trait OpDef: Sized {
    /// Spec keywords that name this op.
    const KEYWORDS: &'static [&'static str];
    /// Arguments as read from the spec.
    type Args: Clone + std::fmt::Debug + PartialEq;

    /// Reads the arguments of `key: v`, reporting problems through `r`.
    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<Self::Args>;
    /// References to other nodes in the arguments (for declaration order).
    fn refs(_args: &Self::Args) -> Vec<&Ref> {
        Vec::new()
    }
    /// Whether the op reads the previous value of a sequence (`false` for ops that list their
    /// inputs, such as `add: [a, b]`).
    fn needs_input(_args: &Self::Args) -> bool {
        true
    }
    /// Lowers the arguments to the IR op and its inputs.
    fn lower(args: &Self::Args, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered>;
    /// Short name for tables and messages.
    fn kind(&self) -> &'static str;
    /// Output shape, constraints, parameters and FLOPs.
    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred>;
    /// Runs the op in the interpreter.
    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor>;
    /// Adds the model fields this node's parameters need (once per prefix).
    fn fields(&self, _cx: &mut FieldCx<'_>) -> GResult<()> {
        Ok(())
    }
    /// The `forward` statement computing this node into `cx.out`.
    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream>;
    /// The ONNX nodes computing this node into its output value (PyTorch's semantics), or
    /// the error naming this node when the opset cannot express it.
    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()>;
    /// The PyTorch module (registered once per parameter prefix) and `forward` line(s)
    /// computing this node.
    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()>;
}

macro_rules! registry {
    ($($variant:ident => $module:ident :: $ty:ident ($args:ty)),* $(,)?) => {
        /// A primitive op of the IR, one variant per registered op.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Op {
            $(
                #[doc = concat!("See [`", stringify!($module), "::", stringify!($ty), "`].")]
                $variant($module::$ty),
            )*
        }

        /// A primitive op as read from a spec (integers may still name block parameters).
        #[derive(Clone, Debug, PartialEq)]
        pub enum Args {
            $(
                #[doc = concat!("Arguments of [`", stringify!($module), "::", stringify!($ty), "`].")]
                $variant($args),
            )*
        }

        /// Every primitive op keyword, in registry order.
        pub fn keywords() -> Vec<&'static str> {
            let mut v = Vec::new();
            $( v.extend_from_slice(<$module::$ty as OpDef>::KEYWORDS); )*
            v
        }

        /// Reads `key: v` if `key` is a primitive op keyword: `None` if it is not one,
        /// `Some(Err(_))` if it is but the arguments are wrong (reported).
        pub(crate) fn read(r: &mut Reader, key: &Key, v: &Value) -> Option<Checked<Args>> {
            $(
                if <$module::$ty as OpDef>::KEYWORDS.contains(&key.name.as_str()) {
                    return Some(<$module::$ty as OpDef>::read(r, key, v).map(Args::$variant));
                }
            )*
            None
        }

        impl Args {
            /// References to other nodes.
            pub fn refs(&self) -> Vec<&Ref> {
                match self { $( Args::$variant(a) => <$module::$ty as OpDef>::refs(a), )* }
            }
            /// Whether the op reads the previous value of a sequence.
            pub fn needs_input(&self) -> bool {
                match self { $( Args::$variant(a) => <$module::$ty as OpDef>::needs_input(a), )* }
            }
            /// Lowers to the IR.
            pub(crate) fn lower(&self, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
                match self { $( Args::$variant(a) => <$module::$ty as OpDef>::lower(a, cx), )* }
            }
        }

        impl Op {
            /// Short op name for tables and messages.
            pub fn kind(&self) -> &'static str {
                match self { $( Op::$variant(o) => o.kind(), )* }
            }
            /// Shape inference.
            pub(crate) fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
                match self { $( Op::$variant(o) => o.infer(cx), )* }
            }
            /// Interpreter.
            pub(crate) fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
                match self { $( Op::$variant(o) => o.eval(cx), )* }
            }
            /// Model fields.
            pub(crate) fn fields(&self, cx: &mut FieldCx<'_>) -> GResult<()> {
                match self { $( Op::$variant(o) => o.fields(cx), )* }
            }
            /// `forward` statement.
            pub(crate) fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
                match self { $( Op::$variant(o) => o.stmt(cx), )* }
            }
            /// ONNX nodes.
            pub(crate) fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
                match self { $( Op::$variant(o) => o.onnx(cx), )* }
            }
            /// PyTorch module and `forward` line.
            pub(crate) fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
                match self { $( Op::$variant(o) => o.torch(cx), )* }
            }
        }
    };
}

registry! {
    Input => input::Input(()),
    Conv => conv::Conv(conv::ConvArgs),
    BatchNorm => norm::BatchNorm(f64),
    GroupNorm => norm::GroupNorm(norm::GroupNormArgs),
    ConvTranspose => conv_transpose::ConvTranspose(conv_transpose::ConvTransposeArgs),
    Pad => layout::Pad(layout::PadArgs),
    Crop => layout::Crop(layout::CropArgs),
    PixelShuffle => layout::PixelShuffle(crate::ast::Int),
    PixelUnshuffle => layout::PixelUnshuffle(crate::ast::Int),
    Act => act::Act(fpn_runtime::Activation),
    MaxPool => pool::MaxPool(pool::PoolArgs),
    AvgPool => pool::AvgPool(pool::PoolArgs),
    Upsample => upsample::Upsample(upsample::UpArgs),
    Add => merge::Add(Vec<Ref>),
    Mul => merge::Mul(Vec<Ref>),
    Concat => merge::Concat(Vec<Ref>),
    Mean => merge::Mean(Vec<Ref>),
    Fuse => merge::Fuse(merge::FuseArgs),
    ChannelSlice => channels::ChannelSlice(()),
}

/// `C·H·W·per` for constant sizes: the FLOPs of an elementwise op.
pub fn elementwise(s: &Shape, per: i64) -> Option<i64> {
    s.c.checked_mul(s.h.as_const()?)?
        .checked_mul(s.w.as_const()?)?
        .checked_mul(per)
}
