//! `sizes::analyse` against brute force: for random pyramid specs with `x: [3, H, W]`, every
//! value up to well past the threshold is accepted by the analysis exactly when
//! `infer::check` finds no failing constraint.

use fpn_compiler::infer::{self, Analysis, Constraint};
use fpn_compiler::ir::Graph;
use fpn_compiler::sizes::{self, Accepted, SizesError};
use fpn_compiler::span::SourceMap;
use proptest::prelude::*;

/// A size-reducing op.
#[derive(Clone, Debug)]
enum Down {
    Conv {
        out: i64,
        k: i64,
        s: i64,
        p: i64,
        reflect: bool,
    },
    Pool {
        max: bool,
        k: i64,
        s: i64,
        p: i64,
        ceil: bool,
    },
    /// `padding: tf_same` (TensorFlow's `SAME`): a conv (`kind` 0), max pool (1) or avg pool (2).
    TfSame { kind: u8, k: i64, s: i64 },
}

/// How a skip body returns to its input's size.
#[derive(Clone, Debug)]
enum Up {
    Two,
    /// `match:` the skip's input node (`None`) or an arbitrary earlier named node.
    Match(Option<usize>),
}

/// `skip: [first, rest…, inner skip?, upsample]`.
#[derive(Clone, Debug)]
struct Skip {
    first: Down,
    rest: Vec<Down>,
    inner: Option<Box<Skip>>,
    up: Up,
}

#[derive(Clone, Debug)]
enum Item {
    Down(Down),
    Skip(Skip),
}

/// A merge `add(lateral(n_i), upsample(lateral(n_j)))`, indices taken modulo the chain length.
#[derive(Clone, Debug)]
struct Merge {
    i: usize,
    j: usize,
    /// 0: scale `2^(depth difference)`, 1: scale 2, 2: `match` the lateral.
    up: u8,
}

#[derive(Clone, Debug)]
struct Spec {
    chain: Vec<Item>,
    merges: Vec<Merge>,
}

fn down(strides: std::ops::RangeInclusive<i64>) -> BoxedStrategy<Down> {
    let conv = (1i64..=5, strides.clone(), any::<bool>(), 2i64..=4)
        .prop_flat_map(|(k, s, reflect, out)| (0..=k / 2).prop_map(move |p| Down::Conv { out, k, s, p, reflect }));
    let pool = (any::<bool>(), 1i64..=4, strides.clone(), any::<bool>())
        .prop_flat_map(|(max, k, s, ceil)| (0..=k / 2).prop_map(move |p| Down::Pool { max, k, s, p, ceil }));
    prop_oneof![3 => conv, 2 => pool, 1 => tf_same(strides)].boxed()
}

fn tf_same(strides: std::ops::RangeInclusive<i64>) -> BoxedStrategy<Down> {
    (0u8..3, 1i64..=5, strides)
        .prop_map(|(kind, k, s)| Down::TfSame { kind, k, s })
        .boxed()
}

/// Like [`down`] but with padding `(k-1)/2` or `k/2`, so skip bodies line up more often.
fn aligned_down(strides: std::ops::RangeInclusive<i64>) -> BoxedStrategy<Down> {
    let pad = |k: i64| prop_oneof![Just((k - 1) / 2), Just(k / 2)];
    let conv = (1i64..=5, strides.clone(), any::<bool>(), 2i64..=4)
        .prop_flat_map(move |(k, s, reflect, out)| pad(k).prop_map(move |p| Down::Conv { out, k, s, p, reflect }));
    let pool = (any::<bool>(), 1i64..=4, strides.clone(), any::<bool>())
        .prop_flat_map(move |(max, k, s, ceil)| pad(k).prop_map(move |p| Down::Pool { max, k, s, p, ceil }));
    prop_oneof![3 => conv, 2 => pool, 1 => tf_same(strides)].boxed()
}

fn up() -> BoxedStrategy<Up> {
    prop_oneof![
        2 => Just(Up::Two),
        2 => Just(Up::Match(None)),
        1 => (0usize..8).prop_map(|i| Up::Match(Some(i))),
    ]
    .boxed()
}

