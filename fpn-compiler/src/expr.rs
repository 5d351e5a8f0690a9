//! The arithmetic of integer attributes and spec parameters: parsing `make_divisible(min(256,
//! max_channels) * width, 8)` into an [`IntExpr`] and evaluating it to a [`Num`].
//!
//! Invariants: parsing is bounded ([`MAX_TOKENS`] tokens, [`MAX_NESTING`] levels of parentheses
//! and unary minus, so no input recurses deeply); evaluation never panics: integer arithmetic is
//! checked, a float result that is not finite is an error, and a float becomes an integer only
//! through `round`, `ceil`, `floor` or `make_divisible`, and only below 2^53 (where every integer
//! is a float exactly). Numbers follow Python's rules where ultralytics' scaling uses them:
//! `round` rounds half to even, `min`/`max` return the first extreme argument unchanged,
//! `make_divisible(x, d)` is `ceil(x / d) * d`; `/` of two integers is an integer when it divides
//! exactly and otherwise the float quotient.

use crate::ast::IntExpr;

/// Most tokens one expression may have.
pub const MAX_TOKENS: usize = 128;
/// Deepest nesting of parentheses, calls and unary minus in one expression.
pub const MAX_NESTING: usize = 16;
/// Largest magnitude a float may have to become an integer (2^53: every integer below it is a
/// float exactly).
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// A value: an integer, or a finite float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// An integer.
    Int(i64),
    /// A finite float.
    Float(f64),
}

impl Num {
    /// The value as a float (integers beyond 2^53 round, as Python's `int * float` does).
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            // `{:?}` keeps the `.0` of a whole float (`16.0`), as Python prints it
            Num::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// The functions an expression may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `round(x)`: to the nearest integer, halves to even (Python's `round`).
    Round,
    /// `ceil(x)`: the smallest integer ≥ x.
    Ceil,
    /// `floor(x)`: the largest integer ≤ x.
    Floor,
    /// `min(a, b, …)`: the first smallest argument.
    Min,
    /// `max(a, b, …)`: the first largest argument.
    Max,
    /// `make_divisible(x, d)`: `ceil(x / d) * d` (ultralytics' `make_divisible`), `d` a
    /// positive integer.
    MakeDivisible,
}

impl Func {
    /// Every function with its name, for parsing and "did you mean".
    pub const ALL: &'static [(&'static str, Func)] = &[
        ("round", Func::Round),
        ("ceil", Func::Ceil),
        ("floor", Func::Floor),
        ("min", Func::Min),
        ("max", Func::Max),
        ("make_divisible", Func::MakeDivisible),
    ];

    /// The function's name as written.
    pub fn name(self) -> &'static str {
        Func::ALL.iter().find(|(_, f)| *f == self).map_or("?", |(n, _)| n)
    }

    /// The function called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Func> {
        Func::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// How many arguments it takes: exactly, or at least (`min`, `max`).
    fn arity(self) -> (usize, bool) {
        match self {
            Func::Round | Func::Ceil | Func::Floor => (1, false),
            Func::MakeDivisible => (2, false),
            Func::Min | Func::Max => (2, true),
        }
    }
}

