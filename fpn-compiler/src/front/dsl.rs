//! The token front end: the body of an `fpn!{…}` invocation to a spanned [`Value`] tree.
//!
//! The body is a map written without its outer braces, `key: value, key: value` (trailing comma
//! optional). A value is a literal (int, float, string; `-` before a number negates it),
//! `true`/`false`/`null`, `[a, b]` (a sequence), `{k: v}` (a map), an identifier (a string), or
//! any other run of tokens up to the next `,` of its level, which becomes the string of the tokens
//! written without spaces (`neck.p3`, `32..2048`, `H/2`, `leaky_relu(0.1)`). Keys are identifiers
//! (Rust keywords included: `match:`, `type:`), string literals or integer literals.
//!
//! Every token (brackets included, opening and closing) gets an index into
//! [`Parsed::spans`]; a value's [`Span`] is the range of token indices it covers. The returned
//! [`Source`] prints the tokens as text with the byte range of each, so
//! [`render`](crate::diag::render) can quote a snippet for a token span.

use crate::diag::{Code, Diagnostic};
use crate::span::{Source, SourceId, SourceKind, Span};
use crate::value::{Key, Value, ValueKind, MAX_DEPTH, MAX_NODES};
use proc_macro2::{Delimiter, Literal, Spacing, TokenStream, TokenTree};
use std::collections::HashMap;

/// The result of parsing macro tokens.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The spec as a value tree (a map); its spans are token indices into `spans`.
    pub value: Value,
    /// The `proc_macro2::Span` of each token, by token index.
    pub spans: Vec<proc_macro2::Span>,
    /// The tokens as a [`SourceKind::Tokens`] source, for diagnostics.
    pub source: Source,
}

/// Parses the body of `fpn!{…}` into a value tree. `source` is the id the caller will give
/// [`Parsed::source`] in its [`SourceMap`](crate::span::SourceMap); `name` its display name.
///
/// # Errors
/// Every problem found: `E0010` syntax errors (as many as can be found), `E0004` duplicate keys,
/// `E0003` integers too large for `i64` or non-finite floats, and `E0005` (nesting deeper than
/// [`MAX_DEPTH`]) or `E0006` (more than [`MAX_NODES`] values), which stop the parse.
pub fn parse(tokens: TokenStream, source: SourceId, name: &str) -> Result<Parsed, Vec<Diagnostic>> {
    let (toks, texts, spans, src) = table(tokens, name);
    let mut p = P {
        toks: &toks,
        texts: &texts,
        source,
        diags: Vec::new(),
        nodes: 0,
    };
    let root = match p.entries(0, toks.len(), 1) {
        Ok(entries) => Some(Value {
            kind: ValueKind::Map(entries),
            span: Span::new(source, 0, toks.len()),
        }),
        Err(Fatal) => None,
    };
    match root {
        Some(value) if p.diags.is_empty() => Ok(Parsed {
            value,
            spans,
            source: src,
        }),
        _ => Err(p.diags),
    }
}

/// The token table of `tokens`, exactly as [`parse`] builds it: each token's
/// `proc_macro2::Span` by index, and the [`SourceKind::Tokens`] source named `name`.
///
/// [`parse`] returns these only on success; on error, call this on the same tokens to map the
/// diagnostics' token spans back to `proc_macro2::Span`s or to [`render`](crate::diag::render) them.
pub fn token_table(tokens: TokenStream, name: &str) -> (Vec<proc_macro2::Span>, Source) {
    let (_, _, spans, source) = table(tokens, name);
    (spans, source)
}

/// Flattens the tokens and lays them out as text.
fn table(tokens: TokenStream, name: &str) -> (Vec<Tok>, Vec<String>, Vec<proc_macro2::Span>, Source) {
    let (toks, spans) = flatten(tokens);
    let texts: Vec<String> = toks.iter().map(Tok::text).collect();
    let (text, offsets) = layout(&toks, &texts);
    let source = Source {
        name: name.to_string(),
        kind: SourceKind::Tokens { text, offsets },
    };
    (toks, texts, spans, source)
}

