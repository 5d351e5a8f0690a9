//! The convolution algorithms that run on the GEMM engine or directly: a direct loop for
//! convs with one input channel per group (depthwise), and `W[cout_g, cin_g·kh·kw] ×
//! cols[cin_g·kh·kw, tile]` GEMMs where `cols` is the input itself for pointwise convs and an
//! im2col tile (a band of output rows, so the buffer stays near [`COL_BUDGET`] floats)
//! otherwise. Tiles are spread over rayon's pool; each gets bias + activation (+ residual)
//! while it is still in cache.
//!
//! Depends on the kernel layer (and the activation epilogues) only, like [`crate::winograd`];
//! `conv` picks the path.
//!
//! Invariant: every function takes a [`Geom`] validated by `conv2d_out_shape` and slices of
//! exactly its extents; the unsafe GEMM calls and output writes only touch indices proven in
//! range by that validation.

use rayon::prelude::*;

use crate::act::{bias_activate_slice, epilogue_slice, Activation, Residual, Sum};
use crate::kernel::{sgemm, simd, Geom, Operands, OutPtr, Scratch, BFULL, BPACK, COLS, PAR_MIN_MACS, PHASES};
use crate::packed;

/// Target size (in f32s) of one im2col tile: 1 MiB, the L2 of one core here; measured best
/// among 0.5/1/4/16 MiB on the FPN shapes.
const COL_BUDGET: usize = 1 << 18;

/// Target size (in f32s) of a band's phase-split input rows for a strided conv packed straight
/// from the image: 256 KiB, half the L2 here.
const PHASE_BUDGET: usize = 1 << 16;

/// Range `lo..hi` of output columns whose input column `ox*s + off - pad` lies in `0..w`.
#[inline]
fn valid_range(ow: usize, s: usize, off: usize, pad: usize, w: usize) -> (usize, usize) {
    let lo = if off >= pad { 0 } else { (pad - off).div_ceil(s) };
    let end = pad + w;
    let hi = if end <= off { 0 } else { (end - off).div_ceil(s).min(ow) };
    (lo.min(hi), hi)
}

/// Direct loop for convs with one input channel per group (depthwise, channel multiplier ok).
pub(crate) fn depthwise(g: &Geom, ops: Operands, act: Activation, out: &mut [f32]) {
    let Operands { x, w, bias, .. } = ops;
    let plane = g.oh * g.ow;
    let cout_g = g.cout_g();
    let kernel = |(idx, oplane): (usize, &mut [f32])| {
        let (n, co) = (idx / g.cout, idx % g.cout);
        let ci = co / cout_g;
        let xin = &x[(n * g.cin + ci) * g.h * g.w..][..g.h * g.w];
        let wk = &w[co * g.kh * g.kw..][..g.kh * g.kw];
        oplane.fill(0.0);
        for oy in 0..g.oh {
            let orow = &mut oplane[oy * g.ow..][..g.ow];
            for ky in 0..g.kh {
                let iy = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
                if iy < 0 || iy >= g.h as isize {
                    continue;
                }
                let irow = &xin[iy as usize * g.w..][..g.w];
                for kx in 0..g.kw {
                    let wv = wk[ky * g.kw + kx];
                    let off = kx * g.dw;
                    let (lo, hi) = valid_range(g.ow, g.sw, off, g.pl, g.w);
                    if lo >= hi {
                        continue;
                    }
                    let first = lo * g.sw + off - g.pl;
                    if g.sw == 1 {
                        let src = &irow[first..first + (hi - lo)];
                        for (o, &i) in orow[lo..hi].iter_mut().zip(src) {
                            *o += wv * i;
                        }
                    } else {
                        for (o, &i) in orow[lo..hi].iter_mut().zip(irow[first..].iter().step_by(g.sw)) {
                            *o += wv * i;
                        }
                    }
                }
            }
        }
        bias_activate_slice(oplane, bias[co], act);
    };
    if g.macs() >= PAR_MIN_MACS {
        out.par_chunks_mut(plane).enumerate().for_each(kernel);
    } else {
        out.chunks_mut(plane).enumerate().for_each(kernel);
    }
}

/// GEMM-based conv (pointwise directly, otherwise im2col in row bands); with a residual (the
/// output's shape) the epilogue adds it before or after the activation.
///
/// With [`Sum::Onto`] the conv is added onto what `out` holds (a tensor of the output's shape,
/// such as a ResNet block's shortcut): `out = act(out + conv + bias)`, each block of the
/// reduction's sum added to `out` in turn by the packed GEMM's tiles, so the sum is never read
/// from a second buffer and the output needs none of its own (ONNX Runtime's conv with a `Sum`
/// operand); a conv that runs transposed ([`conv_transposed`]) reads each block of 16 output
/// rows aside before writing it. Then it returns false, having written nothing, where neither
/// runs (a CPU without AVX2, or the packing cannot be allocated); otherwise it returns true.
pub(crate) fn gemm_conv(g: &Geom, ops: Operands, act: Activation, out: &mut [f32], sum: Sum) -> bool {
    #[cfg(target_arch = "x86_64")]
    if transposed_fits(g) && conv_transposed(g, ops, act, out, sum) {
        return true;
    }
    gemm_conv_pixels(g, ops, act, out, sum)
}

