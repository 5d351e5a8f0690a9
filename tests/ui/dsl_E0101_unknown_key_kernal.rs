// E0101: a misspelt conv attribute: `kernal` for `kernel`.
fpn::fpn! {
    name: Typo,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernal: 3, padding: 1 } } },
    outputs: [stem],
}

fn main() {}
