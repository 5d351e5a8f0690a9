//! The YAML front end: spec text to a spanned [`Value`] tree.
//!
//! Built on the event parser of `saphyr-parser`: we assemble the tree ourselves, iteratively, so
//! we can enforce the limits of [`crate::value`] while reading — nesting deeper than
//! [`MAX_DEPTH`] stops at the first collection too deep, and more than [`MAX_NODES`] values
//! (alias expansions included) stops before the expansion is built, so an alias bomb costs
//! nothing. Spans are byte offsets into the text (saphyr counts characters; we convert).
//!
//! Plain scalars resolve per the YAML 1.2 core schema (`null`/`~`/empty, `true`/`false`,
//! decimal/`0x`/`0o` integers, floats); quoted and block scalars are always strings. Tags and
//! several documents in one file are rejected; aliases are supported by copying the anchored
//! value.

// The signatures return the crate's `Diagnostic` by value, as every compiler stage does.
#![allow(clippy::result_large_err)]

use crate::diag::{Code, Diagnostic};
use crate::span::{SourceId, Span};
use crate::value::{Key, Value, ValueKind, MAX_DEPTH, MAX_NODES};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span as YSpan};
use std::collections::HashMap;

/// The minimal spec shown by the "spec is empty" help.
const MINIMAL_SPEC: &str = "a spec is a map with at least `name`, `inputs`, `nodes` and `outputs`, e.g.\n\
    name: Neck\n\
    inputs: { c3: [128, 52, 52] }\n\
    nodes: { p3: { from: c3, conv: { out: 64, kernel: 1 } } }\n\
    outputs: [p3]";

/// Largest spec text read, in bytes (16 MiB): a longer one is `E0006` before any parsing.
/// The biggest shipped spec is a few KB; the value limit [`MAX_NODES`] is reached well below.
pub const MAX_SPEC_BYTES: usize = 16 << 20;

/// The `E0006` diagnostic of a spec of `len` bytes, over [`MAX_SPEC_BYTES`].
pub fn too_large(source: SourceId, len: u64) -> Diagnostic {
    Diagnostic::error(
        Code::E0006,
        Span::new(source, 0, 0),
        format!("the spec is too large ({len} bytes; at most {MAX_SPEC_BYTES} are read)"),
    )
    .with_label("this file")
    .with_help(format!(
        "a spec may be at most {MAX_SPEC_BYTES} bytes; check that this is the right file, or split the spec up"
    ))
}

/// Parses spec bytes: like [`parse`], after checking they are UTF-8.
///
/// # Errors
/// `E0009` if `bytes` is not UTF-8 (span at the first bad byte), otherwise as [`parse`].
pub fn parse_bytes(bytes: &[u8], source: SourceId) -> Result<Value, Diagnostic> {
    if bytes.len() > MAX_SPEC_BYTES {
        return Err(too_large(source, bytes.len() as u64));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, source),
        Err(e) => {
            let at = e.valid_up_to();
            let len = e.error_len().unwrap_or(bytes.len().saturating_sub(at)).max(1);
            Err(Diagnostic::error(
                Code::E0009,
                Span::new(source, at, at + len),
                "the spec is not UTF-8 text",
            )
            .with_label("this byte is not valid UTF-8")
            .with_help("a spec must be a UTF-8 YAML text file; check that this is the right file and not a binary"))
        }
    }
}

