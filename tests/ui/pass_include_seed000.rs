// Seed 000's pyramid block loaded from its YAML spec; init, forward and check the output shape.
fpn::include_spec!("specs/seed000_pyramid_block.yaml");

fn main() -> Result<(), fpn::runtime::Error> {
    let model = PyramidBlock::init(0);
    let x = fpn::runtime::Tensor::from_elem((1, 3, 32, 32), 0.5);
    let out = model.forward(PyramidBlockInputs { x: x.view() })?;
    assert_eq!(out.block.shape(), &[1, 16, 16, 16]);
    assert!(out.block.iter().all(|v| v.is_finite()));
    Ok(())
}
