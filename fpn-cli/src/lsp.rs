//! `fpn lsp`: a language server over stdio for spec files.
//!
//! - diagnostics on open and change: the codes, messages, notes and help of `fpn check`, with
//!   secondary labels as related information;
//! - hover on a node (its name, a reference to it, or its op): op, output shape, parameters,
//!   FLOPs;
//! - go to definition on references (`from: body.c4`, `add: [a, b]`, `outputs`) and on block
//!   names: the declaration's key;
//! - completion: the argument keys of the op being written (from the JSON Schema, which is
//!   built from the reader's tables), op keywords, block names, node and input names.
//!
//! The protocol subset is small enough to speak directly (JSON-RPC 2.0 with `Content-Length`
//! framing, full-text sync, UTF-16 positions) on serde_json, without `lsp-server`/`lsp-types`
//! and their build time (docs/deps.md). Nothing a client sends can panic the server: a frame
//! that is too large or not JSON is skipped (with an error reply when it has an id).

use fpn_compiler::diag::Diagnostic;
use fpn_compiler::span::{line_starts, SourceMap};
use fpn_compiler::value::{Value, ValueKind};
use serde_json::{json, Value as J};
use std::collections::HashMap;
use std::io::{BufRead, Write};

/// Largest message accepted (a spec is at most 16 MiB; JSON escaping can double it).
const MAX_MESSAGE: usize = 64 << 20;

/// One open document: its text, its last value tree that parsed, and its compilation.
struct Doc {
    text: String,
    value: Option<Value>,
    partial: Option<fpn_compiler::Partial>,
}

/// Reads one framed message; `Ok(None)` at the end of input. A frame without a usable
/// `Content-Length` or larger than [`MAX_MESSAGE`] is an `Err` with what is wrong (its body
/// is skipped when its length is known).
fn read_message<R: BufRead>(r: &mut R) -> std::io::Result<Option<Result<J, String>>> {
    let mut len: Option<usize> = None;
    let mut saw_header = false;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if saw_header {
                break;
            }
            continue;
        }
        saw_header = true;
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
    }
    let Some(len) = len else {
        return Ok(Some(Err("a message without Content-Length".into())));
    };
    if len > MAX_MESSAGE {
        std::io::copy(&mut std::io::Read::take(&mut *r, len as u64), &mut std::io::sink())?;
        return Ok(Some(Err(format!("a message of {len} bytes (at most {MAX_MESSAGE})"))));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some(
        serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}")),
    ))
}

/// Writes one framed message.
fn send(w: &mut impl Write, msg: &J) -> std::io::Result<()> {
    let body = msg.to_string();
    write!(w, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    w.flush()
}

/// The LSP position (line, UTF-16 column) of byte `at` of `text`.
fn position(text: &str, starts: &[usize], at: usize) -> J {
    let at = at.min(text.len());
    let line = starts.partition_point(|&s| s <= at).max(1) - 1;
    let from = starts[line].min(at);
    let col: usize = text
        .get(from..at)
        .map_or(at - from, |s| s.chars().map(char::len_utf16).sum());
    json!({"line": line, "character": col})
}

/// The byte offset of an LSP position (clamped to its line and the text).
fn offset(text: &str, starts: &[usize], pos: &J) -> usize {
    let line = pos["line"].as_u64().unwrap_or(0) as usize;
    let col = pos["character"].as_u64().unwrap_or(0) as usize;
    let Some(&start) = starts.get(line) else {
        return text.len();
    };
    let end = starts.get(line + 1).copied().unwrap_or(text.len());
    let mut units = 0;
    for (i, c) in text[start..end].char_indices() {
        if units >= col || c == '\n' || c == '\r' {
            return start + i;
        }
        units += c.len_utf16();
    }
    end
}

/// The LSP range of a byte range.
fn range(text: &str, starts: &[usize], r: std::ops::Range<usize>) -> J {
    json!({"start": position(text, starts, r.start), "end": position(text, starts, r.end)})
}

/// The identifier-with-dots under byte `at` (`body.c4`), and its byte range.
fn word_at(text: &str, at: usize) -> Option<(&str, std::ops::Range<usize>)> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let at = at.min(text.len());
    let start = text[..at]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(at, |(i, _)| i);
    let end = text[at..].find(|c: char| !is_word(c)).map_or(text.len(), |i| at + i);
    (start < end).then(|| (&text[start..end], start..end))
}

