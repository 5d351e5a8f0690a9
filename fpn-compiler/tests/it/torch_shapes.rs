//! PyTorch shape parity: every shipped `specs/*.yaml` must give the same parameters and shapes
//! as the same model built in PyTorch.
//!
//! The fixture `tests/fixtures/torch_shapes.json` is made by `tools/torch_shapes.py` (run
//! `python3 tools/torch_shapes.py` from the repository root; its header names the torch version
//! that made the checked-in file). It holds, per spec and input size: the PyTorch `state_dict`
//! (name → shape, without `num_batches_tracked`), the output shapes seen by a forward hook on
//! every module that owns parameters (keyed by its `state_dict` prefix, in call order), and the
//! named outputs. For each case this test compiles the spec and checks:
//!
//! * (a) `analysis.params` equals the `state_dict` exactly: same names, same shapes;
//! * (b) every conv or batch-norm node with `param = Some(p)` has the shape PyTorch's module `p`
//!   produced; nodes sharing a prefix (shared-weight heads) are matched in node order against the
//!   hook's calls in order;
//! * (c) every named output has PyTorch's shape.
//!
//! Symbolic specs are evaluated at the fixture's sizes (`[H, W]`).

use fpn_compiler::infer::Shape;
use fpn_compiler::ir::Op;
use fpn_compiler::span::SourceMap;
use fpn_compiler::{compile_yaml, Compiled};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_shapes.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("a list of integers")
        .iter()
        .map(|x| x.as_i64().expect("an integer"))
        .collect()
}

fn compile(spec: &str) -> Compiled {
    let path = workspace().join(spec);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    compile_yaml(&mut SourceMap::new(), spec, &text).unwrap_or_else(|d| {
        panic!(
            "{spec} does not compile: {:?}",
            d.iter().map(|x| x.message.clone()).collect::<Vec<_>>()
        )
    })
}

/// A shape `[c, h, w]` at symbol values `env`.
fn eval(s: &Shape, env: &[i64]) -> Vec<i64> {
    let d = |x: &fpn_compiler::dim::Dim| x.eval(env).unwrap_or(i64::MIN);
    vec![s.c, d(&s.h), d(&s.w)]
}

/// Checks one fixture case; returns every disagreement.
fn check_case(spec: &str, c: &Compiled, case: &Value) -> Vec<String> {
    let g = &c.graph;
    let a = &c.analysis;
    let env = ints(&case["size"]);
    let at = if env.is_empty() {
        String::new()
    } else {
        format!(" at {env:?}")
    };
    let mut bad = Vec::new();
    if !env.is_empty() {
        let names = g.symbol_names();
        assert_eq!(
            names.len(),
            env.len(),
            "{spec}: fixture sizes are the values of {names:?}, in order"
        );
    }

    // The inputs the fixture was made with are the spec's inputs at this size.
    for &i in &g.inputs {
        let node = g.node(i);
        let ours = eval(&a.shapes[i.index()], &env);
        let theirs = case["inputs"].get(&node.name).map(ints);
        if theirs.as_ref() != Some(&ours) {
            bad.push(format!(
                "{spec}{at}: input `{}`: ours {ours:?}, fixture {theirs:?}",
                node.name
            ));
        }
    }

    // (a) state_dict names and shapes.
    let ours: BTreeMap<&str, &Vec<i64>> = a.params.iter().map(|p| (p.name.as_str(), &p.shape)).collect();
    assert_eq!(ours.len(), a.params.len(), "{spec}: analysis.params has repeated names");
    let theirs: BTreeMap<&str, Vec<i64>> = case["state_dict"]
        .as_object()
        .expect("state_dict")
        .iter()
        .map(|(k, v)| (k.as_str(), ints(v)))
        .collect();
    for (name, shape) in &theirs {
        match ours.get(name) {
            None => bad.push(format!(
                "{spec}{at}: param `{name}` {shape:?} is in PyTorch's state_dict but not in ours"
            )),
            Some(s) if *s != shape => bad.push(format!("{spec}{at}: param `{name}`: ours {s:?}, PyTorch {shape:?}")),
            _ => {}
        }
    }
    for (name, shape) in &ours {
        if !theirs.contains_key(name) {
            bad.push(format!(
                "{spec}{at}: param `{name}` {shape:?} is ours but not in PyTorch's state_dict"
            ));
        }
    }

    // (b) conv / batch-norm node shapes against the hooks, in node order per prefix.
    let modules = case["modules"].as_object().expect("modules");
    let mut by_prefix: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut all_prefixes: BTreeSet<&str> = BTreeSet::new();
    for i in g.graph.node_indices() {
        let node = g.node(i);
        let Some(p) = node.param.as_deref() else { continue };
        all_prefixes.insert(p);
        if matches!(node.op, Op::Conv(_) | Op::BatchNorm(_)) {
            by_prefix.entry(p).or_default().push(i.index());
        }
    }
    assert!(!by_prefix.is_empty(), "{spec}: no conv or batch-norm node to compare");
    for (p, nodes) in &by_prefix {
        let Some(calls) = modules.get(*p) else {
            bad.push(format!(
                "{spec}{at}: `{p}` ({}) has no PyTorch module",
                g.graph[nodes_index(nodes[0])].name
            ));
            continue;
        };
        let calls: Vec<Vec<i64>> = calls.as_array().expect("call list").iter().map(ints).collect();
        if calls.len() != nodes.len() {
            bad.push(format!(
                "{spec}{at}: `{p}`: {} IR node(s) use it, PyTorch called it {} time(s)",
                nodes.len(),
                calls.len()
            ));
        }
        for (k, (&n, theirs)) in nodes.iter().zip(&calls).enumerate() {
            let node = &g.graph[nodes_index(n)];
            let ours = eval(&a.shapes[n], &env);
            if &ours != theirs {
                let call = if nodes.len() > 1 {
                    format!(" (call {k})")
                } else {
                    String::new()
                };
                bad.push(format!(
                    "{spec}{at}: node `{}` ({}, param `{p}`){call}: ours {ours:?}, PyTorch {theirs:?}",
                    node.name,
                    node.op.kind()
                ));
            }
        }
    }
    for (p, calls) in modules {
        if !calls.as_array().is_some_and(|c| c.is_empty()) && !all_prefixes.contains(p.as_str()) {
            bad.push(format!(
                "{spec}{at}: PyTorch module `{p}` runs but no IR node has that param prefix"
            ));
        }
    }

    // (c) named outputs.
    let theirs = case["outputs"].as_object().expect("outputs");
    for o in &g.outputs {
        let ours = eval(&a.shapes[o.node.index()], &env);
        match theirs.get(&o.name) {
            None => bad.push(format!("{spec}{at}: output `{}` is not a PyTorch output", o.name)),
            Some(t) if ints(t) != ours => bad.push(format!(
                "{spec}{at}: output `{}`: ours {ours:?}, PyTorch {:?}",
                o.name,
                ints(t)
            )),
            _ => {}
        }
    }
    for name in theirs.keys() {
        if !g.outputs.iter().any(|o| &o.name == name) {
            bad.push(format!("{spec}{at}: PyTorch output `{name}` is not an output of ours"));
        }
    }
    bad
}

