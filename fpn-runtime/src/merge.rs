//! Ops that merge feature maps: elementwise sum and product, channel concat, mean, and BiFPN's fast
//! normalized weighted fusion. All operands must have identical shapes (no broadcasting),
//! except concat, which needs equal batch and spatial dims.

use ndarray::{s, ArrayView1, ArrayView4, ArrayViewMut4, Zip};

use crate::conv::shape4;
use crate::error::{invalid, mismatch, Result};
use crate::Tensor;

/// Checks that `b` has the shape of `a`.
fn same(op: &'static str, a: [usize; 4], b: [usize; 4]) -> Result<()> {
    if a != b {
        return Err(mismatch(op, &a, &b, "the operands must have the same shape"));
    }
    Ok(())
}

/// Elementwise ops below this many elements stay on the calling thread.
const PAR_MIN_LEN: usize = 1 << 16;

/// `a + b`.
pub fn add(a: ArrayView4<f32>, b: ArrayView4<f32>) -> Result<Tensor> {
    same("add", shape4(&a), shape4(&b))?;
    let mut out = crate::try_output(shape4(&a), "add")?;
    add_into(a, b, out.view_mut())?;
    Ok(out)
}

/// Writes `a + b` into `out`.
pub fn add_into(a: ArrayView4<f32>, b: ArrayView4<f32>, mut out: ArrayViewMut4<f32>) -> Result<()> {
    same("add", shape4(&a), shape4(&b))?;
    same("add", shape4(&a), [out.dim().0, out.dim().1, out.dim().2, out.dim().3])?;
    let z = Zip::from(&mut out).and(&a).and(&b);
    if a.len() >= PAR_MIN_LEN {
        z.par_for_each(|o, &x, &y| *o = x + y);
    } else {
        z.for_each(|o, &x, &y| *o = x + y);
    }
    Ok(())
}

/// `acc += b`.
pub fn add_assign(acc: &mut Tensor, b: ArrayView4<f32>) -> Result<()> {
    same("add", shape4(acc), shape4(&b))?;
    let z = Zip::from(acc).and(&b);
    if b.len() >= PAR_MIN_LEN {
        z.par_for_each(|o, &v| *o += v);
    } else {
        z.for_each(|o, &v| *o += v);
    }
    Ok(())
}

/// `a * b` (elementwise product, `torch.mul`).
pub fn mul(a: ArrayView4<f32>, b: ArrayView4<f32>) -> Result<Tensor> {
    let mut out = crate::try_copy(a, "mul")?;
    mul_assign(&mut out, b)?;
    Ok(out)
}

/// `acc *= b`.
pub fn mul_assign(acc: &mut Tensor, b: ArrayView4<f32>) -> Result<()> {
    same("mul", shape4(acc), shape4(&b))?;
    let z = Zip::from(acc).and(&b);
    if b.len() >= PAR_MIN_LEN {
        z.par_for_each(|o, &v| *o *= v);
    } else {
        z.for_each(|o, &v| *o *= v);
    }
    Ok(())
}

/// Concatenation along channels (`torch.cat(xs, dim=1)`).
pub fn concat(xs: &[ArrayView4<f32>]) -> Result<Tensor> {
    let shape = concat_shape(xs)?;
    let mut out = crate::try_output(shape, "concat")?;
    concat_into(xs, out.view_mut())?;
    Ok(out)
}

/// Output shape of [`concat()`].
pub fn concat_shape(xs: &[ArrayView4<f32>]) -> Result<[usize; 4]> {
    let Some(first) = xs.first() else {
        return Err(invalid("concat", "at least one input is needed"));
    };
    let mut shape = shape4(first);
    for x in &xs[1..] {
        let s = shape4(x);
        if s[0] != shape[0] || s[2] != shape[2] || s[3] != shape[3] {
            return Err(mismatch(
                "concat",
                &shape4(first),
                &s,
                "batch, height and width must agree",
            ));
        }
        shape[1] = shape[1]
            .checked_add(s[1])
            .ok_or_else(|| invalid("concat", "the channel count overflows"))?;
    }
    Ok(shape)
}

/// [`concat()`] into a preallocated `out`.
pub fn concat_into(xs: &[ArrayView4<f32>], mut out: ArrayViewMut4<f32>) -> Result<()> {
    let shape = concat_shape(xs)?;
    let got = [out.dim().0, out.dim().1, out.dim().2, out.dim().3];
    if got != shape {
        return Err(mismatch(
            "concat",
            &shape,
            &got,
            "the output buffer has the wrong shape",
        ));
    }
    let mut c0 = 0;
    for x in xs {
        let c = x.dim().1;
        copy(out.slice_mut(s![.., c0..c0 + c, .., ..]), x);
        c0 += c;
    }
    Ok(())
}

/// `dst.assign(src)` (same shapes), one `memcpy` when both are contiguous (a batch-1 channel
/// range is).
fn copy(mut dst: ArrayViewMut4<f32>, src: &ArrayView4<f32>) {
    match (dst.as_slice_mut(), src.as_slice()) {
        (Some(d), Some(s)) if d.len() == s.len() => d.copy_from_slice(s),
        _ => dst.assign(src),
    }
}

