//! The graph IR every front end lowers to.
//!
//! Invariants (established by [`crate::lower`], relied on by every later pass):
//! - node indices are a topological order: every input of a node has a smaller index;
//! - `Node::inputs` has exactly the arity its [`Op`] needs;
//! - the petgraph edges mirror `Node::inputs` (edge weight = input slot);
//! - every node keeps the [`Span`] of the spec text or token it came from;
//! - `Node::param` is the PyTorch `state_dict` prefix of its parameters, if it has any.

use crate::dim::Dim;
use crate::span::Span;
use fpn_runtime::{Activation, PaddingMode};
use petgraph::graph::{DiGraph, NodeIndex};

/// A convolution (PyTorch `nn.Conv2d`).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// Output channels.
    pub out: i64,
    /// Kernel `[h, w]`.
    pub kernel: [i64; 2],
    /// Stride `[h, w]`.
    pub stride: [i64; 2],
    /// Padding `[top, bottom, left, right]`.
    pub padding: [i64; 4],
    /// Dilation `[h, w]`.
    pub dilation: [i64; 2],
    /// Groups.
    pub groups: i64,
    /// Has a bias.
    pub bias: bool,
    /// Padding mode.
    pub mode: PaddingMode,
}

/// A pooling window (PyTorch `MaxPool2d` / `AvgPool2d`).
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// Kernel `[h, w]`.
    pub kernel: [i64; 2],
    /// Stride `[h, w]`.
    pub stride: [i64; 2],
    /// Symmetric padding `[h, w]`.
    pub padding: [i64; 2],
    /// Dilation `[h, w]` (max pool).
    pub dilation: [i64; 2],
    /// Ceil mode.
    pub ceil_mode: bool,
    /// Avg pool: include padding in the divisor.
    pub count_include_pad: bool,
}

/// An upsample.
#[derive(Clone, Debug, PartialEq)]
pub struct Upsample {
    /// Bilinear (else nearest).
    pub bilinear: bool,
    /// Bilinear `align_corners`.
    pub align_corners: bool,
    /// Scale `[h, w]` as exact fractions `(num, den)`; `None`: size of input 1 (`match`).
    pub scale: Option<[(i64, i64); 2]>,
}

/// A primitive op.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A graph input.
    Input {
        /// Input name.
        name: String,
        /// Channels.
        channels: i64,
        /// Height and width. A division inside is exact: `H/16` accepts only `H` with `16 | H`
        /// (a [`crate::infer::CheckKind::ExactDiv`] constraint), so the symbol can be solved
        /// back from the size ([`Dim::solve`]).
        size: [Dim; 2],
    },
    /// Convolution; 1 input.
    Conv(Conv),
    /// Inference batch norm; 1 input.
    BatchNorm {
        /// Epsilon.
        eps: f64,
    },
    /// Activation; 1 input.
    Act(Activation),
    /// Max pool; 1 input.
    MaxPool(Pool),
    /// Average pool; 1 input.
    AvgPool(Pool),
    /// Upsample; 1 input, or 2 with `scale: None` (the second gives the size).
    Upsample(Upsample),
    /// Elementwise sum; 2+ inputs.
    Add,
    /// Channel concat; 2+ inputs.
    Concat,
    /// Elementwise mean; 2+ inputs.
    Mean,
    /// BiFPN fast normalized fusion; 2+ inputs, one weight per input.
    Fuse {
        /// Epsilon.
        eps: f64,
    },
}

impl Op {
    /// Short op name for tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Conv(_) => "conv",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Act(_) => "act",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            Op::Upsample(_) => "upsample",
            Op::Add => "add",
            Op::Concat => "concat",
            Op::Mean => "mean",
            Op::Fuse { .. } => "fuse",
        }
    }
}

/// One node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique readable name (`lat5`, `block.0.2`, `neck.inner_blocks.1`).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Its inputs in order.
    pub inputs: Vec<NodeIndex>,
    /// Where in the spec it comes from.
    pub span: Span,
    /// `state_dict` prefix of its parameters.
    pub param: Option<String>,
}

/// A size symbol of the inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Symbol {
    /// Its name (`H`).
    pub name: String,
    /// First use.
    pub span: Span,
    /// Smallest allowed value.
    pub min: i64,
    /// Largest allowed value.
    pub max: Option<i64>,
}

/// A named output.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// Field name.
    pub name: String,
    /// Where it is declared.
    pub span: Span,
    /// The node.
    pub node: NodeIndex,
}

/// A lowered spec.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Model type name.
    pub name: String,
    /// Span of the name.
    pub name_span: Span,
    /// Free text from the spec.
    pub doc: Option<String>,
    /// Size symbols.
    pub symbols: Vec<Symbol>,
    /// The nodes (indices in topological order).
    pub graph: DiGraph<Node, u32>,
    /// Input nodes in declaration order.
    pub inputs: Vec<NodeIndex>,
    /// Outputs in declaration order.
    pub outputs: Vec<Output>,
}

impl Graph {
    /// The node at an index.
    pub fn node(&self, i: NodeIndex) -> &Node {
        &self.graph[i]
    }

    /// All node indices in topological order.
    pub fn order(&self) -> impl Iterator<Item = NodeIndex> {
        self.graph.node_indices()
    }

    /// Symbol names in id order.
    pub fn symbol_names(&self) -> Vec<String> {
        self.symbols.iter().map(|s| s.name.clone()).collect()
    }
}
