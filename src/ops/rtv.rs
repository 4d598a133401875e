//! Relative total variation (RTV): structure extraction from texture.
//!
//! Follows the authors' MATLAB `tsmooth(I, lambda, sigma, sharpness, maxIter)` step by step:
//! per iteration, texture weights are computed from the current estimate and the screened
//! Laplacian system `(I + λ/2 · L_w) S = I` is solved for every channel
//! ([`super::sparse`]); σ halves each iteration, floored at 0.5.
//!
//! Weights (`computeTextureWeights`), with forward differences zero-padded at the far edge
//! and channel means:
//! * `wto = 1 / max(mean_c √(∂x² + ∂y²), sharpness)`;
//! * `wtbx = 1 / max(mean_c |∂x G_σ * S|, 0.001)`, likewise `wtby`;
//! * edge weights `wx = wtbx · wto`, `wy = wtby · wto`.
//!
//! `G_σ` is MATLAB's `conv2(.., 'same')` (zero border) with `ksize = round(5σ) | 1`.
//!
//! Known difference: MATLAB solves with `A\b`; we use PCG to a relative residual
//! of 1e-5, an RMS error ≤ 1e-5 ([`super::sparse`]).
//!
//! # References
//! L. Xu, Q. Yan, Y. Xia, J. Jia, "Structure Extraction from Texture via Relative Total
//! Variation", ACM TOG 31(6), 2012. Reference code: `tsmooth.m` (authors' page; also in
//! `MCG-NKU/PNLS/Image-Smoothing-Methods`). Parameter ranges from its help text:
//! λ ∈ (0, 0.05], σ ∈ (0, 6].

use super::bilateral::positive;
use super::gaussian::{convolve_separable, gaussian_kernel_1d, Padding};
use super::sparse::{GridSystem, Neighbour};
use super::Planes;
use crate::{Error, Result};

/// Parameters of [`rtv_smooth`]; intensities are on the [0, 1] scale, as in `tsmooth.m`
/// after `im2double`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RtvParams {
    /// Smoothness weight λ (> 0; the reference suggests (0, 0.05]).
    pub lambda: f32,
    /// Initial texture scale σ in pixels (> 0; the reference suggests (0, 6]).
    pub sigma: f32,
    /// Floor of the gradient magnitude in `wto` (> 0), in intensity units.
    pub sharpness: f32,
    /// Number of reweighting iterations (≥ 1).
    pub iterations: usize,
}

impl RtvParams {
    /// Validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] when a value is non-finite, not positive, or `iterations`
    /// is 0 or above 100.
    pub fn new(lambda: f32, sigma: f32, sharpness: f32, iterations: usize) -> Result<Self> {
        positive("lambda", lambda, "a positive smoothness weight")?;
        positive("sigma", sigma, "a positive texture scale in pixels")?;
        positive("sharpness", sharpness, "a positive gradient floor on the [0,1] scale")?;
        iteration_count(iterations)?;
        Ok(Self { lambda, sigma, sharpness, iterations })
    }
}

impl Default for RtvParams {
    /// `tsmooth.m` defaults: λ = 0.01, σ = 3, sharpness = 0.02, 4 iterations.
    fn default() -> Self {
        Self { lambda: 0.01, sigma: 3.0, sharpness: 0.02, iterations: 4 }
    }
}

/// Checks an iteration count is in 1..=100.
pub(crate) fn iteration_count(n: usize) -> Result<()> {
    if (1..=100).contains(&n) {
        Ok(())
    } else {
        Err(Error::InvalidParam { name: "iterations", value: n.to_string(), expected: "1 to 100" })
    }
}

/// RTV structure extraction of every channel of `img` (the weights are shared by channels).
///
/// # Examples
/// ```
/// use csgis::ops::{rtv_smooth, Planes, RtvParams};
/// let img = Planes::constant(3, 16, 16, 0.5);
/// let out = rtv_smooth(&img, &RtvParams::default());
/// assert!(out.data.iter().all(|v| (v - 0.5).abs() < 1e-4));
/// ```
#[must_use]
pub fn rtv_smooth(img: &Planes, p: &RtvParams) -> Planes {
    if img.data.is_empty() {
        return img.clone();
    }
    // REF: tsmooth.m halves lambda before building the system.
    let lambda = p.lambda / 2.0;
    let mut sigma = p.sigma;
    let mut x = img.clone();
    for _ in 0..p.iterations {
        let (wx, wy) = texture_weights(&x, sigma, p.sharpness);
        let sys = GridSystem::screened(
            img.h,
            img.w,
            lambda,
            vec![(Neighbour::East, wx), (Neighbour::South, wy)],
        );
        x = sys.solve_planes(img, Some(&x)).0;
        sigma = (sigma / 2.0).max(0.5);
    }
    x
}

