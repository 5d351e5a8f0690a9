//! Accepted input sizes: for each size symbol, the exact set of values for which every node of
//! the spec is well-defined and every merge aligns.
//!
//! Every size is a quasi-affine expression of one symbol (see [`crate::dim`]): beyond a
//! threshold `T` each constraint's truth value repeats with a period `P` (the lcm of the divisor
//! products), so the set is: the accepted values up to `T`, listed, plus residue classes modulo
//! `P` above `T`. `T` comes from slope/error bounds on each expression; docs/sizes.md proves it.
//! The set is found by evaluating the constraints at every value up to `T + P`, which is exact.

use crate::dim::{gcd, lcm, Dim, SymId};
use crate::infer::{CheckKind, Constraint};
use crate::ir::Graph;

/// Scanning more values than this gives up with [`SizesError::TooLarge`].
pub const MAX_SCAN: i64 = 4_000_000;
/// Most rule evaluations one symbol's scan may take (a fraction of a second); beyond it the symbol's
/// set is [`SizesError::TooLarge`].
pub const MAX_CHECKS: u64 = 10_000_000;

/// Why no exact answer could be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SizesError {
    /// The period or threshold is too large to scan; the second field says which, in words
    /// (`it repeats only every 5000000 values`, `it settles only beyond 9223372036854775807`).
    #[error("the size pattern of `{0}` is too large to analyse exactly: {1}")]
    TooLarge(String, String),
    /// A constraint ties two symbols together in a way the elimination cannot solve; the
    /// third field says which (`` `m` merges ceil(H3/4) with ceil(H4/2)``).
    #[error("the sizes `{0}` and `{1}` constrain each other ({2}); they are only checked for given values")]
    Joint(String, String, String),
    /// A size goes through an upsample by a float scale, whose `f64` rounding (PyTorch's) has no
    /// period: exact only for a bounded symbol, else checked for given values.
    #[error("the sizes of `{0}` go through an upsample by a non-dyadic scale, whose float rounding has no period; bound `{0}` (e.g. `{0}: 1..4096`) for an exact set, else sizes are checked when given")]
    Float(String),
    /// Not an error: the symbol is a function of another one, whose [`Accepted`] lists it under
    /// [`Accepted::dependents`] and describes the joint set.
    #[error("{0} = {2}: determined by `{1}` (see the joint set of `{1}`)")]
    Dependent(String, String, String),
    /// Not an error: the symbol is tied to another by merges that allow several of its values
    /// for one of the other's; the other's [`Accepted::related`] gives them.
    #[error("{0} is tied to `{1}` by {2} (see the joint set of `{1}`)")]
    Related(String, String, String),
}

/// A symbol tied to the free symbol `x` of its joint set by merges that round on both sides,
/// so one `x` allows a set `Y(x)` of its values. Exact: `Y(x)` is tabulated for every accepted
/// `x ≤ upto`, and beyond it `Y(x + shift.0) = Y(x) + shift.1` (docs/sizes.md).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Related {
    /// The related symbol.
    pub symbol: String,
    /// The merges that tie it, as equations (`ceil(H4/2) = ceil(H3/4)`).
    pub rule: String,
    /// `(x, Y(x))` for every accepted `x ≤ upto`, ascending.
    #[serde(skip)]
    pub table: Vec<(i64, Vec<i64>)>,
    /// Last tabulated value of the free symbol.
    pub upto: i64,
    /// `(Δx, Δy)`: beyond `upto − Δx`, adding `Δx` to `x` adds `Δy` to each of its values.
    pub shift: (i64, i64),
}

