//! The surface spec shared by both front ends, read from a [`Value`] tree.
//!
//! [`read`] checks every key (unknown keys get a "did you mean"), every type, and collects all
//! problems before returning. Integers that may depend on block parameters are [`IntExpr`]s,
//! resolved at lowering. Nothing here knows shapes.

use std::collections::HashMap;

use crate::diag::{Checked, Code, Diagnostic, Reported};
use crate::ops::conv::ConvArgs;
use crate::span::Span;
use crate::value::{Key, Value, ValueKind};
use fpn_runtime::{Activation, PaddingMode};

/// A name with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    /// The text.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// An integer attribute or a parameter's value as written: a literal, a name (a block or spec
/// parameter), arithmetic, or a call of a rounding function (`make_divisible(c * width, 8)`);
/// parsed and evaluated by [`crate::expr`]. An integer attribute refuses a float result.
#[derive(Clone, Debug, PartialEq)]
pub enum IntExpr {
    /// An integer literal.
    Lit(i64),
    /// A float literal (`0.25`).
    Float(f64),
    /// A block or spec parameter.
    Param(String),
    /// `-a`.
    Neg(Box<IntExpr>),
    /// `a op b` with op one of `+ - * /` (`/` of integers: an integer when exact, else a float).
    Bin(Box<IntExpr>, char, Box<IntExpr>),
    /// `round(x)`, `min(a, b)`, `make_divisible(x, 8)`, …
    Call(crate::expr::Func, Vec<IntExpr>),
}

/// An [`IntExpr`] with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Int {
    /// The expression.
    pub expr: IntExpr,
    /// Where it is.
    pub span: Span,
}

impl Int {
    pub(crate) fn lit(v: i64, span: Span) -> Int {
        Int {
            expr: IntExpr::Lit(v),
            span,
        }
    }
}

/// A pair attribute given as one value or `[h, w]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// Height component.
    pub h: Int,
    /// Width component.
    pub w: Int,
}

/// Normalisation of a `cna` block.
#[derive(Clone, Debug, PartialEq)]
pub enum Norm {
    /// No norm.
    None,
    /// Inference batch norm with this eps.
    BatchNorm(f64),
    /// Group norm (`{group_norm: {groups: G, eps}}`, groups a number), `nn.GroupNorm`.
    GroupNorm {
        /// Number of groups (may be a parameter).
        groups: Int,
        /// Epsilon.
        eps: f64,
    },
}

/// The `state_dict` child names a `cna` gives its conv and norm (`names:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CnaNames {
    /// torchvision's `Conv2dNormActivation` (an `nn.Sequential`): conv `.0`, norm `.1`.
    Torchvision,
    /// ultralytics' `Conv` and mmdet's `ConvModule`: conv `.conv`, norm `.bn` (`.gn` for a
    /// group norm, mmdet's name; ultralytics has none).
    Ultralytics,
}

impl CnaNames {
    /// The child names of the conv and of the norm `norm`.
    pub fn children(self, norm: &Norm) -> (&'static str, &'static str) {
        match (self, norm) {
            (CnaNames::Torchvision, _) => ("0", "1"),
            (CnaNames::Ultralytics, Norm::GroupNorm { .. }) => ("conv", "gn"),
            (CnaNames::Ultralytics, _) => ("conv", "bn"),
        }
    }
}

/// `cna:` (torchvision `Conv2dNormActivation`) attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct CnaArgs {
    /// The convolution.
    pub conv: ConvArgs,
    /// Norm (default from `defaults.cna.norm`, else batch_norm).
    pub norm: Option<Norm>,
    /// Activation (default from `defaults.cna.act`, else relu).
    pub act: Option<Activation>,
    /// Child names (default from `defaults.cna.names`, else torchvision's).
    pub names: Option<CnaNames>,
}

/// A reference to a node output: `name` or `name.sub`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ref {
    /// The node name.
    pub node: String,
    /// The output of a multi-output node.
    pub sub: Option<String>,
    /// Where it is.
    pub span: Span,
}

impl Ref {
    /// The reference as a scope reads it: its whole text names a node when one has that name
    /// (`"model.12"`), else it is `node.output` as written. (No name is both: a node named
    /// `a.b` beside a node `a` is E0202.)
    pub fn scoped(&self, known: impl Fn(&str) -> bool) -> Ref {
        if self.sub.is_some() {
            let whole = self.to_string();
            if known(&whole) {
                return Ref {
                    node: whole,
                    sub: None,
                    span: self.span,
                };
            }
        }
        self.clone()
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sub {
            Some(s) => write!(f, "{}.{}", self.node, s),
            None => write!(f, "{}", self.node),
        }
    }
}

/// Extra pyramid levels after the top.
#[derive(Clone, Debug, PartialEq)]
pub enum Extra {
    /// None.
    None,
    /// torchvision `LastLevelMaxPool`: max_pool2d(k=1, s=2) of the top output.
    MaxPool,
    /// Two extra levels by stride-2 3×3 convs: P6 = conv(source), P7 = conv(P6), with a ReLU before it or not:
    /// torchvision `LastLevelP6P7` (source C5 or P5, ReLU) and mmdet `FPN`'s
    /// `add_extra_convs` (`on_input` / `on_lateral` / `on_output`, ReLU only with
    /// `relu_before_extra_convs`).
    P6P7 {
        /// What P6 is computed from.
        from: ExtraSource,
        /// A ReLU between P6 and P7 (default: torchvision's yes; with `names: mmdet`, no).
        relu: Option<bool>,
    },
    /// BiFPN levels made before the cells from the top input (`extra: {levels: n}`, effdet's
    /// `BiFpn.resample`): each a max pool 3×3/2 with TensorFlow `SAME` padding of the level
    /// below, after a 1×1 conv + batch norm where that level is not `width` wide.
    Levels(Int),
}

/// The source of P6 (`extra: {p6p7: {from: …}}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtraSource {
    /// The top backbone input (`c5`, `input`; mmdet `on_input`).
    Input,
    /// The top lateral, before smoothing (`lateral`; mmdet `on_lateral`).
    Lateral,
    /// The top pyramid output (`p5`, `output`; mmdet `on_output`).
    Output,
}

/// Which conv a generator uses for laterals or smoothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvKind {
    /// Plain conv with bias.
    Conv,
    /// Conv-norm-act (spec defaults).
    Cna,
    /// Nothing (smoothing only).
    None,
}

