//! `max_pool` / `avg_pool`: PyTorch `nn.MaxPool2d` / `nn.AvgPool2d`; `max_pool: 2` (or a
//! block parameter, or `[kh, kw]`) is the shorthand for `{kernel: 2}` (stride = kernel).
//! `padding: [top, bottom, left, right]` pads explicitly first, as
//! `F.pad(x, (l, r, t, b), value=-inf)` (max) or `value=0` (average: the zeros are then counted
//! whatever `count_include_pad` says), then pools without padding; the size rule is
//! [`fpn_runtime::rules::pad_axis`] then `pool_axis`, with no "padding ≤ kernel/2" limit.
//! `padding: tf_same` is TensorFlow's `SAME` (timm's `MaxPool2dSame` / `AvgPool2dSame`): the same
//! explicit padding (−∞ or 0), computed from the input size on every call
//! ([`fpn_runtime::same_dynamic_padding`]) when the stride is above 1, fixed at stride 1; the
//! size rule is then [`fpn_runtime::rules::same_dynamic_axis`], `ceil(x/s)`.
//!
//! Shape rule (per axis, [`fpn_runtime::rules::pool_axis`], PyTorch's `pooling_output_shape`):
//! `floor` or `ceil` of `(x + 2p − d·(k−1) − 1)/s + 1`, in ceil mode at most `ceil((x + p)/s)`;
//! defined when the output is at least 1. Parameters are checked by
//! [`fpn_runtime::rules::validate_pool`] (padding at most half the undilated kernel). No
//! weights.

use fpn_runtime::rules::{self, PoolAxis};
use fpn_runtime::Pool2dParams;
use proc_macro2::TokenStream;
use quote::quote;

/// The keys of `max_pool: {…}`.
pub(crate) const MAX_POOL_KEYS: &[&str] = &["kernel", "stride", "padding", "dilation", "ceil_mode"];
/// The keys of `avg_pool: {…}`.
pub(crate) const AVG_POOL_KEYS: &[&str] = &["kernel", "stride", "padding", "ceil_mode", "count_include_pad"];

use super::{elementwise, EvalCx, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::{Int, Pair, Reader};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{usize_lit, GResult, StmtCx};
use crate::back::torch::{py_bool, py_pair, TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic};
use crate::dim::Dim;
use crate::infer::Shape;
use crate::span::Span;
use crate::value::{Key, Value, ValueKind};

/// A pooling window (PyTorch `MaxPool2d` / `AvgPool2d`).
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// Kernel `[h, w]`.
    pub kernel: [i64; 2],
    /// Stride `[h, w]`.
    pub stride: [i64; 2],
    /// Symmetric padding `[h, w]`.
    pub padding: [i64; 2],
    /// Dilation `[h, w]` (max pool).
    pub dilation: [i64; 2],
    /// Ceil mode.
    pub ceil_mode: bool,
    /// Avg pool: include padding in the divisor.
    pub count_include_pad: bool,
    /// `padding: [top, bottom, left, right]`: padded explicitly before the pool (`F.pad` with
    /// −∞ for max pooling, 0 for average pooling, which then counts those zeros whatever
    /// `count_include_pad` says), whose own `padding` is then 0.
    pub explicit_pad: Option<[i64; 4]>,
    /// `padding: tf_same` with a stride above 1: an explicit padding like `explicit_pad`, but
    /// computed per call from the input size (TensorFlow's `SAME`); `padding` is then 0.
    pub tf_same: bool,
}

/// Max pooling.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxPool(pub Pool);

/// Average pooling.
#[derive(Clone, Debug, PartialEq)]
pub struct AvgPool(pub Pool);

/// Pooling attributes as written.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolArgs {
    /// Kernel.
    pub kernel: Pair,
    /// Stride (default kernel).
    pub stride: Option<Pair>,
    /// Padding (default 0).
    pub padding: Pair,
    /// `padding: [top, bottom, left, right]` (padded explicitly, see [`Pool::explicit_pad`]).
    pub padding4: Option<[Int; 4]>,
    /// `padding: tf_same` (see [`Pool::tf_same`]).
    pub tf_same: bool,
    /// Dilation (max pool only; default 1).
    pub dilation: Pair,
    /// Ceil mode.
    pub ceil_mode: bool,
    /// Avg pool: count padding in the divisor (default true).
    pub count_include_pad: bool,
    /// Where the arguments are.
    pub span: Span,
}