/// One token of the flattened input.
#[derive(Clone, Debug)]
enum Tok {
    /// An identifier or keyword, as written (`r#type` keeps its `r#`).
    Ident(String),
    /// A punctuation character.
    Punct(char, Spacing),
    /// A literal.
    Lit(Literal),
    /// An opening delimiter and the index of its closing one.
    Open(Delimiter, usize),
    /// A closing delimiter.
    Close(Delimiter),
}

impl Tok {
    /// How the token is written.
    fn text(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::Punct(c, _) => c.to_string(),
            Tok::Lit(l) => l.to_string(),
            Tok::Open(d, _) => open_char(*d).to_string(),
            Tok::Close(d) => close_char(*d).to_string(),
        }
    }

    /// Whether this is the punctuation `c`.
    fn is_punct(&self, c: char) -> bool {
        matches!(self, Tok::Punct(p, _) if *p == c)
    }
}

/// The opening character of a delimiter.
fn open_char(d: Delimiter) -> &'static str {
    match d {
        Delimiter::Parenthesis => "(",
        Delimiter::Brace => "{",
        Delimiter::Bracket => "[",
        Delimiter::None => "",
    }
}

/// The closing character of a delimiter.
fn close_char(d: Delimiter) -> &'static str {
    match d {
        Delimiter::Parenthesis => ")",
        Delimiter::Brace => "}",
        Delimiter::Bracket => "]",
        Delimiter::None => "",
    }
}

/// Flattens a token tree into a token list (groups become open/close tokens; invisible groups
/// are transparent), without recursion.
fn flatten(tokens: TokenStream) -> (Vec<Tok>, Vec<proc_macro2::Span>) {
    type Level = (
        proc_macro2::token_stream::IntoIter,
        Option<(usize, Delimiter, proc_macro2::Span)>,
    );
    let mut toks = Vec::new();
    let mut spans = Vec::new();
    let mut stack: Vec<Level> = vec![(tokens.into_iter(), None)];
    while let Some((iter, _)) = stack.last_mut() {
        match iter.next() {
            Some(TokenTree::Group(g)) => {
                if g.delimiter() == Delimiter::None {
                    stack.push((g.stream().into_iter(), None));
                } else {
                    let open = toks.len();
                    toks.push(Tok::Open(g.delimiter(), open));
                    spans.push(g.span_open());
                    stack.push((g.stream().into_iter(), Some((open, g.delimiter(), g.span_close()))));
                }
            }
            Some(TokenTree::Ident(i)) => {
                toks.push(Tok::Ident(i.to_string()));
                spans.push(i.span());
            }
            Some(TokenTree::Punct(p)) => {
                toks.push(Tok::Punct(p.as_char(), p.spacing()));
                spans.push(p.span());
            }
            Some(TokenTree::Literal(l)) => {
                spans.push(l.span());
                toks.push(Tok::Lit(l));
            }
            None => {
                if let Some((_, Some((open, delim, span)))) = stack.pop() {
                    let close = toks.len();
                    toks.push(Tok::Close(delim));
                    spans.push(span);
                    if let Some(Tok::Open(_, c)) = toks.get_mut(open) {
                        *c = close;
                    }
                }
            }
        }
    }
    (toks, spans)
}

/// Prints the tokens readably; returns the text and the byte range of each token in it.
fn layout(toks: &[Tok], texts: &[String]) -> (String, Vec<(usize, usize)>) {
    let mut text = String::new();
    let mut offsets = Vec::with_capacity(toks.len());
    let mut prev: Option<&Tok> = None;
    for (tok, t) in toks.iter().zip(texts) {
        let tight = matches!(
            (prev, tok),
            (None | Some(Tok::Open(..) | Tok::Punct('.', _)), _)
                | (_, Tok::Close(_) | Tok::Punct(',' | ':' | '.', _))
                | (Some(Tok::Punct(_, Spacing::Joint)), Tok::Punct(..))
                | (Some(Tok::Punct('-', _)), Tok::Lit(_))
                | (Some(Tok::Ident(_)), Tok::Open(Delimiter::Parenthesis, _))
        );
        if !tight {
            text.push(' ');
        }
        let lo = text.len();
        text.push_str(t);
        offsets.push((lo, text.len()));
        prev = Some(tok);
    }
    (text, offsets)
}

