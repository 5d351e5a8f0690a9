//! Every diagnostic code that the compiler or the macros can emit has a row in
//! docs/diagnostics.md and a golden `specs/invalid/<CODE>_*.yaml` — or, for the few that a spec
//! file cannot produce, a test named in `ELSEWHERE` — and every documented code is still emitted.

use std::collections::BTreeSet;
use std::path::Path;

use fpn_compiler::compile_yaml;
use fpn_compiler::diag::Code;
use fpn_compiler::span::SourceMap;

/// Codes no file in `specs/invalid/` can produce, with where they are tested instead.
const ELSEWHERE: &[(&str, &str)] = &[
    ("E0000", "an unreadable file: bad_input.rs and fpn-cli's hostile corpus"),
    ("E0010", "fpn! token syntax: tests/ui/dsl_E0010_*.rs"),
    ("E0100", "an internal compiler error (a bug): never expected"),
    ("W0001", "a warning (compilation succeeds): warnings_are_emitted below"),
    ("W0002", "a warning (compilation succeeds): warnings_are_emitted below"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."))
}

/// `Code::E0123` uses in the Rust sources under `dir` (not the list that declares them).
fn codes_in(dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            codes_in(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("diag/codes.rs") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for (i, _) in text.match_indices("Code::") {
                let c = text.get(i + 6..i + 11).unwrap_or("");
                if c.len() == 5
                    && (c.starts_with('E') || c.starts_with('W'))
                    && c[1..].bytes().all(|b| b.is_ascii_digit())
                {
                    out.insert(c.to_string());
                }
            }
        }
    }
}

fn documented() -> BTreeSet<String> {
    let docs = std::fs::read_to_string(root().join("docs/diagnostics.md")).expect("docs/diagnostics.md");
    docs.lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next())
        .filter(|c| {
            c.len() == 5 && (c.starts_with('E') || c.starts_with('W')) && c[1..].bytes().all(|b| b.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

/// The rows of docs/diagnostics.md: code, meaning, what to do.
fn doc_rows() -> Vec<(String, String, String)> {
    let docs = std::fs::read_to_string(root().join("docs/diagnostics.md")).expect("docs/diagnostics.md");
    docs.lines()
        .filter_map(|l| l.strip_prefix("| ")?.strip_suffix(" |"))
        .filter_map(|l| {
            let mut cols = l.splitn(3, " | ");
            let (c, m, f) = (cols.next()?, cols.next()?, cols.next()?);
            Code::parse(c).map(|_| (c.to_string(), m.to_string(), f.to_string()))
        })
        .collect()
}

/// docs/diagnostics.md and `Code` say the same thing about every code, in the same order.
#[test]
fn docs_table_is_the_code_enum() {
    let rows = doc_rows();
    let from_enum: Vec<(String, String, String)> = Code::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.meaning().to_string(), c.fix().to_string()))
        .collect();
    for (d, e) in rows.iter().zip(&from_enum) {
        assert_eq!(d, e, "docs/diagnostics.md row differs from fpn_compiler::diag::Code");
    }
    assert_eq!(rows.len(), from_enum.len(), "docs/diagnostics.md rows vs Code variants");
    assert_eq!(Code::parse("e0323"), Some(Code::E0323));
    assert_eq!(Code::parse("E9999"), None);
}

#[test]
fn every_code_is_documented_and_has_a_golden() {
    let mut used = BTreeSet::new();
    codes_in(&root().join("fpn-compiler/src"), &mut used);
    codes_in(&root().join("fpn-macros/src"), &mut used);
    assert!(used.len() > 50, "found only {} codes in the sources", used.len());
    let docs = documented();
    let goldens: Vec<String> = std::fs::read_dir(root().join("specs/invalid"))
        .expect("specs/invalid")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut problems = Vec::new();
    for c in &used {
        if !docs.contains(c) {
            problems.push(format!("{c} is emitted but has no row in docs/diagnostics.md"));
        }
        let has_golden = goldens
            .iter()
            .any(|f| f.starts_with(&format!("{c}_")) && f.ends_with(".yaml"));
        if !has_golden && !ELSEWHERE.iter().any(|(e, _)| e == c) {
            problems.push(format!("{c} has no golden specs/invalid/{c}_*.yaml"));
        }
    }
    for c in &docs {
        if !used.contains(c) {
            problems.push(format!("{c} is documented but no source emits it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn warnings_are_emitted() {
    let text = "name: W\ninputs: {x: [3, 8, 8], y: [3, 8, 8]}\nnodes:\n  a: {from: x, conv: {out: 4, kernel: 1}}\n  b: {from: x, conv: {out: 4, kernel: 1}}\noutputs: [a]\n";
    let c = compile_yaml(&mut SourceMap::new(), "w.yaml", text).expect("compiles with warnings");
    let codes: Vec<&str> = c.warnings.iter().map(|d| d.code.as_str()).collect();
    assert!(codes.contains(&"W0001"), "{codes:?}");
    assert!(codes.contains(&"W0002"), "{codes:?}");
}
