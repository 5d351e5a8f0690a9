//! 2-D transposed convolution equal to PyTorch's `nn.ConvTranspose2d` (zero padding, groups,
//! dilation, `output_padding`).
//!
//! Algorithm: GEMM then col2im. Per image and group, `cols[(co, ky, kx), (iy, ix)] = Σ_ci
//! w[ci, co, ky, kx] · x[ci, iy, ix]` (one GEMM against the transposed weight), then every
//! column entry is added to the output position `oy = iy·s − p + ky·d` (likewise `ox`) when it
//! falls inside the output; the bias is the output's initial value.
//!
//! Invariant: [`conv_transpose2d_out_shape`] validates every shape and parameter (checked
//! arithmetic) before the kernel runs.

use ndarray::{ArrayView1, ArrayView4};

use crate::conv::{sat_i64, shape4, Conv2dParams};
use crate::error::{check_nonempty, invalid, mismatch, Error, Result};
use crate::kernel::{sgemm, Scratch, CT_COLS, CT_W};
use crate::rules::{self, ConvTransposeAxis};
use crate::Tensor;

/// Parameters of [`conv_transpose2d`], mirroring `nn.ConvTranspose2d`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTranspose2dParams {
    /// Vertical and horizontal stride.
    pub stride: [usize; 2],
    /// Padding `[h, w]` (removed from both ends of the full output).
    pub padding: [usize; 2],
    /// Extra rows / columns at the bottom / right (`output_padding`).
    pub output_padding: [usize; 2],
    /// Vertical and horizontal dilation.
    pub dilation: [usize; 2],
    /// Number of channel groups.
    pub groups: usize,
}

impl ConvTranspose2dParams {
    /// The conv this is the adjoint of (same stride, dilation and groups; the padding on both
    /// sides), for PyTorch's shared attribute checks.
    fn as_conv(&self) -> Conv2dParams {
        let [ph, pw] = self.padding;
        Conv2dParams {
            stride: self.stride,
            padding: [ph, ph, pw, pw],
            dilation: self.dilation,
            groups: self.groups,
            ..Conv2dParams::default()
        }
    }
}

