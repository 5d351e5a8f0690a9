//! Winograd F(2×2, 3×3) for stride-1, dilation-1 3×3 convs with many channels (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016).
//!
//! Each M×M output tile is `Aᵀ [Σ_ci (G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ)] A` over α×α input tiles `d`
//! (α = M + 2): the channel sum becomes α² independent GEMMs `M[ξ] = U[ξ] · V[ξ]` (`cout × cin`
//! times `cin × tiles`) with 9M²/α² fewer multiply-adds than im2col + GEMM (2.25× for M = 2).
//! The weight transform `U` depends on the weight only: [`crate::Conv2d`] computes it once at
//! construction, the free `conv2d` once per call (in parallel over output channels,
//! [`conv3x3_transforming`]). Tiles are processed in blocks (one rayon task each, GEMMs
//! single-threaded inside) so `V` and `M` of a block stay near the caches. With AVX-512 the
//! GEMMs run on fpn's packed tile ([`packed::gemm_columns`]) from `U` packed once and `V`
//! transformed straight into its panels; otherwise on the `gemm` crate.
//!
//! **Why M = 2.** fpn's rule is that its error against a float64 run is at most twice PyTorch
//! float32's own, and PyTorch's CPU convs do not use Winograd. F(4×4, 3×3) (4× fewer
//! multiply-adds; its code is kept, `M = 4`) broke that rule on every spec with wide 3×3
//! convs, even with the best-conditioned points known (0, 1, −1, 1/2, −2, ∞, Barabasz et al.
//! 2020; Lavin's 0, ±1, ±2 was 2.5× worse): whole-network errors of 1.8–3.4× PyTorch's
//! (docs/onnx.md), where fpn without Winograd is at 0.4–0.8×. F(2×2, 3×3) uses the points 0, 1,
//! −1, ∞, whose transforms have only ±1 and ½ entries (exact in floating point). Max abs error
//! against an f64 direct sum, 256 → 256 3×3 pad 1, PyTorch-default (kaiming-uniform) weights,
//! one image (`tests/it/winograd_accuracy.rs`, release build), outputs up to |y| ≈ 2:
//!
//! | size, inputs | F(4×4) 0, ±1, ±2 | F(4×4) 0, ±1, 1/2, −2 | **F(2×2)** | F(2×2), AVX-512 tile | im2col + GEMM |
//! | --- | ---: | ---: | ---: | ---: | ---: |
//! | 56×56, U[−1, 1] | 2.14e-5 | 8.89e-6 | 1.13e-6 | 7.51e-7 | 4.80e-7 |
//! | 56×56, post-ReLU | 1.91e-5 | 7.35e-6 | 1.12e-6 | 1.01e-6 | 5.33e-7 |
//! | 104×104, U[−1, 1] | 2.35e-5 | 8.92e-6 | 1.35e-6 | 8.25e-7 | 5.34e-7 |
//! | 104×104, post-ReLU | 2.29e-5 | 9.22e-6 | 1.15e-6 | 7.64e-7 | 5.15e-7 |
//!
//! (The F(2×2) column with the `gemm` crate's GEMMs; the next with fpn's AVX-512 tile, which
//! sums each 128-channel block in registers.)
//!
//! A float32 simulation in PyTorch of the same algorithms (`conv2d` f32 error = 1): F(2×2)
//! 0.2–0.4×, F(4×4) 1.4–2.5×, F(3×3) with 0, ±1, ½ 1.4–2.5×. The path is only taken for
//! `cin/groups` and `cout/groups` ≥ [`MIN_CHANNELS`], where it pays.

use rayon::prelude::*;

use crate::act::{epilogue_slice, Activation, Residual, Sum};
use crate::kernel::{sgemm, simd, simd512, Geom, Operands, OutPtr, Scratch, WINO_M, WINO_U, WINO_V};
use crate::packed;

/// Smallest per-group channel counts worth the transforms.
pub(crate) const MIN_CHANNELS: usize = 16;

/// Whether a conv's weight and parameters suit this path (3×3, stride 1, dilation 1, at least
/// [`MIN_CHANNELS`] input and output channels per group), whatever the input: the test a
/// prepared conv uses to cache `U`, and the geometric half of the per-call gate.
pub(crate) fn eligible(
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    cin_g: usize,
    cout_g: usize,
) -> bool {
    kernel == [3, 3] && stride == [1, 1] && dilation == [1, 1] && cin_g >= MIN_CHANNELS && cout_g >= MIN_CHANNELS
}

/// Tiles per block on the AVX-512 tile ([`packed::gemm_columns`]), whose GEMMs run whole
/// column panels of 16 tiles: of `even` (the tiles that split the work evenly) and the
/// multiples of 16 up to [`MAX_TILES`], the one whose blocks, dealt to `threads` in turn, leave
/// the busiest thread the least work ([`busiest`]); `even` on a tie, else the larger. Measured
/// on Zen 5, 1 thread, hot, best of 5 interleaved (ms): 32→32 at 80² (1600 tiles) in blocks of
/// 124, 120, 128 and 112 tiles 0.401, 0.389–0.393, 0.376, 0.384; 64→64 at 40² (400) in blocks
/// of 100, 112, 96 and 80 0.357–0.359, 0.325–0.332, 0.318–0.322, 0.317–0.330: a part-empty
/// panel costs about what a whole one does, in the GEMM and the transforms' stores. With this
/// choice (before → after, hot, best of 4 interleaved, ms, 1 | 2 threads): 32→32 at 80² 0.414
/// → 0.389 | 0.232 → 0.205, 64→64 at 40² 0.367 → 0.329 | 0.191 → 0.176, 64→64 at 56² even |
/// 0.382 → 0.334, 128→128 at 28² 0.624 → 0.581 | even; 20², 14², 32², 7² and 128² maps even.
/// Forwards (2 interleaved runs, best ms, 1 | 2 threads): ResNet-18 FPN 87.7–89.5 → 84.3–85.2 |
/// 45.5–45.7 → 44.2–45.2, ResNet-50 FPN 50.0–51.5 → 49.3–49.8 | 27.6–28.0 → 26.9 (one round
/// of 31.4), YOLOv8n 24.7–24.9 → 24.3–24.6 | 12.7–12.8 → 12.2–12.6.
fn panel_tiles(total: usize, even: usize, threads: usize) -> usize {
    let nr = packed::NR;
    let mut best = (busiest(total, even, threads), even);
    for t in (1..=MAX_TILES / nr).rev().map(|i| i * nr) {
        let span = busiest(total, t, threads);
        if span < best.0 {
            best = (span, t);
        }
    }
    best.1
}

