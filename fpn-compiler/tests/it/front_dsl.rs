//! Tests of the `fpn!{}` token front end: value trees, token spans, the token source, errors.

use crate::common;
use common::values::{get, key_span, show};
use fpn_compiler::diag::{render, Diagnostic};
use fpn_compiler::front::dsl::{parse, token_table, Parsed};
use fpn_compiler::span::{SourceId, SourceKind, SourceMap, Span};
use fpn_compiler::value::ValueKind;
use proc_macro2::TokenStream;
use quote::quote;
use std::str::FromStr;

/// Parses tokens as source 0 named `fpn!`; returns the source map too.
fn load(tokens: TokenStream) -> (SourceMap, Parsed) {
    let parsed = parse(tokens, SourceId(0), "fpn!").unwrap_or_else(|d| panic!("{d:#?}"));
    let mut sm = SourceMap::new();
    sm.add(parsed.source.clone());
    (sm, parsed)
}

/// Parses Rust token text expecting errors; returns them with a source map able to render them.
fn errors(src: &str) -> (SourceMap, Vec<Diagnostic>) {
    let ts = TokenStream::from_str(src).expect("lexes");
    let diags = match parse(ts.clone(), SourceId(0), "fpn!") {
        Ok(p) => panic!("expected errors, parsed {}", show(&p.value)),
        Err(d) => d,
    };
    let (spans, source) = token_table(ts, "fpn!");
    let mut sm = SourceMap::new();
    sm.add(source);
    assert!(diags.iter().all(|d| (d.span.hi as usize) <= spans.len()));
    let out = render(&diags, &sm, false);
    assert!(out.contains("help:"), "{out}");
    (sm, diags)
}

/// The text a token span covers in the token source.
fn text(sm: &SourceMap, span: Span) -> String {
    let src = sm.get(span.source).expect("source");
    src.text()[src.byte_range(span)].to_string()
}

#[test]
fn neck_spec_tree() {
    let (sm, p) = load(quote! {
        name: Neck,
        inputs: { c3: [128, 52, 52] },
        nodes: {
            p3: { from: c3, conv: { out: 64, kernel: 1, padding: same } },
            up: { upsample: { match: c3 } }
        },
        outputs: [neck.p3],
        symbols: { H: 32..2048 }
    });
    assert_eq!(
        show(&p.value),
        "{name: \"Neck\", inputs: {c3: [128, 52, 52]}, \
         nodes: {p3: {from: \"c3\", conv: {out: 64, kernel: 1, padding: \"same\"}}, up: {upsample: {match: \"c3\"}}}, \
         outputs: [\"neck.p3\"], symbols: {H: \"32..2048\"}}"
    );
    let SourceKind::Tokens {
        text: src_text,
        offsets,
    } = &p.source.kind
    else {
        panic!("tokens")
    };
    assert_eq!(offsets.len(), p.spans.len());
    assert_eq!(p.source.name, "fpn!");
    assert!(
        src_text.starts_with("name: Neck, inputs: {c3: [128, 52, 52]}, nodes: {p3: {from: c3,"),
        "{src_text}"
    );
    // Every token's offsets cover exactly its text.
    assert_eq!(&src_text[offsets[0].0..offsets[0].1], "name");
    // Spans are token ranges: scalars one token, groups from `[`/`{` to the closing one.
    let name = get(&p.value, &["name"]);
    assert_eq!(name.span, Span::new(SourceId(0), 2, 3));
    assert_eq!(text(&sm, name.span), "Neck");
    assert_eq!(sm.location(name.span), "fpn!:1:7");
    let c3 = get(&p.value, &["inputs", "c3"]);
    assert_eq!(text(&sm, c3.span), "[128, 52, 52]");
    assert_eq!(sm.location(c3.span), "fpn!:1:26");
    let m = key_span(&p.value, &["nodes", "up", "upsample", "match"]);
    assert_eq!(text(&sm, m), "match");
    let col = src_text.find("match").expect("match") + 1;
    assert_eq!(sm.location(m), format!("fpn!:1:{col}"));
    let outputs = get(&p.value, &["outputs"]);
    assert_eq!(text(&sm, outputs.span), "[neck.p3]");
    let h = get(&p.value, &["symbols", "H"]);
    assert_eq!(text(&sm, h.span), "32..2048");
    assert_eq!(h.span.hi - h.span.lo, 4, "32 . . 2048 is four tokens");
    assert_eq!(sm.location(p.value.span), "fpn!:1:1");
}

