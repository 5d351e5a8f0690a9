//! Property tests: every op against a naive reference implementation written here (direct
//! 7-loop conv, window-scanning pools, per-index upsampling), on random shapes including odd
//! sizes, stride > kernel, dilation, groups and batch 3. PyTorch agreement itself is checked by
//! `tests/it/fixtures.rs`.

use fpn_runtime::ndarray::{Array1, Array4};
use fpn_runtime::*;
use proptest::prelude::*;

/// Fewer random cases in unoptimised builds, where the naive references are slow.
const CASES: u32 = if cfg!(debug_assertions) { 64 } else { 400 };

fn rand4(seed: u64, shape: [usize; 4]) -> Tensor {
    let mut init = Init::new(seed);
    Array4::from_shape_simple_fn(shape, || init.next_f32() * 2.0 - 1.0)
}

fn close(a: &Tensor, b: &Tensor, tol: f32) -> std::result::Result<(), String> {
    if a.shape() != b.shape() {
        return Err(format!("shape {:?} vs {:?}", a.shape(), b.shape()));
    }
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        let ok = x == y || (x - y).abs() <= tol * (1.0 + y.abs());
        if !ok {
            return Err(format!("element {i}: {x} vs {y}"));
        }
    }
    Ok(())
}

/// Runs `f` with an arena installed that holds NaN-filled buffers of several sizes: ops that
/// take a recycled buffer for their output (`try_output`, whose values are whatever the last
/// user wrote) and leave an element unwritten show NaN there, which no reference equals.
fn poisoned<R>(f: impl FnOnce() -> R) -> R {
    let mut arena = Arena::new();
    with_arena(&mut arena, || {
        for len in [1 << 6, 1 << 10, 1 << 14, 1 << 18, 1 << 21] {
            recycle(Tensor::from_elem((1, 1, 1, len), f32::NAN));
        }
        f()
    })
}

/// Source index of padded position `i` for `mode`, or None for zero.
fn pad_index(i: isize, dim: isize, mode: PaddingMode) -> Option<usize> {
    let j = match mode {
        PaddingMode::Zeros => {
            if i < 0 || i >= dim {
                return None;
            }
            i
        }
        PaddingMode::Reflect => {
            if i < 0 {
                -i
            } else if i >= dim {
                2 * dim - 2 - i
            } else {
                i
            }
        }
        PaddingMode::Replicate => i.max(0).min(dim - 1),
        PaddingMode::Circular => ((i % dim) + dim) % dim,
    };
    Some(j as usize)
}

/// Direct convolution; None where PyTorch would refuse.
fn naive_conv(x: &Tensor, w: &Tensor, b: Option<&Array1<f32>>, p: &Conv2dParams) -> Option<Tensor> {
    let (n, cin, h, wd) = x.dim();
    let (cout, cin_g, kh, kw) = w.dim();
    let g = p.groups;
    let [pt, pb, pl, pr] = p.padding;
    if cin != cin_g * g || cout % g != 0 {
        return None;
    }
    for (pad, dim) in [(pt, h), (pb, h), (pl, wd), (pr, wd)] {
        match p.padding_mode {
            PaddingMode::Reflect if pad >= dim => return None,
            PaddingMode::Circular if pad > dim => return None,
            _ => {}
        }
    }
    let eh = p.dilation[0] * (kh - 1) + 1;
    let ew = p.dilation[1] * (kw - 1) + 1;
    if h + pt + pb < eh || wd + pl + pr < ew {
        return None;
    }
    let oh = (h + pt + pb - eh) / p.stride[0] + 1;
    let ow = (wd + pl + pr - ew) / p.stride[1] + 1;
    let cout_g = cout / g;
    let mut y = Tensor::zeros((n, cout, oh, ow));
    for ni in 0..n {
        for co in 0..cout {
            let grp = co / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[co]) as f64;
                    for ci in 0..cin_g {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - pt as isize;
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize - pl as isize;
                                let (Some(sy), Some(sx)) = (
                                    pad_index(iy, h as isize, p.padding_mode),
                                    pad_index(ix, wd as isize, p.padding_mode),
                                ) else {
                                    continue;
                                };
                                acc += x[[ni, grp * cin_g + ci, sy, sx]] as f64 * w[[co, ci, ky, kx]] as f64;
                            }
                        }
                    }
                    y[[ni, co, oy, ox]] = apply(p.act, acc as f32);
                }
            }
        }
    }
    Some(y)
}

fn arb_mode() -> impl Strategy<Value = PaddingMode> {
    prop_oneof![
        3 => Just(PaddingMode::Zeros),
        1 => Just(PaddingMode::Reflect),
        1 => Just(PaddingMode::Replicate),
        1 => Just(PaddingMode::Circular)
    ]
}

fn arb_act() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Identity),
        Just(Activation::Relu),
        Just(Activation::Relu6),
        (-1.0f32..1.0).prop_map(Activation::LeakyRelu),
        Just(Activation::Tanh),
        Just(Activation::Sigmoid),
        Just(Activation::Silu),
        Just(Activation::Hardswish),
        Just(Activation::Gelu),
        Just(Activation::GeluTanh),
    ]
}

#[derive(Debug, Clone)]
struct ConvCase {
    x: [usize; 4],
    w: [usize; 4],
    p: Conv2dParams,
    bias: bool,
    seed: u64,
}

