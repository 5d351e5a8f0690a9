// One family spec at two scales through `include_spec!`'s `set:`, and inline through `fpn!`'s:
// the scale picks the widths and repeats, and names the type.
mod a {
    fpn::include_spec!("tests/specs/family_small.yaml");
}
mod b {
    fpn::include_spec!("tests/specs/family_small.yaml", set: {scale: b});
}
mod wide {
    fpn::include_spec!("tests/specs/family_small.yaml", set: {scale: b, width: 1.0});
}

fpn::fpn! {
    set: { scale: b },
    name: "Inline{scale}",
    scale: a,
    scales: { a: { width: 0.25 }, b: { width: 0.5 } },
    params: { c: make_divisible(64 * width, 8) },
    inputs: { x: [3, 8, 8] },
    nodes: { y: { conv: { out: c, kernel: 1 } } },
    outputs: [y],
}

fn main() -> Result<(), fpn::runtime::Error> {
    let x = fpn::runtime::Tensor::from_elem((1, 3, 16, 16), 0.5);
    // width 0.25: 16 channels, round(0.99) = 1 repeat; width 0.5: 32, round(2.01) = 2
    let out = a::TinyFamilya::init(0).forward(a::TinyFamilyaInputs { x: x.view() })?;
    assert_eq!(out.body.shape(), &[1, 16, 8, 8]);
    let out = b::TinyFamilyb::init(0).forward(b::TinyFamilybInputs { x: x.view() })?;
    assert_eq!(out.body.shape(), &[1, 32, 8, 8]);
    assert_eq!(b::TinyFamilyb::PARAMS.len(), 3 * 5, "stem and two repeats: conv weight and four bn tensors");
    let out = wide::TinyFamilyb::init(0).forward(wide::TinyFamilybInputs { x: x.view() })?;
    assert_eq!(out.body.shape(), &[1, 64, 8, 8]);
    let x = fpn::runtime::Tensor::from_elem((1, 3, 8, 8), 0.5);
    let y = Inlineb::init(0).forward(InlinebInputs { x: x.view() })?;
    assert_eq!(y.y.shape(), &[1, 32, 8, 8]);
    Ok(())
}
