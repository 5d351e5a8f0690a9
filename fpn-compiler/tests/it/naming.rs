//! Issue "Reach", loading real checkpoints: `chunk` / `split` (outputs `.0`, `.1`, …),
//! `module:` (a node's `state_dict` prefix apart from its name), `cna` `names:` and the
//! weight loader's key map and missing-tensor report. Each misuse is reported at its source.

use fpn_compiler::interp::{self, Params};
use fpn_runtime::ndarray::{s, Array4};
use fpn_runtime::{Error, LoadOptions, Weights};

use crate::common::compile::{codes, compile};

fn ramp(shape: [usize; 4]) -> Array4<f32> {
    Array4::from_shape_fn(shape, |(n, c, h, w)| (n * 1000 + c * 100 + h * 10 + w) as f32)
}

const SPLITS: &str = "name: S\ninputs: {x: [6, 3, 4]}\nnodes:\n  c: {chunk: 3}\n  s: {from: x, split: [1, 5]}\n  cat: {concat: [c.2, s.0, c.0]}\noutputs: {cat: cat, s1: s.1}\n";

#[test]
fn chunk_and_split_parts_are_channel_ranges_by_name() {
    let c = compile(SPLITS).unwrap_or_else(|e| panic!("{e:?}"));
    let shapes: Vec<(String, i64)> = c
        .graph
        .order()
        .map(|i| (c.graph.node(i).name.clone(), c.analysis.shapes[i.index()].c))
        .collect();
    let want = [
        ("x", 6),
        ("c.0", 2),
        ("c.1", 2),
        ("c.2", 2),
        ("s.0", 1),
        ("s.1", 5),
        ("cat", 5),
    ];
    assert_eq!(shapes, want.map(|(n, k)| (n.to_string(), k)));
    let x = ramp([2, 6, 3, 4]);
    let outs = interp::run(&c.graph, &c.analysis, &Params::default(), &[("x", x.view())]).expect("runs");
    let get = |n: &str| {
        outs.iter()
            .find(|(m, _)| m == n)
            .map(|(_, t)| t.clone())
            .expect("output")
    };
    let parts = [
        x.slice(s![.., 4..6, .., ..]),
        x.slice(s![.., 0..1, .., ..]),
        x.slice(s![.., 0..2, .., ..]),
    ];
    let want = fpn_runtime::ndarray::concatenate(fpn_runtime::ndarray::Axis(1), &parts).expect("cat");
    assert_eq!(get("cat"), want);
    assert_eq!(get("s1"), x.slice(s![.., 1..6, .., ..]).to_owned());
}

#[test]
fn chunk_and_split_misuses_are_reported_at_the_source() {
    let e = compile(&SPLITS.replace("chunk: 3", "chunk: 4")).expect_err("4 does not divide 6");
    assert_eq!(e.len(), 1, "reported once, not per part: {e:?}");
    assert_eq!(e[0].0, "E0329");
    assert!(e[0].1.contains("chunks 6 channels into 4 parts"), "{}", e[0].1);
    let e = compile(&SPLITS.replace("[1, 5]", "[1, 4]")).expect_err("sums to 5");
    assert_eq!(
        e,
        [(
            "E0329".to_string(),
            "`s` splits 6 channels into sizes summing to 5".to_string()
        )]
    );
    assert_eq!(codes(&SPLITS.replace("[1, 5]", "[0, 6]")), ["E0212"]);
    assert_eq!(codes(&SPLITS.replace("chunk: 3", "chunk: 0")), ["E0212"]);
    assert_eq!(codes(&SPLITS.replace("[1, 5]", "[]")), ["E0102"]);
    assert_eq!(codes(&SPLITS.replace("[1, 5]", "6")), ["E0102"]);
    // a part that does not exist, and a multi-output node where one tensor is needed
    assert_eq!(codes(&SPLITS.replace("c.2, s.0", "c.3, s.0")), ["E0209"]);
    assert_eq!(
        codes(&SPLITS.replace("c.2, s.0", "c, s.0")).len(),
        0,
        "a whole split expands to its parts"
    );
    assert_eq!(codes(&SPLITS.replace("s1: s.1", "s1: s")), ["E0209"]);
    // inside a sequence: it has several outputs
    assert_eq!(
        codes("name: Q\ninputs: {x: [4, 3, 3]}\nnodes:\n  q: {seq: [relu, {chunk: 2}]}\noutputs: [q]\n"),
        ["E0218"]
    );
}

