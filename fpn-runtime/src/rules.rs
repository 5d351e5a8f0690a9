//! The size and validity rule of every op, written once.
//!
//! Each spatial rule is generic over [`SizeArith`]: the runtime instantiates it with `i64`
//! (concrete sizes, in `*_out_shape` and every op's validation), the compiler with its symbolic
//! `Dim` (shape inference, the accepted-size analysis, the interpreter's and the generated code's
//! size checks). A rule returns the output size plus the [`Cond`]itions under which the op is
//! defined, so "does PyTorch accept this size" is decided by the same expressions everywhere.
//!
//! Parameter-only rules (`validate_*`) return `Err(reason)` in PyTorch's words; the compiler
//! reports them at the source, the runtime as [`crate::Error::InvalidParams`].

use crate::conv::PaddingMode;

/// Integer size arithmetic the rules are written in. Every operation is checked: `None` means
/// the result does not fit `i64`.
pub trait SizeArith: Clone {
    /// A constant.
    fn constant(v: i64) -> Self;
    /// `self + k`.
    fn plus(&self, k: i64) -> Option<Self>;
    /// `floor(self / d)`, `d ≥ 1`.
    fn floor_div(&self, d: i64) -> Option<Self>;
    /// `ceil(self / d)`, `d ≥ 1`.
    fn ceil_div(&self, d: i64) -> Option<Self>;
    /// `self · k`, `k ≥ 1`.
    fn times(&self, k: i64) -> Option<Self>;
    /// `min(self, other)`.
    fn min_with(&self, other: &Self) -> Self;
    /// `trunc(f64(self) · s)` computed in `f64`, PyTorch's `upsample` output size for a
    /// `scale_factor` (`static_cast<int64_t>(input_size * scale)` in `compute_output_size`).
    fn scale_f64(&self, s: f64) -> Option<Self>;
}

impl SizeArith for i64 {
    fn constant(v: i64) -> Self {
        v
    }
    fn plus(&self, k: i64) -> Option<Self> {
        self.checked_add(k)
    }
    fn floor_div(&self, d: i64) -> Option<Self> {
        (d >= 1).then(|| self.div_euclid(d))
    }
    fn ceil_div(&self, d: i64) -> Option<Self> {
        (d >= 1).then(|| -((-self).div_euclid(d)))
    }
    fn times(&self, k: i64) -> Option<Self> {
        (k >= 1).then(|| self.checked_mul(k)).flatten()
    }
    fn min_with(&self, other: &Self) -> Self {
        (*self).min(*other)
    }
    fn scale_f64(&self, s: f64) -> Option<Self> {
        scale_size(*self, s)
    }
}

/// `trunc(x · s)` in `f64`, the one place the float upsample size is computed. `None` if `s`
/// is not positive and finite or the result does not fit `i64`.
pub fn scale_size(x: i64, s: f64) -> Option<i64> {
    if !(s.is_finite() && s > 0.0) {
        return None;
    }
    let v = (x as f64 * s).trunc();
    // i64::MAX as f64 rounds up to 2^63, which does not fit
    (v.abs() < i64::MAX as f64).then_some(v as i64)
}

/// What a [`Cond`] requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CondKind {
    /// An output height or width must be at least 1: `lhs ≥ 1`.
    Positive,
    /// Reflect padding must be smaller than the padded size: `lhs ≥ rhs` with `rhs = pad + 1`.
    ReflectPad,
    /// Circular padding must not exceed the padded size: `lhs ≥ rhs` with `rhs = pad`.
    CircularPad,
    /// Sizes that meet (a merge's inputs) must be equal: `lhs == rhs`.
    Equal,
    /// A window cut out of the input must fit in it (`crop`, `pad` to a smaller size): `lhs ≥
    /// rhs` with `lhs` the input size and `rhs` the size the window needs.
    Fits,
    /// A size must be a multiple of a factor `r` (`pixel_unshuffle`): `lhs ≥ rhs` with
    /// `lhs = r·floor(x/r)` and `rhs = x` (equal exactly when `r` divides `x`).
    Divisible,
    /// A division in an input size expression (`H/8`) must be exact: `lhs = d·floor(a/d)`
    /// equals `rhs = a` (the compiler's; no op checks it).
    ExactDiv,
}

