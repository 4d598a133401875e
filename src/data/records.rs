//! Per-GT records and the resumable parallel driver shared by `dataset build` and
//! `dataset synth`.
//!
//! Every source (photo or synth draw) ends as `OUT/records/<id>.json`, written last and
//! atomically: kept or dropped, the candidates' screening figures, the chosen candidate,
//! the textures blended and the manifest lines. A record's presence is what "finished"
//! means: a rerun resumes it (only blending textures it lacks), and the manifest is
//! always rebuilt from all records, sorted by id ([`finish_manifest`]).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::gt::{blend_inputs, write_gt, BuildConfig, Made, Texture};
use crate::data::imageio::{load_rgb, write_file};
use crate::data::manifest::{write_manifest, Entry};
use crate::data::screen::Screening;
use crate::{Error, Result};

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
    let text = serde_json::to_string_pretty(rec).map_err(|e| Error::json(&path, "cannot serialise the record", e))?;
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

/// What a caller hears of each finished item: its record (resumed, kept or dropped; the
/// record says why a GT was dropped). Called from the worker threads, in completion order.
pub type OnDone<'a> = &'a (dyn Fn(&GtRecord) + Sync);

/// The first clause of a drop reason, at most 100 characters: one short line for a log
/// (the whole reason stays in the record).
#[must_use]
pub fn short_reason(reason: &str) -> String {
    let first = reason.split(';').next().unwrap_or(reason).trim();
    let first = first.split(": src/").next().unwrap_or(first);
    if first.chars().count() > 100 {
        format!("{}…", first.chars().take(99).collect::<String>())
    } else {
        first.to_string()
    }
}

/// Runs `make` over `items` in parallel: items whose record exists are resumed instead; a
/// made GT is written with [`write_gt`]; `on_done` hears of every item. Then the manifest is
/// rewritten from every record in `out/records`.
///
/// # Errors
/// The first error of any item, or a manifest write failure.
pub fn process_resumable<T: Sync>(
    out: &Path,
    items: &[T],
    cfg: &BuildConfig,
    textures: &[Texture],
    id_of: impl Fn(&T) -> String + Sync,
    make: impl Fn(&T) -> Result<(GtRecord, Made)> + Sync,
    on_done: OnDone,
) -> Result<BuildReport> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let one = |item: &T| -> Result<(GtRecord, bool)> {
        if let Some(rec) = resume(out, &id_of(item), textures, cfg)? {
            return Ok((rec, true));
        }
        let (mut rec, made) = make(item)?;
        if let Some((gt, label)) = made {
            rec.entries = write_gt(out, &rec.id, &gt, label.as_ref(), textures, cfg)?;
            rec.textures = textures.iter().map(|t| t.id.clone()).collect();
        }
        write_record(out, &rec)?;
        Ok((rec, false))
    };
    let results: Vec<Result<(GtRecord, bool)>> = items
        .par_iter()
        .map(|item| {
            let r = one(item);
            if let Ok((rec, _)) = &r {
                on_done(rec);
            }
            r
        })
        .collect();
    // The manifest is rewritten even when an item failed, so finished GTs stay usable.
    let (kept, pairs) = finish_manifest(out)?;
    let mut report = BuildReport::default();
    for r in results {
        let (rec, resumed) = r?;
        report.resumed += usize::from(resumed);
        report.dropped += usize::from(rec.dropped.is_some());
    }
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

