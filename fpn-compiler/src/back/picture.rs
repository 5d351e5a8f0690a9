//! Pictures of a topology: SVG from a layered layout of our own, and Graphviz DOT text.
//!
//! [`Model`] is what both formats draw: one box per node (name, op, output shape, parameter
//! count), one arrow per input labelled with the tensor's shape, clusters for the nodes one
//! block call or preset made (recovered from the dotted name prefixes the lowering gives them:
//! `body.layer1.0.conv1` is in `body`, `body.layer1` and `body.layer1.0`), and every error:
//! on its node (found by the node's span) in red with its in- and out-edges, or, when no node
//! of the graph carries it (a declaration that did not lower), in a red box of its own.
//!
//! The SVG layout is Sugiyama-style and needs no Graphviz:
//! 1. ranks by longest path from the inputs (node indices are a topological order);
//! 2. an edge longer than one rank is split by dummy points, shared by the edges of one source,
//!    so it runs beside the nodes it skips instead of through them;
//! 3. the pyramid level of a node (`round(log2(largest input height / its height))`, with
//!    symbols at a large value) picks its column band: nodes of one resolution line up;
//! 4. within a rank and band, barycentre sweeps (down, then up, four times) order the boxes;
//! 5. edges are polylines through their dummy points.
//!
//! All spec text (names, doc, messages) is escaped for XML or DOT.

use crate::diag::Diagnostic;
use crate::infer::{fmt_shape, Analysis};
use crate::ir::Graph;
use crate::span::{LineIndex, SourceMap};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// One box.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Node name.
    pub name: String,
    /// Op kind.
    pub op: String,
    /// Output shape `C×H×W` (symbolic where sizes are), if inferred.
    pub shape: Option<String>,
    /// Learnable parameters of the node.
    pub params: i64,
    /// Pyramid level: 0 at the largest input's resolution, +1 per halving.
    pub level: i32,
    /// Errors at this node, as text.
    pub errors: Vec<String>,
    /// The innermost cluster it belongs to.
    pub cluster: Option<usize>,
}

/// One arrow: input `from` of node `to`.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// Source item.
    pub from: usize,
    /// Target item.
    pub to: usize,
    /// The tensor's shape.
    pub label: String,
    /// Whether it touches a node with an error.
    pub error: bool,
}

/// A group of nodes made by one block call or preset.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// The common name prefix (`body.layer1`).
    pub name: String,
    /// The enclosing cluster.
    pub parent: Option<usize>,
}

/// What a picture shows, independent of the format.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Model {
    /// The model's name (or the file's, when the spec could not be read).
    pub title: String,
    /// The spec's `doc`.
    pub doc: Option<String>,
    /// Boxes in node order.
    pub items: Vec<Item>,
    /// Arrows.
    pub edges: Vec<Edge>,
    /// Clusters, each after its parent.
    pub clusters: Vec<Cluster>,
    /// Errors no node of the graph carries.
    pub loose_errors: Vec<String>,
}

/// Longest line of error text in a box.
const WRAP: usize = 64;
/// Most lines of text one error takes.
const MAX_ERROR_LINES: usize = 8;