/// `fpn:` / `panet:` / `bifpn:` attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct PyramidArgs {
    /// Which generator.
    pub kind: PyramidKind,
    /// Backbone levels, lowest (finest) first.
    pub inputs: Vec<Ref>,
    /// Output level numbers (outputs are named `p<level>`, `n<level>` for panet).
    pub levels: Vec<i64>,
    /// Output channels.
    pub width: Int,
    /// Lateral conv kind.
    pub lateral: ConvKind,
    /// Smoothing conv kind.
    pub smooth: ConvKind,
    /// Top-down upsampling: `None` = match the lateral's size (torchvision), else a scale.
    pub upsample: Option<f64>,
    /// Merge by concat instead of add.
    pub concat: bool,
    /// Extra levels.
    pub extra: Extra,
    /// Module names as mmdet's `FPN` has them (`lateral_convs.i.conv`, `fpn_convs.i.conv`, extra
    /// convs `fpn_convs.<n>`…) instead of torchvision's (`names: mmdet`; fpn only).
    pub mmdet: bool,
    /// effdet's `BiFpn` (`names: effdet`; bifpn only): its module tree (`resample.<level>`,
    /// `cell.<r>.fnode.<k>.combine` / `.after_combine`), projections inside each cell-0
    /// combine where a level is not `width` wide, TensorFlow `SAME` max pools.
    pub effdet: bool,
    /// The batch norms' eps (default 1e-3 with `names: effdet`, as effdet's `norm_kwargs`;
    /// else 1e-5); bifpn only.
    pub bn_eps: Option<f64>,
    /// BiFPN repeats.
    pub repeats: Int,
    /// BiFPN fusion eps.
    pub eps: f64,
    /// Where the op is.
    pub span: Span,
}

/// The pyramid generators.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PyramidKind {
    /// Lin et al. top-down FPN (torchvision `FeaturePyramidNetwork`).
    Fpn,
    /// FPN plus a bottom-up path (PANet).
    Panet,
    /// Repeated weighted bidirectional FPN (EfficientDet).
    Bifpn,
}

/// An op: what a node or a sequence item does.
#[derive(Clone, Debug, PartialEq)]
pub enum OpExpr {
    /// A primitive op (one of [`crate::ops`]).
    Prim(crate::ops::Args),
    /// Conv-norm-act.
    Cna(CnaArgs),
    /// Sequence (`nn.Sequential`).
    Seq(Vec<Op>),
    /// `concat(x, seq(x))`.
    Skip(Vec<Op>),
    /// `x + seq(x)`.
    Residual(Vec<Op>),
    /// Instance of a named block with arguments.
    Call(Name, Vec<(Name, CallArg)>),
    /// Pyramid generator.
    Pyramid(Box<PyramidArgs>),
    /// The same body applied to each listed input, weights shared.
    Head(Vec<Ref>, Vec<Op>),
    /// `chunk: n` / `split: [a, b, …]` along the channels: one output per part (`.0`, `.1`, …).
    Split(SplitArgs),
    /// torchvision ResNet returning stem, c2..c5.
    ResNet {
        /// 18, 34 or 50.
        depth: Int,
        /// Base width (64 in torchvision).
        width: Int,
    },
}

/// An argument of a block instance: a number for a parameter, a reference for one of a
/// graph-shaped block's inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum CallArg {
    /// A parameter value.
    Int(Int),
    /// The node feeding a block input.
    Ref(Ref),
}

/// How a `chunk` / `split` divides the channels, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum SplitArgs {
    /// `chunk: n`: `n` equal parts (`x.chunk(n, 1)`).
    Chunks(Int),
    /// `split: [a, b, …]`: parts of these sizes (`x.split([a, b, …], 1)`).
    Sizes(Vec<Int>),
}

/// A spanned op.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// The op.
    pub expr: OpExpr,
    /// The op key's span.
    pub span: Span,
}

/// A named top-level node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDecl {
    /// Its name (also its `state_dict` prefix).
    pub name: Name,
    /// Explicit input; default: the previous node.
    pub from: Option<Ref>,
    /// `module:`: the `state_dict` prefix its weights load from (default: its name).
    pub module: Option<Name>,
    /// `repeat: n`: the op `n` times in a chain, steps `.0` … `.n-1` (weights under
    /// `<prefix>.<i>`).
    pub repeat: Option<Int>,
    /// What it does.
    pub op: Op,
}

/// A reusable block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDef {
    /// Block name (used as an op key).
    pub name: Name,
    /// Parameter names.
    pub params: Vec<Name>,
    /// The body.
    pub body: BlockBody,
}

/// What a block does.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockBody {
    /// `body: [op, …]`: a sequence on the instance's input.
    Seq(Vec<Op>),
    /// `inputs`, `nodes`, `outputs`: a small graph whose inputs the instance passes by reference.
    Graph(BlockGraph),
}

/// A graph-shaped block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockGraph {
    /// Input names (default `[x]`); the first defaults to the instance's `from` (or the
    /// previous node), the others are instance arguments (`{skip: p4}`).
    pub inputs: Vec<Name>,
    /// The nodes, read as the spec's own (`from`, `module`, `repeat`).
    pub nodes: Vec<NodeDecl>,
    /// The outputs: one makes a single-output instance, several are `inst.<name>`.
    pub outputs: Vec<OutputDecl>,
}

/// One input size: a number, a symbol, or arithmetic on a symbol (`H/8`, `2*H`).
#[derive(Clone, Debug, PartialEq)]
pub enum SizeDecl {
    /// Fixed.
    Fixed(i64),
    /// Symbolic.
    Sym(String),
    /// An expression over one symbol; `/` divides exactly (checked by lowering and sizes).
    Expr(IntExpr),
}

/// A named input `[C, H, W]`.
#[derive(Clone, Debug, PartialEq)]
pub struct InputDecl {
    /// Its name.
    pub name: Name,
    /// Channels (may be a spec parameter).
    pub channels: Int,
    /// Height and width.
    pub size: [(SizeDecl, Span); 2],
}

/// Bounds on a size symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct SymbolDecl {
    /// Symbol.
    pub name: Name,
    /// Smallest allowed.
    pub min: i64,
    /// Largest allowed.
    pub max: Option<i64>,
}

/// A named output.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputDecl {
    /// Field name in the generated outputs struct: the map key of `outputs: {field: node}`;
    /// for a list item, the reference's text (the field is derived from it at lowering:
    /// [`crate::lower::derived_field`]).
    pub name: Name,
    /// What it refers to.
    pub target: Ref,
    /// Whether the field is derived from the target (a list item) rather than written.
    pub derived: bool,
}

/// Per-spec defaults.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Defaults {
    /// `cna` norm.
    pub norm: Option<Norm>,
    /// `cna` activation.
    pub act: Option<Activation>,
    /// `cna` child names.
    pub names: Option<CnaNames>,
    /// Padding mode of every conv that does not say.
    pub padding_mode: Option<PaddingMode>,
}

