//! The blocked channel layout NCHW16c and the ops on it: the layout ONNX Runtime's MLAS keeps
//! through a whole network of convs (`MlasNchwcConv`), which generated code keeps from an image
//! stem to its outputs when asked to (`fpn gen --blocked`; see the crate README).
//!
//! A blocked tensor keeps its NCHW shape `[n, c, h, w]` (`c` a multiple of [`BLOCK`]) and
//! standard layout, but its values are ordered `[n][c / 16][h][w][16]`: each pixel's 16
//! channels of a block are one 64-byte vector. Channel ranges that start and end on a block
//! boundary sit at the same offsets and have the same lengths in both layouts (`c0·h·w` on, for
//! `len·h·w` values), so concatenation, channel views ([`crate::channels`]), channel splits and
//! every elementwise op (add, activations) work on blocked tensors unchanged; only ops that
//! look at pixels or at one channel (convs, pools, resizes, per-channel affine maps) need
//! blocked forms. [`to_blocked`] and [`from_blocked`] reorder between the layouts.
//!
//! [`BlockedConv`] computes a conv (zero padding, no dilation or groups) from a blocked input
//! or, when the input's channels are not whole blocks (a network's stem), from an NCHW one,
//! into a blocked output, or, when the output's channels are not whole blocks (a head's last
//! conv), into an NCHW one (computed blocked with zero-padded weights, then reordered). Its
//! kernel keeps `P` output pixels × `B` blocks of 16 output channels in vector registers
//! (`P·B = 24`; 24 × 1, 12 × 2, 8 × 3, 6 × 4) and, for each input channel and tap, loads `B`
//! weight vectors and broadcasts `P` input values: no transposes, no spatial tail tiles (any
//! width fills the lanes, which hold channels) and no strided-plane copies (a stride only
//! spaces the broadcasts). Input channels go in chunks whose weights stay in L1, the sums of
//! earlier chunks waiting in the output. The kernel has AVX-512, AVX2 + FMA and portable
//! builds, which compute the same values bit for bit.
//!
//! Invariant: every `unsafe` block reads the input, the packed weight and the bias, and writes
//! the output, within the bounds set by a [`Geom`] that `conv2d_out_shape` validated.

use ndarray::{Array1, Array4, ArrayView4};
use rayon::prelude::*;

use crate::act::{epilogue_slice, Activation, Residual};
use crate::conv::{conv2d_out_shape, shape4, validate_params, Conv2dParams, PaddingMode};
use crate::error::{invalid, mismatch, Result};
use crate::kernel::OutPtr;
use crate::Tensor;

/// Channels per block: one AVX-512 vector of `f32`.
pub const BLOCK: usize = 16;

/// Accumulator registers a kernel tile uses (`P·B`), leaving 8 of AVX-512's 32 for weights and
/// broadcasts.
const TILE_ACC: usize = 24;

/// Packed weight floats of one input-channel chunk kept in L1 (32 KiB of a 48 KiB L1d).
const CHUNK_FLOATS: usize = 8192;

/// Most products summed in registers before they are added to the output (at least one input
/// block's): the reduction's first level, as the GEMM's `KC` (see [`Tile`]).
const CHUNK_TERMS: usize = 128;

/// Output columns a task computes through every input chunk and its epilogue before the next
/// ones (96 pixels × 4 blocks: 24 KiB, in L1). A 1×1 conv's plane is one row (see
/// `BlockedConv::run`); its epilogue over a whole task's columns read them back from L2.
const SEGMENT: usize = 4 * TILE_ACC;

const OP: &str = "BlockedConv";

/// Checks that an output view has the op's output shape `os`.
fn out_view(op: &'static str, os: [usize; 4], out: &ndarray::ArrayViewMut4<f32>) -> Result<()> {
    if shape4(out) != os {
        return Err(mismatch(
            op,
            &os,
            &shape4(out),
            "the output view must have the output's shape",
        ));
    }
    Ok(())
}

/// `c` channels rounded up to whole blocks.
fn padded(c: usize) -> usize {
    c.div_ceil(BLOCK) * BLOCK
}

/// How a conv walks `cin` input channels: `(channels per block, blocks)`, 16 per block on a
/// blocked input, all of them in one on an NCHW one (channels not whole blocks).
fn in_blocks(cin: usize) -> (usize, usize) {
    if cin.is_multiple_of(BLOCK) {
        (BLOCK, cin / BLOCK)
    } else {
        (cin, 1)
    }
}

/// Checks that `shape`'s channels are whole blocks.
fn whole_blocks(op: &'static str, shape: [usize; 4]) -> Result<()> {
    if !shape[1].is_multiple_of(BLOCK) {
        return Err(invalid(
            op,
            format!("{} channels are not whole blocks of {BLOCK}", shape[1]),
        ));
    }
    Ok(())
}

/// The values of a tensor per image, each image's `len` values contiguous, image `i` at `i·stride`
/// floats from the first ([`images`]).
#[derive(Clone, Copy, Debug)]
struct Imgs<'a> {
    data: &'a [f32],
    /// Images.
    n: usize,
    stride: usize,
    len: usize,
}

impl<'a> Imgs<'a> {
    /// Image `i`'s values.
    fn img(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.stride..][..self.len]
    }
}

/// The values of `x` (`[n, c, h, w]`, standard layout or not) per image ([`Imgs`]), or an error
/// if an image's values are not contiguous (a view that is not a channel range of a tensor).
fn images<'a>(x: &ArrayView4<'a, f32>, op: &'static str) -> Result<Imgs<'a>> {
    let [n, c, h, w] = shape4(x);
    let s = x.strides();
    let dense = w <= 1 || s[3] == 1;
    let rows = h <= 1 || s[2] == w as isize;
    let planes = c <= 1 || s[1] == (h * w) as isize;
    let len = c * h * w;
    let stride = if n > 1 { usize::try_from(s[0]).ok() } else { Some(len) };
    let Some(stride) = stride.filter(|&st| dense && rows && planes && (n <= 1 || len == 0 || st >= len)) else {
        return Err(invalid(op, "the tensor's channels must be contiguous in each image"));
    };
    let total = if n == 0 || len == 0 { 0 } else { (n - 1) * stride + len };
    // SAFETY: the view's elements span `total` floats from its first (image `i` at `i·stride`,
    // each image's `len` values contiguous: checked above), all inside `x`'s data, which lives
    // for 'a.
    let data = unsafe { std::slice::from_raw_parts(x.as_ptr(), total) };
    Ok(Imgs { data, n, stride, len })
}

/// Each image's first value of an output being written by tasks of disjoint parts
/// ([`images_mut`]).
#[derive(Clone, Copy)]
struct ImgsMut {
    base: OutPtr,
    stride: usize,
}

impl ImgsMut {
    /// Image `i`'s first value.
    fn get(self, i: usize) -> *mut f32 {
        // SAFETY (of the offset): image `i` starts `i·stride` floats after the first, inside
        // the view ([`images_mut`]).
        self.base.get().wrapping_add(i * self.stride)
    }
}

/// [`images`] for an output view, as pointers for tasks that write disjoint parts of it.
fn images_mut(out: &mut ndarray::ArrayViewMut4<f32>, op: &'static str) -> Result<ImgsMut> {
    let stride = images(&out.view(), op)?.stride;
    Ok(ImgsMut {
        base: OutPtr::from_ptr(out.as_mut_ptr()),
        stride,
    })
}

/// `x` (NCHW, channels a multiple of [`BLOCK`]) reordered to NCHW16c (see the module doc).
pub fn to_blocked(x: ArrayView4<f32>) -> Result<Tensor> {
    reorder(x, "to_blocked", |planes, out, hw| {
        for (p, px) in out.chunks_exact_mut(BLOCK).enumerate() {
            for (j, v) in px.iter_mut().enumerate() {
                *v = planes[j * hw + p];
            }
        }
    })
}

/// `x` (NCHW16c, see the module doc) reordered back to NCHW.
pub fn from_blocked(x: ArrayView4<f32>) -> Result<Tensor> {
    reorder(x, "from_blocked", |block, out, hw| {
        for (j, plane) in out.chunks_exact_mut(hw).enumerate() {
            for (p, v) in plane.iter_mut().enumerate() {
                *v = block[p * BLOCK + j];
            }
        }
    })
}

/// A new tensor of `x`'s shape (channels whole blocks) whose 16-channel blocks are
/// `f(x's block, the output's block, h·w)`, in parallel over blocks.
fn reorder(x: ArrayView4<f32>, op: &'static str, f: impl Fn(&[f32], &mut [f32], usize) + Sync) -> Result<Tensor> {
    let shape = shape4(&x);
    whole_blocks(op, shape)?;
    let [_, c, h, w] = shape;
    let hw = h * w;
    let src = images(&x, op)?;
    let mut y = crate::try_output(shape, op)?;
    let dst = y
        .as_slice_mut()
        .ok_or_else(|| invalid(op, "output not in standard layout"))?;
    if c * hw == 0 {
        return Ok(y);
    }
    dst.par_chunks_mut(BLOCK * hw).enumerate().for_each(|(i, out)| {
        let (img, cb) = (i / (c / BLOCK), i % (c / BLOCK));
        f(&src.img(img)[cb * BLOCK * hw..][..BLOCK * hw], out, hw);
    });
    Ok(y)
}

/// A conv prepared for blocked tensors (see the module doc): `act(nn.Conv2d(x))` with zero
/// padding, dilation 1 and one group, its input or its output of whole blocks of channels.
#[derive(Clone, Debug)]
pub struct BlockedConv {
    /// `[cpad / 16][ncb][kh][kw][cbw][16]` on a cache line ([`crate::try_lined`]; `cpad` is
    /// `cout` rounded up to whole blocks, [`padded`], the weights past `cout` zero): for each
    /// block of output channels, input-channel block, tap and input channel of the block, the
    /// block's 16 weights. Empty with `wino`, which every call then takes.
    packed: Vec<f32>,
    /// `[cpad]`: the bias (zeros when the conv has none), zeros past `cout`.
    bias: Vec<f32>,
    /// For a 3×3 stride-1 conv from whole blocks: the Winograd F(2×2, 3×3) transforms
    /// `U[ξ] = G g Gᵀ` of the weight, `[16][cpad / 16][cin / 16][16][16]` on a cache line (for
    /// each of the 16 transformed positions, the weight of a 1×1 conv packed as `packed` is),
    /// and `cpad` zeros (the bias of its products). See [`winograd`].
    wino: Option<(Vec<f32>, Vec<f32>)>,
    /// `[cout, cin, kh, kw]`.
    w_shape: [usize; 4],
    params: Conv2dParams,
}

