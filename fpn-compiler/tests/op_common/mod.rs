//! One-op specs judged three ways, shared by `op_fixtures.rs` (PyTorch fixture) and
//! `op_props.rs` (random configs):
//!
//! * [`check`]: `compile_yaml` on the spec text (what `fpn check` says) and the output shape
//!   from `analysis.shapes`;
//! * [`interp`]: the compiled graph run by `fpn_compiler::interp::run` on random inputs;
//! * [`runtime`]: the op applied *directly* through `fpn_runtime` functions with parameters built
//!   here from the op's config (PyTorch's defaults and its `padding='same'` rule), independent of
//!   the compiler's lowering.
//!
//! An op config is the op exactly as written in the spec, as a JSON value (`{"conv": {"out": 8,
//! "kernel": [3, 1], "padding": "same"}}`, `"relu"`, `{"add": ["x", "y"]}`); [`yaml`] renders
//! the spec in the same layout as tools/op_fixtures.py.

#![allow(dead_code)]

use std::fmt;

use fpn_compiler::interp::{self, Params};
use fpn_compiler::span::SourceMap;
use fpn_compiler::{compile_yaml, Compiled};
use fpn_runtime::ndarray::{Array1, Array4};
use fpn_runtime::{Activation, BatchNorm, Conv2dParams, PaddingMode, Pool2dParams, Resize, Tensor};
use serde_json::Value as J;

/// One single-op spec: named inputs `[C, H, W]`, the op, and its `from:` (only for an upsample
/// matching another input).
#[derive(Clone, Debug)]
pub struct Case {
    /// Inputs in order (`x`, then `y` for merges and `match`).
    pub inputs: Vec<(String, [i64; 3])>,
    /// The op as written in the spec.
    pub node: J,
    /// The node's `from:`.
    pub from: Option<String>,
    /// For a multi-output op (`chunk`, `split`), the output part the spec returns (`out.<part>`).
    pub part: Option<usize>,
}

impl Case {
    /// The op's keyword (`conv`, `relu`, `add`, …).
    pub fn op(&self) -> String {
        match &self.node {
            J::String(s) => s.clone(),
            J::Object(m) => m.keys().next().cloned().unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// A one-line description: inputs and the op in flow style.
    pub fn describe(&self) -> String {
        format!("inputs {{{}}}  out: {}", inputs_flow(self), node_flow(self))
    }
}

/// A verdict: accepted with output shape `[C, H, W]`, or refused with a reason.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Accepted; the output shape without batch.
    Accept([i64; 3]),
    /// Refused.
    Refuse(String),
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Accept(_))
    }

    /// Same acceptance and, when accepted, the same shape.
    pub fn agrees(&self, other: &Verdict) -> bool {
        match (self, other) {
            (Verdict::Accept(a), Verdict::Accept(b)) => a == b,
            (Verdict::Refuse(_), Verdict::Refuse(_)) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept(s) => write!(f, "accepts {s:?}"),
            Verdict::Refuse(r) => {
                let r: String = r.chars().take(160).collect();
                write!(f, "refuses ({r})")
            }
        }
    }
}

/// A JSON value in YAML flow style; floats as Rust's shortest round-trip text.
pub fn flow(v: &J) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                let s = f.to_string();
                if s.contains('.') {
                    s
                } else {
                    format!("{s}.0")
                }
            }
        }
        J::String(s) => s.clone(),
        J::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        J::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{k}: {}", flow(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `x: [C, H, W], y: [C, H, W]`.
fn inputs_flow(case: &Case) -> String {
    let ins: Vec<String> = case
        .inputs
        .iter()
        .map(|(n, s)| format!("{n}: {}", flow(&J::from(s.to_vec()))))
        .collect();
    ins.join(", ")
}

