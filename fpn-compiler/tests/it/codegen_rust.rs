//! Properties of the Rust back end's text: parses, deterministic, no panicking calls, docs on
//! every public item, and hostile names are refused or stay inside string literals.

use crate::codegen_support;

use codegen_support::{fpn3, two, Builder};
use fpn_compiler::back::rust::{generate, GenError, Options};
use fpn_compiler::dim::Dim;
use fpn_compiler::infer::Analysis;
use fpn_compiler::ir::{Graph, Op};
use proc_macro2::{TokenStream, TokenTree};

fn gen(g: &Graph, a: &Analysis) -> Result<String, GenError> {
    generate(g, a, &Options::default())
}

/// Idents used as code (not inside literals), with whether a `!` follows.
fn code_idents(ts: TokenStream, out: &mut Vec<(String, bool)>) {
    let toks: Vec<TokenTree> = ts.into_iter().collect();
    for (k, t) in toks.iter().enumerate() {
        match t {
            TokenTree::Group(g) => code_idents(g.stream(), out),
            TokenTree::Ident(i) => {
                let bang = matches!(toks.get(k + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
                out.push((i.to_string(), bang));
            }
            _ => {}
        }
    }
}

fn assert_clean(text: &str) {
    let file = syn::parse_file(text).expect("generated code parses");
    let ts: TokenStream = text.parse().expect("tokens");
    let mut ids = Vec::new();
    code_idents(ts, &mut ids);
    for (id, bang) in &ids {
        assert!(
            !matches!(id.as_str(), "unwrap" | "expect" | "unwrap_unchecked" | "unsafe"),
            "generated code uses `{id}`"
        );
        assert!(
            !(*bang
                && matches!(
                    id.as_str(),
                    "panic" | "unreachable" | "todo" | "unimplemented" | "assert" | "assert_eq"
                )),
            "generated code uses `{id}!`"
        );
    }
    assert!(
        !ids.iter().any(|(id, _)| id == "use"),
        "no `use` items (two models must fit in one module)"
    );
    // docs on every public item
    let has_doc = |attrs: &[syn::Attribute]| attrs.iter().any(|a| a.path().is_ident("doc"));
    for item in &file.items {
        match item {
            syn::Item::Struct(s) => {
                assert!(has_doc(&s.attrs), "struct {} has no doc", s.ident);
                for f in &s.fields {
                    if matches!(f.vis, syn::Visibility::Public(_)) {
                        assert!(has_doc(&f.attrs), "field {:?} of {} has no doc", f.ident, s.ident);
                    }
                }
            }
            syn::Item::Impl(i) => {
                for it in &i.items {
                    match it {
                        syn::ImplItem::Fn(f) => assert!(has_doc(&f.attrs), "fn {} has no doc", f.sig.ident),
                        syn::ImplItem::Const(c) => assert!(has_doc(&c.attrs), "const {} has no doc", c.ident),
                        _ => {}
                    }
                }
            }
            other => panic!("unexpected item {}", quote::quote!(#other)),
        }
    }
    assert_eq!(file.items.len(), 4, "struct, inputs, outputs, impl");
}

#[test]
fn parses_is_deterministic_and_clean() {
    for (g, a) in [fpn3(), two()] {
        let t1 = gen(&g, &a).expect("generates");
        let t2 = gen(&g, &a).expect("generates");
        assert_eq!(t1, t2);
        // fresh graph objects too (no dependence on hash seeds or addresses)
        assert_clean(&t1);
        let facade = generate(
            &g,
            &a,
            &Options {
                runtime_path: "::fpn::runtime".into(),
                ..Options::default()
            },
        )
        .expect("generates");
        assert_clean(&facade);
        assert!(facade.contains("::fpn::runtime::Conv2d::new(") && !facade.contains("fpn_runtime"));
    }
    let (g, a) = fpn3();
    let (g2, a2) = fpn3();
    assert_eq!(gen(&g, &a).expect("a"), gen(&g2, &a2).expect("b"));
}

#[test]
fn struct_doc_lists_shapes_and_parameter_count() {
    let (g, a) = fpn3();
    let t = gen(&g, &a).expect("generates");
    assert!(t.contains("/// - `x`: `[N, 3, H, W]` (NCHW)."));
    assert!(t.contains("/// - `p6`: `[N, 8, (H+11)/16, (W+11)/16]` (node `p6`)."));
    assert!(t.contains("Parameters: 1277 in 24 tensors"));
    assert!(t.contains("A tiny three-level feature pyramid"));
}

#[test]
fn optimisations_are_applied() {
    let (g, a) = fpn3();
    let t = gen(&g, &a).expect("generates");
    // conv-BN-ReLU stem: one prepared conv with the folded bias and a ReLU epilogue, no batch_norm
    // (calls compared without white space: the formatter breaks them over lines)
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(compact
        .contains("letv3_stem_relu=self.p_backbone_conv1.forward(v0_x.view(),&fpn_runtime::ConvOpts::default())?;"));
    assert!(t.contains("Self::fold_bn(\n            &mut p_backbone_conv1_weight"));
    assert!(t.contains("p_backbone_conv1: fpn_runtime::Conv2d,"));
    // init builds convs infallibly, from_weights with `?`
    assert_eq!(t.matches("fpn_runtime::Conv2d::new_deferred(").count(), 7);
    assert_eq!(t.matches("fpn_runtime::Conv2d::new(").count(), 7);
    // the shared head is folded and prepared once (SiLU epilogue, once per constructor) and
    // used twice with the stored params
    assert_eq!(compact.matches("self.p_head_conv.forward(").count(), 2);
    assert_eq!(t.matches("act: fpn_runtime::Activation::Silu").count(), 2);
    assert!(!t.contains("params: Some("));
    // q.conv is an output itself, so its BN is not folded
    assert!(t.contains("fpn_runtime::batch_norm(v25_q_conv.view(), &self.p_q_bn)?"));
    // adds accumulate into a dying operand; standalone activations run in place
    assert!(t.contains("let mut v11_p4 = v10_up5;"));
    assert!(t.contains("let mut v17_p5 = v7_lat5;"));
    // intermediates go back to the model's arena after their last use, inside its run
    assert!(t.contains("fpn_runtime::recycle(v5_c4_relu);"));
    assert!(!t.contains("recycle(v0_x)"), "views are not recycled");
    assert!(compact.contains("self.arena.run_forward(||{"));
}

fn conv_graph(prefix: &str, input: &str, model: &str) -> (Graph, Analysis) {
    let mut b = Builder::new(model, &["H"]);
    let x = b.input(input, 2, [Dim::Sym(0), Dim::Sym(0)]);
    let c = b.conv("c", x, prefix, 2, 1, 1, 0, true);
    b.output("y", c);
    b.done()
}

#[test]
fn hostile_names_are_refused() {
    for prefix in ["x; std::process::exit(1)", "a b", "héllo", "a-b", "x\"y"] {
        let (g, a) = conv_graph(prefix, "x", "M");
        match gen(&g, &a) {
            Err(GenError::BadName { what: "parameter", .. }) => {}
            other => panic!("prefix {prefix:?}: expected BadName, got {other:?}"),
        }
    }
    for input in ["fn", "self", "r#fn", "1x", "_", "x y", "Self"] {
        let (g, a) = conv_graph("c", input, "M");
        assert!(
            matches!(gen(&g, &a), Err(GenError::BadName { what: "input", .. })),
            "input {input:?}"
        );
    }
    for model in ["fn", "Self", "M; fn evil() {}", "crate"] {
        let (g, a) = conv_graph("c", "x", model);
        assert!(
            matches!(gen(&g, &a), Err(GenError::BadName { what: "model name", .. })),
            "model {model:?}"
        );
    }
    let (mut g, a) = conv_graph("c", "x", "M");
    g.outputs[0].name = "loop".into();
    assert!(matches!(gen(&g, &a), Err(GenError::BadName { what: "output", .. })));
    let (g, a) = conv_graph("c", "x", "M");
    for path in ["fpn_runtime; fn evil() {}", "", "a::"] {
        assert!(
            matches!(
                generate(
                    &g,
                    &a,
                    &Options {
                        runtime_path: path.into(),
                        ..Options::default()
                    }
                ),
                Err(GenError::RuntimePath(_))
            ),
            "{path:?}"
        );
    }
}

#[test]
fn keyword_like_prefixes_are_safe_fields() {
    // conv `fn` becomes the field `p_fn`, a plain identifier
    let (g, a) = conv_graph("fn", "x", "M");
    let t = gen(&g, &a).expect("generates");
    assert!(t.contains("p_fn: fpn_runtime::Conv2d"));
    assert!(t.contains("(\"fn.weight\", &[2, 2, 1, 1])"));
    assert_clean(&t);
    // upper case maps to lower case
    let (g, a) = conv_graph("Neck.Lat", "x", "M");
    assert!(gen(&g, &a)
        .expect("generates")
        .contains("p_neck_lat: fpn_runtime::Conv2d"));
}

#[test]
fn colliding_field_names_are_refused() {
    let mut b = Builder::new("M", &["H"]);
    let x = b.input("x", 2, [Dim::Sym(0), Dim::Sym(0)]);
    let c1 = b.conv("c1", x, "a_b", 2, 1, 1, 0, false);
    let c2 = b.conv("c2", x, "a.b", 2, 1, 1, 0, false);
    let s = b.merge("s", Op::Add(fpn_compiler::ops::merge::Add), &[c1, c2], None);
    b.output("y", s);
    assert!(matches!(gen(&b.g, &b.a), Err(GenError::Collision { .. })));
}

#[test]
fn hostile_text_stays_in_literals() {
    let (mut g, a) = conv_graph("c", "x", "M");
    g.doc = Some("\"] pub fn evil() {} #[doc = \"\n*/ panic!(\"boom\") /*\n{}{0}".into());
    g.graph[petgraph::graph::NodeIndex::new(1)].name = "c\"); panic!(\"x".into();
    g.symbols[0].name = "H}{".into();
    let t = gen(&g, &a).expect("generates");
    assert_clean(&t);
    // the text only ever appears in doc comments and string literals
    let file = syn::parse_file(&t).expect("parses");
    let mut fns = Vec::new();
    for item in &file.items {
        if let syn::Item::Impl(i) = item {
            for it in &i.items {
                if let syn::ImplItem::Fn(f) = it {
                    fns.push(f.sig.ident.to_string());
                }
            }
        }
    }
    assert_eq!(
        fns,
        [
            "init",
            "from_weights",
            "from_safetensors",
            "from_safetensors_with",
            "from_safetensors_bytes",
            "forward",
            "recycle",
            "release_memory",
            "held_memory",
            "check_sizes"
        ]
    );
}

#[test]
fn non_finite_constants_are_refused() {
    let mut b = Builder::new("M", &["H"]);
    let x = b.input("x", 2, [Dim::Sym(0), Dim::Sym(0)]);
    let n = b.bn("n", x, "n");
    b.output("y", n);
    if let Op::BatchNorm(fpn_compiler::ops::norm::BatchNorm { eps }) = &mut b.g.graph[n].op {
        *eps = f64::NAN;
    }
    assert!(matches!(gen(&b.g, &b.a), Err(GenError::Unsupported(_))));
}

#[test]
fn shared_conv_with_other_params_passes_them_in_the_options() {
    // Two convs share the weights of `shared` but not the padding: one prepared field, built
    // with the first conv's params; the second call passes its own.
    let mut b = Builder::new("M", &["H"]);
    let x = b.input("x", 4, [Dim::Sym(0), Dim::Sym(0)]);
    let c1 = b.conv("c1", x, "shared", 4, 3, 1, 1, true);
    let c2 = b.conv("c2", x, "shared", 4, 3, 1, 0, true);
    b.output("y1", c1);
    b.output("y2", c2);
    let t = gen(&b.g, &b.a).expect("generates");
    assert_eq!(t.matches("p_shared: fpn_runtime::Conv2d,").count(), 1);
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(compact.matches("self.p_shared.forward(").count(), 2);
    assert_eq!(compact.matches("ConvOpts::default()").count(), 1);
    assert_eq!(
        compact
            .matches("&fpn_runtime::ConvOpts{params:::core::option::Option::Some(&fpn_runtime::Conv2dParams{")
            .count(),
        1
    );
    assert_eq!(t.matches("padding: [0, 0, 0, 0]").count(), 1);
    assert_clean(&t);
}

/// A spec's `doc:` never becomes a doctest or code: a fence, an indented block and a
/// text-direction code point in it are rendered inert. Checked by running `rustdoc --test` on
/// the generated doc text (rustdoc runs every Rust code block of a markdown file): 0 tests.
#[test]
fn spec_doc_is_inert_text() {
    let doc = "Neck.\n\n```\nlet _ = std::fs::write::<&str, &str>; panic!(\"doctest ran\");\n```\n\n    \
               std::process::exit(3);\n\n~~~rust\npanic!()\n~~~\n````` five ticks\nbidi \u{202E}gnp.exe \u{2066}x\u{2069}";
    let spec = format!(
        "name: docs\ndoc: {}\ninputs: {{x: [3, 8, 8]}}\nnodes:\n  a: {{conv: {{out: 4, kernel: 1}}}}\noutputs: [a]\n",
        serde_json::to_string(doc).expect("json string")
    );
    let mut sources = fpn_compiler::span::SourceMap::default();
    let c = fpn_compiler::compile_yaml(&mut sources, "docs.yaml", &spec).expect("spec compiles");
    assert_eq!(c.graph.doc.as_deref(), Some(doc));
    let text = gen(&c.graph, &c.analysis).expect("generates");
    assert_clean(&text);
    for bad in ['\u{202E}', '\u{2066}', '\u{2069}'] {
        assert!(!text.contains(bad), "generated code keeps {bad:?}");
    }
    assert!(text.contains("<U+202E>gnp.exe"));
    // The model's doc comment, as rustdoc sees it.
    let file = syn::parse_file(&text).expect("parses");
    let md: String = file
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Struct(s) if s.ident == c.graph.name => Some(&s.attrs),
            _ => None,
        })
        .expect("model struct")
        .iter()
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s), ..
                }) => Some(s.value() + "\n"),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(md.contains("std::fs::write"), "the doc text is kept: {md}");
    let dir = std::env::temp_dir().join(format!("fpn-inert-doc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("doc.md");
    std::fs::write(&path, &md).expect("write");
    let rustdoc = std::env::var("RUSTDOC").unwrap_or_else(|_| "rustdoc".into());
    let out = std::process::Command::new(rustdoc).arg("--test").arg(&path).output();
    let _ = std::fs::remove_dir_all(&dir);
    let Ok(out) = out else {
        eprintln!("rustdoc not found; checked the text only");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rustdoc --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("running 0 tests"),
        "a doctest came out of the spec's doc:\n{stdout}"
    );
}