fn arb_conv() -> impl Strategy<Value = ConvCase> {
    (
        (
            1usize..=3,
            prop_oneof![Just(1usize), Just(2), Just(3), Just(0)],
            1usize..=4,
            1usize..=4,
        ),
        (1usize..=13, 1usize..=13, 1usize..=4, 1usize..=4),
        (1usize..=4, 1usize..=4, 1usize..=3, 1usize..=3),
        (0usize..=3, 0usize..=3, 0usize..=3, 0usize..=3),
        (arb_mode(), arb_act(), any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |((n, g, cin_g, cout_g), (h, w, kh, kw), (sh, sw, dh, dw), pad, (mode, act, bias, seed))| {
                // g == 0 means depthwise: groups = channels, one input channel per group.
                let (groups, cin_g) = if g == 0 { (cin_g + 1, 1) } else { (g, cin_g) };
                ConvCase {
                    x: [n, groups * cin_g, h, w],
                    w: [groups * cout_g, cin_g, kh, kw],
                    p: Conv2dParams {
                        stride: [sh, sw],
                        padding: [pad.0, pad.1, pad.2, pad.3],
                        dilation: [dh, dw],
                        groups,
                        padding_mode: mode,
                        act,
                    },
                    bias,
                    seed,
                }
            },
        )
}

fn check_conv(c: &ConvCase, tol: f32) -> std::result::Result<(), String> {
    let x = rand4(c.seed, c.x);
    let w = rand4(c.seed ^ 1, c.w);
    let b = Array1::from_iter(rand4(c.seed ^ 2, [c.w[0], 1, 1, 1]).iter().copied());
    let bias = c.bias.then_some(&b);
    let want = naive_conv(&x, &w, bias, &c.p);
    let got = poisoned(|| conv2d(x.view(), w.view(), bias.map(|b| b.view()), &c.p));
    match (got, want) {
        (Ok(g), Some(wnt)) => close(&g, &wnt, tol),
        (Err(_), None) => Ok(()),
        (Ok(_), None) => Err("accepted a conv PyTorch refuses".into()),
        (Err(e), Some(_)) => Err(format!("refused a valid conv: {e}")),
    }
}

/// A prepared [`Conv2d`] against the naive reference and against the free `conv2d`: both
/// constructors agree, `forward`/`forward_into` equal `conv2d` bit for bit (same path), or
/// within `tol` where only the prepared conv takes Winograd (`band`), and every refusal is an
/// error PyTorch would also raise.
fn check_prepared(c: &ConvCase, tol: f32, band: bool) -> std::result::Result<(), String> {
    let x = rand4(c.seed, c.x);
    let w = rand4(c.seed ^ 1, c.w);
    let b = Array1::from_iter(rand4(c.seed ^ 2, [c.w[0], 1, 1, 1]).iter().copied());
    let bias = c.bias.then(|| b.clone());
    let want = naive_conv(&x, &w, bias.as_ref(), &c.p);
    let deferred = Conv2d::new_deferred(w.clone(), bias.clone(), c.p);
    let prep = match Conv2d::new(w.clone(), bias.clone(), c.p) {
        Ok(p) => p,
        Err(e) => {
            if want.is_some() {
                return Err(format!("Conv2d::new refused a valid conv: {e}"));
            }
            // The deferred build reports the problem from forward instead.
            return match deferred.forward(x.view(), &ConvOpts::default()) {
                Err(_) => Ok(()),
                Ok(_) => Err(format!("new refused ({e}) but the deferred conv ran")),
            };
        }
    };
    if prep.weight() != w || prep.params() != &c.p || prep.bias().len() != c.w[0] {
        return Err("accessors do not return the construction operands".into());
    }
    if !c.bias && prep.bias().iter().any(|&v| v != 0.0) {
        return Err("a conv without bias has a non-zero bias".into());
    }
    let got = poisoned(|| prep.forward(x.view(), &ConvOpts::default()));
    let free = conv2d(x.view(), w.view(), bias.as_ref().map(|b| b.view()), &c.p);
    match (got, want, free) {
        (Ok(g), Some(wnt), Ok(f)) => {
            close(&g, &wnt, tol)?;
            if band {
                close(&g, &f, tol)?;
            } else if g != f {
                return Err("Conv2d::forward differs from conv2d".into());
            }
            if deferred.forward(x.view(), &ConvOpts::default()).ok().as_ref() != Some(&g) {
                return Err("new_deferred differs from new".into());
            }
            let mut out = Tensor::from_elem(g.dim(), f32::NAN);
            prep.forward_into(x.view(), &ConvOpts::default(), out.view_mut())
                .map_err(|e| e.to_string())?;
            if out != g {
                return Err("forward_into differs from forward".into());
            }
            match prep.out_shape(c.x) {
                Ok(s) if s[..] == *g.shape() => Ok(()),
                s => Err(format!("out_shape {s:?} vs {:?}", g.shape())),
            }
        }
        (Err(_), None, Err(_)) => Ok(()),
        (Ok(_), None, _) => Err("accepted a conv PyTorch refuses".into()),
        (g, wnt, f) => Err(format!(
            "prepared {:?}, naive {}, conv2d {:?}",
            g.map(|t| t.dim()),
            wnt.is_some(),
            f.map(|t| t.dim())
        )),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_equals_naive(c in arb_conv()) {
        check_conv(&c, 1e-5).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn prepared_conv_equals_naive_and_conv2d(c in arb_conv()) {
        check_prepared(&c, 1e-5, false).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn conv_out_shape_agrees_with_conv(c in arb_conv()) {
        let x = rand4(c.seed, c.x);
        let w = rand4(c.seed ^ 1, c.w);
        match (conv2d_out_shape(c.x, c.w, &c.p), conv2d(x.view(), w.view(), None, &c.p)) {
            (Ok(s), Ok(y)) => prop_assert_eq!(&s[..], y.shape()),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b.map(|y| y.dim())),
        }
    }

    #[test]
    fn fold_batch_norm_equals_conv_then_bn(c in arb_conv(), eps in 1e-6f32..1e-2) {
        let mut p = c.p;
        p.act = Activation::Identity;
        let x = rand4(c.seed, c.x);
        let mut w = rand4(c.seed ^ 1, c.w);
        let b = Array1::from_iter(rand4(c.seed ^ 2, [c.w[0], 1, 1, 1]).iter().copied());
        let r = |s: u64| Array1::from_iter(rand4(c.seed ^ s, [c.w[0], 1, 1, 1]).iter().copied());
        let bn = BatchNorm { weight: r(3), bias: r(4), running_mean: r(5), running_var: r(6).mapv(|v| v.abs() + 0.1), eps };
        let Ok(y) = conv2d(x.view(), w.view(), Some(b.view()), &p) else { return Ok(()) };
        let want = batch_norm(y.view(), &bn).unwrap();
        let nb = fold_batch_norm(&mut w, Some(b.view()), &bn).unwrap();
        let got = conv2d(x.view(), w.view(), Some(nb.view()), &p).unwrap();
        // Relative to the magnitude of the terms being summed (K ≤ 64 products of |v| ≤ 1, scaled).
        let scale: f32 = bn.weight.iter().zip(&bn.running_var).map(|(g, v)| (g / (v + eps).sqrt()).abs()).fold(1.0, f32::max);
        let k = (c.w[1] * c.w[2] * c.w[3]) as f32;
        for (a, e) in got.iter().zip(want.iter()) {
            prop_assert!((a - e).abs() <= 1e-5 * scale * (k + 1.0) + 1e-5 * e.abs(), "{} vs {}", a, e);
        }
    }
}

#[test]
fn conv2d_large_shapes_equal_naive() {
    // Shapes big enough for the parallel, tiled and pointwise GEMM paths and parallel depthwise.
    let cases = [
        ([1, 24, 20, 21], [32, 24, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1),
        ([2, 32, 33, 29], [40, 32, 1, 1], [1, 1], [0; 4], [1, 1], 1),
        ([1, 3, 83, 80], [16, 3, 7, 7], [2, 2], [3, 3, 3, 3], [1, 1], 1),
        ([3, 24, 20, 21], [24, 24, 3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 24),
        ([1, 48, 32, 32], [48, 12, 3, 3], [1, 1], [2, 2, 2, 2], [2, 2], 4),
        ([1, 300, 5, 5], [16, 300, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1),
        // Winograd F(4,3): ragged tile grid, asymmetric padding, batch, groups.
        ([2, 32, 19, 23], [20, 32, 3, 3], [1, 1], [1, 2, 0, 1], [1, 1], 1),
        ([1, 64, 30, 70], [48, 32, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 2),
        // Stem-like convs (few input channels): channel and column tails, strides 1 and 3, batch.
        ([2, 3, 41, 53], [13, 3, 5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 1),
        ([1, 4, 80, 110], [9, 4, 3, 3], [3, 3], [0, 1, 2, 0], [1, 1], 1),
        ([1, 1, 40, 40], [24, 1, 7, 7], [2, 2], [3, 3, 3, 3], [1, 1], 1),
        // Split over output channels (small maps, ≥ 64 channels per group, ≥ PAR_MIN_MACS
        // multiply-adds): ragged chunks, batch and groups; stride 2 with asymmetric padding;
        // dilation.
        ([2, 40, 24, 20], [136, 20, 1, 1], [1, 1], [0; 4], [1, 1], 2),
        ([1, 16, 31, 29], [80, 16, 3, 3], [2, 2], [1, 0, 1, 2], [1, 1], 1),
        ([1, 20, 16, 16], [72, 20, 3, 3], [1, 1], [2, 2, 2, 2], [2, 2], 1),
        // 1×1 with only bottom/right padding: not a plain GEMM on the input (output is larger).
        ([1, 48, 9, 7], [72, 48, 1, 1], [1, 1], [0, 1, 0, 2], [1, 1], 1),
    ];
    for (i, (xs, ws, stride, padding, dilation, groups)) in cases.into_iter().enumerate() {
        let modes: &[PaddingMode] = if i < 2 {
            &[PaddingMode::Zeros, PaddingMode::Reflect]
        } else {
            &[PaddingMode::Zeros]
        };
        for &mode in modes {
            let p = Conv2dParams {
                stride,
                padding,
                dilation,
                groups,
                padding_mode: mode,
                act: Activation::Relu,
            };
            let c = ConvCase {
                x: xs,
                w: ws,
                p,
                bias: true,
                seed: i as u64,
            };
            check_conv(&c, 1e-4).unwrap_or_else(|e| panic!("case {i} {mode:?}: {e}"));
            check_prepared(&c, 1e-4, false).unwrap_or_else(|e| panic!("prepared case {i} {mode:?}: {e}"));
        }
    }
}

#[test]
fn prepared_conv_takes_every_path() {
    // (input, weight, padding, groups, band): Winograd with the transform cached (batch, groups,
    // ragged tiles), Winograd below conv2d's pixel gate (band: conv2d takes GEMM there), GEMM
    // (5×5, too few channels, too few pixels), stem, depthwise.
    let cases = [
        ([2, 32, 19, 23], [20, 32, 3, 3], [1, 2, 0, 1], 1, false),
        ([1, 64, 30, 70], [48, 32, 3, 3], [1, 1, 1, 1], 2, false),
        ([1, 32, 12, 12], [32, 32, 3, 3], [1, 1, 1, 1], 1, true),
        ([1, 64, 11, 11], [32, 32, 3, 3], [1, 1, 1, 1], 2, true),
        // Winograd with few tiles (9): split over output channels (ragged chunks 48 + 32).
        ([1, 32, 12, 12], [80, 32, 3, 3], [1, 1, 1, 1], 1, true),
        ([1, 64, 6, 6], [64, 64, 3, 3], [1, 1, 1, 1], 1, false),
        ([1, 8, 20, 20], [16, 8, 3, 3], [1, 1, 1, 1], 1, false),
        ([1, 24, 16, 16], [32, 24, 5, 5], [2, 2, 2, 2], 1, false),
        ([2, 3, 41, 53], [13, 3, 5, 5], [2, 2, 2, 2], 1, false),
        ([1, 40, 33, 35], [80, 1, 3, 3], [1, 1, 1, 1], 40, false),
    ];
    for (i, (xs, ws, padding, groups, band)) in cases.into_iter().enumerate() {
        for act in [Activation::Identity, Activation::LeakyRelu(0.1)] {
            let c = ConvCase {
                x: xs,
                w: ws,
                p: Conv2dParams {
                    padding,
                    groups,
                    act,
                    ..Default::default()
                },
                bias: i % 2 == 0,
                seed: 100 + i as u64,
            };
            check_prepared(&c, 1e-4, band).unwrap_or_else(|e| panic!("case {i}: {e}"));
        }
    }
    let wino = |cin: usize, cout: usize, k: usize, stride: usize| {
        let p = Conv2dParams {
            stride: [stride; 2],
            ..Default::default()
        };
        Conv2d::new(Tensor::zeros((cout, cin, k, k)), None, p)
            .unwrap()
            .has_winograd_weights()
    };
    assert!(wino(16, 16, 3, 1));
    assert!(!wino(8, 16, 3, 1));
    assert!(!wino(16, 8, 3, 1));
    assert!(!wino(16, 16, 3, 2));
    assert!(!wino(16, 16, 5, 1));
}

#[test]
fn fused_residual_equals_conv_then_add_then_act_exactly() {
    // Every path: GEMM row bands, GEMM split over output channels (pointwise and im2col),
    // Winograd (cached transform), stem, depthwise, reflect padding; with and without bias.
    let cases = [
        (
            [1, 24, 20, 21],
            [32, 24, 3, 3],
            [2, 2],
            [1, 1, 1, 1],
            1,
            PaddingMode::Zeros,
        ),
        ([2, 40, 9, 7], [136, 20, 1, 1], [1, 1], [0; 4], 2, PaddingMode::Zeros),
        (
            [1, 16, 15, 13],
            [80, 16, 3, 3],
            [2, 2],
            [1, 0, 1, 2],
            1,
            PaddingMode::Zeros,
        ),
        (
            [2, 32, 19, 23],
            [32, 32, 3, 3],
            [1, 1],
            [1, 1, 1, 1],
            1,
            PaddingMode::Zeros,
        ),
        (
            [2, 3, 41, 53],
            [13, 3, 5, 5],
            [1, 1],
            [2, 2, 2, 2],
            1,
            PaddingMode::Zeros,
        ),
        (
            [1, 40, 33, 35],
            [40, 1, 3, 3],
            [1, 1],
            [1, 1, 1, 1],
            40,
            PaddingMode::Zeros,
        ),
        (
            [1, 8, 12, 10],
            [8, 8, 3, 3],
            [1, 1],
            [1, 1, 1, 1],
            1,
            PaddingMode::Reflect,
        ),
    ];
    for (i, (xs, ws, stride, padding, groups, mode)) in cases.into_iter().enumerate() {
        for act in [Activation::Relu, Activation::Identity, Activation::Tanh] {
            let p = Conv2dParams {
                stride,
                padding,
                groups,
                padding_mode: mode,
                act,
                ..Default::default()
            };
            let x = rand4(i as u64, xs);
            let w = rand4(i as u64 ^ 7, ws);
            let b = (i % 2 == 0).then(|| Array1::from_iter(rand4(i as u64 ^ 9, [ws[0], 1, 1, 1]).iter().copied()));
            let conv = Conv2d::new(w, b, p).unwrap();
            let shape = conv.out_shape(xs).unwrap();
            let r = rand4(i as u64 ^ 11, shape);
            let with_r = ConvOpts {
                residual: Some(r.view()),
                ..ConvOpts::default()
            };
            let got = conv.forward(x.view(), &with_r).unwrap();
            let mut into = Tensor::from_elem(shape, f32::NAN);
            conv.forward_into(x.view(), &with_r, into.view_mut()).unwrap();
            assert_eq!(got, into, "case {i}: forward_into differs from forward");
            let plain = Conv2dParams {
                act: Activation::Identity,
                ..p
            };
            let mut want = conv
                .forward(
                    x.view(),
                    &ConvOpts {
                        params: Some(&plain),
                        ..ConvOpts::default()
                    },
                )
                .unwrap();
            add_assign(&mut want, r.view()).unwrap();
            activate_inplace(&mut want, act);
            assert!(
                got.iter().zip(want.iter()).all(|(a, b)| a.to_bits() == b.to_bits()),
                "case {i} {act:?}: fused differs from conv → add → act"
            );
            // added after the activation: conv (with act) → add
            let after = ConvOpts {
                residual: Some(r.view()),
                residual_after_act: true,
                ..ConvOpts::default()
            };
            let got = conv.forward(x.view(), &after).unwrap();
            let mut into = Tensor::from_elem(shape, f32::NAN);
            conv.forward_into(x.view(), &after, into.view_mut()).unwrap();
            assert_eq!(got, into, "case {i}: forward_into differs from forward (after act)");
            let mut want = conv.forward(x.view(), &ConvOpts::default()).unwrap();
            add_assign(&mut want, r.view()).unwrap();
            assert!(
                got.iter().zip(want.iter()).all(|(a, b)| a.to_bits() == b.to_bits()),
                "case {i} {act:?}: fused differs from conv → act → add"
            );
        }
    }
    // A residual of the wrong shape is an error, not a panic.
    let conv = Conv2d::new(rand4(1, [8, 4, 3, 3]), None, Conv2dParams::default()).unwrap();
    let x = rand4(2, [1, 4, 9, 9]);
    assert!(conv
        .forward(
            x.view(),
            &ConvOpts {
                residual: Some(rand4(3, [1, 8, 9, 9]).view()),
                ..ConvOpts::default()
            }
        )
        .is_err());
}

#[test]
fn conv_onto_its_sum_equals_the_fused_residual() {
    // `forward_onto(x, sum)` = `forward(x, residual: sum)` up to the order of the additions, on
    // every path: GEMM row bands (one and three blocks of the reduction), split over output
    // channels, transposed (7²), strided 1×1, im2col, Winograd, direct, stem, depthwise,
    // grouped, reflect padding, batch 2.
    let cases = [
        ([1, 64, 40, 40], [96, 64, 1, 1], 1, 0, 1, PaddingMode::Zeros),
        ([2, 300, 12, 13], [64, 300, 1, 1], 1, 0, 1, PaddingMode::Zeros),
        ([1, 256, 16, 16], [512, 256, 1, 1], 1, 0, 1, PaddingMode::Zeros),
        ([1, 256, 7, 7], [256, 256, 1, 1], 1, 0, 1, PaddingMode::Zeros),
        ([1, 64, 30, 30], [128, 64, 1, 1], 2, 0, 1, PaddingMode::Zeros),
        ([1, 24, 20, 21], [32, 24, 3, 3], 2, 1, 1, PaddingMode::Zeros),
        ([2, 32, 19, 23], [32, 32, 3, 3], 1, 1, 1, PaddingMode::Zeros),
        ([1, 16, 30, 30], [16, 16, 3, 3], 1, 1, 1, PaddingMode::Zeros),
        ([2, 3, 41, 53], [13, 3, 5, 5], 1, 2, 1, PaddingMode::Zeros),
        ([1, 40, 33, 35], [40, 1, 3, 3], 1, 1, 40, PaddingMode::Zeros),
        ([1, 40, 17, 15], [60, 10, 3, 3], 1, 1, 4, PaddingMode::Zeros),
        ([1, 8, 12, 10], [8, 8, 3, 3], 1, 1, 1, PaddingMode::Reflect),
        ([2, 96, 9, 11], [48, 96, 3, 3], 1, 1, 1, PaddingMode::Zeros),
    ];
    for (i, (xs, ws, stride, pad, groups, mode)) in cases.into_iter().enumerate() {
        for act in [Activation::Relu, Activation::Identity, Activation::Silu] {
            let p = Conv2dParams {
                stride: [stride; 2],
                padding: [pad; 4],
                groups,
                padding_mode: mode,
                act,
                ..Default::default()
            };
            let x = rand4(i as u64, xs);
            let w = rand4(i as u64 ^ 7, ws);
            let b = Array1::from_iter(rand4(i as u64 ^ 9, [ws[0], 1, 1, 1]).iter().copied());
            let conv = Conv2d::new(w, Some(b), p).unwrap();
            let shape = conv.out_shape(xs).unwrap();
            let r = rand4(i as u64 ^ 11, shape);
            let with_r = ConvOpts {
                residual: Some(r.view()),
                ..ConvOpts::default()
            };
            let want = conv.forward(x.view(), &with_r).unwrap();
            let got = conv.forward_onto(x.view(), &ConvOpts::default(), r.clone()).unwrap();
            let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(
                worst <= 4.0 * f32::EPSILON * scale,
                "case {i} {act:?}: onto differs by {worst} (scale {scale})"
            );
            // a sum not in standard layout: added as a residual, the same bits as `forward`
            let mut t = r.clone();
            t.swap_axes(2, 3);
            let t = t.as_standard_layout().into_owned();
            let mut swapped = t.clone();
            swapped.swap_axes(2, 3);
            if shape[2] != shape[3] {
                assert!(!swapped.is_standard_layout());
            }
            let got = conv.forward_onto(x.view(), &ConvOpts::default(), swapped).unwrap();
            assert_eq!(got, want, "case {i} {act:?}: a strided sum");
        }
    }
    // Errors, not panics: a sum of the wrong shape, a residual besides the sum.
    let conv = Conv2d::new(rand4(1, [8, 4, 1, 1]), None, Conv2dParams::default()).unwrap();
    let x = rand4(2, [1, 4, 9, 9]);
    assert!(conv
        .forward_onto(x.view(), &ConvOpts::default(), rand4(3, [1, 8, 9, 8]))
        .is_err());
    let r = rand4(3, [1, 8, 9, 9]);
    let opts = ConvOpts {
        residual: Some(r.view()),
        ..ConvOpts::default()
    };
    assert!(conv.forward_onto(x.view(), &opts, r.clone()).is_err());
}

#[test]
fn prepared_conv_shared_weights_with_other_params() {
    // One prepared 3×3 used with the stored params and with other padding / activation / stride.
    let w = rand4(7, [24, 24, 3, 3]);
    let b = Array1::from_iter(rand4(8, [24, 1, 1, 1]).iter().copied());
    let x = rand4(9, [1, 24, 24, 24]); // ≥ 400 output pixels: conv2d takes Winograd too
    let p = Conv2dParams {
        padding: [1; 4],
        ..Default::default()
    };
    let prep = Conv2d::new(w.clone(), Some(b.clone()), p).unwrap();
    for q in [
        p,
        Conv2dParams {
            act: Activation::Relu,
            padding: [0, 2, 1, 0],
            ..p
        },
        Conv2dParams { stride: [2, 2], ..p },
        Conv2dParams {
            padding_mode: PaddingMode::Reflect,
            ..p
        },
    ] {
        let got = prep
            .forward(
                x.view(),
                &ConvOpts {
                    params: Some(&q),
                    ..ConvOpts::default()
                },
            )
            .unwrap();
        assert_eq!(got, conv2d(x.view(), w.view(), Some(b.view()), &q).unwrap(), "{q:?}");
        close(&got, &naive_conv(&x, &w, Some(&b), &q).unwrap(), 1e-4).unwrap();
    }
}

#[test]
fn prepared_conv_errors_are_reported_not_panics() {
    let w = rand4(2, [32, 16, 3, 3]);
    let p = Conv2dParams {
        padding: [1; 4],
        ..Default::default()
    };
    let prep = Conv2d::new(w.clone(), None, p).unwrap();
    // Wrong input channels: the same typed error as conv2d, from forward and forward_into.
    let x = rand4(1, [1, 17, 20, 20]);
    let e = prep.forward(x.view(), &ConvOpts::default()).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "conv2d", .. }), "{e}");
    assert_eq!(
        e.to_string(),
        conv2d(x.view(), w.view(), None, &p).unwrap_err().to_string()
    );
    let mut out = Tensor::zeros((1, 32, 20, 20));
    assert!(matches!(
        prep.forward_into(x.view(), &ConvOpts::default(), out.view_mut()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(prep.out_shape([1, 17, 20, 20]).is_err());
    // Wrong output buffer, too small an input, empty batch.
    let x = rand4(1, [1, 16, 20, 20]);
    let mut wrong = Tensor::zeros((1, 32, 19, 20));
    assert!(prep
        .forward_into(x.view(), &ConvOpts::default(), wrong.view_mut())
        .is_err());
    let tiny = Conv2d::new(w.clone(), None, Conv2dParams::default()).unwrap();
    assert!(matches!(
        tiny.forward(rand4(1, [1, 16, 2, 2]).view(), &ConvOpts::default()),
        Err(Error::InputSize(_))
    ));
    assert!(prep
        .forward(Tensor::zeros((0, 16, 5, 5)).view(), &ConvOpts::default())
        .is_err());
    // Invalid construction: typed errors from new, the same refusal later from new_deferred.
    let bad_bias = Array1::zeros(31);
    let cases = [
        (w.clone(), Some(bad_bias.clone()), p),
        (w.clone(), None, Conv2dParams { stride: [0, 1], ..p }),
        (w.clone(), None, Conv2dParams { dilation: [1, 0], ..p }),
        (w.clone(), None, Conv2dParams { groups: 0, ..p }),
        (w.clone(), None, Conv2dParams { groups: 3, ..p }),
        (Tensor::zeros((0, 16, 3, 3)), None, p),
        (Tensor::zeros((4, 16, 0, 3)), None, p),
    ];
    for (i, (w, b, q)) in cases.into_iter().enumerate() {
        let e = Conv2d::new(w.clone(), b.clone(), q).unwrap_err();
        match i {
            0 => assert!(matches!(e, Error::ShapeMismatch { op: "Conv2d", .. }), "{e}"),
            _ => assert!(matches!(e, Error::InvalidParams { op: "Conv2d", .. }), "{e}"),
        }
        let d = Conv2d::new_deferred(w, b, q);
        let cin = d.weight().dim().1 * q.groups.max(1);
        assert!(
            d.forward(rand4(3, [1, cin, 8, 8]).view(), &ConvOpts::default())
                .is_err(),
            "case {i}"
        );
        assert!(format!("{d:?}").starts_with("Conv2d"));
    }
}

/// Naive pooling from the PyTorch definition.
fn naive_pool(x: &Tensor, p: &Pool2dParams, is_max: bool) -> Option<Tensor> {
    let (n, c, h, w) = x.dim();
    let size = |i: usize, k: usize, s: usize, pad: usize, d: usize| -> Option<usize> {
        if pad > k / 2 {
            return None;
        }
        let span = (i + 2 * pad) as f64 - (d * (k - 1)) as f64 - 1.0;
        let mut o = if p.ceil_mode {
            (span / s as f64).ceil()
        } else {
            (span / s as f64).floor()
        } as i64
            + 1;
        if p.ceil_mode && (o - 1) * s as i64 >= (i + pad) as i64 {
            o -= 1;
        }
        (o >= 1).then_some(o as usize)
    };
    let oh = size(h, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0])?;
    let ow = size(w, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1])?;
    let mut y = Tensor::zeros((n, c, oh, ow));
    for ((ni, ci, oy, ox), v) in y.indexed_iter_mut() {
        let y0 = (oy * p.stride[0]) as isize - p.padding[0] as isize;
        let x0 = (ox * p.stride[1]) as isize - p.padding[1] as isize;
        if is_max {
            let mut m = f32::NEG_INFINITY;
            for ky in 0..p.kernel[0] {
                for kx in 0..p.kernel[1] {
                    let iy = y0 + (ky * p.dilation[0]) as isize;
                    let ix = x0 + (kx * p.dilation[1]) as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                        m = m.max(x[[ni, ci, iy as usize, ix as usize]]);
                    }
                }
            }
            *v = m;
        } else {
            let (mut s, mut cnt, mut cnt_pad) = (0.0f64, 0usize, 0usize);
            for ky in 0..p.kernel[0] as isize {
                for kx in 0..p.kernel[1] as isize {
                    let (iy, ix) = (y0 + ky, x0 + kx);
                    // Positions inside input + padding count when count_include_pad.
                    if iy < h as isize + p.padding[0] as isize && ix < w as isize + p.padding[1] as isize {
                        cnt_pad += 1;
                    }
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                        s += x[[ni, ci, iy as usize, ix as usize]] as f64;
                        cnt += 1;
                    }
                }
            }
            let div = if p.count_include_pad { cnt_pad } else { cnt };
            *v = if cnt == 0 { 0.0 } else { (s / div as f64) as f32 };
        }
    }
    Some(y)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn pooling_equals_naive(
        n in 1usize..=3, c in 1usize..=3, h in 1usize..=12, w in 1usize..=12,
        k in (1usize..=4, 1usize..=4), s in (1usize..=4, 1usize..=4), pd in (0usize..=2, 0usize..=2),
        d in (1usize..=2, 1usize..=2), ceil_mode: bool, count_include_pad: bool, is_max: bool, seed: u64,
    ) {
        let d = if is_max { [d.0, d.1] } else { [1, 1] };
        let p = Pool2dParams { kernel: [k.0, k.1], stride: [s.0, s.1], padding: [pd.0, pd.1], dilation: d, ceil_mode, count_include_pad };
        let x = rand4(seed, [n, c, h, w]);
        let got = poisoned(|| if is_max { max_pool2d(x.view(), &p) } else { avg_pool2d(x.view(), &p) });
        match (got, naive_pool(&x, &p, is_max)) {
            (Ok(g), Some(want)) => close(&g, &want, 1e-5).map_err(TestCaseError::fail)?,
            (Err(_), None) => {}
            (g, want) => prop_assert!(false, "{:?} vs {:?}", g.map(|t| t.dim()), want.map(|t| t.dim())),
        }
    }

    /// TensorFlow's `SAME` pads each axis by the least total that gives `ceil(x/s)` windows, half
    /// of it (rounded down) before: found here by search, then the padded pool has that size.
    #[test]
    fn tf_same_padding_is_the_least_that_gives_ceil(
        h in 1usize..=20, w in 1usize..=20, k in (1usize..=5, 1usize..=5), s in (1usize..=4, 1usize..=4),
        d in (1usize..=3, 1usize..=3), seed: u64,
    ) {
        let (k, s, d) = ([k.0, k.1], [s.0, s.1], [d.0, d.1]);
        let x = rand4(seed, [1, 2, h, w]);
        let pad = same_dynamic_padding(x.view(), k, s, d).unwrap();
        for (a, size) in [h, w].into_iter().enumerate() {
            let span = d[a] * (k[a] - 1) + 1;
            let want = size.div_ceil(s[a]);
            let fits = |p: usize| size + p >= span && (size + p - span) / s[a] + 1 >= want;
            let least = (0..).find(|&p| fits(p)).unwrap();
            prop_assert_eq!([pad[2 * a], pad[2 * a + 1]], [least / 2, least - least / 2]);
        }
        let padded = pad2d(x.view(), pad, PaddingMode::Zeros).unwrap();
        let p = Pool2dParams { kernel: k, stride: s, padding: [0, 0], dilation: d, ceil_mode: false, count_include_pad: true };
        let y = max_pool2d(padded.view(), &p).unwrap();
        prop_assert_eq!(y.dim(), (1, 2, h.div_ceil(s[0]), w.div_ceil(s[1])));
    }

    #[test]
    fn nearest_equals_index_formula(
        n in 1usize..=3, c in 1usize..=2, h in 1usize..=10, w in 1usize..=10,
        oh in 1usize..=25, ow in 1usize..=25, int_scale in 1usize..=4, use_scale: bool, seed: u64,
    ) {
        let x = rand4(seed, [n, c, h, w]);
        if use_scale {
            // Integer scale: out[i] = in[i / s].
            let s = int_scale;
            let y = poisoned(|| upsample_nearest(x.view(), Resize::Scale([s as f64, s as f64]))).unwrap();
            prop_assert_eq!(y.dim(), (n, c, h * s, w * s));
            for ((a, b, i, j), v) in y.indexed_iter() {
                prop_assert_eq!(*v, x[[a, b, i / s, j / s]]);
            }
        } else {
            let y = poisoned(|| upsample_nearest(x.view(), Resize::Size([oh, ow]))).unwrap();
            prop_assert_eq!(y.dim(), (n, c, oh, ow));
            let idx = |d: usize, i: usize, o: usize| ((d as f32 * (i as f32 / o as f32)).floor() as usize).min(i - 1);
            for ((a, b, i, j), v) in y.indexed_iter() {
                prop_assert_eq!(*v, x[[a, b, idx(i, h, oh), idx(j, w, ow)]]);
            }
        }
    }

    #[test]
    fn bilinear_properties(
        n in 1usize..=2, c in 1usize..=2, h in 2usize..=9, w in 2usize..=9, k in 1usize..=4,
        oh in 1usize..=20, ow in 1usize..=20, align: bool, seed: u64,
    ) {
        // align_corners with out = (in - 1) k + 1 hits every input pixel exactly every k steps.
        let x = rand4(seed, [n, c, h, w]);
        let y = poisoned(|| upsample_bilinear(x.view(), Resize::Size([(h - 1) * k + 1, (w - 1) * k + 1]), true)).unwrap();
        for ((a, b, i, j), v) in x.indexed_iter() {
            prop_assert!((y[[a, b, i * k, j * k]] - v).abs() < 1e-6);
        }
        // A constant stays constant and a horizontal ramp stays within its range, any size.
        let cst = Tensor::from_elem((n, c, h, w), 0.25);
        let yc = upsample_bilinear(cst.view(), Resize::Size([oh, ow]), align).unwrap();
        prop_assert!(yc.iter().all(|v| (v - 0.25).abs() < 1e-6));
        let ramp = Tensor::from_shape_fn((n, c, h, w), |(_, _, _, j)| j as f32);
        let yr = poisoned(|| upsample_bilinear(ramp.view(), Resize::Size([oh, ow]), align)).unwrap();
        prop_assert!(yr.iter().all(|&v| v >= -1e-6 && v <= (w - 1) as f32 + 1e-6));
        for row in yr.rows() {
            prop_assert!(row.windows(2).into_iter().all(|p| p[1] >= p[0] - 1e-6), "monotone");
        }
    }

    #[test]
    fn merges_equal_naive(n in 1usize..=3, c in 1usize..=4, h in 1usize..=9, w in 1usize..=9, c2 in 1usize..=3,
                          ws in proptest::collection::vec(-1.0f32..2.0, 3), seed: u64) {
        let a = rand4(seed, [n, c, h, w]);
        let b = rand4(seed ^ 1, [n, c, h, w]);
        let d = rand4(seed ^ 2, [n, c2, h, w]);
        let s = poisoned(|| add(a.view(), b.view())).unwrap();
        prop_assert_eq!(&s, &(&a + &b));
        let m = mean(&[a.view(), b.view(), d.view()]);
        prop_assert!(c == c2 || m.is_err());
        let cat = poisoned(|| concat(&[d.view(), a.view()])).unwrap();
        for ((i, ch, y, x), v) in cat.indexed_iter() {
            let want = if ch < c2 { d[[i, ch, y, x]] } else { a[[i, ch - c2, y, x]] };
            prop_assert_eq!(*v, want);
        }
        let wv = Array1::from(ws.clone());
        let f = poisoned(|| weighted_fusion(&[a.view(), b.view(), a.view()], wv.view(), 1e-4)).unwrap();
        let r: Vec<f32> = ws.iter().map(|v| v.max(0.0)).collect();
        let den = r.iter().sum::<f32>() + 1e-4;
        for ((idx, v), (av, bv)) in f.indexed_iter().zip(a.iter().zip(b.iter())) {
            let want = (r[0] * av + r[1] * bv + r[2] * av) / den;
            prop_assert!((v - want).abs() <= 1e-5 * (1.0 + want.abs()), "{:?}", idx);
        }
        let mab = poisoned(|| mean(&[a.view(), b.view()])).unwrap();
        prop_assert!(close(&mab, &((&a + &b) / 2.0), 1e-6).is_ok());
    }

    #[test]
    fn batch_norm_equals_formula(n in 1usize..=3, c in 1usize..=5, h in 1usize..=7, w in 1usize..=7, seed: u64) {
        let x = rand4(seed, [n, c, h, w]);
        let r = |s: u64| Array1::from_iter(rand4(seed ^ s, [c, 1, 1, 1]).iter().copied());
        let bn = BatchNorm { weight: r(3), bias: r(4), running_mean: r(5), running_var: r(6).mapv(|v| v.abs() + 0.1), eps: 1e-5 };
        let y = batch_norm(x.view(), &bn).unwrap();
        for ((i, ch, yy, xx), v) in y.indexed_iter() {
            let want = (x[[i, ch, yy, xx]] - bn.running_mean[ch]) / (bn.running_var[ch] + bn.eps).sqrt() * bn.weight[ch] + bn.bias[ch];
            prop_assert!((v - want).abs() <= 1e-5 * (1.0 + want.abs()));
        }
    }
}

#[test]
fn max_pool_propagates_nan_like_pytorch() {
    // One NaN at (2, 2) of a 6×7 plane; a 3×3 window (stride 1, pad 1, dilation 2 along x)
    // is NaN exactly where it covers (2, 2), the maximum of its other elements elsewhere.
    let mut x = rand4(5, [1, 1, 6, 7]);
    x[[0, 0, 2, 2]] = f32::NAN;
    let p = Pool2dParams {
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 2],
        ceil_mode: false,
        count_include_pad: true,
    };
    let y = max_pool2d(x.view(), &p).unwrap();
    let (oh, ow) = (y.dim().2, y.dim().3);
    for oy in 0..oh {
        for ox in 0..ow {
            let covers = (0..3).any(|ky| oy + ky == 3) && (0..3).any(|kx| ox + 2 * kx == 3);
            assert_eq!(y[[0, 0, oy, ox]].is_nan(), covers, "output ({oy}, {ox})");
        }
    }
}

/// Whether `x` has an output under `p`; if it has, asserts that fpn's max pooling equals the
/// naive one: the naive pool skips NaNs, so fpn's is compared with it on −∞ in their place,
/// and must be NaN exactly in the windows that cover one (found by pooling an indicator).
fn max_pool_equals_naive(x: &Tensor, p: &Pool2dParams, what: &str) -> bool {
    let Some(want) = naive_pool(&x.mapv(|v| if v.is_nan() { f32::NEG_INFINITY } else { v }), p, true) else {
        return false;
    };
    let got = max_pool2d(x.view(), p).unwrap();
    let covers = naive_pool(&x.mapv(|v| if v.is_nan() { 1.0 } else { 0.0 }), p, true).unwrap();
    assert_eq!(got.dim(), want.dim(), "{what}");
    for ((g, w), c) in got.iter().zip(&want).zip(&covers) {
        let ok = if *c > 0.0 {
            g.is_nan()
        } else {
            g.to_bits() == w.to_bits()
        };
        assert!(ok, "{what}: {g} vs {w} (covers a NaN: {})", *c > 0.0);
    }
    true
}

#[test]
fn wide_max_pools_equal_naive() {
    // Planes at least 64 wide take the AVX-512 loops where the CPU has them: every stride,
    // dilation, padding and ceil mode, and NaNs propagated.
    let mut x = rand4(21, [1, 3, 19, 133]);
    x[[0, 1, 7, 70]] = f32::NAN;
    x[[0, 2, 0, 132]] = f32::NAN;
    for (k, s, pd, d, ceil) in [
        (3, 2, 1, 1, false),
        (5, 1, 2, 1, false),
        (3, 3, 0, 2, true),
        (2, 2, 0, 1, true),
        (4, 1, 1, 1, false),
    ] {
        let p = Pool2dParams {
            kernel: [k, k],
            stride: [s, s],
            padding: [pd, pd],
            dilation: [d, d],
            ceil_mode: ceil,
            count_include_pad: true,
        };
        assert!(max_pool_equals_naive(&x, &p, &format!("{:?}", (k, s, pd, d, ceil))));
    }
}

#[test]
fn small_stride1_max_pools_equal_naive() {
    // Stride-1 planes of at most 32 columns take their own AVX-512 loop where the CPU has it
    // (YOLOv8's SPPF: 5×5 at 20²): widths around one and two vectors, kernels up to 17, any
    // padding up to half the kernel, NaNs propagated.
    let mut checked = 0;
    for w in [1, 7, 15, 16, 17, 20, 31, 32] {
        let mut x = rand4(31 + w as u64, [1, 2, 9, w]);
        x[[0, 1, 4, w / 2]] = f32::NAN;
        for (k, pd) in [(1, 0), (3, 1), (5, 2), (5, 0), (9, 4), (13, 6), (17, 8), (4, 1)] {
            let p = Pool2dParams {
                kernel: [k.min(9), k],
                stride: [1, 1],
                padding: [pd.min(4), pd],
                dilation: [1, 1],
                ceil_mode: false,
                count_include_pad: true,
            };
            // false where the kernel is wider than the padded plane (no output)
            checked += usize::from(max_pool_equals_naive(&x, &p, &format!("w {w}, k {k}, pad {pd}")));
        }
    }
    assert!(checked >= 56, "{checked} of 64 cases have an output");
}

#[test]
fn large_pool_and_resize_take_parallel_paths() {
    let x = rand4(9, [2, 32, 41, 39]);
    for (k, s, pd, ceil) in [(3, 2, 1, false), (2, 2, 0, true)] {
        let p = Pool2dParams {
            kernel: [k, k],
            stride: [s, s],
            padding: [pd, pd],
            dilation: [1, 1],
            ceil_mode: ceil,
            count_include_pad: false,
        };
        close(
            &max_pool2d(x.view(), &p).unwrap(),
            &naive_pool(&x, &p, true).unwrap(),
            1e-6,
        )
        .unwrap();
        close(
            &avg_pool2d(x.view(), &p).unwrap(),
            &naive_pool(&x, &p, false).unwrap(),
            1e-5,
        )
        .unwrap();
    }
    let y = upsample_nearest(x.view(), Resize::Scale([2.0, 2.0])).unwrap();
    for ((a, b, i, j), v) in y.indexed_iter() {
        assert_eq!(*v, x[[a, b, i / 2, j / 2]]);
    }
}

#[test]
fn errors_are_reported_not_panics() {
    let x = rand4(1, [1, 4, 5, 5]);
    let w = rand4(2, [6, 4, 3, 3]);
    let e = conv2d(x.view(), rand4(3, [6, 3, 3, 3]).view(), None, &Conv2dParams::default()).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "conv2d", .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "conv2d cannot combine shapes [1, 4, 5, 5] and [6, 3, 3, 3]: the input has 4 channels but the weight expects 3 per group × 1 groups."
    );
    let big = Conv2dParams {
        stride: [1, 1],
        dilation: [3, 3],
        ..Default::default()
    };
    assert!(matches!(
        conv2d(x.view(), w.view(), None, &big),
        Err(Error::InputSize(_))
    ));
    for bad in [
        Conv2dParams {
            stride: [0, 1],
            ..Default::default()
        },
        Conv2dParams {
            dilation: [1, 0],
            ..Default::default()
        },
        Conv2dParams {
            groups: 0,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            conv2d(x.view(), w.view(), None, &bad),
            Err(Error::InvalidParams { .. })
        ));
    }
    let reflect = Conv2dParams {
        padding: [5, 5, 1, 1],
        padding_mode: PaddingMode::Reflect,
        ..Default::default()
    };
    assert!(matches!(
        conv2d(x.view(), w.view(), None, &reflect),
        Err(Error::InputSize(_))
    ));
    let circ_ok = Conv2dParams {
        padding: [5, 5, 5, 5],
        padding_mode: PaddingMode::Circular,
        ..Default::default()
    };
    assert!(conv2d(x.view(), w.view(), None, &circ_ok).is_ok());
    let circ = Conv2dParams {
        padding: [6, 5, 5, 5],
        padding_mode: PaddingMode::Circular,
        ..Default::default()
    };
    assert!(matches!(
        conv2d(x.view(), w.view(), None, &circ),
        Err(Error::InputSize(_))
    ));
    let bias = Array1::zeros(5);
    assert!(matches!(
        conv2d(x.view(), w.view(), Some(bias.view()), &Conv2dParams::default()),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut wrong_out = Tensor::zeros((1, 6, 4, 4));
    assert!(conv2d_into(x.view(), w.view(), None, &Conv2dParams::default(), wrong_out.view_mut()).is_err());
    let empty = Tensor::zeros((0, 4, 5, 5));
    assert!(conv2d(empty.view(), w.view(), None, &Conv2dParams::default()).is_err());

    let p = Pool2dParams::square(2);
    assert!(max_pool2d(rand4(1, [1, 1, 1, 1]).view(), &p).is_err());
    assert!(avg_pool2d(x.view(), &Pool2dParams { dilation: [2, 2], ..p }).is_err());
    assert!(max_pool2d(x.view(), &Pool2dParams { padding: [2, 2], ..p }).is_err());
    assert_eq!(pool_out_size(5, 2, 2, 0, 1, true), Some(3));
    assert_eq!(pool_out_size(5, 2, 2, 0, 1, false), Some(2));
    assert_eq!(pool_out_size(1, 2, 2, 0, 1, false), None);
    assert_eq!(pool_out_size(5, 0, 2, 0, 1, false), None);
    // Sizes are computed in i64 by the shared rules: the largest input is i64::MAX (no tensor
    // comes near it); past that the size is refused, not wrapped.
    assert_eq!(
        pool_out_size(i64::MAX as usize, 2, 2, 1, 1, false),
        Some(i64::MAX as usize / 2 + 1)
    );
    assert_eq!(pool_out_size(usize::MAX, 2, 2, 1, 1, false), None);

    assert!(upsample_nearest(x.view(), Resize::Scale([0.0, 1.0])).is_err());
    assert!(upsample_nearest(x.view(), Resize::Scale([f64::NAN, 1.0])).is_err());
    assert!(upsample_nearest(x.view(), Resize::Scale([0.1, 1.0])).is_err());
    assert!(upsample_bilinear(x.view(), Resize::Size([0, 3]), false).is_err());
    assert!(upsample_nearest(x.view(), Resize::Scale([1e300, 1.0])).is_err());

    assert!(add(x.view(), w.view()).is_err());
    let mut acc = x.clone();
    assert!(add_assign(&mut acc, w.view()).is_err());
    assert!(concat(&[]).is_err());
    assert!(concat(&[x.view(), rand4(1, [1, 4, 5, 6]).view()]).is_err());
    assert!(mean(&[]).is_err());
    assert!(weighted_fusion(&[x.view()], Array1::zeros(2).view(), 1e-4).is_err());
    let bn = BatchNorm::new(3, 1e-5);
    assert!(batch_norm(x.view(), &bn).is_err());
    let mut bad_bn = BatchNorm::new(4, 1e-5);
    bad_bn.running_var = Array1::ones(3);
    assert!(batch_norm(x.view(), &bad_bn).is_err());
    let mut w2 = w.clone();
    assert!(fold_batch_norm(&mut w2, None, &bn).is_err());
    assert!(pad2d(x.view(), [5, 0, 0, 0], PaddingMode::Reflect).is_err());

    // Absurd sizes are errors, not allocation panics or aborts.
    let huge = Conv2dParams {
        padding: [1 << 40; 4],
        ..Default::default()
    };
    assert!(matches!(
        conv2d(x.view(), w.view(), None, &huge),
        Err(Error::InputSize(_))
    ));
    let overflow = Conv2dParams {
        padding: [usize::MAX, 1, 0, 0],
        ..Default::default()
    };
    assert!(matches!(
        conv2d(x.view(), w.view(), None, &overflow),
        Err(Error::InputSize(_))
    ));
    assert!(pad2d(x.view(), [1 << 40, 0, 1 << 40, 0], PaddingMode::Replicate).is_err());
    assert!(matches!(
        upsample_nearest(x.view(), Resize::Scale([1e9, 1e9])),
        Err(Error::InputSize(_))
    ));
    assert!(matches!(
        upsample_bilinear(x.view(), Resize::Size([1 << 20, 1 << 20]), true),
        Err(Error::InputSize(_))
    ));
    // An empty batch (resize refuses it; concat takes it): no values, the shape kept. (The
    // arena's tensors, built with explicit strides over longer buffers, once refused it.)
    let empty = Tensor::zeros((0, 1 << 20, 3, 1));
    assert!(upsample_nearest(empty.view(), Resize::Size([2, 3])).is_err());
    assert_eq!(
        concat(&[empty.view(), empty.view()])
            .map(|t| t.dim())
            .map_err(|e| e.to_string()),
        Ok((0, 2 << 20, 3, 1))
    );
    // … also on a recycled, longer buffer.
    let cat = poisoned(|| concat(&[empty.view(), empty.view()]));
    assert_eq!(cat.map(|t| t.dim()).map_err(|e| e.to_string()), Ok((0, 2 << 20, 3, 1)));
}