impl std::fmt::Display for IntExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // precedence: 1 sums, 2 products, 3 unary minus and atoms; operands of lower precedence
        // get parentheses (right operands of `-` and `/` at equal precedence too)
        fn prec(e: &IntExpr) -> u8 {
            match e {
                IntExpr::Bin(_, '+' | '-', _) => 1,
                IntExpr::Bin(..) => 2,
                _ => 3,
            }
        }
        fn side(f: &mut std::fmt::Formatter<'_>, e: &IntExpr, paren: bool) -> std::fmt::Result {
            if paren {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        match self {
            IntExpr::Lit(v) => write!(f, "{v}"),
            IntExpr::Float(v) => write!(f, "{}", Num::Float(*v)),
            IntExpr::Param(p) => write!(f, "{p}"),
            IntExpr::Neg(a) => {
                f.write_str("-")?;
                side(f, a, prec(a) < 3)
            }
            IntExpr::Bin(a, op, b) => {
                let p = prec(self);
                side(f, a, prec(a) < p)?;
                let spaced = p == 1;
                if spaced {
                    write!(f, " {op} ")?;
                } else {
                    write!(f, "{op}")?;
                }
                side(f, b, prec(b) < p || (prec(b) == p && matches!(op, '-' | '/')))
            }
            IntExpr::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A token of an expression.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Int(i64),
    Float(f64),
    Name(String),
    /// `+ - * / ( ) ,`
    Punct(char),
}

/// Splits `s` into tokens; `Err` says what is wrong.
fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        if out.len() >= MAX_TOKENS {
            return Err(format!("more than {MAX_TOKENS} tokens"));
        }
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if "+-*/(),".contains(c) {
            out.push(Tok::Punct(c));
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < cs.len() && cs[i].is_ascii_digit() {
                i += 1;
            }
            let mut float = false;
            if i + 1 < cs.len() && cs[i] == '.' && cs[i + 1].is_ascii_digit() {
                float = true;
                i += 1;
                while i < cs.len() && cs[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // an exponent: `e` or `E`, an optional sign, digits
            if i < cs.len() && matches!(cs[i], 'e' | 'E') {
                let sign = usize::from(cs.get(i + 1).is_some_and(|c| matches!(c, '+' | '-')));
                if cs.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
                    float = true;
                    i += 1 + sign;
                    while i < cs.len() && cs[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = cs[st..i].iter().collect();
            if float {
                match text.parse::<f64>() {
                    Ok(f) if f.is_finite() => out.push(Tok::Float(f)),
                    _ => return Err(format!("the number `{text}` is too large")),
                }
            } else {
                match text.parse::<i64>() {
                    Ok(n) => out.push(Tok::Int(n)),
                    Err(_) => return Err(format!("the number `{text}` does not fit in 64 bits")),
                }
            }
            if cs
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            {
                return Err(format!("`{}` after the number `{text}`", cs[i]));
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let st = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Name(cs[st..i].iter().collect()));
        } else {
            return Err(format!("`{}` is not part of an expression", c.escape_debug()));
        }
    }
    Ok(out)
}

/// The parser's state: tokens, position, nesting.
struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

/// Parses an integer attribute or parameter expression: numbers (`64`, `0.25`, `1e-3`), names
/// (block or spec parameters), `+ - * /` (`*` and `/` bind tighter, left to right), unary `-`,
/// parentheses, and calls of [`Func`]s. `Err` is what is wrong, for a diagnostic's label.
pub fn parse(s: &str) -> Result<IntExpr, String> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err("an empty expression".into());
    }
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let e = p.sum()?;
    match p.toks.get(p.pos) {
        None => Ok(e),
        Some(t) => Err(format!("unexpected {}", describe(t))),
    }
}

/// A token as a message names it.
fn describe(t: &Tok) -> String {
    match t {
        Tok::Int(n) => format!("number `{n}`"),
        Tok::Float(f) => format!("number `{}`", Num::Float(*f)),
        Tok::Name(n) => format!("name `{n}`"),
        Tok::Punct(c) => format!("`{c}`"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// Enters one level of nesting (parentheses, a call, unary minus).
    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("nested more than {MAX_NESTING} levels deep"));
        }
        Ok(())
    }

    /// Operands read by `operand` joined by the operators `ops`, left to right.
    fn chain(&mut self, ops: [char; 2], operand: fn(&mut Self) -> Result<IntExpr, String>) -> Result<IntExpr, String> {
        let mut lhs = operand(self)?;
        while let Some(&Tok::Punct(c)) = self.peek() {
            if !ops.contains(&c) {
                break;
            }
            self.pos += 1;
            let rhs = operand(self)?;
            lhs = IntExpr::Bin(Box::new(lhs), c, Box::new(rhs));
        }
        Ok(lhs)
    }

    fn sum(&mut self) -> Result<IntExpr, String> {
        self.chain(['+', '-'], Self::product)
    }

    fn product(&mut self) -> Result<IntExpr, String> {
        self.chain(['*', '/'], Self::unary)
    }

    fn unary(&mut self) -> Result<IntExpr, String> {
        if let Some(Tok::Punct('-')) = self.peek() {
            self.pos += 1;
            self.nest()?;
            let e = self.unary()?;
            self.depth -= 1;
            // a negative literal is a literal
            return Ok(match e {
                IntExpr::Lit(v) => v
                    .checked_neg()
                    .map_or(IntExpr::Neg(Box::new(IntExpr::Lit(v))), IntExpr::Lit),
                IntExpr::Float(v) => IntExpr::Float(-v),
                e => IntExpr::Neg(Box::new(e)),
            });
        }
        self.atom()
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), String> {
        match self.peek() {
            Some(Tok::Punct(p)) if *p == c => {
                self.pos += 1;
                Ok(())
            }
            Some(t) => Err(format!("expected `{c}` {what}, found {}", describe(t))),
            None => Err(format!("expected `{c}` {what}, found the end")),
        }
    }

    fn atom(&mut self) -> Result<IntExpr, String> {
        let Some(t) = self.peek().cloned() else {
            return Err("the expression ends where a number or a name is expected".into());
        };
        self.pos += 1;
        match t {
            Tok::Int(n) => Ok(IntExpr::Lit(n)),
            Tok::Float(f) => Ok(IntExpr::Float(f)),
            Tok::Punct('(') => {
                self.nest()?;
                let e = self.sum()?;
                self.expect(')', "to close `(`")?;
                self.depth -= 1;
                Ok(e)
            }
            Tok::Name(n) if matches!(self.peek(), Some(Tok::Punct('('))) => {
                let Some(func) = Func::from_name(&n) else {
                    let names = Func::ALL.iter().map(|(n, _)| *n);
                    return Err(match crate::ast::suggest(&n, names) {
                        Some(s) => format!("unknown function `{n}` (did you mean `{s}`?)"),
                        None => format!(
                            "unknown function `{n}` (functions: {})",
                            Func::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                        ),
                    });
                };
                self.pos += 1;
                self.nest()?;
                let mut args = vec![self.sum()?];
                while let Some(Tok::Punct(',')) = self.peek() {
                    self.pos += 1;
                    args.push(self.sum()?);
                }
                self.expect(')', &format!("to close the arguments of `{n}`"))?;
                self.depth -= 1;
                let (count, at_least) = func.arity();
                if args.len() < count || (!at_least && args.len() > count) {
                    let given = args.len();
                    let takes = if at_least {
                        format!("at least {count} arguments")
                    } else if count == 1 {
                        "1 argument".to_string()
                    } else {
                        format!("{count} arguments")
                    };
                    return Err(format!("`{n}` takes {takes}, given {given}"));
                }
                Ok(IntExpr::Call(func, args))
            }
            Tok::Name(n) => Ok(IntExpr::Param(n)),
            t => Err(format!(
                "unexpected {} where a number or a name is expected",
                describe(&t)
            )),
        }
    }
}

/// Why an expression has no value.
#[derive(Clone, Debug, PartialEq)]
pub enum EvalError {
    /// A name that is not in scope.
    Unknown(String),
    /// Anything else: overflow, division by zero, a float too large to round, a bad divisor.
    Failed(String),
}

/// Evaluates `e`, looking names up with `lookup`.
pub fn eval(e: &IntExpr, lookup: &dyn Fn(&str) -> Option<Num>) -> Result<Num, EvalError> {
    let fail = |m: String| Err(EvalError::Failed(m));
    match e {
        IntExpr::Lit(v) => Ok(Num::Int(*v)),
        IntExpr::Float(v) => finite(*v, || format!("{v:?}")),
        IntExpr::Param(p) => lookup(p).ok_or_else(|| EvalError::Unknown(p.clone())),
        IntExpr::Neg(a) => match eval(a, lookup)? {
            Num::Int(v) => v
                .checked_neg()
                .map(Num::Int)
                .ok_or_else(|| EvalError::Failed(format!("-({v}) overflows"))),
            Num::Float(v) => Ok(Num::Float(-v)),
        },
        IntExpr::Bin(a, op, b) => {
            let (x, y) = (eval(a, lookup)?, eval(b, lookup)?);
            let overflow = || EvalError::Failed(format!("{x} {op} {y} overflows"));
            match (x, y) {
                (Num::Int(x), Num::Int(y)) => match op {
                    '+' => x.checked_add(y).map(Num::Int).ok_or_else(overflow),
                    '-' => x.checked_sub(y).map(Num::Int).ok_or_else(overflow),
                    '*' => x.checked_mul(y).map(Num::Int).ok_or_else(overflow),
                    _ if y == 0 => fail(format!("{x}/0 divides by zero")),
                    _ => match x.checked_rem(y) {
                        Some(0) => x.checked_div(y).map(Num::Int).ok_or_else(overflow),
                        Some(_) => finite(x as f64 / y as f64, || format!("{x}/{y}")),
                        None => Err(overflow()),
                    },
                },
                _ => {
                    let (x, y) = (x.as_f64(), y.as_f64());
                    let r = match op {
                        '+' => x + y,
                        '-' => x - y,
                        '*' => x * y,
                        _ if y == 0.0 => return fail(format!("{x:?}/{y:?} divides by zero")),
                        _ => x / y,
                    };
                    finite(r, || format!("{x:?} {op} {y:?}"))
                }
            }
        }
        IntExpr::Call(func, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, lookup))
                .collect::<Result<Vec<Num>, EvalError>>()?;
            call(*func, &vals)
        }
    }
}

