//! ONNX export (`fpn_compiler::back::onnx`, `fpn export --onnx`), without Python:
//!
//! * every shipped spec exports; the bytes decode again with the same prost messages; graph
//!   inputs and outputs (names, dims, dynamic dim names), initializers (the `state_dict` names,
//!   shapes and values), the opset of every node (an independent table of ONNX operators and
//!   the opset each appeared in) and the topological order are checked;
//! * `unet_decoder.yaml` at 12×10: the interpreter against ONNX Runtime's output on the
//!   exported model (fixture of `python3 tools/onnx_parity.py --fixture`, in
//!   `tests/fixtures/onnx/`: weights, input and ORT 1.32's outputs);
//! * bad input: an opset outside 14..=21, circular padding below opset 19, a scale that is not a
//!   float32: errors naming the node and its line.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use fpn_compiler::back::onnx::{self, proto, ExportError, Options};
use fpn_compiler::dim::Dim;
use fpn_compiler::interp::{self, Params};
use fpn_compiler::ir::Op;
use fpn_compiler::span::SourceMap;
use fpn_compiler::Compiled;
use fpn_runtime::ndarray::{ArrayD, Ix4};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compile(path: &Path) -> Compiled {
    let mut sm = SourceMap::new();
    fpn_compiler::compile_file(&mut sm, path)
        .unwrap_or_else(|d| panic!("{}: {}", path.display(), fpn_compiler::render(&d, &sm)))
}

fn compile_text(text: &str) -> (Compiled, SourceMap) {
    let mut sm = SourceMap::new();
    let c = fpn_compiler::compile_yaml(&mut sm, "t.yaml", text)
        .unwrap_or_else(|d| panic!("{}", fpn_compiler::render(&d, &sm)));
    (c, sm)
}

/// ONNX operators of the default domain and the opset each first appeared in (ONNX's
/// `docs/Operators.md`), written out here, not taken from the exporter: the ops an export may
/// use in an opset are exactly those with a version ≤ it.
const ONNX_OPS: &[(&str, i64)] = &[
    ("Add", 1),
    ("AveragePool", 1),
    ("BatchNormalization", 1),
    ("Clip", 1),
    ("Concat", 1),
    ("Conv", 1),
    ("ConvTranspose", 1),
    ("DepthToSpace", 1),
    ("Div", 1),
    ("Erf", 9),
    ("Gather", 1),
    ("Gelu", 20),
    ("HardSwish", 14),
    ("Identity", 1),
    ("InstanceNormalization", 1),
    ("LeakyRelu", 1),
    ("MaxPool", 1),
    ("Max", 1),
    ("Mean", 1),
    ("Mul", 1),
    ("Pad", 1),
    ("ReduceSum", 1),
    ("Relu", 1),
    ("Reshape", 1),
    ("Resize", 10),
    ("Shape", 1),
    ("Sigmoid", 1),
    ("Slice", 1),
    ("SpaceToDepth", 1),
    ("Sub", 1),
    ("Tanh", 1),
];

fn specs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("specs"))
        .expect("specs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 11, "the shipped specs are missing");
    v
}

fn dim_name(d: &proto::Dimension) -> String {
    match &d.value {
        Some(proto::DimValue::Value(v)) => v.to_string(),
        Some(proto::DimValue::Param(p)) => p.clone(),
        None => "?".into(),
    }
}

fn dims(v: &proto::ValueInfoProto) -> Vec<String> {
    let t = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .expect("a tensor type");
    assert_eq!(
        t.elem_type,
        Some(proto::data_type::FLOAT),
        "`{:?}` is not float",
        v.name
    );
    t.shape.as_ref().expect("a shape").dim.iter().map(dim_name).collect()
}

fn want_dims(c: i64, h: &Dim, w: &Dim, names: &[String]) -> Vec<String> {
    let d = |d: &Dim| {
        d.as_const()
            .map_or_else(|| d.display(names).to_string(), |v| v.to_string())
    };
    vec!["N".into(), c.to_string(), d(h), d(w)]
}

fn export_bytes(c: &Compiled, params: &Params, opts: &Options) -> proto::ModelProto {
    let m = onnx::export(&c.graph, &c.analysis, params, opts).expect("export");
    let bytes = onnx::to_bytes(&m);
    let back = onnx::from_bytes(&bytes).expect("the exported bytes decode");
    assert_eq!(back, m, "decoding gives another model");
    back
}

