//! Smoothing engines: the network or a classical operator behind one trait, the models
//! embedded in the binary, and the `--strength` blend. The CLI's `smooth` and `eval` run
//! these; a library user can too.
//!
//! # Examples
//!
//! ```
//! use csgis::infer::{blend, ClassicalEngine, Engine};
//! use csgis::ops::{GuidedParams, Method, Planes};
//!
//! let img = Planes::from_fn(3, 16, 24, |c, y, x| ((c + y * x) % 7) as f32 / 7.0);
//! let engine = ClassicalEngine::new(Method::Guided(GuidedParams::default()));
//! let (mut out, edges) = engine.smooth(&img)?;
//! blend(&mut out, &img, 0.5); // halfway between the input and the smoothed image
//! assert_eq!((out.c, out.h, out.w), (3, 16, 24));
//! assert!(edges.is_none(), "classical operators predict no edges");
//! # Ok::<(), csgis::Error>(())
//! ```

use std::path::Path;

use candle_core::{DType, Device};

use super::{Smoother, Tiling};
use crate::model::{load_weights, load_weights_file, LoadedModel};
use crate::ops::{Method, Planes};
use crate::{Error, Result};

/// What turns an RGB image into its smoothed version (and, for the network, an edge map).
pub trait Engine: Sync {
    /// Smooths `rgb`; returns the result and, if the engine predicts one, an edge map.
    ///
    /// # Errors
    /// Device or numeric failures, reported for this image only.
    fn smooth(&self, rgb: &Planes) -> Result<(Planes, Option<Planes>)>;
    /// The device name for reports (`cpu`, `cuda:0`).
    fn device_name(&self) -> String;
    /// The largest image, in pixels, that may be smoothed while others are: a batch runs
    /// images up to this size several at a time and larger ones one at a time (with every
    /// core), as their memory, not the cores, is the limit. 0: always one at a time.
    fn concurrent_pixels(&self) -> u64 {
        CLASSICAL_CONCURRENT_PIXELS
    }
}

/// [`Engine::concurrent_pixels`] of the classical operators: 1 MP (their working buffers are
/// a few full-size planes).
pub const CLASSICAL_CONCURRENT_PIXELS: u64 = 1 << 20;

/// [`Engine::concurrent_pixels`] of the network on the CPU: 512×512 (a 64-channel feature
/// map of that size is 64 MiB). On a GPU the network smooths one image at a time.
pub const NET_CONCURRENT_PIXELS: u64 = 1 << 18;

/// The network as an engine.
#[derive(Debug)]
pub struct NetEngine {
    smoother: Smoother,
}

impl NetEngine {
    /// Wraps a [`Smoother`].
    #[must_use]
    pub fn new(smoother: Smoother) -> Self {
        Self { smoother }
    }
}

impl Engine for NetEngine {
    fn smooth(&self, rgb: &Planes) -> Result<(Planes, Option<Planes>)> {
        let out = self.smoother.smooth(rgb)?;
        Ok((out.image, Some(out.edges)))
    }

    fn device_name(&self) -> String {
        match self.smoother.device().location() {
            candle_core::DeviceLocation::Cpu => "cpu".into(),
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
        }
    }

    fn concurrent_pixels(&self) -> u64 {
        if self.smoother.device().is_cpu() { NET_CONCURRENT_PIXELS } else { 0 }
    }
}

/// A classical operator as an engine.
#[derive(Debug, Clone, Copy)]
pub struct ClassicalEngine {
    method: Method,
}

impl ClassicalEngine {
    /// Wraps `method`.
    #[must_use]
    pub fn new(method: Method) -> Self {
        Self { method }
    }
}

impl Engine for ClassicalEngine {
    fn smooth(&self, rgb: &Planes) -> Result<(Planes, Option<Planes>)> {
        Ok((self.method.apply(rgb), None))
    }

    fn device_name(&self) -> String {
        "cpu".into()
    }
}

/// The models built into the binary (when their files were present at build time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedModel {
    /// csgis-lite, `weights/lite.safetensors`.
    Lite,
    /// CSGIS-Net, `weights/csgis.safetensors`.
    Full,
}

