//! The reference interpreter: runs a [`Graph`] node by node on [`fpn_runtime`], one runtime call
//! per node, no fusion. It is the oracle the generated code is tested against.
//!
//! Invariants: every input is checked (present, batch, channels, spatial sizes against the
//! spec's [`Dim`](crate::dim::Dim) expressions) and every node's evaluated size is checked to be ≥ 1 and merged
//! sizes to agree BEFORE any op runs; after each op the produced shape is compared with the
//! evaluated one. Nothing here panics on user input; every failure is an [`Error`].

use std::collections::HashMap;

use fpn_runtime::ndarray::{ArrayD, ArrayView1, ArrayView4, Ix1, Ix4};
use fpn_runtime::{Error, Init, Result, Tensor, Weights};
use petgraph::graph::NodeIndex;

use crate::infer::Analysis;
use crate::ir::{Graph, Op};
use crate::ops::EvalCx;
pub use crate::ops::InitKind;

/// Parameter tensors by PyTorch `state_dict` name.
#[derive(Clone, Debug, Default)]
pub struct Params {
    map: HashMap<String, ArrayD<f32>>,
}

impl Params {
    /// Loads every parameter of `a` from `w`, checking names and shapes (missing tensors are
    /// all listed in one error, a wrong shape is an error naming the tensor). Extra tensors in
    /// `w` are ignored.
    pub fn from_weights(w: &Weights, a: &Analysis) -> Result<Params> {
        let shapes = a
            .params
            .iter()
            .map(|p| usize_shape(&p.name, &p.shape))
            .collect::<Result<Vec<_>>>()?;
        let needed: Vec<(&str, &[usize])> = a
            .params
            .iter()
            .zip(&shapes)
            .map(|(p, s)| (p.name.as_str(), s.as_slice()))
            .collect();
        w.require(&needed)?;
        let mut map = HashMap::with_capacity(a.params.len());
        for p in &a.params {
            let shape = usize_shape(&p.name, &p.shape)?;
            map.insert(p.name.clone(), w.get(&p.name, &shape)?);
        }
        Ok(Params { map })
    }

    /// PyTorch-default initialisation, deterministic in `seed`, drawing from one
    /// [`fpn_runtime::Init`] in `a.params` order (each parameter's [`InitKind`], declared by its op): conv weights
    /// kaiming-uniform, conv biases `U(±1/sqrt(fan_in))`; batch norm weight 1, bias 0, running
    /// mean 0, running var 1; fuse weights 1. The generated `init(seed)` draws the same values.
    pub fn init(a: &Analysis, seed: u64) -> Params {
        let mut rng = Init::new(seed);
        let mut map = HashMap::with_capacity(a.params.len());
        for p in &a.params {
            let t = match &p.init {
                InitKind::ConvWeight(s) => rng.conv_weight(*s).into_dyn(),
                InitKind::ConvBias { fan_in, n } => rng.conv_bias(*fan_in, *n).into_dyn(),
                InitKind::Ones(shape) => ArrayD::<f32>::ones(shape.as_slice()),
                InitKind::Zeros(shape) => ArrayD::<f32>::zeros(shape.as_slice()),
            };
            map.insert(p.name.clone(), t);
        }
        Params { map }
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.map.get(name)
    }

    /// Sets (or replaces) the tensor called `name`.
    pub fn insert(&mut self, name: impl Into<String>, t: ArrayD<f32>) {
        self.map.insert(name.into(), t);
    }

