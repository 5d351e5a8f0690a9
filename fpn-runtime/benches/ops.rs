//! Benchmarks of the runtime ops on FPN-sized shapes.
//!
//! `CARGO_TARGET_DIR=/work/target-runtime cargo bench -p fpn-runtime --bench ops`
//! prints a GFLOP/s table (best of 30 runs, best over 5 interleaved rounds) and the `conv2d` vs
//! prepared [`Conv2d`] table; `-- --prepared` prints only the latter. (No criterion: its
//! dependencies cost the test build more than a minute, and the table is what we read.)

use std::hint::black_box;
use std::time::Instant;

use fpn_runtime::{add, conv2d, conv2d_into, upsample_nearest, Conv2d, Conv2dParams, ConvOpts, Init, Resize, Tensor};
use ndarray::Array1;

/// One benchmarked conv: name, input shape, weight shape, stride, padding.
struct ConvCase {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    stride: usize,
    pad: usize,
}

const CONVS: [ConvCase; 4] = [
    ConvCase {
        name: "conv 256->256 3x3 @104x104",
        x: [1, 256, 104, 104],
        w: [256, 256, 3, 3],
        stride: 1,
        pad: 1,
    },
    ConvCase {
        name: "conv 256->256 3x3 @104x104 batch 2",
        x: [2, 256, 104, 104],
        w: [256, 256, 3, 3],
        stride: 1,
        pad: 1,
    },
    ConvCase {
        name: "conv 64->256 1x1 @104x104",
        x: [1, 64, 104, 104],
        w: [256, 64, 1, 1],
        stride: 1,
        pad: 0,
    },
    ConvCase {
        name: "conv 3->64 7x7/2 pad3 @416x416",
        x: [1, 3, 416, 416],
        w: [64, 3, 7, 7],
        stride: 2,
        pad: 3,
    },
];

fn setup(c: &ConvCase) -> (Tensor, Tensor, Array1<f32>, Conv2dParams, u64) {
    let mut init = Init::new(1);
    let x = init
        .uniform(&c.x, -1.0, 1.0)
        .into_dimensionality()
        .unwrap_or_else(|_| Tensor::zeros(c.x));
    let w = init.conv_weight(c.w);
    let b = init.conv_bias(c.w[1] * c.w[2] * c.w[3], c.w[0]);
    let p = Conv2dParams {
        stride: [c.stride; 2],
        padding: [c.pad; 4],
        ..Default::default()
    };
    let out = fpn_runtime::conv2d_out_shape(c.x, c.w, &p).unwrap_or([0; 4]);
    let flops = 2 * (out.iter().product::<usize>() * c.w[1] * c.w[2] * c.w[3]) as u64;
    (x, w, b, p, flops)
}

fn big_map() -> (Tensor, Tensor) {
    let mut init = Init::new(2);
    let a = init
        .uniform(&[1, 256, 52, 52], -1.0, 1.0)
        .into_dimensionality()
        .unwrap_or_else(|_| Tensor::zeros((1, 256, 52, 52)));
    let b = init
        .uniform(&[1, 256, 104, 104], -1.0, 1.0)
        .into_dimensionality()
        .unwrap_or_else(|_| Tensor::zeros((1, 256, 104, 104)));
    (a, b)
}