/// Parses YAML spec text into a spanned [`Value`] tree.
///
/// # Errors
/// The first problem found, as a [`Diagnostic`]: `E0001` syntax error, `E0002` empty spec,
/// `E0003` number too large or not finite, `E0004` duplicate key, `E0005` nesting too deep,
/// `E0006` spec too large (bytes or values), `E0007` non-scalar map key, `E0008` unsupported YAML (several
/// documents, tags, recursive aliases).
pub fn parse(text: &str, source: SourceId) -> Result<Value, Diagnostic> {
    if text.len() > MAX_SPEC_BYTES {
        return Err(too_large(source, text.len() as u64));
    }
    let mut b = Builder::new(text, source);
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| !is_printable(c)) {
        return Err(Diagnostic::error(
            Code::E0001,
            Span::new(source, at, at + c.len_utf8()),
            format!(
                "YAML syntax error: the spec holds the control character U+{:04X}",
                u32::from(c)
            ),
        )
        .with_label("character not allowed in YAML")
        .with_help("YAML text may not hold control characters; check that this is a text spec and not a binary file"));
    }
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0usize;
    while let Some(next) = parser.next_event() {
        let (event, ys) = next.map_err(|e| b.scan_error(&e))?;
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    let span = b.span(ys);
                    return Err(Diagnostic::error(
                        Code::E0008,
                        span,
                        "a spec file must hold exactly one YAML document",
                    )
                    .with_label("a second document starts here")
                    .with_help("put each spec in its own file, or remove this `---` line and what follows"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if tag.is_some() {
                    return Err(b.tag_error(ys));
                }
                b.scalar(&text, style, anchor, ys)?;
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) if tag.is_some() => {
                let _ = anchor;
                return Err(b.tag_error(ys));
            }
            Event::SequenceStart(anchor, _) => b.open(false, anchor, ys)?,
            Event::MappingStart(anchor, _) => b.open(true, anchor, ys)?,
            Event::SequenceEnd | Event::MappingEnd => b.close(ys)?,
            Event::Alias(id) => b.alias(id, ys)?,
        }
    }
    match b.root {
        Some(v) if v.kind != ValueKind::Null => Ok(v),
        Some(v) => Err(empty_spec(v.span).with_label("this document holds nothing")),
        None => Err(empty_spec(Span::new(source, 0, 0)).with_label("no YAML document here")),
    }
}

/// The `E0005` diagnostic.
fn too_deep(span: Span, label: &str) -> Diagnostic {
    Diagnostic::error(
        Code::E0005,
        span,
        format!("the spec is nested more than {MAX_DEPTH} levels deep"),
    )
    .with_label(label)
    .with_help(format!(
        "lists and maps may nest at most {MAX_DEPTH} levels; flatten the spec"
    ))
}

/// Whether YAML 1.2 allows `c` in a text (`c-printable`).
fn is_printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

/// The `E0002` diagnostic.
fn empty_spec(span: Span) -> Diagnostic {
    Diagnostic::error(Code::E0002, span, "the spec is empty").with_help(MINIMAL_SPEC)
}

/// A value copied by aliases, with what it costs to copy.
struct Anchored {
    /// The value.
    value: Value,
    /// How many nodes it holds (keys included).
    nodes: usize,
    /// Its nesting height (0 for a scalar).
    height: usize,
}

/// A collection being built.
enum FrameKind {
    /// A sequence and its items so far.
    Seq(Vec<Value>),
    /// A map, its entries so far, the key waiting for its value, and the keys seen.
    Map {
        entries: Vec<(Key, Value)>,
        key: Option<Key>,
        seen: HashMap<String, Span>,
    },
}

/// One open collection.
struct Frame {
    /// The collection.
    kind: FrameKind,
    /// Byte offset of its start.
    lo: usize,
    /// Byte offset of the end of its last child (for block collections, whose end event is empty).
    last_hi: usize,
    /// Its anchor id (0 for none).
    anchor: usize,
    /// The node count before it started.
    nodes_before: usize,
    /// The greatest height of its children.
    child_height: usize,
}

/// Assembles the tree from events.
struct Builder<'a> {
    /// The text parsed.
    text: &'a str,
    /// The source id spans get.
    source: SourceId,
    /// Byte offset of each character, if the text is not ASCII (else char index = byte offset).
    char_bytes: Option<Vec<usize>>,
    /// Open collections, outermost first.
    stack: Vec<Frame>,
    /// Completed anchored values by anchor id.
    anchors: HashMap<usize, Anchored>,
    /// Nodes built so far, alias expansions and keys included.
    nodes: usize,
    /// The document's value once complete.
    root: Option<Value>,
}

