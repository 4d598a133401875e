//! Golden values from scikit-image 0.26 (`scripts/skimage_reference.py`, which also wrote the
//! 16-bit PNG pairs in `tests/data/metrics/`). Every figure must agree to 1e-4.

use std::path::{Path, PathBuf};

use super::*;

const TOL: f64 = 1e-4;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/metrics")
}

/// A 16-bit RGB PNG as planes of `value / 65535`.
fn load16(name: &str) -> Planes {
    let path = data_dir().join(name);
    let img = image::open(&path)
        .unwrap_or_else(|e| {
            panic!(
                "fixture {} missing or unreadable ({e}); run scripts/skimage_reference.py",
                path.display()
            )
        })
        .to_rgb16();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Planes::from_fn(3, h, w, |c, y, x| f32::from(img.get_pixel(x as u32, y as u32)[c]) / 65535.0)
}

#[derive(serde::Deserialize)]
struct Pair {
    name: String,
    a: String,
    b: String,
    psnr: f64,
    ssim_gaussian: f64,
    ssim_default: f64,
    ssim_csgis: f64,
}

#[derive(serde::Deserialize)]
struct Reference {
    pairs: Vec<Pair>,
}

fn reference() -> Reference {
    let path = data_dir().join("skimage_reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{} missing ({e}); run scripts/skimage_reference.py", path.display())
    });
    serde_json::from_str(&text).expect("skimage_reference.json is malformed")
}

#[test]
fn all_metrics_match_scikit_image() {
    let pairs = reference().pairs;
    assert_eq!(pairs.len(), 3);
    for p in pairs {
        let (a, b) = (load16(&p.a), load16(&p.b));
        let got = [
            ("psnr", psnr(&a, &b), p.psnr),
            // Interior of the CSGIS map == skimage's Gaussian variant (same window, 5 px cropped).
            ("ssim_gaussian", mean_ssim(&a, &b, &Window::csgis(5)), p.ssim_gaussian),
            ("ssim_default", ssim_with(&a, &b, SsimConvention::Skimage), p.ssim_default),
            ("ssim_csgis", ssim(&a, &b), p.ssim_csgis),
        ];
        for (what, ours, theirs) in got {
            println!(
                "{:34} {what:14} ours {ours:.10}  skimage {theirs:.10}  diff {:.1e}",
                p.name,
                ours - theirs
            );
            assert!(
                (ours - theirs).abs() < TOL,
                "{}: {what} = {ours}, scikit-image {theirs}",
                p.name
            );
        }
    }
}
