//! What every kept GT of a dataset leaves on disk, shared by `dataset build` and `dataset
//! synth` and by the resumable driver in [`crate::data::records`]: the build settings, the
//! textures, and the writers of the GT files and of its textured inputs.
//!
//! Dependencies go one way: `build` and `synth` use `records` and this module; `records`
//! uses this module; this module uses neither.

use std::path::{Path, PathBuf};

use crate::data::blend::blend_texture;
use crate::data::edges::{edge_labels, EdgeChannel};
use crate::data::imageio::{save_gray8, save_label, save_png, Gray8};
use crate::data::manifest::{split_for, Entry, SplitFractions};
use crate::data::oversmooth::{oversmooth, OversmoothParams};
use crate::data::screen::ScreenParams;
use crate::io::quantized;
use crate::ops::Planes;
use crate::Result;

/// Settings shared by `build` and `synth`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildConfig {
    /// Longest side of a GT in pixels (400).
    pub max_side: usize,
    /// Shortest side a GT may have (128).
    pub min_side: usize,
    /// Screening thresholds.
    pub screen: ScreenParams,
    /// GT channel of the edge labels.
    pub edge_channel: EdgeChannel,
    /// Validation and test shares of the GTs.
    pub splits: SplitFractions,
    /// Seed of the split assignment.
    pub seed: u64,
    /// The over-smoothed negative's bilateral filter.
    pub oversmooth: OversmoothParams,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            max_side: 400,
            min_side: 128,
            screen: ScreenParams::default(),
            edge_channel: EdgeChannel::default(),
            splits: SplitFractions::default(),
            seed: 0,
            oversmooth: OversmoothParams::default(),
        }
    }
}

/// A texture, kept as its eq. 14 grey plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Texture {
    /// File-name-safe id.
    pub id: String,
    /// The grey texture (one plane).
    pub gray: Planes,
}

/// Writes a GT's files and its textured inputs; returns the record's entries.
///
/// # Errors
/// Write failures.
pub fn write_gt(out: &Path, id: &str, gt: &Planes, label: Option<&Gray8>, textures: &[Texture], cfg: &BuildConfig) -> Result<Vec<Entry>> {
    let gt = quantized(gt);
    let rel = |dir: &str| PathBuf::from(dir).join(format!("{id}.png"));
    save_png(&out.join(rel("gt")), &gt)?;
    save_gray8(&out.join(rel("edge")), &edge_labels(&gt, cfg.edge_channel))?;
    save_png(&out.join(rel("oversmoothed")), &oversmooth(&gt, &cfg.oversmooth))?;
    if let Some(l) = label {
        save_label(&out.join(rel("label")), l)?;
    }
    blend_inputs(out, id, &gt, label.is_some(), textures, cfg)
}

/// Blends `textures` onto an 8-bit GT and writes the inputs; returns their entries.
///
/// # Errors
/// Write failures.
pub fn blend_inputs(out: &Path, id: &str, gt: &Planes, has_label: bool, textures: &[Texture], cfg: &BuildConfig) -> Result<Vec<Entry>> {
    let split = split_for(id, cfg.splits, cfg.seed);
    let rel = |dir: &str| PathBuf::from(dir).join(format!("{id}.png"));
    textures
        .iter()
        .map(|t| {
            let input = PathBuf::from("input").join(id).join(format!("{}.png", t.id));
            save_png(&out.join(&input), &blend_texture(gt, &t.gray))?;
            Ok(Entry {
                split,
                input,
                gt: rel("gt"),
                edge: rel("edge"),
                oversmoothed: rel("oversmoothed"),
                label: has_label.then(|| rel("label")),
            })
        })
        .collect()
}

/// A GT, its optional label map, or nothing when the source was dropped.
pub type Made = Option<(Planes, Option<Gray8>)>;
