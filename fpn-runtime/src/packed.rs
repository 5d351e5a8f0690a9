//! fpn's own single-threaded SGEMM for the convolution paths on AVX2 + FMA: the weights packed
//! once per call into panels of [`MR`] rows, the right-hand side packed per block into panels of
//! [`NR`] columns, a 6×16 register-tile microkernel (where the CPU has AVX-512F, tiles of up to
//! 12 rows × 32 columns over two panels of each, [`kernel_wide`]: twice the lanes per FMA,
//! measured 1.8× the 6×16's GFLOP/s on Zen 5 at 6×32),
//! and the caller's epilogue (bias, residual, activation) run on each finished row segment while
//! it is still in L1. With AVX-512 a pointwise conv's input may instead be read in place, its
//! planes being the right-hand side's rows ([`gemm_rows`]; when, `gemm_conv`'s `ROWS_MAX_M`).
//!
//! Why not the `gemm` crate here (it stays the portable path and Winograd's engine): a conv
//! calls it once per row band, and it re-packs the whole weight matrix on every call and
//! allocates its packing buffer each time; its epilogue cannot be fused, so bias + activation
//! re-read the band from L2 or memory afterwards. Measured on YOLOv8n's convs (Zen 3), the
//! small-channel 1×1 and strided 3×3 convs ran at 0.6–0.8× ONNX Runtime's speed there.
//!
//! Summation order: every output sums its reduction in blocks of [`KC`] = 128, each block's
//! sum started from zero in registers and added to the output — the same blocked reduction as
//! `kernel::sgemm` (whose reason is float32 accuracy on long reductions: tests/it/parity.rs).
//!
//! Invariant: the public-in-crate functions check every extent against the slices they get
//! (or take raw pointers under a documented contract) before the microkernel touches memory.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of the register tile (output channels).
pub(crate) const MR: usize = 6;
/// Columns of the register tile (output pixels): two AVX vectors.
pub(crate) const NR: usize = 16;
/// Reduction block: each block's sum is formed in registers and added to the output. (256
/// measured even on an Intel Xeon with 2 MiB of L2, session 21: hot 1×1 and 3×3 convs.)
pub(crate) const KC: usize = 128;
/// Columns per packed right-hand-side block (`KC × NC` floats: 128 KiB, within one L2).
pub(crate) const NC: usize = 256;

/// Floats after each column panel of a packed right-hand-side block, unused: panel `jp` of a
/// block of `kc` rows starts at `jp ·` [`panel_stride`]`(kc)`. Without it the panels of a
/// full block are `KC·NR` floats = 8 KiB apart, so a packer, which writes one row of every
/// panel in turn, writes 16 streams that all map to the same L1 sets. Measured on Zen 5
/// (packing a block of 128 rows × 256 columns from a 6400-column matrix in L3): 14 GB/s with
/// the 8 KiB stride, 60 GB/s with this pad; YOLOv8n's 192→64 1×1 conv at 80² spent a third of
/// its time packing.
pub(crate) const PANEL_PAD: usize = 16;

/// Floats from one column panel of a packed block of `kc` rows to the next.
pub(crate) const fn panel_stride(kc: usize) -> usize {
    kc * NR + PANEL_PAD
}

/// Floats of one packed right-hand-side block of `kc` rows and `nc` columns.
pub(crate) const fn block_len(kc: usize, nc: usize) -> usize {
    nc.div_ceil(NR) * panel_stride(kc)
}

/// Floats of [`pack_a`]'s output for an `m × k` matrix.
pub(crate) fn packed_a_len(m: usize, k: usize) -> Option<usize> {
    m.div_ceil(MR).checked_mul(MR)?.checked_mul(k)
}

/// Floats of the right-hand-side packing buffer [`gemm`] needs.
pub(crate) const PACKED_B_LEN: usize = block_len(KC, NC);

/// Packs rows `0..m` of `a` (row stride `lda`, `k` columns) into panels of [`MR`] rows:
/// panel `p` holds `out[p·MR·k + kk·MR + r] = a[p·MR + r][kk]`, rows past `m` zero.
pub(crate) fn pack_a(a: &[f32], lda: usize, m: usize, k: usize, out: &mut [f32]) {
    if k == 0 {
        return;
    }
    for (p, panel) in out.chunks_exact_mut(MR * k).take(m.div_ceil(MR)).enumerate() {
        for r in 0..MR {
            let row = p * MR + r;
            if row < m {
                let src = &a[row * lda..][..k];
                for (kk, &v) in src.iter().enumerate() {
                    panel[kk * MR + r] = v;
                }
            } else {
                for kk in 0..k {
                    panel[kk * MR + r] = 0.0;
                }
            }
        }
    }
}

/// [`pack_a`] of a left operand given by columns: row `i` of the `m × k` matrix is
/// `x[kk·ld + offs(i)]` for `kk < k` (a 1×1 conv's output pixels `i`, reading input channel `kk`
/// at the pixel's offset `offs(i)` in each plane of `ld` floats), rows past `m` zero. Each
/// panel reads, for every `kk`, its 6 pixels of one input plane.
pub(crate) fn pack_a_columns(x: &[f32], ld: usize, offs: impl Fn(usize) -> usize, m: usize, k: usize, out: &mut [f32]) {
    if k == 0 {
        return;
    }
    for (p, panel) in out.chunks_exact_mut(MR * k).take(m.div_ceil(MR)).enumerate() {
        let rows = MR.min(m - p * MR);
        let at: [usize; MR] = std::array::from_fn(|r| offs(p * MR + r.min(rows - 1)));
        for (kk, dst) in panel.chunks_exact_mut(MR).enumerate() {
            let plane = &x[kk * ld..];
            for (r, d) in dst.iter_mut().enumerate() {
                *d = if r < rows { plane[at[r]] } else { 0.0 };
            }
        }
    }
}

/// Floats of [`pack_groups`]' output for a conv weight of `groups` groups of `cout_g` rows of
/// `k` values.
pub(crate) fn packed_groups_len(groups: usize, cout_g: usize, k: usize) -> Option<usize> {
    packed_a_len(cout_g, k)?.checked_mul(groups)
}