const C2F: &str = include_str!("../../../specs/yolov8n_c2f_block.yaml");

#[test]
fn module_paths_and_ultralytics_names_give_checkpoint_names() {
    let c = compile(C2F).unwrap_or_else(|e| panic!("{e:?}"));
    let names: Vec<&str> = c.analysis.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 30);
    for n in [
        "model.4.cv1.conv.weight",
        "model.4.cv1.bn.running_var",
        "model.4.m.0.cv1.conv.weight",
        "model.4.m.1.cv2.bn.bias",
        "model.4.cv2.conv.weight",
    ] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    assert!(names
        .iter()
        .all(|n| n.starts_with("model.4.") && !n.contains("conv.bias")));
    // per cna, over the default; mmdet is the same convention
    let one = |names: &str| {
        let spec = format!(
            "name: A\ndefaults: {{cna: {{names: ultralytics}}}}\ninputs: {{x: [3, 8, 8]}}\nnodes:\n  a: {{cna: {{out: 4, kernel: 3{names}}}}}\n  b: {{cna: {{out: 4, kernel: 1, norm: {{group_norm: {{groups: 2}}}}, names: mmdet}}}}\noutputs: [b]\n"
        );
        let c = compile(&spec).unwrap_or_else(|e| panic!("{e:?}"));
        c.analysis.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>()
    };
    let tv = [
        "a.0.weight",
        "a.1.weight",
        "a.1.bias",
        "a.1.running_mean",
        "a.1.running_var",
    ];
    let ul = [
        "a.conv.weight",
        "a.bn.weight",
        "a.bn.bias",
        "a.bn.running_mean",
        "a.bn.running_var",
    ];
    let gn = ["b.conv.weight", "b.gn.weight", "b.gn.bias"];
    assert_eq!(one(""), [&ul[..], &gn[..]].concat());
    assert_eq!(one(", names: torchvision"), [&tv[..], &gn[..]].concat());
}

#[test]
fn module_and_names_misuses_are_reported_at_the_source() {
    let base = "name: A\ninputs: {x: [3, 8, 8]}\nnodes:\n  a: {module: M, conv: {out: 4, kernel: 1}}\noutputs: [a]\n";
    for bad in ["model..4", "model.4.", "'model.4 cv1'", "model.-1", "'4x'", "[a]", "-3"] {
        let e = codes(&base.replace('M', bad));
        assert!(e == ["E0232"] || e == ["E0102"], "{bad}: {e:?}");
    }
    for good in ["model.4.cv1", "12", "backbone.body.layer1.0"] {
        let c = compile(&base.replace('M', good)).unwrap_or_else(|e| panic!("{good}: {e:?}"));
        let want = format!("{}.weight", good);
        assert_eq!(c.analysis.params[0].name, want);
    }
    assert_eq!(
        codes("name: A\ninputs: {x: [3, 8, 8]}\nnodes:\n  a: {cna: {out: 4, kernel: 1, names: timm}}\noutputs: [a]\n"),
        ["E0114"]
    );
    assert_eq!(
        codes("name: A\ndefaults: {cna: {names: ultralitics}}\ninputs: {x: [3, 8, 8]}\nnodes:\n  a: {cna: {out: 4, kernel: 1}}\noutputs: [a]\n"),
        ["E0114"]
    );
}

