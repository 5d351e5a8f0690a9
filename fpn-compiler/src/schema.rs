//! The JSON Schema (draft 2020-12) of the spec language: `fpn schema`, committed as
//! `docs/fpn.schema.json` for editors (`# yaml-language-server: $schema=…`).
//!
//! It is built from the tables the reader uses, so it cannot drift from them: the op keywords
//! come from the registry ([`crate::ast::op_keywords`]), each op's argument keys from the
//! constant its reader passes to `Reader::finish` (`CONV_KEYS`, `PYRAMID_KEYS`, …), the
//! top-level, `defaults` and block keys from `ast`'s, and the names an argument takes
//! (activations, padding modes, `names`) from the reader's lists. This module adds what the
//! reader has no table for: a description of each key and the JSON type of its value. A test
//! checks that every keyword and every key has a description.
//!
//! What the schema cannot say, the reader still checks: integers may be parameters or
//! expressions (`out: 2*cout`, `make_divisible(64 * width, 8)`), so they are "integer or string";
//! a node has one op; references must name nodes.

use serde_json::{json, Map, Value as J};

/// An integer argument, or a parameter / an expression (`cout`, `2*cout`, `round(3 * depth)`).
fn int() -> J {
    json!({"type": ["integer", "string"]})
}

/// One integer (or parameter) or a pair `[h, w]` of them.
fn int_or_pair() -> J {
    json!({"anyOf": [int(), {"type": "array", "items": int(), "minItems": 2, "maxItems": 2}]})
}

/// A reference to a node or input: `name` or `name.out`.
fn reference() -> J {
    json!({"type": "string"})
}

/// One reference or a list of them.
fn refs() -> J {
    json!({"type": "array", "items": reference(), "minItems": 1})
}

/// One of the names `names`.
fn one_of(names: &[&str]) -> J {
    json!({"type": "string", "enum": names})
}

/// A list of ops (a sequence's body).
fn ops() -> J {
    json!({"type": "array", "items": {"$ref": "#/$defs/op"}})
}

/// An activation as `cna`'s `act` takes it: a name, `none`, or `{leaky_relu: 0.1}`-style map.
fn activation() -> J {
    let mut names: Vec<&str> = crate::ops::act::ACTS.to_vec();
    names.push("none");
    json!({"anyOf": [one_of(&names), {"type": "object", "minProperties": 1, "maxProperties": 1,
        "propertyNames": {"enum": crate::ops::act::ACTS}}]})
}

/// A norm as `cna`'s `norm` takes it.
fn norm() -> J {
    json!({"anyOf": [
        one_of(&["batch_norm", "none"]),
        {"type": "object", "additionalProperties": false, "minProperties": 1, "maxProperties": 1, "properties": {
            "batch_norm": described(object(crate::ops::norm::BATCH_NORM_KEYS, "batch_norm", &[]), "Batch norm with its `eps`."),
            "group_norm": described(object(crate::ops::norm::GROUP_NORM_KEYS, "group_norm", &["groups"]), "Group norm: `{groups, eps}`."),
        }},
    ]})
}

/// `schema` with a description.
fn described(mut schema: J, description: &str) -> J {
    if let Some(o) = schema.as_object_mut() {
        o.insert("description".into(), J::from(description));
    }
    schema
}

