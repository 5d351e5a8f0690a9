//! Hostile and malformed input through the whole compiler (`compile_yaml`, `compile_file`):
//! every case must come back as `Err` with at least one error diagnostic (a 2000-node chain as
//! `Ok`), render without panicking, and never panic or hang.

use fpn_compiler::diag::Diagnostic;
use fpn_compiler::span::SourceMap;
use fpn_compiler::{compile_file, compile_value, compile_yaml, render, Compiled};
use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Seed 000, a valid spec the mutation test starts from.
const SEED: &str = include_str!("../../../specs/seed000_pyramid_block.yaml");

/// A hang guard, not a speed target (those are measured by hand in release, see the hostile
/// corpus notes): a compile this long has lost its work bound. Generous, so a loaded 2-core
/// machine never trips it.
const SLOW: Duration = Duration::from_secs(120);

/// A small valid spec with `{OP}` in place of the one node's op, `{IN}` of the input.
fn tiny(input: &str, op: &str) -> String {
    format!("name: Tiny\ninputs:\n  x: {input}\nnodes:\n  n: {op}\noutputs: [n]\n")
}

/// Compiles text, catching panics; renders the diagnostics too (rendering must not panic).
fn run(text: &str) -> Result<Result<Compiled, Vec<Diagnostic>>, String> {
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut sources = SourceMap::new();
        let r = compile_yaml(&mut sources, "bad.yaml", text);
        if let Err(d) = &r {
            let _ = render(d, &sources);
        }
        r
    }))
    .map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    let t = start.elapsed();
    if t > SLOW {
        return Err(format!("took {t:?}"));
    }
    r
}

/// Runs each case and collects every one that panics, succeeds, or fails without an error.
fn expect_errors(cases: &[(&str, String)]) {
    let mut bad = Vec::new();
    for (what, text) in cases {
        match run(text) {
            Err(panic) => bad.push(format!("{what}: PANIC {panic}")),
            Ok(Ok(_)) => bad.push(format!("{what}: compiled (expected an error)")),
            Ok(Err(d)) if !d.iter().any(Diagnostic::is_error) => {
                bad.push(format!("{what}: Err without an error diagnostic"))
            }
            Ok(Err(_)) => {}
        }
    }
    assert!(bad.is_empty(), "{} case(s) misbehaved:\n{}", bad.len(), bad.join("\n"));
}

fn codes(text: &str) -> Vec<&'static str> {
    match run(text) {
        Ok(Err(d)) => d.iter().map(|d| d.code.as_str()).collect(),
        Ok(Ok(_)) => panic!("compiled:\n{text}"),
        Err(p) => panic!("panicked: {p}\n{text}"),
    }
}

#[test]
fn yaml_syntax_errors() {
    let cases: Vec<(&str, String)> = [
        ("unclosed flow list", "name: A\ninputs: {x: [3, 32, 32}\n"),
        ("unclosed flow map", "name: A\ninputs: {x: [3, 32, 32]\n"),
        ("unclosed quote", "name: \"A\ninputs: {}\n"),
        ("bad indentation", "name: A\n  inputs: x\n nodes: y\n"),
        ("tab indentation", "name: A\ninputs:\n\tx: [3, 32, 32]\n"),
        ("unknown anchor", "name: *nothing\n"),
        ("stray colon", ": : :\n"),
        ("lone bracket", "]"),
        ("bad escape", "name: \"\\q\"\n"),
        ("directive only", "%YAML 1.2\n"),
        ("two documents", "name: A\n---\nname: B\n"),
        ("tag", "name: !!str A\n"),
        ("recursive alias", "a: &a [*a]\n"),
        ("map key is a list", "[a]: 1\n"),
        ("byte order mark mid-text", "name: A\u{feff}\n"),
    ]
    .iter()
    .map(|(w, t)| (*w, t.to_string()))
    .collect();
    expect_errors(&cases);
    assert!(codes("name: A\ninputs: {x: [3, 32, 32}\n").contains(&"E0001"));
}