    /// All tensors sorted by name (deterministic), e.g. for [`fpn_runtime::tensors_to_bytes`].
    pub fn sorted(&self) -> Vec<(&str, &ArrayD<f32>)> {
        let mut v: Vec<_> = self.map.iter().map(|(k, t)| (k.as_str(), t)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// The parameters as a safetensors file.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let list: Vec<(&str, fpn_runtime::ndarray::ArrayViewD<f32>)> =
            self.sorted().into_iter().map(|(n, t)| (n, t.view())).collect();
        fpn_runtime::tensors_to_bytes(&list)
    }

    pub(crate) fn view4(&self, name: &str) -> Result<ArrayView4<'_, f32>> {
        let t = self.tensor(name)?;
        t.view().into_dimensionality::<Ix4>().map_err(|_| Error::WrongShape {
            file: "the parameters".to_string(),
            name: name.to_string(),
            expected: vec![0; 4],
            found: t.shape().to_vec(),
        })
    }

    pub(crate) fn view1(&self, name: &str) -> Result<ArrayView1<'_, f32>> {
        let t = self.tensor(name)?;
        t.view().into_dimensionality::<Ix1>().map_err(|_| Error::WrongShape {
            file: "the parameters".to_string(),
            name: name.to_string(),
            expected: vec![0],
            found: t.shape().to_vec(),
        })
    }

    fn tensor(&self, name: &str) -> Result<&ArrayD<f32>> {
        self.map
            .get(name)
            .ok_or_else(|| Error::MissingTensor { name: name.to_string() })
    }
}

fn usize_shape(name: &str, shape: &[i64]) -> Result<Vec<usize>> {
    shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::InvalidParams {
            op: "params",
            reason: format!("parameter `{name}` has a negative dimension in {shape:?}"),
        })
}

/// What the spec accepts, for messages: `x: [N, 3, H, W], y: [N, 8, ceil(H/2), W] with H ≥ 32`.
pub(crate) fn accepted_sizes(g: &Graph) -> String {
    let names = g.symbol_names();
    let mut parts = Vec::new();
    for &i in &g.inputs {
        if let Op::Input(crate::ops::input::Input { name, channels, size }) = &g.node(i).op {
            parts.push(format!(
                "{name}: [N, {channels}, {}, {}]",
                size[0].display(&names),
                size[1].display(&names)
            ));
        }
    }
    let mut s = parts.join(", ");
    let bounds: Vec<String> = g
        .symbols
        .iter()
        .map(|sym| match sym.max {
            Some(max) => format!("{} ≤ {} ≤ {max}", sym.min, sym.name),
            None => format!("{} ≥ {}", sym.name, sym.min),
        })
        .collect();
    if !bounds.is_empty() {
        s.push_str(" with ");
        s.push_str(&bounds.join(", "));
    }
    // The exact sets, so an error says which sizes work, not only the rules.
    let (_, cons, _) = crate::infer::infer(g);
    let exact: Vec<String> = crate::sizes::analyse(g, &cons)
        .into_iter()
        .flatten()
        .map(|a| a.describe())
        .collect();
    if !exact.is_empty() {
        s.push_str("; accepted: ");
        s.push_str(&exact.join(", "));
    }
    s
}

