//! L0 gradient minimisation (Xu, Lu, Xu & Jia 2011): Xu's MATLAB `L0Smoothing.m`, or
//! `cv::ximgproc::l0Smooth` with its boundary handling.
//!
//! Minimises `|S - I|² + λ·#{p : ∇S(p) ≠ 0}` by half-quadratic splitting: with auxiliary
//! gradients `(h, v)` and a weight β that grows from `2λ` by `κ` per round while
//! `β < 1e5`, each round
//! 1. takes the forward differences of `S` and zeroes them at every pixel where
//!    `Σ_channels (h² + v²) ≤ λ/β` (the hard threshold of the L0 term);
//! 2. solves `(1 + β·∇ᵀ∇) S = I + β·div(h, v)` in the Fourier domain, where `∇ᵀ∇` is
//!    diagonal with `(2 - 2cos ωx) + (2 - 2cos ωy)` (circular boundary).
//!
//! Two boundary rules ([`L0Boundary`]):
//! * [`L0Boundary::Periodic`] (default): Xu's `L0Smoothing.m`. The differences wrap
//!   around (`h(w-1) = S(0) - S(w-1)`), consistent with the circular solve.
//! * [`L0Boundary::OpenCv`]: ximgproc/src/l0_smooth.cpp. The differences use a
//!   replicated border (`h = 0` in the last column, `v = 0` in the last row) and the
//!   divergence `h(x-1) - h(x)` reads `h(-1)` as `h(1)` (`BORDER_REFLECT_101`), while the
//!   solve stays circular.
//!   REF: that mix is inconsistent: the circular `∇ᵀ∇` still penalises the wrap-around
//!   jump that `h` no longer carries, so an image whose left and right columns differ
//!   is bent to meet itself. On a 0.1 | 0.9 step OpenCV (and this mode) returns about
//!   -0.19 on the left half. Use it only to reproduce OpenCV.
//!
//! Everything runs in `f32`, as OpenCV's code does (MATLAB runs in `double`).
//!
//! Speed: two real channels ride in one complex 2-D FFT (`a + i·b`, fft2.rs): every
//! step of the solve is real-linear with a real, even denominator, so they never need
//! separating. The FFT plans and `∇ᵀ∇`'s spectrum are computed once per call.
//!
//! # References
//! L. Xu, C. Lu, Y. Xu, J. Jia, "Image smoothing via L0 gradient minimization",
//! ACM TOG 30(6) (SIGGRAPH Asia 2011), doi:10.1145/2070781.2024208.

use rayon::prelude::*;
use rustfft::num_complex::Complex32;

use super::fft2::{diff_power_spectrum, Fft2};
use super::Planes;
use crate::{Error, Result};

/// β stops growing here (OpenCV's `betaMax`, Xu's `betamax`).
const BETA_MAX: f64 = 1e5;

/// Parameters of [`l0_smooth`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L0Params {
    /// Weight of the gradient count (> 0), for intensities on the [0,1] scale; larger
    /// means flatter. Xu et al. use 0.002–0.05.
    pub lambda: f32,
    /// Growth factor of β per round (> 1); smaller is slower and slightly sharper.
    pub kappa: f32,
    /// How the gradients treat the image border.
    pub boundary: L0Boundary,
}

/// The boundary rule of [`l0_smooth`]; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L0Boundary {
    /// Periodic differences, consistent with the FFT solve (Xu's MATLAB code).
    #[default]
    Periodic,
    /// OpenCV `ximgproc`'s replicated differences with a circular solve (reproduces
    /// `cv::ximgproc::l0Smooth`, including its border artefacts).
    OpenCv,
}

impl L0Params {
    /// Validated parameters with periodic boundaries.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] when `lambda` is not positive or `kappa` is not above 1.
    pub fn new(lambda: f32, kappa: f32) -> Result<Self> {
        super::bilateral::positive("lambda", lambda, "a positive smoothness weight")?;
        if !(kappa.is_finite() && kappa > 1.0) {
            return Err(Error::InvalidParam { name: "kappa", value: kappa.to_string(), expected: "a growth factor above 1" });
        }
        Ok(Self { lambda, kappa, boundary: L0Boundary::Periodic })
    }

    /// The same parameters with another boundary rule.
    #[must_use]
    pub fn with_boundary(self, boundary: L0Boundary) -> Self {
        Self { boundary, ..self }
    }
}

impl Default for L0Params {
    /// λ = 0.01 (the CSGIS paper's MATLAB baselines, Figs. 5, 8, 9), κ = 2 (Xu et al.;
    /// OpenCV's defaults are λ = 0.02, κ = 2), periodic boundaries.
    fn default() -> Self {
        Self { lambda: 0.01, kappa: 2.0, boundary: L0Boundary::Periodic }
    }
}

