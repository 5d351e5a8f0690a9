//! The `fpn!{}` and `include_spec!` macros: thin doors into `fpn-compiler`.
//!
//! Both compile a spec at build time and expand to the generated model module's items
//! (against `::fpn::runtime`). Errors become `compile_error!`s: for `fpn!` each at the offending
//! token, all of them in one build; for `include_spec!` rendered with the YAML file:line:col and
//! snippet, at the path literal. A stub type with the spec's name is still emitted on error, so
//! one mistake does not cascade into "cannot find type" errors.

use fpn_compiler::back::rust::{generate, Options};
use fpn_compiler::diag::Diagnostic;
use fpn_compiler::front::dsl;
use fpn_compiler::span::{SourceId, SourceMap};
use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};

fn options() -> Options {
    Options {
        runtime_path: "::fpn::runtime".to_string(),
    }
}

/// Declares a topology inline, in the same language as the YAML specs (see docs/spec.md):
///
/// ```ignore
/// fpn::fpn! {
///     name: Tiny,
///     inputs: { x: [3, 32, 32] },
///     nodes: { y: { conv: { out: 8, kernel: 3, padding: 1 } }, z: relu },
///     outputs: [z],
/// }
/// ```
/// expands to `pub struct Tiny`, `TinyInputs`, `TinyOutputs` with `init`, `from_safetensors`
/// and `forward`.
#[proc_macro]
pub fn fpn(input: TokenStream) -> TokenStream {
    let input = TokenStream2::from(input);
    let (spans, source) = dsl::token_table(input.clone(), "fpn!");
    let to_span = |d: &Diagnostic| spans.get(d.span.lo as usize).copied().unwrap_or_else(Span::call_site);
    let stub = stub_from_tokens(&input);
    let errors = |diags: Vec<Diagnostic>| -> TokenStream {
        let mut sources = SourceMap::new();
        sources.add(source.clone());
        let mut combined: Option<syn::Error> = None;
        for d in diags.iter().filter(|d| d.is_error()) {
            let e = syn::Error::new(to_span(d), message(d));
            match &mut combined {
                Some(c) => c.combine(e),
                None => combined = Some(e),
            }
        }
        let err = combined.map(|e| e.to_compile_error()).unwrap_or_default();
        quote!(#err #stub).into()
    };
    let parsed = match dsl::parse(input, SourceId(0), "fpn!") {
        Ok(p) => p,
        Err(diags) => return errors(diags),
    };
    match fpn_compiler::compile_value(&parsed.value) {
        Ok(c) => match generate(&c.graph, &c.analysis, &options()) {
            Ok(code) => code.parse().unwrap_or_else(|e| {
                syn::Error::new(Span::call_site(), format!("fpn: generated code does not parse: {e}"))
                    .to_compile_error()
                    .into()
            }),
            Err(e) => syn::Error::new(Span::call_site(), e.to_string())
                .to_compile_error()
                .into(),
        },
        Err(diags) => errors(diags),
    }
}

/// Loads a YAML spec at compile time, relative to the crate's `CARGO_MANIFEST_DIR`:
/// `fpn::include_spec!("specs/seed001_neck.yaml");`. The crate recompiles when the file changes.
#[proc_macro]
pub fn include_spec(input: TokenStream) -> TokenStream {
    let lit = match syn::parse::<syn::LitStr>(input) {
        Ok(l) => l,
        Err(e) => return e.to_compile_error().into(),
    };
    let rel = lit.value();
    let base = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let path = std::path::Path::new(&base).join(&rel);
    let mut sources = SourceMap::new();
    let fail = |msg: String| -> TokenStream {
        let e = syn::Error::new(lit.span(), msg).to_compile_error();
        quote!(#e).into()
    };
    let compiled = fpn_compiler::compile_file(&mut sources, &path);
    // Display the path as written, so messages read `specs/x.yaml:3:5`.
    let rendered = |diags: &[Diagnostic]| {
        let text = fpn_compiler::render(diags, &sources);
        text.replace(&path.display().to_string(), &rel)
    };
    let c = match compiled {
        Ok(c) => c,
        Err(diags) => return fail(format!("fpn: `{rel}` has errors:\n{}", rendered(&diags))),
    };
    let code = match generate(&c.graph, &c.analysis, &options()) {
        Ok(code) => code,
        Err(e) => return fail(e.to_string()),
    };
    let items: TokenStream2 = match code.parse() {
        Ok(t) => t,
        Err(e) => return fail(format!("fpn: generated code does not parse: {e}")),
    };
    let abs = path.display().to_string();
    quote!(
        const _: &[u8] = include_bytes!(#abs);
        #items
    )
    .into()
}

/// The diagnostic as one message: text, notes and help.
fn message(d: &Diagnostic) -> String {
    let mut s = format!("{} [{}]", d.message, d.code);
    if !d.label.is_empty() {
        s.push_str(&format!(": {}", d.label));
    }
    for n in &d.notes {
        s.push_str(&format!("\nnote: {n}"));
    }
    if let Some(h) = &d.help {
        s.push_str(&format!("\nhelp: {h}"));
    }
    s
}

/// `pub struct <Name>;` if the tokens start with `name: <Ident>`, so uses of the type do not
/// add errors of their own.
fn stub_from_tokens(tokens: &TokenStream2) -> TokenStream2 {
    let toks: Vec<proc_macro2::TokenTree> = tokens.clone().into_iter().collect();
    for w in toks.windows(3) {
        if let [proc_macro2::TokenTree::Ident(k), proc_macro2::TokenTree::Punct(p), proc_macro2::TokenTree::Ident(v)] =
            w
        {
            if k == "name" && p.as_char() == ':' {
                let name = format_ident!("{}", v.to_string());
                return quote!(
                    #[allow(dead_code)]
                    pub struct #name;
                );
            }
        }
    }
    TokenStream2::new()
}
