//! Deterministic parameter initialisation with PyTorch's default *distributions* (not its random
//! stream): a network built with the same seed always gets the same weights.

use ndarray::{Array1, Array4, ArrayD, IxDyn};

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

    /// A tensor of `shape` with values uniform in `[low, high)`.
    pub fn uniform(&mut self, shape: &[usize], low: f32, high: f32) -> ArrayD<f32> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || low + (high - low) * self.next_f32())
    }

    /// `nn.Conv2d`'s default weight init, `kaiming_uniform_(a=sqrt(5))`, which is
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with `fan_in = cin/groups · kh · kw` (`shape[1..]`).
    pub fn conv_weight(&mut self, shape: [usize; 4]) -> Array4<f32> {
        let fan_in = shape[1].saturating_mul(shape[2]).saturating_mul(shape[3]);
        let b = bound(fan_in);
        Array4::from_shape_simple_fn(shape, || -b + 2.0 * b * self.next_f32())
    }

    /// `nn.Conv2d`'s default bias init: `n` values from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`
    /// (all zero when `fan_in` is 0, like PyTorch).
    pub fn conv_bias(&mut self, fan_in: usize, n: usize) -> Array1<f32> {
        let b = bound(fan_in);
        Array1::from_shape_simple_fn(n, || -b + 2.0 * b * self.next_f32())
    }
}

/// `1 / sqrt(fan_in)`, or 0 for an empty fan-in.
fn bound(fan_in: usize) -> f32 {
    if fan_in == 0 {
        0.0
    } else {
        1.0 / (fan_in as f32).sqrt()
    }
}