/// A problem that stops the parse (nesting too deep, spec too large); its diagnostic is pushed.
struct Fatal;

/// The parser state.
struct P<'a> {
    /// The tokens.
    toks: &'a [Tok],
    /// Their texts.
    texts: &'a [String],
    /// The source id spans get.
    source: SourceId,
    /// Problems found so far.
    diags: Vec<Diagnostic>,
    /// Values and keys built so far.
    nodes: usize,
}

impl P<'_> {
    /// The span of tokens `lo..hi`.
    fn span(&self, lo: usize, hi: usize) -> Span {
        Span::new(self.source, lo, hi)
    }

    /// The span of token `i` (the last token if `i` is past the end).
    fn at(&self, i: usize) -> Span {
        let i = i.min(self.toks.len().saturating_sub(1));
        self.span(i, i + 1)
    }

    /// Pushes an `E0010` syntax error.
    fn syntax(&mut self, at: usize, message: String, label: &str, help: &str) {
        let span = self.at(at);
        self.diags.push(
            Diagnostic::error(Code::E0010, span, message)
                .with_label(label)
                .with_help(help),
        );
    }

    /// The text of token `i`.
    fn text(&self, i: usize) -> &str {
        self.texts.get(i).map_or("", String::as_str)
    }

    /// Counts one value or key, failing with `E0006` past the limit.
    fn count(&mut self, at: usize) -> Result<(), Fatal> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            let span = self.at(at);
            self.diags.push(
                Diagnostic::error(
                    Code::E0006,
                    span,
                    format!("the spec is too large (more than {MAX_NODES} values)"),
                )
                .with_label("the spec passes the limit here")
                .with_help(format!(
                    "a spec may hold at most {MAX_NODES} values and keys; split it up"
                )),
            );
            return Err(Fatal);
        }
        Ok(())
    }

    /// Index of the next `,` of this level at or after `i`, or `hi`.
    fn run_end(&self, mut i: usize, hi: usize) -> usize {
        while i < hi {
            match self.toks.get(i) {
                Some(t) if t.is_punct(',') => return i,
                Some(Tok::Open(_, close)) => i = (*close).max(i) + 1,
                _ => i += 1,
            }
        }
        hi
    }

    /// In a map's value run `s..e`, the index of a `key` followed by a lone `:` (a missing `,`).
    fn missing_comma(&self, s: usize, e: usize) -> Option<usize> {
        let mut i = s;
        while i < e {
            match self.toks.get(i) {
                Some(Tok::Open(_, close)) => i = (*close).max(i) + 1,
                Some(Tok::Punct(':', Spacing::Alone)) => {
                    let after_joint = i > s && matches!(self.toks.get(i - 1), Some(Tok::Punct(':', Spacing::Joint)));
                    if !after_joint && i > s {
                        return Some(i - 1);
                    }
                    i += 1;
                }
                _ => i += 1,
            }
        }
        None
    }

    /// The entries of a map body `lo..hi` at nesting `depth`.
    fn entries(&mut self, lo: usize, hi: usize, depth: usize) -> Result<Vec<(Key, Value)>, Fatal> {
        let mut entries = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut i = lo;
        while i < hi {
            let (entry, next) = self.entry(i, hi, depth, &mut seen)?;
            entries.extend(entry);
            i = next.max(i + 1);
            if next < hi && self.toks.get(next).is_some_and(|t| t.is_punct(',')) {
                i = next + 1;
            }
        }
        Ok(entries)
    }

    /// One `key: value` entry starting at `i`; returns it (unless in error) and where it ends.
    fn entry(
        &mut self,
        i: usize,
        hi: usize,
        depth: usize,
        seen: &mut HashMap<String, Span>,
    ) -> Result<(Option<(Key, Value)>, usize), Fatal> {
        let Some(name) = self.key_name(i) else {
            let found = self.text(i).to_string();
            self.syntax(
                i,
                format!("expected a key, found `{found}`"),
                "expected a key here",
                "write entries as `key: value`, separated by `,`; a key is a name, a string or an integer",
            );
            return Ok((None, self.run_end(i, hi)));
        };
        let key_span = self.at(i);
        let colon = i + 1;
        let is_colon = colon < hi && matches!(self.toks.get(colon), Some(Tok::Punct(':', Spacing::Alone)));
        if !is_colon {
            if colon < hi {
                let found = self.text(colon).to_string();
                self.syntax(
                    colon,
                    format!("expected `:` after `{name}`, found `{found}`"),
                    "expected `:` here",
                    "write entries as `key: value`",
                );
            } else {
                self.syntax(
                    i,
                    format!("expected `:` and a value after `{name}`"),
                    "this key has no value",
                    "write entries as `key: value`",
                );
            }
            return Ok((None, self.run_end(colon.min(hi), hi)));
        }
        self.count(i)?;
        let duplicate = seen.get(&name).copied();
        if let Some(first) = duplicate {
            self.diags.push(
                Diagnostic::error(Code::E0004, key_span, format!("duplicate key `{name}`"))
                    .with_label("defined again here")
                    .with_secondary(first, "first defined here")
                    .with_help("a key may appear only once in a map; remove or rename one of them"),
            );
        } else {
            seen.insert(name.clone(), key_span);
        }
        let s = colon + 1;
        let mut e = self.run_end(s, hi);
        if let Some(k) = self.missing_comma(s, e) {
            let key = self.text(k).to_string();
            if k == s {
                self.syntax(
                    k,
                    format!("expected a value after `{name}:`, found `{key}:`"),
                    "a new entry starts here",
                    "write entries as `key: value`, separated by `,`",
                );
                return Ok((None, k));
            }
            self.syntax(
                k,
                format!("expected `,` before `{key}`"),
                "a new entry starts here",
                "separate the entries of a map with `,`",
            );
            e = k;
        }
        if s >= e {
            self.syntax(
                colon,
                format!("expected a value after `{name}:`"),
                "no value after this `:`",
                "write entries as `key: value`",
            );
            return Ok((None, e));
        }
        let value = self.value(s, e, depth)?;
        let entry = if duplicate.is_some() {
            None
        } else {
            Some((Key { name, span: key_span }, value))
        };
        Ok((entry, e))
    }

    /// The key at token `i`, if it is one: an identifier, a string or an integer literal.
    fn key_name(&self, i: usize) -> Option<String> {
        match self.toks.get(i)? {
            Tok::Ident(s) => Some(s.strip_prefix("r#").unwrap_or(s).to_string()),
            Tok::Lit(l) => match syn::Lit::new(l.clone()) {
                syn::Lit::Str(s) => Some(s.value()),
                syn::Lit::Int(n) => Some(n.base10_digits().to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The items of a sequence body `lo..hi` at nesting `depth`.
    fn items(&mut self, lo: usize, hi: usize, depth: usize) -> Result<Vec<Value>, Fatal> {
        let mut items = Vec::new();
        let mut i = lo;
        while i < hi {
            let e = self.run_end(i, hi);
            if e == i {
                self.syntax(
                    i,
                    "expected a value before `,`".to_string(),
                    "no value here",
                    "separate the items of a list with single `,`",
                );
            } else {
                items.push(self.value(i, e, depth)?);
            }
            i = e + 1;
        }
        Ok(items)
    }

    /// The value of the token run `s..e` (non-empty), inside a collection at nesting `depth`.
    fn value(&mut self, s: usize, e: usize, depth: usize) -> Result<Value, Fatal> {
        self.count(s)?;
        let span = self.span(s, e);
        let first = self.toks.get(s).cloned();
        let kind = match first {
            Some(Tok::Open(d @ (Delimiter::Bracket | Delimiter::Brace), close)) if close + 1 == e => {
                if depth >= MAX_DEPTH {
                    let what = if d == Delimiter::Brace { "map" } else { "list" };
                    self.diags.push(
                        Diagnostic::error(
                            Code::E0005,
                            self.at(s),
                            format!("the spec is nested more than {MAX_DEPTH} levels deep"),
                        )
                        .with_label(format!("this {what} is nested too deep"))
                        .with_help(format!(
                            "lists and maps may nest at most {MAX_DEPTH} levels; flatten the spec"
                        )),
                    );
                    return Err(Fatal);
                }
                if d == Delimiter::Brace {
                    ValueKind::Map(self.entries(s + 1, close, depth + 1)?)
                } else {
                    ValueKind::Seq(self.items(s + 1, close, depth + 1)?)
                }
            }
            Some(Tok::Lit(l)) if e == s + 1 => self.literal(&l, false, span),
            Some(Tok::Ident(id)) if e == s + 1 => match id.as_str() {
                "true" => ValueKind::Bool(true),
                "false" => ValueKind::Bool(false),
                "null" => ValueKind::Null,
                other => ValueKind::Str(other.strip_prefix("r#").unwrap_or(other).to_string()),
            },
            Some(Tok::Punct('-', _)) if e == s + 2 => match self.toks.get(s + 1) {
                Some(Tok::Lit(l)) if is_number(l) => {
                    let l = l.clone();
                    self.literal(&l, true, span)
                }
                _ => ValueKind::Str(self.concat(s, e)),
            },
            _ => {
                // Two words or numbers side by side (`My Model`, `32 32`) are a missing comma,
                // not one name: runs only join punctuation (`neck.p3`, `32..2048`, `2*cout`).
                let word = |t: Option<&Tok>| matches!(t, Some(Tok::Ident(_) | Tok::Lit(_)));
                if let Some(k) =
                    (s..e.saturating_sub(1)).find(|&k| word(self.toks.get(k)) && word(self.toks.get(k + 1)))
                {
                    self.diags.push(
                        Diagnostic::error(Code::E0010, self.at(k + 1), "expected `,` between two values")
                            .with_label("a new value starts here")
                            .with_help(
                                "separate values with `,`; names are single identifiers (`MyModel`, not `My Model`)",
                            ),
                    );
                }
                ValueKind::Str(self.concat(s, e))
            }
        };
        Ok(Value { kind, span })
    }

    /// Tokens `s..e` written without spaces.
    fn concat(&self, s: usize, e: usize) -> String {
        self.texts.get(s..e).map(|t| t.concat()).unwrap_or_default()
    }

    /// The value of a literal (negated if `neg`); numbers out of range push `E0003`.
    fn literal(&mut self, l: &Literal, neg: bool, span: Span) -> ValueKind {
        let shown = if neg { format!("-{l}") } else { l.to_string() };
        match syn::Lit::new(l.clone()) {
            syn::Lit::Str(s) => ValueKind::Str(s.value()),
            syn::Lit::Char(c) => ValueKind::Str(c.value().to_string()),
            syn::Lit::Bool(b) => ValueKind::Bool(b.value),
            syn::Lit::Int(n) if matches!(n.suffix(), "f32" | "f64") => self.float(n.base10_digits(), neg, &shown, span),
            syn::Lit::Int(n) => {
                let v = n.base10_digits().parse::<i128>().ok().map(|v| if neg { -v } else { v });
                match v.and_then(|v| i64::try_from(v).ok()) {
                    Some(v) => ValueKind::Int(v),
                    None => {
                        self.too_large(&shown, span);
                        ValueKind::Null
                    }
                }
            }
            syn::Lit::Float(f) => self.float(f.base10_digits(), neg, &shown, span),
            _ => ValueKind::Str(shown),
        }
    }

    /// The value of a float literal's digits.
    fn float(&mut self, digits: &str, neg: bool, shown: &str, span: Span) -> ValueKind {
        match digits.parse::<f64>() {
            Ok(f) if f.is_finite() => ValueKind::Float(if neg { -f } else { f }),
            _ => {
                self.too_large(shown, span);
                ValueKind::Null
            }
        }
    }

    /// Pushes an `E0003`.
    fn too_large(&mut self, shown: &str, span: Span) {
        self.diags.push(
            Diagnostic::error(Code::E0003, span, format!("number `{shown}` is too large"))
                .with_label("does not fit in a 64-bit integer or float")
                .with_help(format!(
                    "numbers must lie between {} and {}; quote it if you meant a string",
                    i64::MIN,
                    i64::MAX
                )),
        );
    }
}

/// Whether a literal is an integer or float literal.
fn is_number(l: &Literal) -> bool {
    matches!(syn::Lit::new(l.clone()), syn::Lit::Int(_) | syn::Lit::Float(_))
}
