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

/// Why a set of tensors, or a file's metadata, is not the network it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The tensor that gives C away is absent.
    #[error("missing key {key}: not a CSGIS/JESS network")]
    NotCsgis {
        /// `descriptor.conv_in.weight`.
        key: &'static str,
    },
    /// A tensor has the wrong shape.
    #[error("{key} has shape {got:?}, expected {expected}")]
    Shape {
        /// The tensor's name.
        key: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The shape the network needs (`[64, 3, 3, 3]`, `[C, 3, 3, 3]`).
        expected: String,
    },
    /// The rHDC block indices have a gap.
    #[error("descriptor.res16 block indices are not 0..{blocks}: {gap} is missing")]
    BlockGap {
        /// How many blocks the file has.
        blocks: usize,
        /// The first index missing.
        gap: usize,
    },
    /// Tensors the network needs are absent.
    #[error("missing key(s) for {arch}: {}", key_list(keys))]
    Missing {
        /// The network (`CSGIS-Net N = 12, C = 64`).
        arch: String,
        /// The absent keys, sorted.
        keys: Vec<String>,
    },
    /// Tensors the network does not have are present.
    #[error("unexpected key(s): {}", key_list(keys))]
    Unexpected {
        /// The extra keys, sorted.
        keys: Vec<String>,
    },
    /// The metadata says csgis-lite but gives no widths.
    #[error("arch is csgis-lite but the metadata has no widths")]
    NoLiteWidths,
    /// The metadata's csgis-lite widths are unreadable.
    #[error("lite widths {0:?} are not four integers in 1..=4096")]
    LiteWidths(String),
}

/// The first five keys, then how many more.
fn key_list(keys: &[String]) -> String {
    let shown: Vec<&str> = keys.iter().take(5).map(String::as_str).collect();
    let more = keys.len().saturating_sub(5);
    if more > 0 { format!("{} (and {more} more)", shown.join(", ")) } else { shown.join(", ") }
}

/// Infers N and C from tensor names and shapes, then checks the set of keys and every shape.
///
/// # Errors
/// A [`Mismatch`] naming the first offending keys: missing, unexpected or of the wrong shape.
pub fn check_tensors(shapes: &HashMap<String, Vec<usize>>) -> std::result::Result<NetConfig, Mismatch> {
    const CONV_IN: &str = "descriptor.conv_in.weight";
    let channels = match shapes.get(CONV_IN).map(Vec::as_slice) {
        Some([c, 3, 3, 3]) => *c,
        Some(other) => {
            return Err(Mismatch::Shape { key: CONV_IN.into(), got: other.to_vec(), expected: "[C, 3, 3, 3]".into() })
        }
        None => return Err(Mismatch::NotCsgis { key: CONV_IN }),
    };
    let indices: BTreeSet<usize> = shapes
        .keys()
        .filter_map(|k| k.strip_prefix("descriptor.res16."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect();
    let blocks = indices.len();
    if let Some(gap) = (0..blocks).find(|i| !indices.contains(i)) {
        return Err(Mismatch::BlockGap { blocks, gap });
    }
    let config = NetConfig { blocks, channels };
    check_exact(&Arch::Csgis(config), shapes)?;
    Ok(config)
}

/// The lite sizes named by a file's metadata, or `None` when it is not a lite file.
///
/// # Errors
/// A [`Mismatch`] when the metadata says lite but its `widths` are unreadable.
fn lite_config(metadata: &HashMap<String, String>) -> std::result::Result<Option<LiteConfig>, Mismatch> {
    if metadata.get("arch").map(String::as_str) != Some(LITE_ARCH_NAME) {
        return Ok(None);
    }
    let text = metadata.get("widths").ok_or(Mismatch::NoLiteWidths)?;
    let widths: Vec<usize> = text
        .split(',')
        .map(|w| w.trim().parse())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Mismatch::LiteWidths(text.clone()))?;
    match widths.as_slice() {
        &[a, b, c, d] if widths.iter().all(|&w| (1..=4096).contains(&w)) => Ok(Some(LiteConfig { widths: [a, b, c, d] })),
        _ => Err(Mismatch::LiteWidths(text.clone())),
    }
}

/// Checks that `shapes` are exactly the tensors of `arch` (names and shapes).
///
/// # Errors
/// A [`Mismatch`] naming the first missing, unexpected or misshapen keys.
pub fn check_exact(arch: &Arch, shapes: &HashMap<String, Vec<usize>>) -> std::result::Result<(), Mismatch> {
    let expected: HashMap<String, Vec<usize>> = arch.expected_tensors().into_iter().collect();
    let sorted = |mut keys: Vec<String>| {
        keys.sort();
        keys
    };
    let missing = sorted(expected.keys().filter(|k| !shapes.contains_key(*k)).cloned().collect());
    if !missing.is_empty() {
        return Err(Mismatch::Missing { arch: arch.describe(), keys: missing });
    }
    let extra = sorted(shapes.keys().filter(|k| !expected.contains_key(*k)).cloned().collect());
    if !extra.is_empty() {
        return Err(Mismatch::Unexpected { keys: extra });
    }
    for name in sorted(expected.keys().cloned().collect()) {
        let (want, got) = (&expected[&name], &shapes[&name]);
        if want != got {
            return Err(Mismatch::Shape { key: name, got: got.clone(), expected: format!("{want:?}") });
        }
    }
    Ok(())
}

/// Loads a safetensors buffer (`origin` is only used in messages) onto `device` in `dtype`.
/// The family comes from the metadata (`arch = csgis-lite`) or, failing that, the keys.
///
/// # Errors
/// [`Error::Weights`] naming the file and the cause (not safetensors, non-finite values), or
/// [`Error::WeightsMismatch`] for unknown, missing or extra keys and wrong shapes.
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
    let mismatch = |source: Mismatch| Error::WeightsMismatch { path: origin.to_path_buf(), source };
    let arch = match lite_config(&metadata).map_err(mismatch)? {
        Some(lite) => {
            let arch = Arch::Lite(lite);
            check_exact(&arch, &shapes).map_err(mismatch)?;
            arch
        }
        None => Arch::Csgis(check_tensors(&shapes).map_err(mismatch)?),
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
