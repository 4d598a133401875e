//! PSNR and SSIM, with the SSIM convention stated by the caller.
//!
//! Both metrics take images on the [0, 1] scale (data range 1), use every channel, and
//! accumulate in `f64`.
//!
//! * [`psnr`]: `10·log10(1 / MSE)` over all channels and pixels (CSGIS `ttt.py`; identical to
//!   scikit-image `peak_signal_noise_ratio(.., data_range=1)`).
//! * [`SsimConvention::Csgis`] (the default, [`ssim`]): the JESS/CSGIS `pytorch_ssim` used
//!   by the training loss and every reported figure: 11×11 Gaussian window, σ = 1.5,
//!   normalised; per channel; **zero padding** of 5 so the map has the image's size and the
//!   borders count; population (biased) variances; C1 = 0.01², C2 = 0.03²; mean over
//!   channels and pixels (reference-implementation.md §2.1).
//! * [`SsimConvention::Skimage`]: scikit-image's default `structural_similarity(a, b,
//!   data_range=1, channel_axis=..)`: 7×7 uniform window, sample covariance (`N/(N−1)`),
//!   the map averaged over the valid region only (3 pixels cropped on each side), then over
//!   channels.
//!
//! How they relate: skimage with `gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False` uses the same window and constants as CSGIS but pads by
//! reflection and crops 5 pixels per side before averaging. On that interior the two maps
//! are identical (no window reaches the padding), so the two differ only through the
//! border band, which CSGIS averages in with full weight (about 20 % of a 96² image). There
//! the zero padding pulls both local means towards 0 and adds the same artificial edge to
//! both images, which raises their covariance together; textured borders therefore tend to
//! score high (on the three fixtures CSGIS is 0.02–0.04 above skimage's Gaussian SSIM),
//! while flat borders with a small offset score lower. `tests/data/metrics/` pins all
//! figures against scikit-image (`scripts/skimage_reference.py`).
//!
//! # References
//! Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image Quality Assessment: From
//! Error Visibility to Structural Similarity", IEEE TIP 13(4), 2004. Reference code:
//! `YidFeng/Easy2Hard/defs/pytorch_ssim.py` (= `wangjie6866/CSGIS-Net/defs/pytorch_ssim.py`),
//! `skimage.metrics.structural_similarity`.

use rayon::prelude::*;

use crate::ops::{convolve_separable, gaussian_kernel_f64, Border, Padding, Planes};

/// Which SSIM definition to compute; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SsimConvention {
    /// JESS/CSGIS `pytorch_ssim`: 11×11 Gaussian σ 1.5, zero padding, borders included.
    #[default]
    Csgis,
    /// scikit-image default: 7×7 uniform window, sample covariance, border cropped.
    Skimage,
}

/// REF: `pytorch_ssim` hard-codes C1 = 0.01², C2 = 0.03² (data range 1).
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// One SSIM window: separable kernel, border rule, covariance normalisation, and how many
/// pixels per side the mean skips.
struct Window {
    kernel: Vec<f64>,
    padding: Padding,
    cov_norm: f64,
    crop: usize,
}

impl Window {
    /// `pytorch_ssim`'s window; `crop` 0 for CSGIS, 5 for skimage's Gaussian variant.
    fn csgis(crop: usize) -> Self {
        Self { kernel: gaussian_kernel_f64(1.5, 5), padding: Padding::Zeros, cov_norm: 1.0, crop }
    }

    /// skimage's default: 7×7 mean filter (scipy `uniform_filter`, mode `reflect`),
    /// `use_sample_covariance=True`.
    fn skimage() -> Self {
        let n = 7usize;
        let np = (n * n) as f64;
        Self {
            kernel: vec![1.0 / n as f64; n],
            padding: Padding::Rule(Border::Reflect),
            cov_norm: np / (np - 1.0),
            crop: 3,
        }
    }
}

/// Peak signal-to-noise ratio in dB for data range 1; `f64::INFINITY` for identical images.
///
/// # Panics
/// 1. When the images differ in shape.
#[must_use]
pub fn psnr(a: &Planes, b: &Planes) -> f64 {
    assert_same_shape(a, b);
    let se: f64 =
        a.data.par_iter().zip(&b.data).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum();
    let mse = se / a.data.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        -10.0 * mse.log10()
    }
}

