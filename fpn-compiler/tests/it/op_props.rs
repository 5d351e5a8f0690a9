//! Property test (issue 10, acceptance): thousands of random one-op specs for every primitive
//! op — channels 1–17, heights and widths 1–40 (1 and odd included), every kernel / stride /
//! dilation / padding form (`n`, `[h, w]`, `[top, bottom, left, right]`, `same`), groups,
//! padding modes, `ceil_mode`, `count_include_pad`, integer, float and non-integer scales
//! (`[sh, sw]` too), nearest/bilinear, `align_corners`, `match:`, merges of equal and unequal
//! shapes, group norm, transposed convs, pad / crop (fixed and `match:`), pixel (un)shuffle, mul,
//! one part of `chunk` / `split` (counts not dividing and sizes not summing to the channels too)
//! — and for each: `fpn check` (`compile_yaml`) accepts exactly when fpn-runtime, applied
//! directly to a random input of that size with parameters built from the same config, accepts,
//! with the same output shape; when `check` accepts, the interpreter (the runtime under the
//! compiler's lowering) gives that shape too. The same spec with an unused `symbols: {H: 1..}`
//! must get the same verdict (fixed sizes are checked whether or not symbols exist).
//!
//! The cases are drawn from proptest strategies with a fixed seed and all run (no stop at the
//! first failure, no shrinking: the specs are one op already), so the failure lists every
//! disagreeing config with both verdicts, grouped by kind. `OP_PROPS_CASES` (default 4000)
//! and `OP_PROPS_SEED` (a u64) change the run.

use crate::op_common;

use std::collections::BTreeMap;

use op_common::{check, interp, runtime, with_symbol, yaml, Case, Verdict};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value as J};

// ---------------------------------------------------------------------------------------------
// Strategies

/// A height or width in 1..=40, 1 and small sizes often.
fn size() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(1i64), 5 => 2..=6i64, 12 => 1..=40i64]
}

fn chans() -> impl Strategy<Value = i64> {
    1..=17i64
}

fn shape() -> impl Strategy<Value = [i64; 3]> {
    (chans(), size(), size()).prop_map(|(c, h, w)| [c, h, w])
}

/// An int argument as `n` or `[h, w]`.
fn form2(lo: i64, hi: i64) -> impl Strategy<Value = J> {
    prop_oneof![
        3 => (lo..=hi).prop_map(J::from),
        2 => (lo..=hi, lo..=hi).prop_map(|(a, b)| json!([a, b])),
    ]
}

/// `form2` or absent.
fn opt_form2(lo: i64, hi: i64, absent: u32) -> impl Strategy<Value = Option<J>> {
    prop_oneof![absent => Just(None), (10 - absent) => form2(lo, hi).prop_map(Some)]
}

fn opt_bool(absent: u32) -> impl Strategy<Value = Option<bool>> {
    prop_oneof![absent => Just(None), (10 - absent) => any::<bool>().prop_map(Some)]
}

fn put(m: &mut Map<String, J>, k: &str, v: Option<J>) {
    if let Some(v) = v {
        m.insert(k.to_string(), v);
    }
}

/// A case on one input `x`.
fn one(shape: [i64; 3], node: J) -> Case {
    Case {
        inputs: vec![("x".into(), shape)],
        node,
        from: None,
        part: None,
    }
}

