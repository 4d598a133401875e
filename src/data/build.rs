//! `dataset build`: the VOC-smooth recipe (paper §4.1) over a folder of photos.
//!
//! Per source image, in parallel over images (rayon), with a progress bar on stderr:
//! 1. decode, shrink so the longer side is at most `max_side` (400), drop it when the
//!    shorter side is under `min_side` (128, the training crop);
//! 2. run every smoothing candidate ([`crate::data::candidates`]: BF, L0, RGF, RTV and SDF
//!    at several settings) and [`screen`] each one;
//! 3. the passing candidate with the largest structure SSIM becomes the GT; when none
//!    passes, the image is dropped and the reason (best figures seen) is logged and kept
//!    in its record;
//! 4. write ([`crate::data::gt::write_gt`]) `gt/<id>.png`, `edge/<id>.png`
//!    ([`crate::data::edge_labels`]), `oversmoothed/<id>.png` ([`crate::data::oversmooth`]),
//!    `label/<id>.png` when a label map came with the image, and one
//!    `input/<id>/<texture>.png` per texture ([`crate::data::blend_texture`] of the 8-bit GT);
//! 5. write `records/<id>.json` last ([`crate::data::records`]): the candidates' figures, the choice, the manifest
//!    lines. A rerun skips every source whose record exists (kept or dropped), only
//!    blending the textures a kept record lacks; so a killed build resumes.
//!
//! At the end `manifest.jsonl` is rewritten from all records in `OUT/records`, sorted
//! by GT id, and the split of each GT comes from [`crate::data::manifest::split_for`].
//!
//! PASCAL VOC 2012 works as a source: `--images VOC2012/JPEGImages --labels
//! VOC2012/SegmentationClass` pairs `x.jpg` with the palette PNG `x.png` (255 = ignore);
//! images without a label map get `label: null`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::candidates::Candidate;
use crate::data::gt::{BuildConfig, Made, Texture};
use crate::data::imageio::{fit_max_side, load_label, load_rgb, Gray8};
use crate::data::records::{process_resumable, BuildReport, CandidateScore, GtRecord, OnDone};
use crate::data::screen::{screen, structure_regions, ScreenParams};
use crate::ops::Planes;
use crate::{Error, Result};

/// One source image and its optional label map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// File-name-safe id, unique in the dataset (names every output of this image).
    pub id: String,
    /// The photo.
    pub image: PathBuf,
    /// A class-index label map of the same size, if any.
    pub label: Option<PathBuf>,
}

/// Replaces every character outside `[A-Za-z0-9._-]` by `_`.
#[must_use]
pub fn sanitize_id(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

const IMAGE_EXTS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "pat"];

/// Image files under `dir`, recursively, sorted.
///
/// # Errors
/// [`Error::Io`] when a folder cannot be listed.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let path = entry.map_err(|e| Error::io(&d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str())) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Ids from paths relative to `root` (separators become `_`), made unique.
fn ids_for(paths: &[PathBuf], root: &Path) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    paths
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap_or(p).with_extension("");
            let base = sanitize_id(&rel.to_string_lossy());
            let mut id = base.clone();
            let mut k = 1;
            while !seen.insert(id.clone()) {
                k += 1;
                id = format!("{base}-{k}");
            }
            id
        })
        .collect()
}

/// The sources in `images`, each paired with `labels/<stem>.png` when that exists.
///
/// # Errors
/// [`Error::Io`] when a folder cannot be listed.
pub fn sources_from_dirs(images: &Path, labels: Option<&Path>) -> Result<Vec<Source>> {
    let paths = list_images(images)?;
    let ids = ids_for(&paths, images);
    Ok(paths
        .into_iter()
        .zip(ids)
        .map(|(image, id)| {
            let label = labels.and_then(|l| {
                let stem = image.file_stem()?;
                Some(l.join(stem).with_extension("png")).filter(|p| p.is_file())
            });
            Source { id, image, label }
        })
        .collect())
}

