//! Golden diagnostics: every `specs/invalid/<CODE>_<what>.yaml` must fail to compile with a
//! diagnostic of code `<CODE>`, every error must carry a `help:` line, and the rendered text must
//! equal `specs/invalid/<CODE>_<what>.stderr` byte for byte.
//!
//! Regenerate the goldens with `FPN_BLESS=1 cargo test -p fpn-compiler --test it golden::`, then read
//! every changed `.stderr` before keeping it. Also checks that every shipped `specs/*.yaml`
//! compiles without errors.

use fpn_compiler::diag::Diagnostic;
use fpn_compiler::span::SourceMap;
use fpn_compiler::{compile_value, compile_value_with, render, Setting};
use std::path::{Path, PathBuf};

/// Goldens whose errors are known to lack a `help:` line (a compiler gap, listed in the report
/// that added these tests). The test checks they still lack it, so a fix shows up here: remove
/// the entry and re-bless.
const KNOWN_MISSING_HELP: &[&str] = &[];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// Compiles a spec file under the display name `shown`: text as `compile_yaml` does, non-UTF-8
/// bytes the way `compile_file` does (lossy text for the snippet, `parse_bytes` for the error).
/// A comment line `# --set NAME=VALUE` compiles it with that setting, as `fpn check --set` does.
fn compile_named(shown: &str, bytes: &[u8]) -> (Result<fpn_compiler::Compiled, Vec<Diagnostic>>, SourceMap) {
    let mut sources = SourceMap::new();
    let r = match std::str::from_utf8(bytes) {
        Ok(text) => {
            let sets: Vec<Setting> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# --set "))
                .map(|s| Setting::parse(s).expect("a `# --set NAME=VALUE` line"))
                .collect();
            let id = sources.add_text(shown, text);
            fpn_compiler::front::yaml::parse(text, id)
                .map_err(|d| vec![d])
                .and_then(|v| compile_value_with(&v, &sets))
        }
        Err(_) => {
            let id = sources.add_text(shown, String::from_utf8_lossy(bytes).into_owned());
            fpn_compiler::front::yaml::parse_bytes(bytes, id)
                .map_err(|d| vec![d])
                .and_then(|v| compile_value(&v))
        }
    };
    (r, sources)
}

#[test]
fn invalid_specs_match_their_goldens() {
    let dir = workspace().join("specs/invalid");
    let bless = std::env::var_os("FPN_BLESS").is_some_and(|v| v == "1");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 20,
        "expected at least 20 invalid specs, found {}",
        files.len()
    );
    let mut problems = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let stem = file.trim_end_matches(".yaml");
        let code = stem.split('_').next().unwrap_or("");
        let shown = format!("specs/invalid/{file}");
        let bytes = std::fs::read(path).expect("read spec");
        let (result, sources) = compile_named(&shown, &bytes);
        let diags = match result {
            Ok(c) => {
                problems.push(format!(
                    "{file}: compiled without errors ({} warnings)",
                    c.warnings.len()
                ));
                continue;
            }
            Err(d) => d,
        };
        if !diags.iter().any(|d| d.code == code) {
            let got: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
            problems.push(format!("{file}: no diagnostic with code {code}; got {got:?}"));
        }
        let no_help: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error() && d.help.is_none())
            .map(|d| format!("{}: {}", d.code, d.message))
            .collect();
        if KNOWN_MISSING_HELP.contains(&file.as_str()) {
            if no_help.is_empty() {
                problems.push(format!(
                    "{file}: every error now has a help line; remove it from KNOWN_MISSING_HELP"
                ));
            }
        } else if !no_help.is_empty() {
            problems.push(format!("{file}: errors without a help line: {no_help:?}"));
        }
        let text = render(&diags, &sources);
        let golden = dir.join(format!("{stem}.stderr"));
        if bless {
            std::fs::write(&golden, &text).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == text => {}
            Ok(want) => problems.push(format!(
                "{file}: rendered diagnostics differ from {stem}.stderr (FPN_BLESS=1 to update)\n--- want\n{want}\n--- got\n{text}"
            )),
            Err(e) => problems.push(format!("{file}: cannot read {stem}.stderr: {e} (FPN_BLESS=1 to create)")),
        }
    }
    // No stale goldens: every .stderr has its .yaml.
    for e in std::fs::read_dir(&dir).expect("read specs/invalid") {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "stderr") && !p.with_extension("yaml").exists() {
            problems.push(format!("{}: golden without a spec", p.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn shipped_specs_compile_without_errors() {
    let files = yaml_files(&workspace().join("specs"));
    assert!(!files.is_empty(), "no specs/*.yaml found");
    for path in files {
        let shown = format!("specs/{}", path.file_name().unwrap().to_string_lossy());
        let bytes = std::fs::read(&path).expect("read spec");
        let (result, sources) = compile_named(&shown, &bytes);
        match result {
            Ok(c) => assert!(
                c.warnings.iter().all(|w| !w.is_error()),
                "{shown}: errors among warnings:\n{}",
                render(&c.warnings, &sources)
            ),
            Err(d) => panic!("{shown} does not compile:\n{}", render(&d, &sources)),
        }
    }
}
