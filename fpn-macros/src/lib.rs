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
        ..Options::default()
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
/// and `forward`. A first entry `set: {scale: s, width: 0.5}` (not part of the spec) sets
/// parameters as `fpn check --set` does.
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
                // a label whose facts a note already states would repeat it (issue 14 item 5)
                if !fpn_compiler::diag::says_nothing_new(&msg, &l.message) {
                    msg.push_str(&format!("\nnote: {} (at `{}`)", l.message, snippet(l.span)));
                }
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
    let mut parsed = match dsl::parse(input, SourceId(0), "fpn!") {
        Ok(p) => p,
        Err(diags) => return errors(diags, &stub),
    };
    let sets = match take_sets(&mut parsed.value) {
        Ok(s) => s,
        Err(diags) => return errors(diags, &stub),
    };
    stub = stub_from_value(&parsed.value, &sets);
    match fpn_compiler::compile_value_with(&parsed.value, &sets) {
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

/// The `set: {…}` entry of a macro's map (removed from it): its settings, spanned.
fn take_sets(v: &mut fpn_compiler::value::Value) -> Result<Vec<fpn_compiler::Setting>, Vec<Diagnostic>> {
    let fpn_compiler::value::ValueKind::Map(entries) = &mut v.kind else {
        return Ok(Vec::new());
    };
    match entries.iter().position(|(k, _)| k.name == "set") {
        Some(i) => fpn_compiler::Setting::from_value(&entries.remove(i).1),
        None => Ok(Vec::new()),
    }
}

/// The `layout: blocked | nchw` entry of `include_spec!`'s tail (removed from it):
/// `Some(true)` for `blocked` ([`Options::blocked`]), `Err` for another value.
fn take_layout(v: &mut fpn_compiler::value::Value) -> Result<Option<bool>, ()> {
    let fpn_compiler::value::ValueKind::Map(entries) = &mut v.kind else {
        return Ok(None);
    };
    let Some(i) = entries.iter().position(|(k, _)| k.name == "layout") else {
        return Ok(None);
    };
    match &entries.remove(i).1.kind {
        fpn_compiler::value::ValueKind::Str(s) if s == "blocked" => Ok(Some(true)),
        fpn_compiler::value::ValueKind::Str(s) if s == "nchw" => Ok(Some(false)),
        _ => Err(()),
    }
}

/// Loads a YAML spec at compile time, relative to the crate's `CARGO_MANIFEST_DIR`:
/// `fpn::include_spec!("specs/seed001_neck.yaml");`. The crate recompiles when the file changes.
/// `fpn::include_spec!("specs/yolov8.yaml", set: {scale: s})` sets parameters as `fpn check
/// --set scale=s` does (a family's `Yolov8{scale}` is then `Yolov8s`); `layout: blocked` keeps
/// feature maps in the blocked layout NCHW16c inside the forward (`fpn gen --blocked`).
#[proc_macro]
pub fn include_spec(input: TokenStream) -> TokenStream {
    let input = TokenStream2::from(input);
    let mut tokens = input.clone().into_iter();
    let first: TokenStream2 = tokens.next().into_iter().collect();
    let lit = match syn::parse2::<syn::LitStr>(first) {
        Ok(l) => l,
        Err(e) => return e.to_compile_error().into(),
    };
    let rest: TokenStream2 = tokens.collect();
    let mut tail = match parse_tail(rest.clone()) {
        Ok(t) => t,
        Err(e) => return e.to_compile_error().into(),
    };
    let mut opts = options();
    if let Some(t) = &mut tail {
        match take_layout(&mut t.value) {
            Ok(Some(blocked)) => opts.blocked = blocked,
            Ok(None) => {}
            Err(()) => {
                // at the value: the token after `layout :`
                let toks: Vec<_> = rest.into_iter().collect();
                let at = toks
                    .iter()
                    .position(|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "layout"))
                    .and_then(|i| toks.get(i + 2))
                    .map_or_else(Span::call_site, |t| t.span());
                return syn::Error::new(at, "`layout:` takes `blocked` or `nchw`")
                    .to_compile_error()
                    .into();
            }
        }
    }
    let rel = lit.value();
    let base = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let fail = |msg: String| -> TokenStream {
        let e = syn::Error::new(lit.span(), msg).to_compile_error();
        quote!(#e).into()
    };
    let (c, sources, path) = match load_spec(std::path::Path::new(&base), &rel, tail) {
        Ok(x) => x,
        Err(msg) => return fail(msg),
    };
    let code = match generate(&c.graph, &c.analysis, &opts) {
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

/// What follows the path of `include_spec!`: nothing, or `, set: {…}` (parsed as `fpn!` tokens
/// whose spans are in source 1, after the YAML's 0).
fn parse_tail(rest: TokenStream2) -> Result<Option<dsl::Parsed>, syn::Error> {
    let mut it = rest.clone().into_iter();
    match it.next() {
        None => return Ok(None),
        Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ',' => {}
        Some(t) => {
            return Err(syn::Error::new(
                t.span(),
                "expected `,` and `set: {…}` or `layout: blocked` after the spec's path",
            ))
        }
    }
    let body: TokenStream2 = it.collect();
    if body.is_empty() {
        return Ok(None);
    }
    let bad = |span: Span| {
        syn::Error::new(
            span,
            "`include_spec!` takes the spec's path and optionally `set: {name: value, …}`, as `fpn check --set name=value`, and `layout: blocked`",
        )
    };
    let parsed = match dsl::parse(body.clone(), SourceId(1), "include_spec!") {
        Ok(p) => p,
        Err(diags) => {
            let (spans, _) = dsl::token_table(body, "include_spec!");
            let at = diags
                .first()
                .and_then(|d| spans.get(d.span.lo as usize).copied())
                .unwrap_or_else(Span::call_site);
            return Err(bad(at));
        }
    };
    match &parsed.value.kind {
        fpn_compiler::value::ValueKind::Map(m)
            if !m.is_empty()
                && m.len() <= 2
                && m.iter().all(|(k, _)| k.name == "set" || k.name == "layout")
                && m.first().map(|e| &e.0.name) != m.get(1).map(|e| &e.0.name) =>
        {
            Ok(Some(parsed))
        }
        _ => Err(bad(rest.into_iter().next().map_or_else(Span::call_site, |t| t.span()))),
    }
}

/// Reads and compiles the spec `rel` of `include_spec!`, relative to the crate's manifest
/// folder `base`, with the settings of `tail` (`set: {…}`); the error is the whole
/// compile-error message.
///
/// Hostile paths are refused without reading or quoting them: an absolute path (specs are
/// named from the crate's folder), a directory, FIFO or device (which would hang or exhaust
/// rustc), a file over the size cap; a file that is not YAML or whose top level has no
/// `nodes:` key is refused with its location only, never with its lines (no `/etc/passwd` in
/// the build log).
fn load_spec(
    base: &std::path::Path,
    rel: &str,
    tail: Option<dsl::Parsed>,
) -> Result<(fpn_compiler::Compiled, SourceMap, std::path::PathBuf), String> {
    let relp = std::path::Path::new(rel);
    if relp.is_absolute() || relp.has_root() {
        return Err(format!(
            "fpn: `{rel}` is an absolute path; `include_spec!` takes a path relative to the crate's folder (CARGO_MANIFEST_DIR)"
        ));
    }
    let path = base.join(relp);
    let bytes = fpn_compiler::read_spec_file(&path)
        .map_err(|e| format!("fpn: cannot read `{rel}` (from `{}`): {e}", base.display()))?;
    let mut sources = SourceMap::new();
    // Display the path as written, so messages read `specs/x.yaml:3:5`.
    let id = sources.add_text(rel, String::from_utf8_lossy(&bytes).into_owned());
    // no source lines in these messages: the file may not be a spec at all
    let brief = |d: &Diagnostic, sources: &SourceMap| {
        let mut s = format!(
            "fpn: `{rel}` cannot be read as a spec: error[{}]: {}\n  --> {}",
            d.code,
            d.message,
            sources.location(d.span)
        );
        if let Some(h) = &d.help {
            s.push_str(&format!("\n  = help: {h}"));
        }
        s
    };
    let v = match fpn_compiler::front::yaml::parse_bytes(&bytes, id) {
        Ok(v) => v,
        // a spec with a YAML error gets the usual snippet; any other file only its location
        Err(d) if looks_like_spec(&bytes) => {
            return Err(format!(
                "fpn: `{rel}` has errors:\n{}",
                fpn_compiler::render(&[d], &sources)
            ))
        }
        Err(d) => return Err(brief(&d, &sources)),
    };
    const SPEC_KEYS: [&str; 4] = ["name", "inputs", "nodes", "outputs"];
    let is_spec = match &v.kind {
        fpn_compiler::value::ValueKind::Map(top) => top.iter().any(|(k, _)| SPEC_KEYS.contains(&k.name.as_str())),
        _ => false,
    };
    if !is_spec {
        return Err(format!(
            "fpn: `{rel}` is not an fpn spec: its top level is not a map with `name`, `inputs`, `nodes` and `outputs`"
        ));
    }
    let sets = match tail {
        Some(mut t) => {
            sources.add(t.source.clone());
            take_sets(&mut t.value).map_err(|d| format!("fpn: {}", fpn_compiler::render(&d, &sources)))?
        }
        None => Vec::new(),
    };
    match fpn_compiler::compile_value_with(&v, &sets) {
        Ok(c) => Ok((c, sources, path)),
        Err(diags) => Err(format!(
            "fpn: `{rel}` has errors:\n{}",
            fpn_compiler::render(&diags, &sources)
        )),
    }
}

/// Whether a file that failed to parse as YAML is still recognisably a spec (empty, or a line
/// starting a top-level `name:`, `inputs:`, `nodes:` or `outputs:` key, or a flow map), so its
/// error may quote it.
fn looks_like_spec(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.trim().is_empty()
        || text.lines().any(|l| {
            let l = l.trim_start_matches('\u{feff}');
            l.starts_with('{')
                || ["name", "inputs", "nodes", "outputs"]
                    .iter()
                    .any(|k| l.strip_prefix(k).is_some_and(|r| r.trim_start().starts_with(':')))
        })
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

/// The diagnostic as one message: text, label (unless the message says it), notes and help.
fn message(d: &Diagnostic) -> String {
    let mut s = format!("{} [{}]", d.message, d.code);
    if !d.label.is_empty() && !fpn_compiler::diag::says_nothing_new(&d.message, &d.label) {
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
/// A family's `{scale}` in the name is the set scale, else the spec's default.
fn stub_from_value(v: &fpn_compiler::value::Value, sets: &[fpn_compiler::Setting]) -> TokenStream2 {
    use fpn_compiler::value::ValueKind;
    let ValueKind::Map(top) = &v.kind else {
        return TokenStream2::new();
    };
    let get = |k: &str| top.iter().find(|(key, _)| key.name == k).map(|(_, v)| v);
    let scale = sets
        .iter()
        .rev()
        .find(|s| s.name == fpn_compiler::params::SCALE)
        .map(|s| s.value.clone())
        .or_else(|| match get(fpn_compiler::params::SCALE).map(|v| &v.kind) {
            Some(ValueKind::Str(s)) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let ident = |s: &str| -> Option<proc_macro2::Ident> {
        (fpn_compiler::ast::is_ident(s) && !fpn_compiler::lower::RUST_KEYWORDS.contains(&s))
            .then(|| format_ident!("{}", s))
    };
    let Some(name) = get("name").and_then(|n| match &n.kind {
        ValueKind::Str(s) => ident(&s.replace(fpn_compiler::params::SCALE_IN_NAME, &scale)),
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

#[cfg(test)]
mod tests {
    //! Issue 11 item 9: what `include_spec!` refuses, and that it never quotes a non-spec file.
    use super::load_spec;
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn err(rel: &str) -> String {
        match load_spec(&root(), rel, None) {
            Ok(_) => panic!("`{rel}` was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_spec_loads() {
        assert!(load_spec(&root(), "specs/seed001_neck.yaml", None).is_ok());
    }

    #[test]
    fn absolute_paths_are_refused_unread() {
        let e = err("/etc/passwd");
        assert!(e.contains("absolute path"), "{e}");
        assert!(!e.contains("root:"), "{e}");
    }

    #[test]
    fn directories_and_devices_are_refused_unread() {
        assert!(err("specs").contains("directory"), "{}", err("specs"));
        let up = "../../../../../../../../../../dev/zero";
        let e = err(up);
        assert!(e.contains("not a regular file"), "{e}");
        #[cfg(unix)]
        {
            let dir = std::env::temp_dir().join(format!("fpn-macros-fifo-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let fifo = dir.join("spec.yaml");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                // would block forever if it were opened
                let e = match load_spec(&dir, "spec.yaml", None) {
                    Ok(_) => panic!("a FIFO was accepted"),
                    Err(e) => e,
                };
                assert!(e.contains("not a regular file"), "{e}");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_file_that_is_not_a_spec_is_not_quoted() {
        // Cargo.toml: not YAML (`[workspace]` then `key = value` lines)
        let e = err("Cargo.toml");
        assert!(!e.contains("members"), "{e}");
        assert!(!e.contains("petgraph"), "{e}");
        // YAML, but not a spec
        let dir = std::env::temp_dir().join(format!("fpn-macros-yaml-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(dir.join("secrets.yaml"), "password: hunter2\ntoken: abc\n").expect("write");
        let e = match load_spec(&dir, "secrets.yaml", None) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("not an fpn spec"), "{e}");
        assert!(!e.contains("hunter2") && !e.contains("password"), "{e}");
    }

    #[test]
    fn an_oversized_file_is_refused_unread() {
        let dir = std::env::temp_dir().join(format!("fpn-macros-big-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let f = std::fs::File::create(dir.join("big.yaml")).expect("create");
        f.set_len(fpn_compiler::front::yaml::MAX_SPEC_BYTES as u64 + 1)
            .expect("set_len");
        let e = match load_spec(&dir, "big.yaml", None) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("at most"), "{e}");
    }
}