/// A conv weight `[groups·cout_g, k]` (row-major) packed group by group with [`pack_a`]:
/// group `g`'s panels from `g · packed_a_len(cout_g, k)` on. `out` must hold
/// [`packed_groups_len`] floats.
pub(crate) fn pack_groups(w: &[f32], groups: usize, cout_g: usize, k: usize, out: &mut [f32]) {
    let Some(panel) = packed_a_len(cout_g, k).filter(|&p| p > 0) else {
        return;
    };
    for (grp, dst) in out.chunks_exact_mut(panel).take(groups).enumerate() {
        pack_a(&w[grp * cout_g * k..], k, cout_g, k, dst);
    }
}

/// `c[m×n] = a · b` (with `onto`, `c[m×n] += a · b`: the product is added to what `c` holds,
/// each output's sum of a block of the reduction added to it in turn), then
/// `epilogue(row, col0, segment)` on each finished row segment (columns `col0..col0 +
/// segment.len()` of `row`), while it is in cache.
///
/// `a` is [`pack_a`]'s packing of the `m × k` left operand; `b` holds `k` rows of `n` columns
/// with row stride `ldb`; `c` has `m` rows of `n` columns with row stride `ldc`; `bpack` is
/// scratch of at least [`PACKED_B_LEN`] floats.
///
/// # Safety
/// The CPU must support avx2 and fma. `b` must be valid for reads of `k` rows of stride `ldb`
/// (the last `n` long) and `c` for reads and writes of `m` rows of stride `ldc` (the last `n`
/// long), which no other thread accesses during the call.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    bpack: &mut [f32],
    epilogue: &dyn Fn(usize, usize, &mut [f32]),
    onto: bool,
) {
    // SAFETY: rows pc..pc + kc, columns jc..jc + nc of `b` are inside its extent (contract),
    // and `gemm_filled` gives a destination of the block's packed length.
    let fill = |jc: usize, pc: usize, kc: usize, nc: usize, dst: &mut [f32]| unsafe {
        pack_b(b.add(pc * ldb + jc), ldb, kc, nc, dst)
    };
    // SAFETY: the caller's contract; `fill` packs each block as `pack_b` does.
    unsafe { gemm_filled(m, n, k, a, c, ldc, bpack, epilogue, onto, &fill) }
}

/// [`gemm`] with a right-hand side that exists only packed: `fill(jc, pc, kc, nc, dst)` writes
/// the block of its columns `jc..jc + nc` and rows `pc..pc + kc` into `dst` laid out as
/// [`pack_b`] lays out a block (panels of [`NR`] columns [`panel_stride`]`(kc)` apart, columns
/// past `nc` zero); `dst` holds [`block_len`]`(kc, nc)` floats. An im2col conv packs its blocks
/// straight from the image this way, with no im2col matrix in between.
///
/// # Safety
/// The CPU must support avx2 and fma; `c` as for [`gemm`]; `fill` must write the first
/// `kc·NR` floats of every panel of `dst` (the microkernel reads them all; the pad after
/// each is never read).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gemm_filled(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    c: *mut f32,
    ldc: usize,
    bpack: &mut [f32],
    epilogue: &dyn Fn(usize, usize, &mut [f32]),
    onto: bool,
    fill: &FillBlock,
) {
    assert!(bpack.len() >= PACKED_B_LEN, "packing buffer too short");
    let block = |jc: usize, pc: usize, kc: usize, nc: usize| {
        fill(jc, pc, kc, nc, &mut bpack[..block_len(kc, nc)]);
        bpack.as_ptr()
    };
    // SAFETY: the caller's contract, and `block` returns each block packed.
    unsafe { gemm_blocks(m, n, k, a, c, ldc, epilogue, onto, block) }
}

/// Writes one packed right-hand-side block: `fill(jc, pc, kc, nc, dst)` (see [`gemm_filled`]).
pub(crate) type FillBlock<'a> = dyn Fn(usize, usize, usize, usize, &mut [f32]) + 'a;

/// A [`FillBlock`] that tasks on several threads may call.
pub(crate) type SyncFillBlock<'a> = dyn Fn(usize, usize, usize, usize, &mut [f32]) + Sync + 'a;

/// Floats of [`pack_b_all`]'s packing of a `k × n` right-hand side.
pub(crate) fn packed_b_all_len(n: usize, k: usize) -> Option<usize> {
    column_block_len(k, NC)?
        .checked_mul(n / NC)?
        .checked_add(column_block_len(k, n % NC)?)
}

/// Floats of one column block of [`pack_b_all`]'s packing: all `k` rows of `nc` columns, in
/// blocks of [`KC`] rows (each [`block_len`] long).
fn column_block_len(k: usize, nc: usize) -> Option<usize> {
    let pads = k.div_ceil(KC).checked_mul(PANEL_PAD)?;
    nc.div_ceil(NR).checked_mul(k.checked_mul(NR)?.checked_add(pads)?)
}

/// Where [`pack_b_all`]'s packing of a `k`-row right-hand side holds the block of columns
/// `jc..jc + nc` and rows `pc..`: after `jc / NC` whole column blocks and, within its own,
/// `pc / KC` whole row blocks. Only for offsets inside a packing [`packed_b_all_len`] sized.
pub(crate) fn packed_block_offset(k: usize, jc: usize, pc: usize, nc: usize) -> usize {
    let whole = column_block_len(k, NC).unwrap_or(0);
    (jc / NC) * whole + (pc / KC) * block_len(KC, nc)
}

/// Packs all of `b` (`k` rows of `n` columns, row stride `ldb`) in the order [`gemm_prepacked`]
/// reads it: the block of columns `jc..jc + nc` and rows `pc..pc + kc` at
/// [`packed_block_offset`], laid out as [`pack_b`] lays out one block. Done once and
/// shared, where tasks split one product by rows of the left operand (output channels).
///
/// # Safety
/// The CPU must support avx2 and fma; `b` must hold `k` rows of stride `ldb`, the last `n` long;
/// `out` must hold [`packed_b_all_len`] floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn pack_b_all(b: &[f32], ldb: usize, k: usize, n: usize, out: &mut [f32]) {
    // SAFETY: each block's rows lie inside `b` (contract); the CPU check is the caller's.
    let fill = |jc: usize, pc: usize, kc: usize, nc: usize, dst: &mut [f32]| unsafe {
        pack_b(b[pc * ldb + jc..].as_ptr(), ldb, kc, nc, dst)
    };
    pack_b_all_filled(k, n, out, &fill);
}

