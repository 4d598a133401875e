//! `dataset synth`: GTs whose segmentation labels exist by construction.
//!
//! PASCAL VOC's label maps are not in any package registry (offline-data.md §3), so we
//! make our own, the way offline-data.md §6b suggests:
//!
//! 1. take a random crop (at least 60 % of the shorter side, aspect of `size`) of a
//!    photo, resized to `size`;
//! 2. smooth it: the [`choose_gt`] screening of `build` picks the candidate; a background
//!    on which no candidate passes is replaced by another crop (up to `attempts` times);
//! 3. paste 1–3 clip-art objects (RGBA) on it, alpha-blended, each scaled so its longer
//!    side is 30–70 % of the shorter image side, at a random position, and record its
//!    class in the label map: **class = index of the clip art's top-level folder** (the
//!    openclipart category: animals, food, …) in sorted order, from 1; 0 is background.
//!    Where the alpha is ≥ 0.5 the pixel takes the class; where it is strictly between
//!    `1 − border_alpha` and `border_alpha` (the antialiased rim) the label is 255 (ignore);
//! 4. the composite must pass the eq. 12 smoothness test again (clip art with hatching or
//!    photographic fills fails): up to `object_attempts` object draws per background, then
//!    up to `attempts` backgrounds, then the GT is dropped with the reasons;
//! 5. then the same outputs as `build` ([`crate::data::gt::write_gt`]): edge labels, over-smoothed negative,
//!    one textured input per texture, the label map, records and the manifest.
//!
//! Every GT is drawn from a generator seeded by (seed, GT index) alone, so a rerun
//! reproduces the same GTs and skips those already written.

use std::path::{Path, PathBuf};

use crate::data::build::{choose_gt, list_images, resize_nearest};
use crate::data::gt::{BuildConfig, Texture};
use crate::data::records::{process_resumable, BuildReport, GtRecord, OnDone};
use crate::data::candidates::Candidate;
use crate::data::imageio::{fit_max_side, load_rgb, load_rgba, resize, Gray8, IGNORE};
use crate::data::rng::{combine, Rng};
use crate::data::screen::{screen, structure_regions};
use crate::ops::Planes;
use crate::{Error, Result};
use image::imageops::FilterType;

/// Settings of `dataset synth`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    /// Number of GTs to draw (kept ones may be fewer if draws keep failing).
    pub count: usize,
    /// GT size (height, width) in pixels (300, 400).
    pub size: (usize, usize),
    /// Fewest and most objects per GT (1, 3).
    pub objects: (usize, usize),
    /// Longest object side as a fraction of the shorter image side (0.3, 0.7).
    pub object_scale: (f32, f32),
    /// Alpha above which (and below one minus which) a rim pixel is not ignored (0.9).
    pub border_alpha: f32,
    /// Backgrounds tried per GT before it is dropped (3).
    pub attempts: usize,
    /// Object draws tried per smoothed background (5).
    pub object_attempts: usize,
    /// Seed of every draw.
    pub seed: u64,
    /// Share of GTs drawn on a flat-colour background (cartoon-like: clip art on a plain
    /// ground, like the NKS cartoons) instead of a smoothed photo (0).
    #[serde(default)]
    pub flat_share: f32,
    /// Screening, edges, negatives, splits.
    pub build: BuildConfig,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            count: 200,
            size: (300, 400),
            objects: (1, 3),
            object_scale: (0.3, 0.7),
            border_alpha: 0.9,
            attempts: 3,
            object_attempts: 5,
            seed: 0,
            flat_share: 0.0,
            build: BuildConfig::default(),
        }
    }
}

/// The clip-art pool: files grouped by class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipArt {
    /// Class names; index `i` is class id `i + 1`.
    pub classes: Vec<String>,
    /// For each class, its files.
    pub files: Vec<Vec<PathBuf>>,
}

impl ClipArt {
    /// Scans `dir/<class>/**.png`; every top-level folder is a class.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable, [`Error::Dataset`] with no class folder or more
    /// than 254 classes.
    pub fn scan(dir: &Path) -> Result<Self> {
        let mut classes: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .map(|p| (p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), p))
            .collect();
        classes.sort();
        let mut out = Self { classes: Vec::new(), files: Vec::new() };
        for (name, path) in classes {
            let files = list_images(&path)?;
            if !files.is_empty() {
                out.classes.push(name);
                out.files.push(files);
            }
        }
        if out.classes.is_empty() || out.classes.len() > 254 {
            return Err(Error::Dataset { path: dir.to_path_buf(), reason: format!("{} clip-art class folders (need 1–254)", out.classes.len()) });
        }
        Ok(out)
    }
}

