//! Lowering: [`ast::Spec`] → [`Graph`]. Builds the inputs and symbols, checks names,
//! references, cycles and the op budget, and lowers each node: a primitive op by its own module
//! ([`crate::ops`]), composites in `crate::composite`, presets in `crate::presets`, all with
//! PyTorch `state_dict` names. Shapes are not looked at here (see [`crate::infer`]).

use crate::ast::{self, Int, IntExpr, NodeDecl, Norm, OpExpr, Ref, SizeDecl};
use crate::diag::{Checked, Code, Diagnostic, Reported};
use crate::dim::Dim;
use crate::expr::{EvalError, Num};
use crate::ir::{Graph, Node, Op, Output, Symbol};
use crate::ops::input::Input;
use crate::ops::LowerCx;
use crate::params::Setting;
use crate::span::Span;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{HashMap, HashSet};

/// Deepest block-in-block nesting (guards against recursive blocks).
pub(crate) const MAX_CALL_DEPTH: usize = 32;
/// Largest channel count, kernel, stride, padding, dilation or width (2^31): keeps every
/// product of two attributes inside `i64`.
const MAX_ATTR: i64 = 1 << 31;
/// `upsample: {match: skip}`: the input of the innermost enclosing `skip`/`residual`.
pub const SKIP_INPUT: &str = "skip";
/// Most IR nodes one spec may expand to.
const MAX_IR_NODES: usize = 100_000;

/// Rust keywords and reserved words: never valid as generated names.
pub const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become",
    "box", "do", "final", "gen", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "union",
];

/// A block body's parameters (empty at the top level). Expressions see them first, then the
/// spec's (`params:` and its scale's values, held by the lowering), which they shadow; the
/// spec's are never copied into an `Env`.
pub type Env = HashMap<String, Num>;

/// Where an op expression is lowered: what [`Lower::op`] and the composites it calls pass down.
#[derive(Clone, Copy)]
pub(crate) struct Site<'a> {
    /// The op's span.
    pub span: Span,
    /// The previous value in a sequence (`Ok(None)`: none; `Err`: its `from` failed).
    pub input: Checked<Option<NodeIndex>>,
    /// Block parameters in scope.
    pub env: &'a Env,
    /// The node name (nested nodes are named below it).
    pub name: &'a str,
    /// The `state_dict` prefix of its parameters.
    pub prefix: &'a str,
    /// How many block calls it is nested in.
    pub depth: usize,
}

/// What a name refers to.
#[derive(Clone, Debug)]
pub(crate) enum Handle {
    One(NodeIndex),
    Many(Vec<(String, NodeIndex)>),
    /// The steps of a `repeat`, in order (`.0`, `.1`, …): where one value is needed, the last
    /// step; in a list (`concat: [m]`), every step.
    Chain(Vec<(String, NodeIndex)>),
}

impl Handle {
    /// The value of a handle used where one is needed: a single node or a chain's last step.
    pub(crate) fn one(&self) -> Option<NodeIndex> {
        match self {
            Handle::One(n) => Some(*n),
            Handle::Chain(v) => v.last().map(|(_, n)| *n),
            Handle::Many(_) => None,
        }
    }

    /// Every node the handle names, in order.
    fn nodes(&self) -> Vec<NodeIndex> {
        match self {
            Handle::One(n) => vec![*n],
            Handle::Many(v) | Handle::Chain(v) => v.iter().map(|(_, n)| *n).collect(),
        }
    }
}

/// Where a list of node declarations is lowered: the spec's top level, or the body of one
/// instance of a graph-shaped block.
pub(crate) struct Scope<'a> {
    /// The names visible besides the declarations: the spec's or the block's inputs.
    pub inputs: Vec<&'a str>,
    /// What the first declaration reads without `from`.
    pub first: Option<Handle>,
    /// Block parameters in scope.
    pub env: &'a Env,
    /// The instance's graph-node name and `state_dict` prefix (`None` at the top level).
    pub inst: Option<(&'a str, &'a str)>,
    /// How many block calls the declarations are nested in.
    pub depth: usize,
}

/// The most steps one `repeat` may have (the op budget bounds the nodes; this bounds the work
/// of a repeated op that adds none).
const MAX_REPEAT: i64 = 100_000;

/// Lowers a spec, reporting every structural problem at once. Warnings come back beside the graph.
pub fn lower(spec: &ast::Spec) -> Result<(Graph, Vec<Diagnostic>), Vec<Diagnostic>> {
    lower_with(spec, &[])
}

/// Lowers a spec as far as it goes: the graph of every declaration that lowered (a failed one
/// and the nodes that depend on it are left out, so the graph keeps the invariants of
/// [`crate::ir`]) and every diagnostic; with errors, no warnings. `fpn graph` draws a failing
/// spec from it.
pub fn lower_partial(spec: &ast::Spec) -> (Graph, Vec<Diagnostic>) {
    lower_partial_with(spec, &[])
}

/// [`lower`] with parameters set from outside the spec (`--set scale=s`).
pub fn lower_with(spec: &ast::Spec, sets: &[Setting]) -> Result<(Graph, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (graph, diags) = lower_partial_with(spec, sets);
    if diags.iter().any(Diagnostic::is_error) {
        Err(diags)
    } else {
        Ok((graph, diags))
    }
}

/// [`lower_partial`] with parameters set from outside the spec (`--set scale=s`).
pub fn lower_partial_with(spec: &ast::Spec, sets: &[Setting]) -> (Graph, Vec<Diagnostic>) {
    let mut l = Lower {
        spec,
        g: DiGraph::new(),
        diags: Vec::new(),
        names: HashMap::new(),
        symbols: Vec::new(),
        budget: None,
        failed: HashMap::new(),
        skip_inputs: Vec::new(),
        params: Env::new(),
        failed_params: HashMap::new(),
    };
    let scale = l.spec_params(sets);
    let name = l.spec_name(scale.as_deref());
    let inputs = l.inputs();
    l.check_names();
    let env = Env::new();
    let scope = Scope {
        inputs: spec.inputs.iter().map(|i| i.name.text.as_str()).collect(),
        first: (inputs.len() == 1).then(|| Handle::One(inputs[0])),
        env: &env,
        inst: None,
        depth: 0,
    };
    l.lower_nodes(&spec.nodes, &scope);
    let (outputs, _) = l.outputs(&spec.outputs, &spec.nodes, &scope.inputs);
    let failed = l.diags.iter().any(Diagnostic::is_error);
    let mut exports: Vec<(String, NodeIndex)> = l
        .names
        .iter()
        .flat_map(|(name, h)| match h {
            Handle::Many(parts) | Handle::Chain(parts) => {
                parts.iter().map(|(out, n)| (format!("{name}.{out}"), *n)).collect()
            }
            Handle::One(_) => Vec::new(),
        })
        .collect();
    exports.sort();
    let mut graph = Graph {
        name,
        name_span: spec.name.span,
        doc: spec.doc.clone(),
        symbols: l.symbols,
        graph: l.g,
        inputs,
        outputs,
        modules: spec
            .nodes
            .iter()
            .filter_map(|d| d.module.as_ref().map(|m| (m.text.clone(), m.span)))
            .collect(),
        exports,
    };
    if failed {
        return (graph, l.diags);
    }
    let warnings = unused_warnings(spec, &mut graph, &l.names);
    (graph, warnings)
}