/// [`pack_b_all`] of a right-hand side produced block by block, as for [`gemm_filled`]. Every
/// block (`NC` columns × `KC` rows) is a task on rayon's pool: the packing is shared by the
/// channel-split tasks that follow it, and on one thread it held them up (YOLOv8n's 128→256
/// stride-2 conv at 40², 2 threads: 1.72× ORT's time against 1.02× at 1 thread).
pub(crate) fn pack_b_all_filled(k: usize, n: usize, out: &mut [f32], fill: &SyncFillBlock) {
    use rayon::prelude::*;
    let (Some(len), Some(col_block)) = (packed_b_all_len(n, k), column_block_len(k, NC)) else {
        return;
    };
    out[..len]
        .par_chunks_mut(col_block.max(1))
        .enumerate()
        .for_each(|(b, chunk)| {
            let jc = b * NC;
            let nc = NC.min(n - jc);
            chunk
                .par_chunks_mut(block_len(KC, nc).max(1))
                .enumerate()
                .for_each(|(i, dst)| {
                    let pc = i * KC;
                    fill(jc, pc, KC.min(k - pc), nc, dst);
                });
        });
}

/// [`gemm`] on a right-hand side packed by [`pack_b_all`] (no packing here).
///
/// # Safety
/// The CPU must support avx2 and fma; `bp` must be [`pack_b_all`]'s packing of a `k × n`
/// matrix; `c` as for [`gemm`].
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gemm_prepacked(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    bp: &[f32],
    c: *mut f32,
    ldc: usize,
    epilogue: &dyn Fn(usize, usize, &mut [f32]),
    onto: bool,
) {
    assert!(
        packed_b_all_len(n, k).is_some_and(|len| bp.len() >= len),
        "packed operand too short"
    );
    let block = |jc: usize, pc: usize, _kc: usize, nc: usize| bp[packed_block_offset(k, jc, pc, nc)..].as_ptr();
    // SAFETY: the caller's contract; `block` points at each packed block inside `bp`.
    unsafe { gemm_blocks(m, n, k, a, c, ldc, epilogue, onto, block) }
}

/// The loop nest of [`gemm`] and [`gemm_prepacked`]: `block(jc, pc, kc, nc)` gives the packed
/// block of columns `jc..jc + nc` and rows `pc..pc + kc` of the right-hand side.
///
/// # Safety
/// As [`gemm`]; every pointer `block` returns must hold that block packed as [`pack_b`] does.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_blocks(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    c: *mut f32,
    ldc: usize,
    epilogue: &dyn Fn(usize, usize, &mut [f32]),
    onto: bool,
    block: impl FnMut(usize, usize, usize, usize) -> *const f32,
) {
    let wide = crate::kernel::simd512();
    // SAFETY: the caller's contract; `wide` only where the CPU has AVX-512F.
    unsafe { gemm_tiles(m, n, k, a, c, ldc, epilogue, onto, block, wide) }
}

/// `c[m×n] = a · b` on AVX-512F, with `b` (`k × n`, `n` a multiple of 16) packed whole by
/// column panels: columns `16p..16p + 15` from `16p·k` on, row `kk` of them at `+ 16·kk` (a 1×1
/// conv's weight `[n][k]` packed by [`crate::direct::cv_weight`], read as its transpose). `a` is
/// [`pack_a`]'s packing (or [`pack_a_columns`]'); `c` has `m` rows of `n` columns, row stride
/// `ldc`. The same tiles and sums as [`gemm`]. `b` is read once from memory (a weight, cold in
/// a forward), on the first pair of row panels' pass over each block, which prefetches each
/// next tile's panels as it goes.
///
/// # Safety
/// The CPU must support avx512f; `c` must be valid for reads and writes of `m` rows of stride
/// `ldc` (the last `n` long), which no other thread accesses during the call.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn gemm_columns(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: *mut f32, ldc: usize) {
    assert!(
        packed_a_len(m, k).is_some_and(|len| a.len() >= len)
            && n.is_multiple_of(NR)
            && n.checked_mul(k).is_some_and(|len| b.len() >= len),
        "packed operand too short"
    );
    if k == 0 {
        return;
    }
    let none = |_: usize, _: usize, _: &mut [f32]| {};
    let block = |jc: usize, pc: usize, _kc: usize, _nc: usize| b[jc * k + pc * NR..].as_ptr();
    // SAFETY: the caller's contract for `c` and the CPU; every block's panels lie 16·k apart
    // inside `b` (checked above).
    unsafe { gemm_tiles_wide(m, n, k, a, c, ldc, &none, false, block, Rhs::Columns(NR * k)) }
}

/// [`gemm`] on AVX-512F with the right-hand side read in place, not packed: a pointwise conv's
/// input planes, each a run of pixels, `ldb` floats apart. The tiles read 32 consecutive
/// columns of each row (two vectors, masked at the right edge) where the packed ones read a
/// panel, and on a block's first pass prefetch the rows of the tile two ahead
/// ([`ROWS_AHEAD`]).
///
/// # Safety
/// The CPU must support avx512f; `b` must be valid for reads of `k` rows of stride `ldb`, the
/// last `n` long; `c` as for [`gemm`].
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn gemm_rows(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    epilogue: &dyn Fn(usize, usize, &mut [f32]),
    onto: bool,
) {
    assert!(
        packed_a_len(m, k).is_some_and(|len| a.len() >= len),
        "packed operand too short"
    );
    let block = |jc: usize, pc: usize, _kc: usize, _nc: usize| b.wrapping_add(pc * ldb + jc);
    // SAFETY: the caller's contract; each block's rows are `ldb` apart inside `b`.
    unsafe { gemm_tiles_wide(m, n, k, a, c, ldc, epilogue, onto, block, Rhs::Rows(ldb)) }
}