/// `computeTextureWeights`: horizontal and vertical edge weights (stored at the left/top
/// pixel of each edge; the last column/row is unused).
fn texture_weights(fin: &Planes, sigma: f32, sharpness: f32) -> (Vec<f32>, Vec<f32>) {
    let (c, h, w) = (fin.c, fin.h, fin.w);
    let n = h * w;
    let inv_c = 1.0 / c as f32;
    // MATLAB: ksize = bitor(round(5σ), 1); round() is half away from zero like f32::round.
    let ksize = (5.0 * sigma).round() as usize | 1;
    let kernel = gaussian_kernel_1d(sigma, ksize / 2);
    let mut grad = vec![0.0f32; n];
    let mut gbx = vec![0.0f32; n];
    let mut gby = vec![0.0f32; n];
    for ch in 0..c {
        let f = fin.plane(ch);
        let fb = convolve_separable(f, h, w, &kernel, Padding::Zeros);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let (fx, gfx) =
                    if x + 1 < w { (f[i + 1] - f[i], fb[i + 1] - fb[i]) } else { (0.0, 0.0) };
                let (fy, gfy) =
                    if y + 1 < h { (f[i + w] - f[i], fb[i + w] - fb[i]) } else { (0.0, 0.0) };
                grad[i] += (fx * fx + fy * fy).sqrt() * inv_c;
                gbx[i] += gfx.abs() * inv_c;
                gby[i] += gfy.abs() * inv_c;
            }
        }
    }
    const VAREPS: f32 = 0.001;
    let wx = (0..n).map(|i| 1.0 / (gbx[i].max(VAREPS) * grad[i].max(sharpness))).collect();
    let wy = (0..n).map(|i| 1.0 / (gby[i].max(VAREPS) * grad[i].max(sharpness))).collect();
    (wx, wy)
}

#[cfg(test)]
pub(crate) mod test_images {
    //! Synthetic images with known answers, shared by the solver-based operators' tests.
    use super::Planes;

    /// A vertical step (0.3 | 0.7) of `h×w` with deterministic uniform noise of std `noise`.
    pub(crate) fn noisy_step(c: usize, h: usize, w: usize, noise: f32) -> Planes {
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
    pub(crate) fn step_stats(img: &Planes, margin: usize) -> (f32, f32) {
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
}

#[cfg(test)]
mod tests {
    use super::test_images::{noisy_step, step_stats};
    use super::*;

    #[test]
    fn noisy_step_keeps_step_and_loses_noise() {
        let img = noisy_step(3, 48, 48, 0.03);
        let out = rtv_smooth(&img, &RtvParams::default());
        let (n_in, step_in) = step_stats(&img, 8);
        let (n_out, step_out) = step_stats(&out, 8);
        assert!(n_out * 3.0 <= n_in, "noise {n_in} -> {n_out}");
        assert!((step_out - step_in).abs() <= 0.1 * step_in, "step {step_in} -> {step_out}");
    }

    #[test]
    fn constant_image_is_a_fixed_point() {
        let out = rtv_smooth(&Planes::constant(1, 9, 13, 0.42), &RtvParams::default());
        assert!(out.data.iter().all(|v| (v - 0.42).abs() < 1e-5));
    }

    #[test]
    fn weights_follow_tsmooth() {
        // σ = 0.5: ksize = round(2.5) | 1 = 3. Pixel (1, 1) and its right and lower
        // neighbours see no zero padding, so on a flat image both gradients are below their
        // floors there and w = 1/(0.001 · sharpness). At (0, 0) the zero border is visible.
        let (wx, wy) = texture_weights(&Planes::constant(1, 4, 4, 0.5), 0.5, 0.02);
        let flat = 1.0 / (0.001 * 0.02);
        assert!((wx[5] - flat).abs() < 1.0 && (wy[5] - flat).abs() < 1.0);
        assert!(wx[0] < flat);
    }

    #[test]
    fn params_validate() {
        assert!(RtvParams::new(0.01, 3.0, 0.02, 4).is_ok());
        assert!(RtvParams::new(0.0, 3.0, 0.02, 4).is_err());
        assert!(RtvParams::new(0.01, f32::INFINITY, 0.02, 4).is_err());
        assert!(RtvParams::new(0.01, 3.0, -1.0, 4).is_err());
        assert!(RtvParams::new(0.01, 3.0, 0.02, 0).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn output_is_a_convex_combination(
            c in 1usize..4, h in 1usize..10, w in 1usize..10, seed in 0usize..1000, lambda in 0.001f32..0.05,
        ) {
            let img = Planes::from_fn(c, h, w, |ch, y, x| {
                (((seed + 31 * ch + 17 * y + 7 * x) * 2_654_435_761usize) % 1000) as f32 / 999.0
            });
            let (lo, hi) = img.data.iter().fold((1.0f32, 0.0f32), |(l, u), &v| (l.min(v), u.max(v)));
            let out = rtv_smooth(&img, &RtvParams { lambda, ..RtvParams::default() });
            prop_assert_eq!((out.c, out.h, out.w), (c, h, w));
            prop_assert!(out.data.iter().all(|&v| v >= lo - 1e-4 && v <= hi + 1e-4));
        }
    }
}
