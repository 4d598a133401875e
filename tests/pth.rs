//! PyTorch checkpoint reading and `.pth` → safetensors conversion, end to end.
//!
//! Fixtures: `tests/data/jess-w8-n1/` (copied from `../shared/fixtures/jess-w8-n1`) holds the
//! same state dict as `checkpoint.pth` (zip format), `checkpoint-legacy.pth` (pre-1.6 pickle
//! format) and `weights.safetensors` (the expected float32 tensors, 218 of them; the
//! checkpoints add 35 `num_batches_tracked` counters, which are dropped). Crafted checkpoints
//! built here cover views, other dtypes and a top-level state dict.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use csgis::pth::{convert_checkpoint, read_state_dict, CheckpointFormat, RawTensor};
use csgis::Error;
use proptest::prelude::*;
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jess-w8-n1").join(name);
    assert!(p.exists(), "missing test fixture {}", p.display());
    p
}

/// Asserts that `tensors` are exactly those of a safetensors file: same keys, shapes and bits.
fn assert_same_as(tensors: &[(String, RawTensor)], expected: &Path) {
    let bytes = std::fs::read(expected).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    let got: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(got, names, "keys differ from {}", expected.display());
    for (name, t) in tensors {
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
        assert_eq!(t.shape, view.shape(), "{name}");
        let want: Vec<u32> =
            view.data().chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let got: Vec<u32> = t.data.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "{name}: values differ");
    }
}

#[test]
fn zip_checkpoint_matches_reference_weights() {
    let tensors = read_state_dict(&fixture("checkpoint.pth"), Some("net")).unwrap();
    assert_eq!(tensors.len(), 218);
    assert_same_as(&tensors, &fixture("weights.safetensors"));
}

#[test]
fn legacy_checkpoint_matches_reference_weights() {
    let tensors = read_state_dict(&fixture("checkpoint-legacy.pth"), Some("net")).unwrap();
    assert_same_as(&tensors, &fixture("weights.safetensors"));
}

fn convert_and_check(expected: &Path, format: CheckpointFormat, input: &Path) {
    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("converted.safetensors");
    let summary = convert_checkpoint(input, &output).unwrap();
    assert_eq!(summary.format, format);
    assert_eq!(summary.key.as_deref(), Some("net"));
    let bytes = std::fs::read(&output).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(summary.tensors, st.len());
    assert!(summary.dropped.iter().all(|k| k.ends_with("num_batches_tracked")));
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["format"], format.as_str());
    assert_eq!(meta["tensors"], summary.tensors.to_string());
    assert_eq!(meta["source"], input.file_name().unwrap().to_string_lossy());
    assert_eq!(meta["state_dict_key"], "net");
    let mut reread: Vec<(String, RawTensor)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| {
            let data = v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (k, RawTensor { shape: v.shape().to_vec(), data })
        })
        .collect();
    reread.sort_by(|a, b| a.0.cmp(&b.0));
    assert_same_as(&reread, expected);
    let leftovers = std::fs::read_dir(out.path()).unwrap().count();
    assert_eq!(leftovers, 1, "temporary files left beside {}", output.display());
}

#[test]
fn converts_both_formats_to_the_reference_weights() {
    let expected = fixture("weights.safetensors");
    convert_and_check(&expected, CheckpointFormat::Zip, &fixture("checkpoint.pth"));
    convert_and_check(&expected, CheckpointFormat::Legacy, &fixture("checkpoint-legacy.pth"));
}

/// The C = 64 checkpoints (5.7 MB each) are not committed; only their weights are. The test
/// reads them from the repository's `tests/data/jess-n2` and fails, saying so, when they are
/// absent: copy `checkpoint.pth` and `checkpoint-legacy.pth` there from the shared fixtures.
#[test]
#[ignore = "needs tests/data/jess-n2/checkpoint{,-legacy}.pth (not committed); run with --ignored"]
fn jess_n2_checkpoints_match_reference_weights() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jess-n2");
    let out = tempfile::tempdir().unwrap();
    for (name, format) in
        [("checkpoint.pth", CheckpointFormat::Zip), ("checkpoint-legacy.pth", CheckpointFormat::Legacy)]
    {
        let input = dir.join(name);
        assert!(input.exists(), "missing fixture {} (copy it from the shared jess-n2 fixtures)", input.display());
        let start = std::time::Instant::now();
        let summary = convert_checkpoint(&input, &out.path().join("w.safetensors")).unwrap();
        eprintln!("jess-n2 {name}: converted {} tensors in {:.3} s", summary.tensors, start.elapsed().as_secs_f64());
        assert_eq!(summary.format, format);
        assert_same_as(&read_state_dict(&input, Some("net")).unwrap(), &dir.join("weights.safetensors"));
    }
}

