// E0212: an input with a negative height.
fpn::fpn! {
    name: NegSize,
    inputs: { x: [3, -32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3, padding: 1 } } },
    outputs: [stem],
}

fn main() {}
