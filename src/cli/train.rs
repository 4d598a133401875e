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
    #[arg(long, value_name = "DIR")]
    pub data: Vec<PathBuf>,
    /// Start from a run configuration (a config.json written by an earlier run); flags given
    /// beside it replace its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Blend textures from DIR at sample time (each sample draws its own texture, scale,
    /// rotation and strength onto its GT) instead of reading the precomputed pairs.
    #[arg(long, value_name = "DIR")]
    pub textures: Option<PathBuf>,
    /// Output directory: last/best.safetensors, optimizer.safetensors, state.json, log.jsonl,
    /// config.json (the whole run configuration).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// Network family. [default: csgis]
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// csgis-lite widths at full, 1/2, 1/4 and 1/8 resolution. [default: 16,32,64,128]
    #[arg(long, value_name = "A,B,C,D", value_delimiter = ',')]
    pub lite_widths: Option<Vec<usize>>,
    /// CSGIS-Net size preset. [default: full]
    #[arg(long, value_enum)]
    pub preset: Option<PresetArg>,
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
    /// Samples per step. [default: 8]
    #[arg(long)]
    pub batch: Option<usize>,
    /// Crop side in pixels (a multiple of 8, for the 4-level SSIM pyramid). [default: 128]
    #[arg(long)]
    pub crop: Option<usize>,
    /// Initial learning rate (Adam, β 0.9/0.999, no weight decay). [default: 1e-3]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Halve the learning rate every N epochs. [default: 30]
    #[arg(long, value_name = "N")]
    pub lr_halve_epochs: Option<usize>,
    /// Seed of initialisation, data order and augmentation. [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// VGG16 weights for the contrastive term.
    #[arg(long, value_name = "PATH")]
    pub vgg: Option<PathBuf>,
    /// Frozen DeepLabv3+ weights from `csgis train seg`.
    #[arg(long, value_name = "PATH")]
    pub seg_weights: Option<PathBuf>,
    /// DeepLabv3+ width multiplier of --seg-weights. [default: 1.0]
    #[arg(long)]
    pub seg_width: Option<f64>,
    /// Segmentation classes, background included. [default: the datasets' classes.json, else
    /// 21]
    #[arg(long)]
    pub seg_classes: Option<usize>,
    /// Ablation: no contrastive term.
    #[arg(long)]
    pub no_contrastive: bool,
    /// Ablation: no semantic term.
    #[arg(long)]
    pub no_semantic: bool,
    /// Ablation: no DTV term.
    #[arg(long)]
    pub no_dtv: bool,
    /// Hinge margin of the Gram triplet. [default: 0.04]
    #[arg(long)]
    pub gram_margin: Option<f64>,
    /// Hinge margin of the mean triplet. [default: 0.3]
    #[arg(long)]
    pub mean_margin: Option<f64>,
    /// Validate and checkpoint every N steps. [default: 500]
    #[arg(long, value_name = "N")]
    pub val_every: Option<usize>,
    /// Validation crops. [default: 32]
    #[arg(long)]
    pub val_samples: Option<usize>,
    /// Continue from OUT's last checkpoint with OUT/config.json's settings; give only --out (and
    /// --steps to train further); a flag that contradicts the record is an error.
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
    /// Draw a run's learning curves (loss terms, validation PSNR/SSIM, learning rate) as a PNG.
    Plot(PlotArgs),
}

/// Arguments of `csgis train plot`.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// The run directory (holding log.jsonl) or a log.jsonl file.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// The PNG to write [default: RUN/curves.png].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
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
    /// Classes, background included. [default: the dataset's classes.json, else 21]
    #[arg(long)]
    pub classes: Option<usize>,
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
    Ok(crate::train::loader::run_entries(data, crate::data::Split::Train, per_gt)?.len())
}