/// A float result, unless it is not finite (`what` names the computation).
fn finite(v: f64, what: impl Fn() -> String) -> Result<Num, EvalError> {
    if v.is_finite() {
        Ok(Num::Float(v))
    } else {
        Err(EvalError::Failed(format!("{} overflows", what())))
    }
}

/// A whole float as an integer, if it is below 2^53.
fn to_int(f: f64, func: Func) -> Result<Num, EvalError> {
    if f.abs() < MAX_EXACT {
        Ok(Num::Int(f as i64))
    } else {
        Err(EvalError::Failed(format!(
            "`{}` of {f:?}: too large to be an integer (at most 2^53)",
            func.name()
        )))
    }
}

/// Applies `func` to `args` (their count already checked by the parser).
fn call(func: Func, args: &[Num]) -> Result<Num, EvalError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or(Num::Int(0));
    let round = |f: fn(f64) -> f64| match arg(0) {
        Num::Int(v) => Ok(Num::Int(v)),
        Num::Float(v) => to_int(f(v), func),
    };
    match func {
        Func::Round => round(f64::round_ties_even),
        Func::Ceil => round(f64::ceil),
        Func::Floor => round(f64::floor),
        Func::Min | Func::Max => {
            let mut best = arg(0);
            for &a in &args[1..] {
                // Python keeps the first of equal values
                let better = if func == Func::Min {
                    a.as_f64() < best.as_f64()
                } else {
                    a.as_f64() > best.as_f64()
                };
                if better {
                    best = a;
                }
            }
            Ok(best)
        }
        Func::MakeDivisible => {
            let d = match arg(1) {
                Num::Int(d) if d > 0 => d,
                other => {
                    return Err(EvalError::Failed(format!(
                        "`make_divisible`'s divisor must be a positive integer, not {other}"
                    )))
                }
            };
            let q = match arg(0) {
                Num::Int(x) => x.div_euclid(d) + i64::from(x.rem_euclid(d) != 0),
                Num::Float(x) => match to_int((x / d as f64).ceil(), func)? {
                    Num::Int(q) => q,
                    Num::Float(_) => 0,
                },
            };
            q.checked_mul(d)
                .map(Num::Int)
                .ok_or_else(|| EvalError::Failed(format!("make_divisible({}, {d}) overflows", arg(0))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str, env: &[(&str, Num)]) -> Result<Num, EvalError> {
        let e = parse(s).map_err(EvalError::Failed)?;
        eval(&e, &|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
    }

    #[test]
    fn ultralytics_scaling_rules() {
        // c2 = make_divisible(min(c2, max_channels) * width, 8); n = max(round(n * depth), 1)
        let x = [
            ("width", Num::Float(1.25)),
            ("max_channels", Num::Int(512)),
            ("depth", Num::Float(1.0)),
        ];
        assert_eq!(
            ev("make_divisible(min(1024, max_channels) * width, 8)", &x),
            Ok(Num::Int(640))
        );
        let n = [
            ("width", Num::Float(0.25)),
            ("max_channels", Num::Int(1024)),
            ("depth", Num::Float(0.33)),
        ];
        assert_eq!(
            ev("make_divisible(min(64, max_channels) * width, 8)", &n),
            Ok(Num::Int(16))
        );
        assert_eq!(ev("max(round(3 * depth), 1)", &n), Ok(Num::Int(1)));
        assert_eq!(ev("max(round(6 * depth), 1)", &n), Ok(Num::Int(2)));
        let m = [("depth", Num::Float(0.67))];
        assert_eq!(ev("max(round(3 * depth), 1)", &m), Ok(Num::Int(2)));
        assert_eq!(ev("max(round(6 * depth), 1)", &m), Ok(Num::Int(4)));
        // 48 * 0.75 = 36 -> 40, as `make_divisible(36.0, 8)` in Python
        assert_eq!(ev("make_divisible(48 * 0.75, 8)", &[]), Ok(Num::Int(40)));
    }

    #[test]
    fn python_rounding_and_division() {
        assert_eq!(ev("round(2.5)", &[]), Ok(Num::Int(2)));
        assert_eq!(ev("round(3.5)", &[]), Ok(Num::Int(4)));
        assert_eq!(ev("round(-0.5)", &[]), Ok(Num::Int(0)));
        assert_eq!(ev("ceil(-1.5) + floor(-1.5)", &[]), Ok(Num::Int(-3)));
        assert_eq!(ev("6/3", &[]), Ok(Num::Int(2)));
        assert_eq!(ev("7/2", &[]), Ok(Num::Float(3.5)));
        assert_eq!(ev("-7/2*2", &[]), Ok(Num::Float(-7.0)));
        assert_eq!(ev("(1 + 2) * 3 - -1", &[]), Ok(Num::Int(10)));
        assert_eq!(ev("min(4, 4.0)", &[]), Ok(Num::Int(4)));
        assert_eq!(ev("max(4.0, 4)", &[]), Ok(Num::Float(4.0)));
        assert_eq!(ev("make_divisible(-9, 8)", &[]), Ok(Num::Int(-8)));
        assert_eq!(ev("1e3 + 2.5e-1", &[]), Ok(Num::Float(1000.25)));
    }

    #[test]
    fn failures_are_errors_not_panics() {
        let failed = |s: &str| matches!(ev(s, &[]), Err(EvalError::Failed(_)));
        assert!(failed("9223372036854775807 + 1"));
        assert!(failed("-9223372036854775807 - 2"));
        assert!(failed("(-9223372036854775807 - 1) / -1"));
        assert!(failed("1/0"));
        assert!(failed("1.5/0"));
        assert!(failed("1e300 * 1e300"));
        assert!(failed("round(1e300)"));
        assert!(failed("make_divisible(10, 0)"));
        assert!(failed("make_divisible(10, 2.5)"));
        assert!(failed("make_divisible(9223372036854775807, 8)"));
        assert!(failed("1e999"));
        assert_eq!(ev("c + 1", &[]), Err(EvalError::Unknown("c".into())));
    }

    #[test]
    fn parse_errors_say_what() {
        let err = |s: &str| parse(s).expect_err(s);
        assert!(err("make_divisable(3, 8)").contains("did you mean `make_divisible`"));
        assert!(err("round(1, 2)").contains("takes 1 argument, given 2"));
        assert!(err("min(1)").contains("at least 2 arguments"));
        assert!(err("(1 + 2").contains("to close `(`"));
        assert!(err("2 *").contains("ends"));
        assert!(err("a.b").contains("`.`"));
        assert!(err("3x").contains("after the number"));
        assert!(err(&"(".repeat(40)).contains("nested"));
        assert!(err(&"1+".repeat(100)).contains("tokens"));
        assert!(err("").contains("empty"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Any text parses or is refused, and what parses evaluates or is refused: never a
        /// panic (integer overflow panics in test builds), whatever the values of the names.
        #[test]
        fn never_panics(s in "[0-9a-c_+*/(), .e-]{0,48}|(round|ceil|floor|min|max|make_divisible|[abc]|[0-9]{1,20}|[0-9]\\.[0-9]e[0-9]{1,3}|[-+*/(), ]){0,24}") {
            let env = [
                ("a", Num::Int(i64::MAX)),
                ("b", Num::Float(1e300)),
                ("c", Num::Int(i64::MIN)),
            ];
            if let Ok(e) = parse(&s) {
                let _ = eval(&e, &|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| *v));
                // and what it prints parses back to itself
                proptest::prop_assert_eq!(parse(&e.to_string()), Ok(e));
            }
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "make_divisible(min(64, max_channels) * width, 8)",
            "a - (b - c)",
            "a/(b*c)",
            "(a + b)*c",
            "-(a + b)",
            "max(round(3*depth), 1)",
            "0.25*c",
        ] {
            let e = parse(s).expect(s);
            assert_eq!(parse(&e.to_string()).expect("reparses"), e, "{s} printed as {e}");
        }
        assert_eq!(parse("a - (b - c)").expect("parses").to_string(), "a - (b - c)");
    }
}