fn checkpoint_error(path: &Path) -> String {
    match read_state_dict(path, Some("net")) {
        Err(e @ Error::Checkpoint { .. }) => e.to_string(),
        other => panic!("{}: expected a checkpoint error, got {other:?}", path.display()),
    }
}

#[test]
fn rejects_non_checkpoints_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.pth", b"", "empty file"),
        ("text.pth", b"not a checkpoint\n", "unknown format"),
        ("weights.pth", &std::fs::read(fixture("weights.safetensors")).unwrap(), "already a safetensors"),
    ];
    for (name, bytes, reason) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = checkpoint_error(&path);
        assert!(e.contains(reason), "{name}: {e}");
    }
    let zip = dir.path().join("nopkl.pth");
    std::fs::write(&zip, zip_of(&[("archive/data/0", &[0; 4])])).unwrap();
    assert!(checkpoint_error(&zip).contains("no data.pkl"));
    let missing = read_state_dict(&dir.path().join("absent.pth"), None).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
}

#[test]
fn missing_key_names_the_top_level_keys() {
    let e = read_state_dict(&fixture("checkpoint.pth"), Some("model")).unwrap_err().to_string();
    assert!(e.contains("no key 'model'") && e.contains("net, now_epoch, opt"), "{e}");
    let e = read_state_dict(&fixture("checkpoint-legacy.pth"), None).unwrap_err().to_string();
    assert!(e.contains("entry 'net'"), "{e}");
}

