//! Merges of two or more feature maps: `add` (`torch.add`), `mul` (`torch.mul`), `concat`
//! (`torch.cat(dim=1)`),
//! `mean` (elementwise mean), `fuse` (BiFPN fast normalised fusion, `Σ relu(wᵢ)·xᵢ /
//! (Σ relu(wᵢ) + eps)` with one learned weight per input).
//!
//! Shape rule: every input has the first input's height and width (a
//! `CheckKind::Equal` constraint per input and axis); `add`, `mul`,
//! `mean` and `fuse` also need equal channels (E0304), `concat` sums them. `fuse` has the
//! parameter `weight [n]` (init ones), called `edge_weights` with `names: effdet` (effdet's
//! `FpnCombine` with `weight_method='fastattn'`).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// The keys of `fuse: {…}`.
pub(crate) const FUSE_KEYS: &[&str] = &["in", "eps", "names"];
/// The names `fuse: {names: …}` takes.
pub(crate) const FUSE_NAMES: &[&str] = &["fpn", "effdet"];

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
    /// The name of its weights.
    pub names: FuseNames,
}

/// What a fusion's learned weights are called in the `state_dict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuseNames {
    /// `<node>.weight` (fpn's own, the default).
    Fpn,
    /// `<node>.edge_weights`: effdet's `FpnCombine` (`fastattn`), whose PyTorch module computes
    /// `Σ xᵢ·relu(wᵢ) / (Σ relu(w) + eps)`.
    Effdet,
}

impl FuseNames {
    /// The parameter's suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            FuseNames::Fpn => "weight",
            FuseNames::Effdet => "edge_weights",
        }
    }
}

