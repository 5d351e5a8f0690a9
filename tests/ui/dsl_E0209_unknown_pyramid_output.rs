// E0209: the pyramid has outputs p3 and p4; `p5` does not exist.
fpn::fpn! {
    name: Outputs,
    inputs: { c3: [64, 32, 32], c4: [128, 16, 16] },
    nodes: { neck: { fpn: { in: [c3, c4], width: 32 } } },
    outputs: [neck.p3, neck.p5],
}

fn main() {}
