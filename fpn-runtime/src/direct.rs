//! Direct convolution (undilated, ungrouped) with AVX2 + FMA register blocking, two kernels:
//! the path where im2col's packing (9× the input) or Winograd's transforms cost more than they
//! save. The first takes 3×3 convs at stride 2 (YOLOv8's and seed 000's downsampling convs) and
//! at stride 1 with few input channels ([`fits`] says which, with the measurements); the
//! second, stride-2 convs of 3×3 to 7×7 the first does not fit ([`fits_cv`]).
//!
//! A task is a band of output rows of one image. It copies the band's input rows, zero-padded,
//! into a per-thread buffer: for stride 2 each row split into its two column phases (even and
//! odd padded columns), so that every kernel tap reads eight consecutive floats. The kernel then
//! keeps a block of 6 output channels × up to 16 output columns in 12 AVX registers, and for
//! each (input channel, tap) loads up to two input vectors and broadcasts 6 weights (12 FMAs,
//! the packed GEMM's ratio; a 4 × 24 block measured 10–40% slower), over 16 input channels at
//! a time (their window stays in L1 while every block of output channels runs over it; the
//! partial sums wait in a per-thread buffer). A finished output row goes through the conv
//! epilogue (bias, activation, residual) while it is in L1.
//!
//! A second kernel ([`conv_cv`]) puts the vector lanes over output channels instead: a block of
//! 16 output channels × 6 output pixels taken in row-major order across row ends, each
//! (input channel, tap) loading two weight vectors and broadcasting 6 inputs. No output width
//! leaves its lanes empty and no stride needs a phase split, at the price of a transpose of
//! the band's sums into the output: it takes the stride-2 convs whose width the first kernel's
//! 16-column blocks do not fit, and 7×7 stride-2 stems ([`fits_cv`]).
//!
//! Invariant: every `unsafe` block here reads the band buffer, the weight and writes the output
//! within the bounds established by [`Band`] from a geometry validated by `conv2d_out_shape`.

use crate::act::{epilogue_slice, Activation, Residual};
use crate::conv::{pad_source, PaddingMode};
use crate::kernel::{cached_packing, simd, Geom, Operands, OutPtr, Scratch, Slot, PAR_MIN_MACS, WPACK};
use crate::packed::{pack_groups, packed_a_len, MR};
use rayon::prelude::*;
use std::cell::Cell;

/// Floats of input a band may hold (128 KiB): written by the fill, then read by every block of
/// output columns, so it should stay in L2.
const BAND_BUDGET: usize = 1 << 15;

/// Input channels per pass over a column block: 16 channels' window (3 rows × 2 phases × 17
/// floats) is 6.5 KiB, which every block of output channels re-reads from L1.
const CI_CHUNK: usize = 16;

/// Output channels per register block (the rest in blocks of 4, 2 and 1): the packed GEMM's
/// panel height, so the kernel reads the GEMM's packed weight (`[cin·9][MR]` per panel).
const CB: usize = MR;

/// Most vectors of output columns per register block.
const NVM: usize = 2;

/// Output columns per vector.
const LANES: usize = 8;

thread_local! {
    /// The band of padded (and for stride 2 phase-split) input rows.
    static BAND: std::cell::Cell<Vec<Vec<f32>>> = const { std::cell::Cell::new(Vec::new()) };
    /// A column block's partial sums, every output channel.
    static ACC: std::cell::Cell<Vec<Vec<f32>>> = const { std::cell::Cell::new(Vec::new()) };
    /// The channel-vector path's packed weight (`[cout / 16][cin][kh][kw][16]`).
    static WCV: std::cell::Cell<Vec<Vec<f32>>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Whether `g` takes the direct path: a 3×3 undilated ungrouped conv with stride 2, or stride 1
/// with at most [`STRIDE1_MAX_CIN`] input channels, and at most [`MAX_WEIGHT`] weights, on a CPU
/// with AVX2 + FMA, and an output width the 16-column blocks fit: at most 16 columns, or a last
/// block that leaves no more than an eighth of the row's columns unused, or with AVX-512 whole
/// 32-column blocks and whole 8-lane tails ([`wide_blocks_fit`]). Convs of fewer than
/// [`FEW_OUT`] output channels (detection heads' 9 anchors' scores, 4 box sides, 1 class) take it
/// at any stride-1 input channel count and any width.
///
/// Measured per conv against the path it replaces (1 thread, Zen 3, interleaved in one process,
/// best and median): stride 2 against im2col + the packed GEMM, 0.61–0.90× from 3→16 at 640² to
/// 256→256 at 64² (YOLOv8's 3→16, 16→32 and 32→64 stems 0.76–0.86×, 64→64 at 128² 0.81–0.83×),
/// but 1.02–1.06× at 40 columns (64→128 at 80²) and 1.35–1.4× at 20 (128→256 at 40²), where the
/// last block is half empty; stride 1 against Winograd, 0.67–0.74× at 16 input channels (16→16 at
/// 160²), 0.91–0.99× at 32, 1.35–2.2× at 64 and 128; small maps 0.54–0.61× (16→16 at 8² and 16²).
pub(crate) fn fits(g: &Geom) -> bool {
    let few_out = g.cout < FEW_OUT;
    simd()
        && !((cv_grouped(g) || cv_small(g)) && fits_cv(g))
        && g.groups == 1
        && [g.kh, g.kw] == [3, 3]
        && [g.dh, g.dw] == [1, 1]
        && g.sh == g.sw
        && (g.sh == 2 || (g.sh == 1 && (g.cin <= STRIDE1_MAX_CIN || few_out)))
        && g.cout >= 1
        && (columns_fit(g.ow) || few_out)
        && g.cout.saturating_mul(g.cin).saturating_mul(9) <= MAX_WEIGHT
}

/// Whether rows of `ow` output columns suit the pixel-vector kernel's blocks ([`fits`]): at
/// most one block, or a last block that leaves no more than an eighth of the row's columns
/// unused, or [`wide_blocks_fit`].
fn columns_fit(ow: usize) -> bool {
    let tail = (ow.div_ceil(BLOCK_COLS) * BLOCK_COLS).saturating_sub(ow);
    ow <= BLOCK_COLS || 8 * tail <= ow || wide_blocks_fit(ow)
}

/// With AVX-512, whether a row of `ow` columns is whole 32-column blocks and a tail of whole
/// 8-lane vectors (no empty lanes). Measured on Zen 5 against the channel-vector kernel that
/// took them before (1 thread, each conv in the YOLOv8n forward, warm): 64→128 and 64→64 at
/// 40 columns 0.85× and 0.88–0.90×; at 20 columns (16 + 4 of 8) 1.37–1.73×, so not those.
fn wide_blocks_fit(ow: usize) -> bool {
    crate::kernel::simd512() && ow >= ACC_COLS && ow.is_multiple_of(LANES)
}

/// Most weight floats (2 MiB) for which the direct path runs: every block of 16 output columns
/// streams the whole weight once, so past L2 it is bound by reading weights. Measured at 1
/// thread: 128→128 (147 K floats) at 32² 0.89–0.97×; 256→256 (590 K) 0.89× at 64² but 2.1–2.4× at
/// 8²; 256→512 (1.2 M) at 26² 1.34–1.39×, 512→512 at 14² 1.8–2.3×, 2048→256 at 16² 3.2×.
const MAX_WEIGHT: usize = 1 << 19;

/// Most input channels for which a stride-1 3×3 conv runs direct rather than Winograd.
const STRIDE1_MAX_CIN: usize = 16;

/// Below this many output channels a 3×3 conv runs direct whatever its input channels and
/// width: Winograd needs 16 ([`crate::winograd::eligible`]), and the im2col GEMM the rest fell
/// to shares each packed block of the image among fewer than 16 rows of weights (`M` < 16), so
/// packing dominated it. The direct kernel's blocks of 6, 4, 2 and 1 output channels read the
/// input in place. Measured on Zen 5, 1 thread, GEMM → direct (ms): 128→9 at 64² 1.45 → 0.50
/// (ORT, padding to 16 channels: 0.83), at 32² 0.45 → 0.13, at 8² 0.082 → 0.023; 128→15 at 20²
/// (a 4-column tail) 0.33 → 0.15; 256→4 at 64² 2.48 → 0.65, 256→1 2.49 → 0.52; 64→3 at 128²
/// 2.10 → 0.57; stride 2 64→2 at 128² 0.71 → 0.26; 2 threads alike (128→9 at 64², batch 8:
/// 6.4 → 2.1).
const FEW_OUT: usize = 16;

/// Output columns of a full register block.
const BLOCK_COLS: usize = NVM * LANES;

/// Columns of the partial sums kept per output channel: a wide block's (AVX-512: 32 columns in
/// two 16-lane vectors), which holds every narrower block too.
const ACC_COLS: usize = 2 * BLOCK_COLS;

/// The layout of one task's band buffer.
#[derive(Clone, Copy)]
struct Band {
    /// Floats per phase row: the output width rounded up to whole vectors, plus the taps'
    /// reach `(kw − 1) / s` (so every vector load is in bounds); for an unsplit band, the
    /// padded columns the outputs read.
    pw: usize,
    /// Phase rows per padded input row: the stride for the pixel-vector kernel, 1 (padded
    /// columns in order) for the channel-vector one.
    phases: usize,
    /// Floats per padded input row (`s` phase rows).
    row: usize,
    /// Padded input rows per band of `rows` output rows.
    in_rows: usize,
    /// Floats per input channel.
    chan: usize,
}

impl Band {
    /// The layout of an unsplit band (padded columns in order), for [`conv_cv`].
    fn unsplit(g: &Geom, rows: usize) -> Self {
        let pw = (g.ow - 1) * g.sw + g.kw;
        let in_rows = (rows - 1) * g.sh + g.kh;
        Band {
            pw,
            phases: 1,
            row: pw,
            in_rows,
            chan: in_rows * pw,
        }
    }

    fn new(g: &Geom, rows: usize) -> Self {
        let s = g.sw;
        let pw = g.ow.div_ceil(LANES) * LANES + (g.kw - 1) / s;
        let row = s * pw;
        let in_rows = (rows - 1) * g.sh + g.kh;
        Band {
            pw,
            phases: s,
            row,
            in_rows,
            chan: in_rows * row,
        }
    }
}

/// Runs the conv on the direct path (the caller checked [`fits`]); `out` is the standard-layout
/// `[n, cout, oh, ow]` output, `residual` as in the other paths' epilogues.
pub(crate) fn conv3x3(
    g: &Geom,
    mode: PaddingMode,
    ops: Operands,
    act: Activation,
    out: &mut [f32],
    residual: Option<Residual>,
) {
    let per_row = Band::new(g, 2).chan - Band::new(g, 1).chan;
    let rows = BAND_BUDGET / g.cin.saturating_mul(per_row).max(1);
    // The GEMM's packed weight (a prepared conv's cache, else packed now).
    let kk = g.cin * g.kh * g.kw;
    let (mut fresh, mut own) = (None, None);
    let wp = or_own(
        ops.packed_weight(g, &mut fresh),
        &mut own,
        &WPACK,
        packed_a_len(g.cout, kk).unwrap_or(0),
        |wp| pack_groups(ops.w, 1, g.cout, kk, wp),
    );
    let optr = OutPtr::new(out);
    for_each_band(
        g,
        mode,
        ops.x,
        rows,
        1,
        Band::new,
        |n, oy0, oy1, _, layout, buf, ahead| {
            // SAFETY: this task alone writes rows oy0..oy1 of image n (tasks are distinct
            // (image, band) pairs), which lie inside `out` by the validated geometry.
            unsafe { band(g, ops, layout, buf, wp, n, oy0, oy1, act, optr, residual, ahead) };
        },
    );
}

/// A packed weight: `got` (a prepared conv's cache or this call's scratch), or, where that
/// could not be allocated, packed by `pack` into `own`, a scratch of `slot` whose allocation
/// aborts on failure as every scratch buffer's does.
fn or_own<'a>(
    got: Option<&'a [f32]>,
    own: &'a mut Option<Scratch>,
    slot: Slot,
    len: usize,
    pack: impl Fn(&mut [f32]),
) -> &'a [f32] {
    match got {
        Some(wp) => wp,
        None => {
            let mut buf = Scratch::take(slot, len);
            pack(&mut buf);
            &*own.insert(buf)
        }
    }
}