/// [`gemm_conv`] with the output pixels in the vector lanes (every conv but the transposed
/// ones); false, having written nothing, only onto the output without the packed GEMM.
fn gemm_conv_pixels(g: &Geom, ops: Operands, act: Activation, out: &mut [f32], sum: Sum) -> bool {
    let Operands { x, w, bias, .. } = ops;
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let k = cin_g * g.kh * g.kw;
    let hw_out = g.oh * g.ow;
    // The weights of every group packed for the AVX2 GEMM (shared read-only by the tasks).
    let panel = packed::packed_a_len(cout_g, k);
    let mut fresh = None;
    let wpack = ops.packed_weight(g, &mut fresh);
    let blocks = Blocks {
        out: OutPtr::new(out),
        k,
        hw_out,
        bias,
        sum,
        act,
        wpack: wpack.zip(panel).map(|(wp, panel)| (wp, panel, cout_g)),
    };
    if sum.onto() && blocks.wpack.is_none() {
        return false;
    }
    if let Some(chunk) = channel_split(g) {
        gemm_conv_by_channels(g, x, w, &blocks, chunk);
        return true;
    }
    let hw_in = g.h * g.w;
    let pointwise = g.pointwise();
    let threads = rayon::current_num_threads().max(1);
    let parallel = g.macs() >= PAR_MIN_MACS && threads > 1;
    // Pixels per band: the im2col budget, then split further so every thread has work.
    // Packed im2col convs pack their right-hand side straight from the image: no im2col
    // matrix, so no budget for one.
    let fused = !pointwise && blocks.wpack.is_some();
    let budget_cols = if pointwise || (fused && g.sw == 1) {
        1 << 14
    } else if fused {
        // the band's phase-split input rows within L2 (cin_g · sh·rows · w floats), but at
        // least two of the GEMM's column blocks
        ((PHASE_BUDGET / (g.cin_g() * g.sh * g.w).max(1)).max(1) * g.ow).max(2 * packed::NC)
    } else {
        (COL_BUDGET / k).max(1)
    };
    let per_img = g.n * g.groups;
    // A band's output pixels: whole rows, except for a pointwise conv, whose pixels are one
    // run (its input too), split into bands of whole 16-pixel panels, one per thread (and per
    // image, so that an odd batch splits evenly too). Measured on Zen 5, 2 threads, hot, best
    // of 3–5 (two bands per thread of whole rows → this, ms): seed 001's 512→64 at 13² 0.045 →
    // 0.033 (13 rows made bands of 52, 52, 52 and 13 pixels, each re-reading the weight),
    // 256→64 at 26² 0.062–0.064 → 0.060–0.061, 128→64 at 52² 0.122–0.133 → 0.113–0.120,
    // 512→128 at 28² 0.243 → 0.231, 128→512 at 28² 0.238–0.259 → 0.227–0.243, 512→256 at 20²
    // 0.266 → 0.253; the maps of 40² and up, batches 2 and 3 even.
    let band_px = if pointwise {
        // bands per image: as many as make the tasks a multiple of the threads, while the
        // images alone are few
        let per_image = if parallel && per_img < 4 * threads {
            threads / gcd(per_img, threads)
        } else {
            1
        };
        let px = if per_image > 1 {
            hw_out.div_ceil(per_image).next_multiple_of(packed::NR)
        } else {
            hw_out
        };
        px.min(budget_cols).max(1)
    } else {
        let mut rows = (budget_cols / g.ow).clamp(1, g.oh);
        // Two bands per thread balance load without shrinking the GEMMs much (measured).
        let want = 2 * threads;
        if parallel && per_img < want {
            rows = rows.min(g.oh.div_ceil(want.div_ceil(per_img))).max(1);
        }
        rows * g.ow
    };
    let bands = hw_out.div_ceil(band_px);
    let tasks = g.n * g.groups * bands;
    let task = |t: usize| {
        let (img_group, band) = (t / bands, t % bands);
        let (n, grp) = (img_group / g.groups, img_group % g.groups);
        let p0 = band * band_px;
        let p1 = (p0 + band_px).min(hw_out);
        let (oy0, oy1) = (p0 / g.ow, p1.div_ceil(g.ow));
        let nc = p1 - p0;
        let x_img = &x[(n * g.cin + grp * cin_g) * hw_in..][..cin_g * hw_in];
        let w_grp = &w[grp * cout_g * k..][..cout_g * k];
        let o_base = (n * g.cout + grp * cout_g) * hw_out + p0;
        let gemm_par = if parallel && tasks < threads {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: as below, with the right-hand side packed from x_img's band (the image of
        // group grp: cin_g planes of h·w).
        #[cfg(target_arch = "x86_64")]
        if fused && unsafe { blocks.run_im2col(g, o_base, grp * cout_g, cout_g, x_img, oy0, oy1) } {
            return;
        }
        let mut cols = (!pointwise).then(|| Scratch::take(&COLS, k * nc));
        let (rhs, rhs_rs) = if pointwise {
            (&x_img[p0..], hw_in)
        } else {
            gemm_rhs(g, x_img, cols.as_deref_mut(), oy0, oy1)
        };
        // SAFETY: the block, rows oy0..oy1 of channels grp·cout_g.. of image n, lies inside the
        // output by the validated geometry (o_base + (cout_g − 1)·hw_out + nc ≤ out.len()), and
        // only this task writes it (tasks are distinct (image, group, band)s); w_grp is the
        // group's cout_g×k weights, rhs is k×nc (row stride rhs_rs) by `gemm_rhs`.
        unsafe { blocks.run(o_base, grp * cout_g, cout_g, nc, w_grp, rhs, rhs_rs, gemm_par) };
    };
    if parallel && tasks >= threads {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
    true
}

/// Greatest common divisor (`gcd(0, b) = b`).
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Rows ahead of the one finishing whose residual segment the packed GEMM's epilogue
/// prefetches: a row panel's worth, so the next panel's residual arrives while its tiles run.
/// The residual's rows of one column block are `hw_out` floats apart (ResNet's at 128²: 64
/// KiB), 1 KiB runs the hardware prefetchers did not fetch ahead. Measured on Zen 5, 1 thread:
/// a 256×64 by 64×16384 product with a residual + ReLU epilogue took 4.8 ms against 2.5 without
/// one; in RetinaNet's forward the four 64→256 1×1 convs at 128² 21.3 → 14.1–14.8 ms and the
/// whole forward 243 → 219–229 ms. Two panels ahead measured the same.
const PREFETCH_ROWS: usize = packed::MR;

/// Output channels per task when a conv is better split over output channels than over output
/// rows: small feature maps (ResNet's 14×14 and 7×7 stages, FPN's coarse levels) with many
/// channels, where row bands would give every thread a thin GEMM that re-packs the whole weight
/// matrix (measured: 1.3–2× slower there). `None` keeps the row bands, and at batch ≥
/// [`SPLIT_TASKS`] × threads the images are the tasks. Measured on Zen 5, 2 threads, batch 8,
/// hot (split → by image, ms): ResNet-50's 1×1 512→128 at 28² 3.15–3.34 → 2.03–2.04, 256→1024
/// at 14² 2.18–2.21 → 1.91–1.96, 512→2048 at 7² 2.54–2.59 → 2.29–2.34, 2048→512 at 7²
/// 2.94 → 2.32; the whole batch-8 forward 247–248 → 233–235 ms, seed 001's 7.36–7.38 → 6.98–7.03
/// ms (medians 8.0 → 7.24).
fn channel_split(g: &Geom) -> Option<usize> {
    let threads = rayon::current_num_threads().max(1);
    let k = g.cin_g() * g.kh * g.kw;
    let hw_out = g.oh * g.ow;
    let pointwise = g.pointwise();
    let cols_len = if pointwise { 0 } else { k.checked_mul(hw_out)? };
    // At least as many output channels as output pixels: with fewer, each task's share of
    // channels reads the whole shared packing of the input while row bands read the (smaller)
    // weight twice (SPLIT_MAX_PIXELS' docs).
    let small = hw_out <= SPLIT_MAX_PIXELS && g.cout_g() >= 2 * threads * 16 && g.cout_g() >= hw_out;
    // Enough images (or groups) for every thread's share of tasks: one task per image, each
    // multiplying the whole weight once (a split here packs every image's input and re-reads
    // the weight's panels per image and share; measured below).
    let many_images = g.n.saturating_mul(g.groups) >= SPLIT_TASKS * threads;
    if threads < 2 || g.macs() < PAR_MIN_MACS || !small || cols_len > 4 * COL_BUDGET || many_images {
        return None;
    }
    let want = SPLIT_TASKS * threads;
    // A multiple of the packed GEMM's panel height, so a chunk starts on a panel.
    Some(g.cout_g().div_ceil(want).next_multiple_of(packed::MR))
}

/// Largest output plane (pixels) split over output channels. Measured on ResNet-50 shapes at 2
/// threads: 28×28 and smaller gain 5–60% (7×7 1×1 512→2048: 1.40 → 0.72 ms), 56×56 is even.
/// Only where the conv has at least as many output channels as output pixels
/// ([`channel_split`]): every channel-split task reads the whole packed input, row bands read
/// the weight once per thread. Measured on Zen 5, 2 threads, hot, interleaved (split → row
/// bands, ms): 512→128 at 28² 0.41–0.42 → 0.26–0.27, 512→256 at 28² 0.48–0.58 → 0.46–0.49,
/// 256→128 at 26² 0.14–0.17 → 0.11, 128→512 at 28² 0.27 → 0.26, 256→256 at 14² 0.095 → 0.077;
/// the other way (kept split): 256→1024 at 14² 0.26 → 0.34, 512→512 at 14² 0.24 → 0.29,
/// 512→256 and 256→512 at 13² 0.10–0.11 → 0.16; 1024→256 at 14² 0.25–0.33 → 0.30–0.32 (even).
const SPLIT_MAX_PIXELS: usize = 1024;

/// Channel-split tasks per thread (2 balanced better than 1 or 4 in the same measurement).
const SPLIT_TASKS: usize = 2;

/// Most output pixels per image of a pointwise conv that runs transposed ([`conv_transposed`]).
const T_MAX_PIXELS: usize = 256;

/// Most output pixels per image of a strided 1×1 conv that runs transposed: measured on Zen 5
/// (pixel-lane → transposed, ms, 1 | 2 threads), ResNet-50's 256→512 stride 2 onto 28² 1.02 →
/// 0.91 | 0.61 → 0.53; onto 32² (512→1024) 4.90 → 4.94 | 2.63 → 2.68 and 64² (256→512) 6.05 →
/// 6.07 | 3.01 → 3.69, so not those.
const T_MAX_STRIDED_PIXELS: usize = 28 * 28;

/// Fewest weights (`cout · cin`) of a conv that runs transposed: below it the packing and the
/// transpose cost more than the product saves (64→256 at 8²: 0.010 → 0.014 ms).
const T_MIN_WEIGHT: usize = 1 << 16;

/// Whether `g` runs as the transposed product ([`conv_transposed`]): an ungrouped 1×1 conv
/// reading no padding, whole blocks of 16 output channels, at least [`T_MIN_WEIGHT`] weights,
/// on AVX-512F; and either strided onto at most [`T_MAX_STRIDED_PIXELS`] output pixels per
/// image (the pixel-lane path splits every input row into its column phases first), or onto
/// at most [`T_MAX_PIXELS`] whose pixels leave a tenth or more of the pixel-lane tiles' lanes
/// empty (7², 5², 10²; not 14², 13², 16²: 196 of 208, 169 of 176, 256 of 256, where it
/// measured 0–15% slower). On an Intel Xeon (family 6 model 167, session 21; hot, 1 thread,
/// pixel-lane → transposed, ms) 14² and 28² lost as well: 256←1024 at 14² 0.72 → 0.77–0.82,
/// 1024←256 at 14² 0.72 → 0.75, 256←512 at 28² 1.33–1.37 → 1.47–1.55, 128←512 at 28² 0.71 →
/// 0.85.
fn transposed_fits(g: &Geom) -> bool {
    let hw = g.oh.saturating_mul(g.ow);
    let strided = g.sh > 1 || g.sw > 1;
    let empty = hw.next_multiple_of(16) - hw;
    crate::kernel::simd512()
        && g.groups == 1
        && [g.kh, g.kw, g.dh, g.dw] == [1; 4]
        && g.pointwise_reads_inside()
        && g.cout.is_multiple_of(16)
        && g.cout.saturating_mul(g.cin) >= T_MIN_WEIGHT
        && if strided {
            hw <= T_MAX_STRIDED_PIXELS
        } else {
            hw <= T_MAX_PIXELS && empty * 10 >= hw
        }
}

thread_local! {
    /// [`conv_transposed`]'s packed output pixels (the product's left operand).
    static T_PIXELS: std::cell::Cell<Vec<Vec<f32>>> = const { std::cell::Cell::new(Vec::new()) };
    /// [`conv_transposed`]'s product `[pixels][cout]`, before it is transposed into the output.
    static T_PRODUCT: std::cell::Cell<Vec<Vec<f32>>> = const { std::cell::Cell::new(Vec::new()) };
    /// [`conv_transposed`] onto its output: a block's 16 output rows before it writes them.
    static T_SUM: std::cell::Cell<Vec<Vec<f32>>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A 1×1 conv on a small map as `out^T[pixels × cout] = x^T[pixels × cin] · w^T[cin × cout]`:
/// the output pixels are the rows of the packed GEMM's tiles and the output channels its
/// vector lanes, so a map of 49 pixels (7²) fills its lanes where the pixel-lane product ran 49
/// columns in 64 lanes (196 in 208). The weight is read as packed for the channel-vector
/// conv ([`crate::direct::cv_weight`], cached by a prepared conv), the pixels are packed per
/// image, and each task's block of channels is transposed into the output (16×16 blocks) and
/// finished by the epilogue. Every output sums its reduction as [`gemm`](packed::gemm) does,
/// so the results are those of the pixel-lane product bit for bit. Returns false, having
/// written nothing, when the weight's packing cannot be allocated (the pixel-lane path then
/// runs).
///
/// Measured on Zen 5, hot, best of 3 interleaved (pixel-lane → transposed, ms, 1 | 2
/// threads): ResNet-50's 512→2048 at 7² 0.568 → 0.476 | 0.299 → 0.259, 2048→512 0.567 → 0.475 |
/// 0.310 → 0.273, 2048→256 0.287 → 0.249 | even; its stride-2 1024→2048 at 14² 1.28 → 0.94 |
/// 0.72 → 0.50, 512→1024 at 28² 1.07 → 0.91 | 0.63 → 0.50, 256→512 at 28² 0.31 → 0.24 | 0.22 →
/// 0.15; 512→2048 at 7² batch 4 2.27 → 1.90 | 1.15 → 1.02. Not taken (see [`transposed_fits`]):
/// 256→1024 at 14² 0.469 → 0.489, 512→256 at 13² 0.198 → 0.210, 256→256 at 16² 0.142 → 0.164.
/// In ResNet-50 FPN's forward (1 thread, weights cold), with the weight's tiles prefetched
/// ([`packed::gemm_columns`]): 512→2048 at 7² (3 calls) 2.27–2.39 → 1.83–1.88 ms, 2048→512
/// (2) 1.43–1.46 → 1.11–1.13, 2048→256 0.35–0.40 → 0.30–0.34, stride-2 1024→2048 1.58–1.60 →
/// 1.12–1.14 (ORT: 1.61, 1.03, 0.26, 1.13); all convs 59.1–60.2 → 57.7–58.0 ms. Without the
/// prefetch the weight's first pass from memory ate the gain (2048→512 1.44 → 1.50).
#[cfg(target_arch = "x86_64")]
fn conv_transposed(g: &Geom, ops: Operands, act: Activation, out: &mut [f32], sum: Sum) -> bool {
    let (residual, onto) = (sum.residual(), sum.onto());
    let mut fresh = None;
    let Some(wt) = crate::direct::cv_weight(g, &ops, &mut fresh) else {
        return false;
    };
    let (k, hw, hw_in) = (g.cin, g.oh * g.ow, g.h * g.w);
    let (Some(a_len), Some(c_len)) = (packed::packed_a_len(hw, k), hw.checked_mul(g.cout)) else {
        return false;
    };
    let threads = rayon::current_num_threads().max(1);
    let parallel = g.macs() >= PAR_MIN_MACS && threads > 1;
    let panels = g.cout / 16;
    // Tasks of whole pairs of 16-channel panels (the wide tile's 32 lanes), two per thread.
    let per_task = if parallel {
        panels.div_ceil(SPLIT_TASKS * threads).next_multiple_of(2)
    } else {
        panels
    };
    let tasks = panels.div_ceil(per_task.max(1));
    let optr = OutPtr::new(out);
    let offs = |i: usize| (i / g.ow) * g.sh * g.w + (i % g.ow) * g.sw;
    for n in 0..g.n {
        let x_img = &ops.x[n * g.cin * hw_in..][..g.cin * hw_in];
        let mut a = Scratch::take(&T_PIXELS, a_len);
        packed::pack_a_columns(x_img, hw_in, offs, hw, k, &mut a);
        let mut prod = Scratch::take(&T_PRODUCT, c_len);
        let pptr = OutPtr::new(&mut prod);
        let a = &*a;
        let task = |t: usize| {
            let (p0, p1) = (t * per_task, ((t + 1) * per_task).min(panels));
            let (c0, nc) = (p0 * 16, (p1 - p0) * 16);
            // with `onto`, each block's 16 output rows as they were (the sum)
            let mut sum = onto.then(|| Scratch::take(&T_SUM, 16 * hw));
            // SAFETY: `transposed_fits` says the CPU has AVX-512F; the product's columns
            // c0..c0 + nc of its hw rows (row stride cout) are this task's alone; the weight's
            // panels p0..p1 are k·16 floats each from c0·k on.
            unsafe { packed::gemm_columns(hw, nc, k, a, &wt[c0 * k..], pptr.get().add(c0), g.cout) };
            for cb in (c0..c0 + nc).step_by(16) {
                let at = |l: usize| (n * g.cout + cb + l) * hw;
                // SAFETY: the 16 output rows of channels cb.. of image n lie inside the output
                // (validated geometry) and belong to this task alone.
                let rows: [*mut f32; 16] = std::array::from_fn(|l| unsafe { optr.get().add(at(l)) });
                if let Some(sum) = sum.as_deref_mut() {
                    for (l, &row) in rows.iter().enumerate() {
                        // SAFETY: as above; read before the transposes below write the row.
                        unsafe { std::ptr::copy_nonoverlapping(row, sum[l * hw..].as_mut_ptr(), hw) };
                    }
                }
                let mut x0 = 0;
                while x0 + 16 <= hw {
                    let dst: [*mut f32; 16] = std::array::from_fn(|l| rows[l].wrapping_add(x0));
                    // SAFETY: the product's rows x0..x0 + 16, columns cb..cb + 16 (written by
                    // this task above), and 16 floats of each output row from x0; AVX-512F.
                    unsafe { crate::direct::transpose16(pptr.get().add(x0 * g.cout + cb), g.cout, &dst) };
                    x0 += 16;
                }
                for (l, &row) in rows.iter().enumerate() {
                    // SAFETY: as above; no other reference to this row is live.
                    let row = unsafe { std::slice::from_raw_parts_mut(row, hw) };
                    for (x, v) in row.iter_mut().enumerate().skip(x0) {
                        // SAFETY: product row x, column cb + l, this task's.
                        *v = unsafe { *pptr.get().add(x * g.cout + cb + l) };
                    }
                    let res = match sum.as_deref() {
                        Some(sum) => Some(Residual {
                            data: &sum[l * hw..][..hw],
                            after_act: false,
                        }),
                        None => residual.map(|r| r.at(at(l), hw)),
                    };
                    epilogue_slice(row, ops.bias[cb + l], act, res);
                }
            }
        };
        if parallel && tasks > 1 {
            (0..tasks).into_par_iter().for_each(task);
        } else {
            (0..tasks).for_each(task);
        }
    }
    true
}

/// [`gemm_conv`] split over output channels: per image and group, one im2col of all output
/// pixels (shared, read-only), then one GEMM task per `chunk` output channels.
///
/// The shared right-hand side is packed whole first, except for a pointwise conv whose tasks
/// have at most [`ROWS_MAX_M`] output channels (with AVX-512), which read the input in place as
/// the row bands do: the packing ran on one thread while the others waited, and each task then
/// read the half another core had just written. Measured on Zen 5, 2 threads (packed → in
/// place, best ms, hot | caches flushed): ResNet-50's 256←1024 at 14² 0.240 → 0.225 | 0.267 →
/// 0.236, FPN's 256←256 at 14² 0.061 → 0.057 | 0.072 → 0.066, seed 001's 256←512 at 13² 0.103
/// → 0.096 | 0.118 → 0.105, 512←512 at 14² even; forwards at 2 threads (interleaved, best ms):
/// RetinaNet 93.3–94.1 → 92.0–92.3; ResNet-50 FPN (25.37–25.80 → 25.42–25.74) and seed 001
/// within the noise.
fn gemm_conv_by_channels(g: &Geom, x: &[f32], w: &[f32], blocks: &Blocks, chunk: usize) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let (k, hw_out) = (blocks.k, blocks.hw_out);
    let hw_in = g.h * g.w;
    // With the packed GEMM, an im2col conv packs the shared right-hand side from the image.
    let fused = !g.pointwise() && blocks.wpack.is_some();
    let mut cols = None;
    for n in 0..g.n {
        for grp in 0..g.groups {
            let x_img = &x[(n * g.cin + grp * cin_g) * hw_in..][..cin_g * hw_in];
            let tasks = cout_g.div_ceil(chunk);
            // The right-hand side packed once for every task (each packed it on its own):
            // straight from the image when fused, else from the im2col matrix or the input.
            let packed_im2col = if fused {
                blocks.pack_shared_im2col(g, x_img)
            } else {
                None
            };
            let (rhs, shared) = match packed_im2col {
                Some(bp) => (None, Some(bp)),
                None => {
                    if !g.pointwise() && cols.is_none() {
                        cols = Some(Scratch::take(&COLS, k * hw_out));
                    }
                    let (rhs, rhs_rs) = gemm_rhs(g, x_img, cols.as_deref_mut(), 0, g.oh);
                    // A pointwise conv's tasks of at most ROWS_MAX_M channels read the input in
                    // place (`packed::gemm_rows`), not packed (this function's doc).
                    let in_place = g.pointwise() && chunk <= ROWS_MAX_M && crate::kernel::simd512();
                    let shared = if in_place {
                        None
                    } else {
                        blocks.pack_shared(rhs, rhs_rs, hw_out)
                    };
                    (Some((rhs, rhs_rs)), shared)
                }
            };
            (0..tasks).into_par_iter().for_each(|t| {
                let c0 = t * chunk;
                let m = chunk.min(cout_g - c0);
                let c = grp * cout_g + c0;
                let o_base = (n * g.cout + c) * hw_out;
                #[cfg(target_arch = "x86_64")]
                if let (Some(bp), Some(a)) = (shared.as_deref(), blocks.packed_lhs(c)) {
                    // SAFETY: as below; `a` is those channels' packed weights, `bp` is the
                    // right-hand side packed whole (`pack_shared`, `pack_shared_im2col`).
                    unsafe { blocks.run_prepacked(o_base, c, m, hw_out, a, bp) };
                    return;
                }
                // Only reached without a shared packing, where `rhs` exists; else this
                // task's own im2col.
                let mut own;
                let (rhs, rhs_rs) = match rhs {
                    Some(r) => r,
                    None => {
                        own = (!g.pointwise()).then(|| Scratch::take(&COLS, k * hw_out));
                        gemm_rhs(g, x_img, own.as_deref_mut(), 0, g.oh)
                    }
                };
                // SAFETY: the block, channels c..c + m of image n (all pixels), lies inside the
                // output by the validated geometry, and only this task writes it (tasks are
                // distinct channel chunks); the lhs is those channels' m×k weights, rhs is
                // k×hw_out (row stride rhs_rs) by `gemm_rhs`.
                unsafe {
                    blocks.run(
                        o_base,
                        c,
                        m,
                        hw_out,
                        &w[c * k..][..m * k],
                        rhs,
                        rhs_rs,
                        gemm::Parallelism::None,
                    )
                };
            });
        }
    }
}

/// The GEMM's right-hand side `[cin_g·kh·kw, (oy1 − oy0)·ow]` for output rows `oy0..oy1` and its
/// row stride: the input itself from row `oy0` on for a pointwise conv (`cols` None), else the
/// im2col tile written into `cols`.
fn gemm_rhs<'a>(g: &Geom, x_img: &'a [f32], cols: Option<&'a mut [f32]>, oy0: usize, oy1: usize) -> (&'a [f32], usize) {
    let nc = (oy1 - oy0) * g.ow;
    match cols {
        None => (&x_img[oy0 * g.ow..], g.h * g.w),
        Some(cols) => {
            let tile = &mut cols[..g.cin_g() * g.kh * g.kw * nc];
            im2col(g, x_img, oy0, oy1, tile);
            (tile, nc)
        }
    }
}

/// Most output channels of a block whose right-hand side the AVX-512 tiles read in place
/// ([`packed::gemm_rows`]) rather than packed: each pair of row panels re-reads the block, from
/// L2 when it lies in place (its rows a plane apart, often a multiple of 4 KiB, so in the same
/// L1 sets), from L1 when packed. Measured on Zen 5, 1 thread, hot 1×1 convs, packed → in
/// place (ms): YOLOv8n's 32→32 at 160² 0.316 → 0.297, 48→32 at 160² 0.451 → 0.402, 192→64 at
/// 80² 0.740 → 0.679, 64→64 at 80² 0.258 → 0.234, 384→128 at 40² 0.673 → 0.648; seed 001's
/// 512→64 at 13² 0.054 → 0.047, 128→64 at 52² 0.205 → 0.192; 96→96 at 64² 0.33 → 0.31–0.32,
/// 256→128 at 32² 0.283–0.289 → 0.280–0.281; but 64→256 at 128² 2.49 → 2.63–2.66, 256→1024 at
/// 32² 2.16 → 2.25, 1024→256 2.25 → 2.28, and 256 rows at 20²–40² even. YOLOv8n's forward, 1
/// thread (3 interleaved runs, best ms): 24.34–24.83 → 23.71–24.10 (all rows in place); with
/// this bound and a rule that kept planes of 64² and 128² packed (64 KiB apart, all in one L2
/// set), 24.61–24.93 → 23.92–24.10, seed 001 1.32–1.39 → 1.30. That rule went once the tiles
/// prefetched two ahead ([`packed::gemm_rows`]): RetinaNet's 256→64 1×1 at 128² then took
/// 2.88 → 2.54 ms hot (3.14 → 2.94 from memory), 64→64 at 128² from memory 0.93 → 0.78; its
/// forward at 1 thread 186.8–191.2 → 182.5–186.4 ms, at 2 even (3 interleaved runs each).
/// Larger weights in place measured ±3% then (hot and from memory: 256→1024 and 1024→256 at 32²
/// 2.20 → 2.26 and 2.41 → 2.33, 512→2048 at 16² 2.16 → 2.13, 384→256 at 20² 0.328 → 0.322), so
/// the bound stayed. On an Intel Xeon (family 6 model 167, session 21; hot, 1 thread, packed →
/// in place, ms) larger weights in place were slower too: 256←64 at 56² 0.677–0.697 →
/// 0.717–0.728, 512←128 at 28² 0.573–0.605 → 0.628–0.639, 256←512 at 28² 1.28–1.30 →
/// 1.34–1.37, 256←1024 at 14² even.
const ROWS_MAX_M: usize = 128;

/// What every GEMM task of one conv shares: the output, the GEMM depth `k`, the output plane
/// size `hw_out` (the row stride of a block) and the epilogue's operands.
struct Blocks<'a> {
    out: OutPtr,
    k: usize,
    hw_out: usize,
    bias: &'a [f32],
    /// A residual the epilogue adds, or [`Sum::Onto`]: the product is added onto what the
    /// output holds (only with `wpack`).
    sum: Sum<'a>,
    act: Activation,
    /// The weights packed for [`packed::gemm`] (every group's panels, each group
    /// `panel` floats, `cout_g` channels per group), when the CPU runs it.
    wpack: Option<(&'a [f32], usize, usize)>,
}

impl Blocks<'_> {
    /// The packed weights of channels `c..` (of all groups), when the packed GEMM runs.
    fn packed_lhs(&self, c: usize) -> Option<&[f32]> {
        let (wp, panel, cout_g) = self.wpack?;
        let (grp, c0) = (c / cout_g, c % cout_g);
        // Chunks start on a panel (channel_split); the group's panels from c0 on.
        wp.get(grp * panel + (c0 / packed::MR) * packed::MR * self.k..)
    }

    /// The epilogue of the block of channels `c..` whose output starts at `o_base`: row `r`'s
    /// segment from column `col0` gets the bias, the residual at the same indices (if any) and
    /// the activation.
    fn epilogue(&self, o_base: usize, c: usize) -> impl Fn(usize, usize, &mut [f32]) + '_ {
        let hw_out = self.hw_out;
        move |r: usize, col0: usize, seg: &mut [f32]| {
            let b = self.bias[c + r];
            let res = self
                .sum
                .residual()
                .map(|res| res.at(o_base + r * hw_out + col0, seg.len()));
            #[cfg(target_arch = "x86_64")]
            if let Some(res) = self.sum.residual() {
                let ahead = o_base + (r + PREFETCH_ROWS) * hw_out + col0;
                if let Some(next) = res.data.get(ahead..ahead + seg.len()) {
                    for line in next.chunks(16) {
                        // SAFETY: a prefetch of an address inside the residual.
                        unsafe {
                            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast())
                        };
                    }
                }
            }
            epilogue_slice(seg, b, self.act, res);
        }
    }

    /// `rhs` (`k` rows of stride `rhs_rs`, `nc` columns) packed whole for
    /// [`run_prepacked`](Self::run_prepacked), when the packed GEMM runs and the buffer can be
    /// had; `None` otherwise (the tasks then pack their own blocks).
    fn pack_shared(&self, rhs: &[f32], rhs_rs: usize, nc: usize) -> Option<Scratch> {
        self.wpack?;
        let mut bp = Scratch::try_take(&BFULL, packed::packed_b_all_len(nc, self.k)?)?;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `wpack` is set only when the CPU has avx2 and fma; rhs holds k rows of
        // stride rhs_rs, the last nc long (`gemm_rhs`), and `bp` the packed length.
        unsafe {
            packed::pack_b_all(rhs, rhs_rs, self.k, nc, &mut bp)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (rhs, rhs_rs, &mut bp);
        Some(bp)
    }

    /// The im2col matrix of all of `x_img`'s output pixels, packed whole straight from the
    /// image for [`run_prepacked`](Self::run_prepacked) (as [`pack_shared`](Self::pack_shared)
    /// packs a materialized one), when the packed GEMM runs and the buffer can be had.
    fn pack_shared_im2col(&self, g: &Geom, x_img: &[f32]) -> Option<Scratch> {
        self.wpack?;
        let mut bp = Scratch::try_take(&BFULL, packed::packed_b_all_len(self.hw_out, self.k)?)?;
        let mut split = Scratch::take(&PHASES, Phased::len(g, 0, g.oh));
        let src = Phased::new(g, x_img, 0, g.oh, &mut split);
        let fill =
            |jc: usize, pc: usize, kc: usize, nc: usize, dst: &mut [f32]| pack_im2col(g, &src, 0, pc, kc, jc, nc, dst);
        packed::pack_b_all_filled(self.k, self.hw_out, &mut bp, &fill);
        Some(bp)
    }

    /// [`run`](Self::run) for an im2col conv on the packed weights, its right-hand side (output
    /// rows `oy0..oy1` of the image `x_img`) packed block by block straight from the image.
    ///
    /// # Safety
    /// As [`run`](Self::run) with `nc` = `(oy1 − oy0)·ow`; `x_img` must hold the group's
    /// `cin_g` input planes. Returns false, having written nothing, without packed weights.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn run_im2col(
        &self,
        g: &Geom,
        o_base: usize,
        c: usize,
        m: usize,
        x_img: &[f32],
        oy0: usize,
        oy1: usize,
    ) -> bool {
        let Some(a) = self.packed_lhs(c) else { return false };
        let nc = (oy1 - oy0) * g.ow;
        // SAFETY: o_base is inside the output (contract).
        let dst = unsafe { self.out.get().add(o_base) };
        let mut bpack = Scratch::take(&BPACK, packed::PACKED_B_LEN);
        let mut split = Scratch::take(&PHASES, Phased::len(g, oy0, oy1));
        let src = Phased::new(g, x_img, oy0, oy1, &mut split);
        let epilogue = self.epilogue(o_base, c);
        let fill = |jc: usize, pc: usize, kc: usize, nc: usize, dst: &mut [f32]| {
            pack_im2col(g, &src, oy0, pc, kc, jc, nc, dst)
        };
        // SAFETY: `wpack` is set only when the CPU has avx2 and fma; dst is the m×nc block of
        // row stride hw_out, inside the output and this task's alone (contract); `fill` writes
        // every float of each block.
        unsafe {
            packed::gemm_filled(
                m,
                nc,
                self.k,
                a,
                dst,
                self.hw_out,
                &mut bpack,
                &epilogue,
                self.sum.onto(),
                &fill,
            )
        };
        true
    }

    /// [`run`](Self::run) on the packed weights `a` of channels `c..` ([`packed_lhs`](Self::packed_lhs))
    /// and a right-hand side packed by [`pack_shared`](Self::pack_shared).
    ///
    /// # Safety
    /// As [`run`](Self::run), with `bp` the packing of a `k × nc` right-hand side.
    #[cfg(target_arch = "x86_64")]
    unsafe fn run_prepacked(&self, o_base: usize, c: usize, m: usize, nc: usize, a: &[f32], bp: &[f32]) {
        // SAFETY: o_base is inside the output (contract).
        let dst = unsafe { self.out.get().add(o_base) };
        let epilogue = self.epilogue(o_base, c);
        // SAFETY: `wpack` is set only when the CPU has avx2 and fma; dst is the m×nc block of
        // row stride hw_out, inside the output and this task's alone (contract).
        unsafe { packed::gemm_prepacked(m, nc, self.k, a, bp, dst, self.hw_out, &epilogue, self.sum.onto()) };
    }

    /// One task's output block, `m` channels from channel `c` (of all groups) × `nc` pixels from
    /// output index `o_base` on: `block = lhs[m×k] · rhs[k×nc]`, then per channel the bias, the
    /// residual at the same indices (if any) and the activation, while the block is in cache.
    ///
    /// # Safety
    /// `o_base + (m − 1)·hw_out + nc` must not exceed the output's length, no other thread may
    /// access the block during the call, `lhs` must hold `m·k` values and `rhs` `k` rows of
    /// stride `rhs_rs` (the last `nc` long).
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        &self,
        o_base: usize,
        c: usize,
        m: usize,
        nc: usize,
        lhs: &[f32],
        rhs: &[f32],
        rhs_rs: usize,
        par: gemm::Parallelism,
    ) {
        let (k, hw_out) = (self.k, self.hw_out);
        // SAFETY: o_base is inside the output (contract).
        let dst = unsafe { self.out.get().add(o_base) };
        #[cfg(target_arch = "x86_64")]
        if let Some(a) = self.packed_lhs(c) {
            let epilogue = self.epilogue(o_base, c);
            if m <= ROWS_MAX_M && crate::kernel::simd512() {
                // SAFETY: AVX-512F checked; rhs is k rows of stride rhs_rs (the last nc long) and
                // dst the m×nc block of row stride hw_out, inside the output and this task's
                // alone (contract).
                unsafe {
                    packed::gemm_rows(
                        m,
                        nc,
                        k,
                        a,
                        rhs.as_ptr(),
                        rhs_rs,
                        dst,
                        hw_out,
                        &epilogue,
                        self.sum.onto(),
                    )
                };
                return;
            }
            let mut bpack = Scratch::take(&BPACK, packed::PACKED_B_LEN);
            // SAFETY: `wpack` is set only when `simd()` says the CPU has avx2 and fma; rhs is k
            // rows of stride rhs_rs (the last nc long) and dst the m×nc block of row stride
            // hw_out, inside the output and this task's alone (contract).
            unsafe {
                packed::gemm(
                    m,
                    nc,
                    k,
                    a,
                    rhs.as_ptr(),
                    rhs_rs,
                    dst,
                    hw_out,
                    &mut bpack,
                    &epilogue,
                    self.sum.onto(),
                )
            };
            return;
        }
        // SAFETY: lhs is m×k (rs k) and rhs k×nc (rs rhs_rs) by the contract; dst is the m×nc
        // block (rs hw_out), inside the output and this task's alone.
        unsafe { sgemm(m, nc, k, dst, hw_out, lhs.as_ptr(), k, rhs.as_ptr(), rhs_rs, par) };
        for co in 0..m {
            // SAFETY: row co of the block (contract), not aliased by any other live reference.
            let seg = unsafe { std::slice::from_raw_parts_mut(dst.add(co * hw_out), nc) };
            let b = self.bias[c + co];
            let res = self.sum.residual().map(|r| r.at(o_base + co * hw_out, nc));
            epilogue_slice(seg, b, self.act, res);
        }
    }
}

