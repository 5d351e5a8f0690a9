//! Spec parameters and model families: `params:` (named numbers and expressions, evaluated in
//! order), `scales:` with the default `scale:` (each scale a set of parameter values, like
//! ultralytics' `scales:` table), and values set from outside the spec ([`Setting`]: `fpn check
//! --set scale=s`, the macros' `set: {…}`, [`crate::Builder::set`]).
//!
//! Reading checks the structure (parameter names, every scale setting the same parameters);
//! lowering (`Lower::spec_params`) picks the scale, applies the settings and evaluates each
//! parameter once, in order, before any node: the environment every integer attribute and
//! block argument is evaluated in (a block's own parameters shadow the spec's).

use std::collections::HashMap;

use crate::ast::{self, Family, Name, ParamDecl, Reader, ScaleDecl};
use crate::diag::{Code, Diagnostic};
use crate::expr::{Func, Num};
use crate::lower::{check_ident, list, Lower};
use crate::span::Span;
use crate::value::{Key, Value, ValueKind};

/// The name of the parameter that picks a scale (`--set scale=s`) and of the key of the
/// default one.
pub const SCALE: &str = "scale";
/// What a spec's `name` may contain to be replaced by the scale's name (`Yolov8{scale}`).
pub const SCALE_IN_NAME: &str = "{scale}";

/// A parameter value set from outside the spec: `--set name=value`, an entry of the macros'
/// `set: {…}`, [`crate::Builder::set`]. Settings are applied in order (a later one of the same
/// name wins).
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// The parameter (`scale`, `width`, any name under `params:` or set by a scale).
    pub name: String,
    /// Its value as written: a number, or a scale's name for `scale`.
    pub value: String,
    /// Where it is written, when that is in a source of the same [`crate::span::SourceMap`]
    /// (the macros' tokens); `None` for a command line.
    pub span: Option<Span>,
}