#[test]
fn truncated_checkpoints_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["checkpoint.pth", "checkpoint-legacy.pth"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in [1, 10, 100, 1000, bytes.len() / 2, bytes.len() - 100, bytes.len() - 1] {
            let path = dir.path().join(format!("cut-{cut}-{name}"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            checkpoint_error(&path);
        }
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A tensor for [`crafted_checkpoint`]: name, storage class, storage key, storage numel,
/// offset, size, stride.
type Entry<'a> = (&'a str, &'a str, &'a str, i32, i32, &'a [i32], &'a [i32]);

/// Pickles a dict of `_rebuild_tensor_v2` calls as torch does (protocol 2, no memo).
fn crafted_pickle(entries: &[Entry], under_net: bool) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, text: &str) {
        out.push(b'X');
        out.extend((text.len() as u32).to_le_bytes());
        out.extend(text.as_bytes());
    }
    fn i(out: &mut Vec<u8>, v: i32) {
        out.push(b'J');
        out.extend(v.to_le_bytes());
    }
    let mut p = b"\x80\x02".to_vec();
    if under_net {
        p.extend(b"}(");
        s(&mut p, "net");
    }
    p.extend(b"ccollections\nOrderedDict\n)R(");
    for &(name, class, key, numel, offset, size, stride) in entries {
        s(&mut p, name);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        s(&mut p, "storage");
        p.extend(format!("ctorch\n{class}\n").as_bytes());
        s(&mut p, key);
        s(&mut p, "cpu");
        i(&mut p, numel);
        p.extend(b"tQ");
        i(&mut p, offset);
        for dims in [size, stride] {
            p.push(b'(');
            dims.iter().for_each(|&d| i(&mut p, d));
            p.push(b't');
        }
        p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    p.push(b'u');
    if under_net {
        s(&mut p, "now_epoch");
        p.extend(b"K\x07u");
    }
    p.push(b'.');
    p
}

#[test]
fn views_dtypes_and_top_level_state_dicts_convert() {
    let doubles: Vec<u8> = (0..6).flat_map(|v| f64::from(v).to_le_bytes()).collect();
    let halves: Vec<u8> = [0.5f32, 1.5, -3.0, 9.0].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
    let entries: [Entry; 3] = [
        ("t.weight", "DoubleStorage", "0", 6, 0, &[3, 2], &[1, 3]), // transpose of a 2×3
        ("h.bias", "HalfStorage", "1", 4, 1, &[2], &[2]),           // offset + stride 2
        ("bn.num_batches_tracked", "LongStorage", "2", 1, 0, &[], &[]),
    ];
    let pkl = crafted_pickle(&entries, false);
    let zip = zip_of(&[("c/data.pkl", &pkl), ("c/data/0", &doubles), ("c/data/1", &halves), ("c/data/2", &[0; 8])]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("c.pth");
    std::fs::write(&input, zip).unwrap();
    let tensors = read_state_dict(&input, None).unwrap();
    assert_eq!(tensors[0], ("h.bias".to_owned(), RawTensor { shape: vec![2], data: vec![1.5, 9.0] }));
    assert_eq!(tensors[1].1, RawTensor { shape: vec![3, 2], data: vec![0., 3., 1., 4., 2., 5.] });
    let summary = convert_checkpoint(&input, &dir.path().join("c.safetensors")).unwrap();
    assert_eq!((summary.key, summary.tensors), (None, 2));
    assert_eq!(summary.dropped, vec!["bn.num_batches_tracked".to_owned()]);

    let wrapped = crafted_pickle(&entries[..1], true);
    std::fs::write(&input, zip_of(&[("c/data.pkl", &wrapped), ("c/data/0", &doubles)])).unwrap();
    assert_eq!(convert_checkpoint(&input, &dir.path().join("c.safetensors")).unwrap().key.as_deref(), Some("net"));
}

#[test]
fn unsupported_dtypes_and_non_state_dicts_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("i.pth");
    let pkl = crafted_pickle(&[("counts", "IntStorage", "0", 2, 0, &[2], &[1])], false);
    std::fs::write(&input, zip_of(&[("c/data.pkl", &pkl), ("c/data/0", &[0; 8])])).unwrap();
    assert!(checkpoint_error(&input).contains("no key 'net'"));
    let e = convert_checkpoint(&input, &dir.path().join("o.safetensors")).unwrap_err().to_string();
    assert!(e.contains("entry 'counts'") && e.contains("int32"), "{e}");
    std::fs::write(&input, zip_of(&[("c/data.pkl", b"\x80\x02}(X\x01\x00\x00\x00aK\x01u.")])).unwrap();
    let e = convert_checkpoint(&input, &dir.path().join("o.safetensors")).unwrap_err().to_string();
    assert!(e.contains("no 'net' key") && e.contains("entry 'a': a int, not a tensor"), "{e}");
    assert!(!dir.path().join("o.safetensors").exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any prefix of a checkpoint is an error, and corrupting bytes never panics.
    #[test]
    fn truncated_or_corrupted_checkpoints_never_panic(
        legacy in any::<bool>(),
        cut in 0.0f64..1.0,
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..8),
    ) {
        let name = if legacy { "checkpoint-legacy.pth" } else { "checkpoint.pth" };
        let bytes = std::fs::read(fixture(name)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pth");
        let len = ((bytes.len() as f64) * cut) as usize;
        std::fs::write(&path, &bytes[..len]).unwrap();
        let result = read_state_dict(&path, Some("net"));
        prop_assert!(matches!(result, Err(Error::Checkpoint { .. })), "{:?}", result);
        let mut corrupted = bytes.clone();
        for (at, byte) in flips {
            let i = ((corrupted.len() as f64) * at) as usize;
            corrupted[i] ^= byte;
        }
        std::fs::write(&path, &corrupted).unwrap();
        let _ = read_state_dict(&path, Some("net"));
    }

    /// Random bytes (with a plausible first byte) are errors, never panics.
    #[test]
    fn random_bytes_are_errors(first in prop::sample::select(vec![0x80u8, b'P', 0, b'{']), rest in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.pth");
        let mut bytes = vec![first];
        bytes.extend(rest);
        std::fs::write(&path, bytes).unwrap();
        let result = read_state_dict(&path, Some("net"));
        prop_assert!(matches!(result, Err(Error::Checkpoint { .. })), "{:?}", result);
    }
}