/// SSIM in the CSGIS convention ([`SsimConvention::Csgis`]).
///
/// # Panics
/// 1. When the images differ in shape.
#[must_use]
pub fn ssim(a: &Planes, b: &Planes) -> f64 {
    ssim_with(a, b, SsimConvention::Csgis)
}

/// SSIM in the stated convention. [`SsimConvention::Skimage`] gives NaN for images
/// smaller than its 7×7 window (scikit-image raises an error there).
///
/// # Panics
/// 1. When the images differ in shape.
#[must_use]
pub fn ssim_with(a: &Planes, b: &Planes, convention: SsimConvention) -> f64 {
    match convention {
        SsimConvention::Csgis => mean_ssim(a, b, &Window::csgis(0)),
        SsimConvention::Skimage => mean_ssim(a, b, &Window::skimage()),
    }
}

/// The per-pixel CSGIS SSIM map (same shape as the inputs); [`ssim`] is its mean.
///
/// # Panics
/// 1. When the images differ in shape.
#[must_use]
pub fn ssim_map(a: &Planes, b: &Planes) -> Planes {
    assert_same_shape(a, b);
    let win = Window::csgis(0);
    let data = (0..a.c)
        .into_par_iter()
        .flat_map_iter(|ch| {
            plane_map(a.plane(ch), b.plane(ch), a.h, a.w, &win).into_iter().map(|v| v as f32)
        })
        .collect();
    Planes::from_vec(a.c, a.h, a.w, data)
}

/// Mean of the SSIM map over channels and the window's uncropped region.
fn mean_ssim(a: &Planes, b: &Planes, win: &Window) -> f64 {
    assert_same_shape(a, b);
    let (h, w, k) = (a.h, a.w, win.crop);
    if a.c == 0 || h <= 2 * k || w <= 2 * k {
        return f64::NAN;
    }
    let per_channel: Vec<f64> = (0..a.c)
        .into_par_iter()
        .map(|ch| {
            let map = plane_map(a.plane(ch), b.plane(ch), h, w, win);
            let sum: f64 =
                (k..h - k).map(|y| map[y * w + k..y * w + w - k].iter().sum::<f64>()).sum();
            sum / ((h - 2 * k) * (w - 2 * k)) as f64
        })
        .collect();
    per_channel.iter().sum::<f64>() / a.c as f64
}

/// The SSIM map of one plane pair under `win`, in `f64`.
fn plane_map(a: &[f32], b: &[f32], h: usize, w: usize, win: &Window) -> Vec<f64> {
    let x: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
    let y: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
    let filt = |v: &[f64]| convolve_separable(v, h, w, &win.kernel, win.padding);
    let prod = |p: &[f64], q: &[f64]| -> Vec<f64> { p.iter().zip(q).map(|(s, t)| s * t).collect() };
    let (mx, my) = (filt(&x), filt(&y));
    let (xx, yy, xy) = (filt(&prod(&x, &x)), filt(&prod(&y, &y)), filt(&prod(&x, &y)));
    (0..h * w)
        .map(|i| {
            let (ux, uy) = (mx[i], my[i]);
            let vx = win.cov_norm * (xx[i] - ux * ux);
            let vy = win.cov_norm * (yy[i] - uy * uy);
            let vxy = win.cov_norm * (xy[i] - ux * uy);
            ((2.0 * ux * uy + C1) * (2.0 * vxy + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2))
        })
        .collect()
}

