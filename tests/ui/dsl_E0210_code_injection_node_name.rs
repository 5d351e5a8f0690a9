// E0210: a node name that would inject code into the generated Rust.
fpn::fpn! {
    name: Inject,
    inputs: { x: [3, 32, 32] },
    nodes: { "x; std::process::exit(1)": { conv: { out: 16, kernel: 3, padding: 1 } } },
    outputs: { y: "x; std::process::exit(1)" },
}

fn main() {}
