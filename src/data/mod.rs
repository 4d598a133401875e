//! Training data for CSGIS-Net: the VOC-smooth recipe of the paper's §4.1 (eq. 12–16),
//! rebuilt from sources that the package registries carry.
//!
//! The pipeline, one module per step:
//!
//! 1. [`build`]: smoothing candidates (BF, L0, RGF, RTV, SDF) per source image, the
//!    [`screen`] tests (eq. 12 smoothness, SSIM structure), the chosen GT, its [`edges`]
//!    label, its [`oversmooth`] negative, one [`blend`]ed input per texture (eq. 14–16)
//!    and the JSON-lines [`manifest`]; [`gt`] writes each GT's files and [`records`] makes
//!    the build resumable.
//! 2. [`synth`]: segmentation labels by construction, clip art composited over smoothed
//!    photo backgrounds, then the same outputs as `build`.
//! 3. [`sample`](mod@sample): the trainer's random crops, flips, rotations and colour jitter.
//! 4. [`preview`]: a contact sheet of samples, to look at what the trainer will see.
//!
//! The code here never imports candle: samples are [`Planes`](crate::ops::Planes) and
//! byte label maps.

pub mod blend;
pub mod build;
pub mod candidates;
pub mod classes;
pub mod edges;
pub mod gt;
pub mod imageio;
pub mod manifest;
pub mod oversmooth;
pub mod preview;
pub mod records;
pub mod rng;
pub mod sample;
pub mod screen;
pub mod synth;
pub mod texture_draw;

pub use blend::blend_texture;
pub use classes::{class_count, CLASSES_FILE};
pub use edges::{edge_labels, EdgeChannel};
pub use manifest::{load_manifest, Entry, Split};
pub use sample::{sample, sample_with, Sample, SampleConfig};
pub use texture_draw::{TextureDrawConfig, TexturePool};
