//! Ops that move values: `pad` (PyTorch `F.pad`), `crop` (slicing), `pixel_shuffle` /
//! `pixel_unshuffle` (`nn.PixelShuffle` / `nn.PixelUnshuffle`). No weights.
//!
//! Shape rules (per axis, [`fpn_runtime::rules`]):
//! - `pad: p | [l, r, t, b]` (F.pad's order): `x + before + after` (`pad_axis`); reflect
//!   padding must be `< x`, circular `≤ x`. `pad: {match: ref}` pads to `ref`'s size, `diff // 2`
//!   top/left and the rest bottom/right (milesial U-Net's split, `split_diff`), defined when
//!   `ref ≥ x` (a `Fits` constraint; reflect and circular are refused with `match`, E0231).
//! - `crop: {size: [h, w], offset: [t, l]}`: `[h, w]`, defined when `x ≥ offset + size`
//!   (`crop_axis`); without `offset` the window is centred at `(x − size) // 2`.
//!   `crop: {match: ref}` crops (centred) to `ref`'s size, defined when `x ≥ ref`.
//! - `pixel_shuffle: r`: `[C/r², H·r, W·r]`, `r²` must divide `C` (E0326);
//!   `pixel_unshuffle: r`: `[C·r², H/r, W/r]`, `r` must divide `H` and `W` (a `Divisible`
//!   constraint, E0328 for the sizes that break it).

use fpn_runtime::rules;
use fpn_runtime::PaddingMode;
use proc_macro2::TokenStream;
use quote::quote;

/// The keys of `pad: {…}`.
pub(crate) const PAD_KEYS: &[&str] = &["pad", "match", "mode", "value"];
/// The keys of `crop: {…}`.
pub(crate) const CROP_KEYS: &[&str] = &["size", "match", "offset"];

