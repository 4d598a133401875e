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
//! 4. write `gt/<id>.png`, `edge/<id>.png` ([`edge_labels`]), `oversmoothed/<id>.png`
//!    ([`oversmooth`]), `label/<id>.png` when a label map came with the image, and one
//!    `input/<id>/<texture>.png` per texture ([`blend_texture`] of the 8-bit GT);
//! 5. write `records/<id>.json` last: the candidates' figures, the choice, the manifest
//!    lines. A rerun skips every source whose record exists (kept or dropped), only
//!    blending the textures a kept record lacks; so a killed build resumes.
//!
//! At the end `manifest.jsonl` is rewritten from all records in `OUT/records`, sorted
//! by GT id, and the split of each GT comes from [`split_for`].
//!
//! PASCAL VOC 2012 works as a source: `--images VOC2012/JPEGImages --labels
//! VOC2012/SegmentationClass` pairs `x.jpg` with the palette PNG `x.png` (255 = ignore);
//! images without a label map get `label: null`.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::data::blend::blend_texture;
use crate::data::candidates::Candidate;
use crate::data::edges::{edge_labels, EdgeChannel};
use crate::data::imageio::{fit_max_side, load_label, load_rgb, quantized, save_gray8, save_label, save_png, write_file, Gray8};
use crate::data::manifest::{split_for, write_manifest, Entry, SplitFractions};
use crate::data::oversmooth::{oversmooth, OversmoothParams};
use crate::data::screen::{screen, structure_regions, ScreenParams, Screening};
use crate::ops::Planes;
use crate::{Error, Result};

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
    /// Suppress the progress bar and the drop log.
    pub quiet: bool,
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
            quiet: false,
        }
    }
}

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

/// A texture, kept as its eq. 14 grey plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Texture {
    /// File-name-safe id.
    pub id: String,
    /// The grey texture (one plane).
    pub gray: Planes,
}

/// A candidate's name and screening figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CandidateScore {
    /// Operator and setting, e.g. `l0(lambda=0.005)`.
    pub name: String,
    /// Its screening.
    pub screening: Screening,
}

/// What became of one GT: written to `records/<id>.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GtRecord {
    /// The GT id.
    pub id: String,
    /// Where it came from (a path, or a synth description).
    pub source: String,
    /// Why it was dropped; `None` when kept.
    pub dropped: Option<String>,
    /// The chosen candidate, when kept.
    pub chosen: Option<String>,
    /// Every candidate's figures.
    pub candidates: Vec<CandidateScore>,
    /// Texture ids blended so far.
    pub textures: Vec<String>,
    /// Its manifest lines (relative paths).
    pub entries: Vec<Entry>,
}

