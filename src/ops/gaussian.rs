//! Separable Gaussian blur, the shared building block of RTV's texture weights and of SSIM.
//!
//! The kernel is `exp(-x² / 2σ²)` on `-radius..=radius`, normalised to sum 1. That is
//! MATLAB's `fspecial('gaussian', [1, 2r+1], σ)`, `pytorch_ssim`'s `gaussian(11, 1.5)` and
//! scipy's `gaussian_filter` kernel (radius `int(truncate·σ + 0.5)`).
//!
//! Borders: [`gaussian_blur`] reflects without repeating the edge pixel (OpenCV's default
//! `BORDER_REFLECT_101`, `dcb|abcd|cba`). Internally `Padding::Zeros` gives MATLAB's
//! `conv2(.., 'same')` and PyTorch's `padding=r` (used by RTV and by the CSGIS SSIM).
//!
//! # References
//! OpenCV `cv::GaussianBlur` (reference for the border rule).

use std::ops::{Add, Mul};

use rayon::prelude::*;

use super::{Border, Planes};
use crate::{Error, Result};

/// Parameters of [`gaussian_blur`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianParams {
    /// Standard deviation in pixels (> 0).
    pub sigma: f32,
    /// Kernel radius in pixels; the kernel has `2·radius + 1` taps.
    pub radius: usize,
}

impl GaussianParams {
    /// Validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] when `sigma` is not a positive finite number.
    pub fn new(sigma: f32, radius: usize) -> Result<Self> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(Error::InvalidParam {
                name: "sigma",
                value: sigma.to_string(),
                expected: "a positive number of pixels",
            });
        }
        Ok(Self { sigma, radius })
    }

    /// Parameters with the radius `ceil(3σ)` (99.7 % of the mass).
    ///
    /// # Errors
    /// As [`GaussianParams::new`].
    pub fn from_sigma(sigma: f32) -> Result<Self> {
        // `as` saturates; a huge sigma is refused by `new` or clamped by the border rule.
        Self::new(sigma, (3.0 * sigma).ceil().max(0.0) as usize)
    }
}

impl Default for GaussianParams {
    /// σ = 1 px, radius 3.
    fn default() -> Self {
        Self { sigma: 1.0, radius: 3 }
    }
}

/// The normalised 1-D Gaussian kernel `exp(-x²/2σ²) / Σ`, `x = -radius..=radius`.
///
/// # Panics
/// 1. When `sigma` is not positive.
#[must_use]
pub fn gaussian_kernel_1d(sigma: f32, radius: usize) -> Vec<f32> {
    gaussian_kernel_f64(f64::from(sigma), radius).into_iter().map(|v| v as f32).collect()
}

/// [`gaussian_kernel_1d`] in `f64` (for SSIM, which accumulates in `f64`).
///
/// # Panics
/// 1. When `sigma` is not positive.
pub(crate) fn gaussian_kernel_f64(sigma: f64, radius: usize) -> Vec<f64> {
    assert!(sigma > 0.0, "gaussian sigma must be positive");
    let r = radius as f64;
    let s2 = 2.0 * sigma * sigma;
    let k: Vec<f64> = (0..=2 * radius).map(|i| (-(i as f64 - r).powi(2) / s2).exp()).collect();
    let sum: f64 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// Separable Gaussian blur of every channel, reflect-101 border.
///
/// # Examples
/// ```
/// use csgis::ops::{gaussian_blur, GaussianParams, Planes};
/// let img = Planes::constant(3, 8, 8, 0.25);
/// let out = gaussian_blur(&img, &GaussianParams::default());
/// assert!(out.data.iter().all(|v| (v - 0.25).abs() < 1e-6));
/// ```
#[must_use]
pub fn gaussian_blur(img: &Planes, p: &GaussianParams) -> Planes {
    let kernel = gaussian_kernel_1d(p.sigma, p.radius);
    let mut out = img.clone();
    out.planes_mut().into_par_iter().enumerate().for_each(|(ch, dst)| {
        let blurred = convolve_separable(
            img.plane(ch),
            img.h,
            img.w,
            &kernel,
            Padding::Rule(Border::Reflect101),
        );
        dst.copy_from_slice(&blurred);
    });
    out
}

/// How [`convolve_separable`] extends a plane past its edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Padding {
    /// Zeros outside (MATLAB `conv2(.., 'same')`, PyTorch zero padding).
    Zeros,
    /// An OpenCV border rule.
    Rule(Border),
}

