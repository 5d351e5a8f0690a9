// E0201: `stme` refers to a node that does not exist (`stem` does).
fpn::fpn! {
    name: BadRef,
    inputs: { x: [3, 32, 32] },
    nodes: {
        stem: { conv: { out: 16, kernel: 3, padding: 1 } },
        act: relu,
        merged: { add: [act, stme] },
    },
    outputs: [merged],
}

fn main() {}
