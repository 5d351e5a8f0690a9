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
///
/// Loading checks values as well as the format: a tensor holding NaN or ±∞ is refused
/// ([`Error::NonFinite`]) unless [`Weights::allow_non_finite`] was called, and a tensor named
/// `running_var` (a batch norm's variance, alone or after a `.`) holding a negative value is
/// always refused ([`Error::NegativeVariance`]): both would otherwise run to all-NaN outputs.
#[derive(Clone, Debug)]
pub struct Weights {
    bytes: Vec<u8>,
    entries: HashMap<String, Entry>,
    names: Vec<String>,
    allow_non_finite: bool,
    /// What errors call it: "`path`" for a file, "the weights" for bytes.
    source: String,
}

/// Rewrites of checkpoint keys at load (`fpn run --map OLD=NEW`, `--strip-prefix P`): each key
/// is rewritten by the first rule whose `old` it starts with, that prefix replaced by `new`;
/// keys no rule matches keep their names. A key map that makes two keys one name is refused
/// ([`Error::KeyCollision`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyMap {
    rules: Vec<(String, String)>,
}

impl KeyMap {
    /// No rewrites.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule: a key starting with `old` has that prefix replaced by `new`
    /// (`map("backbone.", "")` drops it, `map("fpn.", "neck.")` renames it).
    pub fn map(mut self, old: impl Into<String>, new: impl Into<String>) -> Self {
        self.rules.push((old.into(), new.into()));
        self
    }

    /// Adds a rule dropping the prefix `p` (`map(p, "")`).
    pub fn strip_prefix(self, p: impl Into<String>) -> Self {
        self.map(p, "")
    }

    /// Parses `OLD=NEW` (split at the first `=`; `backbone.=` strips `backbone.`).
    ///
    /// # Errors
    /// A message if the text has no `=`.
    pub fn parse_rule(text: &str) -> std::result::Result<(String, String), String> {
        text.split_once('=')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .ok_or_else(|| format!("`{text}` is not OLD=NEW (e.g. `backbone.=` or `fpn.=neck.`)"))
    }

    /// Whether it has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules in order, `(old, new)`.
    pub fn rules(&self) -> &[(String, String)] {
        &self.rules
    }

    /// The name `key` gets.
    pub fn apply(&self, key: &str) -> String {
        for (old, new) in &self.rules {
            if let Some(rest) = key.strip_prefix(old.as_str()) {
                return format!("{new}{rest}");
            }
        }
        key.to_string()
    }
}

/// How [`LoadOptions::load`] reads a weight file: checkpoint key rewrites and whether NaN and
/// ±∞ may load. The generated `from_safetensors_with` takes one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Rewrites of the checkpoint's keys.
    pub key_map: KeyMap,
    /// Let tensors holding NaN or ±∞ load ([`Weights::allow_non_finite`]).
    pub allow_non_finite: bool,
}

impl LoadOptions {
    /// No rewrites, non-finite values refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key rewrite ([`KeyMap::map`]).
    pub fn map(mut self, old: impl Into<String>, new: impl Into<String>) -> Self {
        self.key_map = self.key_map.map(old, new);
        self
    }

    /// Adds a rule dropping the key prefix `p` ([`KeyMap::strip_prefix`]).
    pub fn strip_prefix(mut self, p: impl Into<String>) -> Self {
        self.key_map = self.key_map.strip_prefix(p);
        self
    }

    /// Lets NaN and ±∞ load.
    pub fn allow_non_finite(mut self, allow: bool) -> Self {
        self.allow_non_finite = allow;
        self
    }

    /// Reads a `.safetensors` file with these options ([`Weights::from_file`], then
    /// [`Weights::remap`]).
    ///
    /// # Errors
    /// As [`Weights::from_file`] and [`Weights::remap`].
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Weights> {
        Weights::from_file(path)?
            .allow_non_finite(self.allow_non_finite)
            .remap(&self.key_map)
    }

    /// Reads the bytes of a `.safetensors` file with these options.
    ///
    /// # Errors
    /// As [`Weights::from_bytes`] and [`Weights::remap`].
    pub fn load_bytes(&self, bytes: Vec<u8>) -> Result<Weights> {
        Weights::from_bytes(bytes)?
            .allow_non_finite(self.allow_non_finite)
            .remap(&self.key_map)
    }
}

