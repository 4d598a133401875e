//! The classical operators against OpenCV (opencv-contrib-python 5.0.0) on small crops.
//!
//! Fixtures: `tests/data/ops/<crop>__opencv.safetensors`, written by
//! `scripts/opencv_reference.py` (which documents every OpenCV call and parameter). Each
//! holds the 8-bit crop (`input`, planar U8) and OpenCV's float32 outputs stored as F16.
//! The comparison is PSNR (data range 1) away from a border of 2·radius pixels, where
//! the border rules could legitimately differ; L0 and FGS are global (FGS with OpenCV's own
//! line ends) and compared everywhere.
//!
//! Run `cargo test --test ops_opencv -- --nocapture` to see the figures.

use std::collections::BTreeMap;
use std::path::PathBuf;

use csgis::metrics::psnr;
use csgis::ops::{
    bilateral_filter, fgs_smooth, guided_filter, l0_smooth, rolling_guidance, BilateralParams, FgsParams, GuidedParams,
    L0Boundary, L0Params, Planes, RgfParams, RgfStart,
};
use safetensors::{Dtype, SafeTensors};

const CROPS: [&str; 3] = ["astronaut_96x80", "chelsea_96x80", "brick_gray_96x80"];

/// One crop: the input and OpenCV's outputs by operator name.
struct Fixture {
    name: &'static str,
    input: Planes,
    outputs: BTreeMap<String, Planes>,
}

fn load(name: &'static str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/ops/{name}__opencv.safetensors"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let mut input = None;
    let mut outputs = BTreeMap::new();
    for (key, view) in st.tensors() {
        let shape = view.shape();
        let (c, h, w) = (shape[0], shape[1], shape[2]);
        let data: Vec<f32> = match view.dtype() {
            // The crop is 8-bit; OpenCV ran on u8 / 255 in float32, which this reproduces bit for bit.
            Dtype::U8 => view.data().iter().map(|&v| f32::from(v) / 255.0).collect(),
            Dtype::F16 => view.data().chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => panic!("{name}/{key}: unexpected dtype {other:?}"),
        };
        let planes = Planes::from_vec(c, h, w, data);
        if key == "input" {
            input = Some(planes);
        } else {
            outputs.insert(key, planes);
        }
    }
    Fixture { name, input: input.expect("fixture has an input"), outputs }
}

/// The image without a `b`-pixel frame.
fn interior(p: &Planes, b: usize) -> Planes {
    Planes::from_fn(p.c, p.h - 2 * b, p.w - 2 * b, |c, y, x| p.get(c, y + b, x + b))
}

/// PSNR of `op` against OpenCV's `key` output on every crop; asserts `≥ min_db`.
fn check(key: &str, border: usize, min_db: f64, op: impl Fn(&Planes) -> Planes) {
    for name in CROPS {
        let fx = load(name);
        let want = fx.outputs.get(key).unwrap_or_else(|| panic!("{name}: no {key}"));
        let got = op(&fx.input);
        assert_eq!((got.c, got.h, got.w), (want.c, want.h, want.w));
        let db = psnr(&interior(&got, border), &interior(want, border));
        let full = psnr(&got, want);
        println!("{key:>13} {:>17}: {db:6.2} dB without a {border:>2}-px border (need {min_db}), {full:6.2} dB whole", fx.name);
        assert!(db >= min_db, "{key} on {}: {db:.2} dB < {min_db} dB", fx.name);
    }
}

#[test]
fn bilateral_matches_opencv() {
    let p = BilateralParams::new(3.0, 0.1).expect("valid");
    check("bilateral", 2 * p.radius(), 30.0, |x| bilateral_filter(x, &p));
}

#[test]
fn guided_matches_opencv() {
    let p = GuidedParams::new(5, 0.01).expect("valid");
    check("guided", 2 * p.radius, 40.0, |x| guided_filter(x, &p));
}

#[test]
fn rolling_guidance_matches_opencv_input_start() {
    let p = RgfParams::new(4.0, 0.1, 4).expect("valid").with_start(RgfStart::Input);
    check("rgf_input", 12, 28.0, |x| rolling_guidance(x, &p));
}

#[test]
fn rolling_guidance_constant_start_matches_opencv_emulation() {
    let p = RgfParams::new(4.0, 0.1, 4).expect("valid");
    check("rgf_constant", 12, 28.0, |x| rolling_guidance(x, &p));
}

#[test]
fn l0_opencv_boundary_matches_opencv() {
    let p = L0Params::new(0.02, 2.0).expect("valid").with_boundary(L0Boundary::OpenCv);
    check("l0_opencv", 0, 30.0, |x| l0_smooth(x, &p));
}

/// Not OpenCV: the script's numpy transcription of Xu's `L0Smoothing.m` (float64).
#[test]
fn l0_periodic_matches_xu_matlab_transcription() {
    let p = L0Params::new(0.01, 2.0).expect("valid");
    check("l0_xu", 0, 30.0, |x| l0_smooth(x, &p));
}

/// OpenCV ran with the 8-bit crop as guide and the float32 crop as source (float output).
#[test]
fn fgs_matches_opencv() {
    let p = FgsParams::new(10.0, 16.0 / 255.0, 3, 0.25).expect("valid");
    check("fgs", 0, 60.0, |x| fgs_smooth(x, &p));
}
