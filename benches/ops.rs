//! CPU benchmark of the local filters, L0 and FGS (box, bilateral, guided, rolling guidance, L0,
//! fast global smoother):
//! milliseconds per image, median of a few runs.
//!
//! `bench/ops_vs_opencv.sh` runs this next to OpenCV on the same input and thread count and
//! prints the ratios; on its own, `cargo bench --bench ops` prints a Markdown table for a
//! synthetic 1024×1024 RGB image.
//!
//! Environment:
//! * `RAYON_NUM_THREADS`: thread count (rayon's own variable);
//! * `CSGIS_BENCH_INPUT=path,side`: read a `3 × side × side` planar little-endian `f32`
//!   image instead of the synthetic one (the OpenCV script writes it);
//! * `CSGIS_BENCH_JSON=1`: print one JSON object per operator instead of the table;
//! * `CSGIS_BENCH_ONLY=name`: run only that operator (the first word of its name).
//!
//! Figures are the minimum over the runs: on a shared machine the minimum is the least
//! disturbed estimate of the operator's own cost. The parameters are fixed and match
//! `bench/ops_vs_opencv.py`.

use std::time::Instant;

use csgis::ops::{
    bilateral_filter, box_filter, fgs_smooth, guided_filter, l0_smooth, rolling_guidance, BilateralParams, Border,
    FgsParams, GuidedParams, L0Boundary, L0Params, Planes, RgfParams, RgfStart,
};

/// Fewest milliseconds of `runs` timed calls of `f`, after one warm-up call.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    std::hint::black_box(f());
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[0]
}

/// Smooth shading, a disc, a bar, a checker texture and hashed noise, on [0, 1].
fn synthetic(side: usize) -> Planes {
    let s = side as f32;
    Planes::from_fn(3, side, side, |c, y, x| {
        let (fy, fx) = (y as f32 / s, x as f32 / s);
        let mut v = 0.2 + 0.3 * fx + 0.1 * fy * (c as f32 + 1.0) / 3.0;
        if (fy - 0.35).powi(2) + (fx - 0.4).powi(2) < 0.04 {
            v += 0.35 - 0.1 * c as f32;
        }
        if (0.6..0.75).contains(&fy) {
            v = 0.85 - 0.2 * c as f32;
        }
        if fx > 0.7 {
            v += 0.08 * ((x / 3 + y / 3) % 2) as f32;
        }
        let h = ((c * 7919 + y * 104_729 + x * 1_299_709) as u64 ^ 0x9e37_79b9).wrapping_mul(0x5bd1_e995);
        (v + 0.02 * (((h >> 16) % 1000) as f32 / 999.0 - 0.5)).clamp(0.0, 1.0)
    })
}

/// The image named by `CSGIS_BENCH_INPUT=path,side`, else the synthetic 1024² one.
fn input() -> Planes {
    let Ok(spec) = std::env::var("CSGIS_BENCH_INPUT") else { return synthetic(1024) };
    let (path, side) = spec.rsplit_once(',').expect("CSGIS_BENCH_INPUT=path,side");
    let side: usize = side.parse().expect("side is a number");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let data: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Planes::from_vec(3, side, side, data)
}

fn main() {
    let img = input();
    let json = std::env::var_os("CSGIS_BENCH_JSON").is_some();
    let threads = rayon::current_num_threads();
    let only = std::env::var("CSGIS_BENCH_ONLY").ok();
    let wanted = |op: &str| only.as_deref().is_none_or(|o| op.split(' ').next() == Some(o));
    let report = |op: &str, params: &str, runs: usize, ms: f64| {
        if json {
            println!(r#"{{"op": "{op}", "params": "{params}", "runs": {runs}, "ms": {ms:.3}}}"#);
        } else {
            println!("| {op} | {params} | {ms:.1} | {runs} |");
        }
    };
    if !json {
        println!("ops: {}×{} RGB, release build, {threads} rayon threads\n", img.h, img.w);
        println!("| operator | parameters | ms (min) | runs |");
        println!("|---|---|---:|---:|");
    }
    if wanted("box") {
        report("box", "r 8, reflect", 9, time(9, || box_filter(&img, 8, Border::Reflect)));
    }
    let bp = BilateralParams::new(3.0, 0.1).expect("valid");
    if wanted("bilateral") {
        report("bilateral", "σs 3, σr 0.1", 5, time(5, || bilateral_filter(&img, &bp)));
    }
    let gp = GuidedParams::new(8, 0.04).expect("valid");
    if wanted("guided") {
        report("guided", "r 8, eps 0.04", 5, time(5, || guided_filter(&img, &gp)));
    }
    let rp = RgfParams::new(4.0, 0.1, 4).expect("valid");
    let rp_input = rp.with_start(RgfStart::Input);
    if wanted("rgf") {
        report("rgf", "σs 4, σr 0.1, 4 iter, input start", 3, time(3, || rolling_guidance(&img, &rp_input)));
    }
    if wanted("rgf (constant start)") {
        report("rgf (constant start)", "σs 4, σr 0.1, 4 iter", 3, time(3, || rolling_guidance(&img, &rp)));
    }
    let lp = L0Params::new(0.02, 2.0).expect("valid").with_boundary(L0Boundary::OpenCv);
    if wanted("l0") {
        report("l0", "λ 0.02, κ 2, OpenCV boundary", 3, time(3, || l0_smooth(&img, &lp)));
    }
    let lp = lp.with_boundary(L0Boundary::Periodic);
    if wanted("l0 (periodic)") {
        report("l0 (periodic)", "λ 0.02, κ 2", 3, time(3, || l0_smooth(&img, &lp)));
    }
    let fp = FgsParams::new(10.0, 16.0 / 255.0, 3, 0.25).expect("valid");
    if wanted("fgs") {
        report("fgs", "λ 10, σr 16/255, 3 iter, att. 0.25", 9, time(9, || fgs_smooth(&img, &fp)));
    }
}