/// A spec parameter (`params: {c64: make_divisible(64 * width, 8)}`) or one value of a scale
/// (`scales: {n: {width: 0.25}}`): a name and a number or expression.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// The parameter's name (an identifier).
    pub name: Name,
    /// Its value: a number or an expression over the parameters before it (integer or float).
    pub value: Int,
}

/// One scale of a family: values of some parameters (`n: {depth: 0.33, width: 0.25}`).
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleDecl {
    /// The scale's name (`n`).
    pub name: Name,
    /// The parameters it sets, in order (every scale sets the same ones).
    pub values: Vec<ParamDecl>,
}

/// A model family: its scales and the default one (`scale: n`, `scales: {…}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// The default scale (`scale: n`); reading reports its absence.
    pub default: Option<Name>,
    /// The scales, in order (at least one).
    pub scales: Vec<ScaleDecl>,
    /// The `scales` key.
    pub span: Span,
}

/// A whole spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Type name of the generated model.
    pub name: Name,
    /// Free text for the generated rustdoc.
    pub doc: Option<String>,
    /// Defaults.
    pub defaults: Defaults,
    /// Spec parameters (`params:`), in order.
    pub params: Vec<ParamDecl>,
    /// The `params` key, when there is one.
    pub params_span: Option<Span>,
    /// The scales of a model family (`scale:`, `scales:`).
    pub family: Option<Family>,
    /// Symbol bounds.
    pub symbols: Vec<SymbolDecl>,
    /// Blocks.
    pub blocks: Vec<BlockDef>,
    /// Inputs.
    pub inputs: Vec<InputDecl>,
    /// Nodes, in order.
    pub nodes: Vec<NodeDecl>,
    /// Outputs.
    pub outputs: Vec<OutputDecl>,
    /// Span of the whole spec.
    pub span: Span,
}

/// Keywords of the composites and presets (the primitive ops' come from [`crate::ops::keywords`]).
pub const COMPOSITE_KEYWORDS: &[&str] = &[
    "cna", "seq", "skip", "residual", "fpn", "panet", "bifpn", "head", "resnet", "chunk", "split",
];

/// Every op keyword (for "did you mean" and the check that blocks do not shadow ops).
pub fn op_keywords() -> Vec<&'static str> {
    let mut v = crate::ops::keywords();
    v.extend_from_slice(COMPOSITE_KEYWORDS);
    v
}

/// The keys of `defaults: {…}`.
pub(crate) const DEFAULTS_KEYS: &[&str] = &["cna", "padding_mode"];
/// The keys of a block definition that is a sequence.
pub(crate) const BLOCK_KEYS: &[&str] = &["params", "body"];
/// The keys of a graph-shaped block definition.
pub(crate) const GRAPH_BLOCK_KEYS: &[&str] = &["params", "inputs", "nodes", "outputs"];
/// The checkpoint naming schemes of `cna`'s `names`.
pub(crate) const CNA_NAMES: &[&str] = &["torchvision", "ultralytics", "mmdet"];

/// The top-level keys of a spec.
pub(crate) const TOP_KEYS: &[&str] = &[
    "name", "doc", "scale", "scales", "params", "defaults", "symbols", "blocks", "inputs", "nodes", "outputs",
];

/// Reads a spec from a value tree; all problems at once.
pub fn read(v: &Value) -> Result<Spec, Vec<Diagnostic>> {
    let mut r = Reader {
        diags: Vec::new(),
        blocks: Vec::new(),
        block_inputs: HashMap::new(),
    };
    // A failed read returns its proof of a report, so the list is never empty on failure.
    match r.spec(v) {
        Ok(s) if r.diags.is_empty() => Ok(s),
        _ => Err(r.diags),
    }
}

/// The closest candidate within edit distance 2 (or a prefix match), for "did you mean".
///
/// Cheap on big specs (issue 11 item 7): candidates whose length alone puts them out of reach
/// are skipped before any edit distance is computed, and when more than
/// [`MAX_SUGGEST_CANDIDATES`] remain only the prefix match is tried.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let max_d = 2.max(word.len() / 3);
    let chars = word.chars().count();
    // the edit distance is at least the difference in length in chars (a char is 1–4 bytes)
    let near: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|c| c.len().abs_diff(word.len()) <= max_d * 4 && c.chars().count().abs_diff(chars) <= max_d)
        .collect();
    (if near.len() <= MAX_SUGGEST_CANDIDATES {
        near
    } else {
        Vec::new()
    })
    .iter()
    .map(|c| (strsim::damerau_levenshtein(word, c), *c))
    .filter(|(d, c)| *d <= max_d && *d < c.len().max(word.len()))
    .min_by_key(|(d, _)| *d)
    .map(|(_, c)| c)
    .or_else(|| {
        // `convolution` → `conv`, `bn` → `batch_norm`-style long/short forms: a prefix of 3+ letters.
        candidates
            .iter()
            .filter(|c| c.len() >= 3 && word.len() >= 3 && (word.starts_with(**c) || c.starts_with(word)))
            .max_by_key(|c| c.len())
            .copied()
    })
}

/// Most candidates [`suggest`] computes an edit distance to.
pub const MAX_SUGGEST_CANDIDATES: usize = 2000;

pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match suggest(word, candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None => String::new(),
    }
}

/// Reads a value tree into the AST, collecting every problem (see [`read`]).
pub(crate) struct Reader {
    diags: Vec<Diagnostic>,
    blocks: Vec<String>,
    /// The input names of each graph-shaped block (its instances take these as references).
    pub(crate) block_inputs: HashMap<String, Vec<String>>,
}

/// A map being read: tracks which keys were used so the rest can be reported.
pub(crate) struct MapR<'a> {
    pub(crate) entries: &'a [(Key, Value)],
    pub(crate) used: Vec<bool>,
    pub(crate) span: Span,
}

impl<'a> MapR<'a> {
    pub(crate) fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The entry `key: value`, with the key's span.
    pub(crate) fn entry(&mut self, key: &str) -> Option<&'a (Key, Value)> {
        let i = self.entries.iter().position(|(k, _)| k.name == key)?;
        self.used[i] = true;
        Some(&self.entries[i])
    }
}

/// E0107: `what` has no op.
fn no_op(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(Code::E0107, span, format!("{what} has no op"))
        .with_label("needs an op")
        .with_help("add an op such as `conv: {out: 64, kernel: 1}`")
}

/// E0101: the key `k` of `what` is not one it takes.
pub(crate) fn unknown_key(k: &Key, what: &str, help: String) -> Diagnostic {
    Diagnostic::error(Code::E0101, k.span, format!("unknown key `{}` in {what}", k.name))
        .with_label("unknown key")
        .with_help(help)
}