/// The input rows a band of output rows `oy0..oy1` reads, for [`pack_im2col`]: the image itself
/// for horizontal stride 1, else each row split once into its `sw` column phases
/// (`phase[p][j] = row[j·sw + p]`, as [`im2col_strided`] does), so that every tap's run of
/// outputs is a contiguous copy.
struct Phased<'a> {
    data: &'a [f32],
    /// First input row held.
    iy_lo: usize,
    /// Rows held per channel.
    rows: usize,
    /// Input rows from one held row to the next ([`Phased::step`]).
    step: usize,
    /// Floats per phase (`w` for stride 1).
    pw: usize,
    /// `data` is the image itself, read in place by [`pack_1x1_s2_512`] (see
    /// [`Phased::in_place`]).
    in_place: bool,
}

impl<'a> Phased<'a> {
    /// Input rows from one row the conv reads to the next: its vertical stride for an unpadded
    /// one-row kernel (a strided 1×1 conv reads every `sh`-th row), else 1. Measured on Zen 5
    /// (splitting every row → every `sh`-th, ms, 1 | 2 threads): RetinaNet's stride-2 256→512
    /// 1×1 at 128² 6.06 → 5.68 | 3.13 → 2.92, 512→1024 at 64² 4.98 → 4.76 | even, 64→128 at
    /// 160² 0.69 → 0.64 | 0.39 → 0.36.
    fn step(g: &Geom) -> usize {
        if g.kh == 1 && g.pt == 0 {
            g.sh.max(1)
        } else {
            1
        }
    }

