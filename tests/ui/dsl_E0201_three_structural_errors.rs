// Three structural mistakes (E0201, E0210, E0212) in one build.
fpn::fpn! {
    name: ThreeStructural,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3, padding: 1 } },
        mid: { from: stme, conv: { out: 16, kernel: 3, padding: 1 } },
        fn: { from: stem, conv: { out: 0, kernel: 1 } },
    },
    outputs: { fn: fn },
}

fn main() {}