impl Setting {
    /// A setting without a source location.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Setting {
        Setting {
            name: name.into(),
            value: value.into(),
            span: None,
        }
    }

    /// Parses `name=value` (the command line's `--set`).
    ///
    /// # Errors
    /// A message when there is no `=` or the name is empty.
    pub fn parse(s: &str) -> Result<Setting, String> {
        match s.split_once('=') {
            Some((n, v)) if !n.trim().is_empty() => Ok(Setting::new(n.trim(), v.trim())),
            _ => Err(format!(
                "expected NAME=VALUE (such as `scale=s` or `width=0.5`), found `{s}`"
            )),
        }
    }

    /// The settings of a macro's `set: {scale: s, width: 0.5}` map, each with its span.
    ///
    /// # Errors
    /// E0102 for a value that is not a map of names to numbers or names.
    pub fn from_value(v: &Value) -> Result<Vec<Setting>, Vec<Diagnostic>> {
        let ValueKind::Map(entries) = &v.kind else {
            return Err(vec![ast::type_error(v, "a map like `{scale: s}`", "`set`")]);
        };
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (k, val) in entries {
            let value = match &val.kind {
                ValueKind::Int(i) => i.to_string(),
                ValueKind::Float(f) => Num::Float(*f).to_string(),
                ValueKind::Str(s) => s.clone(),
                _ => {
                    errors.push(ast::type_error(
                        val,
                        "a number or a scale's name",
                        &format!("`set.{}`", k.name),
                    ));
                    continue;
                }
            };
            out.push(Setting {
                name: k.name.clone(),
                value,
                span: Some(k.span.to(val.span)),
            });
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// E0242 at `span`: `message`, with `label` and `help`.
fn family_error(span: Span, message: String, label: &str, help: &str) -> Diagnostic {
    Diagnostic::error(Code::E0242, span, message)
        .with_label(label)
        .with_help(help)
}

impl Reader {
    /// `params: {name: value or expression, …}`, in order.
    pub(crate) fn params(&mut self, v: &Value) -> Vec<ParamDecl> {
        let Ok(m) = self.map(v, "`params`") else {
            return Vec::new();
        };
        m.entries
            .iter()
            .filter_map(|(k, pv)| self.param(k, pv, &format!("parameter `{}`", k.name)))
            .collect()
    }

    /// One parameter `k: v` (its name checked).
    fn param(&mut self, k: &Key, v: &Value, what: &str) -> Option<ParamDecl> {
        self.param_name(k);
        let value = self.number(v, what).ok()?;
        Some(ParamDecl {
            name: Name {
                text: k.name.clone(),
                span: k.span,
            },
            value,
        })
    }

    /// E0242 unless `k` can be a parameter's name: an identifier, not a function's name.
    fn param_name(&mut self, k: &Key) {
        let help = "name parameters with letters, digits and `_`, as in `max_channels`, other than \
                    `round`, `ceil`, `floor`, `min`, `max`, `make_divisible` and `scale`";
        if !ast::is_ident(&k.name) {
            self.report(family_error(
                k.span,
                format!("`{}` cannot be a parameter's name", k.name.escape_debug()),
                "not an identifier",
                help,
            ));
        } else if Func::from_name(&k.name).is_some() || k.name == SCALE {
            self.report(family_error(
                k.span,
                format!("`{}` cannot be a parameter's name", k.name),
                if k.name == SCALE {
                    "names the scale"
                } else {
                    "a function's name"
                },
                help,
            ));
        }
    }

    /// The family of a spec: `scale:` (its default scale) and `scales:` (`n: {depth: 0.33, …}`,
    /// every scale setting the same parameters, none of them also under `params:`).
    pub(crate) fn family(
        &mut self,
        scale: Option<&(Key, Value)>,
        scales: Option<&(Key, Value)>,
        params: &[ParamDecl],
    ) -> Option<Family> {
        let Some((sk, sv)) = scales else {
            if let Some((k, _)) = scale {
                self.report(family_error(
                    k.span,
                    "`scale:` names the default scale, but the spec has no `scales:`".into(),
                    "no scales to choose from",
                    "declare the scales, e.g. `scales: {n: {width: 0.25}, s: {width: 0.5}}`, or remove `scale:`",
                ));
            }
            return None;
        };
        let default = match scale {
            Some((_, v)) => self.name(v, "`scale`").ok(),
            None => {
                self.report(
                    Diagnostic::error(Code::E0103, sk.span, "the spec has `scales:` but no default `scale:`")
                        .with_label("which scale is the default?")
                        .with_help("name the default scale at the top level: `scale: n`"),
                );
                None
            }
        };
        let m = self.map(sv, "`scales`").ok()?;
        let mut out: Vec<ScaleDecl> = Vec::new();
        for (k, v) in m.entries {
            let what = format!("scale `{}`", k.name);
            let Ok(vm) = self.map(v, &what) else { continue };
            let values: Vec<ParamDecl> = vm
                .entries
                .iter()
                .filter_map(|(pk, pv)| self.param(pk, pv, &format!("`{}` of {what}", pk.name)))
                .collect();
            out.push(ScaleDecl {
                name: Name {
                    text: k.name.clone(),
                    span: k.span,
                },
                values,
            });
        }
        if out.is_empty() {
            self.report(family_error(
                sk.span,
                "`scales:` lists no scale".into(),
                "empty",
                "list each scale with its parameter values: `scales: {n: {depth: 0.33, width: 0.25}}`",
            ));
            return None;
        }
        self.scales_agree(&out, params);
        Some(Family {
            default,
            scales: out,
            span: sk.span,
        })
    }

    /// Every scale sets the parameters the first one sets, and none is also under `params:`.
    fn scales_agree(&mut self, scales: &[ScaleDecl], params: &[ParamDecl]) {
        let first = &scales[0];
        fn names(s: &ScaleDecl) -> Vec<&str> {
            s.values.iter().map(|p| p.name.text.as_str()).collect()
        }
        let want = names(first);
        let want_set: std::collections::HashSet<&str> = want.iter().copied().collect();
        for s in &scales[1..] {
            let have = names(s);
            let have_set: std::collections::HashSet<&str> = have.iter().copied().collect();
            let missing: Vec<&str> = want.iter().copied().filter(|n| !have_set.contains(n)).collect();
            let extra: Vec<&str> = have.iter().copied().filter(|n| !want_set.contains(n)).collect();
            if missing.is_empty() && extra.is_empty() {
                continue;
            }
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("does not set {}", quoted(&missing)));
            }
            if !extra.is_empty() {
                parts.push(format!(
                    "sets {}, which scale `{}` does not",
                    quoted(&extra),
                    first.name.text
                ));
            }
            self.report(
                family_error(
                    s.name.span,
                    format!("scale `{}` {}", s.name.text, parts.join(" and ")),
                    "sets other parameters",
                    &format!("give every scale the same parameters: {}", list(&want, 16)),
                )
                .with_secondary(
                    first.name.span,
                    format!("scale `{}` sets {}", first.name.text, list(&want, 16)),
                ),
            );
        }
        self.report_repeats(
            first
                .values
                .iter()
                .chain(params)
                .map(|p| (p.name.text.as_str(), p.name.span)),
            |n| format!("parameter `{n}` is set by the scales and declared under `params:`"),
            "a scale's parameter is already a parameter: remove it from `params:`",
        );
    }
}