/// The node in flow style, with its `from:`.
fn node_flow(case: &Case) -> String {
    match (&case.from, &case.node) {
        (Some(f), J::Object(m)) if m.len() == 1 => {
            let (op, args) = m.iter().next().expect("one entry");
            format!("{{from: {f}, {op}: {}}}", flow(args))
        }
        _ => flow(&case.node),
    }
}

/// The spec text of `case` (the layout tools/op_fixtures.py writes).
pub fn yaml(case: &Case) -> String {
    let out = match case.part {
        Some(p) => format!("out.{p}"),
        None => "out".to_string(),
    };
    format!(
        "name: OpCase\ninputs: {{{}}}\nnodes:\n  out: {}\noutputs: [{out}]\n",
        inputs_flow(case),
        node_flow(case)
    )
}

/// The same spec with a size symbol in it (`symbols: {H: 1..}`, used by an extra input
/// `sym_: [1, H, 1]` that the op does not read): every fixed size must still be checked (issue
/// 10: a spec with symbols skipped every fixed-size check). The op's node gets an explicit
/// `from:` when it had none, since the spec now has two inputs.
pub fn with_symbol(text: &str) -> String {
    let first = text
        .split("inputs: {")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap_or("x")
        .trim()
        .to_string();
    let t = text
        .replacen("name: OpCase\n", "name: OpCase\nsymbols: {H: 1..}\n", 1)
        .replacen("inputs: {", "inputs: {sym_: [1, H, 1], ", 1);
    let mut out = String::new();
    for line in t.lines() {
        match line.strip_prefix("  out: ") {
            Some(op) if op.starts_with("{from:") => out.push_str(line),
            Some(op) if op.starts_with('{') => out.push_str(&format!("  out: {{from: {first}, {}", &op[1..])),
            // a bare op (`tanh`)
            Some(op) => out.push_str(&format!("  out: {{from: {first}, {op}: null}}")),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `fpn check`: compiles `text`; the verdict and, when accepted, the compiled spec.
pub fn check(text: &str) -> (Verdict, Option<Compiled>) {
    match compile_yaml(&mut SourceMap::new(), "x.yaml", text) {
        Ok(c) => {
            let Some(o) = c.graph.outputs.first() else {
                return (Verdict::Refuse("compiled without outputs".into()), None);
            };
            let s = &c.analysis.shapes[o.node.index()];
            match (s.h.eval(&[]), s.w.eval(&[])) {
                (Some(h), Some(w)) => (Verdict::Accept([s.c, h, w]), Some(c)),
                _ => (Verdict::Refuse(format!("output size is not fixed: {:?}", s)), None),
            }
        }
        Err(d) => {
            let msg = d
                .iter()
                .filter(|x| x.is_error())
                .map(|x| format!("{} {}", x.code, x.message))
                .collect::<Vec<_>>()
                .join("; ");
            (Verdict::Refuse(msg), None)
        }
    }
}

/// Deterministic pseudo-random values in [-1, 1) (xorshift; no shared state).
pub fn random(shape: [usize; 4], seed: u64) -> Tensor {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Array4::from_shape_vec(shape, v).expect("shape")
}

/// The inputs of `case` as random batch-1 tensors.
pub fn input_tensors(case: &Case) -> Vec<(String, Tensor)> {
    case.inputs
        .iter()
        .enumerate()
        .map(|(i, (n, s))| {
            let shape = [1, s[0] as usize, s[1] as usize, s[2] as usize];
            (n.clone(), random(shape, 17 + i as u64))
        })
        .collect()
}

fn out_shape(t: &Tensor) -> [i64; 3] {
    let s = t.shape();
    [s[1] as i64, s[2] as i64, s[3] as i64]
}

/// The compiled graph run by the interpreter (fpn-runtime under the compiler's lowering).
pub fn interp(c: &Compiled, case: &Case) -> Verdict {
    let xs = input_tensors(case);
    let views: Vec<(&str, _)> = xs.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
    let params = Params::init(&c.analysis, 7);
    match interp::run(&c.graph, &c.analysis, &params, &views) {
        Ok(outs) => match outs.first() {
            Some((_, t)) => Verdict::Accept(out_shape(t)),
            None => Verdict::Refuse("no output".into()),
        },
        Err(e) => Verdict::Refuse(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The op applied directly through fpn_runtime.

type R<T> = Result<T, String>;

fn int(v: &J, what: &str) -> R<i64> {
    v.as_i64().ok_or_else(|| format!("`{what}` is not an integer: {v}"))
}

fn num(v: &J, what: &str) -> R<f64> {
    v.as_f64().ok_or_else(|| format!("`{what}` is not a number: {v}"))
}

fn boolean(v: Option<&J>, default: bool) -> R<bool> {
    match v {
        None => Ok(default),
        Some(b) => b.as_bool().ok_or_else(|| format!("not a boolean: {b}")),
    }
}

/// A size for fpn-runtime: the runtime takes `usize`, so a negative value cannot be expressed.
fn size(v: i64, what: &str) -> R<usize> {
    usize::try_from(v).map_err(|_| format!("not expressible in fpn-runtime: negative {what} {v}"))
}

/// `n` or `[h, w]`, or `default` when absent.
fn pair(v: Option<&J>, default: [i64; 2], what: &str) -> R<[i64; 2]> {
    match v {
        None => Ok(default),
        Some(J::Array(a)) if a.len() == 2 => Ok([int(&a[0], what)?, int(&a[1], what)?]),
        Some(x) => {
            let n = int(x, what)?;
            Ok([n, n])
        }
    }
}

fn upair(p: [i64; 2], what: &str) -> R<[usize; 2]> {
    Ok([size(p[0], what)?, size(p[1], what)?])
}

fn act_of(name: &str, arg: Option<&J>) -> R<Activation> {
    Ok(match name {
        "relu" => Activation::Relu,
        "relu6" => Activation::Relu6,
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "silu" => Activation::Silu,
        "hardswish" => Activation::Hardswish,
        "identity" => Activation::Identity,
        "gelu" => match arg.and_then(|a| a.get("approximate")).and_then(J::as_str) {
            Some("tanh") => Activation::GeluTanh,
            _ => Activation::Gelu,
        },
        "leaky_relu" => {
            let slope = match arg {
                None | Some(J::Null) => 0.01,
                Some(J::Object(m)) => num(m.get("slope").unwrap_or(&J::from(0.01)), "slope")?,
                Some(x) => num(x, "slope")?,
            };
            Activation::LeakyRelu(slope as f32)
        }
        other => return Err(format!("unknown op `{other}`")),
    })
}

/// Applies the op of `case` through fpn_runtime on random inputs.
pub fn runtime(case: &Case) -> Verdict {
    match runtime_result(case) {
        Ok(t) => Verdict::Accept(out_shape(&t)),
        Err(e) => Verdict::Refuse(e),
    }
}

fn runtime_result(case: &Case) -> R<Tensor> {
    let xs = input_tensors(case);
    let get = |name: &str| -> R<&Tensor> {
        xs.iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| format!("no input `{name}`"))
    };
    let x = get(case.from.as_deref().unwrap_or("x"))?;
    let op = case.op();
    let args = match &case.node {
        J::Object(m) => m.get(&op).cloned().unwrap_or(J::Null),
        _ => J::Null,
    };
    let rt = |e: fpn_runtime::Error| e.to_string();
    let cin = x.shape()[1];
    match op.as_str() {
        "conv" => {
            let a = &args;
            let out = size(int(&a["out"], "out")?, "out")?;
            let kernel = upair(pair(a.get("kernel"), [1, 1], "kernel")?, "kernel")?;
            let stride = upair(pair(a.get("stride"), [1, 1], "stride")?, "stride")?;
            let dilation = upair(pair(a.get("dilation"), [1, 1], "dilation")?, "dilation")?;
            let groups = size(
                a.get("groups").map(|g| int(g, "groups")).transpose()?.unwrap_or(1),
                "groups",
            )?;
            let padding: [usize; 4] = match a.get("padding") {
                None => [0; 4],
                Some(J::String(s)) if s == "same" => {
                    // PyTorch: padding='same' is refused for strided convs, else the total
                    // d·(k−1) is split with the extra on the bottom/right. fpn-runtime takes
                    // explicit padding only, so PyTorch's rule is applied here.
                    if stride != [1, 1] {
                        return Err("padding='same' is not supported for strided convolutions (PyTorch's rule, applied where `same` is resolved)".into());
                    }
                    let t = |i: usize| dilation[i].saturating_mul(kernel[i].saturating_sub(1));
                    let (th, tw) = (t(0), t(1));
                    [th / 2, th - th / 2, tw / 2, tw - tw / 2]
                }
                // TensorFlow `SAME` (timm's `Conv2dSame`): zero padding of this input's size
                Some(J::String(s)) if s == "tf_same" => {
                    if a.get("padding_mode").and_then(J::as_str).is_some_and(|m| m != "zeros") {
                        return Err("tf_same pads with zeros (fpn: E0233)".into());
                    }
                    fpn_runtime::same_dynamic_padding(x.view(), kernel, stride, dilation).map_err(rt)?
                }
                Some(J::Array(p)) if p.len() == 4 => {
                    let mut v = [0; 4];
                    for (slot, x) in v.iter_mut().zip(p) {
                        *slot = size(int(x, "padding")?, "padding")?;
                    }
                    v
                }
                Some(p) => {
                    let [h, w] = upair(pair(Some(p), [0, 0], "padding")?, "padding")?;
                    [h, h, w, w]
                }
            };
            let padding_mode = match a.get("padding_mode").and_then(J::as_str).unwrap_or("zeros") {
                "zeros" => PaddingMode::Zeros,
                "reflect" => PaddingMode::Reflect,
                "replicate" => PaddingMode::Replicate,
                "circular" => PaddingMode::Circular,
                m => return Err(format!("unknown padding mode {m}")),
            };
            let bias = boolean(a.get("bias"), true)?;
            // The weight PyTorch's nn.Conv2d would hold: [out, cin / groups, kh, kw].
            let cin_g = cin.checked_div(groups).unwrap_or(cin);
            let w = random([out, cin_g, kernel[0], kernel[1]], 5);
            let b = bias.then(|| Array1::<f32>::from_elem(out, 0.1));
            let p = Conv2dParams {
                stride,
                padding,
                dilation,
                groups,
                padding_mode,
                act: Activation::Identity,
            };
            fpn_runtime::conv2d(x.view(), w.view(), b.as_ref().map(|b| b.view()), &p).map_err(rt)
        }
        "batch_norm" => {
            let eps = match args.get("eps") {
                Some(e) => num(e, "eps")?,
                None => 1e-5,
            };
            fpn_runtime::batch_norm(x.view(), &BatchNorm::new(cin, eps as f32)).map_err(rt)
        }
        "max_pool" | "avg_pool" => {
            // the shorthand `max_pool: 2` is `{kernel: 2}`
            let short = match &args {
                J::Object(_) => None,
                k => Some(serde_json::json!({ "kernel": k })),
            };
            let a = short.as_ref().unwrap_or(&args);
            let kernel = pair(a.get("kernel"), [1, 1], "kernel")?;
            // `padding: tf_same`: TensorFlow's `SAME` padding of this input's size, explicit
            let tf_same = match a.get("padding") {
                Some(J::String(s)) if s == "tf_same" => {
                    if boolean(a.get("ceil_mode"), false)? {
                        return Err("tf_same with ceil_mode (fpn: E0233)".into());
                    }
                    let stride = upair(pair(a.get("stride"), kernel, "stride")?, "stride")?;
                    let dilation = upair(pair(a.get("dilation"), [1, 1], "dilation")?, "dilation")?;
                    let q = fpn_runtime::same_dynamic_padding(x.view(), upair(kernel, "kernel")?, stride, dilation)
                        .map_err(rt)?;
                    Some(J::from(q.to_vec()))
                }
                _ => None,
            };
            // `padding: [t, b, l, r]`: F.pad (−∞ for max, 0 for avg), then the pool unpadded
            let explicit = tf_same.as_ref().or(a.get("padding"));
            if let Some(J::Array(q)) = explicit.filter(|p| p.as_array().is_some_and(|q| q.len() == 4)) {
                let q: Vec<usize> = q
                    .iter()
                    .map(|v| size(int(v, "padding")?, "padding"))
                    .collect::<R<_>>()?;
                let value = if op == "max_pool" { f32::NEG_INFINITY } else { 0.0 };
                let pp = fpn_runtime::Pad2dParams {
                    pad: [q[0], q[1], q[2], q[3]],
                    mode: PaddingMode::Zeros,
                    value,
                };
                let padded = fpn_runtime::pad(x.view(), &pp).map_err(rt)?;
                let p = Pool2dParams {
                    kernel: upair(kernel, "kernel")?,
                    stride: upair(pair(a.get("stride"), kernel, "stride")?, "stride")?,
                    padding: [0, 0],
                    dilation: upair(pair(a.get("dilation"), [1, 1], "dilation")?, "dilation")?,
                    ceil_mode: boolean(a.get("ceil_mode"), false)?,
                    count_include_pad: boolean(a.get("count_include_pad"), true)?,
                };
                return if op == "max_pool" {
                    fpn_runtime::max_pool2d(padded.view(), &p).map_err(rt)
                } else {
                    fpn_runtime::avg_pool2d(padded.view(), &p).map_err(rt)
                };
            }
            let p = Pool2dParams {
                kernel: upair(kernel, "kernel")?,
                stride: upair(pair(a.get("stride"), kernel, "stride")?, "stride")?,
                padding: upair(pair(a.get("padding"), [0, 0], "padding")?, "padding")?,
                dilation: upair(pair(a.get("dilation"), [1, 1], "dilation")?, "dilation")?,
                ceil_mode: boolean(a.get("ceil_mode"), false)?,
                count_include_pad: boolean(a.get("count_include_pad"), true)?,
            };
            if op == "max_pool" {
                fpn_runtime::max_pool2d(x.view(), &p).map_err(rt)
            } else {
                fpn_runtime::avg_pool2d(x.view(), &p).map_err(rt)
            }
        }
        "upsample" => {
            let scale_of = |s: &J| -> R<[f64; 2]> {
                match s {
                    J::Array(v) if v.len() == 2 => Ok([num(&v[0], "scale")?, num(&v[1], "scale")?]),
                    _ => {
                        let f = num(s, "scale")?;
                        Ok([f, f])
                    }
                }
            };
            let (r, mode, align) = match &args {
                J::Object(m) => {
                    let r = match (m.get("scale"), m.get("match")) {
                        (Some(s), None) => Resize::Scale(scale_of(s)?),
                        (None, Some(J::String(t))) => {
                            let y = get(t)?;
                            Resize::Size([y.shape()[2], y.shape()[3]])
                        }
                        _ => return Err("needs exactly one of `scale` and `match`".into()),
                    };
                    let mode = m.get("mode").and_then(J::as_str).unwrap_or("nearest").to_string();
                    (r, mode, boolean(m.get("align_corners"), false)?)
                }
                s => (Resize::Scale(scale_of(s)?), "nearest".to_string(), false),
            };
            match mode.as_str() {
                "bilinear" => fpn_runtime::upsample_bilinear(x.view(), r, align).map_err(rt),
                "nearest" if align => Err(
                    "not expressible in fpn-runtime: nearest has no align_corners (PyTorch: align_corners option can only be set with the interpolating modes)"
                        .into(),
                ),
                "nearest" => fpn_runtime::upsample_nearest(x.view(), r).map_err(rt),
                m => Err(format!("unknown mode {m}")),
            }
        }
        "group_norm" => {
            let g = size(int(&args["groups"], "groups")?, "groups")?;
            let eps = args.get("eps").map(|e| num(e, "eps")).transpose()?.unwrap_or(1e-5);
            fpn_runtime::group_norm(x.view(), &fpn_runtime::GroupNorm::new(g, cin, eps as f32)).map_err(rt)
        }
        "conv_transpose" => {
            let a = &args;
            let out = size(int(&a["out"], "out")?, "out")?;
            let kernel = upair(pair(a.get("kernel"), [1, 1], "kernel")?, "kernel")?;
            let groups = size(
                a.get("groups").map(|g| int(g, "groups")).transpose()?.unwrap_or(1),
                "groups",
            )?;
            let p = fpn_runtime::ConvTranspose2dParams {
                stride: upair(pair(a.get("stride"), [1, 1], "stride")?, "stride")?,
                padding: upair(pair(a.get("padding"), [0, 0], "padding")?, "padding")?,
                output_padding: upair(
                    pair(a.get("output_padding"), [0, 0], "output_padding")?,
                    "output_padding",
                )?,
                dilation: upair(pair(a.get("dilation"), [1, 1], "dilation")?, "dilation")?,
                groups,
            };
            // PyTorch's weight layout [cin, out / groups, kh, kw]; a non-dividing `out` has no
            // such weight (PyTorch refuses it), which the runtime sees as a wrong channel count.
            if groups == 0 || out % groups != 0 {
                return Err(format!("out_channels {out} must be divisible by groups {groups}"));
            }
            let w = random([cin, out / groups, kernel[0], kernel[1]], 5);
            let b = boolean(a.get("bias"), true)?.then(|| Array1::<f32>::from_elem(out, 0.1));
            fpn_runtime::conv_transpose2d(x.view(), w.view(), b.as_ref().map(|b| b.view()), &p).map_err(rt)
        }
        "pad" => {
            let m = match &args {
                J::Object(m) => m.clone(),
                other => [("pad".to_string(), other.clone())].into_iter().collect(),
            };
            let mode = match m.get("mode").and_then(J::as_str).unwrap_or("constant") {
                "constant" => PaddingMode::Zeros,
                "reflect" => PaddingMode::Reflect,
                "replicate" => PaddingMode::Replicate,
                "circular" => PaddingMode::Circular,
                other => return Err(format!("unknown pad mode {other}")),
            };
            let value = m.get("value").map(|v| num(v, "value")).transpose()?.unwrap_or(0.0) as f32;
            match (m.get("pad"), m.get("match")) {
                (Some(p), None) => {
                    // F.pad order (left, right, top, bottom) → [top, bottom, left, right]
                    let v: Vec<i64> = match p {
                        J::Array(a) => a.iter().map(|x| int(x, "pad")).collect::<R<_>>()?,
                        x => vec![int(x, "pad")?; 4],
                    };
                    if v.len() != 4 {
                        return Err("pad needs 4 values".into());
                    }
                    let pad = [
                        size(v[2], "pad")?,
                        size(v[3], "pad")?,
                        size(v[0], "pad")?,
                        size(v[1], "pad")?,
                    ];
                    fpn_runtime::pad(x.view(), &fpn_runtime::Pad2dParams { pad, mode, value }).map_err(rt)
                }
                (None, Some(J::String(t))) => {
                    let y = get(t)?;
                    fpn_runtime::pad_to(x.view(), [y.shape()[2], y.shape()[3]], mode, value).map_err(rt)
                }
                _ => Err("needs exactly one of `pad` and `match`".into()),
            }
        }
        "crop" => {
            let a = &args;
            let size2 = match (a.get("size"), a.get("match")) {
                (Some(s), None) => upair(pair(Some(s), [1, 1], "size")?, "size")?,
                (None, Some(J::String(t))) => {
                    let y = get(t)?;
                    [y.shape()[2], y.shape()[3]]
                }
                _ => return Err("needs exactly one of `size` and `match`".into()),
            };
            let offset = match a.get("offset") {
                Some(o) => Some(upair(pair(Some(o), [0, 0], "offset")?, "offset")?),
                None => None,
            };
            fpn_runtime::crop(x.view(), size2, offset).map_err(rt)
        }
        "chunk" | "split" => {
            // PyTorch's `x.chunk(n, 1)` / `x.split(sizes, 1)`, with fpn's one deliberate
            // difference: a chunk count must divide the channels (PyTorch would make a smaller
            // last chunk, or fewer chunks); then the part's channels, copied
            let c = i64::try_from(cin).map_err(|_| "channels overflow".to_string())?;
            let sizes: Vec<i64> = match &args {
                J::Array(v) => v.iter().map(|x| int(x, "split size")).collect::<R<_>>()?,
                n => {
                    let n = int(n, "chunk count")?;
                    if n < 1 || c % n != 0 {
                        return Err(format!("{c} channels do not make {n} equal chunks"));
                    }
                    vec![c / n; usize::try_from(n).map_err(|_| "chunk count".to_string())?]
                }
            };
            if sizes.iter().any(|&s| s < 1) || sizes.iter().sum::<i64>() != c {
                return Err(format!("split sizes {sizes:?} do not sum to {c} channels"));
            }
            let part = case.part.ok_or("no part chosen")?;
            let len = *sizes.get(part).ok_or("no such part")?;
            let start: i64 = sizes[..part].iter().sum();
            fpn_runtime::channel_slice(x.view(), size(start, "start")?, size(len, "len")?).map_err(rt)
        }
        "pixel_shuffle" => fpn_runtime::pixel_shuffle(x.view(), size(int(&args, "factor")?, "factor")?).map_err(rt),
        "pixel_unshuffle" => fpn_runtime::pixel_unshuffle(x.view(), size(int(&args, "factor")?, "factor")?).map_err(rt),
        "add" | "concat" | "mean" | "fuse" | "mul" => {
            let (refs, eps) = match &args {
                J::Array(r) => (r.clone(), 1e-4),
                J::Object(m) => (
                    m.get("in").and_then(J::as_array).cloned().unwrap_or_default(),
                    m.get("eps").map(|e| num(e, "eps")).transpose()?.unwrap_or(1e-4),
                ),
                _ => return Err("bad merge arguments".into()),
            };
            let ts: Vec<&Tensor> = refs.iter().map(|r| get(r.as_str().unwrap_or(""))).collect::<R<_>>()?;
            let views: Vec<_> = ts.iter().map(|t| t.view()).collect();
            match op.as_str() {
                "add" => {
                    let mut acc = fpn_runtime::add(views[0], views[1]).map_err(rt)?;
                    for v in &views[2..] {
                        fpn_runtime::add_assign(&mut acc, *v).map_err(rt)?;
                    }
                    Ok(acc)
                }
                "mul" => {
                    let mut acc = fpn_runtime::mul(views[0], views[1]).map_err(rt)?;
                    for v in &views[2..] {
                        fpn_runtime::mul_assign(&mut acc, *v).map_err(rt)?;
                    }
                    Ok(acc)
                }
                "concat" => fpn_runtime::concat(&views).map_err(rt),
                "mean" => fpn_runtime::mean(&views).map_err(rt),
                _ => {
                    let w = Array1::<f32>::ones(views.len());
                    fpn_runtime::weighted_fusion(&views, w.view(), eps as f32).map_err(rt)
                }
            }
        }
        name => {
            let arg = match &case.node {
                J::Object(m) => m.get(name),
                _ => None,
            };
            Ok(fpn_runtime::activate(x.view(), act_of(name, arg)?))
        }
    }
}
