//! The pyramid generators: `fpn` (torchvision `FeaturePyramidNetwork`), `panet` (FPN plus a
//! bottom-up path) and `bifpn` (EfficientDet), with their extra levels.

use super::{win, Builder};
use crate::ast::{self, CnaNames, ConvKind, Extra, ExtraSource, PyramidKind};
use crate::ast::{did_you_mean, type_error, Int, PyramidArgs};
use crate::diag::{Checked, Code, Diagnostic};
use crate::ir::{Conv, Op};
use crate::lower::{trailing_number, Env, Handle, Lower};
use crate::ops::act::Act;
use crate::ops::merge::{Fuse, FuseNames};
use crate::span::Span;
use crate::value::{Value, ValueKind};
use fpn_runtime::{Activation, PaddingMode};
use petgraph::graph::NodeIndex;

/// The keys of `fpn`, `panet` and `bifpn: {…}`.
pub(crate) const PYRAMID_KEYS: &[&str] = &[
    "in", "width", "levels", "lateral", "smooth", "upsample", "merge", "extra", "repeats", "eps", "bn_eps", "names",
];
/// The names `names:` of a pyramid takes (`mmdet` for an fpn, `effdet` for a bifpn).
pub(crate) const PYRAMID_NAMES: &[&str] = &["torchvision", "mmdet", "effdet"];
/// The keys of `extra: {p6p7: {…}}`.
pub(crate) const P6P7_KEYS: &[&str] = &["from", "relu"];

