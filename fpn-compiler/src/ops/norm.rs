//! `batch_norm`: PyTorch `nn.BatchNorm2d` in eval mode, `(x − mean)/sqrt(var + eps)·γ + β`;
//! `group_norm`: PyTorch `nn.GroupNorm` ([`GroupNorm`]).
//!
//! Shape rule: the output is the input's shape. Parameters: `weight`, `bias` (learnable) and
//! `running_mean`, `running_var` (buffers), each `[C]`; init identity (γ 1, β 0, mean 0,
//! var 1). The Rust back end folds a batch norm into the conv before it when it can.

use crate::diag::Checked;
use proc_macro2::TokenStream;
use quote::quote;

/// The keys of `batch_norm: {…}`.
pub(crate) const BATCH_NORM_KEYS: &[&str] = &["eps"];
/// The keys of `group_norm: {…}`.
pub(crate) const GROUP_NORM_KEYS: &[&str] = &["groups", "eps"];

use super::{elementwise, EvalCx, FieldCx, FieldKind, InferCx, Inferred, InitKind, LowerCx, Lowered, OpDef, ParamDecl};
use crate::ast::{Int, Reader};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{f32_lit, field_ident, usize_lit, GResult, StmtCx};
use crate::back::torch::{py_float, TResult, TorchCx};
use crate::diag::{Code, Diagnostic};
use crate::value::{Key, Value, ValueKind};

/// Inference batch norm.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// Epsilon.
    pub eps: f64,
}

/// The parameter suffixes of a batch norm, in `state_dict` order.
pub const BN_PARAMS: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];

/// Reads `{eps: …}` or nothing (eps 1e-5, PyTorch's default).
pub(crate) fn read_eps(r: &mut Reader, v: &Value, what: &str) -> Checked<f64> {
    let mut eps = 1e-5;
    if !matches!(v.kind, ValueKind::Null) {
        let mut m = r.map(v, what)?;
        if let Some(e) = m.get("eps") {
            eps = r.float(e, "`eps`")?;
        }
        r.finish(m, BATCH_NORM_KEYS, what);
    }
    Ok(eps)
}

