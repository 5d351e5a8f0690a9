//! Diagnostics: every error and warning of a compilation, each with the span of the node at fault.
//!
//! The library returns [`Diagnostic`] values; [`render`] turns them into rustc-style text with
//! `file:line:col`, a source snippet, labels and a `help:` line. The CLI, `include_spec!` and the
//! build.rs [`crate::Builder`] all print through it, so a golden test of `render` covers every door.

use crate::span::{SourceMap, Span};
use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label as CsLabel};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};

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
    pub code: &'static str,
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
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
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
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
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

/// Renders diagnostics as rustc-style text. `color` adds ANSI colours (use only on a terminal).
pub fn render(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let mut files = SimpleFiles::new();
    let ids: Vec<usize> = sources
        .iter()
        .map(|(_, s)| files.add(s.name.clone(), s.text().to_string()))
        .collect();
    let config = term::Config::default();
    let mut buf = if color {
        termcolor::Buffer::ansi()
    } else {
        termcolor::Buffer::no_color()
    };
    for d in diags {
        let mut cs = match d.severity {
            Severity::Error => CsDiag::error(),
            Severity::Warning => CsDiag::warning(),
        }
        .with_code(d.code)
        .with_message(&d.message);
        let mut labels = Vec::new();
        let mut push = |span: Span, msg: &str, primary: bool| {
            if let (Some(src), Some(&fid)) = (sources.get(span.source), ids.get(span.source.0 as usize)) {
                let range = src.byte_range(span);
                let l = if primary {
                    CsLabel::primary(fid, range)
                } else {
                    CsLabel::secondary(fid, range)
                };
                labels.push(l.with_message(msg));
            }
        };
        push(d.span, &d.label, true);
        for s in &d.secondary {
            push(s.span, &s.message, false);
        }
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
    String::from_utf8_lossy(buf.as_slice()).into_owned()
}
