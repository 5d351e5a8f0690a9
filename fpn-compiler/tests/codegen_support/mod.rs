//! Hand-built graphs and analyses for the back-end tests (independent of the front ends and of
//! shape inference, which are written concurrently).
#![allow(dead_code)]

use fpn_compiler::dim::Dim;
use fpn_compiler::infer::{Analysis, ParamInfo, Shape};
use fpn_compiler::ir::{Conv, Graph, Node, Op, Output, Pool, Symbol, Upsample};
use fpn_compiler::ops::{
    act::Act,
    input::Input,
    merge::{Add, Concat, Fuse, FuseNames, Mean},
    norm::BatchNorm,
    pool::{AvgPool, MaxPool},
    InitKind,
};
use fpn_compiler::span::Span;
use fpn_runtime::{Activation, PaddingMode};
use petgraph::graph::{DiGraph, NodeIndex};

/// Builds a graph and its analysis node by node.
pub struct Builder {
    pub g: Graph,
    pub a: Analysis,
}

impl Builder {
    pub fn new(name: &str, symbols: &[&str]) -> Builder {
        let symbols = symbols
            .iter()
            .map(|s| Symbol {
                name: s.to_string(),
                span: Span::default(),
                min: 1,
                max: None,
            })
            .collect();
        Builder {
            g: Graph {
                name: name.to_string(),
                name_span: Span::default(),
                doc: None,
                symbols,
                graph: DiGraph::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
                modules: Vec::new(),
                exports: Vec::new(),
            },
            a: Analysis::default(),
        }
    }

    pub fn shape(&self, i: NodeIndex) -> Shape {
        self.a.shapes[i.index()].clone()
    }

    fn push(
        &mut self,
        name: &str,
        op: Op,
        inputs: Vec<NodeIndex>,
        param: Option<&str>,
        shape: Shape,
        params: Vec<(String, Vec<i64>)>,
    ) -> NodeIndex {
        let i = self.g.graph.add_node(Node {
            name: name.to_string(),
            op,
            inputs: inputs.clone(),
            span: Span::default(),
            param: param.map(str::to_string),
        });
        for (slot, j) in inputs.iter().enumerate() {
            self.g.graph.add_edge(*j, i, slot as u32);
        }
        assert_eq!(i.index(), self.a.shapes.len());
        self.a.shapes.push(shape);
        let mut count = 0;
        for (n, s) in params {
            if !self.a.params.iter().any(|p| p.name == n) {
                count += s.iter().product::<i64>();
                let dims: Vec<usize> = s.iter().map(|&d| d as usize).collect();
                let init = match dims[..] {
                    [o, i, kh, kw] => InitKind::ConvWeight([o, i, kh, kw]),
                    _ => InitKind::Zeros(dims),
                };
                self.a.params.push(ParamInfo {
                    name: n,
                    shape: s,
                    node: i,
                    init,
                });
            }
        }
        self.a.param_counts.push(count);
        self.a.flops.push(None);
        i
    }

    /// The graph with the compiler's own analysis (shapes, parameters with their init, size
    /// constraints), after checking that it agrees with the shapes and parameters built here.
    pub fn done(self) -> (Graph, Analysis) {
        let (a, _, diags) = fpn_compiler::infer::infer(&self.g);
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
        assert_eq!(a.shapes, self.a.shapes, "hand-built shapes differ from inference");
        let names = |a: &Analysis| {
            a.params
                .iter()
                .map(|p| (p.name.clone(), p.shape.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&self.a), "hand-built parameters differ from inference");
        (self.g, a)
    }

    pub fn input(&mut self, name: &str, channels: i64, size: [Dim; 2]) -> NodeIndex {
        let shape = Shape {
            c: channels,
            h: size[0].clone(),
            w: size[1].clone(),
        };
        let i = self.push(
            name,
            Op::Input(Input {
                name: name.to_string(),
                channels,
                size,
            }),
            vec![],
            None,
            shape,
            vec![],
        );
        self.g.inputs.push(i);
        i
    }

    /// Conv with symmetric padding `pad`, `groups` 1, zeros mode.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        name: &str,
        x: NodeIndex,
        param: &str,
        out: i64,
        k: i64,
        stride: i64,
        pad: i64,
        bias: bool,
    ) -> NodeIndex {
        self.conv_full(
            name,
            x,
            param,
            Conv {
                out,
                kernel: [k, k],
                stride: [stride; 2],
                padding: [pad; 4],
                dilation: [1, 1],
                groups: 1,
                bias,
                mode: PaddingMode::Zeros,
                tf_same: false,
            },
        )
    }

