// E0217: an add of a single tensor.
fpn::fpn! {
    name: AddOne,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3 } },
        sum: { add: [stem] },
    },
    outputs: [sum],
}

fn main() {}