impl Lower<'_> {
    pub(crate) fn pyramid(&mut self, p: &ast::PyramidArgs, env: &Env, name: &str, prefix: &str) -> Checked<Handle> {
        let xs: Vec<NodeIndex> = self.resolve_many(&p.inputs)?.into_iter().map(|(_, n)| n).collect();
        let width = self.eval_pos(&p.width, env, "the pyramid width", 1)?;
        let n = xs.len();
        if n < 2 {
            return Err(self.err(
                Diagnostic::error(
                    Code::E0222,
                    p.span,
                    format!("a pyramid needs at least two input levels, found {n}"),
                )
                .with_label("too few levels")
                .with_help("list backbone levels finest first: `in: [c3, c4, c5]`"),
            ));
        }
        let levels: Vec<i64> = if p.levels.is_empty() {
            let digits: Option<Vec<i64>> = p
                .inputs
                .iter()
                .map(|r| trailing_number(r.sub.as_deref().unwrap_or(&r.node)))
                .collect();
            match digits {
                Some(d) if d.len() == n && d.windows(2).all(|w| w[1] == w[0] + 1) => d,
                _ => (0..n as i64).collect(),
            }
        } else {
            p.levels.clone()
        };
        if levels.len() != n {
            return Err(self.err(
                Diagnostic::error(
                    Code::E0222,
                    p.span,
                    format!("`levels` has {} entries for {n} inputs", levels.len()),
                )
                .with_label("one level number per input")
                .with_help("e.g. `in: [c3, c4, c5]` with `levels: [3, 4, 5]`"),
            ));
        }
        if p.concat && p.smooth == ConvKind::None {
            return Err(self.err(
                Diagnostic::error(
                    Code::E0223,
                    p.span,
                    "`merge: concat` needs a smoothing conv to bring channels back to `width`",
                )
                .with_label("smooth: none")
                .with_help("use `smooth: conv` or `smooth: cna` with `merge: concat`"),
            ));
        }
        let b = Builder {
            name: name.to_string(),
            prefix: prefix.to_string(),
            span: p.span,
            names: if p.mmdet {
                CnaNames::Ultralytics
            } else {
                CnaNames::Torchvision
            },
        };
        let mut top_lateral = None;
        if let Some(e) = p.bn_eps {
            self.check_eps(e, p.span)?;
        }
        let mut outs: Vec<NodeIndex> = match p.kind {
            PyramidKind::Fpn | PyramidKind::Panet => self.top_down(&b, p, &xs, width, &mut top_lateral)?,
            PyramidKind::Bifpn if p.effdet => {
                let repeats = self.eval_pos(&p.repeats, env, "`repeats`", 1)?;
                let extra = match &p.extra {
                    Extra::Levels(k) => self.eval_pos(k, env, "the extra levels", 1)?,
                    _ => 0,
                };
                self.bifpn_effdet(&b, p, &xs, width, [repeats, extra])?
            }
            PyramidKind::Bifpn => {
                if let Extra::Levels(n) = &p.extra {
                    return Err(self.err(
                        Diagnostic::error(
                            Code::E0113,
                            n.span,
                            "`extra: {levels: n}` is effdet's BiFPN: it needs `names: effdet`",
                        )
                        .with_label("extra BiFPN levels")
                        .with_help("add `names: effdet` to the bifpn, or use `extra: p6p7` (RetinaNet-style levels after the cells)"),
                    ));
                }
                self.bifpn(&b, p, &xs, width, env)?
            }
        };
        if p.kind == PyramidKind::Panet {
            let mut ns = vec![outs[0]];
            for i in 1..n {
                let d = self.gconv(
                    &b,
                    &format!("downsample_blocks.{}", i - 1),
                    if p.smooth == ConvKind::None {
                        ConvKind::Conv
                    } else {
                        p.smooth
                    },
                    ns[i - 1],
                    width,
                    3,
                    2,
                )?;
                let m = self.merge(&b, &format!("bottom_up.{}", i - 1), p.concat, vec![d, outs[i]])?;
                let kind = if p.smooth == ConvKind::None {
                    ConvKind::Conv
                } else {
                    p.smooth
                };
                ns.push(self.gconv(&b, &format!("pan_blocks.{}", i - 1), kind, m, width, 3, 1)?);
            }
            outs = ns;
        }
        let top = levels[n - 1];
        // effdet's extra levels are pyramid levels: top + 1, top + 2, …
        let mut named: Vec<(String, NodeIndex)> = levels
            .iter()
            .copied()
            .chain((1..).map(|k| top.saturating_add(k)))
            .zip(&outs)
            .map(|(l, o)| (format!("p{l}"), *o))
            .collect();
        let top = top.saturating_add(outs.len() as i64 - n as i64);
        match p.extra {
            Extra::None | Extra::Levels(_) => {}
            Extra::MaxPool => {
                let e = self.max_pool(&b, "pool", outs[n - 1], win(1, 2, 0))?;
                named.push((format!("p{}", top + 1), e));
            }
            Extra::P6P7 { from, relu } => {
                let src = match (from, top_lateral) {
                    (ExtraSource::Input, _) => xs[n - 1],
                    (ExtraSource::Output, _) => outs[n - 1],
                    (ExtraSource::Lateral, Some(l)) => l,
                    (ExtraSource::Lateral, None) => {
                        return Err(self.err(
                            Diagnostic::error(
                                Code::E0222,
                                p.span,
                                "`extra: {p6p7: {from: lateral}}` needs an fpn or panet",
                            )
                            .with_label("no lateral to start from")
                            .with_help("use `from: input` or `from: output`"),
                        ))
                    }
                };
                // torchvision: extra_blocks.p6 / .p7 with a ReLU between; mmdet: fpn_convs.<n>,
                // fpn_convs.<n+1> (ConvModule: `.conv`), no ReLU unless asked
                let (eb, p6n, p7n) = if p.mmdet {
                    (b.clone(), format!("fpn_convs.{n}"), format!("fpn_convs.{}", n + 1))
                } else {
                    (b.sub("extra_blocks"), "p6".to_string(), "p7".to_string())
                };
                let p6 = self.gconv_sq(&eb, &p6n, src, width, win(3, 2, 1))?;
                let mid = if relu.unwrap_or(!p.mmdet) {
                    self.relu(&eb, &format!("{p6n}_relu"), p6)?
                } else {
                    p6
                };
                let p7 = self.gconv_sq(&eb, &p7n, mid, width, win(3, 2, 1))?;
                named.push((format!("p{}", top + 1), p6));
                named.push((format!("p{}", top + 2), p7));
            }
        }
        Ok(Handle::Many(named))
    }

    /// torchvision `FeaturePyramidNetwork.forward`.
    /// (mmdet `FPN.forward` with `names: mmdet`: the same graph, `lateral_convs` / `fpn_convs`.)
    /// `top_lateral` gets the top level's lateral (for extras `from: lateral`).
    fn top_down(
        &mut self,
        b: &Builder,
        p: &ast::PyramidArgs,
        xs: &[NodeIndex],
        width: i64,
        top_lateral: &mut Option<NodeIndex>,
    ) -> Checked<Vec<NodeIndex>> {
        let n = xs.len();
        let (lat_name, smooth_name) = if p.mmdet {
            ("lateral_convs", "fpn_convs")
        } else {
            ("inner_blocks", "layer_blocks")
        };
        let mut results = vec![NodeIndex::end(); n];
        let mut last = self.gconv(b, &format!("{lat_name}.{}", n - 1), p.lateral, xs[n - 1], width, 1, 1)?;
        *top_lateral = Some(last);
        results[n - 1] = self.gconv(b, &format!("{smooth_name}.{}", n - 1), p.smooth, last, width, 3, 1)?;
        if p.concat {
            last = results[n - 1];
        }
        for idx in (0..n - 1).rev() {
            let lat = self.gconv(b, &format!("{lat_name}.{idx}"), p.lateral, xs[idx], width, 1, 1)?;
            let up = self.resize(b, &format!("top_down.{idx}"), last, lat, p.upsample)?;
            let m = self.merge(b, &format!("merge.{idx}"), p.concat, vec![lat, up])?;
            results[idx] = self.gconv(b, &format!("{smooth_name}.{idx}"), p.smooth, m, width, 3, 1)?;
            last = if p.concat { results[idx] } else { m };
        }
        Ok(results)
    }

    /// EfficientDet BiFPN: lateral 1×1 projections, then `repeats` cells of a weighted top-down
    /// and bottom-up pass; each fused node is fuse → SiLU → depthwise 3×3 → pointwise 1×1 → BN.
    fn bifpn(
        &mut self,
        b: &Builder,
        p: &ast::PyramidArgs,
        xs: &[NodeIndex],
        width: i64,
        env: &Env,
    ) -> Checked<Vec<NodeIndex>> {
        let n = xs.len();
        let repeats = self.eval_pos(&p.repeats, env, "`repeats`", 1)?;
        let mut ps = Vec::new();
        for (i, &x) in xs.iter().enumerate() {
            ps.push(self.gconv(
                b,
                &format!("lateral.{i}"),
                if p.lateral == ConvKind::None {
                    ConvKind::Conv
                } else {
                    p.lateral
                },
                x,
                width,
                1,
                1,
            )?);
        }
        for r in 0..repeats {
            let cell = b.sub(&format!("cells.{r}"));
            let mut td = ps.clone();
            for i in (0..n - 1).rev() {
                let up = self.resize(&cell, &format!("td_up.{i}"), td[i + 1], ps[i], p.upsample)?;
                td[i] = self.fused(&cell, &format!("td.{i}"), vec![ps[i], up], width, p)?;
            }
            let mut out = td.clone();
            for i in 1..n {
                let down = self.max_pool(&cell, &format!("down.{i}"), out[i - 1], win(3, 2, 1))?;
                let ins = if i == n - 1 {
                    vec![ps[i], down]
                } else {
                    vec![ps[i], td[i], down]
                };
                out[i] = self.fused(&cell, &format!("out.{i}"), ins, width, p)?;
            }
            ps = out;
        }
        Ok(ps)
    }

    fn fused(
        &mut self,
        b: &Builder,
        part: &str,
        ins: Vec<NodeIndex>,
        width: i64,
        p: &ast::PyramidArgs,
    ) -> Checked<NodeIndex> {
        let bb = b.sub(part);
        let fuse = Fuse {
            eps: p.eps,
            names: FuseNames::Fpn,
        };
        let f = self.add_part(&bb, "fuse", Op::Fuse(fuse), ins, true)?;
        let names = ["act", "dw", "pw", "bn"];
        self.separable(&bb, names, f, width, p.bn_eps.unwrap_or(1e-5))
    }

    /// SiLU, then a depthwise 3×3 conv (padding 1, no bias), a pointwise 1×1 conv (bias) and a
    /// batch norm with `eps`: a BiFPN node after its fusion, the parts named `names` under `b`
    /// (effdet's `after_combine` with `SeparableConv2d`: `act`, `conv.conv_dw`, `conv.conv_pw`,
    /// `conv.bn`).
    fn separable(&mut self, b: &Builder, names: [&str; 4], x: NodeIndex, width: i64, eps: f64) -> Checked<NodeIndex> {
        let a = self.add_part(b, names[0], Op::Act(Act(Activation::Silu)), vec![x], false)?;
        let dw = Conv {
            out: width,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1; 4],
            dilation: [1, 1],
            groups: width,
            bias: false,
            mode: PaddingMode::Zeros,
            tf_same: false,
        };
        let d = self.add_part(b, names[1], Op::Conv(dw), vec![a], true)?;
        let pw = self.pconv(b, names[2], d, width, win(1, 1, 0), true)?;
        self.bn_eps(b, names[3], pw, eps)
    }

    /// effdet's `BiFpn` (`names: effdet`), module for module:
    /// - `resample.<l>` for each extra level `l` (`extra: {levels: n}`), made before the cells
    ///   from the level below: a 1×1 conv + BN (`conv.conv`, `conv.bn`) where that level is not
    ///   `width` wide, then a 3×3/2 max pool with TensorFlow `SAME` padding (`downsample`);
    /// - `cell.<r>` for each repeat, each with effdet's `bifpn_config` nodes `fnode.<k>`: the
    ///   top-down nodes first (levels top−1 down to the lowest), then the bottom-up ones (the
    ///   second level up to the top). A node's `combine` takes its inputs by effdet's ids (the
    ///   cell's levels `0..L`, then one per node), each through `combine.resample.<id>`: a 1×1
    ///   conv + BN where the input is not `width` wide (only cell 0's backbone levels: so C4 and
    ///   C5 get a second projection in the bottom-up path), then a nearest upsample to the
    ///   node's level size (`upsample`) or a `SAME` 3×3/2 max pool (`downsample`); then
    ///   fast-normalized fusion (`combine.edge_weights`) and `after_combine`: SiLU, depthwise
    ///   3×3, pointwise 1×1 with bias, BN.
    ///
    /// `repeats_extra` is the number of cells and of extra levels. Returns the last cell's
    /// levels, lowest first (the extra levels last).
    fn bifpn_effdet(
        &mut self,
        b: &Builder,
        p: &ast::PyramidArgs,
        xs: &[NodeIndex],
        width: i64,
        repeats_extra: [i64; 2],
    ) -> Checked<Vec<NodeIndex>> {
        let [repeats, extra] = repeats_extra;
        let bn_eps = p.bn_eps.unwrap_or(1e-3);
        // each level: its node and whether it is already `width` wide (unknown: projected)
        let mut feats: Vec<(NodeIndex, bool)> = xs
            .iter()
            .zip(self.channels_of(xs))
            .map(|(&x, c)| (x, c == Some(width)))
            .collect();
        for _ in 0..extra {
            let l = feats.len();
            let rb = b.sub(&format!("resample.{l}"));
            let (mut y, wide) = feats[l - 1];
            if !wide {
                y = self.effdet_projection(&rb, y, width, bn_eps)?;
            }
            feats.push((self.tf_same_max_pool(&rb, "downsample", y)?, true));
        }
        let levels = feats.len();
        for r in 0..repeats {
            let cell = b.sub(&format!("cell.{r}"));
            // effdet's node ids: the cell's levels, then each fnode's output; their levels
            let mut ids: Vec<((NodeIndex, bool), usize)> = feats.iter().copied().zip(0..).collect();
            let mut last: Vec<usize> = (0..levels).collect();
            let mut all: Vec<Vec<usize>> = (0..levels).map(|l| vec![l]).collect();
            let order = (0..levels - 1).rev().chain(1..levels);
            for (k, l) in order.enumerate() {
                // top-down nodes fuse a level with the one above; bottom-up ones every node of
                // the level with the one below (effdet's `bifpn_config`)
                let offsets: Vec<usize> = if k < levels - 1 {
                    vec![last[l], last[l + 1]]
                } else {
                    all[l].iter().copied().chain([last[l - 1]]).collect()
                };
                let fb = cell.sub(&format!("fnode.{k}"));
                let comb = fb.sub("combine");
                let mut ins = Vec::new();
                for off in offsets {
                    let rb = comb.sub(&format!("resample.{off}"));
                    let ((mut y, wide), at) = ids[off];
                    if !wide {
                        y = self.effdet_projection(&rb, y, width, bn_eps)?;
                    }
                    y = match at.cmp(&l) {
                        std::cmp::Ordering::Greater => self.resize(&rb, "upsample", y, feats[l].0, None)?,
                        std::cmp::Ordering::Less => self.tf_same_max_pool(&rb, "downsample", y)?,
                        std::cmp::Ordering::Equal => y,
                    };
                    ins.push(y);
                }
                let fuse = Fuse {
                    eps: p.eps,
                    names: FuseNames::Effdet,
                };
                let f = self.add_part(&fb, "combine", Op::Fuse(fuse), ins, true)?;
                let names = ["act", "conv.conv_dw", "conv.conv_pw", "conv.bn"];
                let y = self.separable(&fb.sub("after_combine"), names, f, width, bn_eps)?;
                ids.push(((y, true), l));
                last[l] = ids.len() - 1;
                all[l].push(ids.len() - 1);
            }
            feats = last.iter().map(|&id| ids[id].0).collect();
        }
        Ok(feats.into_iter().map(|(y, _)| y).collect())
    }

    /// effdet's `ResampleFeatureMap` projection under `b`: `conv.conv` (1×1 with bias) and
    /// `conv.bn` (`ConvBnAct2d` without activation).
    fn effdet_projection(&mut self, b: &Builder, x: NodeIndex, width: i64, eps: f64) -> Checked<NodeIndex> {
        let cb = b.sub("conv");
        let y = self.pconv(&cb, "conv", x, width, win(1, 1, 0), true)?;
        self.bn_eps(&cb, "bn", y, eps)
    }
}

