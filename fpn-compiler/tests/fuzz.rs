//! Fuzzing in CI: replays every input the fuzz driver (`examples/fuzz/main.rs`) ever saved
//! under `tests/fuzz_regressions/<target>/`, and runs the driver's loop briefly on each target
//! with a fixed seed. Long runs: `cargo run --example fuzz -p fpn-compiler -- --secs 3600`.

#[allow(dead_code)] // the driver uses more of the harness than the test does
#[path = "../examples/fuzz/harness.rs"]
mod harness;

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use harness::{Config, Corpus, Limits, Outcome, Target};

/// Saved cases of bugs not fixed yet, by file name, with the reason. The replay skips them;
/// remove the entry with the fix.
const KNOWN_OPEN: &[(&str, &str)] = &[];

/// Bug locations (`file:line` prefix of the panic, or `oracle:*`) that the fixed-seed loop may
/// hit while a [`KNOWN_OPEN`] case is open.
const KNOWN_OPEN_LOCATIONS: &[&str] = &[];

#[test]
fn every_saved_case_replays_without_a_bug() {
    let limits = Limits::default();
    let cases = harness::regression_cases();
    let mut failures = Vec::new();
    for (t, path, bytes) in &cases {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if KNOWN_OPEN.iter().any(|(n, _)| *n == name) {
            continue;
        }
        if let Outcome::Bug { location, message } = harness::run_one(*t, bytes, &limits) {
            failures.push(format!("{} {}: {location}: {message}", t.name(), path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn known_open_cases_exist() {
    let names: HashSet<String> = harness::regression_cases()
        .iter()
        .filter_map(|(_, p, _)| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect();
    for (n, why) in KNOWN_OPEN {
        assert!(
            names.contains(*n),
            "KNOWN_OPEN lists {n} ({why}) but no such case is saved"
        );
    }
}

/// The seed corpus, loaded once for all tests.
fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| Corpus::load(&[]))
}

/// A short fixed-seed run of one target: no new bug.
fn smoke(target: Target) {
    let corpus = corpus();
    let cfg = Config {
        seed: 0x5eed,
        time: Duration::from_millis(1500),
        max_execs: Some(20_000),
        slow: Duration::from_secs(10),
        limits: Limits::default(),
        current_file: None,
    };
    let known: HashSet<String> = HashSet::new();
    let stats = harness::fuzz(target, corpus, &cfg, &known, 0, None);
    assert!(stats.execs > 0);
    let bugs: Vec<String> = stats
        .findings
        .iter()
        .filter(|f| f.location != "slow")
        .filter(|f| !KNOWN_OPEN_LOCATIONS.iter().any(|k| f.location.starts_with(k)))
        .map(|f| {
            format!(
                "{} at {}: {}\ninput: {:?}",
                target.name(),
                f.location,
                f.message,
                String::from_utf8_lossy(&f.input)
            )
        })
        .collect();
    assert!(bugs.is_empty(), "{}", bugs.join("\n\n"));
}

#[test]
fn fuzz_yaml_briefly() {
    smoke(Target::Yaml);
}

#[test]
fn fuzz_dsl_briefly() {
    smoke(Target::Dsl);
}

#[test]
fn fuzz_pipeline_briefly() {
    smoke(Target::Pipeline);
}

#[test]
fn fuzz_weights_briefly() {
    smoke(Target::Weights);
}

#[test]
fn printers_round_trip_the_spec_corpus() {
    // The structure-aware mutators print trees back as YAML and as `fpn!` tokens: both must
    // read back as the same spec for the unmutated corpus (else the mutants start off broken).
    let corpus = corpus();
    let limits = Limits::default();
    let mut bad = Vec::new();
    for t in &corpus.trees {
        let orig = fpn_compiler::compile_value(t).is_ok();
        for (what, text, target) in [
            ("block", harness::to_yaml_block(t), Target::Yaml),
            ("flow", harness::to_yaml_flow(t), Target::Yaml),
            ("dsl", harness::to_dsl(t), Target::Dsl),
        ] {
            let again = matches!(harness::run_one(target, text.as_bytes(), &limits), Outcome::Accepted);
            if orig && !again {
                bad.push(format!("{what}:\n{text}"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}