/// Where a conv's operands are and how the kernel walks them: the input image's address of
/// input channel `cb·cbw + j` at `(iy, ix)` is `cb·cbs + j·js + iy·ys + ix·xs`.
#[derive(Clone, Copy, Debug)]
struct Geom {
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sy: usize,
    sx: usize,
    pt: usize,
    pl: usize,
    oh: usize,
    ow: usize,
    /// Input channels per block (16 on blocked input; `cin` on NCHW input, one block).
    cbw: usize,
    /// Input-channel blocks.
    ncb: usize,
    cbs: usize,
    js: usize,
    ys: usize,
    xs: usize,
    /// Floats between two output blocks' packed weights (`ncb·kh·kw·cbw·16`).
    wob: usize,
    /// The output holds a sum the conv adds onto, before the activation
    /// ([`BlockedConv::forward_onto`]).
    onto: bool,
}

impl BlockedConv {
    /// Prepares a conv with weight `[cout, cin, kh, kw]`, optional bias `[cout]` and `params`;
    /// an error unless `cin` or `cout` is a multiple of [`BLOCK`], `params` has zero padding,
    /// dilation 1 and one group, and the weight is not too large to pack. The input is blocked
    /// when `cin` is a multiple of [`BLOCK`] ([`Self::blocked_input`]), NCHW otherwise; the
    /// output likewise with `cout` ([`Self::blocked_output`]).
    pub fn new(weight: Array4<f32>, bias: Option<Array1<f32>>, params: Conv2dParams) -> Result<Self> {
        let w_shape = shape4(&weight);
        validate_params(OP, w_shape, &params)?;
        let [cout, cin, kh, kw] = w_shape;
        if params.groups != 1 || params.dilation != [1, 1] || params.padding_mode != PaddingMode::Zeros {
            return Err(invalid(
                OP,
                "only zero-padded convs without groups or dilation are blocked",
            ));
        }
        if !cout.is_multiple_of(BLOCK) && !cin.is_multiple_of(BLOCK) {
            return Err(invalid(
                OP,
                format!("{cin} input and {cout} output channels: neither side is whole blocks of {BLOCK}"),
            ));
        }
        // output channels padded to whole blocks (zero weights and bias past `cout`)
        let cpad = padded(cout);
        let mut bias = match bias {
            Some(b) if b.len() != cout => {
                return Err(mismatch(OP, &w_shape, &[b.len()], "one bias per output channel"));
            }
            Some(b) => b.to_vec(),
            None => vec![0.0; cout],
        };
        bias.resize(cpad, 0.0);
        let wv = weight.as_standard_layout();
        let ws = wv.as_slice().ok_or_else(|| invalid(OP, "weight not contiguous"))?;
        // Winograd from a blocked input; a conv on its path never reads the direct kernel's
        // packing: not kept
        let wino = if [kh, kw] == [3, 3] && params.stride == [1, 1] && cin.is_multiple_of(BLOCK) {
            Some((wino_weights(ws, cout, cin)?, vec![0.0; cpad]))
        } else {
            None
        };
        let packed = match wino {
            Some(_) => Vec::new(),
            None => pack(ws, w_shape, cpad)?,
        };
        Ok(Self {
            packed,
            bias,
            wino,
            w_shape,
            params,
        })
    }

    /// Whether the output is blocked (its channels are whole blocks) or NCHW (a head's last
    /// conv on a blocked input: computed blocked, then reordered).
    pub fn blocked_output(&self) -> bool {
        self.w_shape[0].is_multiple_of(BLOCK)
    }

    /// The output shape with its channels padded to whole blocks (what the kernels compute).
    fn padded_shape(&self, x: [usize; 4]) -> Result<[usize; 4]> {
        let [n, cout, oh, ow] = self.output_shape(x)?;
        Ok([n, padded(cout), oh, ow])
    }

    /// Whether the input is blocked (its channels are whole blocks) or NCHW.
    pub fn blocked_input(&self) -> bool {
        self.w_shape[1].is_multiple_of(BLOCK)
    }

    /// The output shape for an input of shape `x` (`[n, cin, h, w]`), or the error
    /// [`crate::conv2d`] gives.
    pub fn output_shape(&self, x: [usize; 4]) -> Result<[usize; 4]> {
        conv2d_out_shape(x, self.w_shape, &self.params)
    }

    /// The conv of `x` (blocked when [`Self::blocked_input`], else NCHW; its channels
    /// contiguous per image) into a new tensor (blocked when [`Self::blocked_output`], else
    /// NCHW), with `residual` (blocked, of the output's shape; only to a blocked output) added
    /// before the activation, or after it when `after_act`.
    pub fn forward(&self, x: ArrayView4<f32>, residual: Option<ArrayView4<f32>>, after_act: bool) -> Result<Tensor> {
        let os = self.output_shape(shape4(&x))?;
        let mut y = crate::try_output(os, OP)?;
        self.forward_into(x, residual, after_act, y.view_mut())?;
        Ok(y)
    }

    /// [`Self::forward`] into `out` (blocked, or NCHW when [`Self::blocked_output`] is false;
    /// of the output's shape, its channels contiguous per image: a tensor or a channel range of
    /// one, a concat's part).
    pub fn forward_into(
        &self,
        x: ArrayView4<f32>,
        residual: Option<ArrayView4<f32>>,
        after_act: bool,
        out: ndarray::ArrayViewMut4<f32>,
    ) -> Result<()> {
        if !self.blocked_output() {
            return self.run_to_nchw(x, residual, out);
        }
        self.run(x, residual, after_act, out, false)
    }

    /// [`Self::forward_into`] of a conv whose output channels are not whole blocks: computed
    /// blocked into a buffer of whole blocks, then its `cout` channels reordered into `out`
    /// (NCHW). No residual.
    fn run_to_nchw(
        &self,
        x: ArrayView4<f32>,
        residual: Option<ArrayView4<f32>>,
        mut out: ndarray::ArrayViewMut4<f32>,
    ) -> Result<()> {
        if residual.is_some() {
            return Err(invalid(
                OP,
                "a conv to an NCHW output (channels not whole blocks) takes no residual",
            ));
        }
        let os = self.output_shape(shape4(&x))?;
        out_view(OP, os, &out)?;
        let mut tmp = crate::try_output(self.padded_shape(shape4(&x))?, OP)?;
        self.run(x, None, false, tmp.view_mut(), false)?;
        let [n, cout, oh, ow] = os;
        let hw = oh * ow;
        let src = images(&tmp.view(), OP)?;
        let dst = images_mut(&mut out, OP)?;
        let nob = cout.div_ceil(BLOCK);
        (0..n * nob).into_par_iter().for_each(|t| {
            let (img, ob) = (t / nob, t % nob);
            let block = &src.img(img)[ob * BLOCK * hw..][..BLOCK * hw];
            for l in 0..BLOCK.min(cout - ob * BLOCK) {
                // SAFETY: channel `ob·16 + l` (< cout) of image `img` is inside `out` (its
                // channels contiguous per image, `images_mut`) and written by this task alone.
                let plane = unsafe { std::slice::from_raw_parts_mut(dst.get(img).add((ob * BLOCK + l) * hw), hw) };
                for (p, v) in plane.iter_mut().enumerate() {
                    *v = block[p * BLOCK + l];
                }
            }
        });
        crate::recycle(tmp);
        Ok(())
    }

    /// `act(sum + conv(x) + bias)` computed in `sum`'s buffer (blocked, of the output's shape)
    /// and returned in it: [`Self::forward`] with `sum` as a residual added before the
    /// activation, without a buffer for the output (a ResNet block's shortcut that dies at its
    /// last conv). The sums are added in another order (onto `sum`, then the bias), so the
    /// last bits may differ.
    pub fn forward_onto(&self, x: ArrayView4<f32>, mut sum: Tensor) -> Result<Tensor> {
        self.forward_onto_in_place(x, sum.view_mut())?;
        Ok(sum)
    }

    /// [`Self::forward_onto`] on a view of the sum (`crate::Conv2d`'s profiled reruns).
    pub(crate) fn forward_onto_in_place(&self, x: ArrayView4<f32>, sum: ndarray::ArrayViewMut4<f32>) -> Result<()> {
        if !self.blocked_output() {
            return Err(invalid(
                OP,
                "a conv to an NCHW output (channels not whole blocks) adds onto no sum",
            ));
        }
        self.run(x, None, false, sum, true)
    }

    /// [`Self::forward_into`], onto what `out` holds when `onto`.
    fn run(
        &self,
        x: ArrayView4<f32>,
        residual: Option<ArrayView4<f32>>,
        after_act: bool,
        mut out: ndarray::ArrayViewMut4<f32>,
        onto: bool,
    ) -> Result<()> {
        let xs = shape4(&x);
        let os = self.padded_shape(xs)?;
        out_view(OP, os, &out)?;
        let res = match residual {
            Some(r) if shape4(&r) != os => {
                return Err(mismatch(
                    OP,
                    &os,
                    &shape4(&r),
                    "the residual must have the output's shape",
                ));
            }
            Some(r) => Some(images(&r, OP)?),
            None => None,
        };
        let src = images(&x, OP)?;
        let dst = images_mut(&mut out, OP)?;
        if os.iter().product::<usize>() == 0 {
            return Ok(());
        }
        let [n, cout, oh, ow] = os;
        let [_, cin, h, w] = xs;
        let [_, _, kh, kw] = self.w_shape;
        let (cbw, ncb) = in_blocks(cin);
        let (cbs, js, ys, xstep) = if self.blocked_input() {
            (h * w * BLOCK, 1, w * BLOCK, BLOCK)
        } else {
            (0, h * w, w, 1)
        };
        // a 1×1 conv at stride 1 without padding: every pixel of a plane one row (no short
        // rows' tails at small maps)
        let flat = [kh, kw] == [1, 1] && self.params.stride == [1, 1] && self.params.padding == [0; 4];
        let (h, w, oh, ow) = if flat { (1, h * w, 1, oh * ow) } else { (h, w, oh, ow) };
        let g = Geom {
            h,
            w,
            kh,
            kw,
            sy: self.params.stride[0],
            sx: self.params.stride[1],
            pt: self.params.padding[0],
            pl: self.params.padding[2],
            oh,
            ow,
            cbw,
            ncb,
            cbs,
            js,
            ys,
            xs: xstep,
            wob: ncb * kh * kw * cbw * BLOCK,
            onto,
        };
        let act = self.params.act;
        if let Some((u, zeros)) = &self.wino {
            let epi = Epi {
                act,
                res: None,
                after_act,
            };
            return winograd(&g, src, u, zeros, &self.bias, dst, cout, epi, res);
        }
        let nob = cout / BLOCK;
        let groups = nob.div_ceil(GROUP);
        // tasks: (image, group of output blocks, band of output rows, or of columns when the
        // output is one row)
        let threads = rayon::current_num_threads().max(1);
        let per_image = n * groups;
        let wide = if oh == 1 { ow.div_ceil(TILE_ACC) } else { oh };
        let bands = (4 * threads).div_ceil(per_image).clamp(1, wide);
        let weights = crate::on_line(&self.packed);
        (0..n * groups * bands).into_par_iter().for_each(|t| {
            let (img, rest) = (t / (groups * bands), t % (groups * bands));
            let ((ob0, nb), bi) = (tile_group(nob, rest / bands), rest % bands);
            let units = even(wide, bands, bi);
            let (rows, cols) = if oh == 1 {
                (0..1, (units.start * TILE_ACC).min(ow)..(units.end * TILE_ACC).min(ow))
            } else {
                (units, 0..ow)
            };
            let epi = Epi {
                act,
                res: res.map(|r| r.img(img)),
                after_act,
            };
            // the task writes output blocks ob0..ob0 + nb of image `img`, rows `rows`, which no
            // other task writes
            run_task(
                &g,
                src.img(img),
                weights,
                &self.bias,
                dst.get(img),
                ob0,
                nb,
                rows,
                cols,
                Some(epi),
            );
        });
        Ok(())
    }
}

