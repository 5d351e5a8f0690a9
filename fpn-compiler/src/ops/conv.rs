//! `conv`: PyTorch `nn.Conv2d` (with `padding_mode`), the runtime's prepared `Conv2d`.
//!
//! Shape rule (per axis, [`fpn_runtime::rules::conv_axis`]):
//! `out = floor((x + p0 + p1 − d·(k−1) − 1)/s) + 1`, defined when `out ≥ 1`; reflect padding
//! needs `x > p`, circular `x ≥ p`. With `padding: tf_same` and a stride above 1 (TensorFlow's
//! `SAME`, timm's `Conv2dSame`) the zero padding depends on the input size and is computed on
//! every call ([`fpn_runtime::same_dynamic_padding`]); the rule is then
//! [`fpn_runtime::rules::same_dynamic_axis`], `out = ceil(x/s)`. At stride 1 `tf_same` is a
//! fixed padding (`(k−1)·d` in total, the odd one after), resolved at lowering. Parameters: `weight [out, in/groups, kh, kw]` and, unless
//! `bias: false`, `bias [out]` (kaiming-uniform init, PyTorch's default).

use fpn_runtime::ndarray::ArrayView4;
use fpn_runtime::rules::{self, ConvAxis};
use fpn_runtime::{Activation, Conv2dParams, PaddingMode};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// A conv's padding modes (`F.pad` calls the first `constant`).
pub(crate) const PADDING_MODES: &[&str] = &["zeros", "reflect", "replicate", "circular"];

use super::{
    elementwise, EvalCx, Field, FieldCx, FieldKind, InferCx, Inferred, InitKind, LowerCx, Lowered, OpDef, ParamDecl,
};
use crate::ast::{did_you_mean, Int, MapR, Pair, Reader};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{f32_lit, field_ident, GResult, StmtCx};
use crate::back::torch::{py_bool, py_pair, TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic};
use crate::dim::Dim;
use crate::infer::Shape;
use crate::span::Span;
use crate::value::{Key, Value, ValueKind};

/// A convolution (PyTorch `nn.Conv2d`).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// Output channels.
    pub out: i64,
    /// Kernel `[h, w]`.
    pub kernel: [i64; 2],
    /// Stride `[h, w]`.
    pub stride: [i64; 2],
    /// Padding `[top, bottom, left, right]`.
    pub padding: [i64; 4],
    /// Dilation `[h, w]`.
    pub dilation: [i64; 2],
    /// Groups.
    pub groups: i64,
    /// Has a bias.
    pub bias: bool,
    /// Padding mode.
    pub mode: PaddingMode,
    /// TensorFlow `SAME` padding computed per call from the input size (`padding: tf_same`
    /// with a stride above 1); `padding` is then all 0 and `mode` zeros.
    pub tf_same: bool,
}

/// A convolution padding as written.
#[derive(Clone, Debug, PartialEq)]
pub enum PadSpec {
    /// `same`: output size equals input size (stride 1 only), PyTorch's split (extra on the end).
    Same,
    /// `tf_same`: TensorFlow's `SAME` (timm's `padding='same'`, `Conv2dSame`): output
    /// `ceil(x/s)`, zero padding `max((ceil(x/s)−1)·s + (k−1)·d + 1 − x, 0)` split with the odd
    /// one after, computed from the input size when the stride is above 1.
    TfSame,
    /// `[h, w]` symmetric padding.
    Sym(Pair),
    /// `[top, bottom, left, right]`.
    Explicit([Int; 4]),
}

/// `conv:` attributes as written.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvArgs {
    /// Output channels.
    pub out: Int,
    /// Kernel size.
    pub kernel: Pair,
    /// Stride (default 1).
    pub stride: Pair,
    /// Padding (default 0; for `cna` default `(kernel-1)/2·dilation`).
    pub padding: Option<PadSpec>,
    /// Dilation (default 1).
    pub dilation: Pair,
    /// Groups (default 1).
    pub groups: Int,
    /// Whether there is a bias (default true; `cna` default: no bias when it has a norm).
    pub bias: Option<bool>,
    /// Padding mode (default zeros, or the spec's `defaults.padding_mode`).
    pub padding_mode: Option<PaddingMode>,
    /// Where the op is.
    pub span: Span,
}