/// Every result of reading a list (each item reports its own error): all values, or the proof
/// of the last failure.
pub(crate) fn collect_all<T>(results: impl IntoIterator<Item = Checked<T>>) -> Checked<Vec<T>> {
    let mut out = Vec::new();
    let mut failed = None;
    for r in results {
        match r {
            Ok(x) => out.push(x),
            Err(e) => failed = Some(e),
        }
    }
    failed.map_or(Ok(out), Err)
}

/// The input names a graph-shaped block declares (`inputs: [x, skip]`, default `[x]`), read
/// leniently: [`Reader::block_graph`] reports what is wrong with them.
fn block_input_names(block: &[(Key, Value)]) -> Vec<String> {
    match block.iter().find(|(k, _)| k.name == "inputs").map(|(_, v)| &v.kind) {
        Some(ValueKind::Seq(items)) => items
            .iter()
            .filter_map(|i| match &i.kind {
                ValueKind::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => vec!["x".to_string()],
    }
}

pub(crate) fn type_error(v: &Value, expected: &str, what: &str) -> Diagnostic {
    let found = match &v.kind {
        ValueKind::Float(f) => format!("the number {f}"),
        ValueKind::Int(i) => format!("the integer {i}"),
        ValueKind::Bool(b) => format!("`{b}`"),
        ValueKind::Str(s) if s.chars().count() <= 40 => format!("`{s}`"),
        _ => v.kind_name().to_string(),
    };
    Diagnostic::error(Code::E0102, v.span, format!("{what} must be {expected}, found {found}"))
        .with_label(format!("expected {expected}"))
        .with_help(format!(
            "write {what} as {expected}; docs/spec.md lists every key with its type"
        ))
}

impl Reader {
    /// Reports `d` where reading goes on past it (an item of a list is skipped).
    pub(crate) fn report(&mut self, d: Diagnostic) {
        let _ = self.err(d);
    }

    /// Reports E0202 at every item whose key an earlier item already has (the first one marked):
    /// for lists whose entries must be unique.
    pub(crate) fn report_repeats<K: Eq + std::hash::Hash>(
        &mut self,
        items: impl IntoIterator<Item = (K, Span)>,
        message: impl Fn(&K) -> String,
        help: &str,
    ) {
        let mut seen: std::collections::HashMap<K, Span> = std::collections::HashMap::new();
        for (k, span) in items {
            match seen.get(&k) {
                Some(&first) => self.report(crate::lower::duplicate(
                    span,
                    first,
                    message(&k),
                    ["second", "first"],
                    help,
                )),
                None => {
                    seen.insert(k, span);
                }
            }
        }
    }

    /// Reports `d`; the returned proof is the `Err` of a failed read.
    pub(crate) fn err(&mut self, d: Diagnostic) -> Reported {
        Reported::push(&mut self.diags, d)
    }

    pub(crate) fn map<'a>(&mut self, v: &'a Value, what: &str) -> Checked<MapR<'a>> {
        match &v.kind {
            ValueKind::Map(entries) => Ok(MapR {
                entries,
                used: vec![false; entries.len()],
                span: v.span,
            }),
            _ => Err(self.err(type_error(v, "a map", what).with_help(format!("write {what} as `key: value` pairs")))),
        }
    }

    /// Reports keys of `m` not read, with a suggestion from `allowed`.
    pub(crate) fn finish(&mut self, m: MapR<'_>, allowed: &[&str], what: &str) {
        for ((k, _), used) in m.entries.iter().zip(&m.used) {
            if !used {
                let dym = did_you_mean(&k.name, allowed.iter().copied());
                let help = if dym.is_empty() {
                    format!("{what} takes: {}", allowed.join(", "))
                } else {
                    dym
                };
                let _ = self.err(unknown_key(k, what, help));
            }
        }
    }

    pub(crate) fn require<'a>(&mut self, m: &mut MapR<'a>, key: &str, what: &str) -> Checked<&'a Value> {
        if let Some(v) = m.get(key) {
            return Ok(v);
        }
        // A misspelt key (`kernal`) is reported once, as unknown with "did you mean", not again
        // as missing (and not again by `finish`).
        let misspelt = m
            .entries
            .iter()
            .zip(&m.used)
            .position(|((k, _), u)| !u && suggest(&k.name, [key]).is_some());
        if let Some(i) = misspelt {
            m.used[i] = true;
            let k = &m.entries[i].0;
            return Err(self.err(unknown_key(k, what, format!("did you mean `{key}`?"))));
        }
        Err(self.err(
            Diagnostic::error(Code::E0103, m.span, format!("{what} is missing `{key}`"))
                .with_label(format!("needs `{key}`"))
                .with_help(format!("add `{key}: …` to {what}")),
        ))
    }

    /// A scalar of one kind, or an E0102 type error naming what was expected.
    fn scalar<T>(
        &mut self,
        v: &Value,
        expected: &str,
        what: &str,
        get: impl FnOnce(&ValueKind) -> Option<T>,
    ) -> Checked<T> {
        get(&v.kind).ok_or_else(|| self.err(type_error(v, expected, what)))
    }

    pub(crate) fn name(&mut self, v: &Value, what: &str) -> Checked<Name> {
        self.scalar(v, "a name", what, |k| match k {
            ValueKind::Str(s) => Some(Name {
                text: s.clone(),
                span: v.span,
            }),
            _ => None,
        })
    }

    pub(crate) fn int_lit(&mut self, v: &Value, what: &str) -> Checked<i64> {
        self.scalar(v, "an integer", what, |k| match k {
            ValueKind::Int(i) => Some(*i),
            _ => None,
        })
    }

    pub(crate) fn float(&mut self, v: &Value, what: &str) -> Checked<f64> {
        self.scalar(v, "a number", what, |k| match k {
            ValueKind::Int(i) => Some(*i as f64),
            ValueKind::Float(f) => Some(*f),
            _ => None,
        })
    }

    pub(crate) fn boolean(&mut self, v: &Value, what: &str) -> Checked<bool> {
        self.scalar(v, "true or false", what, |k| match k {
            ValueKind::Bool(b) => Some(*b),
            _ => None,
        })
    }

    /// An integer attribute: an integer, or an expression (`2*cout`,
    /// `make_divisible(c * width, 8)`) evaluated at lowering, which must give an integer.
    pub(crate) fn int(&mut self, v: &Value, what: &str) -> Checked<Int> {
        match &v.kind {
            ValueKind::Int(i) => Ok(Int::lit(*i, v.span)),
            ValueKind::Str(s) => self.expr(v, s, "an integer or an integer expression", what),
            _ => Err(self.err(type_error(v, "an integer", what))),
        }
    }

    /// A number that may be a float: a block argument or a spec parameter (an integer, a float,
    /// or an expression).
    pub(crate) fn number(&mut self, v: &Value, what: &str) -> Checked<Int> {
        match &v.kind {
            ValueKind::Float(f) => Ok(Int {
                expr: IntExpr::Float(*f),
                span: v.span,
            }),
            ValueKind::Str(s) => self.expr(v, s, "a number or an expression", what),
            _ => self.int(v, what),
        }
    }

    /// The expression `s` (the text of `v`), or E0102 saying why it is not one.
    fn expr(&mut self, v: &Value, s: &str, expected: &str, what: &str) -> Checked<Int> {
        match crate::expr::parse(s) {
            Ok(expr) => Ok(Int { expr, span: v.span }),
            Err(why) => {
                // YAML ends a plain value at the `,` of a flow map: `{out: min(a, b)}` reads `min(a`
                let cut = s.matches('(').count() > s.matches(')').count();
                let help = if cut {
                    "inside `{…}` or `[…]` YAML ends a value at a comma: quote an expression with one, \
                     `{out: \"min(a, b)\"}`, or write it in block style (`out: min(a, b)` on its own line)"
                } else {
                    "write a number, a parameter (`cout`), arithmetic like `2*cout`, or a rounding function: \
                     `make_divisible(c * width, 8)`, `round`, `ceil`, `floor`, `min`, `max` (docs/spec.md)"
                };
                Err(self.err(type_error(v, expected, what).with_label(why).with_help(help)))
            }
        }
    }

    pub(crate) fn pair(&mut self, v: &Value, what: &str) -> Checked<Pair> {
        match &v.kind {
            ValueKind::Seq(items) if items.len() == 2 => Ok(Pair {
                h: self.int(&items[0], what)?,
                w: self.int(&items[1], what)?,
            }),
            ValueKind::Seq(_) => Err(self.err(type_error(v, "a number or a pair `[h, w]`", what))),
            _ => {
                let i = self.int(v, what)?;
                Ok(Pair { h: i.clone(), w: i })
            }
        }
    }

    pub(crate) fn pair_or(&mut self, m: &mut MapR<'_>, key: &str, default: i64, what: &str) -> Checked<Pair> {
        match m.get(key) {
            Some(v) => self.pair(v, &format!("`{key}` of {what}")),
            None => Ok(Pair {
                h: Int::lit(default, m.span),
                w: Int::lit(default, m.span),
            }),
        }
    }

    pub(crate) fn reference(&mut self, v: &Value, what: &str) -> Checked<Ref> {
        let n = self.name(v, what)?;
        parse_ref(&n.text, n.span).ok_or_else(|| {
            self.err(
                Diagnostic::error(
                    Code::E0104,
                    n.span,
                    format!("`{}` is not a node reference", n.text.escape_debug()),
                )
                .with_label(format!(
                    "{}: expected `name` or `name.output`",
                    name_problem(&n.text).unwrap_or("not a name")
                ))
                .with_help("refer to a node by its name, or to one output of a pyramid as `neck.p3`"),
            )
        })
    }

    pub(crate) fn refs(&mut self, v: &Value, what: &str) -> Checked<Vec<Ref>> {
        match &v.kind {
            ValueKind::Seq(items) => {
                let all: Vec<_> = items.iter().map(|i| self.reference(i, what)).collect();
                collect_all(all)
            }
            _ => Ok(vec![self.reference(v, what)?]),
        }
    }

    fn spec(&mut self, v: &Value) -> Checked<Spec> {
        let mut m = self.map(v, "the spec")?;
        let name = self
            .require(&mut m, "name", "the spec")
            .and_then(|v| self.name(v, "`name`"));
        let doc = m
            .get("doc")
            .map(|d| match &d.kind {
                ValueKind::Str(s) => Ok(s.clone()),
                _ => Err(self.err(type_error(d, "text", "`doc`"))),
            })
            .transpose();
        let params_entry = m.entry("params");
        let params = params_entry.map(|(_, p)| self.params(p)).unwrap_or_default();
        let (scale, scales) = (m.entry("scale"), m.entry("scales"));
        let family = self.family(scale, scales, &params);
        let defaults = m.get("defaults").map(|d| self.defaults(d)).unwrap_or_default();
        let symbols = m.get("symbols").map(|s| self.symbols(s)).unwrap_or_default();
        // Block names first, so nodes can call blocks declared in any order.
        let block_v = m.get("blocks");
        if let Some(ValueKind::Map(entries)) = block_v.map(|b| &b.kind) {
            self.blocks = entries.iter().map(|(k, _)| k.name.clone()).collect();
            // and each graph-shaped block's input names, so its instances read them as references
            for (k, b) in entries {
                if let ValueKind::Map(bm) = &b.kind {
                    if bm.iter().any(|(bk, _)| bk.name == "nodes") {
                        self.block_inputs.insert(k.name.clone(), block_input_names(bm));
                    }
                }
            }
        }
        let blocks = block_v.map(|b| self.blocks(b)).unwrap_or_default();
        let inputs = self
            .require(&mut m, "inputs", "the spec")
            .map(|i| self.inputs(i))
            .unwrap_or_default();
        let nodes = self
            .require(&mut m, "nodes", "the spec")
            .map(|n| self.nodes(n))
            .unwrap_or_default();
        let outputs = self
            .require(&mut m, "outputs", "the spec")
            .map(|o| self.outputs(o))
            .unwrap_or_default();
        self.finish(m, TOP_KEYS, "the spec");
        Ok(Spec {
            name: name?,
            doc: doc?,
            defaults,
            params,
            params_span: params_entry.map(|(k, _)| k.span),
            family,
            symbols,
            blocks,
            inputs,
            nodes,
            outputs,
            span: v.span,
        })
    }

    fn defaults(&mut self, v: &Value) -> Defaults {
        let mut d = Defaults::default();
        let Ok(mut m) = self.map(v, "`defaults`") else {
            return d;
        };
        if let Some(c) = m.get("cna") {
            if let Ok(mut cm) = self.map(c, "`defaults.cna`") {
                d.norm = cm.get("norm").and_then(|n| self.norm(n).ok());
                d.act = cm.get("act").and_then(|a| crate::ops::act::read_value(self, a).ok());
                d.names = cm.get("names").and_then(|n| self.cna_names(n).ok());
                self.finish(cm, crate::composite::CNA_KEYS, "`defaults.cna`");
            }
        }
        d.padding_mode = m
            .get("padding_mode")
            .and_then(|p| crate::ops::conv::read_padding_mode(self, p).ok());
        self.finish(m, DEFAULTS_KEYS, "`defaults`");
        d
    }

    fn symbols(&mut self, v: &Value) -> Vec<SymbolDecl> {
        let Ok(m) = self.map(v, "`symbols`") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in m.entries {
            let name = Name {
                text: k.name.clone(),
                span: k.span,
            };
            let range = match &val.kind {
                ValueKind::Str(s) => parse_range(s),
                ValueKind::Int(i) if *i >= 1 => Some((*i, None)),
                _ => None,
            };
            match range {
                Some((min, max)) if min >= 1 && max.is_none_or(|mx| mx >= min) => {
                    out.push(SymbolDecl { name, min, max })
                }
                _ => self.report(
                    type_error(
                        val,
                        "a range `MIN..MAX` or `MIN..`",
                        &format!("the bounds of `{}`", k.name),
                    )
                    .with_help("e.g. `H: 32..2048` (sizes are at least 1)"),
                ),
            }
        }
        out
    }

    fn blocks(&mut self, v: &Value) -> Vec<BlockDef> {
        let Ok(m) = self.map(v, "`blocks`") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, bv) in m.entries {
            let what = format!("block `{}`", k.name);
            let Ok(mut bm) = self.map(bv, &what) else { continue };
            let params = match bm.get("params") {
                Some(p) => self.name_list(p, "parameter", "a list of names", "`params`", false),
                None => Vec::new(),
            };
            let body = if bm.entries.iter().any(|(bk, _)| bk.name == "nodes") {
                BlockBody::Graph(self.block_graph(&mut bm, &what))
            } else {
                BlockBody::Seq(
                    self.require(&mut bm, "body", &what)
                        .and_then(|b| self.seq_items(b, &what))
                        .unwrap_or_default(),
                )
            };
            let keys = match body {
                BlockBody::Seq(_) => BLOCK_KEYS,
                BlockBody::Graph(_) => GRAPH_BLOCK_KEYS,
            };
            self.finish(bm, keys, &what);
            out.push(BlockDef {
                name: Name {
                    text: k.name.clone(),
                    span: k.span,
                },
                params,
                body,
            });
        }
        out
    }

    /// A block's list of distinct names (`params: [c, n]`, `inputs: [x, skip]`): each a name
    /// ("a block {one}"), none twice; anything else (an empty list too when `nonempty`) is a
    /// type error expecting `expected` in `key`.
    fn name_list(&mut self, v: &Value, one: &str, expected: &str, key: &str, nonempty: bool) -> Vec<Name> {
        match &v.kind {
            ValueKind::Seq(items) if !(nonempty && items.is_empty()) => {
                let names: Vec<Name> = items
                    .iter()
                    .filter_map(|i| self.name(i, &format!("a block {one}")).ok())
                    .collect();
                self.report_repeats(
                    names.iter().map(|n| (n.text.as_str(), n.span)),
                    |n| format!("block {one} `{n}` is declared twice"),
                    &format!("give each {one} its own name"),
                );
                names
            }
            _ => {
                self.report(type_error(v, expected, key));
                Vec::new()
            }
        }
    }

    /// A graph-shaped block's `inputs` (default `[x]`), `nodes` and `outputs`.
    fn block_graph(&mut self, bm: &mut MapR<'_>, what: &str) -> BlockGraph {
        let inputs = match bm.get("inputs") {
            None => vec![Name {
                text: "x".to_string(),
                span: bm.span,
            }],
            Some(v) => self.name_list(v, "input", "a list of input names like `[x, skip]`", "`inputs`", true),
        };
        let nodes = self
            .require(bm, "nodes", what)
            .map(|n| self.nodes(n))
            .unwrap_or_default();
        let outputs = match self.require(bm, "outputs", what) {
            Ok(o) => {
                let outs = self.outputs(o);
                if outs.is_empty() && matches!(&o.kind, ValueKind::Seq(v) if v.is_empty()) {
                    self.report(
                        Diagnostic::error(Code::E0211, o.span, format!("{what} has no outputs"))
                            .with_label("empty")
                            .with_help("list the nodes an instance returns: `outputs: [out]`"),
                    );
                }
                outs
            }
            Err(_) => Vec::new(),
        };
        BlockGraph { inputs, nodes, outputs }
    }

    fn inputs(&mut self, v: &Value) -> Vec<InputDecl> {
        let Ok(m) = self.map(v, "`inputs`") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, iv) in m.entries {
            let what = format!("input `{}`", k.name);
            let help = "write an input as `[C, H, W]`, e.g. `[3, 224, 224]` or `[3, H, W]`";
            let ValueKind::Seq(items) = &iv.kind else {
                self.report(type_error(iv, "`[C, H, W]`", &what).with_help(help));
                continue;
            };
            if items.len() != 3 {
                self.report(
                    Diagnostic::error(
                        Code::E0105,
                        iv.span,
                        format!("{what} has {} sizes, expected 3", items.len()),
                    )
                    .with_label("expected `[C, H, W]`")
                    .with_help(format!("{help}; the batch size is always dynamic")),
                );
                continue;
            }
            let c = self.int(&items[0], &format!("the channels of {what}"));
            let mut size = Vec::new();
            for it in &items[1..] {
                match &it.kind {
                    ValueKind::Int(i) => size.push((SizeDecl::Fixed(*i), it.span)),
                    ValueKind::Str(s) if is_ident(s) => size.push((SizeDecl::Sym(s.clone()), it.span)),
                    ValueKind::Str(s) if crate::expr::parse(s).is_ok() => {
                        if let Ok(e) = crate::expr::parse(s) {
                            size.push((SizeDecl::Expr(e), it.span));
                        }
                    }
                    _ => self.report(
                        type_error(it, "a size, a symbol like `H`, or arithmetic like `H/8`", &what)
                            .with_help(format!("{help}; `H/8`, `2*H` and `H-1` are sizes too")),
                    ),
                }
            }
            if let (Ok(c), Ok([h, w])) = (c, <[_; 2]>::try_from(size)) {
                out.push(InputDecl {
                    name: Name {
                        text: k.name.clone(),
                        span: k.span,
                    },
                    channels: c,
                    size: [h, w],
                });
            }
        }
        out
    }

    fn outputs(&mut self, v: &Value) -> Vec<OutputDecl> {
        match &v.kind {
            ValueKind::Seq(items) => items
                .iter()
                .filter_map(|i| {
                    let r = self.reference(i, "an output").ok()?;
                    Some(OutputDecl {
                        name: Name {
                            text: r.to_string(),
                            span: r.span,
                        },
                        target: r,
                        derived: true,
                    })
                })
                .collect(),
            ValueKind::Map(entries) => entries
                .iter()
                .filter_map(|(k, t)| {
                    let target = self.reference(t, "an output").ok()?;
                    Some(OutputDecl {
                        name: Name {
                            text: k.name.clone(),
                            span: k.span,
                        },
                        target,
                        derived: false,
                    })
                })
                .collect(),
            _ => {
                self.report(type_error(
                    v,
                    "a list of node names or a map `field: node`",
                    "`outputs`",
                ));
                Vec::new()
            }
        }
    }

    fn nodes(&mut self, v: &Value) -> Vec<NodeDecl> {
        let Ok(m) = self.map(v, "`nodes`") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, nv) in m.entries {
            let name = Name {
                text: k.name.clone(),
                span: k.span,
            };
            if let Some(why) = name_problem(&k.name) {
                self.report(
                    Diagnostic::error(
                        Code::E0243,
                        k.span,
                        format!("`{}` cannot be a node's name: {why}", k.name.escape_debug()),
                    )
                    .with_label("not a usable name")
                    .with_help(format!(
                        "a node's name is any text of 1 to {MAX_NAME_CHARS} characters without control characters or \
                         empty parts between dots: `p3`, `\"model.12\"`, `\"P3/out\"`"
                    )),
                );
                continue;
            }
            let what = format!("node `{}`", k.name);
            let (from, module, repeat, op) = match &nv.kind {
                ValueKind::Map(_) => {
                    let Ok(mut nm) = self.map(nv, &what) else { continue };
                    let from = nm.get("from").and_then(|f| self.reference(f, "`from`").ok());
                    let module = nm.get("module").and_then(|p| self.module_path(p).ok());
                    let repeat = nm.get("repeat").and_then(|r| self.int(r, "`repeat`").ok());
                    let op = self.op_in_map(&mut nm, &what);
                    (from, module, repeat, op)
                }
                ValueKind::Str(_) => (None, None, None, self.op_item(nv, &what)),
                _ => {
                    self.report(type_error(nv, "an op like `{conv: {...}}`", &what));
                    continue;
                }
            };
            if let Ok(op) = op {
                out.push(NodeDecl {
                    name,
                    from,
                    module,
                    repeat,
                    op,
                });
            }
        }
        out
    }

    /// The single op key of a node map (besides `from`), reporting the rest.
    fn op_in_map(&mut self, m: &mut MapR<'_>, what: &str) -> Checked<Op> {
        let mut found: Option<Checked<Op>> = None;
        for i in 0..m.entries.len() {
            if m.used[i] {
                continue;
            }
            let (k, v) = &m.entries[i];
            if !self.is_op_key(&k.name) {
                continue;
            }
            m.used[i] = true;
            if found.is_some() {
                self.report(
                    Diagnostic::error(Code::E0106, k.span, format!("{what} has more than one op"))
                        .with_label("second op")
                        .with_help("give each op its own node, or chain them with `seq: [...]`"),
                );
                continue;
            }
            found = Some(self.op(k, v));
        }
        let has_op = found.is_some() || m.entries.iter().any(|(k, _)| self.is_op_key(&k.name));
        let mut allowed: Vec<&str> = op_keywords();
        allowed.extend(["from", "module", "repeat"]);
        let blocks = self.blocks.clone();
        allowed.extend(blocks.iter().map(String::as_str));
        if !has_op {
            let unknown = m
                .entries
                .iter()
                .zip(&m.used)
                .find(|(_, u)| !**u)
                .map(|((k, _), _)| k.clone());
            return Err(match unknown {
                Some(k) => {
                    m.used.iter_mut().for_each(|u| *u = true);
                    let dym = did_you_mean(&k.name, allowed.iter().copied());
                    self.err(
                        Diagnostic::error(Code::E0107, k.span, format!("unknown op `{}` in {what}", k.name))
                            .with_label("not an op or a block")
                            .with_help(if dym.is_empty() {
                                format!("ops are: {}", op_keywords().join(", "))
                            } else {
                                dym
                            }),
                    )
                }
                None => self.err(no_op(m.span, what)),
            });
        }
        self.finish(
            MapR {
                entries: m.entries,
                used: m.used.clone(),
                span: m.span,
            },
            &allowed,
            what,
        );
        m.used.iter_mut().for_each(|u| *u = true);
        found.unwrap_or_else(|| Err(self.err(no_op(m.span, what))))
    }

    fn is_op_key(&self, k: &str) -> bool {
        op_keywords().contains(&k) || self.blocks.iter().any(|b| b == k)
    }

    /// A sequence item: a bare op name (`tanh`) or a one-key map (`{conv: {...}}`).
    fn op_item(&mut self, v: &Value, what: &str) -> Checked<Op> {
        match &v.kind {
            ValueKind::Str(s) => {
                let key = Key {
                    name: s.clone(),
                    span: v.span,
                };
                if !self.is_op_key(s) {
                    let blocks = self.blocks.clone();
                    let dym = did_you_mean(s, op_keywords().into_iter().chain(blocks.iter().map(String::as_str)));
                    return Err(self.err(
                        Diagnostic::error(Code::E0107, v.span, format!("unknown op `{s}` in {what}"))
                            .with_label("not an op or a block")
                            .with_help(if dym.is_empty() {
                                format!("ops are: {}", op_keywords().join(", "))
                            } else {
                                dym
                            }),
                    ));
                }
                self.op(
                    &key,
                    &Value {
                        kind: ValueKind::Null,
                        span: v.span,
                    },
                )
            }
            ValueKind::Map(_) => {
                let mut m = self.map(v, what)?;
                self.op_in_map(&mut m, what)
            }
            _ => Err(self.err(type_error(v, "an op like `tanh` or `{conv: {...}}`", what))),
        }
    }

    pub(crate) fn seq_items(&mut self, v: &Value, what: &str) -> Checked<Vec<Op>> {
        match &v.kind {
            ValueKind::Seq(items) => {
                let all: Vec<_> = items.iter().map(|i| self.op_item(i, what)).collect();
                collect_all(all)
            }
            _ => Err(self.err(type_error(v, "a list of ops", what))),
        }
    }

    fn op(&mut self, k: &Key, v: &Value) -> Checked<Op> {
        let span = k.span;
        if let Some(args) = crate::ops::read(self, k, v) {
            return Ok(Op {
                expr: OpExpr::Prim(args?),
                span,
            });
        }
        let expr = self.composite(k, v)?;
        Ok(Op { expr, span })
    }

    /// `names: torchvision | ultralytics | mmdet` of a `cna` (E0114 for another).
    pub(crate) fn cna_names(&mut self, v: &Value) -> Checked<CnaNames> {
        let n = self.name(v, "`names`")?;
        const ALL: &[&str] = CNA_NAMES;
        Ok(match n.text.as_str() {
            "torchvision" => CnaNames::Torchvision,
            "ultralytics" | "mmdet" => CnaNames::Ultralytics,
            other => {
                let dym = did_you_mean(other, ALL.iter().copied());
                return Err(self.err(
                    Diagnostic::error(Code::E0114, n.span, format!("unknown `cna` naming `{other}`"))
                        .with_label("not a naming convention")
                        .with_help(if dym.is_empty() {
                            "use `torchvision` (conv `.0`, norm `.1`), `ultralytics` or `mmdet` (conv `.conv`, norm `.bn`)"
                                .to_string()
                        } else {
                            dym
                        }),
                ));
            }
        })
    }

    /// `module: model.4.cv1`: a `state_dict` prefix, dot-separated identifiers or numbers, or
    /// `''` for the root (E0232 for anything else).
    pub(crate) fn module_path(&mut self, v: &Value) -> Checked<Name> {
        let n = match &v.kind {
            // `module: 12` (a top-level `nn.Sequential` child)
            ValueKind::Int(i) if *i >= 0 => Name {
                text: i.to_string(),
                span: v.span,
            },
            _ => self.name(v, "`module`")?,
        };
        // `module: ''`: the root, a generator's or block's parts named as the module's own
        // `state_dict()` (a single op with weights is refused at lowering, E0232)
        if n.text.is_empty() {
            return Ok(n);
        }
        let bad = n.text.split('.').find(|part| !is_path_part(part));
        if let Some(part) = bad {
            let what = if part.is_empty() {
                "an empty part".to_string()
            } else {
                format!("`{}`", part.escape_debug())
            };
            return Err(self.err(
                Diagnostic::error(
                    Code::E0232,
                    n.span,
                    format!("`module: {}` is not a `state_dict` path", n.text.escape_debug()),
                )
                .with_label(format!("{what} is not an identifier or a number"))
                .with_help(
                    "write the module's path as its `state_dict` keys start, dot-separated identifiers or numbers: `module: model.4.cv1`",
                ),
            ));
        }
        Ok(n)
    }

    pub(crate) fn norm(&mut self, v: &Value) -> Checked<Norm> {
        match &v.kind {
            ValueKind::Str(s) if s == "batch_norm" => Ok(Norm::BatchNorm(1e-5)),
            ValueKind::Str(s) if s == "none" => Ok(Norm::None),
            ValueKind::Null => Ok(Norm::None),
            ValueKind::Map(entries) if entries.iter().any(|(k, _)| k.name == "group_norm") => {
                let mut m = self.map(v, "`norm`")?;
                let gv = self.require(&mut m, "group_norm", "`norm`")?;
                let mut gm = self.map(gv, "`group_norm`")?;
                let groups = self
                    .require(&mut gm, "groups", "`group_norm`")
                    .and_then(|g| self.int(g, "`groups`"));
                let eps = match gm.get("eps") {
                    Some(e) => self.float(e, "`eps`"),
                    None => Ok(1e-5),
                };
                self.finish(gm, &["groups", "eps"], "`group_norm`");
                self.finish(m, &["group_norm"], "`norm`");
                Ok(Norm::GroupNorm {
                    groups: groups?,
                    eps: eps?,
                })
            }
            ValueKind::Map(_) => {
                let mut m = self.map(v, "`norm`")?;
                let bn = self.require(&mut m, "batch_norm", "`norm`")?;
                let mut eps = 1e-5;
                if !matches!(bn.kind, ValueKind::Null) {
                    let mut bm = self.map(bn, "`batch_norm`")?;
                    if let Some(e) = bm.get("eps") {
                        eps = self.float(e, "`eps`")?;
                    }
                    self.finish(bm, &["eps"], "`batch_norm`");
                }
                self.finish(m, &["batch_norm"], "`norm`");
                Ok(Norm::BatchNorm(eps))
            }
            _ => {
                let dym = match &v.kind {
                    ValueKind::Str(s) => did_you_mean(s, ["batch_norm", "group_norm", "none"]),
                    _ => String::new(),
                };
                Err(self.err(
                    type_error(v, "`batch_norm` or `none`", "`norm`").with_help(if dym.is_empty() {
                        "norms are: batch_norm, {group_norm: {groups: G}}, none".to_string()
                    } else {
                        dym
                    }),
                ))
            }
        }
    }
}

