//! `.pth` → safetensors conversion.
//!
//! Reference: the safetensors format (<https://github.com/huggingface/safetensors>, an 8-byte
//! header length, a JSON header with an optional `__metadata__` map of strings, then the raw
//! tensors) and the JESS/CSGIS checkpoint layout (`docs/reference-implementation.md` §1.5:
//! weights under `net`, `num_batches_tracked` dropped). Every tensor is written as
//! little-endian `f32`; the output is written atomically.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::Dtype;

use super::checkpoint::Checkpoint;
use super::CheckpointFormat;
use crate::error::{Error, Result};
use crate::io::atomic::{write_atomic, Existing};

/// The key under which the JESS and CSGIS training scripts store the model's state dict.
pub const STATE_DICT_KEY: &str = "net";

/// What [`convert_checkpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertSummary {
    /// The input's container format.
    pub format: CheckpointFormat,
    /// Tensors written.
    pub tensors: usize,
    /// Keys left out (BatchNorm's `num_batches_tracked`), sorted.
    pub dropped: Vec<String>,
    /// Where the state dict was found: `Some("net")`, or `None` when the top-level object was
    /// itself the state dict.
    pub key: Option<String>,
}

/// Converts a PyTorch checkpoint (zip or legacy format) to a safetensors file of `f32` tensors.
///
/// The state dict is taken from key `net` when the top-level object has one, and otherwise the
/// top-level object must itself be a dict of tensors ([`ConvertSummary::key`] says which). The
/// output's `__metadata__` records `source` (the input's file name), `format`
/// (`pth-zip`/`pth-legacy`), `tensors` (the count) and `state_dict_key` (`net`, or empty for
/// the top level). `output` is replaced atomically (a temporary file in the same directory,
/// then a rename).
///
/// # Errors
/// [`Error::Checkpoint`] if the input is already safetensors, is not a readable checkpoint, or
/// holds no state dict; [`Error::Io`] if a file cannot be read or written.
pub fn convert_checkpoint(input: &Path, output: &Path) -> Result<ConvertSummary> {
    let fail = |reason: &str| Error::Checkpoint { path: input.to_path_buf(), reason: reason.to_owned() };
    if input.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors")) {
        return Err(fail("already a safetensors file; no conversion needed"));
    }
    let mut checkpoint = Checkpoint::open(input)?;
    let key = checkpoint.root.dict_get(STATE_DICT_KEY).map(|_| STATE_DICT_KEY);
    let state = checkpoint.state_dict(key).map_err(|e| match (key, e) {
        (None, Error::Checkpoint { path, reason }) => Error::Checkpoint {
            path,
            reason: format!("no '{STATE_DICT_KEY}' key, and the top-level object is not a state dict: {reason}"),
        },
        (_, e) => e,
    })?;
    if state.tensors.is_empty() {
        return Err(checkpoint.error("the state dict holds no tensors"));
    }
    let bytes: Vec<Vec<u8>> =
        state.tensors.iter().map(|(_, t)| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let mut views = Vec::with_capacity(state.tensors.len());
    for ((name, t), data) in state.tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, t.shape.clone(), data)
            .map_err(|e| checkpoint.error(format!("entry '{name}': {e}")))?;
        views.push((name.as_str(), view));
    }
    let source = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let metadata = HashMap::from([
        ("source".to_owned(), source),
        ("format".to_owned(), checkpoint.format.as_str().to_owned()),
        ("tensors".to_owned(), state.tensors.len().to_string()),
        ("state_dict_key".to_owned(), key.unwrap_or_default().to_owned()),
    ]);
    let serialized = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Weights { path: output.to_path_buf(), reason: e.to_string() })?;
    write_atomic(output, &serialized, Existing::Replace)?;
    Ok(ConvertSummary {
        format: checkpoint.format,
        tensors: state.tensors.len(),
        dropped: state.dropped,
        key: key.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_input_is_refused_by_name_and_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("w.safetensors");
        std::fs::write(&named, b"").unwrap();
        let e = convert_checkpoint(&named, &dir.path().join("o.safetensors")).unwrap_err().to_string();
        assert!(e.contains("already a safetensors"), "{e}");
        let renamed = dir.path().join("w.pth");
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend(b"{}");
        std::fs::write(&renamed, bytes).unwrap();
        let e = convert_checkpoint(&renamed, &dir.path().join("o.safetensors")).unwrap_err().to_string();
        assert!(e.contains("already a safetensors"), "{e}");
        assert!(!dir.path().join("o.safetensors").exists());
    }
}
