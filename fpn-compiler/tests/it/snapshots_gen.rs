//! insta snapshots of the generated Rust of every shipped spec: review their diffs like code.
//! Update with `INSTA_UPDATE=always cargo test -p fpn-compiler --test it snapshots_gen`. The
//! snapshots stay in `tests/snapshots/` under their old names (`snapshots_gen__<spec>.snap`).
use fpn_compiler::back::rust::{generate, Options};
use fpn_compiler::span::SourceMap;
use std::path::PathBuf;

#[test]
fn generated_code_of_every_shipped_spec() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("specs dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 8, "expected the shipped specs");
    for spec in specs {
        let mut sources = SourceMap::new();
        let c = fpn_compiler::compile_file(&mut sources, &spec).expect("shipped spec compiles");
        let code = generate(&c.graph, &c.analysis, &Options::default()).expect("generates");
        let again = generate(&c.graph, &c.analysis, &Options::default()).expect("generates");
        assert_eq!(code, again, "generation is deterministic");
        let name = spec
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(format!("snapshots_gen__{name}"), code);
        });
    }
}
