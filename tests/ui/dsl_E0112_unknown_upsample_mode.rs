// E0112: `bilinaer` is not an upsample mode.
fpn::fpn! {
    name: UpMode,
    inputs: { x: [3, 32, 32] },
    nodes: { up: { upsample: { scale: 2, mode: bilinaer } } },
    outputs: [up],
}

fn main() {}
