// E0113: a pyramid whose lateral convs are of an unknown kind.
fpn::fpn! {
    name: Lateral,
    inputs: { c3: [64, 32, 32], c4: [128, 16, 16] },
    nodes: { neck: { fpn: { in: [c3, c4], width: 32, lateral: cnn } } },
    outputs: [neck.p3, neck.p4],
}

fn main() {}
