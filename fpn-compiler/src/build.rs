//! [`Builder`]: compile specs from a build script into `OUT_DIR`, in the style of prost-build.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), fpn_compiler::BuildError> {
//!     fpn_compiler::Builder::new().spec("specs/seed001_neck.yaml").compile()?;
//!     Ok(())
//! }
//! // src/lib.rs: include!(concat!(env!("OUT_DIR"), "/seed001_neck.rs"));
//! ```

use crate::back::rust::{generate, Options};
use crate::span::SourceMap;
use std::path::{Path, PathBuf};

/// Why a build failed. `Display` is the rendered diagnostics, as the CLI prints them.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A spec has errors.
    #[error("{0}")]
    Spec(String),
    /// No `OUT_DIR` was set or given.
    #[error("OUT_DIR is not set: call `out_dir(…)` or run from a build script")]
    NoOutDir,
    /// Code generation refused the graph.
    #[error("{0}")]
    Gen(String),
    /// Writing the output failed.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Compiles YAML specs to Rust modules in `OUT_DIR`, one `<file stem>.rs` per spec.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    specs: Vec<PathBuf>,
    out_dir: Option<PathBuf>,
    runtime_path: Option<String>,
    sets: Vec<crate::Setting>,
}

impl Builder {
    /// A builder with no specs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a spec file (relative to the crate root when run from build.rs).
    pub fn spec(mut self, path: impl AsRef<Path>) -> Self {
        self.specs.push(path.as_ref().to_path_buf());
        self
    }

    /// Sets a parameter of every spec, as `fpn check --set name=value` does: `.set("scale",
    /// "s")` compiles a family at scale `s`, `.set("width", "0.5")` replaces a parameter's
    /// value. A spec without that parameter fails (E0241).
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.sets.push(crate::Setting::new(name, value));
        self
    }

    /// Writes here instead of `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Path of the runtime crate in generated code (default `fpn_runtime`; `::fpn::runtime` via the facade).
    pub fn runtime_path(mut self, path: impl Into<String>) -> Self {
        self.runtime_path = Some(path.into());
        self
    }

    /// Compiles every spec; returns the files written. All specs are checked before failing.
    pub fn compile(self) -> Result<Vec<PathBuf>, BuildError> {
        let out = match self
            .out_dir
            .clone()
            .or_else(|| std::env::var_os("OUT_DIR").map(PathBuf::from))
        {
            Some(o) => o,
            None => return Err(BuildError::NoOutDir),
        };
        let opts = Options {
            runtime_path: self
                .runtime_path
                .clone()
                .unwrap_or_else(|| Options::default().runtime_path),
            ..Options::default()
        };
        let mut written = Vec::new();
        let mut errors = String::new();
        for spec in &self.specs {
            println!("cargo:rerun-if-changed={}", spec.display());
            let mut sources = SourceMap::new();
            match crate::compile_file_with(&mut sources, spec, &self.sets) {
                Ok(c) => {
                    let code = generate(&c.graph, &c.analysis, &opts).map_err(|e| BuildError::Gen(e.to_string()))?;
                    let stem = spec
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "spec".into());
                    let path = out.join(format!("{stem}.rs"));
                    std::fs::write(&path, code).map_err(|source| BuildError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    written.push(path);
                }
                Err(diags) => errors.push_str(&crate::render(&diags, &sources)),
            }
        }
        if errors.is_empty() {
            Ok(written)
        } else {
            Err(BuildError::Spec(errors))
        }
    }
}
