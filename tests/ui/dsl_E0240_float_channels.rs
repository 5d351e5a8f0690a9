// E0240: a channel count computed with a float width is a float.
fpn::fpn! {
    name: FloatWidth,
    params: { width: 0.25 },
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 64 * width, kernel: 3, padding: 1 } } },
    outputs: [stem],
}

fn main() {}
