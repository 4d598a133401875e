//! Batches for training: a deterministic function of (seed, step), so that `--resume` sees the
//! same data as an uninterrupted run; decoded and augmented in parallel with rayon, one batch
//! ahead of the step on a background thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::data::rng::{combine, Rng};
use crate::data::{load_manifest, sample::sample_seed, sample_with, Entry, Sample, SampleConfig, Split, TextureDrawConfig, TexturePool};
use crate::ops::Planes;
use crate::{Error, Result};

/// One batch as tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Textured inputs (b, 3, h, w).
    pub input: Tensor,
    /// Smooth ground truths (b, 3, h, w).
    pub gt: Tensor,
    /// Edge labels in {0, 1} (b, 1, h, w).
    pub edge: Tensor,
    /// Over-smoothed negatives (b, 3, h, w).
    pub negative: Tensor,
    /// Class indices (b, h, w) as u32, 255 = ignore; `None` unless every sample has a label.
    pub label: Option<Tensor>,
}

/// The entries of one split of a dataset (paths resolved by [`load_manifest`]).
///
/// # Errors
/// An unreadable manifest, or [`Error::Dataset`] when the split is empty.
pub fn split_entries(data: &Path, split: Split) -> Result<Vec<Entry>> {
    let manifest = data.join("manifest.jsonl");
    let entries: Vec<Entry> =
        load_manifest(&manifest)?.into_iter().filter(|e| e.split == split).collect();
    if entries.is_empty() {
        return Err(Error::Dataset { path: manifest, reason: format!("no {split:?} entries") });
    }
    Ok(entries)
}

/// The entries of one split over several datasets, in the order given.
///
/// # Errors
/// As [`split_entries`] for any dataset; an empty list of datasets is a [`Error::Dataset`].
pub fn split_entries_of(data: &[PathBuf], split: Split) -> Result<Vec<Entry>> {
    if data.is_empty() {
        return Err(Error::Dataset { path: PathBuf::new(), reason: "no dataset given".into() });
    }
    let mut all = Vec::new();
    for d in data {
        all.extend(split_entries(d, split)?);
    }
    Ok(all)
}

/// One entry per distinct GT (the first of its pairs), for sample-time texture blending.
#[must_use]
pub fn unique_gts(entries: &[Entry]) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    entries.iter().filter(|e| seen.insert(e.gt.clone())).cloned().collect()
}

/// What a run draws from in one split: one entry per GT when textures are blended at sample
/// time (`per_gt`), else every precomputed pair.
///
/// # Errors
/// As [`split_entries_of`].
pub fn run_entries(data: &[PathBuf], split: Split, per_gt: bool) -> Result<Vec<Entry>> {
    let entries = split_entries_of(data, split)?;
    Ok(if per_gt { unique_gts(&entries) } else { entries })
}

/// Textures blended at sample time, shared by the loader threads.
pub type Textures = Option<Arc<(TexturePool, TextureDrawConfig)>>;

fn textures_ref(t: &Textures) -> Option<(&TexturePool, &TextureDrawConfig)> {
    t.as_deref().map(|(p, c)| (p, c))
}

/// A deterministic permutation of `0..n` for `epoch`.
fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = Rng::new(combine(&[seed, epoch, 0x5eed]));
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    p
}

fn stack(planes: &[&Planes], device: &Device) -> Result<Tensor> {
    let first = planes.first().ok_or_else(|| candle_core::Error::Msg("empty batch".into()))?;
    let (c, h, w) = (first.c, first.h, first.w);
    let mut data = Vec::with_capacity(planes.len() * c * h * w);
    for p in planes {
        data.extend_from_slice(&p.data);
    }
    Ok(Tensor::from_vec(data, (planes.len(), c, h, w), &Device::Cpu)?.to_device(device)?)
}

/// Stacks samples into a [`Batch`] on `device` in `dtype`.
///
/// # Errors
/// Tensor errors (mismatched sample sizes).
pub fn to_batch(samples: &[Sample], device: &Device, dtype: DType) -> Result<Batch> {
    let field = |f: fn(&Sample) -> &Planes| -> Result<Tensor> {
        let v: Vec<&Planes> = samples.iter().map(f).collect();
        Ok(stack(&v, device)?.to_dtype(dtype)?)
    };
    let label = if samples.iter().all(|s| s.label.is_some()) {
        let (h, w) = (samples[0].gt.h, samples[0].gt.w);
        let data: Vec<u32> = samples.iter().flat_map(|s| s.label.iter().flatten().map(|&v| u32::from(v))).collect();
        Some(Tensor::from_vec(data, (samples.len(), h, w), &Device::Cpu)?.to_device(device)?)
    } else {
        None
    };
    Ok(Batch {
        input: field(|s| &s.input)?,
        gt: field(|s| &s.gt)?,
        edge: field(|s| &s.edge)?,
        negative: field(|s| &s.negative)?,
        label,
    })
}

/// Draws the samples of training step `step`.
///
/// # Errors
/// Decoding or dataset errors of any sample.
pub fn samples_at(entries: &[Entry], cfg: &SampleConfig, textures: &Textures, batch: usize, seed: u64, step: usize) -> Result<Vec<Sample>> {
    let n = entries.len();
    (0..batch)
        .into_par_iter()
        .map(|i| {
            let global = (step * batch + i) as u64;
            let epoch = global / n as u64;
            let idx = permutation(n, seed, epoch)[(global % n as u64) as usize];
            sample_with(&entries[idx], cfg, textures_ref(textures), sample_seed(seed, epoch, global))
        })
        .collect()
}

/// Fixed validation crops: the first `count` entries (cycled), no augmentation.
///
/// # Errors
/// Decoding or dataset errors.
pub fn validation_samples(entries: &[Entry], crop: usize, textures: &Textures, count: usize, seed: u64) -> Result<Vec<Sample>> {
    let cfg = SampleConfig { crop, augment: false, ..SampleConfig::default() };
    (0..count.min(entries.len()).max(1))
        .into_par_iter()
        .map(|i| sample_with(&entries[i % entries.len()], &cfg, textures_ref(textures), combine(&[seed, 0xa1, i as u64])))
        .collect()
}

/// Starts a background thread that yields the samples of steps `start..end` in order, one
/// batch ahead.
#[must_use]
pub fn prefetch(
    entries: Vec<Entry>,
    cfg: SampleConfig,
    textures: Textures,
    batch: usize,
    seed: u64,
    start: usize,
    end: usize,
) -> Receiver<(usize, Result<Vec<Sample>>)> {
    let (tx, rx) = sync_channel(1);
    std::thread::spawn(move || {
        for step in start..end {
            if tx.send((step, samples_at(&entries, &cfg, &textures, batch, seed, step))).is_err() {
                break;
            }
        }
    });
    rx
}
