//! Strict loading of CSGIS/JESS weights from safetensors with the authors' key names.
//!
//! The architecture is read from the file: the width C from `descriptor.conv_in.weight` and the
//! block count N from the `descriptor.res16.<i>` indices. Every expected tensor must be present
//! with its exact shape and nothing else may be (`num_batches_tracked` is ignored): candle's
//! `VarBuilder` has no `strict=True`, so the check is done here against
//! [`NetConfig::expected_tensors`]. BatchNorm is folded into the convolutions in f64 before the
//! network is moved to its device and dtype.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::{CsgisNet, NetConfig};
use crate::error::{Error, Result};

/// A network ready for inference, with what its file said about itself.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The folded network on its device, in its dtype.
    pub net: CsgisNet,
    /// N and C as read from the keys.
    pub config: NetConfig,
    /// The safetensors `__metadata__` (provenance, channel order, ...).
    pub metadata: HashMap<String, String>,
}

/// Infers N and C from tensor names and shapes, then checks the set of keys and every shape.
///
/// # Errors
/// A message naming the first offending keys: missing, unexpected or of the wrong shape.
pub fn check_tensors(shapes: &HashMap<String, Vec<usize>>) -> std::result::Result<NetConfig, String> {
    let conv_in = "descriptor.conv_in.weight";
    let channels = match shapes.get(conv_in).map(Vec::as_slice) {
        Some([c, 3, 3, 3]) => *c,
        Some(other) => return Err(format!("{conv_in} has shape {other:?}, expected [C, 3, 3, 3]")),
        None => return Err(format!("missing key {conv_in}: not a CSGIS/JESS network")),
    };
    let indices: BTreeSet<usize> = shapes
        .keys()
        .filter_map(|k| k.strip_prefix("descriptor.res16."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect();
    let blocks = indices.len();
    if let Some(gap) = (0..blocks).find(|i| !indices.contains(i)) {
        return Err(format!("descriptor.res16 block indices are not 0..{blocks}: {gap} is missing"));
    }
    let config = NetConfig { blocks, channels };
    let expected: HashMap<String, Vec<usize>> = config.expected_tensors().into_iter().collect();
    let mut missing: Vec<&String> = expected.keys().filter(|k| !shapes.contains_key(*k)).collect();
    let mut extra: Vec<&String> = shapes.keys().filter(|k| !expected.contains_key(*k)).collect();
    missing.sort();
    extra.sort();
    let list = |keys: &[&String]| {
        let shown: Vec<&str> = keys.iter().take(5).map(|k| k.as_str()).collect();
        let more = keys.len().saturating_sub(5);
        if more > 0 { format!("{} (and {more} more)", shown.join(", ")) } else { shown.join(", ") }
    };
    if !missing.is_empty() {
        return Err(format!("missing key(s) for N = {blocks}, C = {channels}: {}", list(&missing)));
    }
    if !extra.is_empty() {
        return Err(format!("unexpected key(s): {}", list(&extra)));
    }
    let mut names: Vec<&String> = expected.keys().collect();
    names.sort();
    for name in names {
        let (want, got) = (&expected[name], &shapes[name]);
        if want != got {
            return Err(format!("{name} has shape {got:?}, expected {want:?}"));
        }
    }
    Ok(config)
}

/// Loads a safetensors buffer (`origin` is only used in messages) onto `device` in `dtype`.
///
/// # Errors
/// [`Error::Weights`] naming the file and the cause: not safetensors, unknown/missing/extra
/// keys, wrong shapes, non-finite values.
pub fn load_weights(bytes: &[u8], origin: &Path, device: &Device, dtype: DType) -> Result<LoadedModel> {
    let fail = |reason: String| Error::Weights { path: origin.to_path_buf(), reason };
    let metadata = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| fail(format!("not a safetensors file ({e})")))?
        .1
        .metadata()
        .clone()
        .unwrap_or_default();
    let mut tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| fail(format!("cannot read tensors ({e})")))?;
    tensors.retain(|k, _| !k.ends_with("num_batches_tracked"));
    let shapes = shapes_of(&tensors);
    let config = check_tensors(&shapes).map_err(fail)?;
    let mut as_f64 = HashMap::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.to_dtype(DType::F64)?;
        let finite = t.flatten_all()?.to_vec1::<f64>()?.iter().all(|v| v.is_finite());
        if !finite {
            return Err(fail(format!("{name} holds NaN or infinite values")));
        }
        as_f64.insert(name, t);
    }
    let vb = VarBuilder::from_tensors(as_f64, DType::F64, &Device::Cpu);
    let net = CsgisNet::new(&config, vb)?.fold()?.to(device, dtype)?;
    Ok(LoadedModel { net, config, metadata })
}

/// Reads and loads a weights file; see [`load_weights`].
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, else as [`load_weights`].
pub fn load_weights_file(path: &Path, device: &Device, dtype: DType) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_weights(&bytes, path, device, dtype)
}

/// Converts a tensor map to shapes, for [`check_tensors`].
#[must_use]
pub fn shapes_of(tensors: &HashMap<String, Tensor>) -> HashMap<String, Vec<usize>> {
    tensors.iter().map(|(k, t)| (k.clone(), t.dims().to_vec())).collect()
}
