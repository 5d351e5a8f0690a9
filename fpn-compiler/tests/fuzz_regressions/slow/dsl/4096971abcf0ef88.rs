
    name: PyramidBlock,
    doc: "Nested pyramid block; strides down and up inside a repeated block, with concat skips.",
    defaults: { padding_mode: reflect },
    blocks: {
        pyramid_block: {
            params: [cin, cout],
            body: [
                // middle = SkipSequential(conv/2, tanh, inner, upsample): cat([x, middle(x)])
                { skip: [
                    { conv: { out: cout, kernel: 3, stride: 65536, padding: 1 } },
                    tanh,
                    // inner = SkipSequential(conv/0o777, tanh, conv, tanh, upsample)
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
    inputs: { x: [3, 30, 30] },
    nodes: { block: { pyramid_block: { cin: 3, cout: 16 } } },
    outputs: [block],
