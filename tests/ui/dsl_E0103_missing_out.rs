// E0103: a conv without its output channels.
fpn::fpn! {
    name: NoOut,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { kernel: 3, padding: 1 } } },
    outputs: [stem],
}

fn main() {}
