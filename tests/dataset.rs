//! End-to-end checks of `dataset build` and `dataset synth` on the small images in
//! `tests/data/images` (public domain / CC0, see LICENSES.md there).
//!
//! The smoothing candidates are Gaussian blurs: these tests check the plumbing
//! (screening, files, manifest, splits, labels, resuming), not the operators.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use csgis::data::build::{build, load_textures, sources_from_dirs};
use csgis::data::gt::BuildConfig;
use csgis::data::candidates::gaussian_candidates;
use csgis::data::imageio::{load_label, load_rgb, save_label, Gray8, IGNORE};
use csgis::data::manifest::{load_manifest, Split};
use csgis::data::oversmooth::OversmoothParams;
use csgis::data::screen::ScreenParams;
use csgis::data::synth::{synth, ClipArt, SynthConfig};

fn data(sub: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/images").join(sub);
    assert!(p.is_dir(), "test images missing: expected {}", p.display());
    p
}

/// Lenient screening and a small negative window keep the test about plumbing and fast.
fn test_config() -> BuildConfig {
    BuildConfig {
        max_side: 200,
        screen: ScreenParams { smooth_threshold: 1.0, max_residue: 1.0, min_structure_ssim: 0.0, ..ScreenParams::default() },
        oversmooth: OversmoothParams { diameter: 9, ..OversmoothParams::default() },
        splits: csgis::data::manifest::SplitFractions { val: 0.34, test: 0.33 },
        ..BuildConfig::default()
    }
}

#[test]
fn build_writes_a_complete_manifest_and_resumes() {
    let out = tempfile::tempdir().unwrap();
    let labels = tempfile::tempdir().unwrap();
    // A VOC-style label map for one photo (chelsea is 256 × 170): left half class 8, rim ignored.
    let label = Gray8 { h: 170, w: 256, data: (0..170 * 256).map(|i| match i % 256 { 0..=120 => 8, 121..=124 => IGNORE, _ => 0 }).collect() };
    save_label(&labels.path().join("structure_chelsea.png"), &label).unwrap();

    let sources = sources_from_dirs(&data("photos"), Some(labels.path())).unwrap();
    assert_eq!(sources.len(), 3);
    let textures = load_textures(&data("textures"), 256).unwrap();
    let cfg = test_config();
    // First with one texture; the second run below adds the other to the finished GTs.
    let report = build(out.path(), &sources, &textures[..1], &gaussian_candidates(&[1.0, 2.0]), &cfg, &|_| ()).unwrap();
    assert_eq!((report.kept, report.dropped, report.pairs), (3, 0, 3));
    let report = build(out.path(), &sources, &textures, &gaussian_candidates(&[1.0, 2.0]), &cfg, &|_| ()).unwrap();
    assert_eq!((report.kept, report.resumed, report.pairs), (3, 3, 6));

    let entries = load_manifest(&out.path().join("manifest.jsonl")).unwrap();
    assert_eq!(entries.len(), 6);
    let mut split_of: HashMap<PathBuf, Split> = HashMap::new();
    for e in &entries {
        for p in e.paths() {
            assert!(p.is_file(), "{} missing", p.display());
        }
        let prev = split_of.insert(e.gt.clone(), e.split);
        assert!(prev.is_none_or(|s| s == e.split), "{} in two splits", e.gt.display());
        let gt = load_rgb(&e.gt).unwrap();
        assert!(gt.h.max(gt.w) <= 200);
    }
    let labelled: Vec<_> = entries.iter().filter_map(|e| e.label.as_ref()).collect();
    assert_eq!(labelled.len(), 2, "one labelled GT × two textures");
    let l = load_label(labelled[0]).unwrap();
    let classes: HashSet<u8> = l.data.iter().copied().collect();
    assert!(classes.is_subset(&HashSet::from([0, 8, IGNORE])) && classes.contains(&8));

    // A rerun skips every finished GT and rewrites the same manifest.
    let again = build(out.path(), &sources, &textures, &gaussian_candidates(&[1.0, 2.0]), &cfg, &|_| ()).unwrap();
    assert_eq!((again.resumed, again.pairs), (3, 6));
}

#[test]
fn build_drops_images_no_candidate_passes_and_says_why() {
    let out = tempfile::tempdir().unwrap();
    let sources = sources_from_dirs(&data("photos"), None).unwrap();
    let textures = load_textures(&data("textures"), 256).unwrap();
    let cfg = BuildConfig { screen: ScreenParams { min_structure_ssim: 1.5, ..test_config().screen }, ..test_config() };
    let report = build(out.path(), &sources[..1], &textures, &gaussian_candidates(&[1.0]), &cfg, &|_| ()).unwrap();
    assert_eq!((report.kept, report.dropped, report.pairs), (0, 1, 0));
    let rec = std::fs::read_to_string(out.path().join("records").join(format!("{}.json", sources[0].id))).unwrap();
    assert!(rec.contains("no candidate passed"), "{rec}");
    assert_eq!(std::fs::read_to_string(out.path().join("manifest.jsonl")).unwrap(), "");
}

#[test]
fn synth_labels_match_the_composited_objects() {
    let out = tempfile::tempdir().unwrap();
    let art = ClipArt::scan(&data("clipart")).unwrap();
    assert_eq!(art.classes, vec!["food".to_string(), "transportation".to_string()]);
    let photos = csgis::data::build::list_images(&data("photos")).unwrap();
    let textures = load_textures(&data("textures"), 256).unwrap();
    let cfg = SynthConfig { count: 4, size: (128, 160), objects: (1, 1), build: test_config(), ..SynthConfig::default() };
    let report = synth(out.path(), &photos, &art, &textures, &gaussian_candidates(&[1.5]), &cfg, &|_| ()).unwrap();
    assert_eq!((report.kept, report.pairs), (4, 8));
    for k in 0..4 {
        let id = format!("synth_{k:05}");
        let rec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join(format!("records/{id}.json"))).unwrap()).unwrap();
        let source = rec["source"].as_str().unwrap();
        let placed: u8 = if source.contains("clipart/food/") { 1 } else { 2 };
        let label = load_label(&out.path().join(format!("label/{id}.png"))).unwrap();
        assert_eq!((label.h, label.w), (128, 160));
        let classes: HashSet<u8> = label.data.iter().copied().filter(|&c| c != 0 && c != IGNORE).collect();
        assert_eq!(classes, HashSet::from([placed]), "{id}: {source}");
        // The object covers a sizeable part of the image (30–70 % of the short side).
        let n = label.data.iter().filter(|&&c| c == placed).count();
        assert!(n > 100, "{id}: only {n} labelled pixels");
    }
    let classes = std::fs::read_to_string(out.path().join("classes.json")).unwrap();
    assert!(classes.contains("\"transportation\""));
}
