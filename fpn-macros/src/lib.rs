//! Procedural macros of fpn (being written).
use proc_macro::TokenStream;

/// Declares a topology inline (being written).
#[proc_macro]
pub fn fpn(_input: TokenStream) -> TokenStream {
    "compile_error!(\"fpn! is not implemented yet\");".parse().unwrap_or_default()
}

/// Loads a YAML spec at compile time (being written).
#[proc_macro]
pub fn include_spec(_input: TokenStream) -> TokenStream {
    "compile_error!(\"include_spec! is not implemented yet\");".parse().unwrap_or_default()
}
