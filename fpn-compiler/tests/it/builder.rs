//! The build.rs door: `Builder` writes one module per spec and renders errors like the CLI.
use fpn_compiler::Builder;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn builder_writes_a_module_per_spec() {
    let out = std::env::temp_dir().join(format!("fpn-builder-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let files = Builder::new()
        .spec(root().join("specs/seed001_neck.yaml"))
        .spec(root().join("specs/seed000_pyramid_block.yaml"))
        .out_dir(&out)
        .compile()
        .expect("shipped specs compile");
    assert_eq!(files.len(), 2);
    let code = std::fs::read_to_string(out.join("seed001_neck.rs")).expect("written");
    assert!(code.contains("pub struct Seed001Neck"));
    assert!(syn::parse_file(&code).is_ok());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn builder_reports_every_broken_spec_with_locations() {
    let out = std::env::temp_dir().join(format!("fpn-builder-bad-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let err = Builder::new()
        .spec(root().join("specs/invalid/E0323_seed000_30x30.yaml"))
        .spec(root().join("specs/invalid/E0321_seed000_4x4.yaml"))
        .out_dir(&out)
        .compile()
        .expect_err("invalid specs fail")
        .to_string();
    assert!(err.contains("error[E0323]") && err.contains("error[E0321]"), "{err}");
    assert!(
        err.contains("E0323_seed000_30x30.yaml:") && err.contains("help:"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
