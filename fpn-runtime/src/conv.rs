//! 2-D convolution equal to PyTorch's `nn.Conv2d` (all padding modes, groups, dilation), with a
//! fused bias + activation epilogue.
//!
//! Strategy: depthwise-style convs (one input channel per group) run a direct loop; everything
//! else is a GEMM `W[cout_g, cin_g·kh·kw] × cols[cin_g·kh·kw, tile]` through the `gemm` crate,
//! where `cols` is the input itself for 1×1 stride-1 unpadded convs and an im2col tile (a band of
//! output rows, so the buffer stays near [`COL_BUDGET`] floats) otherwise. Tiles are spread over
//! rayon's pool; each tile gets bias + activation while it is still in cache.
//!
//! Invariant: the public functions validate every shape and parameter (checked arithmetic) before
//! the unsafe GEMM calls, which then only touch indices proven in range by that validation.

use std::cell::Cell;

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut4};
use rayon::prelude::*;

use crate::act::{bias_activate_slice, bias_add_activate_slice, Activation};
use crate::error::{invalid, mismatch, Error, Result};
use crate::winograd::{self, WinoGeom};
use crate::Tensor;

/// How a convolution fills the border (PyTorch's `padding_mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PaddingMode {
    /// Zeros outside the input (`"zeros"`).
    Zeros,
    /// Mirror without repeating the edge (`"reflect"`); every pad must be smaller than the dim.
    Reflect,
    /// Repeat the edge value (`"replicate"`).
    Replicate,
    /// Wrap around (`"circular"`); every pad must be at most the dim.
    Circular,
}

/// Parameters of [`conv2d`], mirroring `nn.Conv2d` plus a fused activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dParams {
    /// Vertical and horizontal stride.
    pub stride: [usize; 2],
    /// Padding as `[top, bottom, left, right]` (PyTorch's symmetric `padding=(ph, pw)` is
    /// `[ph, ph, pw, pw]`).
    pub padding: [usize; 4],
    /// Vertical and horizontal dilation.
    pub dilation: [usize; 2],
    /// Number of channel groups (`cin` for depthwise).
    pub groups: usize,
    /// How the padding is filled.
    pub padding_mode: PaddingMode,
    /// Activation applied after the bias, in the same pass over the output.
    pub act: Activation,
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, dilation 1, one group, zero padding, no activation.
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: [0; 4],
            dilation: [1, 1],
            groups: 1,
            padding_mode: PaddingMode::Zeros,
            act: Activation::Identity,
        }
    }
}

/// Target size (in f32s) of one im2col tile: 1 MiB, the L2 of one core here; measured best
/// among 0.5/1/4/16 MiB on the FPN shapes.
const COL_BUDGET: usize = 1 << 18;

/// Below this many multiply-adds a conv runs on the calling thread only.
const PAR_MIN_MACS: usize = 1 << 18;

