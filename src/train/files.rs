//! File helpers of the training code: crash-safe writes (a temporary file in the target's
//! directory, then a rename) and building frozen networks from safetensors weights.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::{Error, Result};

/// Writes `bytes` to `path` so that a reader sees either the old file or the complete new one
/// (the same temporary-file-and-rename as image outputs, replacing an existing file).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::io::write_atomic(path, bytes, crate::io::Existing::Replace)
}

/// Every variable of `varmap` by name (weights, biases and BatchNorm statistics).
pub(crate) fn varmap_tensors(varmap: &candle_nn::VarMap) -> Result<HashMap<String, Tensor>> {
    let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock poisoned".into()))?;
    Ok(data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect())
}

/// Serialises `tensors` (sorted by name) with optional `__metadata__` and writes them atomically.
pub(crate) fn write_safetensors(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let mut named: Vec<(&String, Tensor)> = Vec::with_capacity(tensors.len());
    for (k, t) in tensors {
        named.push((k, t.to_device(&candle_core::Device::Cpu)?.contiguous()?));
    }
    named.sort_by(|a, b| a.0.cmp(b.0));
    let bytes = safetensors::serialize(named, metadata)
        .map_err(|e| Error::Weights { path: path.to_path_buf(), reason: e.to_string() })?;
    write_atomic(path, &bytes)
}

/// Reads the safetensors file at `path` and builds a network from it with `build`; any failure
/// of the builder (a missing key, a wrong shape) becomes [`Error::Weights`] naming the file.
pub(crate) fn build_from_safetensors<T>(
    path: &Path,
    dtype: DType,
    dev: &Device,
    build: impl FnOnce(VarBuilder<'static>) -> candle_core::Result<T>,
) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let err =
        |e: candle_core::Error| Error::Weights { path: path.to_path_buf(), reason: e.to_string() };
    let vb = VarBuilder::from_buffered_safetensors(bytes, dtype, dev).map_err(err)?;
    build(vb).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let p = dir.path().join("a.bin");
        write_atomic(&p, b"one")?;
        write_atomic(&p, b"two")?;
        assert_eq!(std::fs::read(&p).map_err(|e| Error::io(&p, e))?, b"two");
        assert_eq!(std::fs::read_dir(dir.path()).map_err(|e| Error::io("d", e))?.count(), 1);
        Ok(())
    }
}