/// The run configuration from the flags alone (defaults where a flag is absent).
fn from_flags(args: &TrainArgs, out: &std::path::Path) -> anyhow::Result<TrainConfig> {
    if args.data.is_empty() {
        bail!("--data is required (or --config FILE, or --resume with an existing --out)");
    }
    let mut cfg = TrainConfig {
        data: args.data.clone(),
        out: out.to_path_buf(),
        arch: Arch::Csgis(NetConfig::CSGIS),
        textures: None,
        texture_draw: crate::data::TextureDrawConfig::default(),
        sample: crate::data::SampleConfig::default(),
        adam: crate::train::optim::AdamConfig::default(),
        batch: 8,
        crop: 128,
        steps: 0,
        lr: 1e-3,
        lr_halve_epochs: 30,
        seed: 0,
        terms: TermSwitches::default(),
        vgg: None,
        seg_weights: None,
        seg_width: 1.0,
        seg_classes: crate::data::classes::class_counts(&args.data)?.first().map_or(21, |&(_, n)| n),
        val_every: 500,
        val_samples: 32,
    };
    apply_flags(&mut cfg, args, false)?;
    Ok(cfg)
}

/// The architecture the flags name, given the one already configured.
fn arch_of(args: &TrainArgs, current: &Arch) -> anyhow::Result<Arch> {
    let family = args.arch.unwrap_or(match current {
        Arch::Csgis(_) => ArchArg::Csgis,
        Arch::Lite(_) => ArchArg::Lite,
    });
    Ok(match family {
        ArchArg::Csgis => {
            let base = match (args.preset, current) {
                (Some(PresetArg::Full), _) => NetConfig::CSGIS,
                (Some(PresetArg::Tiny), _) => NetConfig::TINY,
                (None, Arch::Csgis(c)) => *c,
                (None, Arch::Lite(_)) => NetConfig::CSGIS,
            };
            Arch::Csgis(NetConfig { blocks: args.blocks.unwrap_or(base.blocks), channels: args.channels.unwrap_or(base.channels) })
        }
        ArchArg::Lite => {
            let base = match current {
                Arch::Lite(c) => c.widths.to_vec(),
                Arch::Csgis(_) => LiteConfig::default().widths.to_vec(),
            };
            match args.lite_widths.as_deref().unwrap_or(&base) {
                &[a, b, c, d] if [a, b, c, d].iter().all(|w| (1..=1024).contains(w)) => Arch::Lite(LiteConfig { widths: [a, b, c, d] }),
                other => bail!("--lite-widths {other:?}: four widths in 1..=1024 expected"),
            }
        }
    })
}

/// Sets `slot` to a flag's value; with `strict` (resuming) a value that differs from the
/// record is an error naming both.
fn set<T: PartialEq + std::fmt::Debug + Clone>(slot: &mut T, flag: Option<T>, name: &str, strict: bool) -> anyhow::Result<()> {
    if let Some(v) = flag {
        if strict && *slot != v {
            bail!("{name} {v:?} contradicts the run's record ({name} {:?} in config.json); drop the flag to resume", slot);
        }
        *slot = v;
    }
    Ok(())
}

