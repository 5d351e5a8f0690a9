//! Symbolic spatial sizes: [`Dim`] expressions over the input symbols (`H`, `W`, …).
//!
//! Every spatial size of a spec is an integer expression in the input sizes built from integer
//! multiply-add, floor division by a positive constant, and `min` (ceil-mode pooling). Constants
//! fold on construction, so a spec with fixed input sizes only ever sees [`Dim::Const`].
//! `floor((m·x + c)/d) + k` is kept as `floor((m·x + c + k·d)/d)`, which makes the common shapes
//! print as `ceil(H/2)` and compare structurally. All arithmetic is checked: a result that does
//! not fit `i64` is `None`, reported by the caller as an overflow diagnostic.

use std::fmt;

/// Index of a size symbol of a spec (`Graph::symbols`).
pub type SymId = u32;

/// A spatial size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known size.
    Const(i64),
    /// An input symbol.
    Sym(SymId),
    /// `a·mul + add`.
    Lin {
        /// The inner expression.
        a: Box<Dim>,
        /// Multiplier (never 0; 0 folds to a constant).
        mul: i64,
        /// Addend.
        add: i64,
    },
    /// `floor(a / div)` with `div > 1`.
    Div {
        /// The inner expression.
        a: Box<Dim>,
        /// Positive divisor.
        div: i64,
    },
    /// `min(a, b)`.
    Min(Box<Dim>, Box<Dim>),
    /// `trunc(f64(a) · s)` computed in `f64` (an upsample by a scale that is not a fraction with
    /// a power-of-two denominator: PyTorch's float rounding, not an exact rational rule).
    Scale {
        /// The inner expression.
        a: Box<Dim>,
        /// The scale's `f64` bits.
        bits: u64,
    },
}

impl Dim {
    /// The constant value, if known.
    pub fn as_const(&self) -> Option<i64> {
        match self {
            Dim::Const(c) => Some(*c),
            _ => None,
        }
    }

    /// `self·mul + add`, folded; `None` on overflow.
    pub fn lin(&self, mul: i64, add: i64) -> Option<Dim> {
        Some(match self {
            _ if mul == 0 => Dim::Const(add),
            Dim::Const(c) => Dim::Const(c.checked_mul(mul)?.checked_add(add)?),
            _ if mul == 1 && add == 0 => self.clone(),
            Dim::Lin { a, mul: m, add: k } => Dim::Lin {
                a: a.clone(),
                mul: m.checked_mul(mul)?,
                add: k.checked_mul(mul)?.checked_add(add)?,
            }
            .normalized(),
            Dim::Div { a, div } if mul == 1 => {
                // floor(x/d) + k == floor((x + k·d)/d)
                Dim::Div {
                    a: Box::new(a.lin(1, add.checked_mul(*div)?)?),
                    div: *div,
                }
            }
            _ => Dim::Lin {
                a: Box::new(self.clone()),
                mul,
                add,
            },
        })
    }

    fn normalized(self) -> Dim {
        match self {
            Dim::Lin { a, mul: 1, add: 0 } => *a,
            other => other,
        }
    }

    /// `self + add`.
    pub fn add(&self, add: i64) -> Option<Dim> {
        self.lin(1, add)
    }

    /// `floor(self / div)` for `div >= 1`; `None` on `div < 1` or overflow.
    pub fn floor_div(&self, div: i64) -> Option<Dim> {
        if div < 1 {
            return None;
        }
        Some(match self {
            _ if div == 1 => self.clone(),
            Dim::Const(c) => Dim::Const(c.div_euclid(div)),
            // floor(floor(x/a)/b) == floor(x/(a·b))
            Dim::Div { a, div: d } => Dim::Div {
                a: a.clone(),
                div: d.checked_mul(div)?,
            },
            // floor((m·x)/d) with d | m
            Dim::Lin { a, mul, add } if mul % div == 0 && add % div == 0 => a.lin(mul / div, add / div)?,
            _ => Dim::Div {
                a: Box::new(self.clone()),
                div,
            },
        })
    }