/// Words of `s` in lines of at most [`WRAP`] characters (a longer word is a line of its own).
fn wrap(s: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > WRAP {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Errors drawn with their text; later ones are only marked (`error[E0201]`), so a spec with
/// ten thousand errors gives a picture of bounded text.
const MAX_ERROR_TEXTS: usize = crate::diag::MAX_RENDERED;

/// The text of the `k`th error of a picture: `error[E0323] file:line:col`, the message and the
/// help, wrapped, at most [`MAX_ERROR_LINES`] lines; past [`MAX_ERROR_TEXTS`], the code alone.
fn error_text(d: &Diagnostic, k: usize, at: &LineIndex<'_>) -> String {
    let kind = if d.is_error() { "error" } else { "warning" };
    if k >= MAX_ERROR_TEXTS {
        return format!(
            "{kind}[{}] (more than {MAX_ERROR_TEXTS} errors: see `fpn check`)",
            d.code
        );
    }
    let mut lines = vec![format!("{kind}[{}] {}", d.code, at.location(d.span))];
    lines.extend(wrap(&d.message));
    if let Some(h) = &d.help {
        lines.extend(wrap(&format!("help: {h}")));
    }
    if lines.len() > MAX_ERROR_LINES {
        lines.truncate(MAX_ERROR_LINES);
        lines.push("…".into());
    }
    lines.join("\n")
}

/// The pyramid level of each node: `round(log2(h0 / h))` with `h0` the largest input height,
/// symbols evaluated at their largest value or 2^20 (so `ceil(H/8)` is an eighth of `H`).
fn levels(g: &Graph, a: Option<&Analysis>) -> Vec<i32> {
    let n = g.graph.node_count();
    let Some(a) = a.filter(|a| a.shapes.len() == n) else {
        return vec![0; n];
    };
    let env: Vec<i64> = g
        .symbols
        .iter()
        .map(|s| s.max.unwrap_or(1 << 20).min(1 << 20))
        .collect();
    let heights: Vec<Option<f64>> = a
        .shapes
        .iter()
        .map(|s| s.h.eval(&env).filter(|&h| h > 0).map(|h| h as f64))
        .collect();
    let top = g
        .inputs
        .iter()
        .filter_map(|i| heights.get(i.index()).copied().flatten())
        .fold(None, |m: Option<f64>, h| Some(m.map_or(h, |m| m.max(h))));
    heights
        .iter()
        .map(|h| match (top, h) {
            (Some(t), Some(h)) => (t / h).log2().round().clamp(-8.0, 30.0) as i32,
            _ => 0,
        })
        .collect()
}

/// Clusters from dotted name prefixes: a prefix `P` is a cluster when at least two nodes are
/// named `P` or `P.…`. Returns the clusters (parents first) and each node's innermost one.
fn clusters(names: &[&str]) -> (Vec<Cluster>, Vec<Option<usize>>) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for name in names {
        for (i, _) in name.match_indices('.') {
            *count.entry(&name[..i]).or_default() += 1;
        }
        // a node named as its block (the renamed last node) belongs to that block's cluster
        *count.entry(name).or_default() += 1;
    }
    let mut out: Vec<Cluster> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut of = Vec::with_capacity(names.len());
    for name in names {
        let mut prefixes: Vec<&str> = name.match_indices('.').map(|(i, _)| &name[..i]).collect();
        prefixes.push(name);
        let mut inner = None;
        for p in prefixes {
            if count.get(p).copied().unwrap_or(0) < 2 {
                continue;
            }
            let k = *index.entry(p).or_insert_with(|| {
                out.push(Cluster {
                    name: p.to_string(),
                    parent: inner,
                });
                out.len() - 1
            });
            inner = Some(k);
        }
        of.push(inner);
    }
    (out, of)
}

impl Model {
    /// The picture of a (possibly partial) compilation: `graph` as far as it lowered, its
    /// analysis, and the diagnostics (errors are drawn; warnings are not).
    pub fn new(
        title: &str,
        graph: Option<&Graph>,
        analysis: Option<&Analysis>,
        diags: &[Diagnostic],
        sources: &SourceMap,
    ) -> Model {
        let mut m = Model {
            title: graph.map_or(title.to_string(), |g| g.name.clone()),
            doc: graph.and_then(|g| g.doc.clone()),
            ..Model::default()
        };
        let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
        let at = LineIndex::new(sources);
        let Some(g) = graph else {
            m.loose_errors = errors.iter().enumerate().map(|(k, d)| error_text(d, k, &at)).collect();
            m.cap_loose_errors();
            return m;
        };
        let n = g.graph.node_count();
        let a = analysis.filter(|a| a.shapes.len() == n && a.param_counts.len() == n);
        let names = g.symbol_names();
        let level = levels(g, a);
        let node_names: Vec<&str> = g.order().map(|i| g.node(i).name.as_str()).collect();
        let (cl, of) = clusters(&node_names);
        m.clusters = cl;
        for i in g.order() {
            let node = g.node(i);
            m.items.push(Item {
                name: node.name.clone(),
                op: node.op.kind().to_string(),
                shape: a.map(|a| fmt_shape(&a.shapes[i.index()], &names)),
                params: a.map_or(0, |a| a.param_counts[i.index()]),
                level: level[i.index()],
                errors: Vec::new(),
                cluster: of[i.index()],
            });
        }
        // an error belongs to the node with its span, else to the smallest node span around it
        // nodes by span, for the exact match
        let mut by_span: HashMap<crate::span::Span, usize> = HashMap::new();
        for i in g.order() {
            by_span.entry(g.node(i).span).or_insert(i.index());
        }
        for (k, d) in errors.into_iter().enumerate() {
            let exact = by_span.get(&d.span).map(|&i| petgraph::graph::NodeIndex::new(i));
            let around = || {
                g.order()
                    .filter(|&i| {
                        let s = g.node(i).span;
                        s.source == d.span.source && s.lo <= d.span.lo && d.span.hi <= s.hi && s.hi > s.lo
                    })
                    .min_by_key(|&i| g.node(i).span.hi - g.node(i).span.lo)
            };
            // the search around is linear: only for the errors drawn with their text
            let around = || if k < MAX_ERROR_TEXTS { around() } else { None };
            match exact.or_else(around) {
                Some(i) => m.items[i.index()].errors.push(error_text(d, k, &at)),
                None => m.loose_errors.push(error_text(d, k, &at)),
            }
        }
        m.cap_loose_errors();
        for i in g.order() {
            for &j in &g.node(i).inputs {
                m.edges.push(Edge {
                    from: j.index(),
                    to: i.index(),
                    label: m.items[j.index()].shape.clone().unwrap_or_default(),
                    error: !m.items[i.index()].errors.is_empty() || !m.items[j.index()].errors.is_empty(),
                });
            }
        }
        m
    }

    /// Keeps the first [`MAX_ERROR_TEXTS`] loose errors and counts the rest in one line.
    fn cap_loose_errors(&mut self) {
        if self.loose_errors.len() > MAX_ERROR_TEXTS {
            let rest = self.loose_errors.len() - MAX_ERROR_TEXTS;
            self.loose_errors.truncate(MAX_ERROR_TEXTS);
            self.loose_errors.push(format!(
                "… and {rest} more errors at no node of the graph (`fpn check` lists them)"
            ));
        }
    }

    /// The box text of item `k`: name, `op · N params`, shape, then its errors.
    fn lines(&self, k: usize) -> Vec<String> {
        let it = &self.items[k];
        let mut v = vec![it.name.clone()];
        v.push(if it.params > 0 {
            format!("{} · {} params", it.op, it.params)
        } else {
            it.op.clone()
        });
        if let Some(s) = &it.shape {
            v.push(s.clone());
        }
        for e in &it.errors {
            v.extend(e.lines().map(str::to_string));
        }
        v
    }

    /// Graphviz DOT text: clusters as `subgraph cluster_…`, nodes of one pyramid level in one
    /// `group` (Graphviz keeps their edges straight), errors in red.
    pub fn dot(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "digraph \"{}\" {{", dot_escape(&self.title));
        let mut label = self.title.clone();
        if let Some(d) = &self.doc {
            label.push('\n');
            label.push_str(d);
        }
        let _ = writeln!(
            s,
            "  graph [rankdir=TB, fontname=\"monospace\", labelloc=t, label=\"{}\"];",
            dot_escape(&label)
        );
        s.push_str("  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f6f8fa\", fontname=\"monospace\", fontsize=10];\n");
        s.push_str("  edge [fontname=\"monospace\", fontsize=9, fontcolor=\"#555555\"];\n");
        for (k, e) in self.loose_errors.iter().enumerate() {
            let _ = writeln!(
                s,
                "  err{k} [shape=note, color=red, fontcolor=red, fillcolor=\"#fff0f0\", label=\"{}\"];",
                dot_escape(e)
            );
        }
        // nodes inside their clusters, clusters nested
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); self.clusters.len()];
        let mut top_clusters = Vec::new();
        for (k, c) in self.clusters.iter().enumerate() {
            match c.parent {
                Some(p) => children[p].push(k),
                None => top_clusters.push(k),
            }
        }
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); self.clusters.len()];
        for (k, it) in self.items.iter().enumerate() {
            match it.cluster {
                Some(c) => members[c].push(k),
                None => self.dot_node(&mut s, k, 1),
            }
        }
        let mut stack: Vec<(usize, usize, bool)> = top_clusters.iter().rev().map(|&c| (c, 1, true)).collect();
        while let Some((c, depth, open)) = stack.pop() {
            let pad = "  ".repeat(depth);
            if !open {
                let _ = writeln!(s, "{pad}}}");
                continue;
            }
            let _ = writeln!(s, "{pad}subgraph \"cluster_{c}\" {{");
            let _ = writeln!(
                s,
                "{pad}  label=\"{}\"; style=\"rounded,dashed\"; color=\"#8899aa\"; fontsize=10;",
                dot_escape(&self.clusters[c].name)
            );
            for &k in &members[c] {
                self.dot_node(&mut s, k, depth + 1);
            }
            stack.push((c, depth, false));
            for &ch in children[c].iter().rev() {
                stack.push((ch, depth + 1, true));
            }
        }
        for e in &self.edges {
            let _ = writeln!(
                s,
                "  n{} -> n{} [label=\"{}\"{}];",
                e.from,
                e.to,
                dot_escape(&e.label),
                if e.error {
                    ", color=red, fontcolor=red, penwidth=2"
                } else {
                    ""
                }
            );
        }
        s.push_str("}\n");
        s
    }

    fn dot_node(&self, s: &mut String, k: usize, depth: usize) {
        let it = &self.items[k];
        let red = if it.errors.is_empty() {
            ""
        } else {
            ", color=red, fontcolor=red, fillcolor=\"#fff0f0\", penwidth=2"
        };
        let _ = writeln!(
            s,
            "{}n{k} [label=\"{}\", group=\"L{}\"{red}];",
            "  ".repeat(depth),
            dot_escape(&self.lines(k).join("\n")),
            it.level
        );
    }

    /// The SVG picture (see the module docs for the layout).
    pub fn svg(&self) -> String {
        Layout::new(self).svg(self)
    }
}