    /// Whether an unpadded stride-2 1×1 conv packs its blocks straight from the image
    /// ([`pack_1x1_s2_512`], AVX-512) instead of splitting its rows into phases first: one pass
    /// over the input instead of two, prefetching each plane's floats two channels ahead (the
    /// pass without the prefetch gained 2–8% only). Measured on Zen 5, 1 thread, hot,
    /// interleaved (ms): RetinaNet's 512→1024 at 64² 5.04–5.14 → 4.45–4.56, 256→512 at 128²
    /// 5.84–5.86 → 4.77–5.02, YOLOv8n-sized 64→128 at 160² 0.63–0.65 → 0.52–0.53.
    ///
    /// Unpadded on every side: no padding on top or left, and every output reads a pixel of
    /// the image (padding at the bottom or right gives outputs past it, which the packer does
    /// not zero: with a 1×1 input, stride 2 and 2 rows of padding below, it read past the plane).
    fn in_place(g: &Geom) -> bool {
        cfg!(target_arch = "x86_64")
            && crate::kernel::simd512()
            && [g.kh, g.kw, g.sh, g.sw] == [1, 1, 2, 2]
            && g.pointwise_reads_inside()
    }

    /// Rows held per channel for input rows `lo..hi`.
    fn held(g: &Geom, lo: usize, hi: usize) -> usize {
        (hi - lo).div_ceil(Self::step(g)).max(1)
    }

