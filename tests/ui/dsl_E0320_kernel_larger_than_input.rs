// E0320: a 7×7 kernel on a 4×4 input without padding.
fpn::fpn! {
    name: BigKernel,
    inputs: { x: [3, 4, 4] },
    nodes: { stem: { conv: { out: 16, kernel: 7 } } },
    outputs: [stem],
}

fn main() {}
