// E0213: an absurd upsample scale.
fpn::fpn! {
    name: Scale,
    inputs: { x: [3, 32, 32] },
    nodes: { up: { upsample: 1e300 } },
    outputs: [up],
}

fn main() {}