/// The entries of map `key` of the top-level map.
fn section<'a>(v: &'a Value, key: &str) -> &'a [(fpn_compiler::value::Key, Value)] {
    if let ValueKind::Map(top) = &v.kind {
        if let Some((_, ValueKind::Map(m))) = top.iter().find(|(k, _)| k.name == key).map(|(k, v)| (k, &v.kind)) {
            return m;
        }
    }
    &[]
}

/// The server: open documents by URI.
struct Server {
    docs: HashMap<String, Doc>,
}

impl Server {
    /// Compiles `text` as document `uri`; the diagnostics to publish.
    fn update(&mut self, uri: &str, text: String) -> J {
        let mut sources = SourceMap::new();
        let id = sources.add_text(uri, text.clone());
        let (value, partial) = match fpn_compiler::front::yaml::parse_bytes(text.as_bytes(), id) {
            Ok(v) => {
                let p = fpn_compiler::compile_partial(&v);
                (Some(v), p)
            }
            Err(d) => (
                None,
                fpn_compiler::Partial {
                    graph: None,
                    analysis: None,
                    diagnostics: vec![d],
                },
            ),
        };
        let starts = line_starts(&text);
        let src = sources.get(id);
        let diags: Vec<J> = partial
            .diagnostics
            .iter()
            .map(|d| lsp_diagnostic(d, uri, &text, &starts, src))
            .collect();
        let old = self.docs.remove(uri);
        self.docs.insert(
            uri.to_string(),
            Doc {
                // keep the last tree that parsed: definitions and completion go on while a
                // line is half typed
                value: value.or(old.and_then(|d| d.value)),
                text,
                partial: Some(partial),
            },
        );
        json!({"uri": uri, "diagnostics": diags})
    }

    /// `textDocument/hover`.
    fn hover(&self, p: &J) -> J {
        let Some((doc, at)) = self.at(p) else { return J::Null };
        let Some(partial) = &doc.partial else { return J::Null };
        let (Some(g), Some(a)) = (&partial.graph, &partial.analysis) else {
            return J::Null;
        };
        let word = word_at(&doc.text, at);
        // a node's name, or a reference to an output of a declaration (`neck.p3`)
        let by_name = word.as_ref().and_then(|(w, _)| {
            g.order()
                .find(|&i| g.node(i).name == *w)
                .or_else(|| g.exports.iter().find(|(r, _)| r == w).map(|(_, n)| *n))
        });
        let by_span = || {
            g.order()
                .filter(|&i| {
                    let s = g.node(i).span;
                    (s.lo as usize) <= at && at < s.hi as usize
                })
                .min_by_key(|&i| g.node(i).span.hi - g.node(i).span.lo)
        };
        let Some(i) = by_name.or_else(by_span) else {
            return J::Null;
        };
        if a.shapes.len() != g.graph.node_count() {
            return J::Null;
        }
        let n = g.node(i);
        let names = g.symbol_names();
        let mut md = format!(
            "**`{}`** — `{}`\n\noutput `{}`",
            n.name,
            n.op.kind(),
            fpn_compiler::infer::fmt_shape(&a.shapes[i.index()], &names)
        );
        md.push_str(&format!("\n\nparameters: {}", a.param_counts[i.index()]));
        md.push_str(&match a.flops[i.index()] {
            Some(f) => format!("\n\nFLOPs: {f}"),
            None => "\n\nFLOPs: symbolic".into(),
        });
        if let Some(p) = &n.param {
            md.push_str(&format!("\n\nweights: `{p}.*`"));
        }
        if !n.inputs.is_empty() {
            let ins: Vec<String> = n.inputs.iter().map(|j| format!("`{}`", g.node(*j).name)).collect();
            md.push_str(&format!("\n\ninputs: {}", ins.join(", ")));
        }
        json!({"contents": {"kind": "markdown", "value": md}})
    }

    /// `textDocument/definition`: the key declaring the node, input or block under the cursor.
    fn definition(&self, p: &J) -> J {
        let Some((doc, at)) = self.at(p) else { return J::Null };
        let Some(v) = &doc.value else { return J::Null };
        let Some((word, _)) = word_at(&doc.text, at) else {
            return J::Null;
        };
        let head = word.split('.').next().unwrap_or(word);
        let starts = line_starts(&doc.text);
        for sec in ["nodes", "inputs", "blocks"] {
            if let Some((k, _)) = section(v, sec).iter().find(|(k, _)| k.name == head) {
                let r = (k.span.lo as usize)..(k.span.hi as usize);
                return json!({"uri": p["textDocument"]["uri"], "range": range(&doc.text, &starts, r)});
            }
        }
        J::Null
    }