impl OpDef for BatchNorm {
    const KEYWORDS: &'static [&'static str] = &["batch_norm"];
    type Args = f64;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<f64> {
        read_eps(r, v, &format!("`{}`", key.name))
    }

    fn lower(eps: &f64, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        cx.l.check_eps(*eps, cx.span)?;
        cx.on_input(super::Op::BatchNorm(BatchNorm { eps: *eps }), true)
    }

    fn kind(&self) -> &'static str {
        "batch_norm"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        let n = usize::try_from(x.c).unwrap_or(0);
        let params = BN_PARAMS
            .iter()
            .map(|&suffix| ParamDecl {
                suffix,
                shape: vec![x.c],
                init: if matches!(suffix, "weight" | "running_var") {
                    InitKind::Ones(vec![n])
                } else {
                    InitKind::Zeros(vec![n])
                },
                learnable: matches!(suffix, "weight" | "bias"),
            })
            .collect();
        Ok(Inferred {
            flops: elementwise(&x, 2),
            shape: x,
            params,
        })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let [w, b, m, v] = BN_PARAMS.map(|s| cx.param1(s));
        let bn = fpn_runtime::BatchNorm {
            weight: w?.to_owned(),
            bias: b?.to_owned(),
            running_mean: m?.to_owned(),
            running_var: v?.to_owned(),
            eps: self.eps as f32,
        };
        fpn_runtime::batch_norm(cx.x(0)?, &bn)
    }

    fn fields(&self, cx: &mut FieldCx<'_>) -> GResult<()> {
        let gen = cx.gen;
        if gen.is_folded_bn(cx.idx) {
            return Ok(());
        }
        let Some(q) = cx.new_prefix()? else {
            return Ok(());
        };
        let rt = &gen.rt;
        let id = field_ident(q)?;
        let [gk, bk, mk, vk] = BN_PARAMS.map(|s| gen.pname(q, s));
        let (tg, tb, tm, tv) = (cx.take(gk?.1), cx.take(bk?.1), cx.take(mk?.1), cx.take(vk?.1));
        let e = f32_lit(self.eps, "eps", cx.node)?;
        cx.push(
            id.clone(),
            quote!(#rt::BatchNorm),
            format!("Batch norm `{q}`."),
            quote!(#rt::BatchNorm { weight: #tg, bias: #tb, running_mean: #tm, running_var: #tv, eps: #e }),
        );
        cx.register(q, id, FieldKind::BatchNorm(self.eps));
        Ok(())
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let (_, f, feps) = cx.field("batch norm", |k| match k {
            FieldKind::BatchNorm(eps) => Some(eps),
            _ => None,
        })?;
        let bn = if *feps == self.eps {
            quote!(&self.#f)
        } else {
            let e = f32_lit(self.eps, "eps", cx.node)?;
            quote!(&#rt::BatchNorm { eps: #e, ..self.#f.clone() })
        };
        let out = &cx.out;
        Ok(match cx.take_if_movable(0) {
            Some(src) => quote! {
                let mut #out = #src;
                #rt::batch_norm_inplace(&mut #out, #bn)?;
            },
            None => {
                let x = cx.view(0)?;
                quote!(let #out = #rt::batch_norm(#x, #bn)?;)
            }
        })
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        if let Some(v) = cx.folded_into() {
            cx.alias(&v);
            return Ok(());
        }
        let mut ins = vec![cx.x(0)?];
        for s in BN_PARAMS {
            ins.push(cx.param(s)?);
        }
        cx.last(
            "BatchNormalization",
            &ins,
            vec![attr::float("epsilon", self.eps as f32)],
        );
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let (x, c) = (cx.x(0)?, cx.cin()?);
        let eps = py_float(self.eps);
        cx.call_module(format!("_BatchNorm2d({c}, {eps})"), &x)
    }
}

/// Group normalisation (PyTorch `nn.GroupNorm(groups, C, eps)`, affine): per sample and group of
/// `C / groups` channels, `(x − mean)/sqrt(var + eps)·γ + β` with the biased variance.
///
/// Shape rule: the output is the input's shape; the groups must divide the input channels
/// ([`fpn_runtime::rules::validate_group_norm`], E0326 at the node). Parameters: `weight`,
/// `bias` `[C]` (learnable; init 1 and 0, PyTorch's).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNorm {
    /// Number of groups.
    pub groups: i64,
    /// Epsilon.
    pub eps: f64,
}

/// `group_norm:` arguments as written.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNormArgs {
    /// Number of groups (may be a block parameter).
    pub groups: Int,
    /// Epsilon (default 1e-5).
    pub eps: f64,
}

/// Reads `{groups: G, eps: 1e-5}` (also the `group_norm` norm of a `cna`).
pub(crate) fn read_group_norm(r: &mut Reader, v: &Value, what: &str) -> Checked<GroupNormArgs> {
    let mut m = r.map(v, what)?;
    let groups = r.require(&mut m, "groups", what).and_then(|g| r.int(g, "`groups`"));
    let eps = match m.get("eps") {
        Some(e) => r.float(e, "`eps`"),
        None => Ok(1e-5),
    };
    r.finish(m, GROUP_NORM_KEYS, what);
    Ok(GroupNormArgs {
        groups: groups?,
        eps: eps?,
    })
}

/// Lowers group norm arguments (groups ≥ 1, eps in f32 range).
pub(crate) fn lower_group_norm(a: &GroupNormArgs, cx: &mut LowerCx<'_, '_>) -> Checked<GroupNorm> {
    cx.l.check_eps(a.eps, cx.span)?;
    let groups = cx.l.eval_pos(&a.groups, cx.env, "group norm groups", 1)?;
    Ok(GroupNorm { groups, eps: a.eps })
}

/// The parameter suffixes of a group norm, in `state_dict` order.
pub const GN_PARAMS: [&str; 2] = ["weight", "bias"];

impl OpDef for GroupNorm {
    const KEYWORDS: &'static [&'static str] = &["group_norm"];
    type Args = GroupNormArgs;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<GroupNormArgs> {
        read_group_norm(r, v, &format!("`{}`", key.name))
    }

    fn lower(a: &GroupNormArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        let gn = lower_group_norm(a, cx)?;
        cx.on_input(super::Op::GroupNorm(gn), true)
    }

    fn kind(&self) -> &'static str {
        "group_norm"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        if let Err(reason) = fpn_runtime::rules::validate_group_norm(x.c, self.groups) {
            let divs: Vec<String> = (1..=x.c.min(64))
                .filter(|g| x.c % g == 0)
                .map(|g| g.to_string())
                .collect();
            cx.diags.push(
                Diagnostic::error(
                    Code::E0326,
                    cx.node.span,
                    format!(
                        "group norm `{}` has {} groups, which do not divide its {} input channels",
                        cx.node.name, self.groups, x.c
                    ),
                )
                .with_label(format!("input has {} channels", x.c))
                .with_note(format!("PyTorch: {reason}"))
                .with_help(format!("use a number of groups dividing {}: {}", x.c, divs.join(", "))),
            );
        }
        let n = usize::try_from(x.c).unwrap_or(0);
        let params = GN_PARAMS
            .iter()
            .map(|&suffix| ParamDecl {
                suffix,
                shape: vec![x.c],
                init: if suffix == "weight" {
                    InitKind::Ones(vec![n])
                } else {
                    InitKind::Zeros(vec![n])
                },
                learnable: true,
            })
            .collect();
        Ok(Inferred {
            flops: elementwise(&x, 5),
            shape: x,
            params,
        })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let gn = fpn_runtime::GroupNorm {
            groups: usize::try_from(self.groups).unwrap_or(0),
            weight: cx.param1("weight")?.to_owned(),
            bias: cx.param1("bias")?.to_owned(),
            eps: self.eps as f32,
        };
        fpn_runtime::group_norm(cx.x(0)?, &gn)
    }

    fn fields(&self, cx: &mut FieldCx<'_>) -> GResult<()> {
        let gen = cx.gen;
        let Some(q) = cx.new_prefix()? else {
            return Ok(());
        };
        let rt = &gen.rt;
        let id = field_ident(q)?;
        let [wk, bk] = GN_PARAMS.map(|s| gen.pname(q, s));
        let (tw, tb) = (cx.take(wk?.1), cx.take(bk?.1));
        let e = f32_lit(self.eps, "eps", cx.node)?;
        let g = usize_lit(self.groups, "groups", cx.node)?;
        cx.push(
            id.clone(),
            quote!(#rt::GroupNorm),
            format!("Group norm `{q}`."),
            quote!(#rt::GroupNorm { groups: #g, weight: #tw, bias: #tb, eps: #e }),
        );
        cx.register(q, id, FieldKind::Tensor);
        Ok(())
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let (_, f, _) = cx.field("group norm", Some)?;
        let x = cx.view(0)?;
        let out = &cx.out;
        Ok(quote!(let #out = #rt::group_norm(#x, &self.#f)?;))
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        // as torch.onnx writes it below opset 21 (opset 18's GroupNormalization scales per
        // group, not per channel): InstanceNormalization over [N, G, C/G·H·W], then the
        // per-channel affine
        let x = cx.x(0)?;
        let c = cx.in_shape(0)?.c;
        let g = usize::try_from(self.groups).unwrap_or(0);
        let grouped = cx.ints("grouped", &[0, self.groups, -1]);
        let xg = cx.op("Reshape", &[&x, &grouped], Vec::new());
        let (ones, zeros) = (
            cx.floats("ones", &[self.groups], &vec![1.0; g]),
            cx.floats("zeros", &[self.groups], &vec![0.0; g]),
        );
        let eps = attr::float("epsilon", self.eps as f32);
        let n = cx.op("InstanceNormalization", &[&xg, &ones, &zeros], vec![eps]);
        let shape = cx.op("Shape", &[&x], Vec::new());
        let back = cx.op("Reshape", &[&n, &shape], Vec::new());
        let per_channel = cx.ints("per_channel", &[c, 1, 1]);
        let (w, b) = (cx.param("weight")?, cx.param("bias")?);
        let w = cx.op("Reshape", &[&w, &per_channel], Vec::new());
        let b = cx.op("Reshape", &[&b, &per_channel], Vec::new());
        let scaled = cx.op("Mul", &[&back, &w], Vec::new());
        cx.last("Add", &[&scaled, &b], Vec::new());
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let (x, c) = (cx.x(0)?, cx.cin()?);
        let eps = py_float(self.eps);
        cx.call_module(format!("nn.GroupNorm({}, {c}, eps={eps})", self.groups), &x)
    }
}