/// Loads every texture in `dir` as its grey plane, shrunk to at most `max_side`.
///
/// # Errors
/// Decoding errors, or [`Error::Dataset`] when the folder holds no image.
pub fn load_textures(dir: &Path, max_side: usize) -> Result<Vec<Texture>> {
    let paths = list_images(dir)?;
    if paths.is_empty() {
        return Err(Error::Dataset { path: dir.to_path_buf(), reason: "no texture images".into() });
    }
    let ids = ids_for(&paths, dir);
    paths
        .par_iter()
        .zip(ids)
        .map(|(p, id)| Ok(Texture { id, gray: fit_max_side(&load_rgb(p)?, max_side).luma() }))
        .collect()
}

/// Nearest-neighbour resize of an 8-bit map (label maps keep their classes).
#[must_use]
pub fn resize_nearest(g: &Gray8, h: usize, w: usize) -> Gray8 {
    let data = (0..h * w)
        .map(|i| {
            let sy = ((i / w) * g.h + g.h / 2) / h.max(1);
            let sx = ((i % w) * g.w + g.w / 2) / w.max(1);
            g.data[sy.min(g.h - 1) * g.w + sx.min(g.w - 1)]
        })
        .collect();
    Gray8 { h, w, data }
}

/// Screens every candidate on `original`; returns the chosen one (largest structure
/// SSIM among those passing) with all figures, or the drop reason.
pub fn choose_gt(original: &Planes, candidates: &[Candidate], p: &ScreenParams) -> (std::result::Result<(String, Planes), String>, Vec<CandidateScore>) {
    let regions = structure_regions(original, p);
    let mut scores = Vec::with_capacity(candidates.len());
    let mut best: Option<(f32, String, Planes)> = None;
    for c in candidates {
        let out = (c.run)(original).clamped();
        let s = screen(original, &out, &regions, p);
        if s.passed() && best.as_ref().is_none_or(|b| s.structure_ssim > b.0) {
            best = Some((s.structure_ssim, c.name.clone(), out));
        }
        scores.push(CandidateScore { name: c.name.clone(), screening: s });
    }
    match best {
        Some((_, name, gt)) => (Ok((name, gt)), scores),
        None => (Err(drop_reason(&scores)), scores),
    }
}

fn drop_reason(scores: &[CandidateScore]) -> String {
    let smoothest = scores.iter().min_by(|a, b| a.screening.smoothness.total_cmp(&b.screening.smoothness));
    let truest = scores.iter().max_by(|a, b| a.screening.structure_ssim.total_cmp(&b.screening.structure_ssim));
    match (smoothest, truest) {
        (Some(s), Some(t)) => format!(
            "no candidate passed: smoothest {} ({:.3}, residue {:.2}), best structure {} (SSIM {:.3})",
            s.name, s.screening.smoothness, s.screening.residue, t.name, t.screening.structure_ssim
        ),
        _ => "no candidates".into(),
    }
}

/// Screens one source image (see the module header); the record says why when dropped.
///
/// # Errors
/// Read or decode failures (screening failures are drops, not errors).
pub fn make_from_source(src: &Source, candidates: &[Candidate], cfg: &BuildConfig) -> Result<(GtRecord, Made)> {
    let original = fit_max_side(&load_rgb(&src.image)?, cfg.max_side);
    let mut rec = GtRecord::new(&src.id, &src.image.display().to_string());
    if original.h.min(original.w) < cfg.min_side {
        rec.dropped = Some(format!("{}x{} is smaller than --min-side {}", original.w, original.h, cfg.min_side));
        return Ok((rec, None));
    }
    let label = src
        .label
        .as_deref()
        .map(|p| load_label(p).map(|l| resize_nearest(&l, original.h, original.w)))
        .transpose()?;
    let (choice, scores) = choose_gt(&original, candidates, &cfg.screen);
    rec.candidates = scores;
    match choice {
        Ok((name, gt)) => {
            rec.chosen = Some(name);
            Ok((rec, Some((gt, label))))
        }
        Err(reason) => {
            rec.dropped = Some(reason);
            Ok((rec, None))
        }
    }
}

/// `dataset build`: every source through [`make_from_source`], resumable.
///
/// # Errors
/// The first read, decode or write failure.
pub fn build(out: &Path, sources: &[Source], textures: &[Texture], candidates: &[Candidate], cfg: &BuildConfig, on_done: OnDone) -> Result<BuildReport> {
    process_resumable(out, sources, cfg, textures, |s| s.id.clone(), |s| make_from_source(s, candidates, cfg), on_done)
}
