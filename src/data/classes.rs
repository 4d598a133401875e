//! A dataset's `classes.json`: its segmentation classes (id → name), written by `dataset synth`
//! and read back wherever the class count matters (`train seg --classes`, and the check of the
//! DeepLab weights in `train`). Ids run from 0 (background) upwards; id 255 ([`IGNORE`]) is the
//! void label and is not a class.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::imageio::IGNORE;
use crate::{Error, Result};

/// The file name, inside a dataset directory.
pub const CLASSES_FILE: &str = "classes.json";

/// One row of `classes.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    /// The label value.
    pub id: u32,
    /// The class name (`background`, a clip-art folder name, `ignore`).
    pub name: String,
}

/// Writes `dir/classes.json`: background (0), `names` as 1.., then the void label.
///
/// # Errors
/// The write failure.
pub fn write_classes(dir: &Path, names: &[String]) -> Result<()> {
    let mut rows = vec![Class { id: 0, name: "background".into() }];
    rows.extend(names.iter().enumerate().map(|(i, n)| Class { id: i as u32 + 1, name: n.clone() }));
    rows.push(Class { id: u32::from(IGNORE), name: "ignore".into() });
    let path = dir.join(CLASSES_FILE);
    let text = serde_json::to_string(&rows).map_err(|e| Error::json(&path, "cannot serialise the classes", e))?;
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

/// The number of segmentation classes in `dir/classes.json` (background included, the void
/// label not), or `None` when the dataset has no such file.
///
/// # Errors
/// An unreadable or malformed file.
pub fn class_count(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join(CLASSES_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let rows: Vec<Class> =
        serde_json::from_slice(&bytes).map_err(|e| Error::json(&path, "not a list of classes", e))?;
    Ok(Some(rows.iter().filter(|c| c.id != u32::from(IGNORE)).map(|c| c.id as usize + 1).max().unwrap_or(0)))
}

/// The class count of each dataset in `dirs` that has a `classes.json`, with its path.
///
/// # Errors
/// As [`class_count`].
pub fn class_counts(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, usize)>> {
    let mut out = Vec::new();
    for dir in dirs {
        if let Some(n) = class_count(dir)? {
            out.push((dir.join(CLASSES_FILE), n));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_classes_count_background_but_not_the_void_label() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        assert_eq!(class_count(dir.path())?, None);
        write_classes(dir.path(), &["fruit".into(), "vehicle".into()])?;
        assert_eq!(class_count(dir.path())?, Some(3));
        std::fs::write(dir.path().join(CLASSES_FILE), "{").map_err(|e| Error::io("w", e))?;
        assert!(class_count(dir.path()).is_err());
        Ok(())
    }
}
