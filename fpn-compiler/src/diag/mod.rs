//! Diagnostics: every error and warning of a compilation, each with the span of the node at fault.
//!
//! The library returns [`Diagnostic`] values; [`render`] turns them into rustc-style text with
//! `file:line:col`, a source snippet, labels and a `help:` line. The CLI, `include_spec!` and the
//! build.rs [`crate::Builder`] all print through it, so a golden test of `render` covers every door.

mod codes;
pub mod explain;

pub use codes::Code;

use crate::span::{SourceMap, Span};
use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label as CsLabel};
use codespan_reporting::term::{self, termcolor};

/// Proof that an error was reported: the only way to make one is [`Reported::push`], which adds
/// the error to a list. A pass that fails returns `Err(Reported)` ([`Checked`]), so a failure
/// without an error to show for it does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a Reported proves an error was pushed; return it as Err"]
pub struct Reported(());

impl Reported {
    /// Pushes the error `d` onto `diags` and returns the proof.
    pub fn push(diags: &mut Vec<Diagnostic>, d: Diagnostic) -> Reported {
        debug_assert!(d.is_error(), "only errors make a Reported: {}", d.code);
        diags.push(d);
        Reported(())
    }
}

/// E0100: an invariant of the compiler did not hold (a bug, not a problem of the spec).
pub fn internal(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(Code::E0100, span, format!("internal compiler error: {what}"))
        .with_label("while compiling this")
        .with_help("this is a bug in fpn, not in the spec: please report it with the spec")
}

/// The result of a step that reports its own errors.
pub type Checked<T> = Result<T, Reported>;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Severity {
    /// A warning: compilation goes on.
    Warning,
    /// An error: no code is generated.
    Error,
}

/// A secondary location with a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What is there.
    pub message: String,
}

/// One error or warning.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, e.g. `E0301`; listed in docs/diagnostics.md.
    pub code: Code,
    /// The one-line message.
    pub message: String,
    /// The primary location.
    pub span: Span,
    /// What to say at the primary location.
    pub label: String,
    /// Other related locations.
    pub secondary: Vec<Label>,
    /// Extra facts (shapes, which input size causes it).
    pub notes: Vec<String>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new error at `span`.
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// A new warning at `span`.
    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Self::error(code, span, message)
        }
    }

    /// Sets the primary label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// The facts of a line of text: its `quoted` names and its words holding digits (`16`,
/// `16×32×32`), without surrounding punctuation.
fn facts(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| matches!(c, ',' | ';' | ':' | '(' | ')' | '[' | ']' | '.')))
        .filter(|w| w.starts_with('`') || w.chars().any(|c| c.is_ascii_digit()))
        .collect()
}

/// Whether `line` adds nothing to `text`: it appears in it verbatim, or it states numbers and
/// every one of its facts is already in `text` (a label "16 vs 32 channels" under the message "…: 16 vs
/// 32"; "`stem` is 16×32×32" under the note "`stem`: 16×32×32, …"). The snippet rendering of
/// the CLI shows labels at their places; a one-message form (the macros' errors, the language
/// server's diagnostics) would say them twice.
pub fn says_nothing_new(text: &str, line: &str) -> bool {
    if text.contains(line) {
        return true;
    }
    let known = facts(text);
    let new = facts(line);
    // names alone can be in a new relation ("`b` reads `a`"): only a line with numbers
    // (sizes, shapes, counts) is dropped on its facts
    new.iter().any(|f| f.chars().any(|c| c.is_ascii_digit())) && new.iter().all(|f| known.contains(f))
}

/// How many diagnostics [`render`] prints in full; the others are counted in one closing line,
/// so a spec with ten thousand errors prints a bounded amount of text.
pub const MAX_RENDERED: usize = 100;

/// Longest source line (in bytes) quoted whole; a longer one is quoted as windows of
/// [`LONG_LINE_CONTEXT`] bytes either side of each label, joined by `…`.
pub const MAX_LINE: usize = 240;

/// Bytes of a long line kept on each side of a label's start and end.
pub const LONG_LINE_CONTEXT: usize = 60;