/// The work of the busiest of `threads` when `total` tiles run in blocks of `t` (the last
/// block the rest), dealt in turn, the last to a least-busy thread: each block costs its tiles
/// rounded up to whole panels of 16, plus [`BLOCK_COST`].
fn busiest(total: usize, t: usize, threads: usize) -> usize {
    let (t, threads) = (t.clamp(1, total.max(1)), threads.max(1));
    let blocks = total.div_ceil(t);
    let cost = |tiles: usize| tiles.next_multiple_of(packed::NR) + BLOCK_COST;
    let full = blocks.saturating_sub(1);
    let last = total - full * t;
    let (q, r) = (full / threads, full % threads);
    let most = (if r > 0 { q + 1 } else { q }) * cost(t);
    most.max(q * cost(t) + cost(last))
}

/// A block's own cost in tiles' worth of work (reading `U` once more, starting its GEMMs),
/// for [`busiest`].
const BLOCK_COST: usize = 8;

/// Output tile side `M` of F(M×M, 3×3): 2 or 4 (see the module docs for why 2).
const M: usize = 2;

/// Input tile side `α = M + 2`.
const A: usize = M + 2;

/// Transformed planes per tile, `α²`: the number of GEMMs.
const PLANES: usize = A * A;

/// Below this many tiles per thread the work is split over output channels instead of tiles.
const SPLIT_TILES: usize = 16;

/// Largest number of tiles in one block (one task): `V` and `M` of a block are
/// `α² · channels · MAX_TILES` floats each. 64 for F(4×4), 128 for F(2×2): blocks of 1024 or
/// 512 output pixels, `V` of the same size, and wide enough GEMMs to amortise packing `U`.
const MAX_TILES: usize = 256 / M;

/// `G g Gᵀ` along one axis for F(4×4, 3×3): 3 taps to 6 transformed values (the filter's
/// polynomial at the points 0, 1, −1, 1/2, −2 divided by `∏(aⱼ − aₗ)`, and its leading tap
/// for ∞).
#[inline(always)]
fn wt4(g0: f32, g1: f32, g2: f32) -> [f32; 6] {
    [
        g0,
        (g0 + g1 + g2) * (1.0 / 3.0),
        (g1 - g0 - g2) * (1.0 / 3.0),
        -(g0 * (16.0 / 15.0) + g1 * (8.0 / 15.0) + g2 * (4.0 / 15.0)),
        g0 * (1.0 / 15.0) - g1 * (2.0 / 15.0) + g2 * (4.0 / 15.0),
        g2,
    ]
}

/// `Bᵀ d` along one axis for F(4×4, 3×3): 6 inputs to 6 transformed values (row j: the
/// coefficients of `∏_{l≠j}(x − aₗ)`, last row `∏(x − aₗ)`).
#[inline(always)]
fn it4(d: [f32; 6]) -> [f32; 6] {
    let [d0, d1, d2, d3, d4, d5] = d;
    [
        d0 + 1.5 * (d3 - d1) - 2.0 * d2 + d4,
        2.5 * d3 - d1 + 0.5 * d2 + d4,
        d1 - 2.5 * d2 + 0.5 * d3 + d4,
        2.0 * (d3 - d1) - d2 + d4,
        0.5 * (d1 - d3) - d2 + d4,
        d1 - 1.5 * d2 - 2.0 * d3 + 1.5 * d4 + d5,
    ]
}

/// `Aᵀ m` along one axis for F(4×4, 3×3): 6 products to 4 outputs (output i: `Σⱼ aⱼⁱ mⱼ`,
/// plus `m₅` for i = 3).
#[inline(always)]
fn ot4(m: [f32; 6]) -> [f32; 4] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let (a, b) = (m1 + m2, m1 - m2);
    [
        m0 + a + m3 + m4,
        b + 0.5 * m3 - 2.0 * m4,
        a + 0.25 * m3 + 4.0 * m4,
        b + 0.125 * m3 - 8.0 * m4 + m5,
    ]
}

/// The one-axis transforms of F(M×M, 3×3) for `M` = 2 (points 0, 1, −1, ∞: every coefficient
/// ±1 or ½, exact in floating point) or 4 ([`wt4`], [`it4`], [`ot4`]). Arrays are sized for
/// the larger tile; F(2×2) uses the first 4 (α) transformed values and the first 2 outputs.
#[inline(always)]
pub(crate) fn wt1<const M: usize>(g0: f32, g1: f32, g2: f32) -> [f32; 6] {
    if M == 2 {
        [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2, 0.0, 0.0]
    } else {
        wt4(g0, g1, g2)
    }
}

/// `Bᵀ d` of F(M×M, 3×3) along one axis (see [`wt1`]).
#[inline(always)]
pub(crate) fn it1<const M: usize>(d: [f32; 6]) -> [f32; 6] {
    if M == 2 {
        let [d0, d1, d2, d3, ..] = d;
        [d0 - d2, d1 + d2, d2 - d1, d1 - d3, 0.0, 0.0]
    } else {
        it4(d)
    }
}

/// `Aᵀ m` of F(M×M, 3×3) along one axis (see [`wt1`]).
#[inline(always)]
pub(crate) fn ot1<const M: usize>(m: [f32; 6]) -> [f32; 4] {
    if M == 2 {
        let [m0, m1, m2, m3, ..] = m;
        [m0 + m1 + m2, m1 - m2 - m3, 0.0, 0.0]
    } else {
        ot4(m)
    }
}

/// The transformed weights `U` of one conv ([`transform_weights`]), in the layout its GEMMs
/// read.
#[derive(Clone, Copy)]
pub(crate) struct U<'a> {
    /// [`weights_len`] floats.
    pub data: &'a [f32],
    /// Each plane packed in row panels ([`packed::pack_a`]'s layout) for the AVX-512 GEMM,
    /// else row-major for the `gemm` crate's.
    pub panels: bool,
}

/// Whether [`transform_weights`] should pack each plane for the AVX-512 GEMM: whether this CPU
/// runs it ([`simd512`]; fixed for the process outside tests, which read the layout from [`U`]).
pub(crate) fn panels_here() -> bool {
    cfg!(target_arch = "x86_64") && simd512()
}

/// Floats of one plane of `U` (`cout_g × cin_g`), in the row-panel layout if `panels`, or None
/// on overflow.
fn plane_len(cout_g: usize, cin_g: usize, panels: bool) -> Option<usize> {
    if panels {
        packed::packed_a_len(cout_g, cin_g)
    } else {
        cout_g.checked_mul(cin_g)
    }
}

/// Length of the transformed weights `U` of a conv with `groups` groups of `cout_g` output and
/// `cin_g` input channels, in the row-panel layout if `panels`, or None on overflow.
pub(crate) fn weights_len(groups: usize, cout_g: usize, cin_g: usize, panels: bool) -> Option<usize> {
    groups
        .checked_mul(PLANES)?
        .checked_mul(plane_len(cout_g, cin_g, panels)?)
}