const SHARED: &str = "name: A\ninputs: {x: [4, 8, 8]}\nnodes:\n  a: {module: head, conv: {out: 4, kernel: 3, padding: 1}}\n  b: {module: head, conv: {out: 4, kernel: 3, padding: 1}}\noutputs: [b]\n";

#[test]
fn a_module_path_given_twice_shares_its_tensors() {
    let c = compile(SHARED).unwrap_or_else(|e| panic!("{e:?}"));
    let names: Vec<&str> = c.analysis.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["head.weight", "head.bias"]);
    // one tensor, applied twice: b = conv(conv(x)) with the same weights
    let params = Params::init(&c.analysis, 5);
    let x = ramp([1, 4, 8, 8]).mapv(|v| v / 1000.0);
    let outs = interp::run(&c.graph, &c.analysis, &params, &[("x", x.view())]).expect("runs");
    let w = params
        .get("head.weight")
        .expect("w")
        .view()
        .into_dimensionality()
        .expect("4-D");
    let b = params
        .get("head.bias")
        .expect("b")
        .view()
        .into_dimensionality()
        .expect("1-D");
    let p = fpn_runtime::Conv2dParams {
        padding: [1, 1, 1, 1],
        ..Default::default()
    };
    let once = fpn_runtime::conv2d(x.view(), w, Some(b), &p).expect("conv");
    let twice = fpn_runtime::conv2d(once.view(), w, Some(b), &p).expect("conv");
    let d = outs[0]
        .1
        .iter()
        .zip(twice.iter())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(d < 1e-5, "{d}");
}

#[test]
fn a_module_path_shared_by_different_ops_is_refused() {
    // different shapes (a 1×1 conv and a 3×3 conv)
    let e = compile(&SHARED.replacen("kernel: 3, padding: 1", "kernel: 1", 1)).expect_err("shapes differ");
    assert_eq!(e.len(), 2, "{e:?}"); // the weight's shape, and the bias (same shape) of another op
    assert!(
        e.iter()
            .all(|(c, m)| c == "E0311" && m.contains("shared `module:` path")),
        "{e:?}"
    );
    // same shapes, different ops (stride)
    let e = compile(&SHARED.replacen("padding: 1}", "padding: 1, stride: 2}", 1)).expect_err("ops differ");
    assert!(
        e.iter().all(|(c, m)| c == "E0311" && m.contains("different ops")),
        "{e:?}"
    );
    // a node named like another node's module path
    let e = codes(
        &SHARED
            .replace("  b: {module: head,", "  head: {")
            .replace("[b]", "[head]")
            .replacen("kernel: 3, padding: 1", "kernel: 1", 1),
    );
    assert!(!e.is_empty() && e.iter().all(|c| c == "E0311"), "{e:?}");
}