/// Same-size separable correlation of one `h×w` plane with a symmetric odd `kernel`,
/// first along rows, then along columns. Generic so that SSIM can run it in `f64`.
pub(crate) fn convolve_separable<T>(
    src: &[T],
    h: usize,
    w: usize,
    kernel: &[T],
    padding: Padding,
) -> Vec<T>
where
    T: Copy + Default + Send + Sync + Add<Output = T> + Mul<Output = T>,
{
    assert_eq!(src.len(), h * w, "plane length must be h*w");
    assert!(kernel.len() % 2 == 1, "kernel length must be odd");
    if h == 0 || w == 0 {
        return Vec::new();
    }
    let r = kernel.len() / 2;
    // Horizontal pass on a padded copy of each row.
    let mut tmp = vec![T::default(); h * w];
    tmp.par_chunks_mut(w).zip(src.par_chunks(w)).for_each(|(dst, row)| {
        let padded: Vec<T> = (0..w + 2 * r)
            .map(|j| {
                let i = j as isize - r as isize;
                match padding {
                    Padding::Zeros if i < 0 || i >= w as isize => T::default(),
                    Padding::Zeros => row[i as usize],
                    Padding::Rule(b) => row[b.index(i, w)],
                }
            })
            .collect();
        for (x, d) in dst.iter_mut().enumerate() {
            *d = kernel.iter().zip(&padded[x..]).fold(T::default(), |acc, (&k, &v)| acc + k * v);
        }
    });
    // Vertical pass: each output row is a weighted sum of whole input rows.
    let mut out = vec![T::default(); h * w];
    out.par_chunks_mut(w).enumerate().for_each(|(y, dst)| {
        for (k, &kv) in kernel.iter().enumerate() {
            let yy = y as isize + k as isize - r as isize;
            let src_y = match padding {
                Padding::Zeros if yy < 0 || yy >= h as isize => continue,
                Padding::Zeros => yy as usize,
                Padding::Rule(b) => b.index(yy, h),
            };
            let row = &tmp[src_y * w..(src_y + 1) * w];
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = *d + kv * v;
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 2-D correlation with explicit border handling.
    fn reference(src: &[f32], h: usize, w: usize, k: &[f32], padding: Padding) -> Vec<f32> {
        let r = (k.len() / 2) as isize;
        let at = |y: isize, x: isize| -> f32 {
            match padding {
                Padding::Zeros if y < 0 || x < 0 || y >= h as isize || x >= w as isize => 0.0,
                Padding::Zeros => src[y as usize * w + x as usize],
                Padding::Rule(b) => src[b.index(y, h) * w + b.index(x, w)],
            }
        };
        let mut out = vec![0.0; h * w];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut s = 0.0;
                for i in -r..=r {
                    for j in -r..=r {
                        s += k[(i + r) as usize] * k[(j + r) as usize] * at(y + i, x + j);
                    }
                }
                out[y as usize * w + x as usize] = s;
            }
        }
        out
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel_1d(1.5, 5);
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((k[0] - k[10]).abs() < 1e-9 && k[5] > k[4]);
        // pytorch_ssim gaussian(11, 1.5)[5] = 1 / Σ exp(-x²/4.5)
        assert!((k[5] - 0.266_011_7).abs() < 1e-6, "{}", k[5]);
    }

    #[test]
    fn separable_matches_direct_on_both_borders() {
        let (h, w) = (5, 7);
        let src: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        let k = gaussian_kernel_1d(1.2, 3);
        for padding in [Padding::Rule(Border::Reflect101), Padding::Zeros] {
            let fast = convolve_separable(&src, h, w, &k, padding);
            let slow = reference(&src, h, w, &k, padding);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-5, "{padding:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn zero_border_darkens_edges() {
        let src = vec![1.0f32; 6 * 6];
        let out = convolve_separable(&src, 6, 6, &gaussian_kernel_1d(1.0, 2), Padding::Zeros);
        assert!(out[0] < 0.7 && (out[2 * 6 + 2] - 1.0).abs() < 0.1);
    }

    #[test]
    fn params_validate() {
        assert!(GaussianParams::new(0.0, 3).is_err());
        assert!(GaussianParams::new(f32::NAN, 3).is_err());
        assert_eq!(GaussianParams::from_sigma(1.5).map(|p| p.radius).ok(), Some(5));
    }
}

#[cfg(test)]
mod proptests {
    use super::super::test_images::{hashed, is_within_range};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn blur_stays_in_range_and_keeps_shape(
            h in 1usize..12, w in 1usize..12, sigma in 0.3f32..4.0, radius in 0usize..9, seed in 0usize..1000,
        ) {
            let img = hashed(2, h, w, seed);
            let out = gaussian_blur(&img, &GaussianParams { sigma, radius });
            prop_assert!(is_within_range(&img, &out, 1e-5));
        }
    }
}
