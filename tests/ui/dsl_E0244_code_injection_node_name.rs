// E0244: a node name that would be code in Rust is only a name, but it has weights and is not a
// `state_dict` path.
fpn::fpn! {
    name: Inject,
    inputs: { x: [3, 32, 32] },
    nodes: { "x; std::process::exit(1)": { conv: { out: 16, kernel: 3, padding: 1 } } },
    outputs: { y: "x; std::process::exit(1)" },
}

fn main() {}
