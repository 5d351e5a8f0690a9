//! The fpn compiler: feature-pyramid topologies from YAML or `fpn!{}` tokens to checked graphs,
//! shape tables, accepted input sizes and generated Rust.
//!
//! ```text
//! YAML text ──front::yaml──┐
//!                          ├─► value::Value ──ast::read──► ast::Spec ──lower──► ir::Graph
//! fpn!{…} ────front::dsl───┘                                                      │
//!            infer (shapes, params, FLOPs, size constraints) ◄──────────────────────┘
//!            check (fixed sizes) / sizes::analyse (symbolic sizes) ──► back::rust, interp
//! ```
//! [`compile_value`] runs the whole middle for either front end and returns every error at once;
//! [`compile_value_with`] with parameters set from outside the spec ([`Setting`]: a family's
//! scale, any spec parameter), which lowering evaluates first ([`params`], [`expr`]).

pub mod ast;
pub mod back;
mod build;
mod composite;
pub mod diag;
pub mod dim;
pub mod expr;
pub mod front;
pub mod infer;
pub mod interp;
pub mod ir;
pub mod lower;
pub mod ops;
pub mod params;
mod presets;
pub mod schema;
pub mod sizes;
pub mod span;
pub mod value;

pub use build::{BuildError, Builder};
use diag::{Code, Diagnostic};
use infer::{Analysis, Constraint};
use ir::Graph;
pub use params::Setting;
use petgraph::graph::NodeIndex;
use sizes::{Accepted, SizesError};
use span::SourceMap;
use value::Value;

/// A spec that passed every check.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The graph.
    pub graph: Graph,
    /// Shapes, parameters, FLOPs.
    pub analysis: Analysis,
    /// Size constraints (all hold for fixed sizes).
    pub constraints: Vec<Constraint>,
    /// Accepted values of each size symbol.
    pub sizes: Vec<Result<Accepted, SizesError>>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
}

/// Compiles a YAML spec held in `sources` under `path`. On failure returns every diagnostic
/// (errors and warnings).
pub fn compile_yaml(sources: &mut SourceMap, path: &str, text: &str) -> Result<Compiled, Vec<Diagnostic>> {
    let id = sources.add_text(path, text);
    let v = front::yaml::parse(text, id).map_err(|d| vec![d])?;
    compile_value(&v)
}

/// Reads a YAML file and compiles it; a file that cannot be read or is not UTF-8 is a diagnostic.
///
/// Only a regular file is read (a directory, FIFO or device is `E0000`, without reading it),
/// and at most [`front::yaml::MAX_SPEC_BYTES`] of it (a longer one is `E0006`).
pub fn compile_file(sources: &mut SourceMap, path: &std::path::Path) -> Result<Compiled, Vec<Diagnostic>> {
    compile_file_with(sources, path, &[])
}

/// [`compile_file`] with parameters set from outside the spec (`--set scale=s`; see
/// [`params::Setting`]).
pub fn compile_file_with(
    sources: &mut SourceMap,
    path: &std::path::Path,
    sets: &[Setting],
) -> Result<Compiled, Vec<Diagnostic>> {
    let shown = path.display().to_string();
    match read_spec_file(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let id = sources.add_text(&shown, text);
            let v = front::yaml::parse_bytes(&bytes, id).map_err(|d| vec![d])?;
            compile_value_with(&v, sets)
        }
        Err(ReadError::TooLarge(len)) => {
            let id = sources.add_text(&shown, "");
            Err(vec![front::yaml::too_large(id, len)])
        }
        Err(ReadError::Io(e)) => {
            let id = sources.add_text(&shown, "");
            Err(vec![Diagnostic::error(
                Code::E0000,
                span::Span::new(id, 0, 0),
                format!("cannot read `{shown}`: {e}"),
            )
            .with_help("check the path: a spec is a regular file")])
        }
    }
}

/// Why a spec file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed, or the path is not a regular file.
    Io(std::io::Error),
    /// The file is longer than [`front::yaml::MAX_SPEC_BYTES`]; its length.
    TooLarge(u64),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooLarge(n) => write!(
                f,
                "the file has {n} bytes; a spec may have at most {}",
                front::yaml::MAX_SPEC_BYTES
            ),
        }
    }
}

