// E0220: 3 groups do not divide 16 output channels.
fpn::fpn! {
    name: Groups,
    inputs: { x: [12, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3, padding: 1, groups: 3 } } },
    outputs: [stem],
}

fn main() {}