fn needs_input(op: &OpExpr) -> bool {
    if let OpExpr::Prim(a) = op {
        return a.needs_input();
    }
    !matches!(op, OpExpr::Pyramid(_) | OpExpr::Head(..))
}

/// Warnings for declarations no output depends on.
fn unused_warnings(spec: &ast::Spec, g: &mut Graph, names: &HashMap<String, Handle>) -> Vec<Diagnostic> {
    let mut live = vec![false; g.graph.node_count()];
    let mut stack: Vec<NodeIndex> = g.outputs.iter().map(|o| o.node).collect();
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut live[n.index()], true) {
            continue;
        }
        stack.extend(g.graph[n].inputs.iter().copied());
    }
    let mut out = Vec::new();
    for d in &spec.nodes {
        let Some(nodes) = names.get(&d.name.text).map(Handle::nodes) else {
            continue;
        };
        if nodes.iter().all(|n| !live[n.index()]) {
            out.push(
                Diagnostic::warning(
                    Code::W0001,
                    d.name.span,
                    format!("node `{}` is never used", d.name.text),
                )
                .with_label("no output depends on this")
                .with_help("list it under `outputs`, use it from another node, or remove it"),
            );
        }
    }
    for &i in &g.inputs {
        if !live[i.index()] {
            out.push(
                Diagnostic::warning(
                    Code::W0002,
                    g.graph[i].span,
                    format!("input `{}` is never used", g.graph[i].name),
                )
                .with_label("nothing reads this input")
                .with_help("remove the input, or read it with `from:`"),
            );
        }
    }
    out
}

/// The lowering state: the graph built so far, names, diagnostics.
pub(crate) struct Lower<'s> {
    pub(crate) spec: &'s ast::Spec,
    pub(crate) g: DiGraph<Node, u32>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) names: HashMap<String, Handle>,
    pub(crate) symbols: Vec<Symbol>,
    /// The E0215 report once the op budget is spent (later additions fail with it).
    pub(crate) budget: Option<Reported>,
    /// Names that failed to lower or to be declared, with the proof of their report (a
    /// reference to one fails with it).
    pub(crate) failed: HashMap<String, Reported>,
    /// Inputs of the enclosing `skip`/`residual` bodies, innermost last (`match: skip`).
    pub(crate) skip_inputs: Vec<NodeIndex>,
    /// The spec's parameters (its `params:` and its scale's values), in every scope.
    pub(crate) params: Env,
    /// Spec parameters that failed to evaluate, with the proof of their report (an expression
    /// using one fails with it, silently).
    pub(crate) failed_params: HashMap<String, Reported>,
}

/// Checks that a name can become a Rust identifier.
pub fn check_ident(name: &str, span: Span, what: &str) -> Option<Diagnostic> {
    let ok = ast::is_ident(name) && !RUST_KEYWORDS.contains(&name) && name != "_";
    (!ok).then(|| {
        Diagnostic::error(
            Code::E0210,
            span,
            format!("{what} `{}` is not a valid Rust identifier", name.escape_debug()),
        )
        .with_label("becomes a Rust name in generated code")
        .with_help("use ASCII letters, digits and `_`, starting with a letter, and not a Rust keyword")
    })
}

impl<'s> Lower<'s> {
    /// Reports `d`; the returned proof is the `Err` of a failed lowering.
    pub(crate) fn err(&mut self, d: Diagnostic) -> Reported {
        Reported::push(&mut self.diags, d)
    }

    pub(crate) fn add(
        &mut self,
        name: String,
        op: Op,
        inputs: Vec<NodeIndex>,
        span: Span,
        param: Option<String>,
    ) -> Checked<NodeIndex> {
        if self.g.node_count() >= MAX_IR_NODES {
            if let Some(r) = self.budget {
                return Err(r);
            }
            let r = self.err(
                Diagnostic::error(
                    Code::E0215,
                    span,
                    format!("the spec expands to more than {MAX_IR_NODES} ops"),
                )
                .with_label("expansion stops here")
                .with_help("reduce block repeats or levels"),
            );
            self.budget = Some(r);
            return Err(r);
        }
        let idx = self.g.add_node(Node {
            name,
            op,
            inputs: inputs.clone(),
            span,
            param,
        });
        for (slot, i) in inputs.iter().enumerate() {
            self.g.add_edge(*i, idx, slot as u32);
        }
        Ok(idx)
    }

    /// The channel counts of `xs` as shape inference will find them: inference over a copy of
    /// the part of the graph built so far that they depend on (all `None` when it reports an
    /// error there, which the full inference reports again). Generators use it to decide what the spec's shapes decide,
    /// such as whether a level needs a projection.
    pub(crate) fn channels_of(&self, xs: &[NodeIndex]) -> Vec<Option<i64>> {
        let mut keep = vec![false; self.g.node_count()];
        let mut stack: Vec<NodeIndex> = xs.to_vec();
        while let Some(i) = stack.pop() {
            if let Some(k) = keep.get_mut(i.index()) {
                if !std::mem::replace(k, true) {
                    stack.extend(self.g[i].inputs.iter().copied());
                }
            }
        }
        // indices are a topological order, so the kept nodes in index order are one too
        let mut map = vec![None; self.g.node_count()];
        let mut sub = DiGraph::new();
        for i in self.g.node_indices().filter(|i| keep[i.index()]) {
            let mut node = self.g[i].clone();
            node.inputs = node.inputs.iter().filter_map(|j| map[j.index()]).collect();
            let ins = node.inputs.clone();
            let k = sub.add_node(node);
            for (slot, j) in ins.into_iter().enumerate() {
                sub.add_edge(j, k, slot as u32);
            }
            map[i.index()] = Some(k);
        }
        let g = Graph {
            name: String::new(),
            name_span: Span::default(),
            doc: None,
            symbols: self.symbols.clone(),
            graph: sub,
            inputs: Vec::new(),
            outputs: Vec::new(),
            modules: Vec::new(),
            exports: Vec::new(),
        };
        let (a, _, diags) = crate::infer::infer(&g);
        let ok = !diags.iter().any(|d| d.is_error());
        xs.iter()
            .map(|x| {
                let k = map.get(x.index()).copied().flatten().filter(|_| ok)?;
                a.shapes.get(k.index()).map(|s| s.c)
            })
            .collect()
    }

