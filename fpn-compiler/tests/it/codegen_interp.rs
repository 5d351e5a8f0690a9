//! The interpreter equals the same network composed by hand from runtime calls, checks its
//! inputs, and initialises parameters deterministically.

use crate::codegen_support;

use codegen_support::{fpn3, params_with_stats, random, Builder};
use fpn_compiler::dim::Dim;
use fpn_compiler::infer::Analysis;
use fpn_compiler::interp::{self, Params};
use fpn_compiler::ir::{Graph, Op};
use fpn_runtime::ndarray::{ArrayView1, ArrayView4, Ix1, Ix4};
use fpn_runtime::{Activation, BatchNorm, Conv2dParams, Error, Pool2dParams, Resize};

fn small() -> (Graph, Analysis) {
    let mut b = Builder::new("Small", &["H", "W"]);
    let x = b.input("x", 4, [Dim::Sym(0), Dim::Sym(1)]);
    let c = b.conv("c", x, "a.conv", 6, 3, 1, 1, true);
    let c = b.bn("bn", c, "a.bn");
    let r = b.act("relu", c, Activation::Relu);
    let p = b.pool("pool", r, true, 2, 2, 0);
    let l = b.conv("lat", p, "lat", 6, 1, 1, 0, false);
    let u = b.up_scale("up", l, 2, false);
    let s = b.merge("sum", Op::Add(fpn_compiler::ops::merge::Add), &[r, u], None);
    let k = b.merge("cat", Op::Concat(fpn_compiler::ops::merge::Concat), &[s, r], None);
    let h1 = b.conv("h1", s, "shared", 3, 3, 1, 1, true);
    let h2 = b.conv("h2", r, "shared", 3, 3, 1, 1, true);
    let f = b.merge(
        "f",
        Op::Fuse(fpn_compiler::ops::merge::Fuse {
            eps: 1e-4,
            names: fpn_compiler::ops::merge::FuseNames::Fpn,
        }),
        &[h1, h2],
        Some("f"),
    );
    b.output("cat", k);
    b.output("f", f);
    b.done()
}

fn v4<'a>(p: &'a Params, n: &str) -> ArrayView4<'a, f32> {
    p.get(n).expect(n).view().into_dimensionality::<Ix4>().expect("4-D")
}

fn v1<'a>(p: &'a Params, n: &str) -> ArrayView1<'a, f32> {
    p.get(n).expect(n).view().into_dimensionality::<Ix1>().expect("1-D")
}

#[test]
fn interpreter_equals_hand_composed_runtime_calls() {
    let (g, a) = small();
    let params = params_with_stats(&a, 11);
    // give the BN real statistics too
    let mut params = params;
    let mut rng = fpn_runtime::Init::new(99);
    for n in [
        "a.bn.weight",
        "a.bn.bias",
        "a.bn.running_mean",
        "a.bn.running_var",
        "f.weight",
    ] {
        let len = params.get(n).expect(n).len();
        let vals: Vec<f32> = (0..len).map(|_| 0.25 + rng.next_f32()).collect();
        params.insert(
            n,
            fpn_runtime::ndarray::ArrayD::from_shape_vec(vec![len], vals).expect("shape"),
        );
    }
    let x = random([2, 4, 12, 10], 3);
    let got = interp::run(&g, &a, &params, &[("x", x.view())]).expect("runs");

    let same = Conv2dParams {
        padding: [1; 4],
        ..Conv2dParams::default()
    };
    let c = fpn_runtime::conv2d(
        x.view(),
        v4(&params, "a.conv.weight"),
        Some(v1(&params, "a.conv.bias")),
        &same,
    )
    .expect("conv");
    let bn = BatchNorm {
        weight: v1(&params, "a.bn.weight").to_owned(),
        bias: v1(&params, "a.bn.bias").to_owned(),
        running_mean: v1(&params, "a.bn.running_mean").to_owned(),
        running_var: v1(&params, "a.bn.running_var").to_owned(),
        eps: 1e-5,
    };
    let c = fpn_runtime::batch_norm(c.view(), &bn).expect("bn");
    let r = fpn_runtime::activate(c.view(), Activation::Relu);
    let p = fpn_runtime::max_pool2d(r.view(), &Pool2dParams::square(2)).expect("pool");
    let l = fpn_runtime::conv2d(p.view(), v4(&params, "lat.weight"), None, &Conv2dParams::default()).expect("lat");
    let u = fpn_runtime::upsample_nearest(l.view(), Resize::Scale([2.0, 2.0])).expect("up");
    let s = fpn_runtime::add(r.view(), u.view()).expect("add");
    let k = fpn_runtime::concat(&[s.view(), r.view()]).expect("cat");
    let h1 = fpn_runtime::conv2d(
        s.view(),
        v4(&params, "shared.weight"),
        Some(v1(&params, "shared.bias")),
        &same,
    )
    .expect("h1");
    let h2 = fpn_runtime::conv2d(
        r.view(),
        v4(&params, "shared.weight"),
        Some(v1(&params, "shared.bias")),
        &same,
    )
    .expect("h2");
    let f = fpn_runtime::weighted_fusion(&[h1.view(), h2.view()], v1(&params, "f.weight"), 1e-4).expect("fuse");

    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "cat");
    assert_eq!(got[1].0, "f");
    assert_eq!(got[0].1, k, "interpreter = runtime calls, bit for bit");
    assert_eq!(got[1].1, f, "interpreter = runtime calls, bit for bit");
}