/// `a`, `b`, `c` in backticks (the first 16, then how many in all).
fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    list(&q.iter().map(String::as_str).collect::<Vec<_>>(), 16)
}

/// A setting's value as a number: an integer, else a finite float.
fn parse_number(s: &str) -> Option<Num> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Num::Int(i));
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Num::Float)
}

impl Lower<'_> {
    /// Evaluates the spec's parameters into `self.params`: the scale (the last `scale` setting,
    /// else the spec's default) and its values, then each `params:` entry in order; a setting
    /// replaces the value it names. Returns the chosen scale's name (`None` without scales or
    /// when it is unknown). E0241 for a setting that names no parameter, an unknown scale or a
    /// value that is not a number.
    pub(crate) fn spec_params(&mut self, sets: &[Setting]) -> Option<String> {
        let spec = self.spec;
        let family = spec.family.as_ref();
        let anchor = spec.params_span.or(family.map(|f| f.span)).unwrap_or(spec.name.span);
        // the settable names, for "unknown" and "did you mean"
        let mut known: Vec<&str> = Vec::new();
        if let Some(f) = family {
            known.push(SCALE);
            known.extend(f.scales[0].values.iter().map(|p| p.name.text.as_str()));
        }
        known.extend(spec.params.iter().map(|p| p.name.text.as_str()));
        let mut given: HashMap<&str, &Setting> = HashMap::new();
        for s in sets {
            if known.contains(&s.name.as_str()) {
                given.insert(&s.name, s);
                continue;
            }
            let help = match ast::suggest(&s.name, known.iter().copied()) {
                Some(k) => format!("did you mean `{k}`?"),
                None if known.is_empty() => "the spec declares no parameters (`params:`) and no `scales:`".into(),
                None => format!("the spec's parameters are: {}", list(&known, 16)),
            };
            self.diags.push(
                Diagnostic::error(
                    Code::E0241,
                    s.span.unwrap_or(anchor),
                    format!("cannot set `{}`: the spec has no parameter `{}`", s.name, s.name),
                )
                .with_label(match (s.span, known.is_empty()) {
                    (Some(_), _) => "unknown parameter",
                    (None, true) => "this spec has no parameters",
                    (None, false) => "the spec's parameters are declared here",
                })
                .with_help(help),
            );
        }
        let picked = family.map(|f| (f, self.pick_scale(f, given.get(SCALE).copied())));
        let (scale, columns): (Option<String>, &[ParamDecl]) = match picked {
            Some((f, Ok(s))) => {
                let columns = f
                    .scales
                    .iter()
                    .find(|x| x.name.text == s)
                    .map_or(&[][..], |x| &x.values);
                (Some(s), columns)
            }
            // without a scale its parameters are unknown: their uses fail with the scale's error
            Some((f, Err(r))) => {
                for p in &f.scales[0].values {
                    self.failed_params.insert(p.name.text.clone(), r);
                }
                (None, &[])
            }
            None => (None, &[]),
        };
        for p in columns.iter().chain(&spec.params) {
            let v = match given.get(p.name.text.as_str()) {
                Some(s) => self.set_value(s, p.name.span),
                None => self.eval_num(&p.value, &crate::lower::Env::new()),
            };
            match v {
                Ok(v) => {
                    self.params.insert(p.name.text.clone(), v);
                }
                Err(r) => {
                    self.failed_params.insert(p.name.text.clone(), r);
                }
            }
        }
        scale
    }

    /// The scale `set` names, else the spec's default (which reading made sure of); E0241 for
    /// one the spec does not have.
    fn pick_scale(&mut self, f: &Family, set: Option<&Setting>) -> crate::diag::Checked<String> {
        let (name, span) = match (set, &f.default) {
            (Some(s), _) => (s.value.clone(), s.span.unwrap_or(f.span)),
            (None, Some(d)) => (d.text.clone(), d.span),
            (None, None) => {
                return Err(self.err(crate::diag::internal(
                    f.span,
                    "a family without a default scale was read",
                )))
            }
        };
        if f.scales.iter().any(|s| s.name.text == name) {
            return Ok(name);
        }
        let names: Vec<&str> = f.scales.iter().map(|s| s.name.text.as_str()).collect();
        let help = match ast::suggest(&name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? (the scales are: {})", list(&names, 16)),
            None => format!("the spec's scales are: {}", list(&names, 16)),
        };
        Err(self.err(
            Diagnostic::error(Code::E0241, span, format!("unknown scale `{}`", name.escape_debug()))
                .with_label(if set.is_some_and(|s| s.span.is_none()) {
                    "the scales are declared here"
                } else {
                    "not a scale of the spec"
                })
                .with_help(help),
        ))
    }

    /// A setting's number; E0241 when it is not one (at the setting, or at `decl`, the
    /// parameter's declaration, for a command line's).
    fn set_value(&mut self, s: &Setting, decl: Span) -> crate::diag::Checked<Num> {
        match parse_number(&s.value) {
            Some(n) => Ok(n),
            None => Err(self.err(
                Diagnostic::error(
                    Code::E0241,
                    s.span.unwrap_or(decl),
                    format!("cannot set `{}` to `{}`: not a number", s.name, s.value.escape_debug()),
                )
                .with_label(if s.span.is_some() {
                    "expects a number"
                } else {
                    "a number, declared here"
                })
                .with_help(format!("give a number, e.g. `{}=0.5` or `{}=64`", s.name, s.name)),
            )),
        }
    }

    /// The model's name: the spec's `name` with `{scale}` replaced by the scale's name, checked
    /// as a Rust identifier (E0210); E0242 for `{scale}` in a spec without scales.
    pub(crate) fn spec_name(&mut self, scale: Option<&str>) -> String {
        let spec = self.spec;
        let raw = &spec.name.text;
        let name = match (raw.contains(SCALE_IN_NAME), scale, &spec.family) {
            (true, Some(s), _) => raw.replace(SCALE_IN_NAME, s),
            (true, None, None) => {
                self.diags.push(family_error(
                    spec.name.span,
                    format!("the name `{raw}` has `{SCALE_IN_NAME}`, but the spec has no `scales:`"),
                    "no scale to put here",
                    "remove `{scale}` from the name, or declare the spec's scales",
                ));
                return raw.clone();
            }
            // the scale is unknown, and said so
            (true, None, Some(_)) => return raw.clone(),
            (false, ..) => raw.clone(),
        };
        let what = if name == *raw {
            "the spec name".to_string()
        } else {
            format!("the spec name (`{raw}` at scale `{}`)", scale.unwrap_or(""))
        };
        if let Some(e) = check_ident(&name, spec.name.span, &what) {
            self.diags.push(e);
        }
        name
    }
}
