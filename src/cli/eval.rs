//! `csgis eval`: PSNR and SSIM of predictions against ground truth, by the JESS/CSGIS
//! convention (all three channels, data range 1; SSIM with an 11×11 Gaussian window, σ 1.5,
//! zero padding), or scikit-image's default SSIM with `--ssim skimage`.
//!
//! Either scores existing files (`--pred DIR`) or runs a method on `--input DIR` first, with
//! the result quantised to 8 bits as the authors' `ttt.py` scores saved PNGs. `--sweep` tries
//! each classical operator's small parameter grid and reports the best setting by mean PSNR,
//! the protocol of the paper's Table 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rayon::prelude::*;
use serde::Serialize;

use super::method_args::MethodArgs;
use crate::infer::Engine;
use crate::io::{decode_file, quantized};
use crate::metrics::{psnr, ssim_with, SsimConvention};
use crate::ops::Planes;

/// `--ssim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SsimArg {
    /// JESS/CSGIS: 11×11 Gaussian σ 1.5, zero padding, borders included.
    Csgis,
    /// scikit-image default: 7×7 uniform window, sample covariance, border cropped.
    Skimage,
}

/// Arguments of `csgis eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Ground-truth directory; files are paired by name (extension ignored).
    #[arg(long, value_name = "DIR")]
    pub gt: PathBuf,
    /// Predictions to score.
    #[arg(long, value_name = "DIR", conflicts_with = "input")]
    pub pred: Option<PathBuf>,
    /// Inputs to run --method on before scoring.
    #[arg(long, value_name = "DIR")]
    pub input: Option<PathBuf>,
    /// The method and its parameters (with --input).
    #[command(flatten)]
    pub method: MethodArgs,
    /// Weights for --method csgis [default: the embedded model].
    #[arg(long, value_name = "PATH")]
    pub weights: Option<PathBuf>,
    /// Try a small parameter grid of the classical method and report the best setting.
    #[arg(long, requires = "input")]
    pub sweep: bool,
    /// SSIM convention.
    #[arg(long, value_enum, default_value = "csgis")]
    pub ssim: SsimArg,
    /// One JSON object per image, then a summary line.
    #[arg(long)]
    pub json: bool,
}

/// One image's scores.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// The file name.
    pub name: String,
    /// PSNR in dB.
    pub psnr: f64,
    /// SSIM.
    pub ssim: f64,
}

fn image_files(dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = entry?.path();
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if p.is_file() && ext.is_some_and(|e| crate::io::job::IMAGE_EXTENSIONS.contains(&e.as_str())) {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                out.insert(stem.to_string(), p.clone());
            }
        }
    }
    Ok(out)
}

fn load_rgb(path: &Path) -> crate::Result<Planes> {
    Ok(decode_file(path, u64::MAX)?.rgb)
}

fn score(name: &str, pred: &Planes, gt: &Planes, conv: SsimConvention) -> anyhow::Result<Score> {
    if (pred.w, pred.h) != (gt.w, gt.h) {
        bail!("{name}: prediction is {}×{}, ground truth {}×{}", pred.w, pred.h, gt.w, gt.h);
    }
    Ok(Score { name: name.to_string(), psnr: psnr(pred, gt), ssim: ssim_with(pred, gt, conv) })
}

/// Mean PSNR and SSIM.
#[must_use]
pub fn means(scores: &[Score]) -> (f64, f64) {
    let n = scores.len().max(1) as f64;
    (scores.iter().map(|s| s.psnr).sum::<f64>() / n, scores.iter().map(|s| s.ssim).sum::<f64>() / n)
}

/// Pairs of (name, input or prediction path, ground-truth path).
fn pairs(dir: &Path, gt: &Path) -> anyhow::Result<Vec<(String, PathBuf, PathBuf)>> {
    let gts = image_files(gt)?;
    let mut out = Vec::new();
    for (stem, p) in image_files(dir)? {
        match gts.get(&stem) {
            Some(g) => out.push((stem, p, g.clone())),
            None => eprintln!("csgis: note: {} has no ground truth in {}", p.display(), gt.display()),
        }
    }
    if out.is_empty() {
        bail!("no file in {} has a ground truth of the same name in {}", dir.display(), gt.display());
    }
    Ok(out)
}