/// Tiles (of 32 columns) ahead of the running one whose rows a tile reading its right-hand
/// side in place ([`gemm_rows`]) prefetches on the first pair of row panels' pass over a
/// block: an input from memory arrives as a conv's planes, up to 128 rows a plane apart, which
/// the hardware prefetchers do not follow. Measured on Zen 5, 1 thread, caches flushed before
/// each call (one tile ahead → two, ms; the packed path in brackets): 192→64 at 80² 1.12 → 0.79
/// (0.93), 384→128 at 40² 0.80 → 0.69 (0.75), 48→32 at 160² 0.70 → 0.62 (0.86); three ahead
/// the same or worse; hot, unchanged. Forwards (2 interleaved runs, best ms, 1 | 2 threads):
/// YOLOv8n 24.2–26.2 → 22.7–23.7 | 12.3–12.7 → 12.05–12.2, ResNet-50 FPN 49.1–50.1 → 47.3–48.6 |
/// 27.0–27.3 → 26.4–26.5, seed 001 even.
const ROWS_AHEAD: usize = 2;

/// Where [`gemm_tiles_wide`]'s tiles find a block's right-hand side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rhs {
    /// Packed by [`pack_b`]: column panels [`panel_stride`]`(kc)` apart, rows [`NR`] apart.
    Packed,
    /// Packed whole by columns ([`gemm_columns`]): column panels this many floats apart.
    Columns(usize),
    /// In place ([`gemm_rows`]): rows this many floats apart, panels [`NR`] columns apart.
    Rows(usize),
}

/// The loop nest of [`gemm_blocks`], with the register tile chosen by the caller: `wide` runs
/// [`gemm_tiles_wide`]'s AVX-512 tiles, else every tile is the 6×16 one. Both sum each output
/// in the same order, so the results are the same bit for bit.
///
/// # Safety
/// As [`gemm_blocks`]; with `wide` the CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_tiles(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    c: *mut f32,
    ldc: usize,
    epilogue: &dyn Fn(usize, usize, &mut [f32]),
    onto: bool,
    block: impl FnMut(usize, usize, usize, usize) -> *const f32,
    wide: bool,
) {
    let panels_a = m.div_ceil(MR);
    assert!(
        packed_a_len(m, k).is_some_and(|len| a.len() >= len),
        "packed operand too short"
    );
    if wide {
        // SAFETY: the caller's contract, with AVX-512F (`wide`).
        return unsafe { gemm_tiles_wide(m, n, k, a, c, ldc, epilogue, onto, block, Rhs::Packed) };
    }
    for_each_block(n, k, onto, block, move |blk| {
        let Block {
            jc,
            nc,
            pc,
            kc,
            b: bpack,
            first,
            last,
        } = blk;
        let panels_b = nc.div_ceil(NR);
        for ip in 0..panels_a {
            let rows = MR.min(m - ip * MR);
            let ap = a[ip * MR * k + pc * MR..].as_ptr();
            if ip + PREFETCH_PANELS < panels_a {
                // The same rows of a later panel, a cache line (16 floats) at a time.
                let next = a[(ip + PREFETCH_PANELS) * MR * k + pc * MR..][..kc * MR].as_ptr();
                for line in (0..kc * MR).step_by(16) {
                    // SAFETY: a prefetch of an address inside `a`.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(next.add(line).cast()) };
                }
            }
            for jp in 0..panels_b {
                let cols = NR.min(nc - jp * NR);
                // SAFETY: the tile, rows ip·MR.. (rows of them), columns jc + jp·NR.. (cols
                // of them), is inside `c` (contract); `ap` has kc·MR floats and the block's
                // panel jp kc·NR (`block`'s contract).
                unsafe {
                    let bp = bpack.add(jp * panel_stride(kc));
                    let cp = c.add(ip * MR * ldc + jc + jp * NR);
                    if rows == MR && cols == NR {
                        kernel_6x16(kc, ap, bp, cp, ldc, !first);
                    } else {
                        let mut t = [0.0f32; MR * NR];
                        kernel_6x16(kc, ap, bp, t.as_mut_ptr(), NR, false);
                        for r in 0..rows {
                            let dst = std::slice::from_raw_parts_mut(cp.add(r * ldc), cols);
                            let src = &t[r * NR..][..cols];
                            if first {
                                dst.copy_from_slice(src);
                            } else {
                                dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                            }
                        }
                    }
                }
            }
            if last {
                // SAFETY: those rows' columns jc..jc + nc are inside `c` (contract), their
                // tiles done.
                unsafe { finish_rows(c, ldc, jc, nc, ip * MR..ip * MR + rows, epilogue) };
            }
        }
    });
}

