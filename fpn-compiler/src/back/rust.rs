//! The Rust back end: one self-contained module of Rust source per spec, calling `fpn-runtime`.
//!
//! The module holds `pub struct <Name>` (the parameters: one prepared `fpn_runtime::Conv2d` per
//! conv prefix, built at load with its batch norm folded in, so weight-only work such as the
//! Winograd transform happens once), `<Name>Inputs<'a>` / `<Name>Outputs`, and `impl <Name>`
//! with `PARAMS`, `init`, `from_weights`, `from_safetensors`, `from_safetensors_bytes`,
//! `forward` and the private `check_sizes` (every size rule of the spec, checked before any op
//! runs). `from_weights` builds convs with `Conv2d::new(..)?`; `init` must stay infallible and
//! the generated code has no `expect`, so it uses `Conv2d::new_deferred`, which cannot fail (a
//! bad shape would surface as an error from `forward`; the analysis has checked them all).
//!
//! Invariants:
//! - only ASCII alphanumerics and `_` ever reach an [`Ident`]: names that do not map to a valid
//!   identifier make [`generate`] fail; every other user text (docs, tensor names, messages)
//!   is emitted as a string literal, never spliced into code or a format string;
//! - the generated code contains no `unwrap`/`expect`/`panic!`, no top-level `use` and no helper
//!   outside `impl <Name>`, so two models can live in one module;
//! - output is deterministic: same graph and analysis, same bytes.
//!
//! Optimisations in `forward`: batch norm folded into the preceding conv when the conv feeds
//! only that norm (for a shared conv prefix: when every use is followed by the same norm), an
//! activation fused into the conv epilogue when the conv (or folded norm) has that activation as
//! its only consumer, unfused activations and norms run in place on a dying operand, adds
//! accumulate into a dying operand, and every intermediate is dropped right after its last use.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use fpn_runtime::{Activation, Conv2dParams};
use petgraph::graph::NodeIndex;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

use super::split;
use crate::dim::{Dim, SolveStep};
use crate::infer::Analysis;
use crate::ir::{Conv, Graph, Node, Op};
use crate::ops::{Field, FieldCx, FieldKind, InitKind};

/// Code generation options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Path of the runtime crate in the generated code: `fpn_runtime` (default) or
    /// `::fpn::runtime` for code expanded through the facade.
    pub runtime_path: String,
    /// Keep feature maps in the blocked channel layout NCHW16c between the ops that have
    /// blocked forms (`Gen::plan_layout`); `false` by default: on the Intel Xeon measured it is
    /// even to 10% faster (docs/bench.md), but on CPUs without AVX-512 1.3–1.4× slower, no AMD
    /// machine has run it, and the layout is fixed here while the CPU is only known where the
    /// code runs. The outputs, and the inputs of ops without a blocked
    /// form, are reordered to NCHW; the values are the same up to the order of the convs' sums.
    pub blocked: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runtime_path: "fpn_runtime".to_string(),
            blocked: false,
        }
    }
}

/// Why [`generate`] refused a graph.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// A name that must become a Rust identifier does not map to one.
    #[error("{what} `{name}` does not map to a Rust identifier: {reason}")]
    BadName {
        /// What the name is (`parameter`, `input`, `output`, `model name`).
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// Two names map to the same Rust identifier.
    #[error("{what} `{a}` and `{b}` both map to the Rust identifier `{ident}`")]
    Collision {
        /// What the names are.
        what: &'static str,
        /// First name.
        a: String,
        /// Second name.
        b: String,
        /// The shared identifier.
        ident: String,
    },
    /// The graph uses something this back end cannot express.
    #[error("cannot generate code: {0}")]
    Unsupported(String),
    /// The runtime path option is not a Rust path.
    #[error("runtime path `{0}` is not a Rust path")]
    RuntimePath(String),
    /// Internal error: the emitted tokens do not parse as a file.
    #[error("internal error: the generated code does not parse: {0}")]
    Parse(String),
}

/// Result of code generation.
pub type GResult<T> = Result<T, GenError>;

/// The model field of each parameter prefix.
pub(crate) type FieldMap = HashMap<String, (Ident, FieldKind)>;

/// A spec's `doc:` text as doc-comment lines that rustdoc shows but never runs.
///
/// The text is put in a `text` code block whose fence is longer than any backtick run in it, so
/// a fence, an indented block or anything else inside cannot close it or become a doctest.
/// Control characters are dropped and text-direction code points (U+202A–U+202E,
/// U+2066–U+2069, U+200E, U+200F, U+061C, which rustc refuses in source) are written as
/// `<U+XXXX>`.
pub(crate) fn inert_doc(text: &str) -> Vec<String> {
    let lines: Vec<String> = text.lines().map(inert_line).collect();
    let longest = lines.iter().map(|l| longest_backticks(l)).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut out = Vec::with_capacity(lines.len() + 2);
    out.push(format!("{fence}text"));
    out.extend(lines);
    out.push(fence);
    out
}

/// Generates the Rust module for `g` (see the module docs), formatted with `prettyplease`.
pub fn generate(g: &Graph, a: &Analysis, opts: &Options) -> GResult<String> {
    let tokens = Gen::new(g, a, opts)?.file()?;
    let file = syn::parse2::<syn::File>(tokens).map_err(|e| GenError::Parse(e.to_string()))?;
    let body = prettyplease::unparse(&file);
    Ok(format!(
        "// Generated by fpn from the spec `{}`. Do not edit.\n\n{body}",
        g.name
    ))
}

/// `line` without control characters, its text-direction code points (which rustc refuses in
/// source, literals included) written as `<U+XXXX>`.
fn inert_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}') {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// The longest run of backticks in `s`.
fn longest_backticks(s: &str) -> usize {
    let mut run = 0;
    let mut longest = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// A name (any text: a node's) as an inline code span of rustdoc that nothing in it can end
/// or turn into a link: made inert as [`inert_doc`]'s lines, between backtick runs longer than
/// any inside (padded with spaces, as Markdown strips one from each end).
pub(crate) fn inert_code(name: &str) -> String {
    let text = inert_line(name);
    let ticks = "`".repeat(longest_backticks(&text) + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("{ticks}{text}{ticks}")
    }
}

/// Checks that `s` (already mapped) is a plain ASCII identifier and makes it an [`Ident`].
fn ident(s: &str, what: &'static str, original: &str) -> GResult<Ident> {
    let bad = |reason: &str| GenError::BadName {
        what,
        name: original.to_string(),
        reason: reason.to_string(),
    };
    let mut chars = s.chars();
    match chars.next() {
        None => return Err(bad("it is empty")),
        Some(c) if c.is_ascii_digit() => return Err(bad("it starts with a digit")),
        _ => {}
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad("only ASCII letters, digits, `_` and `.` are allowed"));
    }
    if s == "_" {
        return Err(bad("`_` is not an identifier"));
    }
    // rejects keywords
    syn::parse_str::<Ident>(s).map_err(|_| bad("it is a Rust keyword"))?;
    Ok(Ident::new(s, Span::call_site()))
}

/// `p_` + the state_dict name lowercased with `.` → `_`.
pub(crate) fn field_ident(name: &str) -> GResult<Ident> {
    let mapped: String = name
        .chars()
        .map(|c| if c == '.' { '_' } else { c.to_ascii_lowercase() })
        .collect();
    ident(&format!("p_{mapped}"), "parameter", name)
}

/// A local variable name for a node: `v{index}_{sanitized name}` (always an identifier).
fn var_ident(i: NodeIndex, name: &str) -> Ident {
    let san: String = crate::lower::snake(name).chars().take(40).collect();
    format_ident!("v{}_{}", i.index(), san)
}

pub(crate) fn usize_lit(v: i64, what: &str, node: &Node) -> GResult<Literal> {
    usize::try_from(v)
        .map(Literal::usize_unsuffixed)
        .map_err(|_| GenError::Unsupported(format!("node `{}` has a negative {what} ({v})", node.name)))
}

