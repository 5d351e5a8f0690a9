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

use super::conv::{check_input_groups, lower_args, read_args, weight_and_bias, Conv, ConvArgs, PadSpec};
use super::{elementwise, EvalCx, FieldCx, FieldKind, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::{Pair, Reader};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{field_ident, usize_lit, usize_pair_lit, GResult, StmtCx};
use crate::back::torch::{py_bool, py_pair, TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic};
use crate::dim::Dim;
use crate::infer::Shape;
use crate::value::{Key, Value};
use fpn_runtime::PaddingMode;

/// A transposed convolution (PyTorch `nn.ConvTranspose2d`): the adjoint of the [`Conv`] with the
/// same attributes (`conv.out` is this op's output channels; padding symmetric, mode zeros),
/// plus the output padding.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose {
    /// The convolution's attributes.
    pub conv: Conv,
    /// Output padding `[h, w]`.
    pub output_padding: [i64; 2],
}

/// `conv_transpose:` attributes as written: a conv's (read by the conv reader) and the output
/// padding.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTransposeArgs {
    /// The conv attributes (`padding` is `None` or symmetric, `padding_mode` is `None`).
    pub conv: ConvArgs,
    /// Output padding (default 0).
    pub output_padding: Pair,
}

pub(crate) const KEYS: &[&str] = &[
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
        let c = &self.conv;
        ConvTransposeAxis {
            kernel: c.kernel[a],
            stride: c.stride[a],
            pad: c.padding[a * 2],
            output_padding: self.output_padding[a],
            dilation: c.dilation[a],
        }
    }

    /// The runtime parameters; `None` for a negative attribute (lowering never produces one).
    pub fn params(&self) -> Option<ConvTranspose2dParams> {
        let u = |v: [i64; 2]| Some([usize::try_from(v[0]).ok()?, usize::try_from(v[1]).ok()?]);
        let c = &self.conv;
        Some(ConvTranspose2dParams {
            stride: u(c.stride)?,
            padding: u([c.padding[0], c.padding[2]])?,
            output_padding: u(self.output_padding)?,
            dilation: u(c.dilation)?,
            groups: usize::try_from(c.groups).ok()?,
        })
    }
}

impl OpDef for ConvTranspose {
    const KEYWORDS: &'static [&'static str] = &["conv_transpose"];
    type Args = ConvTransposeArgs;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<ConvTransposeArgs> {
        let what = format!("`{}`", key.name);
        let (conv, rest) = read_args(r, v, &what, true)?;
        let Some(mut m) = rest else {
            return Err(r.err(crate::diag::internal(v.span, "the conv reader kept no keys")));
        };
        let output_padding = r.pair_or(&mut m, "output_padding", 0, &what);
        // PyTorch's ConvTranspose2d pads symmetrically with zeros: no `same`, no four paddings,
        // no padding mode
        let padding = m.entries.iter().find(|(k, _)| k.name == "padding");
        if let (Some(PadSpec::Same | PadSpec::Explicit(_)), Some((_, pv))) = (&conv.padding, padding) {
            let _ = r.err(
                crate::ast::type_error(pv, "a number or `[h, w]`", "`padding`")
                    .with_help("PyTorch's ConvTranspose2d pads both sides alike: `padding: 1` or `padding: [1, 2]`"),
            );
        }
        if let Some((k, _)) = m.entries.iter().find(|(k, _)| k.name == "padding_mode") {
            let _ = r.err(crate::ast::unknown_key(
                k,
                &what,
                "PyTorch's ConvTranspose2d pads with zeros only; remove `padding_mode`".to_string(),
            ));
        }
        r.finish(m, KEYS, &what);
        Ok(ConvTransposeArgs {
            conv,
            output_padding: output_padding?,
        })
    }

    fn lower(c: &ConvTransposeArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let mut conv = lower_args(&c.conv, false, cx)?;
        conv.mode = PaddingMode::Zeros; // not the spec's `defaults.padding_mode`: convs only
        let env = cx.env;
        let l = &mut *cx.l;
        let output_padding = [
            l.eval_pos(&c.output_padding.h, env, "an output padding", 0)?,
            l.eval_pos(&c.output_padding.w, env, "an output padding", 0)?,
        ];
        let (stride, dilation) = (conv.stride, conv.dilation);
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
        let op = super::Op::ConvTranspose(ConvTranspose { conv, output_padding });
        cx.on_input(op, true)
    }

    fn kind(&self) -> &'static str {
        "conv_transpose"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        check_input_groups(cx, &x, self.conv.groups, self.conv.out);
        let out = cx.spatial(&x, [Dim::Const(1), Dim::Const(1)], |axis, d| {
            rules::conv_transpose_axis(d, &self.axis(axis)).ok_or("the output size")
        });
        let cout_g = self.conv.out / self.conv.groups.max(1);
        let params = weight_and_bias(
            [x.c, cout_g, self.conv.kernel[0], self.conv.kernel[1]],
            self.conv.out,
            self.conv.bias,
        );
        // every input pixel meets every weight of its group once
        let macs = (x.c / self.conv.groups.max(1))
            .checked_mul(self.conv.out)
            .and_then(|m| m.checked_mul(self.conv.kernel[0]))
            .and_then(|m| m.checked_mul(self.conv.kernel[1]))
            .and_then(|m| m.checked_mul(2));
        let flops = macs.and_then(|m| elementwise(&Shape { c: 1, ..x.clone() }, m));
        let [h, w] = out;
        Ok(Inferred {
            shape: Shape { c: self.conv.out, h, w },
            params,
            flops,
        })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let w = cx.param4("weight")?;
        let b = if self.conv.bias { Some(cx.param1("bias")?) } else { None };
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
        if self.conv.bias {
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
        let bias = if self.conv.bias {
            let bid = field_ident(&format!("{p}.bias"))?;
            quote!(::core::option::Option::Some(self.#bid.view()))
        } else {
            quote!(::core::option::Option::None)
        };
        let (s, pd, op, d) = (
            usize_pair_lit(self.conv.stride, "stride", node)?,
            usize_pair_lit([self.conv.padding[0], self.conv.padding[2]], "padding", node)?,
            usize_pair_lit(self.output_padding, "output_padding", node)?,
            usize_pair_lit(self.conv.dilation, "dilation", node)?,
        );
        let g = usize_lit(self.conv.groups, "groups", node)?;
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
        let c = &self.conv;
        let (ph, pw) = (c.padding[0], c.padding[2]);
        let attrs = vec![
            attr::ints("kernel_shape", &c.kernel),
            attr::ints("strides", &c.stride),
            attr::ints("pads", &[ph, pw, ph, pw]),
            attr::ints("output_padding", &self.output_padding),
            attr::ints("dilations", &c.dilation),
            attr::int("group", c.groups),
        ];
        cx.weighted("ConvTranspose", cx.x(0)?, c.bias, attrs)
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let (x, cin) = (cx.x(0)?, cx.cin()?);
        let c = &self.conv;
        let ctor = format!(
            "nn.ConvTranspose2d({cin}, {}, {}, stride={}, padding={}, output_padding={}, groups={}, bias={}, dilation={})",
            c.out,
            py_pair(c.kernel),
            py_pair(c.stride),
            py_pair([c.padding[0], c.padding[2]]),
            py_pair(self.output_padding),
            c.groups,
            py_bool(c.bias),
            py_pair(c.dilation)
        );
        cx.call_module(ctor, &x)
    }
}
