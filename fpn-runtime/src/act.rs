//! Pointwise activations with PyTorch's formulas: exact for the ReLU family, a vectorized exp for
//! tanh/sigmoid/SiLU/tanh-GELU in slices (bounds below), libm in the scalar [`apply`].

use ndarray::ArrayView4;

use crate::kernel::simd;
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
        Activation::GeluTanh => 0.5 * v * (1.0 + (GELU_K * (v + 0.044_715 * v * v * v)).tanh()),
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
///
/// ReLU-like activations are exact. Tanh, sigmoid, SiLU and tanh-GELU use [`exp_fast`], a
/// branch-free exponential that vectorizes (AVX2 + FMA when the CPU has them): they stay within
/// 1.5e-7 absolute (tanh, sigmoid; measured worst 8.9e-8) or 3e-7 relative (SiLU, tanh-GELU;
/// worst 1.5e-7) of the exact functions, where [`apply`] uses libm per element
/// (tests/act.rs checks the bounds on a dense sweep). Exact GELU keeps libm's `erff`.
#[inline]
pub(crate) fn bias_activate_slice(xs: &mut [f32], bias: f32, a: Activation) {
    epilogue_slice(xs, bias, a, None)
}

/// A tensor a conv's epilogue adds (of the output's shape, standard layout): before the
/// activation (`act((conv + bias) + r)`, a ResNet block's shortcut) or after it
/// (`act(conv + bias) + r`, ultralytics' `Bottleneck` shortcut).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Residual<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) after_act: bool,
}

/// What a conv adds to its output besides the bias: nothing, a tensor in a buffer of its own
/// ([`Residual`]), or what the output buffer already holds, before the activation (a conv onto
/// a dying sum, [`crate::Conv2d::forward_onto`]). One value, so that the two cannot meet.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sum<'a> {
    None,
    Residual(Residual<'a>),
    Onto,
}

impl<'a> Sum<'a> {
    /// The residual, if the sum is one.
    pub(crate) fn residual(self) -> Option<Residual<'a>> {
        match self {
            Sum::Residual(r) => Some(r),
            _ => None,
        }
    }

    /// Whether the sum is what the output holds.
    pub(crate) fn onto(self) -> bool {
        matches!(self, Sum::Onto)
    }
}

impl<'a> From<Option<Residual<'a>>> for Sum<'a> {
    fn from(r: Option<Residual<'a>>) -> Self {
        r.map_or(Sum::None, Sum::Residual)
    }
}

impl<'a> Residual<'a> {
    /// The residual's `len` values from index `start` (a segment of the output).
    #[inline]
    pub(crate) fn at(self, start: usize, len: usize) -> Residual<'a> {
        Residual {
            data: &self.data[start..][..len],
            ..self
        }
    }
}

/// A conv epilogue on one output segment: the bias, the activation, and `res` (the
/// residual's values at the segment's indices, [`Residual::at`], added before the activation
/// or after it), each rounding as the separate ops would.
///
/// Run by a build for the CPU's vector width: the exp-based activations always, the others
/// (bias, ReLU-like, residual adds) on segments of at least [`WIDE_EPILOGUE`] floats, which
/// inlined into callers without target features of their own ran 4 lanes wide (SSE). The
/// builds compute the same values bit for bit.
#[inline]
pub(crate) fn epilogue_slice(xs: &mut [f32], bias: f32, a: Activation, res: Option<Residual>) {
    #[cfg(target_arch = "x86_64")]
    if xs.len() >= WIDE_EPILOGUE
        || matches!(
            a,
            Activation::Tanh | Activation::Sigmoid | Activation::Silu | Activation::GeluTanh
        )
    {
        if crate::kernel::simd512() {
            // SAFETY: `simd512()` says the CPU has avx512f, avx2 and fma, all this build needs.
            return unsafe { epilogue_avx512(xs, bias, a, res) };
        }
        if simd() {
            // SAFETY: `simd()` says the CPU has avx2 and fma, all this build needs.
            return unsafe { epilogue_avx2(xs, bias, a, res) };
        }
    }
    epilogue_impl(xs, bias, a, res)
}

