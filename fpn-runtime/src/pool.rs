//! Max and average pooling equal to PyTorch's `F.max_pool2d` / `F.avg_pool2d` (including
//! `ceil_mode`, `count_include_pad`, dilation for max).

use ndarray::{ArrayView4, ArrayViewMut4};
use rayon::prelude::*;

use crate::conv::shape4;
use crate::error::{check_nonempty, check_out_shape, invalid, Error, Result};
use crate::rules;
use crate::Tensor;

/// Parameters of [`max_pool2d`] / [`avg_pool2d`], mirroring `nn.MaxPool2d` / `nn.AvgPool2d`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pool2dParams {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal stride (PyTorch's default is the kernel).
    pub stride: [usize; 2],
    /// Symmetric padding `[ph, pw]`; at most half the kernel, as PyTorch requires.
    pub padding: [usize; 2],
    /// Dilation (max pooling only; average pooling requires `[1, 1]`).
    pub dilation: [usize; 2],
    /// Round the output size up instead of down (last window must still start inside the input
    /// or its left padding).
    pub ceil_mode: bool,
    /// Average pooling divides by the window size including padding (PyTorch's default `true`).
    pub count_include_pad: bool,
}

impl Pool2dParams {
    /// A `k×k` window with stride `k`, no padding, dilation 1, floor mode, `count_include_pad`.
    pub fn square(k: usize) -> Self {
        Self {
            kernel: [k, k],
            stride: [k, k],
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

/// PyTorch's `pooling_output_shape` ([`rules::pool_axis`]): output length of one pooled dim, or
/// `None` if the parameters are invalid ([`rules::validate_pool`]: zero kernel/stride/dilation,
/// `pad > kernel / 2`), the output would be empty, or a size does not fit `i64`.
pub fn pool_out_size(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Option<usize> {
    let i = |v: usize| i64::try_from(v).ok();
    let (k, s, p, d) = (i(kernel)?, i(stride)?, i(pad)?, i(dilation)?);
    rules::validate_pool([k, k], [s, s], [p, p], [d, d]).ok()?;
    let axis = rules::PoolAxis {
        kernel: k,
        stride: s,
        pad: p,
        dilation: d,
        ceil_mode,
    };
    let (out, conds) = rules::pool_axis(&i(input)?, &axis)?;
    if !conds
        .iter()
        .all(|c| rules::Cond::<i64>::holds_for(c.kind, c.lhs, c.rhs))
    {
        return None;
    }
    usize::try_from(out).ok()
}

/// Output shape of a pooling op, with errors like PyTorch's shape check
/// ([`rules::validate_pool`], then [`pool_out_size`] per axis).
pub fn pool2d_out_shape(x_shape: [usize; 4], p: &Pool2dParams) -> Result<[usize; 4]> {
    const OP: &str = "pool2d";
    // Saturating is exact here: the rule only bounds these from below and compares
    // padding with half the kernel, so a value past i64::MAX gets the verdict it would get.
    let sat = |v: [usize; 2]| v.map(|x| i64::try_from(x).unwrap_or(i64::MAX));
    rules::validate_pool(sat(p.kernel), sat(p.stride), sat(p.padding), sat(p.dilation))
        .map_err(|reason| invalid(OP, reason))?;
    let [n, c, h, w] = x_shape;
    check_nonempty("pool2d", x_shape)?;
    let oh = pool_out_size(h, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceil_mode);
    let ow = pool_out_size(w, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceil_mode);
    match (oh, ow) {
        (Some(oh), Some(ow)) => Ok([n, c, oh, ow]),
        _ => Err(Error::InputSize(format!(
            "pool2d with kernel {:?}, padding {:?} and dilation {:?} gives an empty output for an input of {h}×{w}",
            p.kernel, p.padding, p.dilation
        ))),
    }
}

/// Which reduction a pooling call performs.
#[derive(Clone, Copy)]
enum Kind {
    Max,
    Avg,
}

/// `F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)`; NaN propagates like PyTorch.
pub fn max_pool2d(x: ArrayView4<f32>, p: &Pool2dParams) -> Result<Tensor> {
    let mut out = crate::try_output(pool2d_out_shape(shape4(&x), p)?, "max_pool2d")?;
    pool_into(x, p, out.view_mut(), Kind::Max)?;
    Ok(out)
}

/// [`max_pool2d`] into a preallocated `out`.
pub fn max_pool2d_into(x: ArrayView4<f32>, p: &Pool2dParams, out: ArrayViewMut4<f32>) -> Result<()> {
    pool_into(x, p, out, Kind::Max)
}

/// `F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad)`; `p.dilation` must be `[1, 1]`.
pub fn avg_pool2d(x: ArrayView4<f32>, p: &Pool2dParams) -> Result<Tensor> {
    let mut out = crate::try_output(pool2d_out_shape(shape4(&x), p)?, "avg_pool2d")?;
    pool_into(x, p, out.view_mut(), Kind::Avg)?;
    Ok(out)
}

/// [`avg_pool2d`] into a preallocated `out`.
pub fn avg_pool2d_into(x: ArrayView4<f32>, p: &Pool2dParams, out: ArrayViewMut4<f32>) -> Result<()> {
    pool_into(x, p, out, Kind::Avg)
}

fn pool_into(x: ArrayView4<f32>, p: &Pool2dParams, mut out: ArrayViewMut4<f32>, kind: Kind) -> Result<()> {
    let op = match kind {
        Kind::Max => "max_pool2d",
        Kind::Avg => "avg_pool2d",
    };
    if matches!(kind, Kind::Avg) && p.dilation != [1, 1] {
        return Err(invalid(
            op,
            format!("dilation {:?} is not supported by average pooling", p.dilation),
        ));
    }
    let xs = shape4(&x);
    let os = pool2d_out_shape(xs, p)?;
    check_out_shape(op, &xs, out.dim(), os)?;
    let [_, _, h, w] = xs;
    let [_, _, oh, ow] = os;
    let xstd = x.as_standard_layout();
    let Some(xsl) = xstd.as_slice() else {
        return Err(invalid(op, "internal: could not make the input contiguous"));
    };
    let (kh, kw) = (p.kernel[0] as isize, p.kernel[1] as isize);
    let (sh, sw) = (p.stride[0] as isize, p.stride[1] as isize);
    let (ph, pw) = (p.padding[0] as isize, p.padding[1] as isize);
    let (hi, wi) = (h as isize, w as isize);
    let geom = MaxGeom {
        h,
        w,
        oh,
        ow,
        kernel: p.kernel,
        stride: p.stride,
        padding: p.padding,
        dilation: p.dilation,
    };
    let plane_kernel = |(iplane, oplane): (&[f32], &mut [f32])| match kind {
        Kind::Max => max_plane(&geom, iplane, oplane),
        Kind::Avg => {
            for oy in 0..oh {
                for ox in 0..ow {
                    let y0 = oy as isize * sh - ph;
                    let x0 = ox as isize * sw - pw;
                    let y1 = (y0 + kh).min(hi + ph);
                    let x1 = (x0 + kw).min(wi + pw);
                    let pool_size = (y1 - y0) * (x1 - x0);
                    let (ya, xa, yb, xb) = (y0.max(0), x0.max(0), y1.min(hi), x1.min(wi));
                    oplane[oy * ow + ox] = if ya >= yb || xa >= xb {
                        0.0
                    } else {
                        let mut s = 0.0f32;
                        for iy in ya..yb {
                            let row = &iplane[(iy * wi) as usize..];
                            s += row[xa as usize..xb as usize].iter().sum::<f32>();
                        }
                        let div = if p.count_include_pad {
                            pool_size
                        } else {
                            (yb - ya) * (xb - xa)
                        };
                        s / div as f32
                    };
                }
            }
        }
    };
    let work = x.len().saturating_mul(p.kernel[0] * p.kernel[1]);
    let run = |o_slice: &mut [f32]| {
        if work >= 1 << 18 {
            xsl.par_chunks(h * w)
                .zip(o_slice.par_chunks_mut(oh * ow))
                .for_each(plane_kernel);
        } else {
            xsl.chunks(h * w)
                .zip(o_slice.chunks_mut(oh * ow))
                .for_each(plane_kernel);
        }
    };
    match out.as_slice_mut() {
        Some(s) => run(s),
        None => {
            let mut tmp = crate::try_output(os, op)?;
            if let Some(s) = tmp.as_slice_mut() {
                run(s);
            }
            out.assign(&tmp);
            // its buffer back to the arena (a strided `out`: a concat's part at batch > 1)
            crate::recycle(tmp);
        }
    }
    Ok(())
}

/// Validated geometry of one max-pooling plane.
struct MaxGeom {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
}

/// `max` that propagates NaN like PyTorch's pooling (`val > max || isnan(val)`), branch-free.
#[inline(always)]
pub(crate) fn nan_max(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

thread_local! {
    /// Per-thread row buffers of [`max_plane`]: the padded window-row max and the stride-1
    /// window max.
    static ROW: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    static WIN: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `acc[i] = nan_max(acc[i], v[i])`: a compare-and-blend loop the compiler vectorizes.
#[inline(always)]
fn nan_max_into(acc: &mut [f32], v: &[f32]) {
    for (m, &v) in acc.iter_mut().zip(v) {
        *m = nan_max(*m, v);
    }
}

/// [`nan_max_into`] on AVX-512: per 16 lanes, `v` where `v > acc` or `v` is NaN.
///
/// # Safety
/// The CPU must support avx512f.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn nan_max_into_avx512(acc: &mut [f32], v: &[f32]) {
    use std::arch::x86_64::*;
    let n = acc.len().min(v.len());
    let mut i = 0;
    // SAFETY: every access is below `n` (the tail masked).
    unsafe {
        // whole stores (a store masked by the comparison stalls the next pass's loads)
        let max = |m: __m512, x: __m512| {
            let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, m) | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            _mm512_mask_blend_ps(take, m, x)
        };
        while i + 16 <= n {
            let (a, b) = (acc.as_mut_ptr().add(i), v.as_ptr().add(i));
            _mm512_storeu_ps(a, max(_mm512_loadu_ps(a), _mm512_loadu_ps(b)));
            i += 16;
        }
        if i < n {
            let k = ((1u32 << (n - i)) - 1) as __mmask16;
            let (a, b) = (acc.as_mut_ptr().add(i), v.as_ptr().add(i));
            _mm512_mask_storeu_ps(a, k, max(_mm512_maskz_loadu_ps(k, a), _mm512_maskz_loadu_ps(k, b)));
        }
    }
}

/// Max pooling of one plane, separably: for each output row, the element-wise max of its
/// window's input rows into a row padded with −∞ on both sides, then the window max along it
/// as element-wise maxima of shifted slices (every output at stride 1; every column, then each
/// stride-th, otherwise), all vectorizable. Padding positions never win, as in PyTorch, where
/// they are skipped (every window holds an input element: pad ≤ kernel/2). Measured on Zen 5,
/// 1 thread (a scalar window loop per output → this, ms): YOLOv8n's SPPF pool (128 channels at
/// 20², 5×5, stride 1) 0.37 → 0.12–0.13; ResNet's stem pool (64 at 256², 3×3, stride 2) 4.15 →
/// 1.44 with AVX-512 ([`WIDE_POOL_MIN_W`]; 1.80 without), at 112² 0.83 → 0.34.
fn max_plane(g: &MaxGeom, x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernel::simd512() && small_plane_fits(g) {
        // SAFETY: the CPU has AVX-512F; `small_plane_fits` says the geometry suits it.
        return unsafe { max_plane_small_avx512(g, x, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernel::simd512() && g.w >= WIDE_POOL_MIN_W {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { max_plane_avx512(g, x, out) };
    }
    max_plane_with(g, x, out, nan_max_into)
}

/// Narrowest plane whose max pooling runs 16 lanes wide ([`max_plane_avx512`]). Measured on
/// Zen 5, 1 thread (the compiler's SSE loops → AVX-512, ms): 3×3 stride 2 on 64 channels at
/// 256² 1.87 → 1.44, at 112² 0.40 → 0.34, on 32 at 64² 0.070 → 0.063; 5×5 stride 1 on 128 at 80²
/// 1.10 → 0.83; slower below: at 40² 0.30–0.33 → 0.37, at 20² 0.125 → 0.18 (a masked tail per
/// short row).
const WIDE_POOL_MIN_W: usize = 64;

/// [`max_plane`] with its maxima 16 lanes wide.
///
/// # Safety
/// The CPU must support avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_plane_avx512(g: &MaxGeom, x: &[f32], out: &mut [f32]) {
    // SAFETY: this function's contract.
    max_plane_with(g, x, out, |acc, v| unsafe { nan_max_into_avx512(acc, v) })
}

/// Whether [`max_plane_small_avx512`] takes `g`: stride 1, dilation 1, rows of at most 32
/// input and output columns, padding of at most 16, and every window within the row's two
/// vectors and the −∞ vectors on either side of them. YOLOv8's SPPF pools (5×5 at 20²).
fn small_plane_fits(g: &MaxGeom) -> bool {
    let [_, kw] = g.kernel;
    let [_, pw] = g.padding;
    g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.w <= 32
        && g.ow <= 32
        && pw <= 16
        && g.ow.div_ceil(16) * 16 + kw < 49 + pw
}

/// [`max_plane`] for small stride-1 planes ([`small_plane_fits`]) in registers: per output
/// row, the window's input rows' maxima as two 16-lane vectors (masked loads, −∞ past the
/// row), then the window maxima along the row as maxima of that row shifted by each of the
/// kernel's columns (two-vector permutes between −∞ vectors standing for the padding). The same
/// maxima in the same order as [`max_plane_with`] (the first of equal values kept, a window
/// with a NaN NaN), without its per-row slice loops, which on a 20-column row cost more than
/// the maxima. Measured on Zen 5 (ms, 1 | 2 threads): YOLOv8n's SPPF pools (128 channels at
/// 20², 5×5) 0.128–0.130 → 0.054–0.064 | 0.067–0.070 → 0.028–0.030, of which the permutes
/// (against the row stored and reloaded at each shift) and `vmaxps` with the NaNs kept apart
/// (against a compare-and-blend per maximum) gave 0.068 → 0.064 → 0.054 at 1 thread.
///
/// # Safety
/// The CPU must support avx512f; `g` must satisfy [`small_plane_fits`], `x` hold its `h·w`
/// input and `out` its `oh·ow` output.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_plane_small_avx512(g: &MaxGeom, x: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let [kh, kw] = g.kernel;
    let [ph, pw] = g.padding;
    assert!(
        x.len() >= g.h * g.w && out.len() >= g.oh * g.ow && small_plane_fits(g) && kw >= 1,
        "plane outside its buffers"
    );
    let (neg, nan) = (_mm512_set1_ps(f32::NEG_INFINITY), _mm512_set1_ps(f32::NAN));
    // `vmaxps v, m` is `v > m ? v : m` except that a NaN `v` gives `m`: the NaNs are kept
    // apart, as a mask of the lanes whose window held one, and put back at the end
    let max = |m: __m512, v: __m512| _mm512_max_ps(v, m);
    let nans = |v: __m512| _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    let lanes = |n: usize| ((1u32 << n.min(16)) - 1) as __mmask16;
    let (in0, in1) = (lanes(g.w), lanes(g.w.saturating_sub(16)));
    let vecs = g.ow.div_ceil(16);
    // The padded row as the 64 lanes [−∞ × 16, row 0..16, row 16..32, −∞ × 16]: output column
    // x, kernel column kx reads padded column x + kx, lane 16 + x + kx − pw. The permute that
    // takes 16 consecutive lanes from `r` on, out of two adjacent vectors:
    let shift = |r: i32| {
        _mm512_add_epi32(
            _mm512_set1_epi32(r),
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        )
    };
    for oy in 0..g.oh {
        // the window's rows inside the image, element-wise
        let (mut v0, mut v1) = (neg, neg);
        let (mut n0, mut n1) = (0 as __mmask16, 0 as __mmask16);
        for ky in 0..kh {
            let Some(iy) = (oy + ky).checked_sub(ph).filter(|&iy| iy < g.h) else {
                continue;
            };
            let src = x[iy * g.w..].as_ptr();
            // SAFETY: lanes below w of row iy (inside `x`, asserted); the rest masked off.
            unsafe {
                let (a, b) = (
                    _mm512_mask_loadu_ps(neg, in0, src),
                    _mm512_mask_loadu_ps(neg, in1, src.wrapping_add(16)),
                );
                (n0, n1) = (n0 | nans(a), n1 | nans(b));
                v0 = max(v0, a);
                v1 = max(v1, b);
            }
        }
        // NaN in the lanes that saw one (a NaN compares unordered, so it stays one below)
        let seq = [
            neg,
            _mm512_mask_blend_ps(n0, v0, nan),
            _mm512_mask_blend_ps(n1, v1, nan),
            neg,
        ];
        for j in 0..vecs {
            let (mut m, mut n) = (neg, 0 as __mmask16);
            for kx in 0..kw {
                // lanes 16 + 16j + kx − pw .. +16 of the padded row (< 48: small_plane_fits)
                let o = 16 + 16 * j + kx - pw;
                let (q, r) = (o / 16, (o % 16) as i32);
                let v = _mm512_permutex2var_ps(seq[q], shift(r), seq[q + 1]);
                n |= nans(v);
                m = if kx == 0 { v } else { max(m, v) };
            }
            let m = _mm512_mask_blend_ps(n, m, nan);
            // SAFETY: lanes below ow − 16j of output row oy (inside `out`, asserted).
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(oy * g.ow + 16 * j), lanes(g.ow - 16 * j), m) };
        }
    }
}

/// [`max_plane`]'s loops with `max_into` as [`nan_max_into`].
#[inline(always)]
fn max_plane_with(g: &MaxGeom, x: &[f32], out: &mut [f32], max_into: impl Fn(&mut [f32], &[f32])) {
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.padding;
    let [dh, dw] = g.dilation;
    // columns of the stride-1 window max the outputs read, and of the padded row they read
    let cols = (g.ow - 1) * sw + 1;
    let len = (cols + (kw - 1) * dw).max(pw + g.w);
    let mut row = ROW.take();
    row.clear();
    row.resize(len, f32::NEG_INFINITY);
    let mut win = WIN.take();
    win.clear();
    win.resize(cols, f32::NEG_INFINITY);
    for (oy, orow) in out.chunks_exact_mut(g.ow).enumerate().take(g.oh) {
        let y0 = oy * sh;
        let inner = &mut row[pw..pw + g.w];
        inner.fill(f32::NEG_INFINITY);
        for ky in 0..kh {
            // Input row y0 + ky·dh − ph, if inside the image.
            let Some(iy) = (y0 + ky * dh).checked_sub(ph).filter(|&iy| iy < g.h) else {
                continue;
            };
            max_into(inner, &x[iy * g.w..][..g.w]);
        }
        // the window max at every column the outputs read (all of them at stride 1)
        let dst: &mut [f32] = if sw == 1 { orow } else { &mut win };
        dst.copy_from_slice(&row[..cols]);
        for kx in 1..kw {
            max_into(dst, &row[kx * dw..][..cols]);
        }
        if sw > 1 {
            for (o, &v) in orow.iter_mut().zip(win.iter().step_by(sw)) {
                *o = v;
            }
        }
    }
    ROW.set(row);
    WIN.set(win);
}
