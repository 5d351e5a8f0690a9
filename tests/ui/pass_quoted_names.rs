// Node names that are not identifiers: a checkpoint's `model.0`, `P3/out`, `3x3`. The outputs'
// fields are derived (`model_0`, `p3_out`), a path-like name is its weights' prefix.
fpn::fpn! {
    name: QuotedNames,
    inputs: { x: [4, 8, 8] },
    nodes: {
        "model.0": { conv: { out: 4, kernel: 1 } },
        "P3/out": { from: "model.0", relu: null },
        "3x3": { from: x, module: three, conv: { out: 4, kernel: 3, padding: 1 } },
        sum: { add: ["P3/out", "3x3"] },
    },
    outputs: ["P3/out", sum, "model.0"],
}

fn main() -> Result<(), fpn::runtime::Error> {
    let names: Vec<&str> = QuotedNames::PARAMS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["model.0.weight", "model.0.bias", "three.weight", "three.bias"]);
    let x = fpn::runtime::Tensor::from_elem((1, 4, 8, 8), 0.5);
    let out = QuotedNames::init(0).forward(QuotedNamesInputs { x: x.view() })?;
    assert_eq!(out.p3_out.shape(), &[1, 4, 8, 8]);
    assert_eq!(out.model_0.shape(), &[1, 4, 8, 8]);
    assert!(out.sum.iter().all(|v| v.is_finite()));
    Ok(())
}