impl crate::ast::Reader {
    fn conv_kind(&mut self, v: &Value, what: &str, allow_none: bool) -> Checked<ConvKind> {
        let n = self.name(v, what)?;
        match n.text.as_str() {
            "conv" => Ok(ConvKind::Conv),
            "cna" => Ok(ConvKind::Cna),
            "none" if allow_none => Ok(ConvKind::None),
            other => {
                let opts: &[&str] = if allow_none {
                    &["conv", "cna", "none"]
                } else {
                    &["conv", "cna"]
                };
                let dym = did_you_mean(other, opts.iter().copied());
                Err(self.err(
                    Diagnostic::error(
                        Code::E0113,
                        n.span,
                        format!("{what} must be one of {}", opts.join(", ")),
                    )
                    .with_label(format!("found `{other}`"))
                    .with_help(if dym.is_empty() {
                        format!("choose one of {}", opts.join(", "))
                    } else {
                        dym
                    }),
                ))
            }
        }
    }

    pub(crate) fn pyramid(&mut self, kind: &str, v: &Value, span: Span) -> Checked<PyramidArgs> {
        let what = format!("`{kind}`");
        let mut m = self.map(v, &what)?;
        let kind = match kind {
            "fpn" => PyramidKind::Fpn,
            "panet" => PyramidKind::Panet,
            _ => PyramidKind::Bifpn,
        };
        let inputs = self.require(&mut m, "in", &what).and_then(|i| self.refs(i, "`in`"));
        let width = self
            .require(&mut m, "width", &what)
            .and_then(|w| self.int(w, "`width`"));
        let levels = match m.get("levels") {
            Some(Value {
                kind: ValueKind::Seq(ls),
                ..
            }) => {
                let read: Vec<(i64, Span)> = ls
                    .iter()
                    .filter_map(|l| self.int_lit(l, "a level").ok().map(|n| (n, l.span)))
                    .collect();
                self.report_repeats(
                    read.iter().copied(),
                    |n| format!("level {n} is listed twice: the pyramid would have two outputs `p{n}`"),
                    "give each backbone input its own level number, finest first",
                );
                read.into_iter().map(|(n, _)| n).collect()
            }
            Some(l) => {
                self.report(type_error(l, "a list of level numbers", "`levels`"));
                Vec::new()
            }
            None => Vec::new(),
        };
        let lateral = match m.get("lateral") {
            Some(l) => self.conv_kind(l, "`lateral`", false),
            None => Ok(ConvKind::Conv),
        };
        let smooth = match m.get("smooth") {
            Some(l) => self.conv_kind(l, "`smooth`", true),
            None => Ok(ConvKind::Conv),
        };
        let upsample = match m.get("upsample") {
            None => Ok(None),
            Some(Value {
                kind: ValueKind::Str(s),
                ..
            }) if s == "match" => Ok(None),
            Some(u) => self.float(u, "`upsample` (`match` or a scale)").map(Some),
        };
        let concat = match m.get("merge") {
            None => Ok(false),
            Some(mv) => match self.name(mv, "`merge`").map(|n| n.text) {
                Ok(t) if t == "add" => Ok(false),
                Ok(t) if t == "concat" => Ok(true),
                Ok(t) => Err(self.err(
                    Diagnostic::error(Code::E0113, mv.span, "`merge` must be `add` or `concat`")
                        .with_label(format!("found `{t}`"))
                        .with_help(did_you_mean(&t, ["add", "concat"]) + " (merge: add | concat)"),
                )),
                Err(e) => Err(e),
            },
        };
        // (mmdet, effdet)
        let names = match m.get("names") {
            None => Ok((false, false)),
            Some(nv) => match self.name(nv, "`names`").map(|n| n.text) {
                Ok(t) if t == "torchvision" => Ok((false, false)),
                Ok(t) if t == "mmdet" && kind == PyramidKind::Fpn => Ok((true, false)),
                Ok(t) if t == "effdet" && kind == PyramidKind::Bifpn => Ok((false, true)),
                Ok(t) => {
                    let (msg, ok): (&str, &[&str]) = match kind {
                        PyramidKind::Fpn => (
                            "`names` of an fpn must be `torchvision` or `mmdet`",
                            &["torchvision", "mmdet"],
                        ),
                        PyramidKind::Panet => ("`names` of a panet must be `torchvision`", &["torchvision"]),
                        PyramidKind::Bifpn => (
                            "`names` of a bifpn must be `torchvision` or `effdet`",
                            &["torchvision", "effdet"],
                        ),
                    };
                    Err(self.err(
                        Diagnostic::error(Code::E0113, nv.span, msg)
                            .with_label(format!("found `{t}`"))
                            .with_help({
                                let dym = did_you_mean(&t, ok.iter().copied());
                                let first = if dym.is_empty() {
                                    format!("use {}", ok.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or "))
                                } else {
                                    dym
                                };
                                first + " (fpn: torchvision's inner_blocks/layer_blocks or mmdet's lateral_convs/fpn_convs; bifpn: fpn's own lateral/cells names or effdet's resample/cell.r.fnode.k; panet: torchvision only)"
                            }),
                    ))
                }
                Err(e) => Err(e),
            },
        };
        let extra = match m.get("extra") {
            None => Ok(Extra::None),
            Some(ev) => match &ev.kind {
                ValueKind::Str(s) if s == "none" => Ok(Extra::None),
                ValueKind::Str(s) if s == "max_pool" => Ok(Extra::MaxPool),
                ValueKind::Str(s) if s == "p6p7" => Ok(Extra::P6P7 {
                    from: ExtraSource::Input,
                    relu: None,
                }),
                ValueKind::Map(_) if matches!(&ev.kind, ValueKind::Map(entries) if entries.iter().any(|(k, _)| k.name == "levels")) =>
                {
                    let mut em = self.map(ev, "`extra`")?;
                    let n = self
                        .require(&mut em, "levels", "`extra`")
                        .and_then(|n| self.int(n, "`levels`"));
                    self.finish(em, &["levels"], "`extra`");
                    if kind != PyramidKind::Bifpn {
                        return Err(self.err(
                            Diagnostic::error(
                                Code::E0113,
                                ev.span,
                                "`extra: {levels: n}` makes BiFPN levels: a bifpn's only",
                            )
                            .with_label(format!(
                                "on a {}",
                                if kind == PyramidKind::Fpn { "fpn" } else { "panet" }
                            ))
                            .with_help("use `extra: p6p7` or `extra: max_pool` (extra levels after the top-down path)"),
                        ));
                    }
                    Ok(Extra::Levels(n?))
                }
                ValueKind::Map(_) => {
                    let mut em = self.map(ev, "`extra`")?;
                    let p = self.require(&mut em, "p6p7", "`extra`")?;
                    let (mut from, mut relu) = (ExtraSource::Input, None);
                    if !matches!(p.kind, ValueKind::Null) {
                        let mut pm = self.map(p, "`p6p7`")?;
                        if let Some(f) = pm.get("from") {
                            match self.name(f, "`from`")?.text.as_str() {
                                "p5" | "output" => from = ExtraSource::Output,
                                "c5" | "input" => from = ExtraSource::Input,
                                "lateral" => from = ExtraSource::Lateral,
                                _ => self.report(type_error(
                                    f,
                                    "`input` (`c5`, the top input), `lateral` (the top lateral) or `output` (`p5`)",
                                    "`from`",
                                )),
                            }
                        }
                        if let Some(r) = pm.get("relu") {
                            relu = Some(self.boolean(r, "`relu`")?);
                        }
                        self.finish(pm, P6P7_KEYS, "`p6p7`");
                    }
                    self.finish(em, &["p6p7"], "`extra`");
                    Ok(Extra::P6P7 { from, relu })
                }
                _ => {
                    let dym = match &ev.kind {
                        ValueKind::Str(s) => did_you_mean(s, ["none", "max_pool", "p6p7"]),
                        _ => String::new(),
                    };
                    Err(self.err(
                        type_error(
                            ev,
                            "`none`, `max_pool`, `p6p7`, `{p6p7: {from: p5}}` or `{levels: n}`",
                            "`extra`",
                        )
                        .with_help(if dym.is_empty() {
                            "extra levels: none, max_pool, p6p7, {levels: n} (bifpn)".to_string()
                        } else {
                            dym
                        }),
                    ))
                }
            },
        };
        let repeats = match m.get("repeats") {
            Some(r) => self.int(r, "`repeats`"),
            None => Ok(Int::lit(1, span)),
        };
        let eps = match m.get("eps") {
            Some(e) => self.float(e, "`eps`"),
            None => Ok(1e-4),
        };
        let bn_eps = m.get("bn_eps").map(|e| self.float(e, "`bn_eps`")).transpose();
        self.finish(m, PYRAMID_KEYS, &what);
        let (mmdet, effdet) = names?;
        Ok(PyramidArgs {
            kind,
            inputs: inputs?,
            levels,
            width: width?,
            lateral: lateral?,
            smooth: smooth?,
            upsample: upsample?,
            concat: concat?,
            extra: extra?,
            mmdet,
            effdet,
            bn_eps: bn_eps?,
            repeats: repeats?,
            eps: eps?,
            span,
        })
    }
}
