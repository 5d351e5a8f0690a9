// Three unrelated mistakes (E0101, E0108, E0109), all reported in one build.
fpn::fpn! {
    name: Three,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernal: 3 } },
        mid: { conv: { out: 16, kernel: 3, padding_mode: reflection } },
        head: { cna: { out: 16, kernel: 1, act: rleu } },
    },
    outputs: [head],
}

fn main() {}