/// The weight `w` (`[cout, cin, kh, kw]` of `shape`) packed for the direct kernel
/// (`BlockedConv::packed`, `cpad` output channels); an error if too large to allocate.
fn pack(w: &[f32], shape: [usize; 4], cpad: usize) -> Result<Vec<f32>> {
    let [cout, cin, kh, kw] = shape;
    let (cbw, ncb) = in_blocks(cin);
    let len = cpad
        .checked_mul(cin)
        .and_then(|v| v.checked_mul(kh * kw))
        .ok_or_else(|| invalid(OP, "the weight is too large to pack"))?;
    let mut packed = crate::try_lined(len).ok_or_else(|| invalid(OP, "the weight is too large to pack"))?;
    let dst = crate::on_line_mut(&mut packed);
    let mut k = 0;
    for ob in 0..cpad / BLOCK {
        for cb in 0..ncb {
            for ky in 0..kh {
                for kx in 0..kw {
                    for j in 0..cbw {
                        let ci = cb * cbw + j;
                        for l in 0..BLOCK {
                            let co = ob * BLOCK + l;
                            if co < cout {
                                dst[k] = w[((co * cin + ci) * kh + ky) * kw + kx];
                            }
                            k += 1;
                        }
                    }
                }
            }
        }
    }
    Ok(packed)
}

/// The Winograd transforms of a 3×3 weight `w` (`[cout, cin, 3, 3]`), packed for the products
/// of [`winograd`] (see `BlockedConv::wino`; output channels padded to whole blocks with
/// zeros); an error if too large to allocate.
fn wino_weights(w: &[f32], cout: usize, cin: usize) -> Result<Vec<f32>> {
    use crate::winograd::wt1;
    let cpad = padded(cout);
    let len = cpad
        .checked_mul(cin)
        .and_then(|v| v.checked_mul(WA * WA))
        .ok_or_else(|| invalid(OP, "the weight is too large to transform"))?;
    let mut u = crate::try_lined(len).ok_or_else(|| invalid(OP, "the weight is too large to transform"))?;
    let dst = crate::on_line_mut(&mut u);
    let ncb = cin / BLOCK;
    for co in 0..cout {
        for ci in 0..cin {
            let g = &w[(co * cin + ci) * 9..][..9];
            // G g along rows (each column of taps), then Gᵀ along columns
            let cols: [[f32; 6]; 3] = std::array::from_fn(|kx| wt1::<2>(g[kx], g[3 + kx], g[6 + kx]));
            for a in 0..WA {
                let row = wt1::<2>(cols[0][a], cols[1][a], cols[2][a]);
                for (b, &v) in row[..WA].iter().enumerate() {
                    let (ob, l, cb, j) = (co / BLOCK, co % BLOCK, ci / BLOCK, ci % BLOCK);
                    dst[(((a * WA + b) * (cpad / BLOCK) + ob) * ncb + cb) * BLOCK * BLOCK + j * BLOCK + l] = v;
                }
            }
        }
    }
    Ok(u)
}

/// Transformed tile side of Winograd F(2×2, 3×3) (4 × 4 inputs per 2 × 2 outputs).
const WA: usize = 4;

/// Floats of transformed inputs and products one Winograd task keeps (512 KiB, in L2).
const WINO_FLOATS: usize = 1 << 17;

/// Fewest tiles of a Winograd block, whatever the channels (a product's pixel tiles and its
/// weights' passes). Intel, 1 thread, hot: 256←256 at 28² 4.30 ms with 16 tiles (what
/// `WINO_FLOATS` gives), 4.36 with 24, 3.56 with 48, 3.28–3.44 with 96, 3.27–3.50 with
/// 196–256 (NCHW Winograd 3.41); at 56² 16.8 → 14.4 with 96; 64←64 at 80² and 32←32 at 80²
/// even from 64 to 128.
const WINO_MIN_TILES: usize = 96;

/// A 3×3 stride-1 conv of blocked `src` into blocked `out` (`cout` channels, geometry `g`) by
/// Winograd F(2×2, 3×3), the transforms of `crate::winograd` (points 0, 1, −1, ∞; every
/// coefficient ±1 or ½) with 16 channels in the lanes: for a block of tiles, the input
/// transform `Bᵀ d B` of each tile and input block into `V[ξ]` (a blocked row of tiles), the
/// 16 products `M[ξ] = V[ξ] · U[ξ]` by the direct kernel as 1×1 convs, then `Aᵀ M A` plus the
/// bias into the output; the epilogue (`epi`, the residual of each image from `res`) on each
/// finished band of rows. Tasks ([`split`]) take bands of tile rows, numbered across the
/// images (a batch's small maps share blocks, and so passes over the weights), by parts of the
/// output blocks.
#[allow(clippy::too_many_arguments)]
fn winograd(
    g: &Geom,
    src: Imgs,
    u: &[f32],
    zeros: &[f32],
    bias: &[f32],
    dst: ImgsMut,
    cout: usize,
    epi: Epi,
    res: Option<Imgs>,
) -> Result<()> {
    let cin = g.ncb * BLOCK;
    let (tr, tc) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
    let n = src.n;
    // tiles numbered across the images (image-major, then tile rows): at most the output's
    // pixels, no overflow
    let total = n * tr * tc;
    let nob = cout / BLOCK;
    let threads = rayon::current_num_threads().max(1);
    let split = split(total, n * tr, tc, cin, nob, threads);
    let per_part = nob.div_ceil(split.parts).div_ceil(GROUP) * GROUP;
    let parts = nob.div_ceil(per_part);
    let bands = split.bands;
    let u = crate::on_line(u);
    (0..bands * parts).into_par_iter().try_for_each(|t| {
        let (bi, part) = (t / parts, t % parts);
        let obs = part * per_part..((part + 1) * per_part).min(nob);
        let pnb = obs.len();
        // tile rows of every image, one after another
        let trows = even(n * tr, bands, bi);
        let tiles = trows.len() * tc;
        let blk = split.tiles.min(tiles);
        let scratch = |slot, len| {
            crate::kernel::Scratch::try_take(slot, len)
                .ok_or_else(|| crate::Error::InputSize(format!("{OP}: no memory for Winograd's {len} floats")))
        };
        let mut v = scratch(&crate::kernel::WINO_V, WA * WA * cin * blk)?;
        let mut m = scratch(&crate::kernel::WINO_M, WA * WA * pnb * BLOCK * blk)?;
        // this task writes output blocks `obs` of the output rows of its tile rows (2 per tile
        // row), which no other task writes
        let mut t0 = trows.start * tc;
        let end = trows.end * tc;
        while t0 < end {
            let nt = blk.min(end - t0);
            wino_input(g, &src, &mut v, t0, nt, tr, tc);
            let pg = Geom {
                h: 1,
                w: nt,
                kh: 1,
                kw: 1,
                sy: 1,
                sx: 1,
                pt: 0,
                pl: 0,
                oh: 1,
                ow: nt,
                cbw: BLOCK,
                ncb: g.ncb,
                cbs: nt * BLOCK,
                js: 1,
                ys: nt * BLOCK,
                xs: BLOCK,
                wob: g.ncb * BLOCK * BLOCK,
                onto: false,
            };
            for xi in 0..WA * WA {
                let vx = &v[xi * cin * nt..][..cin * nt];
                // this part's output blocks, numbered from 0 in the weights, zeros and M
                let ux = &u[xi * cout * cin + obs.start * pg.wob..][..pnb * pg.wob];
                let mx = m[xi * pnb * BLOCK * nt..][..pnb * BLOCK * nt].as_mut_ptr();
                for (ob0, nb) in (0..pnb.div_ceil(GROUP)).map(|k| tile_group(pnb, k)) {
                    run_task(&pg, vx, ux, zeros, mx, ob0, nb, 0..1, 0..nt, None);
                }
            }
            // SAFETY: `dst` holds every image's output; blocks `obs` of tiles t0..t0 + nt are
            // this task's.
            unsafe { wino_output(g, &m, bias, dst, obs.clone(), t0, nt, tr, tc) };
            t0 += nt;
        }
        let row_len = g.ow * BLOCK;
        for img in trows.start / tr..trows.end.div_ceil(tr) {
            let (a, b) = (
                trows.start.max(img * tr) - img * tr,
                trows.end.min((img + 1) * tr) - img * tr,
            );
            let rows = 2 * a..(2 * b).min(g.oh);
            let o = dst.get(img);
            for ob in obs.clone() {
                let start = (ob * g.oh + rows.start) * row_len;
                let len = rows.len() * row_len;
                // SAFETY: these rows of block `ob` of image `img` are this task's and its tiles
                // are written.
                let part = unsafe { std::slice::from_raw_parts_mut(o.add(start), len) };
                let r = res.map(|r| Residual {
                    data: &r.img(img)[start..][..len],
                    after_act: epi.after_act,
                });
                epilogue_slice(part, 0.0, epi.act, r);
            }
        }
        Ok(())
    })
}

/// How [`winograd`] splits a conv into tasks: `bands` of tile rows (of all images, one after
/// another) by `parts` of the output blocks (each part transforming the input again), and the
/// tiles of one block of a task (whose products read each weight once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Split {
    bands: usize,
    parts: usize,
    tiles: usize,
}

