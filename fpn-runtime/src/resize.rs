//! Nearest and bilinear upsampling equal to PyTorch's `F.interpolate` with
//! `recompute_scale_factor=None` (the scale factor, when given, drives the index arithmetic,
//! in float32 like PyTorch's CPU kernels).

use ndarray::{ArrayView4, ArrayViewMut4};
use rayon::prelude::*;

use crate::conv::shape4;
use crate::error::{check_nonempty, check_out_shape, invalid, Error, Result};
use crate::rules;
use crate::Tensor;

/// Target of a resize: per-axis scale factors `[sh, sw]` or an explicit output size `[oh, ow]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resize {
    /// `scale_factor=(sh, sw)`: output size `trunc(in · s)` in `f64`, indices computed from `1 / s`.
    Scale([f64; 2]),
    /// `size=(oh, ow)`: indices computed from `in / out`.
    Size([usize; 2]),
}

/// Output shape of an upsample of `x_shape` by `r`: for a scale, `trunc(in · s)` computed in
/// `f64` as PyTorch does ([`rules::upsample_axis`]).
pub fn resize_out_shape(x_shape: [usize; 4], r: Resize) -> Result<[usize; 4]> {
    let [n, c, h, w] = x_shape;
    check_nonempty("upsample", x_shape)?;
    let (oh, ow) = match r {
        Resize::Size([oh, ow]) => (oh, ow),
        Resize::Scale(s) => {
            // Only `upsample_bilinear` takes align_corners, so only the scale part of the rule
            // can fail in the runtime.
            rules::validate_upsample(Some(s), false, false).map_err(|reason| invalid("upsample", reason))?;
            let dim = |i: usize, s: f64| -> Result<usize> {
                let overflow = || Error::InputSize(format!("upsampling {i} by {s} overflows"));
                let x = i64::try_from(i).map_err(|_| overflow())?;
                // The output-size condition (≥ 1) is checked below, with the explicit sizes.
                let (out, _) = rules::upsample_axis(&x, s).ok_or_else(overflow)?;
                usize::try_from(out).map_err(|_| overflow())
            };
            (dim(h, s[0])?, dim(w, s[1])?)
        }
    };
    if oh == 0 || ow == 0 {
        return Err(Error::InputSize(format!(
            "upsampling {h}×{w} with {r:?} gives an empty output"
        )));
    }
    Ok([n, c, oh, ow])
}

/// The scale factor PyTorch passes to its kernels (`None` for an explicit size).
pub(crate) fn scales(r: Resize) -> [Option<f64>; 2] {
    match r {
        Resize::Scale([a, b]) => [Some(a), Some(b)],
        Resize::Size(_) => [None, None],
    }
}

/// PyTorch's `compute_scales_value<float>`.
fn scale_value(scale: Option<f64>, input: usize, output: usize) -> f32 {
    match scale {
        Some(s) if s > 0.0 => (1.0 / s) as f32,
        _ => input as f32 / output as f32,
    }
}

/// PyTorch's `nearest_idx`: source index of output index `dst` for mode `nearest`.
pub(crate) fn nearest_idx(dst: usize, input: usize, output: usize, scale: Option<f64>) -> usize {
    if output == input {
        dst
    } else if output == 2 * input {
        dst >> 1
    } else {
        let s = scale_value(scale, input, output);
        ((dst as f32 * s).floor() as usize).min(input - 1)
    }
}

/// `F.interpolate(x, mode="nearest", ...)` (not `nearest-exact`).
pub fn upsample_nearest(x: ArrayView4<f32>, r: Resize) -> Result<Tensor> {
    let mut out = crate::try_output(resize_out_shape(shape4(&x), r)?, "upsample_nearest")?;
    upsample_nearest_into(x, r, out.view_mut())?;
    Ok(out)
}

/// Checks `out` against the expected shape and returns `(x_shape, out_shape)`.
fn check_out(
    op: &'static str,
    x: &ArrayView4<f32>,
    r: Resize,
    out: &ArrayViewMut4<f32>,
) -> Result<([usize; 4], [usize; 4])> {
    let xs = shape4(x);
    let os = resize_out_shape(xs, r)?;
    check_out_shape(op, &xs, out.dim(), os)?;
    Ok((xs, os))
}