/// Largest safetensors header read (the `safetensors` crate's own limit): the length field is
/// checked against it and against the file's size before anything is allocated.
pub const MAX_HEADER: u64 = 100_000_000;

/// Bytes per element of a safetensors dtype name, `None` for one not known here.
fn dtype_size(d: &str) -> Option<u64> {
    Some(match d {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" | "C64" => 8,
        _ => return None,
    })
}

/// Checks a safetensors header (the JSON after the 8-byte length) against `data_len`, the
/// number of bytes after it, naming the tensor at fault: each entry needs a dtype, a shape
/// and offsets inside the data whose length is the shape's element count times the dtype size.
fn check_header(header: &[u8], data_len: u64) -> std::result::Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("the header is not valid JSON: {e}"))?;
    let map = v
        .as_object()
        .ok_or_else(|| "the header is not a JSON object".to_string())?;
    for (name, t) in map {
        if name == "__metadata__" {
            continue;
        }
        let bad = |what: &str| format!("tensor `{name}`: {what}");
        let dtype = t.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| bad("no dtype"))?;
        // a dtype not known here (sub-byte floats) is left to the `safetensors` crate's checks
        let size = dtype_size(dtype);
        let shape = t
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("no shape"))?;
        let mut elems: u64 = 1;
        for d in shape {
            let d = d
                .as_u64()
                .ok_or_else(|| bad("a dimension of its shape is not a whole number"))?;
            elems = elems
                .checked_mul(d)
                .ok_or_else(|| bad(&format!("shape {shape:?} has too many elements")))?;
        }
        let offs = t
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .filter(|o| o.len() == 2)
            .ok_or_else(|| bad("no `data_offsets` pair"))?;
        let (a, b) = match (offs[0].as_u64(), offs[1].as_u64()) {
            (Some(a), Some(b)) if a <= b => (a, b),
            _ => return Err(bad(&format!("data offsets {offs:?} are not an increasing pair"))),
        };
        if b > data_len {
            return Err(bad(&format!(
                "data offsets {a}..{b} lie outside the {data_len} bytes of data"
            )));
        }
        let need = size.map(|size| elems.checked_mul(size));
        if let Some(need) = need.filter(|&n| n != Some(b - a)) {
            return Err(bad(&format!(
                "shape {shape:?} of {dtype} needs {} bytes but its data offsets {a}..{b} hold {}",
                need.map_or("too many".into(), |n| n.to_string()),
                b - a
            )));
        }
    }
    Ok(())
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::CorruptWeights { reason: e.to_string() }
}