/// L0 gradient smoothing of all channels jointly (one gradient support for all).
///
/// # Examples
/// ```
/// use csgis::ops::{l0_smooth, L0Params, Planes};
/// // A step plus low-amplitude grain: the grain is flattened, the step survives.
/// let img = Planes::from_fn(1, 24, 24, |_, y, x| if x < 12 { 0.2 } else { 0.8 } + 0.02 * ((x + y) % 2) as f32);
/// let out = l0_smooth(&img, &L0Params::default());
/// assert!((out.get(0, 10, 4) - out.get(0, 10, 5)).abs() < 1e-3);
/// assert!(out.get(0, 10, 18) - out.get(0, 10, 6) > 0.5);
/// ```
#[must_use]
pub fn l0_smooth(img: &Planes, p: &L0Params) -> Planes {
    let (c, h, w) = (img.c, img.h, img.w);
    if c == 0 || h == 0 || w == 0 {
        return img.clone();
    }
    let fft = Fft2::new(h, w);
    let lap = diff_power_spectrum(h, w);
    let pairs: Vec<(usize, Option<usize>)> = (0..c).step_by(2).map(|a| (a, (a + 1 < c).then_some(a + 1))).collect();
    let spectrum = |im: &Planes, pair| {
        let mut z = pack(im, pair);
        fft.forward(&mut z);
        z
    };
    let input_spectra: Vec<Vec<Complex32>> = pairs.iter().map(|&pair| spectrum(img, pair)).collect();

    let mut s = img.clone();
    let lambda = f64::from(p.lambda);
    let mut beta = 2.0 * lambda;
    while beta < BETA_MAX {
        let div = divergence_of_thresholded_gradient(&s, (lambda / beta) as f32, p.boundary);
        let beta32 = beta as f32;
        for (&pair, n0) in pairs.iter().zip(&input_spectra) {
            // S = F⁻¹[(F(I) + β·F(div)) / (1 + β·|F(∇)|²)]
            let mut z = spectrum(&div, pair);
            z.par_iter_mut().zip(n0).zip(&lap).for_each(|((z, &n0), &d)| *z = (n0 + *z * beta32) / (1.0 + beta32 * d));
            fft.inverse(&mut z);
            unpack(&z, pair, &mut s);
        }
        beta *= f64::from(p.kappa);
    }
    s
}

/// Step 1 and the right-hand side of step 2: forward differences, zeroed where their
/// energy summed over channels is `≤ thresh`, then the divergence
/// `h(x-1) - h(x) + v(y-1) - v(y)`, with `boundary`'s reading of the out-of-image terms.
fn divergence_of_thresholded_gradient(s: &Planes, thresh: f32, boundary: L0Boundary) -> Planes {
    let (c, h, w) = (s.c, s.h, s.w);
    let periodic = boundary == L0Boundary::Periodic;
    // Masked differences, laid out [y][c][x] so each row is one task.
    let mut hv = vec![0.0f32; 2 * h * c * w];
    hv.par_chunks_mut(2 * c * w).enumerate().for_each(|(y, out)| {
        let (hs, vs) = out.split_at_mut(c * w);
        // The row below: wrapped (periodic) or the row itself (replicate: v = 0).
        let yb = if y + 1 < h { y + 1 } else if periodic { 0 } else { y };
        for ch in 0..c {
            let row = &s.plane(ch)[y * w..][..w];
            let below = &s.plane(ch)[yb * w..][..w];
            let (hr, vr) = (&mut hs[ch * w..][..w], &mut vs[ch * w..][..w]);
            for x in 0..w - 1 {
                hr[x] = row[x + 1] - row[x];
            }
            hr[w - 1] = if periodic { row[0] - row[w - 1] } else { 0.0 };
            for ((v, &b), &a) in vr.iter_mut().zip(below).zip(row) {
                *v = b - a;
            }
        }
        for x in 0..w {
            let mag: f32 = (0..c).map(|ch| hs[ch * w + x] * hs[ch * w + x] + vs[ch * w + x] * vs[ch * w + x]).sum();
            if mag <= thresh {
                for ch in 0..c {
                    hs[ch * w + x] = 0.0;
                    vs[ch * w + x] = 0.0;
                }
            }
        }
    });
    let at = |y: usize, which: usize, ch: usize| &hv[(2 * y + which) * c * w + ch * w..][..w];
    // The index read for x - 1 (or y - 1) at 0: wrapped, or reflect-101 (1; 0 when n = 1).
    let before_first = |n: usize| if periodic { n - 1 } else { 1.min(n - 1) };
    let mut div = Planes::zeros(c, h, w);
    for (ch, plane) in div.planes_mut().into_iter().enumerate() {
        plane.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
            let (hr, vr) = (at(y, 0, ch), at(y, 1, ch));
            let vup = at(if y > 0 { y - 1 } else { before_first(h) }, 1, ch);
            let hl0 = hr[before_first(w)];
            for x in 0..w {
                let hl = if x > 0 { hr[x - 1] } else { hl0 };
                out[x] = (hl - hr[x]) + (vup[x] - vr[x]);
            }
        });
    }
    div
}

