//! 2-D convolution equal to PyTorch's `nn.Conv2d` (all padding modes, groups, dilation), with a
//! fused bias + activation (+ residual) epilogue: the op's parameters, shape rule, validation
//! and the choice of algorithm.
//!
//! Strategy: depthwise-style convs (one input channel per group) run a direct loop, 3×3 convs
//! with few output channels (stride 2, or stride 1 with few input channels) a register-blocked
//! direct conv (`crate::direct`), stride-1 3×3 convs with many channels Winograd F(2×2, 3×3)
//! ([`crate::winograd`]), everything else im2col + GEMM ([`crate::gemm_conv`]). The algorithm
//! modules sit on the kernel layer ([`crate::kernel`]) and not on each other (the direct conv
//! borrows the GEMM path's row deinterleave); this module is the only one that knows them all.
//!
//! Invariant: the public functions validate every shape and parameter (checked arithmetic) before
//! the algorithms run, which then only touch indices proven in range by that validation.

use ndarray::{s, ArrayView1, ArrayView4, ArrayViewMut4};

use crate::act::{epilogue_slice, Activation, Residual, Sum};
use crate::error::{check_nonempty, check_out_shape, invalid, mismatch, Error, Result};
use crate::gemm_conv::{depthwise, gemm_conv};
use crate::kernel::{Geom, Operands, Scratch, ONTO_SUM, PAR_MIN_MACS};
use crate::rules::{self, CondKind};
use crate::winograd;
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

