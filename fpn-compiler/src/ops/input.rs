//! A graph input `[C, H, W]` (declared under `inputs:`, not by an op keyword).
//!
//! Shape rule: its declared sizes, each at least 1; a division in a size is exact (`H/16`
//! accepts only `H` with `16 | H`, a [`CheckKind::ExactDiv`] constraint), so the symbol can be
//! solved back from the size ([`Dim::solve`]).

use crate::diag::Checked;
use proc_macro2::TokenStream;

use super::{EvalCx, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::Reader;
use crate::back::onnx::{EResult, OnnxCx};
use crate::back::rust::{GResult, StmtCx};
use crate::back::torch::{TResult, TorchCx};
use crate::dim::Dim;
use crate::infer::{CheckKind, Constraint, Shape};
use crate::value::{Key, Value};

/// A graph input.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// Input name.
    pub name: String,
    /// Channels.
    pub channels: i64,
    /// Height and width.
    pub size: [Dim; 2],
}

impl OpDef for Input {
    const KEYWORDS: &'static [&'static str] = &[];
    type Args = ();

    // Inputs are declared under `inputs:`, not written as ops (no keywords): these two are
    // never called.
    fn read(r: &mut Reader, key: &Key, _: &Value) -> Checked<()> {
        Err(r.err(crate::diag::internal(key.span, "an input read as an op")))
    }

    fn lower(_: &(), cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        Err(cx.l.err(crate::diag::internal(cx.span, "an input lowered as an op")))
    }

    fn kind(&self) -> &'static str {
        "input"
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        for (axis, d) in self.size.iter().enumerate() {
            if matches!(d, Dim::Const(_) | Dim::Sym(_)) {
                continue;
            }
            for (num, div) in d.divisions() {
                match num.floor_div(div).and_then(|q| q.lin(div, 0)) {
                    Some(lhs) => cx.cons.push(Constraint {
                        kind: CheckKind::ExactDiv,
                        node: cx.idx,
                        axis,
                        lhs,
                        rhs: num.clone(),
                        slots: (0, 0),
                    }),
                    None => cx.overflow("an input size"),
                }
            }
            cx.cons.push(Constraint::positive(cx.idx, axis, d.clone()));
        }
        Ok(Inferred {
            shape: Shape {
                c: self.channels,
                h: self.size[0].clone(),
                w: self.size[1].clone(),
            },
            params: Vec::new(),
            flops: Some(0),
        })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let (_, v) =
            cx.inputs
                .iter()
                .find(|(m, _)| *m == self.name)
                .ok_or_else(|| fpn_runtime::Error::InvalidParams {
                    op: "forward",
                    reason: format!("input `{}` is missing", self.name),
                })?;
        Ok(v.as_standard_layout().into_owned())
    }

    fn stmt(&self, _: &StmtCx<'_>) -> GResult<TokenStream> {
        // bound from `inputs` at the top of `forward`
        Ok(TokenStream::new())
    }

    fn onnx(&self, _cx: &mut OnnxCx<'_>) -> EResult<()> {
        // a graph input of the model: its value is named as the input, nothing to compute
        Ok(())
    }

    fn torch(&self, _cx: &mut TorchCx<'_>) -> TResult<()> {
        // an argument of `forward`, named as the input
        Ok(())
    }
}
