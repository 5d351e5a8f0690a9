//! Issue 11 items 7 and 17: rendering stays linear in the input however many errors a spec
//! has and however long its lines are, and locations are right with CR-only line endings and
//! a byte-order mark.

use fpn_compiler::span::SourceMap;
use fpn_compiler::{compile_yaml, diag};
use std::time::Instant;

fn errors_of(text: &str) -> (Vec<fpn_compiler::diag::Diagnostic>, SourceMap) {
    let mut sources = SourceMap::new();
    match compile_yaml(&mut sources, "many.yaml", text) {
        Ok(_) => panic!("expected errors"),
        Err(d) => (d, sources),
    }
}

fn unknown_refs(n: usize) -> String {
    let mut s = String::from("name: Many\ninputs:\n  x: [3, 32, 32]\nnodes:\n");
    for i in 0..n {
        s.push_str(&format!("  n{i}: {{from: missing{i}, conv: {{out: 4, kernel: 1}}}}\n"));
    }
    s.push_str("outputs: [n0]\n");
    s
}

#[test]
fn ten_thousand_errors_are_capped_and_fast() {
    let text = unknown_refs(10_000);
    let t = Instant::now();
    let (diags, sources) = errors_of(&text);
    let out = diag::render(&diags, &sources, false);
    let took = t.elapsed();
    assert!(diags.len() >= 10_000, "{} diagnostics", diags.len());
    assert_eq!(out.matches("error[E0201]").count(), diag::MAX_RENDERED, "{out:.2000}");
    assert!(out.contains(&format!("{} more errors not shown", diags.len() - diag::MAX_RENDERED)));
    assert!(out.len() < 200 * diag::MAX_RENDERED * 10, "{} bytes", out.len());
    // debug build on a shared machine; release takes a fraction of this
    assert!(took.as_secs_f64() < 10.0, "took {took:?}");
}

#[test]
fn add_mismatches_are_fast() {
    let mut s = String::from(
        "name: Many\ninputs:\n  x: [3, 32, 32]\nnodes:\n  a: {from: x, conv: {out: 4, kernel: 1}}\n  b: {from: x, conv: {out: 8, kernel: 1}}\n",
    );
    let n = 5_000;
    for i in 0..n {
        s.push_str(&format!("  s{i}: {{add: [a, b]}}\n"));
    }
    s.push_str(&format!(
        "outputs: [{}]\n",
        (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>().join(", ")
    ));
    let t = Instant::now();
    let (diags, sources) = errors_of(&s);
    let out = diag::render(&diags, &sources, false);
    let took = t.elapsed();
    assert!(diags.len() >= n, "{} diagnostics", diags.len());
    assert!(out.len() < 400_000, "{} bytes", out.len());
    assert!(took.as_secs_f64() < 10.0, "took {took:?}");
}

#[test]
fn a_long_line_is_quoted_around_the_label_only() {
    let nodes: Vec<String> = (0..5_000)
        .map(|i| format!("n{i}: {{from: missing{i}, conv: {{out: 4, kernel: 1}}}}"))
        .collect();
    let text = format!(
        "{{name: Many, inputs: {{x: [3, 32, 32]}}, nodes: {{{}}}, outputs: [n0]}}\n",
        nodes.join(", ")
    );
    let (diags, sources) = errors_of(&text);
    let out = diag::render(&diags, &sources, false);
    assert!(out.len() < 100_000, "{} bytes of output", out.len());
    for line in out.lines() {
        assert!(line.chars().count() < 400, "line of {} chars", line.chars().count());
    }
    // the 50th error: its column is right and its name is quoted
    let col = text.find("missing50,").expect("present") + 1;
    assert!(out.contains(&format!("many.yaml:1:{col}")), "{:.3000}", out);
    assert!(out.contains("n50: {from: missing50, conv"), "{:.3000}", out);
    assert!(
        out.contains("1 │ …"),
        "the cut line starts with an ellipsis: {:.3000}",
        out
    );
}

#[test]
fn locations_with_cr_only_and_bom() {
    let (d, sources) = errors_of(
        "name: Cr\rinputs:\r  x: [3, 32, 32]\rnodes:\r  y: {from: nope, conv: {out: 4, kernel: 1}}\routputs: [y]\r",
    );
    let out = diag::render(&d, &sources, false);
    assert!(out.contains("many.yaml:5:13"), "{out}");
    assert_eq!(sources.location(d[0].span), "many.yaml:5:13");
    let (d, sources) = errors_of("\u{feff}{name: B, inputs: {x: [3, 32, 32]}, nodes: {y: {from: nope, conv: {out: 4, kernel: 1}}}, outputs: [y]}");
    let out = diag::render(&d, &sources, false);
    let col = "{name: B, inputs: {x: [3, 32, 32]}, nodes: {y: {from: ".chars().count() + 1;
    assert!(out.contains(&format!("many.yaml:1:{col}")), "{out}");
    assert_eq!(sources.location(d[0].span), format!("many.yaml:1:{col}"));
}