/// Runs `run(n, oy0, oy1, split, layout, band, ahead)` for every band of output rows of every
/// image and every `split < splits` (the caller's share of the output channels), with the
/// band's padded input rows filled ([`fill`]) into a per-thread buffer laid out by
/// `layout(g, rows)`, and `ahead` the input rows of the band after it ([`Ahead`]).
/// Bands have at most `rows` rows (the caller's cache budget), of equal heights; a conv big
/// enough for several threads is cut into at least four tasks per thread, or, where its output
/// channels are split, one: each band of a split reads that split's whole weight, so bands
/// thinner than the budget multiply the weight's reads. ResNet-50's 256→256 stride-2 conv at
/// 28² (two splits of 1.2 MB at 2 threads) ran 4 bands of 4, 4, 4 and 2 rows per split, now 2
/// of 7. Measured on Zen 5, 2 threads (best ms, hot | caches flushed): 0.62–0.64 → 0.52 | 0.65
/// → 0.55–0.56; 128→128 at 56² 0.54 → 0.53; YOLOv8n's 128←64 at 80², 128←128 and 256←128 at
/// 40², RetinaNet's 256→256 at 64² even; ResNet-50 FPN's forward (interleaved, best ms)
/// 26.09–26.50 → 25.74–26.24.
#[allow(clippy::too_many_arguments)]
fn for_each_band(
    g: &Geom,
    mode: PaddingMode,
    x: &[f32],
    rows: usize,
    splits: usize,
    layout: fn(&Geom, usize) -> Band,
    run: impl Fn(usize, usize, usize, usize, &Band, &[f32], &Ahead) + Sync,
) {
    let threads = rayon::current_num_threads().max(1);
    let parallel = g.macs() >= PAR_MIN_MACS && threads > 1;
    let splits = splits.max(1);
    let rows = band_rows(g, rows, splits, if parallel { threads } else { 1 });
    let bands = g.oh.div_ceil(rows);
    let task = |t: usize| {
        let (t, split) = (t / splits, t % splits);
        let (n, b) = (t / bands, t % bands);
        let oy0 = b * rows;
        let oy1 = (oy0 + rows).min(g.oh);
        let lay = layout(g, oy1 - oy0);
        let mut buf = Scratch::take(&BAND, g.cin * lay.chan);
        let x_img = &x[n * g.cin * g.h * g.w..][..g.cin * g.h * g.w];
        fill(g, mode, &lay, x_img, oy0, &mut buf);
        let ahead = Ahead::next_band(g, x, n, oy1, rows);
        run(n, oy0, oy1, split, &lay, &buf, &ahead);
    };
    let tasks = g.n * bands * splits;
    if parallel {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// The input rows that the band after a running one reads and it does not (the next band of
/// its image, or the first of the next image: the task a thread most often runs next), which
/// the running band's kernel calls prefetch a run at a time ([`Ahead::take`]), so that the next
/// [`fill`] reads them from L2, their way there hidden behind this band's multiply-adds. The
/// fill is a copy with nothing to overlap it, and a conv's input in a forward (its producer's
/// output, several MB) comes from L3 or memory.
///
/// The prefetches go among the kernel's taps, one or two per input channel
/// ([`kernel_cv512_group`]) or a few before each block ([`band`], [`AHEAD_BURST`]): issued as
/// one burst of 24 between the channel-vector kernel's calls they filled the L1's miss buffers
/// and stalled the taps' own loads (YOLOv8n's 32←16 stride-2 conv at 320², hot, 1.37 → 1.47
/// ms). Measured on Zen 5 (no look-ahead → look-ahead, ms): that conv at 1 thread hot 1.39–1.40
/// → 1.35–1.36, input and output from memory 1.69–1.75 → 1.39–1.46 (2 threads 0.90 → 0.79), in
/// YOLOv8n's forward (traced) 1.47 → 1.35; 64←32 at 160² and 128←64 at 80² from memory +3–6%,
/// hot even; the pixel-vector kernel's 16→16 at 160² from memory 0.75 → 0.69, hot even.
/// YOLOv8n's forward at 1 thread (interleaved, best ms): 22.89–23.48 → 22.66–23.20; batch 8
/// 206.8–208.8 → 203.6–207.3; 2 threads even.
struct Ahead<'a> {
    x: &'a [f32],
    /// Where the first channel's rows start in `x`.
    base: usize,
    /// Floats from one channel's rows to the next's.
    plane: usize,
    /// Cache lines in all, and per channel (whose rows are one run).
    lines: usize,
    per_chan: usize,
    /// Most lines per [`Ahead::take`], and the next line to hand out.
    per_take: Cell<usize>,
    next: Cell<usize>,
}

/// Most lines [`band`] prefetches at once.
const AHEAD_BURST: usize = 8;

/// Fewest input channels for which [`band`] prefetches the next band's rows: with fewer, each
/// block's call is too short to hide its share (the stem 3→16 stride 2 at 640², 1 thread:
/// hot 0.80 → 0.83 ms, from memory 1.15–1.22 → 1.19–1.29).
const AHEAD_MIN_CIN: usize = 16;

/// Floats per cache line.
const LINE: usize = 16;

impl<'a> Ahead<'a> {
    /// The rows of `x` (all images of `g`'s input) that the band after the one ending at output
    /// row `oy1` (bands of `rows` rows) reads beyond that one's.
    fn next_band(g: &Geom, x: &'a [f32], n: usize, oy1: usize, rows: usize) -> Self {
        let (n, oy0) = if oy1 < g.oh { (n, oy1) } else { (n + 1, 0) };
        let oy1 = (oy0 + rows).min(g.oh);
        // Padded rows oy0·s .. (oy1 − 1)·s + kh are input rows from −pt on; the band before
        // read up to its last padded row, (oy0 − 1)·s + kh − 1.
        let read = if oy0 == 0 {
            0
        } else {
            ((oy0 - 1) * g.sh + g.kh).saturating_sub(g.pt)
        };
        let first = (oy0 * g.sh).saturating_sub(g.pt).max(read).min(g.h);
        let last = ((oy1 - 1) * g.sh + g.kh).saturating_sub(g.pt).min(g.h);
        let plane = g.h * g.w;
        let per_chan = (last.saturating_sub(first) * g.w).div_ceil(LINE);
        let images = x.len() / (g.cin * plane).max(1);
        let lines = if n < images { g.cin * per_chan } else { 0 };
        Ahead {
            x,
            base: n * g.cin * plane + first * g.w,
            plane,
            lines,
            per_chan,
            per_take: Cell::new(0),
            next: Cell::new(0),
        }
    }

    /// Spreads the lines over `takes` calls of [`Ahead::take`] of at most `most` lines each.
    fn spread(&self, takes: usize, most: usize) {
        self.per_take.set(self.lines.div_ceil(takes.max(1)).min(most));
    }

    /// Prefetches the next run of lines ([`Ahead::take`]) here and now.
    #[inline]
    fn prefetch_next(&self) {
        let (pf, lines) = self.take();
        #[cfg(target_arch = "x86_64")]
        for l in 0..lines {
            // SAFETY: a prefetch does not access memory (nor fault).
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(pf.wrapping_add(l * LINE).cast())
            };
        }
        let _ = (pf, lines);
    }

    /// The next run of lines to prefetch: its first float and its lines (within one channel's
    /// rows, so consecutive); `(null, 0)` once none are left.
    #[inline]
    fn take(&self) -> (*const f32, usize) {
        let (from, share) = (self.next.get(), self.per_take.get());
        if from >= self.lines || share == 0 {
            return (std::ptr::null(), 0);
        }
        let (c, i) = (from / self.per_chan, from % self.per_chan);
        let n = share.min(self.per_chan - i);
        self.next.set(from + n);
        // Inside the input: i·LINE < the channel's rows' floats, ending by its plane's end.
        (self.x.as_ptr().wrapping_add(self.base + c * self.plane + i * LINE), n)
    }
}

/// The rows of [`for_each_band`]'s bands: at most `rows` (the budget), cut for `threads`
/// threads (1: not parallel) to four tasks per thread, or one where the output channels are in
/// `splits` > 1 parts, and evened out (the same count of bands, each as few rows as that count
/// allows).
fn band_rows(g: &Geom, rows: usize, splits: usize, threads: usize) -> usize {
    let mut rows = rows.clamp(1, g.oh);
    if threads > 1 {
        let want = if splits > 1 {
            threads.div_ceil(splits)
        } else {
            4 * threads
        };
        if g.n < want {
            rows = rows.min(g.oh.div_ceil(want.div_ceil(g.n))).max(1);
        }
    }
    // bands of equal heights (14 rows in at most 8: 7 + 7, not 8 + 6)
    g.oh.div_ceil(g.oh.div_ceil(rows))
}

/// Channels ahead of the one [`fill`] copies whose rows it prefetches.
const FILL_AHEAD: usize = 2;

/// Fewest input floats (16 MiB, all images) for which [`fill`] prefetches: a band holds a few
/// rows of every channel, runs of a few KiB a plane apart that the hardware prefetchers do not
/// follow, so an input from memory had each run wait on it. Measured on Zen 5 (ms, 1 | 2
/// threads): seed 000's 35→16 stride-2 conv at 256², batch 8 (73 MB), 16.5–16.9 → 11.5–11.9 |
/// 8.6–8.7 → 6.0; the block's forward at batch 8 30.6–31.3 → 25.2 | 18.7–18.9 → 15.4, YOLOv8n's
/// at batch 8 239–243 → 234–237 | 130–135 → 129–130. At batch 1 the inputs (up to 9 MB here)
/// mostly stay in the L3 between ops, and prefetching measured 3–7% slower (the same block at
/// 256² 1.74–1.86 → 1.87–1.93 ms), so smaller inputs are not prefetched.
const FILL_PREFETCH_MIN: usize = 4 << 20;

/// Copies the padded input rows of output rows `oy0..` of one image into `buf` (layout `b`):
/// channel-major, each row's `s` phase rows holding padded columns `p, p + s, p + 2s, …`. The
/// padding is `mode`'s ([`pad_source`], the rule `pad2d` uses), so non-zero modes need no padded
/// copy of the input; columns past the padded width are zeros.
fn fill(g: &Geom, mode: PaddingMode, b: &Band, x_img: &[f32], oy0: usize, buf: &mut [f32]) {
    let pl = g.pl;
    // Padded columns that the outputs read; the rest of a phase row is never read for them.
    let cols = (g.ow - 1) * g.sw + g.kw;
    let edges = (0..pl.min(cols)).chain((pl + g.w).min(cols)..cols);
    // The input rows this band reads, FILL_AHEAD channels on (see FILL_PREFETCH_MIN).
    let first = (oy0 * g.sh).saturating_sub(g.pt).min(g.h);
    let last = (oy0 * g.sh + b.in_rows).saturating_sub(g.pt).min(g.h);
    let far = g.n.saturating_mul(g.cin).saturating_mul(g.h).saturating_mul(g.w) >= FILL_PREFETCH_MIN;
    for c in 0..g.cin {
        #[cfg(target_arch = "x86_64")]
        if let Some(ahead) = x_img
            .get((c + FILL_AHEAD) * g.h * g.w..)
            .filter(|_| far && c + FILL_AHEAD < g.cin)
        {
            let rows = &ahead[first * g.w..last * g.w];
            for line in rows.chunks(16) {
                // SAFETY: a prefetch of an address inside the input.
                unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
            }
        }
        let plane = &x_img[c * g.h * g.w..][..g.h * g.w];
        for r in 0..b.in_rows {
            let dst = &mut buf[c * b.chan + r * b.row..][..b.row];
            // padded row oy0·s + r is input row oy0·s + r − pt, or the mode's source for it
            let py = (oy0 * g.sh + r) as isize - g.pt as isize;
            let Some(iy) = pad_source(py, g.h, mode) else {
                dst.fill(0.0);
                continue;
            };
            let src = &plane[iy * g.w..][..g.w];
            if b.phases == 1 {
                // padded column j is input column j − pl
                let (lead, rest) = dst.split_at_mut(pl.min(b.row));
                let n = g.w.min(rest.len());
                lead.fill(0.0);
                rest[..n].copy_from_slice(&src[..n]);
                rest[n..].fill(0.0);
            } else {
                // Input column c is padded column c + pl: phase (c + pl) % 2, index (c + pl) / 2.
                // The input columns that land in the phase rows (2·pw padded columns):
                let n = g.w.min((2 * b.pw).saturating_sub(pl));
                let (ph0, ph1) = dst.split_at_mut(b.pw);
                let (even, odd) = if pl.is_multiple_of(2) { (ph0, ph1) } else { (ph1, ph0) };
                let (ie, io) = ((pl / 2).min(b.pw), pl.div_ceil(2).min(b.pw));
                let (ne, no) = (n.div_ceil(2), n / 2);
                even[..ie].fill(0.0);
                even[ie + ne..].fill(0.0);
                odd[..io].fill(0.0);
                odd[io + no..].fill(0.0);
                crate::gemm_conv::deinterleave(&src[..n], &mut even[ie..][..ne], &mut odd[io..][..no]);
            }
            if mode != PaddingMode::Zeros {
                // the padding columns, from the row itself (padded column j: phase j % s,
                // index j / s)
                for j in edges.clone() {
                    let v = pad_source(j as isize - pl as isize, g.w, mode).map_or(0.0, |k| src[k]);
                    dst[(j % b.phases) * b.pw + j / b.phases] = v;
                }
            }
        }
    }
}