/// The checks of one decoded model against its spec.
fn check_model(path: &Path, c: &Compiled, params: &Params, m: &proto::ModelProto, opset: i64) {
    let what = path.display();
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!(m.opset_import[0].version, Some(opset));
    assert_eq!(m.opset_import[0].domain.as_deref().unwrap_or(""), "");
    let g = m.graph.as_ref().expect("a graph");
    let names = c.graph.symbol_names();
    // inputs
    let want_in: Vec<(String, Vec<String>)> = c
        .graph
        .inputs
        .iter()
        .map(|&i| match &c.graph.node(i).op {
            Op::Input(inp) => (
                inp.name.clone(),
                want_dims(inp.channels, &inp.size[0], &inp.size[1], &names),
            ),
            _ => panic!("not an input"),
        })
        .collect();
    let got_in: Vec<(String, Vec<String>)> = g
        .input
        .iter()
        .map(|v| (v.name.clone().unwrap_or_default(), dims(v)))
        .collect();
    assert_eq!(got_in, want_in, "{what}: graph inputs");
    // outputs
    let want_out: Vec<(String, Vec<String>)> = c
        .graph
        .outputs
        .iter()
        .map(|o| {
            let s = &c.analysis.shapes[o.node.index()];
            (o.name.clone(), want_dims(s.c, &s.h, &s.w, &names))
        })
        .collect();
    let got_out: Vec<(String, Vec<String>)> = g
        .output
        .iter()
        .map(|v| (v.name.clone().unwrap_or_default(), dims(v)))
        .collect();
    assert_eq!(got_out, want_out, "{what}: graph outputs");
    // initializers: the state_dict, in order, with its shapes and values; helpers after, `/`-named
    let (sd, helpers): (Vec<_>, Vec<_>) = g
        .initializer
        .iter()
        .partition(|t| !t.name.as_deref().unwrap_or("").contains('/'));
    let sd_names: Vec<&str> = sd.iter().map(|t| t.name.as_deref().unwrap_or("")).collect();
    let want_names: Vec<&str> = c.analysis.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        sd_names, want_names,
        "{what}: initializer names are not the state_dict's"
    );
    for (t, p) in sd.iter().zip(&c.analysis.params) {
        assert_eq!(t.dims, p.shape, "{what}: `{}` shape", p.name);
        assert_eq!(t.data_type, Some(proto::data_type::FLOAT));
        let raw = t.raw_data.as_deref().expect("raw data");
        let want = params.get(&p.name).expect("param");
        assert_eq!(raw.len(), want.len() * 4, "{what}: `{}` length", p.name);
        // every value of a small tensor; the first and last 256 of a large one (a debug build
        // walks the 25M floats of ResNet-50 slowly)
        let n = want.len();
        let idx: Vec<usize> = if n <= 4096 {
            (0..n).collect()
        } else {
            (0..256).chain(n - 256..n).collect()
        };
        let flat = want.as_slice().expect("a contiguous tensor");
        for k in idx {
            let b = &raw[4 * k..4 * k + 4];
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let w = flat[k];
            assert_eq!(v.to_bits(), w.to_bits(), "{what}: `{}`[{k}]", p.name);
        }
    }
    // topological, single assignment, and every op in the opset
    let ops: HashMap<&str, i64> = ONNX_OPS.iter().copied().collect();
    let mut known: HashSet<String> = g.input.iter().filter_map(|v| v.name.clone()).collect();
    known.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
    assert_eq!(
        known.len(),
        g.input.len() + g.initializer.len(),
        "{what}: a name is both input and initializer"
    );
    for n in &g.node {
        let op = n.op_type.as_deref().unwrap_or("");
        match ops.get(op) {
            Some(&since) => assert!(since <= opset, "{what}: `{op}` is not in opset {opset}"),
            None => panic!("{what}: `{op}` is not an ONNX operator fpn expects"),
        }
        for i in &n.input {
            assert!(
                i.is_empty() || known.contains(i),
                "{what}: node {:?} reads `{i}` before it is made",
                n.name
            );
        }
        for o in &n.output {
            assert!(known.insert(o.clone()), "{what}: `{o}` is assigned twice");
        }
    }
    for o in &g.output {
        assert!(
            known.contains(o.name.as_deref().unwrap_or("")),
            "{what}: output {:?} is never made",
            o.name
        );
    }
    // every helper constant is read by some node
    let read: HashSet<&str> = g.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    for t in helpers {
        assert!(
            read.contains(t.name.as_deref().unwrap_or("")),
            "{what}: unused constant {:?}",
            t.name
        );
    }
}

