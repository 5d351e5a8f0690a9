// E0105: an input given as [H, W] without channels.
fpn::fpn! {
    name: TwoSizes,
    inputs: { x: [32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3 } } },
    outputs: [stem],
}

fn main() {}
