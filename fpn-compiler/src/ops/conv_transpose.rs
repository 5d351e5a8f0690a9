//! `conv_transpose`: PyTorch `nn.ConvTranspose2d` (zero padding).
//!
//! Shape rule (per axis, [`fpn_runtime::rules::conv_transpose_axis`]):
//! `out = (x − 1)·s − 2p + d·(k − 1) + output_padding + 1`, defined when `out ≥ 1`. Parameters
//! are checked by [`fpn_runtime::rules::validate_conv_transpose`]: `output_padding` smaller
//! than the stride or the dilation (E0230), groups dividing the output channels (E0220) and the
//! input channels (E0301). Parameters: `weight [in, out/groups, kh, kw]` (PyTorch's transposed
//! layout) and, unless `bias: false`, `bias [out]`; kaiming-uniform init with PyTorch's fan-in
//! of a transposed conv, `out/groups·kh·kw`.

use fpn_runtime::rules::{self, ConvTransposeAxis};
use fpn_runtime::ConvTranspose2dParams;
use proc_macro2::TokenStream;
use quote::quote;

use super::conv::{check_input_groups, weight_and_bias};
use super::{elementwise, EvalCx, FieldCx, FieldKind, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::{Int, Pair, Reader};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{field_ident, usize_lit, usize_pair_lit, GResult, StmtCx};
use crate::back::torch::{py_bool, py_pair, TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic};
use crate::dim::Dim;
use crate::infer::Shape;
use crate::span::Span;
use crate::value::{Key, Value};

/// A transposed convolution (PyTorch `nn.ConvTranspose2d`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose {
    /// Output channels.
    pub out: i64,
    /// Kernel `[h, w]`.
    pub kernel: [i64; 2],
    /// Stride `[h, w]`.
    pub stride: [i64; 2],
    /// Padding `[h, w]`.
    pub padding: [i64; 2],
    /// Output padding `[h, w]`.
    pub output_padding: [i64; 2],
    /// Dilation `[h, w]`.
    pub dilation: [i64; 2],
    /// Groups.
    pub groups: i64,
    /// Has a bias.
    pub bias: bool,
}

/// `conv_transpose:` attributes as written.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTransposeArgs {
    /// Output channels.
    pub out: Int,
    /// Kernel size.
    pub kernel: Pair,
    /// Stride (default 1).
    pub stride: Pair,
    /// Padding (default 0).
    pub padding: Pair,
    /// Output padding (default 0).
    pub output_padding: Pair,
    /// Dilation (default 1).
    pub dilation: Pair,
    /// Groups (default 1).
    pub groups: Int,
    /// Bias (default true).
    pub bias: bool,
    /// Where the op is.
    pub span: Span,
}

const KEYS: &[&str] = &[
    "out",
    "kernel",
    "stride",
    "padding",
    "output_padding",
    "dilation",
    "groups",
    "bias",
];

impl ConvTranspose {
    /// Axis `a` as the runtime's rule sees it.
    pub fn axis(&self, a: usize) -> ConvTransposeAxis {
        ConvTransposeAxis {
            kernel: self.kernel[a],
            stride: self.stride[a],
            pad: self.padding[a],
            output_padding: self.output_padding[a],
            dilation: self.dilation[a],
        }
    }

    /// The runtime parameters; `None` for a negative attribute (lowering never produces one).
    pub fn params(&self) -> Option<ConvTranspose2dParams> {
        let u = |v: [i64; 2]| Some([usize::try_from(v[0]).ok()?, usize::try_from(v[1]).ok()?]);
        Some(ConvTranspose2dParams {
            stride: u(self.stride)?,
            padding: u(self.padding)?,
            output_padding: u(self.output_padding)?,
            dilation: u(self.dilation)?,
            groups: usize::try_from(self.groups).ok()?,
        })
    }
}