impl Related {
    /// `Y(x)`: the values of the related symbol that go with an accepted `x` (empty otherwise).
    pub fn values(&self, x: i64) -> Vec<i64> {
        let (dx, dy) = self.shift;
        let (mut x0, mut n) = (x, 0i64);
        if x > self.upto && dx > 0 {
            n = (x - self.upto + dx - 1) / dx;
            x0 = x - n * dx;
        }
        match self.table.binary_search_by_key(&x0, |(k, _)| *k) {
            Ok(i) => self.table[i]
                .1
                .iter()
                .filter_map(|y| y.checked_add(n.checked_mul(dy)?))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A symbol fixed by the free symbol of its joint set: `symbol = expr(free)`, exact.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Dependent {
    /// The dependent symbol.
    pub symbol: String,
    /// Its value as an expression of the free symbol (`H3/2`; every division exact).
    pub expr: String,
    /// The same as a [`Dim`] over the free symbol's id.
    #[serde(skip)]
    pub dim: Dim,
}

/// The accepted values of one symbol.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Accepted {
    /// Symbol name.
    pub symbol: String,
    /// Declared lower bound.
    pub min: i64,
    /// Declared upper bound.
    pub max: Option<i64>,
    /// Accepted values `≤ threshold` (all of them when `max ≤ threshold`).
    pub listed: Vec<i64>,
    /// Above this every value `x` is accepted iff `x mod period ∈ residues`.
    pub threshold: i64,
    /// The period.
    pub period: i64,
    /// Accepted residues modulo `period`, sorted.
    pub residues: Vec<i64>,
    /// Symbols tied to this one by merges, each a function of it (empty: independent). The set
    /// above is then the joint set: `x` is accepted iff `x` and these values of the dependents
    /// satisfy every rule, and no other values of the dependents do.
    pub dependents: Vec<Dependent>,
    /// Symbols tied to this one that are not functions of it (at most one; see [`Related`]).
    pub related: Vec<Related>,
}

impl Accepted {
    /// Whether `x` is accepted.
    pub fn contains(&self, x: i64) -> bool {
        if x < self.min || self.max.is_some_and(|m| x > m) {
            return false;
        }
        if x <= self.threshold {
            return self.listed.binary_search(&x).is_ok();
        }
        self.residues.binary_search(&x.rem_euclid(self.period)).is_ok()
    }

    /// Whether no value is accepted.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty() && (self.residues.is_empty() || self.max.is_some_and(|m| m <= self.threshold))
    }

    /// The first `n` accepted values.
    pub fn first(&self, n: usize) -> Vec<i64> {
        let mut out: Vec<i64> = self.listed.iter().copied().take(n).collect();
        let mut x = self.threshold.saturating_add(1).max(self.min);
        if self.residues.is_empty() {
            return out;
        }
        while out.len() < n && self.max.is_none_or(|m| x <= m) && x < i64::MAX {
            if self.contains(x) {
                out.push(x);
            }
            x += 1;
        }
        out
    }

    /// The nearest accepted values below and above `x` (either may be missing).
    pub fn nearest(&self, x: i64) -> (Option<i64>, Option<i64>) {
        let span = self
            .period
            .saturating_add(self.threshold)
            .saturating_add(2)
            .clamp(0, MAX_SCAN) as usize;
        let below = (self.min..x).rev().take(span).find(|&v| self.contains(v));
        let above = if self.is_empty() {
            None
        } else {
            (x.saturating_add(1)..i64::MAX).take(span).find(|&v| self.contains(v))
        };
        (below, above)
    }

    /// The set in words: `H ∈ {8, 12, 16, …} = 4k, k ≥ 2`.
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return format!("no value of {} works", self.symbol);
        }
        let first = self.first(6);
        let unbounded = self.max.is_none() && !self.residues.is_empty();
        let mut list: Vec<String> = first.iter().map(i64::to_string).collect();
        if unbounded || first.len() == 6 {
            list.push("…".into());
        }
        let mut s = format!("{} ∈ {{{}}}", self.symbol, list.join(", "));
        let joint: Vec<String> = self
            .dependents
            .iter()
            .map(|d| format!("{} = {}", d.symbol, d.expr))
            .collect();
        if let Some(form) = self.closed_form() {
            s.push_str(&format!(" = {form}"));
        } else if !self.residues.is_empty() && self.max.is_none_or(|m| m > self.threshold) {
            s.push_str(&format!(
                "; above {} exactly those with {} mod {} ∈ {{{}}}",
                self.threshold,
                self.symbol,
                self.period,
                ranges(&self.residues)
            ));
        }
        if !joint.is_empty() {
            s.push_str(&format!("; {}", joint.join(", ")));
        }
        for r in &self.related {
            let ex: Vec<String> = first
                .iter()
                .take(3)
                .map(|&x| format!("{} = {x}: {{{}}}", self.symbol, ranges(&r.values(x))))
                .collect();
            s.push_str(&format!(
                "; {} is any value with {} ({}, …)",
                r.symbol,
                r.rule,
                ex.join("; ")
            ));
        }
        s
    }

    /// `4k, k ≥ 2` when the whole set is one residue class from its first value on.
    fn closed_form(&self) -> Option<String> {
        let start = *self.first(1).first()?;
        let p = self.period;
        let r = start.rem_euclid(p);
        if self.residues != [r] {
            return None;
        }
        let class_ok = (start..=self.threshold.max(start)).all(|x| self.contains(x) == (x.rem_euclid(p) == r));
        if !class_ok {
            return None;
        }
        let k0 = (start - r) / p;
        let upper = match self.max {
            Some(m) => format!(", k ≤ {}", (m - r).div_euclid(p)),
            None => String::new(),
        };
        Some(match (p, r) {
            (1, _) => match self.max {
                Some(m) => format!("every size from {start} to {m}"),
                None => format!("every size ≥ {start}"),
            },
            (_, 0) => format!("{p}k, k ≥ {k0}{upper}"),
            _ => format!("{p}k+{r}, k ≥ {k0}{upper}"),
        })
    }
}