    /// `ceil(self / div)` for `div >= 1`.
    pub fn ceil_div(&self, div: i64) -> Option<Dim> {
        self.add(div.checked_sub(1)?)?.floor_div(div)
    }

    /// `min(self, other)`, folded when both are constants or equal.
    pub fn min(&self, other: &Dim) -> Dim {
        match (self, other) {
            (Dim::Const(a), Dim::Const(b)) => Dim::Const(*a.min(b)),
            _ if self == other => self.clone(),
            _ => Dim::Min(Box::new(self.clone()), Box::new(other.clone())),
        }
    }

    /// Evaluates with `env[sym]` as the value of each symbol; `None` on overflow or a missing symbol.
    pub fn eval(&self, env: &[i64]) -> Option<i64> {
        match self {
            Dim::Const(c) => Some(*c),
            Dim::Sym(s) => env.get(*s as usize).copied(),
            Dim::Lin { a, mul, add } => a.eval(env)?.checked_mul(*mul)?.checked_add(*add),
            Dim::Div { a, div } => Some(a.eval(env)?.div_euclid(*div)),
            Dim::Min(a, b) => Some(a.eval(env)?.min(b.eval(env)?)),
            Dim::Scale { a, bits } => fpn_runtime::rules::scale_size(a.eval(env)?, f64::from_bits(*bits)),
        }
    }

