//! Tests of the YAML front end: value trees, spans, every error code, hostile inputs.

use fpn_compiler::diag::{render, Diagnostic};
use fpn_compiler::front::yaml::{parse, parse_bytes};
use fpn_compiler::span::{SourceMap, Span};
use fpn_compiler::value::{Value, ValueKind};
use proptest::prelude::*;
use std::time::{Duration, Instant};

use crate::common;
use common::values::{get, key_span, show};

/// Parses `text` as file `spec.yaml`.
fn load(text: &str) -> (SourceMap, Result<Value, Diagnostic>) {
    let mut sm = SourceMap::new();
    let id = sm.add_text("spec.yaml", text);
    (sm, parse(text, id))
}

/// Parses `text`, expecting an error with `code` at `spec.yaml:<at>`; checks the rendering.
fn expect_err(text: &str, code: &str, at: &str) -> Diagnostic {
    let (sm, r) = load(text);
    let d = match r {
        Err(d) => d,
        Ok(v) => panic!("expected {code}, parsed {}", show(&v)),
    };
    assert_eq!(d.code, code, "{d:?}");
    assert_eq!(sm.location(d.span), format!("spec.yaml:{at}"), "{d:?}");
    let out = render(std::slice::from_ref(&d), &sm, false);
    assert!(out.contains("help:"), "{out}");
    assert!(out.contains(code), "{out}");
    d
}

/// Parses bytes, expecting an error with `code`; returns its location.
fn expect_bytes_err(bytes: &[u8], code: &str) -> String {
    let mut sm = SourceMap::new();
    let id = sm.add_text("junk.yaml", String::from_utf8_lossy(bytes).into_owned());
    let d = parse_bytes(bytes, id).expect_err("junk parsed");
    assert_eq!(d.code, code, "{d:?}");
    let out = render(std::slice::from_ref(&d), &sm, false);
    assert!(out.contains("help:"), "{out}");
    sm.location(d.span)
}

/// Runs `f`, asserting it takes less than `limit`.
fn fast<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    assert!(t.elapsed() < limit, "took {:?}", t.elapsed());
    r
}

const SPEC: &str = "\
# FPN neck: a small spec
name: Neck
title: \"Ñeck ✓\"
inputs:
  c3: [128, 52, 52]   # stride 8
  c4:
    - 256
    - 26
    - 26