/// The [`Split`] of a Winograd conv of `total` tiles (`rows` tile rows of `tc` tiles, all
/// images), `cin` input channels and `nob` output blocks on `threads` threads.
///
/// A block of tiles reads every weight of its part once (`16·cin·cout` floats in all), a part
/// transforms every input tile of its band (`16·cin` floats per tile). With fewer tiles than
/// output channels (the 8²–16² maps of 256–512 channels) the weights dominate: one block of all
/// tiles (up to 256), the output blocks split over the threads, so each weight is read once per
/// call. (Bands of tile rows there read every weight once per band: seed 003's 512←512 at 8²,
/// 2 bands × 2 parts, read its 16 MiB of weights twice per call, 1.24× the NCHW Winograd's time
/// in the forward, 2 threads.) Otherwise bands of about `WINO_FLOATS` of transformed tiles
/// (at least [`WINO_MIN_TILES`]), of (nearly) equal rows, a multiple of the threads where the
/// rows allow, and on small maps parts of the output blocks too.
fn split(total: usize, rows: usize, tc: usize, cin: usize, nob: usize, threads: usize) -> Split {
    let groups = nob.div_ceil(GROUP);
    let cout = nob * BLOCK;
    if total < cout && total <= 256 && groups >= 2 {
        return Split {
            bands: 1,
            parts: threads.min(groups),
            tiles: total,
        };
    }
    let tb = (WINO_FLOATS / (WA * WA * (cin + cout))).clamp(WINO_MIN_TILES, 256);
    let band = (tb / tc.max(1)).clamp(1, rows.max(1));
    // bands of (nearly) equal rows, a multiple of the threads when the rows allow (a 10-row
    // map in blocks of 9 rows made bands of 9 and 1; 20 rows in 5 bands kept one thread idle
    // a fifth of the time)
    let bands = rows
        .div_ceil(band)
        .div_ceil(threads)
        .saturating_mul(threads)
        .clamp(1, rows.max(1));
    // few bands (small maps): the output blocks split too, each part transforming the input
    // again (a `cin·tiles` cost beside the products' `cin·cout·tiles`)
    let parts = if bands >= 2 * threads {
        1
    } else {
        (2 * threads).div_ceil(bands).min(groups).max(1)
    };
    Split {
        bands,
        parts,
        tiles: tb,
    }
}

/// Part `i` of `total` units split into `parts` parts of sizes that differ by at most one.
fn even(total: usize, parts: usize, i: usize) -> std::ops::Range<usize> {
    let parts = parts.max(1);
    i * total / parts..(i + 1) * total / parts
}

/// Tile `t` (numbered across the images, `tr` tile rows of `tc` tiles each) as its image and
/// its first output row and column.
fn tile_at(t: usize, tr: usize, tc: usize) -> (usize, usize, usize) {
    let (img, r) = (t / (tr * tc), t % (tr * tc));
    (img, 2 * (r / tc), 2 * (r % tc))
}

/// `V[ξ][cb][k][16] = (Bᵀ d B)[ξ]` for tiles `t0..t0 + nt` of `src` (numbered across its images,
/// [`tile_at`]; `k` the tile's index in the block)
/// and every input block `cb`, `d` the tile's 4 × 4 input pixels (zeros outside the input).
fn wino_input(g: &Geom, src: &Imgs, v: &mut [f32], t0: usize, nt: usize, tr: usize, tc: usize) {
    let cin = g.ncb * BLOCK;
    #[cfg(target_arch = "x86_64")]
    let simd = crate::kernel::simd512();
    for k in 0..nt {
        let (img, oy, ox) = tile_at(t0 + k, tr, tc);
        let x = src.img(img);
        #[cfg(target_arch = "x86_64")]
        if simd && oy >= g.pt && oy + WA <= g.h + g.pt && ox >= g.pl && ox + WA <= g.w + g.pl {
            for cb in 0..g.ncb {
                let at = cb * g.cbs + (oy - g.pt) * g.ys + (ox - g.pl) * BLOCK;
                let to = (cb * nt + k) * BLOCK;
                let (xs, vs) = (&x[at..][..(WA - 1) * g.ys + WA * BLOCK], &mut v[to..]);
                // SAFETY: the tile's 4 × 4 pixels are inside the image (checked above) and `xs`
                // holds them; `vs` holds the 16 positions' vectors at strides of `cin·nt`;
                // `simd512()` says the CPU runs avx512f.
                unsafe { transform_in512(xs, g.ys, vs, cin * nt) };
            }
            continue;
        }
        for cb in 0..g.ncb {
            let mut d = [[[0f32; BLOCK]; WA]; WA];
            for (r, drow) in d.iter_mut().enumerate() {
                let iy = (oy + r).wrapping_sub(g.pt);
                if iy >= g.h {
                    continue;
                }
                for (c, px) in drow.iter_mut().enumerate() {
                    let ix = (ox + c).wrapping_sub(g.pl);
                    if ix < g.w {
                        px.copy_from_slice(&x[cb * g.cbs + iy * g.ys + ix * BLOCK..][..BLOCK]);
                    }
                }
            }
            let tv = transform_in(&d);
            for (xi, val) in tv.iter().enumerate() {
                v[((xi * cin / BLOCK + cb) * nt + k) * BLOCK..][..BLOCK].copy_from_slice(val);
            }
        }
    }
}

/// [`transform_in`] of an interior tile in AVX-512 (the same operations in the same order, so
/// the same values): the tile's rows at `x[r·ys..]`, 4 pixels of 16 channels each; position
/// `ξ` goes to `v[ξ·vs..][..16]`.
///
/// # Safety
/// `x` holds `3·ys + 64` floats and `v` `15·vs + 16`; the CPU must support avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::needless_range_loop)] // positions index several arrays at once
unsafe fn transform_in512(x: &[f32], ys: usize, v: &mut [f32], vs: usize) {
    use std::arch::x86_64::*;
    assert!(x.len() >= (WA - 1) * ys + WA * BLOCK && v.len() >= (WA * WA - 1) * vs + BLOCK);
    let (xp, vp) = (x.as_ptr(), v.as_mut_ptr());
    // SAFETY: in bounds by the assertion; the caller's CPU runs avx512f.
    unsafe {
        let d = |r: usize, c: usize| _mm512_loadu_ps(xp.add(r * ys + c * BLOCK));
        let it = |a: __m512, b: __m512, c: __m512, e: __m512| {
            [
                _mm512_sub_ps(a, c),
                _mm512_add_ps(b, c),
                _mm512_sub_ps(c, b),
                _mm512_sub_ps(b, e),
            ]
        };
        let cols: [[__m512; WA]; WA] = std::array::from_fn(|c| it(d(0, c), d(1, c), d(2, c), d(3, c)));
        for a in 0..WA {
            let row = it(cols[0][a], cols[1][a], cols[2][a], cols[3][a]);
            for (b, r) in row.iter().enumerate() {
                _mm512_storeu_ps(vp.add((a * WA + b) * vs), *r);
            }
        }
    }
}

/// `Bᵀ d B` of one tile, 16 lanes at a time (`crate::winograd::it1` along both axes).
#[inline(always)]
fn transform_in(d: &[[[f32; BLOCK]; WA]; WA]) -> [[f32; BLOCK]; WA * WA] {
    let it = |a: &[f32; BLOCK], b: &[f32; BLOCK], c: &[f32; BLOCK], e: &[f32; BLOCK]| {
        let mut o = [[0f32; BLOCK]; WA];
        for l in 0..BLOCK {
            let t = crate::winograd::it1::<2>([a[l], b[l], c[l], e[l], 0.0, 0.0]);
            for (oi, ti) in o.iter_mut().zip(t) {
                oi[l] = ti;
            }
        }
        o
    };
    // along rows (each column c of the tile), then along columns
    let cols: [[[f32; BLOCK]; WA]; WA] = std::array::from_fn(|c| it(&d[0][c], &d[1][c], &d[2][c], &d[3][c]));
    let mut v = [[0f32; BLOCK]; WA * WA];
    for a in 0..WA {
        let row = it(&cols[0][a], &cols[1][a], &cols[2][a], &cols[3][a]);
        v[a * WA..][..WA].copy_from_slice(&row);
    }
    v
}

/// `Y = Aᵀ M A + bias` of tiles `t0..t0 + nt` (numbered across the images, [`tile_at`]) into
/// the blocked output `dst`, the 2 × 2 pixels of each tile that exist.
///
/// # Safety
/// `dst` holds every image's blocked output of geometry `g` and `cout` channels.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::needless_range_loop)] // positions index several arrays at once
unsafe fn wino_output(
    g: &Geom,
    m: &[f32],
    bias: &[f32],
    dst: ImgsMut,
    obs: std::ops::Range<usize>,
    t0: usize,
    nt: usize,
    tr: usize,
    tc: usize,
) {
    let pnb = obs.len();
    let ot = |a: &[f32; BLOCK], b: &[f32; BLOCK], c: &[f32; BLOCK], e: &[f32; BLOCK]| {
        let mut r = [[0f32; BLOCK]; 2];
        for l in 0..BLOCK {
            let t = crate::winograd::ot1::<2>([a[l], b[l], c[l], e[l], 0.0, 0.0]);
            r[0][l] = t[0];
            r[1][l] = t[1];
        }
        r
    };
    let lane = |xi: usize, ob: usize, k: usize| -> &[f32; BLOCK] {
        let s = &m[((xi * pnb + ob - obs.start) * nt + k) * BLOCK..][..BLOCK];
        s.try_into().unwrap_or(&[0.0; BLOCK])
    };
    #[cfg(target_arch = "x86_64")]
    let simd = crate::kernel::simd512();
    for k in 0..nt {
        let (img, oy, ox) = tile_at(t0 + k, tr, tc);
        let o = dst.get(img);
        #[cfg(target_arch = "x86_64")]
        if simd && oy + 2 <= g.oh && ox + 2 <= g.ow {
            for ob in obs.clone() {
                let ms = &m[((ob - obs.start) * nt + k) * BLOCK..];
                // SAFETY: the tile's 2 × 2 pixels of block `ob` are inside the image's output
                // (checked above; the caller's contract), `ms` holds the 16 positions at
                // strides of `pnb·16·nt`; `simd512()` says the CPU runs avx512f.
                unsafe {
                    let dst = o.add(((ob * g.oh + oy) * g.ow + ox) * BLOCK);
                    transform_out512(
                        ms,
                        pnb * BLOCK * nt,
                        &bias[ob * BLOCK..][..BLOCK],
                        dst,
                        g.ow * BLOCK,
                        g.onto,
                    );
                }
            }
            continue;
        }
        for ob in obs.clone() {
            // along rows (each column b of M), then along columns
            let cols: [[[f32; BLOCK]; 2]; WA] = std::array::from_fn(|b| {
                ot(
                    lane(b, ob, k),
                    lane(WA + b, ob, k),
                    lane(2 * WA + b, ob, k),
                    lane(3 * WA + b, ob, k),
                )
            });
            let bv = &bias[ob * BLOCK..][..BLOCK];
            for i in 0..2 {
                if oy + i >= g.oh {
                    break;
                }
                let y = ot(&cols[0][i], &cols[1][i], &cols[2][i], &cols[3][i]);
                for (j, yv) in y.iter().enumerate() {
                    if ox + j >= g.ow {
                        break;
                    }
                    // SAFETY: pixel (oy + i, ox + j) of block `ob` is inside the image's output.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(o.add(((ob * g.oh + oy + i) * g.ow + ox + j) * BLOCK), BLOCK)
                    };
                    for l in 0..BLOCK {
                        dst[l] = if g.onto { dst[l] + yv[l] + bv[l] } else { yv[l] + bv[l] };
                    }
                }
            }
        }
    }
}

