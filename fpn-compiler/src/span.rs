//! Source locations: every value of a spec, and so every IR node, carries a [`Span`].
//!
//! A span is a half-open range `lo..hi` inside one source of a [`SourceMap`]. For a YAML file the
//! range is in bytes of its text; for macro tokens it is in token indices of the token table the
//! DSL front end returns, which the macro maps back to `proc_macro2::Span`s.

/// Index of a source inside a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SourceId(pub u32);

/// A half-open range `lo..hi` in one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    /// Which source the range is in.
    pub source: SourceId,
    /// First byte (text) or token (tokens) of the range.
    pub lo: u32,
    /// One past the last byte or token.
    pub hi: u32,
}

impl Span {
    /// A span covering `lo..hi` of `source`.
    pub fn new(source: SourceId, lo: usize, hi: usize) -> Span {
        let lo = u32::try_from(lo).unwrap_or(u32::MAX);
        let hi = u32::try_from(hi).unwrap_or(u32::MAX).max(lo);
        Span { source, lo, hi }
    }

    /// The smallest span covering both (same source assumed; `self`'s source is kept).
    pub fn to(self, other: Span) -> Span {
        if self.source != other.source {
            return self;
        }
        Span {
            source: self.source,
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }
}

/// What a source holds.
#[derive(Clone, Debug)]
pub enum SourceKind {
    /// Text of a file (YAML); spans are byte offsets.
    Text(String),
    /// Tokens of a macro invocation; spans are token indices. `text` is a readable rendering of
    /// the tokens for messages, `offsets[i]` the byte range of token `i` inside it.
    Tokens {
        /// The tokens printed one after another.
        text: String,
        /// Byte range of each token inside `text`.
        offsets: Vec<(usize, usize)>,
    },
}

/// One source: its display name (a path, or `fpn!` for macro input) and contents.
#[derive(Clone, Debug)]
pub struct Source {
    /// Path or label shown in diagnostics.
    pub name: String,
    /// The contents.
    pub kind: SourceKind,
}

impl Source {
    /// The text diagnostics quote from.
    pub fn text(&self) -> &str {
        match &self.kind {
            SourceKind::Text(t) => t,
            SourceKind::Tokens { text, .. } => text,
        }
    }

    /// Byte range inside [`Source::text`] of a span of this source.
    pub fn byte_range(&self, span: Span) -> std::ops::Range<usize> {
        let len = self.text().len();
        match &self.kind {
            SourceKind::Text(_) => {
                let lo = (span.lo as usize).min(len);
                let hi = (span.hi as usize).clamp(lo, len);
                lo..hi
            }
            SourceKind::Tokens { offsets, .. } => {
                if offsets.is_empty() {
                    return 0..0;
                }
                let last = offsets.len() - 1;
                let lo_tok = (span.lo as usize).min(last);
                let hi_tok = (span.hi as usize).saturating_sub(1).clamp(lo_tok, last);
                offsets[lo_tok].0..offsets[hi_tok].1
            }
        }
    }

    /// 1-based line and column (in characters) of a byte offset of [`Source::text`]. Lines end
    /// at `\n`, `\r\n` or a lone `\r` (as YAML reads them); a byte-order mark at the start of
    /// the text is not a column.
    pub fn line_col(&self, byte: usize) -> (usize, usize) {
        let text = self.text();
        let starts = line_starts(text);
        let byte = byte.min(text.len());
        let line = starts.partition_point(|&s| s <= byte).max(1) - 1;
        (line + 1, column(text, starts[line], byte))
    }
}

/// Byte offset of the start of every line of `text`: the first is 0, then one after each `\n`,
/// each `\r\n` and each lone `\r` (the line breaks of YAML 1.2).
pub fn line_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut v = vec![0];
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')) {
            v.push(i + 1);
        }
    }
    v
}

