// E0102: a stride given as a fraction.
fpn::fpn! {
    name: BadStride,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3, stride: 1.5 } } },
    outputs: [stem],
}

fn main() {}