impl<'a> Builder<'a> {
    /// A builder for `text`.
    fn new(text: &'a str, source: SourceId) -> Self {
        let char_bytes = if text.is_ascii() {
            None
        } else {
            let mut v: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
            v.push(text.len());
            Some(v)
        };
        Builder {
            text,
            source,
            char_bytes,
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            root: None,
        }
    }

    /// Byte offset of a saphyr marker.
    fn byte(&self, m: &Marker) -> usize {
        match &self.char_bytes {
            None => m.index().min(self.text.len()),
            Some(t) => t.get(m.index()).copied().unwrap_or(self.text.len()),
        }
    }

    /// The end of the character starting at byte `at` (`at` itself at the end of the text).
    fn char_end(&self, at: usize) -> usize {
        let len = self
            .text
            .get(at..)
            .and_then(|r| r.chars().next())
            .map_or(0, char::len_utf8);
        at + len
    }

    /// Our span of a saphyr span.
    fn span(&self, ys: YSpan) -> Span {
        Span::new(self.source, self.byte(&ys.start), self.byte(&ys.end))
    }

    /// The `E0001` diagnostic of a saphyr error.
    fn scan_error(&self, e: &ScanError) -> Diagnostic {
        let at = self.byte(e.marker());
        let info = e.info();
        if info.contains("recursion limit") {
            // saphyr's own limit (255 flow levels), hit while it scans ahead of our depth check.
            let end = self.char_end(at);
            return too_deep(Span::new(self.source, at, end), "nested too deep");
        }
        let lower = info.to_ascii_lowercase();
        let help = if lower.contains("tab") {
            "indent with spaces: YAML does not allow tabs for indentation"
        } else if lower.contains("unknown anchor") {
            "define an anchor with `&name` before using it as `*name`"
        } else if lower.contains("unprintable") || lower.contains("byte order mark") {
            "the file holds characters YAML does not allow; check that it is a text spec and not a binary file"
        } else if lower.contains("flow sequence") || lower.contains("bracket") {
            "check that every `[` has a matching `]` and that items are separated by `,`"
        } else if lower.contains("flow mapping") {
            "check that every `{` has a matching `}` and that entries are separated by `,`"
        } else if lower.contains("quoted scalar") {
            "check that every quoted string is closed and its escapes are valid"
        } else {
            "check the indentation and the `key: value` layout near this point"
        };
        let end = self.char_end(at);
        Diagnostic::error(
            Code::E0001,
            Span::new(self.source, at, end),
            format!("YAML syntax error: {info}"),
        )
        .with_label(plain_words(info))
        .with_help(help)
    }

    /// The `E0008` diagnostic of a tagged node.
    fn tag_error(&self, ys: YSpan) -> Diagnostic {
        let span = self.span(ys);
        let lo = span.lo as usize;
        let rest = self.text.get(lo..).unwrap_or("");
        // The node's span may start at an anchor; the tag is the first word starting with `!`.
        let (tag_lo, tag) = rest
            .char_indices()
            .take(4096)
            .find(|&(_, c)| c == '!')
            .map(|(i, _)| {
                let word = rest.get(i..).unwrap_or("");
                let len = word
                    .find(|c: char| c.is_whitespace() || c == ',' || c == ']' || c == '}')
                    .unwrap_or(word.len());
                (lo + i, word.get(..len).unwrap_or(""))
            })
            .unwrap_or((lo, ""));
        let at = Span::new(self.source, tag_lo, tag_lo + tag.len());
        Diagnostic::error(Code::E0008, at, format!("YAML tags like `{tag}` are not supported"))
            .with_label("tag not supported")
            .with_help("remove the tag; write the value plainly, or in quotes to make it a string")
    }

