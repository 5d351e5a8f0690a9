//! Ops that move values without arithmetic: `F.pad` with a fill value, cropping, and
//! `pixel_shuffle` / `pixel_unshuffle`. Each size rule is the one in [`crate::rules`]
//! (`pad_axis`, `crop_axis`, `split_diff`, `pixel_shuffle_axis`, `pixel_unshuffle_axis`).

use ndarray::{s, ArrayView4};

use crate::conv::{pad2d, shape4, PaddingMode};
use crate::error::{invalid, Error, Result};
use crate::rules::{self, CondKind};
use crate::Tensor;

/// Parameters of [`pad`]: `F.pad(x, (left, right, top, bottom), mode, value)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pad2dParams {
    /// `[top, bottom, left, right]` (the order of [`crate::Conv2dParams::padding`]; PyTorch's
    /// `F.pad` tuple is `(left, right, top, bottom)`).
    pub pad: [usize; 4],
    /// `Zeros` is PyTorch's `"constant"` mode (filled with `value`); `Reflect`, `Replicate`,
    /// `Circular` as in `F.pad`.
    pub mode: PaddingMode,
    /// The fill value of the constant mode (`-inf` before a max pool); must be 0 otherwise.
    pub value: f32,
}

fn i(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Checks the conditions of a rule for one axis, reporting the first failure in words.
fn check_conds(op: &str, what: &str, conds: &rules::Conds<i64>, extra: &str) -> Result<()> {
    for c in conds {
        if rules::Cond::<i64>::holds_for(c.kind, c.lhs, c.rhs) {
            continue;
        }
        return Err(Error::InputSize(match c.kind {
            CondKind::ReflectPad => format!(
                "{op}: reflect padding {} needs an input {what} greater than {}, got {}",
                c.rhs - 1,
                c.rhs - 1,
                c.lhs
            ),
            CondKind::CircularPad => format!(
                "{op}: circular padding {} needs an input {what} of at least {}, got {}",
                c.rhs, c.rhs, c.lhs
            ),
            CondKind::Fits => format!(
                "{op}: the input {what} {} is smaller than the {} it needs{extra}",
                c.lhs, c.rhs
            ),
            CondKind::Divisible => format!("{op}: the input {what} {} is not divisible by {extra}", c.rhs),
            CondKind::Positive | CondKind::Equal | CondKind::ExactDiv => {
                format!("{op}: {what} {} is below {}", c.lhs, c.rhs)
            }
        }));
    }
    Ok(())
}

/// `F.pad(x, (left, right, top, bottom), mode, value)` with `p.pad = [top, bottom, left,
/// right]`. Checks `F.pad`'s limits (reflect `< size`, circular `≤ size`).
pub fn pad(x: ArrayView4<f32>, p: &Pad2dParams) -> Result<Tensor> {
    const OP: &str = "pad";
    let [n, c, h, w] = shape4(&x);
    if p.mode != PaddingMode::Zeros && p.value != 0.0 {
        return Err(invalid(
            OP,
            format!("a fill value ({}) is only used by the constant mode", p.value),
        ));
    }
    for (what, size, pads) in [("height", h, [p.pad[0], p.pad[1]]), ("width", w, [p.pad[2], p.pad[3]])] {
        let overflow = || Error::InputSize(format!("{OP}: the padded {what} overflows"));
        let (_, conds) = rules::pad_axis(&i(size), pads.map(i), p.mode).ok_or_else(overflow)?;
        check_conds(OP, what, &conds, "")?;
    }
    if p.mode != PaddingMode::Zeros || p.value == 0.0 {
        return pad2d(x, p.pad, p.mode);
    }
    let [pt, pb, pl, pr] = p.pad;
    let too_big = || Error::InputSize(format!("{OP}: the padded size of {:?} overflows", [n, c, h, w]));
    let oh = h.checked_add(pt).and_then(|v| v.checked_add(pb)).ok_or_else(too_big)?;
    let ow = w.checked_add(pl).and_then(|v| v.checked_add(pr)).ok_or_else(too_big)?;
    let mut out = crate::try_zeros([n, c, oh, ow], OP)?;
    out.fill(p.value);
    out.slice_mut(s![.., .., pt..pt + h, pl..pl + w]).assign(&x);
    Ok(out)
}

/// Pads `x` to the spatial size `size = [h, w]` (at least `x`'s), milesial U-Net's split
/// ([`rules::split_diff`]: `diff // 2` top/left, the rest bottom/right), with `mode` and `value`
/// as in [`pad`].
pub fn pad_to(x: ArrayView4<f32>, size: [usize; 2], mode: PaddingMode, value: f32) -> Result<Tensor> {
    let [_, _, h, w] = shape4(&x);
    let mut pads = [0usize; 4];
    for (a, (have, want)) in [(h, size[0]), (w, size[1])].into_iter().enumerate() {
        let what = if a == 0 { "height" } else { "width" };
        if want < have {
            return Err(Error::InputSize(format!(
                "pad: the input {what} {have} is larger than the {what} {want} it is padded to"
            )));
        }
        let [b, e] = rules::split_diff(i(want - have));
        pads[2 * a] = usize::try_from(b).unwrap_or(0);
        pads[2 * a + 1] = usize::try_from(e).unwrap_or(0);
    }
    pad(x, &Pad2dParams { pad: pads, mode, value })
}

/// Cuts the window of `size = [h, w]` at `offset = [top, left]` out of `x`; `None` centres it
/// (`(H − h)/2` rounded down, [`rules::split_diff`]). Errors if the window does not fit.
pub fn crop(x: ArrayView4<f32>, size: [usize; 2], offset: Option<[usize; 2]>) -> Result<Tensor> {
    const OP: &str = "crop";
    let [_, _, h, w] = shape4(&x);
    let mut start = [0usize; 2];
    for (a, have) in [h, w].into_iter().enumerate() {
        let what = if a == 0 { "height" } else { "width" };
        let off = offset.map(|o| i(o[a]));
        let overflow = || Error::InputSize(format!("{OP}: the {what} window overflows"));
        let (_, conds) = rules::crop_axis(&i(have), i(size[a]), off).ok_or_else(overflow)?;
        let at = match offset {
            Some(o) => format!(" (size {} at offset {})", size[a], o[a]),
            None => String::new(),
        };
        check_conds(OP, what, &conds, &at)?;
        start[a] = match offset {
            Some(o) => o[a],
            None => (have - size[a]) / 2,
        };
    }
    if size.contains(&0) {
        return Err(invalid(OP, format!("the crop size {size:?} must be at least 1")));
    }
    crate::try_copy(
        x.slice(s![.., .., start[0]..start[0] + size[0], start[1]..start[1] + size[1]]),
        OP,
    )
}

/// `nn.PixelShuffle(r)`: `[n, c·r², h, w] → [n, c, h·r, w·r]`, `out[c, y·r + i, x·r + j] =
/// in[c·r² + i·r + j, y, x]`.
pub fn pixel_shuffle(x: ArrayView4<f32>, r: usize) -> Result<Tensor> {
    const OP: &str = "pixel_shuffle";
    let [n, c, h, w] = shape4(&x);
    rules::validate_pixel_shuffle(i(c), i(r)).map_err(|e| invalid(OP, e))?;
    let too_big = || Error::InputSize(format!("{OP}: the output of {:?} overflows", [n, c, h, w]));
    let (oh, ow) = (
        h.checked_mul(r).ok_or_else(too_big)?,
        w.checked_mul(r).ok_or_else(too_big)?,
    );
    let oc = c / (r * r);
    let mut out = crate::try_zeros([n, oc, oh, ow], OP)?;
    for ni in 0..n {
        for co in 0..oc {
            for di in 0..r {
                for dj in 0..r {
                    let src = x.slice(s![ni, co * r * r + di * r + dj, .., ..]);
                    out.slice_mut(s![ni, co, di..;r, dj..;r]).assign(&src);
                }
            }
        }
    }
    Ok(out)
}

/// `nn.PixelUnshuffle(r)`: `[n, c, h·r, w·r] → [n, c·r², h, w]`, the inverse of
/// [`pixel_shuffle`]. Errors unless `r` divides the height and the width.
pub fn pixel_unshuffle(x: ArrayView4<f32>, r: usize) -> Result<Tensor> {
    const OP: &str = "pixel_unshuffle";
    let [n, c, h, w] = shape4(&x);
    if r == 0 {
        return Err(invalid(OP, "downscale_factor must be at least 1"));
    }
    for (what, size) in [("height", h), ("width", w)] {
        let overflow = || Error::InputSize(format!("{OP}: the {what} overflows"));
        let (_, conds) = rules::pixel_unshuffle_axis(&i(size), i(r)).ok_or_else(overflow)?;
        check_conds(OP, what, &conds, &format!("downscale_factor {r}"))?;
    }
    let oc = c
        .checked_mul(r)
        .and_then(|v| v.checked_mul(r))
        .ok_or_else(|| Error::InputSize(format!("{OP}: the channel count overflows")))?;
    let mut out = crate::try_zeros([n, oc, h / r, w / r], OP)?;
    for ni in 0..n {
        for ci in 0..c {
            for di in 0..r {
                for dj in 0..r {
                    let src = x.slice(s![ni, ci, di..;r, dj..;r]);
                    out.slice_mut(s![ni, ci * r * r + di * r + dj, .., ..]).assign(&src);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    fn ramp(shape: [usize; 4]) -> Tensor {
        let mut k = 0.0f32;
        Array4::from_shape_fn(shape, |_| {
            k += 1.0;
            k
        })
    }

    #[test]
    fn pixel_shuffle_follows_the_index_formula_and_inverts() {
        let x = ramp([2, 8, 3, 5]);
        let y = pixel_shuffle(x.view(), 2).unwrap_or_default();
        assert_eq!(y.shape(), &[2, 2, 6, 10]);
        for ((ni, c, yy, xx), v) in y.indexed_iter() {
            let (i, j) = (yy % 2, xx % 2);
            assert_eq!(*v, x[[ni, c * 4 + i * 2 + j, yy / 2, xx / 2]]);
        }
        let back = pixel_unshuffle(y.view(), 2).unwrap_or_default();
        assert_eq!(back, x);
        assert!(pixel_shuffle(x.view(), 3).is_err());
        assert!(pixel_unshuffle(x.view(), 2).is_err());
    }

    #[test]
    fn pad_and_crop_follow_the_definitions() {
        let x = ramp([1, 2, 3, 4]);
        let p = pad(
            x.view(),
            &Pad2dParams {
                pad: [1, 0, 2, 1],
                mode: PaddingMode::Zeros,
                value: -1.5,
            },
        )
        .unwrap_or_default();
        assert_eq!(p.shape(), &[1, 2, 4, 7]);
        for ((_, c, yy, xx), v) in p.indexed_iter() {
            let want = if yy >= 1 && (2..6).contains(&xx) {
                x[[0, c, yy - 1, xx - 2]]
            } else {
                -1.5
            };
            assert_eq!(*v, want);
        }
        // pad_to splits diff//2 before: 3 → 6 pads 1 top, 2 bottom
        let t = pad_to(x.view(), [6, 4], PaddingMode::Zeros, 0.0).unwrap_or_default();
        assert_eq!(t[[0, 0, 1, 0]], x[[0, 0, 0, 0]]);
        assert_eq!(t[[0, 0, 0, 0]], 0.0);
        assert!(pad_to(x.view(), [2, 4], PaddingMode::Zeros, 0.0).is_err());
        // centre crop of 4 → 1 starts at 1
        let cc = crop(x.view(), [3, 1], None).unwrap_or_default();
        assert_eq!(cc[[0, 1, 2, 0]], x[[0, 1, 2, 1]]);
        let co = crop(x.view(), [2, 2], Some([1, 2])).unwrap_or_default();
        assert_eq!(co[[0, 0, 0, 0]], x[[0, 0, 1, 2]]);
        assert!(crop(x.view(), [2, 3], Some([1, 2])).is_err());
        assert!(crop(x.view(), [4, 1], None).is_err());
        // reflect needs pad < size
        let r = Pad2dParams {
            pad: [0, 0, 4, 0],
            mode: PaddingMode::Reflect,
            value: 0.0,
        };
        assert!(pad(x.view(), &r).is_err());
    }
}
