// E0204: `cout` is only defined inside a block body.
fpn::fpn! {
    name: Param,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 2 * cout, kernel: 3 } } },
    outputs: [stem],
}

fn main() {}