/// A condition on sizes under which an op is defined.
#[derive(Clone, Debug, PartialEq)]
pub struct Cond<S> {
    /// Which rule.
    pub kind: CondKind,
    /// Left side.
    pub lhs: S,
    /// Right side.
    pub rhs: S,
}

impl<S> Cond<S> {
    /// Whether the condition holds for concrete sides.
    pub fn holds_for(kind: CondKind, lhs: i64, rhs: i64) -> bool {
        match kind {
            CondKind::Equal | CondKind::ExactDiv => lhs == rhs,
            CondKind::Positive
            | CondKind::ReflectPad
            | CondKind::CircularPad
            | CondKind::Fits
            | CondKind::Divisible => lhs >= rhs,
        }
    }
}

/// The conditions of one axis rule: at most two (an output size ≥ 1 and a padding limit), kept
/// inline so the runtime's per-call shape checks allocate nothing. Derefs to a slice.
#[derive(Clone, Debug, PartialEq)]
pub struct Conds<S> {
    items: [Option<Cond<S>>; 2],
}

impl<S> Default for Conds<S> {
    fn default() -> Self {
        Self { items: [None, None] }
    }
}

impl<S> Conds<S> {
    /// One condition.
    pub fn one(c: Cond<S>) -> Self {
        Self { items: [Some(c), None] }
    }

    /// Adds a second condition (the axis rules add at most two).
    fn push(&mut self, c: Cond<S>) {
        if let Some(slot) = self.items.iter_mut().find(|s| s.is_none()) {
            *slot = Some(c);
        }
    }

    /// The conditions in order.
    pub fn iter(&self) -> impl Iterator<Item = &Cond<S>> {
        self.items.iter().flatten()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items[0].is_none()
    }
}

impl<S> IntoIterator for Conds<S> {
    type Item = Cond<S>;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Cond<S>>, 2>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter().flatten()
    }
}

impl<'a, S> IntoIterator for &'a Conds<S> {
    type Item = &'a Cond<S>;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Option<Cond<S>>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter().flatten()
    }
}

/// One axis of a convolution (PyTorch `nn.Conv2d`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvAxis {
    /// Kernel size.
    pub kernel: i64,
    /// Stride.
    pub stride: i64,
    /// Padding before and after.
    pub pad: [i64; 2],
    /// Dilation.
    pub dilation: i64,
    /// How the padding is filled.
    pub mode: PaddingMode,
}

/// Output size of one conv axis, `floor((x + p0 + p1 − d·(k−1) − 1)/s) + 1`, and the
/// conditions: output ≥ 1; reflect padding `< x`; circular padding `≤ x` (PyTorch's
/// `F.pad` limits). `None` on overflow.
pub fn conv_axis<S: SizeArith>(x: &S, a: &ConvAxis) -> Option<(S, Conds<S>)> {
    let reach = a.dilation.checked_mul(a.kernel.checked_sub(1)?)?;
    let k = a.pad[0].checked_add(a.pad[1])?.checked_sub(reach)?.checked_sub(1)?;
    let out = x.plus(k)?.floor_div(a.stride)?.plus(1)?;
    let limit = pad_limit(x, a.pad, a.mode)?;
    let (out, mut conds) = positive(out);
    if let Some(c) = limit {
        conds.push(c);
    }
    Some((out, conds))
}

/// An axis's output size `out` with the condition that it is at least 1 (`CondKind::Positive`).
fn positive<S: SizeArith>(out: S) -> (S, Conds<S>) {
    let cond = Cond {
        kind: CondKind::Positive,
        lhs: out.clone(),
        rhs: S::constant(1),
    };
    (out, Conds::one(cond))
}

/// `F.pad`'s limit on an axis of size `x` padded by `pad` (`[before, after]`) in `mode`:
/// reflect padding must be `< x`, circular padding `≤ x`; `Some(None)` when there is no limit,
/// `None` on overflow.
fn pad_limit<S: SizeArith>(x: &S, pad: [i64; 2], mode: PaddingMode) -> Option<Option<Cond<S>>> {
    let pmax = pad[0].max(pad[1]);
    Some(match mode {
        PaddingMode::Reflect if pmax > 0 => Some(Cond {
            kind: CondKind::ReflectPad,
            lhs: x.clone(),
            rhs: S::constant(pmax.checked_add(1)?),
        }),
        PaddingMode::Circular if pmax > 0 => Some(Cond {
            kind: CondKind::CircularPad,
            lhs: x.clone(),
            rhs: S::constant(pmax),
        }),
        _ => None,
    })
}