impl OpDef for ConvTranspose {
    const KEYWORDS: &'static [&'static str] = &["conv_transpose"];
    type Args = ConvTransposeArgs;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<ConvTransposeArgs> {
        let what = format!("`{}`", key.name);
        let mut m = r.map(v, &what)?;
        let out = r.require(&mut m, "out", &what).and_then(|o| r.int(o, "`out`"));
        let kernel = r.require(&mut m, "kernel", &what).and_then(|k| r.pair(k, "`kernel`"));
        let stride = r.pair_or(&mut m, "stride", 1, &what);
        let padding = r.pair_or(&mut m, "padding", 0, &what);
        let output_padding = r.pair_or(&mut m, "output_padding", 0, &what);
        let dilation = r.pair_or(&mut m, "dilation", 1, &what);
        let groups = match m.get("groups") {
            Some(g) => r.int(g, "`groups`"),
            None => Ok(Int::lit(1, m.span)),
        };
        let bias = match m.get("bias") {
            Some(b) => r.boolean(b, "`bias`"),
            None => Ok(true),
        };
        let span = m.span;
        r.finish(m, KEYS, &what);
        Ok(ConvTransposeArgs {
            out: out?,
            kernel: kernel?,
            stride: stride?,
            padding: padding?,
            output_padding: output_padding?,
            dilation: dilation?,
            groups: groups?,
            bias: bias?,
            span,
        })
    }

    fn lower(c: &ConvTransposeArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let env = cx.env;
        let l = &mut *cx.l;
        let mut pair = |p: &Pair, what: &str, min: i64| -> Checked<[i64; 2]> {
            let h = l.eval_pos(&p.h, env, what, min);
            let w = l.eval_pos(&p.w, env, what, min);
            Ok([h?, w?])
        };
        let kernel = pair(&c.kernel, "a kernel size", 1);
        let stride = pair(&c.stride, "a stride", 1);
        let padding = pair(&c.padding, "a padding", 0);
        let output_padding = pair(&c.output_padding, "an output padding", 0);
        let dilation = pair(&c.dilation, "a dilation", 1);
        let out = l.eval_pos(&c.out, env, "the output channels", 1);
        let groups = l.eval_pos(&c.groups, env, "groups", 1);
        let (kernel, stride, padding, output_padding, dilation, out, groups) =
            (kernel?, stride?, padding?, output_padding?, dilation?, out?, groups?);
        for a in 0..2 {
            if output_padding[a] >= stride[a] && output_padding[a] >= dilation[a] {
                return Err(l.err(
                    Diagnostic::error(
                        Code::E0230,
                        c.output_padding.h.span,
                        format!(
                            "output padding {} is not smaller than the stride {} or the dilation {}",
                            output_padding[a], stride[a], dilation[a]
                        ),
                    )
                    .with_label("too much output padding")
                    .with_note("PyTorch: output padding must be smaller than either stride or dilation")
                    .with_help(format!(
                        "use output_padding < {} (it only picks among the sizes a stride of {} maps to the same input size)",
                        stride[a].max(dilation[a]),
                        stride[a]
                    )),
                ));
            }
        }
        if out % groups != 0 {
            return Err(l.err(
                Diagnostic::error(
                    Code::E0220,
                    c.groups.span,
                    format!("groups {groups} do not divide the {out} output channels"),
                )
                .with_label("must divide `out`")
                .with_help("choose groups that divide both the input and the output channels"),
            ));
        }
        let op = super::Op::ConvTranspose(ConvTranspose {
            out,
            kernel,
            stride,
            padding,
            output_padding,
            dilation,
            groups,
            bias: c.bias,
        });
        cx.on_input(op, true)
    }

    fn kind(&self) -> &'static str {
        "conv_transpose"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        check_input_groups(cx, &x, self.groups, self.out);
        let out = cx.spatial(&x, [Dim::Const(1), Dim::Const(1)], |axis, d| {
            rules::conv_transpose_axis(d, &self.axis(axis)).ok_or("the output size")
        });
        let cout_g = self.out / self.groups.max(1);
        let params = weight_and_bias([x.c, cout_g, self.kernel[0], self.kernel[1]], self.out, self.bias);
        // every input pixel meets every weight of its group once
        let macs = (x.c / self.groups.max(1))
            .checked_mul(self.out)
            .and_then(|m| m.checked_mul(self.kernel[0]))
            .and_then(|m| m.checked_mul(self.kernel[1]))
            .and_then(|m| m.checked_mul(2));
        let flops = macs.and_then(|m| elementwise(&Shape { c: 1, ..x.clone() }, m));
        let [h, w] = out;
        Ok(Inferred {
            shape: Shape { c: self.out, h, w },
            params,
            flops,
        })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let w = cx.param4("weight")?;
        let b = if self.bias { Some(cx.param1("bias")?) } else { None };
        let p = self.params().ok_or_else(|| cx.negative("attribute"))?;
        fpn_runtime::conv_transpose2d(cx.x(0)?, w, b, &p)
    }

    fn fields(&self, cx: &mut FieldCx<'_>) -> GResult<()> {
        let gen = cx.gen;
        let Some(p) = cx.new_prefix()? else {
            return Ok(());
        };
        let rt = &gen.rt;
        let id = field_ident(p)?;
        cx.param_field(p, "weight", quote!(#rt::Tensor), |n| {
            format!("Transposed conv weight `{n}`.")
        })?;
        if self.bias {
            let ty = quote!(#rt::ndarray::Array1<f32>);
            cx.param_field(p, "bias", ty, |n| format!("Transposed conv bias `{n}`."))?;
        }
        cx.register(p, id, FieldKind::Tensor);
        Ok(())
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let (p, _, _) = cx.field("conv_transpose", Some)?;
        let node = cx.node;
        let wid = field_ident(&format!("{p}.weight"))?;
        let bias = if self.bias {
            let bid = field_ident(&format!("{p}.bias"))?;
            quote!(::core::option::Option::Some(self.#bid.view()))
        } else {
            quote!(::core::option::Option::None)
        };
        let (s, pd, op, d) = (
            usize_pair_lit(self.stride, "stride", node)?,
            usize_pair_lit(self.padding, "padding", node)?,
            usize_pair_lit(self.output_padding, "output_padding", node)?,
            usize_pair_lit(self.dilation, "dilation", node)?,
        );
        let g = usize_lit(self.groups, "groups", node)?;
        let x = cx.view(0)?;
        let out = &cx.out;
        Ok(quote! {
            let #out = #rt::conv_transpose2d(#x, self.#wid.view(), #bias, &#rt::ConvTranspose2dParams {
                stride: #s,
                padding: #pd,
                output_padding: #op,
                dilation: #d,
                groups: #g,
            })?;
        })
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        // ONNX's weight layout is PyTorch's `[in, out/groups, kh, kw]`
        let [ph, pw] = self.padding;
        let attrs = vec![
            attr::ints("kernel_shape", &self.kernel),
            attr::ints("strides", &self.stride),
            attr::ints("pads", &[ph, pw, ph, pw]),
            attr::ints("output_padding", &self.output_padding),
            attr::ints("dilations", &self.dilation),
            attr::int("group", self.groups),
        ];
        cx.weighted("ConvTranspose", cx.x(0)?, self.bias, attrs)
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let (x, cin) = (cx.x(0)?, cx.cin()?);
        let ctor = format!(
            "nn.ConvTranspose2d({cin}, {}, {}, stride={}, padding={}, output_padding={}, groups={}, bias={}, dilation={})",
            self.out,
            py_pair(self.kernel),
            py_pair(self.stride),
            py_pair(self.padding),
            py_pair(self.output_padding),
            self.groups,
            py_bool(self.bias),
            py_pair(self.dilation)
        );
        cx.call_module(ctor, &x)
    }
}
