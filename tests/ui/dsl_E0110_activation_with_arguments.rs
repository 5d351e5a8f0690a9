// E0110: `relu` takes no arguments.
fpn::fpn! {
    name: ReluArgs,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3 } },
        act: { relu: { inplace: true } },
    },
    outputs: [act],
}

fn main() {}
