//! The built `fpn` binary end to end: `run` against PyTorch's outputs (fixtures of
//! `tools/torch_parity.py` in `tests/fixtures/parity/`), its errors, and the exit codes of
//! `check`, `shapes --json` and missing files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(file: &str) -> PathBuf {
    repo().join("tests/fixtures/parity").join(file)
}

fn fpn(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fpn"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run the fpn binary")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("fpn exited by a signal")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh path in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("fpn-cli-run-{}-{name}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn run_equals_pytorch() {
    let out = TempFile::new("seed001.output.safetensors");
    let spec = repo().join("tests/specs/seed001_neck_small.yaml");
    let o = fpn(&[
        "run".as_ref(),
        spec.as_os_str(),
        "--weights".as_ref(),
        fixture("seed001_neck_small.weights.safetensors").as_os_str(),
        "--input".as_ref(),
        fixture("seed001_neck_small.input.safetensors").as_os_str(),
        "--output".as_ref(),
        out.0.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "fpn run failed: {}", stderr(&o));
    let got = fpn_runtime::read_tensors(&out.0).expect("read fpn run's output");
    let want = fpn_runtime::read_tensors(fixture("seed001_neck_small.output.safetensors")).expect("PyTorch output");
    let names =
        |v: &[(String, fpn_runtime::ndarray::ArrayD<f32>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want));
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert_eq!(g.shape(), w.shape(), "output `{name}`");
        let err = g.iter().zip(w).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 1e-4,
            "output `{name}`: max abs error {err:e} vs PyTorch exceeds 1e-4"
        );
        println!("fpn run seed001_neck_small {name}: max abs error vs PyTorch {err:.2e}");
    }
}

#[test]
fn run_with_wrong_weights_names_the_tensor() {
    let out = TempFile::new("wrong.output.safetensors");
    // ResNet-18 at width 4 where the spec has width 2: `body.conv1.weight` is [4, 3, 7, 7], not [2, 3, 7, 7]
    let spec = repo().join("tests/specs/seed003_fpn_head_small.yaml");
    let o = fpn(&[
        "run".as_ref(),
        spec.as_os_str(),
        "--weights".as_ref(),
        fixture("resnet18_pyramid_w4.weights.safetensors").as_os_str(),
        "--input".as_ref(),
        fixture("seed003_fpn_head_small.input.safetensors").as_os_str(),
        "--output".as_ref(),
        out.0.as_os_str(),
    ]);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("`body.conv1.weight`"),
        "the error should name the tensor: {err}"
    );
    assert!(err.contains("[4, 3, 7, 7]") && err.contains("[2, 3, 7, 7]"), "{err}");
    assert!(!out.0.exists(), "no output on error");

    // a weights file lacking the neck's batch norms (PANet's convs have none)
    let spec = repo().join("tests/specs/seed001_neck_small.yaml");
    let o = fpn(&[
        "run".as_ref(),
        spec.as_os_str(),
        "--weights".as_ref(),
        fixture("panet_small.weights.safetensors").as_os_str(),
        "--input".as_ref(),
        fixture("seed001_neck_small.input.safetensors").as_os_str(),
        "--output".as_ref(),
        out.0.as_os_str(),
    ]);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("tensors the model needs: `neck.") && err.contains(".1."),
        "{err}"
    );
}