#[test]
fn every_shipped_spec_exports_decodes_and_matches_its_spec() {
    for path in specs() {
        let c = compile(&path);
        let params = Params::init(&c.analysis, 7);
        // all opsets for the small specs; the ResNet-based ones (~11–27M parameters, slow in a
        // debug build) at the default
        let small = c
            .analysis
            .params
            .iter()
            .map(|p| p.shape.iter().product::<i64>())
            .sum::<i64>()
            < 2_000_000;
        let opsets: &[i64] = if small {
            &[onnx::MIN_OPSET, onnx::DEFAULT_OPSET, onnx::MAX_OPSET]
        } else {
            &[onnx::DEFAULT_OPSET]
        };
        for &opset in opsets {
            let m = export_bytes(&c, &params, &Options { opset, fold_bn: false });
            assert_eq!(m.ir_version, Some(onnx::ir_version(opset)));
            check_model(&path, &c, &params, &m, opset);
        }
    }
}

#[test]
fn symbolic_sizes_are_named_dynamic_dims() {
    let c = compile(&repo().join("specs/resnet50_fpn.yaml"));
    let m = export_bytes(&c, &Params::init(&c.analysis, 0), &Options::default());
    let g = m.graph.expect("graph");
    assert_eq!(dims(&g.input[0]), ["N", "3", "H", "W"]);
    // the outputs' sizes are expressions of H and W (P2 is a quarter of the input, rounded up
    // by the stride-2 convs and the pool)
    let out: Vec<Vec<String>> = g.output.iter().map(dims).collect();
    assert!(out.iter().all(|d| d[0] == "N" && d[1] == "256"), "{out:?}");
    assert!(out.iter().all(|d| d[2].contains('H') && d[3].contains('W')), "{out:?}");
    let c = compile(&repo().join("specs/seed001_neck.yaml"));
    let m = export_bytes(&c, &Params::init(&c.analysis, 0), &Options::default());
    let g = m.graph.expect("graph");
    assert_eq!(dims(&g.input[0]), ["N", "128", "52", "52"]);
}

#[test]
fn fold_bn_removes_the_batch_norms_and_gives_each_conv_a_bias() {
    let c = compile(&repo().join("specs/seed001_neck.yaml"));
    let params = Params::init(&c.analysis, 3);
    let keep = export_bytes(&c, &params, &Options::default()).graph.expect("graph");
    let fold = export_bytes(
        &c,
        &params,
        &Options {
            opset: 17,
            fold_bn: true,
        },
    )
    .graph
    .expect("graph");
    let count = |g: &proto::GraphProto, op: &str| g.node.iter().filter(|n| n.op_type.as_deref() == Some(op)).count();
    let bns = c
        .graph
        .order()
        .filter(|&i| matches!(c.graph.node(i).op, Op::BatchNorm(_)))
        .count();
    assert!(bns >= 3);
    assert_eq!(count(&keep, "BatchNormalization"), bns);
    assert_eq!(count(&fold, "BatchNormalization"), 0);
    let names =
        |g: &proto::GraphProto| -> Vec<String> { g.initializer.iter().filter_map(|t| t.name.clone()).collect() };
    assert!(names(&fold).iter().all(|n| !n.ends_with("running_var")));
    // each folded conv reads a bias it did not have
    let convs: Vec<&proto::NodeProto> = fold
        .node
        .iter()
        .filter(|n| n.op_type.as_deref() == Some("Conv"))
        .collect();
    let with_bias = convs.iter().filter(|n| n.input.len() == 3).count();
    assert!(with_bias >= bns, "{with_bias} of {} convs have a bias", convs.len());
}

fn read(path: &Path) -> Vec<(String, ArrayD<f32>)> {
    fpn_runtime::read_tensors(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (make it with `python3 tools/onnx_parity.py --fixture`)",
            path.display()
        )
    })
}

