//! Every runtime op against PyTorch, on fixtures made by `tools/runtime_fixtures.py`
//! (run `python3 tools/runtime_fixtures.py` from the repository root to regenerate
//! `fpn-runtime/tests/fixtures/*.safetensors`). Parameter vectors `NAME.p` are laid out as the
//! script's docstrings say. Tolerance: 1e-4 absolute.

use fpn_runtime::ndarray::{Array1, ArrayD, Ix4};
use fpn_runtime::*;

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> Weights {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    Weights::from_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn t4(w: &Weights, name: &str) -> Tensor {
    w.tensor(name).unwrap().into_dimensionality::<Ix4>().unwrap()
}

fn t1(w: &Weights, name: &str) -> Array1<f32> {
    w.tensor(name).unwrap().into_dimensionality().unwrap()
}

fn params(w: &Weights, case: &str) -> Vec<f32> {
    w.tensor(&format!("{case}.p")).unwrap().iter().copied().collect()
}

/// Cases of a fixture file: names `X` with an `X.p` tensor.
fn cases(w: &Weights) -> Vec<String> {
    w.names()
        .filter_map(|n| n.strip_suffix(".p"))
        .map(str::to_string)
        .collect()
}

fn assert_close(case: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{case}: shape");
    let mut worst = 0.0f32;
    for (a, b) in got.iter().zip(want.iter()) {
        let d = (a - b).abs();
        assert!(d.is_finite() || (a.is_nan() && b.is_nan()), "{case}: {a} vs {b}");
        worst = worst.max(d);
    }
    assert!(worst <= TOL, "{case}: max abs diff {worst}");
}

fn act_of(idx: f32, slope: f32) -> Activation {
    match idx as usize {
        0 => Activation::Identity,
        1 => Activation::Relu,
        2 => Activation::Relu6,
        3 => Activation::LeakyRelu(slope),
        4 => Activation::Tanh,
        5 => Activation::Sigmoid,
        6 => Activation::Silu,
        7 => Activation::Hardswish,
        8 => Activation::Gelu,
        9 => Activation::GeluTanh,
        other => panic!("unknown activation {other}"),
    }
}

#[test]
fn conv2d_matches_pytorch() {
    let w = fixture("conv.safetensors");
    let all = cases(&w);
    assert!(all.len() >= 30, "only {} conv cases", all.len());
    for case in all {
        let p = params(&w, &case);
        let u = |i: usize| p[i] as usize;
        let cp = Conv2dParams {
            stride: [u(0), u(1)],
            padding: [u(2), u(3), u(4), u(5)],
            dilation: [u(6), u(7)],
            groups: u(8),
            padding_mode: [
                PaddingMode::Zeros,
                PaddingMode::Reflect,
                PaddingMode::Replicate,
                PaddingMode::Circular,
            ][u(9)],
            act: act_of(p[10], p[11]),
        };
        let x = t4(&w, &format!("{case}.x"));
        let wt = t4(&w, &format!("{case}.w"));
        let b = (p[12] != 0.0).then(|| t1(&w, &format!("{case}.b")));
        let want = t4(&w, &format!("{case}.y"));
        let got =
            conv2d(x.view(), wt.view(), b.as_ref().map(|b| b.view()), &cp).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_close(&case, &got, &want);
        // The _into form into a non-standard-layout buffer gives the same result.
        let mut out_t = Tensor::zeros((want.dim().3, want.dim().2, want.dim().1, want.dim().0));
        out_t.fill(f32::NAN);
        let out = out_t.view_mut().reversed_axes();
        conv2d_into(x.view(), wt.view(), b.as_ref().map(|b| b.view()), &cp, out).unwrap();
        assert_close(
            &format!("{case} (into, transposed)"),
            &out_t.view().reversed_axes().to_owned(),
            &want,
        );
        // A non-standard-layout input gives the same result too.
        let xt = x.view().reversed_axes().to_owned();
        let got = conv2d(xt.view().reversed_axes(), wt.view(), b.as_ref().map(|b| b.view()), &cp).unwrap();
        assert_close(&format!("{case} (transposed input)"), &got, &want);
    }
}

#[test]
fn activations_match_pytorch() {
    let w = fixture("act.safetensors");
    let x = t4(&w, "x");
    let names = [
        "identity",
        "relu",
        "relu6",
        "leaky_relu",
        "tanh",
        "sigmoid",
        "silu",
        "hardswish",
        "gelu",
        "gelu_tanh",
    ];
    for (i, name) in names.iter().enumerate() {
        let a = act_of(i as f32, 0.1);
        let want = t4(&w, &format!("{name}.y"));
        assert_close(name, &activate(x.view(), a), &want);
        let mut y = x.clone();
        activate_inplace(&mut y, a);
        assert_close(name, &y, &want);
        for (v, e) in x.iter().zip(want.iter()) {
            assert!((apply(a, *v) - e).abs() <= TOL, "{name}({v})");
        }
    }
}

fn bn_of(w: &Weights, case: &str) -> BatchNorm {
    BatchNorm {
        weight: t1(w, &format!("{case}.weight")),
        bias: t1(w, &format!("{case}.bias")),
        running_mean: t1(w, &format!("{case}.mean")),
        running_var: t1(w, &format!("{case}.var")),
        eps: params(w, case)[0],
    }
}

#[test]
fn batch_norm_matches_pytorch() {
    let w = fixture("norm.safetensors");
    for case in ["bn_b3", "bn_eps"] {
        let bn = bn_of(&w, case);
        let x = t4(&w, &format!("{case}.x"));
        let want = t4(&w, &format!("{case}.y"));
        assert_close(case, &batch_norm(x.view(), &bn).unwrap(), &want);
        let mut y = x.clone();
        batch_norm_inplace(&mut y, &bn).unwrap();
        assert_close(case, &y, &want);
        let mut out = Tensor::zeros(x.raw_dim());
        batch_norm_into(x.view(), &bn, out.view_mut()).unwrap();
        assert_close(case, &out, &want);
    }
}

#[test]
fn fold_batch_norm_matches_pytorch_conv_bn() {
    let w = fixture("norm.safetensors");
    let bn = bn_of(&w, "fold");
    let x = t4(&w, "fold.x");
    let mut wt = t4(&w, "fold.w");
    let b = t1(&w, "fold.b");
    let want = t4(&w, "fold.y");
    let p = Conv2dParams {
        padding: [1; 4],
        ..Default::default()
    };
    let unfused = batch_norm(conv2d(x.view(), wt.view(), Some(b.view()), &p).unwrap().view(), &bn).unwrap();
    assert_close("conv->bn", &unfused, &want);
    let nb = fold_batch_norm(&mut wt, Some(b.view()), &bn).unwrap();
    let fused = conv2d(x.view(), wt.view(), Some(nb.view()), &p).unwrap();
    assert_close("folded", &fused, &want);
    for (a, e) in fused.iter().zip(unfused.iter()) {
        assert!((a - e).abs() <= 1e-5 * e.abs().max(1.0), "folded {a} vs conv->bn {e}");
    }
}

#[test]
fn pooling_matches_pytorch() {
    let w = fixture("pool.safetensors");
    let all = cases(&w);
    assert!(all.len() >= 15);
    for case in all {
        let p = params(&w, &case);
        let u = |i: usize| p[i] as usize;
        let pp = Pool2dParams {
            kernel: [u(1), u(2)],
            stride: [u(3), u(4)],
            padding: [u(5), u(6)],
            dilation: [u(7), u(8)],
            ceil_mode: p[9] != 0.0,
            count_include_pad: p[10] != 0.0,
        };
        let x = t4(&w, &format!("{case}.x"));
        let want = t4(&w, &format!("{case}.y"));
        let is_max = p[0] != 0.0;
        let got = if is_max {
            max_pool2d(x.view(), &pp)
        } else {
            avg_pool2d(x.view(), &pp)
        }
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_close(&case, &got, &want);
        let [n, c, h, wd] = [x.dim().0, x.dim().1, x.dim().2, x.dim().3];
        let oh = pool_out_size(
            h,
            pp.kernel[0],
            pp.stride[0],
            pp.padding[0],
            pp.dilation[0],
            pp.ceil_mode,
        );
        let ow = pool_out_size(
            wd,
            pp.kernel[1],
            pp.stride[1],
            pp.padding[1],
            pp.dilation[1],
            pp.ceil_mode,
        );
        assert_eq!(
            [Some(n), Some(c), oh, ow],
            [want.dim().0, want.dim().1, want.dim().2, want.dim().3].map(Some),
            "{case}"
        );
        let mut out = Tensor::zeros(want.raw_dim());
        if is_max {
            max_pool2d_into(x.view(), &pp, out.view_mut())
        } else {
            avg_pool2d_into(x.view(), &pp, out.view_mut())
        }
        .unwrap();
        assert_close(&case, &out, &want);
    }
}

#[test]
fn upsampling_matches_pytorch() {
    let w = fixture("resize.safetensors");
    let all = cases(&w);
    assert!(all.len() >= 15);
    for case in all {
        let p = params(&w, &case);
        let r = if p[2] != 0.0 {
            Resize::Scale([p[3] as f64 / p[4] as f64, p[5] as f64 / p[6] as f64])
        } else {
            Resize::Size([p[3] as usize, p[5] as usize])
        };
        let x = t4(&w, &format!("{case}.x"));
        let want = t4(&w, &format!("{case}.y"));
        let bilinear = p[0] != 0.0;
        let align = p[1] != 0.0;
        let got = if bilinear {
            upsample_bilinear(x.view(), r, align)
        } else {
            upsample_nearest(x.view(), r)
        }
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_close(&case, &got, &want);
        let mut out = Tensor::zeros(want.raw_dim());
        if bilinear {
            upsample_bilinear_into(x.view(), r, align, out.view_mut())
        } else {
            upsample_nearest_into(x.view(), r, out.view_mut())
        }
        .unwrap();
        assert_close(&case, &out, &want);
    }
}

#[test]
fn merges_match_pytorch() {
    let w = fixture("merge.safetensors");
    let (a, b, c, d) = (t4(&w, "a"), t4(&w, "b"), t4(&w, "c"), t4(&w, "d"));
    assert_close("add", &add(a.view(), b.view()).unwrap(), &t4(&w, "add.y"));
    let mut out = Tensor::zeros(a.raw_dim());
    add_into(a.view(), b.view(), out.view_mut()).unwrap();
    assert_close("add_into", &out, &t4(&w, "add.y"));
    let mut acc = a.clone();
    add_assign(&mut acc, b.view()).unwrap();
    assert_close("add_assign", &acc, &t4(&w, "add.y"));
    let cat = concat(&[a.view(), d.view(), b.view()]).unwrap();
    assert_close("concat", &cat, &t4(&w, "concat.y"));
    let mut out = Tensor::zeros(cat.raw_dim());
    concat_into(&[a.view(), d.view(), b.view()], out.view_mut()).unwrap();
    assert_close("concat_into", &out, &t4(&w, "concat.y"));
    assert_close(
        "mean",
        &mean(&[a.view(), b.view(), c.view()]).unwrap(),
        &t4(&w, "mean.y"),
    );
    for case in ["fusion", "fusion_pos"] {
        let fw = t1(&w, &format!("{case}.w"));
        let eps = params(&w, case)[0];
        let got = weighted_fusion(&[a.view(), b.view(), c.view()], fw.view(), eps).unwrap();
        assert_close(case, &got, &t4(&w, &format!("{case}.y")));
    }
}

#[test]
fn pytorch_state_dict_round_trip() {
    let w = fixture("model.safetensors");
    let io = fixture("model_io.safetensors");
    let conv = w.scope("0");
    let wt = conv.get4("weight", [4, 3, 3, 3]).unwrap();
    let b = conv.get1("bias", 4).unwrap();
    let bn_scope = w.scope("1");
    let bn = BatchNorm {
        weight: bn_scope.get1("weight", 4).unwrap(),
        bias: bn_scope.get1("bias", 4).unwrap(),
        running_mean: bn_scope.get1("running_mean", 4).unwrap(),
        running_var: bn_scope.get1("running_var", 4).unwrap(),
        eps: 1e-5,
    };
    // PyTorch stores the batch counter as int64: a clear dtype error, naming the full tensor.
    match bn_scope.get("num_batches_tracked", &[]) {
        Err(Error::WrongDtype { name, dtype }) => {
            assert_eq!(name, "1.num_batches_tracked");
            assert_eq!(dtype, "I64");
        }
        other => panic!("expected a dtype error, got {other:?}"),
    }
    let x = t4(&io, "x");
    let p = Conv2dParams {
        padding: [1; 4],
        ..Default::default()
    };
    let y = batch_norm(conv2d(x.view(), wt.view(), Some(b.view()), &p).unwrap().view(), &bn).unwrap();
    assert_close("model", &y, &t4(&io, "y"));

    // Write what we read with write_tensors and read it back bit-exactly.
    let dir = std::env::temp_dir().join(format!("fpn-runtime-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("roundtrip.safetensors");
    let yd: ArrayD<f32> = y.clone().into_dyn();
    let wd: ArrayD<f32> = wt.clone().into_dyn();
    write_tensors(&path, &[("y", yd.view()), ("0.weight", wd.view())]).unwrap();
    let back = read_tensors(&path).unwrap();
    assert_eq!(
        back.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["0.weight", "y"]
    );
    assert_eq!(back[0].1, wd);
    assert_eq!(back[1].1, yd);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn decoder_ops_match_pytorch() {
    let f = fixture("decoder.safetensors");
    let all = cases(&f);
    let mut seen = [0usize; 7];
    for case in &all {
        let p = params(&f, case);
        let u = |i: usize| p[i] as usize;
        let got = if case.starts_with("ct_") {
            seen[0] += 1;
            let b = (p[9] != 0.0).then(|| t1(&f, &format!("{case}.b")));
            let cp = ConvTranspose2dParams {
                stride: [u(0), u(1)],
                padding: [u(2), u(3)],
                output_padding: [u(4), u(5)],
                dilation: [u(6), u(7)],
                groups: u(8),
            };
            let w = t4(&f, &format!("{case}.w"));
            conv_transpose2d(
                t4(&f, &format!("{case}.x")).view(),
                w.view(),
                b.as_ref().map(|b| b.view()),
                &cp,
            )
        } else if case.starts_with("gn_") {
            seen[1] += 1;
            let gn = GroupNorm {
                groups: u(0),
                weight: t1(&f, &format!("{case}.weight")),
                bias: t1(&f, &format!("{case}.bias")),
                eps: p[1],
            };
            group_norm(t4(&f, &format!("{case}.x")).view(), &gn)
        } else if case.starts_with("padto_") {
            seen[2] += 1;
            pad_to(
                t4(&f, &format!("{case}.x")).view(),
                [u(0), u(1)],
                PaddingMode::Zeros,
                0.0,
            )
        } else if case.starts_with("pad_") {
            seen[3] += 1;
            let mode = [
                PaddingMode::Zeros,
                PaddingMode::Reflect,
                PaddingMode::Replicate,
                PaddingMode::Circular,
            ][u(4)];
            let pp = Pad2dParams {
                pad: [u(0), u(1), u(2), u(3)],
                mode,
                value: p[5],
            };
            pad(t4(&f, &format!("{case}.x")).view(), &pp)
        } else if case.starts_with("crop_") {
            seen[4] += 1;
            let off = (p[4] == 0.0).then(|| [u(2), u(3)]);
            crop(t4(&f, &format!("{case}.x")).view(), [u(0), u(1)], off)
        } else if case.starts_with("ps_") {
            seen[5] += 1;
            let x = t4(&f, &format!("{case}.x"));
            if p[1] != 0.0 {
                pixel_shuffle(x.view(), u(0))
            } else {
                pixel_unshuffle(x.view(), u(0))
            }
        } else if case.starts_with("mul_") {
            seen[6] += 1;
            mul(t4(&f, &format!("{case}.a")).view(), t4(&f, &format!("{case}.b")).view())
        } else {
            panic!("unknown case {case}");
        };
        let got = got.unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_close(case, &got, &t4(&f, &format!("{case}.y")));
    }
    assert!(seen.iter().all(|&n| n > 0), "every op has a case: {seen:?}");
}