    /// Floats of the phase split of the band of output rows `oy0..oy1` (0 for stride 1).
    fn len(g: &Geom, oy0: usize, oy1: usize) -> usize {
        if g.sw == 1 || Self::in_place(g) {
            return 0;
        }
        let (lo, hi) = Self::input_rows(g, oy0, oy1);
        g.cin_g() * Self::held(g, lo, hi) * g.w.div_ceil(g.sw) * g.sw
    }

    /// Input rows `lo..hi` (clipped to the image) that feed output rows `oy0..oy1`.
    fn input_rows(g: &Geom, oy0: usize, oy1: usize) -> (usize, usize) {
        let lo = (oy0 * g.sh).saturating_sub(g.pt).min(g.h);
        let hi = ((oy1 - 1) * g.sh + (g.kh - 1) * g.dh + 1).saturating_sub(g.pt).min(g.h);
        (lo, hi.max(lo))
    }

    /// The band's rows of `x_img`, split into `split` (of [`Phased::len`] floats) when strided.
    fn new(g: &Geom, x_img: &'a [f32], oy0: usize, oy1: usize, split: &'a mut [f32]) -> Self {
        if g.sw == 1 || Self::in_place(g) {
            return Phased {
                data: x_img,
                iy_lo: 0,
                rows: g.h,
                step: 1,
                pw: g.w,
                in_place: g.sw != 1,
            };
        }
        let (lo, hi) = Self::input_rows(g, oy0, oy1);
        let pw = g.w.div_ceil(g.sw);
        let (rows, step) = (Self::held(g, lo, hi), Self::step(g));
        let hw = g.h * g.w;
        for (ci, plane) in split.chunks_exact_mut(rows * pw * g.sw).take(g.cin_g()).enumerate() {
            for (iy, prow) in (lo..hi).step_by(step).zip(plane.chunks_exact_mut(pw * g.sw)) {
                split_phases(&x_img[ci * hw + iy * g.w..][..g.w], g.sw, pw, prow);
            }
        }
        Phased {
            data: split,
            iy_lo: lo,
            rows,
            step,
            pw,
            in_place: false,
        }
    }