/// The keys of `conv:` (and the conv part of `cna:`).
pub const CONV_KEYS: &[&str] = &[
    "out",
    "kernel",
    "stride",
    "padding",
    "dilation",
    "groups",
    "bias",
    "padding_mode",
];

/// Reads conv arguments; with `cna`, the map is returned with the conv keys marked used so the
/// caller reads its own keys and reports the rest.
pub(crate) fn read_args<'a>(
    r: &mut Reader,
    v: &'a Value,
    what: &str,
    cna: bool,
) -> Checked<(ConvArgs, Option<MapR<'a>>)> {
    let mut m = r.map(v, what)?;
    let out = r.require(&mut m, "out", what).and_then(|o| r.int(o, "`out`"));
    let kernel = r.require(&mut m, "kernel", what).and_then(|k| r.pair(k, "`kernel`"));
    let stride = r.pair_or(&mut m, "stride", 1, what);
    let padding = match m.get("padding") {
        None => Ok(None),
        Some(p) => read_padding(r, p).map(Some),
    };
    let dilation = r.pair_or(&mut m, "dilation", 1, what);
    let groups = match m.get("groups") {
        Some(g) => r.int(g, "`groups`"),
        None => Ok(Int::lit(1, m.span)),
    };
    let bias = m.get("bias").map(|b| r.boolean(b, "`bias`")).transpose();
    let padding_mode = m.get("padding_mode").map(|p| read_padding_mode(r, p)).transpose();
    let span = m.span;
    let rest = if cna {
        Some(m)
    } else {
        r.finish(m, CONV_KEYS, what);
        None
    };
    Ok((
        ConvArgs {
            out: out?,
            kernel: kernel?,
            stride: stride?,
            padding: padding?,
            dilation: dilation?,
            groups: groups?,
            bias: bias?,
            padding_mode: padding_mode?,
            span,
        },
        rest,
    ))
}

fn read_padding(r: &mut Reader, v: &Value) -> Checked<PadSpec> {
    match &v.kind {
        ValueKind::Str(s) if s == "same" => Ok(PadSpec::Same),
        ValueKind::Str(s) if s == TF_SAME => Ok(PadSpec::TfSame),
        ValueKind::Str(s) => Err(r.err(padding_name_error(v, s, &["same", TF_SAME]))),
        ValueKind::Seq(items) if items.len() == 4 => {
            let all: Vec<_> = items.iter().map(|i| r.int(i, "`padding`")).collect();
            let [t, b, l, rt]: [Int; 4] = crate::ast::collect_all(all)?
                .try_into()
                .map_err(|_| r.err(crate::diag::internal(v.span, "four paddings read as another number")))?;
            Ok(PadSpec::Explicit([t, b, l, rt]))
        }
        ValueKind::Seq(items) if items.len() != 2 => Err(r.err(
            crate::ast::type_error(
                v,
                "a number, `[h, w]`, `[top, bottom, left, right]`, `same` or `tf_same`",
                "`padding`",
            )
            .with_help("e.g. `padding: 1`, `padding: [1, 2]`, `padding: same` or `padding: tf_same`"),
        )),
        _ => Ok(PadSpec::Sym(r.pair(v, "`padding`")?)),
    }
}

/// The spelling of TensorFlow's `SAME` padding (conv and pools).
pub(crate) const TF_SAME: &str = "tf_same";