/// An object ready to paste: RGB, alpha, class id and top-left position.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The object's colours.
    pub rgb: Planes,
    /// Its alpha, row-major, same size.
    pub alpha: Vec<f32>,
    /// Class id (1-based).
    pub class: u8,
    /// Top-left row in the image (may be negative: partly outside).
    pub y: isize,
    /// Top-left column.
    pub x: isize,
}

/// Alpha-blends objects over a background, in order, and labels them: class where the
/// alpha is ≥ 0.5, 255 where it is strictly inside (1 − `border_alpha`, `border_alpha`),
/// background 0 elsewhere. Later objects cover earlier ones.
#[must_use]
pub fn composite(background: &Planes, objects: &[Placed], border_alpha: f32) -> (Planes, Gray8) {
    let (h, w) = (background.h, background.w);
    let mut img = background.clone();
    let mut label = Gray8 { h, w, data: vec![0; h * w] };
    for o in objects {
        for oy in 0..o.rgb.h {
            for ox in 0..o.rgb.w {
                let (y, x) = (o.y + oy as isize, o.x + ox as isize);
                if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                    continue;
                }
                let (y, x) = (y as usize, x as usize);
                let a = o.alpha[oy * o.rgb.w + ox];
                if a <= 0.0 {
                    continue;
                }
                for ch in 0..3 {
                    let v = img.get(ch, y, x);
                    img.set(ch, y, x, a * o.rgb.get(ch.min(o.rgb.c - 1), oy, ox) + (1.0 - a) * v);
                }
                let rim = a > 1.0 - border_alpha && a < border_alpha;
                let l = &mut label.data[y * w + x];
                if rim {
                    *l = IGNORE;
                } else if a >= 0.5 {
                    *l = o.class;
                }
            }
        }
    }
    (img, label)
}

/// Crops an RGBA object to its alpha > 0 bounding box; `None` when fully transparent.
fn trim(rgb: &Planes, alpha: &[f32]) -> Option<(Planes, Vec<f32>)> {
    let (h, w) = (rgb.h, rgb.w);
    let on: Vec<(usize, usize)> = (0..h * w).filter(|&i| alpha[i] > 0.0).map(|i| (i / w, i % w)).collect();
    let y0 = on.iter().map(|p| p.0).min()?;
    let y1 = on.iter().map(|p| p.0).max()?;
    let x0 = on.iter().map(|p| p.1).min()?;
    let x1 = on.iter().map(|p| p.1).max()?;
    let (th, tw) = (y1 - y0 + 1, x1 - x0 + 1);
    let crop = Planes::from_fn(rgb.c, th, tw, |c, y, x| rgb.get(c, y0 + y, x0 + x));
    let a = (0..th * tw).map(|i| alpha[(y0 + i / tw) * w + x0 + i % tw]).collect();
    Some((crop, a))
}

/// Loads, trims, scales and places one random clip-art object.
fn draw_object(art: &ClipArt, rng: &mut Rng, (h, w): (usize, usize), cfg: &SynthConfig) -> Result<Option<(Placed, String)>> {
    let class = rng.below(art.classes.len());
    let file = &art.files[class][rng.below(art.files[class].len())];
    // A clip-art file that does not decode (or exceeds the decoder's memory limit) is
    // skipped like a fully transparent one: one bad file must not stop a long run.
    let Ok((rgb, alpha)) = load_rgba(file) else { return Ok(None) };
    let Some((rgb, alpha)) = trim(&rgb, &alpha) else { return Ok(None) };
    let long = rng.uniform(cfg.object_scale.0, cfg.object_scale.1) * h.min(w) as f32;
    let s = long / rgb.h.max(rgb.w) as f32;
    let oh = ((rgb.h as f32 * s).round() as usize).clamp(1, h);
    let ow = ((rgb.w as f32 * s).round() as usize).clamp(1, w);
    let alpha = resize(&Planes::from_vec(1, rgb.h, rgb.w, alpha), oh, ow, FilterType::Triangle).data;
    let rgb = resize(&rgb, oh, ow, FilterType::Triangle);
    let y = rng.below(h - oh + 1) as isize;
    let x = rng.below(w - ow + 1) as isize;
    Ok(Some((Placed { rgb, alpha, class: (class + 1) as u8, y, x }, file.display().to_string())))
}