nodes:
  p3:
    from: c3
    conv: { out: 64, kernel: 1, padding: same }
  # résumé: ünïcödé — a comment before a value
  up:
    upsample: { scale: 2.0, mode: \"nearest\" }
    act: 'leaky_relu'
    alpha: -0.5
    eps: 1e-4
    ratio: .5
    enabled: True
    bias: ~
    empty:
    big: -9223372036854775808
    hex: 0x1F
    oct: 0o17
    list:
      - neck.p3
      - 32..2048
      - H/2
      - \"42\"
outputs: [neck.p3, up]
";

#[test]
fn realistic_spec_tree() {
    let (sm, r) = load(SPEC);
    let v = r.expect("parses");
    assert_eq!(
        show(&v),
        "{name: \"Neck\", title: \"Ñeck ✓\", inputs: {c3: [128, 52, 52], c4: [256, 26, 26]}, \
         nodes: {p3: {from: \"c3\", conv: {out: 64, kernel: 1, padding: \"same\"}}, \
         up: {upsample: {scale: 2.0f, mode: \"nearest\"}, act: \"leaky_relu\", alpha: -0.5f, eps: 0.0001f, \
         ratio: 0.5f, enabled: true, bias: null, empty: null, big: -9223372036854775808, hex: 31, oct: 15, \
         list: [\"neck.p3\", \"32..2048\", \"H/2\", \"42\"]}}, outputs: [\"neck.p3\", \"up\"]}"
    );
    let text_of = |s: Span| &SPEC[s.lo as usize..s.hi as usize];
    // Root map starts at its first key (after the comment line).
    assert_eq!(sm.location(v.span), "spec.yaml:2:1");
    assert_eq!(sm.location(key_span(&v, &["name"])), "spec.yaml:2:1");
    assert_eq!(text_of(key_span(&v, &["name"])), "name");
    // A quoted scalar with non-ASCII text: span covers the quotes, in bytes.
    let title = get(&v, &["title"]);
    assert_eq!(text_of(title.span), "\"Ñeck ✓\"");
    assert_eq!(sm.location(title.span), "spec.yaml:3:8");
    // Flow sequence: span from `[` to `]`.
    let c3 = get(&v, &["inputs", "c3"]);
    assert_eq!(text_of(c3.span), "[128, 52, 52]");
    assert_eq!(sm.location(c3.span), "spec.yaml:5:7");
    // Block sequence: from the first `-` to the end of its last item.
    let c4 = get(&v, &["inputs", "c4"]);
    assert_eq!(sm.location(c4.span), "spec.yaml:7:5");
    assert_eq!(text_of(c4.span), "- 256\n    - 26\n    - 26");
    // Flow map.
    let conv = get(&v, &["nodes", "p3", "conv"]);
    assert_eq!(text_of(conv.span), "{ out: 64, kernel: 1, padding: same }");
    // Values after the non-ASCII comment: byte offsets still right.
    assert_eq!(sm.location(key_span(&v, &["nodes", "up"])), "spec.yaml:15:3");
    let alpha = get(&v, &["nodes", "up", "alpha"]);
    assert_eq!(text_of(alpha.span), "-0.5");
    assert_eq!(sm.location(alpha.span), "spec.yaml:18:12");
    assert_eq!(text_of(get(&v, &["nodes", "up", "act"]).span), "'leaky_relu'");
    let list = get(&v, &["nodes", "up", "list"]);
    let ValueKind::Seq(items) = &list.kind else {
        panic!("list")
    };
    assert_eq!(text_of(items[1].span), "32..2048");
    assert_eq!(sm.location(items[1].span), "spec.yaml:29:9");
    let outputs = get(&v, &["outputs"]);
    assert_eq!(text_of(outputs.span), "[neck.p3, up]");
    assert_eq!(sm.location(outputs.span), "spec.yaml:32:10");
}

#[test]
fn aliases_copy_the_anchored_value() {
    let (_, r) = load("base: &b { out: 64, kernel: [1, 1] }\nx: *b\nk: &k name\n*k : 3\n");
    let v = r.expect("parses");
    assert_eq!(
        show(&v),
        "{base: {out: 64, kernel: [1, 1]}, x: {out: 64, kernel: [1, 1]}, k: \"name\", name: 3}"
    );
}

#[test]
fn bom_and_crlf() {
    let text = "\u{feff}name: Neck\r\nout: 3\r\n";
    let (sm, r) = load(text);
    let v = r.expect("parses");
    assert_eq!(show(&v), "{name: \"Neck\", out: 3}");
    let out = get(&v, &["out"]);
    assert_eq!(&text[out.span.lo as usize..out.span.hi as usize], "3");
    assert_eq!(sm.location(out.span), "spec.yaml:2:6");
}

#[test]
fn e0001_syntax_errors() {
    let d = expect_err("name: Neck\nnodes:\n\tp3: 1\n", "E0001", "3:2");
    assert!(d.help.as_deref().unwrap_or("").contains("spaces"), "{d:?}");
    expect_err("outputs: [p3, p4\nname: x\n", "E0001", "2:5");
    expect_err("a: *nothing\n", "E0001", "1:4");
    expect_err("a: \"unterminated\n", "E0001", "1:4");
}

#[test]
fn e0002_empty_specs() {
    let d = expect_err("", "E0002", "1:1");
    for k in ["name", "inputs", "nodes", "outputs"] {
        assert!(d.help.as_deref().unwrap_or("").contains(k), "{d:?}");
    }
    expect_err("# only\n# comments\n\n", "E0002", "1:1");
    expect_err("   \n\n", "E0002", "1:1");
    expect_err("~\n", "E0002", "1:1");
    expect_err("# a comment\nnull\n", "E0002", "2:1");
    expect_err("---\n", "E0002", "2:1");
}

#[test]
fn e0003_numbers_out_of_range() {
    let d = expect_err("name: x\nsize: 12345678901234567890\n", "E0003", "2:7");
    assert!(d.message.contains("12345678901234567890"), "{d:?}");
    expect_err("a: [1, 9223372036854775808]\n", "E0003", "1:8");
    expect_err("a: 0xFFFFFFFFFFFFFFFF\n", "E0003", "1:4");
    expect_err("a: 1e400\n", "E0003", "1:4");
    expect_err("a:\n  b: .inf\n", "E0003", "2:6");
    expect_err("a: -.Inf\n", "E0003", "1:4");
    expect_err("a: .nan\n", "E0003", "1:4");
    // Quoted, they are strings.
    let (_, r) = load("a: \"12345678901234567890\"\nb: '.inf'\n");
    assert_eq!(show(&r.expect("parses")), "{a: \"12345678901234567890\", b: \".inf\"}");
}

#[test]
fn e0004_duplicate_keys() {
    let d = expect_err("name: a\nnodes: {}\nname: b\n", "E0004", "3:1");
    let (sm, _) = load("name: a\nnodes: {}\nname: b\n");
    assert_eq!(d.secondary.len(), 1);
    assert_eq!(sm.location(d.secondary[0].span), "spec.yaml:1:1");
    expect_err("a: { x: 1, y: 2, x: 3 }\n", "E0004", "1:18");
    // Same text, different style: still the same key.
    expect_err("\"a\": 1\na: 2\n", "E0004", "2:1");
}

#[test]
fn e0005_too_deep() {
    // 64 levels are fine, 65 are not.
    let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert!(load(&ok).1.is_ok());
    let bad = format!("{}{}", "[".repeat(65), "]".repeat(65));
    expect_err(&bad, "E0005", "1:65");
    // saphyr scans flow brackets ahead of the parser and stops at 255 levels itself: still E0005.
    let deep = "[".repeat(100_000);
    fast(Duration::from_secs(2), || expect_err(&deep, "E0005", "1:256"));
    let deep = format!("a: {}", "{a: ".repeat(100_000));
    fast(Duration::from_secs(2), || expect_err(&deep, "E0005", "1:256"));
    let deep = "- ".repeat(100_000);
    fast(Duration::from_secs(2), || expect_err(&deep, "E0005", "1:129"));
    // Block maps need one more column of indentation per level, so 100_000 levels would be 5 GB
    // of text; 3_000 levels (4.5 MB) show the parse stops at level 65 all the same.
    let mut deep = String::new();
    for i in 0..3_000 {
        deep.push_str(&" ".repeat(i));
        deep.push_str("a:\n");
    }
    fast(Duration::from_secs(2), || expect_err(&deep, "E0005", "65:65"));
    // An alias that would nest its value too deep.
    let mut s = format!("a: &a {}{}\n", "[".repeat(40), "]".repeat(40));
    s.push_str(&format!("b: {}*a{}\n", "[".repeat(30), "]".repeat(30)));
    expect_err(&s, "E0005", "2:34");
}

#[test]
fn e0006_alias_bomb() {
    let mut s = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, this) = (w[0], w[1]);
        let items = vec![format!("*{prev}"); 9].join(",");
        s.push_str(&format!("{this}: &{this} [{items}]\n"));
    }
    // Level f (line 6) is the first to pass 200_000 values: a..e and f's key and list hold
    // 74_739, and each `*e` adds 66_430; the second pushes past the limit.
    let d = fast(Duration::from_secs(1), || expect_err(&s, "E0006", "6:11"));
    assert!(d.label.contains("alias"), "{d:?}");
    // A plainly huge spec too.
    let big = format!("a: [{}]\n", vec!["1"; 200_001].join(","));
    // Root map, key and list are 3 values, so item 199_998 (column 399_999) is value 200_001.
    expect_err(&big, "E0006", "1:399999");
}

