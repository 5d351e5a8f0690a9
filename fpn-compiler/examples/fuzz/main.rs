//! Structure-aware fuzz driver on the stable toolchain (no cargo-fuzz, no nightly).
//!
//! ```text
//! cargo run --example fuzz -p fpn-compiler -- [--secs N] [--seed S]
//!     [--target yaml|dsl|pipeline|weights|all] [--corpus DIR]... [--compile-sample N]
//!     [--slow SECS] [--hang SECS] [--no-save]
//! cargo run --example fuzz -p fpn-compiler -- --replay tests/fuzz_regressions/yaml/x.yaml ...
//! ```
//! Run it in the dev profile (the default above): our crates are built with overflow checks, so
//! arithmetic overflow is a panic the fuzzer finds. `--secs` is the total budget, split evenly
//! over the targets. Every new bug (a panic, or a broken oracle: generated code that does not
//! parse, an interpreter that refuses a spec the compiler accepted, ...) is minimized and saved
//! under `fpn-compiler/tests/fuzz_regressions/<target>/<hash>.<ext>`, which `tests/fuzz.rs`
//! replays. Inputs slower than `--slow` (2 s of the thread's CPU time where Linux tells it, else wall
//! time) are reported and saved under `tests/fuzz_regressions/slow/<target>/` (not replayed). A watchdog saves the input and exits
//! when one input runs longer than `--hang` (60 s); the input being run is also mirrored to
//! `$CARGO_TARGET_DIR/fuzz-current.bin`, so an abort (stack overflow) leaves it behind.
//!
//! `--compile-sample N` writes the code generated for up to N accepted mutated specs into a
//! temporary cargo project depending on `fpn-runtime` by path and runs `cargo check` on it.

mod harness;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{Config, Corpus, Current, Limits, Outcome, Target};

struct Args {
    secs: f64,
    seed: u64,
    targets: Vec<Target>,
    corpus: Vec<PathBuf>,
    compile_sample: usize,
    slow: f64,
    hang: f64,
    save: bool,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: fuzz [--secs N] [--seed S] [--target yaml|dsl|pipeline|weights|all] [--corpus DIR]... \
         [--compile-sample N] [--slow SECS] [--hang SECS] [--no-save]"
    );
    ExitCode::from(2)
}

fn parse_args() -> Option<Args> {
    let mut a = Args {
        secs: 20.0,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1),
        targets: Target::ALL.to_vec(),
        corpus: Vec::new(),
        compile_sample: 0,
        slow: 2.0,
        hang: 60.0,
        save: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--no-save" => a.save = false,
            "-h" | "--help" => return None,
            _ => {
                let v = it.next()?;
                match flag.as_str() {
                    "--secs" => a.secs = v.parse().ok()?,
                    "--seed" => a.seed = v.parse().ok()?,
                    "--target" if v == "all" => a.targets = Target::ALL.to_vec(),
                    "--target" => a.targets = v.split(',').map(Target::parse).collect::<Option<_>>()?,
                    "--corpus" => a.corpus.push(v.into()),
                    "--compile-sample" => a.compile_sample = v.parse().ok()?,
                    "--slow" => a.slow = v.parse().ok()?,
                    "--hang" => a.hang = v.parse().ok()?,
                    _ => return None,
                }
            }
        }
    }
    Some(a)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| harness::workspace_root().join("target"))
}

/// Exits the process, saving the input, when one input runs longer than `hang`.
fn watchdog(current: Current, hang: Duration, save: bool, done: Arc<AtomicBool>) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        if done.load(Ordering::Relaxed) {
            return;
        }
        let Ok(g) = current.lock() else { return };
        let (t0, target, input) = &*g;
        if t0.elapsed() > hang {
            eprintln!(
                "HANG: {} input ran {:.0} s (limit {:.0} s)",
                target.name(),
                t0.elapsed().as_secs_f64(),
                hang.as_secs_f64()
            );
            if save {
                let dir = harness::regressions_dir().join("hangs").join(target.name());
                let _ = std::fs::create_dir_all(&dir);
                let p = dir.join(format!("{:016x}.{}", harness::hash(input), target.ext()));
                let _ = std::fs::write(&p, input);
                eprintln!("saved {}", p.display());
            }
            std::process::exit(3);
        }
    });
}

