//! The `fpn` command line: `check`, `shapes`, `sizes`, `gen`, `run`, `export`, `explain`.
//!
//! Exit codes: 0 clean, 1 the spec has errors, 2 usage or I/O problems.

use clap::{Parser, Subcommand};
use fpn_compiler::sizes::SizesError;
use fpn_compiler::span::SourceMap;
use fpn_compiler::{diag, Compiled};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fpn",
    version,
    about = "Compile feature-pyramid topologies: check shapes, accepted sizes, generate Rust."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// What `fpn gen` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// Rust against fpn_runtime.
    Rust,
    /// A PyTorch module (Python).
    Torch,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check specs; prints every error with its location, and each spec's outputs.
    Check {
        /// YAML spec files.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// Print every node: op, output shape, parameters, FLOPs.
    Shapes {
        /// YAML spec file.
        spec: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the input sizes the spec accepts.
    Sizes {
        /// YAML spec file.
        spec: PathBuf,
        /// JSON instead of words.
        #[arg(long)]
        json: bool,
    },
    /// Generate the Rust module of a spec (against the `fpn_runtime` crate), or with
    /// `--target torch` a self-contained PyTorch module with the spec's `state_dict` names.
    Gen {
        /// YAML spec file.
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
    },
    /// Run a spec with the interpreter: inputs and outputs are safetensors files, tensors by name.
    Run {
        /// YAML spec file.
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
        /// Load weights and inputs holding NaN or ±∞ (refused by default).
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
    },
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
        /// Load weights holding NaN or ±∞ (refused by default).
        #[arg(long)]
        allow_non_finite: bool,
    },
    /// Explain a diagnostic code (`fpn explain E0323`): what it means and what to do.
    Explain {
        /// The code, e.g. E0323.
        code: String,
    },
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
    let color = std::io::stderr().is_terminal();
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
        Cmd::Check { specs } => {
            let mut worst = 0u8;
            for path in specs {
                match load(&path, color) {
                    Ok(c) => out(&format!("{}\n", summary(&path, &c))),
                    Err(code) => worst = worst.max(code),
                }
            }
            ExitCode::from(worst)
        }
        Cmd::Shapes { spec, json } => match load(&spec, color) {
            Ok(c) => {
                if json {
                    out(&format!("{}\n", shapes_json(&c)));
                } else {
                    out(&shapes_table(&c));
                }
                ExitCode::SUCCESS
            }
            Err(code) => ExitCode::from(code),
        },
        Cmd::Sizes { spec, json } => match load(&spec, color) {
            Ok(c) => {
                if json {
                    out(&format!("{}\n", sizes_json(&c)));
                } else {
                    out(&sizes_text(&c));
                }
                ExitCode::SUCCESS
            }
            Err(code) => ExitCode::from(code),
        },
        Cmd::Gen {
            spec,
            output,
            runtime,
            target,
        } => match load(&spec, color) {
            Ok(c) => {
                let opts = fpn_compiler::back::rust::Options { runtime_path: runtime };
                let code = match target {
                    Target::Rust => {
                        fpn_compiler::back::rust::generate(&c.graph, &c.analysis, &opts).map_err(|e| e.to_string())
                    }
                    Target::Torch => {
                        fpn_compiler::back::torch::generate(&c.graph, &c.analysis).map_err(|e| e.to_string())
                    }
                };
                match code {
                    Ok(code) => match output {
                        Some(path) => match refuse_overwrite(&path, &[&spec])
                            .and_then(|()| write_atomic(&path, code.as_bytes()))
                        {
                            Ok(()) => ExitCode::SUCCESS,
                            Err(e) => {
                                eprintln!("error: {e}");
                                ExitCode::from(2)
                            }
                        },
                        None => {
                            out(&code);
                            ExitCode::SUCCESS
                        }
                    },
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(1)
                    }
                }
            }
            Err(code) => ExitCode::from(code),
        },
        Cmd::Export {
            spec,
            onnx,
            weights,
            seed,
            opset,
            fold_bn,
            keep_bn: _,
            allow_non_finite,
        } => {
            let mut inputs: Vec<&std::path::Path> = vec![&spec];
            inputs.extend(weights.as_deref());
            if let Err(e) = refuse_overwrite(&onnx, &inputs) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            let mut sources = SourceMap::new();
            let c = match load_with(&spec, color, &mut sources) {
                Ok(c) => c,
                Err(code) => return ExitCode::from(code),
            };
            let opts = fpn_compiler::back::onnx::Options { opset, fold_bn };
            let load = fpn_runtime::LoadOptions::new().allow_non_finite(allow_non_finite);
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
            allow_non_finite,
            map,
            strip_prefix,
        } => {
            let mut opts = fpn_runtime::LoadOptions::new().allow_non_finite(allow_non_finite);
            for (old, new) in map {
                opts = opts.map(old, new);
            }
            for p in strip_prefix {
                opts = opts.strip_prefix(p);
            }
            let mut inputs: Vec<&std::path::Path> = vec![&spec, &input];
            inputs.extend(weights.as_deref());
            if let Err(e) = refuse_overwrite(&output, &inputs) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            match load(&spec, color) {
                Ok(c) => match run(&c, weights.as_deref(), &opts, seed, &input, &output) {
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

/// `fpn run`: the interpreter on safetensors inputs, writing safetensors outputs.
fn run(
    c: &Compiled,
    weights: Option<&std::path::Path>,
    load: &fpn_runtime::LoadOptions,
    seed: u64,
    input: &std::path::Path,
    output: &std::path::Path,
) -> Result<(), fpn_runtime::Error> {
    use fpn_compiler::interp;
    let allow_non_finite = load.allow_non_finite;
    let params = match weights {
        Some(w) => interp::Params::from_weights(&load.load(w)?, &c.analysis)?,
        None => interp::Params::init(&c.analysis, seed),
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
    let outs = interp::run(&c.graph, &c.analysis, &params, &views)?;
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

/// Compiles a spec file, printing diagnostics to stderr; `Err(exit code)` on failure.
fn load(path: &std::path::Path, color: bool) -> Result<Compiled, u8> {
    load_with(path, color, &mut SourceMap::new())
}

/// [`load`] keeping the sources (for locating later errors).
fn load_with(path: &std::path::Path, color: bool, sources: &mut SourceMap) -> Result<Compiled, u8> {
    if let Some(why) = unreadable(path) {
        eprintln!("error: cannot read `{}`: {why}", path.display());
        return Err(2);
    }
    match fpn_compiler::compile_file(sources, path) {
        Ok(c) => {
            if !c.warnings.is_empty() {
                eprint!("{}", diag::render(&c.warnings, sources, color));
            }
            Ok(c)
        }
        Err(diags) => {
            eprint!("{}", diag::render(&diags, sources, color));
            let n = diags.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "error: `{}` has {n} error{}",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            Err(if diags.iter().any(|d| d.code == "E0000") { 2 } else { 1 })
        }
    }
}

/// One-paragraph result of `fpn check`.
pub fn summary(path: &std::path::Path, c: &Compiled) -> String {
    let g = &c.graph;
    let names = g.symbol_names();
    let params = total_params(c);
    let flops: Option<i64> = c.analysis.flops.iter().try_fold(0i64, |acc, f| acc.checked_add((*f)?));
    let mut s = format!(
        "{}: ok — `{}`, {} ops, {} parameters{}",
        path.display(),
        g.name,
        g.graph.node_count() - g.inputs.len(),
        params,
        flops.map_or(String::new(), |f| format!(", {:.2} GFLOPs", f as f64 / 1e9))
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
    let flops: Option<i64> = c.analysis.flops.iter().try_fold(0i64, |acc, f| acc.checked_add((*f)?));
    out.push_str(&format!(
        "total: {} ops, {params} parameters, {} FLOPs\n",
        rows.len(),
        flops.map_or("-".into(), |f| f.to_string())
    ));
    out
}

/// The `fpn shapes --json` document.
pub fn shapes_json(c: &Compiled) -> String {
    let g = &c.graph;
    let names = g.symbol_names();
    let nodes: Vec<serde_json::Value> = g
        .order()
        .map(|i| {
            let n = g.node(i);
            let s = &c.analysis.shapes[i.index()];
            serde_json::json!({
                "name": n.name,
                "op": n.op.kind(),
                "inputs": n.inputs.iter().map(|j| g.node(*j).name.clone()).collect::<Vec<_>>(),
                "shape": [s.c.to_string(), s.h.display(&names).to_string(), s.w.display(&names).to_string()],
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
    let doc = serde_json::json!({
        "name": g.name,
        "nodes": nodes,
        "outputs": outputs,
        "params": c.analysis.params.iter().map(|p| serde_json::json!({"name": p.name, "shape": p.shape})).collect::<Vec<_>>(),
        // a number while it fits JSON readers' u64, else its decimal string
        "total_params": u64::try_from(total_params(c))
            .map_or_else(|_| serde_json::Value::String(total_params(c).to_string()), serde_json::Value::from),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
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

/// `fpn sizes --json`: one object per symbol. Free symbols have `set`, `first`,
/// `description`, `independent`, `determines` (the symbols that are functions of it, each
/// `{symbol, expr}`) and `related` (a symbol tied to it that is not a function of it:
/// `{symbol, rule, values: [[x, [y…]]…], upto, shift}`); a dependent symbol has
/// `determined_by` and `expr`, a related one `related_to` and `rule`.
pub fn sizes_json(c: &Compiled) -> String {
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
    serde_json::to_string_pretty(&v).unwrap_or_default()
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
