//! Prepared convolutions: a conv's weight, bias and parameters, with the work that depends on
//! the weight alone (the Winograd weight transform) done once at load instead of on every call.
//!
//! Invariant: [`Conv2d::forward`] validates every call exactly like [`conv2d`](crate::conv2d)
//! (the input against the weight, the parameters, the bias length), so a `Conv2d` built by
//! [`Conv2d::new_deferred`] from a bad combination only ever yields errors, never panics or
//! wrong results; and the cached transform `U` is always the transform of the stored weight.

use ndarray::{Array1, Array4, ArrayView4, ArrayViewMut4};

use crate::conv::{conv2d_into_prepared, conv2d_out_shape, shape4, validate_params, Conv2dParams, Prepared};
use crate::error::{invalid, mismatch, Result};
use crate::nchwc::BlockedConv;
use crate::winograd;
use crate::Tensor;

/// Options of one [`Conv2d::forward`] / [`Conv2d::forward_into`] call; the default is the plain
/// conv with the prepared parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConvOpts<'a> {
    /// A tensor of the output's shape added before the activation, in the same pass over the
    /// output: the result is `act((conv(x) + bias) + residual)`, equal to the conv with an
    /// identity activation, then [`add`](crate::add) of `residual`, then the activation,
    /// rounding included (a ResNet block's last conv, shortcut add and ReLU).
    pub residual: Option<ArrayView4<'a, f32>>,
    /// Add `residual` after the activation instead: `act(conv(x) + bias) + residual`, equal to
    /// the conv, then [`add`](crate::add) of `residual`, rounding included (ultralytics'
    /// `Bottleneck`: `x + cv2(cv1(x))` where `cv2` ends in SiLU).
    pub residual_after_act: bool,
    /// Parameters used instead of the prepared ones, for weights shared between convs that
    /// differ in padding, stride, dilation, groups or fused activation: the call then equals
    /// `conv2d(x, weight, Some(bias), params)`. The cached Winograd transform is used whenever
    /// these parameters take the Winograd path (it depends on the weight only).
    pub params: Option<&'a Conv2dParams>,
}

/// A 2-D convolution prepared once at load: `act(nn.Conv2d(x))` with a fixed weight, bias and
/// parameters, equal to [`conv2d`](crate::conv2d) with the same operands.
///
/// When the conv can take the Winograd path (3×3, stride 1, dilation 1, at least 16 input and
/// output channels per group) the transformed weights `U = G g Gᵀ` are computed at construction,
/// so calls skip that transform (36·cout·cin/groups values), which `conv2d` redoes every time.
#[derive(Clone)]
pub struct Conv2d {
    /// `[cout, cin / groups, kh, kw]`, standard layout.
    weight: Array4<f32>,
    /// `[cout]` (zeros when the conv has no bias).
    bias: Array1<f32>,
    params: Conv2dParams,
    /// Winograd transform of `weight` (`winograd::transform_weights`) on a cache line
    /// (`crate::try_lined`), when it can be used, and whether it is in row panels
    /// (`winograd::U::panels`).
    pub(crate) wino: Option<(Vec<f32>, bool)>,
    /// `weight` packed for the AVX2 GEMM (`packed::pack_groups` with `params.groups`), made by
    /// the first call that takes the GEMM path with those groups on a CPU that runs it (so a
    /// Winograd conv that never falls back to the GEMM holds no second copy); later calls
    /// skip the packing.
    packed: std::sync::OnceLock<Option<Vec<f32>>>,
    /// `weight` packed for the channel-vector direct conv (`direct::pack_cv`), made by the first
    /// call that takes that path.
    packed_cv: std::sync::OnceLock<Option<Vec<f32>>>,
    /// The conv for blocked tensors ([`BlockedConv`]), made by the first blocked call (`None`
    /// when it cannot be: a conv that is not blockable or a weight too large to pack).
    pub(crate) blocked: std::sync::OnceLock<Option<BlockedConv>>,
}

impl std::fmt::Debug for Conv2d {
    /// The shapes, parameters and whether the Winograd transform is cached (not the values).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conv2d")
            .field("weight", &self.weight.shape())
            .field("bias", &self.bias.shape())
            .field("params", &self.params)
            .field("winograd", &self.wino.is_some())
            .finish()
    }
}

