//! Accepted input sizes: for each size symbol, the exact set of values for which every node of
//! the spec is well-defined and every merge aligns.
//!
//! Every size is a quasi-affine expression of one symbol (see [`crate::dim`]): beyond a
//! threshold `T` each constraint's truth value repeats with a period `P` (the lcm of the divisor
//! products), so the set is: the accepted values up to `T`, listed, plus residue classes modulo
//! `P` above `T`. `T` comes from slope/error bounds on each expression; docs/sizes.md proves it.
//! The set is found by evaluating the constraints at every value up to `T + P`, which is exact.

use crate::dim::{lcm, Dim, SymId};
use crate::infer::Constraint;
use crate::ir::Graph;

/// Scanning more values than this gives up with [`SizesError::TooLarge`].
pub const MAX_SCAN: i64 = 4_000_000;

/// Why no exact answer could be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SizesError {
    /// The period or threshold is too large to scan.
    #[error("the size pattern of `{0}` repeats only every {1} values, too many to analyse exactly")]
    TooLarge(String, String),
    /// A constraint ties two symbols together.
    #[error("the sizes `{0}` and `{1}` constrain each other; they are only checked for given values")]
    Joint(String, String),
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
pub fn analyse(g: &Graph, cons: &[Constraint]) -> Vec<Result<Accepted, SizesError>> {
    let names = g.symbol_names();
    (0..g.symbols.len() as SymId)
        .map(|s| analyse_symbol(g, cons, s, &names))
        .collect()
}

fn analyse_symbol(g: &Graph, cons: &[Constraint], s: SymId, names: &[String]) -> Result<Accepted, SizesError> {
    let sym = &g.symbols[s as usize];
    let mut mine: Vec<&Constraint> = Vec::new();
    for c in cons {
        let mut syms = c.lhs.symbols();
        syms.extend(c.rhs.symbols());
        syms.sort_unstable();
        syms.dedup();
        if syms.contains(&s) {
            if let Some(other) = syms.iter().find(|&&o| o != s) {
                return Err(SizesError::Joint(
                    sym.name.clone(),
                    names.get(*other as usize).cloned().unwrap_or_default(),
                ));
            }
            mine.push(c);
        }
    }
    let too_large = |what: String| SizesError::TooLarge(sym.name.clone(), what);
    let mut period: i64 = 1;
    let mut t = 0f64;
    for c in &mine {
        for d in [&c.lhs, &c.rhs] {
            period = d
                .period()
                .and_then(|p| lcm(period, p))
                .ok_or_else(|| too_large("more than 2^63".into()))?;
        }
        t = t.max(threshold(c));
    }
    if !t.is_finite() || t > MAX_SCAN as f64 || period > MAX_SCAN {
        return Err(too_large(period.to_string()));
    }
    let threshold = (t.ceil() as i64).max(sym.min);
    let mut env = vec![1i64; g.symbols.len()];
    let mut ok = |x: i64| {
        env[s as usize] = x;
        mine.iter().all(|c| c.holds(&env) == Some(true))
    };
    let end = match sym.max {
        Some(m) => m.min(threshold),
        None => threshold,
    };
    if end.saturating_sub(sym.min) > MAX_SCAN {
        return Err(too_large(end.to_string()));
    }
    let listed: Vec<i64> = (sym.min..=end).filter(|&x| ok(x)).collect();
    let mut residues: Vec<i64> = Vec::new();
    if sym.max.is_none_or(|m| m > threshold) {
        for x in threshold + 1..=threshold + period {
            if ok(x) {
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
    Ok(Accepted {
        symbol: sym.name.clone(),
        min: sym.min,
        max: sym.max,
        listed,
        threshold,
        period: p,
        residues: res,
    })
}
