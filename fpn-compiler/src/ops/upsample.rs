//! `upsample`: PyTorch `F.interpolate` with `mode` nearest or bilinear, by `scale_factor`
//! (`scale`) or to another node's size (`match`, PyTorch `size=`).
//!
//! Shape rule: with a scale, per axis `trunc(x · s)` computed in `f64` exactly as PyTorch's
//! `compute_output_size` ([`fpn_runtime::rules::upsample_axis`]), defined when at least 1; with
//! `match`, the matched node's height and width. Parameters are checked by
//! [`fpn_runtime::rules::validate_upsample`] (`align_corners` only with bilinear). No weights.

use fpn_runtime::rules;
use fpn_runtime::Resize;
use proc_macro2::TokenStream;
use quote::quote;

/// The keys of `upsample: {…}`.
pub(crate) const UPSAMPLE_KEYS: &[&str] = &["scale", "match", "mode", "align_corners"];
/// The upsample modes.
pub(crate) const UPSAMPLE_MODES: &[&str] = &["nearest", "bilinear"];

use super::{elementwise, EvalCx, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::{did_you_mean, Reader, Ref};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{f64_lit, GResult, GenError, StmtCx};
use crate::back::torch::{py_bool, py_float, TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic};
use crate::infer::Shape;
use crate::lower::SKIP_INPUT;
use crate::value::{Key, Value, ValueKind};

/// An upsample.
#[derive(Clone, Debug, PartialEq)]
pub struct Upsample {
    /// Bilinear (else nearest).
    pub bilinear: bool,
    /// Bilinear `align_corners`.
    pub align_corners: bool,
    /// Scale `[h, w]`; `None`: the size of input 1 (`match`).
    pub scale: Option<[f64; 2]>,
}

/// How an upsample picks its output size.
#[derive(Clone, Debug, PartialEq)]
pub enum UpTarget {
    /// By scale factor `[h, w]` (PyTorch `scale_factor`).
    Scale([f64; 2]),
    /// To the spatial size of another node (PyTorch `interpolate(size=other.shape[-2:])`).
    Match(Ref),
}

/// `upsample:` attributes as written.
#[derive(Clone, Debug, PartialEq)]
pub struct UpArgs {
    /// Size rule.
    pub target: UpTarget,
    /// `true` for bilinear, `false` for nearest.
    pub bilinear: bool,
    /// Bilinear `align_corners`.
    pub align_corners: bool,
}

/// Largest scale accepted (larger ones are typos, and overflow sizes).
const MAX_SCALE: f64 = 1e6;

impl OpDef for Upsample {
    const KEYWORDS: &'static [&'static str] = &["upsample"];
    type Args = UpArgs;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<UpArgs> {
        let what = format!("`{}`", key.name);
        let scale_of = |r: &mut Reader, s: &Value| -> Checked<[f64; 2]> {
            match &s.kind {
                ValueKind::Seq(items) if items.len() == 2 => {
                    Ok([r.float(&items[0], "`scale`")?, r.float(&items[1], "`scale`")?])
                }
                _ => {
                    let f = r.float(s, "`scale`")?;
                    Ok([f, f])
                }
            }
        };
        match &v.kind {
            ValueKind::Int(_) | ValueKind::Float(_) | ValueKind::Seq(_) => Ok(UpArgs {
                target: UpTarget::Scale(scale_of(r, v)?),
                bilinear: false,
                align_corners: false,
            }),
            _ => {
                let mut m = r.map(v, &what)?;
                let scale = m.get("scale");
                let mat = m.get("match");
                let target = match (scale, mat) {
                    (Some(s), None) => UpTarget::Scale(scale_of(r, s)?),
                    (None, Some(t)) => UpTarget::Match(r.reference(t, "`match`")?),
                    _ => {
                        return Err(r.err(
                            Diagnostic::error(Code::E0111, m.span, "an upsample needs exactly one of `scale` and `match`")
                                .with_label("give `scale: 2` or `match: <node>`")
                                .with_help("`scale` multiplies the size (PyTorch `scale_factor`); `match` takes another node's size (PyTorch `size=`)"),
                        ));
                    }
                };
                let mode = m.get("mode");
                let bilinear = match mode {
                    None => false,
                    Some(mv) => match r.name(mv, "`mode`")?.text.as_str() {
                        "nearest" => false,
                        "bilinear" => true,
                        other => {
                            let dym = did_you_mean(other, UPSAMPLE_MODES.iter().copied());
                            return Err(r.err(
                                Diagnostic::error(Code::E0112, mv.span, format!("unknown upsample mode `{other}`"))
                                    .with_label("not a mode")
                                    .with_help(if dym.is_empty() {
                                        "modes are: nearest, bilinear".to_string()
                                    } else {
                                        dym
                                    }),
                            ));
                        }
                    },
                };
                let ac = m.get("align_corners");
                let align_corners = match ac {
                    Some(b) => r.boolean(b, "`align_corners`")?,
                    None => false,
                };
                if let (Some(acv), Err(reason)) = (ac, rules::validate_upsample(None, bilinear, align_corners)) {
                    return Err(r.err(
                        Diagnostic::error(Code::E0227, acv.span, "`align_corners` needs `mode: bilinear`")
                            .with_label("nearest upsampling has no corners to align")
                            .with_note(format!("PyTorch: {reason}"))
                            .with_help("remove `align_corners`, or add `mode: bilinear`"),
                    ));
                }
                r.finish(m, UPSAMPLE_KEYS, &what);
                Ok(UpArgs {
                    target,
                    bilinear,
                    align_corners,
                })
            }
        }
    }

    fn refs(args: &UpArgs) -> Vec<&Ref> {
        match &args.target {
            UpTarget::Match(r) => vec![r],
            UpTarget::Scale(_) => Vec::new(),
        }
    }

    fn lower(u: &UpArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let span = cx.span;
        let (scale, inputs) = match &u.target {
            UpTarget::Scale(s) => {
                for v in s {
                    if !(v.is_finite() && *v > 0.0 && *v < MAX_SCALE) {
                        return Err(cx.l.err(
                            Diagnostic::error(Code::E0213, span, format!("upsample scale {v:?} is not supported"))
                                .with_label("bad scale")
                                .with_help(
                                    "use a positive scale below 10^6, such as 2, 0.5 or 1.5, or `match: <node>`",
                                ),
                        ));
                    }
                }
                (Some(*s), vec![cx.input()?])
            }
            UpTarget::Match(r) if r.node == SKIP_INPUT && r.sub.is_none() && !cx.l.names.contains_key(SKIP_INPUT) => {
                match cx.l.skip_input() {
                    Some(t) => (None, vec![cx.input()?, t]),
                    None => {
                        return Err(cx.l.err(
                            Diagnostic::error(
                                Code::E0225,
                                r.span,
                                "`match: skip` is only meaningful inside a `skip` or `residual` body",
                            )
                            .with_label("no enclosing skip")
                            .with_help("name the node whose size to take: `match: <node>`"),
                        ));
                    }
                }
            }
            UpTarget::Match(r) => {
                let t = cx.l.resolve_one(r)?;
                (None, vec![cx.input()?, t])
            }
        };
        Ok(Lowered {
            op: super::Op::Upsample(Upsample {
                bilinear: u.bilinear,
                align_corners: u.align_corners,
                scale,
            }),
            inputs,
            has_params: false,
        })
    }

    fn kind(&self) -> &'static str {
        "upsample"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        let shape = match (&self.scale, cx.ins.get(1)) {
            (Some(sc), _) => {
                let h = rules::upsample_axis(&x.h, sc[0]);
                let w = rules::upsample_axis(&x.w, sc[1]);
                match (h, w) {
                    (Some((h, ch)), Some((w, cw))) => {
                        cx.conds(0, ch);
                        cx.conds(1, cw);
                        Shape { c: x.c, h, w }
                    }
                    _ => {
                        cx.overflow("the upsampled size");
                        x.clone()
                    }
                }
            }
            (None, Some(t)) => Shape {
                c: x.c,
                h: t.h.clone(),
                w: t.w.clone(),
            },
            (None, None) => x.clone(),
        };
        Ok(Inferred {
            flops: elementwise(&shape, 1),
            shape,
            params: Vec::new(),
        })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let r = match self.scale {
            Some(s) => Resize::Scale(s),
            None => {
                let s = cx.x(1)?;
                Resize::Size([s.shape()[2], s.shape()[3]])
            }
        };
        if self.bilinear {
            fpn_runtime::upsample_bilinear(cx.x(0)?, r, self.align_corners)
        } else {
            fpn_runtime::upsample_nearest(cx.x(0)?, r)
        }
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let node = cx.node;
        let r = match self.scale {
            Some([a, b]) => {
                let (f0, f1) = (f64_lit(a, "scale", node)?, f64_lit(b, "scale", node)?);
                quote!(#rt::Resize::Scale([#f0, #f1]))
            }
            None => {
                let j = *cx
                    .ins
                    .get(1)
                    .ok_or_else(|| GenError::Unsupported(format!("node `{}` lacks its size input", node.name)))?;
                let v = cx.var(j);
                quote!(#rt::Resize::Size([#v.dim().2, #v.dim().3]))
            }
        };
        let x = cx.input(0)?;
        let out = &cx.out;
        let ac = self.align_corners;
        Ok(match cx.into {
            // written straight into its channels of a concat's buffer; the size is read before
            // the buffer is borrowed (a `match` target may be a part of it)
            Some(into) => {
                let rv = quote::format_ident!("{}_size", cx.out);
                cx.write_into(
                    into,
                    quote!(let #rv = #r;),
                    || quote!(#rt::resize_out_shape({ let d = #x.dim(); [d.0, d.1, d.2, d.3] }, #rv)?),
                    TokenStream::new(),
                    |o| {
                        if self.bilinear {
                            quote!(#rt::upsample_bilinear_into(#x, #rv, #ac, #o)?;)
                        } else if cx.blocked() {
                            quote!(#rt::upsample_nearest_blocked_into(#x, #rv, #o)?;)
                        } else {
                            quote!(#rt::upsample_nearest_into(#x, #rv, #o)?;)
                        }
                    },
                )
            }
            None if self.bilinear => quote!(let #out = #rt::upsample_bilinear(#x, #r, #ac)?;),
            None if cx.blocked() => quote!(let #out = #rt::upsample_nearest_blocked(#x, #r)?;),
            None => quote!(let #out = #rt::upsample_nearest(#x, #r)?;),
        })
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        // torch.onnx's `Resize` for `F.interpolate`: nearest is `asymmetric` + `floor`,
        // bilinear `pytorch_half_pixel` (or `align_corners`); a scale stays a scale (PyTorch
        // maps coordinates by the given factor), `match` passes the target sizes
        let x = cx.x(0)?;
        let attrs = if self.bilinear {
            let ctm = if self.align_corners {
                "align_corners"
            } else {
                "pytorch_half_pixel"
            };
            vec![
                attr::string("mode", "linear"),
                attr::string("coordinate_transformation_mode", ctm),
            ]
        } else {
            vec![
                attr::string("mode", "nearest"),
                attr::string("coordinate_transformation_mode", "asymmetric"),
                attr::string("nearest_mode", "floor"),
            ]
        };
        match self.scale {
            Some(sc) => {
                // ONNX scales are f32 and Resize sizes its output as floor(x·scale) with them;
                // PyTorch uses the f64 scale: equal only when the scale is an f32
                if let Some(bad) = sc.iter().find(|&&s| f64::from(s as f32) != s) {
                    return Err(cx.unsupported(
                        format!("its scale {bad} is not a float32, and ONNX `Resize` scales are float32 (output sizes could differ from PyTorch's)"),
                        "use a scale that is exact in float32 (2, 1.5, 0.25, …) or `upsample: {match: node}`".into(),
                    ));
                }
                let scales = cx.floats("scales", &[4], &[1.0, 1.0, sc[0] as f32, sc[1] as f32]);
                cx.last("Resize", &[x.as_str(), "", &scales], attrs);
            }
            None => {
                let t = cx.x(1)?;
                let nc = cx.dims_of(&x, 0, 2);
                let hw = cx.dims_of(&t, 2, 4);
                let sizes = cx.op("Concat", &[&nc, &hw], vec![attr::int("axis", 0)]);
                cx.last("Resize", &[x.as_str(), "", "", &sizes], attrs);
            }
        }
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let x = cx.x(0)?;
        let target = match self.scale {
            Some([h, w]) => format!("scale_factor=({}, {})", py_float(h), py_float(w)),
            None => format!("size={}.shape[-2:]", cx.x(1)?),
        };
        let mode = if self.bilinear {
            format!("mode='bilinear', align_corners={}", py_bool(self.align_corners))
        } else {
            "mode='nearest'".to_string()
        };
        cx.assign(&format!("F.interpolate({x}, {target}, {mode})"));
        Ok(())
    }
}