fn read(r: &mut Reader, key: &Key, v: &Value, is_max: bool) -> Checked<PoolArgs> {
    let what = format!("`{}`", key.name);
    let span = key.span;
    if let ValueKind::Int(_) | ValueKind::Str(_) | ValueKind::Seq(_) = v.kind {
        // shorthand `max_pool: 2` / `max_pool: [2, 1]`: kernel = stride, no padding
        let one = || Int::lit(1, span);
        let zero = || Int::lit(0, span);
        return Ok(PoolArgs {
            kernel: r.pair(v, "`kernel`")?,
            stride: None,
            padding: Pair { h: zero(), w: zero() },
            padding4: None,
            tf_same: false,
            dilation: Pair { h: one(), w: one() },
            ceil_mode: false,
            count_include_pad: true,
            span: v.span,
        });
    }
    let mut m = r.map(v, &what)?;
    let kernel = r.require(&mut m, "kernel", &what).and_then(|x| r.pair(x, "`kernel`"));
    let stride = m.get("stride").map(|s| r.pair(s, "`stride`")).transpose();
    let zero = || Pair {
        h: Int::lit(0, span),
        w: Int::lit(0, span),
    };
    let mut tf_same = false;
    let (padding, padding4) = match m.get("padding") {
        Some(
            p @ Value {
                kind: ValueKind::Str(s),
                ..
            },
        ) => {
            if s == super::conv::TF_SAME {
                tf_same = true;
                (Ok(zero()), None)
            } else {
                (
                    Err(r.err(super::conv::padding_name_error(p, s, &[super::conv::TF_SAME]))),
                    None,
                )
            }
        }
        Some(Value {
            kind: ValueKind::Seq(items),
            ..
        }) if items.len() == 4 => {
            let v = items
                .iter()
                .map(|i| r.int(i, "`padding`"))
                .collect::<Checked<Vec<Int>>>()?;
            (
                Ok(zero()),
                Some([v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone()]),
            )
        }
        Some(p) => (r.pair(p, "`padding`"), None),
        None => (Ok(zero()), None),
    };
    let dilation = if is_max {
        r.pair_or(&mut m, "dilation", 1, &what)
    } else {
        Ok(Pair {
            h: Int::lit(1, span),
            w: Int::lit(1, span),
        })
    };
    let ceil_mode = match m.get("ceil_mode") {
        Some(b) => r.boolean(b, "`ceil_mode`")?,
        None => false,
    };
    let count_include_pad = match (is_max, m.get("count_include_pad")) {
        (false, Some(b)) => r.boolean(b, "`count_include_pad`")?,
        _ => true,
    };
    let keys = if is_max { MAX_POOL_KEYS } else { AVG_POOL_KEYS };
    let span = m.span;
    r.finish(m, keys, &what);
    Ok(PoolArgs {
        kernel: kernel?,
        stride: stride?,
        padding: padding?,
        padding4,
        tf_same,
        dilation: dilation?,
        ceil_mode,
        count_include_pad,
        span,
    })
}