/// [`gemm_tiles`] on AVX-512F: pairs of row panels (12 rows) by pairs of column panels (32
/// columns) through [`kernel_wide`], whose edge tiles (fewer rows: the last panel's, or one
/// panel left; fewer columns: a block's last panel or pair) compute only the rows they have
/// and store only their columns (masked). Before these, the edges ran as whole 6×16 (AVX2) or
/// 6×32 tiles into a scratch tile copied out after: a 32-row weight (YOLOv8n's C2f convs) ran
/// 36 rows, the last two as a 6-row tile, and a 196- or 400-column output (14², 20²) ended in a
/// 6×16 AVX2 tile. Every output sums in [`kernel_6x16`]'s order, so the results are those of
/// the AVX2 loop bit for bit. Measured on Zen 5, 1 thread, hot, interleaved (ms): 1×1 convs
/// 32→32 at 160² 0.366 → 0.330, 48→32 at 160² 0.51 → 0.46, 192→64 at 80² 0.76 → 0.73–0.74,
/// 384→128 at 40² 0.70 → 0.67–0.69, 1024→256 at 14² 0.48 → 0.46, 512→2048 and 2048→512 at 7²
/// 0.59 → 0.56, stride-2 512→1024 at 28² 1.12 → 1.10.
///
/// `rhs` says how `block`'s right-hand side is laid out ([`Rhs`]).
///
/// # Safety
/// As [`gemm_tiles`] with `wide`, with `block`'s blocks laid out as `rhs` says.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemm_tiles_wide(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    c: *mut f32,
    ldc: usize,
    epilogue: &dyn Fn(usize, usize, &mut [f32]),
    onto: bool,
    block: impl FnMut(usize, usize, usize, usize) -> *const f32,
    rhs: Rhs,
) {
    let panels_a = m.div_ceil(MR);
    for_each_block(n, k, onto, block, move |blk| {
        let Block {
            jc,
            nc,
            pc,
            kc,
            b: bpack,
            first,
            last,
        } = blk;
        let panels_b = nc.div_ceil(NR);
        let (bs, rs) = match rhs {
            Rhs::Packed => (panel_stride(kc), NR),
            Rhs::Columns(d) => (d, NR),
            Rhs::Rows(ldb) => (NR, ldb),
        };
        // A right-hand side packed whole: the block after this one (the next rows of the same
        // panels, else the next column block's first rows), if any.
        let after = match rhs {
            Rhs::Columns(_) if !last => Some(bpack.wrapping_add(kc * NR)),
            Rhs::Columns(_) if jc + nc < n => Some(bpack.wrapping_sub(pc * NR).wrapping_add(nc * k)),
            _ => None,
        };
        let mut ip0 = 0;
        let mut pass = 0;
        while ip0 < panels_a {
            // Two row panels where there are two (the second may be partial), else one.
            let two = ip0 + 1 < panels_a;
            let rows = (m - ip0 * MR).min(if two { 2 * MR } else { MR });
            let ap0 = a[ip0 * MR * k + pc * MR..][..kc * MR].as_ptr();
            let ap1 = if two {
                a[(ip0 + 1) * MR * k + pc * MR..][..kc * MR].as_ptr()
            } else {
                ap0
            };
            // The same rows of the next pair of row panels (a weight, cold in a forward),
            // prefetched row by row through the first tile (see `PREFETCH_PANELS`).
            let ahead = (ip0 + PREFETCH_PANELS..(ip0 + PREFETCH_PANELS + 1 + usize::from(two)).min(panels_a)).len();
            let a_next = if ahead > 0 {
                a[(ip0 + PREFETCH_PANELS) * MR * k + pc * MR..].as_ptr()
            } else {
                std::ptr::null()
            };
            let mut jp = 0;
            while jp < panels_b {
                let cols = (2 * NR).min(nc - jp * NR);
                // A right-hand side packed whole (a weight, `Rhs::Columns`) comes from memory on
                // the first row panels' pass: prefetch the next tile's panels meanwhile, and on the
                // second pass the next block's same panels (into L2), so that its first pass
                // finds them in cache instead of waiting on memory while the later passes left
                // the memory idle. Measured on Zen 5, weights cold (input and output warm), ms,
                // 1 thread: ResNet-50's 512→2048 at 7² 0.505–0.527 → 0.491–0.495 (into L1
                // 0.484–0.505), 2048→512 0.498–0.508 → 0.478–0.479; in ResNet-50 FPN's forward
                // at 2 threads (3 runs each) 2048→512 (2 calls) 0.86–0.89 → 0.76–0.84, stride-2
                // 1024→2048 0.71–0.78 → 0.66–0.71, 512→2048 (3 calls) 1.29–1.36 → 1.18–1.36.
                let next = match (pass, after) {
                    // In place, the tile two ahead, past the block's end too (the next block's columns
                    // of the same rows when the reduction is one block): see `ROWS_AHEAD`.
                    (0, _) if matches!(rhs, Rhs::Rows(_)) => bpack.wrapping_add((jp + 2 * ROWS_AHEAD) * bs),
                    (0, _) if matches!(rhs, Rhs::Columns(_)) && jp + 2 < panels_b => bpack.wrapping_add((jp + 2) * bs),
                    (1, Some(after)) => after.wrapping_add(jp * bs),
                    _ => std::ptr::null(),
                };
                // SAFETY: the tile, rows ip0·MR.. (rows of them), columns jc + jp·NR.. (cols
                // of them), is inside `c` (contract); `ap0` (and `ap1` when rows > 6) hold
                // kc·MR floats, the block's panel jp (and jp + 1 when cols > 16) kc·NR
                // (`block`'s contract); AVX-512F by this function's contract.
                unsafe {
                    let tile = Tile {
                        kc,
                        a0: ap0,
                        a1: ap1,
                        b: bpack.add(jp * bs),
                        bs,
                        rs,
                        c: c.add(ip0 * MR * ldc + jc + jp * NR),
                        ldc,
                        cols,
                        accumulate: !first,
                        b_next: next,
                        b_next_l2: pass > 0,
                        a_next: if jp == 0 { a_next } else { std::ptr::null() },
                        a_panels: ahead,
                        a_step: MR * k,
                    };
                    tile_wide(rows, tile);
                }
                jp += 2;
            }
            if last {
                // SAFETY: those rows' columns jc..jc + nc are inside `c` (contract), their
                // tiles done.
                unsafe { finish_rows(c, ldc, jc, nc, ip0 * MR..ip0 * MR + rows, epilogue) };
            }
            ip0 += 1 + usize::from(two);
            pass += 1;
        }
    });
}

/// One block of the right-hand side as the tile loops take it: columns `jc..jc + nc`, rows
/// `pc..pc + kc` of the reduction, packed at `b`; `first` says whether the tiles overwrite the
/// output (the reduction's first block, unless the product is added onto the output), `last`
/// whether it ends the reduction.
#[derive(Clone, Copy)]
struct Block {
    jc: usize,
    nc: usize,
    pc: usize,
    kc: usize,
    b: *const f32,
    first: bool,
    last: bool,
}

/// The block order of the tile loops ([`gemm_tiles`], [`gemm_tiles_wide`]): column blocks of
/// [`NC`], each down its reduction in blocks of [`KC`], `body` run on each with the block
/// `block(jc, pc, kc, nc)` gives. Each tile loop writes its `body` inside its own
/// `#[target_feature]` function, so the closure has those features.
#[inline(always)]
fn for_each_block(
    n: usize,
    k: usize,
    onto: bool,
    mut block: impl FnMut(usize, usize, usize, usize) -> *const f32,
    mut body: impl FnMut(Block),
) {
    let mut jc = 0;
    while jc < n {
        let nc = NC.min(n - jc);
        let mut pc = 0;
        loop {
            let kc = KC.min(k - pc);
            let b = block(jc, pc, kc, nc);
            let (first, last) = (pc == 0 && !onto, pc + kc >= k);
            body(Block {
                jc,
                nc,
                pc,
                kc,
                b,
                first,
                last,
            });
            pc += kc;
            if last {
                break;
            }
        }
        jc += nc;
    }
}

