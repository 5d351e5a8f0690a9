//! One-op PyTorch parity (issue 10, acceptance): for every case of
//! `tests/fixtures/ops_torch.json` (a few hundred one-op specs over every primitive op, made by
//! `python3 tools/op_fixtures.py`), `fpn check` must accept exactly when PyTorch accepts and
//! give PyTorch's output shape; so must fpn-runtime, both under the compiler (the interpreter,
//! for accepted specs) and applied directly with the same config (every case, so a spec that
//! `check` refuses is also seen refused by the runtime). The same spec with an unused
//! `symbols: {H: 1..}` must get the same verdict from `check`.
//!
//! Every disagreement is listed (config, PyTorch's verdict, check's, the interpreter's and the
//! runtime's), not only the first.

use crate::op_common;

use op_common::{check, interp, runtime, with_symbol, yaml, Case, Verdict};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::path::Path;

struct Fixture {
    id: String,
    case: Case,
    yaml: String,
    torch: Verdict,
}

fn load() -> (String, Vec<Fixture>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ops_torch.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let doc: J = serde_json::from_str(&text).expect("fixture is JSON");
    let version = doc["torch"].as_str().unwrap_or("?").to_string();
    let cases = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let inputs = c["inputs"]
                .as_object()
                .expect("inputs")
                .iter()
                .map(|(n, s)| {
                    let v: Vec<i64> = s
                        .as_array()
                        .expect("shape")
                        .iter()
                        .map(|d| d.as_i64().expect("int"))
                        .collect();
                    (n.clone(), [v[0], v[1], v[2]])
                })
                .collect();
            let t = &c["torch"];
            let torch = if t["accepted"].as_bool().expect("accepted") {
                let s: Vec<i64> = t["shape"]
                    .as_array()
                    .expect("shape")
                    .iter()
                    .map(|d| d.as_i64().expect("int"))
                    .collect();
                Verdict::Accept([s[0], s[1], s[2]])
            } else {
                Verdict::Refuse(t["error"].as_str().unwrap_or("").to_string())
            };
            Fixture {
                id: c["id"].as_str().expect("id").to_string(),
                case: Case {
                    inputs,
                    node: c["node"].clone(),
                    from: c.get("from").and_then(J::as_str).map(str::to_string),
                    part: c.get("part").and_then(J::as_u64).and_then(|p| usize::try_from(p).ok()),
                },
                yaml: c["yaml"].as_str().expect("yaml").to_string(),
                torch,
            }
        })
        .collect();
    (version, cases)
}

#[test]
fn check_and_runtime_agree_with_pytorch_on_one_op_specs() {
    let (version, cases) = load();
    assert!(cases.len() >= 300, "the fixture has {} cases", cases.len());
    let mut bad = Vec::new();
    let mut per_op: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for f in &cases {
        // The Rust renderer (used by op_props.rs) writes the same spec as the Python one, up to
        // float formatting; the fixture's own text is what is compiled.
        let (chk, compiled) = check(&f.yaml);
        let (chk_sym, _) = check(&with_symbol(&f.yaml));
        let itp = compiled.as_ref().map(|c| interp(c, &f.case));
        let rt = runtime(&f.case);
        let mut what = Vec::new();
        if !chk.agrees(&f.torch) {
            what.push("check");
        }
        if !chk_sym.agrees(&f.torch) {
            what.push("check with a symbol");
        }
        if let Some(i) = &itp {
            if !i.agrees(&f.torch) {
                what.push("interp");
            }
        }
        if !rt.agrees(&f.torch) {
            what.push("runtime");
        }
        let e = per_op.entry(f.case.op()).or_default();
        e.0 += 1;
        if !what.is_empty() {
            e.1 += 1;
            bad.push(format!(
                "{} [{} disagree{}]: {}\n    PyTorch: {}\n    check:   {}\n    check with `symbols: {{H: 1..}}`: {}\n    interp:  {}\n    runtime: {}",
                f.id,
                what.join(", "),
                if what.len() == 1 { "s" } else { "" },
                f.case.describe(),
                f.torch,
                chk,
                chk_sym,
                itp.map(|v| v.to_string()).unwrap_or_else(|| "(not run: check refused)".into()),
                rt
            ));
        }
        // Sanity: the Rust spec renderer reads back as the same spec (checked by compiling it).
        let (again, _) = check(&yaml(&f.case));
        assert!(
            again.agrees(&chk),
            "{}: the Rust-rendered spec gives {again}, the fixture's text {chk}\n{}",
            f.id,
            yaml(&f.case)
        );
    }
    if !bad.is_empty() {
        let summary: Vec<String> = per_op
            .iter()
            .filter(|(_, (_, b))| *b > 0)
            .map(|(op, (n, b))| format!("{op}: {b} of {n}"))
            .collect();
        panic!(
            "{} of {} one-op specs disagree with PyTorch {version} (tests/fixtures/ops_torch.json; by op: {}):\n\n{}\n",
            bad.len(),
            cases.len(),
            summary.join(", "),
            bad.join("\n\n")
        );
    }
}