    /// The id of size symbol `name`: a declared one, or (when the spec declares none) a new one.
    #[allow(clippy::result_large_err)] // an error here is reported once, not hot
    fn symbol(&mut self, name: &str, span: Span) -> Result<u32, Diagnostic> {
        if let Some(i) = self.symbols.iter().position(|x| x.name == name) {
            return Ok(i as u32);
        }
        if !self.spec.symbols.is_empty() {
            let declared: Vec<&str> = self.spec.symbols.iter().map(|d| d.name.text.as_str()).collect();
            let help = match ast::suggest(name, declared.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? (declared: {})", declared.join(", ")),
                None => format!(
                    "declare it under `symbols:`, e.g. `{name}: 1..` (declared: {})",
                    declared.join(", ")
                ),
            };
            return Err(Diagnostic::error(
                Code::E0224,
                span,
                format!("unknown size symbol `{name}`: the spec declares its symbols under `symbols:`"),
            )
            .with_label("not a declared symbol")
            .with_help(help));
        }
        self.symbols.push(Symbol {
            name: name.to_string(),
            span,
            min: 1,
            max: None,
        });
        Ok(self.symbols.len() as u32 - 1)
    }

    /// A name in an input size: an integer spec parameter's value, else a size symbol.
    #[allow(clippy::result_large_err)] // an error here is reported once, not hot
    fn size_name(&mut self, name: &str, span: Span) -> Result<Dim, Diagnostic> {
        match self.params.get(name) {
            Some(Num::Int(v)) => Ok(Dim::Const(*v)),
            Some(Num::Float(f)) => Err(Diagnostic::error(
                Code::E0240,
                span,
                format!("the parameter `{name}` is {}, not an integer", Num::Float(*f)),
            )
            .with_label("a float where an integer size is needed")
            .with_help(format!(
                "give `{name}` an integer value, e.g. with `round(…)` under `params:`"
            ))),
            None => Ok(Dim::Sym(self.symbol(name, span)?)),
        }
    }

    /// An input size expression (`H/8`, `2*H`, `H-1`) as a [`Dim`] over one symbol. Division is
    /// exact: of constants it must divide, of a symbol it becomes a constraint (infer).
    #[allow(clippy::result_large_err)] // an error here is reported once, not hot
    fn size_expr(&mut self, e: &IntExpr, span: Span) -> Result<Dim, Diagnostic> {
        let bad = |msg: String, label: &str, help: &str| {
            Diagnostic::error(Code::E0225, span, msg)
                .with_label(label.to_string())
                .with_help(help.to_string())
        };
        let overflow = || {
            bad(
                "the input size expression overflows".into(),
                "numbers too large",
                "sizes must stay below 2^63; check for a typo in a large number",
            )
        };
        Ok(match e {
            IntExpr::Lit(v) => Dim::Const(*v),
            IntExpr::Param(name) => self.size_name(name, span)?,
            IntExpr::Float(_) | IntExpr::Neg(_) | IntExpr::Call(..) => {
                return Err(bad(
                    format!("`{e}` is not an input size expression"),
                    "not integer arithmetic on one symbol",
                    "an input size is arithmetic on one symbol with integers, like `H/8`, `2*H` or `H-1`; compute other numbers under `params:`",
                ))
            }
            IntExpr::Bin(a, op, b) => {
                let (a, b) = (self.size_expr(a, span)?, self.size_expr(b, span)?);
                let one_symbol = "an input size is arithmetic on one symbol with numbers, like `H/8`, `2*H` or `H-1`";
                match (&a, &b, op) {
                    (_, Dim::Const(0), '/') => {
                        return Err(bad(
                            "division by zero in an input size".into(),
                            "divides by 0",
                            "divide by a positive number, e.g. `H/8`",
                        ))
                    }
                    (_, Dim::Const(c), '/') if *c < 0 => {
                        return Err(bad(
                            format!("an input size divides by {c}"),
                            "negative divisor",
                            "divide by a positive number, e.g. `H/8`",
                        ))
                    }
                    (Dim::Const(x), Dim::Const(c), '/') => {
                        if x.rem_euclid(*c) != 0 {
                            return Err(bad(
                                format!("{x}/{c} is not a whole number"),
                                "not a whole number",
                                "`/` in an input size divides exactly; write the size as a number",
                            ));
                        }
                        Dim::Const(x.div_euclid(*c))
                    }
                    (_, Dim::Const(c), '/') => a.floor_div(*c).ok_or_else(overflow)?,
                    (_, _, '/') => {
                        return Err(bad(
                            "an input size divides by a size symbol".into(),
                            "divides by a symbol",
                            one_symbol,
                        ))
                    }
                    (Dim::Const(x), Dim::Const(y), _) => Dim::Const(
                        match op {
                            '+' => x.checked_add(*y),
                            '-' => x.checked_sub(*y),
                            _ => x.checked_mul(*y),
                        }
                        .ok_or_else(overflow)?,
                    ),
                    (d, Dim::Const(c), '+') | (Dim::Const(c), d, '+') => d.add(*c).ok_or_else(overflow)?,
                    (d, Dim::Const(c), '-') => d.add(c.checked_neg().ok_or_else(overflow)?).ok_or_else(overflow)?,
                    (Dim::Const(c), d, '-') => d.lin(-1, *c).ok_or_else(overflow)?,
                    (d, Dim::Const(c), '*') | (Dim::Const(c), d, '*') => d.lin(*c, 0).ok_or_else(overflow)?,
                    _ => {
                        let what = if *op == '*' { "multiplies" } else { "combines" };
                        return Err(bad(
                            format!("an input size {what} two symbolic sizes"),
                            "not arithmetic on one symbol",
                            one_symbol,
                        ));
                    }
                }
            }
        })
    }