    /// Counts `n` more nodes, failing with `E0006` past the limit.
    fn count(&mut self, n: usize, span: Span, alias: bool) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            let label = if alias {
                "this alias expands the spec past the limit"
            } else {
                "the spec passes the limit here"
            };
            return Err(Diagnostic::error(
                Code::E0006,
                span,
                format!("the spec is too large (more than {MAX_NODES} values)"),
            )
            .with_label(label)
            .with_help(format!(
                "a spec may hold at most {MAX_NODES} values, counting keys and every copy an alias (`*name`) makes; \
                     split it up or use fewer aliases"
            )));
        }
        Ok(())
    }

    /// Whether the next node is a map key.
    fn expecting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                kind: FrameKind::Map { key: None, .. },
                ..
            })
        )
    }

    /// Records a key of the innermost map, failing with `E0004` if it is a duplicate.
    fn key(&mut self, name: String, span: Span) -> Result<(), Diagnostic> {
        self.count(1, span, false)?;
        if let Some(frame) = self.stack.last_mut() {
            frame.last_hi = frame.last_hi.max(span.hi as usize);
            if let FrameKind::Map { key, seen, .. } = &mut frame.kind {
                if let Some(first) = seen.get(&name) {
                    return Err(Diagnostic::error(Code::E0004, span, format!("duplicate key `{name}`"))
                        .with_label("defined again here")
                        .with_secondary(*first, "first defined here")
                        .with_help("a key may appear only once in a map; remove or rename one of them"));
                }
                seen.insert(name.clone(), span);
                *key = Some(Key { name, span });
            }
        }
        Ok(())
    }

    /// Adds a complete value (of nesting `height`) to the innermost collection, or makes it the root.
    fn push(&mut self, value: Value, height: usize) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(value);
                }
            }
            Some(frame) => {
                frame.child_height = frame.child_height.max(height);
                frame.last_hi = frame.last_hi.max(value.span.hi as usize);
                match &mut frame.kind {
                    FrameKind::Seq(items) => items.push(value),
                    FrameKind::Map { entries, key, .. } => {
                        if let Some(k) = key.take() {
                            entries.push((k, value));
                        }
                    }
                }
            }
        }
    }

    /// A scalar event.
    fn scalar(&mut self, raw: &str, style: ScalarStyle, anchor: usize, ys: YSpan) -> Result<(), Diagnostic> {
        let span = self.span(ys);
        if self.expecting_key() {
            if anchor != 0 {
                let value = Value {
                    kind: ValueKind::Str(raw.to_string()),
                    span,
                };
                self.anchors.insert(
                    anchor,
                    Anchored {
                        value,
                        nodes: 1,
                        height: 0,
                    },
                );
            }
            return self.key(raw.to_string(), span);
        }
        self.count(1, span, false)?;
        let kind = if style == ScalarStyle::Plain {
            resolve_plain(raw).map_err(|e| number_error(e, raw, span))?
        } else {
            ValueKind::Str(raw.to_string())
        };
        let value = Value { kind, span };
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    value: value.clone(),
                    nodes: 1,
                    height: 0,
                },
            );
        }
        self.push(value, 0);
        Ok(())
    }

    /// A sequence or map start.
    fn open(&mut self, is_map: bool, anchor: usize, ys: YSpan) -> Result<(), Diagnostic> {
        let span = self.span(ys);
        let what = if is_map { "a map" } else { "a list" };
        if self.expecting_key() {
            return Err(
                Diagnostic::error(Code::E0007, span, format!("a map key must be a plain name, not {what}"))
                    .with_label(format!("{what} used as a key"))
                    .with_help("write the key as a name, like `p3:`"),
            );
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(span, &format!("{what} nested too deep")));
        }
        let nodes_before = self.nodes;
        self.count(1, span, false)?;
        let kind = if is_map {
            FrameKind::Map {
                entries: Vec::new(),
                key: None,
                seen: HashMap::new(),
            }
        } else {
            FrameKind::Seq(Vec::new())
        };
        let lo = span.lo as usize;
        self.stack.push(Frame {
            kind,
            lo,
            last_hi: span.hi as usize,
            anchor,
            nodes_before,
            child_height: 0,
        });
        Ok(())
    }

    /// A sequence or map end.
    fn close(&mut self, ys: YSpan) -> Result<(), Diagnostic> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let end = self.span(ys);
        // Flow collections end at their (one-byte) bracket, whose event also covers any trailing
        // blanks and comment; block ones (empty end event) end at their last child.
        let hi = if end.lo < end.hi {
            end.lo as usize + 1
        } else {
            frame.last_hi
        };
        let span = Span::new(self.source, frame.lo, hi.max(frame.lo));
        let kind = match frame.kind {
            FrameKind::Seq(items) => ValueKind::Seq(items),
            FrameKind::Map { entries, .. } => ValueKind::Map(entries),
        };
        let value = Value { kind, span };
        let height = frame.child_height + 1;
        if frame.anchor != 0 {
            let nodes = self.nodes.saturating_sub(frame.nodes_before);
            self.anchors.insert(
                frame.anchor,
                Anchored {
                    value: value.clone(),
                    nodes,
                    height,
                },
            );
        }
        self.push(value, height);
        Ok(())
    }

    /// An alias: a copy of the anchored value, after checking what it costs.
    fn alias(&mut self, id: usize, ys: YSpan) -> Result<(), Diagnostic> {
        let span = self.span(ys);
        let name = self
            .text
            .get(span.lo as usize..span.hi as usize)
            .unwrap_or("*")
            .to_string();
        let Some(a) = self.anchors.get(&id) else {
            return Err(Diagnostic::error(
                Code::E0008,
                span,
                format!("the alias `{name}` refers to a value that contains it"),
            )
            .with_label("recursive alias")
            .with_help("an alias may only refer to a value that is complete where the alias is used"));
        };
        let (nodes, height) = (a.nodes, a.height);
        if self.expecting_key() {
            let key_name = match &a.value.kind {
                ValueKind::Null => String::new(),
                ValueKind::Bool(b) => b.to_string(),
                ValueKind::Int(i) => i.to_string(),
                ValueKind::Float(f) => f.to_string(),
                ValueKind::Str(s) => s.clone(),
                ValueKind::Seq(_) | ValueKind::Map(_) => {
                    let what = a.value.kind_name();
                    return Err(Diagnostic::error(
                        Code::E0007,
                        span,
                        format!("a map key must be a plain name, not {what}"),
                    )
                    .with_label(format!("this alias is {what}"))
                    .with_help("write the key as a name, like `p3:`"));
                }
            };
            return self.key(key_name, span);
        }
        if self.stack.len() + height > MAX_DEPTH {
            return Err(too_deep(span, "this alias nests its value too deep"));
        }
        self.count(nodes, span, true)?;
        let mut value = match self.anchors.get(&id) {
            Some(a) => a.value.clone(),
            None => return Ok(()),
        };
        value.span = span;
        self.push(value, height);
        Ok(())
    }
}