fn describe_inputs(inputs: &[(&str, ArrayView4<f32>)]) -> String {
    inputs
        .iter()
        .map(|(n, x)| format!("{n}: {:?}", x.shape()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the inputs against the spec and evaluates every node's spatial size: returns
/// `[h, w]` per node, in node order.
pub fn check_sizes(g: &Graph, a: &Analysis, inputs: &[(&str, ArrayView4<f32>)]) -> Result<Vec<[usize; 2]>> {
    let names = g.symbol_names();
    let got = || describe_inputs(inputs);
    let need = || accepted_sizes(g);
    let not_accepted = |what: String| Error::InputSize(format!("{what} (given {}; the spec takes {})", got(), need()));
    // presence, batch, channels
    let mut batch = None;
    let mut found = Vec::with_capacity(g.inputs.len());
    for &i in &g.inputs {
        let Op::Input(crate::ops::input::Input { name, channels, size }) = &g.node(i).op else {
            return Err(Error::InvalidParams {
                op: "interp",
                reason: format!("graph input `{}` is not an input node", g.node(i).name),
            });
        };
        let Some((_, x)) = inputs.iter().find(|(n, _)| n == name) else {
            return Err(Error::InvalidParams {
                op: "forward",
                reason: format!("input `{name}` is missing (the spec takes {})", need()),
            });
        };
        let s = x.shape();
        if i64::try_from(s[1]).ok() != Some(*channels) {
            return Err(Error::ShapeMismatch {
                op: "forward",
                lhs: s.to_vec(),
                rhs: vec![s[0], usize::try_from(*channels).unwrap_or(0), s[2], s[3]],
                reason: format!("input `{name}` must have {channels} channels"),
            });
        }
        match batch {
            None if s[0] == 0 => return Err(not_accepted(format!("input `{name}` has batch size 0"))),
            None => batch = Some(s[0]),
            Some(n) if n != s[0] => {
                return Err(not_accepted(format!(
                    "input `{name}` has batch size {} but the first input has {n}",
                    s[0]
                )))
            }
            Some(_) => {}
        }
        found.push((name.as_str(), size, [s[2], s[3]]));
    }
    for (n, _) in inputs {
        if !found.iter().any(|(m, _, _)| m == n) {
            return Err(Error::InvalidParams {
                op: "forward",
                reason: format!("the spec has no input `{n}` (it takes {})", need()),
            });
        }
    }
    // symbols: each from the first input size that mentions it alone (divisions are exact), in
    // symbol order, range-checked at once (the order of the generated `check_sizes`)
    let mut vals = Vec::with_capacity(g.symbols.len());
    for (s, sym) in g.symbols.iter().enumerate() {
        let def = found.iter().find_map(|(name, size, actual)| {
            (0..2)
                .find(|&k| size[k].symbols() == [s as u32] && size[k].solve_steps().is_some())
                .map(|k| (name, &size[k], actual[k], k))
        });
        let Some((name, d, actual, k)) = def else {
            return Err(Error::InvalidParams {
                op: "forward",
                reason: format!("size symbol `{}` is not the height or width of any input", sym.name),
            });
        };
        let Some(v) = i64::try_from(actual).ok().and_then(|v| d.solve(v)) else {
            let axis = if k == 0 { "height" } else { "width" };
            return Err(not_accepted(format!(
                "input `{name}` has {axis} {actual}, but no whole {} gives {} = {actual}",
                sym.name,
                d.display(&names)
            )));
        };
        if v < sym.min || sym.max.is_some_and(|m| v > m) {
            return Err(not_accepted(format!("{} = {v} is out of range", sym.name)));
        }
        vals.push(v);
    }
    for (name, size, actual) in &found {
        for k in 0..2 {
            for (num, div) in size[k].divisions() {
                if num.eval(&vals).is_none_or(|v| v.rem_euclid(div) != 0) {
                    let axis = if k == 0 { "height" } else { "width" };
                    return Err(not_accepted(format!(
                        "input `{name}` has {axis} {} = {}, but `/` divides exactly and {} = {} is not a multiple of {div}",
                        actual[k],
                        size[k].display(&names),
                        num.display(&names),
                        num.eval(&vals).map_or_else(|| "?".to_string(), |v| v.to_string())
                    )));
                }
            }
            let want = size[k].eval(&vals);
            if want != i64::try_from(actual[k]).ok() {
                let axis = if k == 0 { "height" } else { "width" };
                return Err(not_accepted(format!(
                    "input `{name}` has {axis} {} but the spec needs {}",
                    actual[k],
                    size[k].display(&names)
                )));
            }
        }
    }
    // every size rule of the spec, in node order, with the one message of each
    for c in &a.constraints {
        let (l, r) = (c.lhs.eval(&vals), c.rhs.eval(&vals));
        if c.holds(&vals) != Some(true) {
            let msg = match (l, r) {
                (Some(l), Some(r)) => c.message(g, a, l, r),
                _ => format!("node `{}` has a size that overflows", g.node(c.node).name),
            };
            return Err(not_accepted(msg));
        }
    }
    // every node's size (all at least 1 now)
    let mut sizes = Vec::with_capacity(a.shapes.len());
    for i in g.order() {
        let node = g.node(i);
        let shape = a.shapes.get(i.index()).ok_or_else(|| Error::InvalidParams {
            op: "interp",
            reason: format!("no shape for node `{}`", node.name),
        })?;
        let mut hw = [0usize; 2];
        for (k, d) in [&shape.h, &shape.w].into_iter().enumerate() {
            let axis = if k == 0 { "height" } else { "width" };
            hw[k] = d
                .eval(&vals)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| not_accepted(format!("node `{}` {axis} {} overflows", node.name, d.display(&names))))?;
        }
        sizes.push(hw);
    }
    Ok(sizes)
}

/// Runs the graph on `inputs` (by input name) and returns the outputs in `g.outputs` order.
pub fn run(
    g: &Graph,
    a: &Analysis,
    params: &Params,
    inputs: &[(&str, ArrayView4<f32>)],
) -> Result<Vec<(String, Tensor)>> {
    let sizes = check_sizes(g, a, inputs)?;
    // remaining uses per node, so intermediates are freed early
    let n = g.graph.node_count();
    let mut uses = vec![0usize; n];
    for i in g.order() {
        for &j in &g.node(i).inputs {
            uses[j.index()] += 1;
        }
    }
    for o in &g.outputs {
        uses[o.node.index()] += 1;
    }
    let mut vals: Vec<Option<Tensor>> = vec![None; n];
    for i in g.order() {
        let node = g.node(i);
        let x: Vec<ArrayView4<'_, f32>> = node
            .inputs
            .iter()
            .map(|j| {
                vals.get(j.index())
                    .and_then(|v| v.as_ref())
                    .map(|t| t.view())
                    .ok_or_else(|| Error::InvalidParams {
                        op: "interp",
                        reason: format!("node `{}` lacks an input", node.name),
                    })
            })
            .collect::<Result<_>>()?;
        let out: Tensor = node.op.eval(&EvalCx {
            node,
            x,
            params,
            inputs,
        })?;
        check_produced(g, a, i, &sizes, &out)?;
        vals[i.index()] = Some(out);
        for &j in &node.inputs {
            uses[j.index()] -= 1;
            if uses[j.index()] == 0 {
                vals[j.index()] = None;
            }
        }
        if uses[i.index()] == 0 {
            vals[i.index()] = None;
        }
    }
    let mut outs = Vec::with_capacity(g.outputs.len());
    for o in &g.outputs {
        let k = o.node.index();
        uses[k] -= 1;
        let t = if uses[k] == 0 { vals[k].take() } else { vals[k].clone() };
        let t = t.ok_or_else(|| Error::InvalidParams {
            op: "interp",
            reason: format!("output `{}` was not computed", o.name),
        })?;
        outs.push((o.name.clone(), t));
    }
    Ok(outs)
}

/// Compares what the runtime produced for node `i` with the evaluated shape.
fn check_produced(g: &Graph, a: &Analysis, i: NodeIndex, sizes: &[[usize; 2]], out: &Tensor) -> Result<()> {
    let node = g.node(i);
    let (Some(shape), Some(hw)) = (a.shapes.get(i.index()), sizes.get(i.index())) else {
        return Err(Error::InvalidParams {
            op: "interp",
            reason: format!("no shape for node `{}`", node.name),
        });
    };
    let s = out.shape();
    if i64::try_from(s[1]).ok() != Some(shape.c) || s[2] != hw[0] || s[3] != hw[1] {
        let names = g.symbol_names();
        return Err(Error::InputSize(format!(
            "node `{}` produced {:?} but the spec computes [N, {}, {}, {}] = [{}, {}, {}, {}]",
            node.name,
            s,
            shape.c,
            shape.h.display(&names),
            shape.w.display(&names),
            s[0],
            shape.c,
            hw[0],
            hw[1]
        )));
    }
    Ok(())
}
