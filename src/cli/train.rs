//! `csgis train` (the smoother, every loss of eq. 11) and `csgis train seg` (DeepLabv3+ for the
//! semantic term).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};

use super::progress::Progress;
use crate::infer::{open_device, DeviceChoice};
use crate::model::{Arch, LiteConfig, NetConfig};
use crate::train::config::{TermSwitches, TrainConfig};
use crate::train::recalibrate::{recalibrate_bn, RecalibrateConfig};
use crate::train::seg_trainer::{train_seg, SegTrainConfig};
use crate::train::trainer::train;

/// Network families `--arch` chooses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// csgis-lite, the multi-scale network built for CPUs.
    Lite,
    /// CSGIS-Net, the paper's backbone.
    Csgis,
}

/// CSGIS-Net size presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// N = 12, C = 64: the CSGIS training script.
    Full,
    /// N = 1, C = 8: for tests.
    Tiny,
}

/// Arguments of `csgis train`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TrainArgs {
    /// Train DeepLabv3+ instead (the semantic module).
    #[command(subcommand)]
    pub sub: Option<TrainSub>,
    /// Dataset directory holding manifest.jsonl (`csgis dataset build|synth`); repeat it to
    /// train on several.
    #[arg(long, value_name = "DIR", required = true)]
    pub data: Vec<PathBuf>,
    /// Blend textures from DIR at sample time (each sample draws its own texture, scale,
    /// rotation and strength onto its GT) instead of reading the precomputed pairs.
    #[arg(long, value_name = "DIR")]
    pub textures: Option<PathBuf>,
    /// Output directory: last/best.safetensors, optimizer.safetensors, state.json, log.jsonl.
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// Network family.
    #[arg(long, value_enum, default_value = "csgis")]
    pub arch: ArchArg,
    /// csgis-lite widths at full, 1/2, 1/4 and 1/8 resolution.
    #[arg(long, value_name = "A,B,C,D", value_delimiter = ',', default_values_t = LiteConfig::default().widths)]
    pub lite_widths: Vec<usize>,
    /// CSGIS-Net size preset.
    #[arg(long, value_enum, default_value = "full")]
    pub preset: PresetArg,
    /// Override N, the feature extractor's rHDC blocks.
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Override C, the feature width.
    #[arg(long)]
    pub channels: Option<usize>,
    /// Optimiser steps (alternative to --epochs).
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<usize>,
    /// Epochs over the training split.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Samples per step.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Crop side in pixels (a multiple of 8, for the 4-level SSIM pyramid).
    #[arg(long, default_value_t = 128)]
    pub crop: usize,
    /// Initial learning rate (Adam, β 0.9/0.999, no weight decay).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Halve the learning rate every N epochs.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub lr_halve_epochs: usize,
    /// Seed of initialisation, data order and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// VGG16 weights for the contrastive term.
    #[arg(long, value_name = "PATH")]
    pub vgg: Option<PathBuf>,
    /// Frozen DeepLabv3+ weights from `csgis train seg`.
    #[arg(long, value_name = "PATH")]
    pub seg_weights: Option<PathBuf>,
    /// DeepLabv3+ width multiplier of --seg-weights.
    #[arg(long, default_value_t = 1.0)]
    pub seg_width: f64,
    /// Segmentation classes, background included.
    #[arg(long, default_value_t = 21)]
    pub seg_classes: usize,
    /// Ablation: no contrastive term.
    #[arg(long)]
    pub no_contrastive: bool,
    /// Ablation: no semantic term.
    #[arg(long)]
    pub no_semantic: bool,
    /// Ablation: no DTV term.
    #[arg(long)]
    pub no_dtv: bool,
    /// Hinge margin of the Gram triplet.
    #[arg(long, default_value_t = 0.04)]
    pub gram_margin: f64,
    /// Hinge margin of the mean triplet.
    #[arg(long, default_value_t = 0.3)]
    pub mean_margin: f64,
    /// Validate and checkpoint every N steps.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub val_every: usize,
    /// Validation crops.
    #[arg(long, default_value_t = 32)]
    pub val_samples: usize,
    /// Continue from OUT's last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<DeviceChoice>())]
    pub device: DeviceChoice,
}

/// `csgis train seg`.
#[derive(Debug, Clone, Subcommand)]
pub enum TrainSub {
    /// Train DeepLabv3+ on the dataset's clean GT images and labels; reports val mIoU.
    Seg(SegArgs),
    /// Re-estimate a trained smoother's BatchNorm statistics on training crops (weights frozen).
    RecalibrateBn(RecalibrateArgs),
}

/// Arguments of `csgis train recalibrate-bn`.
#[derive(Debug, Clone, Args)]
pub struct RecalibrateArgs {
    /// Dataset directory holding manifest.jsonl (its train split is used).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Trained weights (e.g. OUT/best.safetensors).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Where to write the recalibrated weights (never the input file).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Forward passes in train mode.
    #[arg(long, default_value_t = 100)]
    pub batches: usize,
    /// Samples per pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Crop side in pixels.
    #[arg(long, default_value_t = 128)]
    pub crop: usize,
    /// Seed of the crops.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute device.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<DeviceChoice>())]
    pub device: DeviceChoice,
}