#[test]
fn init_is_deterministic_and_pytorch_like() {
    let (_, a) = small();
    let p1 = Params::init(&a, 5);
    let p2 = Params::init(&a, 5);
    let p3 = Params::init(&a, 6);
    assert_eq!(p1.sorted(), p2.sorted());
    assert_ne!(p1.get("a.conv.weight"), p3.get("a.conv.weight"));
    let w = p1.get("a.conv.weight").expect("w");
    let bound = 1.0 / (4.0f32 * 9.0).sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound));
    let b = p1.get("a.conv.bias").expect("b");
    assert!(b.iter().all(|v| v.abs() <= bound) && b.iter().any(|v| *v != 0.0));
    assert!(p1.get("a.bn.weight").expect("g").iter().all(|v| *v == 1.0));
    assert!(p1.get("a.bn.bias").expect("b").iter().all(|v| *v == 0.0));
    assert!(p1.get("a.bn.running_mean").expect("m").iter().all(|v| *v == 0.0));
    assert!(p1.get("a.bn.running_var").expect("v").iter().all(|v| *v == 1.0));
    assert!(p1.get("f.weight").expect("f").iter().all(|v| *v == 1.0));
    // shared prefix: one tensor
    assert_eq!(a.params.iter().filter(|p| p.name == "shared.weight").count(), 1);
}

#[test]
fn from_weights_round_trip_and_errors() {
    let (_, a) = small();
    let p = Params::init(&a, 8);
    let w = fpn_runtime::Weights::from_bytes(p.to_safetensors_bytes().expect("bytes")).expect("weights");
    let q = Params::from_weights(&w, &a).expect("loads");
    assert_eq!(p.sorted(), q.sorted());
    let mut bad = p.clone();
    bad.insert("lat.weight", fpn_runtime::ndarray::ArrayD::zeros(vec![6, 6, 1, 2]));
    let w = fpn_runtime::Weights::from_bytes(bad.to_safetensors_bytes().expect("bytes")).expect("weights");
    let e = Params::from_weights(&w, &a).expect_err("wrong shape");
    assert!(
        matches!(&e, Error::WrongShape { name, .. } if name == "lat.weight"),
        "{e}"
    );
    assert!(e.to_string().contains("lat.weight"));
}

