// E0202: a node named like the input.
fpn::fpn! {
    name: Dup,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3, padding: 1 } },
        x: relu,
    },
    outputs: [x],
}

fn main() {}
