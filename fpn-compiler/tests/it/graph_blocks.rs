//! Issue "Reach" item 1: graph-shaped blocks (named inputs, nodes, one or more outputs) and
//! `repeat: n`. Names, `state_dict` prefixes, what a repeat is as a value, and each misuse at its
//! source. (Numbers: `specs/yolov8n_c2f_block.yaml`, written with both, loads ultralytics'
//! untouched C2f `state_dict` and matches PyTorch in `tests/it/parity.rs::yolov8n_c2f`.)

use crate::common::compile::{codes, compile};

/// The parameter names of a compiled spec, in order.
fn params(c: &fpn_compiler::Compiled) -> Vec<String> {
    c.analysis.params.iter().map(|p| p.name.clone()).collect()
}

/// The output shapes `(name, [c, h, w])` of a spec with fixed sizes.
fn outputs(c: &fpn_compiler::Compiled) -> Vec<(String, String)> {
    c.graph
        .outputs
        .iter()
        .map(|o| {
            let s = &c.analysis.shapes[o.node.index()];
            (o.name.clone(), format!("{}x{:?}x{:?}", s.c, s.h, s.w))
        })
        .collect()
}

const BLOCKS: &str = "\
blocks:
  unit:
    params: [c]
    nodes:
      a: {conv: {out: c, kernel: 3, padding: 1}}
      b: {add: [x, a]}
    outputs: [b]
  fork:
    params: [c]
    inputs: [x, side]
    nodes:
      l: {from: x, conv: {out: c, kernel: 1}}
      r: {from: side, conv: {out: c, kernel: 1, bias: false}}
      sum: {add: [l, r]}
      down: {max_pool: 2}
    outputs: {fine: sum, coarse: down}
";

#[test]
fn a_repeat_is_its_last_step_as_a_value_and_every_step_in_a_list() {
    let spec = format!(
        "name: R\n{BLOCKS}inputs: {{x: [4, 8, 8]}}\nnodes:\n  m: {{repeat: 3, unit: {{c: 4}}}}\n  \
         last: {{from: m, relu}}\n  one: {{from: m.1, relu}}\n  all: {{concat: [m]}}\n\
         outputs: [last, one, all]\n"
    );
    let c = compile(&spec).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        params(&c),
        [
            "m.0.a.weight",
            "m.0.a.bias",
            "m.1.a.weight",
            "m.1.a.bias",
            "m.2.a.weight",
            "m.2.a.bias"
        ]
    );
    let g = &c.graph;
    let name = |o: usize| g.node(g.outputs[o].node).name.clone();
    let input = |o: usize, k: usize| g.node(g.node(g.outputs[o].node).inputs[k]).name.clone();
    assert_eq!((input(0, 0), input(1, 0)), ("m.2".to_string(), "m.1".to_string()));
    assert_eq!(name(2), "all");
    let parts: Vec<String> = g
        .node(g.outputs[2].node)
        .inputs
        .iter()
        .map(|&i| g.node(i).name.clone())
        .collect();
    assert_eq!(parts, ["m.0", "m.1", "m.2"]);
    assert_eq!(outputs(&c)[2].1, "12xConst(8)xConst(8)");
    // a step that does not exist
    let bad = spec.replace("from: m.1", "from: m.3");
    assert_eq!(codes(&bad), ["E0209"]);
}

