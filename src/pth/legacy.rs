//! The legacy (pre-1.6, non-zip) checkpoint format of `torch.save`.
//!
//! Reference: PyTorch 1.3 `torch/serialization.py` (`_save` / `_legacy_load`). The file is a
//! sequence of five records:
//! 1. a pickled magic number, `0x1950a86a20f9469cfc6c`;
//! 2. a pickled protocol version, `1001`;
//! 3. a pickled `sys_info` dict (`little_endian`, `type_sizes`, …);
//! 4. the object itself, pickled with persistent ids
//!    `('storage', storage_type, root_key, location, numel, view_metadata)`;
//! 5. a pickled list of storage keys, then for each key in that order an 8-byte little-endian
//!    element count followed by the storage's raw bytes.
//!
//! The element size of each record comes from the storage type named in the object's pickle,
//! so the object must be unpickled before the records can be walked.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use super::pickle::{unpickle, Reason, Value};
use super::tensor::{parse_persistent_id, StorageDtype, StorageRef};
use super::StorageSource;

/// `torch.serialization.MAGIC_NUMBER`, as the little-endian bytes `LONG1` stores.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// `torch.serialization.PROTOCOL_VERSION`.
const PROTOCOL_VERSION: i64 = 1001;

/// The storages of a legacy checkpoint: byte ranges into the file.
pub(crate) struct LegacyStorages {
    bytes: Vec<u8>,
    ranges: HashMap<String, Range<usize>>,
}

/// Parses a legacy checkpoint held in memory, returning the unpickled object and its storages.
pub(crate) fn open_legacy(bytes: Vec<u8>) -> Result<(Value, LegacyStorages), Reason> {
    let mut pos = 0;
    let mut next = |what: &str| {
        let rest = &bytes[pos..];
        let u = unpickle(rest).map_err(|e| format!("legacy {what}: {e}"))?;
        pos += u.consumed;
        Ok::<_, Reason>(u)
    };
    if next("magic number")?.value != Value::BigInt(MAGIC.into()) {
        return Err("not a PyTorch checkpoint (wrong magic number)".into());
    }
    match next("protocol version")?.value {
        Value::Int(PROTOCOL_VERSION) => {}
        other => return Err(format!("unsupported legacy protocol version {other:?}")),
    }
    let sys_info = next("sys_info")?.value;
    if sys_info.dict_get("little_endian") == Some(&Value::Bool(false)) {
        return Err("big-endian checkpoints are not supported".into());
    }
    let main = next("object pickle")?;
    let mut dtypes: HashMap<String, StorageDtype> = HashMap::new();
    for pid in &main.persistent_ids {
        let StorageRef { key, dtype, .. } = parse_persistent_id(pid)?;
        if *dtypes.entry(key.clone()).or_insert(dtype) != dtype {
            return Err(format!("storage {key} is referenced with two dtypes"));
        }
    }
    let keys = next("storage key list")?.value;
    let keys = keys.as_items().ok_or("legacy storage key list is not a list")?;
    let mut ranges = HashMap::with_capacity(keys.len());
    for key in keys {
        let key = key.as_str().ok_or("legacy storage key is not a string")?;
        let dtype = dtypes.get(key).ok_or_else(|| format!("storage {key} is not referenced by the pickle"))?;
        let header = bytes.get(pos..pos + 8).ok_or_else(|| format!("file truncated before storage {key}"))?;
        let mut count = [0; 8];
        count.copy_from_slice(header);
        let count = u64::from_le_bytes(count);
        let start = pos + 8;
        let end = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(dtype.size()))
            .and_then(|n| n.checked_add(start))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format!("file truncated inside storage {key} ({count} {} elements)", dtype.name()))?;
        ranges.insert(key.to_owned(), start..end);
        pos = end;
    }
    Ok((main.value, LegacyStorages { bytes, ranges }))
}

impl StorageSource for LegacyStorages {
    fn storage(&mut self, storage: &StorageRef) -> Result<Cow<'_, [u8]>, Reason> {
        let range = self.ranges.get(&storage.key).ok_or_else(|| format!("storage {} has no data", storage.key))?;
        Ok(Cow::Borrowed(&self.bytes[range.clone()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal legacy file: one float32 storage of 3 elements, pickled object = the pid itself.
    fn tiny(count: u64, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0x80, 0x02, 0x8a, 0x0a];
        b.extend(MAGIC);
        b.extend(b".\x80\x02M\xe9\x03.\x80\x02}.");
        b.extend(
            b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x03NtQ.",
        );
        b.extend(b"\x80\x02]X\x01\x00\x00\x000a.");
        b.extend(count.to_le_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn walks_storage_records() {
        let (value, mut s) = open_legacy(tiny(3, &[1; 12])).unwrap();
        assert!(matches!(value, Value::PersId(_)));
        let r = StorageRef { key: "0".into(), dtype: StorageDtype::F32, numel: 3, view: None };
        assert_eq!(s.storage(&r).unwrap().len(), 12);
    }

    #[test]
    fn truncation_and_bad_magic_are_errors() {
        let e = open_legacy(tiny(3, &[1; 11])).err().unwrap();
        assert!(e.contains("truncated inside storage 0"), "{e}");
        let e = open_legacy(tiny(u64::MAX, &[])).err().unwrap();
        assert!(e.contains("truncated"), "{e}");
        let mut bad = tiny(3, &[1; 12]);
        bad[5] ^= 1;
        assert!(open_legacy(bad).err().unwrap().contains("magic"));
    }
}