/// `Aᵀ M A + bias` of one interior tile in AVX-512 (the operations of [`wino_output`]'s
/// portable path in the same order): position `ξ` at `m[ξ·ms..][..16]`, the 2 × 2 pixels to
/// `dst` and `dst + ys` (two of 16 floats each), added onto what they hold when `onto`.
///
/// # Safety
/// `dst` holds those pixels; `m` holds `15·ms + 16` floats; the CPU must support avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::needless_range_loop)] // positions index several arrays at once
unsafe fn transform_out512(m: &[f32], ms: usize, bias: &[f32], dst: *mut f32, ys: usize, onto: bool) {
    use std::arch::x86_64::*;
    assert!(m.len() >= (WA * WA - 1) * ms + BLOCK && bias.len() >= BLOCK);
    // SAFETY: in bounds by the assertion and the caller's contract; avx512f by the caller's.
    unsafe {
        let mv = |xi: usize| _mm512_loadu_ps(m.as_ptr().add(xi * ms));
        let ot = |a: __m512, b: __m512, c: __m512, e: __m512| {
            [
                _mm512_add_ps(_mm512_add_ps(a, b), c),
                _mm512_sub_ps(_mm512_sub_ps(b, c), e),
            ]
        };
        let cols: [[__m512; 2]; WA] = std::array::from_fn(|b| ot(mv(b), mv(WA + b), mv(2 * WA + b), mv(3 * WA + b)));
        let bv = _mm512_loadu_ps(bias.as_ptr());
        for i in 0..2 {
            let y = ot(cols[0][i], cols[1][i], cols[2][i], cols[3][i]);
            for (j, yv) in y.iter().enumerate() {
                let at = dst.add(i * ys + j * BLOCK);
                let y = if onto {
                    _mm512_add_ps(_mm512_loadu_ps(at), *yv)
                } else {
                    *yv
                };
                _mm512_storeu_ps(at, _mm512_add_ps(y, bv));
            }
        }
    }
}

/// Output blocks per kernel tile at most (`B`).
const GROUP: usize = 4;

/// Group `k` of `nob` output blocks split into kernel tiles of [`GROUP`] (the last one
/// shorter): `(first block, blocks)`.
fn tile_group(nob: usize, k: usize) -> (usize, usize) {
    let ob0 = k * GROUP;
    (ob0, GROUP.min(nob - ob0))
}

/// A conv epilogue after the sums (which start from the bias): the activation and a residual
/// (the image's, blocked, of the output's shape), added before it or after it.
#[derive(Clone, Copy, Debug)]
struct Epi<'a> {
    act: Activation,
    res: Option<&'a [f32]>,
    after_act: bool,
}

/// One task of [`BlockedConv::forward`]: output blocks `ob0..ob0 + nb` of one image, columns
/// `cols` of rows `rows`, over every input-channel chunk, then the epilogue of each finished
/// row (if any).
#[allow(clippy::too_many_arguments)]
fn run_task(
    g: &Geom,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    out: *mut f32,
    ob0: usize,
    nb: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    epi: Option<Epi>,
) {
    let per_cb = g.kh * g.kw * g.cbw * BLOCK * nb;
    let terms = g.kh * g.kw * g.cbw;
    let chunk = (CHUNK_FLOATS / per_cb.max(1)).min(CHUNK_TERMS / terms.max(1)).max(1);
    let plane = g.oh * g.ow * BLOCK;
    // interior output columns: every tap inside the input
    let lo = g.pl.div_ceil(g.sx).min(g.ow);
    let hi = if g.w + g.pl >= g.kw {
        (g.w + g.pl - g.kw) / g.sx + 1
    } else {
        0
    };
    let hi = hi.clamp(lo, g.ow);
    let p_max = TILE_ACC / nb;
    // column segments whose outputs stay in L1 from the kernel to the epilogue
    for seg in (cols.start..cols.end).step_by(SEGMENT) {
        let cols = seg..(seg + SEGMENT).min(cols.end);
        let mut cb0 = 0;
        while cb0 < g.ncb {
            let cb1 = (cb0 + chunk).min(g.ncb);
            let (first, last) = (cb0 == 0 && !g.onto, cb1 == g.ncb);
            for oy in rows.clone() {
                let top = oy * g.sy;
                let ky = (g.pt.saturating_sub(top), g.kh.min((g.h + g.pt).saturating_sub(top)));
                let call = |ox: usize, p: usize, kx: (usize, usize)| {
                    let t = Tile {
                        oy,
                        ox,
                        ky,
                        kx,
                        cb: (cb0, cb1),
                        first,
                        last,
                    };
                    // SAFETY: `x`, `w`, `bias` and `out` hold the image, the packed weight, the bias
                    // and the image's output of geometry `g`; `ob0 + nb` blocks, `ox + p ≤ ow`
                    // and the tap ranges keep every access in bounds (see `Tile`).
                    unsafe { tile(g, x.as_ptr(), w.as_ptr(), bias.as_ptr(), out, ob0, nb, p, &t) }
                };
                let edge = |ox: usize| {
                    let left = ox * g.sx;
                    (g.pl.saturating_sub(left), g.kw.min((g.w + g.pl).saturating_sub(left)))
                };
                for ox in (cols.start..lo.min(cols.end)).chain(hi.max(cols.start)..cols.end) {
                    call(ox, 1, edge(ox));
                }
                let (mut ox, end) = (lo.max(cols.start), hi.min(cols.end));
                while ox < end {
                    let p = p_max.min(end - ox);
                    call(ox, p, (0, g.kw));
                    ox += p;
                }
                if let Some(Epi { act, res, after_act }) = epi.filter(|_| cb1 == g.ncb) {
                    for b in ob0..ob0 + nb {
                        let start = b * plane + (oy * g.ow + cols.start) * BLOCK;
                        let len = cols.len() * BLOCK;
                        // SAFETY: this row of block `b` is inside the image's output and written by
                        // this task alone; its kernel calls are done.
                        let row = unsafe { std::slice::from_raw_parts_mut(out.add(start), len) };
                        let r = res.map(|r| Residual {
                            data: &r[start..][..len],
                            after_act,
                        });
                        epilogue_slice(row, 0.0, act, r);
                    }
                }
            }
            cb0 = cb1;
        }
    }
}

/// One kernel call: output row `oy`, columns `ox..ox + p`, taps `ky.0..ky.1` × `kx.0..kx.1`
/// (those whose input row and, for every column, input column exist), input-channel blocks
/// `cb.0..cb.1`. The chunk's sum starts from zero; it is stored (`first`) or added to what the
/// output holds, then (`last`) the bias is added: the conv's sum in chunks of at most
/// [`CHUNK_TERMS`] products, then the bias, as the GEMM paths sum (a serial sum over every
/// input channel and tap was 4–6× PyTorch's float32 error on YOLOv8n's outputs).
#[derive(Clone, Copy, Debug)]
struct Tile {
    oy: usize,
    ox: usize,
    ky: (usize, usize),
    kx: (usize, usize),
    cb: (usize, usize),
    first: bool,
    last: bool,
}

/// Runs one [`Tile`] of `nb` blocks × `p` pixels with the build for the CPU.
///
/// # Safety
/// The pointers hold an image, packed weight, bias and output of geometry `g`; `ob0 + nb` is at
/// most the output's blocks, `t.ox + p` at most `g.ow`, and `t`'s tap ranges are valid for
/// every column.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    g: &Geom,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    out: *mut f32,
    ob0: usize,
    nb: usize,
    p: usize,
    t: &Tile,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernel::simd512() {
        // full tiles at stride 1 or 2: the pixel step as a constant (every broadcast a fixed
        // displacement from one pointer), and on blocked input the block's 16 input channels
        let step = pixel_step(g);
        macro_rules! full {
            ($($b:literal, $p:literal);*) => {
                match (nb, p, step) {
                    // SAFETY: the caller's contract, with `nb = B`, `p = P` and the input's pixel
                    // step `STEP` (blocked input for 16 and 32); `simd512()` says the CPU has
                    // avx512f, avx2 and fma.
                    $(($b, $p, 16) => return unsafe { tile512::<$b, $p, 16>(g, x, w, bias, out, ob0, t) },
                    // SAFETY: as above.
                    ($b, $p, 32) => return unsafe { tile512::<$b, $p, 32>(g, x, w, bias, out, ob0, t) },
                    // SAFETY: as above (NCHW input).
                    ($b, $p, 1) => return unsafe { tile512::<$b, $p, 1>(g, x, w, bias, out, ob0, t) },
                    // SAFETY: as above (NCHW input).
                    ($b, $p, 2) => return unsafe { tile512::<$b, $p, 2>(g, x, w, bias, out, ob0, t) },)*
                    _ => {}
                }
            };
        }
        full!(1, 24; 2, 12; 3, 8; 4, 6);
        macro_rules! dispatch {
            ($($b:literal => [$($p:literal)*]),*) => {
                match (nb, p) {
                    // SAFETY: the caller's contract, with `nb = B`, `p = P`; `simd512()` says the
                    // CPU has avx512f, avx2 and fma.
                    $($(($b, $p) => return unsafe { tile512::<$b, $p, 0>(g, x, w, bias, out, ob0, t) },)*)*
                    _ => {}
                }
            };
        }
        dispatch!(
            1 => [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24],
            2 => [1 2 3 4 5 6 7 8 9 10 11 12],
            3 => [1 2 3 4 5 6 7 8],
            4 => [1 2 3 4 5 6]
        );
    }
    #[cfg(target_arch = "x86_64")]
    if avx2_here() {
        // SAFETY: the caller's contract; `avx2_here()` says the CPU has avx2 and fma.
        return unsafe { tile_avx2(g, x, w, bias, out, ob0, nb, p, t) };
    }
    // SAFETY: the caller's contract.
    unsafe { tile_portable(g, x, w, bias, out, ob0, nb, p, t) }
}

/// The input's pixel step for full tiles: `sx·xs` on a blocked input (16 or 32 floats, the
/// block's 16 input channels adjacent), `sx` on an NCHW one with unit column stride, else 0
/// (read from the geometry).
#[cfg(target_arch = "x86_64")]
fn pixel_step(g: &Geom) -> usize {
    if g.cbw == BLOCK && g.js == 1 {
        g.sx * g.xs
    } else if g.xs == 1 {
        g.sx
    } else {
        0
    }
}

/// Set while a test runs the portable kernel on a CPU with AVX2 ([`portable_only`]).
#[cfg(test)]
static PORTABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`tile`] takes the AVX2 build (where AVX-512 is not there or is off).
#[cfg(target_arch = "x86_64")]
fn avx2_here() -> bool {
    #[cfg(test)]
    if PORTABLE.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    crate::kernel::simd()
}

/// Runs `f` with the blocked kernel's portable build where the CPU would take a SIMD one (a
/// test of the portable build, under [`crate::kernel::avx2_only`]'s turn).
#[cfg(test)]
fn portable_only<R>(f: impl FnOnce() -> R) -> R {
    use std::sync::atomic::Ordering;
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            PORTABLE.store(false, Ordering::Relaxed);
        }
    }
    crate::kernel::avx2_only(|| {
        PORTABLE.store(true, Ordering::Relaxed);
        let _reset = Reset;
        f()
    })
}

