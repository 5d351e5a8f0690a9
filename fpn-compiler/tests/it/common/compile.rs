//! Compiling a spec text for a test: the compiled spec, or its errors as `(code, message)`.

use fpn_compiler::compile_yaml;
use fpn_compiler::span::SourceMap;

/// Compiles `text`; on failure, every error's code and message.
pub fn compile(text: &str) -> Result<fpn_compiler::Compiled, Vec<(String, String)>> {
    compile_yaml(&mut SourceMap::new(), "x.yaml", text).map_err(|d| {
        d.iter()
            .filter(|x| x.is_error())
            .map(|x| (x.code.as_str().to_string(), x.message.clone()))
            .collect()
    })
}

/// The error codes of `text`, in order (empty when it compiles).
pub fn codes(text: &str) -> Vec<String> {
    match compile(text) {
        Ok(_) => Vec::new(),
        Err(c) => c.into_iter().map(|(c, _)| c).collect(),
    }
}
