// E0242: every scale must set the same parameters.
fpn::fpn! {
    name: "Family{scale}",
    scale: n,
    scales: { n: { width: 0.25, depth: 0.33 }, m: { width: 0.75 } },
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 8, kernel: 3, padding: 1 } } },
    outputs: [stem],
}

fn main() {}