    pub fn conv_full(&mut self, name: &str, x: NodeIndex, param: &str, c: Conv) -> NodeIndex {
        let s = self.shape(x);
        let dim = |d: &Dim, ax: usize| {
            let reach = c.dilation[ax] * (c.kernel[ax] - 1);
            d.add(c.padding[2 * ax] + c.padding[2 * ax + 1] - reach - 1)
                .and_then(|v| v.floor_div(c.stride[ax]))
                .and_then(|v| v.add(1))
                .expect("fits")
        };
        let shape = Shape {
            c: c.out,
            h: dim(&s.h, 0),
            w: dim(&s.w, 1),
        };
        let mut params = vec![(
            format!("{param}.weight"),
            vec![c.out, s.c / c.groups, c.kernel[0], c.kernel[1]],
        )];
        if c.bias {
            params.push((format!("{param}.bias"), vec![c.out]));
        }
        self.push(name, Op::Conv(c), vec![x], Some(param), shape, params)
    }

    pub fn bn(&mut self, name: &str, x: NodeIndex, param: &str) -> NodeIndex {
        let s = self.shape(x);
        let params = ["weight", "bias", "running_mean", "running_var"]
            .iter()
            .map(|k| (format!("{param}.{k}"), vec![s.c]))
            .collect();
        self.push(
            name,
            Op::BatchNorm(BatchNorm { eps: 1e-5 }),
            vec![x],
            Some(param),
            s,
            params,
        )
    }

    pub fn act(&mut self, name: &str, x: NodeIndex, a: Activation) -> NodeIndex {
        let s = self.shape(x);
        self.push(name, Op::Act(Act(a)), vec![x], None, s, vec![])
    }

    /// Floor-mode pool with symmetric padding.
    pub fn pool(&mut self, name: &str, x: NodeIndex, max: bool, k: i64, stride: i64, pad: i64) -> NodeIndex {
        let s = self.shape(x);
        let p = Pool {
            kernel: [k, k],
            stride: [stride; 2],
            padding: [pad; 2],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
            explicit_pad: None,
            tf_same: false,
        };
        let dim = |d: &Dim| {
            d.add(2 * pad - (k - 1) - 1)
                .and_then(|v| v.floor_div(stride))
                .and_then(|v| v.add(1))
                .expect("fits")
        };
        let shape = Shape {
            c: s.c,
            h: dim(&s.h),
            w: dim(&s.w),
        };
        let op = if max {
            Op::MaxPool(MaxPool(p))
        } else {
            Op::AvgPool(AvgPool(p))
        };
        self.push(name, op, vec![x], None, shape, vec![])
    }

    /// Upsample by an integer factor.
    pub fn up_scale(&mut self, name: &str, x: NodeIndex, f: i64, bilinear: bool) -> NodeIndex {
        let s = self.shape(x);
        let shape = Shape {
            c: s.c,
            h: s.h.lin(f, 0).expect("fits"),
            w: s.w.lin(f, 0).expect("fits"),
        };
        let op = Op::Upsample(Upsample {
            bilinear,
            align_corners: false,
            scale: Some([f as f64, f as f64]),
        });
        self.push(name, op, vec![x], None, shape, vec![])
    }