fn skip(depth: u32) -> BoxedStrategy<Skip> {
    let inner = if depth == 0 {
        Just(None).boxed()
    } else {
        prop::option::weighted(0.4, skip(depth - 1).prop_map(Box::new)).boxed()
    };
    (
        prop_oneof![3 => aligned_down(2..=2), 1 => down(2..=2)],
        prop::collection::vec(prop_oneof![3 => aligned_down(1..=1), 1 => down(1..=1)], 0..=1),
        inner,
        up(),
    )
        .prop_map(|(first, rest, inner, up)| Skip { first, rest, inner, up })
        .boxed()
}

fn spec() -> impl Strategy<Value = Spec> {
    let item = prop_oneof![3 => down(1..=3).prop_map(Item::Down), 2 => skip(2).prop_map(Item::Skip)];
    let merge = (
        0usize..5,
        0usize..5,
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 2 => Just(2u8)],
    )
        .prop_map(|(i, j, up)| Merge { i, j, up });
    (prop::collection::vec(item, 1..=5), prop::collection::vec(merge, 0..=2))
        .prop_map(|(chain, merges)| Spec { chain, merges })
}

fn render_down(d: &Down) -> String {
    match d {
        Down::Conv { out, k, s, p, reflect } => {
            let mode = if *reflect { ", padding_mode: reflect" } else { "" };
            format!("{{conv: {{out: {out}, kernel: {k}, stride: {s}, padding: {p}{mode}}}}}")
        }
        Down::Pool { max, k, s, p, ceil } => {
            let op = if *max { "max_pool" } else { "avg_pool" };
            format!("{{{op}: {{kernel: {k}, stride: {s}, padding: {p}, ceil_mode: {ceil}}}}}")
        }
        Down::TfSame { kind, k, s } => match kind {
            0 => format!("{{conv: {{out: 3, kernel: {k}, stride: {s}, padding: tf_same}}}}"),
            1 => format!("{{max_pool: {{kernel: {k}, stride: {s}, padding: tf_same}}}}"),
            _ => format!("{{avg_pool: {{kernel: {k}, stride: {s}, padding: tf_same}}}}"),
        },
    }
}

/// `names` are the named nodes before the skip; the last one is its input.
fn render_skip(sk: &Skip, names: &[String]) -> String {
    let mut items = vec![render_down(&sk.first)];
    items.extend(sk.rest.iter().map(render_down));
    if let Some(inner) = &sk.inner {
        items.push(render_skip(inner, names));
    }
    items.push(match sk.up {
        Up::Two => "{upsample: 2}".to_string(),
        Up::Match(None) => format!("{{upsample: {{match: {}}}}}", names.last().unwrap()),
        Up::Match(Some(i)) => format!("{{upsample: {{match: {}}}}}", names[i % names.len()]),
    });
    format!("{{skip: [{}]}}", items.join(", "))
}

/// The spec as YAML; merges upsample by the product of the strides between the two nodes.
fn render(spec: &Spec) -> String {
    let mut out = String::from("name: Prop\ninputs:\n  x: [3, H, W]\nnodes:\n");
    let mut names = vec!["x".to_string()];
    let mut stride = vec![1i64];
    for (n, item) in spec.chain.iter().enumerate() {
        let (text, s) = match item {
            Item::Down(d) => {
                let s = match d {
                    Down::Conv { s, .. } | Down::Pool { s, .. } | Down::TfSame { s, .. } => *s,
                };
                (render_down(d), s)
            }
            Item::Skip(sk) => (render_skip(sk, &names), 1),
        };
        out.push_str(&format!("  n{n}: {text}\n"));
        names.push(format!("n{n}"));
        stride.push(stride.last().unwrap() * s);
    }
    let len = spec.chain.len();
    let mut outputs = vec![format!("n{}", len - 1)];
    for (m, mg) in spec.merges.iter().enumerate() {
        let (i, j) = (mg.i % len, mg.j % len);
        if i >= j {
            continue;
        }
        out.push_str(&format!("  l{m}: {{from: n{i}, conv: {{out: 4, kernel: 1}}}}\n"));
        out.push_str(&format!("  t{m}: {{from: n{j}, conv: {{out: 4, kernel: 1}}}}\n"));
        let ratio = (stride[j + 1] / stride[i + 1]).clamp(1, 64);
        let up = match mg.up {
            0 => format!("{{upsample: {ratio}}}"),
            1 => "{upsample: 2}".to_string(),
            _ => format!("{{upsample: {{match: l{m}}}}}"),
        };
        out.push_str(&format!("  u{m}: {up}\n"));
        out.push_str(&format!("  m{m}: {{add: [l{m}, u{m}]}}\n"));
        outputs.push(format!("m{m}"));
    }
    out.push_str(&format!("outputs: [{}]\n", outputs.join(", ")));
    out
}