/// Weight transform `U = G g Gᵀ` from the standard-layout `w[co][ci][3][3]`, plane by plane
/// within each group: plane ξ of group `grp` is `u[grp][ξ]`, a `cout_g × cin_g` matrix, stored
/// row-major (`[co][ci]`) or, with `panels`, as [`packed::pack_a`] packs it (panels of
/// [`packed::MR`] rows, rows past `cout_g` zero). `u` has [`weights_len`] entries. `U` depends
/// on the weight only, so it can be computed once per weight ([`crate::Conv2d`]) and reused for
/// any input.
///
/// Plane-major, so that each of the α² GEMMs reads its left operand as one contiguous block: in
/// a forward the weights are cold, and the former `[co][ξ][ci]` layout had every GEMM gather a
/// `cin`-float run every `α²·cin` floats. ResNet-50's 512 → 512 at 7² (16.8 MB of `U`) took 1.46×
/// its time on warm weights in the forward with that layout, 1.27× with this one (Zen 5).
pub(crate) fn transform_weights(cin_g: usize, cout_g: usize, w: &[f32], u: &mut [f32], panels: bool) {
    let rows = w.len() / (9 * cin_g).max(1);
    let groups = rows / cout_g.max(1);
    assert!(
        cout_g > 0
            && rows.is_multiple_of(cout_g)
            && weights_len(groups, cout_g, cin_g, panels).is_some_and(|len| u.len() >= len),
        "transformed weight buffer too short"
    );
    // Some: weights_len succeeded (asserted above).
    let plane_len = plane_len(cout_g, cin_g, panels).unwrap_or(0);
    if panels && !cout_g.is_multiple_of(packed::MR) {
        // The last panel's rows past cout_g, which no task below writes.
        let last = (cout_g / packed::MR) * packed::MR * cin_g;
        for plane in u[..groups * PLANES * plane_len].chunks_mut(plane_len) {
            plane[last..].fill(0.0);
        }
    }
    let up = OutPtr::new(u);
    w.par_chunks(9 * cin_g).take(rows).enumerate().for_each(|(co, wrow)| {
        let (grp, cg) = (co / cout_g, co % cout_g);
        let at = |plane: usize, ci: usize| {
            let base = (grp * PLANES + plane) * plane_len;
            if panels {
                let (p, r) = (cg / packed::MR, cg % packed::MR);
                base + (p * cin_g + ci) * packed::MR + r
            } else {
                base + cg * cin_g + ci
            }
        };
        for ci in 0..cin_g {
            let k = &wrow[ci * 9..][..9];
            // Rows first (along kx), then columns (along ky).
            let r: [[f32; 6]; 3] = [
                wt1::<M>(k[0], k[1], k[2]),
                wt1::<M>(k[3], k[4], k[5]),
                wt1::<M>(k[6], k[7], k[8]),
            ];
            // ν indexes the three rows' transforms and names the plane.
            #[allow(clippy::needless_range_loop)]
            for nu in 0..A {
                let col = wt1::<M>(r[0][nu], r[1][nu], r[2][nu]);
                for (xi, &v) in col[..A].iter().enumerate() {
                    // SAFETY: `at` < groups·α²·plane_len ≤ u.len() (asserted); each task (one
                    // output channel co) writes only its own row of every plane.
                    unsafe { *up.get().add(at(xi * A + nu, ci)) = v };
                }
            }
        }
    });
}

/// [`conv3x3`] with the weight transform done here, into the calling thread's reused buffer
/// (the path of the free `conv2d`). Returns false (having written nothing) if that buffer
/// cannot be allocated.
pub(crate) fn conv3x3_transforming(g: &Geom, ops: Operands, act: Activation, out: &mut [f32], sum: Sum) -> bool {
    let Operands { x, w, bias, .. } = ops;
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let panels = panels_here();
    let Some(u_len) = weights_len(g.groups, cout_g, cin_g, panels) else {
        return false;
    };
    let Some(mut u) = Scratch::try_take(&WINO_U, u_len) else {
        return false;
    };
    transform_weights(cin_g, cout_g, w, &mut u[..u_len], panels);
    let data = &u[..u_len];
    conv3x3(g, x, U { data, panels }, bias, act, out, sum);
    true
}

