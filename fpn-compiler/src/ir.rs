//! The graph IR every front end lowers to.
//!
//! Invariants (established by [`crate::lower`], relied on by every later pass):
//! - node indices are a topological order: every input of a node has a smaller index;
//! - `Node::inputs` has exactly the arity its [`Op`] needs;
//! - the petgraph edges mirror `Node::inputs` (edge weight = input slot);
//! - every node keeps the [`Span`] of the spec text or token it came from;
//! - `Node::param` is the PyTorch `state_dict` prefix of its parameters, if it has any.

use crate::span::Span;
use petgraph::graph::{DiGraph, NodeIndex};

pub use crate::ops::conv::Conv;
pub use crate::ops::pool::Pool;
pub use crate::ops::upsample::Upsample;
pub use crate::ops::Op;

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
    /// The `module:` paths the spec gives its nodes (their `state_dict` prefixes), with where
    /// each is written, in declaration order.
    pub modules: Vec<(String, Span)>,
    /// The references a declaration with several outputs exports (`neck.p3`, `body.c4`,
    /// `y.0` of a `chunk`) and the node each one names, sorted by reference.
    pub exports: Vec<(String, NodeIndex)>,
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
