//! The hostile corpus of issue 11: every case of `tests/hostile/manifest.txt` runs through the
//! `fpn` binary, which must exit with the expected code, never print "panicked", keep stderr
//! under [`MAX_STDERR`] and, where the manifest says so, name what it must in stderr.
//!
//! The binary is the one cargo built for this test (debug: overflow-checked). To run the same
//! corpus against another build, e.g. release, set `FPN_HOSTILE_BIN`:
//! `cargo build --release -p fpn-cli && FPN_HOSTILE_BIN=target/release/fpn cargo test -p fpn-cli --test hostile`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Most stderr any case may print.
const MAX_STDERR: usize = 256 * 1024;

/// A hang guard, not a speed target: a case this long has lost its work bound. Generous, so a
/// loaded 2-core machine never trips it (the 10k-error specs take 0.3 s in release; measured
/// by hand, see the issue notes).
const MAX_TIME: Duration = Duration::from_secs(120);

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

fn bin() -> PathBuf {
    match std::env::var_os("FPN_HOSTILE_BIN") {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_relative() {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
            } else {
                p
            }
        }
        None => PathBuf::from(env!("CARGO_BIN_EXE_fpn")),
    }
}

/// A fresh folder, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn st(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let arrays: Vec<(&str, ndarray::ArrayD<f32>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            (
                *n,
                ndarray::ArrayD::from_shape_vec(s.clone(), v.clone()).expect("shape"),
            )
        })
        .collect();
    let views: Vec<(&str, ndarray::ArrayViewD<f32>)> = arrays.iter().map(|(n, a)| (*n, a.view())).collect();
    fpn_runtime::tensors_to_bytes(&views).expect("serialize")
}

/// Weights of `bn_small.yaml` (conv 4→2 1×1 with bias, then batch norm), with `edit` applied.
fn bn_weights(edit: impl Fn(&str, &mut Vec<f32>)) -> Vec<u8> {
    let mut t: Vec<(&str, Vec<usize>, Vec<f32>)> = vec![
        ("c.weight", vec![2, 2, 1, 1], vec![0.5; 4]),
        ("c.bias", vec![2], vec![0.1; 2]),
        ("b.weight", vec![2], vec![1.0; 2]),
        ("b.bias", vec![2], vec![0.0; 2]),
        ("b.running_mean", vec![2], vec![0.0; 2]),
        ("b.running_var", vec![2], vec![1.0; 2]),
    ];
    for (n, _, v) in &mut t {
        edit(n, v);
    }
    st(&t)
}