/// Applies every flag given on the command line to `cfg` (`strict`: they must agree with it).
fn apply_flags(cfg: &mut TrainConfig, args: &TrainArgs, strict: bool) -> anyhow::Result<()> {
    let given = |v: bool| v.then_some(true);
    set(&mut cfg.data, (!args.data.is_empty()).then(|| args.data.clone()), "--data", strict)?;
    set(&mut cfg.textures, args.textures.clone().map(Some), "--textures", strict)?;
    let arch = arch_of(args, &cfg.arch)?;
    set(&mut cfg.arch, Some(arch), "--arch/--preset/--lite-widths", strict)?;
    set(&mut cfg.batch, args.batch, "--batch", strict)?;
    set(&mut cfg.crop, args.crop, "--crop", strict)?;
    set(&mut cfg.lr, args.lr, "--lr", strict)?;
    set(&mut cfg.lr_halve_epochs, args.lr_halve_epochs, "--lr-halve-epochs", strict)?;
    set(&mut cfg.seed, args.seed, "--seed", strict)?;
    set(&mut cfg.vgg, args.vgg.clone().map(Some), "--vgg", strict)?;
    set(&mut cfg.seg_weights, args.seg_weights.clone().map(Some), "--seg-weights", strict)?;
    set(&mut cfg.seg_width, args.seg_width, "--seg-width", strict)?;
    set(&mut cfg.seg_classes, args.seg_classes, "--seg-classes", strict)?;
    let t = &mut cfg.terms;
    set(&mut t.contrastive, given(args.no_contrastive).map(|_| false), "--no-contrastive", strict)?;
    set(&mut t.semantic, given(args.no_semantic).map(|_| false), "--no-semantic", strict)?;
    set(&mut t.dtv, given(args.no_dtv).map(|_| false), "--no-dtv", strict)?;
    set(&mut t.gram_margin, args.gram_margin, "--gram-margin", strict)?;
    set(&mut t.mean_margin, args.mean_margin, "--mean-margin", strict)?;
    set(&mut cfg.val_every, args.val_every, "--val-every", strict)?;
    set(&mut cfg.val_samples, args.val_samples, "--val-samples", strict)?;
    // --steps is the target step count: resuming with a larger one trains further.
    match (args.steps, args.epochs) {
        (Some(s), _) => cfg.steps = s,
        (None, Some(e)) => cfg.steps = (e * train_pairs(&cfg.data, cfg.textures.is_some())?).div_ceil(cfg.batch.max(1)),
        (None, None) if cfg.steps == 0 => bail!("give --steps N or --epochs N"),
        (None, None) => {}
    }
    if cfg.crop % 8 != 0 || cfg.crop < 16 {
        bail!("--crop {} must be a multiple of 8 and at least 16 (4-level SSIM pyramid)", cfg.crop);
    }
    Ok(())
}

fn read_config(path: &std::path::Path) -> anyhow::Result<TrainConfig> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not a csgis run configuration", path.display()))
}

/// Resolves the arguments into a [`TrainConfig`]: the flags alone; `--config FILE` with the
/// flags replacing its values; or, with `--resume` and an existing `OUT/config.json`, the
/// run's own record, which the flags may only repeat (and `--steps` extend).
///
/// # Errors
/// Missing --data/--out, a crop that the SSIM pyramid cannot halve three times, an unreadable
/// configuration, a flag that contradicts the record of a resumed run.
pub fn resolve(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let Some(out) = &args.out else { bail!("--out is required") };
    let record = out.join("config.json");
    if args.resume && record.exists() {
        let mut cfg = read_config(&record)?;
        apply_flags(&mut cfg, args, true).with_context(|| format!("resuming {}", out.display()))?;
        cfg.out = out.clone();
        return Ok(cfg);
    }
    if let Some(file) = &args.config {
        let mut cfg = read_config(file)?;
        cfg.out = out.clone();
        apply_flags(&mut cfg, args, false)?;
        return Ok(cfg);
    }
    from_flags(args, out)
}

/// Runs `csgis train` or `csgis train seg`.
///
/// # Errors
/// Set-up errors and training failures.
pub fn run_train(args: &TrainArgs, quiet: bool) -> anyhow::Result<()> {
    if let Some(TrainSub::Seg(s)) = &args.sub {
        let device = open_device(s.device)?;
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
        let classes = cfg.resolved_classes()?;
        let miou = train_seg(&cfg, &device, &|_, msg| bar.step(msg))?;
        bar.finish();
        eprintln!("csgis: DeepLabv3+ ({classes} classes) trained for {} steps; val mIoU {miou:.4}", cfg.steps);
        return Ok(());
    }
    if let Some(TrainSub::Plot(p)) = &args.sub {
        let (log, dir) = if p.run.is_dir() { (p.run.join("log.jsonl"), p.run.clone()) } else { (p.run.clone(), p.run.parent().map(PathBuf::from).unwrap_or_default()) };
        let out = p.output.clone().unwrap_or_else(|| dir.join("curves.png"));
        crate::train::plot::plot_log(&log, &out).with_context(|| format!("plotting {}", log.display()))?;
        if !quiet {
            eprintln!("csgis: wrote {}", out.display());
        }
        return Ok(());
    }
    if let Some(TrainSub::RecalibrateBn(r)) = &args.sub {
        anyhow::ensure!(!crate::io::same_file(&r.weights, &r.output), "{}: refusing to overwrite the input weights", r.output.display());
        let device = open_device(r.device)?;
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
    let device = open_device(args.device)?;
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
