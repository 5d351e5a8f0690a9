// E0324: H is bounded to 1..4 but the 7×7 unpadded conv needs H ≥ 7.
fpn::fpn! {
    name: NoSize,
    symbols: { H: 1..4 },
    inputs: { x: [3, H, 64] },
    nodes: { stem: { conv: { out: 16, kernel: 7 } } },
    outputs: [stem],
}

fn main() {}
