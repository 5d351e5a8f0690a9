// After an error, a main written against the generated API (`init`, `TypoInputs`, `forward`):
// ideally only the one real mistake is reported (compare dsl_stub_full_use.rs).
fpn::include_spec!("specs/invalid/E0101_unknown_key_kernal.yaml");

fn main() -> Result<(), fpn::runtime::Error> {
    let model = Typo::init(0);
    let x = fpn::runtime::Tensor::zeros((1, 3, 32, 32));
    let out = model.forward(TypoInputs { x: x.view() })?;
    assert_eq!(out.stem.shape(), &[1, 16, 32, 32]);
    Ok(())
}