/// Whether `s` is one part of a `state_dict` path: an identifier or a number (at most 9 digits).
fn is_path_part(s: &str) -> bool {
    is_ident(s) || (!s.is_empty() && s.len() <= 9 && s.chars().all(|c| c.is_ascii_digit()))
}

/// Whether `s` is a `state_dict` path (`model.4.cv1`): dot-separated identifiers or numbers, as
/// `module:` takes and as a node's name must be to be its weights' prefix.
pub fn is_module_path(s: &str) -> bool {
    s.split('.').all(is_path_part)
}

/// Whether `s` is an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Longest node name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Why `s` cannot be a node's name or a reference (`None` when it can): node names are any
/// text of 1 to [`MAX_NAME_CHARS`] characters without control characters and without an empty
/// part between dots (`x.`, `.x`, `a..b`), so that `name.output` stays readable.
pub fn name_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("it is empty")
    } else if s.chars().count() > MAX_NAME_CHARS {
        Some("it is longer than 100 characters")
    } else if s.chars().any(char::is_control) {
        Some("it has a control character")
    } else if s.split('.').any(str::is_empty) {
        Some("it has an empty part between dots")
    } else {
        None
    }
}

/// `name` or `name.output`: split at the last dot when what follows can be an output (`neck.p3`,
/// `y.0`); a node whose whole name has dots (`"model.12"`) is recognised at lowering
/// ([`Ref::scoped`]). `None` for a text no node can be named ([`name_problem`]).
fn parse_ref(s: &str, span: Span) -> Option<Ref> {
    if name_problem(s).is_some() {
        return None;
    }
    let (node, sub) = match s.rsplit_once('.') {
        Some((n, sub)) if sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => (n, Some(sub)),
        _ => (s, None),
    };
    Some(Ref {
        node: node.to_string(),
        sub: sub.map(str::to_string),
        span,
    })
}

fn parse_range(s: &str) -> Option<(i64, Option<i64>)> {
    let (a, b) = s.split_once("..")?;
    let min = a.trim().parse().ok()?;
    let b = b.trim().trim_start_matches('=');
    let max = if b.is_empty() { None } else { Some(b.parse().ok()?) };
    Some((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_pick_the_nearest_key() {
        assert_eq!(
            suggest("kernal", crate::ops::conv::CONV_KEYS.iter().copied()),
            Some("kernel")
        );
        assert_eq!(
            suggest("paddin_mode", crate::ops::conv::CONV_KEYS.iter().copied()),
            Some("padding_mode")
        );
        assert_eq!(suggest("zzzzzz", crate::ops::conv::CONV_KEYS.iter().copied()), None);
        assert_eq!(suggest("convolution", op_keywords().into_iter()), Some("conv"));
    }
}
