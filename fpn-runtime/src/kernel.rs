//! The kernel layer under the convolution algorithms ([`crate::gemm_conv`] and
//! [`crate::winograd`]): what they share, so neither depends on the other.
//!
//! - [`Geom`], [`Operands`]: the validated geometry and operands of one convolution;
//! - [`sgemm`]: the one call into the `gemm` crate;
//! - [`OutPtr`]: the output pointer shared by tasks that write disjoint regions;
//! - [`Scratch`]: per-thread reusable buffers (im2col tiles, Winograd blocks);
//! - [`simd`]: the CPU-feature decision, taken once per process.
//!
//! Invariant: every `unsafe` use here is sound given the contract in the item's `# Safety`
//! section; the callers establish it from a [`Geom`] validated by `conv2d_out_shape`.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;
use std::thread::LocalKey;

/// Below this many multiply-adds a conv runs on the calling thread only. 2²¹ (about 0.1 ms of
/// one core's work): with 2¹⁸, seed 000's block at 32² (every conv 0.3–0.5 M multiply-adds)
/// ran slower on 2 threads than on 1 (Zen 3 VM: median 0.28–0.33 ms against 0.19), paying a
/// pool wake-up per conv; with 2²¹ it runs as on 1 thread (0.18 ms).
pub(crate) const PAR_MIN_MACS: usize = 1 << 21;

thread_local! {
    /// Convs of at least [`PAR_MIN_MACS`] multiply-adds dispatched on this thread.
    static PARALLEL_WORK: Cell<u64> = const { Cell::new(0) };
}

/// Counts a conv of at least [`PAR_MIN_MACS`] multiply-adds dispatched on this thread (what
/// [`crate::ArenaCell::run_forward`] reads to decide where the next forward runs).
pub(crate) fn note_parallel_work() {
    PARALLEL_WORK.with(|c| c.set(c.get().wrapping_add(1)));
}

/// The count [`note_parallel_work`] keeps for this thread.
pub(crate) fn parallel_work() -> u64 {
    PARALLEL_WORK.with(Cell::get)
}

/// Validated geometry of one convolution (padding already applied for non-zero modes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    /// Batch.
    pub n: usize,
    /// Input channels (all groups).
    pub cin: usize,
    /// Input height (padded for non-zero padding modes).
    pub h: usize,
    /// Input width (padded for non-zero padding modes).
    pub w: usize,
    /// Output channels (all groups).
    pub cout: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Vertical dilation.
    pub dh: usize,
    /// Horizontal dilation.
    pub dw: usize,
    /// Zero padding on top (the bottom is implied by `oh`).
    pub pt: usize,
    /// Zero padding on the left (the right is implied by `ow`).
    pub pl: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Channel groups.
    pub groups: usize,
}

impl Geom {
    /// The geometry of a 3×3 undilated conv with `groups` groups: input `[n, cin, h, w]`,
    /// `cout` output channels, stride `s`, top and left padding, output size (for tests).
    #[cfg(test)]
    pub(crate) fn conv3x3(
        [n, cin, h, w]: [usize; 4],
        cout: usize,
        s: usize,
        [pt, pl]: [usize; 2],
        [oh, ow]: [usize; 2],
        groups: usize,
    ) -> Geom {
        Geom {
            n,
            cin,
            h,
            w,
            cout,
            kh: 3,
            kw: 3,
            sh: s,
            sw: s,
            dh: 1,
            dw: 1,
            pt,
            pl,
            oh,
            ow,
            groups,
        }
    }

    /// Input channels per group.
    pub(crate) fn cin_g(&self) -> usize {
        self.cin / self.groups
    }

    /// Output channels per group.
    pub(crate) fn cout_g(&self) -> usize {
        self.cout / self.groups
    }

    /// A 1×1 stride-1 conv whose output has the input's size (no padding on any side): a plain
    /// GEMM on the input, no im2col.
    pub(crate) fn pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt == 0
            && self.pl == 0
            && self.oh == self.h
            && self.ow == self.w
    }

    /// Whether a one-pixel kernel (1×1, any stride) reads only pixels of the image: no padding
    /// on top or left, and none of the bottom or right padding reached by an output (the last
    /// output row and column read inside). The paths that read such a conv's input in place
    /// (the transposed product, the in-place strided packer) zero no padding.
    pub(crate) fn pointwise_reads_inside(&self) -> bool {
        [self.pt, self.pl] == [0, 0]
            && self.oh.saturating_sub(1).saturating_mul(self.sh) < self.h
            && self.ow.saturating_sub(1).saturating_mul(self.sw) < self.w
    }

    /// Multiply-adds of the whole conv (saturating: only used for scheduling decisions).
    pub(crate) fn macs(&self) -> usize {
        [self.n, self.cout, self.oh, self.ow, self.cin_g(), self.kh, self.kw]
            .iter()
            .fold(1usize, |a, &b| a.saturating_mul(b))
    }
}

