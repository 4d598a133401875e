//! Strict loading of weights from safetensors: CSGIS/JESS networks with the authors' key names,
//! and csgis-lite networks, whose file says so in its metadata (`arch = csgis-lite`,
//! `widths = 16,32,64,128`).
//!
//! For CSGIS/JESS files:
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

use super::{Arch, LiteConfig, NetConfig, Network, LITE_ARCH_NAME};
use crate::error::{Error, Result};

/// A network ready for inference, with what its file said about itself.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The inference network (BatchNorm folded) on its device, in its dtype.
    pub net: Network,
    /// The family and sizes, as read from the keys (CSGIS) or the metadata (lite).
    pub arch: Arch,
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
    check_exact(&Arch::Csgis(config), shapes)?;
    Ok(config)
}

/// The lite sizes named by a file's metadata, or `None` when it is not a lite file.
///
/// # Errors
/// A message when the metadata says lite but its `widths` are unreadable.
fn lite_config(metadata: &HashMap<String, String>) -> std::result::Result<Option<LiteConfig>, String> {
    if metadata.get("arch").map(String::as_str) != Some(LITE_ARCH_NAME) {
        return Ok(None);
    }
    let text = metadata.get("widths").ok_or("arch is csgis-lite but the metadata has no widths")?;
    let widths: Vec<usize> = text.split(',').map(|w| w.trim().parse()).collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("lite widths {text:?} are not four integers"))?;
    match widths.as_slice() {
        &[a, b, c, d] if widths.iter().all(|&w| (1..=4096).contains(&w)) => Ok(Some(LiteConfig { widths: [a, b, c, d] })),
        _ => Err(format!("lite widths {text:?} are not four integers in 1..=4096")),
    }
}

/// Checks that `shapes` are exactly the tensors of `arch` (names and shapes).
///
/// # Errors
/// A message naming the first missing, unexpected or misshapen keys.
pub fn check_exact(arch: &Arch, shapes: &HashMap<String, Vec<usize>>) -> std::result::Result<(), String> {
    let expected: HashMap<String, Vec<usize>> = arch.expected_tensors().into_iter().collect();
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
        return Err(format!("missing key(s) for {}: {}", arch.describe(), list(&missing)));
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
    Ok(())
}

/// Loads a safetensors buffer (`origin` is only used in messages) onto `device` in `dtype`.
/// The family comes from the metadata (`arch = csgis-lite`) or, failing that, the keys.
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
    let arch = match lite_config(&metadata).map_err(fail)? {
        Some(lite) => {
            let arch = Arch::Lite(lite);
            check_exact(&arch, &shapes).map_err(fail)?;
            arch
        }
        None => Arch::Csgis(check_tensors(&shapes).map_err(fail)?),
    };
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
    let net = Network::new(&arch, vb)?.for_inference()?.to(device, dtype)?;
    Ok(LoadedModel { net, arch, metadata })
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