/// `--replay FILE...`: runs saved inputs (target from the parent directory's name), with times.
fn replay(files: &[String]) -> ExitCode {
    let limits = Limits::default();
    let mut bugs = 0;
    for f in files {
        let p = std::path::Path::new(f);
        let Some(t) = p
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .and_then(Target::parse)
        else {
            eprintln!("{f}: put it under a directory named after its target");
            return ExitCode::from(2);
        };
        let Ok(b) = std::fs::read(p) else {
            eprintln!("{f}: cannot read");
            return ExitCode::from(2);
        };
        let (c, w) = (harness::Clock::now(), Instant::now());
        let o = harness::run_one(t, &b, &limits);
        bugs += usize::from(matches!(o, Outcome::Bug { .. }));
        println!(
            "{f}: {o:?} in {:.2} s CPU ({:.2} s wall)",
            c.elapsed().as_secs_f64(),
            w.elapsed().as_secs_f64()
        );
    }
    if bugs > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "--replay") {
        return replay(&argv[1..]);
    }
    let Some(args) = parse_args() else { return usage() };
    let t_load = Instant::now();
    let corpus = Corpus::load(&args.corpus);
    let limits = Limits::default();
    // Known bug locations: whatever the saved cases already hit (they are not reported again).
    let mut known = HashSet::new();
    for (t, p, b) in harness::regression_cases() {
        if let Outcome::Bug { location, message } = harness::run_one(t, &b, &limits) {
            println!("known: {} {} at {location}: {message}", t.name(), p.display());
            known.insert(location);
        }
    }
    println!(
        "corpus: {} yaml ({} trees), {} dsl, {} weights, {} words; loaded in {:.1} s; seed {}",
        corpus.yaml.len(),
        corpus.trees.len(),
        corpus.dsl.len(),
        corpus.weights.len(),
        corpus.words.len(),
        t_load.elapsed().as_secs_f64(),
        args.seed
    );
    let current: Current = Arc::new(Mutex::new((Instant::now(), Target::Yaml, Vec::new())));
    let done = Arc::new(AtomicBool::new(false));
    watchdog(
        current.clone(),
        Duration::from_secs_f64(args.hang),
        args.save,
        done.clone(),
    );
    let per = Duration::from_secs_f64(args.secs / args.targets.len() as f64);
    let cfg = Config {
        seed: args.seed,
        time: per,
        max_execs: None,
        slow: Duration::from_secs_f64(args.slow),
        limits,
        current_file: Some(target_dir().join("fuzz-current.bin")),
    };
    let mut new_bugs = 0;
    let mut samples = Vec::new();
    for &t in &args.targets {
        let keep = if t == Target::Pipeline { args.compile_sample } else { 0 };
        let runs0 = harness::INTERP_RUNS.with(|n| n.get());
        let s = harness::fuzz(t, &corpus, &cfg, &known, keep, Some(&current));
        let interp_runs = harness::INTERP_RUNS.with(|n| n.get()) - runs0;
        let secs = s.elapsed.as_secs_f64();
        println!(
            "{:<8} {:>7} execs in {:>6.1} s ({:>7.1}/s): {} accepted, {} rejected ({} distinct code sets), {} skipped, {} interpreter runs, {} findings",
            t.name(),
            s.execs,
            secs,
            s.execs as f64 / secs.max(1e-9),
            s.accepted,
            s.rejected,
            s.signatures,
            s.skipped,
            interp_runs,
            s.findings.len()
        );
        for f in &s.findings {
            let min = if f.location == "slow" {
                f.input.clone()
            } else {
                new_bugs += 1;
                harness::minimize(t, &f.input, &f.location, &limits, 400)
            };
            println!(
                "  {} {} ({:.3} s): {}",
                if f.location == "slow" { "SLOW" } else { "BUG" },
                f.location,
                f.elapsed.as_secs_f64(),
                f.message
            );
            if args.save {
                let saved = if f.location == "slow" {
                    let dir = harness::regressions_dir().join("slow").join(t.name());
                    let p = dir.join(format!("{:016x}.{}", harness::hash(&min), t.ext()));
                    std::fs::create_dir_all(&dir)
                        .and_then(|_| std::fs::write(&p, &min))
                        .map(|_| p)
                } else {
                    harness::save_case(t, &min)
                };
                match saved {
                    Ok(p) => println!("    saved {} ({} -> {} bytes)", p.display(), f.input.len(), min.len()),
                    Err(e) => println!("    cannot save: {e}"),
                }
            } else {
                println!("    input: {:?}", String::from_utf8_lossy(&min));
            }
        }
        samples.extend(s.generated);
    }
    done.store(true, Ordering::Relaxed);
    if args.compile_sample > 0 {
        if let Err(e) = compile_sample(&samples, args.save) {
            println!("compile-sample: {e}");
            new_bugs += 1;
        }
    }
    if new_bugs > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `cargo check` of the generated modules in a throwaway crate depending on `fpn-runtime`.
fn compile_sample(samples: &[(Vec<u8>, String)], save: bool) -> Result<(), String> {
    if samples.is_empty() {
        println!("compile-sample: no accepted pipeline input to compile");
        return Ok(());
    }
    let root = harness::workspace_root();
    let dir = target_dir().join("fuzz-compile-sample");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    let manifest = format!(
        "[package]\nname = \"fuzz_sample\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nfpn-runtime = {{ path = {:?} }}\n\n[workspace]\n",
        root.join("fpn-runtime").display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    let _ = std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"));
    let mut lib = String::from("#![allow(dead_code)]\n");
    for (i, (_, code)) in samples.iter().enumerate() {
        std::fs::write(dir.join(format!("src/m{i}.rs")), code).map_err(|e| e.to_string())?;
        lib.push_str(&format!("pub mod m{i};\n"));
    }
    std::fs::write(dir.join("src/lib.rs"), lib).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["check", "--offline", "--quiet", "--message-format=short"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir().join("fuzz-compile-sample-target"))
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "compile-sample: cargo check of {} generated modules: {} in {:.1} s",
        samples.len(),
        if out.status.success() { "ok" } else { "FAILED" },
        t0.elapsed().as_secs_f64()
    );
    if out.status.success() {
        return Ok(());
    }
    // Which modules fail: the `src/mN.rs` paths in the errors.
    let mut bad = HashSet::new();
    for line in stderr.lines().filter(|l| l.contains("error")) {
        println!("  {line}");
        if let Some(i) = line
            .split("src/m")
            .nth(1)
            .and_then(|r| r.split('.').next())
            .and_then(|n| n.parse::<usize>().ok())
        {
            bad.insert(i);
        }
    }
    for i in bad {
        if let Some((input, _)) = samples.get(i) {
            if save {
                let d = harness::regressions_dir().join("compile_sample");
                let p = d.join(format!("{:016x}.yaml", harness::hash(input)));
                let _ = std::fs::create_dir_all(&d).and_then(|_| std::fs::write(&p, input));
                println!("  m{i}: spec saved as {}", p.display());
            }
        }
    }
    Err("generated code does not compile".into())
}