    /// Phase `p` of input row `iy` of channel `ci` (the row itself for stride 1); `iy` is one
    /// the conv reads (`iy_lo` plus a multiple of `step`).
    #[inline]
    fn phase(&self, g: &Geom, ci: usize, iy: usize, p: usize) -> &[f32] {
        let row_len = self.pw * g.sw;
        let r = (iy - self.iy_lo) / self.step;
        &self.data[(ci * self.rows + r) * row_len + p * self.pw..][..self.pw]
    }
}

/// Rows `pc..pc + kc` and columns `jc..jc + nc` of the im2col matrix of the output rows from
/// `oy0` on (what [`im2col`] writes for them), packed as the packed GEMM reads a right-hand-side
/// block: `out[jp·panel_stride(kc) + kk·NR + j]` holds row `pc + kk`, column `jc + jp·NR + j`,
/// and the columns past `nc` in the last panel are zero. `src` holds the band's input rows;
/// `out` holds `packed::block_len(kc, nc)` floats, and every one a panel's rows hold is written.
#[allow(clippy::too_many_arguments)]
fn pack_im2col(g: &Geom, src: &Phased, oy0: usize, pc: usize, kc: usize, jc: usize, nc: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if src.in_place {
        // SAFETY: `in_place` only where the CPU runs AVX-512 (`Phased::in_place`).
        return unsafe { pack_1x1_s2_512(g, src.data, oy0, pc, kc, jc, nc, out) };
    }
    const NR: usize = packed::NR;
    let taps = g.kh * g.kw;
    let ncp = nc.next_multiple_of(NR);
    let ps = packed::panel_stride(kc);
    for kk in 0..kc {
        let r = pc + kk;
        let (ci, ky, kx) = (r / taps, (r / g.kw) % g.kh, r % g.kw);
        let off = kx * g.dw;
        let (lo, hi) = valid_range(g.ow, g.sw, off, g.pl, g.w);
        // column j of the block is output pixel jc + j, walked by pieces within one output
        // row and one panel (a panel row is NR consecutive floats)
        for (oy, x0, col, piece) in block_pieces(g.ow, oy0, jc, nc) {
            let iy = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
            let inside = iy >= 0 && iy < g.h as isize && lo < hi;
            // outputs lo..hi of the row read inside the image: output o from `row` at j0 + (o − lo)
            let (row, j0) = if inside {
                let ix = lo * g.sw + off - g.pl;
                (Some(src.phase(g, ci, iy as usize, ix % g.sw)), ix / g.sw)
            } else {
                (None, 0)
            };
            let dst = &mut out[(col / NR) * ps + kk * NR + col % NR..][..piece];
            if let Some(row) = row.filter(|_| piece == NR && x0 >= lo && x0 + NR <= hi) {
                // a whole panel row inside the image: one fixed-size copy
                let s0 = j0 + (x0 - lo);
                if let (Ok(d), Ok(s)) = (
                    <&mut [f32; NR]>::try_from(dst),
                    <&[f32; NR]>::try_from(&row[s0..s0 + NR]),
                ) {
                    *d = *s;
                }
                continue;
            }
            match row {
                None => dst.fill(0.0),
                Some(row) => {
                    let end = x0 + piece;
                    let a = x0.max(lo).min(end);
                    let b = end.min(hi).max(a);
                    dst[..a - x0].fill(0.0);
                    dst[b - x0..].fill(0.0);
                    if a < b {
                        let s0 = j0 + (a - lo);
                        dst[a - x0..b - x0].copy_from_slice(&row[s0..s0 + (b - a)]);
                    }
                }
            }
        }
        if ncp > nc {
            out[(ncp / NR - 1) * ps + kk * NR + (NR - (ncp - nc))..][..ncp - nc].fill(0.0);
        }
    }
}

/// A packed right-hand-side block's columns `jc..jc + nc` (output pixels from row `oy0` on,
/// `ow` to a row) cut where an output row or a panel of [`packed::NR`] columns ends:
/// `(oy, ox, col, piece)` for the `piece` columns from block column `col`, output pixels `ox..ox
/// + piece` of row `oy`.
#[inline(always)]
fn block_pieces(ow: usize, oy0: usize, jc: usize, nc: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    const NR: usize = packed::NR;
    // One division for the first pixel; then rows and columns advance by the pieces.
    let (mut j, mut oy, mut ox) = (0, oy0 + jc / ow.max(1), jc % ow.max(1));
    std::iter::from_fn(move || {
        (j < nc).then(|| {
            let piece = (NR - j % NR).min(ow - ox).min(nc - j);
            let item = (oy, ox, j, piece);
            j += piece;
            ox += piece;
            if ox == ow {
                (oy, ox) = (oy + 1, 0);
            }
            item
        })
    })
}

/// [`pack_im2col`] of an unpadded stride-2 1×1 conv, from the image `x_img` (the group's
/// `cin_g` planes) in place: a panel row of 16 outputs in one image row is the even elements of
/// 32 consecutive input floats, taken by one permute of two loads; other pieces (a row's end
/// inside a panel, the plane's last floats) element by element.
///
/// # Safety
/// The CPU must support avx512f.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pack_1x1_s2_512(
    g: &Geom,
    x_img: &[f32],
    oy0: usize,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    const NR: usize = packed::NR;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let hw = g.h * g.w;
    let ncp = nc.next_multiple_of(NR);
    let ps = packed::panel_stride(kc);
    for kk in 0..kc {
        let plane = &x_img[(pc + kk) * hw..][..hw];
        for (oy, ox, col, piece) in block_pieces(g.ow, oy0, jc, nc) {
            // Output (oy, x) reads input (2·oy, 2·x): `row[2·x]`, the rest of the plane after.
            let row = &plane[2 * oy * g.w..];
            let dst = &mut out[(col / NR) * ps + kk * NR + col % NR..][..piece];
            let s0 = 2 * ox;
            if piece == NR && s0 + 2 * NR <= row.len() {
                // SAFETY: 32 floats from s0 are inside `row` and 16 inside `dst` (checked);
                // AVX-512F (contract).
                unsafe {
                    let src = row.as_ptr().add(s0);
                    // The same floats of the plane packed::PACK_AHEAD channels on, as `pack_b`
                    // does (a prefetch never faults; past the image it fetches nothing useful).
                    let ahead = src.wrapping_add(packed::PACK_AHEAD * hw);
                    _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(NR).cast());
                    let (lo, hi) = (_mm512_loadu_ps(src), _mm512_loadu_ps(src.add(NR)));
                    _mm512_storeu_ps(dst.as_mut_ptr(), _mm512_permutex2var_ps(lo, even, hi));
                }
            } else {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = row[s0 + 2 * i];
                }
            }
        }
        if ncp > nc {
            out[(ncp / NR - 1) * ps + kk * NR + (NR - (ncp - nc))..][..ncp - nc].fill(0.0);
        }
    }
}

/// Writes the im2col matrix `[cin_g·kh·kw, (oy1-oy0)·ow]` of output rows `oy0..oy1`.
fn im2col(g: &Geom, x_img: &[f32], oy0: usize, oy1: usize, cols: &mut [f32]) {
    if g.sw > 1 {
        return im2col_strided(g, x_img, oy0, oy1, cols);
    }
    let nc = (oy1 - oy0) * g.ow;
    let hw = g.h * g.w;
    let mut rows = cols.chunks_exact_mut(nc);
    for ci in 0..g.cin_g() {
        let xin = &x_img[ci * hw..][..hw];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let Some(row) = rows.next() else { return };
                let off = kx * g.dw;
                let (lo, hi) = valid_range(g.ow, 1, off, g.pl, g.w);
                for (oy, dst) in (oy0..oy1).zip(row.chunks_exact_mut(g.ow)) {
                    let iy = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
                    if iy < 0 || iy >= g.h as isize || lo >= hi {
                        dst.fill(0.0);
                        continue;
                    }
                    let irow = &xin[iy as usize * g.w..][..g.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    let first = lo + off - g.pl;
                    dst[lo..hi].copy_from_slice(&irow[first..first + (hi - lo)]);
                }
            }
        }
    }
}