fn conv() -> impl Strategy<Value = Case> {
    let padding = prop_oneof![
        2 => Just(None),
        3 => (0..=3i64).prop_map(|p| Some(J::from(p))),
        2 => (0..=3i64, 0..=3i64).prop_map(|(a, b)| Some(json!([a, b]))),
        3 => [0..=3i64, 0..=3i64, 0..=3i64, 0..=3i64].prop_map(|p| Some(json!(p))),
        3 => Just(Some(J::from("same"))),
    ];
    let mode = prop_oneof![
        4 => Just(None),
        1 => Just(Some("zeros")),
        2 => Just(Some("reflect")),
        1 => Just(Some("replicate")),
        2 => Just(Some("circular")),
    ];
    (
        shape(),
        (0..20u8, any::<prop::sample::Index>(), 1..=17i64, 0..10u8),
        form2(1, 7),
        opt_form2(1, 3, 4),
        padding,
        opt_form2(1, 3, 5),
        opt_bool(7),
        mode,
    )
        .prop_map(
            |(x, (gsel, gidx, out, osel), kernel, stride, padding, dilation, bias, mode)| {
                let c = x[0];
                let divs: Vec<i64> = (2..=c).filter(|g| c % g == 0).collect();
                let groups = match gsel {
                    0..=12 => 1,
                    13..=15 => c,
                    16..=18 if !divs.is_empty() => divs[gidx.index(divs.len())],
                    _ => 2 + gidx.index(4) as i64, // may not divide
                };
                let out = if groups > 1 && osel < 9 {
                    groups * (1 + (out - 1) % (17 / groups).max(1))
                } else {
                    out
                };
                let mut a = Map::new();
                a.insert("out".into(), J::from(out));
                a.insert("kernel".into(), kernel);
                put(&mut a, "stride", stride);
                put(&mut a, "padding", padding);
                put(&mut a, "dilation", dilation);
                if groups != 1 || gsel == 19 {
                    a.insert("groups".into(), J::from(groups));
                }
                put(&mut a, "bias", bias.map(J::from));
                put(&mut a, "padding_mode", mode.map(J::from));
                one(x, json!({ "conv": a }))
            },
        )
}

/// Max pooling whose padding is legal for the dilated kernel but not for the kernel itself
/// (`kernel/2 < padding ≤ (dilation·(kernel−1)+1)/2`): PyTorch compares with the undilated one.
fn pool_dilated_padding() -> impl Strategy<Value = Case> {
    (shape(), 1..=4i64, 2..=3i64, 0..8i64, opt_form2(1, 3, 4), opt_bool(5)).prop_map(|(x, k, d, pick, stride, ceil)| {
        let lo = k / 2 + 1;
        let hi = ((d * (k - 1) + 1) / 2).max(lo);
        let p = lo + pick % (hi - lo + 1);
        let mut a = Map::new();
        a.insert("kernel".into(), J::from(k));
        put(&mut a, "stride", stride);
        a.insert("padding".into(), J::from(p));
        a.insert("dilation".into(), J::from(d));
        put(&mut a, "ceil_mode", ceil.map(J::from));
        one(x, json!({ "max_pool": a }))
    })
}

fn pool(is_max: bool) -> impl Strategy<Value = Case> {
    (
        shape(),
        form2(1, 5),
        opt_form2(1, 3, 4),
        (0..10u8, 0..=3i64, 0..=3i64, 0..3u8),
        opt_form2(1, 3, 5),
        opt_bool(5),
        opt_bool(6),
    )
        .prop_map(move |(x, kernel, stride, (psel, p0, p1, pform), dilation, ceil, cip)| {
            let k = match &kernel {
                J::Array(v) => [v[0].as_i64().unwrap_or(1), v[1].as_i64().unwrap_or(1)],
                v => [v.as_i64().unwrap_or(1); 2],
            };
            // mostly legal padding (≤ kernel/2), sometimes anything up to 3
            let p = if psel < 8 {
                [p0 % (k[0] / 2 + 1), p1 % (k[1] / 2 + 1)]
            } else {
                [p0, p1]
            };
            let padding = match pform {
                0 => None,
                1 if p[0] == p[1] => Some(J::from(p[0])),
                _ => Some(json!(p)),
            };
            let mut a = Map::new();
            a.insert("kernel".into(), kernel);
            put(&mut a, "stride", stride);
            put(&mut a, "padding", padding.filter(|v| pform != 0 || v != &J::from(0)));
            if is_max {
                put(&mut a, "dilation", dilation);
            } else {
                put(&mut a, "count_include_pad", cip.map(J::from));
            }
            put(&mut a, "ceil_mode", ceil.map(J::from));
            let op = if is_max { "max_pool" } else { "avg_pool" };
            one(x, json!({ op: a }))
        })
}

