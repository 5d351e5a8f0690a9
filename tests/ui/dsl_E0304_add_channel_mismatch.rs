// E0304: a sum of a 16-channel and a 32-channel tensor.
fpn::fpn! {
    name: AddMismatch,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3, padding: 1 } },
        wide: { conv: { out: 32, kernel: 3, padding: 1 } },
        sum: { add: [stem, wide] },
    },
    outputs: [sum],
}

fn main() {}
