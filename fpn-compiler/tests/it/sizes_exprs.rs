//! Input sizes written as expressions of a symbol (`H/8`, `2*H`, `3*H/4+1`): both front ends
//! read them alike, and for random multi-input specs the accepted set of `H` equals brute force,
//! where the truth of each value is computed here from the expressions' exact meaning and the
//! interpreter's size check (`interp::check_sizes`, which solves `H` back from the first input).

use fpn_compiler::interp;
use fpn_compiler::span::{SourceId, SourceMap};
use proptest::prelude::*;
use quote::quote;

fn compile(text: &str) -> fpn_compiler::Compiled {
    let mut sm = SourceMap::new();
    match fpn_compiler::compile_yaml(&mut sm, "t.yaml", text) {
        Ok(c) => c,
        Err(d) => panic!("{}\n{text}", fpn_compiler::render(&d, &sm)),
    }
}

fn describe(c: &fpn_compiler::Compiled) -> Vec<String> {
    c.sizes
        .iter()
        .map(|r| match r {
            Ok(a) => a.describe(),
            Err(e) => e.to_string(),
        })
        .collect()
}

const NECK_YAML: &str = "name: Neck
inputs:
  c3: [16, H/8, 2*W/16]
  c4: [32, H/16, W*2/32]
  c5: [64, H/32, W/32 - 1 + 1]
nodes:
  neck: {fpn: {in: [c3, c4, c5], width: 8, upsample: 2}}
outputs: [neck.p3, neck.p4, neck.p5]
";

#[test]
fn yaml_and_dsl_read_size_expressions_alike() {
    let y = compile(NECK_YAML);
    let tokens = quote! {
        name: Neck,
        inputs: { c3: [16, H/8, 2*W/16], c4: [32, H/16, W*2/32], c5: [64, H/32, W/32 - 1 + 1] },
        nodes: { neck: { fpn: { in: [c3, c4, c5], width: 8, upsample: 2 } } },
        outputs: [neck.p3, neck.p4, neck.p5],
    };
    let parsed = fpn_compiler::front::dsl::parse(tokens, SourceId(0), "fpn!").expect("parses");
    let d = fpn_compiler::compile_value(&parsed.value).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(describe(&y), describe(&d));
    let names = y.graph.symbol_names();
    let shapes = |c: &fpn_compiler::Compiled| -> Vec<String> {
        c.analysis
            .shapes
            .iter()
            .map(|s| fpn_compiler::infer::fmt_shape(s, &names))
            .collect()
    };
    assert_eq!(shapes(&y), shapes(&d));
    // Each level needs its division exact: H a multiple of 32, W of 32 (2*W/32 whole needs 16 | W,
    // W/32 needs 32 | W).
    assert_eq!(
        describe(&y),
        vec![
            "H ∈ {32, 64, 96, 128, 160, 192, …} = 32k, k ≥ 1".to_string(),
            "W ∈ {32, 64, 96, 128, 160, 192, …} = 32k, k ≥ 1".to_string()
        ]
    );
}

/// One input: height `mul*H/div + add` (exact division), then `downs` stride-2 convs.
#[derive(Clone, Debug)]
struct In {
    mul: i64,
    div: i64,
    add: i64,
    downs: Vec<(i64, i64)>, // (kernel, padding), stride 2
    up: i64,                // upsample scale before the merge (first input: 1, none)
}

fn input() -> impl Strategy<Value = In> {
    (
        1i64..=3,
        prop::sample::select(vec![1i64, 2, 3, 4, 8]),
        -2i64..=2,
        prop::collection::vec((1i64..=3, 0i64..=1), 0..=2),
        prop::sample::select(vec![1i64, 2, 4]),
    )
        .prop_map(|(mul, div, add, downs, up)| In {
            mul,
            div,
            add,
            downs,
            up,
        })
}