/// `s` inside a DOT double-quoted string: `\` and `"` escaped, line breaks as `\n`, other
/// control characters as spaces.
pub fn dot_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// `s` as XML text or attribute value: the five special characters as entities, characters
/// XML 1.0 does not allow as U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// Width of one character of the monospace font at [`FONT`] px (an estimate: boxes are sized
/// from it).
const CHAR_W: f64 = 7.3;
/// Font size of box text.
const FONT: f64 = 12.0;
/// Height of one text line.
const LINE_H: f64 = 16.0;
/// Most dummy points of a layout.
const MAX_DUMMIES: usize = 50_000;
/// Width of a dummy point's slot.
const DUMMY_W: f64 = 14.0;
/// Space between boxes in a rank.
const GAP_X: f64 = 18.0;
/// Space between ranks (edge labels go there).
const GAP_Y: f64 = 46.0;
/// Space between level bands.
const BAND_GAP: f64 = 36.0;
/// Margin around the picture.
const MARGIN: f64 = 24.0;

/// A vertex of the layout: a node's box or a dummy point of a long edge.
struct Vertex {
    rank: usize,
    level: i32,
    w: f64,
    h: f64,
    preds: Vec<usize>,
    succs: Vec<usize>,
    x: f64,
    y: f64,
}

/// Positions of every box, dummy point and edge.
struct Layout {
    v: Vec<Vertex>,
    /// Each edge's vertices, source to target.
    paths: Vec<Vec<usize>>,
    /// Bands: (level, left x, width).
    bands: Vec<(i32, f64, f64)>,
    /// Top of each rank and its height.
    rows: Vec<(f64, f64)>,
    /// Height of the header (title, loose errors, room for cluster boxes).
    header: f64,
    /// Deepest nesting of clusters.
    nest: f64,
    width: f64,
    height: f64,
}

