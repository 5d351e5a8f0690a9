// E0210: the spec name becomes a Rust type name.
fpn::fpn! {
    name: "My Model",
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3, padding: 1 } } },
    outputs: [stem],
}

fn main() {}