impl GtRecord {
    /// An empty, kept record.
    #[must_use]
    pub fn new(id: &str, source: &str) -> Self {
        Self {
            id: id.to_string(),
            source: source.to_string(),
            dropped: None,
            chosen: None,
            candidates: Vec::new(),
            textures: Vec::new(),
            entries: Vec::new(),
        }
    }
}

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BuildReport {
    /// GTs kept (this run and earlier ones).
    pub kept: usize,
    /// Sources dropped by screening or size.
    pub dropped: usize,
    /// Sources skipped because a record existed.
    pub resumed: usize,
    /// Manifest lines.
    pub pairs: usize,
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
fn blend_inputs(out: &Path, id: &str, gt: &Planes, has_label: bool, textures: &[Texture], cfg: &BuildConfig) -> Result<Vec<Entry>> {
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

fn record_path(out: &Path, id: &str) -> PathBuf {
    out.join("records").join(format!("{id}.json"))
}

/// Reads an existing record, if any (a corrupt one counts as absent).
#[must_use]
pub fn read_record(out: &Path, id: &str) -> Option<GtRecord> {
    let text = std::fs::read_to_string(record_path(out, id)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes a record atomically.
///
/// # Errors
/// Write failures.
pub fn write_record(out: &Path, rec: &GtRecord) -> Result<()> {
    let path = record_path(out, &rec.id);
    let text = serde_json::to_string_pretty(rec).map_err(|e| Error::Dataset { path: path.clone(), reason: e.to_string() })?;
    write_file(&path, text.as_bytes())
}

/// Completes a resumed record with the textures it lacks. Returns `None` when no record
/// exists.
///
/// # Errors
/// Read or write failures.
pub fn resume(out: &Path, id: &str, textures: &[Texture], cfg: &BuildConfig) -> Result<Option<GtRecord>> {
    let Some(mut rec) = read_record(out, id) else { return Ok(None) };
    let missing: Vec<Texture> = textures.iter().filter(|t| !rec.textures.contains(&t.id)).cloned().collect();
    if rec.dropped.is_none() && !missing.is_empty() {
        let gt = load_rgb(&out.join("gt").join(format!("{id}.png")))?;
        let has_label = rec.entries.first().is_some_and(|e| e.label.is_some());
        rec.entries.extend(blend_inputs(out, id, &gt, has_label, &missing, cfg)?);
        rec.textures.extend(missing.into_iter().map(|t| t.id));
        write_record(out, &rec)?;
    }
    Ok(Some(rec))
}

/// A GT, its optional label map, or nothing when the source was dropped.
pub type Made = Option<(Planes, Option<Gray8>)>;

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

/// A progress bar on stderr, hidden when `quiet` or when stderr is not a terminal.
#[must_use]
pub fn progress_bar(len: usize, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb
}

/// Runs `make` over `items` in parallel with a progress bar: items whose record exists
/// are resumed instead; a made GT is written with [`write_gt`]; drops are logged. Then
/// the manifest is rewritten from every record in `out/records`.
///
/// # Errors
/// The first error of any item, or a manifest write failure.
pub fn process_resumable<T: Sync>(
    out: &Path,
    items: &[T],
    what: &str,
    cfg: &BuildConfig,
    textures: &[Texture],
    id_of: impl Fn(&T) -> String + Sync,
    make: impl Fn(&T) -> Result<(GtRecord, Made)> + Sync,
) -> Result<BuildReport> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let pb = progress_bar(items.len(), what, cfg.quiet);
    let one = |item: &T| -> Result<(GtRecord, bool)> {
        if let Some(rec) = resume(out, &id_of(item), textures, cfg)? {
            return Ok((rec, true));
        }
        let (mut rec, made) = make(item)?;
        if let Some((gt, label)) = made {
            rec.entries = write_gt(out, &rec.id, &gt, label.as_ref(), textures, cfg)?;
            rec.textures = textures.iter().map(|t| t.id.clone()).collect();
        } else if !cfg.quiet {
            pb.suspend(|| eprintln!("dropped {}: {}", rec.id, rec.dropped.as_deref().unwrap_or("?")));
        }
        write_record(out, &rec)?;
        Ok((rec, false))
    };
    let results: Vec<Result<(GtRecord, bool)>> = items
        .par_iter()
        .map(|item| {
            let r = one(item);
            pb.inc(1);
            r
        })
        .collect();
    pb.finish_and_clear();
    let mut report = BuildReport::default();
    for r in results {
        let (rec, resumed) = r?;
        report.resumed += usize::from(resumed);
        report.dropped += usize::from(rec.dropped.is_some());
    }
    let (kept, pairs) = finish_manifest(out)?;
    report.kept = kept;
    report.pairs = pairs;
    Ok(report)
}

/// Rewrites `out/manifest.jsonl` from all records; returns (kept GTs, pairs).
///
/// # Errors
/// Read or write failures.
pub fn finish_manifest(out: &Path) -> Result<(usize, usize)> {
    let dir = out.join("records");
    let mut ids: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect(),
        Err(_) => Vec::new(),
    };
    ids.sort();
    let mut entries = Vec::new();
    let mut kept = 0;
    for id in ids {
        if let Some(rec) = read_record(out, &id).filter(|r| r.dropped.is_none()) {
            kept += 1;
            entries.extend(rec.entries);
        }
    }
    write_manifest(&out.join("manifest.jsonl"), &entries)?;
    Ok((kept, entries.len()))
}

/// `dataset build`: every source through [`make_from_source`], resumable.
///
/// # Errors
/// The first read, decode or write failure.
pub fn build(out: &Path, sources: &[Source], textures: &[Texture], candidates: &[Candidate], cfg: &BuildConfig) -> Result<BuildReport> {
    process_resumable(out, sources, "build", cfg, textures, |s| s.id.clone(), |s| make_from_source(s, candidates, cfg))
}
