//! Seed 002: ResNet-18 as a feature pyramid `[x0..x4]`, from its YAML spec.
//! Run: `cargo run --release --example seed002_resnet_pyramid`
fpn::include_spec!("specs/seed002_resnet18_pyramid.yaml");

fn main() -> Result<(), fpn::runtime::Error> {
    let model = ResNet18Pyramid::init(2);
    let image = fpn::runtime::Tensor::from_elem((1, 3, 224, 224), 0.5);
    let out = model.forward(ResNet18PyramidInputs { image: image.view() })?;
    for (name, t) in [
        ("x0", &out.x0),
        ("x1", &out.x1),
        ("x2", &out.x2),
        ("x3", &out.x3),
        ("x4", &out.x4),
    ] {
        println!("{name}: {:?}", t.shape());
    }
    Ok(())
}
