//! Weight loading from safetensors files, with dtype conversion to f32 and errors that name
//! the full tensor.
//!
//! Invariant: a [`Weights`] value only exists for bytes whose header and offsets the
//! `safetensors` crate has validated, so every indexed byte range is in bounds.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array4, ArrayD, ArrayViewD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};

/// Where one tensor lives in the file.
#[derive(Clone, Debug)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A parsed safetensors file held in memory; tensors are converted to f32 on [`Weights::get`].
#[derive(Clone, Debug)]
pub struct Weights {
    bytes: Vec<u8>,
    entries: HashMap<String, Entry>,
    names: Vec<String>,
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::CorruptWeights { reason: e.to_string() }
}

impl Weights {
    /// Reads and validates a `.safetensors` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(bytes)
    }

    /// Validates the bytes of a `.safetensors` file and takes ownership of them.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let (n, meta) = SafeTensors::read_metadata(&bytes).map_err(corrupt)?;
        // read_metadata checked that 8 + n + data length == bytes.len().
        let base = 8usize
            .checked_add(n)
            .ok_or_else(|| corrupt("header length overflows"))?;
        let mut entries = HashMap::new();
        for (name, info) in meta.tensors() {
            let (s, e) = info.data_offsets;
            let (start, end) = match (base.checked_add(s), base.checked_add(e)) {
                (Some(a), Some(b)) if a <= b && b <= bytes.len() => (a, b),
                _ => return Err(corrupt(format!("tensor `{name}` lies outside the file"))),
            };
            entries.insert(
                name,
                Entry {
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start,
                    end,
                },
            );
        }
        let mut names: Vec<String> = entries.keys().cloned().collect();
        names.sort();
        Ok(Self { bytes, entries, names })
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True if the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether a tensor called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Stored shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// A view whose lookups prepend `prefix.` to every name.
    pub fn scope(&self, prefix: &str) -> Scope<'_> {
        Scope {
            weights: self,
            prefix: prefix.to_string(),
        }
    }

    /// Tensor `name` converted to f32, whatever its shape.
    pub fn tensor(&self, name: &str) -> Result<ArrayD<f32>> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| Error::MissingTensor { name: name.to_string() })?;
        let data = self
            .bytes
            .get(e.start..e.end)
            .ok_or_else(|| corrupt(format!("tensor `{name}` lies outside the file")))?;
        let values = to_f32(name, e.dtype, data)?;
        ArrayD::from_shape_vec(IxDyn(&e.shape), values).map_err(|err| corrupt(format!("tensor `{name}`: {err}")))
    }

    /// Tensor `name` as f32, checked to have exactly `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<ArrayD<f32>> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| Error::MissingTensor { name: name.to_string() })?;
        if e.shape != shape {
            return Err(Error::WrongShape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: e.shape.clone(),
            });
        }
        self.tensor(name)
    }

    /// 4-D tensor `name` (a conv weight) checked to have `shape`.
    pub fn get4(&self, name: &str, shape: [usize; 4]) -> Result<Array4<f32>> {
        self.get(name, &shape)?
            .into_dimensionality()
            .map_err(|err| corrupt(format!("tensor `{name}`: {err}")))
    }

    /// 1-D tensor `name` (a bias or norm parameter) checked to have length `len`.
    pub fn get1(&self, name: &str, len: usize) -> Result<Array1<f32>> {
        self.get(name, &[len])?
            .into_dimensionality()
            .map_err(|err| corrupt(format!("tensor `{name}`: {err}")))
    }
}

/// Converts little-endian stored values to f32.
fn to_f32(name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => {
            return Err(Error::WrongDtype {
                name: name.to_string(),
                dtype: format!("{other:?}"),
            })
        }
    })
}

/// A [`Weights`] view under a name prefix (a submodule of the original `state_dict`).
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    weights: &'a Weights,
    prefix: String,
}

impl<'a> Scope<'a> {
    /// Full tensor name of `name` relative to this scope.
    pub fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else if name.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    /// The prefix of this scope (`""` for the root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A nested scope: `scope("a").scope("b")` looks names up under `a.b.`.
    pub fn scope(&self, sub: &str) -> Scope<'a> {
        Scope {
            weights: self.weights,
            prefix: self.full_name(sub),
        }
    }

    /// Names under this scope, relative to it, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        let dotted = format!("{}.", self.prefix);
        let root = self.prefix.is_empty();
        self.weights
            .names()
            .filter_map(move |n| if root { Some(n) } else { n.strip_prefix(dotted.as_str()) })
    }

    /// Whether tensor `name` exists under this scope.
    pub fn contains(&self, name: &str) -> bool {
        self.weights.contains(&self.full_name(name))
    }

    /// Like [`Weights::tensor`], relative to the scope.
    pub fn tensor(&self, name: &str) -> Result<ArrayD<f32>> {
        self.weights.tensor(&self.full_name(name))
    }

    /// Like [`Weights::get`], relative to the scope.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<ArrayD<f32>> {
        self.weights.get(&self.full_name(name), shape)
    }

    /// Like [`Weights::get4`], relative to the scope.
    pub fn get4(&self, name: &str, shape: [usize; 4]) -> Result<Array4<f32>> {
        self.weights.get4(&self.full_name(name), shape)
    }

    /// Like [`Weights::get1`], relative to the scope.
    pub fn get1(&self, name: &str, len: usize) -> Result<Array1<f32>> {
        self.weights.get1(&self.full_name(name), len)
    }
}

/// Reads every tensor of a safetensors file as f32, sorted by name.
pub fn read_tensors(path: impl AsRef<Path>) -> Result<Vec<(String, ArrayD<f32>)>> {
    let w = Weights::from_file(path)?;
    w.names().map(|n| Ok((n.to_string(), w.tensor(n)?))).collect()
}

/// Serializes named f32 tensors to safetensors bytes.
pub fn tensors_to_bytes(tensors: &[(&str, ArrayViewD<f32>)]) -> Result<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    let mut raw: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if !seen.insert(*name) {
            return Err(Error::InvalidParams {
                op: "write_tensors",
                reason: format!("tensor name `{name}` appears twice"),
            });
        }
        let bytes: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
        raw.push((name.to_string(), t.shape().to_vec(), bytes));
    }
    let views = raw
        .iter()
        .map(|(n, s, b)| Ok((n.as_str(), TensorView::new(Dtype::F32, s.clone(), b).map_err(corrupt)?)))
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(corrupt)
}

/// Writes named f32 tensors to a safetensors file (for `fpn run` inputs and outputs).
pub fn write_tensors(path: impl AsRef<Path>, tensors: &[(&str, ArrayViewD<f32>)]) -> Result<()> {
    let path = path.as_ref();
    let bytes = tensors_to_bytes(tensors)?;
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
