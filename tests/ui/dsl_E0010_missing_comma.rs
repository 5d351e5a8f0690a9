// E0010: a missing `,` between two entries of the top-level map.
fpn::fpn! {
    name: Syntax,
    inputs: { x: [3, 32, 32] }
    nodes: { stem: { conv: { out: 16, kernel: 3 } } },
    outputs: [stem],
}

fn main() {}
