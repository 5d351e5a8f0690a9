//! Every shipped spec (`specs/*.yaml`) compiles through the real front end and inference into
//! generated Rust that parses, is deterministic and contains no panicking calls; and the
//! interpreter runs each spec at its smallest accepted size.

use fpn_compiler::back::rust::{generate, Options};
use fpn_compiler::interp::{self, Params};
use fpn_compiler::ir::Op;
use fpn_compiler::span::SourceMap;
use proc_macro2::{TokenStream, TokenTree};

fn idents(ts: TokenStream, out: &mut Vec<String>) {
    for t in ts {
        match t {
            TokenTree::Group(g) => idents(g.stream(), out),
            TokenTree::Ident(i) => out.push(i.to_string()),
            _ => {}
        }
    }
}

fn shipped_specs() -> Vec<(std::path::PathBuf, fpn_compiler::Compiled)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let mut sources = SourceMap::new();
            let Ok(c) = fpn_compiler::compile_file(&mut sources, &path) else {
                panic!("{} does not compile", path.display());
            };
            (path, c)
        })
        .collect()
}

#[test]
fn shipped_specs_generate_clean_code() {
    for (path, c) in shipped_specs() {
        let text =
            generate(&c.graph, &c.analysis, &Options::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            text,
            generate(&c.graph, &c.analysis, &Options::default()).expect("again")
        );
        syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut ids = Vec::new();
        idents(text.parse().expect("tokens"), &mut ids);
        assert!(
            !ids.iter()
                .any(|i| i == "unwrap" || i == "expect" || i == "panic" || i == "unsafe"),
            "{}",
            path.display()
        );
    }
}

/// Every shipped spec through the interpreter at its smallest accepted size (~3 s in a debug
/// build now that the numeric crates are optimised in dev and test profiles).
#[test]
fn shipped_specs_run_in_the_interpreter() {
    for (path, c) in shipped_specs() {
        // the smallest size every symbol accepts (fixed sizes as given)
        let env: Option<Vec<i64>> = c
            .sizes
            .iter()
            .map(|s| s.as_ref().ok().and_then(|a| a.first(1).first().copied()))
            .collect();
        let Some(env) = env else { continue };
        let params = Params::init(&c.analysis, 0);
        let mut tensors = Vec::new();
        for &i in &c.graph.inputs {
            let Op::Input(fpn_compiler::ops::input::Input { name, channels, size }) = &c.graph.node(i).op else {
                continue;
            };
            let h = size[0].eval(&env).expect("h") as usize;
            let w = size[1].eval(&env).expect("w") as usize;
            tensors.push((
                name.clone(),
                fpn_runtime::Tensor::from_elem([1, *channels as usize, h, w], 0.5),
            ));
        }
        let views: Vec<(&str, _)> = tensors.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
        let out =
            interp::run(&c.graph, &c.analysis, &params, &views).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(out.len(), c.graph.outputs.len());
    }
}
