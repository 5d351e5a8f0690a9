//! Every diagnostic code, once: its variant, what it means and what to do.
//!
//! `docs/diagnostics.md` lists the same table for readers; the test `diag_codes` fails when the
//! two differ, when a code is emitted without a golden, or when a code is declared and never
//! emitted. `fpn explain E0323` prints an entry.

macro_rules! codes {
    ($( $(#[$m:meta])* $code:ident => ($meaning:literal, $fix:literal), )*) => {
        /// A stable diagnostic code (`E0323`). Errors start with `E`, warnings with `W`; the
        /// hundreds group them: 0 reading the file, 1 reading the spec, 2 structure, 3 shapes and
        /// sizes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(
                #[doc = $meaning]
                $code,
            )*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$code),*];

            /// The code as written: `"E0323"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$code => stringify!($code),)*
                }
            }

            /// What it means (one sentence; the "Meaning" column of docs/diagnostics.md).
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$code => $meaning,)*
                }
            }

            /// What to do about it (the "What to do" column of docs/diagnostics.md).
            pub fn fix(self) -> &'static str {
                match self {
                    $(Code::$code => $fix,)*
                }
            }
        }
    };
}

codes! {
    // Reading the file (front ends)
    E0000 => (r#"The spec file cannot be read (missing, no permission, a directory, FIFO or device: only regular files are read)."#, r#"Check the path. The CLI exits with status 2 for this one."#),
    E0001 => (r#"YAML syntax error, or a control character in the text."#, r#"Fix the YAML near the caret: indentation with spaces, matching `[ ]`/`{ }`, closed quotes. The caret is where the parser noticed, which can be after the real mistake (e.g. the line after an unclosed `[`)."#),
    E0002 => (r#"The spec is empty (no document, or only `null`/comments)."#, r#"Write a map with at least `name`, `inputs`, `nodes` and `outputs`."#),
    E0003 => (r#"A number does not fit in 64 bits, or is `.inf`/`.nan`."#, r#"Use a number between −2^63 and 2^63−1, or quote it if it is text."#),
    E0004 => (r#"A key appears twice in one map."#, r#"Remove or rename one; YAML would otherwise silently keep only one."#),
    E0005 => (r#"Lists/maps nest more than 64 levels deep."#, r#"Flatten the spec."#),
    E0006 => (r#"The spec is larger than 16 MiB, or holds more than 200 000 values, counting every copy an alias (`*name`) makes (alias bombs)."#, r#"Split the spec up or use fewer aliases; check that the file is the spec you meant."#),
    E0007 => (r#"A map key is a list or a map."#, r#"Write keys as plain names, like `p3:`."#),
    E0008 => (r#"Unsupported YAML: several documents (`---`), tags (`!!python/tuple`), a recursive alias."#, r#"Put one spec per file; remove tags; only alias complete values."#),
    E0009 => (r#"The file is not UTF-8 (points at the first bad byte)."#, r#"Save the spec as UTF-8 text; check it is not a binary file."#),
    E0010 => (r#"Syntax error inside an `fpn! { … }` macro invocation."#, r#"Fix the token layout the message names (e.g. a missing `,`)."#),
    // Reading the spec (keys, types, ops)
    E0100 => (r#"Internal compiler error: an invariant of fpn did not hold (a node without its input during inference, …)."#, r#"Report it as a compiler bug, with the spec."#),
    E0101 => (r#"Unknown key in a map (e.g. `kernal` in a `conv`)."#, r#"Use the suggested key (`did you mean …`) or one of the listed keys."#),
    E0102 => (r#"A value has the wrong type (a map where a list is expected, text where a number is, …)."#, r#"Write the type the message names, e.g. `[C, H, W]` for an input, an integer for a stride."#),
    E0103 => (r#"A required key is missing (`out`/`kernel` of a conv, `name`, `inputs`, `nodes`, `outputs`, a block's `body`, …)."#, r#"Add the key."#),
    E0104 => (r#"A reference is not `name` or `name.output` (e.g. `x.`)."#, r#"Refer to a node by name, or to one output of a pyramid/head as `neck.p3`."#),
    E0105 => (r#"An input does not have exactly three sizes."#, r#"Write inputs as `[C, H, W]`; the batch is always dynamic."#),
    E0106 => (r#"A node has more than one op key."#, r#"Give each op its own node, or chain them with `seq: [...]`."#),
    E0107 => (r#"Unknown op (not a built-in op nor a declared block), or a node without an op."#, r#"Use the suggested op, an op from the listed ones, or declare the block under `blocks`."#),
    E0108 => (r#"Unknown padding mode."#, r#"Use `zeros`, `reflect`, `replicate` or `circular` (a conv's `padding_mode`), or `constant`, `reflect`, `replicate`, `circular` (a `pad`'s `mode`)."#),
    E0109 => (r#"Unknown activation."#, r#"Use `relu`, `relu6`, `leaky_relu`, `tanh`, `sigmoid`, `silu`, `hardswish`, `gelu`, `identity` (or `none`)."#),
    E0110 => (r#"An activation that takes no arguments was given some (`relu: {inplace: true}`)."#, r#"Write the activation alone; only `gelu` and `leaky_relu` take arguments."#),
    E0111 => (r#"An op with both or neither of two alternative keys: an upsample's `scale` and `match`, a `pad`'s `pad` and `match`, a `crop`'s `size` and `match`."#, r#"Give exactly one: `scale: 2` (PyTorch `scale_factor`) or `match: <node>` (PyTorch `size=`); `pad: [l, r, t, b]` or `match: <node>`; `size: [h, w]` or `match: <node>`."#),
    E0112 => (r#"Unknown upsample mode."#, r#"Use `nearest` or `bilinear`."#),
    E0113 => (r#"A pyramid option has an unknown value (`lateral`, `smooth`, `merge`)."#, r#"Use one of the listed values (`conv`, `cna`, `none`; `add`, `concat`)."#),
    E0114 => (r#"Unknown `names` convention of a `cna` (the `state_dict` names of its conv and norm) or of a `fuse` (its weights' name)."#, r#"Use `torchvision` (conv `.0`, norm `.1`; the default), `ultralytics` or `mmdet` (conv `.conv`, norm `.bn`, `.gn` for a group norm); a `fuse`: `fpn` (`<node>.weight`, the default) or `effdet` (`<node>.edge_weights`)."#),
    // Structure (lowering)
    E0201 => (r#"A reference names no node or input (`from`, `add`, `match`, `outputs`, …)."#, r#"Fix the name (a suggestion is given when one is close)."#),
    E0202 => (r#"A name is used twice (input and node, two nodes, two outputs, two parameters of a block or spec, a pyramid level listed twice), a block has a built-in op's name, or a node named `a.b` sits beside a node or input `a` (the reference `a.b` would name both)."#, r#"Give every input, node and output its own name; rename the block."#),
    E0203 => (r#"Nodes depend on each other in a cycle."#, r#"A topology is a DAG: make one of them read an earlier node."#),
    E0204 => (r#"An expression cannot be evaluated: a name that is not a parameter there (a block parameter used outside its block, a spec parameter used above its declaration), division by zero, overflow, a float too large to round, `make_divisible` with a divisor that is not a positive integer."#, r#"Write a number, or use the parameters in scope (listed in the help)."#),
    E0206 => (r#"A block call lacks an argument the block declares."#, r#"Pass it: `block: {param: value}`."#),
    E0207 => (r#"A block call passes an argument the block does not declare."#, r#"Remove it or use the suggested/listed parameter."#),
    E0208 => (r#"Block calls nest deeper than 32 (a block calling itself, directly or through others)."#, r#"Remove the recursion."#),
    E0209 => (r#"Wrong output of a multi-output node: `neck.p9` does not exist, `x.p3` on a single-output node, or a multi-output node used where one tensor is needed."#, r#"Use one of the listed outputs, e.g. `neck.p3`."#),
    E0210 => (r#"A name that becomes Rust code (the spec's name, a block's, an input's, a block input's, a field of `outputs: {field: node}`) is not a plain identifier or is a keyword (`fn`, `x; std::process::exit(1)`). Node names may be any text: fpn derives their identifiers."#, r#"Use ASCII letters, digits and `_`, starting with a letter, not a Rust keyword."#),
    E0211 => (r#"The spec has no inputs or no outputs."#, r#"Declare `inputs: {x: [3, 224, 224]}` and `outputs: [...]`."#),
    E0212 => (r#"A size, channel count, kernel, stride, dilation or groups is zero or negative, or a padding is negative."#, r#"Use positive values (paddings may be 0)."#),
    E0213 => (r#"An upsample scale is not supported (not positive, not finite, or ≥ 10^6)."#, r#"Use a scale such as 2, 0.5 or 1.5, or `match: <node>`. Any other positive scale works: the size is `trunc(x·scale)` computed in f64, as PyTorch does (so 25 × 1.16 gives 28)."#),
    E0214 => (r#"A node has no input: it is first and the spec has several inputs, or the previous node has several outputs."#, r#"Add `from: <input>` or `from: <node>.<output>`."#),
    E0215 => (r#"The spec expands to more than 100 000 ops (blocks calling blocks)."#, r#"Reduce repeats, levels or nested block calls."#),
    E0216 => (r#"Pool padding more than half the kernel — the kernel without dilation, as PyTorch compares (`kernel: 2, padding: 2, dilation: 3` fails)."#, r#"Use padding ≤ kernel/2 (PyTorch's rule)."#),
    E0217 => (r#"`add`/`mul`/`concat`/`mean`/`fuse` with fewer than two inputs."#, r#"List at least two nodes."#),
    E0218 => (r#"A multi-output op (pyramid, head, ResNet) used as a step of a sequence."#, r#"Declare it as its own node and refer to one output."#),
    E0219 => (r#"`padding: same` on a strided conv."#, r#"Give the padding as a number (PyTorch rejects `same` with stride > 1)."#),
    E0220 => (r#"Conv or transposed conv `groups` does not divide the output channels."#, r#"Choose groups dividing both input and output channels."#),
    E0221 => (r#"No ResNet preset of that depth."#, r#"Use depth 18, 34 or 50."#),
    E0222 => (r#"A pyramid with fewer than two levels, or `levels` of the wrong length."#, r#"List at least two backbone levels, finest first, and one level number per input."#),
    E0223 => (r#"A pyramid with `merge: concat` and `smooth: none`."#, r#"Use `smooth: conv` or `smooth: cna` with concat merges."#),
    E0224 => (r#"An input size uses a symbol the spec's `symbols:` section does not declare (a typo of `H`)."#, r#"Use the suggested symbol or declare it, e.g. `Hh: 1..`."#),
    E0225 => (r#"An input size expression is not arithmetic on one symbol with numbers (`H*W`, `64/H`), divides by 0 or a negative number, divides numbers without a whole result (`9/2`), or overflows."#, r#"Write sizes like `H/8`, `2*H`, `H-1`; see spec.md "Input sizes"."#),
    E0226 => (r#"A float attribute the runtime needs as f32 is out of range: a batch norm, group norm or fusion `eps` that is negative, not finite or beyond f32 (`1e300`), a `leaky_relu` slope or a `pad` fill `value` beyond f32."#, r#"Use an eps such as 1e-5, a slope such as 0.1, a fill value such as 0."#),
    E0227 => (r#"`align_corners` on a nearest upsample (PyTorch: "align_corners option can only be set with the interpolating modes")."#, r#"Remove it, or use `mode: bilinear`."#),
    E0228 => (r#"A symbol declared under `symbols:` that no input size uses (nothing gives its value)."#, r#"Remove it, or use it in an input size."#),
    E0229 => (r#"Two parameter names or node prefixes become the same Rust identifier in generated code (`a` and `A`; a sequence's `a.0` beside a node `a_0`), or two listed outputs derive the same field (`"P3 out"` and `"p3-out"` are both `p3_out`)."#, r#"Rename one of the nodes, or name the output fields yourself (`outputs: {a: …, b: …}`)."#),
    E0230 => (r#"A `conv_transpose` `output_padding` not smaller than its stride or its dilation (PyTorch: "output padding must be smaller than either stride or dilation")."#, r#"Use `output_padding` below the stride: it only chooses among the output sizes a stride maps onto one input size."#),
    E0231 => (r#"A `pad` or `crop` argument combination fpn does not take: a fill `value` with a mode other than `constant` (PyTorch refuses it), `pad: {match: …}` with `reflect`/`circular` (their limits would depend on both sizes), `crop: {match: …}` with an `offset` (a match crop is centred)."#, r#"Remove `value`, use `mode: constant` or `replicate`, or crop a fixed `size` at the offset."#),
    E0232 => (r#"A `module:` path (the PyTorch `state_dict` prefix a node's weights load from) that is not dot-separated identifiers or numbers, such as `model.4.cv1`, or the root `module: ''` on a single op with weights (they would be named `.weight`)."#, r#"Write the module's path as PyTorch prints it in `state_dict()` keys, without the parameter name: `module: model.4.cv1` for `model.4.cv1.conv.weight` of a `cna` with `names: ultralytics`."#),
    E0233 => (r#"`padding: tf_same` (TensorFlow's `SAME`, timm's `Conv2dSame` / `MaxPool2dSame`) with a setting it cannot take: a conv `padding_mode` other than `zeros` (TF pads with zeros), a pool's `ceil_mode: true` (the size rule is `ceil(x/s)` already)."#, r#"Remove the setting, or give the padding as numbers."#),
    E0240 => (r#"An expression gives a float where an integer is needed (`out: 64 * width` with `width: 0.25` is 16.0; `c/3` that does not divide)."#, r#"Round it explicitly: `round(…)` (halves to even, as Python), `floor(…)`, `ceil(…)`, or `make_divisible(…, 8)` for channel counts (docs/spec.md "Parameters")."#),
    E0241 => (r#"A parameter set from outside the spec (`--set name=value`, the macros' `set:`, `Builder::set`) that the spec does not have, an unknown scale (set, or the default `scale:`), or a set value that is not a number."#, r#"Use one of the parameters or scales the help lists; give numbers as `width=0.5`."#),
    E0242 => (r#"A malformed family or parameter list: a parameter name that is not an identifier or is a function's name or `scale`, scales that set different parameters, `scales:` empty, `scale:` without `scales:`, `{scale}` in the name of a spec without scales."#, r#"Give every scale the same parameters, name them with identifiers, and declare `scales:` with a default `scale:` (docs/spec.md "Model families")."#),
    E0243 => (r#"A node name fpn cannot use: empty, longer than 100 characters, with a control character, or with an empty part between dots (`a..b`, `.a`, `a.`)."#, r#"Name nodes with any other text: `p3`, `"model.12"`, `"P3/out"` (quoted in YAML when it has `:`, `#` or spaces)."#),
    E0244 => (r#"A node with weights whose name is not a `state_dict` path (dot-separated identifiers or numbers, like `model.12`) and that has no `module:` (`"P3/out"`, `"3x3"`)."#, r#"Give it `module: <path>`, the prefix its weights load from (the help suggests one)."#),
    // Shapes and sizes (inference and checking)
    E0301 => (r#"Conv or transposed conv `groups` does not divide the input channels."#, r#"Choose groups dividing both input and output channels."#),
    E0304 => (r#"`add`/`mul`/`mean`/`fuse` of tensors with different channel counts."#, r#"Project them to one width first, e.g. a 1×1 conv."#),
    E0310 => (r#"Arithmetic overflow computing a size or channel count (numbers near 2^63)."#, r#"Check for a typo in a large number."#),
    E0311 => (r#"Two nodes read the same weights (a shared head on different levels, nodes given the same `module:` path) but need different shapes (different input channels) or compute different ops."#, r#"Project all levels to the same width before the head; give nodes that are not the same op on the same channels their own `module:` path."#),
    E0320 => (r#"An op's output height or width would be below 1: the (dilated) kernel does not fit the padded input (or an input size expression such as `H-4` is below 1)."#, r#"Use a larger input, less stride on the way, more padding, or a smaller kernel. The help lists the input sizes that work and, where one works, a padding change (verified by re-running the size analysis)."#),
    E0321 => (r#"Reflect padding (a conv's or a `pad`'s) not smaller than the size it pads (PyTorch fails at run time)."#, r#"Use a larger input, smaller padding, or another padding mode. The help lists the sizes that work."#),
    E0322 => (r#"Circular padding larger than the size it pads (PyTorch fails at run time)."#, r#"As E0321."#),
    E0323 => (r#"A merge (`add`, `mul`, `concat`, `mean`, `fuse`, a `skip`/`residual`) gets tensors of different heights or widths."#, r#"Use an input size from the accepted set in the help, make the upsample take the skip's size with `upsample: {match: <node>}`, or apply the padding change the help offers (each is verified by re-running the size analysis; the label marks where to write it)."#),
    E0324 => (r#"A size symbol (`H` in `[3, H, W]`) has no accepted value at all within its bounds."#, r#"Read the error that follows it (the first node that breaks at the smallest size) and widen the bounds or change the topology."#),
    E0325 => (r#"An input size with `/` is never a whole number for the allowed values of its symbol (follows E0324)."#, r#"`/` divides exactly: pick bounds that contain multiples of the divisor, or write the size differently."#),
    E0326 => (r#"A channel count an op needs to divide does not: `group_norm` groups not dividing its input channels (PyTorch: "num_channels must be divisible by num_groups"), `pixel_shuffle: r` on channels not a multiple of r²."#, r#"Use groups dividing the channels (the help lists them), or give the conv before a multiple of r² output channels."#),
    E0327 => (r#"A window does not fit: a `crop` larger than its input (or its `offset` + `size` beyond it), a `crop: {match: n}` to a larger node, a `pad: {match: n}` to a smaller node. Slicing in PyTorch would silently return a smaller tensor."#, r#"Use a smaller crop or a larger input (the help lists the sizes that work)."#),
    E0328 => (r#"`pixel_unshuffle: r` on a height or width that `r` does not divide (PyTorch: "should be divisible by downscale_factor")."#, r#"Use an input size from the accepted set in the help, or pad / crop to a multiple of r first."#),
    E0329 => (r#"A `chunk` or `split` does not fit its input's channels: `chunk: n` with `n` not dividing them (PyTorch would make a smaller last chunk), `split` sizes not summing to them (PyTorch: "split_with_sizes expects split_sizes to sum exactly to")."#, r#"Give the node before it a multiple of `n` channels, or make the `split` sizes sum to the input channels (the message says how many)."#),
    // Warnings
    W0001 => (r#"A node no output depends on."#, r#"List it under `outputs`, use it, or remove it."#),
    W0002 => (r#"An input nothing reads."#, r#"Remove it or read it with `from:`."#),
}

impl Code {
    /// The code written `s` (`"E0323"`, any case), if there is one.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether it is a warning code (`W…`).
    pub fn is_warning(self) -> bool {
        self.as_str().starts_with('W')
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
