//! Runs the checked-in generated modules (`tests/generated/{fpn3,two,fixed,exprs,placed}.rs`, kept current by
//! `codegen_golden.rs`) and compares it with the interpreter: same outputs (up to the float
//! rounding of batch-norm folding), same accepted and refused input sizes.

use crate::codegen_support;

use codegen_support::{fixed, fpn3, max_diff, params_with_stats, random, two};
use fpn_compiler::interp::{self, Params};
use fpn_runtime::{Error, Tensor};

#[deny(warnings)]
#[rustfmt::skip] // golden files: exactly what `generate` emits
#[path = "../generated/fpn3.rs"]
mod fpn3_gen;

use fpn3_gen::{Fpn3, Fpn3Inputs, Fpn3Outputs};

#[deny(warnings)]
#[allow(dead_code)] // pub items of a private test module
#[rustfmt::skip] // golden files: exactly what `generate` emits
#[path = "../generated/two.rs"]
mod two_gen;

use two_gen::{Two, TwoInputs};

#[deny(warnings)]
#[allow(dead_code)] // pub items of a private test module
#[rustfmt::skip] // golden files: exactly what `generate` emits
#[path = "../generated/fixed.rs"]
mod fixed_gen;

fn outputs_vec(o: Fpn3Outputs) -> Vec<(&'static str, Tensor)> {
    vec![
        ("h3", o.h3),
        ("h4", o.h4),
        ("cat", o.cat),
        ("p5", o.p5),
        ("p6", o.p6),
        ("q", o.q),
        ("qn", o.qn),
        ("stem", o.stem),
        ("x_again", o.x_again),
        ("h3_again", o.h3_again),
    ]
}

fn compare(model: &Fpn3, params: &Params, shape: [usize; 4], seed: u64) {
    let (g, a) = fpn3();
    let x = random(shape, seed);
    let want = interp::run(&g, &a, params, &[("x", x.view())]).expect("interpreter runs");
    let got = outputs_vec(
        model
            .forward(Fpn3Inputs { x: x.view() })
            .expect("generated forward runs"),
    );
    assert_eq!(want.len(), got.len());
    for ((wn, w), (gn, t)) in want.iter().zip(&got) {
        assert_eq!(wn, gn);
        let scale = w.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let d = max_diff(w, t);
        assert!(
            d <= 1e-5 * scale.max(1.0) * 10.0,
            "output `{wn}` for {shape:?}: max diff {d} (scale {scale})"
        );
    }
}

#[test]
fn init_matches_interpreter() {
    let (_, a) = fpn3();
    let params = Params::init(&a, 42);
    let model = Fpn3::init(42);
    compare(&model, &params, [1, 3, 32, 32], 1);
    compare(&model, &params, [2, 3, 40, 24], 2);
}

#[test]
fn recycled_buffers_give_the_same_outputs() {
    // buffers handed back hold the last call's values: every op must overwrite what it reuses,
    // at the same size and after a size change (larger, then smaller again)
    let model = Fpn3::init(5);
    let run = |shape: [usize; 4], seed: u64| {
        let x = random(shape, seed);
        let o = model.forward(Fpn3Inputs { x: x.view() }).expect("runs");
        let kept: Vec<(&str, Tensor)> = outputs_vec(o.clone());
        model.recycle(o);
        kept
    };
    let first = run([1, 3, 32, 32], 1);
    assert!(model.held_memory() > 0, "the outputs and intermediates are kept");
    let other = run([2, 3, 40, 24], 2);
    let again = run([1, 3, 32, 32], 1);
    assert_eq!(first, again);
    model.release_memory();
    assert_eq!(model.held_memory(), 0);
    assert_eq!(run([2, 3, 40, 24], 2), other);
}