/// `0, 25–31` for sorted residues.
fn ranges(v: &[i64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if j > i + 1 {
            format!("{}–{}", v[i], v[j])
        } else if j == i + 1 {
            format!("{}, {}", v[i], v[j])
        } else {
            v[i].to_string()
        });
        i = j + 1;
    }
    out.join(", ")
}

/// Slope, error bound and settling point of an expression: for `x ≥ settle`,
/// `|f(x) - slope·x| ≤ err`, and every `min` inside has chosen its branch.
fn bounds(d: &Dim) -> (f64, f64, f64) {
    match d {
        Dim::Const(c) => (0.0, (*c as f64).abs(), 0.0),
        Dim::Sym(_) => (1.0, 0.0, 0.0),
        Dim::Lin { a, mul, add } => {
            let (s, e, t) = bounds(a);
            (s * *mul as f64, e * (*mul as f64).abs() + (*add as f64).abs(), t)
        }
        Dim::Div { a, div } => {
            let (s, e, t) = bounds(a);
            (s / *div as f64, e / *div as f64 + 1.0, t)
        }
        Dim::Scale { a, bits } => {
            let (sa, ea, t) = bounds(a);
            let k = f64::from_bits(*bits);
            (sa * k, ea * k + 1.0, t)
        }
        Dim::Min(a, b) => {
            let (sa, ea, ta) = bounds(a);
            let (sb, eb, tb) = bounds(b);
            let t = ta.max(tb);
            if (sa - sb).abs() < 1e-12 {
                (sa, ea.max(eb) + (ea + eb), t)
            } else {
                let cross = (ea + eb) / (sa - sb).abs() + 1.0;
                let (s, e) = if sa < sb { (sa, ea) } else { (sb, eb) };
                (s, e, t.max(cross))
            }
        }
    }
}

/// Threshold above which a constraint's truth value is periodic.
fn threshold(c: &Constraint) -> f64 {
    let (sl, el, tl) = bounds(&c.lhs);
    let (sr, er, tr) = bounds(&c.rhs);
    let t = tl.max(tr);
    let ds = (sl - sr).abs();
    if ds < 1e-12 {
        t
    } else {
        t.max((el + er) / ds + 1.0)
    }
}