impl Conv2dParams {
    /// The attributes PyTorch checks, with these channel counts and kernel (sizes beyond
    /// `i64` saturate, which no check's verdict depends on).
    pub(crate) fn check(&self, in_channels: usize, out_channels: usize, kernel: [usize; 2]) -> rules::ConvCheck {
        rules::ConvCheck {
            in_channels: sat_i64(in_channels),
            out_channels: sat_i64(out_channels),
            kernel: kernel.map(sat_i64),
            stride: self.stride.map(sat_i64),
            padding: self.padding.map(sat_i64),
            dilation: self.dilation.map(sat_i64),
            groups: sat_i64(self.groups),
        }
    }
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

/// `v` as the `i64` the [`rules`] are written in, saturating: the parameter rules only bound
/// values from below or test divisibility, which no size a tensor can have reaches `i64::MAX`
/// for, so saturation never changes their verdict (sizes are converted exactly instead).
pub(crate) fn sat_i64(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `nn.Conv2d`'s parameter checks ([`rules::validate_conv`]) for a weight of `w_shape`
/// (`[cout, cin / groups, kh, kw]`) and `p`, reported as `op`'s [`Error::InvalidParams`]: the
/// checks that need no input, shared by [`conv2d_out_shape`] and `Conv2d::new`.
pub(crate) fn validate_params(op: &'static str, w_shape: [usize; 4], p: &Conv2dParams) -> Result<()> {
    let [cout, cin_g, kh, kw] = w_shape;
    let cin = cin_g.checked_mul(p.groups).ok_or_else(|| {
        invalid(
            op,
            format!("{cin_g} input channels per group × {} groups overflows", p.groups),
        )
    })?;
    rules::validate_conv(&p.check(cin, cout, [kh, kw])).map_err(|reason| invalid(op, reason))?;
    if cin_g == 0 {
        return Err(invalid(op, format!("the weight {w_shape:?} has no input channels")));
    }
    Ok(())
}

/// One spatial axis of `op` through [`rules::conv_axis`]: the output size for an input of
/// `input` along the axis `what` ("height" or "width"), or an [`Error::InputSize`] naming the
/// rule that fails (the padding limits first, as PyTorch pads before it convolves).
#[allow(clippy::too_many_arguments)]
fn conv_axis_size(
    op: &'static str,
    what: &str,
    input: usize,
    kernel: usize,
    stride: usize,
    pad: [usize; 2],
    dilation: usize,
    mode: PaddingMode,
) -> Result<usize> {
    let [pa, pb] = pad;
    let overflow = || Error::InputSize(format!("{op} {what} {input} with its padding {pa}+{pb} overflows"));
    let i = |v: usize| i64::try_from(v).map_err(|_| overflow());
    let axis = rules::ConvAxis {
        kernel: i(kernel)?,
        stride: i(stride)?,
        pad: [i(pa)?, i(pb)?],
        dilation: i(dilation)?,
        mode,
    };
    let (out, conds) = rules::conv_axis(&i(input)?, &axis).ok_or_else(overflow)?;
    let failed = conds
        .iter()
        .filter(|c| !rules::Cond::<i64>::holds_for(c.kind, c.lhs, c.rhs))
        .min_by_key(|c| c.kind == CondKind::Positive);
    let Some(c) = failed else {
        return usize::try_from(out).map_err(|_| overflow());
    };
    Err(Error::InputSize(match c.kind {
        CondKind::Positive => {
            // Exact in u128: every factor fits 64 bits.
            let eff = (dilation as u128) * (kernel as u128).saturating_sub(1) + 1;
            let padded = input as u128 + pa as u128 + pb as u128;
            format!(
                "{op} needs a padded {what} of at least {eff} (kernel {kernel}, dilation {dilation}) but the input {what} {input} padded by {pa}+{pb} is {padded}"
            )
        }
        CondKind::ReflectPad => {
            let p = c.rhs - 1;
            format!("{op}: reflect padding {p} needs an input {what} greater than {p}, got {input}")
        }
        CondKind::CircularPad => {
            let p = c.rhs;
            format!("{op}: circular padding {p} needs an input {what} of at least {p}, got {input}")
        }
        CondKind::Equal | CondKind::Fits | CondKind::Divisible | CondKind::ExactDiv => {
            format!("{op}: {what} {} must be at least {}", c.lhs, c.rhs)
        }
    }))
}

/// Output shape `[n, cout, oh, ow]` of [`conv2d`] for an input of `x_shape` and weight of
/// `w_shape` (`[cout, cin / groups, kh, kw]`); validates every parameter like PyTorch does
/// ([`rules::validate_conv`], [`rules::conv_axis`]).
pub fn conv2d_out_shape(x_shape: [usize; 4], w_shape: [usize; 4], p: &Conv2dParams) -> Result<[usize; 4]> {
    const OP: &str = "conv2d";
    let [n, cin, h, w] = x_shape;
    let [cout, cin_g, kh, kw] = w_shape;
    validate_params(OP, w_shape, p)?;
    check_nonempty(OP, x_shape)?;
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
    let [pt, pb, pl, pr] = p.padding;
    let mode = p.padding_mode;
    let oh = conv_axis_size(OP, "height", h, kh, p.stride[0], [pt, pb], p.dilation[0], mode)?;
    let ow = conv_axis_size(OP, "width", w, kw, p.stride[1], [pl, pr], p.dilation[1], mode)?;
    Ok([n, cout, oh, ow])
}

/// TensorFlow's `SAME` padding `[top, bottom, left, right]` of a conv or pool window on `x`,
/// computed from `x`'s height and width on every call (timm's `pad_same`, used by
/// EfficientDet's `Conv2dSame` and `MaxPool2dSame`): per axis
/// `total = max((ceil(x/s) − 1)·s + (k − 1)·d + 1 − x, 0)`, `total / 2` before and the rest
/// after ([`rules::same_dynamic_pad`]), so the window gives `ceil(x/s)` outputs
/// ([`rules::same_dynamic_axis`]).
pub fn same_dynamic_padding(
    x: ArrayView4<f32>,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<[usize; 4]> {
    const OP: &str = "same_dynamic_padding";
    let [_, _, h, w] = shape4(&x);
    let mut out = [0usize; 4];
    for (a, size) in [h, w].into_iter().enumerate() {
        let i = |v: usize| i64::try_from(v).ok();
        let pad = (|| rules::same_dynamic_pad(i(size)?, i(kernel[a])?, i(stride[a])?, i(dilation[a])?))()
            .ok_or_else(|| {
                invalid(
                    OP,
                    format!(
                        "kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must be at least 1 and the padded size of {h}×{w} must fit"
                    ),
                )
            })?;
        for (k, p) in pad.into_iter().enumerate() {
            out[2 * a + k] = usize::try_from(p).map_err(|_| invalid(OP, "a negative padding (a bug in the rule)"))?;
        }
    }
    Ok(out)
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
    let [pt, pb, pl, pr] = pad;
    // The padded size is a 1-tap conv's output, with the same padding limits.
    let ph = conv_axis_size("pad2d", "height", h, 1, 1, [pt, pb], 1, mode)?;
    let pw = conv_axis_size("pad2d", "width", w, 1, 1, [pl, pr], 1, mode)?;
    // Allocate first: it fails cleanly for absurd sizes before the index tables do.
    let mut out = crate::try_zeros([n, c, ph, pw], "pad2d")?;
    // Source index of padded position `i` (in padded coordinates), or None for a zero.
    let map = |i: usize, before: usize, dim: usize| pad_source(i as isize - before as isize, dim, mode);
    let xs = x.as_standard_layout();
    let (Some(src), Some(dst)) = (xs.as_slice(), out.as_slice_mut()) else {
        return Err(invalid("pad2d", "internal: could not make the tensors contiguous"));
    };
    // Per output row: the interior is one copy; only the pad columns use the index table.
    for (iplane, oplane) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(ph * pw)) {
        for (oy, orow) in oplane.chunks_exact_mut(pw).enumerate() {
            let Some(sy) = map(oy, pt, h) else { continue };
            let irow = &iplane[sy * w..][..w];
            orow[pl..pl + w].copy_from_slice(irow);
            for ox in (0..pl).chain(pl + w..pw) {
                if let Some(sx) = map(ox, pl, w) {
                    orow[ox] = irow[sx];
                }
            }
        }
    }
    Ok(out)
}

/// The input index that position `j` of an axis of length `d ≥ 1` (negative: in the padding
/// before it) reads under `mode`, or `None` for a zero. `j` must lie within the padding the
/// mode allows (checked by the shape rule): reflect `-d < j < 2d - 1`, circular `-d ≤ j < 2d`.
/// The one rule of padding, for [`pad2d`] and the direct conv's folded padding.
pub(crate) fn pad_source(j: isize, d: usize, mode: PaddingMode) -> Option<usize> {
    let d = d as isize;
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
    usize::try_from(k).ok().filter(|&k| k < d as usize)
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
    let mut out = crate::try_output(shape, "conv2d")?;
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
    conv2d_into_prepared(x, w, bias, p, out, Prepared::default(), None, false)
}

/// [`conv2d_into`] with what a [`crate::Conv2d`] computed from `w` at load ([`Prepared`]: its
/// Winograd transform and its packing, which must be of this very `w`). With `residual` (of
/// the output's shape) the result is `act((conv(x) + bias) + residual)`, added in that order,
/// or with its flag set `act(conv(x) + bias) + residual`. With `onto` (and no `residual`) the
/// conv is added onto what `out` holds: `act(out + conv(x) + bias)`, where the pixel-lane
/// packed GEMM adds each block of the reduction's sum to `out` in turn (rounding differs from
/// the residual form's by the order of the additions), Winograd and the transposed product
/// read each row of `out` before writing it, and the other paths add `out`'s contents, copied
/// aside, as a residual.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_into_prepared(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &Conv2dParams,
    mut out: ArrayViewMut4<f32>,
    prep: Prepared<'_>,
    residual: Option<(ArrayView4<f32>, bool)>,
    onto: bool,
) -> Result<()> {
    let after_act = residual.as_ref().is_some_and(|r| r.1);
    let residual = residual.map(|r| r.0);
    let u = prep.winograd;
    let x_shape = shape4(&x);
    let w_shape = shape4(&w);
    let o_shape = conv2d_out_shape(x_shape, w_shape, p)?;
    check_out_shape("conv2d", &x_shape, out.dim(), o_shape)?;
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
    // A batch whose images are each contiguous but not together (generated code's channel
    // views of a concat's buffer) runs image by image: no contiguous copy of the input, no
    // temporary output.
    let strided = |d: &[usize], st: &[isize], std: bool| !std && d[0] > 1 && per_image_contiguous(d, st);
    let x_strided = strided(x.shape(), x.strides(), x.is_standard_layout());
    let o_strided = strided(out.shape(), out.strides(), out.is_standard_layout());
    let r_strided = residual
        .as_ref()
        .is_some_and(|r| strided(r.shape(), r.strides(), r.is_standard_layout()));
    if x_strided || o_strided || r_strided {
        for i in 0..x_shape[0] {
            let one = s![i..i + 1, .., .., ..];
            let r = residual.as_ref().map(|r| r.slice(one));
            conv2d_into_prepared(
                x.slice(one),
                w.view(),
                bias,
                p,
                out.slice_mut(one),
                prep,
                r.map(|r| (r, after_act)),
                onto,
            )?;
        }
        return Ok(());
    }
    let rs = residual.as_ref().map(|r| r.as_standard_layout());
    let res = match &rs {
        Some(r) => Some(Residual {
            data: r
                .as_slice()
                .ok_or_else(|| invalid("conv2d", "internal: could not make the residual contiguous"))?,
            after_act,
        }),
        None => None,
    };
    let bias_vec = match &bias {
        Some(b) if b.len() != w_shape[0] => {
            return Err(mismatch(
                "conv2d",
                &w_shape,
                &[b.len()],
                format!("the bias must have {} entries, one per output channel", w_shape[0]),
            ))
        }
        Some(b) => match b.as_slice() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(b.to_vec()),
        },
        None => std::borrow::Cow::Owned(vec![0.0; w_shape[0]]),
    };
    let geom = |[n, cin, h, w]: [usize; 4], pad: [usize; 4]| Geom {
        n,
        cin,
        h,
        w,
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
    // Non-zero padding modes pad a copy of the input, except on the direct path, whose band
    // fill reads the padding from the input itself.
    let mut mode = PaddingMode::Zeros;
    let padded;
    let (xv, pad) = if p.padding_mode == PaddingMode::Zeros || p.padding == [0; 4] {
        (x.view(), p.padding)
    } else if direct_fits(&geom(x_shape, p.padding)) {
        mode = p.padding_mode;
        (x.view(), p.padding)
    } else {
        padded = crate::arena::Temp(pad2d(x, p.padding, p.padding_mode)?);
        (padded.0.view(), [0; 4])
    };
    let g = geom(shape4(&xv), pad);
    let xs = xv.as_standard_layout();
    let ws = w.as_standard_layout();
    // Both are standard layout now, so as_slice cannot fail; keep the error path anyway.
    let (Some(xsl), Some(wsl)) = (xs.as_slice(), ws.as_slice()) else {
        return Err(invalid("conv2d", "internal: could not make the operands contiguous"));
    };
    let ops = Operands {
        x: xsl,
        w: wsl,
        bias: &bias_vec,
        wpack: prep.packed.filter(|_| prep.packed_groups == p.groups),
        // Made and read only by ungrouped calls (the channel-vector path's).
        wpack_cv: prep.packed_cv.filter(|_| p.groups == 1),
    };
    let sum = if onto { Sum::Onto } else { Sum::from(res) };
    match out.as_slice_mut() {
        Some(o) => run(&g, mode, ops, u, p.act, o, sum),
        None => {
            let mut tmp = crate::try_output(o_shape, "conv2d")?;
            if onto {
                tmp.assign(&out);
            }
            if let Some(o) = tmp.as_slice_mut() {
                run(&g, mode, ops, u, p.act, o, sum);
            }
            out.assign(&tmp);
            crate::recycle(tmp);
        }
    }
    Ok(())
}

/// Whether every image (index of axis 0) of an array with dims `d` and strides `st` is a
/// standard-layout block: strides `[_, d2·d3, d3, 1]` (axes of length 1 exempt).
fn per_image_contiguous(d: &[usize], st: &[isize]) -> bool {
    let want = [d[2] * d[3], d[3], 1];
    (1..4).all(|k| d[k] <= 1 || usize::try_from(st[k]).ok() == Some(want[k - 1]))
}

/// What a prepared conv ([`crate::Conv2d`]) computed from its weight at load.
#[derive(Clone, Copy, Default)]
pub(crate) struct Prepared<'a> {
    /// The Winograd transform `U` of the weight (`winograd::transform_weights`; valid for any
    /// parameters, it depends on the weight only).
    pub winograd: Option<winograd::U<'a>>,
    /// Where the weight packed for the AVX2 GEMM (`packed::pack_groups`) with
    /// `packed_groups` groups is kept once made: made and used only by a call with that many
    /// groups that takes the GEMM path.
    pub packed: Option<&'a std::sync::OnceLock<Option<Vec<f32>>>>,
    /// The group count `packed` was made for.
    pub packed_groups: usize,
    /// Where the weight packed for the channel-vector direct conv (`direct::pack_cv`) is kept
    /// once made: made and used only by an ungrouped call that takes that path.
    pub packed_cv: Option<&'a std::sync::OnceLock<Option<Vec<f32>>>>,
}