/// The standard-layout operands of one validated conv, shaped as its [`Geom`] says.
#[derive(Clone, Copy)]
pub(crate) struct Operands<'a> {
    /// Input `[n, cin, h, w]`.
    pub x: &'a [f32],
    /// Weight `[cout, cin / groups, kh, kw]`.
    pub w: &'a [f32],
    /// Bias `[cout]`.
    pub bias: &'a [f32],
    /// A prepared conv's cache of `w` packed for the AVX2 GEMM with this conv's groups
    /// (`packed::pack_groups`), filled on first use; without one it is packed per call.
    pub wpack: Option<&'a std::sync::OnceLock<Option<Vec<f32>>>>,
    /// A prepared conv's cache of `w` packed for the channel-vector direct conv
    /// (`direct::pack_cv`), filled on first use; without one it is packed per call.
    pub wpack_cv: Option<&'a std::sync::OnceLock<Option<Vec<f32>>>>,
}

/// A weight packing of `len` floats: kept in `cell` (a prepared conv's cache, made by its first
/// user), else made now into `fresh`, a per-thread scratch of `slot`. `None` only if it cannot
/// be allocated.
pub(crate) fn cached_packing<'a>(
    cell: Option<&'a std::sync::OnceLock<Option<Vec<f32>>>>,
    len: usize,
    slot: Slot,
    fresh: &'a mut Option<Scratch>,
    pack: impl Fn(&mut [f32]),
) -> Option<&'a [f32]> {
    let cached = cell.and_then(|cell| {
        let v = cell
            .get_or_init(|| {
                let mut v = crate::try_lined(len)?;
                pack(crate::on_line_mut(&mut v));
                Some(v)
            })
            .as_deref()?;
        Some(crate::on_line(v))
    });
    if cached.is_some() {
        return cached;
    }
    *fresh = Scratch::try_take(slot, len).map(|mut wp| {
        pack(&mut wp);
        wp
    });
    fresh.as_deref()
}

