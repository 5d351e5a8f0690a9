//! Deterministic parameter initialisation with PyTorch's default *distributions* (not its random
//! stream): a network built with the same seed always gets the same weights.

use ndarray::{Array1, Array4, ArrayD, IxDyn};

use crate::error::{Error, Result};

/// Seeded generator (xoshiro256++ seeded through splitmix64) for default layer initialisation.
#[derive(Clone, Debug)]
pub struct Init {
    s: [u64; 4],
}

impl Init {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut split = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            s: [split(), split(), split(), split()],
        }
    }

    /// Next raw 64-bit output (xoshiro256++).
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform f32 in `[0, 1)` with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// A tensor of `shape` with values uniform in `[low, high)`; an empty tensor (every
    /// dimension 0) if `shape` is too large to allocate (see [`Init::try_uniform`]).
    pub fn uniform(&mut self, shape: &[usize], low: f32, high: f32) -> ArrayD<f32> {
        self.try_uniform(shape, low, high)
            .unwrap_or_else(|_| ArrayD::zeros(IxDyn(&vec![0; shape.len()])))
    }

    /// [`Init::uniform`], or [`Error::InputSize`] if `shape` overflows or cannot be allocated
    /// (the generator is then left unchanged).
    pub fn try_uniform(&mut self, shape: &[usize], low: f32, high: f32) -> Result<ArrayD<f32>> {
        let v = self.try_fill(shape, |s| low + (high - low) * s.next_f32())?;
        ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|_| too_big(shape))
    }

    /// `len(shape)` values of `f`, or an error before drawing anything if they do not fit.
    fn try_fill(&mut self, shape: &[usize], mut f: impl FnMut(&mut Self) -> f32) -> Result<Vec<f32>> {
        let len = shape
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .filter(|&l| l <= isize::MAX as usize / std::mem::size_of::<f32>())
            .ok_or_else(|| too_big(shape))?;
        let mut v = Vec::new();
        v.try_reserve_exact(len).map_err(|_| too_big(shape))?;
        v.extend((0..len).map(|_| f(self)));
        Ok(v)
    }

    /// `nn.Conv2d`'s default weight init, `kaiming_uniform_(a=sqrt(5))`, which is
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with `fan_in = cin/groups · kh · kw` (`shape[1..]`).
    ///
    /// An empty tensor (shape `[0; 4]`) if `shape` is too large to allocate (see
    /// [`Init::try_conv_weight`]).
    pub fn conv_weight(&mut self, shape: [usize; 4]) -> Array4<f32> {
        self.try_conv_weight(shape).unwrap_or_else(|_| Array4::zeros([0; 4]))
    }

    /// [`Init::conv_weight`], or [`Error::InputSize`] if `shape` overflows or cannot be
    /// allocated (the generator is then left unchanged).
    pub fn try_conv_weight(&mut self, shape: [usize; 4]) -> Result<Array4<f32>> {
        let fan_in = shape[1].saturating_mul(shape[2]).saturating_mul(shape[3]);
        let b = bound(fan_in);
        let v = self.try_fill(&shape, |s| -b + 2.0 * b * s.next_f32())?;
        Array4::from_shape_vec(shape, v).map_err(|_| too_big(&shape))
    }

    /// `nn.Conv2d`'s default bias init: `n` values from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`
    /// (all zero when `fan_in` is 0, like PyTorch).
    ///
    /// An empty vector if `n` values cannot be allocated (see [`Init::try_conv_bias`]).
    pub fn conv_bias(&mut self, fan_in: usize, n: usize) -> Array1<f32> {
        self.try_conv_bias(fan_in, n).unwrap_or_else(|_| Array1::zeros(0))
    }

    /// [`Init::conv_bias`], or [`Error::InputSize`] if `n` values cannot be allocated (the
    /// generator is then left unchanged).
    pub fn try_conv_bias(&mut self, fan_in: usize, n: usize) -> Result<Array1<f32>> {
        let b = bound(fan_in);
        Ok(Array1::from_vec(self.try_fill(&[n], |s| -b + 2.0 * b * s.next_f32())?))
    }
}

/// The error for a shape that cannot be allocated.
fn too_big(shape: &[usize]) -> Error {
    Error::InputSize(format!("Init: a tensor of shape {shape:?} is too large to allocate"))
}

/// `1 / sqrt(fan_in)`, or 0 for an empty fan-in.
fn bound(fan_in: usize) -> f32 {
    if fan_in == 0 {
        0.0
    } else {
        1.0 / (fan_in as f32).sqrt()
    }
}