impl Layout {
    fn new(m: &Model) -> Layout {
        let n = m.items.len();
        let mut preds_of: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in &m.edges {
            preds_of[e.to].push(e.from);
        }
        // 1. ranks by longest path (items are in topological order)
        let mut rank = vec![0usize; n];
        for k in 0..n {
            rank[k] = preds_of[k].iter().map(|&p| rank[p] + 1).max().unwrap_or(0);
        }
        let mut v: Vec<Vertex> = (0..n)
            .map(|k| {
                let lines = m.lines(k);
                let chars = lines.iter().map(|l| l.chars().count()).max().unwrap_or(1);
                Vertex {
                    rank: rank[k],
                    level: m.items[k].level,
                    w: (chars as f64 * CHAR_W + 20.0).max(90.0),
                    h: lines.len() as f64 * LINE_H + 12.0,
                    preds: Vec::new(),
                    succs: Vec::new(),
                    x: 0.0,
                    y: 0.0,
                }
            })
            .collect();
        // 2. dummy points, shared by the long edges of one source
        let mut dummy: HashMap<(usize, usize), usize> = HashMap::new();
        let mut linked: HashSet<(usize, usize)> = HashSet::new();
        let mut paths = Vec::with_capacity(m.edges.len());
        for e in &m.edges {
            let mut path = vec![e.from];
            // past the cap (a hostile fan-in over many ranks needs ranks × sources points),
            // long edges are drawn straight
            let span = rank[e.to] - rank[e.from] - 1;
            let long = if v.len() - n + span <= MAX_DUMMIES {
                rank[e.from] + 1..rank[e.to]
            } else {
                0..0
            };
            for r in long {
                let d = *dummy.entry((e.from, r)).or_insert_with(|| {
                    v.push(Vertex {
                        rank: r,
                        level: m.items[e.from].level,
                        w: DUMMY_W,
                        h: 0.0,
                        preds: Vec::new(),
                        succs: Vec::new(),
                        x: 0.0,
                        y: 0.0,
                    });
                    v.len() - 1
                });
                path.push(d);
            }
            path.push(e.to);
            for w in path.windows(2) {
                if linked.insert((w[0], w[1])) {
                    v[w[0]].succs.push(w[1]);
                    v[w[1]].preds.push(w[0]);
                }
            }
            paths.push(path);
        }
        // 3–4. ranks ordered by (level, barycentre), swept down and up
        let nranks = v.iter().map(|x| x.rank + 1).max().unwrap_or(0);
        let mut order: Vec<Vec<usize>> = vec![Vec::new(); nranks];
        for (k, x) in v.iter().enumerate() {
            order[x.rank].push(k);
        }
        let mut pos = vec![0.0f64; v.len()];
        let set_pos = |order: &[Vec<usize>], pos: &mut Vec<f64>| {
            for row in order {
                for (p, &k) in row.iter().enumerate() {
                    pos[k] = p as f64;
                }
            }
        };
        for row in &mut order {
            row.sort_by_key(|&k| v[k].level);
        }
        set_pos(&order, &mut pos);
        for _ in 0..4 {
            for down in [true, false] {
                let ranks: Vec<usize> = if down {
                    (1..nranks).collect()
                } else {
                    (0..nranks.saturating_sub(1)).rev().collect()
                };
                for r in ranks {
                    let key: HashMap<usize, f64> = order[r]
                        .iter()
                        .map(|&k| {
                            let nb = if down { &v[k].preds } else { &v[k].succs };
                            let b = if nb.is_empty() {
                                pos[k]
                            } else {
                                nb.iter().map(|&j| pos[j]).sum::<f64>() / nb.len() as f64
                            };
                            (k, b)
                        })
                        .collect();
                    order[r].sort_by(|&a, &b| v[a].level.cmp(&v[b].level).then(key[&a].total_cmp(&key[&b])));
                    for (p, &k) in order[r].iter().enumerate() {
                        pos[k] = p as f64;
                    }
                }
            }
        }
        // 5. coordinates: one band per level, cells centred in their band
        // nested cluster boxes grow outwards by 8 px sideways and 18 px up per level
        let mut depth = vec![0usize; m.clusters.len()];
        for (k, c) in m.clusters.iter().enumerate() {
            depth[k] = c.parent.map_or(1, |p| depth[p] + 1);
        }
        let nest = depth.iter().copied().max().unwrap_or(0) as f64;
        let header = {
            let mut lines = 1 + usize::from(m.doc.is_some());
            for e in &m.loose_errors {
                lines += e.lines().count() + 1;
            }
            lines as f64 * LINE_H + 30.0 + nest * 18.0
        };
        let mut levels: Vec<i32> = v.iter().map(|x| x.level).collect();
        levels.sort_unstable();
        levels.dedup();
        let cell_w = |row: &[usize], lv: i32| -> f64 {
            let ws: Vec<f64> = row.iter().filter(|&&k| v[k].level == lv).map(|&k| v[k].w).collect();
            ws.iter().sum::<f64>() + GAP_X * ws.len().saturating_sub(1) as f64
        };
        let mut bands = Vec::new();
        let mut x0 = MARGIN + nest * 8.0;
        for &lv in &levels {
            let w = order.iter().map(|row| cell_w(row, lv)).fold(120.0f64, f64::max);
            bands.push((lv, x0, w));
            x0 += w + BAND_GAP;
        }
        let mut rows = Vec::with_capacity(nranks);
        let mut y0 = MARGIN + header;
        for row in &order {
            let h = row.iter().map(|&k| v[k].h).fold(0.0f64, f64::max);
            rows.push((y0, h));
            y0 += h + GAP_Y;
        }
        let mut placed: Vec<(usize, f64, f64)> = Vec::with_capacity(v.len());
        for (r, row) in order.iter().enumerate() {
            for &(lv, bx, bw) in &bands {
                let mut x = bx + (bw - cell_w(row, lv)) / 2.0;
                for &k in row.iter().filter(|&&k| v[k].level == lv) {
                    placed.push((k, x, rows[r].0));
                    x += v[k].w + GAP_X;
                }
            }
        }
        for (k, x, y) in placed {
            v[k].x = x;
            v[k].y = y;
        }
        let width = (x0 - BAND_GAP + MARGIN + nest * 8.0)
            .max(m.title.chars().count() as f64 * 10.0 + 2.0 * MARGIN)
            .max(
                m.doc
                    .as_ref()
                    .map_or(0.0, |d| d.chars().count() as f64 * CHAR_W + 2.0 * MARGIN),
            );
        let width = m
            .loose_errors
            .iter()
            .flat_map(|e| e.lines())
            .map(|l| l.chars().count() as f64 * CHAR_W + 2.0 * MARGIN + 20.0)
            .fold(width, f64::max);
        Layout {
            v,
            paths,
            bands,
            rows,
            header,
            nest,
            width,
            height: y0 - GAP_Y + MARGIN + 10.0,
        }
    }

