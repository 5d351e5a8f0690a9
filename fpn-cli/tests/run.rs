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

/// `fpn gen --blocked` keeps an image network's feature maps blocked (NCHW16c) and reorders
/// its outputs, its convs prepared for the layout they run in; without it the code is NCHW
/// throughout; a neck on NCHW feature maps stays NCHW.
#[test]
fn gen_blocked_layout() {
    let run = |args: &[&str]| fpn_with(args, b"", &[]);
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let b = run(&["gen", "--blocked", "specs/yolov8.yaml"]);
    assert_eq!(code(&b), 0, "{}", stderr(&b));
    let (b, plain) = (text(&b), text(&run(&["gen", "specs/yolov8.yaml"])));
    assert_eq!(
        b.matches(".forward_blocked(").count() + b.matches(".forward_blocked_into(").count(),
        45
    );
    assert_eq!(b.matches("fpn_runtime::from_blocked(").count(), 3, "the three outputs");
    // every conv runs blocked: prepared for that alone
    assert_eq!(b.matches("Conv2d::new_blocked(").count(), 45);
    assert!(!plain.contains("_blocked"));
    // U-Net's contracting path runs blocked, its expanding path (after a transposed conv,
    // which has no blocked form) NCHW: each conv prepared for its own layout
    let unet = text(&run(&["gen", "--blocked", "specs/unet_original.yaml"]));
    assert_eq!(unet.matches("Conv2d::new_blocked(").count(), 10);
    assert_eq!(unet.matches("Conv2d::new(").count(), 9);
    let neck = text(&run(&["gen", "--blocked", "specs/seed001_neck.yaml"]));
    assert!(neck.contains("pub struct Seed001Neck") && !neck.contains("_blocked"));
}

/// `--set` on every command that compiles a spec (docs/spec.md "Model families").
#[test]
fn set_picks_a_scale_on_every_command() {
    let run = |args: &[&str]| fpn_with(args, b"", &[]);
    let s = run(&["check", "--set", "scale=s", "specs/yolov8.yaml"]);
    assert_eq!(code(&s), 0, "{}", stderr(&s));
    let out = String::from_utf8_lossy(&s.stdout).into_owned();
    assert!(out.contains("`Yolov8s`, 175 ops, 9019552 parameters"), "{out}");
    let x = run(&["shapes", "--set", "scale=x", "specs/yolov8.yaml"]);
    assert!(String::from_utf8_lossy(&x.stdout).contains("59434640 parameters"));
    let code_s = run(&["gen", "specs/yolov8.yaml", "--set", "scale=m"]);
    assert!(String::from_utf8_lossy(&code_s.stdout).contains("pub struct Yolov8m"));
    for cmd in ["sizes", "graph"] {
        let o = run(&[cmd, "--set", "scale=l", "specs/yolov8.yaml"]);
        assert_eq!(code(&o), 0, "{cmd}: {}", stderr(&o));
    }
    // unknown scale or parameter: exit 1, the known ones listed; no `=`: a usage error
    let q = run(&["check", "--set", "scale=q", "specs/yolov8.yaml"]);
    assert_eq!(code(&q), 1);
    assert!(stderr(&q).contains("error[E0241]: unknown scale `q`") && stderr(&q).contains("n, s, m, l, x"));
    let w = run(&["check", "--set", "widht=0.5", "specs/yolov8.yaml"]);
    assert!(stderr(&w).contains("did you mean `width`?"), "{}", stderr(&w));
    let u = run(&["check", "--set", "scale", "specs/yolov8.yaml"]);
    assert_eq!(code(&u), 2, "{}", stderr(&u));
    let onnx = TempFile::new("set-export.onnx");
    let e = run(&[
        "export",
        "tests/specs/family_small.yaml",
        "--set",
        "scale=b",
        "--onnx",
        onnx.0.to_str().expect("path"),
    ]);
    assert_eq!(code(&e), 0, "{}", stderr(&e));
    let out = TempFile::new("set-run.safetensors");
    let r = run(&[
        "run",
        "--set",
        "scale=n",
        "specs/yolov8n_c2f_block.yaml",
        "--input",
        "x",
        "--output",
        out.0.to_str().expect("path"),
    ]);
    assert!(stderr(&r).contains("cannot set `scale`"), "{}", stderr(&r));
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
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["reason"], "sizes");
    assert_eq!(doc["schema_version"], 1);
    let v = &doc["symbols"];
    assert_eq!(v[0]["symbol"], "H3");
    assert_eq!(v[0]["independent"], false);
    assert_eq!(v[0]["determines"][0]["symbol"], "H4");
    assert_eq!(v[0]["determines"][0]["expr"], "H3/2");
    assert_eq!(v[0]["first"], serde_json::json!([2, 4, 6, 8, 10, 12, 14, 16]));
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

/// A parsed XML element: name, attributes, children, and its own text (entities decoded).
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// All text below this element, concatenated.
    fn all_text(&self) -> String {
        let mut s = self.text.clone();
        for c in &self.children {
            s.push_str(&c.all_text());
        }
        s
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Element)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }
}

