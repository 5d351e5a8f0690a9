// E0203: `a` reads `b` and `b` reads `a`.
fpn::fpn! {
    name: Cycle,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3, padding: 1 } },
        a: { from: b, conv: { out: 16, kernel: 3, padding: 1 } },
        b: { from: a, conv: { out: 16, kernel: 3, padding: 1 } },
        out: { add: [stem, b] },
    },
    outputs: [out],
}

fn main() {}