/// Arguments of `csgis train seg`.
#[derive(Debug, Clone, Args)]
pub struct SegArgs {
    /// Dataset directory holding manifest.jsonl (every entry needs a label).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Output directory: deeplab.safetensors, seg_log.jsonl.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Classes, background included.
    #[arg(long, default_value_t = 21)]
    pub classes: usize,
    /// MobileNetV2 width multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Optimiser steps.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Samples per step (at least 2: BatchNorm and image pooling need a batch).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Crop side in pixels.
    #[arg(long, default_value_t = 128)]
    pub crop: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute device.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<DeviceChoice>())]
    pub device: DeviceChoice,
}

fn train_pairs(data: &[PathBuf], per_gt: bool) -> anyhow::Result<usize> {
    let entries = crate::train::loader::split_entries_of(data, crate::data::Split::Train)?;
    Ok(if per_gt { crate::train::loader::unique_gts(&entries).len() } else { entries.len() })
}

/// Resolves the arguments into a [`TrainConfig`].
///
/// # Errors
/// Missing --data/--out, a crop that the SSIM pyramid cannot halve three times.
pub fn resolve(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let (data, Some(out)) = (&args.data, &args.out) else { bail!("--data and --out are required") };
    if data.is_empty() {
        bail!("--data and --out are required");
    }
    if args.crop % 8 != 0 || args.crop < 16 {
        bail!("--crop {} must be a multiple of 8 and at least 16 (4-level SSIM pyramid)", args.crop);
    }
    let arch = match args.arch {
        ArchArg::Csgis => {
            let preset = match args.preset {
                PresetArg::Full => NetConfig::CSGIS,
                PresetArg::Tiny => NetConfig::TINY,
            };
            Arch::Csgis(NetConfig { blocks: args.blocks.unwrap_or(preset.blocks), channels: args.channels.unwrap_or(preset.channels) })
        }
        ArchArg::Lite => match args.lite_widths.as_slice() {
            &[a, b, c, d] if args.lite_widths.iter().all(|&w| (1..=1024).contains(&w)) => Arch::Lite(LiteConfig { widths: [a, b, c, d] }),
            other => bail!("--lite-widths {other:?}: four widths in 1..=1024 expected"),
        },
    };
    let steps = match (args.steps, args.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => (e * train_pairs(data, args.textures.is_some())?).div_ceil(args.batch.max(1)),
        (None, None) => bail!("give --steps N or --epochs N"),
    };
    Ok(TrainConfig {
        data: data.clone(),
        out: out.clone(),
        arch,
        textures: args.textures.clone(),
        texture_draw: crate::data::TextureDrawConfig::default(),
        batch: args.batch,
        crop: args.crop,
        steps,
        lr: args.lr,
        lr_halve_epochs: args.lr_halve_epochs,
        seed: args.seed,
        terms: TermSwitches {
            dtv: !args.no_dtv,
            contrastive: !args.no_contrastive,
            semantic: !args.no_semantic,
            gram_margin: args.gram_margin,
            mean_margin: args.mean_margin,
            ..TermSwitches::default()
        },
        vgg: args.vgg.clone(),
        seg_weights: args.seg_weights.clone(),
        seg_width: args.seg_width,
        seg_classes: args.seg_classes,
        val_every: args.val_every,
        val_samples: args.val_samples,
    })
}

/// Runs `csgis train` or `csgis train seg`.
///
/// # Errors
/// Set-up errors and training failures.
pub fn run_train(args: &TrainArgs, quiet: bool) -> anyhow::Result<()> {
    if let Some(TrainSub::Seg(s)) = &args.sub {
        let device = open_device(s.device).map_err(anyhow::Error::msg)?;
        let cfg = SegTrainConfig {
            data: s.data.clone(),
            out: s.out.clone(),
            classes: s.classes,
            width: s.width,
            steps: s.steps,
            batch: s.batch,
            crop: s.crop,
            lr: s.lr,
            seed: s.seed,
        };
        let bar = Progress::new(cfg.steps as u64, quiet);
        let miou = train_seg(&cfg, &device, &|_, msg| bar.step(msg))?;
        bar.finish();
        eprintln!("csgis: DeepLabv3+ trained for {} steps; val mIoU {miou:.4}", cfg.steps);
        return Ok(());
    }
    if let Some(TrainSub::RecalibrateBn(r)) = &args.sub {
        anyhow::ensure!(!crate::io::same_file(&r.weights, &r.output), "{}: refusing to overwrite the input weights", r.output.display());
        let device = open_device(r.device).map_err(anyhow::Error::msg)?;
        let cfg = RecalibrateConfig { data: r.data.clone(), batches: r.batches, batch: r.batch, crop: r.crop, seed: r.seed };
        let net = recalibrate_bn(&r.weights, &r.output, &cfg, &device)
            .with_context(|| format!("recalibrating {}", r.weights.display()))?;
        if !quiet {
            eprintln!(
                "csgis: BatchNorm statistics of {} (N = {}, C = {}) re-estimated over {} batches of {}; wrote {}",
                r.weights.display(),
                net.blocks,
                net.channels,
                r.batches,
                r.batch,
                r.output.display()
            );
        }
        return Ok(());
    }
    let cfg = resolve(args)?;
    let device = open_device(args.device).map_err(anyhow::Error::msg)?;
    let bar = Progress::new(cfg.steps as u64, quiet);
    let summary = train(&cfg, &device, args.resume, &|_, msg| bar.step(msg))
        .with_context(|| format!("training into {}", cfg.out.display()))?;
    bar.finish();
    if !quiet {
        eprintln!(
            "csgis: {} steps, last loss {:.4}, best val SSIM {:.4}, {:.0} s",
            summary.steps, summary.last_loss, summary.best_val_ssim, summary.seconds
        );
    }
    Ok(())
}