/// Decodes the five predefined entities and numeric references; `Err` on any other `&`.
fn unescape_xml(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(';')
            .ok_or_else(|| format!("unterminated entity in {s:?}"))?
            + i;
        let ent = &rest[i + 1..end];
        out.push(match ent {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ if ent.starts_with("#x") => u32::from_str_radix(&ent[2..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad reference &{ent};"))?,
            _ if ent.starts_with('#') => ent[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad reference &{ent};"))?,
            _ => return Err(format!("unknown entity &{ent};")),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    if out
        .chars()
        .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(format!("a control character in {s:?}"));
    }
    Ok(out)
}

/// A small well-formedness check of one XML document without DTD, comments or processing
/// instructions (what `fpn graph` writes): tags nest and match, attributes are quoted and
/// unique, text has no bare `<` or `&`; one root element and nothing after it.
fn parse_xml(doc: &str) -> Result<Element, String> {
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut rest = doc;
    let mut roots = 0;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        // checked before unescaping: an escaped `&gt;` (a spec's doc `<i>`) is fine
        if rest[..lt].contains('>') {
            return Err(format!("bare `>` in text {:?}", &rest[..lt]));
        }
        let text = unescape_xml(&rest[..lt])?;
        if stack.len() == 1 && !text.trim().is_empty() {
            return Err(format!("text outside the root: {text:?}"));
        }
        stack.last_mut().ok_or("no open element")?.text.push_str(&text);
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let gt = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let e = stack.pop().ok_or("close without open")?;
            if e.name != name.trim() || stack.is_empty() {
                return Err(format!("`</{name}>` closes `<{}>`", e.name));
            }
            stack.last_mut().ok_or("no parent")?.children.push(e);
            continue;
        }
        let (tag, empty) = match tag.strip_suffix('/') {
            Some(t) => (t, true),
            None => (tag, false),
        };
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c)) {
            return Err(format!("bad tag name {name:?}"));
        }
        let mut e = Element {
            name: name.to_string(),
            ..Element::default()
        };
        let mut a = tag[name_end..].trim_start();
        while !a.is_empty() {
            let eq = a
                .find('=')
                .ok_or_else(|| format!("attribute without value in <{name}>"))?;
            let key = a[..eq].trim();
            let q = a[eq + 1..].chars().next().ok_or("missing quote")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted attribute {key} in <{name}>"));
            }
            let body = &a[eq + 2..];
            let close = body.find(q).ok_or("unclosed attribute")?;
            let value = unescape_xml(&body[..close])?;
            if value.contains('<') && body[..close].contains('<') {
                return Err(format!("bare `<` in attribute {key}"));
            }
            if e.attrs.iter().any(|(k, _)| k == key) {
                return Err(format!("attribute {key} twice in <{name}>"));
            }
            e.attrs.push((key.to_string(), value));
            a = body[close + 1..].trim_start();
        }
        if stack.len() == 1 {
            roots += 1;
        }
        if empty {
            stack.last_mut().ok_or("no parent")?.children.push(e);
        } else {
            stack.push(e);
        }
    }
    if stack.len() != 1 {
        return Err(format!(
            "`<{}>` is never closed",
            stack.last().map_or("", |e| e.name.as_str())
        ));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    let mut doc = stack.pop().ok_or("empty")?;
    doc.children.pop().ok_or_else(|| "no root".to_string())
}

#[test]
fn xml_checker_refuses_what_is_not_well_formed() {
    assert!(parse_xml("<a><b x=\"1\"/>t &amp; u</a>").is_ok());
    for bad in [
        "<a><b></a>",
        "<a x=1></a>",
        "<a>x & y</a>",
        "<a>x < y</a>",
        "<a></a><b></b>",
        "<a x=\"1\" x=\"2\"></a>",
        "<a>&bogus;</a>",
        "<a>",
        "<a>\u{1}</a>",
    ] {
        assert!(parse_xml(bad).is_err(), "{bad}");
    }
}

