// E0311: one shared head on a 64-channel and a 128-channel level.
fpn::fpn! {
    name: SharedHead,
    inputs: { c3: [64, 32, 32], c4: [128, 16, 16] },
    nodes: { cls: { head: { on: [c3, c4], body: [{ conv: { out: 9, kernel: 3, padding: 1 } }] } } },
    outputs: [cls.c3, cls.c4],
}

fn main() {}