/// E0102 for a padding written as an unknown name `s` (`names`: the ones the op takes).
pub(crate) fn padding_name_error(v: &Value, s: &str, names: &[&str]) -> Diagnostic {
    let dym = did_you_mean(s, names.iter().copied());
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let listed = quoted.join(" or ");
    let expected = format!("a number, a list of numbers, {}", quoted.join(", "));
    let expected = match expected.rsplit_once(", ") {
        Some((head, last)) => format!("{head} or {last}"),
        None => expected,
    };
    crate::ast::type_error(v, &expected, "`padding`").with_help(if dym.is_empty() {
        format!("a named padding is {listed}; `tf_same` is TensorFlow's `SAME` (timm's `padding='same'`)")
    } else {
        dym
    })
}

/// E0233 for `padding: tf_same` with a setting it cannot take (`what`, labelled at `span`).
pub(crate) fn tf_same_conflict(span: Span, what: &str, help: &str) -> Diagnostic {
    Diagnostic::error(
        Code::E0233,
        span,
        format!("`padding: tf_same` cannot be combined with {what}"),
    )
    .with_label(format!("`tf_same` with {what}"))
    .with_help(help.to_string())
}

/// Reads a conv's padding mode (`zeros`, `reflect`, `replicate`, `circular`).
pub(crate) fn read_padding_mode(r: &mut Reader, v: &Value) -> Checked<PaddingMode> {
    read_mode(r, v, "`padding_mode`", "zeros", "padding modes")
}

/// Reads the padding mode `v` of the key `what`, where the zero fill is named `zeros` (a conv's
/// `zeros`, `F.pad`'s `constant`); E0108 for any other name, listing the `modes` by name.
pub(crate) fn read_mode(
    r: &mut Reader,
    v: &Value,
    what: &str,
    zeros: &'static str,
    modes: &str,
) -> Checked<PaddingMode> {
    let n = r.name(v, what)?;
    let names = [zeros, PADDING_MODES[1], PADDING_MODES[2], PADDING_MODES[3]];
    Ok(match n.text.as_str() {
        z if z == zeros => PaddingMode::Zeros,
        "reflect" => PaddingMode::Reflect,
        "replicate" => PaddingMode::Replicate,
        "circular" => PaddingMode::Circular,
        other => {
            let dym = did_you_mean(other, names);
            return Err(r.err(
                Diagnostic::error(Code::E0108, n.span, format!("unknown padding mode `{other}`"))
                    .with_label("not a padding mode")
                    .with_help(if dym.is_empty() {
                        format!("{modes} are: {}", names.join(", "))
                    } else {
                        dym
                    }),
            ));
        }
    })
}