/// Best wall time of `f` over `reps` runs after one warm-up.
fn best<F: FnMut() + ?Sized>(reps: usize, f: &mut F) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// Best-of-30 timings, best over 5 interleaved rounds (the machine is shared: take the max).
fn summary() {
    type Op<'a> = (String, u64, Box<dyn FnMut() + 'a>);
    let data: Vec<_> = CONVS.iter().map(|c| (c, setup(c))).collect();
    let mut outs: Vec<Tensor> = data
        .iter()
        .map(|(c, (_, _, _, p, _))| Tensor::zeros(fpn_runtime::conv2d_out_shape(c.x, c.w, p).unwrap_or([1; 4])))
        .collect();
    let (small, big) = big_map();
    let mut ops: Vec<Op> = Vec::new();
    for (case, (x, w, b, p, flops)) in &data {
        ops.push((
            case.name.to_string(),
            *flops,
            Box::new(move || {
                black_box(conv2d(x.view(), w.view(), Some(b.view()), p).ok());
            }),
        ));
    }
    for ((case, (x, w, b, p, flops)), out) in data.iter().zip(outs.iter_mut()) {
        ops.push((
            format!("{} (into)", case.name),
            *flops,
            Box::new(move || {
                black_box(conv2d_into(x.view(), w.view(), Some(b.view()), p, out.view_mut()).ok());
            }),
        ));
    }
    ops.push((
        "upsample_nearest x2 256x52x52".into(),
        0,
        Box::new(|| {
            black_box(upsample_nearest(small.view(), Resize::Scale([2.0, 2.0])).ok());
        }),
    ));
    ops.push((
        "add 256x104x104".into(),
        0,
        Box::new(|| {
            black_box(add(big.view(), big.view()).ok());
        }),
    ));
    let mut best_t = vec![f64::INFINITY; ops.len()];
    for _ in 0..5 {
        for (i, (_, _, f)) in ops.iter_mut().enumerate() {
            best_t[i] = best_t[i].min(best(30, f));
        }
    }
    println!("\n{:<40} {:>10} {:>10}", "op", "ms (best)", "GFLOP/s");
    for ((name, flops, _), t) in ops.iter().zip(&best_t) {
        let gf = if *flops > 0 {
            format!("{:>10.1}", *flops as f64 / t / 1e9)
        } else {
            String::new()
        };
        println!("{:<40} {:>10.3} {}", name, t * 1e3, gf);
    }
}

/// 3×3 stride-1 convs of ResNet-50's later stages and FPN smoothers (Winograd candidates):
/// `(channels, size, batch)`.
const PREPARED: [(usize, usize, usize); 12] = [
    (512, 7, 1),
    (512, 7, 2),
    (512, 7, 4),
    (256, 10, 1),
    (256, 12, 1),
    (512, 13, 1),
    (256, 14, 1),
    (256, 14, 2),
    (256, 28, 1),
    (64, 56, 1),
    (256, 56, 1),
    (256, 104, 1),
];

/// The free `conv2d` (weight transform per call; GEMM below `WINOGRAD_MIN_PIXELS`) against a
/// [`Conv2d`] prepared once (transform cached), best of 30 runs over 5 interleaved rounds.
fn prepared_summary() {
    println!(
        "\n{:<36} {:>12} {:>12} {:>8}",
        "3x3 pad 1 conv", "conv2d ms", "Conv2d ms", "ratio"
    );
    for &(c, s, n) in &PREPARED {
        let mut init = Init::new(3);
        let x: Tensor = init
            .uniform(&[n, c, s, s], -1.0, 1.0)
            .into_dimensionality()
            .unwrap_or_else(|_| Tensor::zeros((n, c, s, s)));
        let w = init.conv_weight([c, c, 3, 3]);
        let b = init.conv_bias(c * 9, c);
        let p = Conv2dParams {
            padding: [1; 4],
            ..Default::default()
        };
        let Ok(prep) = Conv2d::new(w.clone(), Some(b.clone()), p) else {
            continue;
        };
        let mut out = Tensor::zeros((n, c, s, s));
        let mut out2 = Tensor::zeros((n, c, s, s));
        let mut free = || {
            black_box(conv2d_into(x.view(), w.view(), Some(b.view()), &p, out.view_mut()).ok());
        };
        let mut fast = || {
            black_box(prep.forward_into(x.view(), &ConvOpts::default(), out2.view_mut()).ok());
        };
        let (mut t_free, mut t_fast) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..5 {
            t_free = t_free.min(best(30, &mut free));
            t_fast = t_fast.min(best(30, &mut fast));
        }
        let name = format!("{c}->{c} @{s}x{s} batch {n}");
        println!(
            "{:<36} {:>12.3} {:>12.3} {:>8.2}",
            name,
            t_free * 1e3,
            t_fast * 1e3,
            t_free / t_fast
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--prepared") {
        prepared_summary();
        return;
    }
    summary();
    prepared_summary();
}