/// Renders diagnostics as rustc-style text. `color` adds ANSI colours (use only on a terminal).
///
/// At most [`MAX_RENDERED`] diagnostics are printed, then a line counting the rest. Source
/// lines longer than [`MAX_LINE`] bytes are quoted around the labels only, so the output grows
/// with the number of diagnostics shown, not with the length of the lines they point into.
/// Lines end at `\n`, `\r\n` or a lone `\r`; columns are in characters and do not count a
/// byte-order mark.
pub fn render(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let texts: Vec<(&str, &str, Vec<usize>)> = sources
        .iter()
        .map(|(_, s)| (s.name.as_str(), s.text(), crate::span::line_starts(s.text())))
        .collect();
    let config = term::Config::default();
    let mut buf = if color {
        termcolor::Buffer::ansi()
    } else {
        termcolor::Buffer::no_color()
    };
    for d in diags.iter().take(MAX_RENDERED) {
        let mut cs = match d.severity {
            Severity::Error => CsDiag::error(),
            Severity::Warning => CsDiag::warning(),
        }
        .with_code(d.code.as_str())
        .with_message(&d.message);
        // (source index, byte range, message, primary)
        let raw: Vec<(usize, std::ops::Range<usize>, &str, bool)> = std::iter::once((d.span, d.label.as_str(), true))
            .chain(d.secondary.iter().map(|s| (s.span, s.message.as_str(), false)))
            .filter_map(|(span, msg, primary)| {
                let src = sources.get(span.source)?;
                Some((span.source.0 as usize, src.byte_range(span), msg, primary))
            })
            .collect();
        let files = Excerpts::new(&texts, &raw);
        let labels: Vec<CsLabel<usize>> = raw
            .iter()
            .map(|(src, range, msg, primary)| {
                let fid = files.file_of(*src);
                let r = files.map_range(fid, range.clone());
                let l = if *primary {
                    CsLabel::primary(fid, r)
                } else {
                    CsLabel::secondary(fid, r)
                };
                l.with_message(*msg)
            })
            .collect();
        cs = cs.with_labels(labels);
        let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
        if let Some(h) = &d.help {
            notes.push(format!("help: {h}"));
        }
        cs = cs.with_notes(notes);
        // Rendering into an in-memory buffer only fails on a span outside its file, which
        // `byte_range` already clamps; fall back to the bare message all the same.
        if term::emit_to_write_style(&mut buf, &config, &files, &cs).is_err() {
            use std::io::Write;
            let _ = writeln!(
                buf,
                "{}[{}]: {}",
                if d.is_error() { "error" } else { "warning" },
                d.code,
                d.message
            );
        }
    }
    let mut out = String::from_utf8_lossy(buf.as_slice()).into_owned();
    if diags.len() > MAX_RENDERED {
        let rest = &diags[MAX_RENDERED..];
        let errors = rest.iter().filter(|d| d.is_error()).count();
        let warnings = rest.len() - errors;
        let mut parts = Vec::new();
        if errors > 0 {
            parts.push(format!("{errors} more error{}", if errors == 1 { "" } else { "s" }));
        }
        if warnings > 0 {
            parts.push(format!(
                "{warnings} more warning{}",
                if warnings == 1 { "" } else { "s" }
            ));
        }
        out.push_str(&format!(
            "note: {} not shown (only the first {MAX_RENDERED} diagnostics are printed)\n\n",
            parts.join(" and ")
        ));
    }
    out
}

/// One segment of an original line shown in an excerpt: original bytes `orig`, starting at
/// byte `at` of the excerpt text.
struct Segment {
    orig: std::ops::Range<usize>,
    at: usize,
}

/// One original line quoted in an excerpt.
struct ExcerptLine {
    /// Index of the line in the original text.
    index: usize,
    /// Byte range of the quoted line in the excerpt text (without its `\n`).
    range: std::ops::Range<usize>,
    /// Byte offset of the line's start in the original text.
    orig_start: usize,
    /// The parts of the line shown.
    segments: Vec<Segment>,
}

/// The lines of one source a diagnostic quotes, long lines cut to windows around the labels.
struct Excerpt<'a> {
    name: &'a str,
    /// The original text (for columns).
    orig: &'a str,
    /// The quoted lines, each ending in `\n`.
    text: String,
    /// Quoted lines by increasing index.
    lines: Vec<ExcerptLine>,
}

/// The excerpts of one diagnostic, one per source it points into; a codespan [`Files`]
/// whose line indices and columns are those of the original text.
///
/// [`Files`]: codespan_reporting::files::Files
struct Excerpts<'a> {
    /// (source index, excerpt)
    files: Vec<(usize, Excerpt<'a>)>,
}