fn lower(p: &PoolArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Pool> {
    let env = cx.env;
    let l = &mut *cx.l;
    let kernel = [
        l.eval_pos(&p.kernel.h, env, "a pool kernel", 1)?,
        l.eval_pos(&p.kernel.w, env, "a pool kernel", 1)?,
    ];
    let stride = match &p.stride {
        Some(s) => [
            l.eval_pos(&s.h, env, "a pool stride", 1)?,
            l.eval_pos(&s.w, env, "a pool stride", 1)?,
        ],
        None => kernel,
    };
    let padding = [
        l.eval_pos(&p.padding.h, env, "a pool padding", 0)?,
        l.eval_pos(&p.padding.w, env, "a pool padding", 0)?,
    ];
    let dilation = [
        l.eval_pos(&p.dilation.h, env, "a pool dilation", 1)?,
        l.eval_pos(&p.dilation.w, env, "a pool dilation", 1)?,
    ];
    if let Err(reason) = rules::validate_pool(kernel, stride, padding, dilation) {
        let a = usize::from(padding[0] <= kernel[0] / 2);
        return Err(l.err(
            Diagnostic::error(
                Code::E0216,
                p.padding.h.span,
                format!("pool padding {} is more than half the kernel {}", padding[a], kernel[a]),
            )
            .with_label("too much padding")
            .with_note(format!("PyTorch: {reason}"))
            .with_help(format!(
                "PyTorch requires padding ≤ kernel/2 (the kernel without dilation); use padding ≤ {}",
                kernel[a] / 2
            )),
        ));
    }
    if p.tf_same && p.ceil_mode {
        return Err(l.err(super::conv::tf_same_conflict(
            p.span,
            "`ceil_mode: true`",
            "TensorFlow's `SAME` pads so that the pool gives `ceil(x/s)` outputs already; remove `ceil_mode`",
        )));
    }
    let tf_same_fixed = if p.tf_same {
        match super::conv::tf_same_fixed(kernel, stride, dilation) {
            Some(q) => Some(q),
            None if stride == [1, 1] => {
                return Err(l.err(crate::lower::too_large(
                    p.kernel.h.span,
                    "the dilated pool window",
                    i64::MAX,
                )))
            }
            None => None,
        }
    } else {
        None
    };
    let explicit_pad = match &p.padding4 {
        _ if tf_same_fixed.is_some() => tf_same_fixed,
        Some(q) => {
            let mut v = [0i64; 4];
            for (slot, i) in v.iter_mut().zip(q) {
                *slot = l.eval_pos(i, env, "a pool padding", 0)?;
            }
            Some(v)
        }
        None => None,
    };
    Ok(Pool {
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode: p.ceil_mode,
        count_include_pad: p.count_include_pad,
        tf_same: p.tf_same && tf_same_fixed.is_none(),
        explicit_pad,
    })
}

impl Pool {
    /// Axis `a` as the runtime's rule sees it.
    pub fn axis(&self, a: usize) -> PoolAxis {
        PoolAxis {
            kernel: self.kernel[a],
            stride: self.stride[a],
            pad: self.padding[a],
            dilation: self.dilation[a],
            ceil_mode: self.ceil_mode,
        }
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        let [h, w] = cx.spatial(&x, [Dim::Const(1), Dim::Const(1)], |axis, d| {
            if self.tf_same {
                return rules::same_dynamic_axis(d, self.stride[axis]).ok_or("the output size");
            }
            let padded = match self.explicit_pad {
                Some(q) => {
                    rules::pad_axis(d, [q[2 * axis], q[2 * axis + 1]], fpn_runtime::PaddingMode::Zeros)
                        .ok_or("the padded size")?
                        .0
                }
                None => d.clone(),
            };
            rules::pool_axis(&padded, &self.axis(axis)).ok_or("the output size")
        });
        let shape = Shape { c: x.c, h, w };
        Ok(Inferred {
            flops: elementwise(&shape, self.kernel[0].saturating_mul(self.kernel[1])),
            shape,
            params: Vec::new(),
        })
    }

    /// The runtime parameters.
    pub fn params(&self) -> Option<Pool2dParams> {
        let u = |v: [i64; 2]| Some([usize::try_from(v[0]).ok()?, usize::try_from(v[1]).ok()?]);
        Some(Pool2dParams {
            kernel: u(self.kernel)?,
            stride: u(self.stride)?,
            padding: u(self.padding)?,
            dilation: u(self.dilation)?,
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        })
    }

    fn eval_with(
        &self,
        cx: &EvalCx<'_, '_>,
        f: fn(fpn_runtime::ndarray::ArrayView4<f32>, &Pool2dParams) -> fpn_runtime::Result<fpn_runtime::Tensor>,
        is_max: bool,
    ) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let p = self.params().ok_or_else(|| cx.negative("attribute"))?;
        let x = cx.x(0)?;
        let pad = if self.tf_same {
            let k = self.kernel.map(|v| usize::try_from(v).unwrap_or(0));
            Some(fpn_runtime::same_dynamic_padding(x, k, p.stride, p.dilation)?)
        } else {
            match self.explicit_pad {
                Some(q) => {
                    let u = |v: i64| usize::try_from(v).map_err(|_| cx.negative("padding"));
                    Some([u(q[0])?, u(q[1])?, u(q[2])?, u(q[3])?])
                }
                None => None,
            }
        };
        match pad {
            Some(pad) => {
                let pp = fpn_runtime::Pad2dParams {
                    pad,
                    mode: fpn_runtime::PaddingMode::Zeros,
                    value: pad_fill(is_max),
                };
                f(fpn_runtime::pad(x, &pp)?.view(), &p)
            }
            None => f(x, &p),
        }
    }

    /// ONNX `MaxPool` / `AveragePool` (after a `Pad` with −∞ or 0 for an explicit padding).
    fn onnx(&self, cx: &mut OnnxCx<'_>, is_max: bool) -> EResult<()> {
        let mut x = cx.x(0)?;
        if let Some(q) = self.explicit_pad {
            x = cx.pad(&x, q, fpn_runtime::PaddingMode::Zeros, pad_fill(is_max))?;
        }
        if self.tf_same {
            x = cx.pad_same_dynamic(&x, self.kernel, self.stride, self.dilation, pad_fill(is_max));
        }
        let [ph, pw] = self.padding;
        let mut attrs = vec![
            attr::ints("kernel_shape", &self.kernel),
            attr::ints("strides", &self.stride),
            attr::ints("pads", &[ph, pw, ph, pw]),
            attr::int("ceil_mode", i64::from(self.ceil_mode)),
        ];
        if is_max {
            attrs.push(attr::ints("dilations", &self.dilation));
        } else {
            attrs.push(attr::int("count_include_pad", i64::from(self.count_include_pad)));
            if self.dilation != [1, 1] {
                cx.need_opset(19, "a dilated average pool (`AveragePool` dilations)")?;
                attrs.push(attr::ints("dilations", &self.dilation));
            }
        }
        cx.last(if is_max { "MaxPool" } else { "AveragePool" }, &[&x], attrs);
        Ok(())
    }

    /// `F.max_pool2d` / `F.avg_pool2d` (after an `F.pad` with −∞ or 0 for an explicit padding).
    fn torch(&self, cx: &mut TorchCx<'_>, is_max: bool) -> TResult<()> {
        let mut x = cx.x(0)?;
        let fill = if is_max { "float('-inf')" } else { "0.0" };
        if let Some([t, b, l, r]) = self.explicit_pad {
            x = format!("F.pad({x}, ({l}, {r}, {t}, {b}), value={fill})");
        }
        if self.tf_same {
            x = cx.pad_same(&x, self.kernel, self.stride, self.dilation, fill);
        }
        let (k, s, p) = (py_pair(self.kernel), py_pair(self.stride), py_pair(self.padding));
        let ceil = py_bool(self.ceil_mode);
        let e = if is_max {
            format!(
                "F.max_pool2d({x}, {k}, {s}, {p}, {}, ceil_mode={ceil})",
                py_pair(self.dilation)
            )
        } else if self.dilation == [1, 1] {
            let cip = py_bool(self.count_include_pad);
            format!("F.avg_pool2d({x}, {k}, {s}, {p}, ceil_mode={ceil}, count_include_pad={cip})")
        } else {
            return Err(cx.unsupported("PyTorch's average pool has no dilation".into()));
        };
        cx.assign(&e);
        Ok(())
    }

    fn stmt(&self, cx: &StmtCx<'_>, f: TokenStream, is_max: bool) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let node = cx.node;
        let [k0, k1] = self.kernel.map(|v| usize_lit(v, "kernel", node));
        let [s0, s1] = self.stride.map(|v| usize_lit(v, "stride", node));
        let [p0, p1] = self.padding.map(|v| usize_lit(v, "padding", node));
        let [d0, d1] = self.dilation.map(|v| usize_lit(v, "dilation", node));
        let (k0, k1, s0, s1, p0, p1, d0, d1) = (k0?, k1?, s0?, s1?, p0?, p1?, d0?, d1?);
        let (ceil, cip) = (self.ceil_mode, self.count_include_pad);
        let pad = match self.explicit_pad {
            Some(q) => {
                let [a, b, c, d] = q.map(|v| usize_lit(v, "padding", node));
                let (a, b, c, d) = (a?, b?, c?, d?);
                Some(quote!([#a, #b, #c, #d]))
            }
            None if self.tf_same => {
                let x = cx.input(0)?;
                Some(quote!(#rt::same_dynamic_padding(#x, [#k0, #k1], [#s0, #s1], [#d0, #d1])?))
            }
            None => None,
        };
        let (pre, x) = match pad {
            Some(pad) => {
                let value = if is_max {
                    quote!(::core::primitive::f32::NEG_INFINITY)
                } else {
                    quote!(0.0f32)
                };
                let x = cx.input(0)?;
                let padded = quote::format_ident!("{}_padded", cx.out);
                (
                    quote! {
                        let #padded = #rt::pad(#x, &#rt::Pad2dParams {
                            pad: #pad,
                            mode: #rt::PaddingMode::Zeros,
                            value: #value,
                        })?;
                    },
                    quote!(#padded.view()),
                )
            }
            None => (TokenStream::new(), cx.input(0)?),
        };
        let out = &cx.out;
        let params = quote! {
            &#rt::Pool2dParams {
                kernel: [#k0, #k1],
                stride: [#s0, #s1],
                padding: [#p0, #p1],
                dilation: [#d0, #d1],
                ceil_mode: #ceil,
                count_include_pad: #cip,
            }
        };
        // on blocked values (`Gen::plan_layout`: max pools without explicit padding)
        let f = if cx.blocked() {
            if !is_max || !pre.is_empty() {
                return Err(crate::back::rust::GenError::Unsupported(format!(
                    "pool `{}` is blocked but has no blocked form",
                    node.name
                )));
            }
            quote!(max_pool2d_blocked)
        } else {
            f
        };
        Ok(match cx.into {
            // written straight into its channels of a concat's buffer
            Some(into) => {
                let f_into = quote::format_ident!("{}_into", f.to_string());
                cx.write_into(
                    into,
                    TokenStream::new(),
                    || quote!(#rt::pool2d_out_shape({ let d = #x.dim(); [d.0, d.1, d.2, d.3] }, #params)?),
                    pre,
                    |o| quote!(#rt::#f_into(#x, #params, #o)?;),
                )
            }
            None => quote! {
                #pre
                let #out = #rt::#f(#x, #params)?;
            },
        })
    }
}

/// The fill of a pool's explicit padding: −∞ for max pooling (timm's `MaxPool2dSame`), 0 for
/// average pooling (`AvgPool2dSame`, which then averages those zeros).
fn pad_fill(is_max: bool) -> f32 {
    if is_max {
        f32::NEG_INFINITY
    } else {
        0.0
    }
}

/// The `OpDef` of a pooling op: everything but its keyword, IR variant and runtime call is
/// [`Pool`]'s.
macro_rules! pool_op {
    ($ty:ident, $kw:literal, max: $max:expr, $f:ident) => {
        impl OpDef for $ty {
            const KEYWORDS: &'static [&'static str] = &[$kw];
            type Args = PoolArgs;

            fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<PoolArgs> {
                read(r, key, v, $max)
            }
            fn lower(args: &PoolArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
                let p = lower(args, cx)?;
                cx.on_input(super::Op::$ty($ty(p)), false)
            }
            fn kind(&self) -> &'static str {
                $kw
            }
            fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
                self.0.infer(cx)
            }
            fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
                self.0.eval_with(cx, fpn_runtime::$f, $max)
            }
            fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
                self.0.stmt(cx, quote!($f), $max)
            }
            fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
                self.0.onnx(cx, $max)
            }
            fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
                self.0.torch(cx, $max)
            }
        }
    };
}

pool_op!(MaxPool, "max_pool", max: true, max_pool2d);
pool_op!(AvgPool, "avg_pool", max: false, avg_pool2d);