/// `fpn run` on ultralytics' names (`specs/yolov8n_c2f_block.yaml`, fixture of
/// `tools/c2f_fixture.py`), and `--map` / `--strip-prefix` rewriting the checkpoint's keys.
#[test]
fn run_maps_checkpoint_keys() {
    let out = TempFile::new("c2f.output.safetensors");
    let spec = repo().join("specs/yolov8n_c2f_block.yaml");
    let weights = fixture("yolov8n_c2f.weights.safetensors");
    let run = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "run".as_ref(),
            spec.as_os_str(),
            "--weights".as_ref(),
            weights.as_os_str(),
            "--input".as_ref(),
            "tests/fixtures/parity/yolov8n_c2f.input.safetensors".as_ref(),
            "--output".as_ref(),
            out.0.as_os_str(),
        ];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        fpn(&args)
    };
    let o = run(&[]);
    assert_eq!(code(&o), 0, "fpn run failed: {}", stderr(&o));
    let got = fpn_runtime::read_tensors(&out.0).expect("read fpn run's output");
    let want = fpn_runtime::read_tensors(fixture("yolov8n_c2f.output.safetensors")).expect("PyTorch output");
    let err = |a: &fpn_runtime::ndarray::ArrayD<f32>, b: &fpn_runtime::ndarray::ArrayD<f32>| {
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((f64::from(*x) - f64::from(*y)).abs()))
    };
    let (t32, t64) = (&want[0].1, &want[1].1);
    assert_eq!((want[0].0.as_str(), want[1].0.as_str()), ("cv2", "cv2_f64"));
    assert!(
        err(&got[0].1, t64) <= 2.0 * err(t32, t64),
        "{} vs {}",
        err(&got[0].1, t64),
        err(t32, t64)
    );

    // a rewrite that loses the names: every missing tensor listed, the file named, the fix given
    let o = run(&["--strip-prefix", "model."]);
    let e = stderr(&o);
    assert_eq!(code(&o), 1, "{e}");
    assert!(
        e.contains("yolov8n_c2f.weights.safetensors` lacks 30 tensors the model needs"),
        "{e}"
    );
    assert!(e.contains("`fpn run --map =model.`"), "{e}");
    // two rules: the first that matches applies, so this one maps back
    let o = run(&["--map", "model.4.=model.4.", "--strip-prefix", "model."]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(&["--map", "nonsense"]);
    assert_eq!(code(&o), 2, "a bad --map is a usage error");
    assert!(stderr(&o).contains("is not OLD=NEW"), "{}", stderr(&o));
}

