// E0104: `x.` names no output: a reference is `name` or `name.output`.
fpn::fpn! {
    name: BadRef,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { from: x., conv: { out: 16, kernel: 3 } } },
    outputs: [stem],
}

fn main() {}