/// Whether the direct path takes `g` (never off x86-64).
fn direct_fits(g: &Geom) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::direct::fits(g) || crate::direct::fits_cv(g)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

/// Runs a validated conv; `out` is the standard-layout `[n, cout, oh, ow]` buffer, `u` the
/// precomputed Winograd transform of the weight if any. `g`'s padding is of `mode`, which is
/// not zeros only for a conv the direct path takes ([`direct_fits`]). With [`Sum::Onto`], onto
/// what `out` holds ([`conv2d_into_prepared`]).
fn run(g: &Geom, mode: PaddingMode, ops: Operands, u: Option<winograd::U>, act: Activation, out: &mut [f32], sum: Sum) {
    if g.macs() >= PAR_MIN_MACS {
        crate::kernel::note_parallel_work();
    }
    if sum.onto() {
        if !direct_fits(g) && g.cin_g() > 1 && run_path(g, ops, u, act, out, sum) {
            return;
        }
        // The other paths add the output's contents, copied aside, as a residual.
        let mut copy = Scratch::take(&ONTO_SUM, out.len());
        copy[..out.len()].copy_from_slice(out);
        let residual = Residual {
            data: &copy[..out.len()],
            after_act: false,
        };
        return run(g, mode, ops, u, act, out, Sum::Residual(residual));
    }
    let residual = sum.residual();
    #[cfg(target_arch = "x86_64")]
    if crate::direct::fits(g) {
        return crate::direct::conv3x3(g, mode, ops, act, out, residual);
    }
    #[cfg(target_arch = "x86_64")]
    if crate::direct::fits_cv(g) {
        return crate::direct::conv_cv(g, mode, ops, act, out, residual);
    }
    debug_assert_eq!(mode, PaddingMode::Zeros);
    match residual {
        // The GEMM and Winograd epilogues add the residual while the output block is in cache.
        _ if g.cin_g() > 1 => {
            run_path(g, ops, u, act, out, sum);
        }
        None => depthwise(g, ops, act, out),
        Some(r) => {
            depthwise(g, ops, Activation::Identity, out);
            epilogue_slice(out, 0.0, act, Some(r));
        }
    }
}

