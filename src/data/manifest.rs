//! The dataset manifest: `OUT/manifest.jsonl`, one training pair per line,
//! `{"split","input","gt","edge","oversmoothed","label"}` with paths relative to the
//! manifest's folder and `label` null when the source had none.
//!
//! Splits are by GT image, never by pair: every pair made from one GT lands in the same
//! split ([`split_for`]), so no test GT is seen in training under another texture. The
//! paper split its 15k pairs 12k/2.6k/0.4k at random (§4.2); ours defaults to
//! 80/15/5 % of the GTs, decided by a hash of the GT's id so that a resumed or grown
//! build never moves a GT between splits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::data::rng::{hash_str, mix64};
use crate::{Error, Result};

/// Which part of the dataset a pair belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training pairs.
    Train,
    /// Validation pairs.
    Val,
    /// Held-out test pairs.
    Test,
}

/// One manifest line: a textured input and the files that go with its GT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The split of this pair's GT.
    pub split: Split,
    /// The textured input (eq. 16).
    pub input: PathBuf,
    /// The smooth ground truth.
    pub gt: PathBuf,
    /// The binary edge label (0/255 PNG).
    pub edge: PathBuf,
    /// The over-smoothed negative.
    pub oversmoothed: PathBuf,
    /// The class-index label map (palette PNG, 255 = ignore), when the source had one.
    pub label: Option<PathBuf>,
}

impl Entry {
    /// The same entry with every path joined onto `root`.
    #[must_use]
    pub fn resolved(&self, root: &Path) -> Self {
        Self {
            split: self.split,
            input: root.join(&self.input),
            gt: root.join(&self.gt),
            edge: root.join(&self.edge),
            oversmoothed: root.join(&self.oversmoothed),
            label: self.label.as_ref().map(|l| root.join(l)),
        }
    }

    /// All files the entry names.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        [&self.input, &self.gt, &self.edge, &self.oversmoothed]
            .into_iter()
            .map(PathBuf::as_path)
            .chain(self.label.as_deref())
    }
}

/// Fractions of GTs that go to validation and test; the rest is training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitFractions {
    /// Validation share in [0, 1] (0.15).
    pub val: f32,
    /// Test share in [0, 1] (0.05).
    pub test: f32,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self { val: 0.15, test: 0.05 }
    }
}

/// The split of a GT, from a hash of its id and `seed` alone.
#[must_use]
pub fn split_for(gt_id: &str, fractions: SplitFractions, seed: u64) -> Split {
    let u = (mix64(hash_str(gt_id) ^ seed) >> 40) as f32 / (1u64 << 24) as f32;
    if u < fractions.test {
        Split::Test
    } else if u < fractions.test + fractions.val {
        Split::Val
    } else {
        Split::Train
    }
}

/// Reads a manifest; every path in the result is resolved against the manifest's
/// folder, so entries can be opened directly.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Dataset`] naming the line of
/// the first malformed entry.
pub fn load_manifest(path: &Path) -> Result<Vec<Entry>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let root = path.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry =
            serde_json::from_str(&line).map_err(|e| Error::json(path, format!("line {} is not a manifest entry", i + 1), e))?;
        out.push(entry.resolved(root));
    }
    Ok(out)
}

/// Writes entries (with relative paths) as JSON lines, atomically.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_manifest(path: &Path, entries: &[Entry]) -> Result<()> {
    let mut text = String::new();
    for e in entries {
        let line = serde_json::to_string(e)
            .map_err(|err| Error::json(path, "cannot serialise an entry", err))?;
        text.push_str(&line);
        text.push('\n');
    }
    crate::data::imageio::write_file(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(split: Split, label: Option<&str>) -> Entry {
        Entry {
            split,
            input: "input/a__brick.png".into(),
            gt: "gt/a.png".into(),
            edge: "edge/a.png".into(),
            oversmoothed: "oversmoothed/a.png".into(),
            label: label.map(PathBuf::from),
        }
    }

    #[test]
    fn lines_have_the_documented_keys() {
        let s = serde_json::to_string(&entry(Split::Val, None)).unwrap();
        assert_eq!(
            s,
            r#"{"split":"val","input":"input/a__brick.png","gt":"gt/a.png","edge":"edge/a.png","oversmoothed":"oversmoothed/a.png","label":null}"#
        );
    }

    #[test]
    fn round_trip_resolves_against_the_manifest_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.jsonl");
        let es = vec![entry(Split::Train, Some("label/a.png")), entry(Split::Test, None)];
        write_manifest(&path, &es).unwrap();
        let back = load_manifest(&path).unwrap();
        assert_eq!(back[0], es[0].resolved(dir.path()));
        assert_eq!(back[0].label.as_deref(), Some(dir.path().join("label/a.png").as_path()));
        assert_eq!(back[1].paths().count(), 4);
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, "\n{\"split\":\"nope\"}\n").unwrap();
        let err = load_manifest(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn splits_follow_the_fractions_and_are_stable() {
        let f = SplitFractions::default();
        let ids: Vec<String> = (0..2000).map(|i| format!("img_{i}")).collect();
        let count = |s: Split| ids.iter().filter(|id| split_for(id, f, 0) == s).count();
        let (tr, va, te) = (count(Split::Train), count(Split::Val), count(Split::Test));
        assert_eq!(tr + va + te, 2000);
        assert!((1500..1700).contains(&tr) && (230..370).contains(&va) && (60..140).contains(&te));
        assert_eq!(split_for("img_5", f, 0), split_for("img_5", f, 0));
    }
}