/// Reads a spec file's bytes: a regular file only (a directory, FIFO or device is refused
/// before reading, so a FIFO cannot hang the reader), at most [`front::yaml::MAX_SPEC_BYTES`].
/// Used by [`compile_file`] and by `include_spec!`.
///
/// # Errors
/// [`ReadError::Io`] if it cannot be opened or read or is not a regular file,
/// [`ReadError::TooLarge`] if it is longer than the cap.
pub fn read_spec_file(path: &std::path::Path) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let not_regular =
        |what: &str| ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string()));
    // metadata first: opening a FIFO for reading would block until a writer comes
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if meta.is_dir() {
        return Err(not_regular("it is a directory, not a spec file"));
    }
    if !meta.is_file() {
        return Err(not_regular("it is not a regular file (a FIFO, socket or device)"));
    }
    let cap = front::yaml::MAX_SPEC_BYTES as u64;
    if meta.len() > cap {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let f = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    // the file may grow after the check: read one byte past the cap at most
    f.take(cap + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Compiles a value tree from either front end.
pub fn compile_value(v: &Value) -> Result<Compiled, Vec<Diagnostic>> {
    compile_value_with(v, &[])
}

/// [`compile_value`] with parameters set from outside the spec (`--set scale=s`, the macros'
/// `set:`, [`Builder::set`]): a setting replaces the value of the parameter it names, `scale`
/// picks the scale of a family. A name the spec does not have is E0241.
pub fn compile_value_with(v: &Value, sets: &[Setting]) -> Result<Compiled, Vec<Diagnostic>> {
    let spec = ast::read(v)?;
    let (graph, warnings) = lower::lower_with(&spec, sets)?;
    check_graph(graph, warnings).map_err(|f| f.2)
}

/// What compiling a spec gives even when it fails: the graph as far as it lowered (`None` when
/// the spec could not be read), its shapes and parameters (from inference on that graph), and
/// every diagnostic. A picture of a failing spec is drawn from it.
#[derive(Clone, Debug)]
pub struct Partial {
    /// The lowered graph: every declaration that lowered.
    pub graph: Option<Graph>,
    /// Shapes, parameters and FLOPs of `graph`'s nodes (stand-ins where inference failed).
    pub analysis: Option<Analysis>,
    /// Errors and warnings, as [`compile_value`] returns them.
    pub diagnostics: Vec<Diagnostic>,
}

/// Compiles as far as possible; see [`Partial`]. The diagnostics are those of
/// [`compile_value`] (its errors on failure, its warnings on success).
pub fn compile_partial(v: &Value) -> Partial {
    compile_partial_with(v, &[])
}

/// [`compile_partial`] with parameters set from outside the spec (see [`compile_value_with`]).
pub fn compile_partial_with(v: &Value, sets: &[Setting]) -> Partial {
    let spec = match ast::read(v) {
        Ok(s) => s,
        Err(diagnostics) => {
            return Partial {
                graph: None,
                analysis: None,
                diagnostics,
            }
        }
    };
    let (graph, diagnostics) = lower::lower_partial_with(&spec, sets);
    if diagnostics.iter().any(Diagnostic::is_error) {
        // inference's own errors on a partial graph are not what `check` reports: only shapes
        let (analysis, _, _) = infer::infer(&graph);
        return Partial {
            graph: Some(graph),
            analysis: Some(analysis),
            diagnostics,
        };
    }
    match check_graph(graph, diagnostics) {
        Ok(c) => Partial {
            graph: Some(c.graph),
            analysis: Some(c.analysis),
            diagnostics: c.warnings,
        },
        Err(failed) => {
            let (graph, analysis, diagnostics) = *failed;
            Partial {
                graph: Some(graph),
                analysis: Some(analysis),
                diagnostics,
            }
        }
    }
}

/// A failed [`check_graph`]: the graph, its analysis and the diagnostics.
type Failed = (Graph, Analysis, Vec<Diagnostic>);

/// Inference, the fixed-size check and the size analysis of a lowered graph; on errors, the
/// graph and its analysis come back with them.
fn check_graph(graph: Graph, mut warnings: Vec<Diagnostic>) -> Result<Compiled, Box<Failed>> {
    let (analysis, constraints, mut errors) = infer::infer(&graph);
    errors.extend(field_collisions(&graph, &analysis));
    let sizes = sizes::analyse(&graph, &constraints);
    // Constraints without symbols are checked whether or not the spec has symbols: a fixed
    // width that never matches is an error even when the height is symbolic.
    let fixed: Vec<Constraint> = constraints
        .iter()
        .filter(|c| c.lhs.symbols().is_empty() && c.rhs.symbols().is_empty())
        .cloned()
        .collect();
    // (Without symbols that is every constraint; only then can the hint suggest input sizes.)
    let failures = infer::check(&graph, &analysis, &fixed, &[]);
    if !failures.is_empty() {
        let hint = graph
            .symbols
            .is_empty()
            .then(|| diag::explain::FixedSizeHint::new(&graph))
            .flatten();
        errors.extend(
            failures
                .iter()
                .map(|f| diag::explain::explain(&graph, &analysis, f, &[], hint.as_ref())),
        );
    }
    if !graph.symbols.is_empty() {
        for (i, s) in sizes.iter().enumerate() {
            if let Ok(acc) = s {
                if acc.is_empty() {
                    let sym = &graph.symbols[i];
                    let mut env = vec![1; graph.symbols.len()];
                    env[i] = sym.min;
                    // symbols determined by this one take their values at its minimum (if allowed)
                    for d in &acc.dependents {
                        if let Some(j) = graph.symbols.iter().position(|x| x.name == d.symbol) {
                            env[j] = graph.symbols[j].min;
                            if let Some(v) = d.dim.eval(&env).filter(|&v| v >= graph.symbols[j].min) {
                                env[j] = v;
                            }
                        }
                    }
                    errors.push(diag::explain::no_size_accepted(sym, acc));
                    let failures = infer::check(&graph, &analysis, &constraints, &env);
                    errors.extend(
                        failures
                            .iter()
                            .take(1)
                            .map(|f| diag::explain::explain(&graph, &analysis, f, &env, None)),
                    );
                }
            }
        }
    }
    if errors.iter().any(Diagnostic::is_error) {
        errors.append(&mut warnings);
        return Err(Box::new((graph, analysis, errors)));
    }
    warnings.append(&mut errors);
    Ok(Compiled {
        graph,
        analysis,
        constraints,
        sizes,
        warnings,
    })
}

/// Parameter names and prefixes that the Rust back end would map to the same field or local
/// (`p_` + lowercase, `.` → `_`: `a.0` and `a_0`, `a` and `A`): refused here, at the second
/// node, so that `gen` and the macros never meet them.
fn field_collisions(g: &Graph, a: &Analysis) -> Vec<Diagnostic> {
    let mapped = |name: &str| -> String {
        name.chars()
            .map(|c| if c == '.' { '_' } else { c.to_ascii_lowercase() })
            .collect()
    };
    let mut seen: std::collections::HashMap<String, (String, NodeIndex)> = std::collections::HashMap::new();
    let mut out = Vec::new();
    let mut names: Vec<(String, NodeIndex)> = Vec::new();
    for p in &a.params {
        if let Some((prefix, _)) = p.name.rsplit_once('.') {
            names.push((prefix.to_string(), p.node));
        }
        names.push((p.name.clone(), p.node));
    }
    names.dedup();
    let mut reported: std::collections::HashSet<(NodeIndex, NodeIndex)> = std::collections::HashSet::new();
    for (name, node) in names {
        let key = mapped(&name);
        match seen.get(&key) {
            Some((other, first)) if *other != name && reported.insert((node, *first)) => {
                let (n, f) = (g.node(node), g.node(*first));
                out.push(
                    Diagnostic::error(
                        Code::E0229,
                        n.span,
                        format!("`{name}` and `{other}` become the same Rust name `p_{key}` in generated code"),
                    )
                    .with_label(format!("`{}` owns `{name}`", n.name))
                    .with_secondary(f.span, format!("`{}` owns `{other}`", f.name))
                    .with_help("rename one node: generated field names are lowercase with `.` as `_`"),
                );
            }
            Some(_) => {}
            None => {
                seen.insert(key, (name, node));
            }
        }
    }
    out
}

/// Renders diagnostics with the sources they point into (no colours).
pub fn render(diags: &[Diagnostic], sources: &SourceMap) -> String {
    diag::render(diags, sources, false)
}