/// A scale: integers, common floats, p/q fractions (any denominator), decimals.
fn scale1() -> impl Strategy<Value = J> {
    prop_oneof![
        2 => (1..=4i64).prop_map(J::from),
        2 => prop::sample::select(vec![0.5, 1.5, 2.0, 1.16, 0.25, 0.3, 1.25, 2.5, 0.75, 1.1, 0.9, 17.0 / 7.0, 15.0 / 11.0, 1.0 / 3.0]).prop_map(J::from),
        3 => (1..=40i64, 1..=13i64).prop_map(|(p, q)| J::from(p as f64 / q as f64)),
        1 => (1..=400i64).prop_map(|p| J::from(p as f64 / 100.0)),
    ]
}

fn scale() -> impl Strategy<Value = J> {
    prop_oneof![3 => scale1(), 1 => (scale1(), scale1()).prop_map(|(a, b)| json!([a, b]))]
}

/// An upsample by `p/q` of a size that is a multiple of `q`: the exact product is a whole
/// number, which the f64 product may fall just below (21 · 17/7 = 50.99…, PyTorch gives 50).
fn upsample_whole_product() -> impl Strategy<Value = Case> {
    (chans(), 2..=13i64, 1..=40i64, 0..40i64, size(), any::<bool>(), 0..3u8).prop_map(
        |(c, q, p, k, other, on_h, mode)| {
            let x = q * (1 + k % (40 / q));
            let s = J::from(p as f64 / q as f64);
            let (h, w, scale) = if on_h {
                (x, other, json!([s, 1]))
            } else {
                (other, x, json!([1, s]))
            };
            let node = match mode {
                0 => json!({ "upsample": scale }),
                1 => json!({ "upsample": { "scale": scale, "mode": "bilinear" } }),
                _ => json!({ "upsample": { "scale": scale, "mode": "bilinear", "align_corners": true } }),
            };
            one([c, h, w], node)
        },
    )
}

fn upsample() -> impl Strategy<Value = Case> {
    let mode = prop_oneof![2 => Just(None), 1 => Just(Some("nearest")), 3 => Just(Some("bilinear"))];
    (shape(), shape(), 0..10u8, scale(), mode, opt_bool(6)).prop_map(|(x, y, kind, s, mode, ac)| {
        if kind < 2 {
            return one(x, json!({ "upsample": s }));
        }
        let mut a = Map::new();
        let matched = kind < 5;
        if matched {
            a.insert("match".into(), J::from("y"));
        } else {
            a.insert("scale".into(), s);
        }
        put(&mut a, "mode", mode.map(J::from));
        put(&mut a, "align_corners", ac.map(J::from));
        let node = json!({ "upsample": a });
        if matched {
            Case {
                inputs: vec![("x".into(), x), ("y".into(), y)],
                node,
                from: Some("x".into()),
                part: None,
            }
        } else {
            one(x, node)
        }
    })
}

fn merge() -> impl Strategy<Value = Case> {
    let op = prop::sample::select(vec!["add", "concat", "mean", "fuse"]);
    (
        op,
        shape(),
        shape(),
        0..20u8,
        prop::sample::select(vec![0.0001, 0.001, 0.01]),
    )
        .prop_map(|(op, x, other, d, eps)| {
            let mut y = x;
            match d {
                0..=3 => y[0] = other[0],
                4..=6 => y[1] = other[1],
                7..=9 => y[2] = other[2],
                10 => y = other,
                _ => {}
            }
            let node = if op == "fuse" && d % 3 == 0 {
                json!({ "fuse": { "in": ["x", "y"], "eps": eps } })
            } else {
                json!({ op: ["x", "y"] })
            };
            Case {
                inputs: vec![("x".into(), x), ("y".into(), y)],
                node,
                from: None,
                part: None,
            }
        })
}