/// Computes output rows `oy0..oy1` of image `n` from its filled band `buf`, block by block,
/// each row finished by the epilogue.
///
/// # Safety
/// `out` must point to the standard-layout `[n, cout, oh, ow]` output of `g`, rows `oy0..oy1`
/// of image `n` written by no other thread during the call; the CPU must have AVX2 + FMA.
#[allow(clippy::too_many_arguments)]
unsafe fn band(
    g: &Geom,
    ops: Operands,
    b: &Band,
    buf: &[f32],
    wp: &[f32],
    n: usize,
    oy0: usize,
    oy1: usize,
    act: Activation,
    out: OutPtr,
    residual: Option<Residual>,
    ahead: &Ahead,
) {
    let hw = g.oh * g.ow;
    let kk = g.cin * g.kh * g.kw;
    let wide = crate::kernel::simd512();
    // A few lines of the next band's rows before each block's call (see `Ahead`).
    let col_blocks = g.ow.div_ceil(if wide { ACC_COLS } else { NVM * LANES });
    // blocks of CB output channels, the rest (under CB) in blocks of 4, 2 and 1: its bits
    let co_blocks = g.cout / CB + (g.cout % CB).count_ones() as usize;
    let takes = (oy1 - oy0) * col_blocks * g.cin.div_ceil(CI_CHUNK) * co_blocks;
    ahead.spread(takes, if g.cin >= AHEAD_MIN_CIN { AHEAD_BURST } else { 0 });
    let at = |c: usize, oy: usize| (n * g.cout + c) * hw + oy * g.ow;
    let mut acc = Scratch::take(&ACC, g.cout * ACC_COLS);
    for oy in oy0..oy1 {
        let r0 = (oy - oy0) * g.sh;
        let mut x0 = 0;
        while x0 < g.ow {
            let left = g.ow - x0;
            // With AVX-512, 32 columns (two 16-lane vectors per channel) while that many are
            // left; then 16 or 8 as without it.
            let nv = if wide && left >= ACC_COLS {
                ACC_COLS / LANES
            } else {
                left.div_ceil(LANES).min(NVM)
            };
            let cols = left.min(nv * LANES);
            // Input channels in chunks whose window (3 rows × S phases × the block's columns)
            // stays in L1 while every output channel block runs over it; the partial sums
            // wait in `acc`.
            let mut ci0 = 0;
            while ci0 < g.cin {
                let nci = (g.cin - ci0).min(CI_CHUNK);
                let src = &buf[ci0 * b.chan + r0 * b.row + x0..];
                let mut co = 0;
                while co < g.cout {
                    let cb = block_channels(g.cout - co);
                    // Block co.. of cb channels lies inside one MR-channel panel (whole
                    // blocks are panels; the 4/2/1 rest share the last, zero-padded one).
                    let panel = &wp[(co / MR) * MR * kk..][..MR * kk];
                    let w = &panel[ci0 * 9 * MR + co % MR..(ci0 + nci) * 9 * MR];
                    let a = &mut acc[co * ACC_COLS..][..cb * ACC_COLS];
                    let first = ci0 == 0;
                    ahead.prefetch_next();
                    // SAFETY: the band holds cin channels of in_rows rows of b.row floats, and
                    // row r0 + 2 < in_rows, x0 + nv·8 + 1 ≤ pw (Band::new; a 32-column block
                    // only where 32 columns are left, x0 + 32 ≤ ow), so every read is
                    // inside `src`; `w` holds cb channels' packed taps of nci input channels;
                    // the CPU check is the caller's.
                    unsafe {
                        match cb {
                            CB => block::<CB>(nv, g.sw, src, b, nci, w, a, first),
                            4 => block::<4>(nv, g.sw, src, b, nci, w, a, first),
                            2 => block::<2>(nv, g.sw, src, b, nci, w, a, first),
                            _ => block::<1>(nv, g.sw, src, b, nci, w, a, first),
                        }
                    }
                    co += cb;
                }
                ci0 += nci;
            }
            for c in 0..g.cout {
                // SAFETY: columns x0.. of row oy of channel c of image n: inside the output
                // and this task's own (the caller's contract).
                let dst = unsafe { std::slice::from_raw_parts_mut(out.get().add(at(c, oy) + x0), cols) };
                let src = &acc[c * ACC_COLS..][..cols];
                // A whole block as a fixed-size copy (vector moves, not a memmove call).
                if let (Ok(d), Ok(s)) = (
                    <&mut [f32; BLOCK_COLS]>::try_from(&mut *dst),
                    <&[f32; BLOCK_COLS]>::try_from(src),
                ) {
                    *d = *s;
                } else if let (Ok(d), Ok(s)) = (
                    <&mut [f32; ACC_COLS]>::try_from(&mut *dst),
                    <&[f32; ACC_COLS]>::try_from(src),
                ) {
                    *d = *s;
                } else {
                    dst.copy_from_slice(src);
                }
            }
            x0 += cols;
        }
        for c in 0..g.cout {
            // SAFETY: as above, the whole row.
            let row = unsafe { std::slice::from_raw_parts_mut(out.get().add(at(c, oy)), g.ow) };
            epilogue_slice(row, ops.bias[c], act, residual.map(|r| r.at(at(c, oy), g.ow)));
        }
    }
}

/// Output channels of the register block that starts `left` channels before the last: 6, then
/// 4, 2 or 1 for the rest.
fn block_channels(left: usize) -> usize {
    match left {
        CB.. => CB,
        4.. => 4,
        2 | 3 => 2,
        _ => 1,
    }
}

/// [`kernel`] with `C` output channels, `nv` 8-column vectors of columns (4: the AVX-512
/// 32-column block, which the caller picks only where `simd512()` says) and stride `s`.
///
/// # Safety
/// As for [`kernel`].
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn block<const C: usize>(
    nv: usize,
    s: usize,
    src: &[f32],
    b: &Band,
    cin: usize,
    w: &[f32],
    acc: &mut [f32],
    first: bool,
) {
    // SAFETY: the caller's contract is kernel's; the 16-lane kernel only where `simd512()`
    // says the CPU has AVX-512F.
    unsafe {
        if nv > NVM {
            return match s {
                1 => kernel512::<C, 2, 1>(src, b, cin, w, acc, first),
                _ => kernel512::<C, 2, 2>(src, b, cin, w, acc, first),
            };
        }
        if nv == NVM && crate::kernel::simd512() {
            return match s {
                1 => kernel512::<C, 1, 1>(src, b, cin, w, acc, first),
                _ => kernel512::<C, 1, 2>(src, b, cin, w, acc, first),
            };
        }
        match (nv, s) {
            (2, 1) => kernel::<C, 2, 1>(src, b, cin, w, acc, first),
            (_, 1) => kernel::<C, 1, 1>(src, b, cin, w, acc, first),
            (2, _) => kernel::<C, 2, 2>(src, b, cin, w, acc, first),
            (_, _) => kernel::<C, 1, 2>(src, b, cin, w, acc, first),
        }
    }
}

