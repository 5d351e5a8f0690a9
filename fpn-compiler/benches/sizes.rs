//! Accepted-size analysis on a 100-level spec: prints the time per analysis.
//! Run: `cargo bench -p fpn-compiler --bench sizes`.
use fpn_compiler::span::SourceMap;
use std::time::Instant;

/// 100 levels, each a skip block that strides down and comes back up (seed 000 style), with
/// strides and kernels varying by level, on a symbolic input.
fn spec(levels: usize) -> String {
    let mut s = String::from("name: Deep\ninputs:\n  x: [8, H, W]\nnodes:\n");
    for i in 0..levels {
        let k = 1 + 2 * (i % 2);
        let up = if i % 3 == 0 {
            "{match: skip}".to_string()
        } else {
            "2".to_string()
        };
        s.push_str(&format!(
            "  l{i}:\n    skip:\n      - conv: {{out: 8, kernel: {k}, stride: 2, padding: {}}}\n      - relu\n      - upsample: {up}\n  r{i}: {{conv: {{out: 8, kernel: 1}}}}\n",
            k / 2
        ));
    }
    s.push_str(&format!("outputs: [r{}]\n", levels - 1));
    s
}

/// A pyramid nested `depth` deep (each level strides down inside the previous one's skip):
/// its size pattern has period 2^depth, the hard case for the analysis.
fn nested(depth: usize) -> String {
    let mut body = String::from("[relu]");
    for _ in 0..depth {
        body = format!("[{{conv: {{out: 8, kernel: 3, stride: 2, padding: 1}}}}, {{skip: {body}}}, {{upsample: 2}}]");
    }
    format!("name: Nested\ninputs:\n  x: [8, H, W]\nnodes:\n  top: {{skip: {body}}}\noutputs: [top]\n")
}

/// A top-down neck over `levels` inputs, each with its own symbols `H<i>`, `W<i>`, tied by
/// nearest ×2 upsamples: the joint analysis eliminates all but `H0`/`W0`.
fn joint(levels: usize) -> String {
    let mut s = String::from("name: Joint\ninputs:\n");
    for i in 0..levels {
        s.push_str(&format!("  c{i}: [8, H{i}, W{i}]\n"));
    }
    s.push_str("nodes:\n");
    let mut prev = format!("c{}", levels - 1);
    for i in (0..levels - 1).rev() {
        s.push_str(&format!(
            "  u{i}: {{from: {prev}, upsample: 2}}\n  m{i}: {{add: [c{i}, u{i}]}}\n"
        ));
        prev = format!("m{i}");
    }
    s.push_str(&format!("outputs: [{prev}]\n"));
    s
}

fn main() {
    let cases: Vec<(String, String)> = [10, 100]
        .into_iter()
        .map(|l| (format!("{l} sequential levels"), spec(l)))
        .chain([8, 16].into_iter().map(|d| (format!("{d} nested levels"), nested(d))))
        .chain([12, 100].into_iter().map(|l| (format!("{l} joint inputs"), joint(l))))
        .collect();
    for (levels, text) in cases {
        let mut best = f64::INFINITY;
        let mut described = String::new();
        for _ in 0..5 {
            let t = Instant::now();
            let c = fpn_compiler::compile_yaml(&mut SourceMap::new(), "deep.yaml", &text);
            best = best.min(t.elapsed().as_secs_f64());
            described = match c {
                Ok(c) => c
                    .sizes
                    .iter()
                    .flatten()
                    .map(|a| a.describe())
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(d) => format!("{} diagnostics", d.len()),
            };
        }
        println!(
            "{levels:>22}: compile + size analysis {:.1} ms (best of 5): {described}",
            best * 1e3
        );
    }
}
