//! Golden test of the Rust back end: `tests/generated/fpn3.rs` is `generate(fpn3())` checked in,
//! and `codegen_run.rs` includes and runs that file. This test regenerates and compares it; run
//! it with `FPN_BLESS=1` to rewrite the file after a back-end change (kept in its own test crate
//! so it still builds when the checked-in file is stale).

mod codegen_support;

use codegen_support::fpn3;
use fpn_compiler::back::rust::{generate, Options};

const GOLDEN: &str = "tests/generated/fpn3.rs";

#[test]
fn golden_is_current() {
    let (g, a) = fpn3();
    let text = generate(&g, &a, &Options::default()).expect("generates");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("FPN_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write golden");
        return;
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(old == text, "{GOLDEN} is stale: rerun with FPN_BLESS=1 and rebuild the tests");
}
