// E0108: `reflection` is not a padding mode (PyTorch calls it `reflect`).
fpn::fpn! {
    name: BadMode,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernel: 3, padding: 1, padding_mode: reflection } } },
    outputs: [stem],
}

fn main() {}