    /// Upsample to the size of `like`.
    pub fn up_like(&mut self, name: &str, x: NodeIndex, like: NodeIndex, bilinear: bool) -> NodeIndex {
        let (s, l) = (self.shape(x), self.shape(like));
        let shape = Shape { c: s.c, h: l.h, w: l.w };
        let op = Op::Upsample(Upsample {
            bilinear,
            align_corners: false,
            scale: None,
        });
        self.push(name, op, vec![x, like], None, shape, vec![])
    }

    pub fn merge(&mut self, name: &str, op: Op, xs: &[NodeIndex], param: Option<&str>) -> NodeIndex {
        let s0 = self.shape(xs[0]);
        let c = if op == Op::Concat(Concat) {
            xs.iter().map(|&x| self.shape(x).c).sum()
        } else {
            s0.c
        };
        let params = match (&op, param) {
            (Op::Fuse(_), Some(p)) => vec![(format!("{p}.weight"), vec![xs.len() as i64])],
            _ => vec![],
        };
        self.push(name, op, xs.to_vec(), param, Shape { c, h: s0.h, w: s0.w }, params)
    }

    pub fn output(&mut self, name: &str, node: NodeIndex) {
        self.g.outputs.push(Output {
            name: name.to_string(),
            span: Span::default(),
            node,
        });
    }
}

/// A 3-level FPN-like network over input `x: [N, 3, H, W]`: a strided conv-BN-ReLU stem, a
/// biased conv with fused ReLU, max pool, 1×1 laterals, nearest ×2 and bilinear size-of
/// upsamples, adds, a BiFPN fusion, a concat, an avg pool, a standalone activation, and a
/// conv-BN-ReLU head whose weights are shared by two levels.
pub fn fpn3() -> (Graph, Analysis) {
    let mut b = Builder::new("Fpn3", &["H", "W"]);
    b.g.doc = Some(
        "A tiny three-level feature pyramid for the back-end tests.\nSecond line with \"quotes\" and {braces}."
            .to_string(),
    );
    let x = b.input("x", 3, [Dim::Sym(0), Dim::Sym(1)]);
    let c1 = b.conv("stem.conv", x, "backbone.conv1", 8, 3, 2, 1, false);
    let c1 = b.bn("stem.bn", c1, "backbone.bn1");
    let c3 = b.act("stem.relu", c1, Activation::Relu);
    let c4 = b.conv("c4.conv", c3, "backbone.conv2", 8, 3, 2, 1, true);
    let c4 = b.act("c4.relu", c4, Activation::Relu);
    let c5 = b.pool("c5", c4, true, 2, 2, 0);
    let lat5 = b.conv("lat5", c5, "fpn.lat5", 6, 1, 1, 0, true);
    let lat4 = b.conv("lat4", c4, "fpn.lat4", 6, 1, 1, 0, true);
    let lat3 = b.conv("lat3", c3, "fpn.lat3", 6, 1, 1, 0, false);
    let up5 = b.up_scale("up5", lat5, 2, false);
    let p4 = b.merge("p4", Op::Add(Add), &[lat4, up5], None);
    let p4f = b.merge(
        "p4f",
        Op::Fuse(Fuse {
            eps: 1e-4,
            names: FuseNames::Fpn,
        }),
        &[p4, lat4],
        Some("fpn.fuse4"),
    );
    let up4 = b.up_like("up4", p4f, lat3, true);
    let p3 = b.merge("p3", Op::Add(Add), &[lat3, up4, lat3], None);
    let cat = b.merge("cat", Op::Concat(Concat), &[p3, lat3], None);
    let m = b.merge("avg3", Op::Mean(Mean), &[p3, lat3], None);
    let p5 = b.act("p5", lat5, Activation::LeakyRelu(0.1));
    let p6 = b.pool("p6", c5, false, 3, 2, 1);
    // shared head: conv (no bias) -> BN -> SiLU on two levels, same parameter prefixes
    let h3 = b.conv("head3.conv", p3, "head.conv", 4, 3, 1, 1, false);
    let h3 = b.bn("head3.bn", h3, "head.bn");
    let h3 = b.act("head3.act", h3, Activation::Silu);
    let h4 = b.conv("head4.conv", p4f, "head.conv", 4, 3, 1, 1, false);
    let h4 = b.bn("head4.bn", h4, "head.bn");
    let h4 = b.act("head4.act", h4, Activation::Silu);
    // a BN that cannot be folded (its conv output is also an output)
    let q = b.conv("q.conv", m, "q.conv", 5, 1, 1, 0, true);
    let qn = b.bn("q.bn", q, "q.bn");
    b.output("h3", h3);
    b.output("h4", h4);
    b.output("cat", cat);
    b.output("p5", p5);
    b.output("p6", p6);
    b.output("q", q);
    b.output("qn", qn);
    b.output("stem", c3);
    b.output("x_again", x);
    b.output("h3_again", h3);
    b.done()
}

