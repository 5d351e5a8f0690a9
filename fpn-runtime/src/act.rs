//! Pointwise activations, bit-for-bit in formula with PyTorch's CPU kernels (up to libm rounding).

use ndarray::ArrayView4;

use crate::Tensor;

/// A pointwise activation, also used as the fused epilogue of [`crate::conv2d`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `x`.
    Identity,
    /// `max(x, 0)` (`nn.ReLU`).
    Relu,
    /// `min(max(x, 0), 6)` (`nn.ReLU6`).
    Relu6,
    /// `x > 0 ? x : slope * x` (`nn.LeakyReLU(slope)`).
    LeakyRelu(f32),
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `x * sigmoid(x)` (`nn.SiLU`, a.k.a. swish).
    Silu,
    /// `x * relu6(x + 3) / 6` (`nn.Hardswish`).
    Hardswish,
    /// Exact GELU `0.5 x (1 + erf(x / sqrt 2))` (`nn.GELU()`).
    Gelu,
    /// Tanh-approximated GELU (`nn.GELU(approximate="tanh")`).
    GeluTanh,
}

/// Applies activation `a` to one value.
#[inline]
pub fn apply(a: Activation, v: f32) -> f32 {
    match a {
        Activation::Identity => v,
        Activation::Relu => relu(v),
        Activation::Relu6 => relu(v).min(6.0),
        Activation::LeakyRelu(s) => leaky(v, s),
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        Activation::Silu => v / (1.0 + (-v).exp()),
        Activation::Hardswish => v * relu(v + 3.0).min(6.0) / 6.0,
        Activation::Gelu => 0.5 * v * (1.0 + libm::erff(v * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            const K: f32 = 0.797_884_6; // sqrt(2 / pi)
            0.5 * v * (1.0 + (K * (v + 0.044_715 * v * v * v)).tanh())
        }
    }
}

/// `max(v, 0)` that keeps NaN as NaN, like `torch.relu`.
#[inline]
fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// Applies `a` to every element of a slice in place (the kernel shared by all tensor forms).
pub(crate) fn activate_slice(xs: &mut [f32], a: Activation) {
    bias_activate_slice(xs, 0.0, a);
}

/// `v > 0 ? v : v·s`, branch-free so the loop vectorizes; NaN stays NaN as in PyTorch.
#[inline]
fn leaky(v: f32, s: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        v * s
    }
}

/// Adds `bias` and applies `a` to every element of a slice in place, in one pass.
#[inline]
pub(crate) fn bias_activate_slice(xs: &mut [f32], bias: f32, a: Activation) {
    // One match per slice, not per element, so the simple loops vectorize. Without a bias the
    // value is not touched by `+ 0.0` (which would turn -0.0 into +0.0).
    if bias == 0.0 {
        match a {
            Activation::Identity => {}
            Activation::Relu => xs.iter_mut().for_each(|v| *v = relu(*v)),
            Activation::Relu6 => xs.iter_mut().for_each(|v| *v = relu(*v).min(6.0)),
            Activation::LeakyRelu(s) => xs.iter_mut().for_each(|v| *v = leaky(*v, s)),
            _ => xs.iter_mut().for_each(|v| *v = apply(a, *v)),
        }
    } else {
        match a {
            Activation::Identity => xs.iter_mut().for_each(|v| *v += bias),
            Activation::Relu => xs.iter_mut().for_each(|v| *v = relu(*v + bias)),
            Activation::Relu6 => xs.iter_mut().for_each(|v| *v = relu(*v + bias).min(6.0)),
            Activation::LeakyRelu(s) => xs.iter_mut().for_each(|v| *v = leaky(*v + bias, s)),
            _ => xs.iter_mut().for_each(|v| *v = apply(a, *v + bias)),
        }
    }
}

/// Returns `a(x)` as a new standard-layout tensor.
pub fn activate(x: ArrayView4<f32>, a: Activation) -> Tensor {
    let mut out = x.as_standard_layout().into_owned();
    activate_inplace(&mut out, a);
    out
}

/// Applies `a` to `x` in place.
pub fn activate_inplace(x: &mut Tensor, a: Activation) {
    if a == Activation::Identity {
        return;
    }
    match x.as_slice_memory_order_mut() {
        Some(s) => activate_slice(s, a),
        None => x.mapv_inplace(|v| apply(a, v)),
    }
}