/// A plain background: one random colour (white in a quarter of the draws, as most clip art
/// is printed on), with a faint linear gradient in half of them.
fn flat_background(rng: &mut Rng, (h, w): (usize, usize)) -> Planes {
    let white = rng.chance(0.25);
    let colour: [f32; 3] = std::array::from_fn(|_| if white { 1.0 } else { rng.uniform(0.05, 1.0) });
    let (gy, gx) = if rng.chance(0.5) { (rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15)) } else { (0.0, 0.0) };
    Planes::from_fn(3, h, w, |c, y, x| {
        let t = gy * (y as f32 / h as f32 - 0.5) + gx * (x as f32 / w as f32 - 0.5);
        (colour[c] + t).clamp(0.0, 1.0)
    })
}

/// A random crop of a photo with the aspect of `size`, resized to `size`.
fn background_crop(photo: &Planes, rng: &mut Rng, (h, w): (usize, usize)) -> Planes {
    let aspect = w as f32 / h as f32;
    let max_h = (photo.h as f32).min(photo.w as f32 / aspect);
    let ch = (rng.uniform(0.6, 1.0) * max_h).max(1.0);
    let cw = (ch * aspect).min(photo.w as f32);
    let (ch, cw) = ((ch as usize).clamp(1, photo.h), (cw as usize).clamp(1, photo.w));
    let (y0, x0) = (rng.below(photo.h - ch + 1), rng.below(photo.w - cw + 1));
    let crop = Planes::from_fn(photo.c, ch, cw, |c, y, x| photo.get(c, y0 + y, x0 + x));
    resize(&crop, h, w, FilterType::Lanczos3)
}

/// One synthetic GT: its composite, label map and provenance, or why no draw passed.
pub struct Drawn {
    /// The smoothed, composited GT.
    pub gt: Planes,
    /// Its label map.
    pub label: Gray8,
    /// Background photo, chosen candidate and clip-art files.
    pub source: String,
    /// The background's chosen candidate.
    pub chosen: String,
    /// The background's candidate figures.
    pub candidates: Vec<crate::data::records::CandidateScore>,
}

/// Draws GT number `index` (up to `attempts` tries); `Err(reason)` when all fail.
///
/// # Errors
/// Read or decode failures of photos or clip art.
pub fn draw_gt(index: usize, photos: &[PathBuf], art: &ClipArt, candidates: &[Candidate], cfg: &SynthConfig) -> Result<std::result::Result<Drawn, String>> {
    let mut rng = Rng::new(combine(&[cfg.seed, index as u64]));
    let mut reasons = Vec::new();
    // Decided by its own generator, so that the photo draws of other GTs do not move.
    let flat = Rng::new(combine(&[cfg.seed, index as u64, 0xf1a7])).chance(cfg.flat_share);
    for _ in 0..cfg.attempts.max(1) {
        let (bg_name, chosen, smooth_bg, scores) = if flat {
            let bg = flat_background(&mut rng, cfg.size);
            ("flat colour".to_string(), "flat".to_string(), bg, Vec::new())
        } else {
            let photo_path = &photos[rng.below(photos.len())];
            let photo = fit_max_side(&load_rgb(photo_path)?, 2 * cfg.size.0.max(cfg.size.1));
            let bg = background_crop(&photo, &mut rng, cfg.size);
            let (choice, scores) = choose_gt(&bg, candidates, &cfg.build.screen);
            match choice {
                Ok((chosen, smooth_bg)) => (photo_path.display().to_string(), chosen, smooth_bg, scores),
                Err(reason) => {
                    reasons.push(format!("background {}: {reason}", photo_path.display()));
                    continue;
                }
            }
        };
        // Clip art with hatching or dot patterns fails the smoothness test; redraw only the
        // objects (cheap) before giving up on this background (expensive to screen).
        for _ in 0..cfg.object_attempts.max(1) {
            let n = cfg.objects.0 + rng.below(cfg.objects.1.saturating_sub(cfg.objects.0) + 1);
            let mut objects = Vec::new();
            let mut files = Vec::new();
            for _ in 0..n {
                if let Some((o, f)) = draw_object(art, &mut rng, cfg.size, cfg)? {
                    objects.push(o);
                    files.push(f);
                }
            }
            let (gt, label) = composite(&smooth_bg, &objects, cfg.border_alpha);
            let s = screen(&gt, &gt, &structure_regions(&gt, &cfg.build.screen), &cfg.build.screen);
            if !s.smooth_pass {
                reasons.push(format!("composite not smooth ({:.3}, residue {:.2}): {}", s.smoothness, s.residue, files.join(", ")));
                continue;
            }
            let source = format!("{bg_name} + {}", files.join(" + "));
            return Ok(Ok(Drawn { gt, label, source, chosen, candidates: scores }));
        }
    }
    Ok(Err(reasons.join("; ")))
}

