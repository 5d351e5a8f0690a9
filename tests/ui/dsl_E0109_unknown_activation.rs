// E0109: a conv-norm-activation with a misspelt activation.
fpn::fpn! {
    name: BadAct,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { cna: { out: 16, kernel: 3, act: rleu } } },
    outputs: [stem],
}

fn main() {}