/// Computes the accepted set of every symbol of `g` under `cons`.
///
/// Symbols that no constraint ties together are analysed one by one. A group tied by merges is
/// reduced to one free symbol by elimination: a merge `k·s + c = f` with `f`
/// free of `s` fixes `s = (f − c)/k`, exact, so `s` is substituted everywhere (with the
/// exactness and `s`'s bounds added as constraints) until one symbol is left; its set is the
/// joint set and the others are [`SizesError::Dependent`] on it.
pub fn analyse(g: &Graph, cons: &[Constraint]) -> Vec<Result<Accepted, SizesError>> {
    let names = g.symbol_names();
    let n = g.symbols.len();
    // connected components of symbols, by constraints that mention several
    let mut comp: Vec<usize> = (0..n).collect();
    fn root(comp: &mut [usize], mut i: usize) -> usize {
        while comp[i] != i {
            comp[i] = comp[comp[i]];
            i = comp[i];
        }
        i
    }
    let syms_of = |c: &Constraint| {
        let mut v = c.lhs.symbols();
        v.extend(c.rhs.symbols());
        v.sort_unstable();
        v.dedup();
        v
    };
    for c in cons {
        let v = syms_of(c);
        for w in v.windows(2) {
            let (a, b) = (root(&mut comp, w[0] as usize), root(&mut comp, w[1] as usize));
            if a < n && b < n {
                comp[a.max(b)] = a.min(b);
            }
        }
    }
    let mut out: Vec<Option<Result<Accepted, SizesError>>> = vec![None; n];
    for s in 0..n {
        if root(&mut comp, s) != s {
            continue;
        }
        let members: Vec<SymId> = (0..n)
            .filter(|&t| root(&mut comp, t) == s)
            .map(|t| t as SymId)
            .collect();
        let mine: Vec<Constraint> = cons
            .iter()
            .filter(|c| syms_of(c).first().is_some_and(|f| members.contains(f)))
            .cloned()
            .collect();
        if let [only] = members[..] {
            out[only as usize] = Some(analyse_one(g, only, &mine, Vec::new()));
            continue;
        }
        match eliminate(g, &members, mine.clone()) {
            Some((free, reduced, deps)) => {
                let fname = names.get(free as usize).cloned().unwrap_or_default();
                let dependents: Vec<Dependent> = deps
                    .iter()
                    .map(|(d, dim)| Dependent {
                        symbol: names.get(*d as usize).cloned().unwrap_or_default(),
                        expr: dim.display(&names).to_string(),
                        dim: dim.clone(),
                    })
                    .collect();
                for d in &dependents {
                    if let Some(id) = names.iter().position(|x| *x == d.symbol) {
                        out[id] = Some(Err(SizesError::Dependent(
                            d.symbol.clone(),
                            fname.clone(),
                            d.expr.clone(),
                        )));
                    }
                }
                out[free as usize] = Some(analyse_one(g, free, &reduced, dependents));
            }
            None if members.len() == 2 => match analyse_pair(g, members[0], members[1], &mine) {
                Some(Ok(acc)) => {
                    for r in &acc.related {
                        out[members[1] as usize] = Some(Err(SizesError::Related(
                            r.symbol.clone(),
                            acc.symbol.clone(),
                            r.rule.clone(),
                        )));
                    }
                    out[members[0] as usize] = Some(Ok(acc));
                }
                Some(Err(e)) => {
                    for &m in &members {
                        out[m as usize] = Some(Err(e.clone()));
                    }
                }
                None => {
                    let why = why_joint(g, &mine, &names);
                    for (m, o) in [(members[0], members[1]), (members[1], members[0])] {
                        out[m as usize] = Some(Err(SizesError::Joint(
                            names[m as usize].clone(),
                            names[o as usize].clone(),
                            why.clone(),
                        )));
                    }
                }
            },
            None => {
                let why = why_joint(g, &mine, &names);
                for &m in &members {
                    let other = members.iter().find(|&&o| o != m).copied().unwrap_or(m);
                    out[m as usize] = Some(Err(SizesError::Joint(
                        names[m as usize].clone(),
                        names.get(other as usize).cloned().unwrap_or_default(),
                        why.clone(),
                    )));
                }
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| analyse_one(g, i as SymId, &[], Vec::new())))
        .collect()
}

/// The tie elimination cannot undo: the first merge of two symbols where neither side is
/// `k·s + c` of a symbol the other side does not mention.
fn why_joint(g: &Graph, cons: &[Constraint], names: &[String]) -> String {
    let cross = |c: &&Constraint| {
        let (l, r) = (c.lhs.symbols(), c.rhs.symbols());
        !l.is_empty() && !r.is_empty() && l != r
    };
    let stuck = |c: &&Constraint| {
        [(&c.lhs, &c.rhs), (&c.rhs, &c.lhs)]
            .iter()
            .all(|(side, other)| affine(side).is_none_or(|(s, _, _)| other.symbols().contains(&s)))
    };
    let c = cons
        .iter()
        .filter(cross)
        .find(stuck)
        .or_else(|| cons.iter().find(cross));
    match c {
        Some(c) => format!(
            "`{}` merges {} with {}: {}",
            g.node(c.node).name,
            c.lhs.display(names),
            c.rhs.display(names),
            if stuck(&c) {
                "both sides round, so one value of either may allow several of the other"
            } else {
                "the sizes it implies are too large to describe"
            }
        ),
        None => "through several merges".into(),
    }
}

/// The exact slope of an expression as a reduced fraction `(num, den)`, `den > 0`: the slope of
/// a `min` is its smaller branch's (the branch it settles on).
fn slope(d: &Dim) -> Option<(i64, i64)> {
    let reduce = |n: i64, d: i64| {
        let g = gcd(n, d).max(1);
        (n / g, d / g)
    };
    Some(match d {
        Dim::Const(_) => (0, 1),
        Dim::Sym(_) => (1, 1),
        Dim::Lin { a, mul, .. } => {
            let (n, den) = slope(a)?;
            reduce(n.checked_mul(*mul)?, den)
        }
        Dim::Div { a, div } => {
            let (n, den) = slope(a)?;
            reduce(n, den.checked_mul(*div)?)
        }
        Dim::Min(a, b) => {
            let (x, y) = (slope(a)?, slope(b)?);
            if i128::from(x.0) * i128::from(y.1) <= i128::from(y.0) * i128::from(x.1) {
                x
            } else {
                y
            }
        }
        // a float scale has no exact rational slope
        Dim::Scale { .. } => return None,
    })
}

/// Most values of the related symbol tried for one value of the free one.
const MAX_CANDIDATES: i64 = 4096;
/// Most values of the free symbol whose related values are tabulated.
const MAX_TABLE: i64 = 100_000;

/// Two symbols `x < y` tied by merges `g(x) = h(y)` that elimination cannot undo (both sides
/// round). The accepted `x` are those with some `y`; `Y(x)` is found by trying every `y` the
/// slope bounds allow. With `τ`, `σ` the slopes of `g`, `h` (all merges must have the same
/// ratio `ρ = τ/σ = p/q`), `Q_y` the lcm of the periods on the `y` side and `Q_x` that of the
/// `x` side and `q·Q_y`, beyond a threshold `(x, y)` is accepted iff `(x + Q_x, y + ρ·Q_x)` is
/// (docs/sizes.md), so `X` is periodic with period `Q_x` and `Y` shifts by `ρ·Q_x`. `None`: not
/// of this form (then "only checked for given values").
fn analyse_pair(g: &Graph, x: SymId, y: SymId, cons: &[Constraint]) -> Option<Result<Accepted, SizesError>> {
    let (sx, sy) = (g.symbols.get(x as usize)?, g.symbols.get(y as usize)?);
    let names = g.symbol_names();
    let too_large = |what: String| Some(Err(SizesError::TooLarge(sx.name.clone(), what)));
    let only = |d: &Dim, s: SymId| d.symbols() == [s];
    let (mut qx, mut qy, mut tx, mut ty) = (1i64, 1i64, 0f64, sy.min as f64);
    let mut cross: Vec<(&Dim, &Dim)> = Vec::new();
    let mut ratio: Option<(i64, i64)> = None;
    let (mut e_g, mut e_h, mut tau, mut sigma) = (0f64, 0f64, 0f64, 0f64);
    for c in cons {
        let (l, r) = (c.lhs.symbols(), c.rhs.symbols());
        let syms: Vec<SymId> = l.iter().chain(&r).copied().collect();
        if syms.iter().all(|&v| v == x) {
            for d in [&c.lhs, &c.rhs] {
                qx = lcm(qx, d.period()?)?;
            }
            tx = tx.max(threshold(c));
        } else if syms.iter().all(|&v| v == y) {
            for d in [&c.lhs, &c.rhs] {
                qy = lcm(qy, d.period()?)?;
            }
            ty = ty.max(threshold(c));
        } else {
            if c.kind != crate::infer::CheckKind::Equal {
                return None;
            }
            let (gx, hy) = if only(&c.lhs, x) && only(&c.rhs, y) {
                (&c.lhs, &c.rhs)
            } else if only(&c.rhs, x) && only(&c.lhs, y) {
                (&c.rhs, &c.lhs)
            } else {
                return None;
            };
            let (t, s) = (slope(gx)?, slope(hy)?);
            if t.0 <= 0 || s.0 <= 0 {
                return None;
            }
            // ρ = τ/σ, the same for every tie
            let r = {
                let (n, d) = (t.0.checked_mul(s.1)?, t.1.checked_mul(s.0)?);
                let k = gcd(n, d).max(1);
                (n / k, d / k)
            };
            if ratio.is_some_and(|q| q != r) {
                return None;
            }
            ratio = Some(r);
            qx = lcm(qx, gx.period()?)?;
            qy = lcm(qy, hy.period()?)?;
            let (bt, be, bs) = bounds(gx);
            let (st, se, ss) = bounds(hy);
            tx = tx.max(bs);
            ty = ty.max(ss);
            if cross.is_empty() {
                // the first tie bounds y by x
                (tau, e_g, sigma, e_h) = (bt, be, st, se);
            }
            cross.push((gx, hy));
        }
    }
    let (p, q) = ratio?;
    let (&(g0, h0), _) = cross.split_first()?;
    let period = lcm(qx, q.checked_mul(qy)?)?;
    let dy = period.checked_mul(p)? / q;
    // the y to try for one x: the unsettled start, and around h⁻¹(g(x))
    let settle = (bounds(h0).2.ceil() as i64).clamp(sy.min, sy.min.saturating_add(MAX_CANDIDATES));
    let mut env = vec![1i64; g.symbols.len()];
    // largest value of h before it settles: beyond it, a y that fits is past the settling point
    let mut h_early = f64::NEG_INFINITY;
    for yv in sy.min..=settle {
        env[y as usize] = yv;
        h_early = h_early.max(h0.eval(&env)? as f64);
    }
    // beyond this every y that fits an x is past the y side's threshold (and below its max)
    let mut t = tx.max((sigma * ty + e_g + e_h) / tau + 1.0);
    t = t.max((h_early + e_g) / tau + 1.0);
    if let Some(m) = sy.max {
        t = t.max((sigma * m as f64 + e_g + e_h) / tau + 1.0);
    }
    if period > MAX_TABLE {
        return too_large(format!("it repeats only every {period} values"));
    }
    if !t.is_finite() || t > MAX_TABLE as f64 {
        return too_large(format!("it settles only beyond {t:.0}"));
    }
    let threshold = (t.ceil() as i64).max(sx.min);
    let upto = threshold.checked_add(period)?;
    if upto > MAX_TABLE {
        return too_large(format!("its table would run to {upto}"));
    }
    let mut table: Vec<(i64, Vec<i64>)> = Vec::new();
    let mut values = |xv: i64| -> Vec<i64> {
        env[x as usize] = xv;
        let Some(gv) = g0.eval(&env) else { return Vec::new() };
        let lo = ((gv as f64 - e_h) / sigma).floor() as i64 - 1;
        let hi = ((gv as f64 + e_h) / sigma).ceil() as i64 + 1;
        let top = sy.max.unwrap_or(i64::MAX);
        let near = lo.max(sy.min)..=hi.min(top).min(lo.max(sy.min).saturating_add(MAX_CANDIDATES));
        let mut out: Vec<i64> = (sy.min..=settle.min(top)).chain(near).collect();
        out.sort_unstable();
        out.dedup();
        out.retain(|&yv| {
            env[y as usize] = yv;
            cons.iter().all(|c| c.holds(&env) == Some(true))
        });
        out
    };
    let ok = |xv: i64| {
        let v = values(xv);
        let accepted = !v.is_empty();
        if accepted && xv <= upto {
            table.push((xv, v));
        }
        Some(accepted)
    };
    let scanned = scan(sx, threshold, period, ok);
    let (listed, pshr, res) = match scanned {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    let rule: Vec<String> = cross
        .iter()
        .map(|(a, b)| format!("{} = {}", b.display(&names), a.display(&names)))
        .collect();
    Some(Ok(Accepted {
        symbol: sx.name.clone(),
        min: sx.min,
        max: sx.max,
        listed,
        threshold,
        period: pshr,
        residues: res,
        dependents: Vec::new(),
        related: vec![Related {
            symbol: sy.name.clone(),
            rule: rule.join(", "),
            table,
            upto,
            shift: (period, dy),
        }],
    }))
}

/// `k·s + c` for a symbol `s`: `(s, k, c)`.
fn affine(d: &Dim) -> Option<(SymId, i64, i64)> {
    match d {
        Dim::Sym(s) => Some((*s, 1, 0)),
        Dim::Lin { a, mul, add } => match a.as_ref() {
            Dim::Sym(s) => Some((*s, *mul, *add)),
            _ => None,
        },
        _ => None,
    }
}

/// Reduces the constraints of a group of symbols to one free symbol: returns it, the
/// constraints in it alone, and each eliminated symbol as an expression of it. `None` when
/// some tie is not of the form `k·s + c = f` (then no exact answer is attempted).
///
/// Each step picks a merge `k·s + c = f` where `f` does not mention `s` (the highest-numbered
/// such `s`, so the first declared symbol stays free), sets `s = (f − c)/k` and adds
/// `k·floor((f − c)/k) = f − c` (the division is exact, since `s` is an integer) and
/// `min(s) ≤ (f − c)/k ≤ max(s)`. Every pair of values that satisfies the old constraints
/// satisfies the merge, so it has exactly this `s`; the new constraints hold exactly then.
#[allow(clippy::type_complexity)]
fn eliminate(
    g: &Graph,
    members: &[SymId],
    mut cons: Vec<Constraint>,
) -> Option<(SymId, Vec<Constraint>, Vec<(SymId, Dim)>)> {
    let mut left: Vec<SymId> = members.to_vec();
    let mut deps: Vec<(SymId, Dim)> = Vec::new();
    while left.len() > 1 {
        let mut pick: Option<(usize, SymId, Dim)> = None;
        for (ci, c) in cons.iter().enumerate() {
            if c.kind != crate::infer::CheckKind::Equal {
                continue;
            }
            for (side, other) in [(&c.lhs, &c.rhs), (&c.rhs, &c.lhs)] {
                let Some((s, k, add)) = affine(side) else { continue };
                if other.symbols().contains(&s) || other.symbols().is_empty() || k == 0 {
                    continue;
                }
                let better = pick.as_ref().is_none_or(|(_, p, _)| s > *p);
                if better {
                    pick = Some((ci, s, {
                        // (other − c)/k with a positive divisor
                        let t = other.add(add.checked_neg()?)?;
                        let (t, k) = if k < 0 { (t.lin(-1, 0)?, -k) } else { (t, k) };
                        Dim::Lin {
                            a: Box::new(t),
                            mul: k,
                            add: 0,
                        }
                    }));
                }
            }
        }
        let (ci, s, packed) = pick?;
        let Dim::Lin { a: t, mul: k, .. } = packed else {
            return None;
        };
        let expr = t.floor_div(k)?;
        let at = cons[ci].clone();
        let mut next: Vec<Constraint> = Vec::with_capacity(cons.len() + 3);
        if k > 1 {
            next.push(Constraint {
                kind: crate::infer::CheckKind::ExactDiv,
                lhs: expr.lin(k, 0)?,
                rhs: (*t).clone(),
                ..at.clone()
            });
        }
        let sym = g.symbols.get(s as usize)?;
        next.push(Constraint {
            kind: crate::infer::CheckKind::Positive,
            lhs: expr.clone(),
            rhs: Dim::Const(sym.min),
            ..at.clone()
        });
        if let Some(max) = sym.max {
            next.push(Constraint {
                kind: crate::infer::CheckKind::Positive,
                lhs: Dim::Const(max),
                rhs: expr.clone(),
                ..at.clone()
            });
        }
        for c in cons {
            next.push(Constraint {
                lhs: c.lhs.subst(s, &expr)?,
                rhs: c.rhs.subst(s, &expr)?,
                ..c
            });
        }
        cons = next;
        for (_, d) in &mut deps {
            *d = d.subst(s, &expr)?;
        }
        deps.push((s, expr));
        left.retain(|&x| x != s);
    }
    let free = *left.first()?;
    // every constraint must now be in the free symbol alone
    if cons
        .iter()
        .any(|c| c.lhs.symbols().iter().chain(&c.rhs.symbols()).any(|&x| x != free))
    {
        return None;
    }
    deps.sort_by_key(|(s, _)| *s);
    Some((free, cons, deps))
}

/// The accepted set of a symbol no value of which works.
fn no_value(sym: &crate::ir::Symbol, dependents: Vec<Dependent>) -> Accepted {
    Accepted {
        symbol: sym.name.clone(),
        min: sym.min,
        max: sym.max,
        listed: Vec::new(),
        threshold: sym.min,
        period: 1,
        residues: Vec::new(),
        dependents,
        related: Vec::new(),
    }
}

fn analyse_one(g: &Graph, s: SymId, mine: &[Constraint], dependents: Vec<Dependent>) -> Result<Accepted, SizesError> {
    let sym = &g.symbols[s as usize];
    // Repeated blocks give many equal constraints (a 1×1 conv used 30 000 times): each distinct
    // rule is scanned once.
    let mut seen = std::collections::HashSet::new();
    let mine: Vec<&Constraint> = mine.iter().filter(|c| seen.insert((c.kind, &c.lhs, &c.rhs))).collect();
    let too_large = |what: String| SizesError::TooLarge(sym.name.clone(), what);
    let mut period: i64 = 1;
    let mut t = 0f64;
    let float = mine.iter().any(|c| has_scale(&c.lhs) || has_scale(&c.rhs));
    if float {
        // no period: exact only by scanning a bounded range
        return match sym.max {
            Some(max) if max.saturating_sub(sym.min) <= MAX_SCAN => {
                let mut env = vec![1i64; g.symbols.len()];
                let listed: Vec<i64> = (sym.min..=max)
                    .filter(|&x| {
                        env[s as usize] = x;
                        mine.iter().all(|c| c.holds(&env) == Some(true))
                    })
                    .collect();
                Ok(Accepted {
                    symbol: sym.name.clone(),
                    min: sym.min,
                    max: sym.max,
                    listed,
                    threshold: max,
                    period: 1,
                    residues: Vec::new(),
                    dependents,
                    related: Vec::new(),
                })
            }
            _ => Err(SizesError::Float(sym.name.clone())),
        };
    }
    for c in &mine {
        for d in [&c.lhs, &c.rhs] {
            period = d
                .period()
                .and_then(|p| lcm(period, p))
                .ok_or_else(|| too_large("it repeats only every 2^63 values or more".into()))?;
        }
        t = t.max(threshold(c));
    }
    let mut env = vec![1i64; g.symbols.len()];
    // Sizes only grow with a symbol, so if one overflows i64 at the symbol's smallest value it
    // does for every value: no size works (issue 11 item 6: `H+9223372036854775807`).
    env[s as usize] = sym.min;
    if mine
        .iter()
        .any(|c| c.lhs.eval(&env).is_none() || c.rhs.eval(&env).is_none())
    {
        return Ok(no_value(sym, dependents));
    }
    // A lower bound (`size ≥ c`, c constant) that fails at the symbol's largest value fails at
    // every value, since sizes only grow with a symbol: nothing is accepted, however large the
    // threshold (`H-9223372036854775807` needs H ≥ 2^63).
    env[s as usize] = sym.max.unwrap_or(i64::MAX);
    if mine.iter().any(|c| {
        !matches!(c.kind, CheckKind::Equal | CheckKind::ExactDiv)
            && c.rhs.as_const().is_some()
            && c.holds(&env) == Some(false)
    }) {
        return Ok(no_value(sym, dependents));
    }
    if period > MAX_SCAN {
        return Err(too_large(format!("it repeats only every {period} values")));
    }
    if !t.is_finite() || t > MAX_SCAN as f64 {
        return Err(too_large(format!("it settles only beyond {t:.0}")));
    }
    // no value above i64::MAX: if a whole period past the threshold does not fit, every value
    // from the threshold on is listed instead (issue 11 item 5: `H: 9223372036854775807..`)
    let mut threshold = (t.ceil() as i64).max(sym.min);
    if threshold.checked_add(period).is_none() {
        threshold = i64::MAX;
    }
    // Move-to-front: the rule that refused the last value is tried first. Consecutive values
    // mostly fail on the same rule, so a long scan (a 65536 kernel on a ResNet: 2M values ×
    // 100 rules) checks one rule per value instead of all of them. Same answer: `all` is pure.
    let mut order: Vec<usize> = (0..mine.len()).collect();
    // Bounded work: a scan that would check more than MAX_CHECKS rules stops (thousands of
    // distinct rules × tens of thousands of values, e.g. a padding edit on a conv repeated
    // 30 000 times).
    let mut checks: u64 = 0;
    let ok = |x: i64| {
        env[s as usize] = x;
        let failed = order.iter().position(|&i| mine[i].holds(&env) != Some(true));
        checks = checks.saturating_add(failed.map_or(order.len(), |k| k + 1) as u64);
        if checks > MAX_CHECKS {
            return None;
        }
        Some(match failed {
            Some(k) => {
                order[..=k].rotate_right(1);
                false
            }
            None => true,
        })
    };
    let (listed, p, res) = scan(sym, threshold, period, ok)?;
    Ok(Accepted {
        symbol: sym.name.clone(),
        min: sym.min,
        max: sym.max,
        listed,
        threshold,
        period: p,
        residues: res,
        dependents,
        related: Vec::new(),
    })
}

/// The values `ok` accepts from the symbol's minimum to `threshold` (listed), and the residues
/// modulo `period` it accepts in `(threshold, threshold + period]`, shrunk to the smallest
/// period describing the same classes: `(listed, period, residues)`.
fn scan(
    sym: &crate::ir::Symbol,
    threshold: i64,
    period: i64,
    mut ok: impl FnMut(i64) -> Option<bool>,
) -> Result<(Vec<i64>, i64, Vec<i64>), SizesError> {
    let over = || {
        SizesError::TooLarge(
            sym.name.clone(),
            format!("checking it takes more than {MAX_CHECKS} rule evaluations"),
        )
    };
    let end = match sym.max {
        Some(m) => m.min(threshold),
        None => threshold,
    };
    if end.saturating_sub(sym.min) > MAX_SCAN {
        return Err(SizesError::TooLarge(
            sym.name.clone(),
            format!("{} values up to {end} to check", end.saturating_sub(sym.min)),
        ));
    }
    let mut listed: Vec<i64> = Vec::new();
    for x in sym.min..=end {
        if ok(x).ok_or_else(over)? {
            listed.push(x);
        }
    }
    let mut residues: Vec<i64> = Vec::new();
    // the caller makes `threshold + period` fit, or sets the threshold to i64::MAX
    let scan_end = threshold.checked_add(period);
    if let Some(scan_end) = scan_end.filter(|_| sym.max.is_none_or(|m| m > threshold)) {
        for x in threshold + 1..=scan_end {
            if ok(x).ok_or_else(over)? {
                residues.push(x.rem_euclid(period));
            }
        }
    }
    residues.sort_unstable();
    // Shrink to the smallest period that describes the same classes.
    let mut p = period;
    for q in (1..period).filter(|q| period % q == 0) {
        let classes: Vec<i64> = residues.iter().map(|r| r % q).collect();
        if (0..period).all(|r| residues.binary_search(&r).is_ok() == classes.contains(&(r % q))) {
            p = q;
            break;
        }
    }
    let mut res: Vec<i64> = residues.iter().map(|r| r % p).collect();
    res.sort_unstable();
    res.dedup();
    Ok((listed, p, res))
}

/// Whether a float-scale upsample size occurs in `d`.
fn has_scale(d: &Dim) -> bool {
    match d {
        Dim::Const(_) | Dim::Sym(_) => false,
        Dim::Scale { .. } => true,
        Dim::Lin { a, .. } | Dim::Div { a, .. } => has_scale(a),
        Dim::Min(a, b) => has_scale(a) || has_scale(b),
    }
}
