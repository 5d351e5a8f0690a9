// E0221: there is no ResNet-20 preset.
fpn::fpn! {
    name: Res,
    inputs: { x: [3, 64, 64] },
    nodes: { backbone: { resnet: { depth: 20 } } },
    outputs: [backbone.c5],
}

fn main() {}
