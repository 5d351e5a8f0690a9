//! The `fpn` command line: `check`, `shapes`, `sizes`, `gen`, `graph`, `run`, `export`,
//! `explain`, `schema`, `lsp`.
//!
//! Exit codes: 0 clean, 1 the spec has errors, 2 usage or I/O problems.
//!
//! Conventions (cargo, rustc and ruff are the anchors): `--color auto|always|never` (auto
//! honours `NO_COLOR`, `CLICOLOR_FORCE` and `TERM=dumb`), `-` for a spec read from stdin,
//! several specs per `check`/`shapes`/`sizes`, `--json` output as JSON Lines with a
//! `schema_version` in every object (docs/json.md), errors as JSON under `--json`, and
//! `--deny warnings`.

mod lsp;

use clap::{Parser, Subcommand, ValueEnum};
use fpn_compiler::diag::{Diagnostic, Severity};
use fpn_compiler::sizes::SizesError;
use fpn_compiler::span::{LineIndex, SourceMap};
use fpn_compiler::value::Value;
use fpn_compiler::{diag, Compiled, Setting};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The version of every JSON document the CLI prints (docs/json.md): raised when a field
/// changes meaning or goes away, not when one is added.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Parser)]
#[command(
    name = "fpn",
    version,
    about = "Compile feature-pyramid topologies: check shapes, accepted sizes, generate Rust."
)]
struct Cli {
    /// Colour diagnostics: `auto` (on a terminal, unless NO_COLOR is set or TERM=dumb;
    /// CLICOLOR_FORCE=1 forces it), `always`, `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
    /// `--deny warnings`: warnings are errors (exit 1).
    #[arg(long, global = true, value_enum, value_name = "LINT")]
    deny: Vec<Lint>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// What `--deny` can make an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Lint {
    Warnings,
}

/// Whether to colour: `--color always|never` decide; `auto` is off with a non-empty
/// `NO_COLOR`, on with `CLICOLOR_FORCE` other than `0`, off with `TERM=dumb`, else on when
/// stderr is a terminal. (`env` is `std::env::var_os`, a parameter for tests.)
fn use_color(choice: ColorChoice, env: impl Fn(&str) -> Option<std::ffi::OsString>, tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            if env("NO_COLOR").is_some_and(|v| !v.is_empty()) {
                false
            } else if env("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") {
                true
            } else if env("TERM").is_some_and(|v| v == "dumb") {
                false
            } else {
                tty
            }
        }
    }
}

/// What `fpn gen` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// Rust against fpn_runtime.
    Rust,
    /// A PyTorch module (Python).
    Torch,
}

/// How `run` and `export` read a checkpoint.
#[derive(clap::Args)]
struct LoadArgs {
    /// Load weights (and `run`'s inputs) holding NaN or ±∞ (refused by default).
    #[arg(long)]
    allow_non_finite: bool,
    /// Rewrite checkpoint keys starting with OLD to start with NEW (`--map backbone.=`
    /// drops `backbone.`, `--map fpn.=neck.` renames it); repeatable, the first matching
    /// rule applies.
    #[arg(long = "map", value_name = "OLD=NEW", value_parser = parse_map)]
    map: Vec<(String, String)>,
    /// Drop this prefix from checkpoint keys (as `--map P=`); repeatable.
    #[arg(long = "strip-prefix", value_name = "P")]
    strip_prefix: Vec<String>,
}

impl LoadArgs {
    /// The runtime's load options these flags ask for.
    fn options(self) -> fpn_runtime::LoadOptions {
        let mut opts = fpn_runtime::LoadOptions::new().allow_non_finite(self.allow_non_finite);
        for (old, new) in self.map {
            opts = opts.map(old, new);
        }
        for p in self.strip_prefix {
            opts = opts.strip_prefix(p);
        }
        opts
    }
}