/// The value schema and description of key `key` of `op` (`op.key` first, then `key` alone).
fn arg(op: &str, key: &str) -> Option<(J, &'static str)> {
    let padding = json!({"anyOf": [int(), {"type": "string", "enum": ["same", crate::ops::conv::TF_SAME]},
        {"type": "array", "items": int(), "minItems": 2, "maxItems": 4}]});
    Some(match (op, key) {
        ("upsample", "scale") => (
            json!({"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}]}),
            "Scale factor (PyTorch `scale_factor`): a number or `[h, w]`.",
        ),
        ("upsample", "match") => (reference(), "Take this node's size (PyTorch `size=`); `skip` inside a `skip`/`residual` body is the skip's input."),
        ("upsample", "mode") => (one_of(crate::ops::upsample::UPSAMPLE_MODES), "Interpolation: `nearest` (default) or `bilinear`."),
        ("pad", "pad") => (json!({"anyOf": [int(), {"type": "array", "items": int(), "minItems": 4, "maxItems": 4}]}), "Padding `p` or `[left, right, top, bottom]` (F.pad's order)."),
        ("pad", "match") => (reference(), "Pad to this node's size (`diff // 2` top/left, the rest bottom/right)."),
        ("pad", "mode") => (one_of(&["constant", "reflect", "replicate", "circular"]), "F.pad mode (default `constant`)."),
        ("pad", "value") => (json!({"type": "number"}), "Fill value of `constant` padding (default 0)."),
        ("crop", "size") => (int_or_pair(), "Window size `n` or `[h, w]`."),
        ("crop", "match") => (reference(), "Crop to this node's size, centred."),
        ("crop", "offset") => (json!({"type": "array", "items": int(), "minItems": 2, "maxItems": 2}), "Window's top-left `[top, left]` (centred without it)."),
        ("fuse", "in") => (refs(), "The inputs to fuse."),
        ("head", "on") => (json!({"anyOf": [reference(), refs()]}), "The level or levels the head runs on (weights shared)."),
        ("head", "body") => (ops(), "The ops run on every level."),
        ("resnet", "depth") => (json!({"enum": [18, 34, 50]}), "torchvision ResNet depth."),
        ("resnet", "width") => (int(), "Stem width (default 64)."),
        ("pyramid", "in") => (refs(), "Backbone levels, finest first."),
        ("pyramid", "width") => (int(), "Channels of every level."),
        ("pyramid", "levels") => (json!({"type": "array", "items": {"type": "integer"}}), "Level numbers (default: the digits of the input names); outputs are `p<level>`."),
        ("pyramid", "lateral") => (one_of(&["conv", "cna"]), "1×1 lateral: `conv` (with bias) or `cna`."),
        ("pyramid", "smooth") => (one_of(&["conv", "cna", "none"]), "3×3 smoother: `conv`, `cna` or `none`."),
        ("pyramid", "upsample") => (json!({"anyOf": [{"type": "string", "enum": ["match"]}, {"type": "number"}]}), "`match` (interpolate to the lateral's size) or a scale."),
        ("pyramid", "merge") => (one_of(&["add", "concat"]), "How levels merge."),
        ("pyramid", "extra") => (
            json!({"anyOf": [one_of(&["none", "max_pool", "p6p7"]), {"type": "object", "additionalProperties": false,
                "properties": {"p6p7": {"type": ["object", "null"], "additionalProperties": false,
                    "description": "RetinaNet's P6 and P7 (stride-2 3×3 convs).",
                    "properties": {
                        "from": described(one_of(&["input", "c5", "lateral", "output", "p5"]),
                            "What P6 is made from: the top input (`input`, `c5`; mmdet `on_input`, the default), the top lateral (`lateral`; `on_lateral`) or the top output (`output`, `p5`; `on_output`)."),
                        "relu": described(json!({"type": "boolean"}),
                            "A ReLU between P6 and P7 (default: yes, as torchvision; with `names: mmdet`, no, as mmdet's `relu_before_extra_convs=False`)."),
                    }},
                "levels": described(int(),
                    "bifpn with `names: effdet`: this many BiFPN levels made before the cells from the top input (effdet's `BiFpn.resample`: 1×1 conv + BN where the level below is not `width` wide, then a 3×3/2 max pool with TensorFlow `SAME` padding)."),
                }}]}),
            "Extra levels: `none`, `max_pool` (LastLevelMaxPool → p6), `p6p7`, `{p6p7: {from: output, relu: false}}` or, for an effdet bifpn, `{levels: 2}`.",
        ),
        ("pyramid", "names") => (
            one_of(crate::presets::pyramid::PYRAMID_NAMES),
            "Module names: an fpn's torchvision's (`inner_blocks.i.0`, `layer_blocks.i.0`, `extra_blocks.p6`) or mmdet's `FPN` (`lateral_convs.i.conv`, `fpn_convs.i.conv`, extras `fpn_convs.<n>.conv`); a bifpn's own (`lateral.i`, `cells.r`) or effdet's `BiFpn` (`effdet`: `resample.<l>`, `cell.<r>.fnode.<k>`, its structure and TF `SAME` pools).",
        ),
        ("pyramid", "bn_eps") => (json!({"type": "number"}), "bifpn batch norm epsilon (default 1e-3 with `names: effdet`, as effdet's `norm_kwargs`; else 1e-5)."),
        ("pyramid", "repeats") => (int(), "BiFPN cells (bifpn only)."),
        ("pyramid", "eps") => (json!({"type": "number"}), "BiFPN fusion epsilon (default 1e-4)."),
        ("gelu", "approximate") => (one_of(&["none", "tanh"]), "`tanh` for the tanh approximation."),
        ("leaky_relu", "slope") => (json!({"type": "number"}), "Negative slope (default 0.01)."),
        ("group_norm", "groups") => (json!({"type": "integer"}), "Number of groups; must divide the channels."),
        (_, "eps") => (json!({"type": "number"}), "Epsilon added to the variance."),
        (_, "out") => (int(), "Output channels."),
        (_, "kernel") => (int_or_pair(), "Kernel size `k` or `[kh, kw]`."),
        (_, "stride") => (int_or_pair(), "Stride (conv default 1, pool default the kernel)."),
        (_, "padding") => (padding, "Padding `n`, `[h, w]`, `[top, bottom, left, right]`, `same` (conv, stride 1) or `tf_same` (TensorFlow's `SAME`, timm's `padding='same'`: `ceil(x/stride)` outputs, the padding follows the input size)."),
        (_, "output_padding") => (int_or_pair(), "Extra size on one side (smaller than the stride or dilation)."),
        (_, "dilation") => (int_or_pair(), "Dilation (default 1)."),
        (_, "groups") => (int(), "Groups (default 1)."),
        (_, "bias") => (json!({"type": "boolean"}), "Whether the conv has a bias (default true; `cna`: only without a norm)."),
        (_, "padding_mode") => (one_of(crate::ops::conv::PADDING_MODES), "Padding mode (default `zeros`)."),
        (_, "ceil_mode") => (json!({"type": "boolean"}), "Round the output size up (default false)."),
        (_, "count_include_pad") => (json!({"type": "boolean"}), "Average over padding too (default true)."),
        (_, "align_corners") => (json!({"type": "boolean"}), "Bilinear only (default false)."),
        (_, "norm") => (norm(), "Norm after the conv: `batch_norm` (default), `none`, `{batch_norm: {eps}}`, `{group_norm: {groups, eps}}`."),
        (_, "act") => (activation(), "Activation after the norm: an activation name, `none`, or `{leaky_relu: 0.1}`."),
        ("fuse", "names") => (
            one_of(crate::ops::merge::FUSE_NAMES),
            "Weight names: `fpn` (`<node>.weight`, the default) or `effdet` (`<node>.edge_weights`, effdet's `FpnCombine`).",
        ),
        (_, "names") => (one_of(crate::ast::CNA_NAMES), "Checkpoint names: `torchvision` (`.0`, `.1`), `ultralytics` or `mmdet` (`.conv`, `.bn`)."),
        _ => return None,
    })
}

/// A map with exactly the keys `keys` (each described by [`arg`] for `op`), `required` among
/// them.
fn object(keys: &[&str], op: &str, required: &[&str]) -> J {
    let mut props = Map::new();
    for k in keys {
        let (s, d) = arg(op, k).unwrap_or((json!({}), ""));
        props.insert((*k).to_string(), described(s, d));
    }
    json!({"type": "object", "additionalProperties": false, "properties": props, "required": required})
}

/// The value schema and description of op keyword `kw`.
fn op(kw: &str) -> Option<(J, &'static str)> {
    use crate::ops;
    let conv_keys = ops::conv::CONV_KEYS;
    let bare = json!({"type": "null"});
    let act = |d: &'static str| Some((bare.clone(), d));
    Some(match kw {
        "conv" => (object(conv_keys, kw, &["out", "kernel"]), "2-D convolution (`nn.Conv2d`): `<node>.weight`, `.bias`."),
        "conv_transpose" => (object(ops::conv_transpose::KEYS, kw, &["out", "kernel"]), "Transposed convolution (`nn.ConvTranspose2d`)."),
        "cna" => (
            object(&[conv_keys, crate::composite::CNA_KEYS].concat(), kw, &["out", "kernel"]),
            "Conv, norm, activation (`torchvision.ops.Conv2dNormActivation`); padding defaults to `(kernel-1)/2·dilation`.",
        ),
        "batch_norm" => (json!({"anyOf": [bare, object(ops::norm::BATCH_NORM_KEYS, kw, &[])]}), "Batch norm (`nn.BatchNorm2d`, inference): bare or `{eps}`."),
        "group_norm" => (object(ops::norm::GROUP_NORM_KEYS, kw, &["groups"]), "Group norm (`nn.GroupNorm(groups, C, eps)`)."),
        "relu" => return act("ReLU."),
        "relu6" => return act("ReLU6."),
        "tanh" => return act("Tanh."),
        "sigmoid" => return act("Sigmoid."),
        "silu" => return act("SiLU."),
        "hardswish" => return act("Hardswish."),
        "identity" => return act("Identity."),
        "leaky_relu" => (
            json!({"anyOf": [bare, {"type": "number"}, object(ops::act::LEAKY_RELU_KEYS, kw, &[])]}),
            "Leaky ReLU: bare, a slope (`leaky_relu: 0.1`) or `{slope}`.",
        ),
        "gelu" => (json!({"anyOf": [bare, object(ops::act::GELU_KEYS, kw, &[])]}), "GELU: bare or `{approximate: tanh}`."),
        "max_pool" => (json!({"anyOf": [int(), object(ops::pool::MAX_POOL_KEYS, kw, &["kernel"])]}), "Max pooling (`nn.MaxPool2d`): a kernel or a map."),
        "avg_pool" => (json!({"anyOf": [int(), object(ops::pool::AVG_POOL_KEYS, kw, &["kernel"])]}), "Average pooling (`nn.AvgPool2d`): a kernel or a map."),
        "upsample" => (
            json!({"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                object(ops::upsample::UPSAMPLE_KEYS, kw, &[])]}),
            "Upsampling (`nn.Upsample` / `F.interpolate`): a scale, `[h, w]` scales, or `{scale | match, mode, align_corners}`.",
        ),
        "add" => (refs(), "Sum of equal shapes."),
        "mul" => (refs(), "Elementwise product of equal shapes."),
        "mean" => (refs(), "Mean of equal shapes."),
        "concat" => (refs(), "Concatenation along channels (`torch.cat(dim=1)`)."),
        "fuse" => (json!({"anyOf": [refs(), object(ops::merge::FUSE_KEYS, kw, &["in"])]}), "BiFPN fast normalized fusion: `[a, b]` or `{in, eps, names}`; weights `<node>.weight` (`names: effdet`: `<node>.edge_weights`)."),
        "pad" => (
            json!({"anyOf": [int(), {"type": "array", "items": int(), "minItems": 4, "maxItems": 4}, object(ops::layout::PAD_KEYS, kw, &[])]}),
            "`F.pad`: `p`, `[left, right, top, bottom]`, `{pad, mode, value}` or `{match, mode, value}`.",
        ),
        "crop" => (object(ops::layout::CROP_KEYS, kw, &[]), "A window: `{size, offset}` (centred without offset) or `{match}`."),
        "pixel_shuffle" => (int(), "`nn.PixelShuffle(r)`: `[C/r², H·r, W·r]`."),
        "pixel_unshuffle" => (int(), "`nn.PixelUnshuffle(r)`: `[C·r², H/r, W/r]`."),
        "seq" => (ops(), "`nn.Sequential`: child `i` is `<node>.i`."),
        "skip" => (ops(), "`cat([x, seq(x)], dim=1)`."),
        "residual" => (ops(), "`x + seq(x)`."),
        "fpn" => (object(crate::presets::pyramid::PYRAMID_KEYS, "pyramid", &["in", "width"]), "torchvision `FeaturePyramidNetwork`; outputs `p<level>`."),
        "panet" => (object(crate::presets::pyramid::PYRAMID_KEYS, "pyramid", &["in", "width"]), "FPN plus a PANet bottom-up path; outputs `p<level>`."),
        "bifpn" => (object(crate::presets::pyramid::PYRAMID_KEYS, "pyramid", &["in", "width"]), "EfficientDet BiFPN cells; outputs `p<level>`."),
        "head" => (object(crate::composite::HEAD_KEYS, kw, &["on", "body"]), "The same body on every level, weights shared."),
        "resnet" => (object(crate::presets::resnet::RESNET_KEYS, kw, &["depth"]), "torchvision ResNet; outputs `stem`, `c2`..`c5`."),
        "chunk" => (int(), "`x.chunk(n, 1)`: n equal channel parts, outputs `.0` … `.n-1`."),
        "split" => (json!({"type": "array", "items": int(), "minItems": 1}), "`x.split([a, b, …], 1)`: parts of these channel counts, outputs `.0`, `.1`, …"),
        _ => return None,
    })
}

/// Descriptions of the top-level keys.
fn top(key: &str) -> Option<(J, &'static str)> {
    let size = json!({"type": ["integer", "string"]});
    let number = json!({"type": ["number", "string"], "description": "A number or an expression (`round`, `ceil`, `floor`, `min`, `max`, `make_divisible`)."});
    Some(match key {
        "name" => (
            json!({"type": "string", "pattern": "^([A-Za-z_]|\\{scale\\})([A-Za-z0-9_]|\\{scale\\})*$"}),
            "The generated type's name (a Rust identifier); `{scale}` in it becomes the scale's name (`Yolov8{scale}`).",
        ),
        "scale" => (json!({"type": "string"}), "The default scale of a family (a key of `scales`); `--set scale=s` picks another."),
        "scales" => (
            json!({"type": "object", "minProperties": 1, "additionalProperties": {"type": "object",
                "additionalProperties": number.clone(), "description": "The values this scale gives some parameters (every scale the same ones)."}}),
            "A model family's scales: `{n: {depth: 0.33, width: 0.25, max_channels: 1024}, …}`.",
        ),
        "params" => (
            json!({"type": "object", "additionalProperties": number}),
            "Spec parameters, evaluated in order: numbers or expressions over the scale's values and the parameters above (`make_divisible(min(256, max_channels) * width, 8)`); any integer attribute may use them.",
        ),
        "doc" => (json!({"type": "string"}), "Free text for the generated rustdoc."),
        "defaults" => {
            let cna = described(
                object(crate::composite::CNA_KEYS, "cna", &[]),
                "Defaults of every `cna` (norm, act, names).",
            );
            let mut d = Map::new();
            for k in crate::ast::DEFAULTS_KEYS {
                let v = match *k {
                    "cna" => cna.clone(),
                    _ => {
                        let (s, desc) = arg("conv", k).unwrap_or((json!({}), ""));
                        described(s, &format!("Default of every conv: {desc}"))
                    }
                };
                d.insert((*k).to_string(), v);
            }
            (
                json!({"type": "object", "additionalProperties": false, "properties": d}),
                "Defaults of every `cna` and conv.",
            )
        }
        "symbols" => (
            json!({"type": "object", "additionalProperties": {"type": ["string", "integer"], "description": "Bounds: `32..2048`, `32..`."}}),
            "Bounds of the size symbols (`{H: 32..2048, W: 32..}`); with it, every symbol must be declared.",
        ),
        "blocks" => {
            let params = json!({"type": "array", "items": {"type": "string"}, "description": "Parameter names."});
            let mut seq = Map::new();
            for k in crate::ast::BLOCK_KEYS {
                seq.insert(
                    (*k).to_string(),
                    match *k {
                        "params" => params.clone(),
                        _ => json!({"anyOf": [ops(), {"$ref": "#/$defs/op"}], "description": "The block's ops (a sequence)."}),
                    },
                );
            }
            let mut graph = Map::new();
            for k in crate::ast::GRAPH_BLOCK_KEYS {
                let v = match *k {
                    "params" => params.clone(),
                    "inputs" => json!({"type": "array", "items": {"type": "string"}, "minItems": 1,
                        "description": "Input names (default `[x]`): the first is the instance's `from`, the others are instance arguments naming nodes."}),
                    other => {
                        let (s, _) = top(other).unwrap_or((json!({}), ""));
                        described(s, match other {
                            "nodes" => "The block's nodes, written like the spec's; they see the block's inputs and nodes only.",
                            _ => "What an instance returns: one output, or several as `inst.<name>`.",
                        })
                    }
                };
                graph.insert((*k).to_string(), v);
            }
            (
                json!({"type": "object", "additionalProperties": {"anyOf": [
                    {"type": "object", "additionalProperties": false, "properties": seq, "required": ["body"],
                     "description": "A sequence block."},
                    {"type": "object", "additionalProperties": false, "properties": graph, "required": ["nodes", "outputs"],
                     "description": "A graph-shaped block."},
                ]}}),
                "Reusable blocks with parameters (a sequence `body`, or `inputs`/`nodes`/`outputs`); a node calls one as `{<block>: {param: value, input: node}}`.",
            )
        }
        "inputs" => (
            json!({"type": "object", "minProperties": 1, "additionalProperties": {"type": "array", "items": size,
                "minItems": 3, "maxItems": 3, "description": "`[C, H, W]`: numbers, symbols or arithmetic on one symbol (`H/8`)."}}),
            "Named inputs `[C, H, W]`.",
        ),
        "nodes" => (
            json!({"type": "object", "minProperties": 1, "additionalProperties": {"$ref": "#/$defs/op"}}),
            "Named nodes in order; each is one op (`{op: args}`, optionally `from:` and `module:`) or a bare op name.",
        ),
        "outputs" => (
            json!({"anyOf": [refs(), {"type": "object", "minProperties": 1, "additionalProperties": reference()}]}),
            "Outputs: a list of references or a map `{field: reference}`.",
        ),
        _ => return None,
    })
}

/// The JSON Schema of a spec, as a JSON value.
pub fn json_schema() -> J {
    let mut node = Map::new();
    node.insert(
        "from".into(),
        json!({"type": "string", "description": "The node's input (default: the previous node)."}),
    );
    node.insert(
        "repeat".into(),
        json!({"type": ["integer", "string"], "description": "`repeat: n`: the op n times in a chain, steps `.0` … `.n-1` (a value is the last step, a list every step)."}),
    );
    node.insert(
        "module".into(),
        json!({"type": "string", "description": "`state_dict` prefix of the node's weights instead of its name (`model.4.cv1`)."}),
    );
    for kw in crate::ast::op_keywords() {
        let (s, d) = op(kw).unwrap_or((json!({}), ""));
        node.insert(kw.to_string(), described(s, d));
    }
    let mut props = Map::new();
    for k in crate::ast::TOP_KEYS {
        let (s, d) = top(k).unwrap_or((json!({}), ""));
        props.insert((*k).to_string(), described(s, d));
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/fpn/fpn.schema.json",
        "title": "fpn spec",
        "description": "A feature-pyramid topology for fpn (docs/spec.md). Generated by `fpn schema` from the compiler's own keyword tables.",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "inputs", "nodes", "outputs"],
        "properties": props,
        "$defs": {
            "op": {
                "description": "An op: a bare name (`relu`, `batch_norm`, a block without parameters) or a map with one op key (an op keyword or a block's name) and optionally `from`, `module` and `repeat`.",
                "anyOf": [
                    {"type": "string"},
                    {"type": "object", "minProperties": 1, "properties": node,
                     "additionalProperties": {"type": ["object", "null"], "description": "A block call: `{param: value, input: node}`."}},
                ],
            },
        },
    })
}

/// [`json_schema`] as the text `fpn schema` prints (pretty, ending in a newline).
pub fn json_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every keyword, argument and top-level key the reader knows has a description here.
    #[test]
    fn every_key_is_described() {
        for kw in crate::ast::op_keywords() {
            assert!(op(kw).is_some(), "op keyword `{kw}` has no schema entry");
        }
        for k in crate::ast::TOP_KEYS {
            assert!(top(k).is_some(), "top-level key `{k}` has no schema entry");
        }
        let mut missing = Vec::new();
        let schema = json_schema();
        fn walk(v: &J, path: &str, missing: &mut Vec<String>) {
            if let Some(o) = v.as_object() {
                if let Some(J::Object(props)) = o.get("properties") {
                    for (k, p) in props {
                        if p.get("description").and_then(J::as_str).is_none_or(str::is_empty) {
                            missing.push(format!("{path}.{k}"));
                        }
                    }
                }
                for (k, c) in o {
                    walk(c, &format!("{path}/{k}"), missing);
                }
            } else if let Some(a) = v.as_array() {
                for (i, c) in a.iter().enumerate() {
                    walk(c, &format!("{path}/{i}"), missing);
                }
            }
        }
        walk(&schema, "", &mut missing);
        assert!(missing.is_empty(), "keys without a description: {missing:?}");
    }
}
