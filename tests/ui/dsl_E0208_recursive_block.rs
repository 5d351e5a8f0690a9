// E0208: a block that calls itself.
fpn::fpn! {
    name: Recursive,
    blocks: {
        again: {
            params: [c],
            body: [{ conv: { out: c, kernel: 1 } }, { again: { c: c } }],
        },
    },
    inputs: { x: [3, 32, 32] },
    nodes: { body: { again: { c: 8 } } },
    outputs: [body],
}

fn main() {}
