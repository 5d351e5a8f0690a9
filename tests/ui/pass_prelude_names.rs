// Names that shadow the prelude and crate paths (issue 11 item 2): a model called `String`, nodes
// called `Vec`, `Option`, `Result`, `Box`, `Ok`, `Some`, `std`, `fpn_runtime`. The generated code
// uses fully qualified paths, so it compiles and runs.
fpn::fpn! {
    name: String,
    inputs: { std: [3, 8, 8] },
    nodes: {
        Vec: { conv: { out: 4, kernel: 3, padding: 1 } },
        Option: batch_norm,
        Result: relu,
        Box: { conv: { out: 4, kernel: 1 } },
        Ok: { add: [Box, Result] },
        Some: { max_pool: { kernel: 2 } },
        fpn_runtime: { from: Ok, conv: { out: 4, kernel: 1, bias: false } },
    },
    outputs: { none: Some, fpn_runtime: fpn_runtime },
}

fn main() -> ::core::result::Result<(), fpn::runtime::Error> {
    let model = String::init(0);
    let x = fpn::runtime::Tensor::from_elem((1, 3, 8, 8), 0.5);
    let out = model.forward(StringInputs { std: x.view() })?;
    assert_eq!(out.none.shape(), &[1, 4, 4, 4]);
    assert_eq!(out.fpn_runtime.shape(), &[1, 4, 8, 8]);
    ::core::result::Result::Ok(())
}
