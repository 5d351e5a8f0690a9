// E0219: `padding: same` on a strided conv (PyTorch rejects it).
fpn::fpn! {
    name: SameStride,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3, stride: 2, padding: same } } },
    outputs: [stem],
}

fn main() {}