/// A concat's output buffer, for generated code whose producers write their parts straight
/// into it: the shape of one part `part` with `channels` channels, from the arena, its contents
/// unspecified until the producers and [`concat_rest`] have written every channel.
///
/// # Errors
/// [`crate::Error::InvalidParams`] if the size overflows or cannot be allocated.
pub fn concat_buffer(part: [usize; 4], channels: usize) -> Result<Tensor> {
    crate::try_output([part[0], channels, part[2], part[3]], "concat")
}

/// The parts of a concat its producers did not write in place: copies each `(c0, x)` into
/// channels `c0..c0 + x.channels` of `out`.
///
/// # Errors
/// [`crate::Error::ShapeMismatch`] if a part's batch or spatial size differs from `out`'s or
/// its channels leave `out`'s.
pub fn concat_rest(out: &mut Tensor, parts: &[(usize, ArrayView4<f32>)]) -> Result<()> {
    let o = shape4(&out.view());
    for (c0, x) in parts {
        let xs = shape4(x);
        let fits = c0.checked_add(xs[1]).is_some_and(|e| e <= o[1]);
        if xs[0] != o[0] || xs[2] != o[2] || xs[3] != o[3] || !fits {
            return Err(mismatch(
                "concat",
                &o,
                &xs,
                format!("a part written at channel {c0} must fit the output's channels and match its batch, height and width"),
            ));
        }
        copy(out.slice_mut(s![.., *c0..*c0 + xs[1], .., ..]), x);
    }
    Ok(())
}

/// Elementwise mean of equally shaped tensors (sum, then divide by the count).
pub fn mean(xs: &[ArrayView4<f32>]) -> Result<Tensor> {
    let Some(first) = xs.first() else {
        return Err(invalid("mean", "at least one input is needed"));
    };
    let mut out = crate::try_output(shape4(first), "mean")?;
    mean_into(xs, out.view_mut())?;
    Ok(out)
}

/// [`mean`] into a preallocated `out`.
pub fn mean_into(xs: &[ArrayView4<f32>], out: ArrayViewMut4<f32>) -> Result<()> {
    let w: Vec<f32> = vec![1.0; xs.len()];
    weighted_sum_into("mean", xs, &w, out)
}

/// Writes `sum_i w[i] * xs[i]` into `out`, then divides by `xs.len()` when `op == "mean"`.
fn weighted_sum_into(op: &'static str, xs: &[ArrayView4<f32>], w: &[f32], mut out: ArrayViewMut4<f32>) -> Result<()> {
    let Some(first) = xs.first() else {
        return Err(invalid(op, "at least one input is needed"));
    };
    let s0 = shape4(first);
    for x in xs {
        same(op, s0, shape4(x))?;
    }
    same(op, s0, [out.dim().0, out.dim().1, out.dim().2, out.dim().3])?;
    let par = out.len() >= PAR_MIN_LEN;
    let z = Zip::from(&mut out).and(first);
    let (w0, w1) = (w[0], w.get(1).copied().unwrap_or(0.0));
    match xs.get(1) {
        // The common two-input case in one pass.
        Some(second) if par => z.and(second).par_for_each(|o, &a, &b| *o = w0 * a + w1 * b),
        Some(second) => z.and(second).for_each(|o, &a, &b| *o = w0 * a + w1 * b),
        None if par => z.par_for_each(|o, &a| *o = w0 * a),
        None => z.for_each(|o, &a| *o = w0 * a),
    }
    for (x, &wi) in xs.iter().zip(w).skip(2) {
        let z = Zip::from(&mut out).and(x);
        if par {
            z.par_for_each(|o, &v| *o += wi * v);
        } else {
            z.for_each(|o, &v| *o += wi * v);
        }
    }
    if op == "mean" {
        let n = xs.len() as f32;
        if par {
            out.par_mapv_inplace(|v| v / n);
        } else {
            out.mapv_inplace(|v| v / n);
        }
    }
    Ok(())
}

/// BiFPN's fast normalized fusion: `sum_i relu(w_i) / (sum_j relu(w_j) + eps) * xs[i]`.
pub fn weighted_fusion(xs: &[ArrayView4<f32>], w: ArrayView1<f32>, eps: f32) -> Result<Tensor> {
    let Some(first) = xs.first() else {
        return Err(invalid("weighted_fusion", "at least one input is needed"));
    };
    let mut out = crate::try_output(shape4(first), "weighted_fusion")?;
    weighted_fusion_into(xs, w, eps, out.view_mut())?;
    Ok(out)
}

/// [`weighted_fusion`] into a preallocated `out`.
pub fn weighted_fusion_into(
    xs: &[ArrayView4<f32>],
    w: ArrayView1<f32>,
    eps: f32,
    out: ArrayViewMut4<f32>,
) -> Result<()> {
    if w.len() != xs.len() {
        return Err(mismatch(
            "weighted_fusion",
            &[xs.len()],
            &[w.len()],
            "one weight per input is needed",
        ));
    }
    let relu: Vec<f32> = w.iter().map(|&v| if v < 0.0 { 0.0 } else { v }).collect();
    let denom = relu.iter().sum::<f32>() + eps;
    let norm: Vec<f32> = relu.iter().map(|v| v / denom).collect();
    weighted_sum_into("weighted_fusion", xs, &norm, out)
}
