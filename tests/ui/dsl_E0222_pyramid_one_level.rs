// E0222: a pyramid over one level.
fpn::fpn! {
    name: OneLevel,
    inputs: { c3: [64, 32, 32] },
    nodes: { neck: { fpn: { in: [c3], width: 32 } } },
    outputs: [neck.p3],
}

fn main() {}
