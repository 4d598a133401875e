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
mod tests {
    use super::super::test_images::assert_denoises_step;
    use super::*;

    #[test]
    fn noisy_step_keeps_step_and_loses_noise() {
        assert_denoises_step(0.03, |img| rtv_smooth(img, &RtvParams::default()));
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
    use super::super::test_images::{hashed, is_within_range};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn output_is_a_convex_combination(
            c in 1usize..4, h in 1usize..10, w in 1usize..10, seed in 0usize..1000, lambda in 0.001f32..0.05,
        ) {
            let img = hashed(c, h, w, seed);
            let out = rtv_smooth(&img, &RtvParams { lambda, ..RtvParams::default() });
            prop_assert!(is_within_range(&img, &out, 1e-4));
        }
    }
}