/// A deterministic pseudo-random NCHW tensor.
pub fn random(shape: [usize; 4], seed: u64) -> fpn_runtime::Tensor {
    let mut rng = fpn_runtime::Init::new(seed);
    fpn_runtime::Tensor::from_shape_simple_fn(shape, || 2.0 * rng.next_f32() - 1.0)
}

/// Parameters with non-trivial batch-norm statistics (so folding is really exercised).
pub fn params_with_stats(a: &Analysis, seed: u64) -> fpn_compiler::interp::Params {
    let mut p = fpn_compiler::interp::Params::init(a, seed);
    let mut rng = fpn_runtime::Init::new(seed ^ 0x5eed);
    for info in &a.params {
        let n = info.shape.iter().product::<i64>() as usize;
        let shape: Vec<usize> = info.shape.iter().map(|&d| d as usize).collect();
        let vals: Vec<f32> = if info.name.ends_with("running_var") {
            (0..n).map(|_| 0.5 + rng.next_f32()).collect()
        } else if info.name.ends_with("running_mean")
            || (info.name.starts_with("head.bn")
                || info.name.starts_with("backbone.bn")
                || info.name.starts_with("q.bn"))
        {
            (0..n)
                .map(|_| rng.next_f32() - 0.5 + if info.name.ends_with("weight") { 1.0 } else { 0.0 })
                .collect()
        } else if info.name.contains("fuse") {
            (0..n).map(|_| rng.next_f32() * 2.0 - 0.3).collect()
        } else {
            continue;
        };
        p.insert(
            info.name.clone(),
            fpn_runtime::ndarray::ArrayD::from_shape_vec(shape, vals).expect("shape"),
        );
    }
    p
}

