//! Composites: ops made of other ops, declared in the spec — `cna` (conv-norm-act), `seq`,
//! `skip` (`concat(x, seq(x))`), `residual` (`x + seq(x)`), `head` (one body applied to several
//! inputs with shared weights) and calls of the spec's `blocks`. Reading and lowering of each;
//! presets live in [`crate::presets`], primitive ops in [`crate::ops`].

/// The keys `cna: {…}` takes besides a conv's (and `defaults.cna` takes).
pub(crate) const CNA_KEYS: &[&str] = &["norm", "act", "names"];
/// The keys of `head: {…}`.
pub(crate) const HEAD_KEYS: &[&str] = &["on", "body"];

use petgraph::graph::NodeIndex;

use crate::ast::{self, BlockBody, CallArg, CnaArgs, CnaNames, Int, Name, Norm, OpExpr, Reader, Ref, SplitArgs};
use crate::diag::{Checked, Code, Diagnostic};
use crate::ir::Op;
use crate::lower::{join, Env, Handle, Lower, Site, MAX_CALL_DEPTH};
use crate::ops::act::Act;
use crate::ops::channels::ChannelSlice;
use crate::ops::conv::CONV_KEYS;
use crate::ops::merge::{Add, Concat};
use crate::ops::LowerCx;
use crate::value::{Key, Value, ValueKind};
use fpn_runtime::{Activation, ChannelSplit};

impl Reader {
    /// Reads a composite or preset `k: v` (everything that is not a primitive op).
    pub(crate) fn composite(&mut self, k: &Key, v: &Value) -> Checked<OpExpr> {
        let span = k.span;
        let what = format!("`{}`", k.name);
        let null = matches!(v.kind, ValueKind::Null);
        Ok(match k.name.as_str() {
            "cna" => {
                let (conv, m) = crate::ops::conv::read_args(self, v, &what, true)?;
                let Some(mut m) = m else {
                    return Err(self.err(crate::diag::internal(span, "a `cna` read without its map")));
                };
                let norm = m.get("norm").and_then(|n| self.norm(n).ok());
                let act = m.get("act").and_then(|a| crate::ops::act::read_value(self, a).ok());
                let names = m.get("names").and_then(|n| self.cna_names(n).ok());
                self.finish(m, &[CONV_KEYS, CNA_KEYS].concat(), &what);
                OpExpr::Cna(CnaArgs { conv, norm, act, names })
            }
            "seq" => OpExpr::Seq(self.seq_items(v, &what)?),
            "skip" => OpExpr::Skip(self.seq_items(v, &what)?),
            "residual" => OpExpr::Residual(self.seq_items(v, &what)?),
            "fpn" | "panet" | "bifpn" => OpExpr::Pyramid(Box::new(self.pyramid(&k.name, v, span)?)),
            "head" => {
                let mut m = self.map(v, &what)?;
                let on = self.require(&mut m, "on", &what).and_then(|r| self.refs(r, "`on`"));
                let body = self
                    .require(&mut m, "body", &what)
                    .and_then(|b| self.seq_items(b, &what));
                self.finish(m, HEAD_KEYS, &what);
                OpExpr::Head(on?, body?)
            }
            "resnet" => self.resnet_args(v, span, &what)?,
            "chunk" => OpExpr::Split(SplitArgs::Chunks(self.int(v, &what)?)),
            "split" => match &v.kind {
                ValueKind::Seq(items) if !items.is_empty() => {
                    let sizes: Vec<Checked<Int>> = items.iter().map(|i| self.int(i, "a `split` size")).collect();
                    OpExpr::Split(SplitArgs::Sizes(ast::collect_all(sizes)?))
                }
                _ => {
                    return Err(self.err(
                        ast::type_error(v, "a list of channel counts like `[16, 48]`", &what)
                            .with_help("`split: [a, b, …]` cuts the channels into parts of these sizes (`torch.split(x, [a, b], 1)`); `chunk: n` into n equal parts"),
                    ))
                }
            },
            block => {
                let name = Name {
                    text: block.to_string(),
                    span,
                };
                let mut args = Vec::new();
                if !null {
                    let m = self.map(v, &format!("the arguments of block `{block}`"))?;
                    let inputs = self.block_inputs.get(block).cloned().unwrap_or_default();
                    for (ak, av) in m.entries {
                        let what = format!("argument `{}`", ak.name);
                        let arg = if inputs.contains(&ak.name) {
                            CallArg::Ref(self.reference(av, &what)?)
                        } else {
                            CallArg::Int(self.number(av, &what)?)
                        };
                        let name = Name {
                            text: ak.name.clone(),
                            span: ak.span,
                        };
                        args.push((name, arg));
                    }
                }
                OpExpr::Call(name, args)
            }
        })
    }
}