/// Resolves conv arguments to IR attributes (`cna`: default padding `(k−1)/2·d`).
pub(crate) fn lower_args(c: &ConvArgs, cna: bool, cx: &mut LowerCx<'_, '_>) -> Checked<Conv> {
    let env = cx.env;
    let l = &mut *cx.l;
    let out = l.eval_pos(&c.out, env, "the output channels", 1);
    let kernel = [
        l.eval_pos(&c.kernel.h, env, "a kernel size", 1),
        l.eval_pos(&c.kernel.w, env, "a kernel size", 1),
    ];
    let stride = [
        l.eval_pos(&c.stride.h, env, "a stride", 1),
        l.eval_pos(&c.stride.w, env, "a stride", 1),
    ];
    let dilation = [
        l.eval_pos(&c.dilation.h, env, "a dilation", 1),
        l.eval_pos(&c.dilation.w, env, "a dilation", 1),
    ];
    let groups = l.eval_pos(&c.groups, env, "groups", 1);
    let (out, kernel, stride, dilation, groups) = (
        out?,
        [kernel[0]?, kernel[1]?],
        [stride[0]?, stride[1]?],
        [dilation[0]?, dilation[1]?],
        groups?,
    );
    let reach = |a: usize| dilation[a].checked_mul(kernel[a] - 1);
    let padding = match &c.padding {
        None if cna => {
            let (h, w) = ((kernel[0] - 1) / 2 * dilation[0], (kernel[1] - 1) / 2 * dilation[1]);
            [h, h, w, w]
        }
        None => [0; 4],
        Some(PadSpec::Same) => {
            if stride != [1, 1] {
                return Err(l.err(
                    Diagnostic::error(Code::E0219, c.span, "`padding: same` needs stride 1")
                        .with_label(format!("stride {}×{}", stride[0], stride[1]))
                        .with_help(
                            "PyTorch rejects padding='same' for strided convolutions; give the padding as a number, or write `padding: tf_same` for TensorFlow's `SAME` (timm's `Conv2dSame`: the padding follows the input size)",
                        ),
                ));
            }
            let (th, tw) = match (reach(0), reach(1)) {
                (Some(th), Some(tw)) => (th, tw),
                _ => {
                    return Err(l.err(crate::lower::too_large(
                        c.span,
                        "the dilated kernel of a conv",
                        i64::MAX,
                    )))
                }
            };
            [th / 2, th - th / 2, tw / 2, tw - tw / 2]
        }
        Some(PadSpec::TfSame) => match tf_same_fixed(kernel, stride, dilation) {
            Some(p) => p,
            None if stride == [1, 1] => {
                return Err(l.err(crate::lower::too_large(
                    c.span,
                    "the dilated kernel of a conv",
                    i64::MAX,
                )))
            }
            None => [0; 4],
        },
        Some(PadSpec::Sym(p)) => {
            let (h, w) = (
                l.eval_pos(&p.h, env, "a padding", 0)?,
                l.eval_pos(&p.w, env, "a padding", 0)?,
            );
            [h, h, w, w]
        }
        Some(PadSpec::Explicit(p)) => {
            let mut v = [0; 4];
            for (slot, i) in v.iter_mut().zip(p) {
                *slot = l.eval_pos(i, env, "a padding", 0)?;
            }
            v
        }
    };
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
    let mode = c
        .padding_mode
        .or(l.defaults().padding_mode)
        .unwrap_or(PaddingMode::Zeros);
    let tf_same = c.padding == Some(PadSpec::TfSame) && stride != [1, 1];
    if c.padding == Some(PadSpec::TfSame) && mode != PaddingMode::Zeros {
        return Err(l.err(tf_same_conflict(
            c.span,
            &format!("`padding_mode: {}`", PADDING_MODES[mode_index(mode)]),
            "TensorFlow's `SAME` (timm's `Conv2dSame`) pads with zeros; remove `padding_mode` (or the spec's `defaults.padding_mode`) or give the padding as numbers",
        )));
    }
    Ok(Conv {
        out,
        kernel,
        stride,
        padding,
        dilation,
        groups,
        bias: c.bias.unwrap_or(true),
        mode,
        tf_same,
    })
}

/// The index of `m` in [`PADDING_MODES`].
fn mode_index(m: PaddingMode) -> usize {
    match m {
        PaddingMode::Zeros => 0,
        PaddingMode::Reflect => 1,
        PaddingMode::Replicate => 2,
        PaddingMode::Circular => 3,
    }
}

/// `tf_same`'s padding `[top, bottom, left, right]` when it does not depend on the input size,
/// which is at stride 1 on both axes (`(k − 1)·d` in total, `total/2` before, whatever the size:
/// [`fpn_runtime::rules::same_dynamic_pad`] of any size); `None` for a larger stride or an
/// overflow.
pub(crate) fn tf_same_fixed(kernel: [i64; 2], stride: [i64; 2], dilation: [i64; 2]) -> Option<[i64; 4]> {
    if stride != [1, 1] {
        return None;
    }
    let [t, b] = rules::same_dynamic_pad(1, kernel[0], 1, dilation[0])?;
    let [l, r] = rules::same_dynamic_pad(1, kernel[1], 1, dilation[1])?;
    Some([t, b, l, r])
}