fn norm_act() -> impl Strategy<Value = Case> {
    let node = prop_oneof![
        Just(J::from("batch_norm")),
        prop::sample::select(vec![0.001, 0.01, 0.1]).prop_map(|e| json!({ "batch_norm": { "eps": e } })),
        prop::sample::select(vec![
            "relu",
            "relu6",
            "tanh",
            "sigmoid",
            "silu",
            "hardswish",
            "identity",
            "gelu",
            "leaky_relu"
        ])
        .prop_map(J::from),
        Just(json!({ "gelu": { "approximate": "tanh" } })),
        prop::sample::select(vec![0.1, 0.2]).prop_map(|s| json!({ "leaky_relu": s })),
        prop::sample::select(vec![0.1, 0.2]).prop_map(|s| json!({ "leaky_relu": { "slope": s } })),
    ];
    (shape(), node).prop_map(|(x, n)| one(x, n))
}

fn group_norm() -> impl Strategy<Value = Case> {
    (shape(), 1..=8i64, 0..4u8, any::<prop::sample::Index>()).prop_map(|(x, g, k, idx)| {
        let divs: Vec<i64> = (1..=x[0]).filter(|d| x[0] % d == 0).collect();
        let groups = if k == 0 { g } else { divs[idx.index(divs.len())] };
        let node = if k == 1 {
            json!({ "group_norm": { "groups": groups, "eps": 0.001 } })
        } else {
            json!({ "group_norm": { "groups": groups } })
        };
        one(x, node)
    })
}

fn conv_transpose() -> impl Strategy<Value = Case> {
    (
        shape(),
        1..=12i64,
        form2(1, 5),
        (
            opt_form2(1, 3, 3),
            opt_form2(0, 3, 4),
            opt_form2(1, 3, 6),
            opt_form2(0, 2, 5),
        ),
        (0..10u8, any::<prop::sample::Index>(), opt_bool(8)),
    )
        .prop_map(|(x, out, kernel, (stride, padding, dilation, op), (gk, gidx, bias))| {
            let divs: Vec<i64> = (2..=x[0]).filter(|d| x[0] % d == 0).collect();
            let groups = match gk {
                0..=6 => 1,
                7 | 8 if !divs.is_empty() => divs[gidx.index(divs.len())],
                _ => 2 + gidx.index(3) as i64, // may not divide
            };
            let mut a = Map::new();
            a.insert(
                "out".into(),
                J::from(if groups > 1 && gk != 9 {
                    groups * out.min(4)
                } else {
                    out
                }),
            );
            a.insert("kernel".into(), kernel);
            put(&mut a, "stride", stride);
            put(&mut a, "padding", padding);
            put(&mut a, "dilation", dilation);
            put(&mut a, "output_padding", op);
            if groups != 1 {
                a.insert("groups".into(), J::from(groups));
            }
            put(&mut a, "bias", bias.map(J::from));
            one(x, json!({ "conv_transpose": a }))
        })
}

fn pad() -> impl Strategy<Value = Case> {
    let mode = prop::sample::select(vec!["constant", "reflect", "replicate", "circular"]);
    (
        shape(),
        [0..=4i64, 0..=4i64, 0..=4i64, 0..=4i64],
        mode,
        0..10u8,
        shape(),
        [0..=5i64, 0..=5i64],
    )
        .prop_map(|(x, p, mode, k, other, grow)| match k {
            0 => one(x, json!({ "pad": p[0] })),
            1..=2 => one(x, json!({ "pad": p })),
            3..=6 => one(x, json!({ "pad": { "pad": p, "mode": mode } })),
            7 => one(x, json!({ "pad": { "pad": p, "value": -1.5 } })),
            _ => {
                let y = if k == 8 {
                    [other[0], x[1] + grow[0], x[2] + grow[1]]
                } else {
                    other
                };
                Case {
                    inputs: vec![("x".into(), x), ("y".into(), y)],
                    node: json!({ "pad": { "match": "y" } }),
                    from: Some("x".into()),
                    part: None,
                }
            }
        })
}