/// Runs the conv from the transformed weights `u` ([`transform_weights`] of the weight);
/// `x`, `out` are standard-layout and match `g`, `bias` has `cout` entries; with a
/// [`Sum::Residual`] (the output's shape) the epilogue adds it before or after the activation;
/// with [`Sum::Onto`] it adds what `out` holds before the activation, each output row's values
/// read before its transform overwrites them (the residual form's bits). With `u` in row
/// panels the CPU must run the AVX-512 kernels ([`panels_here`]).
///
/// **GEMMs.** With `u` in row panels the α² products run on fpn's AVX-512 tile
/// ([`packed::gemm_columns`]): the input transform writes `V` straight into that kernel's
/// column panels (16 tiles each), so neither operand is packed per call. Otherwise each runs on
/// the `gemm` crate, which packs `U`'s and `V`'s blocks for every plane of every block.
pub(crate) fn conv3x3(g: &Geom, x: &[f32], u: U, bias: &[f32], act: Activation, out: &mut [f32], sum: Sum) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let (ty_n, tx_n) = (g.oh.div_ceil(M), g.ow.div_ceil(M));
    // At most n·oh·ow ≤ out.len(): cannot overflow.
    let total = g.n * ty_n * tx_n;
    let threads = rayon::current_num_threads().max(1);
    // Few tiles (ResNet's 14×14 stage: 16) split over threads would leave each GEMM a fraction
    // of one 16-lane vector of tiles; split the output channels over threads instead.
    let by_channels = threads > 1 && total < SPLIT_TILES * threads && cout_g >= 2 * MIN_CHANNELS * threads;
    let (mut blocks, chunks) = if by_channels {
        (total.div_ceil(MAX_TILES), threads)
    } else {
        (total.div_ceil(MAX_TILES).max(threads), 1)
    };
    if !by_channels {
        blocks = blocks.div_ceil(threads) * threads;
    }
    let tiles = if u.panels && !by_channels {
        panel_tiles(total, total.div_ceil(blocks), threads)
    } else {
        total.div_ceil(blocks)
    };
    let blocks = total.div_ceil(tiles);
    // A chunk of output channels starts on a row panel of `u` when it is packed.
    let quantum = if u.panels { packed::MR } else { MIN_CHANNELS };
    let chunk = cout_g.div_ceil(chunks).next_multiple_of(quantum).min(cout_g);
    let chunks = cout_g.div_ceil(chunk);
    // Row stride of a block's `v` and `m` planes: whole column panels when packed.
    let ld = if u.panels {
        tiles.next_multiple_of(packed::NR)
    } else {
        tiles
    };
    // Some: `u.data` has weights_len floats, which includes this plane length.
    let plane_u = plane_len(cout_g, cin_g, u.panels).unwrap_or(0);

    let out_ptr = OutPtr::new(out);
    let task = |t: usize| {
        let (grp, rest) = (t / (blocks * chunks), t % (blocks * chunks));
        let (blk, cc) = (rest / chunks, rest % chunks);
        let (c0, count) = (cc * chunk, chunk.min(cout_g - cc * chunk));
        let t0 = blk * tiles;
        let t1 = (t0 + tiles).min(total);
        let nt = t1 - t0;
        let (vs, ms) = (v_stride(cin_g, ld), v_stride(cout_g, ld));
        let (v_len, m_len) = (PLANES * vs, PLANES * ms);
        let mut vb = Scratch::take(&WINO_V, v_len);
        let mut mb = Scratch::take(&WINO_M, m_len);
        let x_grp = XGrp { x, grp, cin_g };
        let seg = Segs {
            g,
            ty_n,
            tx_n,
            t0,
            t1,
            t: t0,
        };
        let v = &mut vb[..v_len];
        let vl = VLayout {
            plane: vs,
            ld,
            panels: u.panels,
        };
        if simd512() {
            // SAFETY: `simd512()` says the CPU has avx512f, avx2 and fma, all this build needs.
            unsafe { input_transform_v512(&seg, &x_grp, v, vl) };
        } else if simd() {
            // SAFETY: `simd()` says the CPU has avx2 and fma, all this build needs.
            unsafe { input_transform_v4(&seg, &x_grp, v, vl) };
        } else {
            input_transform(&seg, &x_grp, v, vl);
        }
        // α² GEMMs m[ξ][co][t] = u[ξ][co][ci] · v[ξ][ci][t].
        let m = &mut mb[..m_len];
        let u_grp = &u.data[grp * PLANES * plane_u..];
        if u.panels {
            #[cfg(target_arch = "x86_64")]
            {
                // The last column panel's tiles past nt are computed but never read: zero.
                let n = nt.next_multiple_of(packed::NR);
                if n > nt {
                    let tail = (nt / packed::NR) * packed::NR * cin_g;
                    for plane in v.chunks_mut(vs) {
                        for row in plane[tail..][..packed::NR * cin_g].chunks_mut(packed::NR) {
                            row[nt % packed::NR..].fill(0.0);
                        }
                    }
                }
                for xi in 0..PLANES {
                    // Rows c0.. of plane ξ: c0 is a multiple of MR (`quantum`).
                    let u_xi = &u_grp[xi * plane_u + c0 * cin_g..];
                    // SAFETY: `u.panels` only where `panels_here()` said the CPU runs AVX-512
                    // (contract); u_xi holds count rows of cin_g packed by panels (the plane's
                    // rows c0.., `transform_weights`); plane ξ of v holds n/16 column panels of
                    // cin_g rows (`input_transform`, zeroed past nt); the product's count rows
                    // of n ≤ ld columns (row stride ld) lie in plane ξ of this task's own m
                    // (ms ≥ cout_g·ld).
                    unsafe {
                        packed::gemm_columns(count, n, cin_g, u_xi, &v[xi * vs..], m[xi * ms..].as_mut_ptr(), ld)
                    };
                }
            }
        } else {
            for xi in 0..PLANES {
                let u_xi = &u_grp[xi * plane_u + c0 * cin_g..][..count * cin_g];
                let (m_xi, v_xi) = (&mut m[xi * ms..], &v[xi * vs..]);
                // SAFETY: lhs is count×cin_g (rs cin_g), the slice u_xi of plane ξ of the
                // group; rhs is cin_g×nt (rs ld) inside plane ξ of v (vs ≥ cin_g·ld); dst is
                // count×nt (rs ld) inside plane ξ of this task's own m (ms ≥ count·ld).
                unsafe {
                    sgemm(
                        count,
                        nt,
                        cin_g,
                        m_xi.as_mut_ptr(),
                        ld,
                        u_xi.as_ptr(),
                        cin_g,
                        v_xi.as_ptr(),
                        ld,
                        gemm::Parallelism::None,
                    )
                };
            }
        }
        let o = OutGrp {
            out: out_ptr,
            grp,
            cout_g,
            c0,
            count,
            bias,
            sum,
            act,
        };
        // SAFETY: `o.out` points at the whole `[n, cout, oh, ow]` output (validated geometry);
        // each task writes only its own tiles (block blk) of its own channels (group grp, chunk
        // cc); the v512 and v4 builds run only when `simd512()` and `simd()` say the CPU has
        // what they need.
        unsafe {
            if simd512() {
                output_transform_v512(&seg, &o, m, ms, ld);
            } else if simd() {
                output_transform_v4(&seg, &o, m, ms, ld);
            } else {
                output_transform(&seg, &o, m, ms, ld);
            }
        }
    };
    let tasks = g.groups * blocks * chunks;
    if threads > 1 && tasks > 1 {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// Stride between the α² planes of a `[ξ][channel][tile]` buffer: padded by one cache line so
/// the planes do not alias in the L1 (a power-of-two stride maps them all to one set).
fn v_stride(channels: usize, tiles: usize) -> usize {
    channels * tiles + 16
}

/// Where the input transform writes a block's `V`.
#[derive(Clone, Copy)]
struct VLayout {
    /// Floats from one plane ξ to the next.
    plane: usize,
    /// Tiles per row (`[ci][tile]`), or per packed row with `panels`.
    ld: usize,
    /// Each plane in column panels of 16 tiles (`[tile / 16][ci][tile % 16]`, as
    /// [`packed::gemm_columns`] reads its right-hand side) instead of `[ci][tile]`.
    panels: bool,
}

impl VLayout {
    /// Offset of tile `j` of input channel `ci` within its plane, for a group of `cin_g`.
    #[inline(always)]
    fn at(self, ci: usize, j: usize, cin_g: usize) -> usize {
        if self.panels {
            let nr = packed::NR;
            ((j / nr) * cin_g + ci) * nr + j % nr
        } else {
            ci * self.ld + j
        }
    }

    /// How many tiles from tile `j` on are stored contiguously (to the end of its panel).
    #[inline(always)]
    fn run(self, j: usize) -> usize {
        if self.panels {
            packed::NR - j % packed::NR
        } else {
            usize::MAX
        }
    }
}

/// A block's tiles `t0..t1` of the `n × ty_n × tx_n` tile grid, iterated by tile-row runs.
#[derive(Clone)]
struct Segs<'a> {
    g: &'a Geom,
    ty_n: usize,
    tx_n: usize,
    t0: usize,
    t1: usize,
    /// Next tile of the iteration.
    t: usize,
}

impl Iterator for Segs<'_> {
    /// `(img, ty, tx_a, tx_b, j0)`: a run of tiles `tx_a..tx_b` in one tile row, `j0` being the
    /// run's first index within the block.
    type Item = (usize, usize, usize, usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.t >= self.t1 {
            return None;
        }
        let per_img = self.ty_n * self.tx_n;
        let (img, r) = (self.t / per_img, self.t % per_img);
        let (ty, tx) = (r / self.tx_n, r % self.tx_n);
        let tx_b = (tx + (self.t1 - self.t)).min(self.tx_n);
        let item = (img, ty, tx, tx_b, self.t - self.t0);
        self.t += tx_b - tx;
        Some(item)
    }
}

/// The input channels of one group.
struct XGrp<'a> {
    x: &'a [f32],
    grp: usize,
    cin_g: usize,
}