#[test]
fn a_block_with_two_inputs_and_two_outputs() {
    let spec = format!(
        "name: F\n{BLOCKS}inputs: {{p4: [8, 8, 8], c4: [16, 8, 8]}}\nnodes:\n  \
         f: {{from: p4, module: neck.fuse, fork: {{c: 8, side: c4}}}}\n  g: {{from: f.coarse, relu}}\n\
         outputs: {{fine: f.fine, coarse: g}}\n"
    );
    let c = compile(&spec).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        params(&c),
        ["neck.fuse.l.weight", "neck.fuse.l.bias", "neck.fuse.r.weight"]
    );
    assert_eq!(
        outputs(&c),
        [
            ("fine".to_string(), "8xConst(8)xConst(8)".to_string()),
            ("coarse".to_string(), "8xConst(4)xConst(4)".to_string())
        ]
    );
    // a multi-output instance is not one value
    assert_eq!(codes(&spec.replace("from: f.coarse", "from: f")), ["E0209"]);
    // the second input must be passed; an unknown argument is named
    assert_eq!(codes(&spec.replace("c: 8, side: c4", "c: 8")), ["E0206"]);
    assert_eq!(codes(&spec.replace("side: c4", "sid: c4")), ["E0207"]);
    // an input fed from a later node is ordered after it (references go both ways)
    let later = format!(
        "name: F\n{BLOCKS}inputs: {{p4: [8, 8, 8]}}\nnodes:\n  \
         f: {{from: p4, fork: {{c: 8, side: s}}}}\n  s: {{from: p4, conv: {{out: 4, kernel: 1}}}}\n\
         outputs: [f.fine]\n"
    );
    let c = compile(&later).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(params(&c)[..2], ["s.weight".to_string(), "s.bias".to_string()]);
}

#[test]
fn blocks_nest_and_repeat_inside_blocks_with_relative_module_paths() {
    let spec = format!(
        "name: N\n{BLOCKS}  stage:\n    params: [c, n]\n    nodes:\n      \
         stem: {{module: cv1, conv: {{out: c, kernel: 1}}}}\n      body: {{module: m, repeat: n, unit: {{c: c}}}}\n    \
         outputs: [body]\n\
         inputs: {{x: [3, 6, 6]}}\nnodes:\n  s: {{module: model.2, repeat: 2, stage: {{c: 4, n: 2}}}}\noutputs: [s]\n"
    );
    let c = compile(&spec).unwrap_or_else(|e| panic!("{e:?}"));
    let p = params(&c);
    assert_eq!(p.len(), 12, "{p:?}");
    assert_eq!(p[0], "model.2.0.cv1.weight");
    assert_eq!(p[2], "model.2.0.m.0.a.weight");
    assert_eq!(p[6], "model.2.1.cv1.weight");
    assert_eq!(p[10], "model.2.1.m.1.a.weight");
    assert_eq!(outputs(&c)[0].1, "4xConst(6)xConst(6)");
}

#[test]
fn block_and_repeat_misuses_are_reported_at_the_source() {
    let node = |n: &str| format!("name: M\n{BLOCKS}inputs: {{x: [4, 8, 8]}}\nnodes:\n  {n}\noutputs: [o]\n");
    assert_eq!(codes(&node("o: {repeat: 0, unit: {c: 4}}")), ["E0212"]);
    assert_eq!(codes(&node("o: {repeat: 200000, relu}")), ["E0310"]);
    assert_eq!(codes(&node("o: {repeat: 2, chunk: 2}")), ["E0218"]);
    assert_eq!(codes(&node("o: {repeat: k, relu}")), ["E0204"]);
    // a block's names: valid identifiers, none twice, and only its own in scope
    let dup = "name: D\nblocks:\n  b:\n    nodes:\n      x: relu\n    outputs: [x]\ninputs: {i: [1, 4, 4]}\nnodes:\n  o: {b: }\noutputs: [o]\n";
    assert_eq!(codes(dup), ["E0202"]);
    let outer = "name: D\nblocks:\n  b:\n    nodes:\n      y: {add: [x, i]}\n    outputs: [y]\ninputs: {i: [1, 4, 4]}\nnodes:\n  o: {b: }\noutputs: [o]\n";
    assert_eq!(codes(outer), ["E0201"]);
    let missing_out = "name: D\nblocks:\n  b:\n    nodes:\n      y: relu\n    outputs: [z]\ninputs: {i: [1, 4, 4]}\nnodes:\n  o: {b: }\noutputs: [o]\n";
    assert_eq!(codes(missing_out), ["E0201"]);
    assert_eq!(codes(&missing_out.replace("outputs: [z]", "outputs: []")), ["E0211"]);
}
