//! Accuracy of the Winograd F(2×2, 3×3) path against an f64 direct convolution, next to the
//! f32 im2col + GEMM path on the same data (a 3×3 conv zero-padded to 5×5, which is the same
//! sum but cannot take Winograd).
//!
//! `cargo test -p fpn-runtime --release --test it winograd_accuracy -- --ignored --nocapture`
//! prints the table quoted in `src/winograd.rs` and the README (FPN shapes, 256 → 256).

use fpn_runtime::ndarray::{s, Array4};
use fpn_runtime::*;
use rayon::prelude::*;

/// f64 direct 3×3 stride-1 conv with zero padding 1 (no bias): `[n, cout, h, w]`.
fn direct_f64(x: &Tensor, w: &Tensor) -> Array4<f64> {
    let (n, cin, h, wd) = x.dim();
    let cout = w.dim().0;
    let mut y = Array4::<f64>::zeros((n, cout, h, wd));
    for ni in 0..n {
        let xp: Vec<Vec<f64>> = (0..cin)
            .map(|ci| {
                let mut p = vec![0.0f64; (h + 2) * (wd + 2)];
                for iy in 0..h {
                    for ix in 0..wd {
                        p[(iy + 1) * (wd + 2) + ix + 1] = x[[ni, ci, iy, ix]] as f64;
                    }
                }
                p
            })
            .collect();
        let planes: Vec<Vec<f64>> = (0..cout)
            .into_par_iter()
            .map(|co| {
                let mut o = vec![0.0f64; h * wd];
                for (ci, p) in xp.iter().enumerate() {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let wv = w[[co, ci, ky, kx]] as f64;
                            for oy in 0..h {
                                let src = &p[(oy + ky) * (wd + 2) + kx..][..wd];
                                for (d, &v) in o[oy * wd..][..wd].iter_mut().zip(src) {
                                    *d += wv * v;
                                }
                            }
                        }
                    }
                }
                o
            })
            .collect();
        for (co, o) in planes.into_iter().enumerate() {
            for (i, v) in o.into_iter().enumerate() {
                y[[ni, co, i / wd, i % wd]] = v;
            }
        }
    }
    y
}

fn max_err(a: &Tensor, r: &Array4<f64>) -> f64 {
    a.iter()
        .zip(r.iter())
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max)
}

/// `(winograd error, gemm error, max |output|)` for a `c → c` 3×3 pad-1 conv at `size`.
fn errors(c: usize, size: usize, relu_inputs: bool, seed: u64) -> (f64, f64, f64) {
    let mut init = Init::new(seed);
    // PyTorch's default conv init: kaiming_uniform(a=√5) = U(±1/sqrt(fan_in)).
    let w = init.conv_weight([c, c, 3, 3]);
    let x: Tensor = if relu_inputs {
        // Post-ReLU activations: half zeros, the rest |N(0, 1)|-like magnitudes up to ~4.
        Array4::from_shape_simple_fn((1, c, size, size), || {
            let u: f32 = (0..4).map(|_| init.next_f32()).sum::<f32>() - 2.0;
            (u * 1.7).max(0.0)
        })
    } else {
        Array4::from_shape_simple_fn((1, c, size, size), || init.next_f32() * 2.0 - 1.0)
    };
    let p = Conv2dParams {
        padding: [1; 4],
        ..Default::default()
    };
    let wino = Conv2d::new(w.clone(), None, p).unwrap();
    assert!(wino.has_winograd_weights());
    let y_w = wino.forward(x.view(), &ConvOpts::default()).unwrap();
    let mut w5 = Tensor::zeros((c, c, 5, 5));
    w5.slice_mut(s![.., .., 1..4, 1..4]).assign(&w);
    let p5 = Conv2dParams {
        padding: [2; 4],
        ..Default::default()
    };
    let y_g = conv2d(x.view(), w5.view(), None, &p5).unwrap();
    let r = direct_f64(&x, &w);
    let big = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    (max_err(&y_w, &r), max_err(&y_g, &r), big)
}

#[test]
#[ignore = "measurement: prints the error table (slow in debug builds)"]
fn winograd_error_table() {
    println!(
        "\n{:<28} {:>14} {:>14} {:>10}",
        "256->256 3x3, inputs", "winograd err", "gemm err", "max |y|"
    );
    for size in [56, 104] {
        for relu in [false, true] {
            let (ew, eg, big) = errors(256, size, relu, 7);
            let what = if relu { "post-ReLU" } else { "U[-1,1]" };
            println!(
                "{:<28} {:>14.3e} {:>14.3e} {:>10.3}",
                format!("@{size}x{size} {what}"),
                ew,
                eg,
                big
            );
        }
    }
}

#[test]
fn winograd_error_is_close_to_gemm() {
    // 64 → 64 at 28×28: the Winograd error stays within a small multiple of the direct f32
    // sum's (F(2×2): 2.1–2.5× at 256 channels, see the table in src/winograd.rs; F(4×4) was 8×
    // here and 14–18× at 256 channels, which this bound refuses). At 24×24 and below (26²) the
    // conv runs on the channel-vector kernel instead (with AVX-512), held to the same bound.
    for (size, relu) in [(28, false), (28, true), (24, false), (24, true)] {
        let (ew, eg, big) = errors(64, size, relu, 3);
        assert!(
            ew <= 4.0 * eg && ew <= 2e-6 * big.max(1.0),
            "{size}²: {ew} vs gemm {eg} (max {big})"
        );
    }
}
