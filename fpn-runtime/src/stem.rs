//! Direct AVX2 + FMA kernel for convs with few input channels (network stems such as 3→64 7×7/2).
//!
//! im2col + GEMM would copy the input `kh·kw` times and then pack it again; here the zero-padded
//! input is split once into `stride` column phases (`P[ci][phase][row][j] = xpad[row][stride·j +
//! phase]`), so the inputs of 8 consecutive output columns for any tap are one contiguous
//! vector load. The kernel keeps a 4 channels × 24 columns register tile (12 accumulators) over
//! all `cin·kh·kw` taps, broadcasting packed weights. (256-bit vectors: on the AMD Zen 4 target
//! 512-bit FMAs are double-pumped, so they would not be faster, and AVX-512 intrinsics need a
//! newer Rust than the workspace's MSRV.) Rows are split over rayon's pool.

use rayon::prelude::*;

use crate::act::{bias_activate_slice, Activation};

/// Output channels per register tile.
const CO: usize = 4;
/// 8-lane vectors per register tile.
const NV: usize = 3;
/// Lanes per vector.
const L: usize = 8;
/// Largest `cin · kh · kw` handled (bigger convs have enough channels for GEMM to win).
pub(crate) const MAX_TAPS: usize = 512;

/// Geometry of a dilation-1, one-group conv (padding already applied for non-zero modes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StemGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pt: usize,
    pub pl: usize,
    pub oh: usize,
    pub ow: usize,
}

/// Whether the CPU can run the kernel.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

thread_local! {
    /// The calling thread's phase-plane buffer (taken out while in use, so re-entry is safe).
    static PLANES: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Raw output pointer shared by tasks that write disjoint rows.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint (image, output row) sets.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Runs the conv (caller checked [`available`], one group, dilation 1, `cin·kh·kw ≤
/// MAX_TAPS`); `x`, `w`, `out` are standard-layout and match `g`. Returns false (having written
/// nothing) if a buffer size overflows.
pub(crate) fn conv(g: &StemGeom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) -> bool {
    let taps = g.cin * g.kh * g.kw;
    // Phase planes: rows of the padded input, `wp` columns per phase (room for full vectors).
    let hp = (g.oh - 1) * g.sh + g.kh;
    let wp = g.ow.div_ceil(L) * L + (g.kw - 1) / g.sw + 1;
    let Some(p_len) = [g.n, g.cin, g.sw, hp, wp]
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
    else {
        return false;
    };
    let mut planes = PLANES.take();
    if planes.len() < p_len {
        planes.clear();
        if planes.try_reserve_exact(p_len).is_err() {
            return false;
        }
        planes.resize(p_len, 0.0);
    }
    planes[..p_len].par_chunks_mut(wp).enumerate().for_each(|(i, row)| {
        let r = i % hp;
        let (img_ci, phase) = ((i / hp) / g.sw, (i / hp) % g.sw);
        let Some(iy) = r.checked_sub(g.pt).filter(|&iy| iy < g.h) else {
            row.fill(0.0);
            return;
        };
        let src = &x[(img_ci * g.h + iy) * g.w..][..g.w];
        for (j, d) in row.iter_mut().enumerate() {
            *d = match (g.sw * j + phase).checked_sub(g.pl) {
                Some(ix) if ix < g.w => src[ix],
                _ => 0.0,
            };
        }
    });
    // Packed weights wpk[cb][tap][CO] (zero rows for channels past cout) and tap offsets.
    let cblocks = g.cout.div_ceil(CO);
    let mut wpk = vec![0.0f32; cblocks * taps * CO];
    for co in 0..g.cout {
        for t in 0..taps {
            wpk[((co / CO) * taps + t) * CO + co % CO] = w[co * taps + t];
        }
    }
    let mut offs = Vec::with_capacity(taps);
    for ci in 0..g.cin {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                offs.push(((ci * g.sw + kx % g.sw) * hp + ky) * wp + kx / g.sw);
            }
        }
    }
    let out_ptr = OutPtr(out.as_mut_ptr());
    let rows = g.n * g.oh;
    let row_task = |row: usize| {
        let (img, oy) = (row / g.oh, row % g.oh);
        let p_img = &planes[img * g.cin * g.sw * hp * wp..][..g.cin * g.sw * hp * wp];
        let base = oy * g.sh * wp;
        for cb in 0..cblocks {
            let wb = &wpk[cb * taps * CO..][..taps * CO];
            let nco = (g.cout - cb * CO).min(CO);
            let mut px = 0;
            while px < g.ow {
                let nv = (g.ow - px).div_ceil(L).min(NV);
                // SAFETY: the CPU has avx2 and fma (caller); every load is inside p_img (offs + base +
                // px + 8·nv ≤ wp per row by the choice of wp and hp), every store inside row oy
                // of channels cb·CO.. of image img, which only this task writes.
                unsafe {
                    let dst = out_ptr.get().add(((img * g.cout + cb * CO) * g.oh + oy) * g.ow + px);
                    let stride = g.oh * g.ow;
                    let p = p_img.as_ptr().add(base + px);
                    let ncols = (g.ow - px).min(L * nv);
                    match nv {
                        3 => tile::<3>(p, &offs, wb, &bias[cb * CO..][..nco], dst, stride, nco, ncols),
                        2 => tile::<2>(p, &offs, wb, &bias[cb * CO..][..nco], dst, stride, nco, ncols),
                        _ => tile::<1>(p, &offs, wb, &bias[cb * CO..][..nco], dst, stride, nco, ncols),
                    }
                }
                px += L * nv;
            }
            if act != Activation::Identity {
                for c in 0..nco {
                    // SAFETY: row oy of channel cb·CO + c of image img, written above by this task.
                    let seg = unsafe {
                        std::slice::from_raw_parts_mut(
                            out_ptr.get().add(((img * g.cout + cb * CO + c) * g.oh + oy) * g.ow),
                            g.ow,
                        )
                    };
                    bias_activate_slice(seg, 0.0, act);
                }
            }
        }
    };
    if rows > 1 && rayon::current_num_threads() > 1 {
        (0..rows).into_par_iter().with_min_len(4).for_each(row_task);
    } else {
        (0..rows).for_each(row_task);
    }
    PLANES.set(planes);
    true
}

