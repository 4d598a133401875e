//! The command line: argument definitions (clap) and dispatch to the subcommands.
//!
//! clap types live only here; each subcommand's arguments resolve into library types.

mod batch;
pub mod convert;
pub mod eval;
pub mod dataset;
pub mod man;
pub mod method_args;
mod progress;
pub mod report;
pub mod smooth;
pub mod train;

use std::path::PathBuf;

use anyhow::Context;
use candle_core::DType;
use clap::{CommandFactory, Parser, Subcommand};

use crate::infer::{auto_budget, build_engine, effective_dtype, open_device, EmbeddedModel, Engine, ModelSource, Tiling};
pub use batch::{BatchOptions, ExistingPolicy};
pub use report::{FileOutcome, FileStatus, Status};
use smooth::{ModelArg, SmoothArgs, TileArg};

/// csgis: structure-preserving image smoothing with CSGIS-Net.
///
/// Removes texture and trivial detail while keeping edges and meaningful structure.
/// Exit status: 0 when every input succeeded or was skipped, 1 when any input failed (the
/// others are still done), 2 for usage or set-up errors found before any work, 130 when
/// interrupted (Ctrl-C: files in flight are finished, no partial file is left).
#[derive(Debug, Parser)]
#[command(name = "csgis", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Smooth images with CSGIS-Net or a classical operator (--method).
    Smooth(SmoothArgs),
    /// Score predictions against ground truth (PSNR, SSIM), or run a method and score it.
    Eval(eval::EvalArgs),
    /// Train CSGIS-Net with every loss of the paper, or DeepLabv3+ (`train seg`).
    Train(train::TrainArgs),
    /// Convert an authors' PyTorch checkpoint (.pth, zip or legacy) to safetensors.
    Convert(convert::ConvertArgs),
    /// Build, synthesise and preview training data.
    Dataset(dataset::DatasetArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Parses the process's command line (exits with clap's message on a usage error).
#[must_use]
pub fn parse() -> Cli {
    Cli::parse()
}

/// The weights file, or the embedded model `model` names.
fn model_source(weights: Option<&PathBuf>, model: ModelArg) -> ModelSource<'_> {
    match (weights, model) {
        (Some(path), _) => ModelSource::File(path),
        (None, ModelArg::Lite) => ModelSource::Embedded(EmbeddedModel::Lite),
        (None, ModelArg::Full) => ModelSource::Embedded(EmbeddedModel::Full),
    }
}

/// [`build_engine`], saying "reading weights" when the file cannot be read.
fn engine(
    method: Option<crate::ops::Method>,
    model: ModelSource<'_>,
    device: &candle_core::Device,
    dtype: DType,
    tiling: Tiling,
    context: Option<usize>,
) -> anyhow::Result<Box<dyn Engine>> {
    build_engine(method, model, device, dtype, tiling, context).map_err(|e| match e {
        crate::Error::Io { .. } => anyhow::Error::new(e).context("reading weights"),
        e => e.into(),
    })
}

/// The clap command, for man pages and completions.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs a parsed command line.
///
/// # Errors
/// Set-up errors (exit 2); per-file errors are reported and reflected in the status instead.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.command {
        Command::Smooth(args) => run_smooth(&args, cli.quiet),
        Command::Eval(args) => {
            let device = open_device(crate::infer::DeviceChoice::Auto)?;
            let engine_for = |method: Option<crate::ops::Method>| -> anyhow::Result<Box<dyn Engine>> {
                let model = model_source(args.weights.as_ref(), ModelArg::Lite);
                engine(method, model, &device, DType::F32, Tiling::Auto { budget: auto_budget() }, None)
            };
            eval::run_eval(&args, &engine_for)?;
            Ok(Status::Success)
        }
        Command::Train(args) => train::run_train(&args, cli.quiet).map(|()| Status::Success),
        Command::Convert(args) => {
            convert::run_convert(&args, cli.quiet)?;
            Ok(Status::Success)
        }
        Command::Dataset(args) => dataset::run(&args, cli.quiet).map(|()| Status::Success),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "csgis", &mut std::io::stdout());
            Ok(Status::Success)
        }
    }
}

fn run_smooth(args: &SmoothArgs, quiet: bool) -> anyhow::Result<Status> {
    let plan = args.plan()?;
    if args.dry_run {
        for job in &plan.jobs {
            match &job.output {
                Ok((out, _)) => println!("{} -> {out}", job.input),
                Err(why) => println!("{}: error: {why}", job.input),
            }
        }
        return Ok(Status::Success);
    }
    if let Some(dir) = &plan.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating output directory {}", dir.display()))?;
    }
    if let Some(dir) = &args.edges {
        std::fs::create_dir_all(dir).with_context(|| format!("creating edges directory {}", dir.display()))?;
    }
    let method = args.method.resolve()?;
    let device = open_device(args.device)?;
    let (dtype, note) = effective_dtype(&device, args.dtype);
    if let (Some(note), false, None) = (note, quiet, method) {
        eprintln!("csgis: note: {note}");
    }
    let tiling = match args.tile {
        None => Tiling::Off,
        Some(TileArg::Size(n)) => Tiling::Fixed(n),
        Some(TileArg::Auto) => Tiling::Auto { budget: auto_budget() },
    };
    let model = model_source(args.weights.as_ref(), args.model);
    let engine = engine(method, model, &device, dtype, tiling, args.tile_overlap)?;
    if let (None, ModelSource::Embedded(m), false) = (method, model, quiet) {
        eprintln!("csgis: note: {}", m.note());
    }
    let opts = BatchOptions {
        existing: if args.overwrite {
            ExistingPolicy::Overwrite
        } else if args.skip_existing {
            ExistingPolicy::Skip
        } else {
            ExistingPolicy::Refuse
        },
        strength: args.strength,
        edges_dir: args.edges.clone(),
        max_pixels: args.max_pixels,
        io_threads: args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        quiet,
    };
    let run = batch::run_batch(&plan, engine.as_ref(), &opts)?;
    let outcomes = run.outcomes;
    if run.interrupted {
        // Always said, even with -q: the batch did not finish.
        let total = plan.jobs.len() + plan.missing.len();
        eprintln!("csgis: interrupted: {} of {total} inputs finished ({}); no partial output left", outcomes.len(), report::summary(&outcomes));
        return Ok(Status::Interrupted);
    }
    if !quiet && outcomes.len() > 1 {
        eprintln!("csgis: {}", report::summary(&outcomes));
    }
    Ok(Status::of(&outcomes))
}