/// One axis of a pooling window (PyTorch `MaxPool2d` / `AvgPool2d`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolAxis {
    /// Window size.
    pub kernel: i64,
    /// Stride.
    pub stride: i64,
    /// Symmetric padding.
    pub pad: i64,
    /// Dilation (1 for average pooling).
    pub dilation: i64,
    /// Round up instead of down.
    pub ceil_mode: bool,
}

/// PyTorch's `pooling_output_shape`: `floor` or `ceil` of `(x + 2p − d·(k−1) − 1)/s + 1`; in
/// ceil mode the last window must start inside the input or its left padding, which is
/// `min(…, ceil((x + p)/s))` (docs/sizes.md). Condition: output ≥ 1. `None` on overflow.
pub fn pool_axis<S: SizeArith>(x: &S, a: &PoolAxis) -> Option<(S, Conds<S>)> {
    let reach = a.dilation.checked_mul(a.kernel.checked_sub(1)?)?;
    let num = x.plus(a.pad.checked_mul(2)?.checked_sub(reach)?.checked_sub(1)?)?;
    let out = if a.ceil_mode {
        let o = num.ceil_div(a.stride)?.plus(1)?;
        let bound = x.plus(a.pad)?.ceil_div(a.stride)?;
        o.min_with(&bound)
    } else {
        num.floor_div(a.stride)?.plus(1)?
    };
    Some(positive(out))
}

/// Output size of one axis of an upsample by `scale` (`trunc(x·scale)` in `f64`) and its
/// condition (output ≥ 1). `None` on overflow or a scale that is not positive and finite.
pub fn upsample_axis<S: SizeArith>(x: &S, scale: f64) -> Option<(S, Conds<S>)> {
    let out = x.scale_f64(scale)?;
    Some(positive(out))
}

/// One axis of a transposed convolution (PyTorch `nn.ConvTranspose2d`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTransposeAxis {
    /// Kernel size.
    pub kernel: i64,
    /// Stride.
    pub stride: i64,
    /// Padding (removed from both ends of the full output).
    pub pad: i64,
    /// Extra size added to one end (`output_padding`).
    pub output_padding: i64,
    /// Dilation.
    pub dilation: i64,
}

/// Output size of one transposed-conv axis, PyTorch's
/// `(x − 1)·s − 2p + d·(k − 1) + output_padding + 1`, and its condition (output ≥ 1). `None` on
/// overflow.
pub fn conv_transpose_axis<S: SizeArith>(x: &S, a: &ConvTransposeAxis) -> Option<(S, Conds<S>)> {
    let reach = a.dilation.checked_mul(a.kernel.checked_sub(1)?)?;
    // (x − 1)·s + (reach − 2p + op + 1) = x·s + (reach − 2p + op + 1 − s)
    let k = reach
        .checked_sub(a.pad.checked_mul(2)?)?
        .checked_add(a.output_padding)?
        .checked_add(1)?
        .checked_sub(a.stride)?;
    let out = x.times(a.stride)?.plus(k)?;
    Some(positive(out))
}

/// One axis of `F.pad(x, …, mode)` by `[before, after]` (both ≥ 0): `x + before + after`, with
/// `F.pad`'s limits: reflect padding `< x`, circular padding `≤ x`. `None` on overflow.
pub fn pad_axis<S: SizeArith>(x: &S, pad: [i64; 2], mode: PaddingMode) -> Option<(S, Conds<S>)> {
    let out = x.plus(pad[0].checked_add(pad[1])?)?;
    let conds = pad_limit(x, pad, mode)?.map_or_else(Conds::default, Conds::one);
    Some((out, conds))
}

/// One axis of a crop to `size` starting at `offset` (`None`: centred, `(x − size)/2` rounded
/// down): the output is `size`, defined when the window fits, `x ≥ offset + size`. `None` on
/// overflow.
pub fn crop_axis<S: SizeArith>(x: &S, size: i64, offset: Option<i64>) -> Option<(S, Conds<S>)> {
    let need = size.checked_add(offset.unwrap_or(0))?;
    let conds = Conds::one(Cond {
        kind: CondKind::Fits,
        lhs: x.clone(),
        rhs: S::constant(need),
    });
    Some((S::constant(size), conds))
}