/// Where a block's outputs go.
struct OutGrp<'a> {
    out: OutPtr,
    grp: usize,
    cout_g: usize,
    /// The block's output channels are `c0..c0 + count` of the group (rows `0..count` of `m`).
    c0: usize,
    count: usize,
    bias: &'a [f32],
    /// Added after the bias: a residual at the output's indices, or what the output holds.
    sum: Sum<'a>,
    act: Activation,
}

/// Input transform of a block into plane ξ, tile j of input channel ci of `v` (`vl`).
#[inline(always)]
fn input_transform_impl(s: &Segs, xg: &XGrp, v: &mut [f32], vl: VLayout) {
    let g = s.g;
    let hw = g.h * g.w;
    // Column transform of the α input rows of one run.
    let mut c = [[0.0f32; C_ROW]; A];
    for (img, ty, tx_a, tx_b, j0) in s.clone() {
        let nk = tx_b - tx_a;
        let span = M * nk + 2;
        let iy0 = (M * ty) as isize - g.pt as isize;
        let cx0 = (M * tx_a) as isize - g.pl as isize;
        // Valid columns lo..hi of the span.
        let lo = (-cx0).clamp(0, span as isize) as usize;
        let hi = (g.w as isize - cx0).clamp(lo as isize, span as isize) as usize;
        for ci in 0..xg.cin_g {
            let plane = &xg.x[((img * g.cin) + xg.grp * xg.cin_g + ci) * hw..][..hw];
            // Columns lo..hi of the rows inside the image, read in place; zero rows and columns
            // outside transform to zeros.
            let row = |r: usize| -> &[f32] {
                let iy = iy0 + r as isize;
                if iy < 0 || iy >= g.h as isize {
                    &ZEROS[..hi - lo]
                } else {
                    &plane[iy as usize * g.w + (cx0 + lo as isize) as usize..][..hi - lo]
                }
            };
            let n = hi - lo;
            // Rows α.. do not exist for F(2×2): zeros that `it1` ignores.
            let row = |r: usize| if r < A { row(r) } else { &ZEROS[..n] };
            let (d0, d1, d2, d3, d4, d5) = (row(0), row(1), row(2), row(3), row(4), row(5));
            for cr in c.iter_mut() {
                cr[..lo].fill(0.0);
                cr[hi..span].fill(0.0);
            }
            let [c0, c1, c2, c3, rest @ ..] = &mut c;
            let (c0, c1, c2) = (&mut c0[lo..][..n], &mut c1[lo..][..n], &mut c2[lo..][..n]);
            let c3 = &mut c3[lo..][..n];
            let mut c45 = rest.iter_mut().map(|cr| &mut cr[lo..][..n]);
            let (mut c4, mut c5) = (c45.next(), c45.next());
            for i in 0..n {
                let t = it1::<M>([d0[i], d1[i], d2[i], d3[i], d4[i], d5[i]]);
                c0[i] = t[0];
                c1[i] = t[1];
                c2[i] = t[2];
                c3[i] = t[3];
                if let (Some(c4), Some(c5)) = (c4.as_deref_mut(), c5.as_deref_mut()) {
                    c4[i] = t[4];
                    c5[i] = t[5];
                }
            }
            if vl.panels && M == 2 {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `v` in panels only where the CPU runs AVX-512 (`VLayout::panels`).
                unsafe {
                    row_transform_panels(&c, nk, j0, ci, xg.cin_g, v, vl)
                };
                continue;
            }
            // Runs of tiles stored contiguously (within one column panel when packed).
            let mut k0 = 0;
            while k0 < nk {
                let run = vl.run(j0 + k0).min(nk - k0);
                let at = vl.at(ci, j0 + k0, xg.cin_g);
                for (xi, crow) in c.iter().enumerate() {
                    for k in 0..run {
                        let mut d = [0.0; 6];
                        d[..A].copy_from_slice(&crow[M * (k0 + k)..][..A]);
                        let t = it1::<M>(d);
                        for (nu, &tv) in t[..A].iter().enumerate() {
                            v[(xi * A + nu) * vl.plane + at + k] = tv;
                        }
                    }
                }
                k0 += run;
            }
        }
    }
}

/// Floats in a row of the input transform's column-transformed run: `M·MAX_TILES + 2` and
/// the 32 that [`row_transform_panels`]' last vectors read past a full run (never stored).
const C_ROW: usize = M * MAX_TILES + 2 + 32;

/// The row half of F(2×2)'s input transform on AVX-512, storing into column panels: tile `k`
/// of the run (`k < nk`) transforms `c[ξ][2k..2k + 4]` into planes `ξ·α + ν` at tile `j0 + k`
/// of input channel `ci`. Sixteen tiles per vector: the four strided taps gathered from two
/// pairs of loads by permutes, the stores masked to the run within each panel. The generic loop
/// ran scalar with a bounds check per store, and took 1.5× this time's share of the conv.
///
/// # Safety
/// The CPU must support avx512f, and `vl.panels` must be set (runs of at most 16 tiles).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn row_transform_panels(
    c: &[[f32; C_ROW]; A],
    nk: usize,
    j0: usize,
    ci: usize,
    cin_g: usize,
    v: &mut [f32],
    vl: VLayout,
) {
    use std::arch::x86_64::*;
    const { assert!(M == 2) };
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    assert!(nk <= MAX_TILES, "run longer than a block");
    let mut k0 = 0;
    while k0 < nk {
        let run = vl.run(j0 + k0).min(nk - k0).min(16);
        let at = vl.at(ci, j0 + k0, cin_g);
        let mask = ((1u32 << run) - 1) as __mmask16;
        // The last plane's stretch ends inside `v`, so every plane's does.
        assert!(
            (PLANES - 1) * vl.plane + at + run <= v.len(),
            "transformed input out of its buffer"
        );
        for (xi, crow) in c.iter().enumerate() {
            // SAFETY: 2·k0 + 34 ≤ 2·MAX_TILES + 32 ≤ C_ROW (k0 < nk ≤ MAX_TILES); each store
            // writes `run` floats at plane ξ·α + ν ≤ PLANES − 1 (checked above); AVX-512F
            // (contract).
            unsafe {
                let p = crow.as_ptr().add(M * k0);
                let (lo, hi) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
                let (lo2, hi2) = (_mm512_loadu_ps(p.add(2)), _mm512_loadu_ps(p.add(18)));
                let e0 = _mm512_permutex2var_ps(lo, even, hi);
                let e1 = _mm512_permutex2var_ps(lo, odd, hi);
                let e2 = _mm512_permutex2var_ps(lo2, even, hi2);
                let e3 = _mm512_permutex2var_ps(lo2, odd, hi2);
                // `it1::<2>`: d0 − d2, d1 + d2, d2 − d1, d1 − d3.
                let t = [
                    _mm512_sub_ps(e0, e2),
                    _mm512_add_ps(e1, e2),
                    _mm512_sub_ps(e2, e1),
                    _mm512_sub_ps(e1, e3),
                ];
                for (nu, tv) in t.into_iter().enumerate() {
                    let off = (xi * A + nu) * vl.plane + at;
                    _mm512_mask_storeu_ps(v.as_mut_ptr().add(off), mask, tv);
                }
            }
        }
        k0 += run;
    }
}