/// Checks what can be checked without an input: parameters, weight dims, groups, bias length.
fn validate(w_shape: [usize; 4], bias_len: Option<usize>, p: &Conv2dParams) -> Result<()> {
    const OP: &str = "Conv2d";
    validate_params(OP, w_shape, p)?;
    let cout = w_shape[0];
    if let Some(b) = bias_len {
        if b != cout {
            return Err(mismatch(
                OP,
                &w_shape,
                &[b],
                format!("the bias must have {cout} entries, one per output channel"),
            ));
        }
    }
    Ok(())
}

/// The Winograd transform of `w` if the conv with `p` can take that path, else None (also when
/// the buffer cannot be allocated: calls then transform per call like `conv2d`).
fn winograd_weights(w: &Array4<f32>, p: &Conv2dParams) -> Option<(Vec<f32>, bool)> {
    let [cout, cin_g, kh, kw] = shape4(w);
    let fits = p.groups > 0
        && cout % p.groups == 0
        && winograd::eligible([kh, kw], p.stride, p.dilation, cin_g, cout / p.groups);
    if !fits {
        return None;
    }
    let panels = winograd::panels_here();
    let len = winograd::weights_len(p.groups, cout / p.groups, cin_g, panels)?;
    let mut u = crate::try_lined(len)?;
    winograd::transform_weights(
        cin_g,
        cout / p.groups,
        w.as_slice()?,
        crate::on_line_mut(&mut u),
        panels,
    );
    Some((u, panels))
}

impl Conv2d {
    /// Prepares a conv with weight `[cout, cin / groups, kh, kw]`, optional bias `[cout]` and
    /// parameters `params`, checking everything that does not depend on the input (non-zero
    /// stride, dilation and groups, non-empty weight, `cout` divisible by `groups`, bias
    /// length). Input-dependent checks (channels, spatial size, padding limits) happen in
    /// [`forward`](Self::forward).
    pub fn new(weight: Array4<f32>, bias: Option<Array1<f32>>, params: Conv2dParams) -> Result<Self> {
        validate(shape4(&weight), bias.as_ref().map(|b| b.len()), &params)?;
        Ok(Self::new_deferred(weight, bias, params))
    }

    /// [`new`](Self::new) without the up-front checks: it cannot fail, and a combination that
    /// `new` refuses makes every [`forward`](Self::forward) return the corresponding
    /// [`Error`](crate::Error) instead (forward validates each call anyway). For callers whose shapes are
    /// already known to be valid, such as generated `init` functions.
    pub fn new_deferred(weight: Array4<f32>, bias: Option<Array1<f32>>, params: Conv2dParams) -> Self {
        Self::prepare(weight, bias, params, true)
    }

    /// [`new`](Self::new) for a conv that runs on blocked tensors only
    /// ([`forward_blocked`](Self::forward_blocked) and its `_into` / `_onto` forms, as
    /// generated code with `fpn gen --blocked` calls it): its [`BlockedConv`] is prepared now,
    /// and the NCHW Winograd transform is not (the blocked conv has its own, so a 3×3 conv held
    /// both: ResNet-50 FPN's blocked forward added 204 MiB to the loaded model where the NCHW one
    /// adds 88). The NCHW [`forward`](Self::forward) still works, on the GEMM path. An error
    /// where [`new`](Self::new) gives one, or where the blocked conv cannot be prepared (not
    /// blockable, or too large to pack).
    pub fn new_blocked(weight: Array4<f32>, bias: Option<Array1<f32>>, params: Conv2dParams) -> Result<Self> {
        validate(shape4(&weight), bias.as_ref().map(|b| b.len()), &params)?;
        let conv = Self::new_deferred_blocked(weight, bias, params);
        conv.blocked_conv()?;
        Ok(conv)
    }

    /// [`new_blocked`](Self::new_blocked) without the checks, as
    /// [`new_deferred`](Self::new_deferred): it cannot fail; what `new_blocked` refuses makes
    /// every call return the error instead.
    pub fn new_deferred_blocked(weight: Array4<f32>, bias: Option<Array1<f32>>, params: Conv2dParams) -> Self {
        let conv = Self::prepare(weight, bias, params, false);
        // made now (its error, if any, again at each call)
        let _ = conv.blocked_conv();
        conv
    }