/// A saphyr error message reworded as a label.
fn plain_words(info: &str) -> String {
    let s = info
        .trim_start_matches("while parsing ")
        .trim_start_matches("while scanning ");
    let s = match s.split_once(", ") {
        Some((_, rest)) if info.starts_with("while ") => rest,
        _ => s,
    };
    s.to_string()
}

/// Why a plain scalar that looks like a number is not one we accept.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NumberError {
    /// An integer outside `i64`, or a float that overflows to infinity.
    TooLarge,
    /// `.inf` / `.nan`.
    NonFinite,
}

/// The `E0003` diagnostic.
fn number_error(e: NumberError, raw: &str, span: Span) -> Diagnostic {
    match e {
        NumberError::TooLarge => Diagnostic::error(Code::E0003, span, format!("number `{raw}` is too large"))
            .with_label("does not fit in a 64-bit integer or float")
            .with_help(format!(
                "numbers must lie between {} and {}; quote it if you meant a string",
                i64::MIN,
                i64::MAX
            )),
        NumberError::NonFinite => Diagnostic::error(Code::E0003, span, format!("`{raw}` is not a finite number"))
            .with_label("infinities and NaN are not allowed")
            .with_help("write a finite number; quote it if you meant a string"),
    }
}

/// Resolves a plain scalar per the YAML 1.2 core schema.
fn resolve_plain(s: &str) -> Result<ValueKind, NumberError> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(ValueKind::Null),
        "true" | "True" | "TRUE" => return Ok(ValueKind::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(ValueKind::Bool(false)),
        _ => {}
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || (s == unsigned && matches!(s, ".nan" | ".NaN" | ".NAN")) {
        return Err(NumberError::NonFinite);
    }
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map(ValueKind::Int).map_err(|_| NumberError::TooLarge);
    }
    for (prefix, radix, ok) in [
        ("0x", 16, u8::is_ascii_hexdigit as fn(&u8) -> bool),
        ("0o", 8, |b: &u8| (b'0'..=b'7').contains(b)),
    ] {
        if let Some(digits) = s.strip_prefix(prefix) {
            if !digits.is_empty() && digits.as_bytes().iter().all(ok) {
                return i64::from_str_radix(digits, radix)
                    .map(ValueKind::Int)
                    .map_err(|_| NumberError::TooLarge);
            }
        }
    }
    if is_core_float(s) {
        return match s.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(ValueKind::Float(f)),
            _ => Err(NumberError::TooLarge),
        };
    }
    Ok(ValueKind::Str(s.to_string()))
}

