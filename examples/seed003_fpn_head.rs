//! Seed 003: FPN (Lin et al.) with one head shared over every level, from its YAML spec.
//! Run: `cargo run --release --example seed003_fpn_head`
fpn::include_spec!("specs/seed003_fpn_shared_head.yaml");

fn main() -> Result<(), fpn::runtime::Error> {
    let model = FpnSharedHead::init(3);
    let image = fpn::runtime::Tensor::from_elem((1, 3, 256, 256), 0.5);
    let out = model.forward(FpnSharedHeadInputs { image: image.view() })?;
    for (name, t) in [("p2", &out.p2), ("p3", &out.p3), ("p4", &out.p4), ("p5", &out.p5)] {
        println!("{name}: {:?}", t.shape());
    }
    Ok(())
}
