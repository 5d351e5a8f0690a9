//! Golden test of the Rust back end: `tests/generated/{fpn3,two,fixed,exprs,placed}.rs` are `generate` of the graphs of `codegen_support` checked in,
//! and `codegen_run.rs` includes and runs those files. This test regenerates and compares it; run
//! it with `FPN_BLESS=1` to rewrite the files after a back-end change (kept in its own test crate
//! so it still builds when the checked-in file is stale).

mod codegen_support;

use codegen_support::{exprs, fixed, fpn3, placed, two};
use fpn_compiler::back::rust::{generate, Options};

fn check(file: &str, (g, a): (fpn_compiler::ir::Graph, fpn_compiler::infer::Analysis)) {
    let text = generate(&g, &a, &Options::default()).expect("generates");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/generated")
        .join(file);
    if std::env::var_os("FPN_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write golden");
        return;
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        old == text,
        "tests/generated/{file} is stale: rerun with FPN_BLESS=1 and rebuild the tests"
    );
}

#[test]
fn fpn3_golden_is_current() {
    check("fpn3.rs", fpn3());
}

#[test]
fn two_golden_is_current() {
    check("two.rs", two());
}

#[test]
fn fixed_golden_is_current() {
    check("fixed.rs", fixed());
}

#[test]
fn exprs_golden_is_current() {
    check("exprs.rs", exprs());
}

#[test]
fn placed_golden_is_current() {
    check("placed.rs", placed());
}