#[test]
fn scalars_keys_and_runs() {
    let (_, p) = load(quote! {
        a: -3, b: -0.5, c: 3u8, d: 1e-4, e: "quoted str", f: true, g: false, h: null,
        act: leaky_relu(0.1), size: H/2, ref: neck.p3, r#type: x, in: y, fn: z, loop: 1, use: 2,
        "a-b": 3, 7: seven, list: [1, [2, 3], {k: v},], hex: 0x1F, neg_min: -9223372036854775808,
        half: 0.5f32, ch: 'x', path: a::b, empty: [], emptymap: {},
    });
    assert_eq!(
        show(&p.value),
        "{a: -3, b: -0.5f, c: 3, d: 0.0001f, e: \"quoted str\", f: true, g: false, h: null, \
         act: \"leaky_relu(0.1)\", size: \"H/2\", ref: \"neck.p3\", type: \"x\", in: \"y\", fn: \"z\", loop: 1, use: 2, \
         a-b: 3, 7: \"seven\", list: [1, [2, 3], {k: \"v\"}], hex: 31, neg_min: -9223372036854775808, \
         half: 0.5f, ch: \"x\", path: \"a::b\", empty: [], emptymap: {}}"
    );
}

#[test]
fn empty_body_is_an_empty_map() {
    let (_, p) = load(TokenStream::new());
    assert_eq!(p.value.kind, ValueKind::Map(vec![]));
    assert!(p.spans.is_empty());
}

#[test]
fn spans_map_back_to_source_locations() {
    let ts = TokenStream::from_str("name: Neck,\n  nodes: { p3: [1, 2] }").expect("lexes");
    let (sm, p) = load(ts);
    let p3 = key_span(&p.value, &["nodes", "p3"]);
    let start = p.spans[p3.lo as usize].start();
    assert_eq!((start.line, start.column), (2, 11));
    let list = get(&p.value, &["nodes", "p3"]);
    let open = p.spans[list.span.lo as usize].start();
    let close = p.spans[list.span.hi as usize - 1].start();
    assert_eq!((open.line, open.column, close.column), (2, 15, 20));
    assert_eq!(text(&sm, list.span), "[1, 2]");
}

#[test]
fn missing_colons_are_all_reported() {
    let (sm, diags) = errors("name Neck, inputs: { c3 [1] }, outputs: [p3]");
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert!(diags.iter().all(|d| d.code == "E0010"));
    // Token 1 is `Neck` (where `:` was expected), token 7 the `[` after `c3`.
    assert_eq!(diags[0].span, Span::new(SourceId(0), 1, 2));
    assert!(
        diags[0].message.contains("expected `:` after `name`"),
        "{}",
        diags[0].message
    );
    assert_eq!(sm.location(diags[0].span), "fpn!:1:6");
    assert_eq!(diags[1].span, Span::new(SourceId(0), 7, 8));
    assert_eq!(text(&sm, diags[1].span), "[");
}

#[test]
fn missing_comma() {
    let (sm, diags) = errors("name: Neck nodes: {}, a: 1 b: [2]");
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert!(diags
        .iter()
        .all(|d| d.code == "E0010" && d.message.contains("expected `,`")));
    assert_eq!(diags[0].span, Span::new(SourceId(0), 3, 4));
    assert!(diags[0].message.contains("`nodes`"));
    assert_eq!(sm.location(diags[0].span), "fpn!:1:12");
    assert_eq!(text(&sm, diags[1].span), "b");
}

#[test]
fn duplicate_key() {
    let (sm, diags) = errors("name: a, nodes: { p3: 1, p3: 2 }, name: b");
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert!(diags.iter().all(|d| d.code == "E0004"));
    // The second `p3` is token 11, the first token 7; the second `name` token 16, the first 0.
    assert_eq!(diags[0].span, Span::new(SourceId(0), 11, 12));
    assert_eq!(diags[0].secondary[0].span, Span::new(SourceId(0), 7, 8));
    assert_eq!(sm.location(diags[0].span), "fpn!:1:25");
    assert_eq!(diags[1].span, Span::new(SourceId(0), 16, 17));
    assert_eq!(diags[1].secondary[0].span, Span::new(SourceId(0), 0, 1));
    assert_eq!(sm.location(diags[1].secondary[0].span), "fpn!:1:1");
}

#[test]
fn number_too_large() {
    let (sm, diags) = errors("a: 12345678901234567890, b: -9223372036854775809, c: 1e999");
    assert_eq!(diags.len(), 3, "{diags:#?}");
    assert!(diags.iter().all(|d| d.code == "E0003"));
    assert_eq!(diags[0].span, Span::new(SourceId(0), 2, 3));
    assert!(diags[0].message.contains("12345678901234567890"));
    assert_eq!(sm.location(diags[0].span), "fpn!:1:4");
    assert_eq!(text(&sm, diags[1].span), "-9223372036854775809");
    assert_eq!(text(&sm, diags[2].span), "1e999");
}

#[test]
fn too_deep() {
    // The root map is level 1: 63 nested lists are fine, the 64th is not.
    let ok = format!("a: {}{}", "[".repeat(63), "]".repeat(63));
    assert!(parse(TokenStream::from_str(&ok).expect("lexes"), SourceId(0), "fpn!").is_ok());
    let (sm, diags) = errors(&format!("a: {}{}", "[".repeat(1000), "]".repeat(1000)));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, "E0005");
    // Tokens: `a` 0, `:` 1, brackets from 2: the 64th `[` is token 65, at column 4 + 63.
    assert_eq!(diags[0].span, Span::new(SourceId(0), 65, 66));
    assert_eq!(sm.location(diags[0].span), "fpn!:1:67");
}