/// Whether `s` matches `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`.
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Result<ValueKind, NumberError> {
        resolve_plain(s)
    }

    #[test]
    fn core_schema() {
        assert_eq!(kind(""), Ok(ValueKind::Null));
        assert_eq!(kind("~"), Ok(ValueKind::Null));
        assert_eq!(kind("TRUE"), Ok(ValueKind::Bool(true)));
        assert_eq!(kind("False"), Ok(ValueKind::Bool(false)));
        assert_eq!(kind("-12"), Ok(ValueKind::Int(-12)));
        assert_eq!(kind("+7"), Ok(ValueKind::Int(7)));
        assert_eq!(kind("0x1F"), Ok(ValueKind::Int(31)));
        assert_eq!(kind("0o17"), Ok(ValueKind::Int(15)));
        assert_eq!(kind("-9223372036854775808"), Ok(ValueKind::Int(i64::MIN)));
        assert_eq!(kind("9223372036854775808"), Err(NumberError::TooLarge));
        assert_eq!(kind("0xFFFFFFFFFFFFFFFF"), Err(NumberError::TooLarge));
        assert_eq!(kind("1.5"), Ok(ValueKind::Float(1.5)));
        assert_eq!(kind(".5"), Ok(ValueKind::Float(0.5)));
        assert_eq!(kind("1."), Ok(ValueKind::Float(1.0)));
        assert_eq!(kind("1e-4"), Ok(ValueKind::Float(1e-4)));
        assert_eq!(kind("-0.5"), Ok(ValueKind::Float(-0.5)));
        assert_eq!(kind("1e400"), Err(NumberError::TooLarge));
        assert_eq!(kind(".inf"), Err(NumberError::NonFinite));
        assert_eq!(kind("-.Inf"), Err(NumberError::NonFinite));
        assert_eq!(kind(".NaN"), Err(NumberError::NonFinite));
        for s in [
            "inf", "nan", "1_000", "0x", "0b101", "1e", ".", "-", "e5", "1.2.3", "neck.p3", "32..2048", "yes",
        ] {
            assert_eq!(kind(s), Ok(ValueKind::Str(s.to_string())), "{s}");
        }
    }
}