    fn inputs(&mut self) -> Vec<NodeIndex> {
        let mut out = Vec::new();
        for d in &self.spec.symbols {
            self.symbols.push(Symbol {
                name: d.name.text.clone(),
                span: d.name.span,
                min: d.min,
                max: d.max,
            });
        }
        for inp in &self.spec.inputs {
            if let Some(e) = check_ident(&inp.name.text, inp.name.span, "input name") {
                self.diags.push(e);
            }
            let env = Env::new();
            // a literal's errors point at the input's name, as before parameters
            let channels = match inp.channels.expr {
                IntExpr::Lit(c) if c < 1 => {
                    self.diags
                        .push(positive(inp.name.span, "the channel count of an input", c));
                    1
                }
                IntExpr::Lit(c) if c > MAX_ATTR => {
                    self.diags
                        .push(too_large(inp.name.span, "the channel count of an input", c));
                    1
                }
                _ => self
                    .eval_pos(&inp.channels, &env, "the channel count of an input", 1)
                    .unwrap_or(1),
            };
            let mut size = Vec::new();
            for (s, span) in &inp.size {
                size.push(match s {
                    SizeDecl::Fixed(v) => {
                        if *v < 1 {
                            self.diags.push(positive(*span, "an input size", *v));
                        }
                        Dim::Const(*v)
                    }
                    SizeDecl::Sym(name) => match self.size_name(name, *span) {
                        Ok(d) => d,
                        Err(d) => {
                            self.diags.push(d);
                            Dim::Const(1)
                        }
                    },
                    SizeDecl::Expr(e) => match self.size_expr(e, *span) {
                        Ok(Dim::Const(v)) if v < 1 => {
                            self.diags.push(positive(*span, "an input size", v));
                            Dim::Const(1)
                        }
                        Ok(d) => d,
                        Err(d) => {
                            self.diags.push(d);
                            Dim::Const(1)
                        }
                    },
                });
            }
            let [h, w] = <[Dim; 2]>::try_from(size).unwrap_or([Dim::Const(1), Dim::Const(1)]);
            let op = Op::Input(Input {
                name: inp.name.text.clone(),
                channels,
                size: [h, w],
            });
            if let Ok(n) = self.add(inp.name.text.clone(), op, vec![], inp.name.span, None) {
                self.names.insert(inp.name.text.clone(), Handle::One(n));
                out.push(n);
            }
        }
        // A declared symbol no input size uses cannot be solved from the inputs (the generated
        // code and the interpreter read every symbol off an input size).
        let had_errors = self.diags.iter().any(Diagnostic::is_error);
        for (k, d) in self.spec.symbols.iter().enumerate() {
            let used = out.iter().any(|&n| match &self.g[n].op {
                Op::Input(i) => i.size.iter().any(|s| s.symbols().contains(&(k as u32))),
                _ => false,
            });
            if !used && !had_errors {
                self.diags.push(
                    Diagnostic::error(
                        Code::E0228,
                        d.name.span,
                        format!("size symbol `{}` is declared but no input size uses it", d.name.text),
                    )
                    .with_label("unused symbol")
                    .with_help(format!(
                        "remove `{}` from `symbols:`, or use it in an input size such as `[3, {}, W]`",
                        d.name.text, d.name.text
                    )),
                );
            }
        }
        if self.spec.inputs.is_empty() {
            self.diags.push(
                Diagnostic::error(Code::E0211, self.spec.span, "the spec has no inputs")
                    .with_label("needs `inputs`")
                    .with_help("declare inputs as `inputs: {x: [3, 224, 224]}`"),
            );
        }
        out
    }

