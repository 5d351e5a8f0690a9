//! The ops of issue "Reach" beyond the one-op fixtures: `group_norm` as the norm of `cna`
//! (directly and through `defaults.cna` in a pyramid), and the argument misuses that have no
//! golden of their own (E0111 and E0108 on `pad`/`crop`, the other E0231 forms), each reported
//! at the source.

use fpn_compiler::compile_yaml;
use fpn_compiler::ir::Op;
use fpn_compiler::span::SourceMap;

fn compile(text: &str) -> Result<fpn_compiler::Compiled, Vec<String>> {
    compile_yaml(&mut SourceMap::new(), "x.yaml", text).map_err(|d| {
        d.iter()
            .filter(|x| x.is_error())
            .map(|x| x.code.as_str().to_string())
            .collect()
    })
}

fn codes(text: &str) -> Vec<String> {
    match compile(text) {
        Ok(_) => Vec::new(),
        Err(c) => c,
    }
}

#[test]
fn cna_takes_a_group_norm_with_pytorch_names() {
    let c = compile(
        "name: A\ninputs: {x: [3, 16, 16]}\nnodes:\n  b: {cna: {out: 8, kernel: 3, norm: {group_norm: {groups: 4, eps: 0.001}}}}\noutputs: [b]\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let gn: Vec<_> = c
        .graph
        .order()
        .map(|i| c.graph.node(i))
        .filter_map(|n| match &n.op {
            Op::GroupNorm(g) => Some((g.groups, g.eps, n.param.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(gn, vec![(4, 0.001, Some("b.1".to_string()))]);
    let names: Vec<&str> = c.analysis.params.iter().map(|p| p.name.as_str()).collect();
    // a norm means no conv bias, as torchvision's Conv2dNormActivation
    assert_eq!(names, ["b.0.weight", "b.1.weight", "b.1.bias"]);
}

#[test]
fn pyramid_cna_defaults_take_a_group_norm() {
    let spec = "name: P\ndefaults: {cna: {norm: {group_norm: {groups: G}}}}\ninputs: {c4: [8, 8, 8], c5: [16, 4, 4]}\nnodes:\n  neck: {fpn: {in: [c4, c5], width: 8, lateral: cna, smooth: cna}}\noutputs: [neck.p4, neck.p5]\n";
    let c = compile(&spec.replace("G", "4")).unwrap_or_else(|e| panic!("{e:?}"));
    let n = c
        .graph
        .order()
        .filter(|&i| matches!(c.graph.node(i).op, Op::GroupNorm(_)))
        .count();
    assert_eq!(n, 4, "two laterals and two smoothers each have a group norm");
    // 3 groups do not divide the width 8: reported at the source, once per group norm
    let e = codes(&spec.replace("G", "3"));
    assert!(!e.is_empty() && e.iter().all(|c| c == "E0326"), "{e:?}");
}

#[test]
fn pad_and_crop_misuses_are_reported() {
    let spec = |node: &str| {
        format!("name: M\ninputs: {{x: [3, 8, 8], y: [3, 4, 4]}}\nnodes:\n  o: {{from: x, {node}}}\noutputs: [o]\n")
    };
    assert_eq!(codes(&spec("pad: {pad: 1, match: y}")), ["E0111"]);
    assert_eq!(codes(&spec("crop: {offset: [1, 1]}")), ["E0111"]);
    assert_eq!(codes(&spec("pad: {pad: 1, mode: reflekt}")), ["E0108"]);
    assert_eq!(codes(&spec("pad: {match: y, mode: reflect}")), ["E0231"]);
    assert_eq!(codes(&spec("crop: {match: y, offset: [1, 1]}")), ["E0231"]);
    assert_eq!(codes(&spec("pad: [1, 2]")), ["E0102"]);
    // a pad to a smaller node and a crop to a larger one are size errors
    assert_eq!(codes(&spec("pad: {match: y}")), ["E0327"]);
    assert_eq!(
        codes(
            "name: M\ninputs: {x: [3, 4, 4], y: [3, 8, 8]}\nnodes:\n  o: {from: x, crop: {match: y}}\noutputs: [o]\n"
        ),
        ["E0327"]
    );
    assert!(codes(&spec("crop: {match: y}")).is_empty());
    assert!(codes(&spec("pad: {pad: [1, 0, 2, 0], mode: circular}")).is_empty());
}

/// `conv_transpose` reads its attributes with the conv reader, then refuses what PyTorch's
/// `ConvTranspose2d` does not take (`padding: same`, four paddings, a padding mode) at the
/// key, and ignores the spec's `defaults.padding_mode` (which is for convs).
#[test]
fn conv_transpose_refuses_what_conv_transpose2d_does_not_take() {
    let spec = |args: &str| {
        format!("name: T\ninputs: {{x: [4, 8, 8]}}\nnodes:\n  o: {{from: x, conv_transpose: {{out: 2, kernel: 3, stride: 2{args}}}}}\noutputs: [o]\n")
    };
    assert_eq!(codes(&spec(", padding: same")), ["E0102"]);
    assert_eq!(codes(&spec(", padding: [1, 1, 0, 0]")), ["E0102"]);
    assert_eq!(codes(&spec(", padding_mode: reflect")), ["E0101"]);
    assert_eq!(codes(&spec(", output_padding: 2")), ["E0230"]);
    assert_eq!(codes(&spec(", groups: 3")), ["E0220"]);
    let c = compile(&format!(
        "defaults: {{padding_mode: reflect}}\n{}",
        spec(", padding: 1, output_padding: 1")
    ))
    .unwrap_or_else(|e| panic!("{e:?}"));
    let node = c
        .graph
        .graph
        .node_indices()
        .find(|&i| c.graph.node(i).name == "o")
        .expect("o");
    let Op::ConvTranspose(t) = &c.graph.node(node).op else {
        panic!("not a transposed conv")
    };
    assert_eq!(t.conv.mode, fpn_runtime::PaddingMode::Zeros);
    assert_eq!((t.conv.padding, t.output_padding), ([1, 1, 1, 1], [1, 1]));
    assert_eq!(c.analysis.shapes[node.index()].c, 2);
}

/// mmdet's FPN extras (issue "Reach" item 5): `names: mmdet` names the modules as mmdet's `FPN`
/// (`lateral_convs.i.conv`, `fpn_convs.i.conv`, extras `fpn_convs.<n>`), with no ReLU before P7
/// unless `relu: true` (`relu_before_extra_convs`); P6 from the input (`on_input`), the top
/// lateral (`on_lateral`) or the top output (`on_output`). torchvision's `p6p7` keeps its ReLU.
#[test]
fn fpn_extras_as_mmdet_has_them() {
    let spec = |args: &str| {
        format!(
            "name: F\ninputs: {{c3: [8, 16, 16], c4: [16, 8, 8]}}\nnodes:\n  n: {{fpn: {{in: [c3, c4], width: 4{args}}}}}\noutputs: [n.p3, n.p5, n.p6]\n"
        )
    };
    // what the second extra level reads, and what the first reads (levels 3, 4: extras p5, p6)
    let reads = |args: &str| {
        let c = compile(&spec(args)).unwrap_or_else(|e| panic!("{args}: {e:?}"));
        let g = &c.graph;
        let input_of = |k: usize| {
            let n = g.node(g.outputs[k].node);
            let i = n.inputs[0];
            (
                g.node(i).name.clone(),
                format!("{:?}", g.node(i).op)
                    .split('(')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            )
        };
        let names: Vec<String> = c.analysis.params.iter().map(|p| p.name.clone()).collect();
        (input_of(2).1, input_of(1).0, names)
    };
    let (p7_in, p6_in, names) = reads(", names: mmdet, extra: {p6p7: {from: input}}");
    assert_eq!(p7_in, "Conv", "mmdet: no ReLU before P7");
    assert_eq!(p6_in, "c4");
    assert!(
        names.contains(&"n.lateral_convs.1.conv.weight".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"n.fpn_convs.2.conv.weight".to_string()), "{names:?}");
    assert!(names.contains(&"n.fpn_convs.3.conv.bias".to_string()), "{names:?}");
    let (p7_in, _, _) = reads(", names: mmdet, extra: {p6p7: {from: input, relu: true}}");
    assert_eq!(p7_in, "Act");
    let (_, p6_in, _) = reads(", names: mmdet, extra: {p6p7: {from: lateral}}");
    assert_eq!(p6_in, "n.lateral_convs.1.conv");
    let (_, p6_in, _) = reads(", names: mmdet, extra: {p6p7: {from: output}}");
    assert_eq!(p6_in, "n.fpn_convs.1.conv");
    let (p7_in, _, names) = reads(", extra: p6p7");
    assert_eq!(p7_in, "Act", "torchvision's LastLevelP6P7 has a ReLU");
    assert!(names.contains(&"n.extra_blocks.p7.weight".to_string()), "{names:?}");
    assert_eq!(codes(&spec(", names: mmdett")), ["E0113"]);
    assert_eq!(codes(&spec(", extra: {p6p7: {relu: maybe}}")), ["E0102"]);
}
