// E0107: a misspelt op name gets a suggestion.
fpn::fpn! {
    name: OpTypo,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3, padding: 1 } },
        act: sigmod,
    },
    outputs: [act],
}

fn main() {}