    fn svg(&self, m: &Model) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{FONT}">"#,
            w = self.width,
            h = self.height
        );
        let _ = writeln!(s, "<title>{}</title>", xml_escape(&m.title));
        s.push_str(concat!(
            "<defs>",
            r##"<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker>"##,
            r##"<marker id="arrow-red" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#cf222e"/></marker>"##,
            "</defs>\n"
        ));
        s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        // level bands
        let top = MARGIN + self.header - 22.0 - self.nest * 18.0;
        for (k, &(lv, x, w)) in self.bands.iter().enumerate() {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"##,
                x - BAND_GAP / 2.0 + 4.0,
                w + BAND_GAP - 8.0,
                self.height - top - MARGIN / 2.0,
                if k % 2 == 0 { "#f4f7fb" } else { "#fbfbf4" }
            );
            let scale = if (0..31).contains(&lv) {
                format!("1/{}", 1u64 << lv)
            } else {
                format!("2^{}", -lv)
            };
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#57606a" font-size="11">level {lv} · {scale}</text>"##,
                x + w / 2.0,
                top + 14.0
            );
        }
        // title, doc, loose errors
        let _ = writeln!(
            s,
            r#"<text x="{MARGIN}" y="{:.1}" font-size="16" font-weight="bold">{}</text>"#,
            MARGIN + 6.0,
            xml_escape(&m.title)
        );
        let mut y = MARGIN + 6.0 + LINE_H + 2.0;
        if let Some(d) = &m.doc {
            let _ = writeln!(
                s,
                r##"<text x="{MARGIN}" y="{y:.1}" fill="#57606a">{}</text>"##,
                xml_escape(d)
            );
            y += LINE_H;
        }
        for e in &m.loose_errors {
            let n = e.lines().count() as f64;
            let w = e.lines().map(|l| l.chars().count()).max().unwrap_or(1) as f64 * CHAR_W + 20.0;
            let _ = writeln!(
                s,
                r##"<rect x="{MARGIN}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="4" fill="#fff0f0" stroke="#cf222e" stroke-width="2"/>"##,
                y - 4.0,
                n * LINE_H + 8.0
            );
            text_lines(&mut s, MARGIN + 10.0, y + FONT, e.lines(), "#cf222e");
            y += n * LINE_H + LINE_H;
        }
        // clusters, outermost first; each box holds its members and inner clusters
        let mut boxes: Vec<Option<(f64, f64, f64, f64)>> = vec![None; m.clusters.len()];
        let grow = |b: &mut Option<(f64, f64, f64, f64)>, r: (f64, f64, f64, f64)| {
            *b = Some(match *b {
                None => r,
                Some(o) => (o.0.min(r.0), o.1.min(r.1), o.2.max(r.2), o.3.max(r.3)),
            });
        };
        for (k, it) in m.items.iter().enumerate() {
            if let Some(c) = it.cluster {
                let x = &self.v[k];
                grow(&mut boxes[c], (x.x - 8.0, x.y - 20.0, x.x + x.w + 8.0, x.y + x.h + 8.0));
            }
        }
        for c in (0..m.clusters.len()).rev() {
            if let (Some(p), Some(b)) = (m.clusters[c].parent, boxes[c]) {
                grow(&mut boxes[p], (b.0 - 8.0, b.1 - 18.0, b.2 + 8.0, b.3 + 8.0));
            }
        }
        for (c, b) in boxes.iter().enumerate() {
            let Some((x0, y0, x1, y1)) = *b else { continue };
            let _ = writeln!(
                s,
                r##"<g class="cluster"><rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" rx="8" fill="#8899aa" fill-opacity="0.07" stroke="#8899aa" stroke-dasharray="5,3"/><text x="{:.1}" y="{:.1}" fill="#6a7785" font-size="11" font-style="italic">{}</text></g>"##,
                x1 - x0,
                y1 - y0,
                x0 + 6.0,
                y0 + 13.0,
                xml_escape(&m.clusters[c].name)
            );
        }
        // edges, errors last so they are on top
        let mut edges: Vec<usize> = (0..m.edges.len()).collect();
        edges.sort_by_key(|&k| m.edges[k].error);
        for k in edges {
            let e = &m.edges[k];
            let path = &self.paths[k];
            let (a, b) = (&self.v[e.from], &self.v[e.to]);
            let mut pts = vec![(a.x + a.w / 2.0, a.y + a.h)];
            for &d in &path[1..path.len() - 1] {
                let d = &self.v[d];
                let (ry, rh) = self.rows[d.rank];
                pts.push((d.x + d.w / 2.0, ry - 6.0));
                pts.push((d.x + d.w / 2.0, ry + rh + 6.0));
            }
            pts.push((b.x + b.w / 2.0, b.y));
            let color = if e.error { "#cf222e" } else { "#57606a" };
            let points: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{}" marker-end="url(#{})"/>"#,
                points.join(" "),
                if e.error { 2 } else { 1 },
                if e.error { "arrow-red" } else { "arrow" }
            );
            // the label a third along the last segment, on its outer side: edges meeting at a
            // box part there
            let (p, q) = (pts[pts.len() - 2], pts[pts.len() - 1]);
            let from_left = q.0 > p.0 + 1.0;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="{}" font-size="10" fill="{color}" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"#,
                p.0 + (q.0 - p.0) * 0.35 + if from_left { -4.0 } else { 4.0 },
                p.1 + (q.1 - p.1) * 0.35 + 3.0,
                if from_left { "end" } else { "start" },
                xml_escape(&e.label)
            );
        }
        // boxes
        for k in 0..m.items.len() {
            let x = &self.v[k];
            let err = !m.items[k].errors.is_empty();
            let _ = writeln!(
                s,
                r##"<g class="node"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="5" fill="{}" stroke="{}" stroke-width="{}"/>"##,
                x.x,
                x.y,
                x.w,
                x.h,
                if err { "#fff0f0" } else { "#f6f8fa" },
                if err { "#cf222e" } else { "#57606a" },
                if err { 2 } else { 1 }
            );
            let lines = m.lines(k);
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-weight="bold">{}</text>"#,
                x.x + 10.0,
                x.y + 6.0 + FONT,
                xml_escape(&lines[0])
            );
            let plain = 2 + usize::from(m.items[k].shape.is_some());
            let rest = lines[1..plain].iter().map(String::as_str);
            text_lines(&mut s, x.x + 10.0, x.y + 6.0 + FONT + LINE_H, rest, "#24292f");
            let errs = lines[plain..].iter().map(String::as_str);
            text_lines(
                &mut s,
                x.x + 10.0,
                x.y + 6.0 + FONT + LINE_H * plain as f64,
                errs,
                "#cf222e",
            );
            s.push_str("</g>\n");
        }
        s.push_str("</svg>\n");
        s
    }
}

