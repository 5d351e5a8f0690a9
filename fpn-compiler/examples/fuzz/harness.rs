//! The fuzz harness shared by the driver (`examples/fuzz/main.rs`) and the regression test
//! (`tests/fuzz.rs`): the four targets, the seed corpora, the mutators and the fuzz loop.
//!
//! Everything runs on stable Rust: no coverage feedback, but a mutation loop over the spec
//! corpus with byte-level mutations and structure-aware ones on the parsed [`Value`] tree
//! (printed back as block or flow YAML, or as `fpn!` tokens), and on the safetensors header JSON.
//! The only feedback is cheap: a mutant whose set of diagnostic codes was never seen before, or
//! (for the pipeline) that compiles, joins the in-memory pool and is mutated further.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use fpn_compiler::back::rust::{generate, Options};
use fpn_compiler::diag::{render, Diagnostic};
use fpn_compiler::front::{dsl, yaml};
use fpn_compiler::interp::{self, Params};
use fpn_compiler::span::{SourceId, SourceMap};
use fpn_compiler::value::{Value, ValueKind};
use fpn_compiler::Compiled;
use fpn_runtime::ndarray::{Array4, ArrayD, IxDyn};
use fpn_runtime::Weights;

/// What a fuzz input is fed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// YAML bytes through `front::yaml::parse_bytes`, `compile_value` and diagnostic rendering.
    Yaml,
    /// Rust token text through `front::dsl::parse`, `compile_value` and diagnostic rendering.
    Dsl,
    /// YAML that compiles: code generation (parsed back with `syn`), the interpreter on small
    /// fixed-size specs (output shapes checked against the analysis).
    Pipeline,
    /// safetensors bytes through `Weights::from_bytes`, every accessor, `Params::from_weights`.
    Weights,
}

impl Target {
    /// All targets.
    pub const ALL: [Target; 4] = [Target::Yaml, Target::Dsl, Target::Pipeline, Target::Weights];

    /// The target's name (also its directory under the regression folder).
    pub fn name(self) -> &'static str {
        match self {
            Target::Yaml => "yaml",
            Target::Dsl => "dsl",
            Target::Pipeline => "pipeline",
            Target::Weights => "weights",
        }
    }

    /// The target called `s`.
    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    /// File extension of its saved inputs.
    pub fn ext(self) -> &'static str {
        match self {
            Target::Yaml | Target::Pipeline => "yaml",
            Target::Dsl => "rs",
            Target::Weights => "safetensors",
        }
    }
}

/// How one input ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted all the way.
    Accepted,
    /// Rejected with diagnostics or an error; the set of codes (or a short error kind).
    Rejected(BTreeSet<String>),
    /// Not a valid input for the target (e.g. text that does not lex as Rust tokens).
    Skipped,
    /// A bug: a panic (`location` is `file:line`) or a broken oracle (`location` names it).
    Bug {
        /// `file:line:col` of the panic, or `oracle:<name>`.
        location: String,
        /// The panic message or what the oracle saw.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Panic capture

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Option<(String, String)>>> = const { std::cell::RefCell::new(None) };
}

/// Installs (once) a panic hook that records the panic of a thread inside [`run_one`] instead of
/// printing it, and defers to the previous hook everywhere else.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURE.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        let loc = info
                            .location()
                            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                            .unwrap_or_else(|| "unknown".into());
                        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                            (*s).to_string()
                        } else if let Some(s) = info.payload().downcast_ref::<String>() {
                            s.clone()
                        } else {
                            "non-string panic payload".into()
                        };
                        *slot = Some((loc, msg));
                        true
                    }
                    None => false,
                }
            });
            if !captured {
                prev(info);
            }
        }));
    });
}

/// Runs `f` catching a panic as [`Outcome::Bug`].
fn guarded(f: impl FnOnce() -> Outcome) -> Outcome {
    install_hook();
    CAPTURE.with(|c| *c.borrow_mut() = Some(None));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    let info = CAPTURE.with(|c| c.borrow_mut().take()).flatten();
    match r {
        Ok(o) => o,
        Err(_) => {
            let (location, message) = info.unwrap_or_else(|| ("unknown".into(), "panic".into()));
            Outcome::Bug { location, message }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Targets

/// Limits that keep one input cheap.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Run the interpreter only when the spec's FLOPs (batch 1) are at most this.
    pub interp_flops: i64,
    /// ... and its parameters hold at most this many values.
    pub interp_params: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            interp_flops: 20_000_000,
            interp_params: 200_000,
        }
    }
}

/// Runs one input through `target`, catching panics.
pub fn run_one(target: Target, input: &[u8], limits: &Limits) -> Outcome {
    guarded(|| match target {
        Target::Yaml => yaml_target(input),
        Target::Dsl => dsl_target(input),
        Target::Pipeline => pipeline_target(input, limits).0,
        Target::Weights => weights_target(input),
    })
}

fn codes(diags: &[Diagnostic]) -> BTreeSet<String> {
    diags.iter().map(|d| d.code.to_string()).collect()
}

fn yaml_target(input: &[u8]) -> Outcome {
    let mut sm = SourceMap::new();
    let id = sm.add_text("fuzz.yaml", String::from_utf8_lossy(input).into_owned());
    let result = yaml::parse_bytes(input, id)
        .map_err(|d| vec![d])
        .and_then(|v| fpn_compiler::compile_value(&v));
    match result {
        Ok(c) => {
            let _ = render(&c.warnings, &sm, false);
            Outcome::Accepted
        }
        Err(diags) => {
            let _ = render(&diags, &sm, false);
            Outcome::Rejected(codes(&diags))
        }
    }
}

fn dsl_target(input: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(input) else {
        return Outcome::Skipped;
    };
    // proc_macro2's lexer is not ours to fuzz, and rustc would refuse deeper nesting anyway.
    if nesting(text.as_bytes()) > 200 {
        return Outcome::Skipped;
    }
    let Ok(ts) = proc_macro2::TokenStream::from_str(text) else {
        return Outcome::Skipped;
    };
    let mut sm = SourceMap::new();
    match dsl::parse(ts.clone(), SourceId(0), "fpn!") {
        Ok(p) => {
            sm.add(p.source.clone());
            match fpn_compiler::compile_value(&p.value) {
                Ok(c) => {
                    let _ = render(&c.warnings, &sm, false);
                    Outcome::Accepted
                }
                Err(diags) => {
                    let _ = render(&diags, &sm, false);
                    Outcome::Rejected(codes(&diags))
                }
            }
        }
        Err(diags) => {
            let (spans, source) = dsl::token_table(ts, "fpn!");
            sm.add(source);
            if let Some(d) = diags.iter().find(|d| d.span.hi as usize > spans.len()) {
                return Outcome::Bug {
                    location: "oracle:dsl-span".into(),
                    message: format!("{} span {:?} past the {} tokens", d.code, d.span, spans.len()),
                };
            }
            let _ = render(&diags, &sm, false);
            Outcome::Rejected(codes(&diags))
        }
    }
}