/// Runs `kernel(in_plane, out_plane)` over all planes, in parallel when large, writing through
/// a temporary when `out` is not in standard layout.
fn per_plane<F>(
    x: &ArrayView4<f32>,
    mut out: ArrayViewMut4<f32>,
    in_plane: usize,
    out_plane: usize,
    kernel: F,
) -> Result<()>
where
    F: Fn(&[f32], &mut [f32]) + Sync,
{
    let xstd = x.as_standard_layout();
    let Some(xsl) = xstd.as_slice() else {
        return Err(invalid("upsample", "internal: could not make the input contiguous"));
    };
    let total = out.len();
    let run = |o: &mut [f32]| {
        if total >= 1 << 16 {
            xsl.par_chunks(in_plane)
                .zip(o.par_chunks_mut(out_plane))
                .for_each(|(i, o)| kernel(i, o));
        } else {
            xsl.chunks(in_plane)
                .zip(o.chunks_mut(out_plane))
                .for_each(|(i, o)| kernel(i, o));
        }
    };
    match out.as_slice_mut() {
        Some(o) => run(o),
        None => {
            let d = out.dim();
            let mut tmp = crate::try_output([d.0, d.1, d.2, d.3], "upsample")?;
            if let Some(o) = tmp.as_slice_mut() {
                run(o);
            }
            out.assign(&tmp);
            // its buffer back to the arena (a strided `out`: a concat's part at batch > 1)
            crate::recycle(tmp);
        }
    }
    Ok(())
}

/// [`upsample_nearest`] into a preallocated `out`.
pub fn upsample_nearest_into(x: ArrayView4<f32>, r: Resize, out: ArrayViewMut4<f32>) -> Result<()> {
    let ([_, _, h, w], [_, _, oh, ow]) = check_out("upsample_nearest", &x, r, &out)?;
    let [sc_h, sc_w] = scales(r);
    let double_w = ow == 2 * w;
    per_plane(&x, out, h * w, oh * ow, |ip, op| {
        let mut prev: Option<usize> = None;
        for (oy, iy) in (0..oh).map(|i| (i, nearest_idx(i, h, oh, sc_h))) {
            if prev == Some(iy) {
                // Same source row as the row above: copy it.
                let (done, rest) = op.split_at_mut(oy * ow);
                rest[..ow].copy_from_slice(&done[(oy - 1) * ow..]);
                continue;
            }
            prev = Some(iy);
            let irow = &ip[iy * w..][..w];
            let orow = &mut op[oy * ow..][..ow];
            if double_w {
                for (o, &v) in orow.chunks_exact_mut(2).zip(irow) {
                    o[0] = v;
                    o[1] = v;
                }
            } else {
                for (ox, o) in orow.iter_mut().enumerate() {
                    *o = irow[nearest_idx(ox, w, ow, sc_w)];
                }
            }
        }
    })
}

/// Source index pair and weights of one output index for linear interpolation.
#[derive(Clone, Copy)]
struct Lerp {
    i0: usize,
    i1: usize,
    l0: f32,
    l1: f32,
}

/// PyTorch's `compute_indices_weights_linear` for one axis.
fn lerp_table(input: usize, output: usize, align_corners: bool, scale: Option<f64>) -> Vec<Lerp> {
    let s: f32 = if align_corners {
        if output > 1 {
            (input - 1) as f32 / (output - 1) as f32
        } else {
            0.0
        }
    } else {
        scale_value(scale, input, output)
    };
    (0..output)
        .map(|d| {
            let real = if align_corners {
                s * d as f32
            } else {
                (s * (d as f32 + 0.5) - 0.5).max(0.0)
            };
            let i0 = (real.floor() as usize).min(input - 1);
            let l1 = (real - i0 as f32).clamp(0.0, 1.0);
            let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
            Lerp {
                i0,
                i1,
                l0: 1.0 - l1,
                l1,
            }
        })
        .collect()
}

/// `F.interpolate(x, mode="bilinear", align_corners=...)`.
pub fn upsample_bilinear(x: ArrayView4<f32>, r: Resize, align_corners: bool) -> Result<Tensor> {
    let mut out = crate::try_output(resize_out_shape(shape4(&x), r)?, "upsample_bilinear")?;
    upsample_bilinear_into(x, r, align_corners, out.view_mut())?;
    Ok(out)
}

/// [`upsample_bilinear`] into a preallocated `out`.
pub fn upsample_bilinear_into(
    x: ArrayView4<f32>,
    r: Resize,
    align_corners: bool,
    out: ArrayViewMut4<f32>,
) -> Result<()> {
    let ([_, _, h, w], [_, _, oh, ow]) = check_out("upsample_bilinear", &x, r, &out)?;
    let [sc_h, sc_w] = scales(r);
    let rows = lerp_table(h, oh, align_corners, sc_h);
    let cols = lerp_table(w, ow, align_corners, sc_w);
    per_plane(&x, out, h * w, oh * ow, |ip, op| {
        for (orow, ry) in op.chunks_exact_mut(ow).zip(&rows) {
            let r0 = &ip[ry.i0 * w..][..w];
            let r1 = &ip[ry.i1 * w..][..w];
            for (o, c) in orow.iter_mut().zip(&cols) {
                *o = ry.l0 * (c.l0 * r0[c.i0] + c.l1 * r0[c.i1]) + ry.l1 * (c.l0 * r1[c.i0] + c.l1 * r1[c.i1]);
            }
        }
    })
}