/// Defines a pixel-vector register-block kernel for one vector width: the AVX2 [`kernel`] and
/// the AVX-512 [`kernel512`] are this one body over their own intrinsics. `$three_sets(C, NV)`
/// says when the `C·NV` accumulators are too few FMA chains to hide the FMA's latency: each
/// kernel row then sums into a set of its own, added up at the end. `$min_cols(NV)` is the
/// least of each accumulator row the debug check asks `acc` to hold.
macro_rules! pixel_kernel {
    (
        $(#[$attr:meta])*
        $name:ident, $features:literal, $lanes:expr,
        $zero:ident, $load:ident, $store:ident, $splat:ident, $fma:ident, $add:ident,
        $three_sets:expr, $min_cols:expr
    ) => {
        $(#[$attr])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const C: usize, const NV: usize, const S: usize>(
            src: &[f32],
            b: &Band,
            cin: usize,
            w: &[f32],
            acc: &mut [f32],
            first: bool,
        ) {
            use std::arch::x86_64::*;
            debug_assert!(
                C <= MR && w.len() >= cin * 9 * MR - (MR - C) && acc.len() >= (C - 1) * ACC_COLS + $min_cols(NV)
            );
            let (src, w) = (src.as_ptr(), w.as_ptr());
            let sets = if $three_sets(C, NV) { 3 } else { 1 };
            let mut sa = [[[$zero(); NV]; C]; 3];
            // SAFETY: the reads stay within the bounds of the contract (NV vectors from each
            // tap's start); the loads and stores of `acc` stay within its C rows of NV vectors.
            unsafe {
                for ci in 0..cin {
                    let chan = src.add(ci * b.chan);
                    let wc = w.add(ci * 9 * MR);
                    for ky in 0..3 {
                        let row = chan.add(ky * b.row);
                        let a = &mut sa[if sets == 3 { ky } else { 0 }];
                        for kx in 0..3 {
                            // padded column x·S + kx is phase kx % S, index x + kx / S
                            let p = row.add((kx % S) * b.pw + kx / S);
                            let mut v = [$zero(); NV];
                            for (i, v) in v.iter_mut().enumerate() {
                                *v = $load(p.add(i * $lanes));
                            }
                            for (j, aj) in a.iter_mut().enumerate() {
                                let wv = $splat(*wc.add((ky * 3 + kx) * MR + j));
                                for (i, v) in v.iter().enumerate() {
                                    aj[i] = $fma(*v, wv, aj[i]);
                                }
                            }
                        }
                    }
                }
                let mut a = sa[0];
                if sets == 3 {
                    for (j, aj) in a.iter_mut().enumerate() {
                        for (i, v) in aj.iter_mut().enumerate() {
                            *v = $add(*v, $add(sa[1][j][i], sa[2][j][i]));
                        }
                    }
                }
                // This pass's sums start from zero and are added to the earlier passes' at the
                // end: a blocked sum (CI_CHUNK channels' taps, then one term per pass), not one
                // running sum over every input channel, whose rounding error grew past twice
                // PyTorch float32's on FCOS's 256→4 box conv.
                if !first {
                    for (j, aj) in a.iter_mut().enumerate() {
                        for (i, v) in aj.iter_mut().enumerate() {
                            *v = $add(*v, $load(acc.as_ptr().add(j * ACC_COLS + i * $lanes)));
                        }
                    }
                }
                for (j, aj) in a.iter().enumerate() {
                    for (i, v) in aj.iter().enumerate() {
                        $store(acc.as_mut_ptr().add(j * ACC_COLS + i * $lanes), *v);
                    }
                }
            }
        }
    };
}

pixel_kernel!(
    /// The register block: `acc[j·ACC_COLS + v·8 + l]` = output channel `j`, column `v·8 + l`
    /// of the block whose (ky = 0, kx = 0) input is at `src` (channel 0), summed over every
    /// input channel and tap. With 1 or 2 channels, a sum per kernel row (YOLOv8n's 16→32
    /// stride-2 conv, whose last block has 2 channels: 0.91–0.94× the time).
    ///
    /// # Safety
    /// AVX2 + FMA; `src` (a slice, so its start is in bounds) valid for reads of `cin` channels
    /// (stride `b.chan`) × 3 rows (stride `b.row`) × `S` phase rows (stride `b.pw`) × `NV·8 + 1`
    /// floats; `w` starts at the first of `C` adjacent rows of an [`MR`]-row panel of the packed
    /// weight (`[cin][3][3][MR]`, `packed::pack_a`) and holds `cin` input channels' taps of them;
    /// `acc` holds `C` rows of partial sums, [`ACC_COLS`] apart, of which this block uses `NV·8`.
    kernel, "avx2,fma", LANES,
    _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
    |c: usize, _nv: usize| c <= 2, |_nv: usize| NVM * LANES
);

pixel_kernel!(
    /// [`kernel`] on AVX-512: `NV` 16-lane vectors per output channel, so a block of 16 or (with
    /// `NV` = 2) 32 columns. Below 8 accumulators (one vector of up to 6 channels, two of up to
    /// 2), a sum per kernel row (up to 18 of the 32 registers). Two vectors load 2 inputs per 6
    /// broadcasts and 12 FMAs, the packed GEMM's ratio.
    ///
    /// Measured on Zen 5 (1 thread, forwards interleaved with the AVX2 kernel's): the 16-column
    /// block took seed 000's `pyramid_block(64, 64)` at 128², two thirds of whose forward was
    /// this kernel, from 12.4–12.8 to 8.8–9.2 ms and `pyramid_block(3, 16)` at 256² from 2.7 to
    /// 2.15–2.24 ms; the 32-column block then (in a slow phase of the VM, both builds
    /// interleaved) `pyramid_block(64, 64)` 12.0–12.1 → 9.9 ms at 1 thread and 6.2–6.4 → 5.1 at
    /// 2, `pyramid_block(3, 16)` at 256² 1.75 → 1.57 ms at 2 threads, YOLOv8n 3% at 1 thread.
    ///
    /// # Safety
    /// As for [`kernel`] with its reads extended to `NV·16 + 1` floats per phase row, and the
    /// CPU must have AVX-512F.
    kernel512, "avx512f,avx2,fma", 16,
    _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
    |c: usize, nv: usize| c * nv < 8, |nv: usize| nv * 16
);

/// Output channels per channel-vector block: two vectors, so 12 accumulators with [`CV_PX`].
const CV_CO: usize = 16;

/// Output pixels per channel-vector block.
const CV_PX: usize = 6;

/// Input channels per pass of the channel-vector kernel: 32 channels' weights of one block of
/// output channels (3×3: 18 KiB) stay in L1 while every pixel block of the band runs over them.
const CV_CI: usize = 32;

/// Floats of a channel-vector band's sums (256 KiB): read and written once per pass of input
/// channels, so they should stay in L2.
const CV_ACC_BUDGET: usize = 1 << 16;

/// Most taps (`kh · kw`) of a channel-vector conv: a 7×7 stem.
const CV_MAX_TAPS: usize = 49;

/// Whether `g` takes the channel-vector path ([`conv_cv`]) when it does not take the
/// pixel-vector one ([`fits`]): a stride-2 ungrouped undilated conv with a kernel of 9 to 49 taps (3×3,
/// a 7×7 stem), output channels a multiple of 16, at most [`CV_MAX_WEIGHT`] weights and at
/// least [`CV_MIN_PIXELS`] output pixels, on AVX2 + FMA. With AVX-512 and 32 or more output
/// channels ([`cv_grouped`]) also stride-1 3×3 convs of 17 to [`CV_STRIDE1_MAX_CIN`] input
/// channels and up to [`CV_MAX_WEIGHT_GROUPED`] weights, stride-2 convs of at most
/// [`CV_SMALL_OUT`] output pixels at any size up to [`CV_MAX_WEIGHT_SMALL_OUT`] weights, and
/// [`fits`] defers to it.
///
/// Measured per conv against the path it replaces (Zen 3, interleaved in one process, best;
/// 1 and 2 threads): stride-2 3×3 convs whose output width leaves the pixel-vector kernel's
/// last block mostly empty, against im2col + the packed GEMM: YOLOv8n's 64→64 at 80² (40
/// columns) 0.78–0.90×, 128→128 at 40² (20 columns) 0.88–0.91×, ResNet's 128→128 at 56² (28
/// columns) 0.81–0.92×, 64→128 at 80² 0.89–1.05×; the 7×7 stride-2 stem 3→64 at 224² 0.82–0.97×.
/// Refused as measured slower: more weights (128→256 at 40² 0.92–1.13×, 256→256 at 64² 1.1×,
/// 256→512 and up 1.7–2.7×: a weight vector serves 6 pixels here against the GEMM's 16);
/// stride 1 against Winograd (1.05–1.55× from 32 to 128 channels); 1×1 against the GEMM
/// (1.3–2×).
pub(crate) fn fits_cv(g: &Geom) -> bool {
    let grouped = cv_grouped(g);
    let stride2 = [g.sh, g.sw] == [2, 2];
    let pixels = g.oh.saturating_mul(g.ow);
    let small_out = grouped && stride2 && pixels <= CV_SMALL_OUT;
    let s1_3x3 = grouped && [g.sh, g.sw] == [1, 1] && [g.kh, g.kw] == [3, 3];
    let small_map = g.cout.saturating_mul(g.cin).saturating_mul(9) <= CV_STRIDE1_SMALL_MAX_WEIGHT
        && (pixels <= CV_STRIDE1_SMALL_PIXELS
            || (pixels <= CV_STRIDE1_SMALL_PIXELS_FEW_MACS && g.macs() < crate::kernel::PAR_MIN_MACS));
    let small = cv_small(g);
    let stride =
        stride2 || small || (s1_3x3 && ((g.cin > STRIDE1_MAX_CIN && g.cin <= CV_STRIDE1_MAX_CIN) || small_map));
    let max_weight = if small_out {
        CV_MAX_WEIGHT_SMALL_OUT
    } else if grouped {
        CV_MAX_WEIGHT_GROUPED
    } else {
        CV_MAX_WEIGHT
    };
    simd()
        && g.groups == 1
        && [g.dh, g.dw] == [1, 1]
        && stride
        && (9..=CV_MAX_TAPS).contains(&g.kh.saturating_mul(g.kw))
        && g.cout.is_multiple_of(CV_CO)
        && g.cout >= CV_CO
        && (pixels >= CV_MIN_PIXELS || small_out || small)
        && g.cout.saturating_mul(g.cin).saturating_mul(g.kh * g.kw) <= max_weight
}

/// Whether `g` is a small 3×3 conv (under [`crate::kernel::PAR_MIN_MACS`] multiply-adds per
/// image, so on one thread) that the channel-vector kernel takes with AVX-512 at any count of
/// output-channel blocks, from the pixel-vector kernel ([`fits`]) or the im2col GEMM: a stride-2
/// conv of at most [`CV_SMALL_S2_PIXELS`] output pixels; a stride-1 one of fewer than
/// [`CV_MIN_PIXELS`] output pixels and at most [`CV_SMALL_S1_MAX_WEIGHT`] weights; a stride-1
/// one of 16 output channels and at most [`STRIDE1_MAX_CIN`] input channels whose width the
/// pixel-vector kernel's blocks do not fit ([`columns_fit`]: the GEMM took those). On maps this
/// small a row of 8–16 pixels leaves half of the pixel-vector kernel's lanes empty, while the
/// channel-vector kernel fills its lanes with output channels. Measured on Zen 5, 1 thread, hot,
/// before → after (µs): stride 1 16→16 at 4² 2.9 → 1.5, at 8² 5.6 → 3.7 (batch 8 45 → 28),
/// at 20² (GEMM before) 46.7 → 15.1, at 26² 70.5 → 25.4; 32→32 at 8² 21.9 → 8.0, 16→32 19.4 →
/// 6.0, 48→48 36.4 → 15.2; stride 2 16→16 at 16² 7.6 → 4.2, at 32² 12.7 → 10.7, 3→16 at 32²
/// 3.9 → 3.2, 35→16 at 32² 26.8 → 23.4. Left as they were, measured even or slower on it:
/// stride 1 at 10² to 16² (16→16 7.8 → 8.2 at 13², 9.1 → 9.7 at 16²; 32→32 at 10² even),
/// 64→64 at 8² (24 → 26), 24→16 at 26² (30.8 → 35.1), stride 2 3→16 at 64² (9.8 → 10.7).
fn cv_small(g: &Geom) -> bool {
    let pixels = g.oh.saturating_mul(g.ow);
    let per_image = g.macs() / g.n.max(1);
    let weight = g.cout.saturating_mul(g.cin).saturating_mul(9);
    let s1 = [g.sh, g.sw] == [1, 1];
    crate::kernel::simd512()
        && [g.kh, g.kw] == [3, 3]
        && per_image < crate::kernel::PAR_MIN_MACS
        && (([g.sh, g.sw] == [2, 2] && pixels <= CV_SMALL_S2_PIXELS)
            || (s1 && pixels < CV_MIN_PIXELS && weight <= CV_SMALL_S1_MAX_WEIGHT)
            || (s1 && g.cout == CV_CO && g.cin <= STRIDE1_MAX_CIN && !columns_fit(g.ow)))
}

/// Most output pixels per image of a small stride-2 conv on the channel-vector kernel
/// ([`cv_small`]).
const CV_SMALL_S2_PIXELS: usize = 16 * 16;

/// Most weight floats of a small stride-1 conv on the channel-vector kernel ([`cv_small`]):
/// 48→48.
const CV_SMALL_S1_MAX_WEIGHT: usize = 48 * 48 * 9;

/// Most output pixels per image of a stride-2 conv that the grouped channel-vector kernel takes
/// whatever its size ([`fits_cv`]; up to [`CV_MAX_WEIGHT_SMALL_OUT`] weights). The GEMM fell to
/// 20–140 GFLOP/s on such outputs (49 columns fill 49 of 64 lanes, and each packed column block
/// serves every row of a 2–9 MB weight), where the channel-vector kernel keeps whole vectors
/// of output channels. Measured on Zen 5 (GEMM → channel-vector, ms, 1 | 2 threads): ResNet-50's
/// 512→512 at 14² 1.65 → 1.06 | 1.12 → 0.77 (batch 8 13.0 → 8.6 | 6.8 → 4.5), 256→256 at 14²
/// 0.49 → 0.29 | 0.42 → 0.23, seed 003's 256→512 at 16² 0.39 → 0.19 | 0.26 → 0.16, RetinaNet's
/// P6 → P7 256→256 at 8² 0.24 → 0.10 | 0.19 → 0.09 and at 4² 0.21 → 0.04 | 0.17 → 0.05. Not
/// at stride 1, where it beat Winograd at 7² on 1 thread only (512→512 1.18 → 1.05 ms, but
/// 0.67 → 0.77 on 2 and 3.1 → 4.4 at batch 8), nor for 1×1 convs at 7² (the GEMM's 0.56 ms
/// against 0.67 for 512→2048).
const CV_SMALL_OUT: usize = 64;

/// Most weight floats (16 MiB) for a small-output stride-2 conv on the channel-vector kernel
/// ([`CV_SMALL_OUT`]): 512→512 (2.4 M) gains, 512→2048 (9.4 M) lost at 2 threads (3.4 → 4.6
/// ms at 14²).
const CV_MAX_WEIGHT_SMALL_OUT: usize = 1 << 22;

/// Output-channel splits of a channel-vector conv's tasks: with several threads and a weight of
/// 64 Ki floats or more, one per thread (at least a group of [`CV_NB`] blocks each), so that
/// fewer, taller bands each read only their share of the weight. Bands alone cut ResNet-50's
/// 256→256 stride-2 conv (14 output rows) into 7 bands of 2 rows at 2 threads, each reading the
/// whole 2.4 MB weight. Measured on Zen 5, 2 threads, per conv in the forward: YOLOv8n's
/// 128→256 s2 at 40² 0.68 → 0.60 ms, 128→128 s2 at 40² 0.39–0.42 → 0.33 ms; ResNet-50's
/// 256→256 s2 at 28² unchanged (0.76 ms); whole forwards within the VM's noise.
fn cv_splits(g: &Geom, panels: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let big = g.cout.saturating_mul(g.cin).saturating_mul(g.kh * g.kw) >= CV_SPLIT_MIN_WEIGHT;
    if threads < 2 || g.macs() < PAR_MIN_MACS || !big || !crate::kernel::simd512() {
        return 1;
    }
    let pixels = g.oh.saturating_mul(g.ow);
    let weight = g.cout.saturating_mul(g.cin).saturating_mul(g.kh * g.kw);
    if g.n == 1 && pixels <= CV_SMALL_OUT && weight >= CV_SPLIT_ALL_MIN_WEIGHT {
        // Enough splits that the image is one band (`for_each_band` wants four tasks per
        // thread): each task reads its share of the weight once.
        return (4 * threads).min(panels / CV_NB).max(1);
    }
    threads.min(panels / CV_NB).max(1)
}

/// Fewest weight floats (8 MiB) of a one-image small-output conv ([`CV_SMALL_OUT`]) that
/// [`cv_splits`] splits into four tasks per thread by output channels alone, where one split
/// per thread left bands of 2 rows, each reading its split's whole weight from the L3 or
/// memory. Measured on Zen 5, 2 threads, hot (ms): ResNet-50's stride-2 512→512 at 14² (2.4 M
/// weights) 0.737 → 0.650; but 256→256 at 16² (590 K) 0.197 → 0.211, and at batch 4 512→512
/// 2.17 → 2.62 (every task fills its own copy of the band).
const CV_SPLIT_ALL_MIN_WEIGHT: usize = 1 << 21;

/// Fewest weight floats for which [`cv_splits`] splits output channels.
const CV_SPLIT_MIN_WEIGHT: usize = 1 << 16;

/// Whether the channel-vector path would run `g` on the AVX-512 grouped kernel
/// ([`kernel_cv512_group`]): at least two blocks of 16 output channels. Where it would, it
/// also takes stride-2 convs from the pixel-vector kernel ([`fits`]), stride-1 3×3 convs of
/// 17 to [`CV_STRIDE1_MAX_CIN`] input channels from Winograd, and weights up to
/// [`CV_MAX_WEIGHT_GROUPED`]. Measured on Zen 5, 1 thread, each conv in the forward (before →
/// after, ms): YOLOv8n's stride-2 64→128 at 80² 1.57 → 1.17, 64→64 at 80² 0.84 → 0.69, 32→64
/// at 160² 1.36 → 1.25, 128→128 at 40² 0.97 → 0.61 (the 16-channel kernel before),
/// 128→256 at 40² (GEMM before) 1.48 → 1.15, 16→32 at 320² 1.72 → 1.68; its stride-1 32→32
/// at 80² against Winograd 0.73 → 0.61 each; ResNet-50's stride-2 256→256 at 28² (GEMM
/// before) 1.64 → 1.05, RetinaNet's at 64² 6.3 → 5.5, 128→128 at 56² and 128² equal or
/// better. Not taken, as measured slower: 16 output channels (one block: the stem 3→16 at
/// 640² 1.6 → 1.9, stride-1 16→16 at 160² 1.34 → 2.05 per pair), stride-1 64→64 at 40²
/// against Winograd (0.52 → 0.58 each); 512→512 at 14² and 32² (2.4 M weights) measured
/// even.
fn cv_grouped(g: &Geom) -> bool {
    crate::kernel::simd512() && g.cout >= CV_NB_MIN * CV_CO
}

/// Most input channels of a stride-1 conv the grouped channel-vector kernel takes from
/// Winograd (whose transforms dominate at few channels; see [`cv_grouped`]). 24, not 32, since
/// Winograd's GEMMs run on the AVX-512 tile (Zen 5, channel-vector → Winograd, ms, 1 | 2
/// threads): 32→32 at 80² 0.51 → 0.42 | 0.263 → 0.232, at 160² 2.12 → 1.41 | 1.13 → 0.77, at
/// 40² 0.134 → 0.124; 24→24 at 64² and 160² even.
const CV_STRIDE1_MAX_CIN: usize = 24;

/// Most output pixels per image of a stride-1 3×3 conv of up to
/// [`CV_STRIDE1_SMALL_MAX_WEIGHT`] weights that the grouped channel-vector kernel takes from
/// Winograd, whose few tiles there (13²: 49 of them) leave its GEMMs' lanes part empty. It was
/// 26² before Winograd's GEMMs ran on the AVX-512 tile; since then (Zen 5, channel-vector →
/// Winograd, ms, 1 | 2 threads, best of 3): 64→64 at 13² 0.061 → 0.061 (even, kept), at 20²
/// 0.128 → 0.107 | 0.085 → 0.072, at 26² 0.214 → 0.168 | 0.134 → 0.102, 128→64 at 13² 0.116 →
/// 0.106 | 0.080 → 0.064, 64→128 at 26² 0.415 → 0.312 | 0.26 → 0.175, 48→48 at 16² 0.047 →
/// 0.041 | 0.035 → 0.027, 64→32 at 26² 0.113 → 0.096 | 0.080 → 0.064.
const CV_STRIDE1_SMALL_PIXELS: usize = 13 * 13;

/// Most output pixels per image of a stride-1 3×3 conv too small for Winograd's work gate
/// (fewer multiply-adds than [`crate::kernel::PAR_MIN_MACS`]: it would run on the im2col GEMM)
/// that the small-map rule takes: 32→32 at 10² 0.040 ms on the GEMM, 0.011 here.
const CV_STRIDE1_SMALL_PIXELS_FEW_MACS: usize = 26 * 26;

/// Most weight floats of a stride-1 conv the small-map rule takes ([`CV_STRIDE1_SMALL_PIXELS`]):
/// 128→64 and 64→128.
const CV_STRIDE1_SMALL_MAX_WEIGHT: usize = 128 * 64 * 9;

/// Most weight floats (4 MiB) for the grouped channel-vector kernel (see [`cv_grouped`]).
const CV_MAX_WEIGHT_GROUPED: usize = 1 << 20;

/// Most weight floats (640 KiB) for which the channel-vector path runs (128→128 3×3 is 147 K).
const CV_MAX_WEIGHT: usize = 160 * 1024;

/// Fewest output pixels per image for which the channel-vector path runs (a band's pixel
/// blocks are what reuse each weight vector; the smallest measured win was 400 pixels).
const CV_MIN_PIXELS: usize = 100;

/// The direct conv with the vector lanes over output channels: a register block is 16 output
/// channels × 6 output pixels, the pixels taken in row-major order across row ends, so no
/// output width leaves lanes empty and no stride needs its columns split; each (input channel,
/// tap) loads two weight vectors and broadcasts 6 inputs (12 FMAs, as the pixel-vector kernel).
/// The blocks' sums wait channel-minor in a per-thread buffer; a finished band is transposed
/// into the output's rows, each finished by the conv epilogue.
pub(crate) fn conv_cv(
    g: &Geom,
    mode: PaddingMode,
    ops: Operands,
    act: Activation,
    out: &mut [f32],
    residual: Option<Residual>,
) {
    // A band's rows: one pass's input channels of it stay in L2 (every block of output channels
    // re-reads them), and so do its sums (every pass re-reads them); the weight is read once per
    // band, so bands are as tall as those allow.
    let per_row = Band::unsplit(g, 2).chan - Band::unsplit(g, 1).chan;
    let rows_in = BAND_BUDGET / g.cin.min(CV_CI).saturating_mul(per_row).max(1);
    let rows_acc = CV_ACC_BUDGET / g.ow.saturating_mul(g.cout).max(1);
    // The packed weight: a prepared conv's cache, else packed now.
    let len = g.cout * g.cin * g.kh * g.kw;
    let pack = |wp: &mut [f32]| pack_cv(g, ops.w, wp);
    let (mut fresh, mut own) = (None, None);
    let wp = or_own(
        cached_packing(ops.wpack_cv, len, &WCV, &mut fresh, pack),
        &mut own,
        &WCV,
        len,
        pack,
    );
    let optr = OutPtr::new(out);
    let panels = g.cout / CV_CO;
    let splits = cv_splits(g, panels);
    for_each_band(
        g,
        mode,
        ops.x,
        rows_in.min(rows_acc),
        splits,
        Band::unsplit,
        |n, oy0, oy1, split, layout, buf, ahead| {
            // Whole groups of blocks per split where there are enough of them.
            let edge = |s: usize| ((s * panels / splits + CV_NB / 2) / CV_NB * CV_NB).min(panels);
            let range = (edge(split), if split + 1 == splits { panels } else { edge(split + 1) });
            // SAFETY: this task alone writes rows oy0..oy1 of its channels of image n (tasks
            // are distinct (image, band, split) triples, splits disjoint ranges of blocks),
            // which lie inside `out` by the validated geometry.
            unsafe { band_cv(g, ops, layout, buf, wp, n, oy0, oy1, range, act, optr, residual, ahead) };
        },
    );
}

/// The weight packed by [`pack_cv`]: a prepared conv's cache, else packed now into `fresh` (a
/// per-thread scratch). `None` if it cannot be allocated, or `g`'s output channels are not
/// whole blocks of 16.
pub(crate) fn cv_weight<'a>(g: &Geom, ops: &Operands<'a>, fresh: &'a mut Option<Scratch>) -> Option<&'a [f32]> {
    if !g.cout.is_multiple_of(CV_CO) || g.groups != 1 {
        return None;
    }
    let len = g.cout.checked_mul(g.cin)?.checked_mul(g.kh * g.kw)?;
    let w = ops.w;
    cached_packing(ops.wpack_cv, len, &WCV, fresh, |wp| pack_cv(g, w, wp))
}

/// The weight `[cout][cin][kh][kw]` packed for [`kernel_cv`]: per block of 16 output channels,
/// `[cin][kh][kw][16]`, so a tap's two weight vectors are adjacent. For a 1×1 conv, that is
/// its transpose (`[cin][cout]`) packed by panels of 16 columns, which
/// [`crate::packed::gemm_columns`] reads.
fn pack_cv(g: &Geom, w: &[f32], wp: &mut [f32]) {
    let kk = g.cin * g.kh * g.kw;
    for (p, dst) in wp.chunks_exact_mut(CV_CO * kk).take(g.cout / CV_CO).enumerate() {
        for l in 0..CV_CO {
            for (t, &v) in w[(p * CV_CO + l) * kk..][..kk].iter().enumerate() {
                dst[t * CV_CO + l] = v;
            }
        }
    }
}

/// Computes output rows `oy0..oy1` of image `n`, output channels `16·p_lo..16·p_hi` (blocks
/// `p_lo..p_hi`), from its filled unsplit band `buf` on the channel-vector kernel, then
/// transposes them into the output, each row finished by the epilogue.
///
/// # Safety
/// As for [`band`].
#[allow(clippy::too_many_arguments)]
unsafe fn band_cv(
    g: &Geom,
    ops: Operands,
    b: &Band,
    buf: &[f32],
    wp: &[f32],
    n: usize,
    oy0: usize,
    oy1: usize,
    (p_lo, p_hi): (usize, usize),
    act: Activation,
    out: OutPtr,
    residual: Option<Residual>,
    ahead: &Ahead,
) {
    let taps = g.kh * g.kw;
    let kk = g.cin * taps;
    let npx = (oy1 - oy0) * g.ow;
    let npx_pad = npx.next_multiple_of(CV_PX);
    let mut tap_off = [0usize; CV_MAX_TAPS];
    for (t, o) in tap_off.iter_mut().take(taps).enumerate() {
        *o = (t / g.kw) * b.row + t % g.kw;
    }
    let tap_off = &tap_off[..taps];
    let wide = crate::kernel::simd512();
    // The sums of this task's blocks: block p's from (p − p_lo)·npx_pad·16 on.
    let mut acc = Scratch::take(&ACC, (p_hi - p_lo) * npx_pad * CV_CO);
    let mut ci0 = 0;
    // With AVX-512, blocks of 16 output channels in groups (a last single block runs alone).
    let groups = || cv_groups(p_lo, p_hi).filter(|_| wide);
    // A run of the next band's rows per call of the grouped kernel (per pass and block of
    // pixels, one call per group), which prefetches it among its taps.
    ahead.spread(
        g.cin.div_ceil(CV_CI) * npx.div_ceil(CV_PX) * groups().count(),
        2 * g.cin.min(CV_CI),
    );
    // The pixel offsets of the block of 6 from pixel px0 (the last block repeats its last
    // pixel: its rows of the sums are past npx).
    let block_offs = |px0: usize| {
        let mut offs = [0usize; CV_PX];
        for (j, o) in offs.iter_mut().enumerate() {
            let px = (px0 + j).min(npx - 1);
            *o = (px / g.ow) * g.sh * b.row + (px % g.ow) * g.sw;
        }
        offs
    };
    while ci0 < g.cin {
        let nci = (g.cin - ci0).min(CV_CI);
        let src = &buf[ci0 * b.chan..];
        // the blocks past the groups run alone, below
        let mut alone = p_lo;
        for (p0, nb) in groups() {
            alone = p0 + nb;
            let run = match nb {
                2 => kernel_cv512_group::<2>,
                3 => kernel_cv512_group::<3>,
                _ => kernel_cv512_group::<4>,
            };
            // Blocks p0..p0 + nb: their weights from channel ci0 on, and their sums.
            let w = &wp[p0 * CV_CO * kk + ci0 * taps * CV_CO..];
            let sums = &mut acc[(p0 - p_lo) * npx_pad * CV_CO..];
            debug_assert!(w.len() > (nb - 1) * CV_CO * kk + (nci * taps - 1) * CV_CO);
            debug_assert!(sums.len() >= (nb - 1) * npx_pad * CV_CO + npx_pad * CV_CO);
            let mut px0 = 0;
            while px0 < npx {
                // SAFETY: as for the single-block kernel below, for each of the nb blocks:
                // block b's weights (nci channels' taps of 16) start b·16·kk floats into `w`
                // and its sums (npx_pad ≥ px0 + 6 rows of 16) b·npx_pad·16 floats into `sums`,
                // both inside (p0 + nb ≤ p_hi); `wide` says the CPU has AVX-512F.
                unsafe {
                    run(
                        src,
                        &block_offs(px0),
                        tap_off,
                        nci,
                        b.chan,
                        w.as_ptr(),
                        CV_CO * kk,
                        sums.as_mut_ptr().add(px0 * CV_CO),
                        npx_pad * CV_CO,
                        ci0 == 0,
                        ahead.take(),
                    )
                };
                px0 += CV_PX;
            }
        }
        for p in alone..p_hi {
            let w = &wp[p * CV_CO * kk + ci0 * taps * CV_CO..][..nci * taps * CV_CO];
            let panel = &mut acc[(p - p_lo) * npx_pad * CV_CO..][..npx_pad * CV_CO];
            let mut px0 = 0;
            while px0 < npx {
                let offs = block_offs(px0);
                // SAFETY: every pixel's window (taps within kh rows × kw columns of its
                // offset) lies inside each channel's in_rows × row floats of the band
                // (Band::unsplit), nci channels from `src`; `w` holds nci channels' taps of
                // 16 output channels; `panel` has npx_pad ≥ px0 + 6 rows of 16; the CPU check is
                // the caller's, and the 16-lane kernel runs only where `simd512()` says.
                unsafe {
                    let run = if wide { kernel_cv512 } else { kernel_cv };
                    run(
                        src,
                        &offs,
                        tap_off,
                        nci,
                        b.chan,
                        w,
                        &mut panel[px0 * CV_CO..][..CV_PX * CV_CO],
                        ci0 == 0,
                    )
                };
                px0 += CV_PX;
            }
        }
        ci0 += nci;
    }
    let hw = g.oh * g.ow;
    for oy in oy0..oy1 {
        let r = oy - oy0;
        for p in p_lo..p_hi {
            // The row's sums of this block of 16 channels: ow pixels of 16.
            let sums = &mut acc[(p - p_lo) * npx_pad * CV_CO + r * g.ow * CV_CO..][..g.ow * CV_CO];
            let at = |l: usize| (n * g.cout + p * CV_CO + l) * hw + oy * g.ow;
            let bias = &ops.bias[p * CV_CO..][..CV_CO];
            if residual.is_none() {
                // Bias and activation on the sums before they are transposed, so the transpose's
                // stores are the output's last touch (see `bias_lanes_activate`).
                bias_lanes_activate(sums, bias, act);
            }
            // SAFETY: row oy of channels p·16.. p·16 + 15 of image n: inside the output and
            // this task's own (the caller's contract); distinct channels' rows do not overlap.
            let mut rows: [&mut [f32]; CV_CO] =
                std::array::from_fn(|l| unsafe { std::slice::from_raw_parts_mut(out.get().add(at(l)), g.ow) });
            transpose_cv(sums, &mut rows, wide);
            if let Some(res) = residual {
                for (l, row) in rows.into_iter().enumerate() {
                    epilogue_slice(row, bias[l], act, Some(res.at(at(l), g.ow)));
                }
            }
        }
    }
}

/// The conv epilogue without a residual on channel-minor sums (`sums[x·16 + l]`: channel `l`
/// of pixel `x`): `act(sum + bias[l])`, rounding as [`epilogue_slice`] does on each channel's
/// row (a zero bias is not added, so a -0.0 sum stays -0.0: the bias lane is -0.0 then, which
/// adds exactly nothing). Done before the transpose, on the contiguous sums, so the transpose's
/// stores are the output's last touch; after it, the epilogue re-read 16 rows a channel plane
/// apart. Measured on Zen 5, 1 thread, hot, with SiLU (ms): stride-2 64→128 at 80² 1.11 →
/// 1.08, 128→128 at 40² 0.55 → 0.53, 32→64 at 160² even, 16→32 at 320² and stride-1 32→32 at
/// 80² even.
fn bias_lanes_activate(sums: &mut [f32], bias: &[f32], act: Activation) {
    let lanes: [f32; CV_CO] = std::array::from_fn(|l| if bias[l] == 0.0 { -0.0 } else { bias[l] });
    crate::act::lanes_bias_activate(sums, &lanes, act);
}

/// `rows[l][x] = sums[x·16 + l]`: a row of channel-minor sums (16 channels per pixel) into the
/// 16 channels' output rows. With `wide` (AVX-512F) by 16×16 blocks in registers; measured on
/// Zen 5, the element-by-element copy was 2.5% of YOLOv8n's forward.
fn transpose_cv(sums: &[f32], rows: &mut [&mut [f32]; CV_CO], wide: bool) {
    let ow = rows[0].len();
    debug_assert!(sums.len() >= ow * CV_CO && rows.iter().all(|r| r.len() == ow));
    let mut x0 = 0;
    #[cfg(target_arch = "x86_64")]
    if wide {
        while x0 + CV_CO <= ow {
            let dst: [*mut f32; CV_CO] = std::array::from_fn(|l| rows[l][x0..].as_mut_ptr());
            // SAFETY: `wide` says the CPU has AVX-512F; the block's 16 pixels of 16 sums lie
            // inside `sums` (x0 + 16 ≤ ow) and each row has 16 floats from x0.
            unsafe { transpose16(sums[x0 * CV_CO..][..CV_CO * CV_CO].as_ptr(), CV_CO, &dst) };
            x0 += CV_CO;
        }
    }
    let _ = wide;
    for (l, row) in rows.iter_mut().enumerate() {
        for (x, v) in row.iter_mut().enumerate().skip(x0) {
            *v = sums[x * CV_CO + l];
        }
    }
}

/// A 16×16 transpose: `dst[l][j] = src[j·lds + l]`, by the usual unpack, 4-lane and 128-bit
/// lane shuffles (32 + 32 shuffles for 256 floats).
///
/// # Safety
/// The CPU must have AVX-512F; `src` must hold 16 rows of 16 floats, `lds` apart, and every
/// `dst[l]` 16 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn transpose16(src: *const f32, lds: usize, dst: &[*mut f32; CV_CO]) {
    use std::arch::x86_64::*;
    // SAFETY: the reads and writes stay within the contract's bounds.
    unsafe {
        let r: [__m512; 16] = std::array::from_fn(|j| _mm512_loadu_ps(src.add(j * lds)));
        // Pairs of rows interleaved by element, then by pairs of elements: each 128-bit lane
        // of u[4i + k] holds column 4·lane + k of rows 4i..4i + 3.
        let t: [__m512; 16] = std::array::from_fn(|j| {
            let (a, b) = (r[j & !1], r[j | 1]);
            if j % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        let u: [__m512; 16] = std::array::from_fn(|j| {
            let base = j & !3;
            let (a, b) = match j % 4 {
                0 | 1 => (t[base], t[base + 2]),
                _ => (t[base + 1], t[base + 3]),
            };
            if j % 2 == 0 {
                _mm512_shuffle_ps::<0x44>(a, b)
            } else {
                _mm512_shuffle_ps::<0xEE>(a, b)
            }
        });
        // 128-bit lanes: gather lane pairs of rows 0–7 (and 8–15), then the four row groups.
        let v: [__m512; 16] = std::array::from_fn(|j| {
            let (half, k) = (j / 8, j % 8);
            let (a, b) = (u[half * 8 + k % 4], u[half * 8 + 4 + k % 4]);
            if k < 4 {
                _mm512_shuffle_f32x4::<0x88>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0xDD>(a, b)
            }
        });
        for (l, d) in dst.iter().enumerate() {
            let (a, b) = (v[l % 8], v[8 + l % 8]);
            let w = if l < 8 {
                _mm512_shuffle_f32x4::<0x88>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0xDD>(a, b)
            };
            _mm512_storeu_ps(*d, w);
        }
    }
}

/// The channel-vector register block: `acc[j·16 + l]` = output channel `l` of the block at
/// pixel `j`, whose window starts `offs[j]` floats into each channel of `src`, summed over
/// `nci` input channels (stride `chan`) and the taps at offsets `taps`; with `first` false,
/// that sum (started from zero) is added to what `acc` holds. Each pass of up to [`CV_CI`]
/// input channels is thus a block of the reduction, summed on its own, as the packed GEMM
/// sums blocks of 128: one running sum over all passes (64→64 at 24²: 576 terms) erred 4× the
/// GEMM's against an f64 sum (tests/it/winograd_accuracy.rs).
///
/// # Safety
/// AVX2 + FMA; every `offs[j] + taps[t]` is inside each of the `nci` channels' `chan` floats of
/// `src`; `w` holds `nci · taps.len()` groups of 16 weights; `acc` holds 6 rows of 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_cv(
    src: &[f32],
    offs: &[usize; CV_PX],
    taps: &[usize],
    nci: usize,
    chan: usize,
    w: &[f32],
    acc: &mut [f32],
    first: bool,
) {
    use std::arch::x86_64::*;
    debug_assert!(w.len() >= nci * taps.len() * CV_CO && acc.len() >= CV_PX * CV_CO);
    let nt = taps.len();
    let (s, wp) = (src.as_ptr(), w.as_ptr());
    let mut a = [[_mm256_setzero_ps(); 2]; CV_PX];
    // SAFETY: the reads stay within the contract's bounds; the loads and stores of `acc` within
    // its 6 rows of 16.
    unsafe {
        for ci in 0..nci {
            let sc = s.add(ci * chan);
            let wc = wp.add(ci * nt * CV_CO);
            for (t, &to) in taps.iter().enumerate() {
                let w0 = _mm256_loadu_ps(wc.add(t * CV_CO));
                let w1 = _mm256_loadu_ps(wc.add(t * CV_CO + LANES));
                let p = sc.add(to);
                for (j, aj) in a.iter_mut().enumerate() {
                    let x = _mm256_broadcast_ss(&*p.add(offs[j]));
                    aj[0] = _mm256_fmadd_ps(w0, x, aj[0]);
                    aj[1] = _mm256_fmadd_ps(w1, x, aj[1]);
                }
            }
        }
        // This pass's sum, added to the earlier passes' (blocked: see `kernel_cv`).
        for (j, aj) in a.iter().enumerate() {
            for (v, x) in aj.iter().enumerate() {
                let at = acc.as_mut_ptr().add(j * CV_CO + v * LANES);
                let x = if first {
                    *x
                } else {
                    _mm256_add_ps(_mm256_loadu_ps(at), *x)
                };
                _mm256_storeu_ps(at, x);
            }
        }
    }
}

/// [`kernel_cv`] with the block's 16 output channels in one AVX-512 vector. One vector per
/// pixel gives 6 FMA chains, too few to hide their latency, so even and odd taps sum into two
/// sets (12 accumulators) added at the end.
///
/// # Safety
/// As for [`kernel_cv`], and the CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_cv512(
    src: &[f32],
    offs: &[usize; CV_PX],
    taps: &[usize],
    nci: usize,
    chan: usize,
    w: &[f32],
    acc: &mut [f32],
    first: bool,
) {
    use std::arch::x86_64::*;
    debug_assert!(w.len() >= nci * taps.len() * CV_CO && acc.len() >= CV_PX * CV_CO);
    let nt = taps.len();
    let (s, wp) = (src.as_ptr(), w.as_ptr());
    // One tap (weight vector, window start) into one set of accumulators.
    macro_rules! tap {
        ($set:expr, $wv:expr, $p:expr) => {
            let (wv, p) = ($wv, $p);
            for (j, aj) in $set.iter_mut().enumerate() {
                *aj = _mm512_fmadd_ps(wv, _mm512_set1_ps(*p.add(offs[j])), *aj);
            }
        };
    }
    let (mut a0, mut a1) = ([_mm512_setzero_ps(); CV_PX], [_mm512_setzero_ps(); CV_PX]);
    // SAFETY: the reads stay within [`kernel_cv`]'s bounds; the loads and stores of `acc`
    // within its 6 rows of 16.
    unsafe {
        let pairs = nt / 2;
        for ci in 0..nci {
            let sc = s.add(ci * chan);
            let wc = wp.add(ci * nt * CV_CO);
            for t in 0..pairs {
                let (t0, t1) = (2 * t, 2 * t + 1);
                tap!(a0, _mm512_loadu_ps(wc.add(t0 * CV_CO)), sc.add(taps[t0]));
                tap!(a1, _mm512_loadu_ps(wc.add(t1 * CV_CO)), sc.add(taps[t1]));
            }
            if nt % 2 == 1 {
                let t = nt - 1;
                tap!(a0, _mm512_loadu_ps(wc.add(t * CV_CO)), sc.add(taps[t]));
            }
        }
        for (j, (x0, x1)) in a0.into_iter().zip(a1).enumerate() {
            let at = acc.as_mut_ptr().add(j * CV_CO);
            let x = _mm512_add_ps(x0, x1);
            let x = if first {
                x
            } else {
                _mm512_add_ps(_mm512_loadu_ps(at), x)
            };
            _mm512_storeu_ps(at, x);
        }
    }
}