/// Channels `a` and `b` (if any) of `img` as one complex plane `a + i·b`.
fn pack(img: &Planes, (a, b): (usize, Option<usize>)) -> Vec<Complex32> {
    match b {
        Some(b) => img.plane(a).iter().zip(img.plane(b)).map(|(&re, &im)| Complex32::new(re, im)).collect(),
        None => img.plane(a).iter().map(|&re| Complex32::new(re, 0.0)).collect(),
    }
}

/// Writes the real and imaginary parts of `z` back into channels `a` and `b`.
fn unpack(z: &[Complex32], (a, b): (usize, Option<usize>), s: &mut Planes) {
    for (o, v) in s.plane_mut(a).iter_mut().zip(z) {
        *o = v.re;
    }
    if let Some(b) = b {
        for (o, v) in s.plane_mut(b).iter_mut().zip(z) {
            *o = v.im;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_images::hashed;

    #[test]
    fn step_edge_survives_and_flat_grain_goes() {
        let img = Planes::from_fn(3, 20, 30, |c, y, x| if x < 15 { 0.1 } else { 0.9 } + 0.01 * ((x + y + c) % 2) as f32);
        let out = l0_smooth(&img, &L0Params::new(0.02, 2.0).expect("valid"));
        let left: Vec<f32> = (2..12).map(|x| out.get(0, 10, x)).collect();
        assert!(left.windows(2).all(|p| (p[0] - p[1]).abs() < 1e-3), "{left:?}");
        assert!(out.get(0, 10, 20) - out.get(0, 10, 8) > 0.7);
    }

    #[test]
    fn opencv_boundary_bends_a_step_like_opencv() {
        // cv2.ximgproc.l0Smooth on this image gives -0.194 at (10, 5) (OpenCV 5.0.0).
        let img = Planes::from_fn(3, 20, 30, |c, y, x| if x < 15 { 0.1 } else { 0.9 } + 0.01 * ((x + y + c) % 2) as f32);
        let p = L0Params::new(0.02, 2.0).expect("valid").with_boundary(L0Boundary::OpenCv);
        let out = l0_smooth(&img, &p);
        assert!((out.get(0, 10, 5) + 0.193).abs() < 2e-3, "{}", out.get(0, 10, 5));
    }

    #[test]
    fn odd_sizes_and_single_rows_work() {
        for (h, w) in [(1, 7), (7, 1), (1, 1), (5, 13)] {
            let img = hashed(3, h, w, 0);
            for boundary in [L0Boundary::Periodic, L0Boundary::OpenCv] {
                let out = l0_smooth(&img, &L0Params::default().with_boundary(boundary));
                assert_eq!((out.c, out.h, out.w), (3, h, w));
                assert!(out.data.iter().all(|v| v.is_finite()));
            }
        }
    }

    #[test]
    fn rejects_bad_params() {
        assert!(L0Params::new(0.0, 2.0).is_err());
        assert!(L0Params::new(0.01, 1.0).is_err());
        assert!(L0Params::new(0.01, f32::NAN).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn constant_is_fixed_point(c in 1usize..4, h in 1usize..12, w in 1usize..12, v in 0.0f32..=1.0) {
            let out = l0_smooth(&Planes::constant(c, h, w, v), &L0Params::default());
            prop_assert!(out.data.iter().all(|o| (o - v).abs() < 1e-5));
        }

        #[test]
        fn keeps_shape_and_roughly_the_range(data in prop::collection::vec(0.0f32..=1.0, 3 * 7 * 9)) {
            let img = Planes::from_vec(3, 7, 9, data);
            let out = l0_smooth(&img, &L0Params::new(0.02, 2.0).expect("valid"));
            prop_assert_eq!((out.c, out.h, out.w), (3, 7, 9));
            prop_assert!(out.data.iter().all(|o| (-0.05..=1.05).contains(o)));
        }
    }
}
