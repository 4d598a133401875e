//! Guided filter (He, Sun & Tang), the image guiding itself, as OpenCV's `ximgproc` computes it.
//!
//! In every `(2r+1)²` window the output is a linear function of the guide `I`,
//! `q = a·I + b`, fitted to the input `p` by ridge regression with weight `eps`.
//! For a colour guide `a` is a 3×3 matrix per window, `(Σ + eps·E)⁻¹ Σ_Ip`, where `Σ` is
//! the window's colour covariance; the coefficients are then box-averaged and applied
//! at each pixel. With `p = I` (self-guided, the only mode here) `Σ_Ip = Σ`, so
//! `a = E - eps·(Σ + eps·E)⁻¹` is symmetric: 6 planes to average instead of 9, and no
//! second covariance, 18 box means in all against OpenCV's 33.
//!
//! 1-channel images use the scalar filter, `a = σ² / (σ² + eps)`. Images with another
//! channel count are filtered channel by channel, each channel its own guide.
//!
//! Matches `cv2.ximgproc.guidedFilter(guide=img, src=img, radius, eps)` on `float32`
//! input (ximgproc/src/guided_filter.cpp): box means over `BORDER_REFLECT`, `eps` added
//! to the diagonal unsquared.
//! REF: for `eps < 1e-2` OpenCV replaces a covariance determinant `|det| < 1e-6` by 1,
//! which turns flat windows into plain box means; this code inverts exactly, so the two
//! agree only for `eps ≥ 0.01` or well-textured windows.
//!
//! # References
//! K. He, J. Sun, X. Tang, "Guided image filtering", IEEE TPAMI 35(6), 2013,
//! doi:10.1109/TPAMI.2012.213. Reference code: He's MATLAB `guidedfilter_color.m`.

use rayon::prelude::*;

use super::{box_mean_plane, Border, Planes};
use crate::{Error, Result};

/// Parameters of [`guided_filter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuidedParams {
    /// Window radius in pixels (≥ 1); the window is `(2·radius + 1)²`.
    pub radius: usize,
    /// Regularisation in squared [0,1] intensity units (> 0): edges whose variance is
    /// well above `eps` are kept. On 8-bit data the same filter takes `eps·255²`;
    /// He et al. quote `eps` as a squared intensity (`0.2²` = 0.04).
    pub eps: f32,
}

impl GuidedParams {
    /// Validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] when `radius` is 0 or `eps` is not a positive finite number.
    pub fn new(radius: usize, eps: f32) -> Result<Self> {
        if radius == 0 {
            return Err(Error::InvalidParam { name: "radius", value: "0".into(), expected: "a radius of at least 1 pixel" });
        }
        super::bilateral::positive("eps", eps, "a positive regularisation in [0,1]² units")?;
        Ok(Self { radius, eps })
    }
}

impl Default for GuidedParams {
    /// radius 8, eps 0.2² = 0.04: He et al.'s edge-preserving smoothing setting
    /// (TPAMI 2013, Fig. 2 uses r ∈ {2, 4, 8}, eps ∈ {0.1², 0.2², 0.4²}).
    fn default() -> Self {
        Self { radius: 8, eps: 0.04 }
    }
}

/// Self-guided guided filter.
///
/// # Examples
/// ```
/// use csgis::ops::{guided_filter, GuidedParams, Planes};
/// let img = Planes::from_fn(3, 20, 20, |c, y, x| if x < 10 { 0.1 } else { 0.9 } + 0.02 * ((c + y + x) % 2) as f32);
/// let out = guided_filter(&img, &GuidedParams::new(3, 0.001).unwrap());
/// // The checkerboard grain is smoothed away, the step stays.
/// assert!((out.get(0, 10, 3) - 0.11).abs() < 0.005 && out.get(0, 10, 16) > 0.89);
/// ```
#[must_use]
pub fn guided_filter(img: &Planes, p: &GuidedParams) -> Planes {
    if img.c == 3 {
        return guided_colour(img, p);
    }
    let n = img.plane_len();
    let data = (0..img.c)
        .into_par_iter()
        .flat_map_iter(|ch| guided_gray(img.plane(ch), img.h, img.w, p))
        .collect::<Vec<f32>>();
    debug_assert_eq!(data.len(), img.c * n);
    Planes::from_vec(img.c, img.h, img.w, data)
}

/// Box mean with the guided filter's border rule (OpenCV uses `BORDER_REFLECT` here).
fn mean(plane: &[f32], h: usize, w: usize, r: usize) -> Vec<f32> {
    box_mean_plane(plane, h, w, r, Border::Reflect)
}

/// Box means of several planes at once (in parallel).
fn means(planes: &[Vec<f32>], h: usize, w: usize, r: usize) -> Vec<Vec<f32>> {
    planes.par_iter().map(|pl| mean(pl, h, w, r)).collect()
}