#[test]
fn e0007_non_scalar_keys() {
    expect_err("[1, 2]: x\n", "E0007", "1:1");
    expect_err("a:\n  {b: 1}: x\n", "E0007", "2:3");
    expect_err("? - a\n: b\n", "E0007", "1:3");
    expect_err("l: &l [1]\n*l : 2\n", "E0007", "2:1");
}

#[test]
fn e0008_unsupported_yaml() {
    let d = expect_err("name: !!python/object:os.system x\n", "E0008", "1:7");
    assert!(d.message.contains("!!python/object"), "{d:?}");
    expect_err("a: !!python/object {x: 1}\n", "E0008", "1:4");
    expect_err("a: !custom [1]\n", "E0008", "1:4");
    expect_err("name: a\n---\nname: b\n", "E0008", "2:1");
    expect_err("--- a\n--- b\n", "E0008", "2:1");
    expect_err("a: &r [*r]\n", "E0008", "1:8");
}

#[test]
fn e0009_not_utf8() {
    assert_eq!(
        expect_bytes_err(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10", "E0009"),
        "junk.yaml:1:1"
    );
    assert_eq!(
        expect_bytes_err(b"name: Neck\nsize: 3\xff\xfe\n", "E0009"),
        "junk.yaml:2:8"
    );
    // Pseudo-random bytes (fixed seed): the first bad byte is reported.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let junk: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let bad = std::str::from_utf8(&junk).expect_err("junk is not UTF-8").valid_up_to();
    let mut sm = SourceMap::new();
    let id = sm.add_text("junk.yaml", String::from_utf8_lossy(&junk).into_owned());
    let d = parse_bytes(&junk, id).expect_err("junk");
    assert_eq!(d.code, "E0009");
    assert_eq!(d.span.lo as usize, bad);
    // Truncated multi-byte character at the end.
    assert_eq!(expect_bytes_err(b"a: \xc3", "E0009"), "junk.yaml:1:4");
}

#[test]
fn utf8_junk_is_a_syntax_error() {
    expect_bytes_err(b"\0\x01\x02\x03\x7f binary\0", "E0001");
    expect_bytes_err("a: b\u{0}\u{1}c\n".as_bytes(), "E0001");
    expect_bytes_err("\u{1b}[31m\u{7}\n".as_bytes(), "E0001");
}

#[test]
fn valid_utf8_goes_through_parse_bytes() {
    let mut sm = SourceMap::new();
    let id = sm.add_text("ok.yaml", "a: 1\n");
    assert_eq!(show(&parse_bytes(b"a: 1\n", id).expect("parses")), "{a: 1}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_bytes(&bytes, Default::default());
    }

    #[test]
    fn yamlish_text_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "a", "b", ":", ": ", " ", "  ", "\n", "- ", "-", "[", "]", "{", "}", ",", "&a ", "*a", "&b ", "*b",
        "!", "!!str ", "\"", "'", "#", "\t", "? ", "|", ">", "1", "0x", "9999999999999999999", ".", "é",
        "~", "---\n", "...\n", "%YAML 1.2\n", "\\", "\0", "\u{feff}", "\r\n", ".inf", "1e", "e5", "@", "`",
    ]), 0..64)) {
        let text: String = parts.concat();
        if let Err(d) = parse(&text, Default::default()) {
            // Spans stay inside the text and on character boundaries.
            prop_assert!(d.span.hi as usize <= text.len());
            prop_assert!(text.is_char_boundary(d.span.lo as usize));
            prop_assert!(text.is_char_boundary(d.span.hi as usize));
            let mut sm = SourceMap::new();
            sm.add_text("p.yaml", text.clone());
            prop_assert!(render(&[d], &sm, false).contains("help:"));
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,200}") {
        let _ = parse(&text, Default::default());
    }
}