type Pipeline = (Graph, Analysis, Vec<Constraint>, Vec<Result<Accepted, SizesError>>);

/// The middle of the compiler without the "no size works" rejection, so empty sets are tested too.
fn pipeline(text: &str) -> Result<Pipeline, String> {
    let mut sm = SourceMap::new();
    let id = sm.add_text("t.yaml", text);
    let v = fpn_compiler::front::yaml::parse(text, id).map_err(|d| fpn_compiler::render(&[d], &sm))?;
    let spec = fpn_compiler::ast::read(&v).map_err(|d| fpn_compiler::render(&d, &sm))?;
    let (graph, _) = fpn_compiler::lower::lower(&spec).map_err(|d| fpn_compiler::render(&d, &sm))?;
    let (analysis, cons, errors) = infer::infer(&graph);
    if !errors.is_empty() {
        return Err(fpn_compiler::render(&errors, &sm));
    }
    let sizes = sizes::analyse(&graph, &cons);
    Ok((graph, analysis, cons, sizes))
}

fn limit(acc: &Accepted) -> i64 {
    acc.period
        .saturating_mul(4)
        .saturating_add(acc.threshold)
        .clamp(64, 5000)
}

/// Compares every `Ok` symbol's set with `check` at every value up to [`limit`]. The spec is
/// symmetric in H and W, so the sets must agree, and `[v, v]` is accepted iff `v` is.
fn brute(p: &Pipeline) -> Result<(), String> {
    let (g, a, cons, sizes) = p;
    let n = g.symbols.len();
    for (s, r) in sizes.iter().enumerate() {
        let Ok(acc) = r else { continue };
        // The other symbols: an accepted value of their own if there is one, else the same `v`.
        let others: Vec<Option<i64>> = sizes
            .iter()
            .map(|o| o.as_ref().ok().and_then(|o| o.first(1).first().copied()))
            .collect();
        // `check` does not know the declared bounds; `contains` is false outside them by definition.
        let top = limit(acc).min(acc.max.unwrap_or(i64::MAX));
        for v in acc.min..=top {
            let same: Vec<i64> = vec![v; n];
            let ok_same = infer::check(g, a, cons, &same).is_empty();
            let all_ok = sizes.iter().all(|o| o.as_ref().is_ok_and(|o| o.contains(v)));
            if sizes.iter().all(|o| o.is_ok()) && all_ok != ok_same {
                return Err(format!(
                    "{}: at {v} (all symbols) the sets say {all_ok}, check says {ok_same}",
                    acc.symbol
                ));
            }
            if others.iter().enumerate().all(|(i, o)| i == s || o.is_some()) {
                let env: Vec<i64> = (0..n).map(|i| if i == s { v } else { others[i].unwrap() }).collect();
                let ok = infer::check(g, a, cons, &env).is_empty();
                if acc.contains(v) != ok {
                    return Err(format!(
                        "{}: at env {env:?} contains = {}, check empty = {ok} ({})",
                        acc.symbol,
                        acc.contains(v),
                        acc.describe()
                    ));
                }
            } else if ok_same {
                return Err(format!(
                    "{}: check accepts {v} but some symbol has no accepted value",
                    acc.symbol
                ));
            }
        }
    }
    // H and W see the same ops: identical sets up to the name.
    if let [Ok(h), Ok(w)] = &sizes[..] {
        let mut w = w.clone();
        w.symbol = h.symbol.clone();
        if *h != w {
            return Err(format!("H and W differ: {h:?} vs {w:?}"));
        }
    }
    Ok(())
}

