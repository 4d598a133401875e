//! Running a smoothing plan over a batch: decode ahead on an I/O pool, smooth, write
//! atomically, report per file, and go on after per-file errors.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;

use super::progress::Progress;
use super::report::{FileOutcome, FileStatus};
use super::smooth::{ReportTarget, SmoothPlan};
use crate::infer::{blend, Engine};
use crate::io::{decode, encode, write_atomic, Decoded, EncodeOptions, Existing, Input, Job, OutFormat, Output};

/// Per-run settings of the batch loop.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Replace, skip or refuse existing outputs.
    pub existing: ExistingPolicy,
    /// `--strength`.
    pub strength: f32,
    /// `--edges DIR`.
    pub edges_dir: Option<PathBuf>,
    /// `--max-pixels`.
    pub max_pixels: u64,
    /// `--jobs`.
    pub io_threads: usize,
    /// `-q`.
    pub quiet: bool,
}

/// `--overwrite` / `--skip-existing` / default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingPolicy {
    /// Error for that file (default).
    Refuse,
    /// Replace.
    Overwrite,
    /// Skip the input.
    Skip,
}

fn read_input(input: &Input) -> crate::Result<Vec<u8>> {
    match input {
        Input::File(p) => std::fs::read(p).map_err(|e| crate::Error::io(p, e)),
        Input::Stdin => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| crate::Error::io("-", e))?;
            Ok(buf)
        }
    }
}

fn input_path(input: &Input) -> PathBuf {
    match input {
        Input::File(p) => p.clone(),
        Input::Stdin => PathBuf::from("-"),
    }
}

/// The error's message without the leading input path (the report names the input already).
fn cause(e: &crate::Error, input: &Path) -> String {
    let msg = crate::error::report(e);
    let prefix = format!("{}: ", input.display());
    msg.strip_prefix(&prefix).map_or(msg.clone(), str::to_string)
}

/// The edge-map path for an output: `DIR/<output file stem>.png`.
fn edges_path(dir: &Path, output: &Output, input: &Input) -> PathBuf {
    let stem = match output {
        Output::File(p) => p.file_stem().map(|s| s.to_os_string()),
        Output::Stdout => None,
    };
    let stem = stem.unwrap_or_else(|| match input {
        Input::File(p) => p.file_stem().map(|s| s.to_os_string()).unwrap_or_default(),
        Input::Stdin => "stdin".into(),
    });
    let mut name = stem;
    name.push(".edges.png");
    dir.join(name)
}

/// Smooths one decoded image and writes its outputs.
fn process(
    engine: &dyn Engine,
    decoded: &Decoded,
    output: &Output,
    format: OutFormat,
    job: &Job,
    opts: &BatchOptions,
) -> crate::Result<Option<String>> {
    let (mut smoothed, edges) = engine.smooth(&decoded.rgb)?;
    blend(&mut smoothed, &decoded.rgb, opts.strength);
    let enc = EncodeOptions {
        alpha: decoded.alpha.as_deref(),
        gray: decoded.gray,
        high_depth: decoded.high_depth,
        icc: decoded.icc.as_deref(),
    };
    let existing = if opts.existing == ExistingPolicy::Overwrite { Existing::Replace } else { Existing::Refuse };
    let target = match output {
        Output::File(p) => p.clone(),
        Output::Stdout => PathBuf::from("-"),
    };
    let bytes = encode(&smoothed, &enc, format, &target)?;
    if let (Some(dir), Some(edges)) = (&opts.edges_dir, edges) {
        let path = edges_path(dir, output, &job.input);
        let png = encode(&edges, &EncodeOptions { gray: true, ..Default::default() }, OutFormat::Png, &path)?;
        write_atomic(&path, &png, existing)?;
    }
    match output {
        Output::File(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
            }
            write_atomic(p, &bytes, existing)?;
        }
        Output::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes).and_then(|()| out.flush()).map_err(|e| crate::Error::io("-", e))?;
        }
    }
    let dropped_alpha = decoded.alpha.is_some() && format == OutFormat::Jpeg;
    Ok(dropped_alpha.then(|| format!("{}: JPEG has no alpha channel; transparency was dropped", job.input)))
}