fn render(ins: &[In]) -> String {
    let mut s = String::from("name: R\ninputs:\n");
    for (i, x) in ins.iter().enumerate() {
        let add = match x.add {
            0 => String::new(),
            a if a > 0 => format!("+{a}"),
            a => a.to_string(),
        };
        s.push_str(&format!("  x{i}: [1, {}*H/{}{add}, 4]\n", x.mul, x.div));
    }
    s.push_str("nodes:\n");
    let mut tails = Vec::new();
    for (i, x) in ins.iter().enumerate() {
        let mut prev = format!("x{i}");
        for (j, (k, p)) in x.downs.iter().enumerate() {
            let n = format!("d{i}_{j}");
            s.push_str(&format!(
                "  {n}: {{from: {prev}, conv: {{out: 1, kernel: [{k}, 1], stride: [2, 1], padding: [{p}, 0]}}}}\n"
            ));
            prev = n;
        }
        if i > 0 && x.up > 1 {
            let n = format!("u{i}");
            s.push_str(&format!(
                "  {n}: {{from: {prev}, upsample: {{scale: [{}, 1]}}}}\n",
                x.up
            ));
            prev = n;
        }
        tails.push(prev);
    }
    s.push_str(&format!("  m: {{add: [{}]}}\n", tails.join(", ")));
    s.push_str("outputs: [m]\n");
    s
}

/// Makes the levels line up for most `H` (otherwise random specs rarely accept any size): the
/// first input is `H/d`, input `i` is `H/(d·up_i·2^(downs_0 − downs_i))` when that is whole.
fn align(mut ins: Vec<In>) -> Vec<In> {
    let (d0, n0) = (ins[0].div, ins[0].downs.len() as u32);
    ins[0].mul = 1;
    ins[0].add = 0;
    for x in &mut ins[1..] {
        let num = d0 * x.up * 2i64.pow(n0);
        let den = 2i64.pow(x.downs.len() as u32);
        if num % den == 0 {
            (x.mul, x.div, x.add) = (1, num / den, 0);
        }
    }
    ins
}

/// The truth at `h`: every input height is a whole number ≥ 1 and the interpreter's size check
/// (node sizes ≥ 1, merges equal) accepts tensors of exactly those heights.
fn truth(g: &fpn_compiler::ir::Graph, a: &fpn_compiler::infer::Analysis, ins: &[In], h: i64) -> bool {
    let mut sizes = Vec::new();
    for x in ins {
        let num = x.mul * h;
        if num % x.div != 0 || num / x.div + x.add < 1 {
            return false;
        }
        sizes.push((num / x.div + x.add) as usize);
    }
    let arrays: Vec<fpn_runtime::ndarray::Array4<f32>> = sizes
        .iter()
        .map(|&s| fpn_runtime::ndarray::Array4::zeros((1, 1, s, 4)))
        .collect();
    let names: Vec<String> = (0..ins.len()).map(|i| format!("x{i}")).collect();
    let views: Vec<(&str, fpn_runtime::ndarray::ArrayView4<f32>)> =
        names.iter().zip(&arrays).map(|(n, x)| (n.as_str(), x.view())).collect();
    interp::check_sizes(g, a, &views).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("SIZES_PROP_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn expression_inputs_match_brute_force(ins in prop::collection::vec(input(), 2..=3), aligned in any::<bool>()) {
        let ins = if aligned { align(ins) } else { ins };
        let text = render(&ins);
        let mut sm = SourceMap::new();
        let id = sm.add_text("t.yaml", text.clone());
        let v = fpn_compiler::front::yaml::parse(&text, id).expect("yaml");
        let spec = fpn_compiler::ast::read(&v).expect("spec");
        let (g, _) = fpn_compiler::lower::lower(&spec).expect("lowers");
        let (a, cons, errors) = fpn_compiler::infer::infer(&g);
        prop_assert!(errors.is_empty(), "{}", text);
        let sizes = fpn_compiler::sizes::analyse(&g, &cons);
        prop_assert_eq!(sizes.len(), 1, "{}", text);
        let acc = sizes[0].as_ref().expect("analysed");
        let top = (acc.threshold + 4 * acc.period).clamp(64, 2000);
        if std::env::var_os("SIZES_PROP_VERBOSE").is_some() {
            eprintln!("{}", acc.describe());
        }
        for h in 1..=top {
            prop_assert_eq!(acc.contains(h), truth(&g, &a, &ins, h), "H = {} ({})\n{}", h, acc.describe(), text);
        }
    }
}

/// A two-input spec `add(chain(x0), chain(x1))` with independent symbols `H0`, `H1`: each chain
/// is stride-2 convs `(kernel, padding)` then a nearest upsample by `up`.
#[derive(Clone, Debug)]
struct Pair {
    chains: [(Vec<(i64, i64)>, i64); 2],
}

fn pair() -> impl Strategy<Value = Pair> {
    let chain = (
        prop::collection::vec((1i64..=3, 0i64..=1), 0..=2),
        prop::sample::select(vec![1i64, 2, 3, 4]),
    );
    (chain.clone(), chain).prop_map(|(a, b)| Pair { chains: [a, b] })
}