/// `epilogue(row, jc, segment)` on columns `jc..jc + nc` of each of `rows` of `c` (row stride
/// `ldc`), once the tiles that wrote them are done.
///
/// # Safety
/// Those columns of those rows must be inside `c`, with no other live reference to them.
#[inline(always)]
unsafe fn finish_rows(
    c: *mut f32,
    ldc: usize,
    jc: usize,
    nc: usize,
    rows: std::ops::Range<usize>,
    epilogue: &dyn Fn(usize, usize, &mut [f32]),
) {
    for row in rows {
        // SAFETY: the caller's contract.
        let seg = unsafe { std::slice::from_raw_parts_mut(c.add(row * ldc + jc), nc) };
        epilogue(row, jc, seg);
    }
}

/// The operands of one AVX-512 register tile ([`kernel_wide`]): `kc` rows of the reduction
/// from the row panels `a0` (rows 0–5) and `a1` (rows 6–11) and the column panels `b` and `b +
/// bs` (each row `rs` floats after the last), into the tile at `c` (row stride `ldc`) of which
/// `cols` columns are stored, added to what it holds when `accumulate`. As it runs, the tile
/// prefetches the same rows of the column panels at `b_next` (the next tile's, `bs` apart) and
/// of `a_panels` row panels from `a_next` (`a_step` floats apart), each where its pointer is
/// not null; those are only prefetched, never read.
#[derive(Clone, Copy)]
struct Tile {
    kc: usize,
    a0: *const f32,
    a1: *const f32,
    b: *const f32,
    bs: usize,
    /// Floats from one row of `b`'s panels to the next: [`NR`] when packed.
    rs: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    accumulate: bool,
    b_next: *const f32,
    /// Prefetch `b_next` into L2 only (the next block's, not the next tile's).
    b_next_l2: bool,
    a_next: *const f32,
    a_panels: usize,
    a_step: usize,
}

/// [`kernel_wide`] for a tile of `rows` (1 to 12) × `t.cols` (1 to 32).
///
/// # Safety
/// As [`kernel_wide`] for those `R` and `V`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tile_wide(rows: usize, t: Tile) {
    macro_rules! by_rows {
        ($v:literal) => {
            match rows {
                1 => kernel_wide::<1, $v>,
                2 => kernel_wide::<2, $v>,
                3 => kernel_wide::<3, $v>,
                4 => kernel_wide::<4, $v>,
                5 => kernel_wide::<5, $v>,
                6 => kernel_wide::<6, $v>,
                7 => kernel_wide::<7, $v>,
                8 => kernel_wide::<8, $v>,
                9 => kernel_wide::<9, $v>,
                10 => kernel_wide::<10, $v>,
                11 => kernel_wide::<11, $v>,
                _ => kernel_wide::<12, $v>,
            }
        };
    }
    let run = if t.cols > NR { by_rows!(2) } else { by_rows!(1) };
    // SAFETY: the caller's contract.
    unsafe { run(t) }
}

/// The AVX-512 register tile of `R` rows (1 to 12: rows 0–5 from the row panel `a0`, 6–11
/// from `a1`) by `V` column panels of 16 (`b`, and `b + bs` when `V` is 2), storing its first
/// `cols` columns: `c[r][j] (+)= Σ_kk a[kk·6 + r] · b'[kk][j]`, each sum in the order
/// [`kernel_6x16`] forms it; the operands and prefetches are [`Tile`]'s. At 12 × 2 (24
/// accumulators) each packed row of `b` feeds 24 FMAs; measured on Zen 5, 1 thread, the 12×32
/// tile against 6×32 ones: hot GEMMs of ResNet's 1×1 shapes 3–6% faster, ResNet-50 FPN's
/// forward 60.1–60.5 → 57.1–58.1 ms.
///
/// # Safety
/// The CPU must support avx512f; `a0` must hold `kc·6` floats, and `a1` too when `R > 6`; `b`
/// must be valid for reads of `kc` rows `rs` floats apart of each of its `V` panels (`bs`
/// apart), of the columns of the panel that `cols` covers (the loads are masked to them; a
/// packed panel holds all 16); `c` must be valid for reads and writes of `R` rows of `cols`
/// (≤ 16·`V`) floats with row stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn kernel_wide<const R: usize, const V: usize>(t: Tile) {
    let Tile {
        kc,
        a0,
        a1,
        b,
        bs,
        rs,
        c,
        ldc,
        cols,
        accumulate,
        b_next,
        b_next_l2,
        a_next,
        a_panels,
        a_step,
    } = t;
    // Lanes of each vector the tile stores (all of the first when V is 2 and cols > 16).
    let mask = |v: usize| -> __mmask16 {
        let n = cols.saturating_sub(v * NR).min(NR);
        ((1u32 << n) - 1) as __mmask16
    };
    let masks: [__mmask16; V] = std::array::from_fn(mask);
    // SAFETY: every read is within the first kc·6 floats of `a0` (and `a1` for rows 6..), and
    // of `b` within the kc rows of each of the V panels, masked to the columns `cols` covers;
    // every access to `c` within its R rows of `cols` columns (masked) (contract).
    unsafe {
        if accumulate {
            // what the tile adds to, on its way while the reduction runs
            for r in 0..R {
                for v in 0..V {
                    _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(r * ldc + v * NR).cast());
                }
            }
        }
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for kk in 0..kc {
            if !b_next.is_null() {
                for v in 0..V {
                    let line = b_next.wrapping_add(v * bs + kk * rs).cast();
                    if b_next_l2 {
                        _mm_prefetch::<_MM_HINT_T1>(line);
                    } else {
                        _mm_prefetch::<_MM_HINT_T0>(line);
                    }
                }
            }
            if !a_next.is_null() && kk % 2 == 0 {
                for q in 0..a_panels {
                    _mm_prefetch::<_MM_HINT_T0>(a_next.wrapping_add(q * a_step + kk * MR).cast());
                }
            }
            // Masked: a right-hand side read in place ends at its last row's `cols` columns.
            let bv: [__m512; V] = std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], b.add(v * bs + kk * rs)));
            let ak0 = a0.add(kk * MR);
            let ak1 = a1.add(kk * MR);
            for (r, row) in acc.iter_mut().enumerate() {
                let ar = _mm512_set1_ps(*if r < MR { ak0.add(r) } else { ak1.add(r - MR) });
                for (x, &bv) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(ar, bv, *x);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let cr = c.add(r * ldc);
            for (v, &x) in row.iter().enumerate() {
                let dst = cr.add(v * NR);
                let x = if accumulate {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(masks[v], dst), x)
                } else {
                    x
                };
                _mm512_mask_storeu_ps(dst, masks[v], x);
            }
        }
    }
}

