//! The library's error type: one variant per failure domain, each naming what failed.

use std::path::PathBuf;

/// Everything the csgis library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    // The cause is part of the message (not a `#[source]`), so that `{:#}` chains at the CLI
    // edge do not print it twice.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// An image could not be decoded or encoded.
    #[error("{}: {cause}", path.display())]
    Image {
        /// The file concerned (`-` for stdin/stdout).
        path: PathBuf,
        /// The codec's error.
        cause: image::ImageError,
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
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Self::Io { path: path.into(), cause }
    }
}