impl Default for ConvTranspose2dParams {
    /// Stride 1, no padding, dilation 1, one group.
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Output shape `[n, cout, oh, ow]` of [`conv_transpose2d`] for an input of `x_shape` and a
/// weight of `w_shape` (`[cin, cout / groups, kh, kw]`, PyTorch's layout), with PyTorch's checks
/// ([`rules::validate_conv_transpose`], [`rules::conv_transpose_axis`]).
pub fn conv_transpose2d_out_shape(
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    p: &ConvTranspose2dParams,
) -> Result<[usize; 4]> {
    const OP: &str = "conv_transpose2d";
    let [n, cin, h, w] = x_shape;
    let [wcin, cout_g, kh, kw] = w_shape;
    let cout = cout_g
        .checked_mul(p.groups)
        .ok_or_else(|| invalid(OP, "the output channel count overflows"))?;
    let check = p.as_conv().check(cin, cout, [kh, kw]);
    rules::validate_conv_transpose(&check, p.output_padding.map(sat_i64)).map_err(|r| invalid(OP, r))?;
    check_nonempty(OP, x_shape)?;
    if wcin != cin {
        return Err(mismatch(
            OP,
            &x_shape,
            &w_shape,
            format!("the input has {cin} channels but the weight has {wcin} input channels"),
        ));
    }
    let mut out = [0usize; 2];
    for (a, (size, k)) in [(h, kh), (w, kw)].into_iter().enumerate() {
        let what = if a == 0 { "height" } else { "width" };
        let overflow = || Error::InputSize(format!("{OP} output {what} overflows"));
        let axis = ConvTransposeAxis {
            kernel: sat_i64(k),
            stride: sat_i64(p.stride[a]),
            pad: sat_i64(p.padding[a]),
            output_padding: sat_i64(p.output_padding[a]),
            dilation: sat_i64(p.dilation[a]),
        };
        let (o, conds) = rules::conv_transpose_axis(&sat_i64(size), &axis).ok_or_else(overflow)?;
        if conds
            .iter()
            .any(|c| !rules::Cond::<i64>::holds_for(c.kind, c.lhs, c.rhs))
        {
            return Err(Error::InputSize(format!(
                "{OP} input {what} {size} gives an output {what} of {o} (kernel {k}, stride {}, padding {}, output_padding {}, dilation {}); it must be at least 1",
                p.stride[a], p.padding[a], p.output_padding[a], p.dilation[a]
            )));
        }
        out[a] = usize::try_from(o).map_err(|_| overflow())?;
    }
    Ok([n, cout, out[0], out[1]])
}

/// `nn.ConvTranspose2d` with weight `w` (`[cin, cout / groups, kh, kw]`) and optional `bias`
/// (`[cout]`).
pub fn conv_transpose2d(
    x: ArrayView4<f32>,
    w: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    p: &ConvTranspose2dParams,
) -> Result<Tensor> {
    const OP: &str = "conv_transpose2d";
    let xs = shape4(&x);
    let ws = shape4(&w);
    let os = conv_transpose2d_out_shape(xs, ws, p)?;
    let [n, cin, h, wd] = xs;
    let [_, cout_g, kh, kw] = ws;
    let [_, cout, oh, ow] = os;
    if let Some(b) = &bias {
        if b.len() != cout {
            return Err(mismatch(
                OP,
                &ws,
                &[b.len()],
                format!("the bias must have {cout} values"),
            ));
        }
    }
    let mut out = crate::try_zeros(os, OP)?;
    let g = p.groups;
    let cin_g = cin / g;
    let kk = kh * kw;
    let m = cout_g * kk; // rows of the column matrix
    let hw = h * wd;
    let too_big = || Error::InputSize(format!("{OP}: the column buffer for {xs:?} is too large"));
    let cols_len = m.checked_mul(hw).ok_or_else(too_big)?;
    // Per-thread buffers reused across calls (the GEMM overwrites `cols`; `wt` is rewritten).
    let mut cols = Scratch::try_take(&CT_COLS, cols_len).ok_or_else(too_big)?;
    let wt_len = g
        .checked_mul(m)
        .and_then(|v| v.checked_mul(cin_g))
        .ok_or_else(too_big)?;
    let mut wt = Scratch::try_take(&CT_W, wt_len).ok_or_else(too_big)?;
    // the weight of each group transposed: wt[g][(co, ky, kx)][ci]
    let wc = w.as_standard_layout();
    let xc = x.as_standard_layout();
    let (Some(wsl), Some(xsl), Some(dst)) = (wc.as_slice(), xc.as_slice(), out.as_slice_mut()) else {
        return Err(invalid(OP, "internal: could not make the tensors contiguous"));
    };
    for gi in 0..g {
        for ci in 0..cin_g {
            let src = &wsl[(gi * cin_g + ci) * m..][..m];
            for (r, &v) in src.iter().enumerate() {
                wt[(gi * m + r) * cin_g + ci] = v;
            }
        }
    }
    let ohw = oh * ow;
    if let Some(b) = &bias {
        for img in dst.chunks_exact_mut(cout * ohw) {
            for (co, plane) in img.chunks_exact_mut(ohw).enumerate() {
                plane.fill(b[co]);
            }
        }
    }
    let [sh, sw] = p.stride;
    let [ph, pw] = p.padding;
    let [dh, dw] = p.dilation;
    // Output column of each (kx, ix), or None when it falls outside: oy/ox = i·s + k·d − p.
    let map = |i: usize, k: usize, s: usize, d: usize, pad: usize, lim: usize| -> Option<usize> {
        (i * s + k * d).checked_sub(pad).filter(|&o| o < lim)
    };
    let par = if m * hw * cin_g >= crate::kernel::PAR_MIN_MACS {
        crate::kernel::note_parallel_work();
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    for ni in 0..n {
        for gi in 0..g {
            let x_g = &xsl[(ni * cin + gi * cin_g) * hw..][..cin_g * hw];
            let w_g = &wt[gi * m * cin_g..][..m * cin_g];
            // SAFETY: `w_g` holds `m` rows of `cin_g`, `x_g` holds `cin_g` rows of `hw`, `cols`
            // holds `m` rows of `hw` (all contiguous, row strides as passed); `cols` is owned here.
            unsafe {
                sgemm(
                    m,
                    hw,
                    cin_g,
                    cols.as_mut_ptr(),
                    hw,
                    w_g.as_ptr(),
                    cin_g,
                    x_g.as_ptr(),
                    hw,
                    par,
                );
            }
            let out_g = &mut dst[(ni * cout + gi * cout_g) * ohw..][..cout_g * ohw];
            for co in 0..cout_g {
                let plane = &mut out_g[co * ohw..][..ohw];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let row = &cols[((co * kh + ky) * kw + kx) * hw..][..hw];
                        for iy in 0..h {
                            let Some(oy) = map(iy, ky, sh, dh, ph, oh) else {
                                continue;
                            };
                            let orow = &mut plane[oy * ow..][..ow];
                            for (ix, &v) in row[iy * wd..][..wd].iter().enumerate() {
                                if let Some(ox) = map(ix, kx, sw, dw, pw, ow) {
                                    orow[ox] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array4};

    /// The definition: every input pixel scatters its kernel into the output.
    fn naive(x: &Tensor, w: &Tensor, b: Option<&Array1<f32>>, p: &ConvTranspose2dParams) -> Tensor {
        let os = conv_transpose2d_out_shape(shape4(x), shape4(w), p).unwrap_or([0; 4]);
        let mut out = Array4::<f32>::zeros(os);
        let [n, cin, h, wd] = shape4(x);
        let [_, cout_g, kh, kw] = shape4(w);
        let cin_g = cin / p.groups;
        for ni in 0..n {
            for ci in 0..cin {
                let gi = ci / cin_g;
                for iy in 0..h {
                    for ix in 0..wd {
                        for co in 0..cout_g {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let oy = (iy * p.stride[0] + ky * p.dilation[0]) as isize - p.padding[0] as isize;
                                    let ox = (ix * p.stride[1] + kx * p.dilation[1]) as isize - p.padding[1] as isize;
                                    if oy < 0 || ox < 0 || oy as usize >= os[2] || ox as usize >= os[3] {
                                        continue;
                                    }
                                    out[[ni, gi * cout_g + co, oy as usize, ox as usize]] +=
                                        x[[ni, ci, iy, ix]] * w[[ci, co, ky, kx]];
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(b) = b {
            for ((_, c, _, _), v) in out.indexed_iter_mut() {
                *v += b[c];
            }
        }
        out
    }

    fn ramp(shape: [usize; 4], seed: f32) -> Tensor {
        let mut k = 0.0f32;
        Array4::from_shape_fn(shape, |_| {
            k += 1.0;
            ((k * 0.37 + seed).sin() * 1.5).round() / 2.0
        })
    }

    #[test]
    fn matches_the_definition() {
        let cases = [
            ([1, 4, 5, 6], [4, 3, 3, 3], ConvTranspose2dParams::default()),
            (
                [2, 4, 5, 6],
                [4, 3, 2, 2],
                ConvTranspose2dParams {
                    stride: [2, 2],
                    ..Default::default()
                },
            ),
            (
                [1, 6, 4, 3],
                [6, 2, 3, 4],
                ConvTranspose2dParams {
                    stride: [2, 3],
                    padding: [1, 2],
                    output_padding: [1, 0],
                    dilation: [1, 2],
                    groups: 3,
                },
            ),
            (
                [1, 2, 7, 1],
                [2, 1, 3, 1],
                ConvTranspose2dParams {
                    stride: [1, 1],
                    padding: [2, 0],
                    output_padding: [1, 0],
                    dilation: [2, 1],
                    groups: 2,
                },
            ),
        ];
        for (xs, wsh, p) in cases {
            let x = ramp(xs, 0.3);
            let w = ramp(wsh, 1.1);
            let cout = wsh[1] * p.groups;
            let b = Array1::from_shape_fn(cout, |i| i as f32 * 0.25 - 0.5);
            let got = conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap_or_default();
            let want = naive(&x, &w, Some(&b), &p);
            assert_eq!(got.shape(), want.shape(), "{xs:?} {wsh:?} {p:?}");
            for (a, b) in got.iter().zip(want.iter()) {
                assert!((a - b).abs() < 1e-4, "{xs:?} {wsh:?} {p:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn refuses_what_pytorch_refuses() {
        let x = Tensor::zeros([1, 4, 3, 3]);
        let w = Tensor::zeros([4, 2, 3, 3]);
        let bad_op = ConvTranspose2dParams {
            stride: [2, 2],
            output_padding: [2, 0],
            ..Default::default()
        };
        assert!(conv_transpose2d(x.view(), w.view(), None, &bad_op).is_err());
        let bad_groups = ConvTranspose2dParams {
            groups: 3,
            ..Default::default()
        };
        assert!(conv_transpose2d(x.view(), w.view(), None, &bad_groups).is_err());
        // (1 − 1)·1 − 2·2 + 2 + 1 = −1
        let empty = ConvTranspose2dParams {
            padding: [2, 0],
            ..Default::default()
        };
        let x1 = Tensor::zeros([1, 4, 1, 3]);
        assert!(conv_transpose2d(x1.view(), w.view(), None, &empty).is_err());
    }
}