fn crop() -> impl Strategy<Value = Case> {
    (shape(), [1..=41i64, 1..=41i64], [0..=3i64, 0..=3i64], 0..10u8, shape()).prop_map(|(x, size, off, k, other)| {
        match k {
            0..=3 => one(
                x,
                json!({ "crop": { "size": [size[0].min(x[1] + 1), size[1].min(x[2] + 1)] } }),
            ),
            4..=6 => one(
                x,
                json!({ "crop": { "size": [size[0].min(x[1]), size[1].min(x[2])], "offset": off } }),
            ),
            _ => Case {
                inputs: vec![("x".into(), x), ("y".into(), other)],
                node: json!({ "crop": { "match": "y" } }),
                from: Some("x".into()),
                part: None,
            },
        }
    })
}

fn shuffle() -> impl Strategy<Value = Case> {
    (shape(), 1..=3i64, any::<bool>(), any::<bool>(), 1..=4i64).prop_map(|(x, r, up, fit, m)| {
        if up {
            let c = if fit { r * r * m } else { x[0] };
            one([c, x[1], x[2]], json!({ "pixel_shuffle": r }))
        } else {
            let s = if fit {
                [x[0], r * x[1].min(10), r * x[2].min(10)]
            } else {
                x
            };
            one(s, json!({ "pixel_unshuffle": r }))
        }
    })
}

/// `max_pool: k` / `avg_pool: k` shorthands and `padding: [t, b, l, r]` (explicit padding).
fn pool_forms() -> impl Strategy<Value = Case> {
    (
        shape(),
        any::<bool>(),
        1..=4i64,
        1..=3i64,
        [0..=3i64, 0..=3i64, 0..=3i64, 0..=3i64],
        0..4u8,
    )
        .prop_map(|(x, is_max, k, s, p, form)| {
            let op = if is_max { "max_pool" } else { "avg_pool" };
            let node = match form {
                0 => json!({ op: k }),
                1 => json!({ op: { "kernel": k, "stride": s, "padding": p } }),
                2 => json!({ op: { "kernel": k, "stride": s, "padding": p, "ceil_mode": true } }),
                _ => json!({ op: { "kernel": [k, 1 + k % 3], "padding": p, "count_include_pad": false } }),
            };
            one(x, node)
        })
}

fn mul() -> impl Strategy<Value = Case> {
    (shape(), shape(), 0..6u8).prop_map(|(x, other, d)| {
        let mut y = x;
        match d {
            0 => y[0] = other[0],
            1 => y[1] = other[1],
            2 => y = other,
            _ => {}
        }
        Case {
            inputs: vec![("x".into(), x), ("y".into(), y)],
            node: json!({ "mul": ["x", "y"] }),
            from: None,
            part: None,
        }
    })
}

/// `chunk: n` (n often not dividing the channels) and `split: [a, b, …]` (often not summing to
/// them), returning one part.
fn channel_parts() -> impl Strategy<Value = Case> {
    let chunk = (1..=6i64).prop_map(J::from);
    let split = prop::collection::vec(1..=8i64, 1..=4).prop_map(|v| json!(v));
    (
        shape(),
        prop_oneof![chunk.prop_map(|n| ("chunk", n)), split.prop_map(|v| ("split", v))],
        0..6usize,
    )
        .prop_map(|(x, (op, args), part)| {
            let parts = match &args {
                J::Array(v) => v.len(),
                n => usize::try_from(n.as_i64().unwrap_or(1)).unwrap_or(1),
            };
            Case {
                inputs: vec![("x".into(), x)],
                node: json!({ op: args }),
                from: None,
                part: Some(part % parts.max(1)),
            }
        })
}