/// One `<text>` with a `<tspan>` per line from (`x`, `y`).
fn text_lines<'a>(s: &mut String, x: f64, y: f64, lines: impl Iterator<Item = &'a str>, fill: &str) {
    let spans: Vec<String> = lines
        .enumerate()
        .map(|(i, l)| {
            format!(
                r#"<tspan x="{x:.1}" dy="{}">{}</tspan>"#,
                if i == 0 { 0.0 } else { LINE_H },
                xml_escape(l)
            )
        })
        .collect();
    if !spans.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{y:.1}" fill="{fill}">{}</text>"#,
            spans.concat()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_from_prefixes() {
        let (c, of) = clusters(&["x", "block.0.0", "block.0.1", "block.1", "block", "head"]);
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["block", "block.0"]);
        assert_eq!(c[1].parent, Some(0));
        assert_eq!(of, [None, Some(1), Some(1), Some(0), Some(0), None]);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}"
        );
        assert_eq!(dot_escape("a\"b\\c\nd\u{7}"), "a\\\"b\\\\c\\nd ");
    }

    #[test]
    fn wraps_long_text() {
        let w = wrap(&"word ".repeat(40));
        assert!(w.iter().all(|l| l.chars().count() <= WRAP));
        assert_eq!(w.join(" "), "word ".repeat(40).trim_end());
    }
}
