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
    let span_of = |sp: fpn_compiler::span::Span| {
        let first = spans.get(sp.lo as usize).copied().unwrap_or_else(Span::call_site);
        let last = spans
            .get((sp.hi as usize).saturating_sub(1).max(sp.lo as usize))
            .copied()
            .unwrap_or(first);
        (first, last)
    };
    let snippet = |sp: fpn_compiler::span::Span| source.text().get(source.byte_range(sp)).unwrap_or("").to_string();
    let mut stub = TokenStream2::new();
    let errors = |diags: Vec<Diagnostic>, stub: &TokenStream2| -> TokenStream {
        let mut combined: Option<syn::Error> = None;
        for d in diags.iter().filter(|d| d.is_error()) {
            let (first, last) = span_of(d.span);
            let mut msg = message(d);
            for l in &d.secondary {
                msg.push_str(&format!("\nnote: {} (at `{}`)", l.message, snippet(l.span)));
            }
            // Two marker tokens carry the first and last span: rustc underlines the range.
            let (a, b) = (proc_macro2::Ident::new("a", first), proc_macro2::Ident::new("b", last));
            let e = syn::Error::new_spanned(quote!(#a #b), msg);
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
        Err(diags) => return errors(diags, &stub),
    };
    stub = stub_from_value(&parsed.value);
    match fpn_compiler::compile_value(&parsed.value) {
        Ok(c) => match generate(&c.graph, &c.analysis, &options()) {
            Ok(code) => match code.parse::<TokenStream2>() {
                Ok(items) => {
                    let warns = c.warnings.iter().map(|w| warning(w, span_of(w.span).0));
                    quote!(#(#warns)* #items).into()
                }
                Err(e) => syn::Error::new(Span::call_site(), format!("fpn: generated code does not parse: {e}"))
                    .to_compile_error()
                    .into(),
            },
            Err(e) => syn::Error::new(Span::call_site(), e.to_string())
                .to_compile_error()
                .into(),
        },
        Err(diags) => errors(diags, &stub),
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
        if diags.iter().any(|d| d.code == "E0000") {
            // the path that was searched is the useful fact here
            return text;
        }
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
    let warns: Vec<TokenStream2> = c
        .warnings
        .iter()
        .map(|w| {
            let mut one = w.clone();
            one.notes.push(sources.location(w.span));
            warning(&one, lit.span())
        })
        .collect();
    quote!(
        const _: &[u8] = include_bytes!(#abs);
        #(#warns)*
        #items
    )
    .into()
}

/// A compiler warning at `span` on stable Rust: the use of a deprecated constant whose note is
/// the diagnostic (proc macros cannot emit warnings directly).
fn warning(d: &Diagnostic, span: Span) -> TokenStream2 {
    let note = message(d);
    let used = quote::quote_spanned!(span=> fpn_warning);
    quote!(
        const _: () = {
            #[deprecated(note = #note)]
            #[allow(non_upper_case_globals)]
            const fpn_warning: () = ();
            #used
        };
    )
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

/// A stand-in for the model when the spec has errors: the type, its inputs and outputs structs
/// with the spec's field names, and the methods, so uses of the model add no errors of their own.
/// Its bodies never run: the `compile_error!` beside it stops the build.
fn stub_from_value(v: &fpn_compiler::value::Value) -> TokenStream2 {
    use fpn_compiler::value::ValueKind;
    let ValueKind::Map(top) = &v.kind else {
        return TokenStream2::new();
    };
    let get = |k: &str| top.iter().find(|(key, _)| key.name == k).map(|(_, v)| v);
    let ident = |s: &str| -> Option<proc_macro2::Ident> {
        (fpn_compiler::ast::is_ident(s) && !fpn_compiler::lower::RUST_KEYWORDS.contains(&s))
            .then(|| format_ident!("{}", s))
    };
    let Some(name) = get("name").and_then(|n| match &n.kind {
        ValueKind::Str(s) => ident(s),
        _ => None,
    }) else {
        return TokenStream2::new();
    };
    let keys = |v: Option<&fpn_compiler::value::Value>| -> Vec<proc_macro2::Ident> {
        match v.map(|v| &v.kind) {
            Some(ValueKind::Map(m)) => m.iter().filter_map(|(k, _)| ident(&k.name)).collect(),
            Some(ValueKind::Seq(items)) => items
                .iter()
                .filter_map(|i| match &i.kind {
                    ValueKind::Str(s) => ident(s.rsplit('.').next().unwrap_or(s)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let ins = keys(get("inputs"));
    let outs = keys(get("outputs"));
    let inputs_ty = format_ident!("{}Inputs", name);
    let outputs_ty = format_ident!("{}Outputs", name);
    quote!(
        #[allow(dead_code, missing_docs)]
        pub struct #name;
        #[allow(dead_code, missing_docs)]
        pub struct #inputs_ty<'a> { #(pub #ins: ::fpn::runtime::ndarray::ArrayView4<'a, f32>,)* }
        #[allow(dead_code, missing_docs)]
        pub struct #outputs_ty { #(pub #outs: ::fpn::runtime::Tensor,)* }
        #[allow(dead_code, missing_docs, clippy::all)]
        impl #name {
            pub fn init(_seed: u64) -> Self { #name }
            pub fn from_safetensors(_path: impl AsRef<::std::path::Path>) -> ::fpn::runtime::Result<Self> { Ok(#name) }
            pub fn from_safetensors_bytes(_bytes: Vec<u8>) -> ::fpn::runtime::Result<Self> { Ok(#name) }
            pub fn forward(&self, _inputs: #inputs_ty<'_>) -> ::fpn::runtime::Result<#outputs_ty> {
                Err(::fpn::runtime::Error::InputSize("the spec has errors".to_string()))
            }
        }
    )
}
