//! Opening a checkpoint of either format and extracting its state dict.
//!
//! Reference: PyTorch `torch/serialization.py` (`_is_zipfile`, `_legacy_load`) for format
//! detection, and `torch.nn.Module.state_dict` for what a state dict holds: a dict (usually an
//! `OrderedDict`) from dotted parameter names to tensors, with BatchNorm's int64
//! `num_batches_tracked` counters among them. The JESS and CSGIS training scripts save
//! `{"net": state_dict, "now_epoch": int, "opt": optimizer_state}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::archive::open_zip;
use super::legacy::open_legacy;
use super::pickle::{Reason, Value};
use super::tensor::TensorSpec;
use super::{CheckpointFormat, RawTensor, StorageSource};
use crate::error::{Error, Result};

/// The suffix of BatchNorm's step counters, which are not weights and are dropped.
const DROPPED_SUFFIX: &str = "num_batches_tracked";

/// An opened checkpoint: the unpickled object and access to its storages.
pub(crate) struct Checkpoint {
    /// The file it came from, for error messages.
    pub path: PathBuf,
    /// Which container format it is in.
    pub format: CheckpointFormat,
    /// The top-level object.
    pub root: Value,
    storages: Box<dyn StorageSource>,
}

/// The tensors of a state dict, sorted by key, and the keys that were dropped.
#[derive(Debug)]
pub(crate) struct StateDict {
    /// Kept tensors, sorted by key.
    pub tensors: Vec<(String, RawTensor)>,
    /// Dropped keys (`*num_batches_tracked`), sorted.
    pub dropped: Vec<String>,
}

impl Checkpoint {
    /// Reads and parses `path`, detecting the format from its content.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Checkpoint`] if it is not a
    /// checkpoint this reader understands.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let fail = |reason: Reason| Error::Checkpoint { path: path.to_path_buf(), reason };
        let (format, root, storages): (_, _, Box<dyn StorageSource>) = match detect(&bytes).map_err(fail)? {
            CheckpointFormat::Zip => {
                let (root, s) = open_zip(bytes).map_err(fail)?;
                (CheckpointFormat::Zip, root, Box::new(s))
            }
            CheckpointFormat::Legacy => {
                let (root, s) = open_legacy(bytes).map_err(fail)?;
                (CheckpointFormat::Legacy, root, Box::new(s))
            }
        };
        Ok(Self { path: path.to_path_buf(), format, root, storages })
    }

    /// Wraps a reason into an [`Error::Checkpoint`] naming this file.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::Checkpoint { path: self.path.clone(), reason: reason.into() }
    }

    /// The top-level object's string keys, for messages (empty if it is not a dict).
    pub fn top_level_keys(&self) -> Vec<&str> {
        self.root.dict_pairs().map(|pairs| pairs.filter_map(|(k, _)| k.as_str()).collect()).unwrap_or_default()
    }

    /// Reads the state dict under `key`, or the top-level object when `key` is `None`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if the key is missing, the object is not a dict of tensors, or a
    /// tensor is malformed or of an unsupported dtype.
    pub fn state_dict(&mut self, key: Option<&str>) -> Result<StateDict> {
        let dict = match key {
            None => &self.root,
            Some(k) if !matches!(self.root, Value::Dict(_)) => {
                return Err(self.error(format!("top-level object is a {}, not a dict with key '{k}'", self.root.kind())))
            }
            Some(k) => self.root.dict_get(k).ok_or_else(|| {
                self.error(format!("no key '{k}' (top-level keys: {})", self.top_level_keys().join(", ")))
            })?,
        };
        let what = key.map_or_else(|| "top-level object".to_owned(), |k| format!("'{k}'"));
        let pairs =
            dict.dict_pairs().ok_or_else(|| self.error(format!("{what} is a {}, not a state dict", dict.kind())))?;
        let mut specs = BTreeMap::new();
        let mut dropped = Vec::new();
        for (name, value) in pairs {
            let name = name.as_str().ok_or_else(|| self.error(format!("{what} has a {} key", name.kind())))?;
            if name.ends_with(DROPPED_SUFFIX) {
                dropped.push(name.to_owned());
                continue;
            }
            let spec = TensorSpec::from_value(value).map_err(|e| self.error(format!("entry '{name}': {e}")))?;
            specs.insert(name.to_owned(), spec);
        }
        let mut tensors = Vec::with_capacity(specs.len());
        for (name, spec) in specs {
            let tensor = self.materialize(&spec).map_err(|e| self.error(format!("entry '{name}': {e}")))?;
            tensors.push((name, tensor));
        }
        dropped.sort();
        dropped.dedup();
        Ok(StateDict { tensors, dropped })
    }

    fn materialize(&mut self, spec: &TensorSpec) -> Result<RawTensor, Reason> {
        let root = self.storages.storage(&spec.storage)?;
        spec.materialize(&root)
    }
}

/// Tells the formats apart by their first bytes, naming what a rejected file looks like.
fn detect(bytes: &[u8]) -> Result<CheckpointFormat, Reason> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Ok(CheckpointFormat::Zip);
    }
    if bytes[0] == 0x80 {
        return Ok(CheckpointFormat::Legacy);
    }
    if looks_like_safetensors(bytes) {
        return Err("already a safetensors file; no conversion needed".into());
    }
    if bytes.get(257..262) == Some(b"ustar") {
        return Err("tar-format checkpoints (PyTorch < 0.4) are not supported".into());
    }
    Err("unknown format: neither a zip (PyTorch >= 1.6) nor a legacy pickle checkpoint".into())
}

/// A safetensors file starts with a little-endian u64 header length, then a JSON object.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some(len) = bytes.get(..8) else { return false };
    let mut n = [0; 8];
    n.copy_from_slice(len);
    let n = u64::from_le_bytes(n);
    bytes.get(8) == Some(&b'{') && n < bytes.len() as u64
}

/// Reads the state dict under `key` (e.g. `Some("net")`); `None` takes the top-level object as
/// the state dict. Tensors come back as contiguous `f32`, sorted by key, with BatchNorm's
/// `num_batches_tracked` counters dropped.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Checkpoint`] for an unknown format, a
/// truncated file, a missing key, a non-tensor entry or an unsupported dtype.
pub fn read_state_dict(path: &Path, key: Option<&str>) -> Result<Vec<(String, RawTensor)>> {
    Ok(Checkpoint::open(path)?.state_dict(key)?.tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_and_names_rejected_ones() {
        assert_eq!(detect(b"PK\x03\x04rest"), Ok(CheckpointFormat::Zip));
        assert_eq!(detect(b"\x80\x02\x8a"), Ok(CheckpointFormat::Legacy));
        assert!(detect(b"").unwrap_err().contains("empty"));
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend(b"{}");
        assert!(detect(&st).unwrap_err().contains("safetensors"));
        let mut tar = vec![0; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert!(detect(&tar).unwrap_err().contains("tar"));
        assert!(detect(b"hello world").unwrap_err().contains("unknown format"));
    }
}