#[test]
fn interpreter_matches_onnx_runtime_on_the_exported_unet() {
    let dir = repo().join("fpn-compiler/tests/fixtures/onnx");
    let c = compile(&repo().join("specs/unet_decoder.yaml"));
    let w = fpn_runtime::Weights::from_file(dir.join("unet_decoder.weights.safetensors")).expect("weights");
    let params = Params::from_weights(&w, &c.analysis).expect("the fixture weights fit the spec");
    let inputs = read(&dir.join("unet_decoder.input.safetensors"));
    let views: Vec<(&str, _)> = inputs
        .iter()
        .map(|(n, t)| (n.as_str(), t.view().into_dimensionality::<Ix4>().expect("4-D input")))
        .collect();
    assert_eq!(views[0].1.shape(), [1, 3, 12, 10]);
    let got = interp::run(&c.graph, &c.analysis, &params, &views).expect("run");
    let want = read(&dir.join("unet_decoder.ort_output.safetensors"));
    assert_eq!(got.len(), want.len());
    for (name, t) in &got {
        let (_, ort) = want
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("ORT gave no `{name}`"));
        let t = t.view().into_dyn();
        assert_eq!(t.shape(), ort.shape(), "`{name}`");
        let scale = ort.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = t.iter().zip(ort.iter()).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        println!("{name}: max |fpn − ORT| / max |ORT| = {err:.2e} (max |ORT| {scale:.3})");
        // measured 5.6e-7; float32 noise of a few 3×3 convs, group norms and a transposed conv
        assert!(err <= 1e-5, "`{name}`: relative error {err:e}");
        assert!(scale > 0.1, "`{name}`: the fixture output is all but zero");
    }
    // and the exporter writes those same weights under those names
    let m = export_bytes(&c, &params, &Options::default());
    check_model(&dir, &c, &params, &m, 17);
}

const CIRCULAR: &str = "name: Circ
inputs:
  x: [3, 16, 16]
nodes:
  stem: {conv: {out: 4, kernel: 3, padding: 1}}
  wrap: {conv: {out: 4, kernel: 3, padding: 1, padding_mode: circular}}
outputs: [wrap]
";

#[test]
fn opset_outside_the_supported_range_is_refused() {
    let c = compile(&repo().join("specs/seed001_neck.yaml"));
    let params = Params::init(&c.analysis, 0);
    for opset in [1, 13, 22, -5] {
        let e = onnx::export(&c.graph, &c.analysis, &params, &Options { opset, fold_bn: false }).expect_err("refused");
        assert!(matches!(e, ExportError::Opset { opset: o } if o == opset), "{e}");
        assert_eq!(
            e.to_string(),
            format!("ONNX opset {opset} is not supported: fpn exports opsets 14 to 21")
        );
        assert!(e.help().contains("--opset"), "{}", e.help());
    }
}

#[test]
fn circular_padding_below_opset_19_names_the_node_and_its_line() {
    let (c, sm) = compile_text(CIRCULAR);
    let params = Params::init(&c.analysis, 0);
    let e = onnx::export(&c.graph, &c.analysis, &params, &Options::default()).expect_err("no wrap Pad in 17");
    assert_eq!(
        e.to_string(),
        "node `wrap` (conv) cannot be exported to ONNX opset 17: circular padding (`Pad` mode `wrap`) needs opset 19 or newer"
    );
    assert_eq!(sm.location(e.span().expect("a span")), "t.yaml:6:10");
    assert!(e.help().contains("--opset 19"), "{}", e.help());
    // opset 19 has it: a `wrap` Pad, then an unpadded conv
    let m = export_bytes(
        &c,
        &params,
        &Options {
            opset: 19,
            fold_bn: false,
        },
    );
    let g = m.graph.as_ref().expect("graph");
    let pad = g
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("Pad"))
        .expect("a Pad");
    let mode = pad
        .attribute
        .iter()
        .find(|a| a.name.as_deref() == Some("mode"))
        .and_then(|a| a.s.clone());
    assert_eq!(mode.as_deref(), Some(&b"wrap"[..]));
    check_model(Path::new("t.yaml"), &c, &params, &m, 19);
}

#[test]
fn upsample_scale_that_is_not_a_float32_names_the_node() {
    let (c, sm) = compile_text(
        "name: Up
inputs:
  x: [3, 10, 10]
nodes:
  up: {upsample: 1.1}
outputs: [up]
",
    );
    let e = onnx::export(
        &c.graph,
        &c.analysis,
        &Params::init(&c.analysis, 0),
        &Options::default(),
    )
    .expect_err("1.1 is no f32");
    assert!(
        e.to_string()
            .starts_with("node `up` (upsample) cannot be exported to ONNX opset 17: its scale 1.1 is not a float32"),
        "{e}"
    );
    assert_eq!(sm.location(e.span().expect("a span")), "t.yaml:5:8");
}