/// `fuse:` as written: the inputs, eps and weight names.
#[derive(Clone, Debug, PartialEq)]
pub struct FuseArgs {
    /// The inputs.
    pub inputs: Vec<Ref>,
    /// Epsilon (default 1e-4).
    pub eps: f64,
    /// Weight names (default fpn's `weight`).
    pub names: FuseNames,
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

/// `concat`: one call of the runtime's, or, when producers wrote some parts straight into
/// the buffer (`StmtCx::in_place`), copies of the other parts only.
fn concat_stmt(cx: &StmtCx<'_>) -> GResult<TokenStream> {
    if !(0..cx.ins.len()).any(|k| cx.in_place(k)) {
        return views_call(cx, quote!(concat));
    }
    let rt = &cx.gen.rt;
    let out = &cx.out;
    let mut rest = Vec::new();
    let mut c0 = 0usize;
    for (k, &j) in cx.ins.iter().enumerate() {
        if !cx.in_place(k) {
            let x = cx.view(k)?;
            let at = Literal::usize_unsuffixed(c0);
            rest.push(quote!((#at, #x)));
        }
        c0 += usize::try_from(cx.gen.shape(j).c)
            .map_err(|_| GenError::Unsupported(format!("node `{}` has a negative channel count", cx.node.name)))?;
    }
    Ok(if rest.is_empty() {
        TokenStream::new()
    } else {
        quote!(#rt::concat_rest(&mut #out, &[#(#rest),*])?;)
    })
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
list_merge!(Concat, "concat", concat: true, eval: |cx| fpn_runtime::concat(&cx.x), stmt: concat_stmt, onnx: |cx| {
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
    type Args = FuseArgs;

    fn read(r: &mut Reader, key: &Key, v: &Value) -> Checked<FuseArgs> {
        let what = format!("`{}`", key.name);
        match &v.kind {
            ValueKind::Map(_) => {
                let mut m = r.map(v, &what)?;
                let refs = r.require(&mut m, "in", &what).and_then(|x| r.refs(x, "`in`"));
                let eps = match m.get("eps") {
                    Some(e) => r.float(e, "`eps`")?,
                    None => 1e-4,
                };
                let names = match m.get("names") {
                    Some(n) => read_fuse_names(r, n)?,
                    None => FuseNames::Fpn,
                };
                r.finish(m, FUSE_KEYS, &what);
                Ok(FuseArgs {
                    inputs: refs?,
                    eps,
                    names,
                })
            }
            _ => Ok(FuseArgs {
                inputs: r.refs(v, &what)?,
                eps: 1e-4,
                names: FuseNames::Fpn,
            }),
        }
    }
    fn refs(args: &FuseArgs) -> Vec<&Ref> {
        args.inputs.iter().collect()
    }
    fn needs_input(_: &FuseArgs) -> bool {
        false
    }
    fn lower(args: &FuseArgs, cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        cx.l.check_eps(args.eps, cx.span)?;
        let op = super::Op::Fuse(Fuse {
            eps: args.eps,
            names: args.names,
        });
        lower(&args.inputs, op, true, cx)
    }
    fn kind(&self) -> &'static str {
        "fuse"
    }
    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let n = cx.ins.len();
        let shape = infer(cx, false)?;
        let params = vec![ParamDecl {
            suffix: self.names.suffix(),
            shape: vec![n as i64],
            init: InitKind::Ones(vec![n]),
            learnable: true,
        }];
        Ok(inferred(shape, n, params))
    }
    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        fpn_runtime::weighted_fusion(&cx.x, cx.param1(self.names.suffix())?, self.eps as f32)
    }
    fn fields(&self, cx: &mut FieldCx<'_>) -> GResult<()> {
        let gen = cx.gen;
        let Some(p) = cx.new_prefix()? else {
            return Ok(());
        };
        let rt = &gen.rt;
        let ty = quote!(#rt::ndarray::Array1<f32>);
        let id = cx.param_field(p, self.names.suffix(), ty, |n| format!("`{n}` (fusion weights)."))?;
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
        let w = cx.param(self.names.suffix())?;
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
        let class = match self.names {
            FuseNames::Fpn => "_Fuse",
            FuseNames::Effdet => {
                cx.helper(EDGE_FUSE);
                "_EdgeFuse"
            }
        };
        cx.call_module(
            format!("{class}({}, {})", xs.len(), py_float(self.eps)),
            &format!("[{}]", xs.join(", ")),
        )
    }
}

/// effdet's `FpnCombine` with `weight_method='fastattn'` (its arithmetic, its `edge_weights`).
const EDGE_FUSE: &str = r#"class _EdgeFuse(_Fuse):
    """effdet's FpnCombine ('fastattn'): sum_i x_i * relu(w_i) / (sum_j relu(w_j) + eps), its
    weights called `edge_weights`."""

    def __init__(self, n, eps):
        super().__init__(n, eps)
        self.edge_weights = self.weight
        del self.weight

    def forward(self, xs):
        w = F.relu(self.edge_weights)
        s = torch.sum(w)
        return torch.stack([xs[i] * w[i] / (s + self.eps) for i in range(len(xs))], dim=-1).sum(dim=-1)
"#;

/// Reads `fuse: {names: …}` (E0114 for another name).
fn read_fuse_names(r: &mut Reader, v: &Value) -> Checked<FuseNames> {
    let n = r.name(v, "`names`")?;
    match n.text.as_str() {
        "fpn" => Ok(FuseNames::Fpn),
        "effdet" => Ok(FuseNames::Effdet),
        other => Err(r.err(
            Diagnostic::error(Code::E0114, n.span, format!("unknown fusion names `{other}`"))
                .with_label("not a naming scheme of `fuse`")
                .with_help(format!(
                    "{} (`fpn`: weights `<node>.weight`, the default; `effdet`: `<node>.edge_weights`, effdet's `FpnCombine`)",
                    match crate::ast::did_you_mean(other, FUSE_NAMES.iter().copied()) {
                        d if d.is_empty() => "`names` of a `fuse` is `fpn` or `effdet`".to_string(),
                        d => d,
                    }
                )),
        )),
    }
}
