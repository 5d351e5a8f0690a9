// E0218: a sequence step that is a multi-output op (a ResNet).
fpn::fpn! {
    name: SeqMulti,
    inputs: { x: [3, 64, 64] },
    nodes: { body: { seq: [{ conv: { out: 3, kernel: 1 } }, { resnet: { depth: 18 } }] } },
    outputs: [body],
}

fn main() {}
