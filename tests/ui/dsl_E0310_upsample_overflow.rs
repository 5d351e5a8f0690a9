// E0310: an input of 2^63-1 rows upsampled ×2 overflows 64-bit arithmetic.
fpn::fpn! {
    name: Overflow,
    inputs: { x: [3, 9223372036854775807, 9223372036854775807] },
    nodes: { up: { upsample: 2 } },
    outputs: [up],
}

fn main() {}
