//! `csgis smooth`: arguments, and their resolution into a plan before any work starts.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use crate::infer::{DeviceChoice, Precision};
use crate::io::{expand_inputs, parse_file_list, plan_jobs, Job, Naming, OutFormat, Source};

/// Output formats on the command line.
/// Which embedded model runs when no `--weights` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// csgis-lite, the default.
    Lite,
    /// CSGIS-Net, the paper's backbone.
    Full,
}

/// Output image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// PNG (8 or 16 bit).
    Png,
    /// JPEG (8 bit, quality 95).
    #[value(alias = "jpeg")]
    Jpg,
    /// Lossless WebP.
    Webp,
    /// TIFF (8 or 16 bit).
    #[value(alias = "tif")]
    Tiff,
}

impl From<FormatArg> for OutFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Png => Self::Png,
            FormatArg::Jpg => Self::Jpeg,
            FormatArg::Webp => Self::WebP,
            FormatArg::Tiff => Self::Tiff,
        }
    }
}

/// `--tile N|auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileArg {
    /// Size tiles from the image and the memory available.
    Auto,
    /// Cores of at most N pixels a side.
    Size(usize),
}

fn parse_tile(s: &str) -> Result<TileArg, String> {
    if s == "auto" {
        return Ok(TileArg::Auto);
    }
    match s.parse::<usize>() {
        Ok(n) if n >= 16 => Ok(TileArg::Size(n)),
        _ => Err(format!("'{s}': expected 'auto' or a tile size of at least 16 pixels")),
    }
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let err = || format!("'{s}': expected I/N with 0 ≤ I < N, for example 3/8");
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let (i, n): (usize, usize) = (i.parse().map_err(|_| err())?, n.parse().map_err(|_| err())?);
    if n == 0 || i >= n {
        return Err(err());
    }
    Ok((i, n))
}

fn parse_strength(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}': expected a number in [0, 1]")),
    }
}

/// Arguments of `csgis smooth`.
#[derive(Debug, Clone, Args)]
pub struct SmoothArgs {
    /// Images, directories (with -r), glob patterns (quoted, expanded by csgis; ** recurses)
    /// or - for one image on stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// The smoothing method and its parameters.
    #[command(flatten)]
    pub method: super::method_args::MethodArgs,

    /// Descend into directories; their tree is mirrored under the output directory.
    #[arg(short, long)]
    pub recursive: bool,

    /// Read input paths from FILE, one a line (- = stdin).
    #[arg(long, value_name = "FILE")]
    pub files_from: Option<PathBuf>,

    /// With --files-from: paths are NUL-separated (find -print0).
    #[arg(short = '0', long = "null", requires = "files_from")]
    pub null: bool,

    /// Output directory (created when missing), or - for stdout (one input only).
    /// Default: beside each input as NAME.smooth.EXT; stdin goes to stdout.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Output format [default: the input's; png on stdout].
    #[arg(short, long, value_enum)]
    pub format: Option<FormatArg>,

    /// Text inserted before the extension [default: .smooth beside the input, none with -o DIR].
    #[arg(long, value_name = "S")]
    pub suffix: Option<String>,

    /// Replace existing outputs.
    #[arg(long, conflicts_with = "skip_existing")]
    pub overwrite: bool,

    /// Skip inputs whose output already exists (exit 0 for them).
    #[arg(long)]
    pub skip_existing: bool,

    /// Weights file (safetensors: csgis-lite, or CSGIS-Net with the authors' key names; the
    /// family is read from the file) [default: the embedded model --model names].
    #[arg(long, value_name = "PATH")]
    pub weights: Option<PathBuf>,