    /// `textDocument/completion`: argument keys of the enclosing op first, then op keywords,
    /// block names and the spec's node and input names.
    fn completion(&self, p: &J, schema: &J) -> J {
        let mut items: Vec<J> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut push = |label: &str, kind: u32, detail: &str, items: &mut Vec<J>| {
            if seen.insert(label.to_string()) {
                items.push(json!({"label": label, "kind": kind, "detail": detail}));
            }
        };
        let ops = &schema["$defs"]["op"]["anyOf"][1]["properties"];
        if let Some((doc, at)) = self.at(p) {
            if let Some(v) = &doc.value {
                if let Some(op) = enclosing_op(v, at, ops) {
                    for (key, s) in op_keys(&ops[op.as_str()]) {
                        // 10: Property
                        push(&key, 10, s["description"].as_str().unwrap_or(""), &mut items);
                    }
                }
            }
        }
        if let Some(o) = ops.as_object() {
            for (kw, s) in o {
                // 14: Keyword
                push(kw, 14, s["description"].as_str().unwrap_or(""), &mut items);
            }
        }
        if let Some((doc, _)) = self.at(p) {
            if let Some(v) = &doc.value {
                for (sec, kind, what) in [("blocks", 3, "block"), ("nodes", 6, "node"), ("inputs", 6, "input")] {
                    for (k, _) in section(v, sec) {
                        push(&k.name, kind, what, &mut items);
                    }
                }
            }
        }
        json!({"isIncomplete": false, "items": items})
    }

    /// The document and byte offset of a `TextDocumentPositionParams`.
    fn at(&self, p: &J) -> Option<(&Doc, usize)> {
        let doc = self.docs.get(p["textDocument"]["uri"].as_str()?)?;
        let starts = line_starts(&doc.text);
        Some((doc, offset(&doc.text, &starts, &p["position"])))
    }
}

/// The argument keys (with their schemas) an op's value takes as a map, from the JSON Schema.
fn op_keys(s: &J) -> Vec<(String, J)> {
    let mut out = Vec::new();
    let mut stack = vec![s];
    while let Some(s) = stack.pop() {
        if let Some(p) = s["properties"].as_object() {
            out.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(alts) = s["anyOf"].as_array() {
            stack.extend(alts.iter().rev());
        }
    }
    out
}

/// The innermost op keyword (a key of `ops`) whose value contains byte `at`.
fn enclosing_op(v: &Value, at: usize, ops: &J) -> Option<String> {
    let mut found = None;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match &v.kind {
            ValueKind::Map(m) => {
                for (k, c) in m {
                    if (c.span.lo as usize) <= at && at <= c.span.hi as usize {
                        if ops.get(&k.name).is_some() && matches!(c.kind, ValueKind::Map(_) | ValueKind::Null) {
                            found = Some(k.name.clone());
                        }
                        stack.push(c);
                    }
                }
            }
            ValueKind::Seq(items) => {
                stack.extend(
                    items
                        .iter()
                        .filter(|c| (c.span.lo as usize) <= at && at <= c.span.hi as usize),
                );
            }
            _ => {}
        }
    }
    found
}

