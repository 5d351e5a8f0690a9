// E0102: an input written as a map instead of `[C, H, W]`.
fpn::fpn! {
    name: BadInput,
    inputs: { x: { c: 3, h: 32, w: 32 } },
    nodes: { stem: { conv: { out: 16, kernel: 3 } } },
    outputs: [stem],
}

fn main() {}
