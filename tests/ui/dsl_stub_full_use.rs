// After an error, a main written against the generated API (`init`, `TinyInputs`, `forward`):
// ideally only the one real mistake is reported.
fpn::fpn! {
    name: Tiny,
    inputs: { x: [3, 32, 32] },
    nodes: { stem: { conv: { out: 16, kernal: 3 } } },
    outputs: [stem],
}

fn main() -> Result<(), fpn::runtime::Error> {
    let model = Tiny::init(0);
    let x = fpn::runtime::Tensor::zeros((1, 3, 32, 32));
    let out = model.forward(TinyInputs { x: x.view() })?;
    assert_eq!(out.stem.shape(), &[1, 16, 30, 30]);
    Ok(())
}