/// `dataset synth`: `cfg.count` GTs (ids `synth_00000`…), resumable, then the manifest;
/// also writes `classes.json` (id → clip-art class name).
///
/// # Errors
/// The first read, decode or write failure.
pub fn synth(out: &Path, photos: &[PathBuf], art: &ClipArt, textures: &[Texture], candidates: &[Candidate], cfg: &SynthConfig, on_done: OnDone) -> Result<BuildReport> {
    if photos.is_empty() {
        return Err(Error::Dataset { path: out.to_path_buf(), reason: "no background photos".into() });
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    crate::data::classes::write_classes(out, &art.classes)?;
    let indices: Vec<usize> = (0..cfg.count).collect();
    process_resumable(out, &indices, &cfg.build, textures, |&k| format!("synth_{k:05}"), |&k| {
        let id = format!("synth_{k:05}");
        let mut rec = GtRecord::new(&id, "");
        match draw_gt(k, photos, art, candidates, cfg)? {
            Ok(d) => {
                rec.source = d.source;
                rec.candidates = d.candidates;
                rec.chosen = Some(d.chosen);
                Ok((rec, Some((d.gt, Some(d.label)))))
            }
            Err(reason) => {
                rec.dropped = Some(reason);
                Ok((rec, None))
            }
        }
    }, on_done)
}

/// Resizes a label map to an image's size (nearest), for callers that rescale GTs.
#[must_use]
pub fn fit_label(label: &Gray8, h: usize, w: usize) -> Gray8 {
    resize_nearest(label, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(class: u8, y: isize, x: isize, side: usize) -> Placed {
        let alpha = (0..side * side)
            .map(|i| {
                let (r, c) = (i / side, i % side);
                // A one-pixel antialiased rim at half alpha.
                if r == 0 || c == 0 || r == side - 1 || c == side - 1 { 0.5 } else { 1.0 }
            })
            .collect();
        Placed { rgb: Planes::constant(3, side, side, f32::from(class) / 10.0), alpha, class, y, x }
    }

    #[test]
    fn labels_follow_alpha_and_later_objects_cover_earlier_ones() {
        let bg = Planes::constant(3, 20, 30, 0.0);
        let (img, label) = composite(&bg, &[square(3, 2, 2, 8), square(5, 6, 6, 8), square(7, 15, 26, 10)], 0.9);
        let at = |y: usize, x: usize| label.data[y * 30 + x];
        assert_eq!(at(4, 4), 3);
        assert_eq!(at(8, 8), 5, "the later object wins");
        assert_eq!(at(2, 2), IGNORE, "antialiased rim");
        assert_eq!(at(0, 0), 0);
        assert_eq!(at(17, 28), 7, "clipped at the border");
        assert!((img.get(0, 4, 4) - 0.3).abs() < 1e-6);
        assert!((img.get(0, 2, 3) - 0.15).abs() < 1e-6, "half alpha blends");
    }

    #[test]
    fn trim_finds_the_alpha_box() {
        let rgb = Planes::constant(3, 5, 6, 1.0);
        let mut alpha = vec![0.0; 30];
        alpha[6 + 2] = 1.0;
        alpha[18 + 4] = 0.5;
        let (c, a) = trim(&rgb, &alpha).unwrap();
        assert_eq!((c.h, c.w, a.len()), (3, 3, 9));
        assert!(trim(&rgb, &[0.0; 30]).is_none());
    }
}