/// Output transform of a block from `m[ξ][co][j]`, plus bias and activation, into the output.
///
/// # Safety
/// `o.out` must point at the `[n, cout, oh, ow]` output, and no other thread may write this
/// block's tiles of this group.
#[inline(always)]
unsafe fn output_transform_impl<const W: bool>(s: &Segs, o: &OutGrp, m: &[f32], ms: usize, tiles: usize) {
    let g = s.g;
    let hw = g.oh * g.ow;
    let mut rows = [[[0.0f32; MAX_TILES]; M]; A];
    let mut y = [[0.0f32; M * MAX_TILES]; M];
    // with `onto`, a block's output rows as they were, before the transform overwrites them
    let mut sum = [[0.0f32; M * MAX_TILES]; M];
    for (img, ty, tx_a, tx_b, j0) in s.clone() {
        let nk = tx_b - tx_a;
        let (oy0, ox0) = (M * ty, M * tx_a);
        let ny = (g.oh - oy0).min(M);
        let nx = (g.ow - ox0).min(M * nk);
        for co in 0..o.count {
            let mbase = co * tiles + j0;
            let ch = img * g.cout + o.grp * o.cout_g + o.c0 + co;
            let b = o.bias[o.grp * o.cout_g + o.c0 + co];
            let at0 = ch * hw + oy0 * g.ow + ox0;
            // This channel's rows of the next tile row, written (and with `onto` read) when
            // the next run reaches this channel (see `prefetch_for_write`).
            for r in oy0 + M..(oy0 + 2 * M).min(g.oh) {
                prefetch_for_write(o.out.get().wrapping_add(ch * hw + r * g.ow + ox0), nx);
            }
            #[cfg(target_arch = "x86_64")]
            if W && M == 2 {
                // Straight into the output rows, then the epilogue there (no staging copy).
                let out = o.out.get();
                if o.sum.onto() {
                    for (r, row) in sum.iter_mut().enumerate().take(ny) {
                        // SAFETY: as below (row oy0 + r of the block's rows).
                        unsafe { std::ptr::copy_nonoverlapping(out.add(at0 + r * g.ow), row.as_mut_ptr(), nx) };
                    }
                }
                // SAFETY: `W` only in the AVX-512 build; `mbase + nk` ≤ `tiles` past each plane's
                // row co (the block's tiles), inside `m`; rows oy0..oy0 + ny, columns
                // ox0..ox0 + nx of channel ch are inside the output and this task's alone
                // (caller's contract), the second row pointer used only when ny is 2.
                unsafe { output_rows_512(m, ms, mbase, nk, [out.add(at0), out.wrapping_add(at0 + g.ow)], ny, nx) };
                for (r, sum) in sum.iter().enumerate().take(ny) {
                    let at = at0 + r * g.ow;
                    // SAFETY: as above; no other reference to this row segment is live.
                    let seg = unsafe { std::slice::from_raw_parts_mut(out.add(at), nx) };
                    let res = if o.sum.onto() {
                        Some(Residual {
                            data: &sum[..nx],
                            after_act: false,
                        })
                    } else {
                        o.sum.residual().map(|r| r.at(at, nx))
                    };
                    epilogue_slice(seg, b, o.act, res);
                }
                continue;
            }
            {
                // Along ν (x) first: rows[ξ][c][k]. Planes α.. do not exist for F(2×2): zeros
                // that `ot1` ignores.
                for (xi, row) in rows.iter_mut().enumerate() {
                    let mm = |nu: usize| {
                        if nu < A {
                            &m[(xi * A + nu) * ms + mbase..][..nk]
                        } else {
                            &ZEROS[..nk]
                        }
                    };
                    let (m0, m1, m2, m3, m4, m5) = (mm(0), mm(1), mm(2), mm(3), mm(4), mm(5));
                    for k in 0..nk {
                        let t = ot1::<M>([m0[k], m1[k], m2[k], m3[k], m4[k], m5[k]]);
                        for (r, &tv) in row.iter_mut().zip(&t[..M]) {
                            r[k] = tv;
                        }
                    }
                }
                // Then along ξ (y), interleaving the M columns of each tile into output rows.
                for c in 0..M {
                    for k in 0..nk {
                        let mut col = [0.0; 6];
                        for (cv, r) in col.iter_mut().zip(&rows) {
                            *cv = r[c][k];
                        }
                        let t = ot1::<M>(col);
                        for (r, &tv) in t[..M].iter().enumerate() {
                            y[r][M * k + c] = tv;
                        }
                    }
                }
            }
            for (r, yrow) in y.iter_mut().enumerate().take(ny) {
                let yrow = &mut yrow[..nx];
                let at = at0 + r * g.ow;
                let res = if o.sum.onto() {
                    // SAFETY: row oy0 + r, columns ox0..ox0 + nx of channel ch are inside the
                    // output, and only this task accesses them (caller's contract); they are
                    // read here, before the copy below writes them.
                    let sum = unsafe { std::slice::from_raw_parts(o.out.get().add(at), nx) };
                    Some(Residual {
                        data: sum,
                        after_act: false,
                    })
                } else {
                    o.sum.residual().map(|r| r.at(at, nx))
                };
                epilogue_slice(yrow, b, o.act, res);
                // SAFETY: row oy0 + r, columns ox0..ox0 + nx of channel ch are inside the
                // output, and only this task writes them (caller's contract); the sum read
                // from them above is no longer used.
                unsafe {
                    let dst = o.out.get().add(at);
                    std::ptr::copy_nonoverlapping(yrow.as_ptr(), dst, nx);
                }
            }
        }
    }
}