    /// The symbols the expression mentions, sorted, without repeats.
    pub fn symbols(&self) -> Vec<SymId> {
        let mut out = Vec::new();
        self.collect_symbols(&mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    fn collect_symbols(&self, out: &mut Vec<SymId>) {
        match self {
            Dim::Const(_) => {}
            Dim::Sym(s) => out.push(*s),
            Dim::Lin { a, .. } | Dim::Div { a, .. } | Dim::Scale { a, .. } => a.collect_symbols(out),
            Dim::Min(a, b) => {
                a.collect_symbols(out);
                b.collect_symbols(out);
            }
        }
    }

    /// Least common multiple of the divisor products along every path: the expression is
    /// "quasi-affine" with this period (see docs/sizes.md). `None` on overflow.
    pub fn period(&self) -> Option<i64> {
        match self {
            Dim::Const(_) | Dim::Sym(_) => Some(1),
            Dim::Lin { a, .. } => a.period(),
            Dim::Div { a, div } => {
                // floor((m·x + c)/d) repeats with period d / gcd(m·p, d) times the inner period p;
                // the plain product is a multiple of that, which is all the analysis needs.
                a.period()?.checked_mul(*div)
            }
            Dim::Min(a, b) => lcm(a.period()?, b.period()?),
            // float rounding has no period
            Dim::Scale { .. } => None,
        }
    }

    /// The divisions inside the expression as `(numerator, divisor)` pairs, outermost first.
    ///
    /// In an input size every division is exact (docs/spec.md): `H/16` requires `16 | H`.
    /// Folding keeps that meaning: `floor(floor(x/a)/b) = floor(x/(a·b))` is exact for both
    /// divisions iff `a·b | x`, and `floor(x/d) + k = floor((x + k·d)/d)` is exact iff the left is.
    pub fn divisions(&self) -> Vec<(&Dim, i64)> {
        let mut out = Vec::new();
        let mut d = self;
        loop {
            match d {
                Dim::Const(_) | Dim::Sym(_) => return out,
                Dim::Lin { a, .. } => d = a,
                Dim::Div { a, div } => {
                    out.push((a.as_ref(), *div));
                    d = a;
                }
                Dim::Min(..) | Dim::Scale { .. } => return out,
            }
        }
    }

    /// The value of the one symbol for which this input size equals `v`, reading every division
    /// as exact; `None` when there is none (a non-exact step, overflow) or the expression is not
    /// a chain of multiply-adds and divisions over one symbol.
    pub fn solve(&self, v: i64) -> Option<i64> {
        let mut v = v;
        let mut d = self;
        loop {
            match d {
                Dim::Sym(_) => return Some(v),
                Dim::Lin { a, mul, add } => {
                    let t = v.checked_sub(*add)?;
                    if *mul == 0 || t.checked_rem(*mul)? != 0 {
                        return None;
                    }
                    v = t.checked_div(*mul)?;
                    d = a;
                }
                Dim::Div { a, div } => {
                    v = v.checked_mul(*div)?;
                    d = a;
                }
                Dim::Const(_) | Dim::Min(..) | Dim::Scale { .. } => return None,
            }
        }
    }

    /// The steps [`Dim::solve`] takes, outermost first, for code generation.
    pub fn solve_steps(&self) -> Option<Vec<SolveStep>> {
        let mut out = Vec::new();
        let mut d = self;
        loop {
            match d {
                Dim::Sym(_) => return Some(out),
                Dim::Lin { a, mul, add } if *mul != 0 => {
                    out.push(SolveStep::SubDiv { sub: *add, div: *mul });
                    d = a;
                }
                Dim::Div { a, div } => {
                    out.push(SolveStep::Mul(*div));
                    d = a;
                }
                _ => return None,
            }
        }
    }

    /// `self` with symbol `s` replaced by `by`, folded; `None` on overflow.
    pub fn subst(&self, s: SymId, by: &Dim) -> Option<Dim> {
        Some(match self {
            Dim::Const(_) => self.clone(),
            Dim::Sym(x) if *x == s => by.clone(),
            Dim::Sym(_) => self.clone(),
            Dim::Lin { a, mul, add } => a.subst(s, by)?.lin(*mul, *add)?,
            Dim::Div { a, div } => a.subst(s, by)?.floor_div(*div)?,
            Dim::Min(a, b) => a.subst(s, by)?.min(&b.subst(s, by)?),
            Dim::Scale { a, bits } => a.subst(s, by)?.scale(f64::from_bits(*bits))?,
        })
    }

    /// `trunc(self · s)` as PyTorch computes an upsample size (in `f64`): a constant folds
    /// through [`fpn_runtime::rules::scale_size`]; a scale `k/2^j` (`j ≤ 6`) is the exact
    /// `floor(k·x / 2^j)` (the `f64` product of an integer below 2^46 and such a scale is
    /// exact); any other scale stays a [`Dim::Scale`]. `None` on overflow or a bad scale.
    pub fn scale(&self, s: f64) -> Option<Dim> {
        if !(s.is_finite() && s > 0.0) {
            return None;
        }
        if let Dim::Const(c) = self {
            return fpn_runtime::rules::scale_size(*c, s).map(Dim::Const);
        }
        let k = s * 64.0;
        if k.fract() == 0.0 && k < (1u64 << 40) as f64 {
            let (mut num, mut den) = (k as i64, 64i64);
            while num % 2 == 0 && den > 1 {
                num /= 2;
                den /= 2;
            }
            return self.lin(num, 0)?.floor_div(den);
        }
        Some(Dim::Scale {
            a: Box::new(self.clone()),
            bits: s.to_bits(),
        })
    }

    /// Renders with symbol names.
    pub fn display<'a>(&'a self, names: &'a [String]) -> DimDisplay<'a> {
        DimDisplay { dim: self, names }
    }
}

/// One step of inverting an input size (see [`Dim::solve_steps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SolveStep {
    /// `v = (v - sub) / div`, which must be exact.
    SubDiv {
        /// Subtracted first.
        sub: i64,
        /// Then divided by, exactly.
        div: i64,
    },
    /// `v = v · k` (undoing an exact division by `k`).
    Mul(i64),
}

/// Greatest common divisor of non-negative numbers.
pub fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Least common multiple; `None` on overflow.
pub fn lcm(a: i64, b: i64) -> Option<i64> {
    if a == 0 || b == 0 {
        return Some(0);
    }
    (a / gcd(a, b)).checked_mul(b)
}

/// [`Dim`] printed with symbol names: `H`, `2*H`, `ceil(H/2)`, `(H-1)/2` (floor division).
pub struct DimDisplay<'a> {
    dim: &'a Dim,
    names: &'a [String],
}