/// `xs[x·16 + l] = a(xs[x·16 + l] + lanes[l])`: [`bias_activate_slice`] on channel-minor
/// sums (16 channels per pixel), with a bias per lane (`lanes[l]` -0.0 for a zero bias, which
/// adds exactly nothing, as a zero bias is not added there), in the build for the CPU's
/// vector width.
pub(crate) fn lanes_bias_activate(xs: &mut [f32], lanes: &[f32; 16], a: Activation) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::kernel::simd512() {
            // SAFETY: `simd512()` says the CPU has avx512f, avx2 and fma, all this build needs.
            return unsafe { lanes_avx512(xs, lanes, a) };
        }
        if simd() {
            // SAFETY: `simd()` says the CPU has avx2 and fma, all this build needs.
            return unsafe { lanes_avx2(xs, lanes, a) };
        }
    }
    add_lanes(xs, lanes);
    epilogue_impl(xs, 0.0, a, None)
}

/// `xs[x·16 + l] += lanes[l]` (the portable build's; the vector builds add a pixel per vector
/// in intrinsics: LLVM vectorized this loop across pixels with gathers and scatters, a fifth of
/// a conv's time).
fn add_lanes(xs: &mut [f32], lanes: &[f32; 16]) {
    for px in xs.chunks_exact_mut(16) {
        px.iter_mut().zip(lanes).for_each(|(v, b)| *v += b);
    }
}

/// AVX2 + FMA build of [`lanes_bias_activate`].
///
/// # Safety
/// The CPU must support avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lanes_avx2(xs: &mut [f32], lanes: &[f32; 16], a: Activation) {
    use std::arch::x86_64::*;
    // SAFETY: `lanes` holds 16 floats and each chunk 16.
    unsafe {
        let (b0, b1) = (_mm256_loadu_ps(lanes.as_ptr()), _mm256_loadu_ps(lanes.as_ptr().add(8)));
        for px in xs.chunks_exact_mut(16) {
            let p = px.as_mut_ptr();
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), b0));
            _mm256_storeu_ps(p.add(8), _mm256_add_ps(_mm256_loadu_ps(p.add(8)), b1));
        }
        // SAFETY: this function's CPU features.
        epilogue_avx2(xs, 0.0, a, None)
    }
}

/// AVX-512 build of [`lanes_bias_activate`].
///
/// # Safety
/// The CPU must support avx512f, avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn lanes_avx512(xs: &mut [f32], lanes: &[f32; 16], a: Activation) {
    use std::arch::x86_64::*;
    // SAFETY: `lanes` holds 16 floats and each chunk 16; this function's CPU features.
    unsafe {
        let b = _mm512_loadu_ps(lanes.as_ptr());
        for px in xs.chunks_exact_mut(16) {
            let p = px.as_mut_ptr();
            _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), b));
        }
        epilogue_avx512(xs, 0.0, a, None)
    }
}

/// Fewest floats for which [`epilogue_slice`] calls a vector build for an activation without
/// `exp`: below it the call cost more than the wider lanes saved (seed 001's 13-column rows
/// with LeakyReLU: its convs 1.50 → 1.58 ms per forward when every row called one). Measured
/// on Zen 5, 1 thread, hot, identity epilogues: RetinaNet's 64→256 1×1 at 128² 2.59 → 2.52 ms,
/// YOLOv8n's 32→32 1×1 at 160² 0.316 → 0.310.
const WIDE_EPILOGUE: usize = 64;

/// The portable build of [`epilogue_slice`] (the vector builds pass their own activation step
/// to [`epilogue_with`]).
#[inline(always)]
fn epilogue_impl(xs: &mut [f32], bias: f32, a: Activation, res: Option<Residual>) {
    epilogue_with(xs, bias, res, |xs, b| bias_activate_impl(xs, b, a))
}

/// A conv epilogue with the activation step `activate(xs, bias)` (bias + activation, the bias
/// skipped when 0): without a residual just that; with one before the activation
/// `a((xs + bias) + r)`, rounding exactly like the conv → add → activation sequence; with one
/// after it `a(xs + bias) + r`. `res`'s data is as long as `xs`. Each build defines its
/// `activate` inside its own `#[target_feature]` function: a closure has the target features of
/// the function it is written in.
#[inline(always)]
fn epilogue_with(xs: &mut [f32], bias: f32, res: Option<Residual>, activate: impl Fn(&mut [f32], f32)) {
    match res {
        None => activate(xs, bias),
        Some(Residual { data, after_act: false }) => {
            if bias == 0.0 {
                for (v, &r) in xs.iter_mut().zip(data) {
                    *v += r;
                }
            } else {
                for (v, &r) in xs.iter_mut().zip(data) {
                    *v = (*v + bias) + r;
                }
            }
            activate(xs, 0.0)
        }
        Some(Residual { data, after_act: true }) => {
            activate(xs, bias);
            for (v, &r) in xs.iter_mut().zip(data) {
                *v += r;
            }
        }
    }
}