fn run_engine(engine: &dyn Engine, pairs: &[(String, Planes, Planes)], conv: SsimConvention) -> anyhow::Result<Vec<Score>> {
    pairs
        .iter()
        .map(|(name, input, gt)| {
            let (out, _) = engine.smooth(input).with_context(|| format!("smoothing {name}"))?;
            // Scored on the 8-bit grid, as a saved PNG would be.
            score(name, &quantized(&out), gt, conv)
        })
        .collect()
}

fn print_scores(scores: &[Score], label: &str, json: bool, conv: SsimArg) -> anyhow::Result<()> {
    let (p, s) = means(scores);
    if json {
        for sc in scores {
            println!("{}", serde_json::to_string(sc)?);
        }
        // `method` names what was scored (with --sweep: the best setting), so a script can
        // reproduce it.
        println!("{}", serde_json::json!({ "count": scores.len(), "psnr": p, "ssim": s, "method": label }));
    } else {
        let conv = match conv {
            SsimArg::Csgis => "SSIM (CSGIS: 11×11 Gaussian, zero pad)",
            SsimArg::Skimage => "SSIM (skimage default: 7×7 uniform)",
        };
        println!("{label}\n| image | PSNR (dB) | {conv} |\n|---|---|---|");
        for sc in scores {
            println!("| {} | {:.2} | {:.4} |", sc.name, sc.psnr, sc.ssim);
        }
        println!("| **mean of {}** | **{p:.2}** | **{s:.4}** |", scores.len());
    }
    Ok(())
}

/// Runs `csgis eval`; `engine_for` builds an engine for a classical method or the network.
///
/// # Errors
/// Unreadable directories, no pairs, mismatched sizes, undecodable images.
pub fn run_eval(
    args: &EvalArgs,
    engine_for: &dyn Fn(Option<crate::ops::Method>) -> anyhow::Result<Box<dyn Engine>>,
) -> anyhow::Result<()> {
    let conv = match args.ssim {
        SsimArg::Csgis => SsimConvention::Csgis,
        SsimArg::Skimage => SsimConvention::Skimage,
    };
    if let Some(pred) = &args.pred {
        let scores: Vec<Score> = pairs(pred, &args.gt)?
            .par_iter()
            .map(|(name, p, g)| score(name, &load_rgb(p)?, &load_rgb(g)?, conv))
            .collect::<anyhow::Result<_>>()?;
        return print_scores(&scores, &format!("predictions {}", pred.display()), args.json, args.ssim);
    }
    let Some(input) = &args.input else { bail!("give --pred DIR, or --input DIR with a --method") };
    let loaded: Vec<(String, Planes, Planes)> = pairs(input, &args.gt)?
        .into_iter()
        .map(|(n, i, g)| Ok((n, load_rgb(&i)?, load_rgb(&g)?)))
        .collect::<anyhow::Result<_>>()?;
    let method = args.method.resolve()?;
    if !args.sweep {
        let engine = engine_for(method)?;
        let label = method.map_or("csgis".to_string(), |m| format!("{} {}", m.name(), m.describe()));
        return print_scores(&run_engine(engine.as_ref(), &loaded, conv)?, &label, args.json, args.ssim);
    }
    let Some(method) = method else { bail!("--sweep needs a classical --method") };
    let mut best: Option<(crate::ops::Method, Vec<Score>)> = None;
    for m in method.sweep() {
        let scores = run_engine(engine_for(Some(m))?.as_ref(), &loaded, conv)?;
        let (p, s) = means(&scores);
        if !args.json {
            eprintln!("csgis: sweep {} {}: PSNR {p:.2} dB, SSIM {s:.4}", m.name(), m.describe());
        }
        if best.as_ref().is_none_or(|(_, b)| means(b).0 < p) {
            best = Some((m, scores));
        }
    }
    let (m, scores) = best.context("empty sweep grid")?;
    print_scores(&scores, &format!("best {}: {}", m.name(), m.describe()), args.json, args.ssim)
}
