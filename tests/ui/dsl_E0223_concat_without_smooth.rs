// E0223: concat merges need a smoothing conv to bring channels back to `width`.
fpn::fpn! {
    name: ConcatSmooth,
    inputs: { c3: [64, 32, 32], c4: [128, 16, 16] },
    nodes: { neck: { fpn: { in: [c3, c4], width: 32, merge: concat, smooth: none } } },
    outputs: [neck.p3, neck.p4],
}

fn main() {}