/// [`im2col`] for horizontal stride `sw > 1`: each input row the band needs is split once into
/// its `sw` column phases (`phase[p][j] = row[j·sw + p]`), after which every tap's outputs are
/// one contiguous copy from a phase instead of a strided gather.
fn im2col_strided(g: &Geom, x_img: &[f32], oy0: usize, oy1: usize, cols: &mut [f32]) {
    let nc = (oy1 - oy0) * g.ow;
    let hw = g.h * g.w;
    let pw = g.w.div_ceil(g.sw);
    let row_len = g.sw * pw;
    // Input rows iy_lo..iy_hi (clipped to the image) feed output rows oy0..oy1.
    let (iy_lo, iy_hi) = Phased::input_rows(g, oy0, oy1);
    let mut phases = Scratch::zeroed(&PHASES, (iy_hi - iy_lo).max(1) * row_len);
    for ci in 0..g.cin_g() {
        let xin = &x_img[ci * hw..][..hw];
        for (iy, prow) in (iy_lo..iy_hi).zip(phases.chunks_exact_mut(row_len)) {
            split_phases(&xin[iy * g.w..][..g.w], g.sw, pw, prow);
        }
        for ky in 0..g.kh {
            let base = (ci * g.kh + ky) * g.kw * nc;
            for oy in oy0..oy1 {
                let seg = (oy - oy0) * g.ow;
                let iy = (oy * g.sh + ky * g.dh) as isize - g.pt as isize;
                let inside = iy >= 0 && iy < g.h as isize;
                for kx in 0..g.kw {
                    let (lo, hi) = valid_range(g.ow, g.sw, kx * g.dw, g.pl, g.w);
                    let dst = &mut cols[base + kx * nc + seg..][..g.ow];
                    if !inside || lo >= hi {
                        dst.fill(0.0);
                        continue;
                    }
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    // Input column of output `lo`: lo·sw + kx·dw − pl = j0·sw + p.
                    let ix = lo * g.sw + kx * g.dw - g.pl;
                    let (j0, p) = (ix / g.sw, ix % g.sw);
                    let prow = &phases[(iy as usize - iy_lo) * row_len..][..row_len];
                    dst[lo..hi].copy_from_slice(&prow[p * pw + j0..][..hi - lo]);
                }
            }
        }
    }
}

/// Splits `row` into its `sw` column phases: `out[p·pw + j] = row[j·sw + p]`.
#[inline]
pub(crate) fn split_phases(row: &[f32], sw: usize, pw: usize, out: &mut [f32]) {
    if sw == 2 {
        let (p0, p1) = out.split_at_mut(pw);
        deinterleave(row, p0, p1);
    } else {
        for (j, chunk) in row.chunks(sw).enumerate() {
            for (p, &v) in chunk.iter().enumerate() {
                out[p * pw + j] = v;
            }
        }
    }
}

/// `p0[j] = row[2j]`, `p1[j] = row[2j + 1]` (`p0` holds `⌈len/2⌉` floats, `p1` `⌊len/2⌋`), with
/// AVX2 when the CPU has it.
#[inline]
pub(crate) fn deinterleave(row: &[f32], p0: &mut [f32], p1: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: `simd()` says the CPU has avx2 (and fma).
        unsafe { deinterleave2_avx2(row, p0, p1) };
        return;
    }
    deinterleave2(row, p0, p1);
}

/// The portable [`deinterleave`].
fn deinterleave2(row: &[f32], p0: &mut [f32], p1: &mut [f32]) {
    let pairs = row.chunks_exact(2);
    if let [last] = pairs.remainder() {
        p0[row.len() / 2] = *last;
    }
    for ((a, b), pair) in p0.iter_mut().zip(p1.iter_mut()).zip(pairs) {
        *a = pair[0];
        *b = pair[1];
    }
}

