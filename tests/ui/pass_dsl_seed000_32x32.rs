// Seed 000's pyramid block at 32×32 written as fpn! tokens (the DSL twin of specs/seed000_pyramid_block.yaml).
fpn::fpn! {
    name: PyramidBlock,
    doc: "Nested pyramid block; strides down and up inside a repeated block, with concat skips.",
    defaults: { padding_mode: reflect },
    blocks: {
        pyramid_block: {
            params: [cin, cout],
            body: [
                // middle = SkipSequential(conv/2, tanh, inner, upsample): cat([x, middle(x)])
                { skip: [
                    { conv: { out: cout, kernel: 3, stride: 2, padding: 1 } },
                    tanh,
                    // inner = SkipSequential(conv/2, tanh, conv, tanh, upsample)
                    { skip: [
                        { conv: { out: cout, kernel: 3, stride: 2, padding: 1 } },
                        tanh,
                        { conv: { out: cout, kernel: 3, padding: 1 } },
                        tanh,
                        { upsample: 2 },
                    ] },
                    { upsample: 2 },
                ] },
                { conv: { out: cout, kernel: 3, stride: 2, padding: 1 } },
                tanh,
            ],
        },
    },
    inputs: { x: [3, 32, 32] },
    nodes: { block: { pyramid_block: { cin: 3, cout: 16 } } },
    outputs: [block],
}

fn main() -> Result<(), fpn::runtime::Error> {
    let model = PyramidBlock::init(0);
    let x = fpn::runtime::Tensor::from_elem((1, 3, 32, 32), 0.5);
    let out = model.forward(PyramidBlockInputs { x: x.view() })?;
    assert_eq!(out.block.shape(), &[1, 16, 16, 16]);
    Ok(())
}
