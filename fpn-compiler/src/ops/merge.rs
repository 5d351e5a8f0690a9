//! Merges of two or more feature maps: `add` (`torch.add`), `mul` (`torch.mul`), `concat`
//! (`torch.cat(dim=1)`),
//! `mean` (elementwise mean), `fuse` (BiFPN fast normalised fusion, `Σ relu(wᵢ)·xᵢ /
//! (Σ relu(wᵢ) + eps)` with one learned weight per input).
//!
//! Shape rule: every input has the first input's height and width (a
//! `CheckKind::Equal` constraint per input and axis); `add`, `mul`,
//! `mean` and `fuse` also need equal channels (E0304), `concat` sums them. `fuse` has the
//! parameter `weight [n]` (init ones).

use proc_macro2::TokenStream;
use quote::quote;

/// The keys of `fuse: {…}`.
pub(crate) const FUSE_KEYS: &[&str] = &["in", "eps"];

use super::{elementwise, EvalCx, FieldCx, FieldKind, InferCx, Inferred, InitKind, LowerCx, Lowered, OpDef, ParamDecl};
use crate::ast::{Reader, Ref};
use crate::back::onnx::{attr, EResult, OnnxCx};
use crate::back::rust::{f32_lit, GResult, GenError, StmtCx};
use crate::back::torch::{py_float, TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic};
use crate::infer::{fmt_shape, CheckKind, Shape};
use crate::value::{Key, Value, ValueKind};

/// Elementwise sum.
#[derive(Clone, Debug, PartialEq)]
pub struct Add;

/// Elementwise product (`torch.mul`, `a * b * …`).
#[derive(Clone, Debug, PartialEq)]
pub struct Mul;

/// Channel concatenation.
#[derive(Clone, Debug, PartialEq)]
pub struct Concat;

/// Elementwise mean.
#[derive(Clone, Debug, PartialEq)]
pub struct Mean;

/// BiFPN fast normalised fusion.
#[derive(Clone, Debug, PartialEq)]
pub struct Fuse {
    /// Epsilon.
    pub eps: f64,
}

/// Lowers a merge of `refs` to `op` (E0217 with fewer than two inputs).
fn lower(refs: &[Ref], op: super::Op, has_params: bool, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
    let ins: Vec<_> = cx.l.resolve_many(refs)?.into_iter().map(|(_, n)| n).collect();
    if ins.len() < 2 {
        return Err(cx.l.err(
            Diagnostic::error(
                Code::E0217,
                cx.span,
                format!("`{}` needs at least two inputs", op.kind()),
            )
            .with_label(format!("{} input(s)", ins.len()))
            .with_help("list the nodes to merge: `add: [a, b]`"),
        ));
    }
    Ok(Lowered {
        op,
        inputs: ins,
        has_params,
    })
}

/// The shared shape rule: equal sizes (constraints), equal channels unless concatenating.
fn infer(cx: &mut InferCx<'_>, concat: bool) -> Checked<Shape> {
    let first = cx.input(0)?;
    let mut c_total: Option<i64> = Some(0);
    let ins = cx.ins;
    for (slot, s) in ins.iter().enumerate() {
        c_total = c_total.and_then(|t| t.checked_add(s.c));
        if slot == 0 {
            continue;
        }
        let (g, node) = (cx.g, cx.node);
        if !concat && s.c != first.c {
            let (a, b) = (g.node(node.inputs[0]), g.node(node.inputs[slot]));
            let (sa, sb) = (fmt_shape(&first, cx.names), fmt_shape(s, cx.names));
            cx.diags.push(
                Diagnostic::error(
                    Code::E0304,
                    node.span,
                    format!(
                        "`{}` ({}) {} tensors with different channel counts: {} vs {}",
                        node.name,
                        node.op.kind(),
                        if node.op.kind() == "mul" { "multiplies" } else { "adds" },
                        first.c,
                        s.c
                    ),
                )
                .with_label(format!("{} vs {} channels", first.c, s.c))
                .with_secondary(a.span, format!("`{}` is {sa}", a.name))
                .with_secondary(b.span, format!("`{}` is {sb}", b.name))
                .with_note(format!("`{}`: {sa}, `{}`: {sb}", a.name, b.name))
                .with_help(format!(
                    "project both to the same width first, e.g. a 1×1 `conv: {{out: {}, kernel: 1}}` on `{}`",
                    first.c, b.name
                )),
            );
        }
        cx.relate_sizes(CheckKind::Equal, &first, s, (0, slot));
    }
    let c = if concat {
        match c_total {
            Some(c) => c,
            None => {
                cx.overflow("the channel count");
                first.c
            }
        }
    } else {
        first.c
    };
    Ok(Shape {
        c,
        h: first.h,
        w: first.w,
    })
}

fn inferred(shape: Shape, n: usize, params: Vec<ParamDecl>) -> Inferred {
    Inferred {
        flops: elementwise(&shape, n as i64 - 1),
        shape,
        params,
    }
}

