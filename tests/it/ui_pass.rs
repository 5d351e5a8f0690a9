//! The `tests/ui/pass_*.rs` UI cases: each must compile (here, as a module of this test binary)
//! and its `main` must succeed.

macro_rules! pass_cases {
    ($($name:ident),* $(,)?) => {
        /// Every `tests/ui/pass_*.rs` included below.
        const PASS_CASES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[allow(dead_code)] // the compile-fail cases are built with `-A dead_code` too
            mod $name {
                include!(concat!("../ui/", stringify!($name), ".rs"));

                #[test]
                fn compiles_and_runs() {
                    main().expect(concat!("tests/ui/", stringify!($name), ".rs"));
                }
            }
        )*
    };
}

// A new `tests/ui/pass_*.rs` gets its name here (`every_pass_case_is_included` checks).
pass_cases!(
    pass_dsl_neck,
    pass_dsl_seed000_32x32,
    pass_family,
    pass_include_seed000,
    pass_prelude_names,
    pass_quoted_names
);

#[test]
fn every_pass_case_is_included() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/ui")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("pass_") && n.ends_with(".rs"))
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect();
    found.sort();
    let mut listed = PASS_CASES.to_vec();
    listed.sort();
    assert_eq!(found, listed, "tests/ui/pass_*.rs vs the list in tests/it/ui_pass.rs");
}