/// The groups of blocks `p_lo..p_hi` of 16 output channels that [`kernel_cv512_group`] runs,
/// as (first block, blocks): up to [`CV_NB`] each while [`CV_NB_MIN`] are left; the blocks
/// after the last group run alone.
fn cv_groups(p_lo: usize, p_hi: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut p0 = p_lo;
    std::iter::from_fn(move || {
        (p0 + CV_NB_MIN <= p_hi).then(|| {
            let nb = (p_hi - p0).min(CV_NB);
            p0 += nb;
            (p0 - nb, nb)
        })
    })
}

/// Most blocks of 16 output channels per AVX-512 channel-vector group: 24 accumulators, 4
/// weight vectors and a broadcast in the 32 registers.
const CV_NB: usize = 4;

/// Fewest blocks of 16 output channels per group ([`cv_grouped`]).
const CV_NB_MIN: usize = 2;

/// [`kernel_cv512`] over `NB` blocks of 16 output channels at once: each broadcast input feeds
/// `NB` FMAs (`6·NB` accumulators, enough chains without [`kernel_cv512`]'s two tap sets), so
/// a tap costs `NB` weight loads and 6 broadcasts for `6·NB` FMAs, against one load and 6
/// broadcasts for 6 FMAs. Each output sums its taps in [`kernel_cv`]'s order.
///
/// # Safety
/// As for [`kernel_cv512`], for each block `b < NB`: its weights (`nci · taps.len()` groups of
/// 16) from `w + b·w_stride`, its sums (6 rows of 16) at `acc + b·acc_stride`. `pf_lines`
/// cache lines from `pf` are prefetched (any address: a prefetch does not fault).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_cv512_group<const NB: usize>(
    src: &[f32],
    offs: &[usize; CV_PX],
    taps: &[usize],
    nci: usize,
    chan: usize,
    w: *const f32,
    w_stride: usize,
    acc: *mut f32,
    acc_stride: usize,
    first: bool,
    (pf, pf_lines): (*const f32, usize),
) {
    use std::arch::x86_64::*;
    let nt = taps.len();
    let s = src.as_ptr();
    let mut a = [[_mm512_setzero_ps(); CV_PX]; NB];
    // SAFETY: the reads stay within [`kernel_cv`]'s bounds and each block's weights; the loads
    // and stores of `acc` within each block's 6 rows of 16 (contract).
    unsafe {
        for ci in 0..nci {
            // Lines ci, ci + nci, … of the run to prefetch: one or two per input channel's
            // taps, so the misses never crowd out the taps' own loads from L2 (a burst of 24
            // between calls cost more than the fill it saved).
            let mut l = ci;
            while l < pf_lines {
                _mm_prefetch::<_MM_HINT_T1>(pf.wrapping_add(l * LINE).cast());
                l += nci;
            }
            let sc = s.add(ci * chan);
            let wc = w.add(ci * nt * CV_CO);
            for (t, &to) in taps.iter().enumerate() {
                let mut wv = [_mm512_setzero_ps(); NB];
                for (b, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(wc.add(b * w_stride + t * CV_CO));
                }
                let p = sc.add(to);
                for j in 0..CV_PX {
                    let x = _mm512_set1_ps(*p.add(offs[j]));
                    for b in 0..NB {
                        a[b][j] = _mm512_fmadd_ps(wv[b], x, a[b][j]);
                    }
                }
            }
        }
        for (b, ab) in a.iter().enumerate() {
            for (j, x) in ab.iter().enumerate() {
                let at = acc.add(b * acc_stride + j * CV_CO);
                let x = if first {
                    *x
                } else {
                    _mm512_add_ps(_mm512_loadu_ps(at), *x)
                };
                _mm512_storeu_ps(at, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The geometry of a 3×3 undilated ungrouped conv ([`Geom::conv3x3`]).
    fn geom(x: [usize; 4], cout: usize, s: usize, pad: [usize; 2], out: [usize; 2]) -> Geom {
        Geom::conv3x3(x, cout, s, pad, out, 1)
    }

    /// A plain f64 conv of `g` (zero padding) with `act((conv + bias) + r)` or
    /// `act(conv + bias) + r`, the reference for the direct path.
    fn reference(g: &Geom, x: &[f32], w: &[f32], bias: &[f32], r: Option<(&[f32], bool)>, act: Activation) -> Vec<f64> {
        let mut out = vec![0.0f64; g.n * g.cout * g.oh * g.ow];
        for n in 0..g.n {
            for co in 0..g.cout {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = bias[co] as f64;
                        for ci in 0..g.cin {
                            for ky in 0..g.kh {
                                for kx in 0..g.kw {
                                    let iy = (oy * g.sh + ky).checked_sub(g.pt).filter(|&v| v < g.h);
                                    let ix = (ox * g.sw + kx).checked_sub(g.pl).filter(|&v| v < g.w);
                                    if let (Some(iy), Some(ix)) = (iy, ix) {
                                        let xv = x[((n * g.cin + ci) * g.h + iy) * g.w + ix] as f64;
                                        s += xv * w[((co * g.cin + ci) * g.kh + ky) * g.kw + kx] as f64;
                                    }
                                }
                            }
                        }
                        let i = ((n * g.cout + co) * g.oh + oy) * g.ow + ox;
                        let a = |v: f64| crate::act::apply(act, v as f32) as f64;
                        out[i] = match r {
                            None => a(s),
                            Some((r, false)) => a(s + r[i] as f64),
                            Some((r, true)) => a(s) + r[i] as f64,
                        };
                    }
                }
            }
        }
        out
    }

    /// A conv of the cases below: `(n, cin, h, w, cout, kh, kw, s, pt, pl, pb, pr)`.
    type Case = (
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
    );

    /// Runs each case through one of the direct kernels (`cv`: the channel-vector one) three
    /// times, without a residual, with one added before and with one added after the
    /// activation, each with a padding mode of its own, and compares every output with the f64
    /// reference convolving pad2d's padded copy. The second and third runs read a prepared
    /// conv's cache of the kernel's packed weight, which the second must fill.
    fn check_against_reference(cases: &[Case], cv: bool) {
        let mut seed = 7u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        let modes = [
            PaddingMode::Zeros,
            PaddingMode::Reflect,
            PaddingMode::Replicate,
            PaddingMode::Circular,
        ];
        for (i, &(n, cin, h, w, cout, kh, kw, s, pt, pl, pb, pr)) in cases.iter().enumerate() {
            let (oh, ow) = ((h + pt + pb - kh) / s + 1, (w + pl + pr - kw) / s + 1);
            let g = Geom {
                kh,
                kw,
                ..geom([n, cin, h, w], cout, s, [pt, pl], [oh, ow])
            };
            let x: Vec<f32> = (0..n * cin * h * w).map(|_| rnd()).collect();
            let wt: Vec<f32> = (0..cout * cin * kh * kw).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..cout).map(|_| rnd()).collect();
            let len = n * cout * oh * ow;
            let r: Vec<f32> = (0..len).map(|_| rnd()).collect();
            let cache = std::sync::OnceLock::new();
            let ops = |k: usize| Operands {
                x: &x,
                w: &wt,
                bias: &bias,
                wpack: (!cv && k >= 1).then_some(&cache),
                wpack_cv: (cv && k >= 1).then_some(&cache),
            };
            for (k, (res, act)) in [
                (None, Activation::Identity),
                (Some(false), Activation::Silu),
                (Some(true), Activation::Relu),
            ]
            .into_iter()
            .enumerate()
            {
                let mode = modes[(i + k) % modes.len()];
                let mut out = vec![f32::NAN; len];
                let residual = res.map(|after_act| Residual { data: &r, after_act });
                if cv {
                    conv_cv(&g, mode, ops(k), act, &mut out, residual);
                } else {
                    conv3x3(&g, mode, ops(k), act, &mut out, residual);
                }
                assert_eq!(
                    cache.get().is_some(),
                    k >= 1,
                    "case {i}: the cache is filled by its first user"
                );
                let xt = crate::Tensor::from_shape_vec([n, cin, h, w], x.clone()).expect("shape");
                let xp = crate::conv::pad2d(xt.view(), [pt, pb, pl, pr], mode).expect("pad");
                let d = xp.dim();
                let gp = Geom {
                    h: d.2,
                    w: d.3,
                    pt: 0,
                    pl: 0,
                    ..g
                };
                let xp: Vec<f32> = xp.iter().copied().collect();
                let want = reference(&gp, &xp, &wt, &bias, res.map(|a| (&r[..], a)), act);
                // Each output sums kh·kw·cin products of magnitude ≤ 1.
                let tol = 1e-6 * (kh * kw * cin) as f64;
                for (e, (&got, &want)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (got as f64 - want).abs() <= tol,
                        "case {i} {mode:?} {act:?} residual {res:?}: element {e} is {got}, want {want}"
                    );
                }
            }
        }
    }

    /// [`band_rows`] before evening out, as the rule reads.
    fn band_rows_uneven(oh: usize, budget: usize, splits: usize, threads: usize) -> usize {
        let mut rows = budget.clamp(1, oh);
        let want = if splits > 1 {
            threads.div_ceil(splits)
        } else {
            4 * threads
        };
        if threads > 1 && want > 1 {
            rows = rows.min(oh.div_ceil(want)).max(1);
        }
        rows
    }

    /// Bands: within the budget, as many as the threads need (four tasks per thread, or one
    /// per thread over split output channels), of even heights.
    #[test]
    fn bands_split_evenly() {
        let g = |n, side: usize| geom([n, 256, 2 * side, 2 * side], 256, 2, [1, 1], [side, side]);
        // ResNet-50's 256→256 stride 2 at 28²: budget 8 rows, 2 splits on 2 threads: 7 + 7
        assert_eq!(band_rows(&g(1, 14), 8, 2, 2), 7);
        // not split: eight tasks on 2 threads, 14 rows in bands of 2
        assert_eq!(band_rows(&g(1, 14), 8, 1, 2), 2);
        // 28 rows, budget 8, split: 4 bands of 7, not 8 + 8 + 8 + 4
        assert_eq!(band_rows(&g(1, 28), 8, 2, 2), 7);
        // one thread: the budget's count of bands, evened
        assert_eq!(band_rows(&g(1, 28), 8, 2, 1), 7);
        assert_eq!(band_rows(&g(1, 32), 8, 1, 1), 8);
        // batch 8: enough tasks in the images, bands evened within the budget
        assert_eq!(band_rows(&g(8, 14), 8, 1, 2), 7);
        for side in 1..40 {
            for budget in 1..12 {
                for (splits, threads) in [(1, 1), (1, 2), (2, 2), (4, 2), (1, 4), (8, 4)] {
                    let r = band_rows(&g(1, side), budget, splits, threads);
                    let bands = side.div_ceil(r);
                    assert!(
                        r >= 1 && r <= budget.max(1).min(side),
                        "{side} {budget} {splits} {threads}"
                    );
                    // no band fewer than the budget's count would hold: the slack is under one
                    // row per band
                    assert!(bands * r - side < bands, "{side} {budget} {splits} {threads}: {r}");
                    assert_eq!(bands, side.div_ceil(band_rows_uneven(side, budget, splits, threads)));
                }
            }
        }
    }

    /// The look-ahead hands out exactly the cache lines of the input rows that the next band
    /// reads and the running one does not (the next image's first band after an image's last,
    /// none after the last image's), each once, in runs within one channel's rows, at any
    /// spread; stride 1 and 2, padding 0 to 3, bands of 1 to 5 rows.
    #[test]
    fn look_ahead_covers_the_next_bands_new_rows() {
        let mut checked = 0;
        for (s, pad, k) in [(1, 1, 3), (2, 1, 3), (2, 0, 3), (2, 3, 7), (1, 0, 1)] {
            let (n, cin, h, w) = (2, 3, 19, 21);
            let oh = (h + 2 * pad - k) / s + 1;
            let mut g = geom([n, cin, h, w], 16, s, [pad, pad], [oh, (w + 2 * pad - k) / s + 1]);
            (g.kh, g.kw) = (k, k);
            let x = vec![0.0f32; n * cin * h * w];
            // Input rows (clamped to the image) a band of output rows oy0..oy1 reads.
            let rows = |oy0: usize, oy1: usize| {
                let lo = (oy0 * s).saturating_sub(pad).min(h);
                let hi = ((oy1 - 1) * s + k).saturating_sub(pad).min(h);
                lo..hi
            };
            for band_rows in 1..=5 {
                for img in 0..n {
                    for oy0 in (0..oh).step_by(band_rows) {
                        let oy1 = (oy0 + band_rows).min(oh);
                        // The next band's rows, less this one's when it is the same image's.
                        let (next_img, nb) = if oy1 < oh { (img, oy1) } else { (img + 1, 0) };
                        let mut want = std::collections::BTreeSet::new();
                        if next_img < n {
                            let now = if next_img == img { rows(oy0, oy1) } else { 0..0 };
                            for c in 0..cin {
                                for r in rows(nb, (nb + band_rows).min(oh)).filter(|r| !now.contains(r)) {
                                    want.insert((next_img, c, r));
                                }
                            }
                        }
                        for takes in [1, 3, 50] {
                            let ahead = Ahead::next_band(&g, &x, img, oy1, band_rows);
                            ahead.spread(takes, 7);
                            let mut got = std::collections::BTreeSet::new();
                            let mut lines = std::collections::BTreeSet::new();
                            loop {
                                let (pf, len) = ahead.take();
                                if len == 0 {
                                    break;
                                }
                                assert!(len <= 7);
                                let at = (pf as usize - x.as_ptr() as usize) / 4;
                                for l in 0..len {
                                    let f = at + l * LINE;
                                    let (i, c) = (f / (cin * h * w), f / (h * w) % cin);
                                    assert!(lines.insert(f), "a line handed out twice");
                                    // a run stays in one channel's rows
                                    assert_eq!((i, c), ((at / (h * w)) / cin, at / (h * w) % cin));
                                    got.insert((i, c, f % (h * w) / w));
                                }
                            }
                            // Every float of the wanted rows lies in a handed-out line.
                            let covered = |&(i, c, r): &(usize, usize, usize)| {
                                let start = ((i * cin + c) * h + r) * w;
                                (start..start + w).all(|f| lines.range(..=f).next_back().is_some_and(|&l| f < l + LINE))
                            };
                            assert!(
                                want.iter().all(covered),
                                "s {s} pad {pad} rows {band_rows} band {oy0} of image {img}"
                            );
                            // and no line starts in a row that is not wanted
                            assert!(
                                got.is_subset(&want),
                                "s {s} pad {pad} rows {band_rows} band {oy0} of image {img}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 400, "{checked}");
    }

    /// The pixel-vector path over its edges: stride 1 and 2, odd and even left padding, large
    /// and asymmetric padding, every padding mode (folded into the fill), widths that end in a
    /// partial vector and in one, two or three vector blocks, output channels not a multiple of
    /// 4 (6-, 4-, 2- and 1-channel blocks, the last two with their three accumulator sets, and
    /// blocks at an offset inside a weight panel), input channels over several chunks, batch 2,
    /// bands over one and several rows; with AVX-512, rows of two and three 32-column blocks
    /// with 16- and 8-column tails.
    #[test]
    fn direct_conv_equals_reference() {
        if simd() {
            let cases: &[Case] = &[
                (1, 3, 19, 37, 16, 3, 3, 2, 1, 1, 1, 1),
                (2, 16, 11, 9, 6, 3, 3, 1, 1, 1, 1, 1),
                (1, 35, 8, 50, 13, 3, 3, 2, 0, 0, 2, 1),
                (1, 5, 12, 16, 4, 3, 3, 2, 3, 2, 0, 3),
                (1, 8, 6, 30, 32, 3, 3, 1, 0, 4, 2, 0),
                (2, 17, 40, 17, 9, 3, 3, 2, 1, 1, 1, 1),
                (1, 16, 10, 75, 13, 3, 3, 1, 1, 1, 1, 1),
                (1, 5, 9, 127, 7, 3, 3, 2, 1, 1, 1, 1),
                (1, 6, 7, 80, 8, 3, 3, 2, 1, 1, 1, 1),
                // fewer than 16 output channels: stride 1 over many input channels, any width
                (1, 128, 9, 20, 9, 3, 3, 1, 1, 1, 1, 1),
                (2, 40, 7, 37, 1, 3, 3, 1, 1, 1, 1, 1),
                (1, 24, 6, 12, 15, 3, 3, 1, 1, 1, 1, 1),
                (1, 33, 12, 26, 3, 3, 3, 2, 1, 1, 1, 1),
            ];
            // The AVX-512 kernels where the CPU has them, and the AVX2 kernels.
            check_against_reference(cases, false);
            crate::kernel::avx2_only(|| check_against_reference(cases, false));
        }
    }

    /// The channel-vector path: 3×3 at stride 1 and 2, a 7×7 stem, a 5×3 and a 1×1 kernel,
    /// partial pixel blocks at a band's end and pixel blocks across row ends, input channels
    /// over several passes, batch 2; with AVX-512, groups of 2, 3 and 4 blocks of 16 output
    /// channels and a group followed by a single block.
    #[test]
    fn channel_vector_conv_equals_reference() {
        if simd() {
            let cases: &[Case] = &[
                (1, 3, 23, 29, 16, 7, 7, 2, 3, 3, 3, 3),
                (2, 40, 13, 11, 32, 3, 3, 2, 1, 1, 1, 1),
                (1, 70, 9, 20, 16, 3, 3, 1, 1, 1, 1, 1),
                (1, 5, 12, 14, 48, 5, 3, 2, 2, 1, 2, 1),
                (1, 33, 7, 7, 16, 1, 1, 1, 0, 0, 0, 0),
                (1, 16, 41, 40, 16, 3, 3, 2, 1, 1, 1, 1),
                (1, 32, 12, 17, 32, 3, 3, 1, 1, 1, 1, 1),
                (1, 70, 10, 13, 64, 3, 3, 2, 1, 1, 1, 1),
                // stride 1 on a small map, 64 → 64 (13², the small-map rule with AVX-512)
                (1, 64, 13, 13, 64, 3, 3, 1, 1, 1, 1, 1),
                (2, 7, 9, 11, 80, 3, 3, 2, 0, 1, 1, 0),
                (1, 3, 17, 15, 112, 7, 7, 2, 3, 3, 3, 3),
                // small maps (`cv_small`): stride 1 at 8² (batch 2) and 4², 16 channels at 20
                // columns, 3 blocks at 8², stride 2 onto 16²
                (2, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1),
                (1, 16, 4, 4, 16, 3, 3, 1, 1, 1, 1, 1),
                (1, 16, 20, 20, 16, 3, 3, 1, 1, 1, 1, 1),
                (2, 48, 8, 8, 48, 3, 3, 1, 1, 1, 1, 1),
                (1, 35, 32, 32, 16, 3, 3, 2, 1, 1, 1, 1),
                // with AVX-512 and 2 threads, split over output channels (8 and 12 blocks, batch 2)
                (1, 64, 14, 14, 128, 3, 3, 2, 1, 1, 1, 1),
                (2, 48, 20, 20, 192, 3, 3, 2, 1, 1, 1, 1),
                // one image onto 2² with 2.4 M weights: four splits per thread, one band
                (1, 256, 4, 4, 1024, 3, 3, 2, 1, 1, 1, 1),
            ];
            // The AVX-512 kernels where the CPU has them, and the AVX2 kernels; on a pool of 2
            // threads, so the channel splits run wherever the CPU has 2 cores or not.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .expect("a 2-thread pool");
            pool.install(|| {
                assert_eq!(
                    cv_splits(&geom([1, 64, 14, 14], 128, 2, [1, 1], [7, 7]), 8),
                    if crate::kernel::simd512() { 2 } else { 1 }
                );
                assert_eq!(
                    cv_splits(&geom([1, 256, 4, 4], 1024, 2, [1, 1], [2, 2]), 64),
                    if crate::kernel::simd512() { 8 } else { 1 }
                );
                check_against_reference(cases, true);
                crate::kernel::avx2_only(|| check_against_reference(cases, true));
            });
        }
    }

    /// The 16×16 register transpose and the scalar tail agree with the definition, for widths
    /// below, at and past a block, with and without AVX-512.
    #[test]
    fn transpose_cv_equals_definition() {
        for ow in [1, 15, 16, 17, 40, 48] {
            let sums: Vec<f32> = (0..ow * CV_CO).map(|i| i as f32).collect();
            for wide in [false, crate::kernel::simd512()] {
                let mut store = vec![f32::NAN; CV_CO * ow];
                let mut it = store.chunks_exact_mut(ow);
                let mut rows: [&mut [f32]; CV_CO] = std::array::from_fn(|_| it.next().expect("16 rows"));
                transpose_cv(&sums, &mut rows, wide);
                for (l, row) in rows.iter().enumerate() {
                    for (x, &v) in row.iter().enumerate() {
                        assert_eq!(v, sums[x * CV_CO + l], "ow {ow} wide {wide}: [{l}][{x}]");
                    }
                }
            }
        }
    }

    /// The dispatch of both kernels. Pixel-vector: stride-2 convs and stride-1 convs of few
    /// input channels go direct unless their last column block would be mostly empty; many
    /// input channels at stride 1, more than 2¹⁹ weights and other kernels do not, unless
    /// there are fewer than 16 output channels. Channel-vector: the stride-2 convs the first
    /// refuses for their width, and a 7×7 stem; with AVX-512, every stride-2 conv of 32 or more
    /// output channels up to 2²⁰ weights (2²² onto at most 64 output pixels), and stride-1 3×3
    /// convs of 17 to 32 input channels.
    #[test]
    fn fits_the_measured_shapes_only() {
        if !simd() {
            return;
        }
        let g = |cin, cout, s, ow| geom([1, cin, 64, 64], cout, s, [1, 1], [ow, ow]);
        let wide = crate::kernel::simd512();
        assert!(fits(&g(3, 16, 2, 32)));
        // With AVX-512, small convs take the channel-vector kernel (`cv_small`).
        assert_eq!(fits(&g(16, 16, 2, 8)), !wide);
        assert_eq!(fits_cv(&g(16, 16, 2, 8)), wide);
        assert_eq!(fits(&g(35, 16, 2, 16)), !wide);
        assert_eq!(fits(&g(16, 16, 1, 8)), !wide);
        assert_eq!(fits_cv(&g(48, 48, 1, 8)), wide);
        assert_eq!(fits_cv(&g(16, 16, 1, 20)), wide);
        assert!(!fits_cv(&g(16, 16, 1, 13)));
        assert!(!fits_cv(&g(24, 16, 1, 26)));
        // by the work per image: batch 8 of 16→16 at 8² is still small
        assert_eq!(fits_cv(&geom([8, 16, 8, 8], 16, 1, [1, 1], [8, 8])), wide);
        assert!(fits(&g(16, 16, 1, 64)));
        assert!(fits(&g(16, 32, 1, 80)));
        assert!(!fits(&g(32, 32, 1, 64)));
        // With AVX-512 the grouped channel-vector kernel takes stride 2 from 32 channels on.
        assert_eq!(fits(&g(128, 256, 2, 64)), !wide);
        assert_eq!(fits(&g(32, 64, 2, 100)), !wide);
        assert_eq!(fits(&g(16, 32, 2, 160)), !wide);
        // 40 columns: a half-empty last 16-column block without AVX-512.
        assert!(!fits(&g(64, 128, 2, 40)));
        assert!(!fits(&g(64, 128, 2, 36)));
        assert!(!fits(&g(128, 256, 2, 20)));
        assert!(!fits(&g(256, 256, 2, 64)));
        // Fewer than 16 output channels: any input channels at stride 1, any width.
        assert!(fits(&g(16, 2, 2, 32)));
        assert!(fits(&g(128, 9, 1, 64)));
        assert!(fits(&g(128, 15, 1, 20)));
        assert!(fits(&g(256, 1, 1, 64)));
        assert!(!fits(&g(128, 16, 1, 64)));
        assert!(!fits(&Geom {
            kh: 5,
            kw: 5,
            ..g(16, 16, 1, 64)
        }));
        // The channel-vector kernel: stride 2, 9 to 49 taps, whole 16-channel blocks, a
        // moderate weight, enough pixels.
        assert!(fits_cv(&g(64, 128, 2, 40)));
        assert!(fits_cv(&g(128, 128, 2, 20)));
        assert!(fits_cv(&Geom {
            kh: 7,
            kw: 7,
            ..g(3, 64, 2, 112)
        }));
        assert_eq!(fits_cv(&g(128, 256, 2, 20)), wide);
        // 64→128 (74 K weights): the grouped kernel with AVX-512, the 16-channel one without.
        assert!(fits_cv(&g(64, 128, 2, 56)));
        // Stride 1 with 17 to 24 input channels (AVX-512); from 32 on Winograd is faster.
        assert_eq!(fits_cv(&g(24, 32, 1, 80)), wide);
        assert!(!fits_cv(&g(32, 32, 1, 80)));
        assert!(!fits_cv(&g(256, 512, 2, 20)));
        assert!(!fits_cv(&g(16, 32, 1, 80)));
        assert!(!fits_cv(&g(64, 64, 1, 40)));
        // With AVX-512, stride 1 on small maps up to 128→64's weight: to 13², or to 26² below
        // Winograd's work gate.
        assert_eq!(fits_cv(&g(64, 64, 1, 13)), wide);
        assert_eq!(fits_cv(&g(32, 32, 1, 14)), wide);
        assert!(!fits_cv(&g(64, 64, 1, 20)));
        assert!(!fits_cv(&g(128, 64, 1, 26)));
        assert!(!fits_cv(&g(64, 64, 1, 32)));
        assert!(!fits_cv(&g(96, 96, 1, 13)));
        assert!(!fits_cv(&g(64, 64, 1, 8)));
        assert!(!fits_cv(&g(64, 40, 2, 40)));
        // With AVX-512, stride 2 onto at most 64 output pixels, up to 2²² weights.
        assert_eq!(fits_cv(&g(64, 64, 2, 8)), wide);
        assert_eq!(fits_cv(&g(512, 512, 2, 7)), wide);
        assert!(!fits_cv(&g(512, 2048, 2, 7)));
        assert!(!fits_cv(&g(512, 512, 1, 7)));
        assert!(!fits_cv(&Geom {
            kh: 1,
            kw: 1,
            ..g(64, 64, 2, 40)
        }));
    }
}
