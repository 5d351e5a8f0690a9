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