fn read_refs(r: &mut Reader, key: &Key, v: &Value) -> Checked<Vec<Ref>> {
    r.refs(v, &format!("`{}`", key.name))
}

fn views_call(cx: &StmtCx<'_>, f: TokenStream) -> GResult<TokenStream> {
    let rt = &cx.gen.rt;
    let xs = cx.views()?;
    let out = &cx.out;
    Ok(quote!(let #out = #rt::#f(&[#(#xs),*])?;))
}

/// The `OpDef` of a merge that lists its inputs (`add: [a, b]`) and has no parameters.
macro_rules! list_merge {
    ($ty:ident, $kw:literal, concat: $concat:expr, eval: $eval:expr, stmt: $stmt:expr, onnx: $onnx:expr, torch: $torch:expr) => {
        impl OpDef for $ty {
            const KEYWORDS: &'static [&'static str] = &[$kw];
            type Args = Vec<Ref>;

            fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<Vec<Ref>> {
                read_refs(r, key, v)
            }
            fn refs(args: &Vec<Ref>) -> Vec<&Ref> {
                args.iter().collect()
            }
            fn needs_input(_: &Vec<Ref>) -> bool {
                false
            }
            fn lower(args: &Vec<Ref>, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
                lower(args, super::Op::$ty($ty), false, cx)
            }
            fn kind(&self) -> &'static str {
                $kw
            }
            fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
                let n = cx.ins.len();
                Ok(inferred(infer(cx, $concat)?, n, Vec::new()))
            }
            fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
                let f: fn(&EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> = $eval;
                f(cx)
            }
            fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
                let f: fn(&StmtCx<'_>) -> GResult<TokenStream> = $stmt;
                f(cx)
            }
            fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
                let f: fn(&mut OnnxCx<'_>) -> EResult<()> = $onnx;
                f(cx)
            }
            fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
                let f: fn(&[String]) -> String = $torch;
                let e = f(&cx.xs());
                cx.assign(&e);
                Ok(())
            }
        }
    };
}

list_merge!(Add, "add", concat: false, eval: add_eval, stmt: add_stmt, onnx: |cx| {
    let xs = cx.xs();
    cx.chain("Add", &xs)
}, torch: |xs| xs.join(" + "));
list_merge!(Mul, "mul", concat: false, eval: mul_eval, stmt: mul_stmt, onnx: |cx| {
    let xs = cx.xs();
    cx.chain("Mul", &xs)
}, torch: |xs| xs.join(" * "));
list_merge!(Concat, "concat", concat: true, eval: |cx| fpn_runtime::concat(&cx.x), stmt: |cx| views_call(cx, quote!(concat)), onnx: |cx| {
    let xs = cx.xs();
    cx.last("Concat", &xs, vec![attr::int("axis", 1)]);
    Ok(())
}, torch: |xs| format!("torch.cat([{}], 1)", xs.join(", ")));
list_merge!(Mean, "mean", concat: false, eval: |cx| fpn_runtime::mean(&cx.x), stmt: |cx| views_call(cx, quote!(mean)), onnx: |cx| {
    let xs = cx.xs();
    cx.last("Mean", &xs, Vec::new());
    Ok(())
}, torch: |xs| format!("({}) / {}", xs.join(" + "), xs.len()));

/// `add` in the interpreter: a sum, then each further input added in place.
fn add_eval(cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
    let mut acc = fpn_runtime::add(cx.x(0)?, cx.x(1)?)?;
    for k in 2..cx.x.len() {
        fpn_runtime::add_assign(&mut acc, cx.x(k)?)?;
    }
    Ok(acc)
}

/// `mul` in the interpreter: a product, then each further input multiplied in place.
fn mul_eval(cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
    let mut acc = fpn_runtime::mul(cx.x(0)?, cx.x(1)?)?;
    for k in 2..cx.x.len() {
        fpn_runtime::mul_assign(&mut acc, cx.x(k)?)?;
    }
    Ok(acc)
}