/// The `[before, after]` split of `total` extra (or, negative, fewer) elements when one size is
/// padded or cropped to another: milesial U-Net's `diff // 2` before, the rest after (Python's
/// floor division, so a negative `total` crops one more after than before).
pub fn split_diff(total: i64) -> [i64; 2] {
    let before = total.div_euclid(2);
    [before, total - before]
}

/// One axis of `nn.PixelShuffle(r)`: `x · r`. `None` on overflow or `r < 1`.
pub fn pixel_shuffle_axis<S: SizeArith>(x: &S, r: i64) -> Option<(S, Conds<S>)> {
    Some((x.times(r)?, Conds::default()))
}

/// One axis of `nn.PixelUnshuffle(r)`: `x / r`, defined when `r` divides `x` (PyTorch: "should
/// be divisible by downscale_factor"). `None` on overflow or `r < 1`.
pub fn pixel_unshuffle_axis<S: SizeArith>(x: &S, r: i64) -> Option<(S, Conds<S>)> {
    let out = x.floor_div(r)?;
    let conds = Conds::one(Cond {
        kind: CondKind::Divisible,
        lhs: out.times(r)?,
        rhs: x.clone(),
    });
    Some((out, conds))
}

/// One axis of TensorFlow-style dynamic `same` padding (EfficientDet's `Conv2dSame` /
/// `MaxPool2dSame`): the output is `ceil(x / s)`; the input is padded by
/// `max((ceil(x/s) − 1)·s + (k − 1)·d + 1 − x, 0)` in total, `total/2` before (see
/// [`same_dynamic_pad`]). Condition: output ≥ 1. `None` on overflow.
pub fn same_dynamic_axis<S: SizeArith>(x: &S, stride: i64) -> Option<(S, Conds<S>)> {
    let out = x.ceil_div(stride)?;
    Some(positive(out))
}

/// The `[before, after]` padding of [`same_dynamic_axis`] for a concrete size `x`:
/// `total = max((ceil(x/s) − 1)·s + (k − 1)·d + 1 − x, 0)`, `before = total / 2`. `None` on
/// overflow or a parameter below 1.
pub fn same_dynamic_pad(x: i64, kernel: i64, stride: i64, dilation: i64) -> Option<[i64; 2]> {
    if kernel < 1 || stride < 1 || dilation < 1 {
        return None;
    }
    let out = x.ceil_div(stride)?;
    let span = dilation.checked_mul(kernel - 1)?.checked_add(1)?;
    let total = out
        .checked_sub(1)?
        .checked_mul(stride)?
        .checked_add(span)?
        .checked_sub(x)?
        .max(0);
    Some([total / 2, total - total / 2])
}

/// PyTorch's parameter checks of `nn.ConvTranspose2d`: those of [`validate_conv`] on `c` (its
/// padding symmetric) plus "output padding must be smaller than either stride or dilation".
pub fn validate_conv_transpose(c: &ConvCheck, output_padding: [i64; 2]) -> Result<(), String> {
    validate_conv(c)?;
    let (stride, dilation) = (c.stride, c.dilation);
    for a in 0..2 {
        if output_padding[a] < 0 {
            return Err(format!("output_padding {output_padding:?} must not be negative"));
        }
        if output_padding[a] >= stride[a] && output_padding[a] >= dilation[a] {
            return Err(format!(
                "output padding must be smaller than either stride or dilation, but got output_padding_height: {}, output_padding_width: {}, stride_height: {}, stride_width: {}, dilation_height: {}, dilation_width: {}",
                output_padding[0], output_padding[1], stride[0], stride[1], dilation[0], dilation[1]
            ));
        }
    }
    Ok(())
}

/// PyTorch `nn.GroupNorm`'s check: `groups ≥ 1` divides the channels ("num_channels must be
/// divisible by num_groups").
pub fn validate_group_norm(channels: i64, groups: i64) -> Result<(), String> {
    if groups < 1 {
        return Err(format!("num_groups {groups} must be at least 1"));
    }
    if channels % groups != 0 {
        return Err(format!(
            "num_channels must be divisible by num_groups (got {channels} channels, {groups} groups)"
        ));
    }
    Ok(())
}