/// 1-based column in characters of byte `at` in the line starting at byte `line_start` of
/// `text`; a byte-order mark at the very start of the text is not counted.
pub fn column(text: &str, line_start: usize, at: usize) -> usize {
    let mut from = line_start.min(text.len());
    if from == 0 && text.starts_with('\u{feff}') {
        from = '\u{feff}'.len_utf8();
    }
    let at = at.clamp(from, text.len());
    // both ends are char boundaries in practice; count leniently if one is not
    text.get(from..at).map_or(at - from, |s| s.chars().count()) + 1
}

/// All sources of one compilation.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    sources: Vec<Source>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a source, returning its id.
    pub fn add(&mut self, source: Source) -> SourceId {
        self.sources.push(source);
        SourceId(u32::try_from(self.sources.len() - 1).unwrap_or(u32::MAX))
    }

    /// Adds a text source (a YAML file).
    pub fn add_text(&mut self, name: impl Into<String>, text: impl Into<String>) -> SourceId {
        self.add(Source {
            name: name.into(),
            kind: SourceKind::Text(text.into()),
        })
    }

    /// The source of an id.
    pub fn get(&self, id: SourceId) -> Option<&Source> {
        self.sources.get(id.0 as usize)
    }

    /// All sources in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (SourceId, &Source)> {
        self.sources.iter().enumerate().map(|(i, s)| (SourceId(i as u32), s))
    }

    /// `file:line:col` of a span's start.
    pub fn location(&self, span: Span) -> String {
        match self.get(span.source) {
            Some(src) => {
                let range = src.byte_range(span);
                let (l, c) = src.line_col(range.start);
                format!("{}:{}:{}", src.name, l, c)
            }
            None => "<unknown>".to_string(),
        }
    }
}

/// The line starts of every source of a [`SourceMap`], computed once, for the positions of
/// many spans (a spec with ten thousand errors must not rescan its text for each).
pub struct LineIndex<'a> {
    sources: &'a SourceMap,
    starts: Vec<Vec<usize>>,
}

impl<'a> LineIndex<'a> {
    /// Indexes every source of `sources`.
    pub fn new(sources: &'a SourceMap) -> Self {
        let starts = sources.iter().map(|(_, s)| line_starts(s.text())).collect();
        LineIndex { sources, starts }
    }

    /// 1-based line and column (in characters) of byte `at` of source `id`, as
    /// [`Source::line_col`] gives them; `None` for a source not in the map.
    pub fn line_col(&self, id: SourceId, at: usize) -> Option<(usize, usize)> {
        let src = self.sources.get(id)?;
        let starts = self.starts.get(id.0 as usize)?;
        let at = at.min(src.text().len());
        let line = starts.partition_point(|&s| s <= at).max(1) - 1;
        Some((line + 1, column(src.text(), starts[line], at)))
    }

    /// `file:line:col` of a span's start, as [`SourceMap::location`] gives it.
    pub fn location(&self, span: Span) -> String {
        match self.sources.get(span.source) {
            Some(src) => {
                let at = src.byte_range(span).start;
                let (l, c) = self.line_col(span.source, at).unwrap_or((1, 1));
                format!("{}:{l}:{c}", src.name)
            }
            None => "<unknown>".to_string(),
        }
    }
}

#[cfg(test)]
mod line_index_tests {
    use super::*;

    /// The index gives what the per-call `line_col` and `location` give.
    #[test]
    fn agrees_with_line_col() {
        let mut m = SourceMap::new();
        let id = m.add_text("a.yaml", "\u{feff}x: 1\r\ny: é2\rz\n");
        let ix = LineIndex::new(&m);
        let src = m.get(id).expect("source");
        for at in 0..=src.text().len() + 2 {
            assert_eq!(ix.line_col(id, at), Some(src.line_col(at)), "byte {at}");
        }
        let span = Span::new(id, 12, 13);
        assert_eq!(ix.location(span), m.location(span));
        assert_eq!(ix.location(Span::new(SourceId(7), 0, 0)), "<unknown>");
    }
}
