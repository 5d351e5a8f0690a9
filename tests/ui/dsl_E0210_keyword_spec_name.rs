// E0210: the spec name is a Rust keyword.
fpn::fpn! {
    name: struct,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3, padding: 1 } } },
    outputs: [stem],
}

fn main() {}