/// One register tile: `CO` channels (the first `nco` stored) × `8·V` columns (the first `ncols`
/// stored) of one output row, `dst` pointing at its first channel (`stride` between channels).
///
/// # Safety
/// avx2 and fma must be available; `p + offs[t] + 8·V` must be in bounds for every tap, `w` must
/// hold `offs.len() · CO` floats and `dst + c·stride + ncols` must be writable for `c < nco`.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const V: usize>(
    p: *const f32,
    offs: &[usize],
    w: &[f32],
    bias: &[f32],
    dst: *mut f32,
    stride: usize,
    nco: usize,
    ncols: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); V]; CO];
    for (c, row) in acc.iter_mut().enumerate().take(nco) {
        *row = [_mm256_set1_ps(bias[c]); V];
    }
    for (t, &off) in offs.iter().enumerate() {
        let src = p.add(off);
        let mut xv = [_mm256_setzero_ps(); V];
        for (v, xr) in xv.iter_mut().enumerate() {
            *xr = _mm256_loadu_ps(src.add(L * v));
        }
        let wt = w.as_ptr().add(t * CO);
        for (c, row) in acc.iter_mut().enumerate() {
            let wv = _mm256_broadcast_ss(&*wt.add(c));
            for (a, &xr) in row.iter_mut().zip(&xv) {
                *a = _mm256_fmadd_ps(wv, xr, *a);
            }
        }
    }
    for (c, row) in acc.iter().enumerate().take(nco) {
        let d = dst.add(c * stride);
        for (v, &a) in row.iter().enumerate() {
            let left = ncols.saturating_sub(L * v).min(L);
            if left == L {
                _mm256_storeu_ps(d.add(L * v), a);
            } else if left > 0 {
                let mut tmp = [0.0f32; L];
                _mm256_storeu_ps(tmp.as_mut_ptr(), a);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), d.add(L * v), left);
            }
        }
    }
}

/// Never called: [`available`] is false off x86-64.
#[allow(clippy::too_many_arguments)]
#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile<const V: usize>(
    _p: *const f32,
    _offs: &[usize],
    _w: &[f32],
    _bias: &[f32],
    _dst: *mut f32,
    _stride: usize,
    _nco: usize,
    _ncols: usize,
) {
}
