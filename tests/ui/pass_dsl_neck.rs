// A small two-level FPN neck declared inline; init, forward and check the output shapes.
fpn::fpn! {
    name: SmallNeck,
    doc: "Two-level FPN neck over a tiny backbone.",
    inputs: { x: [3, 32, 32] },
    nodes: {
        c3: { cna: { out: 8, kernel: 3, stride: 2 } },
        c4: { cna: { out: 16, kernel: 3, stride: 2 } },
        neck: { fpn: { in: [c3, c4], width: 8 } },
    },
    outputs: [neck.p3, neck.p4],
}

fn main() -> Result<(), fpn::runtime::Error> {
    let model = SmallNeck::init(0);
    let x = fpn::runtime::Tensor::from_elem((2, 3, 32, 32), 0.5);
    let out = model.forward(SmallNeckInputs { x: x.view() })?;
    assert_eq!(out.p3.shape(), &[2, 8, 16, 16]);
    assert_eq!(out.p4.shape(), &[2, 8, 8, 8]);
    assert!(out.p3.iter().all(|v| v.is_finite()));
    Ok(())
}