    /// Embedded model: lite (csgis-lite, built for CPUs) or full (CSGIS-Net).
    #[arg(long, value_enum, default_value_t = ModelArg::Lite, conflicts_with = "weights")]
    pub model: ModelArg,

    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<DeviceChoice>())]
    pub device: DeviceChoice,

    /// Precision: f32, f16 or bf16 (half precision runs on GPUs; the CPU uses f32).
    #[arg(long, default_value = "f32", value_parser = |s: &str| s.parse::<Precision>())]
    pub dtype: Precision,

    /// Tiled inference: a tile size in pixels, or auto (from the image and free memory).
    #[arg(long, value_name = "N|auto", value_parser = parse_tile)]
    pub tile: Option<TileArg>,

    /// Context pixels around each tile [default: the model's receptive radius + 8, which makes
    /// tiling exact].
    #[arg(long, value_name = "N")]
    pub tile_overlap: Option<usize>,

    /// Blend with the input: S·smoothed + (1−S)·input.
    #[arg(long, default_value = "1", value_name = "S", value_parser = parse_strength)]
    pub strength: f32,

    /// Also write the predicted edge map (8-bit grayscale PNG) into DIR.
    #[arg(long, value_name = "DIR")]
    pub edges: Option<PathBuf>,

    /// Files processed at a time (decode, smooth, encode, write) [default: number of CPUs].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// JSON lines, one per input, to PATH (- = stdout).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Print what would be written and do nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Keep only inputs whose index in the sorted input list is I mod N (job arrays).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,

    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = 268_435_456, value_name = "N")]
    pub max_pixels: u64,
}

/// Where the report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTarget {
    /// Standard output.
    Stdout,
    /// A file (written as lines arrive).
    File(PathBuf),
}

/// Everything `smooth` will do, decided before any image is read.
#[derive(Debug)]
pub struct SmoothPlan {
    /// One entry per input, in sorted order.
    pub jobs: Vec<Job>,
    /// Inputs on the command line that gave nothing (reported as per-file errors).
    pub missing: Vec<String>,
    /// Output directory to create, if any.
    pub out_dir: Option<PathBuf>,
    /// Where the report goes.
    pub report: Option<ReportTarget>,
}

impl SmoothArgs {
    /// Expands inputs and names outputs.
    ///
    /// # Errors
    /// Usage errors (exit 2): no inputs, stdout with several inputs, a report on stdout while
    /// images go there, an unreadable `--files-from`.
    pub fn plan(&self) -> anyhow::Result<SmoothPlan> {
        let mut args = self.inputs.clone();
        if let Some(list) = &self.files_from {
            let text = if list.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading --files-from -")?;
                buf
            } else {
                std::fs::read(list).with_context(|| format!("reading --files-from {}", list.display()))?
            };
            args.extend(parse_file_list(&text, self.null));
        }
        if args.is_empty() {
            bail!("no input given: name image files, directories (-r), glob patterns, - or --files-from");
        }
        if args.iter().filter(|a| *a == "-").count() > 1 {
            bail!("stdin (-) can be read only once");
        }
        let to_stdout = self.output.as_deref().is_some_and(|o| o.as_os_str() == "-");
        let out_dir = self.output.clone().filter(|_| !to_stdout);
        let (sources, missing): (Vec<Source>, Vec<String>) = expand_inputs(&args, self.recursive);
        let naming = Naming {
            dir: out_dir.clone(),
            stdout: to_stdout,
            suffix: self.suffix.clone().unwrap_or_else(|| if out_dir.is_some() { String::new() } else { ".smooth".into() }),
            format: self.format.map(OutFormat::from),
        };
        let jobs = plan_jobs(sources, &naming, self.shard);
        let stdout_jobs = jobs.iter().filter(|j| matches!(j.output, Ok((crate::io::Output::Stdout, _)))).count();
        if stdout_jobs > 0 && jobs.len() + missing.len() > 1 {
            bail!("only one input can be written to stdout; use -o DIR for several");
        }
        let report = self.report.as_ref().map(|p| {
            if p.as_os_str() == "-" { ReportTarget::Stdout } else { ReportTarget::File(p.clone()) }
        });
        if report == Some(ReportTarget::Stdout) && stdout_jobs > 0 {
            bail!("--report - cannot share stdout with the image; give the report a file");
        }
        Ok(SmoothPlan { jobs, missing, out_dir, report })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tiles_and_shards() {
        assert_eq!(parse_tile("auto"), Ok(TileArg::Auto));
        assert_eq!(parse_tile("64"), Ok(TileArg::Size(64)));
        assert!(parse_tile("4").is_err());
        assert_eq!(parse_shard("3/8"), Ok((3, 8)));
        assert!(parse_shard("8/8").is_err());
        assert!(parse_shard("1/0").is_err());
        assert!(parse_strength("1.5").is_err());
    }
}