/// Largest absolute difference, after checking equal shapes.
pub fn max_diff(a: &fpn_runtime::Tensor, b: &fpn_runtime::Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Two inputs tied by size rules: `x: [N, 2, H, 5]`, `y: [N, 2, H/2, 5]` with `4 ≤ H ≤ 64`;
/// `y` is upsampled to `x`'s size and averaged with it; a reflect-padded conv and a
/// standalone batch norm follow.
pub fn two() -> (Graph, Analysis) {
    let mut b = Builder::new("Two", &["H"]);
    b.g.symbols[0].min = 4;
    b.g.symbols[0].max = Some(64);
    let x = b.input("x", 2, [Dim::Sym(0), Dim::Const(5)]);
    let y = b.input("y", 2, [Dim::Sym(0).floor_div(2).expect("d"), Dim::Const(5)]);
    let u = b.up_like("u", y, x, false);
    let s = b.merge("s", Op::Mean(Mean), &[x, u], None);
    let c = b.conv_full(
        "r",
        s,
        "r",
        Conv {
            out: 3,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [2, 2, 1, 1],
            dilation: [2, 1],
            groups: 1,
            bias: true,
            mode: PaddingMode::Reflect,
            tf_same: false,
        },
    );
    let n = b.bn("n", y, "n");
    let n = b.act("n.act", n, Activation::Hardswish);
    b.output("s", s);
    b.output("r", c);
    b.output("n", n);
    b.done()
}

/// Fixed sizes and no parameters: `x: [N, 3, 8, 6]`, `y = maxpool(x + x)`, `z = x`.
pub fn fixed() -> (Graph, Analysis) {
    let mut b = Builder::new("Fixed", &[]);
    let x = b.input("x", 3, [Dim::Const(8), Dim::Const(6)]);
    let s = b.merge("s", Op::Add(Add), &[x, x], None);
    let p = b.pool("p", s, true, 2, 2, 0);
    b.output("y", p);
    b.output("z", x);
    b.done()
}

/// Inputs whose sizes are expressions of the symbols (`H/4`, `2*W`): `H` and `W` are solved from
/// input `a` (exact division and multiplication undone), `b` is checked against them.
pub const EXPRS_SPEC: &str = "name: Exprs
symbols: {H: 8..256, W: 1..}
inputs:
  a: [2, H/4, 2*W]
  b: [2, H/8, W]
nodes:
  c: {from: a, conv: {out: 2, kernel: 1, stride: [1, 2]}}
  u: {from: b, upsample: {scale: [2, 1]}}
  s: {add: [c, u]}
outputs: [s]
";

/// [`EXPRS_SPEC`] through the real front end.
pub fn exprs() -> (Graph, Analysis) {
    let mut sm = fpn_compiler::span::SourceMap::new();
    match fpn_compiler::compile_yaml(&mut sm, "exprs.yaml", EXPRS_SPEC) {
        Ok(c) => (c.graph, c.analysis),
        Err(d) => panic!("{}", fpn_compiler::render(&d, &sm)),
    }
}

/// Concat parts that generated code writes in place and channel slices it reads as views, with
/// the cases that must copy instead: `a`'s two chunks tile it in order (placed), `m` is a conv
/// reading a buffer of its own (placed), `n` reads `m`'s part of the concat it writes, `kb`
/// adds the part `ys.0` after its SiLU and `pd` pools it (placed, borrowing both parts at
/// once), `ud` upsamples to the size of a part (placed), `sum` is an add (copied), `r`'s parts come reversed (read as views of `r`), `t` appears twice (copied);
/// parts are read again after their concat, and slices are outputs.
pub const PLACED_SPEC: &str = "name: Placed
symbols: {H: 4..64, W: 4..64}
inputs:
  x: [3, H, W]
nodes:
  a: {from: x, conv: {out: 8, kernel: 3, padding: 1}}
  ys: {from: a, chunk: 2}
  m1: {from: ys.1, conv: {out: 4, kernel: 3, padding: 1}}
  m: {from: m1, conv: {out: 4, kernel: 1}}
  n: {from: m, conv: {out: 4, kernel: 1}}
  k1: {from: ys.0, conv: {out: 4, kernel: 3, padding: 1}}
  k: {from: k1, silu: ~}
  kb: {add: [k, ys.0]}
  t: {from: x, conv: {out: 2, kernel: 1}}
  sum: {add: [t, t]}
  pd: {from: ys.0, max_pool: {kernel: 3, stride: 1, padding: 1}}
  lo: {from: x, avg_pool: {kernel: 2}}
  ud: {from: lo, upsample: {match: ys.1}}
  cat1: {concat: [ys.0, ys.1, m, n, kb, sum, pd, ud]}
  r: {from: x, conv: {out: 4, kernel: 1}}
  rs: {from: r, split: [1, 3]}
  cat2: {concat: [rs.1, rs.0, t, t]}
  h: {from: cat1, conv: {out: 4, kernel: 1}}
  after: {from: m, relu: ~}
outputs: [cat1, cat2, h, ys.1, after, rs.1]
";

/// [`PLACED_SPEC`] through the real front end.
pub fn placed() -> (Graph, Analysis) {
    let mut sm = fpn_compiler::span::SourceMap::new();
    match fpn_compiler::compile_yaml(&mut sm, "placed.yaml", PLACED_SPEC) {
        Ok(c) => (c.graph, c.analysis),
        Err(d) => panic!("{}", fpn_compiler::render(&d, &sm)),
    }
}
