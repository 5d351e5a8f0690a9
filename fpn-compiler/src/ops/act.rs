//! Activations: `relu`, `relu6`, `leaky_relu`, `tanh`, `sigmoid`, `silu`, `hardswish`, `gelu`
//! (`{approximate: tanh}`), `identity` — PyTorch's `nn` modules of the same names.
//!
//! Shape rule: the output is the input's shape. No parameters. The Rust back end fuses an
//! activation into the conv epilogue before it when it is that conv's only consumer.

use fpn_runtime::Activation;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// The keys of `gelu: {…}`.
pub(crate) const GELU_KEYS: &[&str] = &["approximate"];
/// The keys of `leaky_relu: {…}`.
pub(crate) const LEAKY_RELU_KEYS: &[&str] = &["slope"];

use super::{elementwise, EvalCx, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::{did_you_mean, type_error, Reader};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{GResult, StmtCx};
use crate::back::torch::{py_float, TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic};
use crate::span::Span;
use crate::value::{Key, Value, ValueKind};

/// An activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Act(pub Activation);

/// The activation keywords.
pub const ACTS: &[&str] = &[
    "relu",
    "relu6",
    "leaky_relu",
    "tanh",
    "sigmoid",
    "silu",
    "hardswish",
    "gelu",
    "identity",
];

/// An activation given as a value: `relu`, `none`, `{leaky_relu: 0.1}` (`cna`'s `act`).
/// E0109: `name` is not an activation.
fn unknown(r: &mut Reader, name: &str, span: Span) -> crate::diag::Reported {
    let dym = did_you_mean(name, ACTS.iter().copied());
    r.err(
        Diagnostic::error(Code::E0109, span, format!("unknown activation `{name}`"))
            .with_label("not an activation")
            .with_help(if dym.is_empty() {
                format!("activations are: {}", ACTS.join(", "))
            } else {
                dym
            }),
    )
}

pub(crate) fn read_value(r: &mut Reader, v: &Value) -> Checked<Activation> {
    match &v.kind {
        ValueKind::Str(s) if s == "none" => Ok(Activation::Identity),
        ValueKind::Null => Ok(Activation::Identity),
        ValueKind::Str(s) => {
            if !ACTS.contains(&s.as_str()) {
                return Err(unknown(r, s, v.span));
            }
            let null = Value {
                kind: ValueKind::Null,
                span: v.span,
            };
            read_named(r, s, &null, v.span)
        }
        ValueKind::Map(entries) if entries.len() == 1 => {
            let (k, a) = &entries[0];
            if !ACTS.contains(&k.name.as_str()) {
                return Err(unknown(r, &k.name, k.span));
            }
            read_named(r, &k.name, a, k.span)
        }
        _ => Err(r.err(type_error(
            v,
            "an activation like `relu` or `{leaky_relu: 0.1}`",
            "`act`",
        ))),
    }
}

/// The activation `name` with its arguments `v` (only `gelu` and `leaky_relu` take any).
pub(crate) fn read_named(r: &mut Reader, name: &str, v: &Value, span: Span) -> Checked<Activation> {
    let null = matches!(v.kind, ValueKind::Null);
    let a = match name {
        "relu" => Activation::Relu,
        "relu6" => Activation::Relu6,
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "silu" => Activation::Silu,
        "hardswish" => Activation::Hardswish,
        "identity" => Activation::Identity,
        "gelu" => match &v.kind {
            ValueKind::Null => Activation::Gelu,
            ValueKind::Map(_) => {
                let mut m = r.map(v, "`gelu`")?;
                let approx = match m.get("approximate") {
                    Some(a) => r.name(a, "`approximate`")?.text,
                    None => "none".into(),
                };
                r.finish(m, GELU_KEYS, "`gelu`");
                match approx.as_str() {
                    "none" => Activation::Gelu,
                    "tanh" => Activation::GeluTanh,
                    _ => {
                        return Err(r.err(type_error(v, "`none` or `tanh`", "`approximate`")));
                    }
                }
            }
            _ => {
                return Err(r.err(type_error(v, "`{approximate: tanh}` or nothing", "`gelu`")));
            }
        },
        "leaky_relu" => {
            let slope = match &v.kind {
                ValueKind::Null => 0.01,
                ValueKind::Int(_) | ValueKind::Float(_) => r.float(v, "the slope")?,
                ValueKind::Map(_) => {
                    let mut m = r.map(v, "`leaky_relu`")?;
                    let s = match m.get("slope") {
                        Some(s) => r.float(s, "`slope`")?,
                        None => 0.01,
                    };
                    r.finish(m, LEAKY_RELU_KEYS, "`leaky_relu`");
                    s
                }
                _ => {
                    return Err(r.err(type_error(v, "a slope like `0.1`", "`leaky_relu`")));
                }
            };
            // the runtime computes in f32: a slope that is not a finite f32 is refused here
            if !((slope as f32).is_finite()) {
                return Err(r.err(
                    Diagnostic::error(
                        Code::E0226,
                        v.span,
                        format!("the slope {slope:?} of `leaky_relu` is not a finite 32-bit float"),
                    )
                    .with_label("out of f32 range")
                    .with_help("use a slope between -3.4e38 and 3.4e38, such as 0.1"),
                ));
            }
            Activation::LeakyRelu(slope as f32)
        }
        _ => return Err(unknown(r, name, span)),
    };
    if !null && !matches!(name, "gelu" | "leaky_relu") {
        return Err(r.err(
            Diagnostic::error(Code::E0110, span, format!("`{name}` takes no arguments"))
                .with_label("no arguments")
                .with_help(format!("write `{name}` alone")),
        ));
    }
    Ok(a)
}

/// The tokens naming `act` in generated code.
pub(crate) fn tokens(rt: &syn::Path, act: Activation) -> TokenStream {
    match act {
        Activation::Identity => quote!(#rt::Activation::Identity),
        Activation::Relu => quote!(#rt::Activation::Relu),
        Activation::Relu6 => quote!(#rt::Activation::Relu6),
        Activation::LeakyRelu(s) => {
            // finite: checked when read
            let s = Literal::f32_suffixed(if s.is_finite() { s } else { 0.0 });
            quote!(#rt::Activation::LeakyRelu(#s))
        }
        Activation::Tanh => quote!(#rt::Activation::Tanh),
        Activation::Sigmoid => quote!(#rt::Activation::Sigmoid),
        Activation::Silu => quote!(#rt::Activation::Silu),
        Activation::Hardswish => quote!(#rt::Activation::Hardswish),
        Activation::Gelu => quote!(#rt::Activation::Gelu),
        Activation::GeluTanh => quote!(#rt::Activation::GeluTanh),
    }
}

impl OpDef for Act {
    const KEYWORDS: &'static [&'static str] = ACTS;
    type Args = Activation;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<Activation> {
        read_named(r, &key.name, v, key.span)
    }

    fn lower(a: &Activation, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        cx.on_input(super::Op::Act(Act(*a)), false)
    }

    fn kind(&self) -> &'static str {
        "act"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        Ok(Inferred {
            flops: elementwise(&x, 1),
            shape: x,
            params: Vec::new(),
        })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        Ok(fpn_runtime::activate(cx.x(0)?, self.0))
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let a = tokens(rt, self.0);
        let out = &cx.out;
        Ok(match cx.take_if_movable(0) {
            Some(src) => quote! {
                let mut #out = #src;
                #rt::activate_inplace(&mut #out, #a);
            },
            None => {
                let x = cx.view(0)?;
                quote!(let #out = #rt::activate(#x, #a);)
            }
        })
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        let x = cx.x(0)?;
        let none = Vec::new;
        match self.0 {
            Activation::Identity => cx.last("Identity", &[&x], none()),
            Activation::Relu => cx.last("Relu", &[&x], none()),
            Activation::Relu6 => {
                let (lo, hi) = (cx.floats("min", &[], &[0.0]), cx.floats("max", &[], &[6.0]));
                cx.last("Clip", &[&x, &lo, &hi], none());
            }
            Activation::LeakyRelu(s) => cx.last("LeakyRelu", &[&x], vec![attr::float("alpha", s)]),
            Activation::Tanh => cx.last("Tanh", &[&x], none()),
            Activation::Sigmoid => cx.last("Sigmoid", &[&x], none()),
            Activation::Silu => {
                let s = cx.op("Sigmoid", &[&x], none());
                cx.last("Mul", &[&x, &s], none());
            }
            Activation::Hardswish => cx.last("HardSwish", &[&x], none()),
            Activation::Gelu | Activation::GeluTanh if cx.opset >= 20 => {
                let approx = if self.0 == Activation::Gelu { "none" } else { "tanh" };
                cx.last("Gelu", &[&x], vec![attr::string("approximate", approx)]);
            }
            Activation::Gelu => {
                // 0.5·x·(1 + erf(x/√2)), torch.onnx's form below opset 20
                let r2 = cx.floats("sqrt2", &[], &[std::f32::consts::SQRT_2]);
                let d = cx.op("Div", &[&x, &r2], none());
                let e = cx.op("Erf", &[&d], none());
                gelu_tail(cx, &x, &e);
            }
            Activation::GeluTanh => {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                let x2 = cx.op("Mul", &[&x, &x], none());
                let x3 = cx.op("Mul", &[&x2, &x], none());
                let k = cx.floats("k", &[], &[0.044715]);
                let kx3 = cx.op("Mul", &[&x3, &k], none());
                let inner = cx.op("Add", &[&x, &kx3], none());
                let c = cx.floats("sqrt_2_over_pi", &[], &[(2.0f64 / std::f64::consts::PI).sqrt() as f32]);
                let scaled = cx.op("Mul", &[&inner, &c], none());
                let t = cx.op("Tanh", &[&scaled], none());
                gelu_tail(cx, &x, &t);
            }
        }
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let x = cx.x(0)?;
        let e = match self.0 {
            Activation::Identity => x,
            Activation::Relu => format!("F.relu({x})"),
            Activation::Relu6 => format!("F.relu6({x})"),
            Activation::LeakyRelu(s) => format!("F.leaky_relu({x}, {})", py_float(f64::from(s))),
            Activation::Tanh => format!("torch.tanh({x})"),
            Activation::Sigmoid => format!("torch.sigmoid({x})"),
            Activation::Silu => format!("F.silu({x})"),
            Activation::Hardswish => format!("F.hardswish({x})"),
            Activation::Gelu => format!("F.gelu({x})"),
            Activation::GeluTanh => format!("F.gelu({x}, approximate='tanh')"),
        };
        cx.assign(&e);
        Ok(())
    }
}

/// `0.5·x·(1 + t)`, the end of both GELU forms, into the node's output.
fn gelu_tail(cx: &mut OnnxCx<'_>, x: &str, t: &str) {
    let one = cx.floats("one", &[], &[1.0]);
    let a = cx.op("Add", &[t, &one], Vec::new());
    let m = cx.op("Mul", &[x, &a], Vec::new());
    let half = cx.floats("half", &[], &[0.5]);
    cx.last("Mul", &[&m, &half], Vec::new());
}