    fn check_names(&mut self) {
        let spec = self.spec;
        let mut seen: HashMap<&str, Span> = spec
            .inputs
            .iter()
            .map(|i| (i.name.text.as_str(), i.name.span))
            .collect();
        for b in &spec.blocks {
            if let Some(e) = check_ident(&b.name.text, b.name.span, "block name") {
                self.diags.push(e);
            }
            if ast::op_keywords().contains(&b.name.text.as_str()) {
                self.diags.push(
                    Diagnostic::error(
                        Code::E0202,
                        b.name.span,
                        format!("block `{}` has the name of a built-in op", b.name.text),
                    )
                    .with_label("shadows an op")
                    .with_help("rename the block"),
                );
            }
        }
        for b in &spec.blocks {
            let ast::BlockBody::Graph(bg) = &b.body else { continue };
            let mut local: HashMap<&str, Span> = HashMap::new();
            for n in &bg.inputs {
                if let Some(e) = check_ident(&n.text, n.span, "block input name") {
                    self.diags.push(e);
                }
            }
            for n in bg.inputs.iter().chain(bg.nodes.iter().map(|d| &d.name)) {
                if let Some(prev) = local.insert(n.text.as_str(), n.span) {
                    self.diags.push(duplicate(
                        n.span,
                        prev,
                        format!("the name `{}` is used twice in block `{}`", n.text, b.name.text),
                        ["second use", "first use"],
                        "give every input and node of a block its own name",
                    ));
                }
            }
            self.ambiguous_names(&bg.nodes, &local);
        }
        for n in &spec.nodes {
            if let Some(prev) = seen.insert(n.name.text.as_str(), n.name.span) {
                self.diags.push(duplicate(
                    n.name.span,
                    prev,
                    format!("the name `{}` is used twice", n.name.text),
                    ["second use", "first use"],
                    "give every input and node its own name",
                ));
            }
        }
        self.ambiguous_names(&spec.nodes, &seen);
        // output fields: a map's keys as written (identifiers), a list's derived from the names
        let mut fields: HashMap<String, &ast::OutputDecl> = HashMap::new();
        for o in &spec.outputs {
            let field = if o.derived {
                derived_field(&o.target.scoped(|n| seen.contains_key(n)))
            } else {
                if let Some(e) = check_ident(&o.name.text, o.name.span, "output name") {
                    self.diags.push(e);
                }
                o.name.text.clone()
            };
            match fields.get(&field) {
                Some(prev) if prev.derived && o.derived && prev.name.text != o.name.text => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::E0229,
                            o.name.span,
                            format!(
                                "the outputs `{}` and `{}` both become the field `{field}` in generated code",
                                prev.name.text, o.name.text
                            ),
                        )
                        .with_label(format!("`{field}`"))
                        .with_secondary(prev.name.span, format!("also `{field}`"))
                        .with_help("name the fields yourself: `outputs: {a: \"P3 out\", b: \"p3-out\"}`"),
                    );
                }
                Some(prev) => self.diags.push(duplicate(
                    o.name.span,
                    prev.name.span,
                    format!("the output `{field}` is listed twice"),
                    ["second output with this name", "first"],
                    "name outputs explicitly: `outputs: {a: x.p3, b: y.p3}`",
                )),
                None => {
                    fields.insert(field, o);
                }
            }
        }
        if spec.outputs.is_empty() {
            self.diags.push(
                Diagnostic::error(Code::E0211, spec.span, "the spec has no outputs")
                    .with_label("needs `outputs`")
                    .with_help("list the nodes to return: `outputs: [p3, p4, p5]`"),
            );
        }
    }

    /// E0202 for a node named `a.b` beside a node or input `a` (in the same scope `names`):
    /// the reference `a.b` would name both it and output `b` of `a`.
    fn ambiguous_names(&mut self, nodes: &[NodeDecl], names: &HashMap<&str, Span>) {
        for d in nodes {
            let split = d.name.text.rsplit_once('.').filter(|(_, b)| is_output_name(b));
            let Some(other) = split.and_then(|(a, _)| names.get(a).map(|s| (a, *s))) else {
                continue;
            };
            let (a, span) = other;
            let out = &d.name.text[a.len() + 1..];
            self.diags.push(duplicate(
                d.name.span,
                span,
                format!(
                    "the name `{}` could also be read as output `{out}` of `{a}`",
                    d.name.text
                ),
                ["ambiguous name", "this name"],
                "rename one of them: a reference `a.b` is the node named `a.b` or output `b` of `a`, never both",
            ));
        }
    }

    /// Lowers `nodes` in dependency order into `self.names` (failures into `self.failed`).
    pub(crate) fn lower_nodes(&mut self, nodes: &[NodeDecl], scope: &Scope<'_>) {
        let order = self.decl_order(nodes, &scope.inputs, scope.inst.is_some());
        let mut done: HashMap<usize, Handle> = HashMap::new();
        for &i in &order {
            let decl = &nodes[i];
            let default_in = if i == 0 {
                scope.first.clone()
            } else {
                done.get(&(i - 1)).cloned()
            };
            let input = match &decl.from {
                Some(r) => self.resolve(r).and_then(|h| self.single(h, r)).map(Some),
                None => match default_in.as_ref().and_then(Handle::one) {
                    Some(n) => Ok(Some(n)),
                    None if needs_input(&decl.op.expr) => {
                        match i.checked_sub(1).and_then(|p| self.failed.get(&nodes[p].name.text)) {
                            Some(e) => Err(*e), // the previous node failed and said so
                            None => Err(self.err(no_input(
                                decl.name.span,
                                &format!("node `{}`", decl.name.text),
                                if i == 0 && scope.inst.is_none() {
                                    "the spec has several inputs: add `from: <input>`"
                                } else if i == 0 {
                                    "the block has several inputs: add `from: <input>`"
                                } else {
                                    "the previous node has several outputs: add `from: <node>.<output>`"
                                },
                            ))),
                        }
                    }
                    None => Ok(None),
                },
            };
            if let Err(e) = input {
                self.failed.insert(decl.name.text.clone(), e);
                continue;
            }
            let path = &decl.module.as_ref().unwrap_or(&decl.name).text;
            let (name, prefix) = match scope.inst {
                None => (decl.name.text.clone(), path.clone()),
                Some((iname, iprefix)) => (format!("{iname}.{}", decl.name.text), join(iprefix, path)),
            };
            let site = Site {
                span: decl.op.span,
                input,
                env: scope.env,
                name: &name,
                prefix: &prefix,
                depth: scope.depth,
            };
            let before = self.g.node_count();
            let mut h = match &decl.repeat {
                None => self.op(&decl.op.expr, site),
                Some(n) => self.repeat(&decl.op, n, site),
            };
            if h.is_ok() && decl.module.is_none() && !ast::is_module_path(&decl.name.text) {
                let weights = (before..self.g.node_count()).any(|k| self.g[NodeIndex::new(k)].param.is_some());
                if weights {
                    h = Err(self.err(not_a_path(&decl.name)));
                }
            }
            match h {
                Err(e) => {
                    self.failed.insert(decl.name.text.clone(), e);
                }
                Ok(h) => {
                    if let Handle::One(n) = h {
                        if self.g[n].name.starts_with(&format!("{name}.")) || self.g[n].name == name {
                            self.g[n].name = name.clone();
                        }
                    }
                    self.names.insert(decl.name.text.clone(), h.clone());
                    done.insert(i, h);
                }
            }
        }
    }

    /// `repeat: n`: `op` `n` times, each step reading the previous (the first the site's
    /// input), step `i` named `<name>.<i>` with its weights under `<prefix>.<i>`.
    fn repeat(&mut self, op: &ast::Op, n: &ast::Int, at: Site<'_>) -> Checked<Handle> {
        let count = self.eval_pos(n, at.env, "a repeat count", 1)?;
        if count > MAX_REPEAT {
            return Err(self.err(too_large(n.span, "a repeat count", count)));
        }
        let mut cur = at.input;
        let mut steps = Vec::new();
        for j in 0..count {
            let (name, prefix) = (format!("{}.{j}", at.name), join(at.prefix, &j.to_string()));
            let site = Site {
                input: cur,
                name: &name,
                prefix: &prefix,
                ..at
            };
            let h = self.op(&op.expr, site)?;
            let Some(n) = h.one() else {
                return Err(self.err(
                    Diagnostic::error(Code::E0218, op.span, "a multi-output op cannot be repeated")
                        .with_label("has several outputs")
                        .with_help("repeat a block with one output, or write the steps out"),
                ));
            };
            if self.g[n].name.starts_with(&format!("{name}.")) {
                self.g[n].name = name;
            }
            steps.push((j.to_string(), n));
            cur = Ok(Some(n));
        }
        Ok(Handle::Chain(steps))
    }

    /// Declarations in dependency order; reports unknown references and cycles.
    fn decl_order(&mut self, nodes: &[NodeDecl], inputs: &[&str], in_block: bool) -> Vec<usize> {
        let index: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.text.as_str(), i))
            .collect();
        let mut deps: Vec<Vec<(usize, Span)>> = vec![Vec::new(); nodes.len()];
        let mut bad: HashSet<usize> = HashSet::new();
        for (i, n) in nodes.iter().enumerate() {
            let mut refs = Vec::new();
            if let Some(f) = &n.from {
                refs.push(f.clone());
            }
            collect_refs(&n.op.expr, &mut refs);
            if n.from.is_none() && i > 0 && needs_input(&n.op.expr) {
                deps[i].push((i - 1, n.name.span));
            }
            for r in refs {
                let r = r.scoped(|n| index.contains_key(n) || inputs.contains(&n));
                let named = index.contains_key(r.node.as_str()) || inputs.contains(&r.node.as_str());
                if r.node == SKIP_INPUT && r.sub.is_none() && !named {
                    // the enclosing skip's input, resolved during lowering (a name in scope wins)
                } else if let Some(&j) = index.get(r.node.as_str()) {
                    deps[i].push((j, r.span));
                } else if !inputs.contains(&r.node.as_str()) {
                    bad.insert(i);
                    let cands = inputs.iter().copied().chain(nodes.iter().map(|x| x.name.text.as_str()));
                    // suggestions scan every name: only for the errors that get printed (issue 11 item 7)
                    let dym = (self.diags.len() < crate::diag::MAX_RENDERED)
                        .then(|| ast::suggest(&r.node, cands))
                        .flatten();
                    let e = self.err(
                        Diagnostic::error(Code::E0201, r.span, format!("no node or input is named `{}`", r.node))
                            .with_label("unknown name")
                            .with_help(match dym {
                                Some(s) => format!("did you mean `{s}`?"),
                                None if in_block => format!(
                                    "a block's nodes see its inputs ({}) and its own nodes: pass other nodes in as inputs",
                                    inputs.join(", ")
                                ),
                                None => "refer to an input or a node declared under `nodes`".to_string(),
                            }),
                    );
                    self.failed.insert(n.name.text.clone(), e);
                }
            }
        }
        // Kahn's algorithm keeping declaration order among ready nodes.
        let n = nodes.len();
        let mut indeg = vec![0usize; n];
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, ds) in deps.iter().enumerate() {
            for (j, _) in ds {
                indeg[i] += 1;
                users[*j].push(i);
            }
        }
        let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::new();
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &u in &users[i] {
                indeg[u] -= 1;
                if indeg[u] == 0 {
                    ready.insert(u);
                }
            }
        }
        if order.len() < n {
            let stuck: Vec<usize> = (0..n).filter(|&i| indeg[i] > 0).collect();
            if let Some(&start) = stuck.first() {
                // Walk dependencies inside the stuck set until a node repeats: that loop is a cycle.
                let mut path = vec![start];
                let mut cur = start;
                let cycle: Vec<usize> = loop {
                    let Some(&(next, _)) = deps[cur].iter().find(|(j, _)| stuck.contains(j)) else {
                        break path.clone();
                    };
                    if let Some(pos) = path.iter().position(|&p| p == next) {
                        break path[pos..].to_vec();
                    }
                    path.push(next);
                    cur = next;
                };
                let first = cycle[0];
                let mut names: Vec<&str> = cycle.iter().rev().map(|&i| nodes[i].name.text.as_str()).collect();
                names.rotate_right(1);
                names.push(names[0]);
                let mut d = Diagnostic::error(
                    Code::E0203,
                    nodes[first].name.span,
                    format!("nodes depend on each other in a cycle: {}", names.join(" → ")),
                )
                .with_label("part of a cycle")
                .with_help("a topology is a DAG: break the cycle by reading an earlier node");
                for (k, &i) in cycle.iter().enumerate() {
                    let next = cycle[(k + 1) % cycle.len()];
                    if let Some((_, sp)) = deps[i].iter().find(|(j, _)| *j == next) {
                        d = d.with_secondary(
                            *sp,
                            format!("`{}` reads `{}`", nodes[i].name.text, nodes[next].name.text),
                        );
                    }
                }
                let e = self.err(d);
                for &i in &stuck {
                    self.failed.entry(nodes[i].name.text.clone()).or_insert(e);
                }
            }
        }
        order.retain(|i| !bad.contains(i));
        order
    }

    fn resolve(&mut self, r: &Ref) -> Checked<Handle> {
        let r = &r.scoped(|n| self.names.contains_key(n) || self.failed.contains_key(n));
        let Some(h) = self.names.get(&r.node).cloned() else {
            // unknown names were reported by decl_order; a name that failed to lower reported its own error
            return Err(match self.failed.get(&r.node) {
                Some(e) => *e,
                None => self.err(crate::diag::internal(
                    r.span,
                    &format!("`{}` is neither lowered nor reported", r.node),
                )),
            });
        };
        match (&h, &r.sub) {
            (_, None) => Ok(h),
            (Handle::Many(v) | Handle::Chain(v), Some(s)) => match v.iter().find(|(n, _)| n == s) {
                Some((_, n)) => Ok(Handle::One(*n)),
                None => {
                    let subs: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
                    Err(self.err(
                        Diagnostic::error(Code::E0209, r.span, format!("`{}` has no output `{s}`", r.node))
                            .with_label("unknown output")
                            .with_help(match ast::suggest(s, subs.iter().copied()) {
                                Some(x) => format!("did you mean `{}.{x}`?", r.node),
                                None => format!("its outputs are: {}", subs.join(", ")),
                            }),
                    ))
                }
            },
            (Handle::One(_), Some(s)) => Err(self.err(
                Diagnostic::error(
                    Code::E0209,
                    r.span,
                    format!("`{}` has a single output, not `{s}`", r.node),
                )
                .with_label("not a multi-output node")
                .with_help(format!("refer to it as `{}`", r.node)),
            )),
        }
    }

    fn single(&mut self, h: Handle, r: &Ref) -> Checked<NodeIndex> {
        if let Some(n) = h.one() {
            return Ok(n);
        }
        match h {
            Handle::One(n) => Ok(n),
            Handle::Many(v) | Handle::Chain(v) => {
                let subs: Vec<String> = v.iter().map(|(s, _)| format!("{}.{s}", r.node)).collect();
                Err(self.err(
                    Diagnostic::error(
                        Code::E0209,
                        r.span,
                        format!("`{}` has several outputs; this needs one", r.node),
                    )
                    .with_label("ambiguous")
                    .with_help(format!("pick one of: {}", subs.join(", "))),
                ))
            }
        }
    }

    /// The sequence input of `name`, which needs one: the failure of its `from` if that failed,
    /// E0214 if it has none.
    pub(crate) fn need_input(
        &mut self,
        input: Checked<Option<NodeIndex>>,
        span: Span,
        what: &str,
    ) -> Checked<NodeIndex> {
        input?.ok_or_else(|| self.err(no_input(span, what, "add `from: <node>` to say which node it reads")))
    }

    /// The sequence input of the op at `at`, which needs one (see [`Lower::need_input`]).
    pub(crate) fn site_input(&mut self, at: &Site<'_>) -> Checked<NodeIndex> {
        self.need_input(at.input, at.span, &format!("`{}`", at.name))
    }

    /// The input of the innermost enclosing `skip`/`residual` (`match: skip`).
    pub(crate) fn skip_input(&self) -> Option<NodeIndex> {
        self.skip_inputs.last().copied()
    }

    /// The spec's defaults.
    pub(crate) fn defaults(&self) -> &ast::Defaults {
        &self.spec.defaults
    }

    /// An `eps` the runtime can use: finite, not negative, and a finite `f32` (it computes in
    /// `f32`); else E0226 at `span`.
    /// The IR op of a `cna`'s norm (`None` for no norm), its eps and groups checked.
    pub(crate) fn norm_op(&mut self, norm: &Norm, span: Span, env: &Env) -> Checked<Option<Op>> {
        Ok(match norm {
            Norm::None => None,
            Norm::BatchNorm(eps) => {
                self.check_eps(*eps, span)?;
                Some(Op::BatchNorm(crate::ops::norm::BatchNorm { eps: *eps }))
            }
            Norm::GroupNorm { groups, eps } => {
                self.check_eps(*eps, span)?;
                let g = self.eval_pos(groups, env, "group norm groups", 1)?;
                Some(Op::GroupNorm(crate::ops::norm::GroupNorm { groups: g, eps: *eps }))
            }
        })
    }

    pub(crate) fn check_eps(&mut self, eps: f64, span: Span) -> Checked<()> {
        if eps.is_finite() && eps >= 0.0 && (eps as f32).is_finite() {
            return Ok(());
        }
        Err(self.err(
            Diagnostic::error(Code::E0226, span, format!("eps {eps:?} is not a usable 32-bit float"))
                .with_label("eps out of range")
                .with_help("the runtime computes in f32: use an eps between 0 and 3.4e38, such as 1e-5"),
        ))
    }

    pub(crate) fn resolve_one(&mut self, r: &Ref) -> Checked<NodeIndex> {
        let h = self.resolve(r)?;
        self.single(h, r)
    }

    /// Resolves a list of refs; a multi-output ref without a sub expands to all its outputs.
    pub(crate) fn resolve_many(&mut self, refs: &[Ref]) -> Checked<Vec<(String, NodeIndex)>> {
        let mut out = Vec::new();
        let mut failed = None;
        for r in refs {
            match self.resolve(r) {
                Ok(Handle::One(n)) => out.push((r.sub.clone().unwrap_or_else(|| r.node.clone()), n)),
                Ok(Handle::Many(v) | Handle::Chain(v)) => out.extend(v),
                Err(e) => failed = Some(e),
            }
        }
        failed.map_or(Ok(out), Err)
    }

    /// An integer attribute's value: E0204 when it cannot be evaluated, E0240 when it is a float.
    pub(crate) fn eval(&mut self, i: &Int, env: &Env) -> Checked<i64> {
        match self.eval_num(i, env)? {
            Num::Int(v) => Ok(v),
            Num::Float(f) => Err(self.err(not_an_integer(&i.expr, f, i.span))),
        }
    }

    /// An expression's value, integer or float (a block argument, a spec parameter); E0204
    /// when it cannot be evaluated (an expression using a spec parameter that failed fails
    /// with that parameter's report).
    pub(crate) fn eval_num(&mut self, i: &Int, env: &Env) -> Checked<Num> {
        let spec = &self.params;
        let err = match crate::expr::eval(&i.expr, &|n| env.get(n).or_else(|| spec.get(n)).copied()) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let d = match err {
            EvalError::Unknown(name) => {
                if let Some(r) = self.failed_params.get(&name) {
                    return Err(*r);
                }
                // the names in scope, only for the errors that get printed (a spec may have many)
                let mut ks: Vec<&str> = Vec::new();
                if self.diags.len() < crate::diag::MAX_RENDERED {
                    ks.extend(env.keys().chain(self.params.keys()).map(String::as_str));
                    ks.sort_unstable();
                    ks.dedup();
                }
                let help = match ast::suggest(&name, ks.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if ks.is_empty() => "parameters are a block's `params` (in its body) and the spec's `params:`; write a number here".to_string(),
                    None => format!("the parameters here are: {}", list(&ks, 16)),
                };
                Diagnostic::error(Code::E0204, i.span, format!("`{name}` is not a parameter here"))
                    .with_label("unknown name")
                    .with_help(help)
            }
            EvalError::Failed(msg) => Diagnostic::error(Code::E0204, i.span, format!("`{}` cannot be evaluated: {msg}", i.expr))
                .with_label("cannot evaluate")
                .with_help("keep values below 2^63 (floats below 2^53 where they are rounded), divide by numbers other than 0, and give `make_divisible` a positive integer divisor"),
        };
        Err(self.err(d))
    }

    pub(crate) fn eval_pos(&mut self, i: &Int, env: &Env, what: &str, min: i64) -> Checked<i64> {
        let v = self.eval(i, env)?;
        if v > MAX_ATTR {
            return Err(self.err(too_large(i.span, what, v)));
        }
        if v < min {
            return Err(self.err(if min == 1 {
                positive(i.span, what, v)
            } else {
                non_negative(i.span, what, v)
            }));
        }
        Ok(v)
    }

    /// Lowers the op expression `op` at `at`.
    pub(crate) fn op(&mut self, op: &OpExpr, at: Site<'_>) -> Checked<Handle> {
        let one = |n: Checked<NodeIndex>| n.map(Handle::One);
        match op {
            OpExpr::Prim(args) => {
                let mut cx = LowerCx {
                    l: self,
                    input: at.input,
                    env: at.env,
                    span: at.span,
                };
                let low = args.lower(&mut cx)?;
                if low.has_params && at.prefix.is_empty() {
                    return Err(self.err(
                        Diagnostic::error(
                            Code::E0232,
                            at.span,
                            "`module: ''` (the root) cannot name a single op's weights",
                        )
                        .with_label("its weights would be `.weight`")
                        .with_help(
                            "the empty path is for a generator or block whose parts have names (effdet's `model.fpn.state_dict()`); give this op a path, e.g. `module: conv` for `conv.weight`",
                        ),
                    ));
                }
                let param = low.has_params.then(|| at.prefix.to_string());
                one(self.add(at.name.into(), low.op, low.inputs, at.span, param))
            }
            OpExpr::Cna(c) => self.cna(c, at),
            OpExpr::Seq(items) => {
                let x = self.site_input(&at)?;
                self.seq(items, x, at.env, at.name, at.prefix, at.depth)
            }
            OpExpr::Skip(items) | OpExpr::Residual(items) => self.skip(items, matches!(op, OpExpr::Residual(_)), at),
            OpExpr::Call(bname, args) => self.call(bname, args, at),
            OpExpr::Pyramid(p) => self.pyramid(p, at.env, at.name, at.prefix),
            OpExpr::Head(on, body) => self.head(on, body, at),
            OpExpr::Split(a) => self.split(a, at),
            OpExpr::ResNet { depth: d, width } => {
                let d = self.eval(d, at.env)?;
                let w = self.eval_pos(width, at.env, "the ResNet width", 1)?;
                let x = self.site_input(&at)?;
                self.resnet(d, w, at.span, x, at.name, at.prefix)
            }
        }
    }

    /// Resolves `outputs` among `nodes` and `inputs` (reporting unknown names).
    /// Resolves `outputs` among `nodes` and `inputs`, reporting unknown names; the proof of a
    /// report when one failed (the name's own, or its node's).
    pub(crate) fn outputs(
        &mut self,
        outputs: &[ast::OutputDecl],
        nodes: &[NodeDecl],
        inputs: &[&str],
    ) -> (Vec<Output>, Option<Reported>) {
        let mut out = Vec::new();
        let mut failed = None;
        let declared: HashSet<&str> = nodes.iter().map(|n| n.name.text.as_str()).collect();
        for o in outputs {
            let target = o
                .target
                .scoped(|n| self.names.contains_key(n) || declared.contains(n) || inputs.contains(&n));
            if !self.names.contains_key(&target.node) && !declared.contains(target.node.as_str()) {
                let cands = inputs.iter().copied().chain(nodes.iter().map(|x| x.name.text.as_str()));
                let dym = (self.diags.len() < crate::diag::MAX_RENDERED)
                    .then(|| ast::suggest(&target.node, cands))
                    .flatten();
                failed = Some(
                    self.err(
                        Diagnostic::error(
                            Code::E0201,
                            o.target.span,
                            format!("no node or input is named `{}`", target.node),
                        )
                        .with_label("unknown name")
                        .with_help(match dym {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => "outputs refer to inputs or nodes".to_string(),
                        }),
                    ),
                );
                continue;
            }
            match self.resolve_one(&target) {
                Ok(n) => out.push(Output {
                    name: if o.derived {
                        derived_field(&target)
                    } else {
                        o.name.text.clone()
                    },
                    span: o.name.span,
                    node: n,
                }),
                Err(e) => failed = Some(e),
            }
        }
        (out, failed)
    }
}