#[test]
fn loaded_weights_with_bn_statistics_match_interpreter() {
    let (_, a) = fpn3();
    let params = params_with_stats(&a, 7);
    let bytes = params.to_safetensors_bytes().expect("serializes");
    let model = Fpn3::from_safetensors_bytes(bytes.clone()).expect("loads");
    // odd sizes the spec accepts: ceil(H/4) even
    for (i, (h, w)) in [(32, 32), (29, 30), (13, 61), (8, 8)].into_iter().enumerate() {
        compare(&model, &params, [1, 3, h, w], 10 + i as u64);
    }
    // from a file too
    let dir = std::env::temp_dir().join(format!("fpn-codegen-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("fpn3.safetensors");
    std::fs::write(&path, &bytes).expect("write");
    let from_file = Fpn3::from_safetensors(&path).expect("loads from file");
    compare(&from_file, &params, [1, 3, 16, 16], 3);
    // a checkpoint whose keys carry an extra prefix: refused naming the file and the rewrite,
    // loaded with the key map
    let prefixed: Vec<(String, fpn_runtime::ndarray::ArrayD<f32>)> = params
        .sorted()
        .into_iter()
        .map(|(n, t)| (format!("detector.{n}"), t.clone()))
        .collect();
    let views: Vec<(&str, fpn_runtime::ndarray::ArrayViewD<f32>)> =
        prefixed.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
    let ppath = dir.join("prefixed.safetensors");
    std::fs::write(&ppath, fpn_runtime::tensors_to_bytes(&views).expect("bytes")).expect("write");
    match Fpn3::from_safetensors(&ppath) {
        Err(e @ Error::MissingTensors { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("`{}`", ppath.display())),
                "names the file: {text}"
            );
            assert!(text.contains("under the extra prefix `detector.`"), "{text}");
            assert!(text.contains("LoadOptions::new().map(\"detector.\", \"\")"), "{text}");
        }
        other => panic!("expected missing tensors, got {:?}", other.map(|_| ())),
    }
    let opts = fpn_runtime::LoadOptions::new().strip_prefix("detector.");
    let mapped = Fpn3::from_safetensors_with(&ppath, &opts).expect("loads with the key map");
    compare(&mapped, &params, [1, 3, 16, 16], 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn params_list_matches_analysis() {
    let (_, a) = fpn3();
    let names: Vec<(&str, Vec<usize>)> = Fpn3::PARAMS.iter().map(|(n, s)| (*n, s.to_vec())).collect();
    let want: Vec<(&str, Vec<usize>)> = a
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.shape.iter().map(|&d| d as usize).collect()))
        .collect();
    assert_eq!(names, want);
}

#[test]
fn missing_and_misshapen_weights_name_the_tensor() {
    let (_, a) = fpn3();
    let params = Params::init(&a, 1);
    let mut tensors: Vec<(String, fpn_runtime::ndarray::ArrayD<f32>)> = params
        .sorted()
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    tensors.retain(|(n, _)| n != "head.bn.running_var");
    let views: Vec<(&str, fpn_runtime::ndarray::ArrayViewD<f32>)> =
        tensors.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
    let bytes = fpn_runtime::tensors_to_bytes(&views).expect("bytes");
    match Fpn3::from_safetensors_bytes(bytes.clone()) {
        Err(Error::MissingTensors { missing, hint, .. }) => {
            assert_eq!(missing, ["head.bn.running_var"]);
            assert_eq!(hint, None);
        }
        other => panic!("expected a missing tensor, got {:?}", other.map(|_| ())),
    }
    let w = fpn_runtime::Weights::from_bytes(bytes).expect("weights");
    assert!(
        matches!(Params::from_weights(&w, &a), Err(Error::MissingTensors { missing, .. }) if missing == ["head.bn.running_var"])
    );

    let mut p2 = params.clone();
    p2.insert("fpn.lat4.weight", fpn_runtime::ndarray::ArrayD::zeros(vec![6, 8, 3, 3]));
    let bytes = p2.to_safetensors_bytes().expect("bytes");
    match Fpn3::from_safetensors_bytes(bytes.clone()) {
        Err(Error::WrongShape { name, .. }) => assert_eq!(name, "fpn.lat4.weight"),
        other => panic!("expected a wrong shape, got {:?}", other.map(|_| ())),
    }
    let w = fpn_runtime::Weights::from_bytes(bytes).expect("weights");
    assert!(matches!(Params::from_weights(&w, &a), Err(Error::WrongShape { name, .. }) if name == "fpn.lat4.weight"));
}

#[test]
fn refused_sizes_agree_with_interpreter() {
    let (g, a) = fpn3();
    let params = Params::init(&a, 3);
    let model = Fpn3::init(3);
    // ceil(36/4) = 9 is odd: lat4 (9) and up5 (2·4 = 8) cannot be added
    for (shape, needle) in [([1, 3, 36, 32], "p4"), ([1, 3, 32, 4], "c5"), ([1, 3, 2, 2], "c5")] {
        let x = random(shape, 5);
        let ie = interp::run(&g, &a, &params, &[("x", x.view())])
            .map(|_| ())
            .expect_err("interpreter refuses");
        let ge = model
            .forward(Fpn3Inputs { x: x.view() })
            .map(|_| ())
            .expect_err("generated code refuses");
        for e in [&ie, &ge] {
            assert!(matches!(e, Error::InputSize(_)), "{shape:?}: {e}");
            let msg = e.to_string();
            assert!(
                msg.contains(needle) && msg.contains("x: [N, 3, H, W]"),
                "{shape:?}: {msg}"
            );
        }
    }
    // wrong channels
    let x = random([1, 4, 32, 32], 5);
    let ge = model
        .forward(Fpn3Inputs { x: x.view() })
        .map(|_| ())
        .expect_err("refused");
    assert!(
        matches!(&ge, Error::ShapeMismatch { reason, .. } if reason.contains("3 channels")),
        "{ge}"
    );
    let ie = interp::run(&g, &a, &params, &[("x", x.view())])
        .map(|_| ())
        .expect_err("refused");
    assert!(
        matches!(&ie, Error::ShapeMismatch { reason, .. } if reason.contains("3 channels")),
        "{ie}"
    );
    // empty batch
    let x = Tensor::zeros([0, 3, 32, 32]);
    assert!(matches!(
        model.forward(Fpn3Inputs { x: x.view() }),
        Err(Error::InputSize(_))
    ));
    assert!(matches!(
        interp::run(&g, &a, &params, &[("x", x.view())]),
        Err(Error::InputSize(_))
    ));
}

#[test]
fn non_standard_layout_input() {
    let (_, a) = fpn3();
    let params = params_with_stats(&a, 9);
    let model = Fpn3::from_safetensors_bytes(params.to_safetensors_bytes().expect("bytes")).expect("loads");
    let (g, _) = fpn3();
    // a transposed view: H and W swapped in memory
    let base = random([1, 3, 24, 32], 4);
    let x = base.view().permuted_axes([0, 1, 3, 2]);
    let want = interp::run(&g, &a, &params, &[("x", x)]).expect("runs");
    let got = outputs_vec(model.forward(Fpn3Inputs { x }).expect("runs"));
    for ((_, w), (n, t)) in want.iter().zip(&got) {
        assert!(max_diff(w, t) < 1e-4, "{n}");
    }
}

#[test]
fn two_inputs_size_rules_match_interpreter() {
    let (g, a) = two();
    let params = params_with_stats(&a, 4);
    let mut params = params;
    let mut rng = fpn_runtime::Init::new(4);
    for n in ["n.weight", "n.bias", "n.running_mean", "n.running_var"] {
        let vals: Vec<f32> = (0..2).map(|_| 0.5 + rng.next_f32()).collect();
        params.insert(
            n,
            fpn_runtime::ndarray::ArrayD::from_shape_vec(vec![2], vals).expect("shape"),
        );
    }
    let model = Two::from_safetensors_bytes(params.to_safetensors_bytes().expect("bytes")).expect("loads");
    for h in [4usize, 6, 8, 64] {
        let (x, y) = (random([2, 2, h, 5], h as u64), random([2, 2, h / 2, 5], 100 + h as u64));
        let want = interp::run(&g, &a, &params, &[("x", x.view()), ("y", y.view())]).expect("interpreter runs");
        let got = model
            .forward(TwoInputs {
                x: x.view(),
                y: y.view(),
            })
            .expect("generated runs");
        for ((n, w), t) in want.iter().zip([&got.s, &got.r, &got.n]) {
            assert!(max_diff(w, t) < 1e-5, "{n} at H = {h}");
        }
    }
    // refused: H out of range, y not H/2, H/2 not whole, constant width, batch mismatch
    let cases: [([usize; 4], [usize; 4], &str); 6] = [
        ([1, 2, 7, 5], [1, 2, 3, 5], "H = 7 is not a multiple of 2"),
        ([1, 2, 2, 5], [1, 2, 1, 5], "H = 2"),
        ([1, 2, 66, 5], [1, 2, 33, 5], "H = 66"),
        ([1, 2, 8, 5], [1, 2, 3, 5], "input `y` has height 3"),
        ([1, 2, 8, 6], [1, 2, 4, 5], "width"),
        ([1, 2, 8, 5], [2, 2, 4, 5], "batch size"),
    ];
    for (xs, ys, needle) in cases {
        let (x, y) = (random(xs, 1), random(ys, 2));
        let ge = model
            .forward(TwoInputs {
                x: x.view(),
                y: y.view(),
            })
            .map(|_| ())
            .expect_err("generated refuses");
        let ie = interp::run(&g, &a, &params, &[("x", x.view()), ("y", y.view())])
            .map(|_| ())
            .expect_err("interpreter refuses");
        for e in [&ge, &ie] {
            assert!(
                matches!(e, Error::InputSize(m) if m.contains(needle) && m.contains("4 ≤ H ≤ 64")),
                "{xs:?} {ys:?}: {e}"
            );
        }
    }
}

#[test]
fn fixed_sizes_without_parameters() {
    use fixed_gen::{Fixed, FixedInputs};
    let (g, a) = fixed();
    let params = Params::init(&a, 0);
    let model = Fixed::from_safetensors_bytes(params.to_safetensors_bytes().expect("bytes")).expect("loads");
    assert!(Fixed::PARAMS.is_empty());
    let x = random([2, 3, 8, 6], 1);
    let want = interp::run(&g, &a, &params, &[("x", x.view())]).expect("runs");
    let got = model.forward(FixedInputs { x: x.view() }).expect("runs");
    assert_eq!(want[0].1, got.y);
    assert_eq!(want[1].1, got.z);
    let x = random([1, 3, 8, 7], 1);
    let e = model
        .forward(FixedInputs { x: x.view() })
        .map(|_| ())
        .expect_err("width 7");
    assert!(
        matches!(&e, Error::InputSize(m) if m.contains("width 7") && m.contains("x: [N, 3, 8, 6]")),
        "{e}"
    );
    let _ = Fixed::init(1);
}

#[deny(warnings)]
#[allow(dead_code)] // pub items of a private test module
#[rustfmt::skip] // golden files: exactly what `generate` emits
#[path = "../generated/exprs.rs"]
mod exprs_gen;

#[test]
fn input_size_expressions_match_interpreter() {
    use exprs_gen::{Exprs, ExprsInputs};
    let (g, a) = codegen_support::exprs();
    let params = params_with_stats(&a, 5);
    let model = Exprs::from_safetensors_bytes(params.to_safetensors_bytes().expect("bytes")).expect("loads");
    // (H, W): a is [H/4, 2W], b is [H/8, W]
    for (h, w) in [(8usize, 1usize), (16, 5), (256, 3)] {
        let (x, y) = (
            random([1, 2, h / 4, 2 * w], h as u64),
            random([1, 2, h / 8, w], w as u64),
        );
        let want = interp::run(&g, &a, &params, &[("a", x.view()), ("b", y.view())]).expect("interpreter runs");
        let got = model
            .forward(ExprsInputs {
                a: x.view(),
                b: y.view(),
            })
            .expect("generated runs");
        assert!(max_diff(&want[0].1, &got.s) < 1e-5, "H = {h}, W = {w}");
    }
    // refused, with the same reason by both
    let cases: [([usize; 4], [usize; 4], &str); 5] = [
        // H = 12 from a; H/8 is not whole
        ([1, 2, 3, 4], [1, 2, 1, 2], "H = 12 is not a multiple of 8"),
        // width 5 is not 2*W for a whole W
        ([1, 2, 4, 5], [1, 2, 2, 2], "no whole W gives 2*W = 5"),
        // H = 4 below its minimum
        ([1, 2, 1, 4], [1, 2, 1, 2], "H = 4 is out of range"),
        // b's height is not H/8
        ([1, 2, 4, 4], [1, 2, 3, 2], "input `b` has height 3"),
        // b's width is not W
        ([1, 2, 4, 4], [1, 2, 2, 3], "input `b` has width 3"),
    ];
    for (xs, ys, needle) in cases {
        let (x, y) = (random(xs, 1), random(ys, 2));
        let ge = model
            .forward(ExprsInputs {
                a: x.view(),
                b: y.view(),
            })
            .map(|_| ())
            .expect_err("generated refuses");
        let ie = interp::run(&g, &a, &params, &[("a", x.view()), ("b", y.view())])
            .map(|_| ())
            .expect_err("interpreter refuses");
        for e in [&ge, &ie] {
            assert!(
                matches!(e, Error::InputSize(m) if m.contains(needle) && m.contains("= 8k, k ≥ 1, k ≤ 32")),
                "{xs:?} {ys:?}: {e}"
            );
        }
    }
}

#[deny(warnings)]
#[allow(dead_code)] // pub items of a private test module
#[rustfmt::skip] // golden files: exactly what `generate` emits
#[path = "../generated/placed.rs"]
mod placed_gen;

/// Concat parts written in place by their convs and channel slices read as views
/// (`PLACED_SPEC`): the outputs equal the interpreter's at batch 1 and 2, on fresh and on
/// recycled buffers, and the code places exactly the parts that can be.
#[test]
fn concat_parts_in_place_match_interpreter() {
    use placed_gen::{Placed, PlacedInputs};
    let (g, a) = codegen_support::placed();
    let text = fpn_compiler::back::rust::generate(&g, &a, &Default::default()).expect("generates");
    // one buffer written in place (cat1's) by `a`, `m`, `n`, `kb`, `pd` and `ud` (`n`, `kb`
    // and `pd` reading parts of it as well); `sum` copied; cat2 concatenated as before
    assert_eq!(text.matches("concat_buffer(").count(), 1, "{text}");
    assert_eq!(text.matches(".forward_into(").count(), 4, "{text}");
    assert_eq!(text.matches("max_pool2d_into(").count(), 1, "{text}");
    assert_eq!(text.matches("upsample_nearest_into(").count(), 1, "{text}");
    assert_eq!(text.matches("channels_rw(").count(), 3, "{text}");
    assert_eq!(text.matches("residual_after_act: true").count(), 1, "{text}");
    assert_eq!(text.matches("concat_rest(").count(), 1, "{text}");
    assert_eq!(text.matches("::concat(").count(), 1, "{text}");
    assert!(!text.contains("channel_slice("), "slices are views: {text}");
    let params = params_with_stats(&a, 9);
    let model = Placed::from_safetensors_bytes(params.to_safetensors_bytes().expect("bytes")).expect("loads");
    for (k, shape) in [[1, 3, 9, 7], [2, 3, 6, 11], [1, 3, 9, 7]].into_iter().enumerate() {
        let x = random(shape, k as u64 + 3);
        let want = interp::run(&g, &a, &params, &[("x", x.view())]).expect("interpreter runs");
        let got = model.forward(PlacedInputs { x: x.view() }).expect("generated runs");
        let got = [
            ("cat1", &got.cat1),
            ("cat2", &got.cat2),
            ("h", &got.h),
            ("ys_1", &got.ys_1),
            ("after", &got.after),
            ("rs_1", &got.rs_1),
        ];
        for ((wn, w), (gn, t)) in want.iter().zip(got) {
            assert_eq!(wn, gn);
            let d = max_diff(w, t);
            assert!(d <= 1e-5, "output `{wn}` for {shape:?}: max diff {d}");
        }
    }
}
