//! The zip checkpoint format of `torch.save` (PyTorch ≥ 1.6).
//!
//! Reference: PyTorch `torch/serialization.py` (`_save`, `_load`) and
//! `caffe2/serialize/inline_container.cc`. The archive holds `<name>/data.pkl` (the object,
//! pickled with persistent ids `('storage', storage_type, key, location, numel)`),
//! `<name>/data/<key>` (each storage's raw little-endian bytes), and `<name>/byteorder`
//! (absent in files older than PyTorch 1.10, which are little-endian). `<name>` is the file
//! stem when saved, so it is found rather than assumed to be `archive`.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use zip::ZipArchive;

use super::pickle::{unpickle, Reason, Value};
use super::tensor::StorageRef;
use super::StorageSource;

/// An opened zip checkpoint: its storages, read on demand.
pub(crate) struct ZipStorages {
    archive: ZipArchive<Cursor<Vec<u8>>>,
    /// `<name>/`, the directory holding `data.pkl`.
    prefix: String,
}

/// Opens a zip checkpoint held in memory, returning the unpickled object and its storages.
pub(crate) fn open_zip(bytes: Vec<u8>) -> Result<(Value, ZipStorages), Reason> {
    let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a readable zip archive: {e}"))?;
    let pkl = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.as_ref() == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| n.len())
        .map(Cow::into_owned)
        .ok_or("zip archive has no data.pkl: not a torch.save checkpoint")?;
    let prefix = pkl[..pkl.len() - "data.pkl".len()].to_owned();
    let mut storages = ZipStorages { archive, prefix };
    if let Some(order) = storages.read_optional("byteorder")? {
        if order.trim_ascii() != b"little" {
            return Err(format!("byte order {:?} is not supported", String::from_utf8_lossy(&order)));
        }
    }
    let pickle = storages.read_entry(&pkl)?;
    let value = unpickle(&pickle).map_err(|e| format!("{pkl}: {e}"))?.value;
    Ok((value, storages))
}

impl ZipStorages {
    fn read_entry(&mut self, name: &str) -> Result<Vec<u8>, Reason> {
        let mut file = self.archive.by_name(name).map_err(|e| format!("zip entry {name}: {e}"))?;
        // The declared size is only a hint; cap the pre-allocation so a lying header is harmless.
        let hint = usize::try_from(file.size()).unwrap_or(usize::MAX).min(1 << 26);
        let mut out = Vec::with_capacity(hint);
        file.read_to_end(&mut out).map_err(|e| format!("zip entry {name}: {e}"))?;
        Ok(out)
    }

    fn read_optional(&mut self, name: &str) -> Result<Option<Vec<u8>>, Reason> {
        let full = format!("{}{name}", self.prefix);
        if self.archive.index_for_name(&full).is_none() {
            return Ok(None);
        }
        self.read_entry(&full).map(Some)
    }
}

impl StorageSource for ZipStorages {
    fn storage(&mut self, storage: &StorageRef) -> Result<Cow<'_, [u8]>, Reason> {
        let name = format!("{}data/{}", self.prefix, storage.key);
        self.read_entry(&name).map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn finds_data_pkl_under_any_archive_name() {
        let bytes = zip_of(&[("my ckpt/data.pkl", b"\x80\x02K\x07."), ("my ckpt/byteorder", b"little")]);
        let (value, storages) = open_zip(bytes).unwrap();
        assert_eq!(value, Value::Int(7));
        assert_eq!(storages.prefix, "my ckpt/");
    }

    #[test]
    fn refuses_archives_without_data_pkl_or_big_endian() {
        let e = open_zip(zip_of(&[("archive/other.txt", b"x")])).err().unwrap();
        assert!(e.contains("no data.pkl"), "{e}");
        let e = open_zip(zip_of(&[("a/data.pkl", b"K\x01."), ("a/byteorder", b"big")])).err().unwrap();
        assert!(e.contains("byte order"), "{e}");
    }
}
