// E0214: with two inputs, the first node must say which one it reads.
fpn::fpn! {
    name: NoInput,
    inputs: { a: [3, 32, 32], b: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3 } } },
    outputs: [stem],
}

fn main() {}
