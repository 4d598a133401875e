//! Per-file outcomes, the `--report` JSON lines, and the exit status they add up to.

use serde::Serialize;

/// How one input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Written.
    Ok,
    /// Left alone (`--skip-existing`).
    Skipped,
    /// Failed; nothing was written for it.
    Error,
}

/// One line of `--report`.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    /// The input (`-` for stdin).
    pub input: String,
    /// The output (`-` for stdout), when one was planned.
    pub output: Option<String>,
    /// What happened.
    pub status: FileStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Image width, once decoded.
    pub width: Option<usize>,
    /// Image height, once decoded.
    pub height: Option<usize>,
    /// Wall time spent on this file.
    pub milliseconds: u64,
    /// The device that ran it (`cpu`, `cuda:0`).
    pub device: String,
}

/// The process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every input succeeded or was skipped.
    Success,
    /// At least one input failed; the rest were done.
    SomeFailed,
    /// Usage or set-up error found before any work.
    Setup,
    /// SIGINT stopped the batch (exit status 128 + 2).
    Interrupted,
}

impl Status {
    /// The exit code: 0, 1, 2 or 130.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::SomeFailed => 1,
            Self::Setup => 2,
            Self::Interrupted => 130,
        }
    }

    /// The status of a batch with these outcomes.
    #[must_use]
    pub fn of(outcomes: &[FileOutcome]) -> Self {
        if outcomes.iter().any(|o| o.status == FileStatus::Error) {
            Self::SomeFailed
        } else {
            Self::Success
        }
    }
}

/// A short summary line: counts by status.
#[must_use]
pub fn summary(outcomes: &[FileOutcome]) -> String {
    let count = |s| outcomes.iter().filter(|o| o.status == s).count();
    format!(
        "{} written, {} skipped, {} failed",
        count(FileStatus::Ok),
        count(FileStatus::Skipped),
        count(FileStatus::Error)
    )
}