/// AVX2 + FMA build of [`epilogue_slice`].
///
/// # Safety
/// The CPU must support avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn epilogue_avx2(xs: &mut [f32], bias: f32, a: Activation, res: Option<Residual>) {
    // The closure is this function's, so it has its target features (one defined in
    // `epilogue_impl` has none, and ran the AVX2 build 2–4% slower).
    epilogue_with(xs, bias, res, |xs, b| bias_activate_impl(xs, b, a))
}

/// AVX-512 build of [`epilogue_slice`]: the same per-element arithmetic on 16 lanes (the
/// results are those of the AVX2 build, bit for bit), with SiLU and sigmoid in intrinsics
/// ([`logistic_avx512`]). YOLOv8n's SiLU epilogues were a tenth of its forward on Zen 5 with
/// the AVX2 build.
///
/// # Safety
/// The CPU must support avx512f, avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn epilogue_avx512(xs: &mut [f32], bias: f32, a: Activation, res: Option<Residual>) {
    match a {
        Activation::Silu | Activation::Sigmoid => {
            let silu = a == Activation::Silu;
            // SAFETY: this function's CPU features.
            epilogue_with(xs, bias, res, |xs, b| unsafe { logistic_avx512(xs, b, silu) })
        }
        _ => epilogue_with(xs, bias, res, |xs, b| bias_activate_impl(xs, b, a)),
    }
}

/// SiLU (`silu`) or sigmoid of `xs[i] + bias` (bias skipped when 0) in AVX-512 intrinsics:
/// [`map`]'s formulas with [`exp_fast`]'s operations, except that `2^n` is applied by one
/// `vscalefps` (`e · 2^n`, rounded once) instead of two exponent-bit factors. Both round
/// `e · 2^n` once (the first factor's product is exact: `e ∈ [0.7, 1.5]`, `n/2` within the
/// normal range), so the results are those of the other builds bit for bit; it saves seven
/// of the exp's 25 vector operations. Measured on Zen 5, 1 thread: SiLU on L1-resident slices
/// 0.135 → 0.094–0.099 ns per element (beyond a ReLU pass's cost); hot convs with a SiLU
/// epilogue, YOLOv8n's 32→32 1×1 at 160² 0.449 → 0.413 ms, 192→64 1×1 at 80² 0.825 → 0.799,
/// 3×3 convs 1.5–2%. (Fusing the activation into the GEMM tile's stores measured 2–4% slower:
/// the exp's FMAs compete with the tile's for the same pipes, and the 24 accumulators leave
/// no registers for its constants.)
///
/// # Safety
/// The CPU must support avx512f, avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn logistic_avx512(xs: &mut [f32], bias: f32, silu: bool) {
    use std::arch::x86_64::*;
    const ROUND: f32 = 12_582_912.0;
    let f = _mm512_set1_ps;
    let one = f(1.0);
    let sign = _mm512_set1_epi32(i32::MIN);
    let run = |v: __m512| -> __m512 {
        let x = if bias == 0.0 { v } else { _mm512_add_ps(v, f(bias)) };
        // e^{-x}: -x flips the sign bit, as the scalar negation does.
        let y = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), sign));
        // `clamp` (NaN passes: max and min return their second operand when either is NaN).
        let yc = _mm512_min_ps(f(170.0), _mm512_max_ps(f(-170.0), y));
        let t = _mm512_fmadd_ps(yc, f(std::f32::consts::LOG2_E), f(ROUND));
        let n = _mm512_sub_ps(t, f(ROUND));
        let r = _mm512_fmadd_ps(n, f(-0.693_359_4), yc);
        let r = _mm512_fmadd_ps(n, f(2.121_944_4e-4), r);
        let r2 = _mm512_mul_ps(r, r);
        let a = _mm512_fmadd_ps(f(1.666_666_5e-1), r, f(0.5));
        let b = _mm512_fmadd_ps(f(8.333_452e-3), r, f(4.166_579_6e-2));
        let c = _mm512_fmadd_ps(f(1.987_569_1e-4), r, f(1.398_199_9e-3));
        let p = _mm512_fmadd_ps(_mm512_fmadd_ps(c, r2, b), r2, a);
        let e = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), one);
        let e = _mm512_scalef_ps(e, n);
        let num = if silu { x } else { one };
        _mm512_div_ps(num, _mm512_add_ps(one, e))
    };
    let mut chunks = xs.chunks_exact_mut(16);
    for chunk in &mut chunks {
        // SAFETY: 16 floats.
        unsafe { _mm512_storeu_ps(chunk.as_mut_ptr(), run(_mm512_loadu_ps(chunk.as_ptr()))) };
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mask = ((1u32 << rest.len()) - 1) as __mmask16;
        // SAFETY: the masked lanes are the remainder's `rest.len()` floats.
        unsafe {
            let v = run(_mm512_maskz_loadu_ps(mask, rest.as_ptr()));
            _mm512_mask_storeu_ps(rest.as_mut_ptr(), mask, v);
        }
    }
}

