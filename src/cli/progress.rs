//! Progress and notes on stderr: a bar only when stderr is a terminal and `-q` is absent;
//! notes and errors go around the bar so they never tear it.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The batch's progress bar and message sink.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
    quiet: bool,
}

impl Progress {
    /// A bar over `len` items.
    #[must_use]
    pub fn new(len: u64, quiet: bool) -> Self {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        Self { bar, quiet }
    }

    /// Advances by one item, showing `name`.
    pub fn step(&self, name: &str) {
        self.bar.set_message(name.to_string());
        self.bar.inc(1);
    }

    /// An error line (`csgis: ...`), always shown.
    pub fn error(&self, msg: &str) {
        self.bar.suspend(|| eprintln!("csgis: {msg}"));
    }

    /// A note, hidden by `-q`.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("csgis: note: {msg}"));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
