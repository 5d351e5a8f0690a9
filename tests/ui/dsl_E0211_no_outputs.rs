// E0211: a spec that returns nothing.
fpn::fpn! {
    name: NoOutputs,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3 } } },
    outputs: [],
}

fn main() {}
