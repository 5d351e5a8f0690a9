//! One part of a `chunk` / `split` along the channels: `x.chunk(n, 1)[k]` or
//! `x.split([a, b, …], 1)[k]` (ultralytics' C2f: `y = list(cv1(x).chunk(2, 1))`). No weights.
//!
//! `chunk` and `split` are read and lowered in `crate::composite`: a node `c: {chunk: 2}`
//! becomes one [`ChannelSlice`] node per part (`c.0`, `c.1`), referenced as `c.0`, `c.1`.
//! This op has no keyword of its own.
//!
//! Shape rule: part `k` has the input's height and width and the `len` of range `k` of
//! [`fpn_runtime::split_ranges`] as channels: `C / n` for `chunk: n` (which must divide `C`),
//! the `k`-th size for `split` (the sizes must sum to `C`); otherwise E0329 at the node, once
//! (reported by part 0; the other parts go on with a stand-in). The interpreter and the
//! generated code copy channels `start..start + len` ([`fpn_runtime::channel_slice`]).

use fpn_runtime::ChannelSplit;
use proc_macro2::TokenStream;
use quote::quote;

use super::{elementwise, EvalCx, InferCx, Inferred, LowerCx, Lowered, OpDef};
use crate::ast::Reader;
use crate::back::onnx::{EResult, OnnxCx};
use crate::back::rust::{usize_lit, GResult, GenError, StmtCx};
use crate::back::torch::{TResult, TorchCx};
use crate::diag::{Checked, Code, Diagnostic, Reported};
use crate::infer::Shape;
use crate::value::{Key, Value};

/// Part `part` of a channel split.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelSlice {
    /// How the channels are divided.
    pub split: ChannelSplit,
    /// Which part (0-based).
    pub part: usize,
}

impl ChannelSlice {
    /// `(start, len)` of this part on `c` input channels, or why the split does not apply.
    pub fn range(&self, c: i64) -> Result<(i64, i64), String> {
        let ranges = fpn_runtime::split_ranges(c, &self.split)?;
        ranges
            .get(self.part)
            .copied()
            .ok_or_else(|| format!("part {} of {} does not exist", self.part, ranges.len()))
    }

    fn keyword(&self) -> &'static str {
        match self.split {
            ChannelSplit::Chunks(_) => "chunk",
            ChannelSplit::Sizes(_) => "split",
        }
    }
}

impl OpDef for ChannelSlice {
    const KEYWORDS: &'static [&'static str] = &[];
    type Args = ();

    // `chunk` and `split` are composites (several outputs): these two are never called.
    fn read(r: &mut Reader, key: &Key, _: &Value) -> Checked<()> {
        Err(r.err(crate::diag::internal(key.span, "a channel slice read as an op")))
    }

    fn lower(_: &(), cx: &mut LowerCx<'_, '_>) -> Checked<Lowered> {
        Err(cx
            .l
            .err(crate::diag::internal(cx.span, "a channel slice lowered as an op")))
    }

    fn kind(&self) -> &'static str {
        self.keyword()
    }

    fn infer(&self, cx: &mut InferCx<'_>) -> Checked<Inferred> {
        let x = cx.input(0)?;
        let len = match self.range(x.c) {
            Ok((_, len)) => len,
            Err(_) if self.part > 0 => x.c, // part 0 reported it
            Err(reason) => {
                let name = cx.node.name.rsplit_once('.').map_or(cx.node.name.as_str(), |(n, _)| n);
                let (what, help) = match &self.split {
                    ChannelSplit::Chunks(n) => (
                        format!("`{name}` chunks {} channels into {n} parts", x.c),
                        format!(
                            "give the node before it a multiple of {n} channels (fpn refuses PyTorch's uneven last chunk), or use `split: [..]` with sizes summing to {}",
                            x.c
                        ),
                    ),
                    ChannelSplit::Sizes(s) => (
                        format!(
                            "`{name}` splits {} channels into sizes summing to {}",
                            x.c,
                            s.iter().fold(0i64, |a, b| a.saturating_add(*b))
                        ),
                        format!("make the sizes sum to {}", x.c),
                    ),
                };
                return Err(Reported::push(
                    cx.diags,
                    Diagnostic::error(Code::E0329, cx.node.span, what)
                        .with_label(format!("input has {} channels", x.c))
                        .with_note(reason)
                        .with_help(help),
                ));
            }
        };
        let shape = Shape { c: len, h: x.h, w: x.w };
        Ok(Inferred {
            flops: elementwise(&shape, 0),
            shape,
            params: Vec::new(),
        })
    }

    fn eval(&self, cx: &EvalCx<'_, '_>) -> fpn_runtime::Result<fpn_runtime::Tensor> {
        let x = cx.x(0)?;
        let bad = |reason: String| fpn_runtime::Error::InvalidParams { op: "interp", reason };
        let c = i64::try_from(x.shape()[1]).map_err(|_| bad("too many channels".into()))?;
        let (start, len) = self.range(c).map_err(bad)?;
        let u = |v: i64| usize::try_from(v).map_err(|_| bad(format!("negative channel range of `{}`", cx.node.name)));
        fpn_runtime::channel_slice(x, u(start)?, u(len)?)
    }

    fn stmt(&self, cx: &StmtCx<'_>) -> GResult<TokenStream> {
        let rt = &cx.gen.rt;
        let input = *cx
            .node
            .inputs
            .first()
            .ok_or_else(|| GenError::Unsupported(format!("node `{}` lacks its input", cx.node.name)))?;
        let c = cx.gen.shape(input).c;
        let (start, len) = self.range(c).map_err(GenError::Unsupported)?;
        let (start, len) = (
            usize_lit(start, "channel start", cx.node)?,
            usize_lit(len, "channel count", cx.node)?,
        );
        let x = cx.view(0)?;
        let out = &cx.out;
        Ok(quote!(let #out = #rt::channel_slice(#x, #start, #len)?;))
    }

    fn onnx(&self, cx: &mut OnnxCx<'_>) -> EResult<()> {
        // one `Slice` per part (`chunk`/`split` are one node per part in the IR)
        let x = cx.x(0)?;
        let c = cx.in_shape(0)?.c;
        let (start, len) = self
            .range(c)
            .map_err(|e| cx.unsupported(e, "this is a bug in fpn: the checker accepted the split".into()))?;
        let (s, e, ax) = (
            cx.ints("starts", &[start]),
            cx.ints("ends", &[start + len]),
            cx.ints("axes", &[1]),
        );
        cx.last("Slice", &[&x, &s, &e, &ax], Vec::new());
        Ok(())
    }

    fn torch(&self, cx: &mut TorchCx<'_>) -> TResult<()> {
        let (x, c) = (cx.x(0)?, cx.cin()?);
        let (start, len) = self.range(c).map_err(|e| cx.unsupported(e))?;
        cx.assign(&format!("{x}[:, {start}:{}]", start + len));
        Ok(())
    }
}