/// `mul` in `forward`: the first product allocates, further inputs multiply in place (the
/// interpreter's order, so results agree bit for bit).
fn mul_stmt(cx: &StmtCx<'_>) -> GResult<TokenStream> {
    let rt = &cx.gen.rt;
    let out = &cx.out;
    let (x0, x1) = (cx.view(0)?, cx.view(1)?);
    if cx.ins.len() == 2 {
        return Ok(quote!(let #out = #rt::mul(#x0, #x1)?;));
    }
    let mut t = quote!(let mut #out = #rt::mul(#x0, #x1)?;);
    for k in 2..cx.ins.len() {
        let o = cx.view(k)?;
        t.extend(quote!(#rt::mul_assign(&mut #out, #o)?;));
    }
    Ok(t)
}

/// `add` in `forward`: accumulates into a dying operand when one is free.
fn add_stmt(cx: &StmtCx<'_>) -> GResult<TokenStream> {
    let rt = &cx.gen.rt;
    let out = &cx.out;
    let n = cx.ins.len();
    if n < 2 {
        return Err(GenError::Unsupported(format!(
            "add `{}` has fewer than 2 inputs",
            cx.node.name
        )));
    }
    // accumulate into a dying operand: input 0, or input 1 (a + b == b + a exactly)
    let acc = if cx.movable(0) {
        Some((0, 1))
    } else if cx.movable(1) {
        Some((1, 0))
    } else {
        None
    };
    let mut t = match acc.and_then(|(k, other)| Some((cx.take_if_movable(k)?, other))) {
        Some((src, other)) => {
            let o = cx.view(other)?;
            quote! {
                let mut #out = #src;
                #rt::add_assign(&mut #out, #o)?;
            }
        }
        None => {
            let (x0, x1) = (cx.view(0)?, cx.view(1)?);
            if n > 2 {
                quote!(let mut #out = #rt::add(#x0, #x1)?;)
            } else {
                quote!(let #out = #rt::add(#x0, #x1)?;)
            }
        }
    };
    for k in 2..n {
        let o = cx.view(k)?;
        t.extend(quote!(#rt::add_assign(&mut #out, #o)?;));
    }
    Ok(t)
}

impl OpDef for Fuse {
    const KEYWORDS: &'static [&'static str] = &["fuse"];
    type Args = (Vec<Ref>, f64);

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<(Vec<Ref>, f64)> {
        let what = format!("`{}`", key.name);
        match &v.kind {
            ValueKind::Map(_) => {
                let mut m = r.map(v, &what)?;
                let refs = r.require(&mut m, "in", &what).and_then(|x| r.refs(x, "`in`"));
                let eps = match m.get("eps") {
                    Some(e) => r.float(e, "`eps`")?,
                    None => 1e-4,
                };
                r.finish(m, FUSE_KEYS, &what);
                Ok((refs?, eps))
            }
            _ => Ok((r.refs(v, &what)?, 1e-4)),
        }
    }
    fn refs(args: &(Vec<Ref>, f64)) -> Vec<&Ref> {
        args.0.iter().collect()
    }
    fn needs_input(_: &(Vec<Ref>, f64)) -> bool {
        false
    }
    fn lower(args: &(Vec<Ref>, f64), cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        cx.l.check_eps(args.1, cx.span)?;
        lower(&args.0, super::Op::Fuse(Fuse { eps: args.1 }), true, cx)
    }
    fn kind(&self) -> &'static str {
        "fuse"
    }
    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let n = cx.ins.len();
        let shape = infer(cx, false)?;
        let params = vec![ParamDecl {
            suffix: "weight",
            shape: vec![n as i64],
            init: InitKind::Ones(vec![n]),
            learnable: true,
        }];
        Ok(inferred(shape, n, params))
    }
    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        fpn_runtime::weighted_fusion(&cx.x, cx.param1("weight")?, self.eps as f32)
    }
    fn fields(&self, cx: &mut FieldCx<'_>) -> GResult<()> {
        let gen = cx.gen;
        let Some(p) = cx.new_prefix()? else {
            return Ok(());
        };
        let rt = &gen.rt;
        let ty = quote!(#rt::ndarray::Array1<f32>);
        let id = cx.param_field(p, "weight", ty, |n| format!("`{n}` (fusion weights)."))?;
        cx.register(p, id, FieldKind::Tensor);
        Ok(())
    }
    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let (_, f, _) = cx.field("fuse", Some)?;
        let e = f32_lit(self.eps, "eps", cx.node)?;
        let xs = cx.views()?;
        let out = &cx.out;
        Ok(quote!(let #out = #rt::weighted_fusion(&[#(#xs),*], self.#f.view(), #e)?;))
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        // the normalised weights are graph ops on the `weight` initializer (so the
        // initializer stays the state_dict tensor): relu(w) / (Σ relu(w) + eps), then
        // Σ wᵢ·xᵢ left to right, as the runtime's `weighted_fusion`
        let w = cx.param("weight")?;
        let r = cx.op("Relu", &[&w], Vec::new());
        let sum = cx.op("ReduceSum", &[&r], vec![attr::int("keepdims", 0)]);
        let eps = cx.floats("eps", &[], &[self.eps as f32]);
        let denom = cx.op("Add", &[&sum, &eps], Vec::new());
        let norm = cx.op("Div", &[&r, &denom], Vec::new());
        let mut terms = Vec::new();
        for (i, x) in cx.xs().iter().enumerate() {
            let k = cx.int_scalar("index", i as i64);
            let wi = cx.op("Gather", &[&norm, &k], vec![attr::int("axis", 0)]);
            terms.push(cx.op("Mul", &[x, &wi], Vec::new()));
        }
        cx.chain("Add", &terms)
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let xs = cx.xs();
        cx.call_module(
            format!("_Fuse({}, {})", xs.len(), py_float(self.eps)),
            &format!("[{}]", xs.join(", ")),
        )
    }
}