impl fmt::Display for DimDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_dim(f, self.dim, self.names, false)
    }
}

fn write_dim(f: &mut fmt::Formatter<'_>, d: &Dim, names: &[String], nested: bool) -> fmt::Result {
    match d {
        Dim::Const(c) => write!(f, "{c}"),
        Dim::Sym(s) => match names.get(*s as usize) {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "?{s}"),
        },
        Dim::Lin { a, mul, add } => {
            if nested {
                write!(f, "(")?;
            }
            if *mul != 1 {
                write!(f, "{mul}*")?;
            }
            write_dim(f, a, names, true)?;
            if *add > 0 {
                write!(f, "+{add}")?;
            } else if *add < 0 {
                write!(f, "{add}")?;
            }
            if nested {
                write!(f, ")")?;
            }
            Ok(())
        }
        Dim::Div { a, div } => {
            // floor((x + d - 1)/d) reads better as ceil(x/d)
            if let Dim::Lin { a: inner, mul: 1, add } = a.as_ref() {
                if *add == div - 1 {
                    write!(f, "ceil(")?;
                    write_dim(f, inner, names, true)?;
                    return write!(f, "/{div})");
                }
            }
            write_dim(f, a, names, true)?;
            write!(f, "/{div}")
        }
        Dim::Min(a, b) => {
            write!(f, "min(")?;
            write_dim(f, a, names, false)?;
            write!(f, ", ")?;
            write_dim(f, b, names, false)?;
            write!(f, ")")
        }
        Dim::Scale { a, bits } => {
            write!(f, "floor(")?;
            write_dim(f, a, names, true)?;
            write!(f, "*{})", f64::from_bits(*bits))
        }
    }
}

impl fpn_runtime::rules::SizeArith for Dim {
    fn constant(v: i64) -> Self {
        Dim::Const(v)
    }
    fn plus(&self, k: i64) -> Option<Self> {
        self.add(k)
    }
    fn floor_div(&self, d: i64) -> Option<Self> {
        Dim::floor_div(self, d)
    }
    fn ceil_div(&self, d: i64) -> Option<Self> {
        Dim::ceil_div(self, d)
    }
    fn times(&self, k: i64) -> Option<Self> {
        if k < 1 {
            return None;
        }
        self.lin(k, 0)
    }
    fn min_with(&self, other: &Self) -> Self {
        self.min(other)
    }
    fn scale_f64(&self, s: f64) -> Option<Self> {
        self.scale(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["H".into()]
    }

    #[test]
    fn conv_stride_two_prints_as_ceil() {
        // 3x3, stride 2, padding 1: floor((H + 2 - 2 - 1)/2) + 1
        let h = Dim::Sym(0);
        let out = h
            .add(-1)
            .and_then(|d| d.floor_div(2))
            .and_then(|d| d.add(1))
            .expect("fits");
        assert_eq!(out.display(&names()).to_string(), "ceil(H/2)");
        for x in 1..50 {
            assert_eq!(out.eval(&[x]), Some((x + 1) / 2));
        }
    }

    #[test]
    fn nested_floors_merge_and_constants_fold() {
        let h = Dim::Sym(0);
        let q = h.floor_div(2).and_then(|d| d.floor_div(2)).expect("fits");
        assert_eq!(
            q,
            Dim::Div {
                a: Box::new(Dim::Sym(0)),
                div: 4
            }
        );
        assert_eq!(
            q.lin(4, 0).map(|d| d.display(&names()).to_string()),
            Some("4*H/4".to_string())
        );
        assert_eq!(Dim::Const(7).ceil_div(2), Some(Dim::Const(4)));
        assert_eq!(Dim::Const(i64::MAX).lin(2, 0), None);
    }
}