/// Pixels × blocks of an AVX2 tile ([`tile256`]): 6 accumulator pairs of the 16 ymm registers.
const TILE_ACC_AVX2: usize = 6;

/// [`tile`] on AVX2 + FMA: the tile split into [`tile256`]'s tiles of at most 2 blocks ×
/// [`TILE_ACC_AVX2`] / blocks pixels; each output's sum is the same, in the same order.
///
/// # Safety
/// As [`tile`]; the CPU must support avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx2(
    g: &Geom,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    out: *mut f32,
    ob0: usize,
    nb: usize,
    p: usize,
    t: &Tile,
) {
    let step = pixel_step(g);
    for b0 in (0..nb).step_by(2) {
        let bn = 2.min(nb - b0);
        let pm = TILE_ACC_AVX2 / bn;
        for q0 in (0..p).step_by(pm) {
            let pn = pm.min(p - q0);
            let t = Tile { ox: t.ox + q0, ..*t };
            let ob = ob0 + b0;
            macro_rules! dispatch {
                ($($b:literal => [$($p:literal)*]),*) => {
                    match (bn, pn, step) {
                        // SAFETY: the caller's contract for blocks `ob..ob + bn` and pixels
                        // `t.ox..t.ox + pn` (inside the caller's), with `bn = B`, `pn = P` and the
                        // input's pixel step `STEP`; the CPU has avx2 and fma.
                        $($(($b, $p, 16) => unsafe { tile256::<$b, $p, 16>(g, x, w, bias, out, ob, &t) },
                        // SAFETY: as above.
                        ($b, $p, 32) => unsafe { tile256::<$b, $p, 32>(g, x, w, bias, out, ob, &t) },
                        // SAFETY: as above, the step read from `g`.
                        ($b, $p, _) => unsafe { tile256::<$b, $p, 0>(g, x, w, bias, out, ob, &t) },)*)*
                        // SAFETY: as above, lane by lane (no other sizes: bn ≤ 2, pn ≤ 6 / bn).
                        _ => unsafe { tile_portable(g, x, w, bias, out, ob, bn, pn, &t) },
                    }
                };
            }
            dispatch!(1 => [1 2 3 4 5 6], 2 => [1 2 3]);
        }
    }
}

/// The AVX2 build of [`tile`]: `B` blocks × `P` pixels of sums in pairs of ymm registers, as
/// [`tile512`] (the same fused multiply-adds in the same order, so the same values). `STEP`,
/// when not 0, is the input's pixel step on a blocked input (16 or 32).
///
/// # Safety
/// As [`tile`], with `nb = B`, `p = P`; the CPU must support avx2 and fma; a non-zero `STEP`
/// is the pixel step of a blocked input.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile256<const B: usize, const P: usize, const STEP: usize>(
    g: &Geom,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    out: *mut f32,
    ob0: usize,
    t: &Tile,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract keeps every offset inside its operand (see `Tile`) and
    // the CPU runs avx2 and fma.
    unsafe {
        let plane = g.oh * g.ow * BLOCK;
        let o = out.add(ob0 * plane + (t.oy * g.ow + t.ox) * BLOCK);
        let mut acc = [[[_mm256_setzero_ps(); 2]; B]; P];
        let (step, cbw, js) = if STEP >= BLOCK {
            (STEP, BLOCK, 1)
        } else {
            (g.sx * g.xs, g.cbw, g.js)
        };
        let wbase = w.add(ob0 * g.wob);
        for cb in t.cb.0..t.cb.1 {
            for ky in t.ky.0..t.ky.1 {
                let iy = t.oy * g.sy + ky - g.pt;
                let xrow = x.add(cb * g.cbs + iy * g.ys);
                for kx in t.kx.0..t.kx.1 {
                    let xp = xrow.add((t.ox * g.sx + kx - g.pl) * g.xs);
                    let wp = wbase.add(((cb * g.kh + ky) * g.kw + kx) * cbw * BLOCK);
                    for j in 0..cbw {
                        let mut wv = [[_mm256_setzero_ps(); 2]; B];
                        for (b, v) in wv.iter_mut().enumerate() {
                            let p = wp.add(b * g.wob + j * BLOCK);
                            *v = [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))];
                        }
                        let xj = xp.add(j * js);
                        for (q, row) in acc.iter_mut().enumerate() {
                            let v = _mm256_set1_ps(*xj.add(q * step));
                            for (a, wb) in row.iter_mut().zip(&wv) {
                                a[0] = _mm256_fmadd_ps(v, wb[0], a[0]);
                                a[1] = _mm256_fmadd_ps(v, wb[1], a[1]);
                            }
                        }
                    }
                }
            }
        }
        for (q, row) in acc.iter().enumerate() {
            for (b, a) in row.iter().enumerate() {
                for (h, ah) in a.iter().enumerate() {
                    let at = o.add(b * plane + q * BLOCK + 8 * h);
                    let v = if t.first {
                        *ah
                    } else {
                        _mm256_add_ps(_mm256_loadu_ps(at), *ah)
                    };
                    let v = if t.last {
                        _mm256_add_ps(v, _mm256_loadu_ps(bias.add((ob0 + b) * BLOCK + 8 * h)))
                    } else {
                        v
                    };
                    _mm256_storeu_ps(at, v);
                }
            }
        }
    }
}

/// The portable build of [`tile`]: the same sums in the same order, lane by lane.
///
/// # Safety
/// As [`tile`].
#[allow(clippy::too_many_arguments)]
unsafe fn tile_portable(
    g: &Geom,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    out: *mut f32,
    ob0: usize,
    nb: usize,
    p: usize,
    t: &Tile,
) {
    // SAFETY: the caller's contract keeps every offset inside its operand (see `Tile`).
    unsafe {
        let plane = g.oh * g.ow * BLOCK;
        for b in 0..nb {
            let ob = ob0 + b;
            for q in 0..p {
                let o = out.add(ob * plane + (t.oy * g.ow + t.ox + q) * BLOCK);
                let mut acc = [0f32; BLOCK];
                for cb in t.cb.0..t.cb.1 {
                    for ky in t.ky.0..t.ky.1 {
                        let iy = t.oy * g.sy + ky - g.pt;
                        for kx in t.kx.0..t.kx.1 {
                            let ix = (t.ox + q) * g.sx + kx - g.pl;
                            let xp = x.add(cb * g.cbs + iy * g.ys + ix * g.xs);
                            let wp = w.add(ob * g.wob + ((cb * g.kh + ky) * g.kw + kx) * g.cbw * BLOCK);
                            for j in 0..g.cbw {
                                let v = *xp.add(j * g.js);
                                for (l, a) in acc.iter_mut().enumerate() {
                                    *a = v.mul_add(*wp.add(j * BLOCK + l), *a);
                                }
                            }
                        }
                    }
                }
                for (l, a) in acc.iter().enumerate() {
                    let v = if t.first { *a } else { *o.add(l) + *a };
                    *o.add(l) = if t.last { v + *bias.add(ob * BLOCK + l) } else { v };
                }
            }
        }
    }
}

/// The AVX-512 build of [`tile`]: `B` blocks × `P` pixels of sums in registers. `STEP`, when
/// not 0, is the input's pixel step (`sx·xs`): 16 or 32 on a blocked input (16 input channels
/// per block, adjacent, so the block's loop unrolls with fixed displacements), 1 or 2 on an
/// NCHW one.
///
/// # Safety
/// As [`tile`], with `nb = B`, `p = P`; the CPU must support avx512f; a non-zero `STEP` is the
/// input's pixel step, at least 16 only on a blocked input.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tile512<const B: usize, const P: usize, const STEP: usize>(
    g: &Geom,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    out: *mut f32,
    ob0: usize,
    t: &Tile,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract keeps every offset inside its operand (see `Tile`) and
    // the CPU runs avx512f.
    unsafe {
        let plane = g.oh * g.ow * BLOCK;
        let o = out.add(ob0 * plane + (t.oy * g.ow + t.ox) * BLOCK);
        let mut acc = [[_mm512_setzero_ps(); B]; P];
        let (step, cbw, js) = if STEP >= BLOCK {
            (STEP, BLOCK, 1)
        } else if STEP > 0 {
            (STEP, g.cbw, g.js)
        } else {
            (g.sx * g.xs, g.cbw, g.js)
        };
        let wbase = w.add(ob0 * g.wob);
        for cb in t.cb.0..t.cb.1 {
            for ky in t.ky.0..t.ky.1 {
                let iy = t.oy * g.sy + ky - g.pt;
                let xrow = x.add(cb * g.cbs + iy * g.ys);
                for kx in t.kx.0..t.kx.1 {
                    let xp = xrow.add((t.ox * g.sx + kx - g.pl) * g.xs);
                    let wp = wbase.add(((cb * g.kh + ky) * g.kw + kx) * cbw * BLOCK);
                    let mut wps = [wp; B];
                    for (b, v) in wps.iter_mut().enumerate() {
                        *v = wp.add(b * g.wob);
                    }
                    for j in 0..cbw {
                        let mut wv = [_mm512_setzero_ps(); B];
                        for (v, p) in wv.iter_mut().zip(&wps) {
                            *v = _mm512_loadu_ps(p.add(j * BLOCK));
                        }
                        let xj = xp.add(j * js);
                        for (q, row) in acc.iter_mut().enumerate() {
                            let v = _mm512_set1_ps(*xj.add(q * step));
                            for (a, wb) in row.iter_mut().zip(&wv) {
                                *a = _mm512_fmadd_ps(v, *wb, *a);
                            }
                        }
                    }
                }
            }
        }
        for (q, row) in acc.iter().enumerate() {
            for (b, a) in row.iter().enumerate() {
                let at = o.add(b * plane + q * BLOCK);
                let v = if t.first {
                    *a
                } else {
                    _mm512_add_ps(_mm512_loadu_ps(at), *a)
                };
                let v = if t.last {
                    _mm512_add_ps(v, _mm512_loadu_ps(bias.add((ob0 + b) * BLOCK)))
                } else {
                    v
                };
                _mm512_storeu_ps(at, v);
            }
        }
    }
}

