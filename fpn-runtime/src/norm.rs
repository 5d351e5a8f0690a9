//! Inference-mode batch normalization and its folding into a preceding convolution.

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
    let mut out = x.as_standard_layout().into_owned();
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
