//! Seed 001: the 3-level neck declared inline with `fpn!` (same language as the YAML specs).
//! Run: `cargo run --example seed001_neck`
fpn::fpn! {
    name: Neck,
    defaults: { cna: { norm: batch_norm, act: { leaky_relu: 0.1 } } },
    inputs: { c3: [128, 52, 52], c4: [256, 26, 26], c5: [512, 13, 13] },
    nodes: {
        neck: { fpn: { in: [c3, c4, c5], width: 64, lateral: cna, smooth: cna, upsample: 2 } },
    },
    outputs: [neck.p3, neck.p4, neck.p5],
}

fn main() -> Result<(), fpn::runtime::Error> {
    let model = Neck::init(1);
    let c3 = fpn::runtime::Tensor::from_elem((1, 128, 52, 52), 0.1);
    let c4 = fpn::runtime::Tensor::from_elem((1, 256, 26, 26), 0.2);
    let c5 = fpn::runtime::Tensor::from_elem((1, 512, 13, 13), 0.3);
    let out = model.forward(NeckInputs {
        c3: c3.view(),
        c4: c4.view(),
        c5: c5.view(),
    })?;
    println!(
        "p3: {:?}\np4: {:?}\np5: {:?}",
        out.p3.shape(),
        out.p4.shape(),
        out.p5.shape()
    );
    Ok(())
}