/// Per (image, block) task of a blocked pointwise-in-channels op: `f(in_block, out_block)` over
/// every image and block of `x` and `out` (both blocked, channels contiguous per image), in
/// parallel when the output is large.
fn per_block(
    op: &'static str,
    x: &ArrayView4<f32>,
    out: &mut ndarray::ArrayViewMut4<f32>,
    f: impl Fn(&[f32], &mut [f32]) + Sync,
) -> Result<()> {
    let [n, c, h, w] = shape4(x);
    let [_, _, oh, ow] = shape4(out);
    whole_blocks(op, [n, c, h, w])?;
    let src = images(x, op)?;
    let dst = images_mut(out, op)?;
    let (ib, ob) = (h * w * BLOCK, oh * ow * BLOCK);
    let run = |t: usize| {
        let (img, cb) = (t / (c / BLOCK), t % (c / BLOCK));
        // SAFETY: block `cb` of image `img` of the output is this task's alone and lies inside
        // the view (`images_mut`).
        let o = unsafe { std::slice::from_raw_parts_mut(dst.get(img).add(cb * ob), ob) };
        f(&src.img(img)[cb * ib..][..ib], o);
    };
    let tasks = n * (c / BLOCK);
    if tasks * ob >= 1 << 16 {
        (0..tasks).into_par_iter().for_each(run);
    } else {
        (0..tasks).for_each(run);
    }
    Ok(())
}

/// [`crate::max_pool2d`] of a blocked tensor, into a new blocked one.
pub fn max_pool2d_blocked(x: ArrayView4<f32>, p: &crate::Pool2dParams) -> Result<Tensor> {
    let mut y = crate::try_output(crate::pool2d_out_shape(shape4(&x), p)?, "max_pool2d")?;
    max_pool2d_blocked_into(x, p, y.view_mut())?;
    Ok(y)
}

/// [`max_pool2d_blocked`] into `out` (blocked, of the output's shape, its channels contiguous
/// per image). The window's taps inside the input, each lane's maximum by PyTorch's rule
/// (`crate::pool`'s `nan_max`: NaN wins), from −∞.
pub fn max_pool2d_blocked_into(
    x: ArrayView4<f32>,
    p: &crate::Pool2dParams,
    mut out: ndarray::ArrayViewMut4<f32>,
) -> Result<()> {
    const OP: &str = "max_pool2d";
    let [_, _, h, w] = shape4(&x);
    let os = crate::pool2d_out_shape(shape4(&x), p)?;
    out_view(OP, os, &out)?;
    let [_, _, oh, ow] = os;
    let ([kh, kw], [sy, sx], [py, px], [dy, dx]) = (p.kernel, p.stride, p.padding, p.dilation);
    per_block(OP, &x, &mut out, |xb, ob| {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = [f32::NEG_INFINITY; BLOCK];
                for ky in 0..kh {
                    let iy = (oy * sy + ky * dy).wrapping_sub(py);
                    if iy >= h {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * sx + kx * dx).wrapping_sub(px);
                        if ix >= w {
                            continue;
                        }
                        let v = &xb[(iy * w + ix) * BLOCK..][..BLOCK];
                        for (a, &v) in acc.iter_mut().zip(v) {
                            *a = crate::pool::nan_max(*a, v);
                        }
                    }
                }
                ob[(oy * ow + ox) * BLOCK..][..BLOCK].copy_from_slice(&acc);
            }
        }
    })
}

/// [`crate::upsample_nearest`] of a blocked tensor, into a new blocked one.
pub fn upsample_nearest_blocked(x: ArrayView4<f32>, r: crate::Resize) -> Result<Tensor> {
    let mut y = crate::try_output(crate::resize_out_shape(shape4(&x), r)?, "upsample_nearest")?;
    upsample_nearest_blocked_into(x, r, y.view_mut())?;
    Ok(y)
}