impl EmbeddedModel {
    /// The `--model` word.
    #[must_use]
    pub fn flag(self) -> &'static str {
        match self {
            Self::Lite => "lite",
            Self::Full => "full",
        }
    }

    /// The weights file it is built from.
    #[must_use]
    pub fn file(self) -> &'static str {
        match self {
            Self::Lite => "weights/lite.safetensors",
            Self::Full => "weights/csgis.safetensors",
        }
    }

    /// The embedded bytes, if this build has them.
    #[must_use]
    pub fn bytes(self) -> Option<&'static [u8]> {
        match self {
            Self::Lite => crate::model::EMBEDDED_LITE,
            Self::Full => crate::model::EMBEDDED_WEIGHTS,
        }
    }

    /// What a user should know whenever this model runs (weights/README.md).
    #[must_use]
    pub fn note(self) -> &'static str {
        match self {
            Self::Full => {
                "the embedded CSGIS-Net is a preliminary one (N = 3, C = 16, about an hour of CPU \
                 training); it removes texture but can tint large flat areas. See weights/README.md; pass --weights for another model"
            }
            Self::Lite => {
                "the embedded csgis-lite (about 7 CPU-hours of training) keeps objects and fine structure but leaves \
                 coarse textures; it does not beat the best classical operators by a clear margin on the held-out set \
                 (weights/README.md), and --method rtv or fgs may do better on flat grounds"
            }
        }
    }
}

/// Where the network's weights come from.
#[derive(Debug, Clone, Copy)]
pub enum ModelSource<'a> {
    /// A safetensors file.
    File(&'a Path),
    /// A model built into the binary.
    Embedded(EmbeddedModel),
}

/// Loads the network `source` names onto `device` in `dtype`.
///
/// # Errors
/// [`Error::NoEmbeddedModel`] when this build lacks the embedded model, else as
/// [`load_weights_file`].
pub fn load_model(source: ModelSource<'_>, device: &Device, dtype: DType) -> Result<LoadedModel> {
    match source {
        ModelSource::File(path) => load_weights_file(path, device, dtype),
        ModelSource::Embedded(m) => {
            let bytes = m.bytes().ok_or(Error::NoEmbeddedModel { flag: m.flag(), file: m.file() })?;
            load_weights(bytes, Path::new(&format!("<embedded {}>", m.flag())), device, dtype)
        }
    }
}

/// The engine for a classical `method`, or else the network from `model`, tiled as `tiling`
/// says (`context`: the tile margin; `None` for the exact one).
///
/// # Errors
/// As [`load_model`].
pub fn build_engine(
    method: Option<Method>,
    model: ModelSource<'_>,
    device: &Device,
    dtype: DType,
    tiling: Tiling,
    context: Option<usize>,
) -> Result<Box<dyn Engine>> {
    if let Some(method) = method {
        return Ok(Box::new(ClassicalEngine::new(method)));
    }
    let model = load_model(model, device, dtype)?;
    Ok(Box::new(NetEngine::new(Smoother::new(model.net, device.clone(), dtype, tiling, context))))
}

/// `--strength`: `strength · smoothed + (1 − strength) · input`, in place (1 keeps the
/// smoothed image as it is).
pub fn blend(smoothed: &mut Planes, input: &Planes, strength: f32) {
    if strength < 1.0 {
        for (s, x) in smoothed.data.iter_mut().zip(&input.data) {
            *s = strength * *s + (1.0 - strength) * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_smooths_an_image_without_the_cli() -> Result<()> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jess-w8-n1/weights.safetensors");
        let engine = build_engine(None, ModelSource::File(&path), &Device::Cpu, DType::F32, Tiling::Off, None)?;
        let img = Planes::from_fn(3, 19, 23, |c, y, x| ((c * 5 + y * 3 + x) % 11) as f32 / 10.0);
        let (out, edges) = engine.smooth(&img)?;
        assert_eq!((out.c, out.h, out.w), (3, 19, 23));
        assert!(out.data.iter().all(|v| v.is_finite()));
        assert_eq!(edges.map(|e| (e.c, e.h, e.w)), Some((1, 19, 23)));
        assert_eq!(engine.device_name(), "cpu");
        Ok(())
    }

    #[test]
    fn strength_blends_towards_the_input() {
        let input = Planes::from_vec(1, 1, 2, vec![0.0, 1.0]);
        let mut out = Planes::from_vec(1, 1, 2, vec![1.0, 0.0]);
        blend(&mut out, &input, 0.25);
        assert_eq!(out.data, vec![0.75 * 0.0 + 0.25, 0.75]);
        let mut full = Planes::from_vec(1, 1, 2, vec![1.0, 0.0]);
        blend(&mut full, &input, 1.0);
        assert_eq!(full.data, vec![1.0, 0.0]);
    }
}
