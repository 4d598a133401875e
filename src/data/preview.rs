//! `dataset preview`: a contact sheet of random training samples, one row per sample:
//! input | GT | edge | negative | label (VOC colours; ignore = cream, no label = grey).
//!
//! The samples go through [`sample`] with the given [`SampleConfig`], so the sheet shows
//! what the trainer sees: crops, flips, rotations and jitter included.

use std::path::Path;

use crate::data::imageio::{save_png, voc_colormap};
use crate::data::manifest::load_manifest;
use crate::data::rng::{combine, Rng};
use crate::data::sample::{sample, Sample, SampleConfig};
use crate::ops::Planes;
use crate::{Error, Result};

/// Pixels between tiles.
const GAP: usize = 4;
/// Tiles per row.
const COLUMNS: usize = 5;

/// The five tiles of one sample as RGB planes.
fn tiles(s: &Sample) -> [Planes; COLUMNS] {
    let n = s.gt.plane_len();
    let edge = Planes::from_fn(3, s.edge.h, s.edge.w, |_, y, x| s.edge.get(0, y, x));
    let cmap = voc_colormap();
    let label = match &s.label {
        Some(l) => Planes::from_fn(3, s.gt.h, s.gt.w, |c, y, x| f32::from(cmap[usize::from(l[y * s.gt.w + x])][c]) / 255.0),
        None => Planes::constant(3, s.gt.h, s.gt.w, 0.5),
    };
    debug_assert_eq!(label.plane_len(), n);
    [s.input.clone(), s.gt.clone(), edge, s.negative.clone(), label]
}

/// Lays rows of equal-size tiles out on a white sheet.
#[must_use]
pub fn contact_sheet(rows: &[[Planes; COLUMNS]]) -> Planes {
    let (th, tw) = rows.first().map_or((0, 0), |r| (r[0].h, r[0].w));
    let h = rows.len() * (th + GAP) + GAP;
    let w = COLUMNS * (tw + GAP) + GAP;
    let mut sheet = Planes::constant(3, h, w, 1.0);
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            let (y0, x0) = (GAP + r * (th + GAP), GAP + c * (tw + GAP));
            for ch in 0..3 {
                for y in 0..th {
                    for x in 0..tw {
                        sheet.set(ch, y0 + y, x0 + x, tile.get(ch.min(tile.c - 1), y, x));
                    }
                }
            }
        }
    }
    sheet
}

/// Draws `count` random samples from `dir/manifest.jsonl` (or a manifest path) and
/// writes the sheet to `out` as PNG. Returns the number of rows drawn.
///
/// # Errors
/// Manifest, decode or write failures; [`Error::Dataset`] for an empty manifest.
pub fn preview(dataset: &Path, out: &Path, count: usize, seed: u64, cfg: &SampleConfig) -> Result<usize> {
    let manifest = if dataset.is_dir() { dataset.join("manifest.jsonl") } else { dataset.to_path_buf() };
    let entries = load_manifest(&manifest)?;
    if entries.is_empty() {
        return Err(Error::Dataset { path: manifest, reason: "no entries".into() });
    }
    let mut rng = Rng::new(seed);
    let rows = (0..count)
        .map(|i| {
            let e = &entries[rng.below(entries.len())];
            sample(e, cfg, combine(&[seed, i as u64])).map(|s| tiles(&s))
        })
        .collect::<Result<Vec<_>>>()?;
    save_png(out, &contact_sheet(&rows))?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_has_the_grid_size() {
        let t = Planes::constant(3, 8, 8, 0.0);
        let row = [t.clone(), t.clone(), t.clone(), t.clone(), t];
        let s = contact_sheet(&[row.clone(), row]);
        assert_eq!((s.h, s.w), (2 * 12 + 4, 5 * 12 + 4));
        assert_eq!(s.get(0, 0, 0), 1.0);
        assert_eq!(s.get(0, 4, 4), 0.0);
    }
}