/// `--set NAME=VALUE` of every command that compiles a spec.
#[derive(clap::Args, Clone, Debug, Default)]
struct SetArgs {
    /// Set a spec parameter, or pick a family's scale: `--set scale=s`, `--set width=0.5`
    /// (repeatable; docs/spec.md "Parameters").
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = Setting::parse)]
    set: Vec<Setting>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check specs; prints every error with its location, each spec's outputs, and a summary.
    Check {
        /// YAML spec files (`-` reads stdin).
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// JSON Lines: one object per diagnostic (like cargo's `--message-format=json`), one per
        /// spec that passed, and a summary (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        params: SetArgs,
    },
    /// Print every node: op, output shape, parameters, FLOPs.
    Shapes {
        /// YAML spec files (`-` reads stdin).
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// JSON instead of a table (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        params: SetArgs,
    },
    /// Print the input sizes the spec accepts.
    Sizes {
        /// YAML spec files (`-` reads stdin).
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// JSON instead of words (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        params: SetArgs,
    },
    /// Generate the Rust module of a spec (against the `fpn_runtime` crate), or with
    /// `--target torch` a self-contained PyTorch module with the spec's `state_dict` names.
    Gen {
        /// YAML spec file (`-` reads stdin).
        spec: PathBuf,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Path of the runtime crate in the generated code (Rust target).
        #[arg(long, default_value = "fpn_runtime")]
        runtime: String,
        /// What to generate: `rust` (a module against fpn_runtime) or `torch` (a PyTorch
        /// `nn.Module` in Python).
        #[arg(long, value_enum, default_value_t = Target::Rust)]
        target: Target,
        /// Keep feature maps in the blocked channel layout NCHW16c inside the forward, from an
        /// image stem to the outputs (Rust target; for CPUs with AVX-512, see docs/bench.md).
        #[arg(long)]
        blocked: bool,
        #[command(flatten)]
        params: SetArgs,
    },
    /// Draw the topology: boxes with op, shape and parameters, levels aligned by resolution,
    /// blocks as clusters, errors in red. SVG (no Graphviz needed) or DOT.
    Graph {
        /// YAML spec file (`-` reads stdin).
        spec: PathBuf,
        /// Write here (`.svg` or `.dot`/`.gv`) instead of stdout (`-`).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The format; by default from the output's extension, else SVG.
        #[arg(long, value_enum)]
        format: Option<Format>,
        #[command(flatten)]
        params: SetArgs,
    },
    /// Run a spec with the interpreter: inputs and outputs are safetensors files, tensors by name.
    Run {
        /// YAML spec file (`-` reads stdin).
        spec: PathBuf,
        /// PyTorch weights (state_dict names) as safetensors; without it, seeded PyTorch-style init.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Seed of the init when no weights are given.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Input tensors (NCHW f32) named as the spec's inputs.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the outputs, named as the spec's outputs.
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        params: SetArgs,
    },
    /// Print the JSON Schema of the spec language (docs/fpn.schema.json), for editors.
    Schema,
    /// Run the language server on stdin/stdout (diagnostics, hover, go to definition,
    /// completion; docs/editors.md).
    Lsp,
    /// Export a spec as an ONNX model (opset 17 by default): symbolic sizes become named
    /// dynamic dimensions, initializers carry the `state_dict` names.
    Export {
        /// YAML spec file.
        spec: PathBuf,
        /// Where to write the ONNX model.
        #[arg(long, value_name = "FILE")]
        onnx: PathBuf,
        /// PyTorch weights (state_dict names) as safetensors; without it, the seeded init of
        /// `fpn run` and the generated `init(seed)`.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Seed of the init when no weights are given.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// ONNX opset of the default domain.
        #[arg(long, default_value_t = fpn_compiler::back::onnx::DEFAULT_OPSET)]
        opset: i64,
        /// Fold each batch norm into the conv before it (initializers then differ from the
        /// state_dict: the conv's weight and bias hold the folded values).
        #[arg(long, conflicts_with = "keep_bn")]
        fold_bn: bool,
        /// Keep batch norms as `BatchNormalization` nodes (the default).
        #[arg(long)]
        keep_bn: bool,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        params: SetArgs,
    },
    /// Explain a diagnostic code (`fpn explain E0323`): what it means and what to do.
    Explain {
        /// The code, e.g. E0323.
        code: String,
    },
}

/// `fpn graph --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Svg,
    Dot,
}

/// How the command reports: colours, JSON, `--deny warnings`; and what it has reported.
struct Cx {
    color: bool,
    json: bool,
    deny_warnings: bool,
    /// Errors and warnings reported so far.
    errors: usize,
    warnings: usize,
    /// Whether stdin was read already (`-` may be given once).
    stdin_used: bool,
    /// `--set`: parameters every spec is compiled with.
    sets: Vec<Setting>,
}