/// PyTorch `pixel_shuffle`'s check: the channels are a multiple of `r²` ("pixel_shuffle expects
/// its input's 'channel' dimension to be divisible by the square of upscale_factor").
pub fn validate_pixel_shuffle(channels: i64, r: i64) -> Result<(), String> {
    let r2 = r
        .checked_mul(r)
        .ok_or_else(|| format!("upscale_factor {r} overflows when squared"))?;
    if r < 1 {
        return Err(format!("upscale_factor {r} must be at least 1"));
    }
    if channels % r2 != 0 {
        return Err(format!(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of upscale_factor, but input.size(-3)={channels} is not divisible by {r2}"
        ));
    }
    Ok(())
}

/// What PyTorch checks of a conv's attributes (and, with symmetric padding, a transposed
/// conv's; see [`validate_conv`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvCheck {
    /// Input channels.
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Kernel `[h, w]`.
    pub kernel: [i64; 2],
    /// Stride `[h, w]`.
    pub stride: [i64; 2],
    /// Padding `[top, bottom, left, right]`.
    pub padding: [i64; 4],
    /// Dilation `[h, w]`.
    pub dilation: [i64; 2],
    /// Groups.
    pub groups: i64,
}

/// PyTorch's parameter checks of `nn.Conv2d`: positive kernel, stride, dilation and groups;
/// non-negative padding; groups dividing both channel counts; `padding='same'` only with
/// stride 1 (checked where `same` is resolved).
pub fn validate_conv(c: &ConvCheck) -> Result<(), String> {
    let ConvCheck {
        in_channels,
        out_channels,
        kernel,
        stride,
        padding,
        dilation,
        groups,
    } = *c;
    validate_window(kernel, stride, dilation)?;
    if padding.iter().any(|&p| p < 0) {
        return Err(format!("padding {padding:?} must not be negative"));
    }
    if groups < 1 {
        return Err("groups must be at least 1".into());
    }
    if out_channels < 1 {
        return Err(format!("{out_channels} output channels; there must be at least 1"));
    }
    if out_channels % groups != 0 {
        return Err(format!(
            "out_channels ({out_channels}) must be divisible by groups ({groups})"
        ));
    }
    if in_channels % groups != 0 {
        return Err(format!(
            "in_channels ({in_channels}) must be divisible by groups ({groups})"
        ));
    }
    Ok(())
}

/// The checks a conv's or pool's window starts with: kernel, stride and dilation at least 1.
fn validate_window(kernel: [i64; 2], stride: [i64; 2], dilation: [i64; 2]) -> Result<(), String> {
    if kernel.iter().any(|&k| k < 1) {
        return Err(format!("kernel {kernel:?} must be at least 1"));
    }
    if stride.iter().any(|&s| s < 1) {
        return Err(format!("stride {stride:?} must be at least 1"));
    }
    if dilation.iter().any(|&d| d < 1) {
        return Err(format!("dilation {dilation:?} must be at least 1"));
    }
    Ok(())
}

/// PyTorch's `pool2d_shape_check` on parameters: positive kernel, stride and dilation, and
/// "pad should be smaller than or equal to half of kernel size" — half of the *undilated*
/// kernel, as PyTorch compares `kW / 2 >= padW`.
pub fn validate_pool(kernel: [i64; 2], stride: [i64; 2], padding: [i64; 2], dilation: [i64; 2]) -> Result<(), String> {
    validate_window(kernel, stride, dilation)?;
    for a in 0..2 {
        if padding[a] < 0 || padding[a] > kernel[a] / 2 {
            return Err(format!(
                "pad should be smaller than or equal to half of kernel size, but got padW = {}, padH = {}, kW = {}, kH = {}",
                padding[1], padding[0], kernel[1], kernel[0]
            ));
        }
    }
    Ok(())
}

