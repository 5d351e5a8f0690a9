//! Presets: networks built from a few arguments — the ResNet backbones ([`resnet`]) and the
//! pyramid generators `fpn`, `panet`, `bifpn` ([`pyramid`]) — with the `state_dict` names of
//! the PyTorch modules they reproduce. They only add primitive ops; the helpers here add one
//! conv, norm, resize or merge under a [`Builder`]'s name and prefix.

pub(crate) mod pyramid;
pub(crate) mod resnet;

use crate::ast::{CnaNames, ConvKind, Norm};
use crate::diag::{Checked, Code, Diagnostic};
use crate::ir::{Conv, Op, Upsample};
use crate::lower::{join, Lower};
use crate::ops::act::Act;
use crate::ops::merge::{Add, Concat};
use crate::ops::norm::BatchNorm;
use crate::ops::pool::{MaxPool, Pool};
use crate::span::Span;
use fpn_runtime::{Activation, PaddingMode};
use petgraph::graph::NodeIndex;

/// A square window of the presets: kernel `k`, stride `s`, padding `p` on every side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    k: i64,
    s: i64,
    p: i64,
}

/// The [`Window`] `k`×`k`, stride `s`, padding `p`.
pub(crate) const fn win(k: i64, s: i64, p: i64) -> Window {
    Window { k, s, p }
}

/// Where a preset adds nodes: the node name and `state_dict` prefix of its part, and the span
/// every node points to.
#[derive(Clone)]
pub(crate) struct Builder {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) span: Span,
    /// How a generator's conv modules name their children (torchvision's `Conv2dNormActivation`
    /// `.0`/`.1`, or mmdet's `ConvModule` `.conv`/`.bn`).
    pub(crate) names: CnaNames,
}

impl Builder {
    pub(crate) fn sub(&self, part: &str) -> Builder {
        Builder {
            name: format!("{}.{part}", self.name),
            prefix: join(&self.prefix, part),
            span: self.span,
            names: self.names,
        }
    }
}