/// The node names of a spec, from `fpn shapes --json`.
fn node_names(spec: &Path) -> Vec<String> {
    let o = fpn(&["shapes".as_ref(), "--json".as_ref(), spec.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("shapes --json");
    v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().expect("name").to_string())
        .collect()
}

/// The `<g class="node">` boxes of an SVG by their first line (the node name).
fn svg_boxes(svg: &Element) -> Vec<(String, &Element)> {
    let mut v = Vec::new();
    svg.walk(&mut |e| {
        if e.name == "g" && e.attr("class") == Some("node") {
            let name = e
                .children
                .iter()
                .find(|c| c.name == "text")
                .map(|t| t.all_text())
                .unwrap_or_default();
            v.push((name, e));
        }
    });
    v
}

/// `fpn graph` draws every shipped spec as well-formed SVG with a box per node, and DOT that
/// names every node.
#[test]
fn graph_draws_every_shipped_spec() {
    let mut specs: Vec<PathBuf> = std::fs::read_dir(repo().join("specs"))
        .expect("specs/")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 10, "{specs:?}");
    for spec in &specs {
        let names = node_names(spec);
        let o = fpn(&["graph".as_ref(), spec.as_os_str()]);
        assert_eq!(code(&o), 0, "{}: {}", spec.display(), stderr(&o));
        let text = String::from_utf8(o.stdout).expect("UTF-8");
        let svg = parse_xml(&text).unwrap_or_else(|e| panic!("{}: not well-formed: {e}", spec.display()));
        assert_eq!(svg.name, "svg");
        let boxes: Vec<String> = svg_boxes(&svg).into_iter().map(|(n, _)| n).collect();
        assert_eq!(boxes, names, "{}: one box per node, in order", spec.display());
        let o = fpn(&["graph".as_ref(), spec.as_os_str(), "--format".as_ref(), "dot".as_ref()]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let dot = String::from_utf8(o.stdout).expect("UTF-8");
        assert!(dot.starts_with("digraph ") && dot.trim_end().ends_with('}'), "{dot}");
        assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{}", spec.display());
        for n in &names {
            assert!(
                dot.contains(&format!("label=\"{n}\\n")),
                "{}: `{n}` not in the DOT",
                spec.display()
            );
        }
    }
}

/// A failing spec is drawn with its error: the node at fault in red with the diagnostic, its
/// edges red, exit 1; `-o` writes through a temporary file, refuses the spec itself and reads
/// the format from the extension.
#[test]
fn graph_draws_a_failing_spec_in_red() {
    let spec = repo().join("specs/invalid/E0323_seed000_30x30.yaml");
    let out = TempFile::new("e0323.svg");
    let o = fpn(&["graph".as_ref(), spec.as_os_str(), "-o".as_ref(), out.0.as_os_str()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("error[E0323]"), "{}", stderr(&o));
    let svg = parse_xml(&std::fs::read_to_string(&out.0).expect("the picture")).expect("well-formed");
    let boxes = svg_boxes(&svg);
    assert_eq!(boxes.len(), 13, "every node lowered");
    let red = |e: &Element| {
        e.children
            .iter()
            .any(|r| r.name == "rect" && r.attr("stroke") == Some("#cf222e"))
    };
    let faulty: Vec<&str> = boxes.iter().filter(|(_, e)| red(e)).map(|(n, _)| n.as_str()).collect();
    assert_eq!(faulty, ["block.0.2.out"]);
    let text = boxes
        .iter()
        .find(|(n, _)| n == "block.0.2.out")
        .map(|(_, e)| e.all_text())
        .unwrap_or_default();
    assert!(
        text.contains("error[E0323]") && text.contains("(concat) merges tensors of different height: 15"),
        "{text}"
    );
    let mut red_edges = 0;
    svg.walk(&mut |e| red_edges += usize::from(e.name == "polyline" && e.attr("stroke") == Some("#cf222e")));
    assert_eq!(red_edges, 3, "two inputs and one output of the concat");

    // a spec that does not even read: the error alone, in a box of its own
    let o = fpn(&[
        "graph".as_ref(),
        repo().join("specs/invalid/E0001_tab_indent.yaml").as_os_str(),
    ]);
    assert_eq!(code(&o), 1);
    let svg = parse_xml(&String::from_utf8_lossy(&o.stdout)).expect("well-formed");
    assert!(svg.all_text().contains("error[E0001]"));

    let dot = TempFile::new("e0323.dot");
    let o = fpn(&["graph".as_ref(), spec.as_os_str(), "-o".as_ref(), dot.0.as_os_str()]);
    assert_eq!(code(&o), 1);
    let text = std::fs::read_to_string(&dot.0).expect("DOT");
    assert!(text.starts_with("digraph \"PyramidBlock\""), "{text}");
    assert!(text.contains("color=red"));

    let o = fpn(&["graph".as_ref(), spec.as_os_str(), "-o".as_ref(), spec.as_os_str()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("refusing to write"), "{}", stderr(&o));
    let bad = TempFile::new("picture.png");
    let o = fpn(&["graph".as_ref(), spec.as_os_str(), "-o".as_ref(), bad.0.as_os_str()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--format svg|dot"), "{}", stderr(&o));
    assert!(!bad.0.exists());
}

/// `fpn` with `stdin` fed and extra environment variables.
fn fpn_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fpn"));
    cmd.args(args)
        .current_dir(repo())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run the fpn binary");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("fpn output")
}

/// JSON Lines of stdout.
fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `check` over several specs: each one's result, a summary line, the worst exit code; with
/// `--json`, one object per diagnostic (positions, span, help, notes), per passing spec and
/// the summary, every one with `schema_version`.
#[test]
fn check_several_specs_text_and_json() {
    let args = [
        "check",
        "tests/specs/panet_small.yaml",
        "specs/invalid/E0323_seed000_30x30.yaml",
        "no/such.yaml",
    ];
    let o = fpn(&args.map(std::ffi::OsStr::new));
    assert_eq!(code(&o), 2, "the worst: a file that cannot be read");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("tests/specs/panet_small.yaml: ok — `ParityPanetNeck`"));
    assert!(
        stderr(&o).ends_with("checked 3 specs: 1 ok, 2 failed (2 errors)\n"),
        "{}",
        stderr(&o)
    );

    let mut jargs = args.to_vec();
    jargs.insert(1, "--json");
    let o = fpn(&jargs.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
    assert_eq!(code(&o), 2);
    assert_eq!(stderr(&o), "", "under --json everything is JSON on stdout");
    let v = json_lines(&o);
    assert_eq!(v.len(), 4, "{v:?}");
    assert!(v.iter().all(|x| x["schema_version"] == 1), "{v:?}");
    assert_eq!(v[0]["reason"], "checked");
    assert_eq!(v[0]["ops"], 16);
    assert_eq!(
        v[0]["inputs"][0],
        serde_json::json!({"name": "c3", "shape": [16, 16, 16]})
    );
    let d = &v[1];
    let text = std::fs::read_to_string(repo().join("specs/invalid/E0323_seed000_30x30.yaml")).expect("spec");
    let start = d["span"]["start"].as_u64().expect("span start") as usize;
    let end = d["span"]["end"].as_u64().expect("span end") as usize;
    assert_eq!(&text[start..end], "skip");
    let mut fields = d.clone();
    fields["rendered"] = serde_json::Value::Null;
    assert_eq!(
        fields,
        serde_json::json!({
            "reason": "diagnostic",
            "schema_version": 1,
            "level": "error",
            "code": "E0323",
            "message": "`block.0.2.out` (concat) merges tensors of different height: 15 vs 16",
            "file": "specs/invalid/E0323_seed000_30x30.yaml",
            "line": 15,
            "column": 13,
            "end_line": 15,
            "end_column": 17,
            "span": {"start": start, "end": end},
            "label": "height 15 vs 16",
            "secondary": [
                {"file": "specs/invalid/E0323_seed000_30x30.yaml", "line": 13, "column": 13, "end_line": 13,
                 "end_column": 17, "span": {"start": d["secondary"][0]["span"]["start"], "end": d["secondary"][0]["span"]["end"]},
                 "message": "`block.0.1` is 16×15×15"},
                {"file": "specs/invalid/E0323_seed000_30x30.yaml", "line": 20, "column": 17, "end_line": 20,
                 "end_column": 25, "span": {"start": d["secondary"][1]["span"]["start"], "end": d["secondary"][1]["span"]["end"]},
                 "message": "`block.0.2.4` is 16×16×16"},
            ],
            "notes": ["with input `x` of 3×30×30: `block.0.1` gives height 15 here but `block.0.2.4` gives 16"],
            "help": "input `x` height 30 is not accepted (H ∈ {8, 12, 16, 20, 24, 28, …} = 4k, k ≥ 2); pad the input to 32 or crop it to 28; or make `block.0.2.4` take `block.0.1`'s size with `upsample: {match: skip}`: then 30 works, and the spec accepts H ∈ {6, 8, 10, 12, 14, 16, …} = 2k, k ≥ 3",
            "rendered": null,
        })
    );
    assert!(d["rendered"].as_str().is_some_and(|r| r.starts_with("error[E0323]: ")));
    assert_eq!(v[2]["code"], "E0000");
    assert_eq!(v[2]["message"], "cannot read `no/such.yaml`: no such file");
    assert_eq!(
        v[3],
        serde_json::json!({"reason": "summary", "schema_version": 1, "specs": 3, "ok": 1, "failed": 2,
                           "errors": 2, "warnings": 0})
    );
}

/// `-` reads the spec from stdin (shown as `<stdin>`), for `check`, `shapes` and `graph`; a
/// second `-` is refused.
#[test]
fn dash_reads_stdin() {
    let spec = std::fs::read(repo().join("tests/specs/panet_small.yaml")).expect("spec");
    let o = fpn_with(&["check", "-"], &spec, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("<stdin>: ok — `ParityPanetNeck`, 16 ops"));
    let o = fpn_with(&["shapes", "--json", "-"], &spec, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["file"], "<stdin>");
    let o = fpn_with(&["graph", "-", "--format", "dot"], &spec, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("digraph \"ParityPanetNeck\""));
    let bad = std::fs::read(repo().join("specs/invalid/E0323_seed000_30x30.yaml")).expect("spec");
    let o = fpn_with(&["check", "-"], &bad, &[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("┌─ <stdin>:15:13"), "{}", stderr(&o));
    let o = fpn_with(&["check", "-", "-"], &spec, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("give `-` once"), "{}", stderr(&o));
}

/// `--color`: `always` and `never` decide; `auto` (not a terminal here) colours only with
/// `CLICOLOR_FORCE`, and `NO_COLOR` wins over it.
#[test]
fn color_choice_and_environment() {
    let bad = ["check", "specs/invalid/E0323_seed000_30x30.yaml"];
    let ansi = |args: &[&str], env: &[(&str, &str)]| {
        let o = fpn_with(args, b"", env);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        stderr(&o).contains("\u{1b}[")
    };
    assert!(!ansi(&bad, &[]));
    assert!(ansi(&[&bad[..], &["--color", "always"]].concat(), &[("NO_COLOR", "1")]));
    assert!(!ansi(
        &[&bad[..], &["--color=never"]].concat(),
        &[("CLICOLOR_FORCE", "1")]
    ));
    assert!(ansi(&bad, &[("CLICOLOR_FORCE", "1")]));
    assert!(!ansi(&bad, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]));
    assert!(!ansi(&bad, &[("CLICOLOR_FORCE", "0")]));
    let o = fpn_with(&["--color", "sometimes", "check", "x.yaml"], b"", &[]);
    assert_eq!(code(&o), 2, "a bad --color is a usage error");
}

/// `--deny warnings` makes a warning an error: exit 1, `error[W0001]`, level `error` in JSON.
#[test]
fn deny_warnings() {
    let spec = b"name: U\ninputs:\n  x: [3, 8, 8]\nnodes:\n  a: relu\n  b: {from: x, tanh}\noutputs: [b]\n";
    let o = fpn_with(&["check", "-"], spec, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("warning[W0001]"), "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with("checked 1 spec: 1 ok, 1 warning\n"),
        "{}",
        stderr(&o)
    );
    let o = fpn_with(&["check", "--deny", "warnings", "-"], spec, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("error[W0001]"), "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with("checked 1 spec: 0 ok, 1 failed (1 error)\n"),
        "{}",
        stderr(&o)
    );
    let o = fpn_with(&["--deny=warnings", "shapes", "--json", "-"], spec, &[]);
    assert_eq!(code(&o), 1);
    let v = json_lines(&o);
    assert_eq!(
        (v.len(), &v[0]["level"], &v[0]["code"]),
        (1, &"error".into(), &"W0001".into())
    );
}

/// `check` and `shapes` count the same ops (inputs are not ops); JSON sizes are numbers when
/// constant and expressions when symbolic.
#[test]
fn op_counts_agree_and_json_numbers() {
    for spec in ["specs/panet_neck.yaml", "specs/seed001_neck_on_resnet18.yaml"] {
        let o = fpn(&["check".as_ref(), spec.as_ref()]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let ops = text.split(", ").nth(1).expect("ops").to_string();
        let o = fpn(&["shapes".as_ref(), spec.as_ref()]);
        let table = String::from_utf8_lossy(&o.stdout).into_owned();
        let total = table.lines().last().expect("total line");
        assert!(total.starts_with(&format!("total: {ops},")), "{ops} vs {total}");
        let o = fpn(&["shapes".as_ref(), "--json".as_ref(), spec.as_ref()]);
        let v = &json_lines(&o)[0];
        assert_eq!(v["ops"].to_string() + " ops", ops);
    }
    let o = fpn(&[
        "shapes".as_ref(),
        "--json".as_ref(),
        "specs/seed001_neck_on_resnet18.yaml".as_ref(),
    ]);
    let v = &json_lines(&o)[0];
    let p5 = v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "body.layer4.0.conv1");
    assert_eq!(
        p5.map(|n| n["shape"].clone()),
        Some(serde_json::json!([512, "ceil(H/32)", "ceil(W/32)"]))
    );
    assert_eq!(v["nodes"][0]["shape"], serde_json::json!([3, "H", "W"]));
    assert_eq!(
        p5.map(|n| n["flops"].clone()),
        Some(serde_json::Value::Null),
        "symbolic sizes"
    );
    let o = fpn(&["shapes".as_ref(), "--json".as_ref(), "specs/panet_neck.yaml".as_ref()]);
    let v = &json_lines(&o)[0];
    assert_eq!(v["nodes"][0]["shape"], serde_json::json!([256, 80, 80]));
    assert!(v["total_flops"].is_u64() && v["total_params"].is_u64(), "{v}");
}

/// `fpn run` without `--weights` warns that the weights are random, and prints its load and
/// forward times to stderr.
#[test]
fn run_times_and_warns_on_random_weights() {
    let out = TempFile::new("random.output.safetensors");
    let o = fpn(&[
        "run".as_ref(),
        "tests/specs/seed001_neck_small.yaml".as_ref(),
        "--input".as_ref(),
        fixture("seed001_neck_small.input.safetensors").as_os_str(),
        "--output".as_ref(),
        out.0.as_os_str(),
    ]);
    let e = stderr(&o);
    assert_eq!(code(&o), 0, "{e}");
    assert!(
        e.starts_with("warning: no `--weights`: running on random weights"),
        "{e}"
    );
    let t = e.lines().find(|l| l.starts_with("time: load ")).expect("a time line");
    let ms: Vec<f64> = t.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(ms.len(), 2, "{t}");
    assert!(ms.iter().all(|m| (0.0..600_000.0).contains(m)), "{t}");
    assert!(out.0.exists());
}

/// A spec's value tree (read by fpn's own YAML front end: YAML 1.2, as editors read it) as JSON.
fn spec_json(path: &Path) -> serde_json::Value {
    use fpn_compiler::value::{Value, ValueKind};
    fn conv(v: &Value) -> serde_json::Value {
        match &v.kind {
            ValueKind::Null => serde_json::Value::Null,
            ValueKind::Bool(b) => (*b).into(),
            ValueKind::Int(i) => (*i).into(),
            ValueKind::Float(f) => (*f).into(),
            ValueKind::Str(s) => s.as_str().into(),
            ValueKind::Seq(items) => items.iter().map(conv).collect::<Vec<_>>().into(),
            ValueKind::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.name.clone(), conv(v))).collect()),
        }
    }
    let text = std::fs::read_to_string(path).expect("spec");
    let v = fpn_compiler::front::yaml::parse(&text, fpn_compiler::span::SourceId(0)).expect("parses");
    conv(&v)
}

/// Validates `v` against `schema` (the subset of JSON Schema 2020-12 `fpn schema` uses; any
/// other keyword is refused, so the subset cannot silently grow). `Err` with the first
/// violation's path.
fn validate(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value as J;
    let Some(s) = schema.as_object() else {
        return match schema {
            J::Bool(true) => Ok(()),
            _ => Err(format!("{at}: schema {schema} refuses everything")),
        };
    };
    let fail = |what: String| Err(format!("{at}: {what}"));
    for (k, kv) in s {
        match k.as_str() {
            "description" | "$schema" | "$id" | "title" | "$defs" => {}
            "$ref" => {
                let name = kv
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or("only local $defs refs")?;
                validate(root, &root["$defs"][name], v, at)?;
            }
            "type" => {
                let types: Vec<&str> = match kv {
                    J::String(t) => vec![t.as_str()],
                    J::Array(ts) => ts.iter().filter_map(J::as_str).collect(),
                    _ => return fail(format!("bad type {kv}")),
                };
                let ok = types.iter().any(|t| match *t {
                    "null" => v.is_null(),
                    "boolean" => v.is_boolean(),
                    "integer" => v.is_i64() || v.is_u64(),
                    "number" => v.is_number(),
                    "string" => v.is_string(),
                    "array" => v.is_array(),
                    "object" => v.is_object(),
                    _ => false,
                });
                if !ok {
                    return fail(format!("{v} is not of type {kv}"));
                }
            }
            "enum" => {
                if !kv.as_array().is_some_and(|e| e.contains(v)) {
                    return fail(format!("{v} is not one of {kv}"));
                }
            }
            "anyOf" => {
                let alts = kv.as_array().ok_or("anyOf is a list")?;
                let errs: Vec<String> = alts.iter().filter_map(|a| validate(root, a, v, at).err()).collect();
                if errs.len() == alts.len() {
                    return fail(format!("no alternative fits: {}", errs.join(" | ")));
                }
            }
            "pattern" => {
                // the one pattern the schema uses: a Rust identifier, where `{scale}` may stand
                // for a part (a family's `Yolov8{scale}`)
                if kv != r"^([A-Za-z_]|\{scale\})([A-Za-z0-9_]|\{scale\})*$" {
                    return fail(format!("unsupported pattern {kv}"));
                }
                if let Some(t) = v.as_str() {
                    let t = t.replace("{scale}", "_");
                    let mut c = t.chars();
                    let ok = c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                        && c.all(|x| x.is_ascii_alphanumeric() || x == '_');
                    if !ok {
                        return fail(format!("{t:?} is not an identifier"));
                    }
                }
            }
            "properties"
            | "additionalProperties"
            | "required"
            | "minProperties"
            | "maxProperties"
            | "propertyNames" => {
                let Some(o) = v.as_object() else { continue };
                match k.as_str() {
                    "properties" => {
                        for (name, sub) in kv.as_object().ok_or("properties is a map")? {
                            if let Some(x) = o.get(name) {
                                validate(root, sub, x, &format!("{at}.{name}"))?;
                            }
                        }
                    }
                    "additionalProperties" => {
                        let known = s.get("properties").and_then(J::as_object);
                        for (name, x) in o {
                            if !known.is_some_and(|p| p.contains_key(name)) {
                                if kv == &J::Bool(false) {
                                    return fail(format!("unknown key `{name}`"));
                                }
                                validate(root, kv, x, &format!("{at}.{name}"))?;
                            }
                        }
                    }
                    "required" => {
                        for r in kv.as_array().ok_or("required is a list")? {
                            let r = r.as_str().ok_or("required names are strings")?;
                            if !o.contains_key(r) {
                                return fail(format!("missing `{r}`"));
                            }
                        }
                    }
                    "minProperties" if (o.len() as u64) < kv.as_u64().unwrap_or(0) => {
                        return fail(format!("fewer than {kv} keys"))
                    }
                    "maxProperties" if (o.len() as u64) > kv.as_u64().unwrap_or(u64::MAX) => {
                        return fail(format!("more than {kv} keys"))
                    }
                    "propertyNames" => {
                        for name in o.keys() {
                            validate(root, kv, &J::from(name.as_str()), &format!("{at} key"))?;
                        }
                    }
                    _ => {}
                }
            }
            "items" | "minItems" | "maxItems" => {
                let Some(a) = v.as_array() else { continue };
                match k.as_str() {
                    "items" => {
                        for (i, x) in a.iter().enumerate() {
                            validate(root, kv, x, &format!("{at}[{i}]"))?;
                        }
                    }
                    "minItems" if (a.len() as u64) < kv.as_u64().unwrap_or(0) => {
                        return fail(format!("fewer than {kv} items"))
                    }
                    "maxItems" if (a.len() as u64) > kv.as_u64().unwrap_or(u64::MAX) => {
                        return fail(format!("more than {kv} items"))
                    }
                    _ => {}
                }
            }
            other => return fail(format!("the validator does not support `{other}`")),
        }
    }
    Ok(())
}

/// `fpn schema` is the committed docs/fpn.schema.json; every shipped spec names it in its
/// modeline and is valid against it; specs that misuse keys, arguments or names are refused.
#[test]
fn schema_is_committed_and_validates_specs() {
    let o = fpn(&["schema".as_ref()]);
    assert_eq!(code(&o), 0);
    let printed = String::from_utf8(o.stdout).expect("UTF-8");
    let committed = std::fs::read_to_string(repo().join("docs/fpn.schema.json")).expect("docs/fpn.schema.json");
    assert!(
        printed == committed,
        "docs/fpn.schema.json is stale: run `cargo run -- schema > docs/fpn.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).expect("JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let mut shipped: Vec<PathBuf> = std::fs::read_dir(repo().join("specs"))
        .expect("specs/")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    shipped.sort();
    for spec in &shipped {
        let text = std::fs::read_to_string(spec).expect("spec");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../docs/fpn.schema.json\n"),
            "{}: no modeline",
            spec.display()
        );
        validate(&schema, &schema, &spec_json(spec), "$").unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
    }
    for (file, why) in [
        ("E0101_unknown_key_kernal", "unknown key `kernal`"),
        ("E0102_input_not_a_list", "is not of type \"array\""),
        ("E0102_stride_not_integer", "1.5 is not of type"),
        ("E0103_missing_out", "missing `out`"),
        ("E0105_input_two_sizes", "fewer than 3 items"),
        ("E0108_unknown_padding_mode", "\"reflection\" is not one of"),
        ("E0109_unknown_activation", "is not one of"),
        ("E0110_activation_with_arguments", "is not of type \"null\""),
        (
            "E0112_unknown_upsample_mode",
            "is not one of [\"nearest\",\"bilinear\"]",
        ),
        ("E0113_unknown_lateral_kind", "is not one of [\"conv\",\"cna\"]"),
        (
            "E0114_unknown_cna_names",
            "is not one of [\"torchvision\",\"ultralytics\",\"mmdet\"]",
        ),
        ("E0210_spec_name_with_space", "is not an identifier"),
        ("E0211_no_outputs", "$.outputs: fewer than 1 items"),
        ("E0221_resnet_depth", "20 is not one of [18,34,50]"),
    ] {
        let v = spec_json(&repo().join(format!("specs/invalid/{file}.yaml")));
        match validate(&schema, &schema, &v, "$") {
            Ok(()) => panic!("{file} passes the schema"),
            Err(e) => assert!(e.contains(why), "{file}: {e}"),
        }
    }
}

/// A client of `fpn lsp`: frames JSON-RPC messages to its stdin and reads them from its
/// stdout on a thread.
struct Lsp {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    rx: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Lsp {
    fn start() -> Lsp {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fpn"))
            .arg("lsp")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start fpn lsp");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::{BufRead, Read};
            loop {
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse().expect("a length");
                    }
                }
                let mut body = vec![0; len];
                if stdout.read_exact(&mut body).is_err() {
                    return;
                }
                if tx
                    .send(serde_json::from_slice(&body).expect("the server sends JSON"))
                    .is_err()
                {
                    return;
                }
            }
        });
        Lsp { child, stdin, rx }
    }

    fn raw(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stdin.write_all(bytes).expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    fn send(&mut self, msg: serde_json::Value) {
        let body = msg.to_string();
        self.raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    /// The next message from the server (a hang guard of 60 s, never a speed target).
    fn recv(&self) -> serde_json::Value {
        self.rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a message from the server")
    }

    fn request(&mut self, id: u64, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.send(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let reply = self.recv();
        assert_eq!(reply["id"], id, "{reply}");
        reply["result"].clone()
    }

    fn notify(&mut self, method: &str, params: serde_json::Value) {
        self.send(serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }
}

/// The LSP position (0-based line, UTF-16 column) of the `nth` occurrence of `what` in `text`,
/// plus `plus` characters (ASCII text).
fn lsp_pos(text: &str, what: &str, nth: usize, plus: usize) -> serde_json::Value {
    let at = text.match_indices(what).nth(nth).expect("in the text").0 + plus;
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    serde_json::json!({"line": line, "character": col})
}

/// `fpn lsp` end to end over JSON-RPC: diagnostics with `fpn check`'s code and help on open and
/// change, hover with op, shape, parameters and FLOPs, go to definition of references and
/// blocks, completion of argument keys and op keywords, a bad frame survived, shutdown and
/// exit with 0.
#[test]
fn lsp_speaks_json_rpc() {
    let bad = std::fs::read_to_string(repo().join("specs/invalid/E0323_seed000_30x30.yaml")).expect("spec");
    let good = std::fs::read_to_string(repo().join("specs/seed000_pyramid_block.yaml")).expect("spec");
    let uri = "file:///work/spec.yaml";
    let mut lsp = Lsp::start();
    let init = lsp.request(
        1,
        "initialize",
        serde_json::json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    assert_eq!(init["capabilities"]["hoverProvider"], true, "{init}");
    assert_eq!(init["capabilities"]["textDocumentSync"], 1);
    lsp.notify("initialized", serde_json::json!({}));

    // open the failing spec: the diagnostic of `fpn check`, at its place
    lsp.notify(
        "textDocument/didOpen",
        serde_json::json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": bad}}),
    );
    let pub1 = lsp.recv();
    assert_eq!(pub1["method"], "textDocument/publishDiagnostics");
    let diags = pub1["params"]["diagnostics"].as_array().expect("diagnostics").clone();
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    let check = fpn(&[
        "check".as_ref(),
        "--json".as_ref(),
        "specs/invalid/E0323_seed000_30x30.yaml".as_ref(),
    ]);
    let cj = &json_lines(&check)[0];
    assert_eq!(d["code"], cj["code"]);
    assert_eq!(d["severity"], 1);
    let help = format!("help: {}", cj["help"].as_str().expect("help"));
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(cj["message"].as_str().unwrap_or("-")) && m.ends_with(&help)),
        "{d}"
    );
    assert_eq!(
        d["range"]["start"],
        serde_json::json!({"line": cj["line"].as_u64().unwrap_or(0) - 1, "character": cj["column"].as_u64().unwrap_or(0) - 1})
    );
    assert_eq!(d["relatedInformation"][0]["message"], "`block.0.1` is 16×15×15");

    // a frame that is not JSON is answered with a parse error and skipped
    lsp.raw(b"Content-Length: 5\r\n\r\nnope!");
    assert_eq!(lsp.recv()["error"]["code"], -32700);

    // fix it: no diagnostics
    lsp.notify(
        "textDocument/didChange",
        serde_json::json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": good}]}),
    );
    let pub2 = lsp.recv();
    assert_eq!(pub2["params"]["diagnostics"], serde_json::json!([]), "{pub2}");

    // hover on the node `block` in `outputs: [block]`
    let at = |what: &str, nth: usize, plus: usize| serde_json::json!({"textDocument": {"uri": uri}, "position": lsp_pos(&good, what, nth, plus)});
    let h = lsp.request(2, "textDocument/hover", at("outputs: [block]", 0, 11));
    let md = h["contents"]["value"].as_str().expect("markdown");
    assert!(md.starts_with("**`block`** — `act`"), "{md}");
    assert!(
        md.contains("output `16×16×16`") && md.contains("parameters: 0") && md.contains("FLOPs: 4096"),
        "{md}"
    );
    // hover on the first conv op of the block body: every node it makes is found by its span
    let h = lsp.request(
        3,
        "textDocument/hover",
        at("- conv: {out: cout, kernel: 3, stride: 2", 0, 3),
    );
    let md = h["contents"]["value"].as_str().expect("markdown");
    assert!(md.contains("— `conv`") && md.contains("parameters: 448"), "{md}");

    // definition: `block` in outputs → its node key; `pyramid_block` → the block's key
    let def = lsp.request(4, "textDocument/definition", at("outputs: [block]", 0, 11));
    assert_eq!(def["uri"], uri);
    assert_eq!(def["range"]["start"], lsp_pos(&good, "  block: {pyramid_block", 0, 2));
    let def = lsp.request(5, "textDocument/definition", at("{pyramid_block: {cin", 0, 3));
    assert_eq!(def["range"]["start"], lsp_pos(&good, "  pyramid_block:", 0, 2));

    // completion inside a conv's map: its argument keys first, then op keywords and names
    let c = lsp.request(6, "textDocument/completion", at("kernel: 3, padding: 1}", 0, 0));
    let labels: Vec<&str> = c["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert_eq!(
        labels[..8],
        [
            "bias",
            "dilation",
            "groups",
            "kernel",
            "out",
            "padding",
            "padding_mode",
            "stride"
        ]
    );
    for want in ["conv", "upsample", "fpn", "pyramid_block", "block", "x"] {
        assert!(labels.contains(&want), "{want} not offered: {labels:?}");
    }

    // hover on a reference to an output of a preset: the node it names, symbolic shape
    let neck = std::fs::read_to_string(repo().join("specs/seed001_neck_on_resnet18.yaml")).expect("spec");
    let uri2 = "file:///work/neck.yaml";
    lsp.notify(
        "textDocument/didOpen",
        serde_json::json!({"textDocument": {"uri": uri2, "languageId": "yaml", "version": 1, "text": neck}}),
    );
    assert_eq!(lsp.recv()["params"]["diagnostics"], serde_json::json!([]));
    let pos = lsp_pos(&neck, "body.c4", 0, 5);
    let h = lsp.request(
        9,
        "textDocument/hover",
        serde_json::json!({"textDocument": {"uri": uri2}, "position": pos}),
    );
    let md = h["contents"]["value"].as_str().expect("markdown");
    assert!(
        md.contains("— `act`") && md.contains("output `256×ceil(H/16)×ceil(W/16)`") && md.contains("FLOPs: symbolic"),
        "{md}"
    );
    let def = lsp.request(
        10,
        "textDocument/definition",
        serde_json::json!({"textDocument": {"uri": uri2}, "position": pos}),
    );
    assert_eq!(def["range"]["start"], lsp_pos(&neck, "  body:", 0, 2));

    let unknown = {
        lsp.send(serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "workspace/symbol", "params": {}}));
        lsp.recv()
    };
    assert_eq!(unknown["error"]["code"], -32601);
    assert_eq!(
        lsp.request(8, "shutdown", serde_json::Value::Null),
        serde_json::Value::Null
    );
    lsp.notify("exit", serde_json::Value::Null);
    let status = lsp.child.wait().expect("the server exits");
    assert_eq!(status.code(), Some(0));
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

/// `fpn export` takes `run`'s key rewriting: a checkpoint under another prefix exports with
/// `--map`, and without it the missing tensors are reported (exit 1) with the map to use.
#[test]
fn export_rewrites_checkpoint_keys_like_run() {
    let weights = repo().join("fpn-compiler/tests/fixtures/onnx/unet_decoder.weights.safetensors");
    let tensors = fpn_runtime::read_tensors(&weights).expect("fixture weights");
    let renamed: Vec<(String, fpn_runtime::ndarray::ArrayD<f32>)> =
        tensors.into_iter().map(|(n, t)| (format!("model.{n}"), t)).collect();
    let views: Vec<(&str, fpn_runtime::ndarray::ArrayViewD<f32>)> =
        renamed.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
    let ckpt = TempFile::new("prefixed.safetensors");
    fpn_runtime::write_tensors(&ckpt.0, &views).expect("write");
    let onnx = TempFile::new("prefixed.onnx");
    let args = |extra: &[&str]| {
        let mut a: Vec<std::ffi::OsString> = vec![
            "export".into(),
            "specs/unet_decoder.yaml".into(),
            "--onnx".into(),
            onnx.0.clone().into(),
            "--weights".into(),
            ckpt.0.clone().into(),
        ];
        a.extend(extra.iter().map(Into::into));
        a
    };
    let o = fpn(&args(&[]).iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("--map"), "{}", stderr(&o));
    let o = fpn(&args(&["--strip-prefix", "model."])
        .iter()
        .map(|s| s.as_os_str())
        .collect::<Vec<_>>());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = fpn_compiler::back::onnx::from_bytes(&std::fs::read(&onnx.0).expect("written")).expect("decodes");
    let names: Vec<String> = m
        .graph
        .expect("graph")
        .initializer
        .iter()
        .filter_map(|t| t.name.clone())
        .collect();
    assert!(names.iter().any(|n| n == "inc.0.weight"), "{names:?}");
}