/// PyTorch's `interpolate` checks: a positive finite scale, and `align_corners` only with an
/// interpolating mode ("align_corners option can only be set with the interpolating modes:
/// linear | bilinear | bicubic | trilinear").
pub fn validate_upsample(scale: Option<[f64; 2]>, bilinear: bool, align_corners: bool) -> Result<(), String> {
    if let Some(s) = scale {
        if !s.iter().all(|v| v.is_finite() && *v > 0.0) {
            return Err(format!("scale factors {s:?} must be positive and finite"));
        }
    }
    if align_corners && !bilinear {
        return Err(
            "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_scale_rounds_like_pytorch() {
        // 25 · 1.16 = 28.999999999999996 in f64: PyTorch gives 28, the exact fraction 29.
        assert_eq!(scale_size(25, 1.16), Some(28));
        assert_eq!(scale_size(21, 17.0 / 7.0), Some(50));
        assert_eq!(scale_size(22, 15.0 / 11.0), Some(29));
        assert_eq!(scale_size(3, 1.0 / 3.0), Some(1));
        assert_eq!(scale_size(7, 2.0), Some(14));
        assert_eq!(scale_size(7, f64::NAN), None);
    }

    #[test]
    fn pool_padding_uses_the_undilated_kernel() {
        assert!(validate_pool([2, 2], [1, 1], [2, 2], [3, 3]).is_err());
        assert!(validate_pool([3, 3], [1, 1], [1, 1], [3, 3]).is_ok());
    }

    #[test]
    fn reach_rules_match_pytorch_formulas() {
        // ConvTranspose2d(k=3, s=2, p=1, output_padding=1) doubles: (7-1)·2 - 2 + 2 + 1 + 1 = 14
        let ct = ConvTransposeAxis {
            kernel: 3,
            stride: 2,
            pad: 1,
            output_padding: 1,
            dilation: 1,
        };
        assert_eq!(conv_transpose_axis(&7i64, &ct).map(|(o, _)| o), Some(14));
        // k=1, p=1 on 1: (0) - 2 + 0 + 0 + 1 = -1, refused
        let ct1 = ConvTransposeAxis {
            kernel: 1,
            stride: 1,
            pad: 1,
            output_padding: 0,
            dilation: 1,
        };
        let (o, c) = conv_transpose_axis(&1i64, &ct1).unwrap_or((0, Conds::default()));
        let c: Vec<_> = c.into_iter().collect();
        assert_eq!(o, -1);
        assert!(!Cond::<i64>::holds_for(c[0].kind, c[0].lhs, c[0].rhs));
        let check = |stride, dilation| ConvCheck {
            in_channels: 4,
            out_channels: 4,
            kernel: [3, 3],
            stride,
            padding: [1; 4],
            dilation,
            groups: 1,
        };
        assert!(validate_conv_transpose(&check([2, 2], [1, 1]), [2, 0]).is_err());
        assert!(validate_conv_transpose(&check([1, 1], [2, 1]), [1, 0]).is_ok());
        assert!(validate_conv_transpose(&check([1, 1], [1, 1]), [1, 0]).is_err());
        assert!(validate_conv_transpose(
            &ConvCheck {
                groups: 3,
                ..check([2, 2], [1, 1])
            },
            [1, 0]
        )
        .is_err());
        // milesial U-Net: diff 3 → 1 before, 2 after; F.pad floor division for negatives
        assert_eq!(split_diff(3), [1, 2]);
        assert_eq!(split_diff(-3), [-2, -1]);
        // pixel_unshuffle: 13 is not a multiple of 2 (2·6 = 12 < 13)
        let (o, c) = pixel_unshuffle_axis(&13i64, 2).unwrap_or((0, Conds::default()));
        let c: Vec<_> = c.into_iter().collect();
        assert_eq!(o, 6);
        assert!(!Cond::<i64>::holds_for(c[0].kind, c[0].lhs, c[0].rhs));
        // TF 'SAME': k3 s2 on 7 → 4 outputs, total pad 2 (1/1); on 8 → total 1 (0 before, 1 after)
        assert_eq!(same_dynamic_pad(7, 3, 2, 1), Some([1, 1]));
        assert_eq!(same_dynamic_pad(8, 3, 2, 1), Some([0, 1]));
        assert_eq!(same_dynamic_axis(&8i64, 2).map(|(o, _)| o), Some(4));
    }

    #[test]
    fn conv_axis_matches_the_formula() {
        let a = ConvAxis {
            kernel: 3,
            stride: 2,
            pad: [1, 1],
            dilation: 1,
            mode: PaddingMode::Reflect,
        };
        let (o, c) = conv_axis(&7i64, &a).unwrap_or((0, Conds::default()));
        let c: Vec<_> = c.into_iter().collect();
        assert_eq!(o, 4);
        assert_eq!(c.len(), 2);
        assert_eq!((c[1].lhs, c[1].rhs), (7, 2));
    }
}