/// One diagnostic in LSP form.
fn lsp_diagnostic(
    d: &Diagnostic,
    uri: &str,
    text: &str,
    starts: &[usize],
    src: Option<&fpn_compiler::span::Source>,
) -> J {
    let r = |span: fpn_compiler::span::Span| {
        let b = src.map_or(0..0, |s| s.byte_range(span));
        range(text, starts, b)
    };
    let mut message = d.message.clone();
    if !d.label.is_empty() && !fpn_compiler::diag::says_nothing_new(&d.message, &d.label) {
        message.push_str(&format!("\n{}", d.label));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    json!({
        "range": r(d.span),
        // 1 error, 2 warning
        "severity": if d.is_error() { 1 } else { 2 },
        "code": d.code.as_str(),
        "source": "fpn",
        "message": message,
        "relatedInformation": d.secondary.iter().map(|l| json!({
            "location": {"uri": uri, "range": r(l.span)},
            "message": l.message,
        })).collect::<Vec<_>>(),
    })
}

/// Runs the server on stdin/stdout until `exit`; the process exit code (0 after `shutdown`).
pub fn serve() -> u8 {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut output = stdout.lock();
    serve_on(&mut input, &mut output)
}

/// [`serve`] on any reader and writer.
fn serve_on(input: &mut impl BufRead, output: &mut impl Write) -> u8 {
    let schema = fpn_compiler::schema::json_schema();
    let mut server = Server { docs: HashMap::new() };
    let mut shut_down = false;
    loop {
        let msg = match read_message(input) {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(why))) => {
                eprintln!("fpn lsp: skipped {why}");
                let _ = send(
                    output,
                    &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": why}}),
                );
                continue;
            }
            // the client went away without `exit`
            Ok(None) | Err(_) => return 1,
        };
        let method = msg["method"].as_str().unwrap_or("");
        let id = msg.get("id").cloned();
        let params = &msg["params"];
        let result: Option<J> = match method {
            "initialize" => Some(json!({
                "capabilities": {
                    "textDocumentSync": 1,
                    "hoverProvider": true,
                    "definitionProvider": true,
                    "completionProvider": {"triggerCharacters": [" ", ":", "."]},
                },
                "serverInfo": {"name": "fpn", "version": env!("CARGO_PKG_VERSION")},
            })),
            "shutdown" => {
                shut_down = true;
                Some(J::Null)
            }
            "exit" => return if shut_down { 0 } else { 1 },
            "textDocument/didOpen" | "textDocument/didChange" => {
                let uri = params["textDocument"]["uri"].as_str().unwrap_or("").to_string();
                let text = if method == "textDocument/didOpen" {
                    params["textDocument"]["text"].as_str().map(str::to_string)
                } else {
                    // full sync: the last change holds the whole text
                    params["contentChanges"]
                        .as_array()
                        .and_then(|c| c.last())
                        .and_then(|c| c["text"].as_str())
                        .map(str::to_string)
                };
                if let Some(text) = text {
                    let diags = server.update(&uri, text);
                    let note = json!({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": diags});
                    if send(output, &note).is_err() {
                        return 1;
                    }
                }
                None
            }
            "textDocument/didClose" => {
                let uri = params["textDocument"]["uri"].as_str().unwrap_or("").to_string();
                server.docs.remove(&uri);
                let note = json!({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics",
                                  "params": {"uri": uri, "diagnostics": []}});
                let _ = send(output, &note);
                None
            }
            "textDocument/hover" => Some(server.hover(params)),
            "textDocument/definition" => Some(server.definition(params)),
            "textDocument/completion" => Some(server.completion(params, &schema)),
            _ => None,
        };
        // requests get an answer, notifications (no id) none
        if let Some(id) = id {
            let reply = match result {
                Some(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
                None if method.starts_with("$/") || method.is_empty() => continue,
                None => json!({"jsonrpc": "2.0", "id": id,
                               "error": {"code": -32601, "message": format!("unsupported method `{method}`")}}),
            };
            if send(output, &reply).is_err() {
                return 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_utf16() {
        let text = "a: 1\nbé𝄞x: 2\r\nc";
        let starts = line_starts(text);
        let x = text.find('x').expect("x");
        // b(1) é(1) 𝄞(2 UTF-16 units)
        assert_eq!(position(text, &starts, x), json!({"line": 1, "character": 4}));
        assert_eq!(offset(text, &starts, &json!({"line": 1, "character": 4})), x);
        assert_eq!(
            offset(text, &starts, &json!({"line": 1, "character": 99})),
            text.find('\r').expect("cr")
        );
        assert_eq!(offset(text, &starts, &json!({"line": 9, "character": 0})), text.len());
        assert_eq!(position(text, &starts, text.len()), json!({"line": 2, "character": 1}));
    }

    #[test]
    fn frames_too_large_or_not_json_are_skipped() {
        let mut input: &[u8] = b"Content-Length: 3\r\n\r\nabcContent-Length: 999999999999\r\n\r\n";
        assert!(matches!(read_message(&mut input), Ok(Some(Err(_)))));
        assert!(matches!(read_message(&mut input), Ok(Some(Err(_)))));
        assert!(matches!(read_message(&mut input), Ok(None)));
    }

    #[test]
    fn word_under_cursor() {
        let t = "from: body.c4, x";
        assert_eq!(word_at(t, 8).map(|w| w.0), Some("body.c4"));
        assert_eq!(word_at(t, 13).map(|w| w.0), Some("body.c4"));
        assert_eq!(word_at(t, 14), None);
    }
}
