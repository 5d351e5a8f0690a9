//! The crate's single error type.
//!
//! Invariant: every fallible public function returns [`Error`]; nothing reachable from a user's
//! tensors, parameters or weight files panics.

use std::path::PathBuf;

/// Everything that can go wrong in a runtime op or while loading weights.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two operands (or an operand and a parameter) have shapes the op cannot combine.
    #[error("{op} cannot combine shapes {lhs:?} and {rhs:?}: {reason}.")]
    ShapeMismatch {
        /// The op that refused, e.g. `"conv2d"`.
        op: &'static str,
        /// Shape of the first operand (the input, for most ops).
        lhs: Vec<usize>,
        /// Shape of the second operand (weight, other input, or output buffer).
        rhs: Vec<usize>,
        /// Which dimension disagrees, in words.
        reason: String,
    },
    /// An op parameter is out of range (zero stride, zero groups, padding wider than PyTorch allows…).
    #[error("{op} was given invalid parameters: {reason}.")]
    InvalidParams {
        /// The op that refused.
        op: &'static str,
        /// What is wrong, in words.
        reason: String,
    },
    /// The input's spatial size is not accepted by an op (e.g. smaller than the kernel).
    #[error("input size not accepted: {0}.")]
    InputSize(String),
    /// A weight file lacks a tensor the network needs.
    #[error("the weights have no tensor named `{name}`.")]
    MissingTensor {
        /// Full (un-scoped) tensor name.
        name: String,
    },
    /// A weight file lacks tensors the network needs: every one of them, and, when each is in
    /// the file under one other prefix, the rewrite that finds them.
    #[error("{}", missing_message(file, missing, hint.as_ref()))]
    MissingTensors {
        /// The file (`the weights` for bytes).
        file: String,
        /// Every missing full tensor name, in the order the network needs them.
        missing: Vec<String>,
        /// `(old, new)`: every missing `name` is in the file as `old` + `name` minus its leading
        /// `new`, so rewriting the prefix `old` to `new` finds them all.
        hint: Option<(String, String)>,
    },
    /// A key map rewrote two checkpoint keys to one name.
    #[error("the key map rewrites both `{a}` and `{b}` of {file} to `{name}`.")]
    KeyCollision {
        /// The file (`the weights` for bytes).
        file: String,
        /// The first key.
        a: String,
        /// The second key.
        b: String,
        /// The name both become.
        name: String,
    },
    /// A stored tensor has a different shape than the network expects.
    #[error("tensor `{name}` of {file} has shape {found:?} but shape {expected:?} was expected.")]
    WrongShape {
        /// Where it is: "`path`" for a file, "the weights" for bytes, "the parameters" in the
        /// interpreter.
        file: String,
        /// Full tensor name.
        name: String,
        /// Shape the caller asked for.
        expected: Vec<usize>,
        /// Shape stored in the file.
        found: Vec<usize>,
    },
    /// A stored tensor has a dtype that cannot be converted to f32 (only F32, F16, BF16, F64 can).
    #[error("tensor `{name}` has dtype {dtype}, which cannot be loaded as f32 (F32, F16, BF16 and F64 can).")]
    WrongDtype {
        /// Full tensor name.
        name: String,
        /// The stored dtype, as safetensors names it.
        dtype: String,
    },
    /// The bytes are not a valid safetensors file (truncated, garbage, inconsistent header).
    #[error("the weights are not a valid safetensors file: {reason}.")]
    CorruptWeights {
        /// What the parser found wrong.
        reason: String,
    },
    /// A safetensors file is not valid; names the file (and the tensor, where one is at fault).
    #[error("`{}` is not a valid safetensors file: {reason}.", path.display())]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor holds NaN or ±∞ (refused unless the loader allows it).
    #[error("tensor `{name}` holds {count} non-finite value(s) (the first, {value}, at flat index {index}); refusing to run on them.")]
    NonFinite {
        /// Full tensor name.
        name: String,
        /// How many values are NaN or infinite.
        count: usize,
        /// Flat index of the first one.
        index: usize,
        /// The first one.
        value: f32,
    },
    /// A batch norm's `running_var` holds a negative value (its square root would be NaN).
    #[error("tensor `{name}` is a batch-norm variance but holds the negative value {value} at index {index}.")]
    NegativeVariance {
        /// Full tensor name.
        name: String,
        /// Index of the first negative value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A file could not be read or written.
    #[error("cannot access `{}`: {source}.", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying OS error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand used by ops to build a [`Error::ShapeMismatch`].
pub(crate) fn mismatch(op: &'static str, lhs: &[usize], rhs: &[usize], reason: impl Into<String>) -> Error {
    Error::ShapeMismatch {
        op,
        lhs: lhs.to_vec(),
        rhs: rhs.to_vec(),
        reason: reason.into(),
    }
}

/// [`Error::InputSize`] when a dimension of the input `x_shape` of `op` is zero.
pub(crate) fn check_nonempty(op: &str, x_shape: [usize; 4]) -> Result<()> {
    if x_shape.contains(&0) {
        return Err(Error::InputSize(format!(
            "{op} input {x_shape:?} has an empty dimension"
        )));
    }
    Ok(())
}

/// [`Error::ShapeMismatch`] unless `op`'s output buffer, of dimensions `out_dim`, has the
/// shape `expected` of its output for an input of `x_shape`.
pub(crate) fn check_out_shape(
    op: &'static str,
    x_shape: &[usize; 4],
    out_dim: (usize, usize, usize, usize),
    expected: [usize; 4],
) -> Result<()> {
    let got = [out_dim.0, out_dim.1, out_dim.2, out_dim.3];
    if got != expected {
        return Err(mismatch(
            op,
            x_shape,
            &got,
            format!("the output buffer must have shape {expected:?}"),
        ));
    }
    Ok(())
}

/// Shorthand for [`Error::InvalidParams`].
pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidParams {
        op,
        reason: reason.into(),
    }
}

/// The text of [`Error::MissingTensors`].
fn missing_message(source: &str, missing: &[String], hint: Option<&(String, String)>) -> String {
    let names: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
    let mut s = format!(
        "{source} lack{} {} tensor{} the model needs: {}",
        if source == "the weights" { "" } else { "s" },
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    match hint {
        Some((old, new)) => {
            let each = if missing.len() == 1 { "It is" } else { "Each is" };
            let place = if new.is_empty() {
                format!("under the extra prefix `{old}`")
            } else if old.is_empty() {
                format!("without the prefix `{new}`")
            } else {
                format!("with the prefix `{old}` where the model has `{new}`")
            };
            s.push_str(&format!(
                ". {each} in the file {place}: load with the keys rewritten (`fpn run --map {old}={new}`; in code, `LoadOptions::new().map(\"{old}\", \"{new}\")`)."
            ));
        }
        None => s.push('.'),
    }
    s
}