/// Runs every job; returns one outcome per job (and per missing input).
///
/// # Errors
/// Only for failures that stop the whole batch: the report file cannot be written.
pub fn run_batch(plan: &SmoothPlan, engine: &dyn Engine, opts: &BatchOptions) -> anyhow::Result<Vec<FileOutcome>> {
    let progress = Progress::new(plan.jobs.len() as u64, opts.quiet);
    let mut report: Option<Box<dyn Write>> = match &plan.report {
        None => None,
        Some(ReportTarget::Stdout) => Some(Box::new(std::io::stdout())),
        Some(ReportTarget::File(p)) => {
            Some(Box::new(File::create(p).with_context(|| format!("creating report {}", p.display()))?))
        }
    };
    let device = engine.device_name();
    let mut outcomes = Vec::new();
    let mut record = |o: FileOutcome, report: &mut Option<Box<dyn Write>>| -> anyhow::Result<()> {
        if let Some(e) = &o.error {
            progress.error(&format!("{}: {e}", o.input));
        }
        if let Some(r) = report.as_mut() {
            writeln!(r, "{}", serde_json::to_string(&o)?).context("writing the report")?;
            r.flush().context("writing the report")?;
        }
        outcomes.push(o);
        Ok(())
    };
    for m in &plan.missing {
        let (input, error) = m.split_once(": ").unwrap_or((m.as_str(), "not found"));
        let o = FileOutcome {
            input: input.to_string(),
            output: None,
            status: FileStatus::Error,
            error: Some(error.to_string()),
            width: None,
            height: None,
            milliseconds: 0,
            device: device.clone(),
        };
        record(o, &mut report)?;
    }

    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.io_threads.max(1)).build()?;
    let (tx, rx) = sync_channel::<(usize, Instant, crate::Result<Decoded>)>(2);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Decode ahead on the I/O pool, in job order as far as the pool allows.
        let jobs = &plan.jobs;
        let (existing, max_pixels) = (opts.existing, opts.max_pixels);
        scope.spawn(move || {
            pool.install(|| {
                jobs.par_iter().enumerate().for_each_with(tx, |tx, (i, job)| {
                    let skip = match &job.output {
                        Err(_) => true,
                        Ok((Output::File(p), _)) => existing != ExistingPolicy::Overwrite && p.exists(),
                        Ok((Output::Stdout, _)) => false,
                    };
                    let start = Instant::now();
                    let decoded = if skip {
                        Err(crate::Error::BadImage { path: PathBuf::new(), reason: String::new() })
                    } else {
                        read_input(&job.input).and_then(|b| decode(&b, &input_path(&job.input), max_pixels))
                    };
                    let _ = tx.send((i, start, decoded));
                });
            });
        });
        for (i, start, decoded) in rx {
            let job = &plan.jobs[i];
            progress.step(&job.input.to_string());
            let mut o = FileOutcome {
                input: job.input.to_string(),
                output: job.output.as_ref().ok().map(|(out, _)| out.to_string()),
                status: FileStatus::Ok,
                error: None,
                width: None,
                height: None,
                milliseconds: 0,
                device: device.clone(),
            };
            let result: Result<(), String> = match (&job.output, decoded) {
                (Err(why), _) => Err(why.clone()),
                (Ok((Output::File(p), _)), _) if opts.existing != ExistingPolicy::Overwrite && p.exists() => {
                    if opts.existing == ExistingPolicy::Skip {
                        o.status = FileStatus::Skipped;
                        Ok(())
                    } else {
                        Err(format!("output {} exists (use --overwrite or --skip-existing)", p.display()))
                    }
                }
                (Ok(_), Err(e)) => Err(cause(&e, &input_path(&job.input))),
                (Ok((output, format)), Ok(decoded)) => {
                    o.width = Some(decoded.rgb.w);
                    o.height = Some(decoded.rgb.h);
                    match process(engine, &decoded, output, *format, job, opts) {
                        Ok(note) => {
                            note.inspect(|n| progress.note(n));
                            Ok(())
                        }
                        Err(e) => Err(crate::error::report(&e)),
                    }
                }
            };
            if let Err(e) = result {
                o.status = FileStatus::Error;
                o.error = Some(e);
            }
            o.milliseconds = start.elapsed().as_millis() as u64;
            record(o, &mut report)?;
        }
        Ok(())
    })?;
    progress.finish();
    Ok(outcomes)
}