/// E0244: the node `name` has weights, but its name is not a `state_dict` path and it has no
/// `module:`.
fn not_a_path(name: &ast::Name) -> Diagnostic {
    let path: String = name.text.split('.').map(derive_ident).collect::<Vec<_>>().join(".");
    Diagnostic::error(
        Code::E0244,
        name.span,
        format!("node `{}` has weights, but its name is not a `state_dict` path", name.text.escape_debug()),
    )
    .with_label("needs `module:` to say where its weights load from")
    .with_help(format!(
        "give it a path of dot-separated identifiers or numbers: `module: {path}` (a node's name is its path only when it is one, like `model.12`)"
    ))
}

/// Whether `s` can follow the last dot of a reference as an output's name (`p3`, `0`).
pub(crate) fn is_output_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` lowercased, every character but an ASCII letter or digit `_` (one for one).
pub(crate) fn snake(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The Rust identifier fpn derives for a name (a node's, in an output field): the name itself
/// when it is one (an ASCII identifier, not a keyword), else the name lowercased with every
/// other character `_`, `n_` before a leading digit and `_` after a keyword: `"P3/out"` →
/// `p3_out`, `"model.12"` → `model_12`, `"3x3"` → `n_3x3`, `fn` → `fn_`. Deterministic; two
/// names that derive the same field are E0229.
pub fn derive_ident(name: &str) -> String {
    let keyword = |s: &str| RUST_KEYWORDS.contains(&s) || s == "_";
    if ast::is_ident(name) && !keyword(name) {
        return name.to_string();
    }
    let mut s = snake(name);
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        s.insert_str(0, "n_");
    }
    if keyword(&s) {
        s.push('_');
    }
    s
}

/// The field of an output listed by reference: the output's name for `neck.p3` (`p3`), the node
/// and step for `y.0` (`y_0`), else the node's name, each as [`derive_ident`] makes it.
pub fn derived_field(target: &Ref) -> String {
    derive_ident(&match &target.sub {
        Some(s) if s.chars().all(|c| c.is_ascii_digit()) => format!("{}_{s}", target.node),
        Some(s) => s.clone(),
        None => target.node.clone(),
    })
}

/// `prefix.part`, or `part` at the top level: a `state_dict` name.
pub(crate) fn join(prefix: &str, part: &str) -> String {
    if part.is_empty() {
        prefix.to_string()
    } else if prefix.is_empty() {
        part.to_string()
    } else {
        format!("{prefix}.{part}")
    }
}

/// E0214: `name` has no input; `help` says how to give it one.
fn no_input(span: Span, what: &str, help: &str) -> Diagnostic {
    Diagnostic::error(Code::E0214, span, format!("{what} has no input"))
        .with_label("which node does this read?")
        .with_help(help)
}

fn positive(span: Span, what: &str, v: i64) -> Diagnostic {
    Diagnostic::error(Code::E0212, span, format!("{what} must be at least 1, found {v}"))
        .with_label("must be positive")
        .with_help("sizes, channels, kernels, strides, dilations and groups are positive integers")
}

/// E0202: a name given twice, labelled at both places.
pub(crate) fn duplicate(span: Span, first: Span, message: String, labels: [&str; 2], help: &str) -> Diagnostic {
    Diagnostic::error(Code::E0202, span, message)
        .with_label(labels[0])
        .with_secondary(first, labels[1])
        .with_help(help)
}

pub(crate) fn too_large(span: Span, what: &str, v: i64) -> Diagnostic {
    Diagnostic::error(Code::E0310, span, format!("{what} {v} is too large"))
        .with_label("too large")
        .with_help(format!(
            "channels, kernels, strides, paddings, dilations and widths are at most {MAX_ATTR}"
        ))
}

fn non_negative(span: Span, what: &str, v: i64) -> Diagnostic {
    Diagnostic::error(Code::E0212, span, format!("{what} must not be negative, found {v}"))
        .with_label("negative")
        .with_help("use 0 or more")
}

pub(crate) fn trailing_number(s: &str) -> Option<i64> {
    let digits: String = s
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    digits.parse().ok()
}

/// `names` joined by commas, at most `max` of them (then "… (N in all)").
pub(crate) fn list(names: &[&str], max: usize) -> String {
    if names.len() <= max {
        names.join(", ")
    } else {
        format!("{}, … ({} in all)", names[..max].join(", "), names.len())
    }
}

/// E0240: the expression `e` is the float `v` where an integer is needed.
fn not_an_integer(e: &IntExpr, v: f64, span: Span) -> Diagnostic {
    Diagnostic::error(Code::E0240, span, format!("`{e}` is {}, not an integer", Num::Float(v)))
        .with_label("a float where an integer is needed")
        .with_help(
            "round it explicitly: `round(…)` (halves to even, as Python), `floor(…)`, `ceil(…)`, or \
             `make_divisible(…, 8)` for a channel count; `/` of two integers is a float unless it divides exactly",
        )
}

fn collect_refs(op: &OpExpr, out: &mut Vec<Ref>) {
    match op {
        OpExpr::Prim(a) => out.extend(a.refs().into_iter().cloned()),
        OpExpr::Seq(items) | OpExpr::Skip(items) | OpExpr::Residual(items) => {
            items.iter().for_each(|i| collect_refs(&i.expr, out))
        }
        OpExpr::Pyramid(p) => out.extend(p.inputs.iter().cloned()),
        OpExpr::Head(on, body) => {
            out.extend(on.iter().cloned());
            body.iter().for_each(|i| collect_refs(&i.expr, out));
        }
        // the nodes feeding a graph-shaped block's inputs; a block body's own references are
        // resolved in the block (or are its caller's `match: skip`); a ResNet has none
        OpExpr::Call(_, args) => out.extend(args.iter().filter_map(|(_, a)| match a {
            ast::CallArg::Ref(r) => Some(r.clone()),
            ast::CallArg::Int(_) => None,
        })),
        OpExpr::Cna(_) | OpExpr::ResNet { .. } | OpExpr::Split(_) => {}
    }
}
