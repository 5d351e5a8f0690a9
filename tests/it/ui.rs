//! UI tests of the `fpn!` and `include_spec!` macros: every `tests/ui/include_*.rs` (each spec of
//! `specs/invalid/`, plus a missing file) and `tests/ui/dsl_*.rs` (the same mistakes as `fpn!{}`
//! tokens) must fail to compile with exactly the errors of its `.stderr` golden, as rustc prints
//! them. Regenerate with `FPN_BLESS=1 cargo test -p fpn --test it ui::` (or `TRYBUILD=overwrite`)
//! and review the diff. The `pass_*` cases are compiled into this test binary (`ui_pass.rs`).
//!
//! rustc runs on each case against the `fpn` library this test binary was built with (found in
//! the target's `deps` folder), so a case costs a fraction of a second. trybuild, used before,
//! built every dependency again in a target of its own: 5 of the suite's 17 minutes.
//!
//! The output is normalized as trybuild did: rustc's closing lines (`aborting due to …`,
//! `For more information …`) are dropped and line ends trimmed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The newest `lib<name>-<hash>.<ext>` in `deps`.
fn newest(deps: &Path, name: &str, ext: &str) -> Option<PathBuf> {
    let prefix = format!("lib{name}-");
    std::fs::read_dir(deps)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix) && n.ends_with(ext) && !n[prefix.len()..].contains('-')
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// The rustc of the toolchain that built this test (beside its cargo), else `rustc` on the path.
fn rustc() -> PathBuf {
    if let Some(r) = std::env::var_os("RUSTC") {
        return PathBuf::from(r);
    }
    let beside = Path::new(env!("CARGO")).with_file_name(format!("rustc{}", std::env::consts::EXE_SUFFIX));
    if beside.exists() {
        beside
    } else {
        PathBuf::from("rustc")
    }
}

/// rustc's stderr as the goldens hold it.
fn normalize(stderr: &str) -> String {
    let mut lines: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            !(l.starts_with("error: aborting due to ")
                || l.starts_with("For more information about this error, try `rustc --explain")
                || l.starts_with("For more information about an error, try `rustc --explain")
                || l.starts_with("Some errors have detailed explanations:"))
        })
        .map(str::trim_end)
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The `tests/ui` cases that must fail to compile, sorted.
fn cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(manifest_dir().join("tests/ui"))
        .expect("tests/ui")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| (n.starts_with("include_") || n.starts_with("dsl_")) && n.ends_with(".rs"))
        .collect();
    v.sort();
    v
}

/// Compiles one case; `Err` with what is wrong.
fn check(case: &str, deps: &Path, externs: &[(&str, PathBuf)], out_dir: &Path, bless: bool) -> Result<(), String> {
    let rel = format!("tests/ui/{case}");
    let crate_name = case.trim_end_matches(".rs");
    let mut cmd = Command::new(rustc());
    cmd.current_dir(manifest_dir())
        // `include_spec!` resolves paths against the crate being compiled
        .env("CARGO_MANIFEST_DIR", manifest_dir())
        .env("CARGO_PKG_NAME", "fpn-tests")
        .env("CARGO_CRATE_NAME", crate_name)
        .args(["--edition=2021", "--crate-type=bin", "--emit=metadata", "--color=never"])
        .args(["--crate-name", crate_name])
        .args(["-A", "dead_code"])
        .arg("--out-dir")
        .arg(out_dir)
        .arg("-L")
        .arg(format!("dependency={}", deps.display()));
    for (name, path) in externs {
        cmd.arg("--extern").arg(format!("{name}={}", path.display()));
    }
    let out = cmd
        .arg(&rel)
        .output()
        .map_err(|e| format!("{rel}: cannot run rustc: {e}"))?;
    if out.status.success() {
        return Err(format!("{rel}: compiled, but it must fail"));
    }
    let got = normalize(&String::from_utf8_lossy(&out.stderr));
    let golden = manifest_dir().join(format!("tests/ui/{crate_name}.stderr"));
    if bless {
        std::fs::write(&golden, &got).map_err(|e| format!("{}: {e}", golden.display()))?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{rel}: stderr differs from {}\n--- expected\n{want}\n--- got\n{got}",
            golden.display()
        ))
    }
}

#[test]
fn ui() {
    // target/<profile>/deps/it-<hash>: the libraries this binary links sit beside it
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps folder").to_path_buf();
    let externs: Vec<(&str, PathBuf)> = [("fpn", "rlib"), ("fpn_runtime", "rlib"), ("ndarray", "rlib")]
        .iter()
        .map(|(name, ext)| {
            let path = newest(&deps, name, ext)
                .unwrap_or_else(|| panic!("no lib{name}-*.{ext} in {}: build the tests with cargo", deps.display()));
            (*name, path)
        })
        .collect();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let bless = std::env::var_os("FPN_BLESS").is_some() || std::env::var("TRYBUILD").is_ok_and(|v| v == "overwrite");
    let cases = cases();
    assert!(cases.len() > 100, "only {} UI cases found", cases.len());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                if let Err(e) = check(case, &deps, &externs, &out_dir, bless) {
                    failures.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    assert!(
        failures.is_empty(),
        "{} of {} UI cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