impl Lower<'_> {
    /// Adds `op` on `ins` as the node `part` under `b`; with `params`, its parameters are under
    /// `b`'s prefix and `part`.
    pub(crate) fn add_part(
        &mut self,
        b: &Builder,
        part: &str,
        op: Op,
        ins: Vec<NodeIndex>,
        params: bool,
    ) -> Checked<NodeIndex> {
        let prefix = params.then(|| join(&b.prefix, part));
        self.add(format!("{}.{part}", b.name), op, ins, b.span, prefix)
    }

    /// A conv named `part` under `b` with its parameters there: `out` channels, square window
    /// `win`, zero padding, no dilation or groups.
    pub(crate) fn pconv(
        &mut self,
        b: &Builder,
        part: &str,
        x: NodeIndex,
        out: i64,
        win: Window,
        bias: bool,
    ) -> Checked<NodeIndex> {
        let Window { k, s, p } = win;
        let conv = Conv {
            out,
            kernel: [k, k],
            stride: [s, s],
            padding: [p; 4],
            dilation: [1, 1],
            groups: 1,
            bias,
            mode: PaddingMode::Zeros,
            tf_same: false,
        };
        self.add_part(b, part, Op::Conv(conv), vec![x], true)
    }

    pub(crate) fn bn(&mut self, b: &Builder, part: &str, x: NodeIndex) -> Checked<NodeIndex> {
        self.bn_eps(b, part, x, 1e-5)
    }

    /// A batch norm with `eps` named `part` under `b`, its parameters there.
    pub(crate) fn bn_eps(&mut self, b: &Builder, part: &str, x: NodeIndex, eps: f64) -> Checked<NodeIndex> {
        self.add_part(b, part, Op::BatchNorm(BatchNorm { eps }), vec![x], true)
    }

    /// A 3×3/2 max pool with TensorFlow `SAME` padding named `part` under `b` (timm's
    /// `MaxPool2dSame` as effdet's `ResampleFeatureMap` makes it: `ceil(x/2)` outputs).
    pub(crate) fn tf_same_max_pool(&mut self, b: &Builder, part: &str, x: NodeIndex) -> Checked<NodeIndex> {
        self.window_max_pool(b, part, x, win(3, 2, 0), true)
    }

    /// A ReLU named `part` under `b` (no parameters).
    pub(crate) fn relu(&mut self, b: &Builder, part: &str, x: NodeIndex) -> Checked<NodeIndex> {
        self.add_part(b, part, Op::Act(Act(Activation::Relu)), vec![x], false)
    }

    /// A max pool named `part` under `b`: square kernel `k`, stride `s`, padding `p`, and
    /// PyTorch's defaults otherwise (no dilation, floor mode).
    pub(crate) fn max_pool(&mut self, b: &Builder, part: &str, x: NodeIndex, win: Window) -> Checked<NodeIndex> {
        self.window_max_pool(b, part, x, win, false)
    }

    /// [`Lower::max_pool`], with `padding: tf_same` instead of the window's padding if `tf_same`.
    fn window_max_pool(
        &mut self,
        b: &Builder,
        part: &str,
        x: NodeIndex,
        win: Window,
        tf_same: bool,
    ) -> Checked<NodeIndex> {
        let Window { k, s, p } = win;
        let pool = Pool {
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
            explicit_pad: None,
            tf_same,
        };
        self.add_part(b, part, Op::MaxPool(MaxPool(pool)), vec![x], false)
    }

    /// A lateral/smoothing conv of a generator: `conv` (bias) or `cna` (spec defaults), as a
    /// torchvision `Conv2dNormActivation` whose conv is child `0`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gconv(
        &mut self,
        b: &Builder,
        part: &str,
        kind: ConvKind,
        x: NodeIndex,
        out: i64,
        k: i64,
        s: i64,
    ) -> Checked<NodeIndex> {
        let p = (k - 1) / 2;
        let bb = b.sub(part);
        let norm = self.spec.defaults.norm.clone().unwrap_or(Norm::BatchNorm(1e-5));
        let (conv_child, norm_child) = b.names.children(&norm);
        match kind {
            ConvKind::None => Ok(x),
            ConvKind::Conv => self.pconv(&bb, conv_child, x, out, win(k, s, p), true),
            ConvKind::Cna => {
                let act = self.spec.defaults.act.unwrap_or(Activation::Relu);
                let mut y = self.pconv(&bb, conv_child, x, out, win(k, s, p), norm == Norm::None)?;
                let mut i = 1;
                if let Some(op) = self.norm_op(&norm, b.span, &crate::lower::Env::new())? {
                    y = self.add_part(&bb, norm_child, op, vec![y], true)?;
                    i = 2;
                }
                if act != Activation::Identity {
                    let act_child = match b.names {
                        CnaNames::Torchvision => i.to_string(),
                        CnaNames::Ultralytics => "act".to_string(),
                    };
                    y = self.add_part(&bb, &act_child, Op::Act(Act(act)), vec![y], false)?;
                }
                Ok(y)
            }
        }
    }

    /// A plain conv with bias named `part` under `b` (torchvision names it `part` itself; an
    /// mmdet `ConvModule` has it as `part.conv`): the extra levels' convs.
    pub(crate) fn gconv_sq(
        &mut self,
        b: &Builder,
        part: &str,
        x: NodeIndex,
        out: i64,
        w: Window,
    ) -> Checked<NodeIndex> {
        match b.names {
            CnaNames::Torchvision => self.pconv(b, part, x, out, w, true),
            CnaNames::Ultralytics => self.pconv(&b.sub(part), "conv", x, out, w, true),
        }
    }

    pub(crate) fn resize(
        &mut self,
        b: &Builder,
        part: &str,
        x: NodeIndex,
        like: NodeIndex,
        scale: Option<f64>,
    ) -> Checked<NodeIndex> {
        let (sc, ins) = match scale.filter(|v| v.is_finite() && *v > 0.0 && *v < 1e6) {
            Some(f) => (Some([f, f]), vec![x]),
            None if scale.is_some() => {
                return Err(self.err(
                    Diagnostic::error(Code::E0213, b.span, "the pyramid's `upsample` scale is not supported")
                        .with_label("bad scale")
                        .with_help("use `upsample: match` (torchvision) or a scale like 2"),
                ));
            }
            None => (None, vec![x, like]),
        };
        self.add_part(
            b,
            part,
            Op::Upsample(Upsample {
                bilinear: false,
                align_corners: false,
                scale: sc,
            }),
            ins,
            false,
        )
    }

    pub(crate) fn merge(&mut self, b: &Builder, part: &str, concat: bool, ins: Vec<NodeIndex>) -> Checked<NodeIndex> {
        self.add_part(
            b,
            part,
            if concat { Op::Concat(Concat) } else { Op::Add(Add) },
            ins,
            false,
        )
    }
}