/// `[a, b]` of the two `usize` literals of `v` (see [`usize_lit`]).
pub(crate) fn usize_pair_lit(v: [i64; 2], what: &str, node: &Node) -> GResult<TokenStream> {
    let (a, b) = (usize_lit(v[0], what, node)?, usize_lit(v[1], what, node)?);
    Ok(quote!([#a, #b]))
}

pub(crate) fn f32_lit(v: f64, what: &str, node: &Node) -> GResult<Literal> {
    let f = v as f32;
    if !f.is_finite() {
        return Err(GenError::Unsupported(format!(
            "node `{}` has a non-finite {what} ({v})",
            node.name
        )));
    }
    Ok(Literal::f32_suffixed(f))
}

pub(crate) fn f64_lit(v: f64, what: &str, node: &Node) -> GResult<Literal> {
    if !v.is_finite() {
        return Err(GenError::Unsupported(format!(
            "node `{}` has a non-finite {what} ({v})",
            node.name
        )));
    }
    Ok(Literal::f64_suffixed(v))
}

/// A statement of `forward`: the nodes `head..=out` of a fused chain (conv [→ bn] [→ add of
/// another value] [→ act]) or a single node (`head == out`).
pub(crate) struct Stmt {
    /// The first node (a conv, or the single node).
    pub(crate) head: NodeIndex,
    /// A batch norm folded into the conv.
    pub(crate) bn: Option<NodeIndex>,
    /// The fused add and its other operand (the statement runs at the add's place, so that
    /// operand exists by then).
    pub(crate) add: Option<(NodeIndex, NodeIndex)>,
    /// The activation fused into the epilogue.
    pub(crate) act: Option<Activation>,
    /// The activation's node when the fused add comes after it (`act(conv) + other`,
    /// ultralytics' `Bottleneck` shortcut), not before it ([`Stmt::add_after_act`]).
    pub(crate) act_node: Option<NodeIndex>,
    /// The last node; its variable holds the result.
    pub(crate) out: NodeIndex,
}

impl Stmt {
    /// Whether the fused add follows the activation.
    pub(crate) fn add_after_act(&self) -> bool {
        self.act_node.is_some()
    }

    /// The values the statement reads: the head's inputs and a fused add's other operand.
    fn reads(&self, g: &Graph) -> Vec<NodeIndex> {
        let mut v = g.node(self.head).inputs.clone();
        v.extend(self.add.map(|(_, o)| o));
        v
    }
}

/// The Rust code generator's state for one graph.
pub(crate) struct Gen<'g> {
    g: &'g Graph,
    a: &'g Analysis,
    /// The runtime crate's path in generated code.
    pub(crate) rt: syn::Path,
    name: Ident,
    inputs_ty: Ident,
    outputs_ty: Ident,
    /// Consumers of each node, with multiplicity.
    cons: Vec<Vec<NodeIndex>>,
    is_output: Vec<bool>,
    /// Conv prefix → the batch norm (prefix, eps) folded into it.
    fold: HashMap<String, Option<(String, f64)>>,
    /// Param name → index in `a.params`.
    pidx: HashMap<String, usize>,
    /// The accepted input sizes in words (runs the size analysis once per `generate`).
    accepted: String,
    /// The statements of `forward` (fused chains), planned once after the folds.
    stmts: Vec<Stmt>,
    /// For each node, the statement that computes it as its head or folded batch norm.
    stmt_of: Vec<Option<usize>>,
    /// For each node, whether its value is in the blocked layout NCHW16c
    /// ([`Gen::plan_layout`]).
    blocked: Vec<bool>,
    /// Convs (head nodes) whose value is NCHW (channels not whole blocks) that read their
    /// blocked input as it is ([`Gen::convs_from_blocked`]: a head's last conv).
    from_blocked: HashSet<NodeIndex>,
}

impl<'g> Gen<'g> {
    fn new(g: &'g Graph, a: &'g Analysis, opts: &Options) -> GResult<Self> {
        let rt = syn::parse_str::<syn::Path>(&opts.runtime_path)
            .map_err(|_| GenError::RuntimePath(opts.runtime_path.clone()))?;
        let name = ident(&g.name, "model name", &g.name)?;
        let inputs_ty = format_ident!("{}Inputs", name);
        let outputs_ty = format_ident!("{}Outputs", name);
        let n = g.graph.node_count();
        if a.shapes.len() < n {
            return Err(GenError::Unsupported(format!(
                "the analysis has {} shapes for {n} nodes",
                a.shapes.len()
            )));
        }
        let mut cons = vec![Vec::new(); n];
        for i in g.order() {
            for &j in &g.node(i).inputs {
                if j.index() >= i.index() {
                    return Err(GenError::Unsupported(format!(
                        "node `{}` is not in topological order",
                        g.node(i).name
                    )));
                }
                cons[j.index()].push(i);
            }
        }
        let mut is_output = vec![false; n];
        for o in &g.outputs {
            *is_output
                .get_mut(o.node.index())
                .ok_or_else(|| GenError::Unsupported(format!("output `{}` has no node", o.name)))? = true;
        }
        let pidx = a.params.iter().enumerate().map(|(k, p)| (p.name.clone(), k)).collect();
        let mut gen = Gen {
            g,
            a,
            rt,
            name,
            inputs_ty,
            outputs_ty,
            cons,
            is_output,
            fold: HashMap::new(),
            pidx,
            accepted: crate::interp::accepted_sizes(g),
            stmts: Vec::new(),
            stmt_of: vec![None; n],
            blocked: vec![false; n],
            from_blocked: HashSet::new(),
        };
        gen.plan_folds()?;
        gen.stmts = gen.plan_stmts();
        for (k, s) in gen.stmts.iter().enumerate() {
            for i in std::iter::once(s.head).chain(s.bn) {
                gen.stmt_of[i.index()] = Some(k);
            }
        }
        if opts.blocked {
            gen.blocked = gen.plan_layout();
            gen.from_blocked = gen.convs_from_blocked();
        }
        Ok(gen)
    }

    /// Which values are kept in the blocked layout NCHW16c (`fpn_runtime::to_blocked`), by
    /// node: a statement's value is blocked when its op has a blocked form and its inputs are
    /// blocked (a conv: zero padding, no groups, dilation or per-call parameters, output
    /// channels in whole blocks, the same parameters as every conv sharing its weights, and
    /// its input blocked or of channels not in whole blocks — a stem, which reads NCHW; a max pool without explicit padding; a nearest upsample; a
    /// concat, an add and an activation of blocked values; a channel slice of whole blocks of
    /// one). A value that a slice reads at channels that are not whole blocks is kept NCHW
    /// (the slice is a view), and so is one that neither reads nor is read as a blocked value
    /// (a lone stem before ops without blocked forms). Inputs are NCHW; values that ops without a blocked form read, and
    /// the outputs, are reordered where they are read ([`StmtCx::view`]).
    ///
    /// So a network whose input is an image (a stem conv) runs blocked from its stem to its
    /// outputs, and one whose inputs are feature maps of whole blocks stays NCHW.
    fn plan_layout(&self) -> Vec<bool> {
        let g = self.g;
        let n = g.graph.node_count();
        let chans = |i: NodeIndex| self.shape(i).c;
        let whole = whole_blocks;
        let same = self.same_conv_params();
        let nodes_of = |s: &Stmt| {
            let mut v = vec![s.head, s.out];
            v.extend(s.bn);
            v.extend(s.add.map(|a| a.0));
            v.extend(s.act_node);
            v
        };
        let mut pos_of = vec![None; n];
        for (pos, s) in self.stmts.iter().enumerate() {
            for i in nodes_of(s) {
                pos_of[i.index()] = Some(pos);
            }
        }
        let mut forbid = vec![false; self.stmts.len()];
        loop {
            let mut blocked = vec![false; n];
            for (pos, s) in self.stmts.iter().enumerate() {
                let node = g.node(s.head);
                let ins = &node.inputs;
                let all_in = || !ins.is_empty() && ins.iter().all(|&j| blocked[j.index()]);
                let b = !forbid[pos]
                    && match &node.op {
                        Op::Conv(c) => {
                            let x = ins.first().copied();
                            // (a value of channels not in whole blocks is never blocked)
                            self.conv_blockable(node, c, &same)
                                && whole(chans(s.head))
                                && x.is_some_and(|x| blocked[x.index()] || !whole(chans(x)))
                        }
                        Op::MaxPool(p) => p.0.explicit_pad.is_none() && !p.0.tf_same && all_in(),
                        Op::Upsample(u) => !u.bilinear && ins.first().is_some_and(|&x| blocked[x.index()]),
                        Op::Concat(_) | Op::Add(_) | Op::Act(_) => all_in(),
                        Op::ChannelSlice(cs) => {
                            all_in()
                                && ins.first().is_some_and(|&x| {
                                    cs.range(chans(x))
                                        .is_ok_and(|(st, len)| whole(len) && (st == 0 || whole(st)))
                                })
                        }
                        _ => false,
                    };
                for i in nodes_of(s) {
                    blocked[i.index()] = b;
                }
            }
            // a blocked value sliced at channels that are not whole blocks: keep it NCHW
            let mut changed = false;
            for s in &self.stmts {
                let node = g.node(s.head);
                if !matches!(node.op, Op::ChannelSlice(_)) || blocked[s.out.index()] {
                    continue;
                }
                let mut src = node.inputs.first().copied();
                while let Some(j) = src.filter(|j| matches!(g.node(*j).op, Op::ChannelSlice(_))) {
                    src = g.node(j).inputs.first().copied();
                }
                if let Some(pos) = src.filter(|j| blocked[j.index()]).and_then(|j| pos_of[j.index()]) {
                    forbid[pos] = true;
                    changed = true;
                }
            }
            // a blocked value that neither reads a blocked value nor is read as one (a stem conv
            // whose consumers have no blocked form): its reorder would cost more than it saves
            for (pos, s) in self.stmts.iter().enumerate() {
                if forbid[pos] || !blocked[s.out.index()] {
                    continue;
                }
                let reads = g.node(s.head).inputs.iter().any(|&j| blocked[j.index()]);
                let read = self.cons[s.out.index()].iter().any(|&c| blocked[c.index()]);
                if !reads && !read {
                    forbid[pos] = true;
                    changed = true;
                }
            }
            if !changed {
                return blocked;
            }
        }
    }

    /// The layout statement `s` reads its input `k` in (`true`: blocked), or `None` for an
    /// input it reads no values of (an upsample's size reference): its own value's layout,
    /// except a blocked conv's input of channels not in whole blocks (a stem), read as NCHW.
    fn reads_blocked(&self, s: &Stmt, k: usize) -> Option<bool> {
        let node = self.g.node(s.head);
        let out = self.is_blocked(s.out);
        match &node.op {
            Op::Upsample(_) if k == 1 => None,
            Op::Conv(_) if k == 0 && self.conv_from_blocked(s.head) => Some(true),
            Op::Conv(_) if k == 0 && out => Some(whole_blocks(self.shape(*node.inputs.first()?).c)),
            _ => Some(out),
        }
    }

    /// The convs that read a blocked input and write an NCHW value of channels not in whole
    /// blocks (a head's last conv, `fpn_runtime::BlockedConv::blocked_output` false): the
    /// statement's only read is its input (no fused add) and the conv has a blocked form
    /// otherwise ([`Gen::conv_blockable`]).
    fn convs_from_blocked(&self) -> HashSet<NodeIndex> {
        let g = self.g;
        let whole = whole_blocks;
        let same = self.same_conv_params();
        self.stmts
            .iter()
            .filter(|s| {
                let node = g.node(s.head);
                let x = node.inputs.first().copied();
                matches!(&node.op, Op::Conv(c) if self.conv_blockable(node, c, &same))
                    && s.add.is_none()
                    && !self.is_blocked(s.out)
                    && !whole(self.shape(s.head).c)
                    && x.is_some_and(|x| self.is_blocked(x) && whole(self.shape(x).c))
            })
            .map(|s| s.head)
            .collect()
    }

    /// Per parameter prefix, whether every conv with it has the same runtime parameters (so
    /// none overrides the prepared ones; shared weights may differ per call).
    fn same_conv_params(&self) -> HashMap<&str, Option<Conv2dParams>> {
        let g = self.g;
        let mut same: HashMap<&str, Option<Conv2dParams>> = HashMap::new();
        for i in g.order() {
            if let (Op::Conv(c), Some(p)) = (&g.node(i).op, &g.node(i).param) {
                let here = c.params(self.fused_act(i));
                same.entry(p.as_str())
                    .and_modify(|e| {
                        if *e != here {
                            *e = None;
                        }
                    })
                    .or_insert(here);
            }
        }
        same
    }

    /// Whether conv `node` (op `c`) has a blocked form whatever its channels: zero padding, one
    /// group, no dilation, no per-call padding, the same parameters as every conv sharing its
    /// weights (`same`, [`Gen::same_conv_params`]).
    fn conv_blockable(&self, node: &Node, c: &Conv, same: &HashMap<&str, Option<Conv2dParams>>) -> bool {
        c.groups == 1
            && c.dilation == [1, 1]
            && c.mode == fpn_runtime::PaddingMode::Zeros
            && !c.tf_same
            && node
                .param
                .as_deref()
                .is_some_and(|p| matches!(same.get(p), Some(Some(_))))
    }

    /// Whether conv `head` reads its blocked input as it is into an NCHW value
    /// ([`Gen::convs_from_blocked`]).
    pub(crate) fn conv_from_blocked(&self, head: NodeIndex) -> bool {
        self.from_blocked.contains(&head)
    }

    /// Whether every conv with weights `p` runs on blocked values (its statement's value is
    /// blocked, or it reads a blocked input into an NCHW value, [`Gen::conv_from_blocked`]):
    /// its field is then prepared for blocked calls only (`Conv2d::new_blocked`, without the
    /// NCHW Winograd transform it would never read).
    pub(crate) fn conv_blocked_only(&self, p: &str) -> bool {
        let mut any = false;
        for i in self.g.order() {
            let node = self.g.node(i);
            if !matches!(node.op, Op::Conv(_)) || node.param.as_deref() != Some(p) {
                continue;
            }
            let Some(s) = self.stmt_of[i.index()].and_then(|k| self.stmts.get(k)) else {
                return false;
            };
            if s.head != i || !(self.is_blocked(s.out) || self.conv_from_blocked(s.head)) {
                return false;
            }
            any = true;
        }
        any
    }

    /// Whether node `i`'s value is in the blocked layout ([`Gen::plan_layout`]).
    pub(crate) fn is_blocked(&self, i: NodeIndex) -> bool {
        self.blocked.get(i.index()).copied().unwrap_or(false)
    }

    /// The `state_dict` prefix of node `i`.
    /// The inferred output shape of node `i`.
    pub(crate) fn shape(&self, i: NodeIndex) -> &'g crate::infer::Shape {
        &self.a.shapes[i.index()]
    }

    pub(crate) fn param_prefix(&self, i: NodeIndex) -> GResult<&'g str> {
        let node = self.g.node(i);
        node.param.as_deref().ok_or_else(|| {
            GenError::Unsupported(format!(
                "node `{}` ({}) has no parameter prefix",
                node.name,
                node.op.kind()
            ))
        })
    }

    /// A conv prefix is folded iff every conv node with it feeds only a batch norm, and all
    /// those norms share one prefix and eps.
    fn plan_folds(&mut self) -> GResult<()> {
        let mut fold: HashMap<String, Option<(String, f64)>> = HashMap::new();
        for i in self.g.order() {
            if !matches!(self.g.node(i).op, Op::Conv(_)) {
                continue;
            }
            let p = self.param_prefix(i)?.to_string();
            let cand = match self.cons[i.index()][..] {
                [b] if !self.is_output[i.index()] => match (&self.g.node(b).op, &self.g.node(b).param) {
                    (Op::BatchNorm(crate::ops::norm::BatchNorm { eps }), Some(q)) => Some((q.clone(), *eps)),
                    _ => None,
                },
                _ => None,
            };
            match fold.get(&p) {
                None => {
                    fold.insert(p, cand);
                }
                Some(prev) if *prev != cand => {
                    fold.insert(p, None);
                }
                Some(_) => {}
            }
        }
        self.fold = fold;
        Ok(())
    }

    fn folded_bn(&self, conv: NodeIndex) -> Option<NodeIndex> {
        let p = self.g.node(conv).param.as_ref()?;
        self.fold.get(p)?.as_ref()?;
        self.cons[conv.index()].first().copied()
    }

    /// The single consumer of `i` if it is an activation (and `i` is not an output).
    fn fusable_act(&self, i: NodeIndex) -> Option<(NodeIndex, Activation)> {
        match self.cons[i.index()][..] {
            [c] if !self.is_output[i.index()] => match self.g.node(c).op {
                Op::Act(crate::ops::act::Act(act)) => Some((c, act)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The add that `i` (a conv's value) can be fused with: `i`'s single consumer, an add of two
    /// values, with the other operand (a ResNet block's shortcut, an FPN's upsampled top-down
    /// map) not `i` itself.
    fn fusable_add(&self, i: NodeIndex) -> Option<(NodeIndex, NodeIndex)> {
        let [c] = self.cons[i.index()][..] else { return None };
        if self.is_output[i.index()] || !matches!(self.g.node(c).op, Op::Add(_)) {
            return None;
        }
        let [a, b] = self.g.node(c).inputs[..] else { return None };
        let other = if a == i { b } else { a };
        (other != i).then_some((c, other))
    }

    /// The statements of `forward` in graph order. A conv fused with an add runs at the add's
    /// place (after the add's other operand exists), not at its own.
    fn plan_stmts(&self) -> Vec<Stmt> {
        let mut absorbed = vec![false; self.g.graph.node_count()];
        // Fused conv statements waiting for their add's place, by add node.
        let mut deferred: HashMap<NodeIndex, Stmt> = HashMap::new();
        let mut out = Vec::new();
        for i in self.g.order() {
            if absorbed[i.index()] {
                if let Some(s) = deferred.remove(&i) {
                    out.push(s);
                }
                continue;
            }
            let mut s = Stmt {
                head: i,
                bn: None,
                add: None,
                act: None,
                act_node: None,
                out: i,
            };
            if matches!(self.g.node(i).op, Op::Conv(_)) {
                if let Some(b) = self.folded_bn(i) {
                    absorbed[b.index()] = true;
                    s.bn = Some(b);
                    s.out = b;
                }
                // (An add both of whose operands are conv chains fuses with the first one.)
                if let Some((add, other)) = self.fusable_add(s.out).filter(|(a, _)| !absorbed[a.index()]) {
                    absorbed[add.index()] = true;
                    s.add = Some((add, other));
                    s.out = add;
                }
                if let Some((c, act)) = self.fusable_act(s.out) {
                    absorbed[c.index()] = true;
                    s.act = Some(act);
                    s.out = c;
                    // an add after the activation fuses as well (when none came before it)
                    if s.add.is_none() {
                        if let Some((add, other)) = self.fusable_add(c).filter(|(a, _)| !absorbed[a.index()]) {
                            absorbed[add.index()] = true;
                            s.add = Some((add, other));
                            s.act_node = Some(c);
                            s.out = add;
                        }
                    }
                }
                if let Some((add, _)) = s.add {
                    deferred.insert(add, s);
                    continue;
                }
            }
            out.push(s);
        }
        out
    }

    /// The parameter `prefix.suffix` and its index in the analysis.
    pub(crate) fn pname(&self, prefix: &str, suffix: &str) -> GResult<(String, usize)> {
        let name = format!("{prefix}.{suffix}");
        let k = *self
            .pidx
            .get(&name)
            .ok_or_else(|| GenError::Unsupported(format!("parameter `{name}` is not in the analysis")))?;
        Ok((name, k))
    }

    /// The runtime parameters of conv node `node` (op `c`) with the fused activation `act`, and
    /// the tokens that build them.
    pub(crate) fn conv_params(&self, node: &Node, c: &Conv, act: Activation) -> GResult<(Conv2dParams, TokenStream)> {
        let p = c
            .params(act)
            .ok_or_else(|| GenError::Unsupported(format!("node `{}` has a negative attribute", node.name)))?;
        let tokens = crate::ops::conv::params_tokens(&self.rt, &p, crate::ops::act::tokens(&self.rt, act));
        Ok((p, tokens))
    }

    /// The batch norm `(prefix, eps)` folded into conv prefix `p`, if any.
    pub(crate) fn fold_of(&self, p: &str) -> Option<(&str, f64)> {
        self.fold.get(p)?.as_ref().map(|(q, e)| (q.as_str(), *e))
    }

    /// The activation fused into the statement headed by conv node `i`.
    pub(crate) fn fused_act(&self, i: NodeIndex) -> Activation {
        self.stmt(i)
            .filter(|s| s.head == i)
            .and_then(|s| s.act)
            .unwrap_or(Activation::Identity)
    }

    /// Whether batch norm node `i` is folded into its conv.
    pub(crate) fn is_folded_bn(&self, i: NodeIndex) -> bool {
        self.stmt(i).is_some_and(|s| s.bn == Some(i))
    }

    /// The statement that computes node `i` as its head or folded batch norm.
    fn stmt(&self, i: NodeIndex) -> Option<&Stmt> {
        self.stmts.get((*self.stmt_of.get(i.index())?)?)
    }

    fn check_floats(&self) -> GResult<()> {
        for i in self.g.order() {
            let node = self.g.node(i);
            match &node.op {
                Op::Act(crate::ops::act::Act(Activation::LeakyRelu(s))) => {
                    f32_lit(f64::from(*s), "leaky relu slope", node)?;
                }
                Op::BatchNorm(crate::ops::norm::BatchNorm { eps }) | Op::Fuse(crate::ops::merge::Fuse { eps, .. }) => {
                    f32_lit(*eps, "eps", node)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- parameters

    /// The fields of the model struct, in a deterministic order (each op adds its own, once per
    /// parameter prefix), and the field of each prefix.
    fn fields(&self) -> GResult<(Vec<Field>, FieldMap)> {
        let mut fx: Option<FieldCx<'_>> = None;
        for i in self.g.order() {
            let node = self.g.node(i);
            let mut cx = match fx.take() {
                Some(mut cx) => {
                    cx.node = node;
                    cx.idx = i;
                    cx
                }
                None => FieldCx {
                    gen: self,
                    node,
                    idx: i,
                    fields: Vec::new(),
                    by_prefix: HashMap::new(),
                    moved: HashSet::new(),
                },
            };
            node.op.fields(&mut cx)?;
            fx = Some(cx);
        }
        let (fields, by_prefix) = match fx {
            Some(cx) => (cx.fields, cx.by_prefix),
            None => (Vec::new(), HashMap::new()),
        };
        // unique identifiers
        let mut seen: HashMap<String, String> = HashMap::new();
        for f in &fields {
            let id = f.ident.to_string();
            if let Some(prev) = seen.insert(id.clone(), f.doc.clone()) {
                return Err(GenError::Collision {
                    what: "parameters",
                    a: prev,
                    b: f.doc.clone(),
                    ident: id,
                });
            }
        }
        Ok((fields, by_prefix))
    }

    /// `let t{k} = …;` for every parameter, by `init` (`from_weights == false`) or loading,
    /// each with whether it draws from the generator `rng`.
    fn load_tensors(&self, from_weights: bool) -> GResult<Vec<(TokenStream, bool)>> {
        let rt = &self.rt;
        let mut out = Vec::with_capacity(self.a.params.len());
        for (k, p) in self.a.params.iter().enumerate() {
            let mut uses_rng = false;
            let t = format_ident!("t{}", k);
            let dims: Vec<usize> = p
                .shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<_, _>>()
                .map_err(|_| GenError::Unsupported(format!("parameter `{}` has a negative dimension", p.name)))?;
            let lits: Vec<Literal> = dims.iter().map(|&d| Literal::usize_unsuffixed(d)).collect();
            let name = &p.name;
            let four = dims.len() == 4;
            if dims.len() != 4 && dims.len() != 1 {
                return Err(GenError::Unsupported(format!(
                    "parameter `{}` has {} dimensions (1 or 4 expected)",
                    p.name,
                    dims.len()
                )));
            }
            let stmt = if from_weights {
                if four {
                    quote!(let #t = w.get4(#name, [#(#lits),*])?;)
                } else {
                    let n = &lits[0];
                    quote!(let #t = w.get1(#name, #n)?;)
                }
            } else {
                match p.init.clone() {
                    InitKind::ConvWeight(_) => {
                        uses_rng = true;
                        quote!(let #t = rng.conv_weight([#(#lits),*]);)
                    }
                    InitKind::ConvBias { fan_in, n } => {
                        uses_rng = true;
                        let (f, n) = (Literal::usize_unsuffixed(fan_in), Literal::usize_unsuffixed(n));
                        quote!(let #t = rng.conv_bias(#f, #n);)
                    }
                    InitKind::Ones(_) if !four => {
                        let n = &lits[0];
                        quote!(let #t = #rt::ndarray::Array1::<f32>::ones(#n);)
                    }
                    InitKind::Zeros(_) if !four => {
                        let n = &lits[0];
                        quote!(let #t = #rt::ndarray::Array1::<f32>::zeros(#n);)
                    }
                    _ => {
                        return Err(GenError::Unsupported(format!(
                            "parameter `{}` has no init rule",
                            p.name
                        )))
                    }
                }
            };
            out.push((stmt, uses_rng));
        }
        Ok(out)
    }

    /// The bodies of `init` and `from_weights`, and their private helpers when the model has
    /// more than [`split::PART`] fields (see [`split`]). `init_tensors` / `weight_tensors` are
    /// [`Gen::load_tensors`]'s statements.
    fn loaders(
        &self,
        fields: &[Field],
        init_tensors: &[(TokenStream, bool)],
        weight_tensors: &[(TokenStream, bool)],
    ) -> (TokenStream, TokenStream, Vec<TokenStream>) {
        let rt = &self.rt;
        // Each field is built in its own `let` and the struct from plain locals: one
        // `Self { f: Conv2d::new(..)?, … }` expression made rustc's memory grow with the square of
        // the convs (18.8 GB for 1000; issue 11 item 1). `f{k}` cannot meet a `t{k}` tensor or a
        // `p_…` prep local.
        let build = |run: Range<usize>, init: bool| -> TokenStream {
            let fs = &fields[run.clone()];
            let preps = fs.iter().map(|f| &f.prep);
            let lets = fs.iter().zip(run).map(|(f, k)| {
                let v = match (&f.init_value, init) {
                    (Some(v), true) => v,
                    _ => &f.value,
                };
                let local = format_ident!("f{}", k);
                quote!(let #local = #v;)
            });
            quote!(#(#preps)* #(#lets)*)
        };
        let code = |ts: &[(TokenStream, bool)]| -> TokenStream { ts.iter().map(|(t, _)| t.clone()).collect() };
        let uses_rng = |ts: &[(TokenStream, bool)]| ts.iter().any(|(_, r)| *r);
        let (w, require) = if self.a.params.is_empty() {
            (quote!(_w), TokenStream::new())
        } else {
            (quote!(w), quote!(w.require(Self::PARAMS)?;))
        };
        let parts = split::field_parts(fields, self.a.params.len(), split::PART);
        if let [only] = parts.as_slice() {
            let inits = fields.iter().enumerate().map(|(k, f)| {
                let (id, local) = (&f.ident, format_ident!("f{}", k));
                quote!(#id: #local)
            });
            let assemble = quote!(Self { #(#inits,)* arena: ::core::default::Default::default() });
            let (built_init, built) = (build(only.fields.clone(), true), build(only.fields.clone(), false));
            let rng = if uses_rng(init_tensors) {
                quote!(let mut rng = #rt::Init::new(seed);)
            } else {
                quote!(let _ = seed;)
            };
            let (init_loads, weight_loads) = (code(init_tensors), code(weight_tensors));
            let loaded = if built.is_empty() {
                quote!(::core::result::Result::Ok(#assemble))
            } else {
                quote!(::core::result::Result::Ok({ #built #assemble }))
            };
            return (
                quote!(#rng #init_loads #built_init #assemble),
                quote!(#require #weight_loads #loaded),
                Vec::new(),
            );
        }
        let mut helpers = Vec::new();
        let (mut init_calls, mut load_calls, mut inits) = (Vec::new(), Vec::new(), Vec::new());
        for (p, part) in parts.iter().enumerate() {
            let (init_fn, load_fn, local) = (
                format_ident!("init_part{}", p),
                format_ident!("load_part{}", p),
                format_ident!("part{}", p),
            );
            let fs = &fields[part.fields.clone()];
            let tys = fs.iter().map(|f| &f.ty);
            let ty = quote!((#(#tys,)*));
            let ret: Vec<Ident> = part.fields.clone().map(|k| format_ident!("f{}", k)).collect();
            for (j, f) in fs.iter().enumerate() {
                let (id, j) = (&f.ident, syn::Index::from(j));
                inits.push(quote!(#id: #local.#j));
            }
            let (it, wt) = (
                &init_tensors[part.tensors.clone()],
                &weight_tensors[part.tensors.clone()],
            );
            let rng = if uses_rng(it) { quote!(rng) } else { quote!(_rng) };
            let warg = if wt.is_empty() { quote!(_w) } else { quote!(w) };
            let (it, wt) = (code(it), code(wt));
            let (built_init, built) = (build(part.fields.clone(), true), build(part.fields.clone(), false));
            let doc = format!(
                " Fields {}..{} of `init` and `from_weights`, built apart to keep rustc's work linear \
                 in the spec (see fpn's `back::split`).",
                part.fields.start, part.fields.end
            );
            helpers.push(quote! {
                #[doc = #doc]
                #[allow(clippy::type_complexity)]
                fn #init_fn(#rng: &mut #rt::Init) -> #ty {
                    #it
                    #built_init
                    (#(#ret,)*)
                }
                #[doc = #doc]
                #[allow(clippy::type_complexity)]
                fn #load_fn(#warg: &#rt::Weights) -> #rt::Result<#ty> {
                    #wt
                    #built
                    ::core::result::Result::Ok((#(#ret,)*))
                }
            });
            init_calls.push(quote!(let #local = Self::#init_fn(&mut rng);));
            load_calls.push(quote!(let #local = Self::#load_fn(#w)?;));
        }
        (
            quote! {
                let mut rng = #rt::Init::new(seed);
                #(#init_calls)*
                Self { #(#inits,)* arena: ::core::default::Default::default() }
            },
            quote! {
                #require
                #(#load_calls)*
                ::core::result::Result::Ok(Self { #(#inits,)* arena: ::core::default::Default::default() })
            },
            helpers,
        )
    }

    // ---------------------------------------------------------------- sizes

    fn check_sizes_fn(&self) -> GResult<TokenStream> {
        let rt = &self.rt;
        let g = self.g;
        let names = g.symbol_names();
        let inputs_ty = &self.inputs_ty;
        let mut tuples = TokenStream::new();
        let mut body = TokenStream::new();
        let mut used_na = false;
        // input tuples
        let mut ins: Vec<(Ident, Ident, &String, i64, &[Dim; 2])> = Vec::new();
        for (k, &i) in g.inputs.iter().enumerate() {
            let Op::Input(crate::ops::input::Input { name, channels, size }) = &g.node(i).op else {
                return Err(GenError::Unsupported(format!(
                    "graph input `{}` is not an input node",
                    g.node(i).name
                )));
            };
            let field = ident(name, "input", name)?;
            let tup = format_ident!("i{}", k);
            tuples.extend(quote!(let #tup = inputs.#field.dim();));
            ins.push((tup, field, name, *channels, size));
        }
        // description of the given inputs
        let mut given_fmt = String::new();
        let mut given_args = Vec::new();
        for (k, (tup, _, name, _, _)) in ins.iter().enumerate() {
            if k > 0 {
                given_fmt.push_str(", ");
            }
            given_fmt.push_str("{}: [{}, {}, {}, {}]");
            given_args.push(quote!(#name));
            given_args.extend([quote!(#tup.0), quote!(#tup.1), quote!(#tup.2), quote!(#tup.3)]);
        }
        let need = &self.accepted;
        // channels and batch
        for (k, (tup, _, name, channels, _)) in ins.iter().enumerate() {
            let c = Literal::usize_unsuffixed(
                usize::try_from(*channels)
                    .map_err(|_| GenError::Unsupported(format!("input `{name}` has negative channels")))?,
            );
            let reason = format!("input `{name}` must have {channels} channels");
            body.extend(quote! {
                if #tup.1 != #c {
                    return ::core::result::Result::Err(#rt::Error::ShapeMismatch {
                        op: "forward",
                        lhs: ::std::vec![#tup.0, #tup.1, #tup.2, #tup.3],
                        rhs: ::std::vec![#tup.0, #c, #tup.2, #tup.3],
                        reason: ::std::string::String::from(#reason),
                    });
                }
            });
            used_na = true;
            if k == 0 {
                let msg = format!("input `{name}` has batch size 0");
                body.extend(quote!(if #tup.0 == 0 { return ::core::result::Result::Err(not_accepted(::std::string::String::from(#msg))); }));
            } else {
                let first_tup = &ins[0].0;
                let first = ins[0].2;
                body.extend(quote! {
                    if #tup.0 != #first_tup.0 {
                        return ::core::result::Result::Err(not_accepted(::std::format!("input `{}` has batch size {} but input `{}` has {}", #name, #tup.0, #first, #first_tup.0)));
                    }
                });
            }
        }
        // symbols, each from the first input size that mentions it alone (divisions are exact)
        let mut defined: HashSet<(usize, usize)> = HashSet::new();
        let mut dims = DimVars {
            rt: quote!(#rt),
            ..DimVars::default()
        };
        for (s, sym) in g.symbols.iter().enumerate() {
            let var = format_ident!("s{}", s);
            let mut found = None;
            'outer: for (k, (_, _, _, _, size)) in ins.iter().enumerate() {
                for (ax, d) in size.iter().enumerate() {
                    if d.symbols() == [s as u32] {
                        if let Some(steps) = d.solve_steps() {
                            found = Some((k, ax, steps));
                            break 'outer;
                        }
                    }
                }
            }
            let Some((k, ax, steps)) = found else {
                return Err(GenError::Unsupported(format!(
                    "size symbol `{}` is not the height or width of any input",
                    sym.name
                )));
            };
            defined.insert((k, ax));
            let tup = &ins[k].0;
            let member = syn::Index::from(2 + ax);
            let min = Literal::i64_suffixed(sym.min);
            let sname = &sym.name;
            if steps.is_empty() {
                body.extend(quote!(let #var = #tup.#member as i64;));
            } else {
                let (iname, d) = (ins[k].2, &ins[k].4[ax]);
                let axis = if ax == 0 { "height" } else { "width" };
                let msg = format!(
                    "input `{iname}` has {axis} {{}}, but no whole {} gives {} = {{}}",
                    sym.name,
                    d.display(&names)
                );
                dims.overflow = true;
                body.extend(quote!(let mut #var = #tup.#member as i64;));
                for st in steps {
                    body.extend(match st {
                        SolveStep::SubDiv { sub, div } => {
                            let mut t = TokenStream::new();
                            if sub != 0 {
                                let sub = i64_arg(sub);
                                t.extend(quote!(#var = #var.checked_sub(#sub).ok_or_else(overflow)?;));
                            }
                            if div != 1 {
                                let div = i64_arg(div);
                                t.extend(quote! {
                                    if #var % #div != 0 {
                                        return ::core::result::Result::Err(not_accepted(::std::format!(#msg, #tup.#member, #tup.#member)));
                                    }
                                    #var /= #div;
                                });
                            }
                            t
                        }
                        SolveStep::Mul(m) => {
                            let m = i64_arg(m);
                            quote!(#var = #var.checked_mul(#m).ok_or_else(overflow)?;)
                        }
                    });
                }
            }
            let cond = match sym.max {
                Some(max) => {
                    let max = Literal::i64_suffixed(max);
                    quote!(!(#min..=#max).contains(&#var))
                }
                None => quote!(#var < #min),
            };
            body.extend(
                quote!(if #cond { return ::core::result::Result::Err(not_accepted(::std::format!("{} = {} is out of range", #sname, #var))); }),
            );
        }
        // input sizes that are not a symbol's definition
        for (k, (tup, _, name, _, size)) in ins.iter().enumerate() {
            for (ax, d) in size.iter().enumerate() {
                for (num, div) in d.divisions() {
                    let e = dims.expr(num, &mut body);
                    let m = i64_arg(div);
                    let mem = syn::Index::from(2 + ax);
                    let axis = if ax == 0 { "height" } else { "width" };
                    let msg = format!(
                        "input `{name}` has {axis} {{}} = {}, but `/` divides exactly and {} = {{}} is not a multiple of {div}",
                        d.display(&names),
                        num.display(&names)
                    );
                    body.extend(quote! {
                        if #e.rem_euclid(#m) != 0 {
                            return ::core::result::Result::Err(not_accepted(::std::format!(#msg, #tup.#mem, #e)));
                        }
                    });
                }
                if defined.contains(&(k, ax)) {
                    continue;
                }
                let e = dims.expr(d, &mut body);
                let member = syn::Index::from(2 + ax);
                let axis = if ax == 0 { "height" } else { "width" };
                let shown = d.display(&names).to_string();
                body.extend(quote! {
                    if #tup.#member as i64 != #e {
                        return ::core::result::Result::Err(not_accepted(::std::format!("input `{}` has {} {} but the spec needs {} = {}", #name, #axis, #tup.#member, #shown, #e)));
                    }
                });
            }
        }
        // every size rule of the spec that depends on the input sizes (the constant ones hold:
        // the compiler checked them), with the message of `Constraint::describe`
        let mut seen_cons: HashSet<(Dim, Dim, crate::infer::CheckKind)> = HashSet::new();
        for c in &self.a.constraints {
            if c.lhs.symbols().is_empty() && c.rhs.symbols().is_empty() {
                continue;
            }
            if c.kind == crate::infer::CheckKind::ExactDiv {
                // checked with the inputs above
                continue;
            }
            if c.kind == crate::infer::CheckKind::Positive {
                if let Dim::Sym(s) = &c.lhs {
                    if g.symbols.get(*s as usize).is_some_and(|sym| sym.min >= 1) {
                        continue;
                    }
                }
            }
            if !seen_cons.insert((c.lhs.clone(), c.rhs.clone(), c.kind)) {
                continue;
            }
            let (l, r) = (dims.expr(&c.lhs, &mut body), dims.expr(&c.rhs, &mut body));
            let cond = if c.kind == crate::infer::CheckKind::Equal {
                quote!(#l != #r)
            } else {
                quote!(#l < #r)
            };
            let mut fmt = String::new();
            let mut args: Vec<TokenStream> = Vec::new();
            for part in c.describe(g, self.a) {
                fmt.push_str("{}");
                args.push(match part {
                    crate::infer::Part::Text(t) => quote!(#t),
                    crate::infer::Part::Lhs => l.clone(),
                    crate::infer::Part::Rhs => r.clone(),
                });
            }
            used_na = true;
            body.extend(quote! {
                if #cond {
                    return ::core::result::Result::Err(not_accepted(::std::format!(#fmt, #(#args),*)));
                }
            });
        }
        let mut pre = TokenStream::new();
        if used_na || dims.overflow {
            pre.extend(quote! {
                let given = || ::std::format!(#given_fmt, #(#given_args),*);
                let not_accepted = |what: ::std::string::String| #rt::Error::InputSize(::std::format!("{} (given {}; the spec takes {})", what, given(), #need));
            });
        }
        if dims.overflow {
            pre.extend(quote!(let overflow = || not_accepted(::std::string::String::from("a size overflows"));));
        }
        Ok(quote! {
            /// Checks every input shape and every size rule of the spec before anything runs:
            /// channels exact, one batch size, symbol ranges, each node's size ≥ 1 and equal
            /// sizes wherever feature maps merge.
            fn check_sizes(inputs: &#inputs_ty<'_>) -> #rt::Result<()> {
                #tuples
                #pre
                #body
                ::core::result::Result::Ok(())
            }
        })
    }
}

/// What an op's `crate::ops::OpDef::stmt` gets: its statement, the variables of its inputs,
/// and whether it may consume one of them in place.
pub(crate) struct StmtCx<'a> {
    /// The generator.
    pub(crate) gen: &'a Gen<'a>,
    /// The statement's head node.
    pub(crate) node: &'a Node,
    /// The statement (fused chain).
    pub(crate) stmt: &'a Stmt,
    /// The variable to define.
    pub(crate) out: Ident,
    /// The values read, in order (a fused add's other operand last).
    pub(crate) ins: Vec<NodeIndex>,
    /// The model field of each parameter prefix.
    pub(crate) fields: &'a HashMap<String, (Ident, FieldKind)>,
    val_of: &'a [NodeIndex],
    /// For each node, the channels of its variable that hold its value, when not all of them
    /// ([`Placement::part`]).
    part: &'a [Option<(usize, usize)>],
    /// The concat buffer this statement writes its value into, if any ([`Placement::into`]).
    pub(crate) into: Option<&'a Into>,
    /// For each variable (by node), whether it holds (part of) a model output.
    live_out: &'a [bool],
    last_use: &'a [Option<usize>],
    pos: usize,
    moved: std::cell::Cell<Option<NodeIndex>>,
    /// Inputs read from the buffer this statement writes into: `(c0, len, name)` of each read
    /// view [`StmtCx::write_into`] borrows together with the written part.
    split_reads: std::cell::RefCell<Vec<(usize, usize, Ident)>>,
    /// For each input, the variable holding it reordered to the layout this statement reads
    /// it in, when that is not the layout it is kept in ([`Gen::plan_layout`]).
    reordered: Vec<Option<Ident>>,
}

impl<'a> StmtCx<'a> {
    /// The parameter prefix of the statement's head node, the model field made for it and
    /// `pick(kind)` of what that field holds; `Unsupported` ("no fields for {what} `prefix`")
    /// when there is no such field or `pick` refuses its kind.
    pub(crate) fn field<T>(
        &self,
        what: &str,
        pick: impl FnOnce(&'a FieldKind) -> Option<T>,
    ) -> GResult<(&'a str, &'a Ident, T)> {
        let p = self.gen.param_prefix(self.stmt.head)?;
        match self.fields.get(p) {
            Some((ident, kind)) => match pick(kind) {
                Some(t) => Ok((p, ident, t)),
                None => Err(GenError::Unsupported(format!("no fields for {what} `{p}`"))),
            },
            None => Err(GenError::Unsupported(format!("no fields for {what} `{p}`"))),
        }
    }
}

impl StmtCx<'_> {
    /// The variable holding node `j`'s value.
    pub(crate) fn var(&self, j: NodeIndex) -> Ident {
        let v = self.val_of[j.index()];
        var_ident(v, &self.gen.g.node(v).name)
    }

    /// `var.view()` of input `k` (of its reordered copy when the statement reads it in the
    /// other layout).
    pub(crate) fn view(&self, k: usize) -> GResult<TokenStream> {
        if let Some(Some(r)) = self.reordered.get(k) {
            return Ok(quote!(#r.view()));
        }
        let j = *self
            .ins
            .get(k)
            .ok_or_else(|| GenError::Unsupported(format!("node `{}` lacks input {k}", self.node.name)))?;
        Ok(plain_view(&self.gen.rt, self.var(j), self.part[j.index()]))
    }

    /// Whether the statement's value is in the blocked layout ([`Gen::plan_layout`]).
    pub(crate) fn blocked(&self) -> bool {
        self.gen.is_blocked(self.stmt.out)
    }

    /// The variable named for node `i` (as every statement's output variable is).
    pub(crate) fn var_of_node(&self, i: NodeIndex) -> Ident {
        var_ident(i, &self.gen.g.node(i).name)
    }

    /// The channels of input `k` within the variable of node `buf`, when the input is a part
    /// of it.
    fn part_in(&self, k: usize, buf: NodeIndex) -> Option<(usize, usize)> {
        let j = *self.ins.get(k)?;
        self.part[j.index()].filter(|_| self.val_of[j.index()] == buf)
    }

    /// The channels of input `k` within the buffer this statement writes into
    /// ([`StmtCx::into`]), when the input is a part of that buffer.
    pub(crate) fn part_of_into(&self, k: usize) -> Option<(usize, usize)> {
        self.part_in(k, self.into?.buf)
    }

    /// Input `k` for an op that supports [`StmtCx::write_into`]: [`StmtCx::view`], or, when
    /// the input is a part of the buffer this statement writes into, the name of its read view
    /// (`write_into` binds it).
    pub(crate) fn input(&self, k: usize) -> GResult<TokenStream> {
        let reordered = matches!(self.reordered.get(k), Some(Some(_)));
        let Some((c0, len)) = self.part_of_into(k).filter(|_| !reordered) else {
            return self.view(k);
        };
        let name = format_ident!("{}_in{}", self.out, k);
        let mut reads = self.split_reads.borrow_mut();
        if !reads.iter().any(|r| r.2 == name) {
            reads.push((c0, len, name.clone()));
        }
        Ok(quote!(#name))
    }

    /// The statement of an op placed into a concat's buffer ([`StmtCx::into`]): `before`, then
    /// (first producer) the buffer's allocation with the op's output shape `shape` (channels
    /// replaced by the concat's), then `pre` and `call(out)` with `out` the op's channels of
    /// the buffer. With inputs read from that buffer ([`StmtCx::input`]) the written part and
    /// the read views are borrowed at once (`channels_rw`) around `pre` and the call. `before`
    /// runs ahead of any borrow of the buffer; the allocation follows `pre` (never both: the
    /// first producer reads nothing of a buffer its later producers fill).
    pub(crate) fn write_into(
        &self,
        into: &Into,
        before: TokenStream,
        shape: impl FnOnce() -> TokenStream,
        pre: TokenStream,
        call: impl FnOnce(TokenStream) -> TokenStream,
    ) -> TokenStream {
        let rt = &self.gen.rt;
        let buf = self.var_of_node(into.buf);
        let (c0, len, total) = (
            Literal::usize_unsuffixed(into.c0),
            Literal::usize_unsuffixed(into.len),
            Literal::usize_unsuffixed(into.total),
        );
        let alloc = if into.first {
            let sh = shape();
            quote!(let mut #buf = #rt::concat_buffer(#sh, #total)?;)
        } else {
            TokenStream::new()
        };
        let reads = self.split_reads.borrow();
        if reads.is_empty() {
            let c = call(quote!(#rt::channels_mut(&mut #buf, #c0, #len)?));
            return quote! { #before #pre #alloc #c };
        }
        let part = format_ident!("{}_part", self.out);
        let names = reads.iter().map(|r| &r.2);
        let ranges = reads.iter().map(|r| {
            let (a, b) = (Literal::usize_unsuffixed(r.0), Literal::usize_unsuffixed(r.1));
            quote!((#a, #b))
        });
        let c = call(quote!(#part));
        quote! {
            #before
            #alloc
            {
                let (#part, [#(#names),*]) = #rt::channels_rw(&mut #buf, (#c0, #len), [#(#ranges),*])?;
                #pre
                #c
            }
        }
    }

    /// Whether input `k`'s value is already in place in this statement's own output variable:
    /// a concat's part its producer wrote straight into the concat's buffer.
    pub(crate) fn in_place(&self, k: usize) -> bool {
        self.part_in(k, self.val_of[self.stmt.out.index()]).is_some()
    }

    /// Views of every input.
    pub(crate) fn views(&self) -> GResult<Vec<TokenStream>> {
        (0..self.ins.len()).map(|k| self.view(k)).collect()
    }

    /// Whether input `k` dies here and may be moved (and reused in place).
    pub(crate) fn movable(&self, k: usize) -> bool {
        let Some(&j) = self.ins.get(k) else { return false };
        let v = self.val_of[j.index()];
        !matches!(self.gen.g.node(v).op, Op::Input(_))
            && !matches!(self.reordered.get(k), Some(Some(_)))
            && self.part[j.index()].is_none()
            && !self.live_out[v.index()]
            && self.last_use[v.index()] == Some(self.pos)
            && self.ins.iter().filter(|&&x| self.val_of[x.index()] == v).count() == 1
    }

    /// Input `k`'s variable, moved, if [`StmtCx::movable`]: the statement consumes it.
    pub(crate) fn take_if_movable(&self, k: usize) -> Option<Ident> {
        if !self.movable(k) {
            return None;
        }
        let j = self.ins[k];
        self.moved.set(Some(self.val_of[j.index()]));
        Some(self.var(j))
    }
}

/// Whether `c` channels are whole blocks of the blocked layout (`fpn_runtime::BLOCK`).
fn whole_blocks(c: i64) -> bool {
    c > 0 && c % fpn_runtime::BLOCK as i64 == 0
}

/// `v.view()`, or the channels `part` of it.
fn plain_view(rt: &syn::Path, v: Ident, part: Option<(usize, usize)>) -> TokenStream {
    match part {
        Some((c0, len)) => {
            let (c0, len) = (Literal::usize_unsuffixed(c0), Literal::usize_unsuffixed(len));
            quote!(#rt::channels(#v.view(), #c0, #len)?)
        }
        None => quote!(#v.view()),
    }
}

/// A statement that writes its value straight into its channels of a concat's buffer (a
/// concat's producers write in place, so the concat copies nothing of theirs).
pub(crate) struct Into {
    /// The concat whose variable holds the buffer.
    pub(crate) buf: NodeIndex,
    /// The channels written: `c0..c0 + len`.
    pub(crate) c0: usize,
    pub(crate) len: usize,
    /// The buffer's channel count.
    pub(crate) total: usize,
    /// Whether this statement (the buffer's first producer) allocates the buffer.
    pub(crate) first: bool,
}

/// Values that live in part of another value's buffer instead of a variable of their own.
struct Placement {
    /// For each node, `(c0, len)`: its value is channels `c0..c0 + len` of its variable
    /// (`val_of`): a concat's part written in place, or a channel slice read as a view.
    part: Vec<Option<(usize, usize)>>,
    /// By statement position: the concat buffer the statement writes into.
    into: HashMap<usize, Into>,
    /// Channel-slice statements that emit nothing (their value is a view).
    skip: HashSet<usize>,
}

/// One statement of [`Gen::schedule`].
#[derive(Default)]
struct Step {
    /// The value the statement defines (none for an input).
    out: Option<NodeIndex>,
    /// The dying operand whose buffer it writes into instead of allocating, if any.
    moved: Option<NodeIndex>,
    /// The values that die at the statement.
    dead: Vec<NodeIndex>,
    /// Inputs the statement reads reordered to the other layout: each a buffer of the input's
    /// size taken before the statement's output and given back after it.
    reordered: Vec<NodeIndex>,
}

/// `forward`'s statements in order, with what each allocates and frees.
struct Schedule {
    val_of: Vec<NodeIndex>,
    /// [`Placement::part`].
    part: Vec<Option<(usize, usize)>>,
    /// For each variable (by node), whether it holds (part of) a model output.
    live_out: Vec<bool>,
    last_use: Vec<Option<usize>>,
    bind_inputs: TokenStream,
    code: Vec<TokenStream>,
    steps: Vec<Step>,
}

/// Activation memory of one forward of the generated code at batch 1 and concrete sizes, in
/// bytes: what the arena's slot plan holds (`fpn_runtime::plan_slots`) against what must be
/// live at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Total size of the buffers the arena holds after a planned forward (the generated code's
    /// intermediates and outputs; inputs are the caller's). Op-internal scratch (im2col,
    /// Winograd blocks, padded copies) is not included.
    pub planned: u64,
    /// The liveness lower bound: the most bytes of intermediates and outputs alive at once
    /// (a statement's output and its operands counted together).
    pub bound: u64,
}

/// [`MemoryPlan`] of the code [`generate`] emits for `g`, with the symbols of `g` set to `env`
/// (in order); `None` if a size does not evaluate (a symbol missing or an overflow).
pub fn memory_plan(g: &Graph, a: &Analysis, env: &[i64]) -> GResult<Option<MemoryPlan>> {
    let gen = Gen::new(g, a, &Options::default())?;
    let (_, by_prefix) = gen.fields()?;
    let sched = gen.schedule(&by_prefix)?;
    let bytes = |v: NodeIndex| -> Option<u64> {
        let s = a.shapes.get(v.index())?;
        let (h, w) = (s.h.eval(env)?, s.w.eval(env)?);
        let n = s.c.checked_mul(h)?.checked_mul(w)?.checked_mul(4)?;
        u64::try_from(n).ok()
    };
    // a tensor's buffer request: its values and the pad that lets them start on a cache line
    // (`fpn_runtime::LINE_PAD`)
    let floats = |bytes: u64| usize::try_from(bytes / 4).ok()?.checked_add(fpn_runtime::LINE_PAD);
    // a request of `len` floats taken at the next event, held until further notice: its index
    let take = |reqs: &mut Vec<fpn_runtime::Lifetime>, events: &mut usize, len: usize| {
        reqs.push(fpn_runtime::Lifetime {
            len,
            first: *events,
            last: usize::MAX,
        });
        *events += 1;
        reqs.len() - 1
    };
    // the runtime arena's plan (`fpn_runtime::Arena`): each buffer request's lifetime in events
    // (takes and gives, in order), assigned to slots by `fpn_runtime::plan_slots`
    let mut reqs: Vec<fpn_runtime::Lifetime> = Vec::new();
    let mut held: HashMap<NodeIndex, usize> = HashMap::new();
    let (mut events, mut live, mut bound) = (0usize, 0u64, 0u64);
    for st in &sched.steps {
        // reordered inputs: taken before the output, given back after it
        let mut temps = Vec::new();
        for &j in &st.reordered {
            let Some(need) = bytes(j) else { return Ok(None) };
            let Some(len) = floats(need) else { return Ok(None) };
            temps.push((take(&mut reqs, &mut events, len), need));
            live = live.saturating_add(need);
            bound = bound.max(live);
        }
        if let Some(v) = st.out {
            let Some(need) = bytes(v) else { return Ok(None) };
            match st.moved.and_then(|m| held.remove(&m).map(|r| (m, r))) {
                // written into the dying operand's buffer: no new request
                Some((m, r)) => {
                    live = live.saturating_sub(bytes(m).unwrap_or(0));
                    held.insert(v, r);
                }
                None => {
                    let Some(len) = floats(need) else { return Ok(None) };
                    held.insert(v, take(&mut reqs, &mut events, len));
                }
            }
            live = live.saturating_add(need);
            bound = bound.max(live);
        }
        for (r, need) in temps {
            reqs[r].last = events;
            events += 1;
            live = live.saturating_sub(need);
        }
        for v in &st.dead {
            if let Some(r) = held.remove(v) {
                reqs[r].last = events;
                events += 1;
                live = live.saturating_sub(bytes(*v).unwrap_or(0));
            }
        }
    }
    let Some((_, caps)) = fpn_runtime::plan_slots(&reqs) else {
        return Ok(None);
    };
    let planned = caps
        .iter()
        .fold(0u64, |a, &c| a.saturating_add((c as u64).saturating_mul(4)));
    Ok(Some(MemoryPlan { planned, bound }))
}

/// `let d{k}: i64 = …;` for each distinct compound [`Dim`], computed once.
#[derive(Default)]
struct DimVars {
    memo: HashMap<Dim, TokenStream>,
    next: usize,
    /// Whether some expression uses the `overflow` closure.
    overflow: bool,
    /// The runtime path (for `rules::scale_size`).
    rt: TokenStream,
}

/// An `i64` constant as an expression usable as a method argument.
fn i64_arg(c: i64) -> TokenStream {
    if c == i64::MIN {
        quote!(i64::MIN)
    } else if c < 0 {
        let l = Literal::i64_suffixed(-c);
        quote!(-#l)
    } else {
        let l = Literal::i64_suffixed(c);
        quote!(#l)
    }
}

impl DimVars {
    /// An expression for `d` (a literal, `s{k}` or `d{k}`), emitting its definition into `body`.
    fn expr(&mut self, d: &Dim, body: &mut TokenStream) -> TokenStream {
        match d {
            Dim::Const(c) => i64_arg(*c),
            Dim::Sym(s) => {
                let v = format_ident!("s{}", *s);
                quote!(#v)
            }
            _ => {
                if let Some(t) = self.memo.get(d) {
                    return t.clone();
                }
                let e = match d {
                    Dim::Lin { a, mul, add } => {
                        let a = self.receiver(a, body);
                        self.overflow = true;
                        let (m, k) = (i64_arg(*mul), i64_arg(*add));
                        match (*mul, *add) {
                            (1, _) => quote!(#a.checked_add(#k).ok_or_else(overflow)?),
                            (_, 0) => quote!(#a.checked_mul(#m).ok_or_else(overflow)?),
                            _ => quote!(#a.checked_mul(#m).and_then(|v| v.checked_add(#k)).ok_or_else(overflow)?),
                        }
                    }
                    Dim::Div { a, div } => {
                        let a = self.receiver(a, body);
                        let k = i64_arg(*div);
                        quote!(#a.div_euclid(#k))
                    }
                    Dim::Min(a, b) => {
                        let a = self.receiver(a, body);
                        let b = self.expr(b, body);
                        quote!(#a.min(#b))
                    }
                    Dim::Scale { a, bits } => {
                        // trunc(x · s) in f64, exactly as `fpn_runtime::rules::scale_size`
                        let a = self.receiver(a, body);
                        let s = Literal::f64_suffixed(f64::from_bits(*bits));
                        let rt = self.rt.clone();
                        self.overflow = true;
                        quote!(#rt::rules::scale_size(#a, #s).ok_or_else(overflow)?)
                    }
                    Dim::Const(_) | Dim::Sym(_) => TokenStream::new(),
                };
                let v = format_ident!("d{}", self.next);
                self.next += 1;
                body.extend(quote!(let #v: i64 = #e;));
                self.memo.insert(d.clone(), quote!(#v));
                quote!(#v)
            }
        }
    }

    /// Like [`DimVars::expr`], parenthesised when it is a negative constant.
    fn receiver(&mut self, d: &Dim, body: &mut TokenStream) -> TokenStream {
        let e = self.expr(d, body);
        match d {
            Dim::Const(c) if *c < 0 => quote!((#e)),
            _ => e,
        }
    }
}

impl Gen<'_> {
    // ---------------------------------------------------------------- forward

    /// Which values live in part of another value's buffer ([`Placement`]), remapping their
    /// nodes in `val_of` to that value's variable.
    ///
    /// A concat's input whose statement is a conv, an upsample or a pool (not a model output,
    /// not read twice by the concat) is written by that op straight into its channels of the
    /// concat's buffer, which the earliest such op allocates; a run of channel slices that tiles a conv's
    /// output in order counts as that output. An op that also reads an earlier part of the
    /// buffer borrows both at once (`fpn_runtime::channels_rw`). Every channel slice is then a
    /// view of its input's variable.
    fn placement(&self, val_of: &mut [NodeIndex]) -> Placement {
        let g = self.g;
        let n = g.graph.node_count();
        let mut part: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut into: HashMap<usize, Into> = HashMap::new();
        let mut skip = HashSet::new();
        let pos_of: HashMap<NodeIndex, usize> = self.stmts.iter().enumerate().map(|(p, s)| (s.out, p)).collect();
        let chans = |i: NodeIndex| usize::try_from(self.shape(i).c).ok();
        // a channel slice node: (its source's node, start, len)
        let slice_of = |i: NodeIndex| -> Option<(NodeIndex, usize, usize)> {
            let node = g.node(i);
            let Op::ChannelSlice(cs) = &node.op else { return None };
            let src = *node.inputs.first()?;
            let (st, len) = cs.range(self.shape(src).c).ok()?;
            Some((src, usize::try_from(st).ok()?, usize::try_from(len).ok()?))
        };
        let mut placed: HashSet<NodeIndex> = HashSet::new();
        for (pc, st) in self.stmts.iter().enumerate() {
            let node = g.node(st.head);
            if !matches!(node.op, Op::Concat(_)) || st.head != st.out {
                continue;
            }
            let cat = st.out;
            let xs = &node.inputs;
            let (Some(total), Some(cs)) = (chans(cat), xs.iter().map(|&x| chans(x)).collect::<Option<Vec<_>>>()) else {
                continue;
            };
            let offs: Vec<usize> = cs
                .iter()
                .scan(0usize, |o, &c| {
                    let at = *o;
                    *o += c;
                    Some(at)
                })
                .collect();
            if cs.iter().sum::<usize>() != total {
                continue;
            }
            // candidates: (value, channel offset, the inputs it covers)
            let mut cands: Vec<(NodeIndex, usize, Range<usize>)> = Vec::new();
            let mut i = 0;
            while i < xs.len() {
                if let Some((src, 0, _)) = slice_of(xs[i]) {
                    let v = val_of[src.index()];
                    let cv = chans(src).unwrap_or(0);
                    let (mut j, mut covered) = (i, 0);
                    while let Some((s2, st2, len2)) = xs.get(j).and_then(|&x| slice_of(x)) {
                        if val_of[s2.index()] != v || st2 != covered || covered == cv {
                            break;
                        }
                        covered += len2;
                        j += 1;
                    }
                    if covered == cv && cv > 0 && part[src.index()].is_none() {
                        cands.push((v, offs[i], i..j));
                        i = j;
                        continue;
                    }
                    i += 1;
                    continue;
                }
                cands.push((val_of[xs[i].index()], offs[i], i..i + 1));
                i += 1;
            }
            cands.sort_by_key(|(v, ..)| pos_of.get(v).copied().unwrap_or(usize::MAX));
            let mut accepted: Vec<(NodeIndex, usize, usize, usize)> = Vec::new();
            for (v, off, covers) in cands {
                let Some(&pv) = pos_of.get(&v) else { continue };
                let ps = &self.stmts[pv];
                let Some(len) = chans(v) else { continue };
                let writes_into = matches!(
                    g.node(ps.head).op,
                    Op::Conv(_) | Op::Upsample(_) | Op::MaxPool(_) | Op::AvgPool(_)
                );
                if pv >= pc
                    || !writes_into
                    || self.is_output[v.index()]
                    || placed.contains(&v)
                    || self.is_blocked(v) != self.is_blocked(cat)
                {
                    continue;
                }
                let of_v = |x: NodeIndex| {
                    val_of[x.index()] == v || slice_of(x).is_some_and(|(src, ..)| val_of[src.index()] == v)
                };
                if xs.iter().enumerate().any(|(k, &x)| !covers.contains(&k) && of_v(x)) {
                    continue;
                }
                accepted.push((v, pv, off, len));
                placed.insert(v);
            }
            let first = accepted.iter().map(|a| a.1).min();
            for &(v, pv, c0, len) in &accepted {
                into.insert(
                    pv,
                    Into {
                        buf: cat,
                        c0,
                        len,
                        total,
                        first: Some(pv) == first,
                    },
                );
                for k in 0..n {
                    if val_of[k] == v {
                        val_of[k] = cat;
                        part[k] = Some((c0, len));
                    }
                }
            }
        }
        // channel slices: views of their input's variable
        for (ps, st) in self.stmts.iter().enumerate() {
            if st.head != st.out {
                continue;
            }
            let Some((src, start, len)) = slice_of(st.out) else {
                continue;
            };
            let c0 = part[src.index()].map_or(0, |p| p.0);
            val_of[st.out.index()] = val_of[src.index()];
            part[st.out.index()] = Some((c0 + start, len));
            skip.insert(ps);
        }
        Placement { part, into, skip }
    }

    /// `forward`'s schedule: for every statement its code, the value it allocates (none when it
    /// writes into a dying operand's buffer, or for an input) and the values that die there
    /// (their buffers go back to the arena). [`Gen::forward_fn`] emits it, [`memory_plan`]
    /// replays it over concrete sizes: one schedule for both.
    fn schedule(&self, fields: &HashMap<String, (Ident, FieldKind)>) -> GResult<Schedule> {
        let rt = &self.rt;
        let g = self.g;
        let stmts = &self.stmts;
        let n = g.graph.node_count();
        // which node's variable holds each node's value
        let mut val_of: Vec<NodeIndex> = g.order().collect();
        for s in stmts {
            val_of[s.head.index()] = s.out;
            if let Some(b) = s.bn {
                val_of[b.index()] = s.out;
            }
            if let Some((a, _)) = s.add {
                val_of[a.index()] = s.out;
            }
            if let Some(c) = s.act_node {
                val_of[c.index()] = s.out;
            }
        }
        let Placement { part, into, skip } = self.placement(&mut val_of);
        let bufs: HashSet<NodeIndex> = into.values().map(|p| p.buf).collect();
        // variables holding an output (or part of one: a channel view) live to the end
        let mut live_out = vec![false; n];
        for o in &g.outputs {
            live_out[val_of[o.node.index()].index()] = true;
        }
        let var = |i: NodeIndex| var_ident(val_of[i.index()], &g.node(val_of[i.index()]).name);
        let is_view = |i: NodeIndex| matches!(g.node(val_of[i.index()]).op, Op::Input(crate::ops::input::Input { .. }));
        // last statement using each variable (by output node); outputs live to the end
        let mut last_use: Vec<Option<usize>> = vec![None; n];
        for (pos, s) in stmts.iter().enumerate() {
            for j in s.reads(g) {
                last_use[val_of[j.index()].index()] = Some(pos);
            }
        }
        let mut bind_inputs = TokenStream::new();
        for s in stmts {
            let node = g.node(s.head);
            if matches!(node.op, Op::Input(crate::ops::input::Input { .. }))
                && (!self.cons[s.head.index()].is_empty() || self.is_output[s.head.index()])
            {
                let Op::Input(crate::ops::input::Input { name, .. }) = &node.op else {
                    continue;
                };
                let field = ident(name, "input", name)?;
                let v = var(s.head);
                bind_inputs.extend(quote!(let #v = inputs.#field;));
            }
        }
        // each statement's code with the drops of what dies there (nothing for inputs)
        let mut code: Vec<TokenStream> = Vec::with_capacity(stmts.len());
        let mut steps: Vec<Step> = Vec::with_capacity(stmts.len());
        for (pos, s) in stmts.iter().enumerate() {
            let node = g.node(s.head);
            let mut body = TokenStream::new();
            if matches!(node.op, Op::Input(crate::ops::input::Input { .. })) {
                code.push(body);
                steps.push(Step::default());
                continue;
            }
            let out = var_ident(s.out, &g.node(s.out).name);
            let ins = s.reads(g);
            // inputs read in the other layout: reordered into buffers of their own first
            let mut reordered = vec![None; ins.len()];
            let mut reordered_nodes = Vec::new();
            if !skip.contains(&pos) {
                for (k, &j) in ins.iter().enumerate() {
                    let Some(want) = self.reads_blocked(s, k) else { continue };
                    if self.is_blocked(j) == want {
                        continue;
                    }
                    let r = format_ident!("{}_re{}", out, k);
                    let v = var_ident(val_of[j.index()], &g.node(val_of[j.index()]).name);
                    let x = plain_view(rt, v, part[j.index()]);
                    let f = if want { quote!(to_blocked) } else { quote!(from_blocked) };
                    body.extend(quote!(let #r = #rt::#f(#x)?;));
                    reordered[k] = Some(r);
                    reordered_nodes.push(j);
                }
            }
            let cx = StmtCx {
                gen: self,
                node,
                stmt: s,
                out,
                ins,
                fields,
                val_of: &val_of,
                part: &part,
                into: into.get(&pos),
                live_out: &live_out,
                last_use: &last_use,
                pos,
                moved: std::cell::Cell::new(None),
                split_reads: std::cell::RefCell::new(Vec::new()),
                reordered,
            };
            // a channel slice read as a view emits nothing
            if !skip.contains(&pos) {
                body.extend(node.op.stmt(&cx)?);
            }
            let (ins, moved) = (cx.ins, cx.moved.get());
            for r in cx.reordered.iter().flatten() {
                body.extend(quote!(#rt::recycle(#r);));
            }
            // what the statement allocates: nothing for a view; the concat's buffer for its
            // first producer in place, nothing for the others and the concat itself
            let own = val_of[s.out.index()] == s.out;
            let alloc = match into.get(&pos) {
                Some(p) => p.first.then_some(p.buf),
                None => (own && !skip.contains(&pos) && !bufs.contains(&s.out)).then_some(s.out),
            };
            // drop what dies here
            let mut dead: Vec<NodeIndex> = Vec::new();
            for &j in &ins {
                let v = val_of[j.index()];
                if last_use[v.index()] == Some(pos)
                    && !live_out[v.index()]
                    && !is_view(j)
                    && Some(v) != moved
                    && !dead.contains(&v)
                {
                    dead.push(v);
                }
            }
            if own && last_use[s.out.index()].is_none() && !live_out[s.out.index()] && !dead.contains(&s.out) {
                dead.push(s.out);
            }
            for &v in &dead {
                let id = var_ident(v, &g.node(v).name);
                body.extend(quote!(#rt::recycle(#id);));
            }
            code.push(body);
            steps.push(Step {
                out: alloc,
                moved,
                dead,
                reordered: reordered_nodes,
            });
        }
        Ok(Schedule {
            val_of,
            part,
            live_out,
            last_use,
            bind_inputs,
            code,
            steps,
        })
    }

    fn forward_fn(&self, fields: &HashMap<String, (Ident, FieldKind)>) -> GResult<TokenStream> {
        let rt = &self.rt;
        let g = self.g;
        let Schedule {
            val_of,
            part,
            live_out,
            last_use,
            bind_inputs,
            code,
            ..
        } = self.schedule(fields)?;
        let is_view = |i: NodeIndex| matches!(g.node(val_of[i.index()]).op, Op::Input(crate::ops::input::Input { .. }));
        let (body, helpers) = self.forward_parts(code, &val_of, &last_use, &live_out, is_view)?;
        // outputs: move the last reference, clone earlier ones
        let outputs_ty = &self.outputs_ty;
        let mut fields = Vec::new();
        // blocked outputs: reordered to NCHW (their buffers given back once all are)
        let mut reorders = TokenStream::new();
        let mut done: Vec<NodeIndex> = Vec::new();
        for (k, o) in g.outputs.iter().enumerate() {
            let f = ident(&o.name, "output", &o.name)?;
            let v = var_ident(val_of[o.node.index()], &g.node(val_of[o.node.index()]).name);
            if self.is_blocked(o.node) {
                let r = format_ident!("out{}_nchw", k);
                let x = plain_view(rt, v, part[o.node.index()]);
                reorders.extend(quote!(let #r = #rt::from_blocked(#x)?;));
                fields.push(quote!(#f: #r));
                let buf = val_of[o.node.index()];
                if !done.contains(&buf) {
                    done.push(buf);
                }
                continue;
            }
            let later = g.outputs[k + 1..]
                .iter()
                .any(|p| val_of[p.node.index()] == val_of[o.node.index()]);
            let e = if let Some((c0, len)) = part[o.node.index()] {
                // a view of part of a buffer: the caller gets its own copy
                let (c0, len) = (Literal::usize_unsuffixed(c0), Literal::usize_unsuffixed(len));
                quote!(#rt::channels(#v.view(), #c0, #len)?.to_owned())
            } else if is_view(o.node) {
                quote!(#v.to_owned())
            } else if later {
                quote!(#v.clone())
            } else {
                quote!(#v)
            };
            fields.push(quote!(#f: #e));
        }
        for &buf in &done {
            // a blocked output's buffer, unless an NCHW output moved it
            let moved = g
                .outputs
                .iter()
                .any(|o| val_of[o.node.index()] == buf && !self.is_blocked(o.node));
            if !moved {
                let v = var_ident(buf, &g.node(buf).name);
                reorders.extend(quote!(#rt::recycle(#v);));
            }
        }
        let inputs_ty = &self.inputs_ty;
        let out_names = g
            .outputs
            .iter()
            .map(|o| ident(&o.name, "output", &o.name))
            .collect::<GResult<Vec<_>>>()?;
        Ok(quote! {
            /// Runs the network. Checks every input shape against the spec first (see the type's
            /// docs for the accepted sizes) and returns the runtime's error if one is not accepted.
            ///
            /// Intermediates live in buffers the model keeps between calls (each is reused from
            /// the point the compiled schedule says it dies); hand the outputs back with
            /// [`Self::recycle`] when done with them, and from the second or third call at the
            /// same input sizes on a forward allocates no memory at all.
            pub fn forward(&self, inputs: #inputs_ty<'_>) -> #rt::Result<#outputs_ty> {
                Self::check_sizes(&inputs)?;
                self.arena.run_forward(|| {
                    #bind_inputs
                    #body
                    #reorders
                    ::core::result::Result::Ok(#outputs_ty { #(#fields),* })
                })
            }

            /// Gives the buffers of `outputs` back to the model for its next [`Self::forward`].
            pub fn recycle(&self, outputs: #outputs_ty) {
                self.arena.run(|| {
                    #(#rt::recycle(outputs.#out_names);)*
                });
            }

            /// Frees the buffers the model keeps between calls (the next call allocates again).
            pub fn release_memory(&self) {
                self.arena.clear();
            }

            /// Bytes of the buffers the model keeps between calls (see [`Self::recycle`]).
            pub fn held_memory(&self) -> usize {
                self.arena.bytes()
            }

            #(#helpers)*
        })
    }

    /// `forward`'s statements (`code[pos]` for each statement position) as one body, or, past
    /// [`split::PART`] statements, as calls of private helpers `forward_part{k}` that take the
    /// values live into their run and return the values live out of it (see [`split`]).
    fn forward_parts(
        &self,
        code: Vec<TokenStream>,
        val_of: &[NodeIndex],
        last_use: &[Option<usize>],
        live_out: &[bool],
        is_view: impl Fn(NodeIndex) -> bool,
    ) -> GResult<(TokenStream, Vec<TokenStream>)> {
        let g = self.g;
        let idle = |pos: usize| matches!(g.node(self.stmts[pos].head).op, Op::Input(_));
        let runs = split::stmt_parts(code.len(), |pos| !idle(pos), split::PART);
        if runs.len() <= 1 {
            return Ok((code.into_iter().collect(), Vec::new()));
        }
        let rt = &self.rt;
        // the variables (by node) and the position defining each (inputs: before everything)
        let mut vars: Vec<(usize, NodeIndex)> = Vec::new();
        for (pos, s) in self.stmts.iter().enumerate() {
            let v = val_of[s.out.index()];
            // a value in part of another's buffer (a channel view, a concat's part written in
            // place) is that variable, defined by its first statement
            if vars.iter().any(|&(_, w)| w == v) {
                continue;
            }
            if idle(pos) {
                if !self.cons[s.head.index()].is_empty() || self.is_output[s.head.index()] {
                    vars.push((0, v));
                }
            } else {
                vars.push((pos + 1, v));
            }
        }
        // a variable defined before `at` whose value is still needed at `at` or later
        let live = |at: usize, v: NodeIndex| live_out[v.index()] || last_use[v.index()].is_some_and(|u| u >= at);
        let var = |v: NodeIndex| var_ident(v, &g.node(v).name);
        let mut code = code.into_iter();
        let mut body = TokenStream::new();
        let mut helpers = Vec::new();
        for (k, run) in runs.iter().enumerate() {
            let name = format_ident!("forward_part{}", k);
            let (mut params, mut args, mut rets, mut tys) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut views = false;
            for &(def, v) in &vars {
                if is_view(v) {
                    // views are `Copy`: passed to each run that reads them, never returned
                    let read = self.stmts[run.clone()]
                        .iter()
                        .any(|s| s.reads(g).iter().any(|&j| val_of[j.index()] == v));
                    if read {
                        let id = var(v);
                        params.push(quote!(#id: #rt::ndarray::ArrayView4<'a, f32>));
                        args.push(id);
                        views = true;
                    }
                    continue;
                }
                let id = var(v);
                if def <= run.start && live(run.start, v) {
                    // `mut`: a concat's buffer is written by the producers in this run
                    params.push(quote!(mut #id: #rt::Tensor));
                    args.push(id.clone());
                }
                if def <= run.end && live(run.end, v) {
                    rets.push(id);
                    tys.push(quote!(#rt::Tensor));
                }
            }
            let lifetime = if views { quote!(<'a>) } else { TokenStream::new() };
            let run_code: TokenStream = code.by_ref().take(run.len()).collect();
            let doc = format!(
                " Statements {}..{} of `forward`, run apart to keep rustc's work linear in the spec \
                 (see fpn's `back::split`).",
                run.start, run.end
            );
            helpers.push(quote! {
                #[doc = #doc]
                #[allow(clippy::too_many_arguments, clippy::type_complexity, unused_mut)]
                fn #name #lifetime(&self, #(#params),*) -> #rt::Result<(#(#tys,)*)> {
                    #run_code
                    ::core::result::Result::Ok((#(#rets,)*))
                }
            });
            body.extend(if rets.is_empty() {
                quote!(self.#name(#(#args),*)?;)
            } else {
                quote!(let (#(#rets,)*) = self.#name(#(#args),*)?;)
            });
        }
        Ok((body, helpers))
    }

    // ---------------------------------------------------------------- the file

    fn file(&self) -> GResult<TokenStream> {
        self.check_floats()?;
        let rt = &self.rt;
        let g = self.g;
        let a = self.a;
        let names = g.symbol_names();
        let (name, inputs_ty, outputs_ty) = (&self.name, &self.inputs_ty, &self.outputs_ty);

        // inputs and outputs
        let mut in_fields = Vec::new();
        let mut in_docs = Vec::new();
        let mut seen = HashSet::new();
        for &i in &g.inputs {
            let Op::Input(crate::ops::input::Input {
                name: iname,
                channels,
                size,
            }) = &g.node(i).op
            else {
                return Err(GenError::Unsupported(format!(
                    "graph input `{}` is not an input node",
                    g.node(i).name
                )));
            };
            let f = ident(iname, "input", iname)?;
            if !seen.insert(f.to_string()) {
                return Err(GenError::Collision {
                    what: "inputs",
                    a: iname.clone(),
                    b: iname.clone(),
                    ident: f.to_string(),
                });
            }
            let shape = format!(
                "[N, {channels}, {}, {}]",
                size[0].display(&names),
                size[1].display(&names)
            );
            let doc = format!("`{iname}`: `{shape}` (NCHW).");
            in_docs.push(format!("- {doc}"));
            let doc = format!(" {doc}");
            in_fields.push(quote!(#[doc = #doc] pub #f: #rt::ndarray::ArrayView4<'a, f32>));
        }
        let mut out_fields = Vec::new();
        let mut out_docs = Vec::new();
        let mut seen = HashSet::new();
        for o in &g.outputs {
            let f = ident(&o.name, "output", &o.name)?;
            if !seen.insert(f.to_string()) {
                return Err(GenError::Collision {
                    what: "outputs",
                    a: o.name.clone(),
                    b: o.name.clone(),
                    ident: f.to_string(),
                });
            }
            let s = a
                .shapes
                .get(o.node.index())
                .ok_or_else(|| GenError::Unsupported(format!("no shape for output `{}`", o.name)))?;
            let doc = format!(
                "`{}`: `[N, {}, {}, {}]` (node {}).",
                o.name,
                s.c,
                s.h.display(&names),
                s.w.display(&names),
                inert_code(&g.node(o.node).name)
            );
            out_docs.push(format!("- {doc}"));
            let doc = format!(" {doc}");
            out_fields.push(quote!(#[doc = #doc] pub #f: #rt::Tensor));
        }

        // parameters
        let (fields, by_prefix) = self.fields()?;
        let field_defs = fields.iter().map(|f| {
            let (id, ty, doc) = (&f.ident, &f.ty, &f.doc);
            let doc = format!(" {doc}");
            quote!(#[doc = #doc] #id: #ty)
        });
        let init_tensors = self.load_tensors(false)?;
        let weight_tensors = self.load_tensors(true)?;
        let (init_body, load_body, part_fns) = self.loaders(&fields, &init_tensors, &weight_tensors);
        let mut total: u128 = 0;
        let param_list = a.params.iter().map(|p| {
            let n = &p.name;
            let dims = p
                .shape
                .iter()
                .map(|&d| Literal::usize_unsuffixed(usize::try_from(d).unwrap_or(0)));
            total = total.saturating_add(p.shape.iter().map(|&d| u128::try_from(d).unwrap_or(0)).product());
            quote!((#n, &[#(#dims),*]))
        });
        let param_list: Vec<TokenStream> = param_list.collect();
        let any_fold = self.fold.values().any(|f| f.is_some());
        let fold_fn = if any_fold {
            quote! {
                /// Folds an eval-mode batch norm into the conv weight `w` (scaled in place) and
                /// returns the new bias: `(bias - mean) · s + beta` with `s = gamma / sqrt(var + eps)`,
                /// the formula of the runtime's `fold_batch_norm`. Lengths are checked at load.
                fn fold_bn(
                    w: &mut #rt::ndarray::Array4<f32>,
                    bias: ::core::option::Option<&#rt::ndarray::Array1<f32>>,
                    gamma: &#rt::ndarray::Array1<f32>,
                    beta: &#rt::ndarray::Array1<f32>,
                    mean: &#rt::ndarray::Array1<f32>,
                    var: &#rt::ndarray::Array1<f32>,
                    eps: f32,
                ) -> #rt::ndarray::Array1<f32> {
                    let mut out = #rt::ndarray::Array1::<f32>::zeros(w.dim().0);
                    let rows = w.outer_iter_mut().zip(out.iter_mut()).zip(gamma.iter().zip(beta)).zip(mean.iter().zip(var));
                    for (co, (((mut filt, o), (&g, &be)), (&m, &v))) in rows.enumerate() {
                        let s = g / (v + eps).sqrt();
                        filt.mapv_inplace(|x| x * s);
                        let b0 = bias.and_then(|b| b.get(co)).map_or(0.0, |&b| b);
                        *o = (b0 - m) * s + be;
                    }
                    out
                }
            }
        } else {
            TokenStream::new()
        };
        let check = self.check_sizes_fn()?;
        let forward = self.forward_fn(&by_prefix)?;
        let weights_arg = if a.params.is_empty() { quote!(_w) } else { quote!(w) };

        // docs
        let mut doc: Vec<String> = vec![format!("The `{}` network, generated by fpn.", g.name)];
        if let Some(d) = &g.doc {
            doc.push(String::new());
            doc.extend(inert_doc(d));
        }
        doc.push(String::new());
        doc.push("Inputs:".to_string());
        doc.extend(in_docs);
        doc.push(String::new());
        doc.push("Outputs:".to_string());
        doc.extend(out_docs);
        doc.push(String::new());
        doc.push(format!(
            "Accepted sizes: {}; every intermediate size must be at least 1 and merged feature maps must agree.",
            self.accepted
        ));
        doc.push(String::new());
        doc.push(format!(
            "Parameters: {total} in {} tensors (see [`{}::PARAMS`]).",
            a.params.len(),
            g.name
        ));
        let doc = doc
            .iter()
            .map(|l| if l.is_empty() { String::new() } else { format!(" {l}") });
        let doc_attrs = doc.map(|l| quote!(#[doc = #l]));
        let in_doc = format!(" Inputs of [`{}::forward`], one NCHW view per spec input.", g.name);
        let out_doc = format!(" Outputs of [`{}::forward`], one tensor per spec output.", g.name);

        Ok(quote! {
            #(#doc_attrs)*
            #[derive(Clone, Debug)]
            pub struct #name {
                #(#field_defs,)*
                /// Activation buffers kept between calls of [`Self::forward`] (see
                /// [`Self::recycle`]).
                arena: #rt::ArenaCell,
            }

            #[doc = #in_doc]
            #[derive(Clone, Copy, Debug)]
            pub struct #inputs_ty<'a> {
                #(#in_fields,)*
            }

            #[doc = #out_doc]
            #[derive(Clone, Debug)]
            pub struct #outputs_ty {
                #(#out_fields,)*
            }

            impl #name {
                /// Every parameter tensor as `(PyTorch state_dict name, shape)`, in first-use order.
                pub const PARAMS: &[(&str, &[usize])] = &[#(#param_list),*];

                /// PyTorch-default initialisation, deterministic in `seed` (conv weights and
                /// biases uniform in ±1/sqrt(fan_in), batch norms identity, fusion weights 1).
                pub fn init(seed: u64) -> Self {
                    #init_body
                }

                /// Loads every tensor of [`Self::PARAMS`] from `w`, checking names and shapes
                /// (every missing tensor is listed in one error).
                pub fn from_weights(#weights_arg: &#rt::Weights) -> #rt::Result<Self> {
                    #load_body
                }

                /// Loads the parameters from a `.safetensors` file (a PyTorch `state_dict`).
                pub fn from_safetensors(path: impl ::core::convert::AsRef<::std::path::Path>) -> #rt::Result<Self> {
                    Self::from_weights(&#rt::Weights::from_file(path)?)
                }

                /// Loads the parameters from a `.safetensors` file whose keys `opts` rewrites (a
                /// checkpoint whose modules are named differently: `LoadOptions::new().map("model.4.", "")`).
                pub fn from_safetensors_with(
                    path: impl ::core::convert::AsRef<::std::path::Path>,
                    opts: &#rt::LoadOptions,
                ) -> #rt::Result<Self> {
                    Self::from_weights(&opts.load(path)?)
                }

                /// Loads the parameters from the bytes of a `.safetensors` file.
                pub fn from_safetensors_bytes(bytes: ::std::vec::Vec<u8>) -> #rt::Result<Self> {
                    Self::from_weights(&#rt::Weights::from_bytes(bytes)?)
                }

                #forward

                #check

                #fold_fn

                #(#part_fns)*
            }
        })
    }
}