#[test]
fn empty_and_blank_files() {
    let cases: Vec<(&str, String)> = [
        "",
        " ",
        "\n\n\n",
        "# only a comment\n",
        "---\n",
        "---\n...\n",
        "~",
        "null",
    ]
    .iter()
    .map(|t| ("empty", t.to_string()))
    .collect();
    expect_errors(&cases);
    assert_eq!(codes(""), vec!["E0002"]);
    // Scalars and lists at the top are not a spec.
    expect_errors(&[
        ("scalar", "42".into()),
        ("string", "hello".into()),
        ("list", "[1, 2]".into()),
    ]);
}

#[test]
fn binary_junk() {
    // Through compile_yaml: control characters.
    let mut junk = String::new();
    for i in 0..512u32 {
        junk.push(char::from_u32((i * 37 + 11) % 128).unwrap_or('x'));
    }
    expect_errors(&[
        ("ascii junk", junk),
        ("nul", "name: A\0\n".into()),
        ("bell", "\u{7}".into()),
    ]);
    // Through compile_file: bytes that are not UTF-8.
    let dir = std::env::temp_dir().join(format!("fpn-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let blobs: Vec<(&str, Vec<u8>)> = vec![
        ("latin1", b"name: caf\xe9\n".to_vec()),
        ("all bytes", (0..=255u8).collect()),
        ("lone continuation", vec![0x80]),
        ("truncated utf8", b"name: \xe2\x82".to_vec()),
        (
            "elf header",
            b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00".to_vec(),
        ),
        ("utf16 bom", b"\xff\xfen\x00a\x00m\x00e\x00".to_vec()),
        (
            "pseudo-random",
            (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(),
        ),
    ];
    let mut bad = Vec::new();
    for (what, bytes) in &blobs {
        let path = dir.join(format!("{}.yaml", what.replace(' ', "_")));
        std::fs::write(&path, bytes).expect("write blob");
        let r = catch_unwind(|| {
            let mut sources = SourceMap::new();
            let r = compile_file(&mut sources, &path);
            if let Err(d) = &r {
                let _ = render(d, &sources);
            }
            r.map(|_| ())
        });
        match r {
            Err(_) => bad.push(format!("{what}: PANIC")),
            Ok(Ok(())) => bad.push(format!("{what}: compiled")),
            Ok(Err(d)) if d.is_empty() => bad.push(format!("{what}: no diagnostic")),
            Ok(Err(_)) => {}
        }
    }
    let mut sources = SourceMap::new();
    let d = compile_file(&mut sources, &dir.join("latin1.yaml")).expect_err("latin1 fails");
    assert_eq!(d[0].code, "E0009");
    let d = compile_file(&mut sources, &dir.join("does-not-exist.yaml")).expect_err("missing file fails");
    assert_eq!(d[0].code, "E0000");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn alias_bombs_are_cheap() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb += &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
    }
    assert_eq!(codes(&bomb), vec!["E0006"]);
    // A bomb of maps used as keys, and one hidden inside a valid-looking spec.
    let in_spec = format!("{bomb}name: A\ninputs: {{x: [3, 8, 8]}}\nnodes: {{n: relu}}\noutputs: [n]\n");
    expect_errors(&[("bomb in spec", in_spec)]);
}

#[test]
fn deep_nesting() {
    let n = 100_000;
    let cases: Vec<(&str, String)> = vec![
        ("flow lists", "[".repeat(n) + &"]".repeat(n)),
        ("flow lists unclosed", "[".repeat(n)),
        ("flow maps", "{a: ".repeat(n) + &"}".repeat(n)),
        ("block lists", "- ".repeat(n) + "x\n"),
        (
            "block maps",
            (0..2000).map(|i| format!("{}k:\n", " ".repeat(i))).collect(),
        ),
        (
            "in a spec",
            format!("name: A\ndoc: {}{}\n", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "nested seq ops",
            tiny("[3, 8, 8]", &("{seq: [".repeat(2000) + "relu" + &"]}".repeat(2000))),
        ),
    ];
    expect_errors(&cases);
    assert!(codes(&("[".repeat(n) + &"]".repeat(n))).contains(&"E0005"));
}

#[test]
fn twenty_digit_numbers() {
    let big = "12345678901234567890";
    let cases: Vec<(&str, String)> = vec![
        (
            "out",
            tiny("[3, 8, 8]", &format!("{{conv: {{out: {big}, kernel: 1}}}}")),
        ),
        (
            "kernel",
            tiny("[3, 8, 8]", &format!("{{conv: {{out: 4, kernel: {big}}}}}")),
        ),
        ("input size", tiny(&format!("[3, {big}, 8]"), "relu")),
        ("negative", tiny(&format!("[3, -{big}, 8]"), "relu")),
        (
            "hex",
            tiny("[3, 8, 8]", "{conv: {out: 0xFFFFFFFFFFFFFFFFFF, kernel: 1}}"),
        ),
        ("float", tiny("[3, 8, 8]", "{upsample: 1e999}")),
        ("infinity", tiny("[3, 8, 8]", "{upsample: .inf}")),
        ("nan", tiny("[3, 8, 8]", "{leaky_relu: .nan}")),
    ];
    expect_errors(&cases);
    assert!(codes(&cases[0].1).contains(&"E0003"));
}

#[test]
fn duplicate_keys() {
    let cases: Vec<(&str, String)> = vec![
        ("top level", "name: A\nname: B\n".into()),
        ("nodes", tiny("[3, 8, 8]", "relu\n  n: tanh")),
        (
            "conv attribute",
            tiny("[3, 8, 8]", "{conv: {out: 4, out: 8, kernel: 1}}"),
        ),
        ("alias key", "a: &k name\n*k : 1\nname: 2\n".into()),
    ];
    expect_errors(&cases);
    assert!(codes(&cases[0].1).contains(&"E0004"));
}

#[test]
fn wrong_types() {
    let cases: Vec<(&str, String)> = vec![
        ("spec is a list", "- name: A\n".into()),
        ("nodes is a list", "name: A\ninputs: {x: [3, 8, 8]}\nnodes: [relu]\noutputs: [x]\n".into()),
        ("inputs is a list", "name: A\ninputs: [x]\nnodes: {n: relu}\noutputs: [n]\n".into()),
        ("input is a map", tiny("{c: 3, h: 8, w: 8}", "relu")),
        ("input is a string", tiny("three", "relu")),
        ("conv is a list", tiny("[3, 8, 8]", "{conv: [4, 1]}")),
        ("out is a string", tiny("[3, 8, 8]", "{conv: {out: \"sixteen channels\", kernel: 1}}")),
        ("out is a word", tiny("[3, 8, 8]", "{conv: {out: sixteen, kernel: 1}}")),
        ("out is a list", tiny("[3, 8, 8]", "{conv: {out: [16], kernel: 1}}")),
        ("out is a map", tiny("[3, 8, 8]", "{conv: {out: {c: 16}, kernel: 1}}")),
        ("out is a float", tiny("[3, 8, 8]", "{conv: {out: 16.5, kernel: 1}}")),
        ("out is a bool", tiny("[3, 8, 8]", "{conv: {out: true, kernel: 1}}")),
        ("kernel is a triple", tiny("[3, 8, 8]", "{conv: {out: 4, kernel: [1, 1, 1]}}")),
        ("padding is a triple", tiny("[3, 8, 8]", "{conv: {out: 4, kernel: 1, padding: [1, 1, 1]}}")),
        ("bias is a number", tiny("[3, 8, 8]", "{conv: {out: 4, kernel: 1, bias: 1}}")),
        ("add is a map", tiny("[3, 8, 8]", "{add: {a: x, b: x}}")),
        ("add is a number", tiny("[3, 8, 8]", "{add: 3}")),
        ("from is a map", tiny("[3, 8, 8]", "{from: {x: 1}, conv: {out: 4, kernel: 1}}")),
        ("outputs is a number", "name: A\ninputs: {x: [3, 8, 8]}\nnodes: {n: relu}\noutputs: 3\n".into()),
        ("name is a list", "name: [A]\ninputs: {x: [3, 8, 8]}\nnodes: {n: relu}\noutputs: [n]\n".into()),
        ("params is a map", "name: A\nblocks: {b: {params: {c: 1}, body: [relu]}}\ninputs: {x: [3, 8, 8]}\nnodes: {n: b}\noutputs: [n]\n".into()),
        ("body is a map", "name: A\nblocks: {b: {body: {relu: null}}}\ninputs: {x: [3, 8, 8]}\nnodes: {n: b}\noutputs: [n]\n".into()),
        ("block argument is a list", "name: A\nblocks: {b: {params: [c], body: [relu]}}\ninputs: {x: [3, 8, 8]}\nnodes: {n: {b: {c: [1]}}}\noutputs: [n]\n".into()),
        ("symbols is a list", "name: A\nsymbols: [H]\ninputs: {x: [3, H, 8]}\nnodes: {n: relu}\noutputs: [n]\n".into()),
        ("symbol bound reversed", "name: A\nsymbols: {H: 9..2}\ninputs: {x: [3, H, 8]}\nnodes: {n: relu}\noutputs: [n]\n".into()),
        ("fpn in is a map", tiny("[3, 8, 8]", "{fpn: {in: {a: x}, width: 4}}")),
        ("head body is a string", tiny("[3, 8, 8]", "{head: {on: [x], body: relu}}")),
        ("upsample is a string", tiny("[3, 8, 8]", "{upsample: twice}")),
        ("node is a number", tiny("[3, 8, 8]", "42")),
        ("node is a list", tiny("[3, 8, 8]", "[relu]")),
    ];
    expect_errors(&cases);
    assert!(codes(&cases[6].1).contains(&"E0102"));
}

/// Numeric fields of a conv, pool, upsample, input and block: `{V}` is the value tried.
const NUMERIC_FIELDS: &[(&str, &str, &str)] = &[
    ("conv out", "[3, 8, 8]", "{conv: {out: {V}, kernel: 1}}"),
    ("conv kernel", "[3, 8, 8]", "{conv: {out: 4, kernel: {V}}}"),
    ("conv kernel pair", "[3, 8, 8]", "{conv: {out: 4, kernel: [1, {V}]}}"),
    ("conv stride", "[3, 8, 8]", "{conv: {out: 4, kernel: 1, stride: {V}}}"),
    ("conv padding", "[3, 8, 8]", "{conv: {out: 4, kernel: 1, padding: {V}}}"),
    (
        "conv padding explicit",
        "[3, 8, 8]",
        "{conv: {out: 4, kernel: 1, padding: [0, {V}, 0, 0]}}",
    ),
    (
        "conv reflect padding",
        "[3, 8, 8]",
        "{conv: {out: 4, kernel: 1, padding: {V}, padding_mode: reflect}}",
    ),
    (
        "conv circular padding",
        "[3, 8, 8]",
        "{conv: {out: 4, kernel: 1, padding: {V}, padding_mode: circular}}",
    ),
    (
        "conv dilation",
        "[3, 8, 8]",
        "{conv: {out: 4, kernel: 3, dilation: {V}}}",
    ),
    ("conv groups", "[3, 8, 8]", "{conv: {out: 4, kernel: 1, groups: {V}}}"),
    (
        "same padding kernel",
        "[3, 8, 8]",
        "{conv: {out: 4, kernel: {V}, padding: same}}",
    ),
    ("cna kernel", "[3, 8, 8]", "{cna: {out: 4, kernel: {V}}}"),
    ("max pool kernel", "[3, 8, 8]", "{max_pool: {kernel: {V}}}"),
    ("max pool stride", "[3, 8, 8]", "{max_pool: {kernel: 2, stride: {V}}}"),
    ("max pool padding", "[3, 8, 8]", "{max_pool: {kernel: 3, padding: {V}}}"),
    (
        "max pool dilation",
        "[3, 8, 8]",
        "{max_pool: {kernel: 3, dilation: {V}}}",
    ),
    (
        "avg pool ceil",
        "[3, 8, 8]",
        "{avg_pool: {kernel: {V}, ceil_mode: true}}",
    ),
    ("upsample scale", "[3, 8, 8]", "{upsample: {V}}"),
    ("upsample scale pair", "[3, 8, 8]", "{upsample: {scale: [2, {V}]}}"),
    ("input channels", "[{V}, 8, 8]", "{conv: {out: 4, kernel: 1}}"),
    ("input height", "[3, {V}, 8]", "{conv: {out: 4, kernel: 1}}"),
    ("input height + upsample", "[3, {V}, 8]", "{upsample: 2}"),
    (
        "input height + stride",
        "[3, {V}, 8]",
        "{conv: {out: 4, kernel: 3, stride: 2, padding: 1}}",
    ),
    ("fpn width", "[3, 8, 8]", "{fpn: {in: [x, x], width: {V}}}"),
    (
        "bifpn repeats",
        "[3, 8, 8]",
        "{bifpn: {in: [x, x], width: 4, repeats: {V}}}",
    ),
    ("resnet depth", "[3, 64, 64]", "{resnet: {depth: {V}}}"),
    ("leaky slope", "[3, 8, 8]", "{leaky_relu: {V}}"),
    ("batch norm eps", "[3, 8, 8]", "{batch_norm: {eps: {V}}}"),
];

/// Values that must each be rejected in every field above, or accepted without panicking.
fn field_specs(values: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in values {
        for (what, input, op) in NUMERIC_FIELDS {
            let text = tiny(&input.replace("{V}", v), &op.replace("{V}", v));
            out.push((format!("{what} = {v}"), text));
        }
    }
    out
}

/// Runs each case: it may compile or fail, but must not panic, hang, or fail without an error.
fn never_panics(cases: &[(String, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (what, text) in cases {
        match run(text) {
            Err(p) => bad.push(format!("{what}: PANIC {p}")),
            Ok(Err(d)) if !d.iter().any(Diagnostic::is_error) => bad.push(format!("{what}: Err without an error")),
            _ => {}
        }
    }
    bad
}

/// Cases that panic (debug) or wrap to negative sizes (release) because of unchecked `i64`
/// arithmetic in the compiler; see `known_overflow_bugs`. Excluded from the sweeps so the
/// sweeps keep guarding everything else.
const KNOWN_OVERFLOW: &[&str] = &[
    "conv kernel = 1000000000000000000",
    "conv kernel pair = 1000000000000000000",
    "same padding kernel = 1000000000000000000",
    "cna kernel = 1000000000000000000",
    "conv out = 9223372036854775807",
    "conv kernel = 9223372036854775807",
    "conv kernel pair = 9223372036854775807",
    "conv reflect padding = 9223372036854775807",
    "same padding kernel = 9223372036854775807",
    "cna kernel = 9223372036854775807",
    "input channels = 9223372036854775807",
];

#[test]
fn huge_numbers_in_every_numeric_field() {
    let cases: Vec<(String, String)> = field_specs(&["1000000000000000000", "9223372036854775807", "1e300", "1e18"])
        .into_iter()
        .filter(|(w, _)| !KNOWN_OVERFLOW.contains(&w.as_str()))
        .collect();
    let bad = never_panics(&cases);
    assert!(bad.is_empty(), "{} case(s) misbehaved:\n{}", bad.len(), bad.join("\n"));
    // The ones the brief names must be errors.
    for (what, input, op) in [
        (
            "stride 10^18 on an 8x8 input with kernel 9",
            "[3, 8, 8]",
            "{conv: {out: 4, kernel: 9, stride: 1000000000000000000}}",
        ),
        (
            "input 10^18 upsampled x10",
            "[3, 1000000000000000000, 8]",
            "{upsample: 10}",
        ),
        ("upsample 1e300", "[3, 8, 8]", "{upsample: 1e300}"),
        (
            "input size 2^63-1 upsampled x2",
            "[3, 9223372036854775807, 8]",
            "{upsample: 2}",
        ),
    ] {
        let text = tiny(input, op);
        assert!(matches!(run(&text), Ok(Err(_))), "{what} should be an error:\n{text}");
    }
}

/// Known compiler bugs: unchecked `i64` arithmetic on huge attribute values. In a debug build
/// each case panics ("attempt to multiply/add with overflow"); in a release build the numbers
/// wrap and the spec compiles with negative parameter counts or channels. After a fix, run
/// `cargo test -p fpn-compiler --test it bad_input -- --ignored`, then drop the `#[ignore]`s and
/// empty `KNOWN_OVERFLOW`.
#[test]
fn known_overflow_bugs() {
    let mut cases: Vec<(String, String)> = field_specs(&["1000000000000000000", "9223372036854775807"])
        .into_iter()
        .filter(|(w, _)| KNOWN_OVERFLOW.contains(&w.as_str()))
        .collect();
    cases.extend([
        // infer.rs: the weight's element count 10^18·16 overflows `product::<i64>()`.
        (
            "conv out 10^18 from 16 channels".to_string(),
            tiny("[16, 8, 8]", "{conv: {out: 1000000000000000000, kernel: 1}}"),
        ),
        // lower.rs: cna default padding `(k-1)/2 * dilation`.
        (
            "cna kernel and dilation 10^18".to_string(),
            tiny(
                "[3, 8, 8]",
                "{cna: {out: 4, kernel: 1000000000000000001, dilation: 1000000000000000000}}",
            ),
        ),
        // infer.rs: 10^18·3·9·9 weight elements (the stride alone would make this an E0320).
        (
            "out 10^18 with stride 10^18".to_string(),
            tiny(
                "[3, 8, 8]",
                "{conv: {out: 1000000000000000000, kernel: 9, stride: 1000000000000000000}}",
            ),
        ),
        // infer.rs: a 10^9×10^9 kernel, 16 channels in and out: 2.56·10^20 weight elements.
        (
            "conv kernel 10^9".to_string(),
            tiny("[16, 8, 8]", "{conv: {out: 16, kernel: 1000000000}}"),
        ),
        // lower.rs: ResNet bottleneck `planes * 4`.
        (
            "resnet-50 width 10^18".to_string(),
            tiny("[3, 64, 64]", "{resnet: {depth: 50, width: 1000000000000000000}}"),
        ),
    ]);
    let mut bad = never_panics(&cases);
    for (what, text) in &cases {
        if let Ok(Ok(_)) = run(text) {
            bad.push(format!("{what}: compiled (the numbers overflow; expected E0310)"));
        }
    }
    assert!(bad.is_empty(), "{} case(s) misbehaved:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn negative_and_zero_values_in_every_numeric_field() {
    let cases = field_specs(&["0", "-1", "-9223372036854775808", "0.0", "-2.5"]);
    let bad = never_panics(&cases);
    assert!(bad.is_empty(), "{} case(s) misbehaved:\n{}", bad.len(), bad.join("\n"));
    // Zero or negative sizes are errors, not silently accepted.
    let must_fail: Vec<(String, String)> = cases
        .into_iter()
        .filter(|(w, _)| {
            !w.starts_with("leaky slope")
                && !w.starts_with("batch norm eps")
                && !(w.contains("padding") && (w.ends_with("= 0") || w.ends_with("= 0.0")))
        })
        .collect();
    let mut bad = Vec::new();
    for (what, text) in &must_fail {
        if let Ok(Ok(_)) = run(text) {
            bad.push(what.clone());
        }
    }
    assert!(bad.is_empty(), "accepted zero/negative values:\n{}", bad.join("\n"));
}

#[test]
fn recursive_blocks() {
    let cases: Vec<(&str, String)> = vec![
        ("self", "name: A\nblocks: {b: {body: [relu, b]}}\ninputs: {x: [3, 8, 8]}\nnodes: {n: b}\noutputs: [n]\n".into()),
        (
            "mutual",
            "name: A\nblocks: {a: {body: [relu, b]}, b: {body: [tanh, a]}}\ninputs: {x: [3, 8, 8]}\nnodes: {n: a}\noutputs: [n]\n".into(),
        ),
        (
            "with params",
            "name: A\nblocks: {b: {params: [c], body: [{conv: {out: c, kernel: 1}}, {b: {c: c+1}}]}}\ninputs: {x: [3, 8, 8]}\nnodes: {n: {b: {c: 1}}}\noutputs: [n]\n".into(),
        ),
        (
            "inside skip",
            "name: A\nblocks: {b: {body: [{skip: [relu, b]}]}}\ninputs: {x: [3, 8, 8]}\nnodes: {n: b}\noutputs: [n]\n".into(),
        ),
        (
            "exponential",
            "name: A\nblocks: {b: {body: [b, b]}}\ninputs: {x: [3, 8, 8]}\nnodes: {n: b}\noutputs: [n]\n".into(),
        ),
    ];
    expect_errors(&cases);
    assert!(codes(&cases[0].1).contains(&"E0208"));
}

#[test]
fn a_2000_node_chain_compiles() {
    let mut s = String::from("name: Chain\ninputs:\n  x: [4, 16, 16]\nnodes:\n");
    for i in 0..2000 {
        if i % 2 == 0 {
            s += &format!("  n{i}: {{conv: {{out: 4, kernel: 3, padding: 1}}}}\n");
        } else {
            s += &format!("  n{i}: relu\n");
        }
    }
    s += "outputs: [n1999]\n";
    let start = Instant::now();
    match run(&s) {
        Ok(Ok(c)) => assert!(c.graph.graph.node_count() >= 2001),
        Ok(Err(d)) => panic!("chain failed: {:?}", d.iter().map(|d| &d.message).collect::<Vec<_>>()),
        Err(p) => panic!("chain panicked: {p}"),
    }
    assert!(start.elapsed() < SLOW, "chain took {:?}", start.elapsed());
    // The same chain reversed (every node reads the next one) also compiles.
    let mut r = String::from("name: Back\ninputs:\n  x: [4, 16, 16]\nnodes:\n");
    for i in 0..2000 {
        let from = if i == 1999 {
            "x".to_string()
        } else {
            format!("n{}", i + 1)
        };
        r += &format!("  n{i}: {{from: {from}, conv: {{out: 4, kernel: 1}}}}\n");
    }
    r += "outputs: [n0]\n";
    assert!(matches!(run(&r), Ok(Ok(_))), "reversed chain should compile");
}

/// Compiles raw bytes the way `compile_file` does, without touching the disk.
fn compile_bytes(bytes: &[u8]) -> Result<Compiled, Vec<Diagnostic>> {
    let mut sources = SourceMap::new();
    let id = sources.add_text("mutant.yaml", String::from_utf8_lossy(bytes).into_owned());
    let r = fpn_compiler::front::yaml::parse_bytes(bytes, id)
        .map_err(|d| vec![d])
        .and_then(|v| compile_value(&v));
    if let Err(d) = &r {
        let _ = render(d, &sources);
    }
    r
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    DuplicateLine(usize),
    Number(usize, i64),
}

/// Random edits. `extreme` also swaps numbers for values near `i64::MAX`, which reach the
/// known overflow bugs (see `known_overflow_bugs`); without it numbers stay within ±10^6 (a kernel of 10^9 already overflows).
fn mutation(extreme: bool) -> impl Strategy<Value = Mutation> {
    let big: BoxedStrategy<i64> = if extreme {
        prop_oneof![
            Just(i64::MAX),
            Just(1_000_000_000_000_000_000),
            Just(4_000_000_000),
            any::<i64>()
        ]
        .boxed()
    } else {
        prop_oneof![Just(1_000_000i64), Just(65_536), -1_000_000i64..=1_000_000].boxed()
    };
    let interesting = prop_oneof![Just(0i64), Just(-1), Just(1), Just(2), Just(i64::MIN), big];
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (
            any::<usize>(),
            prop::sample::select(b"[]{}:,-&*!|>'\"#\n\t 0123456789.".to_vec())
        )
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), interesting).prop_map(|(i, v)| Mutation::Number(i, v)),
    ]
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let len = text.len().max(1);
    match m {
        Mutation::Flip(i, x) => {
            if let Some(b) = text.get_mut(i % len) {
                *b ^= x;
            }
        }
        Mutation::Set(i, x) => {
            if let Some(b) = text.get_mut(i % len) {
                *b = *x;
            }
        }
        Mutation::Delete(i, n) => {
            let at = i % len;
            let end = (at + n).min(text.len());
            if at < end {
                text.drain(at..end);
            }
        }
        Mutation::Insert(i, v) => {
            let at = (i % len).min(text.len());
            text.splice(at..at, v.iter().copied());
        }
        Mutation::Truncate(i) => text.truncate(i % len),
        Mutation::DuplicateLine(i) => {
            let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            let k = i % lines.len().max(1);
            let mut out = Vec::new();
            for (j, l) in lines.iter().enumerate() {
                out.extend_from_slice(l);
                out.push(b'\n');
                if j == k {
                    out.extend_from_slice(l);
                    out.push(b'\n');
                }
            }
            *text = out;
        }
        Mutation::Number(i, v) => {
            // Replace the i-th run of digits with `v`.
            let mut runs = Vec::new();
            let mut j = 0;
            while j < text.len() {
                if text[j].is_ascii_digit() {
                    let st = j;
                    while j < text.len() && text[j].is_ascii_digit() {
                        j += 1;
                    }
                    runs.push((st, j));
                } else {
                    j += 1;
                }
            }
            if !runs.is_empty() {
                let (st, en) = runs[i % runs.len()];
                text.splice(st..en, v.to_string().into_bytes());
            }
        }
    }
}

/// Mutates seed 000 and compiles it through both routes; must never panic.
fn check_mutant(muts: &[Mutation]) -> Result<(), TestCaseError> {
    let mut text = SEED.as_bytes().to_vec();
    for m in muts {
        apply(&mut text, m);
    }
    let r = catch_unwind(|| compile_bytes(&text));
    prop_assert!(r.is_ok(), "compile panicked on:\n{}", String::from_utf8_lossy(&text));
    if let Ok(Err(d)) = r {
        prop_assert!(d.iter().any(Diagnostic::is_error), "Err without an error diagnostic");
    }
    // The text route must not panic either.
    let lossy = String::from_utf8_lossy(&text).into_owned();
    prop_assert!(run(&lossy).is_ok(), "compile_yaml panicked on:\n{lossy}");
    Ok(())
}

proptest! {
    // No regression file: this test only may write under tests/ what it owns.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_seed_never_panics(muts in prop::collection::vec(mutation(false), 1..6)) {
        check_mutant(&muts)?;
    }

    /// Finds the known overflow bugs within a few dozen cases; see `known_overflow_bugs`.
    #[test]
    fn mutated_seed_with_extreme_numbers_never_panics(muts in prop::collection::vec(mutation(true), 1..6)) {
        check_mutant(&muts)?;
    }
}

/// Hostile input size expressions: none panics or runs long, each one either compiles or
/// fails with an error (with a help line), whatever it does to the size analysis.
#[test]
fn hostile_size_expressions() {
    let exprs = [
        "H/9223372036854775807",
        "H*9223372036854775807",
        "9223372036854775807*H+1",
        "H-9223372036854775807-9223372036854775807",
        "0-H",
        "1-H",
        "H*0",
        "0*H+5",
        "H/2/2/2/2/2/2/2/2/2/2/2/2/2/2/2",
        "H*1000000000*1000000000/3",
        "H/0",
        "H/H",
        "H+H",
        "H-H",
        "2*H/4-1+9",
        "H/65536*65536",
        "H*-2",
        "H/",
        "*H",
        "H//2",
    ];
    let mut cases = Vec::new();
    for e in exprs {
        for (what, input) in [
            ("h", format!("[3, {e}, 8]")),
            ("both", format!("[3, {e}, {e}]")),
            ("two inputs", format!("[3, {e}, 8]\n  y: [3, H, 8]")),
        ] {
            let text = format!(
                "name: T\ninputs:\n  x: {input}\nnodes:\n  n: {{from: x, conv: {{out: 4, kernel: 3, stride: 2}}}}\noutputs: [n]\n"
            );
            cases.push((format!("{e} ({what})"), text));
        }
    }
    let bad = never_panics(&cases);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    for (what, text) in &cases {
        if let Ok(Err(d)) = run(text) {
            for x in d.iter().filter(|d| d.is_error()) {
                assert!(x.help.is_some(), "{what}: {} has no help", x.code);
            }
        }
    }
}
