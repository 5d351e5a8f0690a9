// E0301: 2 groups divide 16 output channels but not the 3 input channels.
fpn::fpn! {
    name: GroupsIn,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3, padding: 1, groups: 2 } } },
    outputs: [stem],
}

fn main() {}
