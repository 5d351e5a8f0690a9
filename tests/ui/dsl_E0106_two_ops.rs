// E0106: one node with two ops.
fpn::fpn! {
    name: TwoOps,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3 }, relu: null } },
    outputs: [stem],
}

fn main() {}