/// Rows ahead of the one it copies that [`pack_b`] prefetches. A block's rows are a conv's
/// input planes, each a short run (1 KiB) a plane apart (64 KiB at 128²): 128 streams the
/// hardware prefetchers did not follow, so each row waited on the L3. Measured on Zen 5, 1
/// thread, hot (input in L3): RetinaNet's 256→64 1×1 at 128² 3.13 → 2.72 ms (2, 4, 8 and 16
/// rows ahead: 2.72, 2.80, 2.77, 2.82); inputs in L2 unchanged (48→32 at 160², 192→64 at 80²).
/// In RetinaNet's forward (1 thread, best of 2 per conv): its 1×1 convs 0.24–0.94 ms faster
/// per shape (256→64 at 128², 2 calls, 7.39 → 6.45), all convs 218.6–221.3 → 214.4–215.8 ms.
/// (Prefetching the whole next block a row per row packed, into L2, measured 1–7%.)
pub(crate) const PACK_AHEAD: usize = 2;

/// Packs `kc` rows × `nc` columns of `b` (row stride `ldb`) into panels of [`NR`] columns:
/// `out[jp·panel_stride(kc) + kk·NR + j] = b[kk][jp·NR + j]`, columns past `nc` zero.
///
/// # Safety
/// `b` must be valid for reads of `kc` rows of stride `ldb`, the last `nc` long; `out` must
/// hold [`block_len`]`(kc, nc)` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b(b: *const f32, ldb: usize, kc: usize, nc: usize, out: &mut [f32]) {
    let full = nc / NR;
    let tail = nc % NR;
    for kk in 0..kc {
        if kk + PACK_AHEAD < kc {
            // Row kk + PACK_AHEAD of the block, a cache line at a time (see `PACK_AHEAD`).
            let ahead = b.wrapping_add((kk + PACK_AHEAD) * ldb);
            for line in (0..nc).step_by(16) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line).cast());
            }
        }
        // SAFETY: row kk of the block (contract).
        let row = unsafe { std::slice::from_raw_parts(b.add(kk * ldb), nc) };
        for jp in 0..full {
            out[jp * panel_stride(kc) + kk * NR..][..NR].copy_from_slice(&row[jp * NR..][..NR]);
        }
        if tail > 0 {
            let dst = &mut out[full * panel_stride(kc) + kk * NR..][..NR];
            dst[..tail].copy_from_slice(&row[full * NR..]);
            dst[tail..].fill(0.0);
        }
    }
}

/// The 6×16 register tile: `c[r][j] (+)= Σ_kk a[kk·6 + r] · b[kk·16 + j]` for `kk < kc`,
/// added to what `c` holds when `accumulate`.
///
/// # Safety
/// The CPU must support avx2 and fma; `a` must hold `kc·6` floats, `b` `kc·16`, and `c` must be
/// valid for reads and writes of 6 rows of 16 floats with row stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn kernel_6x16(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
    // SAFETY: every read is within the first kc·6 floats of `a` and kc·16 of `b`, every
    // access to `c` within its 6 × 16 tile (contract).
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for kk in 0..kc {
            let b0 = _mm256_loadu_ps(b.add(kk * NR));
            let b1 = _mm256_loadu_ps(b.add(kk * NR + 8));
            let ak = a.add(kk * MR);
            for (r, row) in acc.iter_mut().enumerate() {
                let ar = _mm256_broadcast_ss(&*ak.add(r));
                row[0] = _mm256_fmadd_ps(ar, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ar, b1, row[1]);
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let cr = c.add(r * ldc);
            let (mut v0, mut v1) = (row[0], row[1]);
            if accumulate {
                v0 = _mm256_add_ps(_mm256_loadu_ps(cr), v0);
                v1 = _mm256_add_ps(_mm256_loadu_ps(cr.add(8)), v1);
            }
            _mm256_storeu_ps(cr, v0);
            _mm256_storeu_ps(cr.add(8), v1);
        }
    }
}