/// Scalar guided filter of one plane guiding itself.
fn guided_gray(plane: &[f32], h: usize, w: usize, p: &GuidedParams) -> Vec<f32> {
    let r = p.radius;
    let sq: Vec<f32> = plane.iter().map(|v| v * v).collect();
    let mm = means(&[plane.to_vec(), sq], h, w, r);
    let eps = p.eps;
    let (a, b): (Vec<f32>, Vec<f32>) = mm[0]
        .par_iter()
        .zip(&mm[1])
        .map(|(&m, &m2)| {
            let var = m2 - m * m;
            let a = var / (var + eps);
            (a, m - a * m)
        })
        .unzip();
    let ab = means(&[a, b], h, w, r);
    plane.par_iter().zip(&ab[0]).zip(&ab[1]).map(|((&i, &a), &b)| a * i + b).collect()
}

/// Index of the symmetric pair (k, l) in the 6-plane upper triangle `00 01 02 11 12 22`.
const SYM: [[usize; 3]; 3] = [[0, 1, 2], [1, 3, 4], [2, 4, 5]];

/// Colour guided filter of a 3-channel image guiding itself.
fn guided_colour(img: &Planes, p: &GuidedParams) -> Planes {
    let (h, w, r, n) = (img.h, img.w, p.radius, img.plane_len());
    let chans: Vec<Vec<f32>> = (0..3).map(|c| img.plane(c).to_vec()).collect();
    let mu = means(&chans, h, w, r);
    // Window second moments E[I_k I_l], upper triangle.
    let prods: Vec<Vec<f32>> = (0..6)
        .into_par_iter()
        .map(|s| {
            let (k, l) = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)][s];
            chans[k].iter().zip(&chans[l]).map(|(a, b)| a * b).collect()
        })
        .collect();
    let corr = means(&prods, h, w, r);
    drop(prods);

    // Per pixel: a = E - eps (Σ + eps E)⁻¹ (symmetric, 6 values), b = μ - a μ (3 values).
    let eps = f64::from(p.eps);
    let per_pixel: Vec<[f32; 9]> = (0..n)
        .into_par_iter()
        .map(|i| {
            let m = [f64::from(mu[0][i]), f64::from(mu[1][i]), f64::from(mu[2][i])];
            let s = |k: usize, l: usize| f64::from(corr[SYM[k][l]][i]) - m[k] * m[l] + if k == l { eps } else { 0.0 };
            let a = ridge_coefficients([s(0, 0), s(0, 1), s(0, 2), s(1, 1), s(1, 2), s(2, 2)], eps);
            let mut out = [0.0f32; 9];
            for (o, v) in out.iter_mut().zip(a) {
                *o = v as f32;
            }
            for k in 0..3 {
                let am: f64 = (0..3).map(|l| a[SYM[k][l]] * m[l]).sum();
                out[6 + k] = (m[k] - am) as f32;
            }
            out
        })
        .collect();
    let coef: Vec<Vec<f32>> = (0..9).into_par_iter().map(|s| per_pixel.iter().map(|a| a[s]).collect()).collect();
    drop(per_pixel);
    let mcoef = means(&coef, h, w, r);
    drop(coef);

    let mut out = Planes::zeros(3, h, w);
    out.planes_mut().into_par_iter().enumerate().for_each(|(k, dst)| {
        let (a0, a1, a2) = (&mcoef[SYM[k][0]], &mcoef[SYM[k][1]], &mcoef[SYM[k][2]]);
        for (i, o) in dst.iter_mut().enumerate() {
            *o = a0[i] * chans[0][i] + a1[i] * chans[1][i] + a2[i] * chans[2][i] + mcoef[6 + k][i];
        }
    });
    out
}

