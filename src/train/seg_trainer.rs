//! `csgis train seg`: trains DeepLabv3+ on the dataset's clean GT images and labels, so that it
//! can serve, frozen, as the semantic module of eq. 10 (no pretrained segmentation weights exist
//! offline). Reports mIoU on the validation split.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde_json::json;

use super::deeplab::{imagenet_normalize, DeepLabConfig, DeepLabV3Plus};
use super::files::{varmap_tensors, write_safetensors};
use super::init::seeded_pytorch_init;
use super::loader::{prefetch, split_entries, to_batch, validation_samples};
use super::losses::seg_loss;
use super::optim::{Adam, AdamConfig};
use crate::data::{SampleConfig, Split};
use crate::{Error, Result};

/// Settings of `train seg`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegTrainConfig {
    /// Dataset directory with `manifest.jsonl` (entries need labels).
    pub data: PathBuf,
    /// Output directory; writes `deeplab.safetensors` and `seg_log.jsonl`.
    pub out: PathBuf,
    /// Classes including background; `None` takes the dataset's `classes.json` (21, PASCAL
    /// VOC's count, when it has none).
    pub classes: Option<usize>,
    /// MobileNetV2 width multiplier (1.0 = the authors' backbone).
    pub width: f64,
    /// Steps, batch, crop, learning rate, seed.
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Crop side.
    pub crop: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed.
    pub seed: u64,
}

impl SegTrainConfig {
    /// The class count to train: [`SegTrainConfig::classes`], or the dataset's.
    ///
    /// # Errors
    /// A malformed `classes.json`, or a count that contradicts it.
    pub fn resolved_classes(&self) -> Result<usize> {
        let dataset = crate::data::class_count(&self.data)?;
        match (self.classes, dataset) {
            (Some(c), Some(d)) if c != d => Err(Error::ClassCount {
                first: "--classes".into(),
                first_classes: c,
                second: format!("dataset {}", self.data.join(crate::data::CLASSES_FILE).display()),
                second_classes: d,
                hint: "; drop --classes to use the dataset's",
            }),
            (Some(c), _) => Ok(c),
            (None, d) => Ok(d.unwrap_or(21)),
        }
    }
}

/// Mean intersection-over-union over classes present in prediction or truth (255 ignored).
#[must_use]
pub fn mean_iou(pred: &[u32], truth: &[u32], classes: usize) -> f64 {
    let mut inter = vec![0u64; classes];
    let mut union = vec![0u64; classes];
    for (&p, &t) in pred.iter().zip(truth) {
        if t == 255 || t as usize >= classes || p as usize >= classes {
            continue;
        }
        if p == t {
            inter[p as usize] += 1;
            union[p as usize] += 1;
        } else {
            union[p as usize] += 1;
            union[t as usize] += 1;
        }
    }
    let ious: Vec<f64> = (0..classes).filter(|&c| union[c] > 0).map(|c| inter[c] as f64 / union[c] as f64).collect();
    if ious.is_empty() { 0.0 } else { ious.iter().sum::<f64>() / ious.len() as f64 }
}

/// Trains DeepLabv3+; returns the validation mIoU of the final weights.
///
/// # Errors
/// Dataset errors, entries without labels, or a class count that contradicts the dataset's
/// `classes.json`.
pub fn train_seg(cfg: &SegTrainConfig, device: &Device, progress: &dyn Fn(usize, &str)) -> Result<f64> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let train = split_entries(&cfg.data, Split::Train)?;
    let val = split_entries(&cfg.data, Split::Val).unwrap_or_else(|_| train.clone());
    if train.iter().any(|e| e.label.is_none()) {
        return Err(Error::Dataset { path: cfg.data.clone(), reason: "train seg needs a label for every entry".into() });
    }
    let classes = cfg.resolved_classes()?;
    let dl_cfg = DeepLabConfig { num_classes: classes, width_mult: cfg.width, ..DeepLabConfig::default() };
    let varmap = VarMap::new();
    let net = DeepLabV3Plus::new(&dl_cfg, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    seeded_pytorch_init(&varmap, cfg.seed)?;
    let mut adam = Adam::from_varmap(&varmap, AdamConfig { lr: cfg.lr, ..AdamConfig::default() })?;
    let log_path = cfg.out.join("seg_log.jsonl");
    let mut log = OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| Error::io(&log_path, e))?;
    // Train on the clean GT: swap it in as the input of every sample.
    let sample_cfg = SampleConfig { crop: cfg.crop, ..SampleConfig::default() };
    for (step, samples) in prefetch(train, sample_cfg, None, cfg.batch, cfg.seed, 0, cfg.steps) {
        let batch = to_batch(&samples?, device, DType::F32)?;
        let labels = batch.label.ok_or_else(|| candle_core::Error::Msg("batch without labels".into()))?;
        let logits = net.forward_t(&imagenet_normalize(&batch.gt)?, true)?;
        let loss = seg_loss(&logits, &labels)?;
        adam.backward_step(&loss)?;
        let value = loss.to_scalar::<f32>()?;
        writeln!(log, "{}", json!({ "step": step + 1, "seg": value })).map_err(|e| Error::io(&log_path, e))?;
        progress(step + 1, &format!("seg {value:.4}"));
    }
    let val_samples = validation_samples(&val, cfg.crop, &None, 16, cfg.seed)?;
    let (mut preds, mut truths) = (Vec::new(), Vec::new());
    for chunk in val_samples.chunks(4) {
        let batch = to_batch(chunk, device, DType::F32)?;
        let Some(labels) = batch.label else { continue };
        let logits = net.forward_t(&imagenet_normalize(&batch.gt)?, false)?;
        preds.extend(logits.argmax(1)?.flatten_all()?.to_vec1::<u32>()?);
        truths.extend(labels.flatten_all()?.to_vec1::<u32>()?);
    }
    let miou = mean_iou(&preds, &truths, classes);
    writeln!(log, "{}", json!({ "step": cfg.steps, "val_miou": miou })).map_err(|e| Error::io(&log_path, e))?;
    write_safetensors(&cfg.out.join("deeplab.safetensors"), &varmap_tensors(&varmap)?, None)?;
    Ok(miou)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miou_ignores_255_and_absent_classes() {
        let truth = [0, 0, 1, 1, 255, 2];
        let pred = [0, 1, 1, 1, 0, 2];
        // class 0: inter 1, union 2; class 1: inter 2, union 3; class 2: 1/1.
        let expected = (0.5 + 2.0 / 3.0 + 1.0) / 3.0;
        assert!((mean_iou(&pred, &truth, 4) - expected).abs() < 1e-12);
    }

    #[test]
    fn classes_default_to_the_datasets_and_must_agree_with_it() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let mut cfg = SegTrainConfig {
            data: dir.path().to_path_buf(),
            out: dir.path().join("out"),
            classes: None,
            width: 0.25,
            steps: 1,
            batch: 2,
            crop: 32,
            lr: 1e-3,
            seed: 0,
        };
        assert_eq!(cfg.resolved_classes()?, 21, "no classes.json: VOC's count");
        crate::data::classes::write_classes(dir.path(), &["fruit".into(), "vehicle".into()])?;
        assert_eq!(cfg.resolved_classes()?, 3);
        cfg.classes = Some(3);
        assert_eq!(cfg.resolved_classes()?, 3);
        cfg.classes = Some(21);
        let err = cfg.resolved_classes().expect_err("21 against 3").to_string();
        assert!(err.contains("--classes has 21") && err.contains("has 3"), "{err}");
        Ok(())
    }
}