/// Row panels of the left operand ahead of the one running whose next `kc` rows [`gemm_tiles`]
/// prefetches. A conv's packed weights are cold in a forward (ResNet-50's are 100 MB: every
/// conv's come from memory), and a panel's block is a 3 KiB run 12 KiB (`6·k` floats) from the
/// next, which the hardware prefetchers did not stream. Measured on Zen 5, ResNet-50 FPN at 1
/// thread, each conv timed in the forward: the convs' sum 70.3 → 64.9 ms; 7² 1×1 convs
/// (2048×512, 4 MiB) 2.2× → 1.7× their time on warm weights; 1 and 2 panels ahead alike, 4 and
/// 8 worse. On AVX-512 ([`gemm_tiles_wide`]) the next pair's rows are prefetched through the
/// first tile of the current pair, on every other row of it, not in one burst before the
/// pair: measured on Zen 5, ResNet-50 FPN at 1 thread, each conv in the forward (best of 3
/// interleaved runs): 256→1024 at 14² (6 calls) 3.61 → 3.33 ms, 1024→256 at 14² 3.17 → 2.92,
/// the convs' sum of bests 1.2 ms less; the convs per forward, median of 6, 58.1 → 57.5 ms.
/// On an Intel Xeon (family 6 model 167, 2 MiB L2; session 21) 4 pairs ahead, and 2–16 pairs
/// with an L2 hint, measured even (ResNet-50 FPN at 1 thread; 7² convs with cold weights).
const PREFETCH_PANELS: usize = 2;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Against a plain triple loop with the same blocked summation, on ragged sizes (every
    /// tile edge, several K and N blocks, row strides wider than the rows).
    #[test]
    fn packed_gemm_equals_blocked_reference() {
        if !crate::kernel::simd() {
            return;
        }
        let mut state = 1u32;
        let mut rnd = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(m, n, k) in &[
            (1, 1, 1),
            (6, 16, 128),
            (7, 17, 129),
            (13, 300, 300),
            (32, 530, 27),
            (5, 3, 260),
            (12, 64, 200),
            (18, 290, 130),
            // every row count of the wide tiles (1 to 12) beside one- and two-panel column edges
            (9, 49, 40),
            (10, 196, 64),
            (11, 20, 33),
            (16, 400, 70),
            (20, 47, 129),
            (22, 15, 7),
        ] {
            let (lda, ldb, ldc) = (k + 3, n + 5, n + 2);
            let a: Vec<f32> = (0..m * lda).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..k * ldb).map(|_| rnd()).collect();
            let mut c = vec![f32::NAN; m * ldc];
            // `start` plus each block of the reduction's sum (from zero) in turn: the tiles' order
            let blocked = |i: usize, j: usize, start: f32| {
                let mut want = start;
                for k0 in (0..k).step_by(KC) {
                    let mut s = 0.0f32;
                    for kk in k0..(k0 + KC).min(k) {
                        s = a[i * lda + kk].mul_add(b[kk * ldb + j], s);
                    }
                    want += s;
                }
                want
            };
            let mut pa = vec![0.0; packed_a_len(m, k).unwrap()];
            pack_a(&a, lda, m, k, &mut pa);
            let mut bp = vec![0.0; PACKED_B_LEN];
            let seen = std::cell::RefCell::new(vec![0usize; m]);
            let epi = |row: usize, _c0: usize, seg: &mut [f32]| {
                seen.borrow_mut()[row] += seg.len();
                seg.iter_mut().for_each(|v| *v *= 2.0);
            };
            // SAFETY: simd() checked above; the extents match the buffers.
            unsafe { gemm(m, n, k, &pa, b.as_ptr(), ldb, c.as_mut_ptr(), ldc, &mut bp, &epi, false) };
            // The same product on a right-hand side packed once, bit for bit.
            let mut all = vec![f32::NAN; packed_b_all_len(n, k).unwrap()];
            let mut c2 = vec![f32::NAN; m * ldc];
            let none = |_: usize, _: usize, seg: &mut [f32]| seg.iter_mut().for_each(|v| *v *= 2.0);
            // SAFETY: as above.
            unsafe {
                pack_b_all(&b, ldb, k, n, &mut all);
                gemm_prepacked(m, n, k, &pa, &all, c2.as_mut_ptr(), ldc, &none, false);
            }
            for i in 0..m {
                assert_eq!(c[i * ldc..][..n], c2[i * ldc..][..n], "prepacked differs, row {i}");
            }
            // The 6×16 tiles alone and, where the CPU has AVX-512F, the wide ones, bit
            // for bit.
            let wides: &[bool] = if std::is_x86_feature_detected!("avx512f") {
                &[false, true]
            } else {
                &[false]
            };
            for &wide in wides {
                let mut c3 = vec![f32::NAN; m * ldc];
                let block =
                    |jc: usize, pc: usize, _kc: usize, nc: usize| all[packed_block_offset(k, jc, pc, nc)..].as_ptr();
                // SAFETY: as above; `wide` only where the CPU has avx512f.
                unsafe { gemm_tiles(m, n, k, &pa, c3.as_mut_ptr(), ldc, &none, false, block, wide) };
                for i in 0..m {
                    assert_eq!(c[i * ldc..][..n], c3[i * ldc..][..n], "wide = {wide} differs, row {i}");
                }
                // Onto what the output holds: each block's sum added to it in turn.
                let init: Vec<f32> = (0..m * ldc).map(|_| rnd()).collect();
                let mut c4 = init.clone();
                // SAFETY: as above.
                unsafe { gemm_tiles(m, n, k, &pa, c4.as_mut_ptr(), ldc, &none, true, block, wide) };
                if wide {
                    // The right-hand side read in place, not packed: the same tiles, bit for
                    // bit, onto the output or not.
                    for (onto, want) in [(false, &c), (true, &c4)] {
                        let mut c5 = if onto { init.clone() } else { vec![f32::NAN; m * ldc] };
                        // SAFETY: as above; b holds k rows of stride ldb.
                        unsafe { gemm_rows(m, n, k, &pa, b.as_ptr(), ldb, c5.as_mut_ptr(), ldc, &none, onto) };
                        for i in 0..m {
                            assert_eq!(
                                want[i * ldc..][..n],
                                c5[i * ldc..][..n],
                                "in place, onto = {onto}, row {i}"
                            );
                        }
                    }
                }
                for i in 0..m {
                    for j in 0..n {
                        let want = blocked(i, j, init[i * ldc + j]);
                        let got = c4[i * ldc + j];
                        assert!(
                            (got - 2.0 * want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "onto, wide = {wide}, ({m},{n},{k}) [{i},{j}]: {got} vs {}",
                            2.0 * want
                        );
                    }
                    assert_eq!(
                        c4[i * ldc + n..][..ldc - n],
                        init[i * ldc + n..][..ldc - n],
                        "row {i}'s padding"
                    );
                }
            }
            for i in 0..m {
                assert_eq!(seen.borrow()[i], n, "epilogue covers row {i} once");
                for j in 0..n {
                    let want = blocked(i, j, 0.0);
                    let got = c[i * ldc + j];
                    assert!(
                        (got - 2.0 * want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "({m},{n},{k}) [{i},{j}]: {got} vs {}",
                        2.0 * want
                    );
                }
            }
        }
    }
}
