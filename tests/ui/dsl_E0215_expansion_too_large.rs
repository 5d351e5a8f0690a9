// E0215: blocks that double 17 times: 2^17 convs, more than the expansion limit.
fpn::fpn! {
    name: Explode,
    blocks: {
        b0: { body: [{ conv: { out: 4, kernel: 1 } }] },
        b1: { body: [b0, b0] },
        b2: { body: [b1, b1] },
        b3: { body: [b2, b2] },
        b4: { body: [b3, b3] },
        b5: { body: [b4, b4] },
        b6: { body: [b5, b5] },
        b7: { body: [b6, b6] },
        b8: { body: [b7, b7] },
        b9: { body: [b8, b8] },
        b10: { body: [b9, b9] },
        b11: { body: [b10, b10] },
        b12: { body: [b11, b11] },
        b13: { body: [b12, b12] },
        b14: { body: [b13, b13] },
        b15: { body: [b14, b14] },
        b16: { body: [b15, b15] },
        b17: { body: [b16, b16] },
    },
    inputs: { x: [3, 8, 8] },
    nodes: { big: b17 },
    outputs: [big],
}

fn main() {}
