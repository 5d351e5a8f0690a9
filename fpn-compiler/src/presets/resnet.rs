//! The ResNet presets (`resnet: {depth: 18 | 34 | 50, width}`): torchvision's `resnet18`,
//! `resnet34` and `resnet50` trunks with their `state_dict` names, outputs `c2`…`c5`.

use super::{win, Builder};
use crate::ast::{Int, OpExpr};
use crate::diag::{Checked, Code, Diagnostic};
use crate::ir::Op;
use crate::lower::{too_large, Handle, Lower};
use crate::ops::merge::Add;
use crate::span::Span;
use crate::value::Value;
use petgraph::graph::NodeIndex;

/// The keys of `resnet: {…}`.
pub(crate) const RESNET_KEYS: &[&str] = &["depth", "width"];

impl Lower<'_> {
    pub(crate) fn resnet(
        &mut self,
        depth: i64,
        width: i64,
        span: Span,
        x: NodeIndex,
        name: &str,
        prefix: &str,
    ) -> Checked<Handle> {
        let (blocks, bottleneck) = match depth {
            18 => ([2, 2, 2, 2], false),
            34 => ([3, 4, 6, 3], false),
            50 => ([3, 4, 6, 3], true),
            _ => {
                return Err(self.err(
                    Diagnostic::error(Code::E0221, span, format!("there is no ResNet-{depth} preset"))
                        .with_label("unknown depth")
                        .with_help("ResNet presets: depth 18, 34 or 50"),
                ));
            }
        };
        let b = Builder {
            name: name.to_string(),
            prefix: prefix.to_string(),
            span,
            names: crate::ast::CnaNames::Torchvision,
        };
        let x = self.pconv(&b, "conv1", x, width, win(7, 2, 3), false)?;
        let x = self.bn(&b, "bn1", x)?;
        let stem = self.relu(&b, "relu", x)?;
        let mut x = self.max_pool(&b, "maxpool", stem, win(3, 2, 1))?;
        let mut outs = vec![("stem".to_string(), stem)];
        let expansion = if bottleneck { 4 } else { 1 };
        let mut inplanes = width;
        for (li, &nb) in blocks.iter().enumerate() {
            let planes = width
                .checked_mul(1 << li)
                .ok_or_else(|| self.err(too_large(span, "the ResNet width", width)))?;
            for bi in 0..nb {
                let stride = if li > 0 && bi == 0 { 2 } else { 1 };
                let bb = b.sub(&format!("layer{}.{bi}", li + 1));
                let identity = x;
                let mut y;
                if bottleneck {
                    y = self.pconv(&bb, "conv1", x, planes, win(1, 1, 0), false)?;
                    y = self.bn(&bb, "bn1", y)?;
                    y = self.relu(&bb, "relu1", y)?;
                    y = self.pconv(&bb, "conv2", y, planes, win(3, stride, 1), false)?;
                    y = self.bn(&bb, "bn2", y)?;
                    y = self.relu(&bb, "relu2", y)?;
                    y = self.pconv(&bb, "conv3", y, planes * 4, win(1, 1, 0), false)?;
                    y = self.bn(&bb, "bn3", y)?;
                } else {
                    y = self.pconv(&bb, "conv1", x, planes, win(3, stride, 1), false)?;
                    y = self.bn(&bb, "bn1", y)?;
                    y = self.relu(&bb, "relu1", y)?;
                    y = self.pconv(&bb, "conv2", y, planes, win(3, 1, 1), false)?;
                    y = self.bn(&bb, "bn2", y)?;
                }
                let short = if stride != 1 || inplanes != planes * expansion {
                    let d = self.pconv(
                        &bb,
                        "downsample.0",
                        identity,
                        planes * expansion,
                        win(1, stride, 0),
                        false,
                    )?;
                    self.bn(&bb, "downsample.1", d)?
                } else {
                    identity
                };
                let s = self.add(format!("{}.add", bb.name), Op::Add(Add), vec![y, short], span, None)?;
                x = self.relu(&bb, "out", s)?;
                inplanes = planes * expansion;
            }
            outs.push((format!("c{}", li + 2), x));
        }
        Ok(Handle::Many(outs))
    }
}

impl crate::ast::Reader {
    /// Reads `resnet: {depth, width}`.
    pub(crate) fn resnet_args(&mut self, v: &Value, span: Span, what: &str) -> Checked<OpExpr> {
        let mut m = self.map(v, what)?;
        let depth = self.require(&mut m, "depth", what).and_then(|d| self.int(d, "`depth`"));
        let width = match m.get("width") {
            Some(w) => self.int(w, "`width`"),
            None => Ok(Int::lit(64, span)),
        };
        self.finish(m, RESNET_KEYS, what);
        Ok(OpExpr::ResNet {
            depth: depth?,
            width: width?,
        })
    }
}
