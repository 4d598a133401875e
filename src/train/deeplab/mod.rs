//! DeepLabv3+ with a MobileNetV2 backbone, the frozen segmenter φ of paper eq. 10
//! (`L_seg = CrossEntropy(φ(S1), Seg_gt)`), after VainF's DeepLabV3Plus-Pytorch
//! (`deeplabv3plus_mobilenet`), whose VOC checkpoint the CSGIS code restores.
//!
//! Key names are VainF's (`backbone.low_level_features.*`, `backbone.high_level_features.*`,
//! `classifier.*`), so a converted `best_deeplabv3plus_mobilenet_voc_os16.pth` (its
//! `model_state`) loads with [`DeepLabV3Plus::load`]. Inputs are ImageNet-normalised RGB
//! ([`imagenet_normalize`]); VainF trains that way, while the CSGIS code feeds unnormalised
//! images (`shared/docs/reference-implementation.md` §2.5, item 10 of §8).
//!
//! The paper's intent is to run S1 through the frozen network in eval mode and backpropagate
//! into S1: every layer here is differentiable with respect to its input (BatchNorm through
//! `ModuleT` with the train flag; resizing through [`crate::train::layers::bilinear_resize`]).
//! The authors' code builds it at output stride 8 and never calls `eval()`.

mod backbone;
mod conv_bn;
mod head;

pub use backbone::{BackboneFeatures, MobileNetV2};
pub use conv_bn::{Act, ConvBn, ConvSpec};
pub use head::{Aspp, DeepLabHead, HeadSpec};

use std::path::Path;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{ModuleT, VarBuilder};

use crate::train::files::build_from_safetensors;
use crate::train::layers::bilinear_resize;

/// ImageNet channel means (RGB) used by VainF's models.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// `(x − mean) / std` per RGB channel of `(N, 3, H, W)` images in [0, 1].
pub fn imagenet_normalize(rgb01: &Tensor) -> Result<Tensor> {
    let dev = rgb01.device();
    let mean = Tensor::new(&IMAGENET_MEAN, dev)?.to_dtype(rgb01.dtype())?.reshape((1, 3, 1, 1))?;
    let std = Tensor::new(&IMAGENET_STD, dev)?.to_dtype(rgb01.dtype())?.reshape((1, 3, 1, 1))?;
    rgb01.broadcast_sub(&mean)?.broadcast_div(&std)
}

/// Architecture settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeepLabConfig {
    /// Number of classes (21 for PASCAL VOC).
    pub num_classes: usize,
    /// 16 (ASPP rates 6/12/18, VainF's VOC checkpoint) or 8 (rates 12/24/36, the CSGIS code).
    pub output_stride: usize,
    /// MobileNetV2 width multiplier (1.0 for the released weights).
    pub width_mult: f64,
    /// Channels of each ASPP branch and of the decoder (256).
    pub aspp_channels: usize,
    /// Channels of the low-level projection (48).
    pub low_level_proj: usize,
    /// Dropout after the ASPP projection in training (0.1).
    pub dropout: f32,
}

impl Default for DeepLabConfig {
    /// `deeplabv3plus_mobilenet`, 21 classes, output stride 16.
    fn default() -> Self {
        Self {
            num_classes: 21,
            output_stride: 16,
            width_mult: 1.0,
            aspp_channels: 256,
            low_level_proj: 48,
            dropout: 0.1,
        }
    }
}

impl DeepLabConfig {
    /// A small network with the same topology, for tests.
    pub fn tiny(num_classes: usize) -> Self {
        Self {
            num_classes,
            output_stride: 16,
            width_mult: 0.25,
            aspp_channels: 8,
            low_level_proj: 4,
            dropout: 0.0,
        }
    }

    fn aspp_rates(&self) -> [usize; 3] {
        if self.output_stride == 8 {
            [12, 24, 36]
        } else {
            [6, 12, 18]
        }
    }
}

/// DeepLabv3+ / MobileNetV2: logits `(N, num_classes, H, W)` at the input resolution.
#[derive(Debug, Clone)]
pub struct DeepLabV3Plus {
    backbone: MobileNetV2,
    head: DeepLabHead,
}

impl DeepLabV3Plus {
    /// Builds the network under `vb` (`backbone.*`, `classifier.*`).
    pub fn new(cfg: &DeepLabConfig, vb: VarBuilder) -> Result<Self> {
        let backbone = MobileNetV2::new(cfg.width_mult, cfg.output_stride, vb.pp("backbone"))?;
        let spec = HeadSpec {
            high_channels: backbone::high_level_channels(cfg.width_mult),
            low_channels: backbone::low_level_channels(cfg.width_mult),
            low_proj: cfg.low_level_proj,
            aspp: cfg.aspp_channels,
            num_classes: cfg.num_classes,
            rates: cfg.aspp_rates(),
            dropout: cfg.dropout,
        };
        Ok(Self { backbone, head: DeepLabHead::new(&spec, vb.pp("classifier"))? })
    }

    /// Loads frozen weights from a safetensors file with VainF's key names.
    pub fn load(
        path: &Path,
        cfg: &DeepLabConfig,
        dtype: DType,
        dev: &Device,
    ) -> crate::Result<Self> {
        build_from_safetensors(path, dtype, dev, |vb| Self::new(cfg, vb))
    }

    /// The number of classes of the DeepLabv3+ weights at `path` (the length of the classifier
    /// bias, `classifier.classifier.3.bias`), read without building the network.
    ///
    /// # Errors
    /// An unreadable file, or one without that tensor.
    pub fn class_count(path: &Path) -> crate::Result<usize> {
        const KEY: &str = "classifier.classifier.3.bias";
        let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
        let weights = |reason: String| crate::Error::Weights { path: path.to_path_buf(), reason };
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| weights(e.to_string()))?;
        let bias = st.tensor(KEY).map_err(|_| weights(format!("no {KEY}: not DeepLabv3+ weights")))?;
        match bias.shape() {
            [n] => Ok(*n),
            other => Err(weights(format!("{KEY} has shape {other:?}, expected one dimension"))),
        }
    }

    /// Class logits at the input resolution for ImageNet-normalised `(N, 3, H, W)` input
    /// (H, W ≥ 3; odd and mixed-parity sizes work). `train` selects batch statistics in every
    /// BatchNorm (and updates their running averages) and enables dropout.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let (_, _, h, w) = xs.dims4()?;
        let feats = self.backbone.forward_t(xs, train)?;
        let logits = self.head.forward_t(&feats.low_level, &feats.out, train)?;
        bilinear_resize(&logits, h, w)
    }
}

impl ModuleT for DeepLabV3Plus {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        DeepLabV3Plus::forward_t(self, xs, train)
    }
}

#[cfg(test)]
mod tests;