impl Weights {
    /// Reads and validates a `.safetensors` file.
    ///
    /// Only a regular file is read. Its header is read and checked first (length field within
    /// `MAX_HEADER` and the file, every tensor's dtype, shape and offsets consistent with the
    /// file's size), so a corrupt or hostile file is refused before its data is allocated.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened or read or is not a regular file;
    /// [`Error::CorruptFile`] naming the file (and the tensor, where one is at fault) if it is
    /// not a valid safetensors file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Read;
        let path = path.as_ref();
        let io = |source: std::io::Error| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad = |reason: String| Error::CorruptFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut f = std::fs::File::open(path).map_err(io)?;
        let meta = f.metadata().map_err(io)?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidInput, what)));
        }
        let len = meta.len();
        if len < 8 {
            return Err(bad(format!(
                "the file has {len} bytes, fewer than the 8 of the header length"
            )));
        }
        let mut n8 = [0u8; 8];
        f.read_exact(&mut n8).map_err(io)?;
        let n = u64::from_le_bytes(n8);
        if n > MAX_HEADER || n > len - 8 {
            return Err(bad(format!(
                "the header length field says {n} bytes, but the file has {} bytes after it (and at most {MAX_HEADER} are allowed)",
                len - 8
            )));
        }
        let total = usize::try_from(len).map_err(|_| bad("the file is too large for this machine".into()))?;
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(total)
            .map_err(|_| bad(format!("cannot allocate {len} bytes")))?;
        bytes.extend_from_slice(&n8);
        (&mut f).take(n).read_to_end(&mut bytes).map_err(io)?;
        check_header(&bytes[8..], len - 8 - n).map_err(bad)?;
        // bounded by the size the file had when opened (it may change under us)
        f.take(len - 8 - n).read_to_end(&mut bytes).map_err(io)?;
        let mut w = Self::from_bytes(bytes).map_err(|e| match e {
            Error::CorruptWeights { reason } => bad(reason),
            e => e,
        })?;
        w.source = format!("`{}`", path.display());
        Ok(w)
    }

    /// Validates the bytes of a `.safetensors` file and takes ownership of them.
    ///
    /// # Errors
    /// [`Error::CorruptWeights`] (naming the tensor where one is at fault) if they are not a
    /// valid safetensors file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        if let Some(n8) = bytes.get(..8) {
            let n = u64::from_le_bytes([n8[0], n8[1], n8[2], n8[3], n8[4], n8[5], n8[6], n8[7]]);
            let rest = bytes.len() as u64 - 8;
            if n <= MAX_HEADER && n <= rest {
                // `n <= rest < bytes.len()`, so it fits in usize
                let header = &bytes[8..8 + n as usize];
                check_header(header, rest - n).map_err(corrupt)?;
            }
        }
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
        Ok(Self {
            bytes,
            entries,
            names,
            allow_non_finite: false,
            source: "the weights".to_string(),
        })
    }

    /// The same tensors under the names `map` gives their keys ([`KeyMap`]).
    ///
    /// # Errors
    /// [`Error::KeyCollision`] if two keys get one name.
    pub fn remap(mut self, map: &KeyMap) -> Result<Self> {
        if map.is_empty() {
            return Ok(self);
        }
        let mut entries = HashMap::with_capacity(self.entries.len());
        let mut from: HashMap<String, String> = HashMap::with_capacity(self.entries.len());
        let mut old: Vec<(String, Entry)> = self.entries.drain().collect();
        old.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, e) in old {
            let name = map.apply(&key);
            if let Some(prev) = from.insert(name.clone(), key.clone()) {
                return Err(Error::KeyCollision {
                    file: self.source.clone(),
                    a: prev,
                    b: key,
                    name,
                });
            }
            entries.insert(name, e);
        }
        let mut names: Vec<String> = entries.keys().cloned().collect();
        names.sort();
        self.entries = entries;
        self.names = names;
        Ok(self)
    }

    /// Checks that every tensor of `params` (`(name, shape)`, a generated model's `PARAMS`)
    /// is present, listing all missing ones in one error.
    ///
    /// # Errors
    /// [`Error::WrongShape`] for the first present tensor of another shape; else
    /// [`Error::MissingTensors`] naming the file, every missing tensor, and, when every missing
    /// one is in the file under one other prefix (with the expected shape), that prefix
    /// rewrite.
    pub fn require(&self, params: &[(&str, &[usize])]) -> Result<()> {
        // a present tensor of the wrong shape (a checkpoint of another width or depth) says
        // more than the names it lacks: it comes first
        for (n, shape) in params {
            if let Some(e) = self.entries.get(*n).filter(|e| e.shape != *shape) {
                return Err(Error::WrongShape {
                    file: self.source.clone(),
                    name: n.to_string(),
                    expected: shape.to_vec(),
                    found: e.shape.clone(),
                });
            }
        }
        let missing: Vec<(&str, &[usize])> = params
            .iter()
            .copied()
            .filter(|(n, _)| !self.entries.contains_key(*n))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::MissingTensors {
            file: self.source.clone(),
            missing: missing.iter().map(|(n, _)| n.to_string()).collect(),
            hint: self.prefix_hint(&missing, params),
        })
    }

    /// `(old, new)` such that every missing `new + rest` is in the file as `old + rest` with
    /// the expected shape, and no tensor the model needs and finds is renamed by it; the longest
    /// common `rest` first.
    fn prefix_hint(&self, missing: &[(&str, &[usize])], params: &[(&str, &[usize])]) -> Option<(String, String)> {
        let found: Vec<&str> = params
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| self.entries.contains_key(*n))
            .collect();
        let (first, _) = *missing.first()?;
        // dot-boundary suffixes of the first missing name, longest first
        let rests: Vec<&str> = std::iter::once(first)
            .chain(first.match_indices('.').map(|(i, _)| &first[i + 1..]))
            .filter(|r| !r.is_empty())
            .collect();
        let mut tried = std::collections::HashSet::new();
        for rest in rests {
            let new = &first[..first.len() - rest.len()];
            for k in &self.names {
                let Some(old) = k.strip_suffix(rest) else { continue };
                if !(old.is_empty() || old.ends_with('.')) || old == new {
                    continue;
                }
                if !tried.insert((old.to_string(), new.to_string())) || found.iter().any(|n| n.starts_with(old)) {
                    continue;
                }
                let fits = missing.iter().all(|(m, shape)| {
                    m.strip_prefix(new)
                        .and_then(|r| self.entries.get(&format!("{old}{r}")))
                        .is_some_and(|e| e.shape == *shape)
                });
                if fits {
                    return Some((old.to_string(), new.to_string()));
                }
            }
        }
        None
    }

    /// Lets tensors holding NaN or ±∞ load (they are refused by default with
    /// [`Error::NonFinite`]). A negative `running_var` is refused all the same.
    pub fn allow_non_finite(mut self, allow: bool) -> Self {
        self.allow_non_finite = allow;
        self
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
        self.check_values(name, &values)?;
        ArrayD::from_shape_vec(IxDyn(&e.shape), values).map_err(|err| corrupt(format!("tensor `{name}`: {err}")))
    }

    /// Refuses non-finite values (unless allowed) and a negative batch-norm variance.
    fn check_values(&self, name: &str, values: &[f32]) -> Result<()> {
        if !self.allow_non_finite {
            let bad = values.iter().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                let first = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
                return Err(Error::NonFinite {
                    name: name.to_string(),
                    count: bad,
                    index: first,
                    value: values.get(first).copied().unwrap_or(f32::NAN),
                });
            }
        }
        if name == "running_var" || name.ends_with(".running_var") {
            if let Some(i) = values.iter().position(|&v| v < 0.0) {
                return Err(Error::NegativeVariance {
                    name: name.to_string(),
                    index: i,
                    value: values[i],
                });
            }
        }
        Ok(())
    }

    /// Tensor `name` as f32, checked to have exactly `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<ArrayD<f32>> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| Error::MissingTensor { name: name.to_string() })?;
        if e.shape != shape {
            return Err(Error::WrongShape {
                file: self.source.clone(),
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

/// An IEEE 754 binary16 value as f32 (exact: every f16 is an f32). Subnormals are normalized,
/// ±∞ and NaN (payload kept in the high mantissa bits) carried over.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x03ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // subnormal: man · 2^-24; shift the leading one into the implicit bit
            let shift = man.leading_zeros() - 21; // 1..=10
            let man = (man << shift) & 0x03ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (man << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// A bfloat16 value as f32 (exact: bfloat16 is the top half of an f32).
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
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
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
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

/// Reads every tensor of a safetensors file as f32, sorted by name; NaN and ±∞ are refused
/// (see [`read_tensors_allowing`]).
pub fn read_tensors(path: impl AsRef<Path>) -> Result<Vec<(String, ArrayD<f32>)>> {
    read_tensors_allowing(path, false)
}

/// [`read_tensors`], letting NaN and ±∞ through if `allow_non_finite`.
pub fn read_tensors_allowing(path: impl AsRef<Path>, allow_non_finite: bool) -> Result<Vec<(String, ArrayD<f32>)>> {
    let w = Weights::from_file(path)?.allow_non_finite(allow_non_finite);
    w.names().map(|n| Ok((n.to_string(), w.tensor(n)?))).collect()
}

/// The values of `t` in logical (row-major) order as little-endian bytes: the data of a
/// safetensors tensor and of an ONNX `raw_data` field.
pub fn f32_le_bytes(t: ArrayViewD<f32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len() * 4);
    for v in t.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
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
        let bytes = f32_le_bytes(t.view());
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
