// E0004: two nodes under one name.
fpn::fpn! {
    name: DupKey,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3, padding: 1 } },
        stem: { conv: { out: 32, kernel: 3, padding: 1 } },
    },
    outputs: [stem],
}

fn main() {}