impl Conv {
    /// Axis `a` (0 height, 1 width) as the runtime's rule sees it.
    pub fn axis(&self, a: usize) -> ConvAxis {
        ConvAxis {
            kernel: self.kernel[a],
            stride: self.stride[a],
            pad: [self.padding[a * 2], self.padding[a * 2 + 1]],
            dilation: self.dilation[a],
            mode: self.mode,
        }
    }

    /// The runtime parameters with the fused activation `act`; `None` for a negative attribute
    /// (lowering never produces one).
    pub fn params(&self, act: Activation) -> Option<Conv2dParams> {
        let u = |v: i64| usize::try_from(v).ok();
        let [p0, p1, p2, p3] = self.padding;
        Some(Conv2dParams {
            stride: [u(self.stride[0])?, u(self.stride[1])?],
            padding: [u(p0)?, u(p1)?, u(p2)?, u(p3)?],
            dilation: [u(self.dilation[0])?, u(self.dilation[1])?],
            groups: u(self.groups)?,
            padding_mode: self.mode,
            act,
        })
    }

    /// `p` with the `tf_same` padding of input `x` when this conv has one (else `p` itself).
    pub fn params_for(&self, x: ArrayView4<f32>, p: Conv2dParams) -> fpn_runtime::Result<Conv2dParams> {
        if !self.tf_same {
            return Ok(p);
        }
        let kernel = self.kernel.map(|k| usize::try_from(k).unwrap_or(0));
        let padding = fpn_runtime::same_dynamic_padding(x, kernel, p.stride, p.dilation)?;
        Ok(Conv2dParams { padding, ..p })
    }
}