fn assert_same_shape(a: &Planes, b: &Planes) {
    assert_eq!((a.c, a.h, a.w), (b.c, b.h, b.w), "metric inputs must have the same shape");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_images::hashed;

    /// Direct 2-D window sums with explicit zero padding (the naive reference).
    fn reference_csgis(a: &Planes, b: &Planes) -> f64 {
        let k = gaussian_kernel_f64(1.5, 5);
        let (h, w) = (a.h as isize, a.w as isize);
        let mut total = 0.0;
        for ch in 0..a.c {
            for y in 0..h {
                for x in 0..w {
                    let mut m = [0.0f64; 5];
                    for i in -5..=5isize {
                        for j in -5..=5isize {
                            let (yy, xx) = (y + i, x + j);
                            if yy < 0 || xx < 0 || yy >= h || xx >= w {
                                continue;
                            }
                            let wt = k[(i + 5) as usize] * k[(j + 5) as usize];
                            let p = f64::from(a.get(ch, yy as usize, xx as usize));
                            let q = f64::from(b.get(ch, yy as usize, xx as usize));
                            for (acc, v) in m.iter_mut().zip([p, q, p * p, q * q, p * q]) {
                                *acc += wt * v;
                            }
                        }
                    }
                    let (ux, uy) = (m[0], m[1]);
                    let (vx, vy, vxy) = (m[2] - ux * ux, m[3] - uy * uy, m[4] - ux * uy);
                    total += ((2.0 * ux * uy + C1) * (2.0 * vxy + C2))
                        / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
                }
            }
        }
        total / (a.c as f64 * a.h as f64 * a.w as f64)
    }

    #[test]
    fn identical_images() {
        let a = hashed(3, 12, 15, 1);
        assert_eq!(psnr(&a, &a), f64::INFINITY);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-12);
        assert!((ssim_with(&a, &a, SsimConvention::Skimage) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn psnr_of_a_uniform_offset() {
        let a = Planes::constant(3, 4, 4, 0.5);
        let b = Planes::constant(3, 4, 4, 0.6);
        assert!((psnr(&a, &b) - 20.0).abs() < 1e-5);
    }

    #[test]
    fn csgis_matches_direct_windows() {
        let (a, b) = (hashed(2, 9, 13, 3), hashed(2, 9, 13, 8));
        assert!((ssim(&a, &b) - reference_csgis(&a, &b)).abs() < 1e-12);
        let map = ssim_map(&a, &b);
        let mean = map.data.iter().map(|&v| f64::from(v)).sum::<f64>() / map.data.len() as f64;
        assert!((mean - ssim(&a, &b)).abs() < 1e-6);
    }

    #[test]
    fn zero_padding_lowers_the_border() {
        // A constant image against itself + 0.01: interior SSIM is ~1, the zero-padded border
        // sees a mean mismatch relative to a much smaller local mean, so it is lower.
        let a = Planes::constant(1, 24, 24, 0.5);
        let b = Planes::constant(1, 24, 24, 0.51);
        let map = ssim_map(&a, &b);
        assert!(map.get(0, 0, 0) < map.get(0, 12, 12));
        assert!(mean_ssim(&a, &b, &Window::csgis(5)) > ssim(&a, &b));
    }

    #[test]
    fn skimage_is_nan_below_its_window() {
        let a = hashed(1, 6, 20, 0);
        assert!(ssim_with(&a, &a, SsimConvention::Skimage).is_nan());
        assert!(ssim(&a, &a).is_finite());
    }

    #[test]
    #[should_panic(expected = "same shape")]
    fn shape_mismatch_panics() {
        let _ = psnr(&Planes::zeros(3, 4, 4), &Planes::zeros(3, 4, 5));
    }
}

#[cfg(test)]
mod golden;

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::ops::test_images::hashed;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn ssim_is_symmetric_and_bounded(c in 1usize..4, h in 7usize..16, w in 7usize..16, s1 in 0usize..500, s2 in 0usize..500) {
            let (a, b) = (hashed(c, h, w, s1), hashed(c, h, w, s2));
            for conv in [SsimConvention::Csgis, SsimConvention::Skimage] {
                let (ab, ba) = (ssim_with(&a, &b, conv), ssim_with(&b, &a, conv));
                prop_assert!((ab - ba).abs() < 1e-12);
                prop_assert!((-1.0..=1.0 + 1e-12).contains(&ab));
            }
            // Equal seeds give equal images, whose PSNR is +inf both ways (inf − inf is NaN).
            let (ab, ba) = (psnr(&a, &b), psnr(&b, &a));
            prop_assert!(ab == ba || (ab - ba).abs() < 1e-12);
        }
    }
}