    /// The conv with its NCHW Winograd transform when `nchw_winograd` and the conv suits it.
    fn prepare(weight: Array4<f32>, bias: Option<Array1<f32>>, params: Conv2dParams, nchw_winograd: bool) -> Self {
        let weight = if weight.is_standard_layout() {
            weight
        } else {
            weight.as_standard_layout().into_owned()
        };
        let bias = bias.unwrap_or_else(|| Array1::zeros(weight.dim().0));
        let wino = if nchw_winograd {
            winograd_weights(&weight, &params)
        } else {
            None
        };
        Self {
            weight,
            bias,
            params,
            wino,
            packed: std::sync::OnceLock::new(),
            packed_cv: std::sync::OnceLock::new(),
            blocked: std::sync::OnceLock::new(),
        }
    }

    /// The weight `[cout, cin / groups, kh, kw]`.
    pub fn weight(&self) -> &Array4<f32> {
        &self.weight
    }

    /// The bias `[cout]` (zeros if the conv was built without one).
    pub fn bias(&self) -> &Array1<f32> {
        &self.bias
    }

    /// The prepared parameters, which [`forward`](Self::forward) uses unless
    /// [`ConvOpts::params`] overrides them.
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }

    /// Whether the Winograd weight transform was computed at construction.
    pub fn has_winograd_weights(&self) -> bool {
        self.wino.is_some()
    }

    /// The Winograd weights as the convs read them (on a cache line).
    #[cfg(test)]
    pub(crate) fn winograd_data(&self) -> Option<&[f32]> {
        self.wino.as_ref().map(|(u, _)| crate::on_line(u))
    }

    /// Output shape for an input of shape `x_shape`, or the error [`forward`](Self::forward)
    /// would return for it.
    pub fn out_shape(&self, x_shape: [usize; 4]) -> Result<[usize; 4]> {
        conv2d_out_shape(x_shape, shape4(&self.weight), &self.params)
    }

    /// Convolves `x` (`[n, cin, h, w]`) with the options `opts`: with the defaults this equals
    /// `conv2d(x, self.weight(), Some(self.bias()), self.params())`; see [`ConvOpts`] for the
    /// fused residual add and the parameter override.
    pub fn forward(&self, x: ArrayView4<f32>, opts: &ConvOpts<'_>) -> Result<Tensor> {
        let p = opts.params.unwrap_or(&self.params);
        let shape = conv2d_out_shape(shape4(&x), shape4(&self.weight), p)?;
        let mut out = crate::try_output(shape, "conv2d")?;
        self.forward_into(x, opts, out.view_mut())?;
        Ok(out)
    }

    /// `act(sum + conv(x) + bias)` computed in `sum`'s buffer and returned in it: the conv with
    /// `sum` added before the activation, as [`forward`](Self::forward) computes it with `sum`
    /// as [`ConvOpts::residual`], without a buffer for the output and without reading the
    /// sum from a second one (ONNX Runtime's conv with a `Sum` operand; generated code calls it
    /// where the sum dies at the conv, such as a ResNet block's shortcut). Where the packed
    /// GEMM runs with the pixels in its lanes (1×1 and im2col convs), each block of the
    /// reduction's sum is added to `sum` in turn, so the result may differ from `forward`'s in
    /// the last bits (the order of the additions); Winograd and the transposed 1×1 product
    /// read each output row's sum before writing it, and the other paths add a copy of `sum`
    /// as a residual, all giving `forward`'s bits.
    ///
    /// `opts` may override the parameters; its residual must be unset (an error otherwise).
    /// `sum` must have the output's shape; one not in standard layout is added as a residual
    /// into a new buffer instead.
    pub fn forward_onto(&self, x: ArrayView4<f32>, opts: &ConvOpts<'_>, mut sum: Tensor) -> Result<Tensor> {
        if opts.residual.is_some() || opts.residual_after_act {
            return Err(invalid(
                "conv2d",
                "forward_onto adds `sum` before the activation: leave ConvOpts::residual unset",
            ));
        }
        if let Some(out) = self.onto_as_residual(x, opts, &mut sum, Self::forward)? {
            crate::recycle(sum);
            return Ok(out);
        }
        if crate::profile::enabled() && !crate::profile::warm() {
            let key = self.profile_key(x, opts);
            crate::profile::timed(key, || {}, || self.forward_into_once(x, opts, sum.view_mut(), true))?;
            return Ok(sum);
        }
        if crate::profile::enabled() {
            return self.timed_onto(x, opts, sum, |out| self.forward_into_once(x, opts, out, true));
        }
        self.forward_into_once(x, opts, sum.view_mut(), true)?;
        Ok(sum)
    }

    /// The output shape of [`forward`](Self::forward) on `x` with `opts` (its parameter
    /// override included), or the error `forward` would return for it.
    pub fn output_shape(&self, x: ArrayView4<f32>, opts: &ConvOpts<'_>) -> Result<[usize; 4]> {
        conv2d_out_shape(shape4(&x), shape4(&self.weight), opts.params.unwrap_or(&self.params))
    }

    /// [`forward`](Self::forward) writing into `out`, which must have exactly the output's shape
    /// ([`out_shape`](Self::out_shape) for the default parameters) and may not alias
    /// `opts.residual`.
    ///
    /// With [`crate::profile`] on, the call is timed, then rerun to time it warm.
    pub fn forward_into(&self, x: ArrayView4<f32>, opts: &ConvOpts<'_>, mut out: ArrayViewMut4<f32>) -> Result<()> {
        if crate::profile::enabled() {
            let key = self.profile_key(x, opts);
            return crate::profile::timed(key, || {}, || self.forward_into_once(x, opts, out.view_mut(), false));
        }
        self.forward_into_once(x, opts, out, false)
    }

    /// The conv on blocked tensors ([`crate::BlockedConv`], see `fpn_runtime::to_blocked`): `x`
    /// blocked when its channels are whole blocks, NCHW otherwise (a stem); the output, and
    /// `opts.residual`, blocked when its channels are whole blocks, else NCHW (a head's last
    /// conv; no residual then). The same values as [`forward`](Self::forward) up to the order
    /// of the sums. An error when the conv has groups, dilation or a padding mode other than
    /// zeros, when neither its input nor its output channels are whole blocks, or when `opts`
    /// overrides the parameters.
    pub fn forward_blocked(&self, x: ArrayView4<f32>, opts: &ConvOpts<'_>) -> Result<Tensor> {
        let shape = self.output_shape(x, opts)?;
        let mut out = crate::try_output(shape, "conv2d")?;
        self.forward_blocked_into(x, opts, out.view_mut())?;
        Ok(out)
    }

    /// [`forward_onto`](Self::forward_onto) on blocked tensors: `act(sum + conv(x) + bias)`
    /// in `sum`'s buffer (blocked, of the output's shape; one not in standard layout is added
    /// as a residual into a new buffer instead). `opts` may not set a residual.
    pub fn forward_blocked_onto(&self, x: ArrayView4<f32>, opts: &ConvOpts<'_>, mut sum: Tensor) -> Result<Tensor> {
        if opts.residual.is_some() || opts.residual_after_act || opts.params.is_some() {
            return Err(invalid(
                "conv2d",
                "forward_blocked_onto adds `sum` before the activation with the prepared parameters: leave ConvOpts unset",
            ));
        }
        if let Some(out) = self.onto_as_residual(x, opts, &mut sum, Self::forward_blocked)? {
            crate::recycle(sum);
            return Ok(out);
        }
        let conv = self.blocked_conv()?;
        if crate::profile::enabled() {
            return self.timed_onto(x, opts, sum, |out| conv.forward_onto_in_place(x, out));
        }
        conv.forward_onto(x, sum)
    }

    /// `run` onto `sum` timed by [`crate::profile`], each rerun from the sum again.
    fn timed_onto(
        &self,
        x: ArrayView4<f32>,
        opts: &ConvOpts<'_>,
        sum: Tensor,
        run: impl Fn(ArrayViewMut4<f32>) -> Result<()>,
    ) -> Result<Tensor> {
        let start = sum.clone();
        let sum = std::cell::RefCell::new(sum);
        crate::profile::timed(
            self.profile_key(x, opts),
            || sum.borrow_mut().assign(&start),
            || run(sum.borrow_mut().view_mut()),
        )?;
        Ok(sum.into_inner())
    }

    /// The checks of a conv onto `sum` (of the output's shape), and, for a `sum` not in
    /// standard layout, the conv with it as a residual by `forward` into a new buffer
    /// (`Some`; the caller recycles `sum`).
    fn onto_as_residual(
        &self,
        x: ArrayView4<f32>,
        opts: &ConvOpts<'_>,
        sum: &mut Tensor,
        forward: fn(&Self, ArrayView4<f32>, &ConvOpts<'_>) -> Result<Tensor>,
    ) -> Result<Option<Tensor>> {
        let shape = self.output_shape(x, opts)?;
        if shape4(sum) != shape {
            return Err(mismatch(
                "conv2d + add",
                &shape,
                &shape4(sum),
                "the added tensor must have the conv output's shape",
            ));
        }
        if sum.is_standard_layout() {
            return Ok(None);
        }
        let residual = ConvOpts {
            residual: Some(sum.view()),
            ..*opts
        };
        forward(self, x, &residual).map(Some)
    }

    /// The conv for blocked tensors, made on first use; the constructor's error if it cannot
    /// be made.
    fn blocked_conv(&self) -> Result<&BlockedConv> {
        let conv = self
            .blocked
            .get_or_init(|| BlockedConv::new(self.weight.clone(), Some(self.bias.clone()), self.params).ok());
        match conv {
            Some(c) => Ok(c),
            None => {
                // the reason, from the constructor
                let why = BlockedConv::new(self.weight.clone(), Some(self.bias.clone()), self.params).err();
                Err(why.unwrap_or_else(|| invalid("conv2d", "the blocked conv could not be prepared")))
            }
        }
    }

    /// [`forward_blocked`](Self::forward_blocked) into `out` (of the output's shape, blocked
    /// when its channels are whole blocks, else NCHW; its channels contiguous per image: a
    /// tensor or a channel range of one).
    pub fn forward_blocked_into(
        &self,
        x: ArrayView4<f32>,
        opts: &ConvOpts<'_>,
        mut out: ArrayViewMut4<f32>,
    ) -> Result<()> {
        if opts.params.is_some() {
            return Err(invalid("conv2d", "a blocked conv runs with its prepared parameters"));
        }
        let conv = self.blocked_conv()?;
        let run = |out: ArrayViewMut4<f32>| conv.forward_into(x, opts.residual, opts.residual_after_act, out);
        if crate::profile::enabled() {
            let key = self.profile_key(x, opts);
            return crate::profile::timed(key, || {}, || run(out.view_mut()));
        }
        run(out)
    }

    /// The key [`crate::profile`] records a call on `x` with `opts` under.
    fn profile_key(&self, x: ArrayView4<f32>, opts: &ConvOpts<'_>) -> crate::profile::ConvKey {
        let p = opts.params.unwrap_or(&self.params);
        (shape4(&self.weight), shape4(&x), p.stride, p.groups)
    }

    /// [`forward_into`](Self::forward_into) without profiling; with `onto`, onto what `out`
    /// holds ([`forward_onto`](Self::forward_onto)).
    fn forward_into_once(
        &self,
        x: ArrayView4<f32>,
        opts: &ConvOpts<'_>,
        out: ArrayViewMut4<f32>,
        onto: bool,
    ) -> Result<()> {
        conv2d_into_prepared(
            x,
            self.weight.view(),
            Some(self.bias.view()),
            opts.params.unwrap_or(&self.params),
            out,
            Prepared {
                winograd: self.wino.as_ref().map(|(data, panels)| winograd::U {
                    data: crate::on_line(data),
                    panels: *panels,
                }),
                packed: Some(&self.packed),
                packed_groups: self.params.groups,
                packed_cv: Some(&self.packed_cv),
            },
            opts.residual.map(|r| (r, opts.residual_after_act)),
            onto,
        )
    }
}