impl<'a> Operands<'a> {
    /// The weight packed for the AVX2 GEMM (`packed::pack_groups` with `g`'s groups), which the
    /// packed GEMM and the direct conv both read: the prepared conv's cache (packed on its first
    /// call), else packed now into `fresh`, a per-thread scratch. `None` without AVX2 + FMA, or
    /// if the packing's size overflows or cannot be allocated.
    pub(crate) fn packed_weight(&self, g: &Geom, fresh: &'a mut Option<Scratch>) -> Option<&'a [f32]> {
        let (cout_g, k) = (g.cout_g(), g.cin_g() * g.kh * g.kw);
        let len = crate::packed::packed_groups_len(g.groups, cout_g, k).filter(|_| simd())?;
        let w = self.w;
        cached_packing(self.wpack, len, &WPACK, fresh, |wp| {
            crate::packed::pack_groups(w, g.groups, cout_g, k, wp)
        })
    }
}

/// `dst[m×n] = lhs[m×k] · rhs[k×n]`, all row-major with the given row strides (column stride 1),
/// overwriting `dst`.
///
/// # Safety
/// `lhs` must be valid for reads of `m` rows of stride `lhs_rs` (the last row `k` long), `rhs`
/// for reads of `k` rows of stride `rhs_rs` (the last `n` long), and `dst` for writes of `m` rows
/// of stride `dst_rs` (the last `n` long); no other thread may access that part of `dst`
/// during the call.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: *const f32,
    lhs_rs: usize,
    rhs: *const f32,
    rhs_rs: usize,
    par: gemm::Parallelism,
) {
    let _inside = crate::arena::GemmCall::enter();
    // A product whose output fits in the caches sums K in blocks of `K_BLOCK`, each block's
    // sum started from zero and added to `dst`: rounding grows with the block length plus the
    // number of blocks instead of with K. YOLOv8n's p5 ends in 1×1 convs with K = 384–512 on a
    // 3×4 map, where one running sum left fpn at 2.0–2.6× PyTorch's float32 error (oneDNN
    // blocks its reduction) and blocks of 128 bring it to ≤ 1.14× (tests/it/parity.rs). Larger
    // outputs keep one call: re-reading them per block would cost bandwidth, and there the
    // crate's own cache blocking splits K already.
    let blocked = k > K_BLOCK && m.saturating_mul(n) <= BLOCKED_MAX_OUT;
    let step = if blocked { K_BLOCK } else { k.max(1) };
    let mut k0 = 0;
    loop {
        let kk = step.min(k - k0);
        let first = k0 == 0;
        // SAFETY: the extents `gemm` reads and writes are exactly those the caller vouches for
        // (see `# Safety`), restricted to columns k0..k0 + kk of `lhs` and rows k0..k0 + kk of
        // `rhs`; the first call has alpha = 0 with `read_dst = false` (`dst` only written), the
        // others add to what the earlier ones wrote.
        unsafe {
            gemm::gemm(
                m,
                n,
                kk,
                dst,
                1,
                dst_rs as isize,
                !first,
                lhs.add(k0),
                1,
                lhs_rs as isize,
                rhs.add(k0 * rhs_rs),
                1,
                rhs_rs as isize,
                if first { 0.0 } else { 1.0 },
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        k0 += kk;
        if k0 >= k {
            break;
        }
    }
}

/// Block length of [`sgemm`]'s blocked reduction.
const K_BLOCK: usize = 128;

/// Largest output (`m · n` floats, 256 KiB) for which [`sgemm`] blocks its reduction.
const BLOCKED_MAX_OUT: usize = 64 * 1024;

/// Raw output pointer shared by tasks that write provably disjoint regions.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(*mut f32);

// SAFETY: `OutPtr` is only a pointer; sending it to another thread is sound because every user's
// tasks write disjoint regions of the output: (image, group, row band) or (image, group, channel
// chunk) in `gemm_conv`, (group, tile block, channel chunk) in Winograd, one output channel's rows
// of every plane in Winograd's weight transform, (image, output blocks, row band) or (image,
// band of tile rows) in `nchwc`, and the output outlives
// the tasks (they are joined before the borrow of `out` that made the pointer ends).
unsafe impl Send for OutPtr {}
// SAFETY: as for `Send`: tasks sharing an `OutPtr` only write through it to disjoint regions.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer to the start of `out`, to be offset by the tasks.
    pub(crate) fn new(out: &mut [f32]) -> Self {
        Self(out.as_mut_ptr())
    }

    /// A pointer into an output (an image's start in a view, `nchwc`), to be offset by the
    /// tasks.
    pub(crate) fn from_ptr(p: *mut f32) -> Self {
        Self(p)
    }

    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not the field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

thread_local! {
    /// im2col tiles of `gemm_conv`.
    pub(crate) static COLS: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// Column-phase rows of the strided im2col.
    pub(crate) static PHASES: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// Winograd's transformed input block `V`.
    pub(crate) static WINO_V: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// Winograd's product block `M`.
    pub(crate) static WINO_M: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// Winograd's per-call weight transform `U` (the free `conv2d`'s path).
    pub(crate) static WINO_U: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// A conv's weights packed for the AVX2 GEMM (`packed::pack_a`).
    pub(crate) static WPACK: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// A whole right-hand side packed once for the channel-split tasks of the AVX2 GEMM.
    pub(crate) static BFULL: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// The AVX2 GEMM's packed right-hand-side block.
    pub(crate) static BPACK: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// The transposed conv's column matrix.
    pub(crate) static CT_COLS: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// The transposed conv's per-group transposed weight.
    pub(crate) static CT_W: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
    /// A conv onto its output's contents on a path that cannot add them in place: the
    /// contents, copied aside and added as a residual.
    pub(crate) static ONTO_SUM: Cell<Vec<Vec<f32>>> = const { Cell::new(Vec::new()) };
}

/// One of the thread-local buffer slots above: a stack of buffers, so a task that runs nested
/// on the same thread (stolen while a GEMM waits on rayon) finds one of its own after warm-up.
pub(crate) type Slot = &'static LocalKey<Cell<Vec<Vec<f32>>>>;

/// A per-thread buffer, grown on demand and reused across calls. It is taken out of its slot
/// while in use and put back on drop: re-entry is safe, and once every nesting depth has been
/// seen no call allocates.
pub(crate) struct Scratch {
    slot: Slot,
    buf: Vec<f32>,
    /// Where the floats handed out start in `buf` (on its first 64-byte line, see
    /// [`crate::LINE_PAD`]), and how many.
    off: usize,
    len: usize,
}

impl Scratch {
    /// The buffer of the slot's stack with the smallest capacity ≥ `len`, else its largest
    /// (to be grown), else a new one.
    fn pop(slot: Slot, len: usize) -> Vec<f32> {
        let mut stack = slot.take();
        let pick = crate::arena::best_fit(stack.iter().map(Vec::capacity), len)
            .or_else(|| (0..stack.len()).max_by_key(|&k| stack[k].capacity()));
        let buf = pick.map(|k| stack.swap_remove(k)).unwrap_or_default();
        slot.set(stack);
        buf
    }

    /// `len` floats of the slot's buffer ([`pop`](Self::pop)) from its first 64-byte line on,
    /// the buffer first grown to hold them (its contents kept where it is not;
    /// `try_reserve_exact`'s error where that fails).
    fn lay(slot: Slot, len: usize) -> Result<Self, std::collections::TryReserveError> {
        let cap = len.saturating_add(crate::LINE_PAD);
        let mut buf = Self::pop(slot, cap);
        if buf.capacity() < cap {
            buf.clear();
            buf.try_reserve_exact(cap)?;
        }
        let off = crate::line_offset(&buf);
        if buf.len() < off + len {
            buf.resize(off + len, 0.0);
        }
        Ok(Self { slot, buf, off, len })
    }

    /// The calling thread's buffer of `slot` with `len` floats (contents unspecified), on a
    /// 64-byte line. Aborts if it cannot be allocated, as `Vec` growth does.
    pub(crate) fn take(slot: Slot, len: usize) -> Self {
        Self::lay(slot, len).unwrap_or_else(|_| std::alloc::handle_alloc_error(scratch_layout(len)))
    }

    /// The buffer of `slot` with exactly `len` zeros, on a 64-byte line.
    pub(crate) fn zeroed(slot: Slot, len: usize) -> Self {
        let mut s = Self::take(slot, len);
        s.fill(0.0);
        s
    }

    /// [`take`](Self::take), or `None` if growing the buffer fails to allocate.
    pub(crate) fn try_take(slot: Slot, len: usize) -> Option<Self> {
        Self::lay(slot, len).ok()
    }
}

/// The layout [`Scratch::take`] reports when its buffer cannot be had.
fn scratch_layout(len: usize) -> std::alloc::Layout {
    std::alloc::Layout::array::<f32>(len.saturating_add(crate::LINE_PAD))
        .unwrap_or_else(|_| std::alloc::Layout::new::<f32>())
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

impl Drop for Scratch {
    /// Puts the buffer back for the thread's next call (dropped instead if the thread is
    /// being torn down).
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let _ = self.slot.try_with(|c| {
            let mut stack = c.take();
            if stack.len() == stack.capacity() {
                // Room for the deepest nesting seen so far and more, so later pushes do not
                // reallocate.
                stack.reserve(4);
            }
            stack.push(buf);
            c.set(stack);
        });
    }
}

/// Whether the CPU runs the crate's AVX2 + FMA kernels (activation epilogues, Winograd
/// transforms): detected on first use and fixed for the process.
#[inline]
pub(crate) fn simd() -> bool {
    static AVX2_FMA: OnceLock<bool> = OnceLock::new();
    *AVX2_FMA.get_or_init(detect_avx2_fma)
}

/// Whether the CPU also runs the crate's AVX-512 kernels (the packed GEMM's wide tiles, the
/// direct convs' 16-lane blocks, the epilogues): AVX-512F on top of [`simd`]. Detected on first
/// use and fixed for the process; `FPN_NO_AVX512` set (to anything) in the environment turns
/// them off, to compare the two paths on one machine.
#[inline]
pub(crate) fn simd512() -> bool {
    static AVX512: OnceLock<bool> = OnceLock::new();
    *AVX512.get_or_init(|| simd() && detect_avx512() && std::env::var_os("FPN_NO_AVX512").is_none())
        && !AVX2_ONLY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Set while a test runs the AVX2 kernels on a CPU that has AVX-512 ([`avx2_only`]).
static AVX2_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Held by [`avx2_only`] (one such test at a time) and by [`simd512_held`].
#[cfg(test)]
static AVX2_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` while no test runs under [`avx2_only`], so that [`simd512`] keeps the CPU's answer
/// throughout: for tests whose expectations depend on it (a dispatch that takes the AVX-512
/// kernels), which failed now and then when an `avx2_only` test ran meanwhile.
#[cfg(test)]
pub(crate) fn simd512_held<R>(f: impl FnOnce() -> R) -> R {
    let _turn = AVX2_TURN.lock().unwrap_or_else(|e| e.into_inner());
    f()
}

/// Runs `f` with [`simd512`] false, so that a test covers the AVX2 kernels where the CPU would
/// take the AVX-512 ones. Tests that do this run one at a time; others running meanwhile may
/// take either kernel, which compute the same results.
#[cfg(test)]
pub(crate) fn avx2_only<R>(f: impl FnOnce() -> R) -> R {
    use std::sync::atomic::Ordering;
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            AVX2_ONLY.store(false, Ordering::Relaxed);
        }
    }
    let _turn = AVX2_TURN.lock().unwrap_or_else(|e| e.into_inner());
    AVX2_ONLY.store(true, Ordering::Relaxed);
    let _reset = Reset;
    f()
}

/// The CPU-feature query behind [`simd512`].
fn detect_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The CPU-feature query behind [`simd`].
fn detect_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
