// E0322: circular padding 3 on a 2×2 map.
fpn::fpn! {
    name: Circular,
    inputs: { x: [3, 2, 2] },
    nodes: { stem: { conv: { out: 16, kernel: 7, padding: 3, padding_mode: circular } } },
    outputs: [stem],
}

fn main() {}
