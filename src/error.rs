//! The library's error type: one variant per failure domain, each naming what failed.

use std::path::PathBuf;

/// Everything the csgis library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    // The cause is the `#[source]`, not part of the message: `{:#}` (anyhow at the CLI edge)
    // and [`report`] print `path: cause`.
    #[error("{}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be decoded or encoded.
    #[error("{}", path.display())]
    Image {
        /// The file concerned (`-` for stdin/stdout).
        path: PathBuf,
        /// The codec's error.
        #[source]
        source: image::ImageError,
    },
    /// A JSON file (manifest, record, run configuration or state) could not be read or written.
    #[error("{}: {what}", path.display())]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// What it should have held, or what was being written (`not a run state`, ...).
        what: String,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// An image is acceptable to the codec but not to csgis (size limits, empty).
    #[error("{}: {reason}", path.display())]
    BadImage {
        /// The file concerned.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A weights file is unreadable, has unknown, missing or extra keys, or wrong shapes.
    #[error("weights {}: {reason}", path.display())]
    Weights {
        /// The weights file (or `<embedded>`).
        path: PathBuf,
        /// What is wrong, naming the key where there is one.
        reason: String,
    },
    /// A PyTorch checkpoint could not be read.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A weights file's tensors are not those of the network it claims to be.
    #[error("weights {}", path.display())]
    WeightsMismatch {
        /// The weights file (or `<embedded>`).
        path: PathBuf,
        /// The first offending keys or metadata.
        #[source]
        source: crate::model::weights::Mismatch,
    },
    /// The training loss became NaN or infinite.
    #[error("the loss is {value} at step {step}: training stopped and the last good checkpoint was kept (try a lower --lr)")]
    Diverged {
        /// The step (counted from 0) whose loss was not finite.
        step: usize,
        /// The loss.
        value: f64,
    },
    /// CUDA was asked for, but this build has no CUDA support.
    #[error("this csgis was built without CUDA support: rebuild with `cargo build --release --features cuda`, or use --device cpu")]
    NoCuda,
    /// A GPU could not be opened.
    #[error("cannot open {device}")]
    DeviceOpen {
        /// The device as `--device` names it (`cuda:1`).
        device: String,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// The embedded model asked for was not built into this binary.
    #[error("this csgis has no embedded --model {flag} ({file} was absent when it was built): pass --weights PATH")]
    NoEmbeddedModel {
        /// The `--model` word (`lite`, `full`).
        flag: &'static str,
        /// The weights file it is built from.
        file: &'static str,
    },
    /// A word that names one of a fixed set of choices is not one of them.
    #[error("unknown {what} '{value}': expected {expected}")]
    UnknownChoice {
        /// What was being chosen (`device`, `dtype`).
        what: &'static str,
        /// The word given.
        value: String,
        /// The accepted words.
        expected: &'static str,
    },
    /// A parameter is out of its valid range.
    #[error("invalid {name} = {value}: expected {expected}")]
    InvalidParam {
        /// The parameter's name, as the CLI spells it.
        name: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A dataset file or manifest is malformed.
    #[error("dataset {}: {reason}", path.display())]
    Dataset {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two sources disagree on the number of segmentation classes (DeepLab weights, a
    /// dataset's `classes.json`, a flag).
    #[error("{first} has {first_classes} segmentation classes, but {second} has {second_classes}{hint}")]
    ClassCount {
        /// The first source, e.g. `DeepLab weights runs/seg/deeplab.safetensors`.
        first: String,
        /// Its class count.
        first_classes: usize,
        /// The second source, e.g. `dataset data/synth/classes.json`.
        second: String,
        /// Its class count.
        second_classes: usize,
        /// The way out, starting with `; ` (or empty).
        hint: &'static str,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// A training log could not be drawn.
    #[error("plot {}: {reason}", path.display())]
    Plot {
        /// The picture being drawn.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// An [`Error::Json`] for `path`: `what` it should have held (or what was being written).
    pub fn json(path: impl Into<PathBuf>, what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json { path: path.into(), what: what.into(), source }
    }
}

/// An error's message followed by each of its sources, `a: b: c` (what anyhow's `{:#}`
/// prints), for messages that are not printed through anyhow.
#[must_use]
pub fn report(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_cause_as_the_source() {
        let e = Error::io("a.png", std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        assert_eq!(e.to_string(), "a.png");
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(source.map(std::io::Error::kind), Some(std::io::ErrorKind::NotFound));
        assert_eq!(report(&e), "a.png: gone");
    }

    #[test]
    fn a_diverged_loss_is_its_own_variant_naming_the_step() {
        let msg = Error::Diverged { step: 3, value: f64::NAN }.to_string();
        assert!(msg.starts_with("the loss is NaN at step 3") && msg.contains("--lr"), "{msg}");
    }

    #[test]
    fn json_errors_say_what_was_expected_and_keep_the_parser_error() {
        let parse = serde_json::from_str::<u32>("{").expect_err("not a number");
        let e = Error::json("state.json", "not a run state", parse);
        assert!(report(&e).starts_with("state.json: not a run state: "), "{}", report(&e));
        assert!(std::error::Error::source(&e).is_some_and(|s| s.is::<serde_json::Error>()));
    }
}