#[test]
fn too_many_values() {
    let (_, diags) = errors(&format!("a: [{}]", vec!["1"; 200_001].join(",")));
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "E0006");
}

#[test]
fn bad_keys_and_values() {
    let (sm, diags) = errors("[x]: 1, a: , b: [1,,2], c:, d: e: f");
    assert_eq!(diags.len(), 5, "{diags:#?}");
    assert!(diags.iter().all(|d| d.code == "E0010"));
    assert!(diags[0].message.contains("expected a key"));
    assert_eq!(text(&sm, diags[0].span), "[");
    assert!(diags[1].message.contains("expected a value after `a:`"));
    assert!(diags[2].message.contains("expected a value before `,`"));
    assert!(diags[3].message.contains("after `c`"));
    assert!(diags[4].message.contains("found `e:`"));
}

#[test]
fn errors_render_with_snippet_and_help() {
    let (sm, diags) = errors("name Neck, nodes: { p3: 1, p3: 2 }");
    let out = render(&diags, &sm, false);
    assert!(out.contains("error[E0010]"), "{out}");
    assert!(out.contains("error[E0004]"), "{out}");
    assert!(out.contains("fpn!:1:6"), "{out}");
    assert!(out.contains("name Neck, nodes: {p3: 1, p3: 2}"), "{out}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, .. Default::default() })]

    #[test]
    fn arbitrary_tokens_never_panic(parts in proptest::collection::vec(proptest::sample::select(vec![
        "a", "match", "r#type", ":", "::", ",", "-", ".", "..", "/", "[", "]", "{", "}", "(", ")", "1", "0x1F",
        "99999999999999999999", "1e999", "1.5", "\"s\"", "'c'", "b\"x\"", "3u8", "true", "null", " ",
    ]), 0..48)) {
        let text: String = parts.join(" ");
        if let Ok(ts) = TokenStream::from_str(&text) {
            let (spans, _) = token_table(ts.clone(), "fpn!");
            match parse(ts, SourceId(0), "fpn!") {
                Ok(p) => proptest::prop_assert_eq!(p.spans.len(), spans.len()),
                Err(diags) => {
                    proptest::prop_assert!(!diags.is_empty());
                    for d in diags {
                        proptest::prop_assert!(d.span.hi as usize <= spans.len().max(1));
                    }
                }
            }
        }
    }
}

/// The `fpn!` spelling of what issue "Reach" added: graph-shaped blocks, `repeat`, `module:`
/// paths with numbers (`model.4`), references to a part (`y.1`) and to every part (`m`). The
/// tokens of `specs/yolov8n_c2f_block.yaml` written as `fpn!{}` compile to the same parameters,
/// in the same order, as the YAML.
#[test]
fn reach_spellings_compile_like_the_yaml() {
    let tokens = quote! {
        name: Yolov8nC2f,
        defaults: { cna: { names: ultralytics, act: silu, norm: { batch_norm: { eps: 0.001 } } } },
        blocks: {
            bottleneck: {
                params: [c],
                nodes: {
                    cv1: { cna: { out: c, kernel: 3 } },
                    cv2: { cna: { out: c, kernel: 3 } },
                    out: { add: [x, cv2] },
                },
                outputs: [out],
            },
            c2f: {
                params: [c, n],
                nodes: {
                    cv1: { cna: { out: c, kernel: 1 } },
                    y: { chunk: 2 },
                    m: { from: y.1, repeat: n, bottleneck: { c: c / 2 } },
                    cat: { concat: [y.0, y.1, m] },
                    cv2: { cna: { out: c, kernel: 1 } },
                },
                outputs: [cv2],
            },
        },
        inputs: { x: [64, H, W] },
        nodes: { layer4: { module: model.4, c2f: { c: 64, n: 2 } } },
        outputs: { cv2: layer4 },
    };
    let parsed = parse(tokens, SourceId(0), "fpn!").unwrap_or_else(|d| panic!("{d:#?}"));
    let dsl = fpn_compiler::compile_value(&parsed.value).unwrap_or_else(|d| panic!("{d:#?}"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/yolov8n_c2f_block.yaml");
    let yaml = fpn_compiler::compile_file(&mut SourceMap::new(), &root).unwrap_or_else(|d| panic!("{d:#?}"));
    let names = |c: &fpn_compiler::Compiled| -> Vec<(String, Vec<i64>)> {
        c.analysis
            .params
            .iter()
            .map(|p| (p.name.clone(), p.shape.clone()))
            .collect()
    };
    assert_eq!(names(&dsl), names(&yaml));
    assert!(names(&dsl).iter().any(|(n, _)| n == "model.4.m.1.cv2.bn.running_var"));
}