/// `E - eps·S⁻¹` for the symmetric positive definite `S = Σ + eps·E` given as its upper
/// triangle `[s00, s01, s02, s11, s12, s22]`; returned in the same order.
fn ridge_coefficients(s: [f64; 6], eps: f64) -> [f64; 6] {
    let [s00, s01, s02, s11, s12, s22] = s;
    // Cofactors (the adjugate of a symmetric matrix is symmetric).
    let c00 = s11 * s22 - s12 * s12;
    let c01 = s02 * s12 - s01 * s22;
    let c02 = s01 * s12 - s02 * s11;
    let c11 = s00 * s22 - s02 * s02;
    let c12 = s01 * s02 - s00 * s12;
    let c22 = s00 * s11 - s01 * s01;
    let det = s00 * c00 + s01 * c01 + s02 * c02;
    let k = eps / det;
    [1.0 - k * c00, -k * c01, -k * c02, 1.0 - k * c11, -k * c12, 1.0 - k * c22]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_images::hashed;

    /// He et al.'s algorithm 1 for a colour guide and colour input, written out with a
    /// general 3×3 inverse and all 9 + 9 planes (no symmetry shortcut).
    fn reference(img: &Planes, p: &GuidedParams) -> Planes {
        let (h, w, r) = (img.h, img.w, p.radius);
        let m = |v: &[f32]| mean(v, h, w, r);
        let n = img.plane_len();
        let i: Vec<Vec<f32>> = (0..3).map(|c| img.plane(c).to_vec()).collect();
        let mu: Vec<Vec<f32>> = i.iter().map(|v| m(v)).collect();
        let cov = |k: usize, l: usize| -> Vec<f32> {
            let prod: Vec<f32> = i[k].iter().zip(&i[l]).map(|(a, b)| a * b).collect();
            m(&prod).iter().enumerate().map(|(j, v)| v - mu[k][j] * mu[l][j]).collect()
        };
        let sig: Vec<Vec<Vec<f32>>> = (0..3).map(|k| (0..3).map(|l| cov(k, l)).collect()).collect();
        // a[out channel][guide channel]
        let mut a = vec![vec![vec![0.0f32; n]; 3]; 3];
        let mut b = vec![vec![0.0f32; n]; 3];
        for j in 0..n {
            let mut s = [[0.0f64; 3]; 3];
            for k in 0..3 {
                for l in 0..3 {
                    s[k][l] = f64::from(sig[k][l][j]) + if k == l { f64::from(p.eps) } else { 0.0 };
                }
            }
            let inv = invert3(s);
            for out in 0..3 {
                for g in 0..3 {
                    a[out][g][j] = (0..3).map(|t| inv[g][t] * f64::from(sig[t][out][j])).sum::<f64>() as f32;
                }
                b[out][j] = mu[out][j] - (0..3).map(|g| a[out][g][j] * mu[g][j]).sum::<f32>();
            }
        }
        Planes::from_fn(3, h, w, |c, y, x| {
            let j = y * w + x;
            let ma: f32 = (0..3).map(|g| m(&a[c][g])[j] * i[g][j]).sum();
            ma + m(&b[c])[j]
        })
    }

    fn invert3(s: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
        let c = |r: usize, k: usize| {
            let (r1, r2, k1, k2) = ((r + 1) % 3, (r + 2) % 3, (k + 1) % 3, (k + 2) % 3);
            s[r1][k1] * s[r2][k2] - s[r1][k2] * s[r2][k1]
        };
        let det = s[0][0] * c(0, 0) + s[0][1] * c(0, 1) + s[0][2] * c(0, 2);
        let mut inv = [[0.0; 3]; 3];
        for (r, row) in inv.iter_mut().enumerate() {
            for (k, v) in row.iter_mut().enumerate() {
                *v = c(k, r) / det;
            }
        }
        inv
    }

    #[test]
    fn colour_matches_direct_algorithm() {
        let img = hashed(3, 17, 12, 0);
        for p in [GuidedParams { radius: 2, eps: 0.01 }, GuidedParams { radius: 4, eps: 1e-4 }] {
            let (got, want) = (guided_filter(&img, &p), reference(&img, &p));
            let err = got.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(err < 1e-4, "{p:?}: max error {err}");
        }
    }

    #[test]
    fn gray_large_eps_tends_to_box_mean() {
        let img = hashed(1, 9, 11, 0);
        let out = guided_filter(&img, &GuidedParams { radius: 1, eps: 1e6 });
        let boxed = mean(img.plane(0), 9, 11, 1);
        // a ≈ 0, b = mean, then averaged again: the double box mean.
        let want = mean(&boxed, 9, 11, 1);
        assert!(out.data.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn rejects_bad_params() {
        assert!(GuidedParams::new(0, 0.01).is_err());
        assert!(GuidedParams::new(4, 0.0).is_err());
        assert!(GuidedParams::new(4, f32::INFINITY).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn constant_is_fixed_point(c in prop::sample::select(vec![1usize, 2, 3]), h in 1usize..12, w in 1usize..12, v in 0.0f32..=1.0) {
            let out = guided_filter(&Planes::constant(c, h, w, v), &GuidedParams { radius: 3, eps: 0.01 });
            prop_assert!(out.data.iter().all(|o| (o - v).abs() < 1e-5));
        }

        #[test]
        fn keeps_shape_and_roughly_the_range(data in prop::collection::vec(0.0f32..=1.0, 3 * 8 * 5), r in 1usize..4) {
            let img = Planes::from_vec(3, 8, 5, data);
            let out = guided_filter(&img, &GuidedParams { radius: r, eps: 0.04 });
            prop_assert_eq!((out.c, out.h, out.w), (3, 8, 5));
            // A local linear model may overshoot a little, never far.
            prop_assert!(out.data.iter().all(|o| (-0.5..=1.5).contains(o)));
        }
    }
}
