//! Training support for CSGIS-Net (Wang et al., CGF 2022, §3.2–3.4 and eq. 5–11).
//!
//! * [`layers`]: differentiable pooling, resizing, BCE and convolution pieces that candle 0.11.1
//!   gets wrong or lacks (`shared/docs/candle-notes.md`).
//! * [`losses`]: one module per loss term of eq. 5–11 and their weighted sum.
//! * [`vgg`] and [`vgg_extract`]: the frozen VGG16 feature extractor of the contrastive term and
//!   the reproducible extraction of its ImageNet weights.
//! * [`deeplab`]: DeepLabv3+ with a MobileNetV2 backbone, the frozen segmenter of eq. 10.
//! * [`optim`]: Adam with saveable state and the step learning-rate schedule.

pub mod checkpoint;
pub mod config;
pub mod deeplab;
pub mod init;
pub mod loader;
pub mod trainer;
pub mod layers;
pub mod losses;
pub mod optim;
pub mod plot;
pub mod recalibrate;
pub mod seg_trainer;
pub mod vgg;
pub mod vgg_extract;

mod files;
#[cfg(test)]
pub(crate) mod gradcheck;