impl Cmd {
    /// The command's `--set` values (none for the commands that compile nothing).
    fn sets(&self) -> &[Setting] {
        match self {
            Cmd::Check { params, .. }
            | Cmd::Shapes { params, .. }
            | Cmd::Sizes { params, .. }
            | Cmd::Gen { params, .. }
            | Cmd::Graph { params, .. }
            | Cmd::Run { params, .. }
            | Cmd::Export { params, .. } => &params.set,
            Cmd::Schema | Cmd::Lsp | Cmd::Explain { .. } => &[],
        }
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let mut cx = Cx {
        color: use_color(cli.color, |k| std::env::var_os(k), std::io::stderr().is_terminal()),
        json: false,
        deny_warnings: cli.deny.contains(&Lint::Warnings),
        errors: 0,
        warnings: 0,
        stdin_used: false,
        sets: cli.cmd.sets().to_vec(),
    };
    match cli.cmd {
        Cmd::Explain { code } => match diag::Code::parse(&code) {
            Some(c) => {
                out(&format!("{c}: {}\n\nWhat to do: {}\n", c.meaning(), c.fix()));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: `{code}` is not an fpn diagnostic code\n  = help: codes look like E0323 or W0001; \
                     docs/diagnostics.md lists them all"
                );
                ExitCode::from(2)
            }
        },
        Cmd::Lsp => ExitCode::from(lsp::serve()),
        Cmd::Schema => {
            out(&fpn_compiler::schema::json_schema_text());
            ExitCode::SUCCESS
        }
        Cmd::Check { specs, json, .. } => {
            cx.json = json;
            let (mut worst, mut ok) = (0u8, 0usize);
            for path in &specs {
                match load(path, &mut cx) {
                    Ok(c) if json => {
                        ok += 1;
                        out(&format!("{}\n", checked_json(path, &c)));
                    }
                    Ok(c) => {
                        ok += 1;
                        out(&format!("{}\n", summary(path, &c)));
                    }
                    Err(code) => worst = worst.max(code),
                }
            }
            let failed = specs.len() - ok;
            if json {
                let v = serde_json::json!({
                    "reason": "summary",
                    "schema_version": SCHEMA_VERSION,
                    "specs": specs.len(),
                    "ok": ok,
                    "failed": failed,
                    "errors": cx.errors,
                    "warnings": cx.warnings,
                });
                out(&format!("{v}\n"));
            } else {
                eprintln!("{}", check_summary(specs.len(), failed, cx.errors, cx.warnings));
            }
            ExitCode::from(worst)
        }
        Cmd::Shapes { specs, json, .. } => {
            cx.json = json;
            each_spec(&specs, &mut cx, |path, c| {
                if json {
                    format!("{}\n", shapes_json(path, c))
                } else {
                    shapes_table(c)
                }
            })
        }
        Cmd::Sizes { specs, json, .. } => {
            cx.json = json;
            each_spec(&specs, &mut cx, |path, c| {
                if json {
                    format!("{}\n", sizes_json(path, c))
                } else {
                    sizes_text(c)
                }
            })
        }
        Cmd::Gen {
            spec,
            output,
            runtime,
            blocked,
            target,
            ..
        } => {
            if let Some(path) = &output {
                if let Err(e) = refuse_overwrite(path, &[&spec]) {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
            match load(&spec, &mut cx) {
                Ok(c) => {
                    let opts = fpn_compiler::back::rust::Options {
                        runtime_path: runtime,
                        blocked,
                    };
                    let code = match target {
                        Target::Rust => {
                            fpn_compiler::back::rust::generate(&c.graph, &c.analysis, &opts).map_err(|e| e.to_string())
                        }
                        Target::Torch => {
                            fpn_compiler::back::torch::generate(&c.graph, &c.analysis).map_err(|e| e.to_string())
                        }
                    };
                    match code {
                        Ok(code) => emit(output.as_deref(), code.as_bytes()),
                        Err(e) => {
                            eprintln!("error: {e}");
                            ExitCode::from(1)
                        }
                    }
                }
                Err(code) => ExitCode::from(code),
            }
        }
        Cmd::Graph {
            spec, output, format, ..
        } => graph(&spec, output.as_deref(), format, &mut cx),
        Cmd::Export {
            spec,
            onnx,
            weights,
            seed,
            opset,
            fold_bn,
            keep_bn: _,
            load,
            ..
        } => {
            let mut inputs: Vec<&std::path::Path> = vec![&spec];
            inputs.extend(weights.as_deref());
            if let Err(e) = refuse_overwrite(&onnx, &inputs) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            let mut sources = SourceMap::new();
            let c = match load_with(&spec, &mut cx, &mut sources) {
                Ok(c) => c,
                Err(code) => return ExitCode::from(code),
            };
            let opts = fpn_compiler::back::onnx::Options { opset, fold_bn };
            let load = load.options();
            match export(&c, weights.as_deref(), &load, seed, &opts) {
                Ok(bytes) => match write_atomic(&onnx, &bytes) {
                    Ok(()) => {
                        out(&format!("{}: {} bytes, opset {opset}\n", onnx.display(), bytes.len()));
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(2)
                    }
                },
                Err(ExportFail::Weights(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(if matches!(e, fpn_runtime::Error::Io { .. }) {
                        2
                    } else {
                        1
                    })
                }
                Err(ExportFail::Export(e)) => {
                    eprint!("{}", export_error(&e, &sources));
                    ExitCode::from(match e {
                        fpn_compiler::back::onnx::ExportError::Opset { .. } => 2,
                        _ => 1,
                    })
                }
            }
        }
        Cmd::Run {
            spec,
            weights,
            seed,
            input,
            output,
            load: load_args,
            ..
        } => {
            let opts = load_args.options();
            let mut inputs: Vec<&Path> = vec![&spec, &input];
            inputs.extend(weights.as_deref());
            if let Err(e) = refuse_overwrite(&output, &inputs) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            let start = Instant::now();
            match load(&spec, &mut cx) {
                Ok(c) => match run(&c, weights.as_deref(), &opts, seed, &input, &output, start) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        // a file that cannot be read or written is exit 2 (README); a file
                        // whose contents do not fit the spec is 1
                        ExitCode::from(if matches!(e, fpn_runtime::Error::Io { .. }) {
                            2
                        } else {
                            1
                        })
                    }
                },
                Err(code) => ExitCode::from(code),
            }
        }
    }
}

/// `check`'s closing line: "checked 3 specs: 2 ok, 1 failed (4 errors)".
fn check_summary(specs: usize, failed: usize, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let mut s = format!("checked {}: {} ok", plural(specs, "spec"), specs - failed);
    if failed > 0 {
        s.push_str(&format!(", {failed} failed ({})", plural(errors, "error")));
    }
    if warnings > 0 {
        s.push_str(&format!(", {}", plural(warnings, "warning")));
    }
    s
}

/// Runs `f` on each spec that compiles and prints what it returns (under a `path:` heading
/// when there are several, in text mode); the exit code is the worst of them.
fn each_spec(specs: &[PathBuf], cx: &mut Cx, f: impl Fn(&Path, &Compiled) -> String) -> ExitCode {
    let mut worst = 0u8;
    for path in specs {
        match load(path, cx) {
            Ok(c) => {
                if specs.len() > 1 && !cx.json {
                    out(&format!("{}:\n", shown(path)));
                }
                out(&f(path, &c));
            }
            Err(code) => worst = worst.max(code),
        }
    }
    ExitCode::from(worst)
}

/// Writes `bytes` to `output` (through a temporary file), or to stdout when it is `None` or `-`.
fn emit(output: Option<&Path>, bytes: &[u8]) -> ExitCode {
    match output.filter(|p| p.as_os_str() != "-") {
        Some(path) => match write_atomic(path, bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        None => {
            out(&String::from_utf8_lossy(bytes));
            ExitCode::SUCCESS
        }
    }
}

/// `fpn graph`: the picture of a spec, failing or not; exit 1 when it has errors (the picture
/// is written all the same, with them).
fn graph(spec: &Path, output: Option<&Path>, format: Option<Format>, cx: &mut Cx) -> ExitCode {
    let to = output.filter(|p| p.as_os_str() != "-");
    if let Some(path) = to {
        if let Err(e) = refuse_overwrite(path, &[spec]) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let format = match (format, to.and_then(|p| p.extension()).and_then(|e| e.to_str())) {
        (Some(f), _) => f,
        (None, Some("svg")) | (None, None) => Format::Svg,
        (None, Some("dot" | "gv")) => Format::Dot,
        (None, Some(ext)) => {
            eprintln!(
                "error: cannot tell the picture format from `.{ext}`\n  = help: name the output `.svg` or `.dot`, or pass `--format svg|dot`"
            );
            return ExitCode::from(2);
        }
    };
    let (sources, value) = match read_spec(spec, cx) {
        Ok(x) => x,
        Err(code) => return ExitCode::from(code),
    };
    let partial = match value {
        Ok(v) => fpn_compiler::compile_partial_with(&v, &cx.sets),
        Err(diagnostics) => fpn_compiler::Partial {
            graph: None,
            analysis: None,
            diagnostics,
        },
    };
    let failed = report(spec, partial.diagnostics.clone(), &sources, cx);
    let model = fpn_compiler::back::picture::Model::new(
        &shown(spec),
        partial.graph.as_ref(),
        partial.analysis.as_ref(),
        &partial.diagnostics,
        &sources,
    );
    let text = match format {
        Format::Svg => model.svg(),
        Format::Dot => model.dot(),
    };
    let code = emit(to, text.as_bytes());
    if code != ExitCode::SUCCESS {
        return code;
    }
    ExitCode::from(if failed { 1 } else { 0 })
}

/// Why `fpn export` failed: the weights, or the export itself.
enum ExportFail {
    Weights(fpn_runtime::Error),
    Export(fpn_compiler::back::onnx::ExportError),
}

/// `fpn export`: the ONNX bytes of `c` with the given weights (or the seeded init).
fn export(
    c: &Compiled,
    weights: Option<&std::path::Path>,
    load: &fpn_runtime::LoadOptions,
    seed: u64,
    opts: &fpn_compiler::back::onnx::Options,
) -> Result<Vec<u8>, ExportFail> {
    use fpn_compiler::{back::onnx, interp};
    let params = match weights {
        Some(w) => load
            .load(w)
            .and_then(|w| interp::Params::from_weights(&w, &c.analysis))
            .map_err(ExportFail::Weights)?,
        None => interp::Params::init(&c.analysis, seed),
    };
    let model = onnx::export(&c.graph, &c.analysis, &params, opts).map_err(ExportFail::Export)?;
    Ok(onnx::to_bytes(&model))
}

/// An export error as the CLI prints it: the message, the spec location of the node, the help.
pub fn export_error(e: &fpn_compiler::back::onnx::ExportError, sources: &SourceMap) -> String {
    let mut s = format!("error: {e}\n");
    if let Some(span) = e.span() {
        s.push_str(&format!("  --> {}\n", sources.location(span)));
    }
    s.push_str(&format!("  = help: {}\n", e.help()));
    s
}

/// `--map OLD=NEW`.
fn parse_map(s: &str) -> Result<(String, String), String> {
    fpn_runtime::KeyMap::parse_rule(s)
}

/// `fpn run`: the interpreter on safetensors inputs, writing safetensors outputs. Prints the
/// load time (since `start`: spec, weights, inputs) and the forward time to stderr, and warns
/// there when the weights are random (no `--weights`).
fn run(
    c: &Compiled,
    weights: Option<&Path>,
    load: &fpn_runtime::LoadOptions,
    seed: u64,
    input: &Path,
    output: &Path,
    start: Instant,
) -> Result<(), fpn_runtime::Error> {
    use fpn_compiler::interp;
    let allow_non_finite = load.allow_non_finite;
    let params = match weights {
        Some(w) => interp::Params::from_weights(&load.load(w)?, &c.analysis)?,
        None => {
            eprintln!(
                "warning: no `--weights`: running on random weights (PyTorch's default init, seed {seed}); \
                 the outputs are not a trained model's"
            );
            interp::Params::init(&c.analysis, seed)
        }
    };
    let tensors = fpn_runtime::read_tensors_allowing(input, allow_non_finite)?;
    let mut views = Vec::new();
    for (name, t) in &tensors {
        let v = t.view().into_dimensionality::<ndarray::Ix4>().map_err(|_| {
            fpn_runtime::Error::InputSize(format!(
                "input `{name}` has shape {:?}; expected 4 dims N×C×H×W",
                t.shape()
            ))
        })?;
        views.push((name.as_str(), v));
    }
    let loaded = start.elapsed();
    let t = Instant::now();
    let outs = interp::run(&c.graph, &c.analysis, &params, &views)?;
    let forward = t.elapsed();
    let dyn_outs: Vec<(&str, ndarray::ArrayViewD<f32>)> =
        outs.iter().map(|(n, t)| (n.as_str(), t.view().into_dyn())).collect();
    let bytes = fpn_runtime::tensors_to_bytes(&dyn_outs)?;
    write_atomic(output, &bytes).map_err(|source| fpn_runtime::Error::Io {
        path: output.to_path_buf(),
        source,
    })?;
    for (n, t) in &outs {
        out(&format!("{n}: {:?}\n", t.shape()));
    }
    eprintln!(
        "time: load {:.1} ms (spec, weights, inputs), forward {:.1} ms (interpreter)",
        loaded.as_secs_f64() * 1e3,
        forward.as_secs_f64() * 1e3
    );
    Ok(())
}

/// The canonical form of `p`, or of its folder joined with its name if `p` does not exist.
fn canonical(p: &std::path::Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    Some(dir.canonicalize().ok()?.join(name))
}

/// Refuses to write `output` if it is one of `inputs` (same file after resolving links and
/// `..`), so `--output` can never overwrite the spec, the weights or the input.
fn refuse_overwrite(output: &std::path::Path, inputs: &[&std::path::Path]) -> std::io::Result<()> {
    let Some(out) = canonical(output) else { return Ok(()) };
    for i in inputs {
        if canonical(i).is_some_and(|c| c == out) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "refusing to write `{}`: it is the input `{}`; choose another output file",
                    output.display(),
                    i.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `bytes` to a temporary file in `path`'s folder, then renames it over `path`: a
/// failed write (full disk) leaves the old file as it was and no partial file behind.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let with_path =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("cannot write `{}`: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| with_path(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name")))?;
    if path.is_dir() {
        return Err(with_path(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is a directory",
        )));
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(with_path)
}

/// Why `path` cannot be read as a spec, if it cannot: missing, a directory, a FIFO or device.
fn unreadable(path: &std::path::Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no such file".into()),
        Err(e) => Some(e.to_string()),
        Ok(m) if m.is_dir() => Some("it is a directory".into()),
        Ok(m) if !m.is_file() => Some("it is not a regular file (a FIFO, socket or device)".into()),
        Ok(_) => None,
    }
}

/// How a spec path is shown: `<stdin>` for `-`.
fn shown(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// Reports that `path` cannot be read (exit 2): plain text, or an E0000 JSON diagnostic.
fn cannot_read(path: &Path, why: &str, cx: &mut Cx) -> u8 {
    cx.errors += 1;
    let message = format!("cannot read `{}`: {why}", shown(path));
    if cx.json {
        let v = serde_json::json!({
            "reason": "diagnostic",
            "schema_version": SCHEMA_VERSION,
            "level": "error",
            "code": "E0000",
            "message": message,
            "file": shown(path),
            "line": null,
            "column": null,
            "end_line": null,
            "end_column": null,
            "span": null,
            "label": null,
            "secondary": [],
            "notes": [],
            "help": "check the path: a spec is a regular file",
            "rendered": format!("error: {message}\n"),
        });
        out(&format!("{v}\n"));
    } else {
        eprintln!("error: {message}");
    }
    2
}

/// Reads a spec file (or stdin for `-`) and parses its YAML: the sources and the value or
/// the parse error. `Err(exit code)` when it cannot be read (reported).
fn read_spec(path: &Path, cx: &mut Cx) -> Result<(SourceMap, Result<Value, Vec<Diagnostic>>), u8> {
    use fpn_compiler::front::yaml;
    let mut sources = SourceMap::new();
    let name = shown(path);
    let bytes = if path.as_os_str() == "-" {
        if std::mem::replace(&mut cx.stdin_used, true) {
            return Err(cannot_read(path, "stdin was read already: give `-` once", cx));
        }
        use std::io::Read;
        let mut bytes = Vec::new();
        let cap = yaml::MAX_SPEC_BYTES as u64;
        if let Err(e) = std::io::stdin().lock().take(cap + 1).read_to_end(&mut bytes) {
            return Err(cannot_read(path, &e.to_string(), cx));
        }
        bytes
    } else {
        if let Some(why) = unreadable(path) {
            return Err(cannot_read(path, &why, cx));
        }
        match fpn_compiler::read_spec_file(path) {
            Ok(b) => b,
            Err(fpn_compiler::ReadError::Io(e)) => return Err(cannot_read(path, &e.to_string(), cx)),
            Err(fpn_compiler::ReadError::TooLarge(len)) => {
                let id = sources.add_text(&name, "");
                return Ok((sources, Err(vec![yaml::too_large(id, len)])));
            }
        }
    };
    if bytes.len() > yaml::MAX_SPEC_BYTES {
        let id = sources.add_text(&name, "");
        return Ok((sources, Err(vec![yaml::too_large(id, bytes.len() as u64)])));
    }
    let id = sources.add_text(&name, String::from_utf8_lossy(&bytes).into_owned());
    let value = yaml::parse_bytes(&bytes, id).map_err(|d| vec![d]);
    Ok((sources, value))
}

/// Reports a spec's diagnostics (text on stderr, or JSON Lines on stdout), with warnings made
/// errors under `--deny warnings`; whether it has errors.
fn report(path: &Path, mut diags: Vec<Diagnostic>, sources: &SourceMap, cx: &mut Cx) -> bool {
    if cx.deny_warnings {
        for d in diags.iter_mut().filter(|d| !d.is_error()) {
            d.severity = Severity::Error;
            d.notes.push("`--deny warnings` makes this warning an error".into());
        }
    }
    let n = diags.iter().filter(|d| d.is_error()).count();
    cx.errors += n;
    cx.warnings += diags.len() - n;
    if diags.is_empty() {
        return false;
    }
    if cx.json {
        let lines = LineIndex::new(sources);
        for (k, d) in diags.iter().enumerate() {
            // rendered text for as many as the text mode prints in full
            out(&format!(
                "{}\n",
                diagnostic_json(d, sources, &lines, k < diag::MAX_RENDERED)
            ));
        }
    } else {
        eprint!("{}", diag::render(&diags, sources, cx.color));
        if n > 0 {
            eprintln!(
                "error: `{}` has {n} error{}",
                shown(path),
                if n == 1 { "" } else { "s" }
            );
        }
    }
    n > 0
}

/// Compiles a spec file (or stdin), reporting its diagnostics; `Err(exit code)` on failure.
fn load(path: &Path, cx: &mut Cx) -> Result<Compiled, u8> {
    load_with(path, cx, &mut SourceMap::new())
}

/// [`load`] handing back the sources (for locating later errors, as `fpn export`'s).
fn load_with(path: &Path, cx: &mut Cx, sources: &mut SourceMap) -> Result<Compiled, u8> {
    let value;
    (*sources, value) = read_spec(path, cx)?;
    match value.and_then(|v| fpn_compiler::compile_value_with(&v, &cx.sets)) {
        Ok(mut c) => {
            let warnings = std::mem::take(&mut c.warnings);
            if report(path, warnings.clone(), sources, cx) {
                return Err(1);
            }
            c.warnings = warnings;
            Ok(c)
        }
        Err(diags) => {
            let io = diags.iter().any(|d| d.code == diag::Code::E0000);
            report(path, diags, sources, cx);
            Err(if io { 2 } else { 1 })
        }
    }
}

/// One diagnostic as a JSON object (docs/json.md): cargo's `--message-format=json` fields,
/// positions 1-based (columns in characters), `span` in bytes; `rendered` is null unless
/// `render` (past the first [`diag::MAX_RENDERED`] of a spec).
fn diagnostic_json(d: &Diagnostic, sources: &SourceMap, lines: &LineIndex<'_>, render: bool) -> serde_json::Value {
    let place = |span: fpn_compiler::span::Span| -> serde_json::Value {
        match sources.get(span.source) {
            Some(src) => {
                let r = src.byte_range(span);
                let (line, column) = lines.line_col(span.source, r.start).unwrap_or((1, 1));
                let (end_line, end_column) = lines.line_col(span.source, r.end).unwrap_or((1, 1));
                serde_json::json!({
                    "file": src.name,
                    "line": line,
                    "column": column,
                    "end_line": end_line,
                    "end_column": end_column,
                    "span": {"start": r.start, "end": r.end},
                })
            }
            None => serde_json::json!({
                "file": null, "line": null, "column": null, "end_line": null, "end_column": null, "span": null,
            }),
        }
    };
    let mut v = serde_json::json!({
        "reason": "diagnostic",
        "schema_version": SCHEMA_VERSION,
        "level": if d.is_error() { "error" } else { "warning" },
        "code": d.code.as_str(),
        "message": d.message,
        "label": (!d.label.is_empty()).then_some(&d.label),
        "secondary": d.secondary.iter().map(|l| {
            let mut p = place(l.span);
            p["message"] = serde_json::Value::from(l.message.as_str());
            p
        }).collect::<Vec<_>>(),
        "notes": d.notes,
        "help": d.help,
        "rendered": render.then(|| diag::render(std::slice::from_ref(d), sources, false)),
    });
    if let (Some(o), serde_json::Value::Object(p)) = (v.as_object_mut(), place(d.span)) {
        o.extend(p);
    }
    v
}

/// A size as JSON: a number when it is a constant, else its expression (`"ceil(H/8)"`).
fn dim_json(d: &fpn_compiler::dim::Dim, names: &[String]) -> serde_json::Value {
    match d.as_const() {
        Some(n) => serde_json::Value::from(n),
        None => serde_json::Value::from(d.display(names).to_string()),
    }
}

/// A shape as JSON: `[C, H, W]`, each a number or a symbolic expression.
fn shape_json(s: &fpn_compiler::infer::Shape, names: &[String]) -> serde_json::Value {
    serde_json::json!([s.c, dim_json(&s.h, names), dim_json(&s.w, names)])
}

/// The number of ops of a spec: its nodes that are not inputs (what `check` and `shapes`
/// both print).
pub fn op_count(c: &Compiled) -> usize {
    c.graph.graph.node_count() - c.graph.inputs.len()
}

/// The total FLOPs, if every node's are known and the sum fits.
fn total_flops(c: &Compiled) -> Option<i64> {
    c.analysis.flops.iter().try_fold(0i64, |acc, f| acc.checked_add((*f)?))
}

/// The generated code's activation memory at batch 1 (see
/// [`fpn_compiler::back::rust::memory_plan`]), when every size is fixed.
fn memory(c: &Compiled) -> Option<fpn_compiler::back::rust::MemoryPlan> {
    if !c.graph.symbol_names().is_empty() {
        return None;
    }
    fpn_compiler::back::rust::memory_plan(&c.graph, &c.analysis, &[])
        .ok()
        .flatten()
}

/// `memory` as one line: planned bytes beside the liveness bound.
fn memory_line(m: &fpn_compiler::back::rust::MemoryPlan) -> String {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let ratio = if m.bound > 0 {
        m.planned as f64 / m.bound as f64
    } else {
        1.0
    };
    format!(
        "memory {:.2} MiB of activations at batch 1 (liveness bound {:.2} MiB, ×{ratio:.2})",
        mb(m.planned),
        mb(m.bound)
    )
}

/// `fpn check --json`'s object for a spec that passed.
pub fn checked_json(path: &Path, c: &Compiled) -> serde_json::Value {
    let g = &c.graph;
    let names = g.symbol_names();
    serde_json::json!({
        "reason": "checked",
        "schema_version": SCHEMA_VERSION,
        "file": shown(path),
        "name": g.name,
        "ops": op_count(c),
        "params": params_json(c),
        "flops": total_flops(c),
        "memory": memory(c).map(|m| serde_json::json!({"planned": m.planned, "bound": m.bound})),
        "inputs": g.inputs.iter().map(|i| serde_json::json!({
            "name": g.node(*i).name,
            "shape": shape_json(&c.analysis.shapes[i.index()], &names),
        })).collect::<Vec<_>>(),
        "outputs": g.outputs.iter().map(|o| serde_json::json!({
            "name": o.name,
            "shape": shape_json(&c.analysis.shapes[o.node.index()], &names),
        })).collect::<Vec<_>>(),
        "sizes": c.sizes.iter().filter_map(|r| match r {
            Ok(a) => Some(a.describe()),
            Err(e @ SizesError::TooLarge(..)) => Some(e.to_string()),
            Err(_) => None,
        }).collect::<Vec<_>>(),
    })
}

/// The parameter total: a number while it fits JSON readers' u64, else its decimal string.
fn params_json(c: &Compiled) -> serde_json::Value {
    u64::try_from(total_params(c)).map_or_else(
        |_| serde_json::Value::String(total_params(c).to_string()),
        serde_json::Value::from,
    )
}

/// A FLOP count for a summary line: GFLOPs with two decimals from 10⁸ on, else MFLOPs with one
/// (a small spec's "0.00 GFLOPs" said nothing), else the count itself.
fn fmt_flops(f: i64) -> String {
    let v = f as f64;
    if v >= 1e8 {
        format!("{:.2} GFLOPs", v / 1e9)
    } else if v >= 1e5 {
        format!("{:.1} MFLOPs", v / 1e6)
    } else {
        format!("{f} FLOPs")
    }
}

/// One-paragraph result of `fpn check`.
pub fn summary(path: &std::path::Path, c: &Compiled) -> String {
    let g = &c.graph;
    let names = g.symbol_names();
    let params = total_params(c);
    let flops = total_flops(c);
    let mut s = format!(
        "{}: ok — `{}`, {} ops, {} parameters{}",
        shown(path),
        g.name,
        op_count(c),
        params,
        flops.map_or(String::new(), |f| format!(", {}", fmt_flops(f)))
    );
    for i in &g.inputs {
        s.push_str(&format!(
            "\n  input  {:<12} {}",
            g.node(*i).name,
            fpn_compiler::infer::fmt_shape(&c.analysis.shapes[i.index()], &names)
        ));
    }
    for o in &g.outputs {
        s.push_str(&format!(
            "\n  output {:<12} {}",
            o.name,
            fpn_compiler::infer::fmt_shape(&c.analysis.shapes[o.node.index()], &names)
        ));
    }
    if let Some(m) = memory(c) {
        s.push_str(&format!("\n  {}", memory_line(&m)));
    }
    for r in &c.sizes {
        match r {
            Ok(acc) => s.push_str(&format!("\n  sizes  {}", acc.describe())),
            // say so rather than print nothing (issue 11 item 6)
            Err(e @ SizesError::TooLarge(..)) => s.push_str(&format!("\n  sizes  {e}")),
            Err(_) => {}
        }
    }
    s
}

/// The parameter count of the whole spec: in i128, which no sum of per-node i64 counts
/// overflows (issue 11 item 5: three 2³¹-channel convs printed a negative total).
pub fn total_params(c: &Compiled) -> i128 {
    c.analysis.param_counts.iter().map(|&p| i128::from(p)).sum()
}

/// The `fpn shapes` table.
pub fn shapes_table(c: &Compiled) -> String {
    let g = &c.graph;
    let names = g.symbol_names();
    let rows: Vec<[String; 5]> = g
        .order()
        .map(|i| {
            let n = g.node(i);
            [
                n.name.clone(),
                n.op.kind().to_string(),
                fpn_compiler::infer::fmt_shape(&c.analysis.shapes[i.index()], &names),
                c.analysis.param_counts[i.index()].to_string(),
                c.analysis.flops[i.index()].map_or("-".into(), |f| f.to_string()),
            ]
        })
        .collect();
    let head = ["node", "op", "shape (C×H×W)", "params", "FLOPs"];
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (k, cell) in r.iter().enumerate() {
            w[k] = w[k].max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (k, cell) in cells.iter().enumerate() {
            let pad = w[k] - cell.chars().count();
            if k >= 3 {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str(if k < 4 { "  " } else { "\n" });
        }
        s
    };
    let mut out = line(head);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    let params = total_params(c);
    let flops = total_flops(c);
    // inputs are rows but not ops: the count `check` prints
    out.push_str(&format!(
        "total: {} ops, {params} parameters, {} FLOPs\n",
        op_count(c),
        flops.map_or("-".into(), |f| f.to_string())
    ));
    out
}

/// The `fpn shapes --json` object (docs/json.md).
pub fn shapes_json(path: &Path, c: &Compiled) -> serde_json::Value {
    let g = &c.graph;
    let names = g.symbol_names();
    let nodes: Vec<serde_json::Value> = g
        .order()
        .map(|i| {
            let n = g.node(i);
            serde_json::json!({
                "name": n.name,
                "op": n.op.kind(),
                "inputs": n.inputs.iter().map(|j| g.node(*j).name.clone()).collect::<Vec<_>>(),
                "shape": shape_json(&c.analysis.shapes[i.index()], &names),
                "params": c.analysis.param_counts[i.index()],
                "flops": c.analysis.flops[i.index()],
                "param_prefix": n.param,
            })
        })
        .collect();
    let outputs: Vec<serde_json::Value> = g
        .outputs
        .iter()
        .map(|o| serde_json::json!({"name": o.name, "node": g.node(o.node).name}))
        .collect();
    serde_json::json!({
        "reason": "shapes",
        "schema_version": SCHEMA_VERSION,
        "file": shown(path),
        "name": g.name,
        "nodes": nodes,
        "outputs": outputs,
        "params": c.analysis.params.iter().map(|p| serde_json::json!({"name": p.name, "shape": p.shape})).collect::<Vec<_>>(),
        "ops": op_count(c),
        "total_params": params_json(c),
        "total_flops": total_flops(c),
    })
}

/// `fpn sizes` in words: one line per free symbol. A symbol no merge ties to another is
/// described on its own ("independent"); symbols tied by merges are described jointly, as the
/// set of one of them and the others as functions of it.
pub fn sizes_text(c: &Compiled) -> String {
    if c.sizes.is_empty() {
        return "all input sizes are fixed; `fpn check` verifies them\n".into();
    }
    let several = c.sizes.len() > 1;
    let mut s = String::new();
    let mut joint_seen: Vec<(String, String)> = Vec::new();
    for r in &c.sizes {
        match r {
            Ok(a) if !a.dependents.is_empty() || !a.related.is_empty() => {
                let names: Vec<&str> = std::iter::once(a.symbol.as_str())
                    .chain(a.dependents.iter().map(|d| d.symbol.as_str()))
                    .chain(a.related.iter().map(|r| r.symbol.as_str()))
                    .collect();
                s.push_str(&format!("jointly ({}): {}\n", names.join(", "), a.describe()));
            }
            Ok(a) if several => s.push_str(&format!("independently: {}\n", a.describe())),
            Ok(a) => s.push_str(&format!("{}\n", a.describe())),
            // printed with the symbol it depends on
            Err(SizesError::Dependent(..) | SizesError::Related(..)) => {}
            // once per tied pair
            Err(SizesError::Joint(a, b, _)) if joint_seen.contains(&(b.clone(), a.clone())) => {}
            Err(e @ SizesError::Joint(a, b, _)) => {
                joint_seen.push((a.clone(), b.clone()));
                s.push_str(&format!("{e}\n"));
            }
            Err(e) => s.push_str(&format!("{e}\n")),
        }
    }
    s
}

/// `fpn sizes --json`: `{reason: "sizes", schema_version, file, symbols}` with one object per
/// symbol in `symbols`. Free symbols have `set`, `first`,
/// `description`, `independent`, `determines` (the symbols that are functions of it, each
/// `{symbol, expr}`) and `related` (a symbol tied to it that is not a function of it:
/// `{symbol, rule, values: [[x, [y…]]…], upto, shift}`); a dependent symbol has
/// `determined_by` and `expr`, a related one `related_to` and `rule`.
pub fn sizes_json(path: &Path, c: &Compiled) -> serde_json::Value {
    let v: Vec<serde_json::Value> = c
        .sizes
        .iter()
        .map(|r| match r {
            Ok(a) => serde_json::json!({
                "symbol": a.symbol,
                "first": a.first(8),
                "description": a.describe(),
                "independent": a.dependents.is_empty() && a.related.is_empty(),
                "determines": a.dependents,
                "related": a.related.iter().map(|r| serde_json::json!({
                    "symbol": r.symbol,
                    "rule": r.rule,
                    "values": a.first(8).iter().map(|&x| serde_json::json!([x, r.values(x)])).collect::<Vec<_>>(),
                    "upto": r.upto,
                    "shift": [r.shift.0, r.shift.1],
                })).collect::<Vec<_>>(),
                "set": a,
            }),
            Err(SizesError::Dependent(sym, by, expr)) => {
                serde_json::json!({"symbol": sym, "determined_by": by, "expr": expr, "independent": false})
            }
            Err(SizesError::Related(sym, by, rule)) => {
                serde_json::json!({"symbol": sym, "related_to": by, "rule": rule, "independent": false})
            }
            Err(e) => serde_json::json!({"error": e.to_string()}),
        })
        .collect();
    serde_json::json!({
        "reason": "sizes",
        "schema_version": SCHEMA_VERSION,
        "file": shown(path),
        "symbols": v,
    })
}

/// Writes `s` to stdout. A closed pipe (`fpn sizes --json | head`) ends the output quietly
/// instead of panicking like `print!`.
fn out(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to stdout: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small specs' FLOPs are not "0.00 GFLOPs".
    #[test]
    fn flops_keep_their_digits() {
        assert_eq!(fmt_flops(3_538_944), "3.5 MFLOPs");
        assert_eq!(fmt_flops(339_000_000), "0.34 GFLOPs");
        assert_eq!(fmt_flops(8_700_000_000), "8.70 GFLOPs");
        assert_eq!(fmt_flops(4096), "4096 FLOPs");
    }

    /// `auto`'s rules in order: NO_COLOR, CLICOLOR_FORCE, TERM=dumb, the terminal.
    #[test]
    fn color_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(*v))
            }
        };
        let auto = ColorChoice::Auto;
        assert!(use_color(auto, env(&[]), true));
        assert!(!use_color(auto, env(&[]), false));
        assert!(!use_color(auto, env(&[("TERM", "dumb")]), true));
        assert!(use_color(auto, env(&[("TERM", "xterm-256color")]), true));
        assert!(!use_color(auto, env(&[("NO_COLOR", "1")]), true));
        assert!(
            use_color(auto, env(&[("NO_COLOR", "")]), true),
            "an empty NO_COLOR is unset"
        );
        assert!(use_color(
            auto,
            env(&[("CLICOLOR_FORCE", "1"), ("TERM", "dumb")]),
            false
        ));
        assert!(!use_color(
            auto,
            env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "x")]),
            true
        ));
        assert!(use_color(ColorChoice::Always, env(&[("NO_COLOR", "1")]), false));
        assert!(!use_color(ColorChoice::Never, env(&[("CLICOLOR_FORCE", "1")]), true));
    }

    #[test]
    fn summary_line() {
        assert_eq!(check_summary(3, 1, 4, 0), "checked 3 specs: 2 ok, 1 failed (4 errors)");
        assert_eq!(check_summary(1, 0, 0, 2), "checked 1 spec: 1 ok, 2 warnings");
    }
}