use super::conv::read_mode;
use super::{elementwise, AxisRule, EvalCx, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::{type_error, Int, Pair, Reader, Ref};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{f32_lit, usize_lit, usize_pair_lit, GResult, GenError, StmtCx};
use crate::back::torch::{py_float, TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic, Reported};
use crate::dim::Dim;
use crate::infer::{CheckKind, Shape};
use crate::span::Span;
use crate::value::{Key, Value, ValueKind};

// ------------------------------------------------------------------------------------ pad

/// `F.pad` by fixed amounts or to another node's size.
#[derive(Clone, Debug, PartialEq)]
pub struct Pad {
    /// `[top, bottom, left, right]`; `None`: to the size of input 1 (`match`).
    pub pad: Option<[i64; 4]>,
    /// Fill mode (`Zeros` is PyTorch's `constant`).
    pub mode: PaddingMode,
    /// Constant fill value.
    pub value: f64,
}

/// What a `pad` pads by.
#[derive(Clone, Debug, PartialEq)]
pub enum PadAmount {
    /// F.pad's `(left, right, top, bottom)`.
    Fixed([Int; 4]),
    /// To another node's size.
    Match(Ref),
}

/// `pad:` arguments as written.
#[derive(Clone, Debug, PartialEq)]
pub struct PadArgs {
    /// Amount.
    pub amount: PadAmount,
    /// Mode (default constant).
    pub mode: PaddingMode,
    /// Value (default 0) and where it was written.
    pub value: Option<(f64, Span)>,
    /// Where the op is.
    pub span: Span,
}

fn read_amount(r: &mut Reader, v: &Value) -> Checked<[Int; 4]> {
    match &v.kind {
        ValueKind::Seq(items) if items.len() == 4 => {
            let v = items.iter().map(|i| r.int(i, "`pad`")).collect::<Checked<Vec<Int>>>()?;
            Ok([v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone()])
        }
        ValueKind::Seq(_) => Err(r.err(
            type_error(v, "a number or `[left, right, top, bottom]`", "`pad`")
                .with_help("PyTorch's F.pad order: `pad: [left, right, top, bottom]`, or one number for all four"),
        )),
        _ => {
            let p = r.int(v, "`pad`")?;
            Ok([p.clone(), p.clone(), p.clone(), p])
        }
    }
}

/// E0111: exactly one of two alternative keys.
fn one_of(r: &mut Reader, span: Span, op: &str, a: &str, b: &str, help: &str) -> Reported {
    r.err(
        Diagnostic::error(
            Code::E0111,
            span,
            format!("a `{op}` needs exactly one of `{a}` and `{b}`"),
        )
        .with_label(format!("give `{a}` or `{b}`"))
        .with_help(help.to_string()),
    )
}

/// The shape rule of `pad` and `crop` on input `x`, which keep the channels and have neither
/// parameters nor FLOPs. By a fixed amount (`fixed`: stand-in sizes and per-axis rule, see
/// [`InferCx::spatial`]), or else to the size of input 1 (`match`), which must be at least
/// (`grows`: `pad`) or at most (`crop`) `x`'s (`Fits` constraints).
fn infer_window<F>(cx: &mut InferCx<'_>, x: Shape, fixed: Option<([Dim; 2], F)>, grows: bool) -> Inferred
where
    F: FnMut(usize, &Dim) -> Result<AxisRule, &'static str>,
{
    let shape = match (fixed, cx.ins.get(1).cloned()) {
        (Some((stand_in, rule)), _) => {
            let [h, w] = cx.spatial(&x, stand_in, rule);
            Shape { c: x.c, h, w }
        }
        (None, Some(t)) => {
            let (larger, smaller) = if grows { (&t, &x) } else { (&x, &t) };
            cx.relate_sizes(CheckKind::Fits, larger, smaller, (0, 1));
            Shape { c: x.c, h: t.h, w: t.w }
        }
        (None, None) => x,
    };
    Inferred {
        flops: None,
        shape,
        params: Vec::new(),
    }
}

fn mode_tokens(rt: &syn::Path, m: PaddingMode) -> TokenStream {
    match m {
        PaddingMode::Zeros => quote!(#rt::PaddingMode::Zeros),
        PaddingMode::Reflect => quote!(#rt::PaddingMode::Reflect),
        PaddingMode::Replicate => quote!(#rt::PaddingMode::Replicate),
        PaddingMode::Circular => quote!(#rt::PaddingMode::Circular),
    }
}

/// The `[h, w]` of input 1 in generated code (a `match` target).
fn match_size(cx: &StmtCx<'_>) -> GResult<TokenStream> {
    let j = *cx
        .ins
        .get(1)
        .ok_or_else(|| GenError::Unsupported(format!("node `{}` lacks its size input", cx.node.name)))?;
    let v = cx.var(j);
    Ok(quote!([#v.dim().2, #v.dim().3]))
}

impl Pad {
    fn params(&self, p: [i64; 4]) -> Option<fpn_runtime::Pad2dParams> {
        let u = |v: i64| usize::try_from(v).ok();
        Some(fpn_runtime::Pad2dParams {
            pad: [u(p[0])?, u(p[1])?, u(p[2])?, u(p[3])?],
            mode: self.mode,
            value: self.value as f32,
        })
    }
}

impl OpDef for Pad {
    const KEYWORDS: &'static [&'static str] = &["pad"];
    type Args = PadArgs;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<PadArgs> {
        let what = format!("`{}`", key.name);
        if !matches!(v.kind, ValueKind::Map(_)) {
            return Ok(PadArgs {
                amount: PadAmount::Fixed(read_amount(r, v)?),
                mode: PaddingMode::Zeros,
                value: None,
                span: key.span,
            });
        }
        let mut m = r.map(v, &what)?;
        let amount = match (m.get("pad"), m.get("match")) {
            (Some(p), None) => PadAmount::Fixed(read_amount(r, p)?),
            (None, Some(t)) => PadAmount::Match(r.reference(t, "`match`")?),
            _ => {
                return Err(one_of(
                    r,
                    m.span,
                    "pad",
                    "pad",
                    "match",
                    "`pad: [left, right, top, bottom]` pads by fixed amounts (PyTorch F.pad); `match: <node>` pads to that node's size",
                ));
            }
        };
        let mode = match m.get("mode") {
            Some(mv) => read_mode(r, mv, "`mode`", "constant", "`pad` modes")?,
            None => PaddingMode::Zeros,
        };
        let value = match m.get("value") {
            Some(x) => Some((r.float(x, "`value`")?, x.span)),
            None => None,
        };
        let span = m.span;
        r.finish(m, PAD_KEYS, &what);
        Ok(PadArgs {
            amount,
            mode,
            value,
            span,
        })
    }

    fn refs(args: &PadArgs) -> Vec<&Ref> {
        match &args.amount {
            PadAmount::Match(r) => vec![r],
            PadAmount::Fixed(_) => Vec::new(),
        }
    }

    fn lower(a: &PadArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let env = cx.env;
        let l = &mut *cx.l;
        if let Some((v, span)) = a.value {
            if a.mode != PaddingMode::Zeros {
                return Err(l.err(
                    Diagnostic::error(Code::E0231, span, "a fill `value` needs `mode: constant`")
                        .with_label("only the constant mode fills with a value")
                        .with_note("PyTorch: padding modes other than constant don't take in a value argument")
                        .with_help("remove `value`, or use `mode: constant`"),
                ));
            }
            if !(v.is_finite() && (v as f32).is_finite()) {
                return Err(l.err(
                    Diagnostic::error(Code::E0226, span, format!("fill value {v:?} does not fit f32"))
                        .with_label("out of f32 range")
                        .with_help("use a value such as 0 or -1"),
                ));
            }
        }
        let value = a.value.map_or(0.0, |(v, _)| v);
        let (pad, inputs) = match &a.amount {
            PadAmount::Fixed(p) => {
                // F.pad order (left, right, top, bottom) → [top, bottom, left, right]
                let mut v = [0i64; 4];
                for (slot, k) in [2usize, 3, 0, 1].into_iter().zip(p) {
                    v[slot] = l.eval_pos(k, env, "a padding", 0)?;
                }
                (Some(v), vec![cx.input()?])
            }
            PadAmount::Match(r) => {
                if matches!(a.mode, PaddingMode::Reflect | PaddingMode::Circular) {
                    return Err(l.err(
                        Diagnostic::error(
                            Code::E0231,
                            a.span,
                            "`pad: {match: …}` supports the constant and replicate modes only",
                        )
                        .with_label("reflect/circular limits would depend on both sizes")
                        .with_help("use `mode: constant` or `mode: replicate`, or pad by fixed amounts"),
                    ));
                }
                let t = l.resolve_one(r)?;
                (None, vec![cx.input()?, t])
            }
        };
        Ok(Lowered {
            op: super::Op::Pad(Pad {
                pad,
                mode: a.mode,
                value,
            }),
            inputs,
            has_params: false,
        })
    }

    fn kind(&self) -> &'static str {
        "pad"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        let mode = self.mode;
        let fixed = self.pad.map(|p| {
            let rule = move |axis: usize, d: &Dim| {
                rules::pad_axis(d, [p[2 * axis], p[2 * axis + 1]], mode).ok_or("the padded size")
            };
            ([x.h.clone(), x.w.clone()], rule)
        });
        Ok(infer_window(cx, x, fixed, true))
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        match self.pad {
            Some(p) => fpn_runtime::pad(cx.x(0)?, &self.params(p).ok_or_else(|| cx.negative("attribute"))?),
            None => {
                let t = cx.x(1)?;
                fpn_runtime::pad_to(cx.x(0)?, [t.shape()[2], t.shape()[3]], self.mode, self.value as f32)
            }
        }
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let node = cx.node;
        let mode = mode_tokens(rt, self.mode);
        let value = f32_lit(self.value, "fill value", node)?;
        let x = cx.view(0)?;
        let out = &cx.out;
        Ok(match self.pad {
            Some(p) => {
                let [a, b, c, d] = p.map(|v| usize_lit(v, "padding", node));
                let (a, b, c, d) = (a?, b?, c?, d?);
                quote! {
                    let #out = #rt::pad(#x, &#rt::Pad2dParams { pad: [#a, #b, #c, #d], mode: #mode, value: #value })?;
                }
            }
            None => {
                let size = match_size(cx)?;
                quote!(let #out = #rt::pad_to(#x, #size, #mode, #value)?;)
            }
        })
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        let x = cx.x(0)?;
        let (ins, attrs) = match self.pad {
            Some(p) => cx.pad_fixed(&x, p, self.mode, self.value as f32)?,
            None => {
                // to input 1's size: `diff // 2` before, the rest after (`pad_to`), computed
                // from the shapes at run time so symbolic sizes stay symbolic
                let t = cx.x(1)?;
                let (have, want) = (cx.dims_of(&x, 2, 4), cx.dims_of(&t, 2, 4));
                let diff = cx.op("Sub", &[&want, &have], Vec::new());
                let two = cx.ints("two", &[2]);
                let before = cx.op("Div", &[&diff, &two], Vec::new());
                let after = cx.op("Sub", &[&diff, &before], Vec::new());
                let zeros = cx.ints("zeros", &[0, 0]);
                let pads = cx.op("Concat", &[&zeros, &before, &zeros, &after], vec![attr::int("axis", 0)]);
                cx.pad_with(&x, pads, self.mode, self.value as f32)?
            }
        };
        cx.last("Pad", &ins, attrs);
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let x = cx.x(0)?;
        let mode = crate::back::torch::pad_mode(self.mode);
        let value = if self.mode == PaddingMode::Zeros {
            format!(", value={}", py_float(self.value))
        } else {
            String::new()
        };
        let pads = match self.pad {
            Some([t, b, l, r]) => format!("({l}, {r}, {t}, {b})"),
            None => {
                let to = cx.x(1)?;
                let (dh, dw) = (cx.tmp("dh"), cx.tmp("dw"));
                cx.set(&dh, &format!("{to}.shape[2] - {x}.shape[2]"));
                cx.set(&dw, &format!("{to}.shape[3] - {x}.shape[3]"));
                format!("({dw} // 2, {dw} - {dw} // 2, {dh} // 2, {dh} - {dh} // 2)")
            }
        };
        cx.assign(&format!("F.pad({x}, {pads}, mode='{mode}'{value})"));
        Ok(())
    }
}

// ----------------------------------------------------------------------------------- crop

/// A crop to a fixed window or to another node's size (centred).
#[derive(Clone, Debug, PartialEq)]
pub struct Crop {
    /// `[h, w]`; `None`: the size of input 1 (`match`).
    pub size: Option<[i64; 2]>,
    /// `[top, left]`; `None`: centred.
    pub offset: Option<[i64; 2]>,
}

/// `crop:` arguments as written.
#[derive(Clone, Debug, PartialEq)]
pub struct CropArgs {
    /// Fixed size.
    pub size: Option<Pair>,
    /// Size of another node.
    pub to: Option<Ref>,
    /// Offset `[top, left]`.
    pub offset: Option<Pair>,
    /// Where the op is.
    pub span: Span,
}

impl OpDef for Crop {
    const KEYWORDS: &'static [&'static str] = &["crop"];
    type Args = CropArgs;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<CropArgs> {
        let what = format!("`{}`", key.name);
        let mut m = r.map(v, &what)?;
        let (size, to) = match (m.get("size"), m.get("match")) {
            (Some(s), None) => (Some(r.pair(s, "`size`")?), None),
            (None, Some(t)) => (None, Some(r.reference(t, "`match`")?)),
            _ => {
                return Err(one_of(
                    r,
                    m.span,
                    "crop",
                    "size",
                    "match",
                    "`size: [h, w]` cuts a fixed window; `match: <node>` cuts that node's size (centred)",
                ));
            }
        };
        let offset = match m.get("offset") {
            Some(o) => Some(r.pair(o, "`offset`")?),
            None => None,
        };
        let span = m.span;
        r.finish(m, CROP_KEYS, &what);
        Ok(CropArgs { size, to, offset, span })
    }

    fn refs(args: &CropArgs) -> Vec<&Ref> {
        args.to.iter().collect()
    }

    fn lower(a: &CropArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let env = cx.env;
        let l = &mut *cx.l;
        let size = match &a.size {
            Some(p) => Some([
                l.eval_pos(&p.h, env, "a crop size", 1)?,
                l.eval_pos(&p.w, env, "a crop size", 1)?,
            ]),
            None => None,
        };
        let offset = match &a.offset {
            Some(p) => Some([
                l.eval_pos(&p.h, env, "a crop offset", 0)?,
                l.eval_pos(&p.w, env, "a crop offset", 0)?,
            ]),
            None => None,
        };
        let inputs = match &a.to {
            Some(r) => {
                if let Some(o) = &a.offset {
                    return Err(l.err(
                        Diagnostic::error(Code::E0231, o.h.span, "`crop: {match: …}` is always centred")
                            .with_label("an offset with `match`")
                            .with_help("remove `offset`, or crop a fixed `size: [h, w]` at the offset"),
                    ));
                }
                let t = l.resolve_one(r)?;
                vec![cx.input()?, t]
            }
            None => vec![cx.input()?],
        };
        Ok(Lowered {
            op: super::Op::Crop(Crop { size, offset }),
            inputs,
            has_params: false,
        })
    }

    fn kind(&self) -> &'static str {
        "crop"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        let offset = self.offset;
        let fixed = self.size.map(|s| {
            let rule = move |axis: usize, d: &Dim| {
                rules::crop_axis(d, s[axis], offset.map(|o| o[axis])).ok_or("the crop window")
            };
            ([Dim::Const(s[0]), Dim::Const(s[1])], rule)
        });
        Ok(infer_window(cx, x, fixed, false))
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let u = |v: [i64; 2]| Some([usize::try_from(v[0]).ok()?, usize::try_from(v[1]).ok()?]);
        let size = match self.size {
            Some(s) => u(s).ok_or_else(|| cx.negative("attribute"))?,
            None => {
                let t = cx.x(1)?;
                [t.shape()[2], t.shape()[3]]
            }
        };
        let offset = match self.offset {
            Some(o) => Some(u(o).ok_or_else(|| cx.negative("attribute"))?),
            None => None,
        };
        fpn_runtime::crop(cx.x(0)?, size, offset)
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let node = cx.node;
        let size = match self.size {
            Some(s) => usize_pair_lit(s, "crop size", node)?,
            None => match_size(cx)?,
        };
        let offset = match self.offset {
            Some(o) => {
                let o = usize_pair_lit(o, "crop offset", node)?;
                quote!(::core::option::Option::Some(#o))
            }
            None => quote!(::core::option::Option::None),
        };
        let x = cx.view(0)?;
        let out = &cx.out;
        Ok(quote!(let #out = #rt::crop(#x, #size, #offset)?;))
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        let x = cx.x(0)?;
        let (starts, ends) = match (self.size, self.offset) {
            (Some(s), Some(o)) => (cx.ints("starts", &o), cx.ints("ends", &[o[0] + s[0], o[1] + s[1]])),
            (size, offset) => {
                let size = match size {
                    Some(s) => cx.ints("size", &s),
                    None => {
                        let t = cx.x(1)?;
                        cx.dims_of(&t, 2, 4)
                    }
                };
                let starts = match offset {
                    Some(o) => cx.ints("starts", &o),
                    None => {
                        // centred: `(x − size) // 2`, as the runtime's `crop`
                        let have = cx.dims_of(&x, 2, 4);
                        let diff = cx.op("Sub", &[&have, &size], Vec::new());
                        let two = cx.ints("two", &[2]);
                        cx.op("Div", &[&diff, &two], Vec::new())
                    }
                };
                let ends = cx.op("Add", &[&starts, &size], Vec::new());
                (starts, ends)
            }
        };
        let axes = cx.ints("axes", &[2, 3]);
        cx.last("Slice", &[&x, &starts, &ends, &axes], Vec::new());
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let x = cx.x(0)?;
        let [h, w] = match self.size {
            Some([h, w]) => [h.to_string(), w.to_string()],
            None => {
                let to = cx.x(1)?;
                [format!("{to}.shape[2]"), format!("{to}.shape[3]")]
            }
        };
        let [t, l] = match self.offset {
            Some([t, l]) => [t.to_string(), l.to_string()],
            None => {
                // centred: (x − size) // 2
                let (t, l) = (cx.tmp("top"), cx.tmp("left"));
                cx.set(&t, &format!("({x}.shape[2] - {h}) // 2"));
                cx.set(&l, &format!("({x}.shape[3] - {w}) // 2"));
                [t, l]
            }
        };
        cx.assign(&format!("{x}[:, :, {t}:{t} + {h}, {l}:{l} + {w}]"));
        Ok(())
    }
}

// -------------------------------------------------------------------------- pixel shuffle

/// `nn.PixelShuffle(r)`.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelShuffle(pub i64);

/// `nn.PixelUnshuffle(r)`.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelUnshuffle(pub i64);

fn read_factor(r: &mut Reader, key: &Key, v: &Value) -> Checked<Int> {
    r.int(v, &format!("`{}`", key.name))
}

impl OpDef for PixelShuffle {
    const KEYWORDS: &'static [&'static str] = &["pixel_shuffle"];
    type Args = Int;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<Int> {
        read_factor(r, key, v)
    }
    fn lower(a: &Int, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let f = cx.l.eval_pos(a, cx.env, "an upscale factor", 1)?;
        cx.on_input(super::Op::PixelShuffle(PixelShuffle(f)), false)
    }
    fn kind(&self) -> &'static str {
        "pixel_shuffle"
    }
    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        let r = self.0;
        if let Err(reason) = rules::validate_pixel_shuffle(x.c, r) {
            return Err(Reported::push(
                cx.diags,
                Diagnostic::error(
                    Code::E0326,
                    cx.node.span,
                    format!(
                        "pixel shuffle `{}` by {r} needs channels divisible by {r}² but its input has {}",
                        cx.node.name, x.c
                    ),
                )
                .with_label(format!("input has {} channels", x.c))
                .with_note(format!("PyTorch: {reason}"))
                .with_help(format!(
                    "give the conv before it a multiple of {} output channels",
                    r.saturating_mul(r)
                )),
            ));
        }
        let [h, w] = cx.spatial(&x, [x.h.clone(), x.w.clone()], |_, d| {
            rules::pixel_shuffle_axis(d, r).ok_or("the output size")
        });
        let shape = Shape { c: x.c / (r * r), h, w };
        Ok(Inferred {
            flops: elementwise(&shape, 0),
            shape,
            params: Vec::new(),
        })
    }
    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        fpn_runtime::pixel_shuffle(cx.x(0)?, usize::try_from(self.0).map_err(|_| cx.negative("attribute"))?)
    }
    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let r = usize_lit(self.0, "factor", cx.node)?;
        let x = cx.view(0)?;
        let out = &cx.out;
        Ok(quote!(let #out = #rt::pixel_shuffle(#x, #r)?;))
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        // `DepthToSpace` in CRD mode is `nn.PixelShuffle`: channel c·r² + i·r + j → (c, i, j)
        let x = cx.x(0)?;
        cx.last(
            "DepthToSpace",
            &[&x],
            vec![attr::int("blocksize", self.0), attr::string("mode", "CRD")],
        );
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let x = cx.x(0)?;
        cx.assign(&format!("F.pixel_shuffle({x}, {})", self.0));
        Ok(())
    }
}

impl OpDef for PixelUnshuffle {
    const KEYWORDS: &'static [&'static str] = &["pixel_unshuffle"];
    type Args = Int;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<Int> {
        read_factor(r, key, v)
    }
    fn lower(a: &Int, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let f = cx.l.eval_pos(a, cx.env, "a downscale factor", 1)?;
        cx.on_input(super::Op::PixelUnshuffle(PixelUnshuffle(f)), false)
    }
    fn kind(&self) -> &'static str {
        "pixel_unshuffle"
    }
    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        let r = self.0;
        let c = match r.checked_mul(r).and_then(|r2| x.c.checked_mul(r2)) {
            Some(c) => c,
            None => {
                cx.overflow("the channel count");
                x.c
            }
        };
        let [h, w] = cx.spatial(&x, [x.h.clone(), x.w.clone()], |_, d| {
            rules::pixel_unshuffle_axis(d, r).ok_or("the output size")
        });
        let shape = Shape { c, h, w };
        Ok(Inferred {
            flops: elementwise(&shape, 0),
            shape,
            params: Vec::new(),
        })
    }
    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        fpn_runtime::pixel_unshuffle(cx.x(0)?, usize::try_from(self.0).map_err(|_| cx.negative("attribute"))?)
    }
    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let r = usize_lit(self.0, "factor", cx.node)?;
        let x = cx.view(0)?;
        let out = &cx.out;
        Ok(quote!(let #out = #rt::pixel_unshuffle(#x, #r)?;))
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        // `SpaceToDepth` orders channels DCR, (i·r + j)·C + c; `nn.PixelUnshuffle` orders them
        // c·r² + i·r + j: a `Gather` over the channels reorders them
        let x = cx.x(0)?;
        let c = cx.in_shape(0)?.c;
        let r2 = self.0 * self.0;
        let order: Vec<i64> = (0..c * r2).map(|k| (k % r2) * c + k / r2).collect();
        let s2d = cx.op("SpaceToDepth", &[&x], vec![attr::int("blocksize", self.0)]);
        let idx = cx.ints("channel_order", &order);
        cx.last("Gather", &[&s2d, &idx], vec![attr::int("axis", 1)]);
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let x = cx.x(0)?;
        cx.assign(&format!("F.pixel_unshuffle({x}, {})", self.0));
        Ok(())
    }
}