#[test]
fn check_exit_codes() {
    let ok = fpn(&[
        "check".as_ref(),
        repo().join("tests/specs/panet_small.yaml").as_os_str(),
    ]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok"));
    let bad = fpn(&[
        "check".as_ref(),
        repo().join("specs/invalid/E0323_seed000_30x30.yaml").as_os_str(),
    ]);
    assert_eq!(code(&bad), 1, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("E0323"));
}

#[test]
fn shapes_json_parses() {
    let o = fpn(&[
        "shapes".as_ref(),
        repo().join("tests/specs/bifpn_small.yaml").as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("fpn shapes --json is JSON");
    assert_eq!(v["name"], "ParityBifpnNeck");
    assert!(v["nodes"].as_array().is_some_and(|n| !n.is_empty()));
    assert_eq!(v["outputs"].as_array().map(Vec::len), Some(3));
}

#[test]
fn missing_file_is_exit_2() {
    let o = fpn(&["check".as_ref(), "no/such/spec.yaml".as_ref()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("no/such/spec.yaml"));
    let o = fpn(&["shapes".as_ref(), "no/such/spec.yaml".as_ref(), "--json".as_ref()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

/// `fpn sizes` says which symbols are independent and which are described jointly, in words
/// and in `--json`.
#[test]
fn sizes_independent_and_joint() {
    let spec = TempFile::new("joint.yaml");
    std::fs::write(
        &spec.0,
        "name: J\ninputs:\n  c3: [8, H3, W]\n  c4: [8, H4, W]\nnodes:\n  u: {from: c4, upsample: {scale: [2, 1]}}\n  m: {add: [c3, u]}\noutputs: [m]\n",
    )
    .expect("write spec");
    let o = fpn(&["sizes".as_ref(), spec.0.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "jointly (H3, H4): H3 ∈ {2, 4, 6, 8, 10, 12, …} = 2k, k ≥ 1; H4 = H3/2\n\
         independently: W ∈ {1, 2, 3, 4, 5, 6, …} = every size ≥ 1\n"
    );
    let o = fpn(&["sizes".as_ref(), "--json".as_ref(), spec.0.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["symbol"], "H3");
    assert_eq!(v[0]["independent"], false);
    assert_eq!(v[0]["determines"][0]["symbol"], "H4");
    assert_eq!(v[0]["determines"][0]["expr"], "H3/2");
    assert_eq!(v[1]["symbol"], "W");
    assert_eq!(v[1]["independent"], true);
    assert_eq!(v[2]["symbol"], "H4");
    assert_eq!(v[2]["determined_by"], "H3");
    assert_eq!(v[2]["expr"], "H3/2");
}

/// `fpn explain` prints a code's meaning and fix from the same table the docs hold; an unknown
/// code is a usage error (exit 2).
#[test]
fn explain_prints_the_docs_entry() {
    let o = fpn(&["explain".as_ref(), "e0227".as_ref()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let docs = std::fs::read_to_string(repo().join("docs/diagnostics.md")).expect("docs");
    let row = docs.lines().find(|l| l.starts_with("| E0227 |")).expect("docs row");
    let meaning = row.split(" | ").nth(1).expect("meaning column");
    assert!(text.starts_with(&format!("E0227: {meaning}")), "{text}");
    let o = fpn(&["explain".as_ref(), "E9999".as_ref()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not an fpn diagnostic code"));
}

/// The README's sample output is what `fpn check` prints for the command it shows.
#[test]
fn readme_sample_is_what_fpn_prints() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let start = readme.find("```text\n$ fpn check ").expect("the README's sample block") + "```text\n".len();
    let block = &readme[start..];
    let block = &block[..block.find("```").expect("end of the sample block")];
    let (cmd, expected) = block.split_once('\n').expect("command line, then output");
    let args: Vec<&std::ffi::OsStr> = cmd
        .trim_start_matches("$ fpn ")
        .split(' ')
        .map(|a| a.as_ref())
        .collect();
    let o = fpn(&args);
    let printed = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(
        printed.trim_end(),
        expected.trim_end(),
        "README sample vs `fpn {}`",
        cmd.trim_start_matches("$ fpn ")
    );
}

#[test]
fn export_writes_an_onnx_model_named_as_the_state_dict() {
    let onnx = TempFile::new("unet.onnx");
    let weights = repo().join("fpn-compiler/tests/fixtures/onnx/unet_decoder.weights.safetensors");
    let o = fpn(&[
        "export".as_ref(),
        "specs/unet_decoder.yaml".as_ref(),
        "--onnx".as_ref(),
        onnx.0.as_os_str(),
        "--weights".as_ref(),
        weights.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&onnx.0).expect("the model is written");
    let m = fpn_compiler::back::onnx::from_bytes(&bytes).expect("it decodes");
    assert_eq!(m.opset_import[0].version, Some(17));
    let g = m.graph.expect("a graph");
    let names: Vec<String> = g.initializer.iter().filter_map(|t| t.name.clone()).collect();
    assert!(names.iter().any(|n| n == "inc.0.weight"), "{names:?}");
    let want = fpn_runtime::read_tensors(&weights).expect("fixture weights");
    let sd: Vec<&String> = names.iter().filter(|n| !n.contains('/')).collect();
    assert_eq!(sd.len(), want.len(), "one initializer per state_dict tensor");
    // --fold-bn and --keep-bn exclude each other
    let o = fpn(&[
        "export".as_ref(),
        "specs/unet_decoder.yaml".as_ref(),
        "--onnx".as_ref(),
        onnx.0.as_os_str(),
        "--fold-bn".as_ref(),
        "--keep-bn".as_ref(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn export_errors_name_the_node_and_its_line() {
    let spec = TempFile::new("circular.yaml");
    std::fs::write(
        &spec.0,
        "name: Circ\ninputs:\n  x: [3, 16, 16]\nnodes:\n  stem: {conv: {out: 4, kernel: 3, padding: 1}}\n  wrap: {conv: {out: 4, kernel: 3, padding: 1, padding_mode: circular}}\noutputs: [wrap]\n",
    )
    .expect("write the spec");
    let onnx = TempFile::new("circular.onnx");
    let o = fpn(&[
        "export".as_ref(),
        spec.0.as_os_str(),
        "--onnx".as_ref(),
        onnx.0.as_os_str(),
    ]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "error: node `wrap` (conv) cannot be exported to ONNX opset 17: circular padding (`Pad` mode `wrap`) needs opset 19 or newer\n"
        ),
        "{err}"
    );
    assert!(err.contains(&format!("  --> {}:6:10\n", spec.0.display())), "{err}");
    assert!(err.contains("  = help: export with `--opset 19`"), "{err}");
    assert!(!onnx.0.exists(), "nothing is written on error");
    let o = fpn(&[
        "export".as_ref(),
        spec.0.as_os_str(),
        "--onnx".as_ref(),
        onnx.0.as_os_str(),
        "--opset".as_ref(),
        "12".as_ref(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).starts_with("error: ONNX opset 12 is not supported: fpn exports opsets 14 to 21\n"),
        "{}",
        stderr(&o)
    );
    let o = fpn(&[
        "export".as_ref(),
        spec.0.as_os_str(),
        "--onnx".as_ref(),
        onnx.0.as_os_str(),
        "--opset".as_ref(),
        "19".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(onnx.0.exists());
}