#[test]
fn missing_weights_are_all_listed_with_the_prefix_rewrite_that_finds_them() {
    let c = compile(C2F).unwrap_or_else(|e| panic!("{e:?}"));
    let params = Params::init(&c.analysis, 1);
    // the same tensors as a bare C2f module would name them (`cv1.conv.weight`), plus a counter
    let tensors: Vec<(String, fpn_runtime::ndarray::ArrayD<f32>)> = params
        .sorted()
        .into_iter()
        .map(|(n, t)| (n.trim_start_matches("model.4.").to_string(), t.clone()))
        .collect();
    let views: Vec<(&str, fpn_runtime::ndarray::ArrayViewD<f32>)> =
        tensors.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
    let bytes = fpn_runtime::tensors_to_bytes(&views).expect("bytes");
    let w = Weights::from_bytes(bytes.clone()).expect("weights");
    match Params::from_weights(&w, &c.analysis) {
        Err(e @ Error::MissingTensors { .. }) => {
            let Error::MissingTensors { missing, hint, .. } = &e else {
                unreachable!()
            };
            assert_eq!(missing.len(), 30, "every missing tensor is listed");
            assert_eq!(hint, &Some((String::new(), "model.4.".to_string())));
            let text = e.to_string();
            assert!(
                text.starts_with("the weights lack 30 tensors the model needs: `model.4.cv1.conv.weight`"),
                "{text}"
            );
            assert!(
                text.contains("without the prefix `model.4.`") && text.contains("`fpn run --map =model.4.`"),
                "{text}"
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // the suggested rewrite loads them, and runs as the correctly named weights do
    let w = LoadOptions::new()
        .map("", "model.4.")
        .load_bytes(bytes)
        .expect("weights");
    let loaded = Params::from_weights(&w, &c.analysis).expect("loads");
    let x = ramp([1, 64, 5, 6]).mapv(|v| v / 3000.0);
    let a = interp::run(&c.graph, &c.analysis, &loaded, &[("x", x.view())]).expect("runs");
    let b = interp::run(&c.graph, &c.analysis, &params, &[("x", x.view())]).expect("runs");
    assert_eq!(a[0].1, b[0].1);
    // one tensor missing from a correctly named file: listed, no rewrite offered
    let kept: Vec<(&str, fpn_runtime::ndarray::ArrayViewD<f32>)> = params
        .sorted()
        .into_iter()
        .filter(|(n, _)| *n != "model.4.m.1.cv2.bn.running_var")
        .map(|(n, t)| (n, t.view()))
        .collect();
    let w = Weights::from_bytes(fpn_runtime::tensors_to_bytes(&kept).expect("bytes")).expect("weights");
    match Params::from_weights(&w, &c.analysis) {
        Err(Error::MissingTensors { missing, hint, .. }) => {
            assert_eq!(missing, ["model.4.m.1.cv2.bn.running_var"]);
            assert_eq!(hint, None);
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// Issue 12 item 4: node names are any text; references find them whole; output fields and
/// weight prefixes are derived (docs/spec.md "Nodes and references").
const QUOTED: &str = r#"
name: Quoted
inputs:
  x: [4, 16, 16]
blocks:
  pair:
    nodes:
      "cv 1": {module: cv1, conv: {out: 4, kernel: 1}}
      out: {add: [x, "cv 1"]}
    outputs: {fine: out, coarse: x}
nodes:
  "model.0": {conv: {out: 4, kernel: 3, padding: 1}}
  "model.12": {pair: {}}
  "P3/out": {from: "model.12.fine", relu}
  "3x3": {from: "model.0", module: three, conv: {out: 4, kernel: 3, padding: 1}}
  fn: {add: ["P3/out", "3x3", "model.12.coarse"]}
  y: {chunk: 2}
outputs: ["P3/out", fn, "model.0", y.1, "3x3"]
"#;

#[test]
fn quoted_node_names_are_found_whole_and_derive_identifiers() {
    let c = compile(QUOTED).unwrap_or_else(|e| panic!("{e:?}"));
    let fields: Vec<&str> = c.graph.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(fields, ["p3_out", "fn_", "model_0", "y_1", "n_3x3"]);
    let params: Vec<&str> = c.analysis.params.iter().map(|p| p.name.as_str()).collect();
    // a name that is a path is the prefix; a block's node inside it too; `module:` otherwise
    assert_eq!(
        params,
        [
            "model.0.weight",
            "model.0.bias",
            "model.12.cv1.weight",
            "model.12.cv1.bias",
            "three.weight",
            "three.bias"
        ]
    );
    for (name, want) in [
        ("p3", "p3"),
        ("P3/out", "p3_out"),
        ("model.12", "model_12"),
        ("3x3", "n_3x3"),
        ("fn", "fn_"),
        ("Self", "self_"),
        ("_", "__"),
        ("x; std::process::exit(1)", "x__std__process__exit_1_"),
        ("größe", "gr__e"),
    ] {
        assert_eq!(fpn_compiler::lower::derive_ident(name), want, "{name}");
        let d = fpn_compiler::lower::derive_ident(name);
        assert!(fpn_compiler::ast::is_ident(&d) && !fpn_compiler::lower::RUST_KEYWORDS.contains(&d.as_str()));
    }
}

#[test]
fn spec_text_in_names_never_becomes_code() {
    let spec = r#"
name: Inject
inputs:
  x: [3, 8, 8]
nodes:
  "x; std::process::exit(1) /* ` [link] \u202e": {module: m, conv: {out: 4, kernel: 1}}
outputs: ["x; std::process::exit(1) /* ` [link] \u202e"]
"#;
    let c = compile(spec).unwrap_or_else(|e| panic!("{e:?}"));
    let code = fpn_compiler::back::rust::generate(&c.graph, &c.analysis, &Default::default()).expect("generates");
    let file = syn::parse_file(&code).expect("the generated code parses");
    // the name's words are in no identifier: only inside string literals and docs
    fn idents(ts: proc_macro2::TokenStream, out: &mut Vec<String>) {
        for t in ts {
            match t {
                proc_macro2::TokenTree::Ident(i) => out.push(i.to_string()),
                proc_macro2::TokenTree::Group(g) => idents(g.stream(), out),
                _ => {}
            }
        }
    }
    let mut ids = Vec::new();
    idents(quote::ToTokens::to_token_stream(&file), &mut ids);
    assert!(
        !ids.iter().any(|i| i == "exit" || i == "process" || i == "link"),
        "{ids:?}"
    );
    let field = fpn_compiler::lower::derive_ident("x; std::process::exit(1) /* ` [link] \u{202e}");
    assert_eq!(field, "x__std__process__exit_1________link___");
    assert!(code.contains(&format!("pub {field}:")), "{code}");
    assert!(
        !code.contains('\u{202e}'),
        "a text-direction code point is written as <U+202E>"
    );
    let torch = fpn_compiler::back::torch::generate(&c.graph, &c.analysis).expect("torch");
    assert!(!torch.contains("exit(1)"), "{torch}");
}

#[test]
fn quoted_name_misuses_are_reported_at_the_source() {
    let one = |nodes: &str, outputs: &str| {
        codes(&format!(
            "name: Q\ninputs: {{x: [4, 8, 8]}}\nnodes:\n{nodes}outputs: {outputs}\n"
        ))
    };
    // weights under a name that is not a path, without `module:`
    assert_eq!(
        one("  \"P3/out\": {conv: {out: 4, kernel: 1}}\n", "[\"P3/out\"]"),
        ["E0244"]
    );
    assert_eq!(one("  \"3x3\": {cna: {out: 4, kernel: 3}}\n", "[\"3x3\"]"), ["E0244"]);
    // an empty part, a control character
    assert_eq!(one("  \"a..b\": relu\n  y: {from: x, relu}\n", "[y]"), ["E0243"]);
    assert_eq!(one("  \"a\\tb\": relu\n  y: {from: x, relu}\n", "[y]"), ["E0243"]);
    // `a.b` beside `a` (or an input `x` and a node `x.0`)
    assert_eq!(
        one("  a: {chunk: 2}\n  \"a.1\": {from: x, relu}\n", "[a.0, \"a.1\"]"),
        ["E0202"]
    );
    assert_eq!(one("  \"x.0\": relu\n", "[\"x.0\"]"), ["E0202"]);
    // two listed outputs with the same derived field; a map's fields are written, not derived
    assert_eq!(
        one(
            "  \"P3 out\": relu\n  \"p3-out\": {from: x, relu}\n",
            "[\"P3 out\", \"p3-out\"]"
        ),
        ["E0229"]
    );
    assert_eq!(one("  \"P3 out\": relu\n", "{\"P3 out\": \"P3 out\"}"), ["E0210"]);
    assert!(one(
        "  \"P3 out\": relu\n  \"p3-out\": {from: x, relu}\n",
        "{a: \"P3 out\", b: \"p3-out\"}"
    )
    .is_empty());
}
