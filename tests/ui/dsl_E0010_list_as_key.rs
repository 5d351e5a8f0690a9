// E0010 (E0007 in YAML): a list used as a map key.
fpn::fpn! {
    name: ListKey,
    inputs: { [x, y]: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3 } } },
    outputs: [stem],
}

fn main() {}