#[test]
fn inputs_are_checked() {
    let (g, a) = small();
    let p = Params::init(&a, 1);
    let x = random([1, 4, 12, 10], 1);
    // missing / unknown input
    let e = interp::run(&g, &a, &p, &[]).expect_err("missing");
    assert!(e.to_string().contains("`x`"), "{e}");
    let e = interp::run(&g, &a, &p, &[("x", x.view()), ("y", x.view())]).expect_err("unknown");
    assert!(e.to_string().contains("`y`"), "{e}");
    // channels
    let x3 = random([1, 3, 12, 10], 1);
    let e = interp::run(&g, &a, &p, &[("x", x3.view())]).expect_err("channels");
    assert!(
        matches!(&e, Error::ShapeMismatch { reason, .. } if reason.contains("input `x` must have 4 channels")),
        "{e}"
    );
    // odd height: the pooled-then-upsampled map (2·floor(H/2)) cannot be added to H
    let xo = random([1, 4, 11, 10], 1);
    let e = interp::run(&g, &a, &p, &[("x", xo.view())]).expect_err("odd");
    assert!(
        matches!(&e, Error::InputSize(m) if m.contains("`sum`") && m.contains("`relu`") && m.contains("`up`")),
        "{e}"
    );
    // too small for the pool
    let x1 = random([1, 4, 1, 10], 1);
    let e = interp::run(&g, &a, &p, &[("x", x1.view())]).expect_err("small");
    assert!(matches!(&e, Error::InputSize(m) if m.contains("`pool`")), "{e}");
    // a wrong analysis (shape disagreeing with what the runtime computes) is caught after the op
    let mut bad = a.clone();
    bad.shapes[2].c = 7;
    let e = interp::run(&g, &bad, &p, &[("x", x.view())]).expect_err("mismatch");
    assert!(matches!(&e, Error::InputSize(m) if m.contains("`bn`")), "{e}");
}

#[test]
fn symbol_ranges_and_constant_inputs() {
    let mut b = Builder::new("Two", &["H"]);
    b.g.symbols[0].min = 4;
    b.g.symbols[0].max = Some(64);
    let x = b.input("x", 2, [Dim::Sym(0), Dim::Const(5)]);
    let y = b.input("y", 2, [Dim::Sym(0).floor_div(2).expect("d"), Dim::Const(5)]);
    let u = b.up_like("u", y, x, false);
    let s = b.merge("s", Op::Mean(fpn_compiler::ops::merge::Mean), &[x, u], None);
    b.output("s", s);
    let (g, a) = b.done();
    let p = Params::init(&a, 0);
    let (x8, y4) = (random([1, 2, 8, 5], 1), random([1, 2, 4, 5], 2));
    let out = interp::run(&g, &a, &p, &[("y", y4.view()), ("x", x8.view())]).expect("runs");
    let want = fpn_runtime::mean(&[
        x8.view(),
        fpn_runtime::upsample_nearest(y4.view(), Resize::Size([8, 5]))
            .expect("up")
            .view(),
    ])
    .expect("mean");
    assert_eq!(out[0].1, want);
    // y must be H/2
    let y3 = random([1, 2, 3, 5], 2);
    let e = interp::run(&g, &a, &p, &[("x", x8.view()), ("y", y3.view())]).expect_err("y");
    assert!(
        matches!(&e, Error::InputSize(m) if m.contains("input `y` has height 3") && m.contains("H/2")),
        "{e}"
    );
    // constant width
    let x6 = random([1, 2, 8, 6], 1);
    assert!(interp::run(&g, &a, &p, &[("x", x6.view()), ("y", y4.view())]).is_err());
    // H below its minimum
    let (x2, y1) = (random([1, 2, 2, 5], 1), random([1, 2, 1, 5], 2));
    let e = interp::run(&g, &a, &p, &[("x", x2.view()), ("y", y1.view())]).expect_err("min");
    assert!(matches!(&e, Error::InputSize(m) if m.contains("H = 2")), "{e}");
    // batch sizes must agree
    let y4b = random([2, 2, 4, 5], 2);
    assert!(matches!(
        interp::run(&g, &a, &p, &[("x", x8.view()), ("y", y4b.view())]),
        Err(Error::InputSize(_))
    ));
}

#[test]
fn fpn3_runs_in_the_interpreter() {
    let (g, a) = fpn3();
    let p = Params::init(&a, 2);
    let x = random([1, 3, 32, 24], 2);
    let out = interp::run(&g, &a, &p, &[("x", x.view())]).expect("runs");
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["h3", "h4", "cat", "p5", "p6", "q", "qn", "stem", "x_again", "h3_again"]
    );
    assert_eq!(out[0].1.shape(), &[1, 4, 16, 12]);
    assert_eq!(out[8].1, x);
    assert_eq!(out[0].1, out[9].1);
}
