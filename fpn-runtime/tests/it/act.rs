//! The vectorized activation kernels (`activate`, conv epilogues) against f64 references on a
//! dense sweep: tanh and sigmoid within 1.5e-7 absolute, SiLU and tanh-GELU within 3e-7 relative
//! (absolute below 1), special values as PyTorch gives them.

use fpn_runtime::{activate, Activation, Tensor};

/// Every 1/4096 in [-40, 40], then values near the exp over/underflow bounds and extremes.
fn sweep() -> Vec<f32> {
    let mut xs: Vec<f32> = (-40 * 4096..=40 * 4096).map(|i| i as f32 / 4096.0).collect();
    for e in [
        1e-30f32, 1e-12, 1e-7, 1e-3, 0.0624, 0.0626, 87.3, 88.7, 88.73, 103.9, 104.0, 1e4, 3e38,
    ] {
        xs.extend([e, -e]);
    }
    xs.extend([0.0, -0.0, f32::MIN_POSITIVE, f32::MAX, f32::MIN]);
    xs
}

fn run(a: Activation, xs: &[f32]) -> Vec<f32> {
    let t = Tensor::from_shape_vec([1, 1, 1, xs.len()], xs.to_vec()).expect("shape");
    activate(t.view(), a).iter().copied().collect()
}

fn check(a: Activation, exact: impl Fn(f64) -> f64, rel: bool, tol: f64) {
    let xs = sweep();
    let got = run(a, &xs);
    let mut worst = (0.0f64, 0.0f32);
    for (&x, &y) in xs.iter().zip(&got) {
        let want = exact(x as f64);
        if want.is_infinite() {
            assert_eq!(y as f64, want, "{a:?}({x})");
            continue;
        }
        let scale = if rel { want.abs().max(1.0) } else { 1.0 };
        let err = (y as f64 - want).abs() / scale;
        if err > worst.0 {
            worst = (err, x);
        }
    }
    assert!(
        worst.0 <= tol,
        "{a:?}: error {:.3e} at x = {} exceeds {tol:e}",
        worst.0,
        worst.1
    );
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn tanh_within_1_5e7() {
    check(Activation::Tanh, f64::tanh, false, 1.5e-7);
}

#[test]
fn sigmoid_within_1_5e7() {
    check(Activation::Sigmoid, sigmoid, false, 1.5e-7);
}

#[test]
fn silu_within_3e7_relative() {
    check(Activation::Silu, |x| x * sigmoid(x), true, 3e-7);
}

#[test]
fn gelu_tanh_within_3e7_relative() {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    check(
        Activation::GeluTanh,
        |x| 0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh()),
        true,
        3e-7,
    );
}

#[test]
fn special_values_match_pytorch() {
    let xs = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
    let tanh = run(Activation::Tanh, &xs);
    assert!(tanh[0].is_nan());
    assert_eq!(&tanh[1..], &[1.0, -1.0, -0.0]);
    assert!(tanh[3].is_sign_negative(), "tanh(-0) is -0");
    let sig = run(Activation::Sigmoid, &xs);
    assert!(sig[0].is_nan());
    assert_eq!(&sig[1..], &[1.0, 0.0, 0.5]);
    let silu = run(Activation::Silu, &xs);
    // PyTorch: x / (1 + exp(-x)) gives NaN at -inf too.
    assert!(silu[0].is_nan() && silu[2].is_nan());
    assert_eq!(silu[1], f32::INFINITY);
}