/// End of the content of line `i` (before its line break).
fn content_end(text: &str, starts: &[usize], i: usize) -> usize {
    let end = starts.get(i + 1).copied().unwrap_or(text.len());
    let b = text.as_bytes();
    let mut e = end;
    if e > starts[i] && b[e - 1] == b'\n' {
        e -= 1;
    }
    if e > starts[i] && b[e - 1] == b'\r' {
        e -= 1;
    }
    e
}

/// The line of byte `at`.
fn line_of(starts: &[usize], at: usize) -> usize {
    starts.partition_point(|&s| s <= at).max(1) - 1
}

fn floor_char(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_char(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

impl<'a> Excerpts<'a> {
    fn new(
        texts: &'a [(&'a str, &'a str, Vec<usize>)],
        labels: &[(usize, std::ops::Range<usize>, &str, bool)],
    ) -> Self {
        let mut files: Vec<(usize, Excerpt<'a>)> = Vec::new();
        let mut srcs: Vec<usize> = labels.iter().map(|l| l.0).collect();
        srcs.dedup();
        for src in srcs {
            if files.iter().any(|(s, _)| *s == src) {
                continue;
            }
            let Some((name, text, starts)) = texts.get(src) else {
                continue;
            };
            // lines to quote, with the byte positions that must be visible on each
            let mut points: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
            for (_, r, _, _) in labels.iter().filter(|l| l.0 == src) {
                let (a, b) = (line_of(starts, r.start), line_of(starts, r.end));
                points.entry(a).or_default().push(r.start);
                points.entry(b).or_default().push(r.end);
                if b > a {
                    // the context codespan shows of a multi-line label
                    for l in (a + 1..b).take(3) {
                        points.entry(l).or_default();
                    }
                    points.entry(b - 1).or_default();
                }
            }
            // a single unquoted line between two quoted ones is shown too
            let keys: Vec<usize> = points.keys().copied().collect();
            for w in keys.windows(2) {
                if w[1] == w[0] + 2 {
                    points.entry(w[0] + 1).or_default();
                }
            }
            let mut ex = Excerpt {
                name,
                orig: text,
                text: String::new(),
                lines: Vec::new(),
            };
            for (index, pts) in points {
                let start = starts[index];
                let end = content_end(text, starts, index);
                let mut windows: Vec<std::ops::Range<usize>> = if end - start <= MAX_LINE {
                    std::iter::once(start..end).collect()
                } else if pts.is_empty() {
                    std::iter::once(start..floor_char(text, start + MAX_LINE)).collect()
                } else {
                    let mut w: Vec<std::ops::Range<usize>> = pts
                        .iter()
                        .map(|&p| {
                            let p = p.clamp(start, end);
                            floor_char(text, p.saturating_sub(LONG_LINE_CONTEXT).max(start))
                                ..ceil_char(text, (p + LONG_LINE_CONTEXT).min(end))
                        })
                        .collect();
                    w.sort_by_key(|r| r.start);
                    w
                };
                // merge overlapping or nearly touching windows
                let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
                for r in windows.drain(..) {
                    match merged.last_mut() {
                        Some(m) if r.start <= m.end + 8 => m.end = m.end.max(r.end),
                        _ => merged.push(r),
                    }
                }
                let vstart = ex.text.len();
                let mut segments = Vec::new();
                let mut prev = start;
                for r in merged {
                    if r.start > prev {
                        ex.text.push('…');
                    }
                    segments.push(Segment {
                        orig: r.clone(),
                        at: ex.text.len(),
                    });
                    ex.text.push_str(&text[r.clone()]);
                    prev = r.end;
                }
                if prev < end {
                    ex.text.push('…');
                }
                let vend = ex.text.len();
                ex.text.push('\n');
                ex.lines.push(ExcerptLine {
                    index,
                    range: vstart..vend,
                    orig_start: start,
                    segments,
                });
            }
            files.push((src, ex));
        }
        Excerpts { files }
    }

    /// The file id of source `src`.
    fn file_of(&self, src: usize) -> usize {
        self.files.iter().position(|(s, _)| *s == src).unwrap_or(0)
    }

    /// An original byte range as a range of the excerpt text.
    fn map_range(&self, fid: usize, r: std::ops::Range<usize>) -> std::ops::Range<usize> {
        match self.files.get(fid) {
            Some((_, ex)) => {
                let a = ex.map(r.start);
                a..ex.map(r.end).max(a)
            }
            None => 0..0,
        }
    }
}

impl Excerpt<'_> {
    /// The excerpt offset of original byte `b` (the nearest shown byte if it is cut out).
    fn map(&self, b: usize) -> usize {
        // the last quoted line starting at or before b
        let k = self.lines.partition_point(|l| l.orig_start <= b);
        let Some(line) = k.checked_sub(1).and_then(|k| self.lines.get(k)) else {
            return 0;
        };
        let mut at = line.range.start;
        for s in &line.segments {
            if b < s.orig.start {
                return at;
            }
            if b <= s.orig.end {
                return s.at + (b - s.orig.start);
            }
            at = s.at + s.orig.len();
        }
        // past the last segment: the end of the line (or its line break)
        if b > line.segments.last().map_or(line.orig_start, |s| s.orig.end) {
            line.range.end.max(at)
        } else {
            at
        }
    }

    /// The original byte of excerpt offset `v` on quoted line `line`.
    fn unmap(&self, line: &ExcerptLine, v: usize) -> usize {
        let mut orig = line.orig_start;
        for s in &line.segments {
            if v < s.at {
                return orig;
            }
            if v <= s.at + s.orig.len() {
                return s.orig.start + (v - s.at);
            }
            orig = s.orig.end;
        }
        orig
    }

    fn line(&self, index: usize) -> Option<&ExcerptLine> {
        self.lines
            .binary_search_by_key(&index, |l| l.index)
            .ok()
            .map(|k| &self.lines[k])
    }
}

impl<'f> codespan_reporting::files::Files<'f> for Excerpts<'_> {
    type FileId = usize;
    type Name = &'f str;
    type Source = &'f str;

    fn name(&'f self, id: usize) -> Result<&'f str, codespan_reporting::files::Error> {
        self.files
            .get(id)
            .map(|(_, e)| e.name)
            .ok_or(codespan_reporting::files::Error::FileMissing)
    }

    fn source(&'f self, id: usize) -> Result<&'f str, codespan_reporting::files::Error> {
        self.files
            .get(id)
            .map(|(_, e)| e.text.as_str())
            .ok_or(codespan_reporting::files::Error::FileMissing)
    }

    fn line_index(&'f self, id: usize, byte: usize) -> Result<usize, codespan_reporting::files::Error> {
        let (_, ex) = self
            .files
            .get(id)
            .ok_or(codespan_reporting::files::Error::FileMissing)?;
        let k = ex.lines.partition_point(|l| l.range.start <= byte);
        Ok(k.checked_sub(1).map_or(0, |k| ex.lines[k].index))
    }

    fn column_number(
        &'f self,
        id: usize,
        line_index: usize,
        byte: usize,
    ) -> Result<usize, codespan_reporting::files::Error> {
        let (_, ex) = self
            .files
            .get(id)
            .ok_or(codespan_reporting::files::Error::FileMissing)?;
        Ok(match ex.line(line_index) {
            Some(l) => crate::span::column(ex.orig, l.orig_start, ex.unmap(l, byte)),
            None => 1,
        })
    }

    fn line_range(
        &'f self,
        id: usize,
        line_index: usize,
    ) -> Result<std::ops::Range<usize>, codespan_reporting::files::Error> {
        let (_, ex) = self
            .files
            .get(id)
            .ok_or(codespan_reporting::files::Error::FileMissing)?;
        // a line codespan only walks over (inside a multi-line label) is never printed
        Ok(ex
            .line(line_index)
            .map_or(ex.text.len()..ex.text.len(), |l| l.range.start..l.range.end + 1))
    }
}

#[cfg(test)]
mod message_tests {
    use super::says_nothing_new;

    /// Issue 14 item 5: labels and secondary labels that repeat the message or a note.
    #[test]
    fn repeated_facts_are_dropped() {
        let msg = "`sum` (add) adds tensors with different channel counts: 64 vs 32";
        assert!(says_nothing_new(msg, "64 vs 32 channels"));
        let with_note = format!("{msg}\nnote: `stem`: 64×32×32, `wide`: 32×32×32");
        assert!(says_nothing_new(&with_note, "`stem` is 64×32×32"));
        assert!(!says_nothing_new(&with_note, "`stem` is 64×16×16"), "a new shape");
        assert!(!says_nothing_new(&with_note, "`other` is 64×32×32"), "a new name");
        assert!(
            !says_nothing_new(msg, "first used here"),
            "no facts, not verbatim: kept"
        );
        assert!(says_nothing_new("unknown key here", "key"));
        assert!(
            !says_nothing_new("a cycle: `a` reads `b`", "`b` reads `a`"),
            "names only: kept"
        );
    }
}