/// The kernel of [`bias_activate_slice`]: one match per slice, not per element, so the simple
/// loops vectorize. Without a bias the value is not touched by `+ 0.0` (which would turn -0.0
/// into +0.0).
#[inline(always)]
fn bias_activate_impl(xs: &mut [f32], bias: f32, a: Activation) {
    if bias == 0.0 {
        map(xs, |v| v, a);
    } else {
        map(xs, |v| v + bias, a);
    }
}

/// `xs[i] = a(pre(xs[i]))` with the vectorizable forms of each activation.
#[inline(always)]
fn map(xs: &mut [f32], pre: impl Fn(f32) -> f32, a: Activation) {
    // Plain `for` loops, not `for_each`: a `for_each` LLVM chose not to inline was compiled on
    // its own, without the caller's target features, and ran the exp-based ones through a
    // software `fmaf` (seed 000's tanh convs 5–9× slower once the AVX-512 build grew).
    match a {
        Activation::Identity => {
            for v in xs.iter_mut() {
                *v = pre(*v);
            }
        }
        Activation::Relu => {
            for v in xs.iter_mut() {
                *v = relu(pre(*v));
            }
        }
        Activation::Relu6 => {
            for v in xs.iter_mut() {
                *v = relu(pre(*v)).min(6.0);
            }
        }
        Activation::LeakyRelu(s) => {
            for v in xs.iter_mut() {
                *v = leaky(pre(*v), s);
            }
        }
        Activation::Tanh => {
            for v in xs.iter_mut() {
                *v = tanh_fast(pre(*v));
            }
        }
        Activation::Sigmoid => {
            for v in xs.iter_mut() {
                *v = sigmoid_fast(pre(*v));
            }
        }
        Activation::Silu => {
            for v in xs.iter_mut() {
                // PyTorch's form, x / (1 + e^{-x}): one rounding less than x · sigmoid(x).
                let x = pre(*v);
                *v = x / (1.0 + exp_fast(-x));
            }
        }
        Activation::Hardswish => {
            for v in xs.iter_mut() {
                let x = pre(*v);
                *v = x * relu(x + 3.0).min(6.0) / 6.0;
            }
        }
        Activation::GeluTanh => {
            for v in xs.iter_mut() {
                let x = pre(*v);
                *v = 0.5 * x * (1.0 + tanh_fast(GELU_K * (x + 0.044_715 * x * x * x)));
            }
        }
        Activation::Gelu => {
            for v in xs.iter_mut() {
                *v = apply(a, pre(*v));
            }
        }
    }
}

/// `sqrt(2 / pi)`, the tanh-GELU constant.
const GELU_K: f32 = 0.797_884_6;

/// `e^x` without branches or libm (Cephes' `expf` scheme): `x = n·ln 2 + r` with `|r| ≤ ln2/2`
/// (ln 2 split in two, each product fused), `e^r = 1 + r + r²·p(r)` with Cephes' degree-5 `p`
/// evaluated in Estrin's scheme (three levels instead of Horner's six, so the exp's dependency
/// chain, which bounds SiLU's throughput, is shorter), and `2^n` applied as two exponent-bit
/// factors so every finite result (subnormals included) is reachable. Within a few ulp of `exp`.
///
/// `x` is clamped to ±170, wide enough that overflow (`+inf`) and underflow (0) come out of the
/// two factors themselves, which stay normal (`n ∈ [-246, 246]`); NaN passes the clamp and stays
/// NaN. No selects at the end.
#[inline(always)]
pub(crate) fn exp_fast(x: f32) -> f32 {
    // Round-to-nearest by adding and subtracting 1.5·2^23.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-170.0, 170.0);
    let t = xc.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = t - ROUND;
    let r = n.mul_add(-0.693_359_4, xc);
    let r = n.mul_add(2.121_944_4e-4, r);
    let r2 = r * r;
    let a = 1.666_666_5e-1f32.mul_add(r, 0.5);
    let b = 8.333_452e-3f32.mul_add(r, 4.166_579_6e-2);
    let c = 1.987_569_1e-4f32.mul_add(r, 1.398_199_9e-3);
    let p = c.mul_add(r2, b).mul_add(r2, a);
    let e = p.mul_add(r2, r) + 1.0;
    // n ∈ [-246, 246]: two factors 2^n1 · 2^n2 with n1, n2 ∈ [-123, 123] are both normal. n
    // as an integer is read from t's bits (t = 1.5·2^23 + n exactly, one unit per ulp): `n as
    // i32` is a saturating cast that the compiler does one lane at a time; this is plain
    // integer arithmetic on all lanes at once.
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let n1 = ni >> 1;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    e * pow2(n1) * pow2(ni - n1)
}