/// Output size of one spatial dim of a convolution, or an error naming the dim.
fn conv_dim(
    what: &str,
    input: usize,
    pad_a: usize,
    pad_b: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<usize> {
    let too_big = || Error::InputSize(format!("conv2d {what} {input} with its padding overflows"));
    let padded = input
        .checked_add(pad_a)
        .and_then(|v| v.checked_add(pad_b))
        .ok_or_else(too_big)?;
    let eff = kernel
        .checked_sub(1)
        .and_then(|k| k.checked_mul(dilation))
        .and_then(|k| k.checked_add(1))
        .ok_or_else(too_big)?;
    if padded < eff {
        return Err(Error::InputSize(format!(
            "conv2d needs a padded {what} of at least {eff} (kernel {kernel}, dilation {dilation}) but the input {what} {input} padded by {pad_a}+{pad_b} is {padded}"
        )));
    }
    Ok((padded - eff) / stride + 1)
}

/// Stride, dilation and groups must be at least 1 (checked before any use of the weight).
pub(crate) fn check_params(op: &'static str, p: &Conv2dParams) -> Result<()> {
    if p.stride.contains(&0) {
        return Err(invalid(op, format!("stride {:?} must be at least 1", p.stride)));
    }
    if p.dilation.contains(&0) {
        return Err(invalid(op, format!("dilation {:?} must be at least 1", p.dilation)));
    }
    if p.groups == 0 {
        return Err(invalid(op, "groups must be at least 1"));
    }
    Ok(())
}

/// Output shape `[n, cout, oh, ow]` of [`conv2d`] for an input of `x_shape` and weight of
/// `w_shape` (`[cout, cin / groups, kh, kw]`); validates every parameter like PyTorch does.
pub fn conv2d_out_shape(x_shape: [usize; 4], w_shape: [usize; 4], p: &Conv2dParams) -> Result<[usize; 4]> {
    const OP: &str = "conv2d";
    let [n, cin, h, w] = x_shape;
    let [cout, cin_g, kh, kw] = w_shape;
    check_params(OP, p)?;
    if kh == 0 || kw == 0 || cout == 0 || cin_g == 0 {
        return Err(mismatch(OP, &x_shape, &w_shape, "the weight has an empty dimension"));
    }
    if n == 0 || h == 0 || w == 0 || cin == 0 {
        return Err(Error::InputSize(format!(
            "conv2d input {x_shape:?} has an empty dimension"
        )));
    }
    if cout % p.groups != 0 {
        return Err(mismatch(
            OP,
            &x_shape,
            &w_shape,
            format!("{cout} output channels are not divisible by {} groups", p.groups),
        ));
    }
    if cin_g.checked_mul(p.groups) != Some(cin) {
        return Err(mismatch(
            OP,
            &x_shape,
            &w_shape,
            format!(
                "the input has {cin} channels but the weight expects {cin_g} per group × {} groups",
                p.groups
            ),
        ));
    }
    check_pad_fits(p.padding_mode, p.padding, h, w, OP)?;
    let [pt, pb, pl, pr] = p.padding;
    let oh = conv_dim("height", h, pt, pb, kh, p.stride[0], p.dilation[0])?;
    let ow = conv_dim("width", w, pl, pr, kw, p.stride[1], p.dilation[1])?;
    Ok([n, cout, oh, ow])
}

/// Checks PyTorch's limits on non-zero padding: reflect needs pad < dim, circular pad <= dim.
fn check_pad_fits(mode: PaddingMode, pad: [usize; 4], h: usize, w: usize, op: &'static str) -> Result<()> {
    let [pt, pb, pl, pr] = pad;
    let limits = [(pt, h, "height"), (pb, h, "height"), (pl, w, "width"), (pr, w, "width")];
    for (p, dim, what) in limits {
        match mode {
            PaddingMode::Reflect if p >= dim => {
                return Err(Error::InputSize(format!(
                    "{op}: reflect padding {p} needs an input {what} greater than {p}, got {dim}"
                )))
            }
            PaddingMode::Circular if p > dim => {
                return Err(Error::InputSize(format!(
                    "{op}: circular padding {p} needs an input {what} of at least {p}, got {dim}"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Pads `x` by `[top, bottom, left, right]` with `mode`, like `F.pad(x, (left, right, top,
/// bottom), mode)`.
pub fn pad2d(x: ArrayView4<f32>, pad: [usize; 4], mode: PaddingMode) -> Result<Tensor> {
    let [n, c, h, w] = shape4(&x);
    if h == 0 || w == 0 {
        return Err(Error::InputSize(format!(
            "pad2d input {:?} has an empty dimension",
            [n, c, h, w]
        )));
    }
    check_pad_fits(mode, pad, h, w, "pad2d")?;
    let [pt, pb, pl, pr] = pad;
    let overflow = || Error::InputSize(format!("pad2d of {:?} by {pad:?} overflows", [n, c, h, w]));
    let ph = h.checked_add(pt).and_then(|v| v.checked_add(pb)).ok_or_else(overflow)?;
    let pw = w.checked_add(pl).and_then(|v| v.checked_add(pr)).ok_or_else(overflow)?;
    // Allocate first: it fails cleanly for absurd sizes before the index tables do.
    let mut out = crate::try_zeros([n, c, ph, pw], "pad2d")?;
    // Source index of padded position `i` (in padded coordinates), or None for a zero.
    let map = |i: usize, before: usize, dim: usize| -> Option<usize> {
        let j = i as isize - before as isize;
        let d = dim as isize;
        let k = match mode {
            PaddingMode::Zeros => {
                if j < 0 || j >= d {
                    return None;
                }
                j
            }
            PaddingMode::Reflect => {
                if j < 0 {
                    -j
                } else if j >= d {
                    2 * (d - 1) - j
                } else {
                    j
                }
            }
            PaddingMode::Replicate => j.clamp(0, d - 1),
            PaddingMode::Circular => j.rem_euclid(d),
        };
        Some(k as usize)
    };
    let rows: Vec<Option<usize>> = (0..ph).map(|i| map(i, pt, h)).collect();
    let cols: Vec<Option<usize>> = (0..pw).map(|i| map(i, pl, w)).collect();
    let xs = x.as_standard_layout();
    let (Some(src), Some(dst)) = (xs.as_slice(), out.as_slice_mut()) else {
        return Err(invalid("pad2d", "internal: could not make the tensors contiguous"));
    };
    // Per output row: the interior is one copy; only the pad columns use the index table.
    for (iplane, oplane) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(ph * pw)) {
        for (orow, sy) in oplane.chunks_exact_mut(pw).zip(&rows) {
            let Some(sy) = *sy else { continue };
            let irow = &iplane[sy * w..][..w];
            orow[pl..pl + w].copy_from_slice(irow);
            for ox in (0..pl).chain(pl + w..pw) {
                if let Some(sx) = cols[ox] {
                    orow[ox] = irow[sx];
                }
            }
        }
    }
    Ok(out)
}

/// `[n, c, h, w]` of a 4-D view.
pub(crate) fn shape4<S: ndarray::Data<Elem = f32>>(x: &ndarray::ArrayBase<S, ndarray::Ix4>) -> [usize; 4] {
    let d = x.dim();
    [d.0, d.1, d.2, d.3]
}

/// Convolves `x` (`[n, cin, h, w]`) with `w` (`[cout, cin / groups, kh, kw]`), adds `bias`
/// (`[cout]`) and applies `p.act`; equals `act(nn.Conv2d(...)(x))` in PyTorch.
pub fn conv2d(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &Conv2dParams,
) -> Result<Tensor> {
    let shape = conv2d_out_shape(shape4(&x), shape4(&w), p)?;
    let mut out = crate::try_zeros(shape, "conv2d")?;
    conv2d_into(x, w, bias, p, out.view_mut())?;
    Ok(out)
}

/// [`conv2d`] writing into `out`, which must have exactly [`conv2d_out_shape`]'s shape.
pub fn conv2d_into(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &Conv2dParams,
    out: ArrayViewMut4<f32>,
) -> Result<()> {
    conv2d_into_prepared(x, w, bias, p, out, None, None)
}

/// [`conv2d_into`] with, optionally, the Winograd weight transform `u` of `w` already computed
/// (by [`crate::Conv2d`]; it must be `winograd::transform_weights` of this very `w`, which
/// holds for any `p` since the transform depends on the weight only). With `residual` (of the
/// output's shape) the result is `act((conv(x) + bias) + residual)`, added in that order.
pub(crate) fn conv2d_into_prepared(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &Conv2dParams,
    mut out: ArrayViewMut4<f32>,
    u: Option<&[f32]>,
    residual: Option<ArrayView4<f32>>,
) -> Result<()> {
    let x_shape = shape4(&x);
    let w_shape = shape4(&w);
    let o_shape = conv2d_out_shape(x_shape, w_shape, p)?;
    let got = [out.dim().0, out.dim().1, out.dim().2, out.dim().3];
    if got != o_shape {
        return Err(mismatch(
            "conv2d",
            &x_shape,
            &got,
            format!("the output buffer must have shape {o_shape:?}"),
        ));
    }
    if let Some(r) = &residual {
        let r_shape = shape4(r);
        if r_shape != o_shape {
            return Err(mismatch(
                "conv2d + add",
                &o_shape,
                &r_shape,
                "the added tensor must have the conv output's shape",
            ));
        }
    }
    let rs = residual.as_ref().map(|r| r.as_standard_layout());
    let res = match &rs {
        Some(r) => Some(
            r.as_slice()
                .ok_or_else(|| invalid("conv2d", "internal: could not make the residual contiguous"))?,
        ),
        None => None,
    };
    let bias_vec = match bias {
        Some(b) if b.len() != w_shape[0] => {
            return Err(mismatch(
                "conv2d",
                &w_shape,
                &[b.len()],
                format!("the bias must have {} entries, one per output channel", w_shape[0]),
            ))
        }
        Some(b) => b.to_vec(),
        None => vec![0.0; w_shape[0]],
    };
    let padded;
    let (xv, pad) = if p.padding_mode != PaddingMode::Zeros && p.padding != [0; 4] {
        padded = pad2d(x, p.padding, p.padding_mode)?;
        (padded.view(), [0; 4])
    } else {
        (x.view(), p.padding)
    };
    let [n, cin, h, wd] = shape4(&xv);
    let g = Geom {
        n,
        cin,
        h,
        w: wd,
        cout: o_shape[1],
        kh: w_shape[2],
        kw: w_shape[3],
        sh: p.stride[0],
        sw: p.stride[1],
        dh: p.dilation[0],
        dw: p.dilation[1],
        pt: pad[0],
        pl: pad[2],
        oh: o_shape[2],
        ow: o_shape[3],
        groups: p.groups,
    };
    let xs = xv.as_standard_layout();
    let ws = w.as_standard_layout();
    // Both are standard layout now, so as_slice cannot fail; keep the error path anyway.
    let (Some(xsl), Some(wsl)) = (xs.as_slice(), ws.as_slice()) else {
        return Err(invalid("conv2d", "internal: could not make the operands contiguous"));
    };
    match out.as_slice_mut() {
        Some(o) => run(&g, xsl, wsl, u, &bias_vec, p.act, o, res),
        None => {
            let mut tmp = crate::try_zeros(o_shape, "conv2d")?;
            if let Some(o) = tmp.as_slice_mut() {
                run(&g, xsl, wsl, u, &bias_vec, p.act, o, res);
            }
            out.assign(&tmp);
        }
    }
    Ok(())
}

/// Validated geometry of one convolution (padding already applied for non-zero modes).
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pt: usize,
    pl: usize,
    oh: usize,
    ow: usize,
    groups: usize,
}

impl Geom {
    fn cin_g(&self) -> usize {
        self.cin / self.groups
    }
    fn cout_g(&self) -> usize {
        self.cout / self.groups
    }
    /// A 1×1 stride-1 conv whose output has the input's size (no padding on any side): a plain
    /// GEMM on the input, no im2col.
    fn pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt == 0
            && self.pl == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// Multiply-adds of the whole conv (saturating: only used for scheduling decisions).
    fn macs(&self) -> usize {
        [self.n, self.cout, self.oh, self.ow, self.cin_g(), self.kh, self.kw]
            .iter()
            .fold(1usize, |a, &b| a.saturating_mul(b))
    }
}

/// Range `lo..hi` of output columns whose input column `ox*s + off - pad` lies in `0..w`.
#[inline]
fn valid_range(ow: usize, s: usize, off: usize, pad: usize, w: usize) -> (usize, usize) {
    let lo = if off >= pad { 0 } else { (pad - off).div_ceil(s) };
    let end = pad + w;
    let hi = if end <= off { 0 } else { (end - off).div_ceil(s).min(ow) };
    (lo.min(hi), hi)
}

/// Runs a validated conv; `out` is the standard-layout `[n, cout, oh, ow]` buffer, `u` the
/// precomputed Winograd transform of `w` if any.
#[allow(clippy::too_many_arguments)]
fn run(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    u: Option<&[f32]>,
    bias: &[f32],
    act: Activation,
    out: &mut [f32],
    residual: Option<&[f32]>,
) {
    let Some(r) = residual else {
        return run_path(g, x, w, u, bias, act, out);
    };
    if g.cin_g() > 1 && !winograd_fits(g, u.is_some()) {
        // The GEMM epilogue adds the residual while the output block is in cache.
        return gemm_conv_res(g, x, w, bias, act, out, Some(r));
    }
    run_path(g, x, w, u, bias, Activation::Identity, out);
    bias_add_activate_slice(out, 0.0, r, act);
}

/// Runs a validated conv on the path its geometry selects.
fn run_path(g: &Geom, x: &[f32], w: &[f32], u: Option<&[f32]>, bias: &[f32], act: Activation, out: &mut [f32]) {
    if g.cin_g() == 1 {
        depthwise(g, x, w, bias, act, out);
    } else if winograd_fits(g, u.is_some()) {
        let wg = WinoGeom {
            n: g.n,
            cin: g.cin,
            h: g.h,
            w: g.w,
            cout: g.cout,
            pt: g.pt,
            pl: g.pl,
            oh: g.oh,
            ow: g.ow,
            groups: g.groups,
        };
        match u {
            Some(u) => winograd::conv3x3(&wg, x, u, bias, act, out),
            None => {
                if !winograd::conv3x3_transforming(&wg, x, w, bias, act, out) {
                    gemm_conv(g, x, w, bias, act, out);
                }
            }
        }
    } else {
        gemm_conv(g, x, w, bias, act, out);
    }
}

/// Whether `g` takes the Winograd F(4×4, 3×3) path: stride-1 undilated 3×3 with enough channels
/// and work for the transforms to pay (`prepared`: the weight transform is already done).
fn winograd_fits(g: &Geom, prepared: bool) -> bool {
    let min_pixels = if prepared {
        WINOGRAD_MIN_PIXELS_PREPARED
    } else {
        WINOGRAD_MIN_PIXELS
    };
    winograd::eligible([g.kh, g.kw], [g.sh, g.sw], [g.dh, g.dw], g.cin_g(), g.cout_g())
        && g.oh >= 4
        && g.ow >= 4
        // Without a prepared `U` the weight transform (36·cin·cout scattered writes) is redone
        // on every call: only worth it with enough output pixels to amortise it (measured:
        // ResNet's 7×7 and 14×14 stages lost ~30% to it, docs/bench.md).
        && g.n.saturating_mul(g.oh).saturating_mul(g.ow) >= min_pixels
        && g.macs() >= PAR_MIN_MACS
}

/// Fewest output pixels (batch × height × width) for which Winograd beats im2col + GEMM
/// despite transforming the weights on each call.
const WINOGRAD_MIN_PIXELS: usize = 400;

/// Fewest output pixels for which Winograd beats im2col + GEMM when the weight transform was
/// done at load ([`crate::Conv2d`]). Measured (`benches/ops.rs -- --prepared`, 2 threads, load
/// 1.5–3.3): Winograd ran at 0.79–0.91× GEMM's speed at 10×10 (100 pixels, 256 and 512
/// channels) and 0.47–0.82× at 512 channels 7×7 batch 1–2 (49/98 pixels), but 1.22× at 11×11,
/// 1.7–2.1× at 12×12, 1.35–1.62× at 14×14 and 1.61× at 7×7 batch 4 (196 pixels).
const WINOGRAD_MIN_PIXELS_PREPARED: usize = 120;

/// Direct loop for convs with one input channel per group (depthwise, channel multiplier ok).
fn depthwise(g: &Geom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) {
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

thread_local! {
    /// Per-thread im2col buffer, grown on demand and reused across calls. Taken out while in
    /// use (a task that runs nested on the same thread, e.g. stolen while a GEMM waits on
    /// rayon, finds it empty and allocates its own), so re-entry is safe.
    static COLS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// The calling thread's im2col buffer with at least `len` floats (contents unspecified).
fn take_cols(len: usize) -> Vec<f32> {
    let mut cols = COLS.take();
    if cols.len() < len {
        cols.resize(len, 0.0);
    }
    cols
}

/// Raw output pointer shared by tasks that write provably disjoint regions.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
// SAFETY: every user's tasks write disjoint regions of the output: (image, group, row band) or
// (image, group, channel chunk) in `gemm_conv`, (group, tile block, channel chunk) in Winograd.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not the field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// GEMM-based conv (pointwise directly, otherwise im2col in row bands).
fn gemm_conv(g: &Geom, x: &[f32], w: &[f32], bias: &[f32], act: Activation, out: &mut [f32]) {
    gemm_conv_res(g, x, w, bias, act, out, None)
}

/// [`gemm_conv`]; with `residual` (the output's shape) the epilogue computes
/// `act((conv + bias) + residual)`.
fn gemm_conv_res(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    act: Activation,
    out: &mut [f32],
    residual: Option<&[f32]>,
) {
    if let Some(chunk) = channel_split(g) {
        return gemm_conv_by_channels(g, x, w, bias, act, out, chunk, residual);
    }
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let k = cin_g * g.kh * g.kw;
    let hw_out = g.oh * g.ow;
    let hw_in = g.h * g.w;
    let pointwise = g.pointwise();
    let threads = rayon::current_num_threads().max(1);
    let parallel = g.macs() >= PAR_MIN_MACS && threads > 1;
    // Rows per band: the im2col budget, then split further so every thread has work.
    let budget_cols = if pointwise { 1 << 14 } else { (COL_BUDGET / k).max(1) };
    let mut rows = (budget_cols / g.ow).clamp(1, g.oh);
    if parallel {
        // Two bands per thread balance load without shrinking the GEMMs much (measured).
        let want = 2 * threads;
        let per_img = g.n * g.groups;
        if per_img < want {
            let bands = want.div_ceil(per_img);
            rows = rows.min(g.oh.div_ceil(bands)).max(1);
        }
    }
    let bands = g.oh.div_ceil(rows);
    let tasks = g.n * g.groups * bands;
    let out_ptr = OutPtr(out.as_mut_ptr());
    let task = |t: usize| {
        let (img_group, band) = (t / bands, t % bands);
        let (n, grp) = (img_group / g.groups, img_group % g.groups);
        let oy0 = band * rows;
        let oy1 = (oy0 + rows).min(g.oh);
        let c0 = oy0 * g.ow;
        let nc = (oy1 - oy0) * g.ow;
        let x_img = &x[(n * g.cin + grp * cin_g) * hw_in..][..cin_g * hw_in];
        let w_grp = &w[grp * cout_g * k..][..cout_g * k];
        let o_base = (n * g.cout + grp * cout_g) * hw_out + c0;
        // SAFETY: o_base + (cout_g - 1) * hw_out + nc <= out.len() by construction of the
        // geometry; this task alone writes rows oy0..oy1 of channels grp*cout_g.. of image n.
        let dst = unsafe { out_ptr.get().add(o_base) };
        let gemm_par = if parallel && tasks < threads {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        if pointwise {
            let rhs = &x_img[c0..];
            // SAFETY: lhs is cout_g×k (rs k), rhs is k×nc (rs hw_in) within x_img, dst is
            // cout_g×nc (rs hw_out) within out; all extents validated above.
            unsafe {
                sgemm(
                    cout_g,
                    nc,
                    k,
                    dst,
                    hw_out,
                    w_grp.as_ptr(),
                    k,
                    rhs.as_ptr(),
                    hw_in,
                    gemm_par,
                )
            };
        } else {
            {
                let mut cols = take_cols(k * nc);
                im2col(g, x_img, oy0, oy1, &mut cols[..k * nc]);
                // SAFETY: as above, with rhs the k×nc im2col tile (rs nc).
                unsafe {
                    sgemm(
                        cout_g,
                        nc,
                        k,
                        dst,
                        hw_out,
                        w_grp.as_ptr(),
                        k,
                        cols.as_ptr(),
                        nc,
                        gemm_par,
                    )
                };
                COLS.set(cols);
            }
        }
        for co in 0..cout_g {
            // SAFETY: row segment co of this task's disjoint output block.
            let seg = unsafe { std::slice::from_raw_parts_mut(dst.add(co * hw_out), nc) };
            let b = bias[grp * cout_g + co];
            match residual {
                Some(r) => bias_add_activate_slice(seg, b, &r[o_base + co * hw_out..][..nc], act),
                None => bias_activate_slice(seg, b, act),
            }
        }
    };
    if parallel && tasks >= threads {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// Output channels per task when a conv is better split over output channels than over output
/// rows: small feature maps (ResNet's 14×14 and 7×7 stages, FPN's coarse levels) with many
/// channels, where row bands would give every thread a thin GEMM that re-packs the whole weight
/// matrix (measured: 1.3–2× slower there). `None` keeps the row bands.
fn channel_split(g: &Geom) -> Option<usize> {
    let threads = rayon::current_num_threads().max(1);
    let k = g.cin_g() * g.kh * g.kw;
    let hw_out = g.oh * g.ow;
    let pointwise = g.pointwise();
    let cols_len = if pointwise { 0 } else { k.checked_mul(hw_out)? };
    let small = hw_out <= SPLIT_MAX_PIXELS && g.cout_g() >= 2 * threads * 16;
    if threads < 2 || g.macs() < PAR_MIN_MACS || !small || cols_len > 4 * COL_BUDGET {
        return None;
    }
    let want = SPLIT_TASKS * threads;
    Some(g.cout_g().div_ceil(want).next_multiple_of(16))
}

/// Largest output plane (pixels) split over output channels. Measured on ResNet-50 shapes at 2
/// threads: 28×28 and smaller gain 5–60% (7×7 1×1 512→2048: 1.40 → 0.72 ms), 56×56 is even.
const SPLIT_MAX_PIXELS: usize = 1024;

/// Channel-split tasks per thread (2 balanced better than 1 or 4 in the same measurement).
const SPLIT_TASKS: usize = 2;

/// [`gemm_conv`] split over output channels: per image and group, one im2col of all output
/// pixels (shared, read-only), then one GEMM task per `chunk` output channels.
#[allow(clippy::too_many_arguments)]
fn gemm_conv_by_channels(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    act: Activation,
    out: &mut [f32],
    chunk: usize,
    residual: Option<&[f32]>,
) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let k = cin_g * g.kh * g.kw;
    let hw_out = g.oh * g.ow;
    let hw_in = g.h * g.w;
    let pointwise = g.pointwise();
    let mut cols = if pointwise { Vec::new() } else { take_cols(k * hw_out) };
    let out_ptr = OutPtr(out.as_mut_ptr());
    for n in 0..g.n {
        for grp in 0..g.groups {
            let x_img = &x[(n * g.cin + grp * cin_g) * hw_in..][..cin_g * hw_in];
            let (rhs, rhs_rs) = if pointwise {
                (x_img, hw_in)
            } else {
                im2col(g, x_img, 0, g.oh, &mut cols[..k * hw_out]);
                (&cols[..k * hw_out], hw_out)
            };
            let tasks = cout_g.div_ceil(chunk);
            (0..tasks).into_par_iter().for_each(|t| {
                let c0 = t * chunk;
                let m = chunk.min(cout_g - c0);
                let o_base = (n * g.cout + grp * cout_g + c0) * hw_out;
                // SAFETY: this task alone writes channels c0..c0+m of group grp of image n, all
                // inside `out` by the validated geometry.
                let dst = unsafe { out_ptr.get().add(o_base) };
                // SAFETY: lhs rows c0..c0+m of the group's cout_g×k weights; rhs is k×hw_out
                // (row stride rhs_rs) inside x_img or cols; dst is m×hw_out (rs hw_out).
                unsafe {
                    sgemm(
                        m,
                        hw_out,
                        k,
                        dst,
                        hw_out,
                        w[(grp * cout_g + c0) * k..].as_ptr(),
                        k,
                        rhs.as_ptr(),
                        rhs_rs,
                        gemm::Parallelism::None,
                    )
                };
                for co in 0..m {
                    // SAFETY: row co of this task's disjoint block.
                    let seg = unsafe { std::slice::from_raw_parts_mut(dst.add(co * hw_out), hw_out) };
                    let b = bias[grp * cout_g + c0 + co];
                    match residual {
                        Some(r) => bias_add_activate_slice(seg, b, &r[o_base + co * hw_out..][..hw_out], act),
                        None => bias_activate_slice(seg, b, act),
                    }
                }
            });
        }
    }
    COLS.set(cols);
}

/// `dst[m×n] = lhs[m×k] · rhs[k×n]`, all row-major with the given row strides.
///
/// # Safety
/// Every pointer must be valid for its `rows × row_stride` extent (last row only `cols` long).
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm(
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
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        false,
        lhs,
        1,
        lhs_rs as isize,
        rhs,
        1,
        rhs_rs as isize,
        0.0,
        1.0,
        false,
        false,
        false,
        par,
    );
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

thread_local! {
    /// Column-phase rows of [`im2col_strided`].
    static PHASES: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
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
    let iy_lo = (oy0 * g.sh).saturating_sub(g.pt).min(g.h);
    let iy_hi = ((oy1 - 1) * g.sh + (g.kh - 1) * g.dh + 1).saturating_sub(g.pt).min(g.h);
    let mut phases = PHASES.take();
    phases.clear();
    phases.resize((iy_hi - iy_lo).max(1) * row_len, 0.0);
    let taps: Vec<(usize, usize)> = (0..g.kw)
        .map(|kx| valid_range(g.ow, g.sw, kx * g.dw, g.pl, g.w))
        .collect();
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
                for (kx, &(lo, hi)) in taps.iter().enumerate() {
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
    PHASES.set(phases);
}

/// Splits `row` into its `sw` column phases: `out[p·pw + j] = row[j·sw + p]`.
#[inline]
fn split_phases(row: &[f32], sw: usize, pw: usize, out: &mut [f32]) {
    if sw == 2 {
        let (p0, p1) = out.split_at_mut(pw);
        let pairs = row.chunks_exact(2);
        if let [last] = pairs.remainder() {
            p0[row.len() / 2] = *last;
        }
        for ((a, b), pair) in p0.iter_mut().zip(p1.iter_mut()).zip(pairs) {
            *a = pair[0];
            *b = pair[1];
        }
    } else {
        for (j, chunk) in row.chunks(sw).enumerate() {
            for (p, &v) in chunk.iter().enumerate() {
                out[p * pw + j] = v;
            }
        }
    }
}
