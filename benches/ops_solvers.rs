//! CPU benchmark of the Gaussian/Sobel building blocks, the solver-based operators (RTV, WLS,
//! SDF), ILS and the metrics: milliseconds per 1024×1024 RGB image, default parameters.
//!
//! Run with `cargo bench --bench ops_solvers` (release profile). Prints a Markdown table with
//! the median of a few runs. OpenCV has none of these operators except a WLS-like
//! `fastGlobalSmootherFilter` (a different, separable solver), so there is no OpenCV column.
//! Set `CSGIS_BENCH_SIDE` to change the side (default 1024) and `RAYON_NUM_THREADS` to pin the
//! thread count; the solvers parallelise over the three channels only.
//!
//! The input is synthetic but image-like (smooth shading, hard-edged shapes, fine texture and
//! noise), because PCG iteration counts depend on the content.

use std::time::Instant;

use csgis::metrics::{psnr, ssim, ssim_with, SsimConvention};
use csgis::ops::{
    gaussian_blur, ils_smooth, rtv_smooth, sdf_smooth, sobel_gradients, wls_smooth, GaussianParams,
    IlsParams, Planes, RtvParams, SdfParams, WlsParams,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median milliseconds of `repeats` runs of `f` (after one warm-up run when `repeats > 1`).
fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> f64 {
    if repeats > 1 {
        std::hint::black_box(f());
    }
    let times = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(times)
}

/// Shading + discs and bars + a stripe texture + hashed noise, on [0, 1].
fn test_image(side: usize) -> Planes {
    let s = side as f32;
    Planes::from_fn(3, side, side, |c, y, x| {
        let (fy, fx) = (y as f32 / s, x as f32 / s);
        let mut v = 0.2 + 0.3 * fx + 0.1 * fy * (c as f32 + 1.0) / 3.0;
        let (dy, dx) = (fy - 0.35, fx - 0.4);
        if dy * dy + dx * dx < 0.04 {
            v += 0.35 - 0.1 * c as f32;
        }
        if (0.6..0.75).contains(&fy) {
            v = 0.85 - 0.2 * c as f32;
        }
        if fx > 0.7 {
            v += 0.08 * ((x / 3 + y / 3) % 2) as f32;
        }
        let h = (c * 7919 + y * 104_729 + x * 1_299_709) as u64;
        let h = (h ^ (h >> 13)).wrapping_mul(0x5bd1_e995);
        v += 0.02 * (((h >> 16) % 1000) as f32 / 999.0 - 0.5);
        v.clamp(0.0, 1.0)
    })
}

fn main() {
    let side = std::env::var("CSGIS_BENCH_SIDE").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let img = test_image(side);
    let blurred = gaussian_blur(&img, &GaussianParams { sigma: 1.5, radius: 5 });
    let threads = rayon::current_num_threads();
    println!("ops_solvers: {side}×{side} RGB, release build, {threads} rayon threads\n");
    println!("| operator | parameters | ms (median) | runs |");
    println!("|---|---|---:|---:|");
    let row = |name: &str, params: &str, runs: usize, ms: f64| {
        println!("| {name} | {params} | {ms:.1} | {runs} |");
    };
    let g = GaussianParams { sigma: 2.0, radius: 6 };
    row("gaussian_blur", "σ 2, radius 6", 5, time(5, || gaussian_blur(&img, &g)));
    row("sobel_gradients", "3×3", 5, time(5, || sobel_gradients(&img)));
    row(
        "rtv_smooth",
        "λ 0.01, σ 3, sharpness 0.02, 4 iter",
        3,
        time(3, || rtv_smooth(&img, &RtvParams::default())),
    );
    row("wls_smooth", "λ 1, α 1.2", 3, time(3, || wls_smooth(&img, &WlsParams::default())));
    row(
        "ils_smooth",
        "λ 1, p 0.8, ε 1e-4, 4 iter",
        3,
        time(3, || ils_smooth(&img, &IlsParams::default())),
    );
    row(
        "sdf_smooth",
        "λ 3, μ 50, ν 400, 10 steps",
        1,
        time(1, || sdf_smooth(&img, &SdfParams::default())),
    );
    row("psnr", "", 5, time(5, || psnr(&img, &blurred)));
    row("ssim (Csgis)", "11×11 Gaussian σ 1.5, zero pad", 3, time(3, || ssim(&img, &blurred)));
    row(
        "ssim (Skimage)",
        "7×7 uniform, cropped",
        3,
        time(3, || ssim_with(&img, &blurred, SsimConvention::Skimage)),
    );
}
