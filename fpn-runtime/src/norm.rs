//! Inference-mode batch normalization and its folding into a preceding convolution; group
//! normalization (`nn.GroupNorm`, which has no running statistics: train and eval agree).

use ndarray::{Array1, Array4, ArrayView1, ArrayView4, ArrayViewMut4, Axis};

use crate::conv::shape4;
use crate::error::{mismatch, Result};
use crate::Tensor;

/// `nn.BatchNorm2d` in eval mode: `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// Per-channel scale (gamma).
    pub weight: Array1<f32>,
    /// Per-channel shift (beta).
    pub bias: Array1<f32>,
    /// Running mean used at inference.
    pub running_mean: Array1<f32>,
    /// Running variance used at inference.
    pub running_var: Array1<f32>,
    /// Added to the variance (PyTorch's default is 1e-5).
    pub eps: f32,
}

impl BatchNorm {
    /// A freshly initialised `nn.BatchNorm2d(channels, eps)`: weight 1, bias 0, mean 0, var 1.
    pub fn new(channels: usize, eps: f32) -> Self {
        Self {
            weight: Array1::ones(channels),
            bias: Array1::zeros(channels),
            running_mean: Array1::zeros(channels),
            running_var: Array1::ones(channels),
            eps,
        }
    }

    /// Number of channels, after checking that the four vectors agree.
    fn channels(&self, op: &'static str) -> Result<usize> {
        let c = self.weight.len();
        for (what, v) in [
            ("bias", &self.bias),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ] {
            if v.len() != c {
                return Err(mismatch(
                    op,
                    &[c],
                    &[v.len()],
                    format!("batch norm weight and {what} differ in length"),
                ));
            }
        }
        Ok(c)
    }

    /// Per-channel `(scale, shift)` with `y = x * scale + shift`, as PyTorch's CPU kernel forms them.
    pub fn scale_shift(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.channels("batch_norm")?;
        let mut scale = Vec::with_capacity(self.weight.len());
        let mut shift = Vec::with_capacity(self.weight.len());
        for (((&g, &b), &m), &v) in self
            .weight
            .iter()
            .zip(&self.bias)
            .zip(&self.running_mean)
            .zip(&self.running_var)
        {
            let s = g / (v + self.eps).sqrt();
            scale.push(s);
            shift.push(b - m * s);
        }
        Ok((scale, shift))
    }
}

/// Checks that `x` has as many channels as `bn`.
fn check(x_shape: [usize; 4], bn: &BatchNorm, op: &'static str) -> Result<()> {
    let c = bn.channels(op)?;
    if x_shape[1] != c {
        return Err(mismatch(
            op,
            &x_shape,
            &[c],
            format!("the input has {} channels but the batch norm has {c}", x_shape[1]),
        ));
    }
    Ok(())
}

/// Returns `bn(x)` (eval mode).
pub fn batch_norm(x: ArrayView4<f32>, bn: &BatchNorm) -> Result<Tensor> {
    let mut out = crate::try_copy(x, "batch_norm")?;
    batch_norm_inplace(&mut out, bn)?;
    Ok(out)
}

/// Writes `bn(x)` into `out`, which must have `x`'s shape.
pub fn batch_norm_into(x: ArrayView4<f32>, bn: &BatchNorm, mut out: ArrayViewMut4<f32>) -> Result<()> {
    let xs = shape4(&x);
    let os = [out.dim().0, out.dim().1, out.dim().2, out.dim().3];
    if xs != os {
        return Err(mismatch(
            "batch_norm",
            &xs,
            &os,
            "the output buffer must have the input's shape",
        ));
    }
    check(xs, bn, "batch_norm")?;
    let (scale, shift) = bn.scale_shift()?;
    for (mut o_img, x_img) in out.outer_iter_mut().zip(x.outer_iter()) {
        for (c, (mut o, xi)) in o_img.outer_iter_mut().zip(x_img.outer_iter()).enumerate() {
            let (s, t) = (scale[c], shift[c]);
            o.zip_mut_with(&xi, |o, &v| *o = v * s + t);
        }
    }
    Ok(())
}

/// Applies `bn` to `x` in place.
pub fn batch_norm_inplace(x: &mut Tensor, bn: &BatchNorm) -> Result<()> {
    check(shape4(x), bn, "batch_norm")?;
    let (scale, shift) = bn.scale_shift()?;
    for mut img in x.outer_iter_mut() {
        for (c, mut plane) in img.outer_iter_mut().enumerate() {
            let (s, t) = (scale[c], shift[c]);
            match plane.as_slice_mut() {
                Some(sl) => sl.iter_mut().for_each(|v| *v = *v * s + t),
                None => plane.mapv_inplace(|v| v * s + t),
            }
        }
    }
    Ok(())
}