fn nodes_index(i: usize) -> petgraph::graph::NodeIndex {
    petgraph::graph::NodeIndex::new(i)
}

fn check_spec(file: &str) {
    let fx = fixture();
    let spec = format!("specs/{file}");
    let entry = fx["specs"]
        .as_array()
        .expect("specs")
        .iter()
        .find(|s| s["spec"] == spec.as_str())
        .unwrap_or_else(|| panic!("{spec} is not in the fixture: run python3 tools/torch_shapes.py"));
    let cases = entry["cases"].as_array().expect("cases");
    assert!(!cases.is_empty(), "{spec}: no cases");
    let compiled = compile(&spec);
    if !compiled.graph.symbols.is_empty() {
        assert!(cases.len() >= 2, "{spec}: a symbolic spec needs at least two sizes");
    }
    let bad: Vec<String> = cases.iter().flat_map(|c| check_case(&spec, &compiled, c)).collect();
    assert!(
        bad.is_empty(),
        "{} disagreement(s) with PyTorch:\n  {}",
        bad.len(),
        bad.join("\n  ")
    );
}

#[test]
fn fixture_covers_every_spec() {
    let fx = fixture();
    let listed: BTreeSet<String> = fx["specs"]
        .as_array()
        .expect("specs")
        .iter()
        .map(|s| s["spec"].as_str().expect("spec path").to_string())
        .collect();
    let mut files = BTreeSet::new();
    for e in std::fs::read_dir(workspace().join("specs")).expect("specs/") {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "yaml") {
            files.insert(format!("specs/{}", p.file_name().unwrap().to_string_lossy()));
        }
    }
    assert_eq!(
        listed, files,
        "the fixture must cover exactly specs/*.yaml: run python3 tools/torch_shapes.py"
    );
    for f in &files {
        let name = f.trim_start_matches("specs/");
        assert!(
            TESTED.contains(&name),
            "{f} has no test function here: add it to `parity!`"
        );
    }
}

macro_rules! parity {
    ($($test:ident => $file:literal,)*) => {
        const TESTED: &[&str] = &[$($file),*];
        $(
            #[test]
            fn $test() {
                check_spec($file);
            }
        )*
    };
}

parity! {
    bifpn_neck => "bifpn_neck.yaml",
    effdet_d0_bifpn => "effdet_d0_bifpn.yaml",
    fcos_head => "fcos_head.yaml",
    mmdet_fpn_retinanet => "mmdet_fpn_retinanet.yaml",
    panet_neck => "panet_neck.yaml",
    resnet18_fpn => "resnet18_fpn.yaml",
    resnet50_fpn => "resnet50_fpn.yaml",
    retinanet_p3p7 => "retinanet_p3p7.yaml",
    seed000_pyramid_block => "seed000_pyramid_block.yaml",
    seed001_neck => "seed001_neck.yaml",
    seed001_neck_on_resnet18 => "seed001_neck_on_resnet18.yaml",
    seed002_resnet18_pyramid => "seed002_resnet18_pyramid.yaml",
    seed003_fpn_shared_head => "seed003_fpn_shared_head.yaml",
    smp_unet_resnet34 => "smp_unet_resnet34.yaml",
    unet_decoder => "unet_decoder.yaml",
    unet_original => "unet_original.yaml",
    yolov8 => "yolov8.yaml",
    yolov8n_c2f_block => "yolov8n_c2f_block.yaml",
}