/// Makes every `$name` file the manifest uses.
fn prepare(tmp: &Path) {
    let w = |name: &str, bytes: &[u8]| std::fs::write(tmp.join(name), bytes).expect("write a corpus file");
    std::fs::create_dir_all(tmp.join("dir")).expect("mkdir");
    std::fs::create_dir_all(tmp.join("sub")).expect("mkdir");
    #[cfg(unix)]
    {
        let ok = Command::new("mkfifo")
            .arg(tmp.join("fifo"))
            .status()
            .map(|s| s.success());
        assert!(matches!(ok, Ok(true)), "mkfifo failed: {ok:?}");
    }
    let input = st(&[("x", vec![1, 2, 4, 4], (0..32).map(|i| i as f32 / 8.0).collect())]);
    w("in.safetensors", &input);
    let mut nan_in = (0..32).map(|i| i as f32).collect::<Vec<_>>();
    nan_in[5] = f32::NAN;
    w("nan_in.safetensors", &st(&[("x", vec![1, 2, 4, 4], nan_in)]));
    w("w.safetensors", &bn_weights(|_, _| {}));
    w(
        "nan.safetensors",
        &bn_weights(|n, v| {
            if n == "c.weight" {
                v[1] = f32::NAN;
            }
        }),
    );
    w(
        "inf.safetensors",
        &bn_weights(|n, v| {
            if n == "b.bias" {
                v[0] = f32::INFINITY;
            }
        }),
    );
    w(
        "negvar.safetensors",
        &bn_weights(|n, v| {
            if n == "b.running_var" {
                v[1] = -0.5;
            }
        }),
    );
    w(
        "garbage.safetensors",
        b"this is not a safetensors file at all, just text\n",
    );
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    w("hugeheader.safetensors", &huge);
    let good = bn_weights(|_, _| {});
    w("truncated.safetensors", &good[..good.len() - 3]);
    // c.weight's offsets say 20 bytes where its shape needs 16: rewrite its header in place
    let n = u64::from_le_bytes(good[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&good[8..8 + n]).expect("utf8 header");
    let v: serde_json::Value = serde_json::from_str(header).expect("json");
    let [a, b] = [0, 1].map(|i| v["c.weight"]["data_offsets"][i].as_u64().expect("offset"));
    let bad = header.replacen(
        &format!("\"data_offsets\":[{a},{b}]"),
        &format!("\"data_offsets\":[{a},{}]", b + 4),
        1,
    );
    assert_ne!(bad, header, "the header layout changed: {header}");
    let mut bytes = (bad.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(bad.as_bytes());
    bytes.extend_from_slice(&good[8 + n..]);
    w("badoffsets.safetensors", &bytes);

    // item 7: thousands of errors
    let mut s = String::from("name: Many\ninputs:\n  x: [3, 32, 32]\nnodes:\n");
    for i in 0..10_000 {
        s.push_str(&format!("  n{i}: {{from: missing{i}, conv: {{out: 4, kernel: 1}}}}\n"));
    }
    s.push_str("outputs: [n0]\n");
    w("refs10000.yaml", s.as_bytes());
    let mut s = String::from(
        "name: Many\ninputs:\n  x: [3, 32, 32]\nnodes:\n  a: {from: x, conv: {out: 4, kernel: 1}}\n  b: {from: x, conv: {out: 8, kernel: 1}}\n",
    );
    for i in 0..5_000 {
        s.push_str(&format!("  s{i}: {{add: [a, b]}}\n"));
    }
    s.push_str(&format!(
        "outputs: [{}]\n",
        (0..5_000).map(|i| format!("s{i}")).collect::<Vec<_>>().join(", ")
    ));
    w("add5000.yaml", s.as_bytes());
    let nodes: Vec<String> = (0..5_000)
        .map(|i| format!("n{i}: {{from: missing{i}, conv: {{out: 4, kernel: 1}}}}"))
        .collect();
    w(
        "line5000.yaml",
        format!(
            "{{name: Many, inputs: {{x: [3, 32, 32]}}, nodes: {{{}}}, outputs: [n0]}}\n",
            nodes.join(", ")
        )
        .as_bytes(),
    );
    // issue 14: a fan-in over 3000 ranks (4.5 million dummy points without the layout's cap)
    let mut s = String::from("name: Fan\ninputs:\n  x: [1, 8, 8]\nnodes:\n");
    for i in 0..3_000 {
        s.push_str(&format!("  n{i}: relu\n"));
    }
    s.push_str(&format!(
        "  all: {{concat: [{}]}}\noutputs: [all]\n",
        (0..3_000).map(|i| format!("n{i}")).collect::<Vec<_>>().join(", ")
    ));
    w("fan3000.yaml", s.as_bytes());
    // item 8: over the 16 MiB cap (a comment, so only the size is wrong)
    let mut big = String::from("name: Big\ninputs: {x: [3, 8, 8]}\nnodes: {y: relu}\noutputs: [y]\n");
    let line = format!("#{}\n", "x".repeat(1023));
    while big.len() <= fpn_compiler::front::yaml::MAX_SPEC_BYTES {
        big.push_str(&line);
    }
    w("big.yaml", big.as_bytes());
}

#[test]
fn hostile_corpus() {
    let tmp = TempDir(std::env::temp_dir().join(format!("fpn-hostile-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir_all(&tmp.0).expect("temp dir");
    prepare(&tmp.0);
    let manifest = std::fs::read_to_string(here().join("manifest.txt")).expect("read the manifest");
    let mut failures = Vec::new();
    let mut cases = 0;
    for (k, line) in manifest.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        cases += 1;
        let (line, expect_text) = match line.split_once(" ~") {
            Some((a, b)) => (a, Some(b)),
            None => (line, None),
        };
        let mut words = line.split_whitespace();
        let code: i32 = words.next().and_then(|c| c.parse().ok()).expect("an exit code first");
        let args: Vec<std::ffi::OsString> = words
            .map(|w| {
                if let Some(f) = w.strip_prefix('@') {
                    here().join(f).into_os_string()
                } else if let Some(f) = w.strip_prefix('$') {
                    tmp.0.join(f).into_os_string()
                } else {
                    w.into()
                }
            })
            .collect();
        let start = Instant::now();
        let o = Command::new(bin()).args(&args).output().expect("run fpn");
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&o.stderr);
        let mut why = Vec::new();
        if o.status.code() != Some(code) {
            why.push(format!("exit {:?}, expected {code}", o.status.code()));
        }
        if err.contains("panicked") {
            why.push("panicked".into());
        }
        if o.stderr.len() > MAX_STDERR {
            why.push(format!("{} bytes of stderr", o.stderr.len()));
        }
        if took > MAX_TIME {
            why.push(format!("took {took:?}"));
        }
        if let Some(t) = expect_text {
            if !err.contains(t) && !String::from_utf8_lossy(&o.stdout).contains(t) {
                why.push(format!("the output lacks `{t}`"));
            }
        }
        if !why.is_empty() {
            let shown: String = err.chars().take(1500).collect();
            failures.push(format!("line {}: `{line}`: {}\n{shown}", k + 1, why.join(", ")));
        }
    }
    assert!(cases >= 30, "the manifest lost its cases ({cases})");
    // no temporary file of an atomic write is left behind
    let leftovers: Vec<_> = std::fs::read_dir(&tmp.0)
        .expect("list temp dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Item 10: a refused or failed write leaves the old output as it was.
#[test]
fn failed_write_keeps_the_old_file() {
    let tmp = TempDir(std::env::temp_dir().join(format!("fpn-hostile-keep-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir_all(&tmp.0).expect("temp dir");
    let spec = here().join("bn_small.yaml");
    let input = tmp.0.join("in.safetensors");
    std::fs::write(
        &input,
        st(&[("x", vec![1, 2, 4, 4], (0..32).map(|i| i as f32).collect())]),
    )
    .expect("write input");
    let before = std::fs::read(&input).expect("read");
    let o = Command::new(bin())
        .args(["run".as_ref(), spec.as_os_str(), "--input".as_ref(), input.as_os_str()])
        .args(["--output".as_ref(), input.as_os_str()])
        .output()
        .expect("run fpn");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read(&input).expect("read"),
        before,
        "the input was overwritten"
    );
    // an output whose spec fails to run is not touched either
    let out = tmp.0.join("out.safetensors");
    std::fs::write(&out, b"old").expect("write");
    let bad_input = tmp.0.join("bad.safetensors");
    std::fs::write(&bad_input, b"garbage").expect("write");
    let o = Command::new(bin())
        .args([
            "run".as_ref(),
            spec.as_os_str(),
            "--input".as_ref(),
            bad_input.as_os_str(),
        ])
        .args(["--output".as_ref(), out.as_os_str()])
        .output()
        .expect("run fpn");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&out).expect("read"), b"old");
}
