//! `max_pool` / `avg_pool`: PyTorch `nn.MaxPool2d` / `nn.AvgPool2d`.
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

use super::{elementwise, EvalCx, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::{Int, Pair, Reader};
use crate::back::rust::{usize_lit, GResult, StmtCx};
use crate::diag::{Code, Diagnostic};
use crate::dim::Dim;
use crate::infer::Shape;
use crate::value::{Key, Value};

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
    /// Dilation (max pool only; default 1).
    pub dilation: Pair,
    /// Ceil mode.
    pub ceil_mode: bool,
    /// Avg pool: count padding in the divisor (default true).
    pub count_include_pad: bool,
}

fn read(r: &mut Reader, key: &Key, v: &Value, is_max: bool) -> Option<PoolArgs> {
    let what = format!("`{}`", key.name);
    let span = key.span;
    let mut m = r.map(v, &what)?;
    let kernel = r.require(&mut m, "kernel", &what).and_then(|x| r.pair(x, "`kernel`"));
    let stride = match m.get("stride") {
        Some(s) => Some(r.pair(s, "`stride`")?),
        None => None,
    };
    let padding = r.pair_or(&mut m, "padding", 0, &what);
    let dilation = if is_max {
        r.pair_or(&mut m, "dilation", 1, &what)
    } else {
        Some(Pair {
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
    let keys: &[&str] = if is_max {
        &["kernel", "stride", "padding", "dilation", "ceil_mode"]
    } else {
        &["kernel", "stride", "padding", "ceil_mode", "count_include_pad"]
    };
    r.finish(m, keys, &what);
    Some(PoolArgs {
        kernel: kernel?,
        stride,
        padding: padding?,
        dilation: dilation?,
        ceil_mode,
        count_include_pad,
    })
}

fn lower(p: &PoolArgs, cx: &mut LowerCx<'_, '_>) -> Option<Pool> {
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
        l.diags.push(
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
        );
        return None;
    }
    Some(Pool {
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode: p.ceil_mode,
        count_include_pad: p.count_include_pad,
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

    fn infer(&self, cx: &mut InferCx<'_>) -> Option<Inferred> {
        let x = cx.ins.first()?.clone();
        let mut out = [Dim::Const(1), Dim::Const(1)];
        for (axis, d) in [&x.h, &x.w].into_iter().enumerate() {
            match rules::pool_axis(d, &self.axis(axis)) {
                Some((o, conds)) => {
                    cx.conds(axis, conds);
                    out[axis] = o;
                }
                None => cx.overflow("the output size"),
            }
        }
        let [h, w] = out;
        let shape = Shape { c: x.c, h, w };
        Some(Inferred {
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
    ) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let p = self.params().ok_or_else(|| fpn_runtime::Error::InvalidParams {
            op: "interp",
            reason: format!("node `{}` has a negative attribute", cx.node.name),
        })?;
        f(cx.x(0)?, &p)
    }

    fn stmt(&self, cx: &StmtCx<'_>, f: TokenStream) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let node = cx.node;
        let [k0, k1] = self.kernel.map(|v| usize_lit(v, "kernel", node));
        let [s0, s1] = self.stride.map(|v| usize_lit(v, "stride", node));
        let [p0, p1] = self.padding.map(|v| usize_lit(v, "padding", node));
        let [d0, d1] = self.dilation.map(|v| usize_lit(v, "dilation", node));
        let (k0, k1, s0, s1, p0, p1, d0, d1) = (k0?, k1?, s0?, s1?, p0?, p1?, d0?, d1?);
        let (ceil, cip) = (self.ceil_mode, self.count_include_pad);
        let x = cx.view(0)?;
        let out = &cx.out;
        Ok(quote! {
            let #out = #rt::#f(#x, &#rt::Pool2dParams {
                kernel: [#k0, #k1],
                stride: [#s0, #s1],
                padding: [#p0, #p1],
                dilation: [#d0, #d1],
                ceil_mode: #ceil,
                count_include_pad: #cip,
            })?;
        })
    }
}

/// The `OpDef` of a pooling op: everything but its keyword, IR variant and runtime call is
/// [`Pool`]'s.
macro_rules! pool_op {
    ($ty:ident, $kw:literal, max: $max:expr, $f:ident) => {
        impl OpDef for $ty {
            const KEYWORDS: &'static [&'static str] = &[$kw];
            type Args = PoolArgs;

            fn read(r: &mut Reader, key: &Key, v: &Value) -> Option<PoolArgs> {
                read(r, key, v, $max)
            }
            fn lower(args: &PoolArgs, cx: &mut LowerCx<'_, '_>) -> Option<Lowered> {
                let p = lower(args, cx)?;
                Some(Lowered {
                    op: super::Op::$ty($ty(p)),
                    inputs: vec![cx.input?],
                    has_params: false,
                })
            }
            fn kind(&self) -> &'static str {
                $kw
            }
            fn infer(&self, cx: &mut InferCx<'_>) -> Option<Inferred> {
                self.0.infer(cx)
            }
            fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
                self.0.eval_with(cx, fpn_runtime::$f)
            }
            fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
                self.0.stmt(cx, quote!($f))
            }
        }
    };
}

pool_op!(MaxPool, "max_pool", max: true, max_pool2d);
pool_op!(AvgPool, "avg_pool", max: false, avg_pool2d);
