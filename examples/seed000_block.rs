//! Seed 000: the nested pyramid block, loaded from its YAML spec at compile time.
//! Run: `cargo run --example seed000_block`
fpn::include_spec!("specs/seed000_pyramid_block.yaml");

fn main() -> Result<(), fpn::runtime::Error> {
    let model = PyramidBlock::init(0);
    let x = fpn::runtime::Tensor::from_elem((1, 3, 32, 32), 0.5);
    let out = model.forward(PyramidBlockInputs { x: x.view() })?;
    println!("block: {:?}", out.block.shape());
    Ok(())
}