fn render_pair(p: &Pair) -> String {
    let mut s = String::from("name: J\ninputs:\n  x0: [1, H0, 4]\n  x1: [1, H1, 4]\nnodes:\n");
    let mut tails = Vec::new();
    for (i, (downs, up)) in p.chains.iter().enumerate() {
        let mut prev = format!("x{i}");
        for (j, (k, pad)) in downs.iter().enumerate() {
            let n = format!("d{i}_{j}");
            s.push_str(&format!(
                "  {n}: {{from: {prev}, conv: {{out: 1, kernel: [{k}, 1], stride: [2, 1], padding: [{pad}, 0]}}}}\n"
            ));
            prev = n;
        }
        if *up > 1 {
            let n = format!("u{i}");
            s.push_str(&format!("  {n}: {{from: {prev}, upsample: {{scale: [{up}, 1]}}}}\n"));
            prev = n;
        }
        tails.push(prev);
    }
    s.push_str(&format!("  m: {{add: [{}]}}\noutputs: [m]\n", tails.join(", ")));
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("SIZES_PROP_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    /// Joint sets against every pair `(H0, H1)` up to 40 (the interpreter's size check up to 20,
    /// the constraints beyond): the
    /// pair passes exactly when the free symbol's value is accepted and the other is its
    /// function (eliminated) or one of its tabulated values (related); and beyond 40, up to two
    /// periods past the tabulated range, against the constraints at every `H1` up to `17·H0 + 20`.
    #[test]
    fn joint_sets_match_brute_force_over_pairs(p in pair()) {
        let text = render_pair(&p);
        let c = compile_unchecked(&text);
        let (g, a, cons, sizes) = (&c.0, &c.1, &c.3, &c.2);
        let free = sizes
            .iter()
            .position(|r| r.as_ref().is_ok_and(|a| !a.dependents.is_empty() || !a.related.is_empty()));
        let Some(free) = free else {
            // neither a function nor of the related form: the old "only checked for given values"
            for r in sizes {
                prop_assert!(matches!(r, Err(fpn_compiler::sizes::SizesError::Joint(..))), "{:?}\n{}", r, text);
            }
            return Ok(());
        };
        let acc = sizes[free].as_ref().expect("free");
        if std::env::var_os("SIZES_PROP_VERBOSE").is_some() {
            eprintln!("{}", acc.describe());
        }
        let other = 1 - free;
        let claimed = |x: i64, v: i64| -> bool {
            if !acc.contains(x) {
                return false;
            }
            match (acc.dependents.first(), acc.related.first()) {
                (Some(dep), _) => {
                    let mut env = vec![0i64; 2];
                    env[free] = x;
                    dep.dim.eval(&env) == Some(v)
                }
                (None, Some(r)) => r.values(x).contains(&v),
                (None, None) => false,
            }
        };
        match &sizes[other] {
            Err(fpn_compiler::sizes::SizesError::Dependent(..)) => prop_assert_eq!(acc.dependents.len(), 1),
            Err(fpn_compiler::sizes::SizesError::Related(..)) => prop_assert_eq!(acc.related.len(), 1),
            r => prop_assert!(false, "{:?}", r),
        }
        for x in 1..=40i64 {
            for v in 1..=40i64 {
                let mut hw = [0i64; 2];
                hw[free] = x;
                hw[other] = v;
                let arrays: Vec<fpn_runtime::ndarray::Array4<f32>> =
                    hw.iter().map(|&h| fpn_runtime::ndarray::Array4::zeros((1, 1, h as usize, 4))).collect();
                let views = [("x0", arrays[0].view()), ("x1", arrays[1].view())];
                // the interpreter (whose refusals re-run the analysis for their message) on
                // the 20×20 corner, the constraints on the rest
                let truth = if x <= 20 && v <= 20 {
                    interp::check_sizes(g, a, &views).is_ok()
                } else {
                    fpn_compiler::infer::check(g, a, cons, &hw).is_empty()
                };
                prop_assert_eq!(claimed(x, v), truth, "H0, H1 = {:?}: {}\n{}", hw, acc.describe(), text);
            }
        }
        // past the brute-forced square: the periodic extension of the related values
        if let Some(r) = acc.related.first() {
            // chains scale by at most 4 up and 4 down, so a fitting H1 is below 17·H0 + 20
            let top = (r.upto + 2 * r.shift.0).min(200);
            for x in (41..=top).step_by(((top - 40) / 4).max(1) as usize) {
                for v in 1..=17 * x + 20 {
                    let mut env = vec![0i64; 2];
                    env[free] = x;
                    env[other] = v;
                    let truth = fpn_compiler::infer::check(g, a, cons, &env).is_empty();
                    prop_assert_eq!(claimed(x, v), truth, "env {:?}: {}\n{}", env, acc.describe(), text);
                }
            }
        }
    }
}

type Unchecked = (
    fpn_compiler::ir::Graph,
    fpn_compiler::infer::Analysis,
    Vec<Result<fpn_compiler::sizes::Accepted, fpn_compiler::sizes::SizesError>>,
    Vec<fpn_compiler::infer::Constraint>,
);

/// The middle of the compiler without the "no size works" rejection.
fn compile_unchecked(text: &str) -> Unchecked {
    let mut sm = SourceMap::new();
    let id = sm.add_text("t.yaml", text);
    let v = fpn_compiler::front::yaml::parse(text, id).expect("yaml");
    let spec = fpn_compiler::ast::read(&v).expect("spec");
    let (g, _) = fpn_compiler::lower::lower(&spec).expect("lowers");
    let (a, cons, errors) = fpn_compiler::infer::infer(&g);
    assert!(errors.is_empty(), "{text}");
    let sizes = fpn_compiler::sizes::analyse(&g, &cons);
    (g, a, sizes, cons)
}

#[test]
fn joint_neck_is_described_jointly() {
    let c = compile(
        "name: N\ninputs:\n  c3: [8, H3, W3]\n  c4: [8, H4, W4]\n  c5: [8, H5, W5]\n\
         nodes:\n  neck: {fpn: {in: [c3, c4, c5], width: 8, upsample: 2}}\noutputs: [neck.p3]\n",
    );
    assert_eq!(
        describe(&c),
        vec![
            "H3 ∈ {4, 8, 12, 16, 20, 24, …} = 4k, k ≥ 1; H4 = H3/2, H5 = H3/4",
            "W3 ∈ {4, 8, 12, 16, 20, 24, …} = 4k, k ≥ 1; W4 = W3/2, W5 = W3/4",
            "H4 = H3/2: determined by `H3` (see the joint set of `H3`)",
            "W4 = W3/2: determined by `W3` (see the joint set of `W3`)",
            "H5 = H3/4: determined by `H3` (see the joint set of `H3`)",
            "W5 = W3/4: determined by `W3` (see the joint set of `W3`)",
        ]
    );
}

#[test]
fn rounding_on_both_sides_gives_the_related_values() {
    // ceil(H3/4) = ceil(H4/2): H3 = 8 allows H4 = 3 and 4, so H4 is no function of H3; the
    // joint set lists, for each H3, the H4 that go with it, and repeats with (Δx, Δy) = (4, 2)
    let c = compile(
        "name: N\ninputs:\n  c3: [8, H3, W]\n  c4: [8, H4, W]\nnodes:\n\
         \x20 a: {from: c3, conv: {out: 8, kernel: 3, stride: [4, 1], padding: 1}}\n\
         \x20 b: {from: c4, conv: {out: 8, kernel: 3, stride: [2, 1], padding: 1}}\n\
         \x20 m: {add: [a, b]}\noutputs: [m]\n",
    );
    assert_eq!(
        describe(&c),
        vec![
            "H3 ∈ {1, 2, 3, 4, 5, 6, …} = every size ≥ 1; H4 is any value with ceil(H4/2) = ceil(H3/4) \
             (H3 = 1: {1, 2}; H3 = 2: {1, 2}; H3 = 3: {1, 2}, …)",
            "W ∈ {1, 2, 3, 4, 5, 6, …} = every size ≥ 1",
            "H4 is tied to `H3` by ceil(H4/2) = ceil(H3/4) (see the joint set of `H3`)",
        ]
    );
    let r = &c.sizes[0].as_ref().unwrap().related[0];
    assert_eq!(r.shift, (4, 2));
    for x in 1..=1000i64 {
        let m = (x + 3) / 4; // ceil(x/4) = ceil(y/2) ⇔ y ∈ {2m − 1, 2m}
        assert_eq!(r.values(x), vec![2 * m - 1, 2 * m], "H3 = {x}");
    }
}
