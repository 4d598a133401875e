//! Running a smoothing plan over a batch: `-j N` jobs at a time (decode, smooth, encode,
//! write atomically), report per file in job order, go on after per-file errors, and stop
//! starting new files on SIGINT.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;

use super::progress::Progress;
use super::report::{FileOutcome, FileStatus};
use super::smooth::{ReportTarget, SmoothPlan};
use crate::infer::{blend, Engine};
use crate::io::{decode, encode, write_atomic, Decoded, EncodeOptions, Existing, Input, Job, OutFormat, Output};
use crate::ops::Planes;

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
    /// `--jobs`: files processed at a time.
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
    big: &Big<'_>,
) -> crate::Result<Option<String>> {
    let (mut smoothed, edges) = big.smooth(engine, &decoded.rgb)?;
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

/// Set by SIGINT: no new input is started; those in flight finish (their outputs are written
/// whole or not at all), then the batch ends with exit status 130.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the SIGINT handler once per process (a failure to install leaves the default).
fn catch_sigint() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

/// What a batch did.
#[derive(Debug, Clone)]
pub struct BatchRun {
    /// One outcome per finished job (and per missing input), in job order.
    pub outcomes: Vec<FileOutcome>,
    /// SIGINT stopped the batch before every job was done.
    pub interrupted: bool,
}

/// One job from start to end: skip or refuse an existing output, read, decode, smooth, encode,
/// write. Returns its outcome and a note, if any.
fn run_job(job: &Job, engine: &dyn Engine, opts: &BatchOptions, big: &Big<'_>, device: &str) -> (FileOutcome, Option<String>) {
    let start = Instant::now();
    let mut o = FileOutcome {
        input: job.input.to_string(),
        output: job.output.as_ref().ok().map(|(out, _)| out.to_string()),
        status: FileStatus::Ok,
        error: None,
        width: None,
        height: None,
        milliseconds: 0,
        device: device.to_string(),
    };
    let mut note = None;
    let result: Result<(), String> = match &job.output {
        Err(why) => Err(why.clone()),
        Ok((Output::File(p), _)) if opts.existing != ExistingPolicy::Overwrite && p.exists() => {
            if opts.existing == ExistingPolicy::Skip {
                o.status = FileStatus::Skipped;
                Ok(())
            } else {
                Err(format!("output {} exists (use --overwrite or --skip-existing)", p.display()))
            }
        }
        Ok((output, format)) => {
            let decoded = read_input(&job.input).and_then(|b| decode(&b, &input_path(&job.input), opts.max_pixels));
            match decoded {
                Err(e) => Err(cause(&e, &input_path(&job.input))),
                Ok(decoded) => {
                    o.width = Some(decoded.rgb.w);
                    o.height = Some(decoded.rgb.h);
                    match process(engine, &decoded, output, *format, job, opts, big) {
                        Ok(n) => {
                            note = n;
                            Ok(())
                        }
                        Err(e) => Err(crate::error::report(&e)),
                    }
                }
            }
        }
    };
    if let Err(e) = result {
        o.status = FileStatus::Error;
        o.error = Some(e);
    }
    o.milliseconds = start.elapsed().as_millis() as u64;
    (o, note)
}

/// Smoothing of images above the concurrent limit: one at a time, on a pool of every core.
struct Big<'a> {
    limit: u64,
    lock: Mutex<()>,
    pool: &'a rayon::ThreadPool,
}

impl Big<'_> {
    fn smooth(&self, engine: &dyn Engine, rgb: &Planes) -> crate::Result<(Planes, Option<Planes>)> {
        if (rgb.w * rgb.h) as u64 <= self.limit {
            return engine.smooth(rgb);
        }
        let _one = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.pool.install(|| engine.smooth(rgb))
    }
}

/// Runs every job; returns one outcome per finished job (and per missing input), in job
/// order. With `-j N`, N jobs run at a time on a pool (decode, smooth, encode, write); images
/// above the engine's [`Engine::concurrent_pixels`] are smoothed one at a time on every
/// core. Messages and report lines come out in job order whatever the pool does. SIGINT
/// stops starting new jobs; the run then says so in [`BatchRun::interrupted`].
///
/// # Errors
/// Only for failures that stop the whole batch: the report file cannot be written.
pub fn run_batch(plan: &SmoothPlan, engine: &dyn Engine, opts: &BatchOptions) -> anyhow::Result<BatchRun> {
    catch_sigint();
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

    let threads = opts.io_threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let all_cores = rayon::ThreadPoolBuilder::new().build()?;
    let big = Big { limit: engine.concurrent_pixels(), lock: Mutex::new(()), pool: &all_cores };
    let (tx, rx) = sync_channel::<(usize, FileOutcome, Option<String>)>(2 * threads);
    let mut next = 0;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (jobs, big, device) = (&plan.jobs, &big, &device);
        scope.spawn(move || {
            pool.install(|| {
                jobs.par_iter().enumerate().for_each_with(tx, |tx, (i, job)| {
                    if INTERRUPTED.load(Ordering::SeqCst) {
                        return;
                    }
                    let (o, note) = run_job(job, engine, opts, big, device);
                    let _ = tx.send((i, o, note));
                });
            });
        });
        // Reorder: emit outcomes in job order as they complete.
        let mut pending = BTreeMap::new();
        let mut emit = |o: FileOutcome, note: Option<String>, report: &mut Option<Box<dyn Write>>| {
            progress.step(&o.input);
            note.inspect(|n| progress.note(n));
            record(o, report)
        };
        for (i, o, note) in rx {
            pending.insert(i, (o, note));
            while let Some((o, note)) = pending.remove(&next) {
                emit(o, note, &mut report)?;
                next += 1;
            }
        }
        // Gaps are jobs that SIGINT kept from starting; what finished after them still counts.
        for (_, (o, note)) in pending {
            emit(o, note, &mut report)?;
        }
        Ok(())
    })?;
    progress.finish();
    let interrupted = INTERRUPTED.load(Ordering::SeqCst) && outcomes.len() < plan.missing.len() + plan.jobs.len();
    Ok(BatchRun { outcomes, interrupted })
}
