// E0241: `set:` picks a scale the spec does not have.
fpn::fpn! {
    set: { scale: xl },
    name: "Family{scale}",
    scale: n,
    scales: { n: { width: 0.25 }, x: { width: 1.25 } },
    params: { c: make_divisible(64 * width, 8) },
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: c, kernel: 3, padding: 1 } } },
    outputs: [stem],
}

fn main() {}