/// Runs a validated conv with more than one input channel per group on the path its geometry
/// selects, adding `sum`: a residual's epilogue computes `act((conv + bias) + residual)`; with
/// [`Sum::Onto`] it adds what `out` holds where the path does so in place (Winograd, the GEMM)
/// and returns whether it ran (having written nothing if not); else it returns true.
fn run_path(g: &Geom, ops: Operands, u: Option<winograd::U>, act: Activation, out: &mut [f32], sum: Sum) -> bool {
    // A `U` packed for the AVX-512 GEMM where that kernel is off (a test forcing AVX2) is
    // transformed again instead.
    let u = u.filter(|u| !u.panels || winograd::panels_here());
    if !winograd_fits(g, u.is_some()) {
        return gemm_conv(g, ops, act, out, sum);
    }
    match u {
        Some(u) => winograd::conv3x3(g, ops.x, u, ops.bias, act, out, sum),
        None if !winograd::conv3x3_transforming(g, ops, act, out, sum) => return gemm_conv(g, ops, act, out, sum),
        None => {}
    }
    true
}

/// Whether `g` takes the Winograd F(2×2, 3×3) path: stride-1 undilated 3×3 with enough channels
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
/// 1.7–2.1× at 12×12, 1.35–1.62× at 14×14 and 1.61× at 7×7 batch 4 (196 pixels). That was
/// F(4×4) against the AVX2 GEMM; with F(2×2) (cheaper transforms) on Zen 5 (AVX-512, whole
/// forwards interleaved, gate 120 against 36): seed 003 (8×8 and smaller heads) 36.4–37.7 →
/// 33.4–35.5 ms at 1 thread, 19.9–20.3 → 18.8–19.6 at 2; ResNet-50 FPN (7×7 stage) 1–3%
/// faster; a gate of 16 measured the same as 36. Not re-measured on AVX2-only machines. On an
/// Intel Xeon (family 6 model 167, session 21) a gate of 64 (ResNet-50's 7² stage on GEMM)
/// was slower: ResNet-50 FPN at 1 thread 75.0–76.4 → 76.7–79.0 ms (3 interleaved runs).
const WINOGRAD_MIN_PIXELS_PREPARED: usize = 36;