/// Deepest bracket nesting of a text (a cheap bound for the DSL lexer's recursion).
fn nesting(b: &[u8]) -> usize {
    let (mut d, mut m) = (0usize, 0usize);
    for &c in b {
        match c {
            b'[' | b'{' | b'(' => {
                d += 1;
                m = m.max(d);
            }
            b']' | b'}' | b')' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    m
}

/// Compiles YAML, generates Rust (twice: it must be deterministic), parses it with `syn`,
/// checks the no-panic invariant of the generated code, and runs the interpreter on small
/// fixed-size specs. Returns the outcome and, when accepted, the generated code.
pub fn pipeline_target(input: &[u8], limits: &Limits) -> (Outcome, Option<String>) {
    let mut sm = SourceMap::new();
    let Ok(text) = std::str::from_utf8(input) else {
        return (Outcome::Skipped, None);
    };
    let c = match fpn_compiler::compile_yaml(&mut sm, "fuzz.yaml", text) {
        Ok(c) => c,
        Err(diags) => return (Outcome::Rejected(codes(&diags)), None),
    };
    let opts = Options::default();
    let code = match generate(&c.graph, &c.analysis, &opts) {
        Ok(code) => code,
        Err(e) => {
            let mut set = BTreeSet::new();
            set.insert(format!("gen:{}", e.to_string().split('`').next().unwrap_or("")));
            return (Outcome::Rejected(set), None);
        }
    };
    let bug = |location: &str, message: String| Outcome::Bug {
        location: format!("oracle:{location}"),
        message,
    };
    match generate(&c.graph, &c.analysis, &opts) {
        Ok(again) if again == code => {}
        _ => return (bug("gen-deterministic", "two generate calls differ".into()), None),
    }
    if let Err(e) = syn::parse_file(&code) {
        return (bug("gen-parse", format!("generated code does not parse: {e}")), None);
    }
    for bad in [".unwrap()", ".expect(", "panic!(", "unreachable!("] {
        if code.contains(bad) {
            return (bug("gen-no-panic", format!("generated code contains `{bad}`")), None);
        }
    }
    if let Some(o) = interp_check(&c, limits) {
        return (o, None);
    }
    (Outcome::Accepted, Some(code))
}

/// The interpreter on a spec small enough to run. Fixed sizes: it must accept them and
/// produce the shapes the analysis promised. Symbolic sizes (every symbol independent): the
/// same at the smallest accepted value of each symbol, and for one symbol at a value the size
/// analysis refuses, the interpreter must refuse too.
fn interp_check(c: &Compiled, limits: &Limits) -> Option<Outcome> {
    let g = &c.graph;
    let a = &c.analysis;
    let params = a.params.iter().try_fold(0i64, |s, p| {
        s.checked_add(p.shape.iter().try_fold(1i64, |m, &d| m.checked_mul(d))?)
    })?;
    if params > limits.interp_params || g.graph.node_count() > 400 {
        return None;
    }
    let bug = |location: &str, message: String| {
        Some(Outcome::Bug {
            location: format!("oracle:{location}"),
            message,
        })
    };
    if g.symbols.is_empty() {
        let flops = a.flops.iter().try_fold(0i64, |s, f| f.and_then(|f| s.checked_add(f)))?;
        if flops > limits.interp_flops {
            return None;
        }
        return run_at(c, &[], limits, true).and_then(|m| bug(m.0, m.1));
    }
    let mut accepted = Vec::new();
    for s in &c.sizes {
        let acc = s.as_ref().ok()?;
        if !acc.dependents.is_empty() || !acc.related.is_empty() {
            return None;
        }
        accepted.push(acc);
    }
    let env: Vec<i64> = accepted
        .iter()
        .map(|acc| acc.first(1).first().copied())
        .collect::<Option<_>>()?;
    if let Some(m) = run_at(c, &env, limits, true) {
        return bug(m.0, format!("{} (sizes {env:?})", m.1));
    }
    // one refused value of the first symbol that has one near its smallest accepted values
    for (k, acc) in accepted.iter().enumerate() {
        let lo = acc.min.max(1);
        if let Some(x) = (lo..lo.saturating_add(64)).find(|&x| !acc.contains(x) && acc.max.is_none_or(|m| x <= m)) {
            let mut e = env.clone();
            e[k] = x;
            if let Some(m) = run_at(c, &e, limits, false) {
                return bug(m.0, format!("{} (sizes {e:?})", m.1));
            }
            break;
        }
    }
    None
}

thread_local! {
    /// How many times this thread ran the interpreter (for the driver's statistics).
    pub static INTERP_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Runs the interpreter with the symbols at `env`; `Some((oracle, message))` when it disagrees
/// with the analysis (`accept`: the sizes are accepted, else refused). `None` when it agrees or
/// the inputs would be too large to run.
fn run_at(c: &Compiled, env: &[i64], limits: &Limits, accept: bool) -> Option<(&'static str, String)> {
    let g = &c.graph;
    let a = &c.analysis;
    let mut inputs = Vec::new();
    let mut pixels = 0i64;
    for &i in &g.inputs {
        let fpn_compiler::ir::Op::Input(fpn_compiler::ops::input::Input { name, channels, size }) = &g.node(i).op
        else {
            return None;
        };
        let (h, w) = (size[0].eval(env)?, size[1].eval(env)?);
        if h < 1 || w < 1 || channels.checked_mul(h)?.checked_mul(w)? > 1_000_000 {
            return None;
        }
        pixels = pixels.checked_add(h.checked_mul(w)?)?;
        let dims = (1, *channels as usize, h as usize, w as usize);
        let x = Array4::from_shape_fn(dims, |(_, c, y, x)| ((c * 7 + y * 3 + x) % 11) as f32 / 11.0 - 0.5);
        inputs.push((name.clone(), x));
    }
    // conv cost is about parameters × pixels (fixed-size specs were bounded by their FLOPs)
    let params = a.params.iter().map(|p| p.shape.iter().product::<i64>()).sum::<i64>();
    if !env.is_empty() && params.checked_mul(pixels)? > limits.interp_flops {
        return None;
    }
    let p = Params::init(a, 1);
    let views: Vec<(&str, _)> = inputs.iter().map(|(n, x)| (n.as_str(), x.view())).collect();
    INTERP_RUNS.with(|n| n.set(n.get() + 1));
    match (interp::run(g, a, &p, &views), accept) {
        (Err(_), false) => None,
        (Ok(_), false) => Some((
            "interp-accepts",
            "the interpreter runs sizes the analysis refuses".into(),
        )),
        (Err(e), true) => Some(("interp-refuses", format!("the interpreter refuses accepted sizes: {e}"))),
        (Ok(outs), true) => {
            for (o, (name, t)) in g.outputs.iter().zip(&outs) {
                let s = &a.shapes[o.node.index()];
                let want = [Some(1), Some(s.c), s.h.eval(env), s.w.eval(env)];
                let got = t.shape().iter().map(|&d| Some(d as i64)).collect::<Vec<_>>();
                if got != want {
                    return Some((
                        "interp-shape",
                        format!("output `{name}`: analysis says {want:?}, interpreter gives {got:?}"),
                    ));
                }
                if t.iter().any(|v| v.is_nan()) {
                    return Some(("interp-nan", format!("output `{name}` holds NaN for finite inputs")));
                }
            }
            None
        }
    }
}

/// The small spec whose parameters the weights seeds hold (so `Params::from_weights` goes deep).
const WEIGHTS_SPEC: &str = "name: W
inputs:
  x: [3, 8, 8]
nodes:
  a: {cna: {out: 4, kernel: 3, padding: 1}}
  b: {conv: {out: 2, kernel: 1, bias: true}}
  f: {fuse: [a, a]}
outputs: [b, f]
";

fn weights_analysis() -> Option<&'static fpn_compiler::infer::Analysis> {
    static A: OnceLock<Option<fpn_compiler::infer::Analysis>> = OnceLock::new();
    A.get_or_init(|| {
        let mut sm = SourceMap::new();
        fpn_compiler::compile_yaml(&mut sm, "w.yaml", WEIGHTS_SPEC)
            .ok()
            .map(|c| c.analysis)
    })
    .as_ref()
}

fn weights_target(input: &[u8]) -> Outcome {
    let w = match Weights::from_bytes(input.to_vec()) {
        Ok(w) => w,
        Err(e) => return Outcome::Rejected([short_err(&e)].into()),
    };
    let mut seen = BTreeSet::new();
    let names: Vec<String> = w.names().map(str::to_string).collect();
    for n in &names {
        let shape = w.shape(n).map(<[usize]>::to_vec).unwrap_or_default();
        if let Err(e) = w.tensor(n) {
            seen.insert(short_err(&e));
        }
        if let Err(e) = w.get(n, &shape) {
            seen.insert(short_err(&e));
        }
        if let [a, b, c, d] = shape[..] {
            let _ = w.get4(n, [a, b, c, d]);
        }
        if let [a] = shape[..] {
            let _ = w.get1(n, a);
        }
        let _ = w.get1(n, 3);
        if let Some((prefix, rest)) = n.split_once('.') {
            let s = w.scope(prefix);
            let _ = s.names().count();
            let _ = s.tensor(rest);
            let _ = s.scope("x").full_name(rest);
        }
    }
    if let Some(a) = weights_analysis() {
        if let Err(e) = Params::from_weights(&w, a) {
            seen.insert(short_err(&e));
        }
    }
    if seen.is_empty() {
        Outcome::Accepted
    } else {
        Outcome::Rejected(seen)
    }
}

fn short_err(e: &fpn_runtime::Error) -> String {
    format!("{e:?}").split(['(', ' ', '{']).next().unwrap_or("").to_string()
}

// ---------------------------------------------------------------------------------------------
// Random numbers

/// SplitMix64: small, fast, deterministic in its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    /// A random element.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// A stable 64-bit hash (FNV-1a), for file names of saved inputs.
pub fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------------
// Corpora

/// Edge numbers, as text.
const EDGE_NUMBERS: &[&str] = &[
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "4294967296",
    "4294967295",
    "2147483648",
    "65536",
    "-1",
    "0",
    "1",
    "2",
    "3",
    "7",
    "-0",
    "1e308",
    "1e309",
    "-1e308",
    "5e-324",
    "0.0",
    "0.5",
    "-0.5",
    ".nan",
    "NaN",
    ".inf",
    "-.inf",
    "0x7fffffffffffffff",
    "0o777",
    "1_000",
    "1e3",
    "99999999999999999999999999",
];

/// Edge integers for the value-tree mutator.
const EDGE_INTS: &[i64] = &[
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    i64::MIN + 1,
    i32::MAX as i64,
    u32::MAX as i64,
    1 << 32,
    1 << 31,
    1 << 62,
    -1,
    0,
    1,
    2,
    3,
    4,
    5,
    8,
    16,
    31,
    32,
    64,
    1000,
    100_000,
];

/// Edge floats for the value-tree mutator.
const EDGE_FLOATS: &[f64] = &[
    0.0, -0.0, 1e308, -1e308, 5e-324, 1e-300, 0.5, -1.0, 1.0, 2.5, 1e10, 1e-5,
];

/// Odd text.
const UNICODE: &[&str] = &[
    "\u{202E}", "\u{FEFF}", "é", "𝕏", "\u{0}", "\r", "\t", "\r\n", "\u{2028}", "\u{85}", "日本", "\u{301}", "ﬁ", "Ⅻ",
    "\u{7f}",
];

/// YAML syntax fragments.
const YAML_BITS: &[&str] = &[
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "!x ",
    "? ",
    "|\n",
    ">\n",
    "---\n",
    "...\n",
    "#",
    "'",
    "\"",
    "\\",
    "~",
    "null",
    "true",
    "  ",
    "\n",
    "%YAML 1.2\n",
    "@",
    "`",
    "..",
    "/",
    "*",
];

/// Rust token fragments.
const DSL_BITS: &[&str] = &[
    ":", ",", "[", "]", "{", "}", "(", ")", "-", "..", ".", "/", "*", "+", "r#type", "\"s\"", "'c'", "b\"x\"", "1u8",
    "1.5f32", "#", "$", "::", "=>", "match", "true", "null", "..=", "_", "1e", "0b101", "'a",
];

/// Builds a dictionary of keys and scalar strings harvested from the corpus trees.
fn harvest(v: &Value, out: &mut BTreeSet<String>) {
    match &v.kind {
        ValueKind::Str(s) if s.len() < 40 => {
            out.insert(s.clone());
        }
        ValueKind::Seq(xs) => xs.iter().for_each(|x| harvest(x, out)),
        ValueKind::Map(es) => {
            for (k, x) in es {
                out.insert(k.name.clone());
                harvest(x, out);
            }
        }
        _ => {}
    }
}

/// The seed inputs of every target and the dictionaries the mutators draw from.
pub struct Corpus {
    /// YAML texts (for `yaml` and `pipeline`).
    pub yaml: Vec<Vec<u8>>,
    /// Their value trees (those that parse).
    pub trees: Vec<Value>,
    /// The trees that compile (the pipeline's starting points).
    pub valid: Vec<Value>,
    /// `fpn!` bodies as token text.
    pub dsl: Vec<Vec<u8>>,
    /// safetensors files.
    pub weights: Vec<Vec<u8>>,
    /// Keys and names seen in the corpus, and every op keyword.
    pub words: Vec<String>,
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Where regression cases live.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

impl Corpus {
    /// Loads the seeds: `specs/*.yaml`, `specs/invalid/*.yaml`, `tests/specs/*.yaml`, the
    /// `fpn!` bodies of `tests/ui/dsl_*.rs`, the DSL printing of every parsed spec, safetensors
    /// made with `tensors_to_bytes`, the saved regression cases, and the files of `extra` dirs.
    pub fn load(extra: &[PathBuf]) -> Corpus {
        let root = workspace_root();
        let mut yaml_files = Vec::new();
        for d in ["specs", "specs/invalid", "tests/specs"] {
            yaml_files.extend(files_with_ext(&root.join(d), "yaml"));
        }
        let regs = regressions_dir();
        yaml_files.extend(files_with_ext(&regs.join("yaml"), "yaml"));
        yaml_files.extend(files_with_ext(&regs.join("pipeline"), "yaml"));
        let mut dsl_files = files_with_ext(&regs.join("dsl"), "rs");
        let mut weight_files = files_with_ext(&regs.join("weights"), "safetensors");
        for d in extra {
            yaml_files.extend(files_with_ext(d, "yaml"));
            dsl_files.extend(files_with_ext(d, "rs"));
            weight_files.extend(files_with_ext(d, "safetensors"));
        }
        let yaml: Vec<Vec<u8>> = yaml_files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
        let trees: Vec<Value> = yaml
            .iter()
            .filter_map(|b| yaml::parse_bytes(b, SourceId(0)).ok())
            .collect();
        let mut dict = BTreeSet::new();
        trees.iter().for_each(|t| harvest(t, &mut dict));
        dict.extend(fpn_compiler::ast::op_keywords().iter().map(|s| s.to_string()));
        dict.extend(HOSTILE_NAMES.iter().map(|s| s.to_string()));
        let mut dsl: Vec<Vec<u8>> = trees.iter().map(|t| to_dsl(t).into_bytes()).collect();
        for p in files_with_ext(&root.join("tests/ui"), "rs") {
            if let Ok(s) = std::fs::read_to_string(&p) {
                if let Some(body) = macro_body(&s) {
                    dsl.push(body.into_bytes());
                }
            }
        }
        dsl.extend(dsl_files.iter().filter_map(|p| std::fs::read(p).ok()));
        let mut weights = weight_seeds();
        weights.extend(weight_files.iter().filter_map(|p| std::fs::read(p).ok()));
        let valid = trees
            .iter()
            .filter(|t| fpn_compiler::compile_value(t).is_ok())
            .cloned()
            .collect();
        Corpus {
            yaml,
            trees,
            valid,
            dsl,
            weights,
            words: dict.into_iter().collect(),
        }
    }

    /// The seeds of a target.
    pub fn seeds(&self, t: Target) -> &[Vec<u8>] {
        match t {
            Target::Yaml | Target::Pipeline => &self.yaml,
            Target::Dsl => &self.dsl,
            Target::Weights => &self.weights,
        }
    }
}

/// The text between the braces of the first `fpn!{…}` / `fpn! {…}` in a UI test.
fn macro_body(s: &str) -> Option<String> {
    let at = s.find("fpn!")?;
    let open = at + s[at..].find('{')?;
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(s[open + 1..open + i].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// safetensors seeds: the parameters of [`WEIGHTS_SPEC`], and a few odd shapes.
fn weight_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(a) = weights_analysis() {
        if let Ok(b) = Params::init(a, 3).to_safetensors_bytes() {
            out.push(b);
        }
    }
    let t = |shape: &[usize]| ArrayD::<f32>::from_elem(IxDyn(shape), 0.25);
    let sets: Vec<Vec<(&str, ArrayD<f32>)>> = vec![
        vec![("a.weight", t(&[2, 1, 1, 1])), ("a.bias", t(&[2]))],
        vec![("x", t(&[])), ("y", t(&[0])), ("z", t(&[1, 0, 3]))],
        vec![("n.m.o", t(&[3, 2]))],
    ];
    for s in sets {
        let v: Vec<_> = s.iter().map(|(n, a)| (*n, a.view())).collect();
        if let Ok(b) = fpn_runtime::tensors_to_bytes(&v) {
            out.push(b);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Printers: value tree to YAML (block or flow) and to `fpn!` tokens

fn plain_ok(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
        )
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn yaml_scalar(v: &Value, out: &mut String) {
    match &v.kind {
        ValueKind::Null => out.push_str("null"),
        ValueKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ValueKind::Int(i) => {
            let _ = write!(out, "{i}");
        }
        ValueKind::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        ValueKind::Str(s) if plain_ok(s) => out.push_str(s),
        ValueKind::Str(s) => out.push_str(&quoted(s)),
        ValueKind::Seq(xs) => {
            out.push('[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_scalar(x, out);
            }
            out.push(']');
        }
        ValueKind::Map(es) => {
            out.push('{');
            for (i, (k, x)) in es.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&if plain_ok(&k.name) {
                    k.name.clone()
                } else {
                    quoted(&k.name)
                });
                out.push_str(": ");
                yaml_scalar(x, out);
            }
            out.push('}');
        }
    }
}

/// Block YAML for maps (nested maps indented), flow YAML below sequences.
pub fn to_yaml_block(v: &Value) -> String {
    fn go(v: &Value, indent: usize, out: &mut String) {
        if let ValueKind::Map(es) = &v.kind {
            for (k, x) in es {
                out.push_str(&" ".repeat(indent));
                out.push_str(&if plain_ok(&k.name) {
                    k.name.clone()
                } else {
                    quoted(&k.name)
                });
                out.push(':');
                match &x.kind {
                    ValueKind::Map(m) if !m.is_empty() => {
                        out.push('\n');
                        go(x, indent + 2, out);
                    }
                    _ => {
                        out.push(' ');
                        yaml_scalar(x, out);
                        out.push('\n');
                    }
                }
            }
        } else {
            yaml_scalar(v, out);
            out.push('\n');
        }
    }
    let mut s = String::new();
    go(v, 0, &mut s);
    s
}

/// One-line flow YAML.
pub fn to_yaml_flow(v: &Value) -> String {
    let mut s = String::new();
    yaml_scalar(v, &mut s);
    s.push('\n');
    s
}

fn dsl_key(k: &str) -> String {
    let ident = {
        let mut cs = k.chars();
        matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if ident && k != "_" && k != "self" && k != "Self" && k != "super" && k != "crate" {
        k.to_string()
    } else if ident {
        format!("r#{k}")
    } else {
        quoted(k)
    }
}

fn dsl_value(v: &Value, out: &mut String) {
    match &v.kind {
        ValueKind::Null => out.push_str("null"),
        ValueKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ValueKind::Int(i) => {
            let _ = write!(out, "{i}");
        }
        ValueKind::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        // References, ranges and size expressions are written as bare token runs.
        ValueKind::Str(s)
            if s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./*+()".contains(c)) =>
        {
            out.push_str(s)
        }
        ValueKind::Str(s) => out.push_str(&quoted(s)),
        ValueKind::Seq(xs) => {
            out.push('[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dsl_value(x, out);
            }
            out.push(']');
        }
        ValueKind::Map(es) => {
            out.push('{');
            dsl_entries(es, out);
            out.push('}');
        }
    }
}

fn dsl_entries(es: &[(fpn_compiler::value::Key, Value)], out: &mut String) {
    for (i, (k, x)) in es.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&dsl_key(&k.name));
        out.push_str(": ");
        dsl_value(x, out);
    }
}

/// The body of an `fpn!{…}` for a spec tree (its top-level map without the braces).
pub fn to_dsl(v: &Value) -> String {
    let mut s = String::new();
    match &v.kind {
        ValueKind::Map(es) => dsl_entries(es, &mut s),
        _ => dsl_value(v, &mut s),
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Mutators

/// Byte-range positions of ASCII-digit runs (with a leading `-`).
fn number_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            let mut e = i;
            while e < b.len() && (b[e].is_ascii_digit() || b[e] == b'.') {
                e += 1;
            }
            v.push((s, e));
            i = e;
        } else {
            i += 1;
        }
    }
    v
}

/// Byte-range positions of words (`[A-Za-z_][A-Za-z0-9_]*`).
fn word_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let mut e = i;
            while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_') {
                e += 1;
            }
            v.push((i, e));
            i = e;
        } else {
            i += 1;
        }
    }
    v
}

fn line_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut s = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            v.push((s, i + 1));
            s = i + 1;
        }
    }
    if s < b.len() {
        v.push((s, b.len()));
    }
    v
}

/// One byte-level or text-aware mutation of `b` (`other` for splicing, `bits` for syntax).
fn mutate_bytes(rng: &mut Rng, b: &mut Vec<u8>, other: &[u8], words: &[String], bits: &[&str]) {
    let pos = |rng: &mut Rng, b: &Vec<u8>| rng.below(b.len() + 1);
    match rng.below(16) {
        0 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        1 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] = *rng.pick(b" \n:-[]{},\"'&*!#|>0123456789\x00\xff.");
        }
        2 => {
            let i = pos(rng, b);
            let s = rng.pick(bits).as_bytes().to_vec();
            b.splice(i..i, s);
        }
        3 if !b.is_empty() => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(16.min(b.len() - i));
            b.drain(i..i + n);
        }
        4 if !b.is_empty() => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(64.min(b.len() - i));
            let chunk = b[i..i + n].to_vec();
            let j = pos(rng, b);
            b.splice(j..j, chunk);
        }
        5 if !other.is_empty() => {
            let cut = pos(rng, b);
            let from = rng.below(other.len());
            b.truncate(cut);
            b.extend_from_slice(&other[from..]);
        }
        6 => {
            let ls = line_spans(b);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                let line = b[s..e].to_vec();
                let (t, _) = *rng.pick(&ls);
                b.splice(t..t, line);
            }
        }
        7 => {
            let ls = line_spans(b);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                b.drain(s..e);
            }
        }
        8 => {
            let ls = line_spans(b);
            if ls.len() >= 2 {
                let i = rng.below(ls.len() - 1);
                let (s1, e1) = ls[i];
                let (s2, e2) = ls[i + 1 + rng.below(ls.len() - i - 1)];
                let mut nb = b[..s1].to_vec();
                nb.extend_from_slice(&b[s2..e2]);
                nb.extend_from_slice(&b[e1..s2]);
                nb.extend_from_slice(&b[s1..e1]);
                nb.extend_from_slice(&b[e2..]);
                *b = nb;
            }
        }
        9 | 10 => {
            let ns = number_spans(b);
            if !ns.is_empty() {
                let (s, e) = *rng.pick(&ns);
                b.splice(s..e, rng.pick(EDGE_NUMBERS).bytes());
            }
        }
        11 => {
            let i = pos(rng, b);
            let mut i = i;
            while i > 0 && i < b.len() && (b[i] & 0xC0) == 0x80 {
                i -= 1;
            }
            b.splice(i..i, rng.pick(UNICODE).bytes());
        }
        12 => {
            let i = pos(rng, b);
            let deep = rng.one_in(8);
            let n = 1 + rng.below(if deep { 150 } else { 12 });
            let (open, close) = *rng.pick(&[("[", "]"), ("{a: ", "}"), ("- ", ""), ("{", "}")]);
            let mut s = open.repeat(n);
            if rng.one_in(2) {
                s.push('1');
                s.push_str(&close.repeat(n));
            }
            b.splice(i..i, s.into_bytes());
        }
        13 | 14 if !words.is_empty() => {
            let ws = word_spans(b);
            if !ws.is_empty() {
                let (s, e) = *rng.pick(&ws);
                let w = if rng.one_in(3) {
                    rng.pick(&fpn_compiler::ast::op_keywords()).to_string()
                } else {
                    rng.pick(words).clone()
                };
                b.splice(s..e, w.into_bytes());
            }
        }
        _ => {
            let ls = line_spans(b);
            if !ls.is_empty() {
                let (s, _) = *rng.pick(&ls);
                if rng.one_in(2) {
                    b.splice(s..s, rng.pick(&[&b"  "[..], b" ", b"\t"]).iter().copied());
                } else if b.get(s) == Some(&b' ') {
                    b.remove(s);
                }
            }
        }
    }
}

/// Paths (child indices) of every value in a tree.
fn paths(v: &Value, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(cur.clone());
    let kids: Vec<&Value> = match &v.kind {
        ValueKind::Seq(xs) => xs.iter().collect(),
        ValueKind::Map(es) => es.iter().map(|(_, x)| x).collect(),
        _ => Vec::new(),
    };
    for (i, k) in kids.into_iter().enumerate() {
        cur.push(i);
        paths(k, cur, out);
        cur.pop();
    }
}

fn at_mut<'a>(v: &'a mut Value, path: &[usize]) -> &'a mut Value {
    let mut v = v;
    for &i in path {
        v = match &mut v.kind {
            ValueKind::Seq(xs) => &mut xs[i],
            ValueKind::Map(es) => &mut es[i].1,
            _ => unreachable!("paths only go through containers"),
        };
    }
    v
}

fn random_subtree(rng: &mut Rng, trees: &[Value]) -> Option<Value> {
    let t = rng.pick(trees);
    let mut ps = Vec::new();
    paths(t, &mut Vec::new(), &mut ps);
    let p = rng.pick(&ps).clone();
    let mut t = t.clone();
    Some(at_mut(&mut t, &p).clone())
}

fn scalar(rng: &mut Rng, like: &Value, words: &[String]) -> ValueKind {
    match (rng.below(8), &like.kind) {
        (0..=2, ValueKind::Int(i)) => ValueKind::Int(match rng.below(4) {
            0 => *rng.pick(EDGE_INTS),
            1 => i.wrapping_add(1),
            2 => i.wrapping_sub(1),
            _ => i.wrapping_mul(2),
        }),
        (0..=2, ValueKind::Float(_)) => ValueKind::Float(*rng.pick(EDGE_FLOATS)),
        (0..=2, ValueKind::Str(_)) => ValueKind::Str(rng.pick(words).clone()),
        (3, _) => ValueKind::Int(*rng.pick(EDGE_INTS)),
        (4, _) => ValueKind::Float(*rng.pick(EDGE_FLOATS)),
        (5, _) => ValueKind::Null,
        (6, _) => ValueKind::Bool(rng.one_in(2)),
        _ => ValueKind::Str(if rng.one_in(4) {
            format!("{}{}", rng.pick(words), rng.pick(UNICODE))
        } else if rng.one_in(3) {
            format!("{}.{}", rng.pick(words), rng.pick(words))
        } else {
            rng.pick(words).clone()
        }),
    }
}

/// Names that collide with what generated code refers to (prelude, crates, keywords).
const HOSTILE_NAMES: &[&str] = &[
    "String",
    "Vec",
    "std",
    "core",
    "alloc",
    "fpn_runtime",
    "Option",
    "Result",
    "Box",
    "Ok",
    "Err",
    "Some",
    "None",
    "Self",
    "self",
    "super",
    "crate",
    "Tensor",
    "Error",
    "Conv2d",
    "forward",
    "init",
    "new",
    "r#type",
    "type",
    "fn",
    "mod",
    "x",
    "inputs",
    "outputs",
    "a_b",
    "a__b",
    "_",
    "_0",
    "0a",
    "Ünï",
    "π",
];

/// Renames `from` to `to` in every key, every string equal to it, and every `from.` reference.
fn rename_all(v: &mut Value, from: &str, to: &str) {
    match &mut v.kind {
        ValueKind::Str(s) => {
            if s == from {
                *s = to.to_string();
            } else if let Some(rest) = s.strip_prefix(from).and_then(|r| r.strip_prefix('.')) {
                *s = format!("{to}.{rest}");
            }
        }
        ValueKind::Seq(xs) => xs.iter_mut().for_each(|x| rename_all(x, from, to)),
        ValueKind::Map(es) => {
            if !es.iter().any(|(k, _)| k.name == to) {
                for (k, _) in es.iter_mut() {
                    if k.name == from {
                        k.name = to.to_string();
                    }
                }
            }
            es.iter_mut().for_each(|(_, x)| rename_all(x, from, to));
        }
        _ => {}
    }
}

/// One structure-aware mutation of a value tree.
fn mutate_tree(rng: &mut Rng, t: &mut Value, trees: &[Value], words: &[String]) {
    let mut ps = Vec::new();
    paths(t, &mut Vec::new(), &mut ps);
    let p = rng.pick(&ps).clone();
    if rng.one_in(10) {
        // rename a node (or block, input, symbol) consistently
        let mut names = BTreeSet::new();
        harvest(t, &mut names);
        let names: Vec<String> = names.into_iter().collect();
        if !names.is_empty() {
            let from = rng.pick(&names).clone();
            let to = if rng.one_in(2) {
                rng.pick(HOSTILE_NAMES).to_string()
            } else {
                rng.pick(words).clone()
            };
            rename_all(t, &from, &to);
        }
        return;
    }
    match rng.below(10) {
        0..=2 => {
            let v = at_mut(t, &p);
            v.kind = scalar(rng, v, words);
        }
        3 => {
            // swap two subtrees (not ancestor/descendant)
            let q = rng.pick(&ps).clone();
            if p.starts_with(&q) || q.starts_with(&p) {
                return;
            }
            let a = at_mut(t, &p).clone();
            let b = std::mem::replace(at_mut(t, &q), a);
            *at_mut(t, &p) = b;
        }
        4 => {
            if let Some(s) = random_subtree(rng, trees) {
                *at_mut(t, &p) = s;
            }
        }
        _ => {
            let v = at_mut(t, &p);
            match &mut v.kind {
                ValueKind::Map(es) if !es.is_empty() => {
                    let i = rng.below(es.len());
                    match rng.below(5) {
                        0 => {
                            es.remove(i);
                        }
                        1 => {
                            // rename key (to an op keyword or another word)
                            es[i].0.name = if rng.one_in(2) {
                                rng.pick(&fpn_compiler::ast::op_keywords()).to_string()
                            } else {
                                rng.pick(words).clone()
                            };
                        }
                        2 => {
                            // duplicate an entry under a fresh name
                            let mut e = es[i].clone();
                            e.0.name = format!("{}_{}", e.0.name, rng.below(100));
                            if !es.iter().any(|(k, _)| k.name == e.0.name) {
                                es.insert(rng.below(es.len() + 1), e);
                            }
                        }
                        3 => {
                            let j = rng.below(es.len());
                            es.swap(i, j);
                        }
                        _ => {
                            // add an entry
                            let mut k = es[i].0.clone();
                            k.name = rng.pick(words).clone();
                            if !es.iter().any(|(x, _)| x.name == k.name) {
                                let val = random_subtree(rng, trees).unwrap_or_else(|| es[i].1.clone());
                                es.push((k, val));
                            }
                        }
                    }
                    // keys must stay unique (a front-end invariant the trees feed past)
                    let mut seen = HashSet::new();
                    es.retain(|(k, _)| seen.insert(k.name.clone()));
                }
                ValueKind::Seq(xs) if !xs.is_empty() => {
                    let i = rng.below(xs.len());
                    match rng.below(4) {
                        0 => {
                            xs.remove(i);
                        }
                        1 => {
                            let x = xs[i].clone();
                            xs.insert(i, x);
                        }
                        2 => {
                            let j = rng.below(xs.len());
                            xs.swap(i, j);
                        }
                        _ => {
                            let span = xs[i].span;
                            xs.push(Value {
                                kind: scalar(rng, &xs[i], words),
                                span,
                            });
                        }
                    }
                }
                _ => {
                    // wrap in a list or a one-entry map
                    let inner = v.clone();
                    v.kind = if rng.one_in(2) {
                        ValueKind::Seq(vec![inner])
                    } else {
                        ValueKind::Map(vec![(
                            fpn_compiler::value::Key {
                                name: rng.pick(words).clone(),
                                span: inner.span,
                            },
                            inner,
                        )])
                    };
                }
            }
        }
    }
}

/// Makes one input for `target` from the seeds and the pool.
pub fn make_input(rng: &mut Rng, target: Target, corpus: &Corpus, pool: &[Vec<u8>]) -> Vec<u8> {
    let seeds = corpus.seeds(target);
    let from_pool = !pool.is_empty() && rng.one_in(2);
    let base = if from_pool { rng.pick(pool) } else { rng.pick(seeds) };
    let other = rng.pick(seeds);
    let n = 1 + rng.below(4);
    match target {
        Target::Weights => {
            let mut b = base.clone();
            if rng.one_in(2) {
                mutate_header(rng, &mut b);
            } else {
                for _ in 0..n {
                    mutate_bytes(
                        rng,
                        &mut b,
                        other,
                        &[],
                        &["{", "}", "\"", ":", ",", "[", "]", "0", "F32"],
                    );
                }
            }
            b
        }
        Target::Yaml | Target::Pipeline | Target::Dsl => {
            let tree_odds = if target == Target::Pipeline { 5 } else { 2 };
            let tree = if rng.below(6) < tree_odds {
                let parsed = if from_pool && target != Target::Dsl {
                    yaml::parse_bytes(base, SourceId(0)).ok()
                } else {
                    None
                };
                let trees = if target == Target::Pipeline && !corpus.valid.is_empty() {
                    &corpus.valid
                } else {
                    &corpus.trees
                };
                parsed.or_else(|| trees.get(rng.below(trees.len())).cloned())
            } else {
                None
            };
            match tree {
                Some(mut t) => {
                    // compiling mutants are rare after several mutations
                    let n = if target == Target::Pipeline && rng.below(3) > 0 {
                        1
                    } else {
                        n
                    };
                    for _ in 0..n {
                        mutate_tree(rng, &mut t, &corpus.trees, &corpus.words);
                    }
                    let mut b = match target {
                        Target::Dsl => to_dsl(&t),
                        _ if rng.one_in(3) => to_yaml_flow(&t),
                        _ => to_yaml_block(&t),
                    }
                    .into_bytes();
                    if rng.one_in(4) {
                        let bits = if target == Target::Dsl { DSL_BITS } else { YAML_BITS };
                        mutate_bytes(rng, &mut b, other, &corpus.words, bits);
                    }
                    b
                }
                None => {
                    let mut b = base.clone();
                    let bits = if target == Target::Dsl { DSL_BITS } else { YAML_BITS };
                    for _ in 0..n {
                        mutate_bytes(rng, &mut b, other, &corpus.words, bits);
                    }
                    b
                }
            }
        }
    }
}

/// Structure-aware mutation of a safetensors file: edit the header JSON (dtype, shape, offsets,
/// names, metadata), rewrite it with a correct or a wrong length prefix, and resize the data.
fn mutate_header(rng: &mut Rng, b: &mut Vec<u8>) {
    if b.len() < 8 {
        return;
    }
    let n = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])) as usize;
    let Some(end) = n.checked_add(8).filter(|&e| e <= b.len()) else {
        return;
    };
    let Ok(mut j) = serde_json::from_slice::<serde_json::Value>(&b[8..end]) else {
        return;
    };
    let mut data = b[end..].to_vec();
    let edge_u = |rng: &mut Rng| -> serde_json::Value {
        match rng.below(8) {
            0 => serde_json::json!(u64::MAX),
            1 => serde_json::json!(usize::MAX / 2 + 1),
            2 => serde_json::json!(-1),
            3 => serde_json::json!(0),
            4 => serde_json::json!(1u64 << 32),
            5 => serde_json::json!(1.5),
            6 => serde_json::json!("3"),
            _ => serde_json::json!(rng.below(40)),
        }
    };
    if let Some(obj) = j.as_object_mut() {
        let keys: Vec<String> = obj.keys().cloned().collect();
        if keys.is_empty() {
            return;
        }
        let k = rng.pick(&keys).clone();
        match rng.below(8) {
            0 => {
                if let Some(t) = obj.get_mut(&k).and_then(|t| t.as_object_mut()) {
                    let d = *rng.pick(&[
                        "F32", "F16", "BF16", "F64", "I64", "I32", "U8", "I8", "BOOL", "F8_E4M3", "F8_E5M2", "U64",
                        "C64", "F4", "x",
                    ]);
                    t.insert("dtype".into(), serde_json::json!(d));
                }
            }
            1 | 2 => {
                if let Some(s) = obj
                    .get_mut(&k)
                    .and_then(|t| t.get_mut("shape"))
                    .and_then(|s| s.as_array_mut())
                {
                    match rng.below(4) {
                        0 if !s.is_empty() => {
                            let i = rng.below(s.len());
                            s[i] = edge_u(rng);
                        }
                        1 => s.push(edge_u(rng)),
                        2 if !s.is_empty() => {
                            s.pop();
                        }
                        _ => s.reverse(),
                    }
                }
            }
            3 | 4 => {
                if let Some(o) = obj
                    .get_mut(&k)
                    .and_then(|t| t.get_mut("data_offsets"))
                    .and_then(|s| s.as_array_mut())
                {
                    if !o.is_empty() {
                        let i = rng.below(o.len());
                        o[i] = edge_u(rng);
                    }
                }
            }
            5 => {
                let v = obj.get(&k).cloned().unwrap_or_default();
                let name = format!("{k}{}", rng.pick(&["", ".", ".weight", "\u{202E}", "\u{0}"]));
                obj.insert(name, v);
            }
            6 => {
                obj.remove(&k);
            }
            _ => {
                obj.insert(
                    "__metadata__".into(),
                    if rng.one_in(2) {
                        serde_json::json!({"format": "pt"})
                    } else {
                        serde_json::json!([1, 2])
                    },
                );
            }
        }
    }
    if rng.one_in(4) {
        match rng.below(3) {
            0 => data.truncate(rng.below(data.len() + 1)),
            1 => data.extend(std::iter::repeat_n(0u8, 1 + rng.below(64))),
            _ => data.clear(),
        }
    }
    let mut h = serde_json::to_vec(&j).unwrap_or_default();
    if rng.one_in(3) {
        h.extend(std::iter::repeat_n(b' ', rng.below(8)));
    }
    let mut len = h.len() as u64;
    if rng.one_in(8) {
        len = *rng.pick(&[0, u64::MAX, len + 1, len.saturating_sub(1), 1 << 40]);
    }
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    *b = out;
}

// ---------------------------------------------------------------------------------------------
// Minimization

/// Shrinks a bug input while it keeps failing at the same location: whole lines first, then
/// byte chunks. Bounded to `budget` runs.
pub fn minimize(target: Target, input: &[u8], location: &str, limits: &Limits, budget: usize) -> Vec<u8> {
    let same = |b: &[u8]| matches!(run_one(target, b, limits), Outcome::Bug { location: l, .. } if l == location);
    let mut cur = input.to_vec();
    let mut runs = 0;
    if target != Target::Weights {
        let mut i = 0;
        loop {
            let ls = line_spans(&cur);
            if i >= ls.len() || runs >= budget {
                break;
            }
            let (s, e) = ls[i];
            let mut cand = cur.clone();
            cand.drain(s..e);
            runs += 1;
            if same(&cand) {
                cur = cand;
            } else {
                i += 1;
            }
        }
    }
    let mut chunk = (cur.len() / 2).max(1);
    while chunk >= 1 && runs < budget {
        let mut i = 0;
        while i + chunk <= cur.len() && runs < budget {
            let mut cand = cur.clone();
            cand.drain(i..i + chunk);
            runs += 1;
            if same(&cand) {
                cur = cand;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    cur
}

// ---------------------------------------------------------------------------------------------
// The loop

/// This thread's CPU time (user + system, from `/proc/thread-self/stat`, 10 ms ticks) where
/// available, else wall time: "slow" should not depend on how loaded the machine is.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// CPU ticks at the start.
    Cpu(u64),
    /// Wall clock at the start.
    Wall(Instant),
}

impl Clock {
    fn cpu_ticks() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        // fields after the parenthesised command name; utime and stime are fields 14 and 15
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }

    /// Starts timing.
    pub fn now() -> Clock {
        Clock::cpu_ticks().map_or_else(|| Clock::Wall(Instant::now()), Clock::Cpu)
    }

    /// Time since [`Clock::now`] (assuming 100 ticks a second, the Linux default).
    pub fn elapsed(&self) -> Duration {
        match self {
            Clock::Cpu(t) => Duration::from_millis(Clock::cpu_ticks().unwrap_or(*t).saturating_sub(*t) * 10),
            Clock::Wall(t) => t.elapsed(),
        }
    }
}

/// Fuzz settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the mutation sequence.
    pub seed: u64,
    /// Wall-clock budget for this target.
    pub time: Duration,
    /// Stop after this many inputs (if set).
    pub max_execs: Option<u64>,
    /// Inputs slower than this are reported as slow.
    pub slow: Duration,
    /// Per-input limits.
    pub limits: Limits,
    /// Where the input being run is mirrored (so a hang or an abort leaves it behind).
    pub current_file: Option<PathBuf>,
}

/// A bug or slow input.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The input (minimized later by the caller if wanted).
    pub input: Vec<u8>,
    /// `file:line:col` of a panic, `oracle:*`, or `slow`.
    pub location: String,
    /// Message.
    pub message: String,
    /// How long the input took.
    pub elapsed: Duration,
}

/// What a fuzz run did.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Inputs run.
    pub execs: u64,
    /// Accepted.
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Skipped (not valid for the target).
    pub skipped: u64,
    /// Distinct rejection signatures.
    pub signatures: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Bugs (one per location) and slow inputs.
    pub findings: Vec<Finding>,
    /// Generated code of accepted pipeline inputs (for `--compile-sample`), with the input.
    pub generated: Vec<(Vec<u8>, String)>,
}

/// State shared with a watchdog: when the current input started, and the input.
pub type Current = Arc<Mutex<(Instant, Target, Vec<u8>)>>;

/// Fuzzes one target. `known` holds bug locations already on record (not reported again);
/// `keep_generated` how many accepted pipeline modules to keep.
pub fn fuzz(
    target: Target,
    corpus: &Corpus,
    cfg: &Config,
    known: &HashSet<String>,
    keep_generated: usize,
    current: Option<&Current>,
) -> Stats {
    let mut rng = Rng::new(cfg.seed ^ (target as u64).wrapping_mul(0x1234_5678_9abc_def1));
    let mut stats = Stats::default();
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut sigs: HashSet<BTreeSet<String>> = HashSet::new();
    let mut reported: HashSet<String> = known.clone();
    let mut gen_seen: HashSet<u64> = HashSet::new();
    let start = Instant::now();
    while start.elapsed() < cfg.time && cfg.max_execs.is_none_or(|m| stats.execs < m) {
        let input = make_input(&mut rng, target, corpus, &pool);
        if let Some(c) = current {
            if let Ok(mut g) = c.lock() {
                *g = (Instant::now(), target, input.clone());
            }
        }
        if let Some(f) = &cfg.current_file {
            let _ = std::fs::write(f, &input);
        }
        let t0 = Clock::now();
        let (outcome, code) = if target == Target::Pipeline {
            let mut code = None;
            let o = guarded(|| {
                let (o, c) = pipeline_target(&input, &cfg.limits);
                code = c;
                o
            });
            (o, code)
        } else {
            (run_one(target, &input, &cfg.limits), None)
        };
        let dt = t0.elapsed();
        stats.execs += 1;
        // a slow input must be slow twice (the clock may be wall time on a loaded machine)
        let dt = if dt > cfg.slow {
            let t1 = Clock::now();
            let _ = run_one(target, &input, &cfg.limits);
            dt.min(t1.elapsed())
        } else {
            dt
        };
        if dt > cfg.slow && reported.insert(format!("slow:{}", hash(&input))) {
            stats.findings.push(Finding {
                input: input.clone(),
                location: "slow".into(),
                message: format!("took {:.2} s", dt.as_secs_f64()),
                elapsed: dt,
            });
        }
        match outcome {
            Outcome::Accepted => {
                stats.accepted += 1;
                if pool.len() < 2000 && rng.one_in(if target == Target::Pipeline { 2 } else { 20 }) {
                    pool.push(input.clone());
                }
                if let Some(code) = code {
                    if stats.generated.len() < keep_generated && gen_seen.insert(hash(code.as_bytes())) {
                        stats.generated.push((input, code));
                    }
                }
            }
            Outcome::Rejected(s) => {
                stats.rejected += 1;
                if sigs.insert(s) && pool.len() < 2000 {
                    pool.push(input);
                }
            }
            Outcome::Skipped => stats.skipped += 1,
            Outcome::Bug { location, message } => {
                if reported.insert(location.clone()) {
                    stats.findings.push(Finding {
                        input,
                        location,
                        message,
                        elapsed: dt,
                    });
                }
            }
        }
    }
    stats.signatures = sigs.len();
    stats.elapsed = start.elapsed();
    stats
}

/// Every saved regression case: target, path, bytes.
pub fn regression_cases() -> Vec<(Target, PathBuf, Vec<u8>)> {
    let dir = regressions_dir();
    let mut out = Vec::new();
    for t in Target::ALL {
        for p in files_with_ext(&dir.join(t.name()), t.ext()) {
            if let Ok(b) = std::fs::read(&p) {
                out.push((t, p, b));
            }
        }
    }
    out
}

/// Saves a bug input as a regression case; returns its path.
pub fn save_case(target: Target, input: &[u8]) -> std::io::Result<PathBuf> {
    let dir = regressions_dir().join(target.name());
    std::fs::create_dir_all(&dir)?;
    let p = dir.join(format!("{:016x}.{}", hash(input), target.ext()));
    std::fs::write(&p, input)?;
    Ok(p)
}
