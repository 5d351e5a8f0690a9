// E0003: a 20-digit channel count does not fit in 64 bits.
fpn::fpn! {
    name: Huge,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 12345678901234567890, kernel: 3 } } },
    outputs: [stem],
}

fn main() {}