impl OpDef for Conv {
    const KEYWORDS: &'static [&'static str] = &["conv"];
    type Args = ConvArgs;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<ConvArgs> {
        Ok(read_args(r, v, &format!("`{}`", key.name), false)?.0)
    }

    fn lower(args: &ConvArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let conv = lower_args(args, false, cx)?;
        cx.on_input(super::Op::Conv(conv), true)
    }

    fn kind(&self) -> &'static str {
        "conv"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        check_input_groups(cx, &x, self.groups, self.out);
        let out = cx.spatial(&x, [Dim::Const(1), Dim::Const(1)], |axis, d| {
            if self.tf_same {
                rules::same_dynamic_axis(d, self.stride[axis]).ok_or("the output size")
            } else {
                rules::conv_axis(d, &self.axis(axis)).ok_or("the output size")
            }
        });
        let cin_g = x.c / self.groups.max(1);
        let params = weight_and_bias([self.out, cin_g, self.kernel[0], self.kernel[1]], self.out, self.bias);
        let [h, w] = out;
        let shape = Shape { c: self.out, h, w };
        let macs = cin_g
            .checked_mul(self.kernel[0])
            .and_then(|m| m.checked_mul(self.kernel[1]));
        let flops = macs.and_then(|m| elementwise(&shape, m.checked_mul(2)?));
        Ok(Inferred { shape, params, flops })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let w = cx.param4("weight")?;
        let b = if self.bias { Some(cx.param1("bias")?) } else { None };
        let p = self
            .params(Activation::Identity)
            .ok_or_else(|| cx.negative("attribute"))?;
        let x = cx.x(0)?;
        fpn_runtime::conv2d(x, w, b, &self.params_for(x, p)?)
    }

    fn fields(&self, cx: &mut FieldCx<'_>) -> GResult<()> {
        let gen = cx.gen;
        let Some(p) = cx.new_prefix()? else {
            return Ok(());
        };
        let rt = &gen.rt;
        let t = |k: usize| quote::format_ident!("t{}", k);
        let (wname, wk) = gen.pname(p, "weight")?;
        let bias = if self.bias { Some(gen.pname(p, "bias")?) } else { None };
        let cid = field_ident(p)?;
        let act = gen.fused_act(cx.idx);
        let (params, ptoks) = gen.conv_params(cx.node, self, act)?;
        let (w, b, prep, doc) = match gen.fold_of(p) {
            Some((q, eps)) => {
                let wid = field_ident(&wname)?;
                let bid = field_ident(&format!("{p}.bias"))?;
                let [g, b, m, v] = super::norm::BN_PARAMS.map(|s| gen.pname(q, s));
                let (tg, tb, tm, tv) = (t(g?.1), t(b?.1), t(m?.1), t(v?.1));
                let eps = f32_lit(eps, "eps", cx.node)?;
                let conv_bias = match &bias {
                    Some((_, k)) => {
                        let tk = t(*k);
                        quote!(::core::option::Option::Some(&#tk))
                    }
                    None => quote!(::core::option::Option::None),
                };
                let w_init = cx.take(wk);
                let prep = quote! {
                    let mut #wid = #w_init;
                    let #bid = Self::fold_bn(&mut #wid, #conv_bias, &#tg, &#tb, &#tm, &#tv, #eps);
                };
                let doc = format!("Conv `{p}` (`{wname}`) with batch norm `{q}` folded in, prepared.");
                (quote!(#wid), quote!(::core::option::Option::Some(#bid)), prep, doc)
            }
            None => {
                let b = match &bias {
                    Some((_, bk)) => {
                        let tb = cx.take(*bk);
                        quote!(::core::option::Option::Some(#tb))
                    }
                    None => quote!(::core::option::Option::None),
                };
                let doc = match &bias {
                    Some((bname, _)) => format!("Conv `{p}` (`{wname}`, `{bname}`), prepared."),
                    None => format!("Conv `{p}` (`{wname}`, no bias), prepared."),
                };
                (cx.take(wk), b, TokenStream::new(), doc)
            }
        };
        // a conv whose every call is blocked: prepared for those only
        let (new, deferred) = if gen.conv_blocked_only(p) {
            (quote!(new_blocked), quote!(new_deferred_blocked))
        } else {
            (quote!(new), quote!(new_deferred))
        };
        cx.fields.push(Field {
            ident: cid.clone(),
            ty: quote!(#rt::Conv2d),
            doc,
            value: quote!(#rt::Conv2d::#new(#w, #b, #ptoks)?),
            init_value: Some(quote!(#rt::Conv2d::#deferred(#w, #b, #ptoks))),
            prep,
        });
        cx.register(p, cid, FieldKind::Conv(params));
        Ok(())
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let gen = cx.gen;
        let (_, field, fparams) = cx.field("conv", |k| match k {
            FieldKind::Conv(params) => Some(params),
            _ => None,
        })?;
        let out = &cx.out;
        let rt = &gen.rt;
        // (inputs that are parts of the buffer this conv writes into: read views, `write_into`)
        let x = cx.input(0)?;
        let r_in = match cx.stmt.add {
            Some(_) => Some(cx.input(1)?),
            None => None,
        };
        let (params, ptoks) = gen.conv_params(cx.node, self, cx.stmt.act.unwrap_or(Activation::Identity))?;
        let some = quote!(::core::option::Option::Some);
        // `tf_same` with a stride: the padding of this call's input, from the runtime's rule
        let (pre, ptoks) = if self.tf_same {
            let pv = quote::format_ident!("{}_same", cx.out);
            let k = crate::back::rust::usize_pair_lit(self.kernel, "kernel", cx.node)?;
            let pre = quote! {
                let #pv = #ptoks;
                let #pv = #rt::Conv2dParams {
                    padding: #rt::same_dynamic_padding(#x, #k, #pv.stride, #pv.dilation)?,
                    ..#pv
                };
            };
            (pre, quote!(#pv))
        } else {
            (TokenStream::new(), ptoks)
        };
        // one entry point: the fused add's other operand (input 1) and, for a conv sharing its
        // weights with an earlier one but not its geometry or fused activation, its own params
        let residual = match &r_in {
            Some(r) if cx.stmt.add_after_act() => quote!(residual: #some(#r), residual_after_act: true,),
            Some(r) => quote!(residual: #some(#r),),
            None => TokenStream::new(),
        };
        let own = if params == *fparams && !self.tf_same {
            TokenStream::new()
        } else {
            quote!(params: #some(&#ptoks),)
        };
        let opts = |residual: &TokenStream| match (residual.is_empty(), own.is_empty()) {
            (true, true) => quote!(#rt::ConvOpts::default()),
            (false, false) => quote!(#rt::ConvOpts { #residual #own }),
            _ => quote!(#rt::ConvOpts { #residual #own ..::core::default::Default::default() }),
        };
        // A sum added before the activation that dies here (a ResNet block's shortcut): the
        // conv adds onto its buffer, which becomes the output (no buffer of its own, and the
        // sum read once).
        // on blocked values (`Gen::plan_layout`, which blocks no conv with its own parameters),
        // or from a blocked input to an NCHW value (a head's last conv)
        if cx.blocked() || gen.conv_from_blocked(cx.stmt.head) {
            if !own.is_empty() || !pre.is_empty() {
                return Err(crate::back::rust::GenError::Unsupported(format!(
                    "conv `{}` is blocked but has per-call parameters",
                    cx.node.name
                )));
            }
            // onto a sum added before the activation that dies here, as below
            if r_in.is_some() && !cx.stmt.add_after_act() && cx.into.is_none() {
                if let Some(sum) = cx.take_if_movable(1) {
                    let opts = opts(&TokenStream::new());
                    return Ok(quote!(let #out = self.#field.forward_blocked_onto(#x, &#opts, #sum)?;));
                }
            }
            let opts = opts(&residual);
            return Ok(match cx.into {
                Some(into) => cx.write_into(
                    into,
                    TokenStream::new(),
                    || quote!(self.#field.output_shape(#x, &#opts)?),
                    TokenStream::new(),
                    |o| quote!(self.#field.forward_blocked_into(#x, &#opts, #o)?;),
                ),
                None => quote!(let #out = self.#field.forward_blocked(#x, &#opts)?;),
            });
        }
        if r_in.is_some() && !cx.stmt.add_after_act() && cx.into.is_none() {
            if let Some(sum) = cx.take_if_movable(1) {
                let opts = opts(&TokenStream::new());
                return Ok(quote! {
                    #pre
                    let #out = self.#field.forward_onto(#x, &#opts, #sum)?;
                });
            }
        }
        let opts = opts(&residual);
        Ok(match cx.into {
            // written straight into its channels of a concat's buffer
            Some(into) => cx.write_into(
                into,
                TokenStream::new(),
                || quote!(self.#field.output_shape(#x, &#opts)?),
                pre,
                |o| quote!(self.#field.forward_into(#x, &#opts, #o)?;),
            ),
            None => quote! {
                #pre
                let #out = self.#field.forward(#x, &#opts)?;
            },
        })
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        // ONNX `Conv` pads with zeros only: another mode is a `Pad` first, then no padding
        let mut x = cx.x(0)?;
        let [t, b, l, r] = self.padding;
        let pads = if self.tf_same {
            x = cx.pad_same_dynamic(&x, self.kernel, self.stride, self.dilation, 0.0);
            [0; 4]
        } else if self.mode == PaddingMode::Zeros {
            [t, l, b, r]
        } else {
            x = cx.pad(&x, self.padding, self.mode, 0.0)?;
            [0; 4]
        };
        let bias = self.bias || cx.is_folded_conv();
        let attrs = vec![
            attr::ints("kernel_shape", &self.kernel),
            attr::ints("strides", &self.stride),
            attr::ints("pads", &pads),
            attr::ints("dilations", &self.dilation),
            attr::int("group", self.groups),
        ];
        cx.weighted("Conv", x, bias, attrs)
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        use crate::back::torch::{conv_mode, pad_mode};
        let (x, cin) = (cx.x(0)?, cx.cin()?);
        let [t, b, l, r] = self.padding;
        // nn.Conv2d pads symmetrically; an asymmetric padding is an `F.pad` first
        let sym = t == b && l == r;
        let padded = format!("F.pad({x}, ({l}, {r}, {t}, {b}), mode='{}')", pad_mode(self.mode));
        let (xin, mpad) = if self.tf_same {
            (cx.pad_same(&x, self.kernel, self.stride, self.dilation, "0.0"), [0, 0])
        } else if sym {
            (x, [t, l])
        } else {
            (padded, [0, 0])
        };
        let ctor = format!(
            "nn.Conv2d({cin}, {}, {}, stride={}, padding={}, dilation={}, groups={}, bias={}, padding_mode='{}')",
            self.out,
            py_pair(self.kernel),
            py_pair(self.stride),
            py_pair(mpad),
            py_pair(self.dilation),
            self.groups,
            py_bool(self.bias),
            conv_mode(self.mode)
        );
        cx.call_module(ctor, &xin)
    }
}

/// E0301 (reported, inference goes on) when `groups` do not divide the input channels of a
/// conv-family node with `out` output channels.
pub(crate) fn check_input_groups(cx: &mut InferCx<'_>, x: &Shape, groups: i64, out: i64) {
    if x.c % groups != 0 {
        let d = Diagnostic::error(
            Code::E0301,
            cx.node.span,
            format!(
                "groups {} do not divide the {} input channels of `{}`",
                groups, x.c, cx.node.name
            ),
        )
        .with_label(format!("input has {} channels", x.c))
        .with_note(format!("input shape {}", crate::infer::fmt_shape(x, cx.names)))
        .with_help(format!("groups must divide both {} (in) and {} (out)", x.c, out));
        cx.diags.push(d);
    }
}

/// The parameters of a conv-family node: `weight` of `wshape` (kaiming-uniform) and, with
/// `bias`, `bias [out]` with PyTorch's fan-in, the product of `wshape[1..]`.
pub(crate) fn weight_and_bias(wshape: [i64; 4], out: i64, bias: bool) -> Vec<ParamDecl> {
    let dims = wshape.map(|d| usize::try_from(d).unwrap_or(0));
    let mut params = vec![ParamDecl {
        suffix: "weight",
        shape: wshape.to_vec(),
        init: InitKind::ConvWeight(dims),
        learnable: true,
    }];
    if bias {
        let fan_in = dims[1..]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .unwrap_or(usize::MAX);
        params.push(ParamDecl {
            suffix: "bias",
            shape: vec![out],
            init: InitKind::ConvBias {
                fan_in,
                n: usize::try_from(out).unwrap_or(0),
            },
            learnable: true,
        });
    }
    params
}

/// The tokens that build `p` (runtime path `rt`).
pub(crate) fn params_tokens(rt: &syn::Path, p: &Conv2dParams, act: TokenStream) -> TokenStream {
    let lit = Literal::usize_unsuffixed;
    let [s0, s1] = p.stride.map(lit);
    let [p0, p1, p2, p3] = p.padding.map(lit);
    let [d0, d1] = p.dilation.map(lit);
    let groups = lit(p.groups);
    let mode = match p.padding_mode {
        PaddingMode::Zeros => quote!(#rt::PaddingMode::Zeros),
        PaddingMode::Reflect => quote!(#rt::PaddingMode::Reflect),
        PaddingMode::Replicate => quote!(#rt::PaddingMode::Replicate),
        PaddingMode::Circular => quote!(#rt::PaddingMode::Circular),
    };
    quote! {
        #rt::Conv2dParams {
            stride: [#s0, #s1],
            padding: [#p0, #p1, #p2, #p3],
            dilation: [#d0, #d1],
            groups: #groups,
            padding_mode: #mode,
            act: #act,
        }
    }
}
