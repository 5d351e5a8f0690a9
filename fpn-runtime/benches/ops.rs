//! Benchmarks of the runtime ops on FPN-sized shapes.
//!
//! `CARGO_TARGET_DIR=/work/target-runtime cargo bench -p fpn-runtime --bench ops`
//! prints a GFLOP/s table (best of 30 runs, best over 5 interleaved rounds) and the `conv2d` vs
//! prepared [`Conv2d`] table; `-- --prepared` prints only the latter. (No criterion: its
//! dependencies cost the test build more than a minute, and the table is what we read.)
//!
//! One conv alone, as a forward runs it (a prepared [`Conv2d`], its output from an [`Arena`]
//! and given back after each call), on rayon's global pool (`RAYON_NUM_THREADS`):
//! `-- --conv COUT,CIN,HW,K,STRIDE[,BATCH]` (padding `K/2`), with `--act silu|relu`, `--onto`
//! (added onto the previous call's output, as `forward_onto` adds onto a dying sum), `--reps
//! R` (default 200), and `--flush io` (the input and the output flushed from every cache
//! before each call: what a forward's producer left in L3 or memory) or `--flush w` (every
//! cache evicted by a 1 GiB pass, then the input and the output touched again: mostly the
//! weights come from memory). Prints the best and median ms and GFLOP/s; compare variants of
//! the same build interleaved, the hosts here are noisy. Used for docs/bench.md's Intel
//! section (session 21). `--nchwc` times the same conv as a [`BlockedConv`] on a blocked input
//! (NCHW when `CIN` is not a multiple of 16) instead, its output blocked.

use std::hint::black_box;
use std::time::Instant;

use fpn_runtime::{
    add, conv2d, conv2d_into, recycle, to_blocked, upsample_nearest, with_arena, Activation, Arena, BlockedConv,
    Conv2d, Conv2dParams, ConvOpts, Init, Resize, Tensor,
};
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

/// The value after `flag` on the command line, if any.
fn arg(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Touches every float of `v` (reads and writes it back), or flushes its lines from every
/// cache level (`clflush`, x86-64 only).
fn touch(v: &mut [f32], flush: bool) {
    if !flush {
        for x in v.iter_mut() {
            *x = black_box(*x);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(16) {
        // SAFETY: `clflush` of an address inside `v` (SSE2, which every x86-64 CPU has).
        unsafe { std::arch::x86_64::_mm_clflush(line.as_ptr().cast()) };
    }
}

/// `--conv`: one conv timed alone (see the crate-level doc).
fn single_conv(spec: &str) {
    let dims: Vec<usize> = spec.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    let [cout, cin, hw, k, stride] = match dims[..] {
        [a, b, c, d, e] | [a, b, c, d, e, _] if [a, b, c, d, e].iter().all(|&v| v > 0) => [a, b, c, d, e],
        _ => {
            eprintln!("--conv takes COUT,CIN,HW,K,STRIDE[,BATCH], all positive: got {spec:?}");
            std::process::exit(2);
        }
    };
    let n = dims.get(5).copied().unwrap_or(1).max(1);
    let act = match arg("--act").as_deref() {
        Some("silu") => Activation::Silu,
        Some("relu") => Activation::Relu,
        _ => Activation::Identity,
    };
    let flush = arg("--flush").unwrap_or_default();
    let onto = std::env::args().any(|a| a == "--onto");
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(200).max(2);
    let mut init = Init::new(5);
    let Ok(mut x) = init
        .uniform(&[n, cin, hw, hw], -1.0, 1.0)
        .into_dimensionality::<ndarray::Ix4>()
    else {
        return;
    };
    let w = init.conv_weight([cout, cin, k, k]);
    let b = init.conv_bias(cin * k * k, cout);
    let p = Conv2dParams {
        stride: [stride; 2],
        padding: [k / 2; 4],
        act,
        ..Default::default()
    };
    let nchwc = std::env::args().any(|a| a == "--nchwc");
    if nchwc && onto {
        eprintln!("--nchwc times a conv into a new output: --onto is for NCHW convs");
        std::process::exit(2);
    }
    let blocked = if nchwc {
        match BlockedConv::new(w.clone(), Some(b.clone()), p) {
            Ok(c) => {
                if c.blocked_input() {
                    match to_blocked(x.view()) {
                        Ok(xb) => x = xb,
                        Err(e) => {
                            eprintln!("{e}");
                            std::process::exit(2);
                        }
                    }
                }
                Some(c)
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };
    let conv = match Conv2d::new(w, Some(b), p) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut big: Vec<u8> = if flush == "w" { vec![1; 1 << 30] } else { Vec::new() };
    let mut arena = Arena::new();
    let mut prev: Option<Tensor> = None;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps + 3 {
        if !big.is_empty() {
            let mut acc = 0u8;
            for b in big.iter_mut().step_by(64) {
                acc = acc.wrapping_add(*b);
                *b = acc;
            }
            black_box(acc);
        }
        if flush == "io" || flush == "w" {
            if let Some(x) = x.as_slice_mut() {
                touch(x, flush == "io");
            }
            if let Some(y) = prev.as_mut().and_then(|y| y.as_slice_memory_order_mut()) {
                touch(y, flush == "io");
            }
        }
        let timed = with_arena(&mut arena, || {
            let sum = prev.take();
            let t = Instant::now();
            let y = match sum {
                Some(sum) if onto => conv.forward_onto(x.view(), &ConvOpts::default(), sum),
                sum => {
                    if let Some(s) = sum {
                        recycle(s);
                    }
                    match &blocked {
                        Some(c) => c.forward(x.view(), None, false),
                        None => conv.forward(x.view(), &ConvOpts::default()),
                    }
                }
            };
            let dt = t.elapsed().as_secs_f64();
            y.map(|y| (dt, y))
        });
        match timed {
            Ok((dt, y)) => {
                times.push(dt);
                prev = Some(y);
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    let mut times = times.split_off(3);
    times.sort_by(f64::total_cmp);
    let oh = (hw + 2 * (k / 2) - k) / stride + 1;
    let flops = 2.0 * [n, cout, cin, k, k, oh, oh].iter().map(|&v| v as f64).product::<f64>();
    println!(
        "{cout}<-{cin} {k}x{k} stride {stride} @{hw}x{hw} batch {n} (act {act:?}{}{}{}): best {:.3} ms, median {:.3} ms, {:.1} GFLOP/s",
        if onto { ", onto" } else { "" },
        if nchwc { ", nchwc" } else { "" },
        if flush.is_empty() { String::new() } else { format!(", flush {flush}") },
        times[0] * 1e3,
        times[times.len() / 2] * 1e3,
        flops / times[0] / 1e9
    );
}

fn main() {
    if let Some(spec) = arg("--conv") {
        single_conv(&spec);
        return;
    }
    if std::env::args().any(|a| a == "--prepared") {
        prepared_summary();
        return;
    }
    summary();
    prepared_summary();
}
