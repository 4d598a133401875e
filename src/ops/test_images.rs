//! Synthetic test images with known answers and the shared checks of the smoothing
//! operators' tests (compiled for tests only).

use super::Planes;

/// Deterministic pseudo-random values in [0, 1] (a multiplicative hash of the position).
pub(crate) fn hashed(c: usize, h: usize, w: usize, seed: usize) -> Planes {
    Planes::from_fn(c, h, w, |ch, y, x| {
        (((seed + 31 * ch + 17 * y + 7 * x) * 2_654_435_761usize) % 1000) as f32 / 999.0
    })
}

/// The smallest and largest value of `img`.
pub(crate) fn value_range(img: &Planes) -> (f32, f32) {
    img.data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)))
}

/// Whether `out` has `img`'s shape and stays inside `img`'s [min, max] widened by `tol`.
pub(crate) fn is_within_range(img: &Planes, out: &Planes, tol: f32) -> bool {
    let (lo, hi) = value_range(img);
    (out.c, out.h, out.w) == (img.c, img.h, img.w)
        && out.data.iter().all(|&v| v >= lo - tol && v <= hi + tol)
}

/// A vertical step (0.3 | 0.7) of `h×w` with deterministic uniform noise of std `noise`.
fn noisy_step(c: usize, h: usize, w: usize, noise: f32) -> Planes {
    // Uniform on [-a, a] has std a/√3.
    let a = noise * 3f32.sqrt();
    Planes::from_fn(c, h, w, |ch, y, x| {
        let base = if x < w / 2 { 0.3 } else { 0.7 };
        let mut s = (ch * 7919 + y * 104_729 + x * 1_299_709 + 12_345) as u64;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let u = (s % 10_000) as f32 / 9_999.0;
        base + a * (2.0 * u - 1.0)
    })
}

/// (noise, step): the std around each half's mean, averaged over halves and channels, and
/// the difference of the half means, both over pixels at least `margin` from any edge.
fn step_stats(img: &Planes, margin: usize) -> (f32, f32) {
    let (h, w) = (img.h, img.w);
    let mut stds = Vec::new();
    let mut means = [0.0f64; 2];
    for ch in 0..img.c {
        for (k, xs) in
            [(margin..w / 2 - margin), (w / 2 + margin..w - margin)].into_iter().enumerate()
        {
            let vals: Vec<f64> = (margin..h - margin)
                .flat_map(|y| xs.clone().map(move |x| (y, x)))
                .map(|(y, x)| f64::from(img.get(ch, y, x)))
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            stds.push(var.sqrt());
            means[k] += mean / img.c as f64;
        }
    }
    let std = stds.iter().sum::<f64>() / stds.len() as f64;
    (std as f32, (means[1] - means[0]) as f32)
}

/// Asserts that `smooth` cuts the noise of a 48×48 RGB [`noisy_step`] of std `noise` at
/// least 3× and keeps the step height within 10 % (both measured 8 px from any edge).
pub(crate) fn assert_denoises_step(noise: f32, smooth: impl Fn(&Planes) -> Planes) {
    let img = noisy_step(3, 48, 48, noise);
    let out = smooth(&img);
    let (n_in, step_in) = step_stats(&img, 8);
    let (n_out, step_out) = step_stats(&out, 8);
    assert!(n_out * 3.0 <= n_in, "noise {n_in} -> {n_out}");
    assert!((step_out - step_in).abs() <= 0.1 * step_in, "step {step_in} -> {step_out}");
}