proptest! {
    // 64 cases by default; `SIZES_PROP_CASES=5000` for a longer search.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("SIZES_PROP_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn analyse_matches_brute_force(s in spec()) {
        let text = render(&s);
        let p = match pipeline(&text) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("generator made an invalid spec:\n{text}\n{e}"))),
        };
        prop_assert_eq!(p.0.symbols.len(), 2, "spec:\n{}", text);
        if std::env::var_os("SIZES_PROP_VERBOSE").is_some() {
            for r in &p.3 {
                match r {
                    Ok(acc) => eprintln!("{} (T = {}, P = {})", acc.describe(), acc.threshold, acc.period),
                    Err(e) => eprintln!("{e}"),
                }
            }
        }
        if let Err(msg) = brute(&p) {
            return Err(TestCaseError::fail(format!("{msg}\nspec:\n{text}")));
        }
    }
}

fn compile(text: &str) -> fpn_compiler::Compiled {
    let mut sm = SourceMap::new();
    match fpn_compiler::compile_yaml(&mut sm, "t.yaml", text) {
        Ok(c) => c,
        Err(d) => panic!("{}\n{text}", fpn_compiler::render(&d, &sm)),
    }
}

fn spec_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../specs")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn seed000_block_accepts_multiples_of_four_from_eight() {
    // the input is `[cin, size, size]` (spec parameters): make its size symbolic
    let text = spec_file("seed000_pyramid_block.yaml").replace("x: [cin, size, size]", "x: [cin, H, W]");
    assert!(text.contains("x: [cin, H, W]"));
    let c = compile(&text);
    assert_eq!(c.sizes.len(), 2);
    for r in &c.sizes {
        let acc = r.as_ref().unwrap();
        assert!(acc.describe().contains("4k, k ≥ 2"), "{}", acc.describe());
        for v in 1..=200 {
            assert_eq!(acc.contains(v), v >= 8 && v % 4 == 0, "{v}");
        }
    }
    brute(&(c.graph, c.analysis, c.constraints, c.sizes)).unwrap();
}

/// Every value from the first accepted one on (up to `max`).
fn assert_every_size_from_min(acc: &Accepted) -> i64 {
    let first = acc.first(1)[0];
    let top = acc.max.unwrap_or(limit(acc)).min(limit(acc).max(first + 256));
    for v in 1..=top {
        assert_eq!(acc.contains(v), v >= first, "{v}: {}", acc.describe());
    }
    assert!(acc.describe().contains("every size"), "{}", acc.describe());
    first
}

#[test]
fn resnet50_fpn_accepts_every_size_from_its_minimum() {
    // As written (H, W: 32..4096).
    let text = spec_file("resnet50_fpn.yaml");
    let c = compile(&text);
    for r in &c.sizes {
        let acc = r.as_ref().unwrap();
        let first = assert_every_size_from_min(acc);
        assert_eq!(first, 32);
        assert!(
            acc.describe().contains("every size from 32 to 4096"),
            "{}",
            acc.describe()
        );
    }
    brute(&(c.graph, c.analysis, c.constraints, c.sizes)).unwrap();

    // Unbounded: every size from the smallest one the ResNet body allows.
    let unbounded: String = text
        .lines()
        .filter(|l| !l.starts_with("symbols:") && !l.starts_with("  H: ") && !l.starts_with("  W: "))
        .collect::<Vec<_>>()
        .join("\n");
    let c = compile(&unbounded);
    for r in &c.sizes {
        let acc = r.as_ref().unwrap();
        let first = assert_every_size_from_min(acc);
        assert!(
            acc.describe().contains(&format!("every size ≥ {first}")),
            "{}",
            acc.describe()
        );
    }
    brute(&(c.graph, c.analysis, c.constraints, c.sizes)).unwrap();
}
