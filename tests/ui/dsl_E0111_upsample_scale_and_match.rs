// E0111: an upsample with both a scale and a target size (`match` is a keyword, still a key).
fpn::fpn! {
    name: UpBoth,
    inputs: { x: [3, 32, 32] },
    nodes: {
        down: { conv: { out: 3, kernel: 3, stride: 2, padding: 1 } },
        up: { upsample: { scale: 2, match: x } },
        sum: { add: [x, up] },
    },
    outputs: [sum],
}

fn main() {}