/// F(2×2)'s output transform of one output channel's run of `nk` tiles on AVX-512, into its
/// `ny` (1 or 2) output rows at `dst`, columns `0..nx`: row `r`, column `2k + c` of tile `k`,
/// whose products are `m[(ξ·α + ν)·ms + mbase + k]`. Sixteen tiles per vector (the sums in
/// `ot1`'s order, along ν first), the two columns of each tile interleaved by permutes, the
/// stores masked to `nx`. The generic loops ran scalar into a row buffer copied out after.
///
/// # Safety
/// The CPU must support avx512f; `m` must hold every plane's `mbase..mbase + nk`; `dst[r]` for
/// `r < ny` must be valid for writes of `nx ≤ 2·nk` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn output_rows_512(m: &[f32], ms: usize, mbase: usize, nk: usize, dst: [*mut f32; M], ny: usize, nx: usize) {
    use std::arch::x86_64::*;
    const { assert!(M == 2) };
    assert!(
        nk <= MAX_TILES && (PLANES - 1) * ms + mbase + nk <= m.len() && nx <= M * nk && ny <= M,
        "products out of their buffer"
    );
    let lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let mut k0 = 0;
    while k0 < nk {
        let run = (nk - k0).min(16);
        let mask = ((1u32 << run) - 1) as __mmask16;
        // Output columns 2·k0.. of this chunk that exist.
        let cols = (nx - M * k0).min(M * run);
        // SAFETY: plane p's loads read `run` floats from mbase + k0 (asserted above); the
        // stores write `cols` floats of rows r < ny from column 2·k0 (contract).
        unsafe {
            let at = |p: usize| _mm512_maskz_loadu_ps(mask, m.as_ptr().add(p * ms + mbase + k0));
            // Along ν: r[c][ξ].
            let mut r = [[_mm512_setzero_ps(); A]; M];
            for (xi, p) in (0..PLANES).step_by(A).enumerate() {
                let (m0, m1, m2, m3) = (at(p), at(p + 1), at(p + 2), at(p + 3));
                r[0][xi] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                r[1][xi] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
            // Along ξ: out[row][c].
            let col = |c: usize| {
                let [a0, a1, a2, a3] = r[c];
                (
                    _mm512_add_ps(_mm512_add_ps(a0, a1), a2),
                    _mm512_sub_ps(_mm512_sub_ps(a1, a2), a3),
                )
            };
            let ((y00, y10), (y01, y11)) = (col(0), col(1));
            let (m_lo, m_hi) = (
                ((1u32 << cols.min(16)) - 1) as __mmask16,
                ((1u32 << cols.saturating_sub(16)) - 1) as __mmask16,
            );
            for (row, (c0, c1)) in dst.into_iter().zip([(y00, y01), (y10, y11)]).take(ny) {
                let d = row.add(M * k0);
                _mm512_mask_storeu_ps(d, m_lo, _mm512_permutex2var_ps(c0, lo_idx, c1));
                _mm512_mask_storeu_ps(d.wrapping_add(16), m_hi, _mm512_permutex2var_ps(c0, hi_idx, c1));
            }
        }
        k0 += run;
    }
}

/// Prefetches the `n` floats at `p` for writing (`prefetchw`), where the CPU has it.
///
/// The output transform writes each output channel's two rows of a tile-row run, a channel
/// plane apart: 2 × 40–160 floats per channel at YOLOv8n's sizes, too short and too many
/// streams for the hardware prefetchers, and in a forward the output's buffer has left the
/// cache since its last use (the arena's). Each channel's rows of the next tile row are
/// prefetched when its rows of this one are written, a whole run of channels ahead. Measured on
/// Zen 5, 1 thread, SiLU, output cold (ms, best of 8–10 interleaved): 64→64 at 40² 0.456 →
/// 0.387, 128→128 at 20² 0.441 → 0.401, 32→32 at 80² 0.585 → 0.528; hot even. In YOLOv8n's
/// forward (two profiles each): its eight 64→64 at 40² 3.53–3.61 → 3.29–3.34 ms, six 32→32 at
/// 80² 2.82–2.83 → 2.69–2.70; ResNet-50 FPN's Winograd convs even. Prefetching the block's
/// first run too (at the output transform's start, or before the input transform), or the
/// next plane's `U` into L2 before each GEMM, measured even or slower.
#[inline(always)]
fn prefetch_for_write(p: *mut f32, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if n > 0 {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
        let mut c = 0;
        while c < n {
            // SAFETY: a prefetch neither reads nor writes memory, nor faults.
            unsafe { _mm_prefetch::<_MM_HINT_ET0>(p.wrapping_add(c).cast()) };
            c += 16;
        }
        // SAFETY: as above (the last float's line, when the first did not start a line).
        unsafe { _mm_prefetch::<_MM_HINT_ET0>(p.wrapping_add(n - 1).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, n);
}

/// A row of zeros standing in for input rows outside the image.
static ZEROS: [f32; M * MAX_TILES + 2] = [0.0; M * MAX_TILES + 2];

/// Portable build of [`input_transform_impl`].
fn input_transform(s: &Segs, xg: &XGrp, v: &mut [f32], vl: VLayout) {
    input_transform_impl(s, xg, v, vl)
}

/// AVX2 + FMA build of [`input_transform_impl`].
///
/// # Safety
/// The CPU must support avx2 and fma.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn input_transform_v4(s: &Segs, xg: &XGrp, v: &mut [f32], vl: VLayout) {
    input_transform_impl(s, xg, v, vl)
}

/// AVX-512 build of [`input_transform_impl`] (the same arithmetic per element on 16 lanes).
///
/// # Safety
/// The CPU must support avx512f, avx2 and fma.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx2,fma"))]
unsafe fn input_transform_v512(s: &Segs, xg: &XGrp, v: &mut [f32], vl: VLayout) {
    input_transform_impl(s, xg, v, vl)
}

/// Portable build of [`output_transform_impl`].
///
/// # Safety
/// As [`output_transform_impl`].
unsafe fn output_transform(s: &Segs, o: &OutGrp, m: &[f32], ms: usize, tiles: usize) {
    // SAFETY: the caller upholds `output_transform_impl`'s contract (this fn's own).
    unsafe { output_transform_impl::<false>(s, o, m, ms, tiles) }
}

/// AVX2 + FMA build of [`output_transform_impl`].
///
/// # Safety
/// As [`output_transform_impl`], and the CPU must support avx2 and fma.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn output_transform_v4(s: &Segs, o: &OutGrp, m: &[f32], ms: usize, tiles: usize) {
    // SAFETY: the caller upholds `output_transform_impl`'s contract (this fn's own).
    unsafe { output_transform_impl::<false>(s, o, m, ms, tiles) }
}