/// [`deinterleave2`] eight pairs at a time: two shuffles and two lane permutes.
///
/// # Safety
/// The CPU must support avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn deinterleave2_avx2(row: &[f32], p0: &mut [f32], p1: &mut [f32]) {
    use std::arch::x86_64::*;
    let blocks = (row.len() / 16).min(p0.len() / 8).min(p1.len() / 8);
    for b in 0..blocks {
        let (src, d0, d1) = (&row[b * 16..][..16], &mut p0[b * 8..][..8], &mut p1[b * 8..][..8]);
        // SAFETY: 16 floats are read from `src` and 8 written to each of `d0`, `d1` (all in
        // bounds by their lengths); unaligned loads and stores.
        unsafe {
            let a = _mm256_loadu_ps(src.as_ptr());
            let c = _mm256_loadu_ps(src.as_ptr().add(8));
            // per 128-bit lane: [a0 a2 c0 c2 | a4 a6 c4 c6], then lanes' 64-bit halves reordered
            let even = _mm256_shuffle_ps::<0b10_00_10_00>(a, c);
            let odd = _mm256_shuffle_ps::<0b11_01_11_01>(a, c);
            let even = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(even)));
            let odd = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(odd)));
            _mm256_storeu_ps(d0.as_mut_ptr(), even);
            _mm256_storeu_ps(d1.as_mut_ptr(), odd);
        }
    }
    deinterleave2(&row[blocks * 16..], &mut p0[blocks * 8..], &mut p1[blocks * 8..]);
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The AVX2 deinterleave of stride-2 rows equals the definition on every length.
    #[test]
    fn stride_two_phases_split_every_length() {
        for len in 0..70usize {
            let row: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let pw = len.div_ceil(2);
            let mut out = vec![f32::NAN; 2 * pw];
            split_phases(&row, 2, pw, &mut out);
            for (i, &v) in row.iter().enumerate() {
                assert_eq!(out[(i % 2) * pw + i / 2], v, "length {len}, element {i}");
            }
        }
    }

    /// The epilogues the pointwise tests run: an activation alone, with a residual added before
    /// it, and one added after it.
    const EPILOGUES: [(Activation, Option<bool>); 3] = [
        (Activation::Silu, None),
        (Activation::Relu, Some(false)),
        (Activation::Silu, Some(true)),
    ];

    /// A 1×1 conv's input, weight, bias and a residual of its output's size for `g`, uniform
    /// in [-1, 1) from a small LCG seeded with `seed`.
    struct Pointwise {
        x: Vec<f32>,
        w: Vec<f32>,
        bias: Vec<f32>,
        r: Vec<f32>,
    }

    impl Pointwise {
        fn random(g: &Geom, mut seed: u32) -> Self {
            let mut rnd = move |len: usize| -> Vec<f32> {
                (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
                    })
                    .collect()
            };
            Pointwise {
                x: rnd(g.n * g.cin * g.h * g.w),
                w: rnd(g.cout * g.cin),
                bias: rnd(g.cout),
                r: rnd(g.n * g.cout * g.oh * g.ow),
            }
        }

        /// `r` as a residual added after the activation (`Some(true)`), before it, or none.
        fn residual(&self, after_act: Option<bool>) -> Option<Residual<'_>> {
            after_act.map(|after_act| Residual {
                data: &self.r,
                after_act,
            })
        }

        fn ops(&self) -> Operands<'_> {
            Operands {
                x: &self.x,
                w: &self.w,
                bias: &self.bias,
                wpack: None,
                wpack_cv: None,
            }
        }
    }

    /// The geometry of an ungrouped 1×1 stride-1 conv of `cin` → `cout` channels on `side`².
    fn pointwise(n: usize, cin: usize, side: usize, cout: usize) -> Geom {
        Geom {
            n,
            cin,
            h: side,
            w: side,
            cout,
            kh: 1,
            kw: 1,
            sh: 1,
            sw: 1,
            dh: 1,
            dw: 1,
            pt: 0,
            pl: 0,
            oh: side,
            ow: side,
            groups: 1,
        }
    }

    /// A 1×1 conv at 14² with 256→512 channels splits over output channels at batch 1 and 2
    /// on 2 threads, and runs one task per image from batch 4 on; one with fewer output
    /// channels than pixels (512→128 at 28²) runs row bands.
    #[test]
    fn channel_split_gives_way_to_images() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a 2-thread pool");
        let geom = |n, [cin, cout, side]: [usize; 3]| pointwise(n, cin, side, cout);
        pool.install(|| {
            for (n, split) in [(1, true), (2, true), (3, true), (4, false), (8, false)] {
                assert_eq!(channel_split(&geom(n, [256, 512, 14])).is_some(), split, "batch {n}");
            }
            assert!(channel_split(&geom(1, [512, 128, 28])).is_none());
            assert!(channel_split(&geom(1, [256, 1024, 14])).is_some());
        });
    }

    /// The transposed 1×1 conv gives the pixel-lane path's outputs bit for bit: pointwise and
    /// strided, batch 1 and 2, without a residual and with one added before and after the
    /// activation, on 1 thread and split over 2; and the dispatch takes the maps it should.
    #[test]
    fn transposed_equals_pixel_lanes() {
        crate::kernel::simd512_held(transposed_equals_pixel_lanes_held);
    }

    /// [`transposed_equals_pixel_lanes`] while `simd512()` cannot change.
    fn transposed_equals_pixel_lanes_held() {
        if !crate::kernel::simd512() {
            return;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a 2-thread pool");
        let geom = |n, cin, h, cout, s| {
            let o = (h - 1) / s + 1;
            Geom {
                n,
                cin,
                h,
                w: h,
                cout,
                kh: 1,
                kw: 1,
                sh: s,
                sw: s,
                dh: 1,
                dw: 1,
                pt: 0,
                pl: 0,
                oh: o,
                ow: o,
                groups: 1,
            }
        };
        // (n, cin, h, cout, stride): 7² (49 pixels: four 12-row tiles and one of 1), a strided
        // 14 → 7, 10², 5², a strided 13 → 7 with a 300-channel reduction (three KC blocks), a
        // strided 56 → 28.
        for (n, cin, h, cout, s) in [
            (1, 256, 7, 288, 1),
            (2, 320, 14, 256, 2),
            (1, 512, 10, 128, 1),
            (1, 256, 5, 256, 1),
            (2, 300, 13, 224, 2),
            (1, 256, 56, 256, 2),
        ] {
            let g = geom(n, cin, h, cout, s);
            assert!(transposed_fits(&g), "{:?}", (n, cin, h, cout, s));
            let data = Pointwise::random(&g, 11 + cin as u32);
            let (ops, r) = (data.ops(), &data.r);
            let len = r.len();
            for (act, after_act) in EPILOGUES {
                let res = data.residual(after_act);
                for two in [false, true] {
                    let (mut want, mut got) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                    let run = |want: &mut [f32], got: &mut [f32]| {
                        gemm_conv_pixels(&g, ops, act, want, res.into());
                        assert!(conv_transposed(&g, ops, act, got, res.into()));
                    };
                    if two {
                        pool.install(|| run(&mut want, &mut got));
                    } else {
                        run(&mut want, &mut got);
                    }
                    let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{:?}, {act:?}, residual {res:?}, 2 threads {two}",
                        (n, cin, h, cout, s)
                    );
                    // onto the residual in the output's buffer: the residual form's bits
                    if res.is_some_and(|r| !r.after_act) {
                        let mut onto = r.clone();
                        if two {
                            pool.install(|| assert!(conv_transposed(&g, ops, act, &mut onto, Sum::Onto)));
                        } else {
                            assert!(conv_transposed(&g, ops, act, &mut onto, Sum::Onto));
                        }
                        let same = want.iter().zip(&onto).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{:?}, onto, 2 threads {two}", (n, cin, h, cout, s));
                    }
                }
            }
        }
        // Not taken: 14² pointwise (196 of 208 lanes), 16² (no lane empty), a small weight,
        // output channels not whole blocks of 16, strided onto 32².
        for (n, cin, h, cout, s) in [
            (1, 256, 14, 1024, 1),
            (1, 256, 16, 256, 1),
            (1, 64, 7, 256, 1),
            (1, 256, 7, 264, 1),
            (1, 256, 64, 256, 2),
        ] {
            assert!(
                !transposed_fits(&geom(n, cin, h, cout, s)),
                "{:?}",
                (n, cin, h, cout, s)
            );
        }
    }

    /// A pointwise conv split over output channels on 2 threads gives its 1-thread outputs (row
    /// bands, no split) bit for bit, its tasks reading the input in place (at most
    /// `ROWS_MAX_M` channels each) or a shared packing (more): 14² and 13² maps, a reduction of
    /// three KC blocks, batch 2, a residual before and after the activation and onto the sum.
    #[test]
    fn channel_split_equals_one_thread() {
        if !simd() {
            return;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a 2-thread pool");
        // (n, cin, side, cout): chunks of 64 (in place), of 128 (in place, at the bound), of
        // 256 (packed), 64 over a 300-deep reduction.
        let mut split = 0;
        for (n, cin, side, cout) in [
            (1, 512, 14, 256),
            (2, 64, 14, 512),
            (1, 64, 14, 1024),
            (1, 300, 13, 256),
        ] {
            let g = pointwise(n, cin, side, cout);
            split += usize::from(pool.install(|| channel_split(&g)).is_some());
            let data = Pointwise::random(&g, 5 + cin as u32);
            let (ops, r) = (data.ops(), &data.r);
            let len = r.len();
            for (act, after_act) in EPILOGUES {
                let res = data.residual(after_act);
                let (mut want, mut got) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                let one = rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("a 1-thread pool");
                one.install(|| assert!(gemm_conv_pixels(&g, ops, act, &mut want, res.into())));
                pool.install(|| assert!(gemm_conv_pixels(&g, ops, act, &mut got, res.into())));
                let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{:?}, {act:?}, residual {res:?}", (n, cin, side, cout));
                if res.is_some_and(|r| !r.after_act) {
                    let (mut want, mut got) = (r.clone(), r.clone());
                    one.install(|| assert!(gemm_conv_pixels(&g, ops, act, &mut want, Sum::Onto)));
                    pool.install(|| assert!(gemm_conv_pixels(&g, ops, act, &mut got, Sum::Onto)));
                    let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{:?}, onto", (n, cin, side, cout));
                }
            }
        }
        assert_eq!(split, 4, "every case splits over output channels on 2 threads");
    }

    /// `pack_im2col` packs exactly what packing the materialized im2col matrix gives, bit for
    /// bit, over strides, dilations, asymmetric padding, groups' planes, bands that start
    /// mid-image and blocks that cut output rows and panels anywhere.
    #[test]
    fn im2col_packed_from_the_image_equals_packing_im2col() {
        if !simd() {
            return;
        }
        // (cin_g, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr)
        let cases = [
            (3, 13, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
            (2, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
            (4, 11, 23, 3, 5, 1, 3, 2, 1, 0, 2, 2, 0),
            (1, 40, 40, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3),
            (20, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
            (2, 5, 6, 1, 3, 1, 2, 1, 1, 0, 4, 0, 4),
            (1, 4, 5, 1, 3, 1, 1, 1, 1, 0, 7, 0, 7),
            (2, 3, 30, 3, 3, 1, 1, 1, 1, 2, 9, 2, 0),
            // one-row kernels with vertical strides: only every sh-th row is split
            (3, 9, 11, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0),
            (2, 10, 9, 1, 3, 3, 2, 1, 1, 0, 1, 0, 1),
            // unpadded stride-2 1×1 (with AVX-512 read in place): rows of whole 16-column
            // panel rows (32 outputs), of a panel row and a ragged end (35, 17), odd widths
            // whose last panel row ends at the plane's end
            (3, 6, 64, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0),
            (2, 7, 70, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0),
            (2, 5, 33, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0),
            (1, 3, 63, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0),
            // stride-2 1×1 with padding only below or right (outputs past the image: not in
            // place), the proptest case that read past the plane, and a wide one
            (2, 1, 1, 1, 1, 2, 2, 1, 1, 0, 0, 2, 0),
            (2, 6, 64, 1, 1, 2, 2, 1, 1, 0, 0, 1, 3),
        ];
        // With AVX-512 (where the CPU has it) and without: the in-place and the split packing.
        let both = |f: &dyn Fn()| {
            f();
            crate::kernel::avx2_only(f);
        };
        both(&|| {
            for &(cin, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr) in &cases {
                let oh = (h + pt + pb - dh * (kh - 1) - 1) / sh + 1;
                let ow = (w + pl + pr - dw * (kw - 1) - 1) / sw + 1;
                let g = Geom {
                    n: 1,
                    cin,
                    h,
                    w,
                    cout: 6,
                    kh,
                    kw,
                    sh,
                    sw,
                    dh,
                    dw,
                    pt,
                    pl,
                    oh,
                    ow,
                    groups: 1,
                };
                let x: Vec<f32> = (0..cin * h * w).map(|i| i as f32 + 1.0).collect();
                let k = cin * kh * kw;
                for (oy0, oy1) in [(0, oh), (oh / 2, oh), (1.min(oh - 1), oh.min(3))] {
                    let nc = (oy1 - oy0) * ow;
                    let mut cols = vec![f32::NAN; k * nc];
                    im2col(&g, &x, oy0, oy1, &mut cols);
                    let len = packed::packed_b_all_len(nc, k).unwrap();
                    let (mut want, mut got) = (vec![f32::NAN; len], vec![f32::NAN; len]);
                    // SAFETY: simd() checked; cols is k rows of nc, `want` the packed length.
                    unsafe { packed::pack_b_all(&cols, nc, k, nc, &mut want) };
                    let mut split = vec![f32::NAN; Phased::len(&g, oy0, oy1)];
                    let src = Phased::new(&g, &x, oy0, oy1, &mut split);
                    let fill = |jc: usize, pc: usize, kc: usize, nc: usize, dst: &mut [f32]| {
                        pack_im2col(&g, &src, oy0, pc, kc, jc, nc, dst)
                    };
                    packed::pack_b_all_filled(k, nc, &mut got, &fill);
                    let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "geometry {:?}, rows {oy0}..{oy1}",
                        (cin, h, w, kh, kw, sh, sw, dh, dw, pt, pl)
                    );
                }
            }
        });
    }
}
