//! trybuild UI tests of the `fpn!` and `include_spec!` macros.
//!
//! `tests/ui/include_*.rs` load every spec of `specs/invalid/` (plus a missing file) through
//! `include_spec!`, `tests/ui/dsl_*.rs` write the same mistakes as `fpn!{}` tokens, and
//! `tests/ui/pass_*.rs` must compile and run. The `.stderr` goldens sit next to them; regenerate
//! with `TRYBUILD=overwrite cargo test -p fpn --test it ui::` and review the diff.
//!
//! The `pass_*` cases are compiled into this test binary and run by `ui_pass.rs`, not by
//! trybuild: with only compile-fail cases trybuild `cargo check`s all of them in one batch
//! (`--keep-going`) instead of one full `cargo build` per case, each after a `cargo clean`.

/// Workaround: trybuild compiles the ui files in its own crate under
/// `<target>/tests/trybuild/fpn/`, so `CARGO_MANIFEST_DIR` (which `include_spec!` resolves
/// against) is that directory, not this package's. Link `specs/` there so that
/// `include_spec!("specs/…")` finds the same files as in a normal build.
/// Remove once `include_spec!` resolves paths independently of the trybuild crate.
fn link_specs_into_trybuild_crate() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // `CARGO_TARGET_TMPDIR` is `<target>/tmp`; trybuild's crate is `<target>/tests/trybuild/<name>`.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent");
    let dir = target.join("tests").join("trybuild").join(env!("CARGO_PKG_NAME"));
    std::fs::create_dir_all(&dir).expect("create the trybuild crate directory");
    let link = dir.join("specs");
    if std::fs::symlink_metadata(&link).is_err() {
        #[cfg(unix)]
        std::os::unix::fs::symlink(manifest.join("specs"), &link).expect("link specs/");
        #[cfg(windows)]
        std::os::windows::fs::symlink_dir(manifest.join("specs"), &link).expect("link specs/");
    }
}

#[test]
fn ui() {
    link_specs_into_trybuild_crate();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/include_*.rs");
    t.compile_fail("tests/ui/dsl_*.rs");
}