/// AVX-512 build of [`output_transform_impl`].
///
/// # Safety
/// As [`output_transform_impl`], and the CPU must support avx512f, avx2 and fma.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx2,fma"))]
unsafe fn output_transform_v512(s: &Segs, o: &OutGrp, m: &[f32], ms: usize, tiles: usize) {
    // SAFETY: the caller upholds `output_transform_impl`'s contract (this fn's own), and the
    // CPU runs AVX-512 (this fn's contract), which `W` asks for.
    unsafe { output_transform_impl::<true>(s, o, m, ms, tiles) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Aᵀ [(G g) ⊙ (Bᵀ d)]` of F(m, 3) along one axis against the direct correlation
    /// `y[i] = Σ_k d[i + k]·g[k]`, for both tile sizes (the one in use and the other).
    fn one_axis<const T: usize>() {
        let alpha = T + 2;
        let mut state = 7u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        for _ in 0..100 {
            let g = [next(), next(), next()];
            let mut d = [0.0f32; 6];
            for v in d.iter_mut().take(alpha) {
                *v = next();
            }
            let (u, v) = (wt1::<T>(g[0], g[1], g[2]), it1::<T>(d));
            let mut prod = [0.0f32; 6];
            for j in 0..alpha {
                prod[j] = u[j] * v[j];
            }
            let y = ot1::<T>(prod);
            for i in 0..T {
                let direct: f32 = (0..3).map(|k| d[i + k] * g[k]).sum();
                assert!(
                    (y[i] - direct).abs() < 1e-5,
                    "F({T}, 3) output {i}: {} vs {direct}",
                    y[i]
                );
            }
        }
    }

    /// Blocks of whole panels where they cost no more than the even split: the measured cases
    /// of [`panel_tiles`]' docs, and a one-image 7² map (49 tiles), kept whole.
    #[test]
    fn blocks_run_whole_panels() {
        // (total tiles, even split, threads) → tiles per block
        for (total, even, threads, want) in [
            (1600, 124, 1, 128),
            (400, 100, 1, 128),
            (400, 100, 2, 96),
            (784, 98, 2, 128),
            (100, 50, 2, 50),
            (196, 98, 2, 98),
            (49, 49, 1, 49),
            (49, 25, 2, 25),
            (6400, 128, 1, 128),
        ] {
            assert_eq!(
                panel_tiles(total, even, threads),
                want,
                "{total} tiles, {threads} threads"
            );
        }
        // the busiest thread's work: 7 blocks of 112 tiles on 2 threads, 4 of them on one
        assert_eq!(busiest(784, 112, 2), 4 * (112 + BLOCK_COST));
        assert_eq!(busiest(1, 16, 3), 16 + BLOCK_COST);
    }

    #[test]
    fn transforms_compute_the_correlation() {
        one_axis::<2>();
        one_axis::<4>();
    }

    /// `conv3x3` from both layouts of `U` (row panels on the AVX-512 GEMM, where the CPU has
    /// it; row-major on the `gemm` crate) against an f64 direct conv, at 1 and 2 threads:
    /// output channels not a multiple of 6 or 16, blocks whose tiles end inside a 16-column
    /// panel (ragged tile grids, batch 2), groups, more input channels than one reduction block
    /// (130 > `KC`), channel-split blocks (few tiles, 2 threads: chunks at multiples of 6), a
    /// residual before the activation.
    #[test]
    fn both_layouts_equal_the_direct_conv() {
        let mut state = 11u32;
        let mut rnd = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        // (n, groups, cin_g, cout_g, h, w, pt, pl, pb, pr)
        let cases = [
            (1, 1, 16, 16, 9, 9, 1, 1, 1, 1),
            (2, 1, 20, 38, 13, 11, 1, 1, 1, 1),
            (1, 2, 16, 22, 10, 14, 0, 1, 2, 0),
            (1, 1, 130, 70, 6, 6, 1, 1, 1, 1),
            (1, 1, 17, 100, 40, 33, 1, 1, 1, 1),
        ];
        let layouts: &[bool] = if panels_here() { &[false, true] } else { &[false] };
        for (i, &(n, groups, cin_g, cout_g, h, w, pt, pl, pb, pr)) in cases.iter().enumerate() {
            let (cin, cout) = (groups * cin_g, groups * cout_g);
            let (oh, ow) = (h + pt + pb - 2, w + pl + pr - 2);
            let g = Geom::conv3x3([n, cin, h, w], cout, 1, [pt, pl], [oh, ow], groups);
            let x: Vec<f32> = (0..n * cin * h * w).map(|_| rnd()).collect();
            let wt: Vec<f32> = (0..cout * cin_g * 9).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..cout).map(|_| rnd()).collect();
            let res: Vec<f32> = (0..n * cout * oh * ow).map(|_| rnd()).collect();
            // relu(conv + bias + residual) in f64.
            let mut want = vec![0.0f64; n * cout * oh * ow];
            for (e, y) in want.iter_mut().enumerate() {
                let (img, co, oy, ox) = (e / (cout * oh * ow), e / (oh * ow) % cout, e / ow % oh, e % ow);
                let grp = co / cout_g;
                let mut sum = f64::from(bias[co]) + f64::from(res[e]);
                for ci in 0..cin_g {
                    for (ky, kx) in (0..3).flat_map(|ky| (0..3).map(move |kx| (ky, kx))) {
                        let (iy, ix) = ((oy + ky) as isize - pt as isize, (ox + kx) as isize - pl as isize);
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            let xi = ((img * cin + grp * cin_g + ci) * h + iy as usize) * w + ix as usize;
                            sum += f64::from(x[xi]) * f64::from(wt[(co * cin_g + ci) * 9 + ky * 3 + kx]);
                        }
                    }
                }
                *y = sum.max(0.0);
            }
            for &panels in layouts {
                let mut u = vec![f32::NAN; weights_len(groups, cout_g, cin_g, panels).expect("small")];
                transform_weights(cin_g, cout_g, &wt, &mut u, panels);
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .expect("a thread pool");
                    let mut out = vec![f32::NAN; want.len()];
                    let residual = Some(Residual {
                        data: &res,
                        after_act: false,
                    });
                    let run = |out: &mut [f32], sum| {
                        let u = U { data: &u, panels };
                        pool.install(|| conv3x3(&g, &x, u, &bias, Activation::Relu, out, sum))
                    };
                    run(&mut out, residual.into());
                    // onto the residual in the output's buffer: the same bits
                    let mut onto = res.clone();
                    run(&mut onto, Sum::Onto);
                    assert!(
                        onto.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "case {i}, panels {panels}, {threads} threads: onto differs from the residual"
                    );
                    // Each output sums 9·cin_g products of magnitude ≤ 1.
                    let tol = 2e-6 * (9 * cin_g) as f64;
                    for (e, (&got, &want)) in out.iter().zip(&want).enumerate() {
                        assert!(
                            (f64::from(got) - want).abs() <= tol,
                            "case {i}, panels {panels}, {threads} threads: element {e} is {got}, want {want}"
                        );
                    }
                }
            }
        }
    }

    /// A prepared conv keeps `U` in the layout of the CPU it was made on; run with the AVX-512
    /// kernels off (`avx2_only`), it transforms its weight again rather than read the panels as
    /// rows, and computes the same outputs up to rounding (the two GEMMs sum in other orders).
    #[test]
    fn prepared_panels_under_avx2_only() {
        if !panels_here() {
            return;
        }
        let mut init = crate::Init::new(5);
        let x: crate::Tensor = init
            .uniform(&[1, 32, 20, 20], -1.0, 1.0)
            .into_dimensionality()
            .expect("4-d");
        let w = init.conv_weight([40, 32, 3, 3]);
        let b = init.conv_bias(32 * 9, 40);
        let p = crate::Conv2dParams {
            padding: [1; 4],
            ..Default::default()
        };
        let conv = crate::Conv2d::new(w, Some(b), p).expect("a valid conv");
        assert!(conv.has_winograd_weights());
        let opts = crate::ConvOpts::default();
        let wide = conv.forward(x.view(), &opts).expect("forward");
        let narrow = crate::kernel::avx2_only(|| conv.forward(x.view(), &opts)).expect("forward");
        let scale = wide.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (e, (a, b)) in wide.iter().zip(narrow.iter()).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * scale.max(1.0),
                "element {e}: {a} with AVX-512, {b} without"
            );
        }
    }
}