impl Lower<'_> {
    /// `cna`: conv (child `0`, or `conv` with `names: ultralytics`), norm (`1`, or `bn`/`gn`;
    /// none with `norm: none`), activation; norm, activation and names default to the spec's
    /// `defaults.cna`, then batch norm, ReLU and torchvision's names.
    pub(crate) fn cna(&mut self, c: &CnaArgs, at: Site<'_>) -> Checked<Handle> {
        let Site { span, name, prefix, .. } = at;
        let norm = c
            .norm
            .clone()
            .or_else(|| self.spec.defaults.norm.clone())
            .unwrap_or(Norm::BatchNorm(1e-5));
        let act = c.act.or(self.spec.defaults.act).unwrap_or(Activation::Relu);
        let names = c.names.or(self.spec.defaults.names).unwrap_or(CnaNames::Torchvision);
        let (conv_child, norm_child) = names.children(&norm);
        let mut conv = c.conv.clone();
        if conv.bias.is_none() {
            conv.bias = Some(norm == Norm::None);
        }
        let mut cx = LowerCx {
            l: self,
            input: at.input,
            env: at.env,
            span,
        };
        let attrs = crate::ops::conv::lower_args(&conv, true, &mut cx)?;
        let x0 = self.site_input(&at)?;
        let mut x = self.add(
            format!("{name}.{conv_child}"),
            Op::Conv(attrs),
            vec![x0],
            span,
            Some(format!("{prefix}.{conv_child}")),
        )?;
        let mut idx = 1;
        if let Some(op) = self.norm_op(&norm, span, at.env)? {
            x = self.add(
                format!("{name}.{norm_child}"),
                op,
                vec![x],
                span,
                Some(format!("{prefix}.{norm_child}")),
            )?;
            idx += 1;
        }
        if act != Activation::Identity {
            let act_child = match names {
                CnaNames::Torchvision => idx.to_string(),
                CnaNames::Ultralytics => "act".to_string(),
            };
            x = self.add(format!("{name}.{act_child}"), Op::Act(Act(act)), vec![x], span, None)?;
        }
        Ok(Handle::One(x))
    }

    /// `chunk` / `split`: one channel-slice node per part (`{name}.0`, `{name}.1`, …), outputs
    /// named `0`, `1`, … (`from: c.1`, `concat: [c.0, c.1]`). Whether the parts fit the input's
    /// channels is a shape question (E0329 in [`crate::ops::channels`]).
    pub(crate) fn split(&mut self, a: &SplitArgs, at: Site<'_>) -> Checked<Handle> {
        let env = at.env;
        let name = at.name;
        let split = match a {
            SplitArgs::Chunks(n) => ChannelSplit::Chunks(self.eval_pos(n, env, "a chunk count", 1)?),
            SplitArgs::Sizes(v) => {
                let mut sizes = Vec::with_capacity(v.len());
                for s in v {
                    sizes.push(self.eval_pos(s, env, "a split size", 1)?);
                }
                ChannelSplit::Sizes(sizes)
            }
        };
        let x = self.site_input(&at)?;
        let mut outs = Vec::new();
        for part in 0..split.parts() {
            let op = Op::ChannelSlice(ChannelSlice {
                split: split.clone(),
                part,
            });
            let n = self.add(format!("{name}.{part}"), op, vec![x], at.span, None)?;
            outs.push((part.to_string(), n));
        }
        Ok(Handle::Many(outs))
    }

    /// `skip` (`concat(x, seq(x))`) and `residual` (`x + seq(x)`); the body can refer to `x` as
    /// `match: skip`.
    pub(crate) fn skip(&mut self, items: &[crate::ast::Op], residual: bool, at: Site<'_>) -> Checked<Handle> {
        let Site { span, name, .. } = at;
        let x = self.site_input(&at)?;
        self.skip_inputs.push(x);
        let y = self.seq(items, x, at.env, name, at.prefix, at.depth);
        self.skip_inputs.pop();
        let Handle::One(y) = y? else {
            return Err(self.err(crate::diag::internal(span, "a sequence ended in a multi-output op")));
        };
        let o = if residual { Op::Add(Add) } else { Op::Concat(Concat) };
        self.add(format!("{name}.out"), o, vec![x, y], span, None)
            .map(Handle::One)
    }

    /// A call of a spec block: checks its arguments and lowers its body with them in scope.
    pub(crate) fn call(&mut self, bname: &Name, args: &[(Name, CallArg)], at: Site<'_>) -> Checked<Handle> {
        if at.depth >= MAX_CALL_DEPTH {
            return Err(self.err(
                Diagnostic::error(
                    Code::E0208,
                    bname.span,
                    format!("block `{}` nests deeper than {MAX_CALL_DEPTH} calls", bname.text),
                )
                .with_label("too deep")
                .with_help("a block may not call itself, directly or through other blocks"),
            ));
        }
        let Some(block) = self.spec.blocks.iter().find(|b| b.name.text == bname.text) else {
            return Err(self.err(crate::diag::internal(
                bname.span,
                &format!("block `{}` was read as a call but is not declared", bname.text),
            )));
        };
        let inputs: &[Name] = match &block.body {
            BlockBody::Graph(bg) => &bg.inputs,
            BlockBody::Seq(_) => &[],
        };
        // the block's own parameters (the spec's are seen behind them: `Lower::eval_num`)
        let mut new_env = Env::new();
        let mut failed = None;
        for (an, av) in args {
            let is_input = inputs.iter().any(|i| i.text == an.text);
            if !block.params.iter().any(|p| p.text == an.text) && !is_input {
                let names = block.params.iter().chain(inputs).map(|p| p.text.as_str());
                let dym = ast::suggest(&an.text, names.clone());
                failed = Some(
                    self.err(
                        Diagnostic::error(
                            Code::E0207,
                            an.span,
                            format!("block `{}` has no parameter `{}`", bname.text, an.text),
                        )
                        .with_label("unknown parameter")
                        .with_help(match dym {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("its parameters are: {}", names.collect::<Vec<_>>().join(", ")),
                        }),
                    ),
                );
                continue;
            }
            if let CallArg::Int(av) = av {
                match self.eval_num(av, at.env) {
                    Ok(v) => {
                        new_env.insert(an.text.clone(), v);
                    }
                    Err(e) => failed = Some(e),
                }
            }
        }
        for p in &block.params {
            if !args.iter().any(|(a, _)| a.text == p.text) {
                failed = Some(self.err(missing(bname, p, "argument", "…")));
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        match &block.body {
            BlockBody::Seq(body) => {
                let x = self.site_input(&at)?;
                self.seq(body, x, &new_env, at.name, at.prefix, at.depth + 1)
            }
            BlockBody::Graph(bg) => self.graph_block(bname, bg, args, &new_env, at),
        }
    }

    /// An instance of a graph-shaped block: binds its inputs (the first to the instance's
    /// input unless passed; the others by reference), lowers its nodes in a scope of their own
    /// named `<instance>.<node>` with weights under `<prefix>.<node>`, and returns its output
    /// (one) or outputs (`inst.<name>`).
    fn graph_block(
        &mut self,
        bname: &Name,
        bg: &ast::BlockGraph,
        args: &[(Name, CallArg)],
        env: &Env,
        at: Site<'_>,
    ) -> Checked<Handle> {
        let mut bound = Vec::with_capacity(bg.inputs.len());
        let mut failed = None;
        for (k, inp) in bg.inputs.iter().enumerate() {
            let h = match args.iter().find(|(a, _)| a.text == inp.text).map(|(_, v)| v) {
                Some(CallArg::Ref(r)) => self.resolve_one(r),
                Some(CallArg::Int(i)) => Err(self.err(crate::diag::internal(i.span, "a block input read as a number"))),
                None if k == 0 => self.site_input(&at),
                None => Err(self.err(missing(bname, inp, "input", "<node>"))),
            };
            match h {
                Ok(n) => bound.push((inp.text.clone(), n)),
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        // the instance's own scope: its inputs and nodes only
        let outer = (std::mem::take(&mut self.names), std::mem::take(&mut self.failed));
        for (n, x) in &bound {
            self.names.insert(n.clone(), Handle::One(*x));
        }
        let scope = crate::lower::Scope {
            inputs: bg.inputs.iter().map(|i| i.text.as_str()).collect(),
            first: bound.first().map(|(_, x)| Handle::One(*x)),
            env,
            inst: Some((at.name, at.prefix)),
            depth: at.depth + 1,
        };
        self.lower_nodes(&bg.nodes, &scope);
        let (outs, failed) = self.outputs(&bg.outputs, &bg.nodes, &scope.inputs);
        self.failed = outer.1;
        self.names = outer.0;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(match outs.as_slice() {
            [one] => Handle::One(one.node),
            _ => Handle::Many(outs.into_iter().map(|o| (o.name, o.node)).collect()),
        })
    }

    /// `head`: the same body on each listed input, one set of weights (`prefix` shared).
    pub(crate) fn head(&mut self, on: &[Ref], body: &[crate::ast::Op], at: Site<'_>) -> Checked<Handle> {
        let Site {
            env,
            name,
            prefix,
            depth,
            ..
        } = at;
        let targets = self.resolve_many(on)?;
        let mut outs = Vec::new();
        for (sub, t) in targets {
            let h = self.seq(body, t, env, &format!("{name}.{sub}"), prefix, depth)?;
            if let Some(n) = h.one() {
                outs.push((sub, n));
            }
        }
        Ok(Handle::Many(outs))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn seq(
        &mut self,
        items: &[ast::Op],
        x: NodeIndex,
        env: &Env,
        name: &str,
        prefix: &str,
        depth: usize,
    ) -> Checked<Handle> {
        let mut cur = x;
        for (i, it) in items.iter().enumerate() {
            let sp = &it.span;
            let site = Site {
                span: *sp,
                input: Ok(Some(cur)),
                env,
                name: &format!("{name}.{i}"),
                prefix: &join(prefix, &i.to_string()),
                depth,
            };
            match self.op(&it.expr, site)? {
                Handle::One(n) => cur = n,
                Handle::Chain(steps) => cur = steps.last().map_or(cur, |(_, n)| *n),
                Handle::Many(_) => {
                    return Err(self.err(
                        Diagnostic::error(Code::E0218, *sp, "a multi-output op cannot be a step of a sequence")
                            .with_label("has several outputs")
                            .with_help("declare it as its own node and refer to one output"),
                    ));
                }
            }
        }
        Ok(Handle::One(cur))
    }
}

/// E0206: an instance of block `bname` lacks its `what` (`argument` or `input`) `name`; the help
/// shows it passed as `example`.
fn missing(bname: &Name, name: &Name, what: &str, example: &str) -> Diagnostic {
    Diagnostic::error(
        Code::E0206,
        bname.span,
        format!("block `{}` needs {what} `{}`", bname.text, name.text),
    )
    .with_label(format!("missing {what}"))
    .with_secondary(name.span, "declared here")
    .with_help(format!("pass it: `{}: {{{}: {example}}}`", bname.text, name.text))
}