/// Folds an eval-mode `bn` that follows a conv with weight `w` (`[cout, …]`) and optional
/// `bias` into that conv: scales `w` in place and returns the new bias, so that
/// `conv(x, w', b') == bn(conv(x, w, b))` up to float rounding.
pub fn fold_batch_norm(w: &mut Array4<f32>, bias: Option<ArrayView1<f32>>, bn: &BatchNorm) -> Result<Array1<f32>> {
    let ws = shape4(w);
    let c = bn.channels("fold_batch_norm")?;
    if ws[0] != c {
        return Err(mismatch(
            "fold_batch_norm",
            &ws,
            &[c],
            format!("the conv has {} output channels but the batch norm has {c}", ws[0]),
        ));
    }
    if let Some(b) = &bias {
        if b.len() != c {
            return Err(mismatch(
                "fold_batch_norm",
                &ws,
                &[b.len()],
                "the conv bias length differs from its output channels",
            ));
        }
    }
    let mut new_bias = Array1::zeros(c);
    for (co, mut filt) in w.axis_iter_mut(Axis(0)).enumerate() {
        let s = bn.weight[co] / (bn.running_var[co] + bn.eps).sqrt();
        filt.mapv_inplace(|v| v * s);
        let b = bias.as_ref().map_or(0.0, |b| b[co]);
        new_bias[co] = (b - bn.running_mean[co]) * s + bn.bias[co];
    }
    Ok(new_bias)
}

/// `nn.GroupNorm(groups, C, eps, affine=True)`: per sample and group of `C / groups` channels,
/// `y = (x − mean) / sqrt(var + eps) · weight[c] + bias[c]` with the biased variance over the
/// group's channels and all positions.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNorm {
    /// Number of groups (divides the channels).
    pub groups: usize,
    /// Per-channel scale.
    pub weight: Array1<f32>,
    /// Per-channel shift.
    pub bias: Array1<f32>,
    /// Added to the variance (PyTorch's default is 1e-5).
    pub eps: f32,
}

impl GroupNorm {
    /// A freshly initialised `nn.GroupNorm(groups, channels, eps)`: weight 1, bias 0.
    pub fn new(groups: usize, channels: usize, eps: f32) -> Self {
        Self {
            groups,
            weight: Array1::ones(channels),
            bias: Array1::zeros(channels),
            eps,
        }
    }
}

/// Returns `gn(x)`: [`GroupNorm`] on an NCHW tensor. Errors if the groups do not divide the
/// channels or the parameters do not have one value per channel.
pub fn group_norm(x: ArrayView4<f32>, gn: &GroupNorm) -> Result<Tensor> {
    const OP: &str = "group_norm";
    let xs = shape4(&x);
    let [n, c, h, w] = xs;
    crate::rules::validate_group_norm(
        i64::try_from(c).unwrap_or(i64::MAX),
        i64::try_from(gn.groups).unwrap_or(i64::MAX),
    )
    .map_err(|r| crate::error::invalid(OP, r))?;
    for (what, v) in [("weight", &gn.weight), ("bias", &gn.bias)] {
        if v.len() != c {
            return Err(mismatch(
                OP,
                &xs,
                &[v.len()],
                format!("the input has {c} channels but the group norm {what} has {}", v.len()),
            ));
        }
    }
    let mut out = crate::try_zeros(xs, OP)?;
    let xc = x.as_standard_layout();
    let (Some(src), Some(dst)) = (xc.as_slice(), out.as_slice_mut()) else {
        return Err(crate::error::invalid(
            OP,
            "internal: could not make the tensors contiguous",
        ));
    };
    let cg = c / gn.groups;
    let len = cg * h * w;
    if len == 0 || n == 0 {
        return Ok(out);
    }
    for (k, (xg, og)) in src.chunks_exact(len).zip(dst.chunks_exact_mut(len)).enumerate() {
        // statistics in f64: two passes (mean, then the squared deviations)
        let mean = xg.iter().map(|&v| f64::from(v)).sum::<f64>() / len as f64;
        let var = xg.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / len as f64;
        let rstd = 1.0 / (var + f64::from(gn.eps)).sqrt();
        let c0 = (k % gn.groups) * cg;
        for (j, (xp, op)) in xg.chunks_exact(h * w).zip(og.chunks_exact_mut(h * w)).enumerate() {
            let s = rstd * f64::from(gn.weight[c0 + j]);
            let t = f64::from(gn.bias[c0 + j]) - mean * s;
            let (s, t) = (s as f32, t as f32);
            for (o, &v) in op.iter_mut().zip(xp) {
                *o = v * s + t;
            }
        }
    }
    Ok(out)
}