/// [`upsample_nearest_blocked`] into `out` (blocked, of the output's shape, its channels
/// contiguous per image): each output pixel's 16 channels copied from the source pixel of
/// PyTorch's `nearest_idx` (`crate::resize`'s, the rule of the NCHW op).
pub fn upsample_nearest_blocked_into(
    x: ArrayView4<f32>,
    r: crate::Resize,
    mut out: ndarray::ArrayViewMut4<f32>,
) -> Result<()> {
    const OP: &str = "upsample_nearest";
    let [_, _, h, w] = shape4(&x);
    let os = crate::resize_out_shape(shape4(&x), r)?;
    out_view(OP, os, &out)?;
    let [_, _, oh, ow] = os;
    let [sc_h, sc_w] = crate::resize::scales(r);
    per_block(OP, &x, &mut out, |xb, ob| {
        for oy in 0..oh {
            let iy = crate::resize::nearest_idx(oy, h, oh, sc_h);
            let src = &xb[iy * w * BLOCK..][..w * BLOCK];
            let dst = &mut ob[oy * ow * BLOCK..][..ow * BLOCK];
            for (ox, px) in dst.chunks_exact_mut(BLOCK).enumerate() {
                let ix = crate::resize::nearest_idx(ox, w, ow, sc_w);
                px.copy_from_slice(&src[ix * BLOCK..][..BLOCK]);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{conv2d, Init};

    /// `conv2d` (NCHW) and `BlockedConv` (blocked in and out) agree within float32 summation
    /// error on every geometry the generated code would send, including edges, strides,
    /// asymmetric padding, an NCHW stem input, residuals and batches.
    #[test]
    fn blocked_conv_matches_conv2d() {
        type Case = (usize, usize, usize, usize, usize, usize, [usize; 4]);
        let cases: &[Case] = &[
            // (n, cout, cin, hw, k, stride, padding)
            (1, 32, 32, 20, 1, 1, [0; 4]),
            (2, 64, 48, 9, 1, 1, [0; 4]),
            (1, 80, 16, 13, 3, 1, [1; 4]),
            (1, 32, 16, 17, 3, 2, [1; 4]),
            (2, 16, 32, 11, 3, 2, [0, 1, 2, 0]),
            (1, 48, 3, 23, 3, 2, [1; 4]),
            (1, 16, 3, 29, 7, 2, [3; 4]),
            (1, 96, 64, 7, 3, 1, [1; 4]),
            // Winograd over batches: bands that span images, and (fewer tiles than output
            // channels) one block of every image's tiles
            (3, 32, 16, 7, 3, 1, [1; 4]),
            (2, 128, 32, 6, 3, 1, [1; 4]),
            (1, 16, 16, 2, 5, 1, [2; 4]),
            (1, 256, 160, 5, 1, 2, [0; 4]),
        ];
        let mut init = Init::new(3);
        for &(n, cout, cin, hw, k, s, pad) in cases {
            for (act, res) in [
                (Activation::Identity, None),
                (Activation::Silu, Some(false)),
                (Activation::Relu, Some(true)),
            ] {
                let x = init
                    .uniform(&[n, cin, hw, hw + 1], -1.0, 1.0)
                    .into_dimensionality()
                    .unwrap();
                let wt = init.conv_weight([cout, cin, k, k]);
                let b = init.conv_bias(cin * k * k, cout);
                let p = Conv2dParams {
                    stride: [s, s],
                    padding: pad,
                    act,
                    ..Default::default()
                };
                let plain = Conv2dParams {
                    act: Activation::Identity,
                    ..p
                };
                let mut want = conv2d(x.view(), wt.view(), Some(b.view()), &plain).unwrap();
                let os = shape4(&want);
                let r: Tensor = init.uniform(&os, -1.0, 1.0).into_dimensionality().unwrap();
                match res {
                    Some(false) => want.zip_mut_with(&r, |v, &r| *v = crate::apply(act, *v + r)),
                    Some(true) => want.zip_mut_with(&r, |v, &r| *v = crate::apply(act, *v) + r),
                    None => want.mapv_inplace(|v| crate::apply(act, v)),
                }
                let conv = BlockedConv::new(wt.clone(), Some(b.clone()), p).unwrap();
                let xb = if conv.blocked_input() {
                    to_blocked(x.view()).unwrap()
                } else {
                    x.clone()
                };
                let rb = to_blocked(r.view()).unwrap();
                let got = conv
                    .forward(xb.view(), res.map(|_| rb.view()), res == Some(true))
                    .unwrap();
                let got = from_blocked(got.view()).unwrap();
                let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
                let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                let taps = (cin * k * k) as f32;
                assert!(
                    err <= 4.0 * taps.sqrt() * f32::EPSILON * scale,
                    "n {n} {cout}<-{cin} {hw} k{k} s{s} {pad:?} {act:?} {res:?}: error {err} at scale {scale}"
                );
            }
        }
    }

    /// The portable kernel computes the same values as the AVX-512 one, bit for bit.
    #[test]
    fn portable_matches_simd() {
        let mut init = Init::new(9);
        let mut conv = |cout: usize, cin: usize, k: usize, stride: [usize; 2], padding: [usize; 4]| {
            let p = Conv2dParams {
                stride,
                padding,
                ..Default::default()
            };
            let wt = init.conv_weight([cout, cin, k, k]);
            BlockedConv::new(wt, Some(init.conv_bias(cin * k * k, cout)), p).unwrap()
        };
        // direct kernels at both pixel steps, an NCHW stem, a flat 1×1, then Winograd (odd
        // sizes: edge tiles on both paths); 48 output channels: 3 blocks (AVX2 pairs of 2 + 1)
        let cases = [
            conv(48, 32, 3, [2, 1], [1, 0, 2, 1]),
            conv(48, 32, 3, [1, 2], [1, 1, 1, 1]),
            conv(48, 3, 3, [2, 2], [1, 1, 1, 1]),
            conv(80, 32, 1, [1, 1], [0; 4]),
            conv(48, 32, 3, [1, 1], [1; 4]),
        ];
        let x: Tensor = init.uniform(&[2, 32, 9, 14], -1.0, 1.0).into_dimensionality().unwrap();
        let xb = to_blocked(x.view()).unwrap();
        let stem: Tensor = init.uniform(&[1, 3, 11, 13], -1.0, 1.0).into_dimensionality().unwrap();
        for (i, conv) in cases.iter().enumerate() {
            let x = if conv.blocked_input() { xb.view() } else { stem.view() };
            assert_eq!(conv.wino.is_some(), i == 4);
            let simd = conv.forward(x, None, false).unwrap();
            let avx2 = crate::kernel::avx2_only(|| conv.forward(x, None, false).unwrap());
            let portable = portable_only(|| conv.forward(x, None, false).unwrap());
            // the same fused multiply-adds and transforms in the same order
            assert_eq!(simd, portable, "case {i}");
            assert_eq!(avx2, portable, "case {i}");
        }
    }

    /// Reordering to blocks and back is the identity, and channel views of whole blocks are the
    /// same values in either layout.
    #[test]
    fn reorders_round_trip() {
        let mut init = Init::new(1);
        let x: Tensor = init.uniform(&[2, 48, 5, 7], -1.0, 1.0).into_dimensionality().unwrap();
        let b = to_blocked(x.view()).unwrap();
        assert_eq!(b[[0, 0, 0, 1]], x[[0, 1, 0, 0]]);
        assert_eq!(b[[1, 16, 0, 0]], x[[1, 16, 0, 0]]);
        assert_eq!(from_blocked(b.view()).unwrap(), x);
        let part = crate::channels(b.view(), 16, 32).unwrap();
        let back = from_blocked(part).unwrap();
        assert_eq!(back, crate::channels(x.view(), 16, 32).unwrap());
        assert!(to_blocked(x.slice(ndarray::s![.., ..40, .., ..])).is_err());
    }

    /// The blocked max pool and nearest upsample equal the NCHW ops exactly (NaN included), on
    /// whole tensors and into a concat's channel range.
    #[test]
    fn blocked_pool_and_upsample_match() {
        let mut init = Init::new(4);
        let mut x: Tensor = init.uniform(&[2, 32, 13, 10], -1.0, 1.0).into_dimensionality().unwrap();
        x[[1, 17, 4, 4]] = f32::NAN;
        let xb = to_blocked(x.view()).unwrap();
        let pools = [
            crate::Pool2dParams {
                kernel: [5, 5],
                stride: [1, 1],
                padding: [2, 2],
                ..crate::Pool2dParams::square(5)
            },
            crate::Pool2dParams {
                kernel: [3, 3],
                stride: [2, 2],
                padding: [1, 1],
                ceil_mode: true,
                dilation: [1, 2],
                ..crate::Pool2dParams::square(3)
            },
        ];
        let same =
            |a: &Tensor, b: &Tensor| a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        for p in &pools {
            let want = crate::max_pool2d(x.view(), p).unwrap();
            let got = from_blocked(max_pool2d_blocked(xb.view(), p).unwrap().view()).unwrap();
            assert!(same(&got, &want), "{p:?}");
        }
        for r in [
            crate::Resize::Scale([2.0, 2.0]),
            crate::Resize::Size([20, 31]),
            crate::Resize::Scale([1.5, 3.0]),
        ] {
            let want = crate::upsample_nearest(x.view(), r).unwrap();
            let got = from_blocked(upsample_nearest_blocked(xb.view(), r).unwrap().view()).unwrap();
            assert!(same(&got, &want), "{r:?}");
        }
        // into channels 16..48 of a 64-channel buffer (batch 2: the part is strided per image)
        let mut buf = Tensor::zeros([2, 64, 26, 20]);
        upsample_nearest_blocked_into(
            xb.view(),
            crate::Resize::Scale([2.0, 2.0]),
            crate::channels_mut(&mut buf, 16, 32).unwrap(),
        )
        .unwrap();
        let part = from_blocked(crate::channels(buf.view(), 16, 32).unwrap()).unwrap();
        assert!(same(
            &part,
            &crate::upsample_nearest(x.view(), crate::Resize::Scale([2.0, 2.0])).unwrap()
        ));
    }

    /// `Conv2d::forward_blocked_into` a whole-block channel range of a batch-2 buffer (a
    /// concat's part, strided per image), with a residual after the activation, equals the NCHW
    /// conv; a conv with groups is refused.
    /// Winograd's task split: the output blocks over the threads where the weights outweigh
    /// the tiles (each weight read once per call), else bands of tile rows in multiples of the
    /// threads, with parts of the output blocks only while bands are few.
    #[test]
    fn winograd_split() {
        // 512←512 at 8² (seed 003): 16 tiles, 32 blocks: one block of all tiles, 2 parts
        let s = split(16, 4, 4, 512, 32, 2);
        assert_eq!((s.bands, s.parts, s.tiles), (1, 2, 16));
        // the same at batch 8: 128 tiles, still fewer than the 512 output channels
        assert_eq!(
            split(128, 32, 4, 512, 32, 2),
            Split {
                bands: 1,
                parts: 2,
                tiles: 128
            }
        );
        // 128←128 at 64²: 1024 tiles in bands of 3 rows (96-tile blocks), 12 bands on 2 threads
        let s = split(1024, 32, 32, 128, 8, 2);
        assert_eq!((s.bands, s.parts, s.tiles), (12, 1, 96));
        // 64←64 at 20² on 2 threads: 100 tiles ≥ 64 channels; 2 bands of 5 rows, and one
        // group of output blocks, so one part
        let s = split(100, 10, 10, 64, 4, 2);
        assert_eq!((s.bands, s.parts), (2, 1));
        // one output group: never more parts than groups
        assert_eq!(split(16, 4, 4, 64, 4, 2).parts, 1);
    }

    /// A conv prepared for blocked calls only (`Conv2d::new_blocked`) computes what one
    /// prepared for both does, blocked and NCHW, without the NCHW Winograd transform and, on
    /// Winograd's path, without the direct kernel's packing; one that cannot be blocked is an
    /// error at construction.
    #[test]
    fn conv_prepared_for_blocked_calls_only() {
        let mut init = Init::new(8);
        let x: Tensor = init.uniform(&[1, 32, 10, 9], -1.0, 1.0).into_dimensionality().unwrap();
        let xb = to_blocked(x.view()).unwrap();
        let opts = crate::ConvOpts::default();
        for (k, s) in [(3, 1), (3, 2), (1, 1)] {
            let p = Conv2dParams {
                stride: [s, s],
                padding: [k / 2; 4],
                act: Activation::Relu,
                ..Default::default()
            };
            let (w, b) = (init.conv_weight([32, 32, k, k]), init.conv_bias(32 * k * k, 32));
            let both = crate::Conv2d::new(w.clone(), Some(b.clone()), p).unwrap();
            let only = crate::Conv2d::new_blocked(w.clone(), Some(b.clone()), p).unwrap();
            assert!(only.wino.is_none());
            let blocked = only.blocked.get().and_then(|c| c.as_ref()).unwrap();
            assert_eq!(blocked.wino.is_some(), (k, s) == (3, 1));
            assert_eq!(blocked.packed.is_empty(), blocked.wino.is_some());
            let want = both.forward_blocked(xb.view(), &opts).unwrap();
            assert_eq!(only.forward_blocked(xb.view(), &opts).unwrap(), want);
            // the NCHW call still computes the conv (on the GEMM path for a 3×3 stride 1)
            let nchw = only.forward(x.view(), &opts).unwrap();
            let plain = conv2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
            let err = nchw.iter().zip(&plain).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 1e-5, "{k}x{k}/{s}: {err}");
        }
        let grouped = Conv2dParams {
            groups: 2,
            ..Default::default()
        };
        let w = init.conv_weight([16, 16, 3, 3]);
        assert!(crate::Conv2d::new_blocked(w.clone(), None, grouped).is_err());
        let deferred = crate::Conv2d::new_deferred_blocked(w, None, grouped);
        assert!(deferred.forward_blocked(xb.view(), &opts).is_err());
    }

    #[test]
    fn prepared_conv_blocked_into_a_part() {
        let mut init = Init::new(6);
        let x: Tensor = init.uniform(&[2, 32, 12, 12], -1.0, 1.0).into_dimensionality().unwrap();
        let r: Tensor = init.uniform(&[2, 16, 12, 12], -1.0, 1.0).into_dimensionality().unwrap();
        let p = Conv2dParams {
            padding: [1; 4],
            act: Activation::Silu,
            ..Default::default()
        };
        let conv = crate::Conv2d::new(init.conv_weight([16, 32, 3, 3]), Some(init.conv_bias(288, 16)), p).unwrap();
        let opts = crate::ConvOpts {
            residual: Some(r.view()),
            residual_after_act: true,
            ..Default::default()
        };
        let want = conv.forward(x.view(), &opts).unwrap();
        let (xb, rb) = (to_blocked(x.view()).unwrap(), to_blocked(r.view()).unwrap());
        let bopts = crate::ConvOpts {
            residual: Some(rb.view()),
            ..opts
        };
        let mut buf = Tensor::zeros([2, 48, 12, 12]);
        conv.forward_blocked_into(xb.view(), &bopts, crate::channels_mut(&mut buf, 32, 16).unwrap())
            .unwrap();
        let got = from_blocked(crate::channels(buf.view(), 32, 16).unwrap()).unwrap();
        let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(err < 1e-5, "{err}");
        assert!(buf.slice(ndarray::s![.., ..32, .., ..]).iter().all(|&v| v == 0.0));
        let grouped = Conv2dParams { groups: 2, ..p };
        let conv = crate::Conv2d::new(init.conv_weight([16, 16, 3, 3]), None, grouped).unwrap();
        assert!(conv.forward_blocked(xb.view(), &crate::ConvOpts::default()).is_err());
    }

    /// A blocked conv onto a sum equals the conv with the sum as a residual before the
    /// activation, on the direct kernel (several input chunks) and on Winograd.
    #[test]
    fn blocked_onto_matches_residual() {
        let mut init = Init::new(8);
        let x: Tensor = init.uniform(&[1, 288, 9, 11], -1.0, 1.0).into_dimensionality().unwrap();
        for k in [1, 3] {
            let p = Conv2dParams {
                padding: [k / 2; 4],
                act: Activation::Relu,
                ..Default::default()
            };
            let conv = crate::Conv2d::new(
                init.conv_weight([32, 288, k, k]),
                Some(init.conv_bias(288 * k * k, 32)),
                p,
            )
            .unwrap();
            let xb = to_blocked(x.view()).unwrap();
            let sum: Tensor = init.uniform(&[1, 32, 9, 11], -1.0, 1.0).into_dimensionality().unwrap();
            let want = conv
                .forward_blocked(
                    xb.view(),
                    &crate::ConvOpts {
                        residual: Some(sum.view()),
                        ..Default::default()
                    },
                )
                .unwrap();
            let got = conv
                .forward_blocked_onto(xb.view(), &crate::ConvOpts::default(), sum)
                .unwrap();
            let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
            let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err <= 8.0 * f32::EPSILON * scale, "k {k}: {err}");
        }
    }

    /// A conv from a blocked input to an NCHW output of channels not in whole blocks (a head's
    /// last conv: 1×1 and Winograd 3×3, into a batch-2 concat part) equals `conv2d`; it takes
    /// no residual.
    #[test]
    fn blocked_input_to_nchw_output() {
        let mut init = Init::new(12);
        let x: Tensor = init.uniform(&[2, 32, 9, 10], -1.0, 1.0).into_dimensionality().unwrap();
        let xb = to_blocked(x.view()).unwrap();
        for (cout, k) in [(9, 1), (40, 3), (3, 3)] {
            let p = Conv2dParams {
                padding: [k / 2; 4],
                act: Activation::Sigmoid,
                ..Default::default()
            };
            let (wt, b) = (init.conv_weight([cout, 32, k, k]), init.conv_bias(32 * k * k, cout));
            let want = conv2d(x.view(), wt.view(), Some(b.view()), &p).unwrap();
            let conv = BlockedConv::new(wt, Some(b), p).unwrap();
            assert!(!conv.blocked_output() && conv.wino.is_some() == (k == 3));
            let mut buf = Tensor::zeros([2, cout + 5, 9, 10]);
            conv.forward_into(xb.view(), None, false, crate::channels_mut(&mut buf, 5, cout).unwrap())
                .unwrap();
            let got = crate::channels(buf.view(), 5, cout).unwrap();
            let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 1e-5, "{cout} k{k}: {err}");
            assert!(buf.slice(ndarray::s![.., ..5, .., ..]).iter().all(|&v| v == 0.0));
            assert!(conv.forward(xb.view(), Some(want.view()), false).is_err());
        }
    }
}