/// `tanh(x)`: an odd Taylor polynomial near 0, `(1 − e^{−2|x|}) / (1 + e^{−2|x|})` elsewhere,
/// with the sign put back; NaN stays NaN. Within 1.5e-7 absolute of the exact value.
#[inline(always)]
fn tanh_fast(x: f32) -> f32 {
    let ax = x.abs();
    let t = exp_fast(-2.0 * ax);
    let big = (1.0 - t) / (1.0 + t);
    let x2 = x * x;
    // x − x³/3 + 2x⁵/15 − 17x⁷/315: error < 1e-10 for |x| < 1/16.
    let small = x * (x2 * (x2 * (x2 * (-17.0 / 315.0) + 2.0 / 15.0) - 1.0 / 3.0) + 1.0);
    if ax < 0.0625 {
        small
    } else if x.is_nan() {
        x
    } else {
        big.copysign(x)
    }
}

/// `1 / (1 + e^{−x})`; within 1.5e-7 absolute of the exact value, NaN stays NaN.
#[inline(always)]
fn sigmoid_fast(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

/// Returns `a(x)` as a new standard-layout tensor.
pub fn activate(x: ArrayView4<f32>, a: Activation) -> Tensor {
    // The arena's copy when it can allocate, else the plain one (whose failure aborts as any
    // ndarray allocation does; `activate` has no error to return).
    let mut out = crate::try_copy(x, "activation").unwrap_or_else(|_| x.as_standard_layout().into_owned());
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The AVX-512 and AVX2 builds of the epilogue agree bit for bit with the portable build,
    /// every activation with a vectorized form, with and without residuals, on a sweep across
    /// the exp's whole range (tests/act.rs bounds the exp-based ones' error).
    #[test]
    fn simd_builds_equal_portable() {
        if !simd() {
            return;
        }
        let wide = std::is_x86_feature_detected!("avx512f");
        // The sweep, then the exp's subnormal and overflowing results, its clamp, the
        // infinities, and slices that end mid-vector.
        let xs: Vec<f32> = (-4000..4000)
            .map(|i| i as f32 * 0.0131)
            .chain([
                -0.0, 0.0, 88.8, -104.0, -90.0, -95.5, -100.0, -120.0, -150.0, -169.9, -171.0,
            ])
            .chain([
                87.0,
                89.0,
                100.0,
                171.0,
                1e30,
                -1e30,
                f32::INFINITY,
                f32::NEG_INFINITY,
                1e-40,
            ])
            .chain((0..19).map(|i| -86.0 - i as f32 * 0.77))
            .collect();
        let r: Vec<f32> = (0..xs.len()).map(|i| (i % 17) as f32 * 0.25 - 2.0).collect();
        for a in [
            Activation::Identity,
            Activation::Relu,
            Activation::LeakyRelu(0.1),
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Silu,
            Activation::GeluTanh,
        ] {
            for bias in [0.0, 0.37] {
                for res in [None, Some(false), Some(true)] {
                    let res = res.map(|after_act| Residual { data: &r, after_act });
                    let mut want = xs.clone();
                    epilogue_impl(&mut want, bias, a, res);
                    let mut got = xs.clone();
                    // SAFETY: simd() says the CPU has avx2 and fma.
                    unsafe { epilogue_avx2(&mut got, bias, a, res) };
                    assert_eq!(bits(&got), bits(&want), "{a:?} avx2, residual {res:?}");
                    if wide {
                        let mut got = xs.clone();
                        // SAFETY: the CPU has avx512f (and avx2, fma: simd()).
                        unsafe { epilogue_avx512(&mut got, bias, a, res) };
                        assert_eq!(bits(&got), bits(&want), "{a:?} avx512, residual {res:?}");
                    }
                }
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }
}