fn any_case() -> impl Strategy<Value = Case> {
    prop_oneof![
        35 => conv(),
        12 => pool(true),
        2 => pool_dilated_padding(),
        11 => pool(false),
        16 => upsample(),
        4 => upsample_whole_product(),
        12 => merge(),
        8 => norm_act(),
        4 => group_norm(),
        12 => conv_transpose(),
        8 => pad(),
        6 => crop(),
        4 => shuffle(),
        3 => mul(),
        4 => pool_forms(),
        5 => channel_parts(),
    ]
}

// ---------------------------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// A short name of how two verdicts disagree, to group the report.
fn kind(op: &str, what: &str, a: &Verdict, b: &Verdict) -> String {
    let v = |x: &Verdict| if x.accepted() { "accepts" } else { "refuses" };
    if a.accepted() && b.accepted() {
        format!("{op}: {what} shape differs")
    } else {
        format!("{op}: {what} {} / runtime {}", v(a), v(b))
    }
}

#[test]
fn check_verdict_and_shape_equal_the_runtime_on_random_one_op_specs() {
    let cases = env_u64("OP_PROPS_CASES").unwrap_or(4000) as usize;
    let seed = env_u64("OP_PROPS_SEED").unwrap_or(10);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = any_case();

    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut per_op: BTreeMap<String, [usize; 3]> = BTreeMap::new(); // cases, accepted by runtime, disagreeing
    let mut bad = 0usize;
    for n in 0..cases {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        let text = yaml(&case);
        let (chk, compiled) = check(&text);
        let (chk_sym, _) = check(&with_symbol(&text));
        let rt = runtime(&case);
        let itp = compiled.as_ref().map(|c| interp(c, &case));
        let op = case.op();
        let e = per_op.entry(op.clone()).or_default();
        e[0] += 1;
        e[1] += usize::from(rt.accepted());
        let mut keys = Vec::new();
        if !chk.agrees(&rt) {
            keys.push(kind(&op, "check", &chk, &rt));
        }
        if !chk_sym.agrees(&rt) {
            keys.push(kind(&op, "check with a symbol", &chk_sym, &rt));
        }
        if let Some(i) = &itp {
            if !i.agrees(&rt) {
                keys.push(kind(&op, "interp", i, &rt));
            }
        }
        if keys.is_empty() {
            continue;
        }
        bad += 1;
        e[2] += 1;
        let line = format!(
            "#{n} {}\n      check:   {chk}\n      check with `symbols: {{H: 1..}}`: {chk_sym}\n      interp:  {}\n      runtime: {rt}",
            case.describe(),
            itp.map(|v| v.to_string()).unwrap_or_else(|| "(not run: check refused)".into())
        );
        groups.entry(keys.join(" + ")).or_default().push(line);
    }
    let stats: Vec<String> = per_op
        .iter()
        .map(|(op, [n, a, b])| format!("{op} {n} ({a} accepted by the runtime, {b} disagree)"))
        .collect();
    eprintln!("op_props: {cases} cases, seed {seed}: {}", stats.join("; "));
    if bad > 0 {
        let mut report = String::new();
        for (k, lines) in &groups {
            report.push_str(&format!("\n== {k}: {} case(s)\n", lines.len()));
            for l in lines {
                report.push_str("  ");
                report.push_str(l);
                report.push('\n');
            }
        }
        let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("op_props_disagreements.txt");
        let saved = match std::fs::write(&file, &report) {
            Ok(()) => format!(" (also written to {})", file.display()),
            Err(_) => String::new(),
        };
        let summary: Vec<String> = groups.iter().map(|(k, l)| format!("  {k}: {}", l.len())).collect();
        panic!(
            "{bad} of {cases} random one-op specs (seed {seed}): `fpn check` and fpn-runtime disagree{saved}\n{}\n{report}",
            summary.join("\n")
        );
    }
}
