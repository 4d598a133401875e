//! Bilateral and joint bilateral filter (Tomasi & Manduchi 1998), as OpenCV computes them.
//!
//! `out(p) = Σ_q w(p,q)·I(q) / Σ_q w(p,q)` with
//! `w(p,q) = exp(-|p-q|²/2σs²) · exp(-D(p,q)²/2σr²)` over the disc `|p-q| ≤ radius`,
//! `radius = round(1.5·σs)` (at least 1), where `D` is the **L1** colour distance of
//! the guide, `Σ_c |G_c(p) - G_c(q)|`, on the [0,1] scale. Borders reflect
//! (`BORDER_REFLECT_101`).
//!
//! Those are the choices of `cv::bilateralFilter(src, dst, d = -1, σr, σs)` on `CV_32F`
//! input (imgproc/src/bilateral_filter.dispatch.cpp) and of
//! `cv::ximgproc::jointBilateralFilter` (ximgproc/src/joint_bilateral_filter.cpp):
//! `cvRound` rounds half to even, so σs = 3 gives radius 4, not 5.
//! REF: OpenCV reads `exp` from a 4096-bins-per-channel table with linear interpolation;
//! this code evaluates it (to about 2e-7) instead; the outputs agree to > 60 dB.
//! REF: for a constant guide OpenCV's joint filter falls back to a square `GaussianBlur`;
//! here the disc stays, so a constant guide gives a disc-shaped Gaussian.
//!
//! # References
//! C. Tomasi, R. Manduchi, "Bilateral filtering for gray and color images", ICCV 1998,
//! doi:10.1109/ICCV.1998.710815.

use rayon::prelude::*;

use super::{Border, Planes};
use crate::{Error, Result};

/// Parameters of [`bilateral_filter`] and [`joint_bilateral_filter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BilateralParams {
    /// Spatial standard deviation in pixels (> 0); the window radius is `round(1.5·σs)`.
    pub sigma_s: f32,
    /// Range standard deviation on the [0,1] intensity scale (> 0), applied to the L1
    /// colour distance. OpenCV's `sigmaColor` on 8-bit images is `255·sigma_r`.
    pub sigma_r: f32,
}

impl BilateralParams {
    /// Validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] when either sigma is not a positive finite number.
    pub fn new(sigma_s: f32, sigma_r: f32) -> Result<Self> {
        positive("sigma_s", sigma_s, "a positive spatial sigma in pixels")?;
        positive("sigma_r", sigma_r, "a positive range sigma on the [0,1] scale")?;
        Ok(Self { sigma_s, sigma_r })
    }

    /// The window radius OpenCV derives from σs with `d = -1`: `cvRound(1.5·σs)`, at least 1.
    #[must_use]
    pub fn radius(&self) -> usize {
        ((1.5 * f64::from(self.sigma_s)).round_ties_even() as usize).max(1)
    }
}

impl Default for BilateralParams {
    /// σs = 3 px (radius 4), σr = 0.1: removes fine grain, keeps edges of contrast ≳ 0.2.
    fn default() -> Self {
        Self { sigma_s: 3.0, sigma_r: 0.1 }
    }
}

/// Checks that `v` is finite and > 0.
pub(crate) fn positive(name: &'static str, v: f32, expected: &'static str) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParam { name, value: v.to_string(), expected })
    }
}

/// Bilateral filter of every channel, the image guiding itself.
///
/// # Examples
/// ```
/// use csgis::ops::{bilateral_filter, BilateralParams, Planes};
/// let img = Planes::from_fn(3, 16, 16, |_, _, x| if x < 8 { 0.2 } else { 0.8 });
/// let out = bilateral_filter(&img, &BilateralParams::default());
/// // The step is far above σr, so it survives.
/// assert!((out.get(0, 8, 7) - 0.2).abs() < 1e-3 && (out.get(0, 8, 8) - 0.8).abs() < 1e-3);
/// ```
#[must_use]
pub fn bilateral_filter(img: &Planes, p: &BilateralParams) -> Planes {
    joint_bilateral_filter(img, img, p)
}

/// Joint (cross) bilateral filter: the weights come from `guide`, the values from `img`.
///
/// `guide` may have any number of channels; its L1 colour distance sets the range weight.
///
/// # Panics
/// 1. When `guide` and `img` differ in height or width.
#[must_use]
pub fn joint_bilateral_filter(img: &Planes, guide: &Planes, p: &BilateralParams) -> Planes {
    assert_eq!((img.h, img.w), (guide.h, guide.w), "joint bilateral: guide size must match");
    let (h, w, r) = (img.h, img.w, p.radius());
    if h == 0 || w == 0 || img.c == 0 {
        return img.clone();
    }
    let pad = |im: &Planes| -> Vec<Vec<f32>> {
        (0..im.c).into_par_iter().map(|ch| Border::Reflect101.pad_plane(im.plane(ch), h, w, r)).collect()
    };
    let src = pad(img);
    let gde = if std::ptr::eq(img, guide) { src.clone() } else { pad(guide) };
    let kernel = Kernel {
        src: &src,
        gde: &gde,
        taps: disc_taps(r, p.sigma_s),
        r,
        w,
        pw: w + 2 * r,
        coef: (-0.5 / (f64::from(p.sigma_r) * f64::from(p.sigma_r))) as f32,
    };
    // Bands of rows are independent: each task writes its rows of every channel, laid
    // out [y][c][x], and the planes are gathered afterwards. Long bands keep the
    // symmetric kernel's r ghost rows per band cheap; short ones balance the threads.
    let band = h.div_ceil(2 * rayon::current_num_threads()).min(64).max(4 * r);
    let mut rows = vec![0.0f32; h * img.c * w];
    rows.par_chunks_mut(band * img.c * w).enumerate().for_each(|(b, out)| kernel.band(b * band, out));
    let mut out = Planes::zeros(img.c, h, w);
    for (ch, plane) in out.planes_mut().into_iter().enumerate() {
        for (y, dst) in plane.chunks_mut(w).enumerate() {
            dst.copy_from_slice(&rows[(y * img.c + ch) * w..][..w]);
        }
    }
    out
}

/// One spatial tap: its offset and Gaussian weight.
struct Tap {
    dy: isize,
    dx: isize,
    weight: f32,
}

/// The disc `dy² + dx² ≤ r²` with weights `exp(-(dy²+dx²)/2σs²)`, centre excluded
/// (it always has weight 1).
fn disc_taps(r: usize, sigma_s: f32) -> Vec<Tap> {
    let ri = r as isize;
    let coef = -0.5 / (f64::from(sigma_s) * f64::from(sigma_s));
    let mut taps = Vec::new();
    for dy in -ri..=ri {
        for dx in -ri..=ri {
            let r2 = (dy * dy + dx * dx) as f64;
            if r2 <= (ri * ri) as f64 && (dy, dx) != (0, 0) {
                taps.push(Tap { dy, dx, weight: (r2 * coef).exp() as f32 });
            }
        }
    }
    taps
}

/// Pixels per tile: a tile's accumulator rows stay in L1.
const TILE: usize = 256;

/// The padded planes and everything else the bands share.
struct Kernel<'a> {
    src: &'a [Vec<f32>],
    gde: &'a [Vec<f32>],
    taps: Vec<Tap>,
    r: usize,
    w: usize,
    /// Padded row length, `w + 2r`.
    pw: usize,
    /// `-1 / 2σr²`.
    coef: f32,
}

impl Kernel<'_> {
    /// Index of image pixel (y, x) in a padded plane; `-r ≤ y, x`.
    fn index(&self, y: isize, x: isize) -> usize {
        ((y + self.r as isize) * self.pw as isize + self.r as isize + x) as usize
    }

    /// Filters the rows `y0..` that fit in `out` (`[y][c][x]`). RGB and gray get the
    /// symmetric kernel with channel counts known at compile time; others the general one.
    fn band(&self, y0: usize, out: &mut [f32]) {
        let y1 = y0 + out.len() / (self.src.len() * self.w);
        match (self.gde.len(), self.src.len()) {
            (3, 3) => self.symmetric::<3, 3>(y0, y1, out),
            (1, 1) => self.symmetric::<1, 1>(y0, y1, out),
            (1, 3) => self.symmetric::<1, 3>(y0, y1, out),
            (3, 1) => self.symmetric::<3, 1>(y0, y1, out),
            _ => {
                for (y, row) in (y0..y1).zip(out.chunks_mut(self.src.len() * self.w)) {
                    self.general(y, row);
                }
            }
        }
    }

    /// The range weight is symmetric, `w(p, p+o) = w(p+o, p)`, so each weight is computed
    /// once for the half disc (`dy > 0`, or `dy = 0, dx > 0`) and used twice: for `p`
    /// (direct) and for `p + o` (mirror). Rows `y0 - r .. y0` are ghosts: they only send
    /// mirrored terms into the band. Distance, weight and accumulation are each one
    /// vectorised loop over a tile.
    fn symmetric<const CG: usize, const CS: usize>(&self, y0: usize, y1: usize, out: &mut [f32]) {
        let rows = y1 - y0;
        let mut acc = vec![[0.0f32; TILE]; rows * CS];
        let mut wsum = vec![[0.0f32; TILE]; rows];
        let mut wt = vec![0.0f32; TILE + self.r];
        let (y0, y1) = (y0 as isize, y1 as isize);
        for x0 in (0..self.w).step_by(TILE) {
            let n = TILE.min(self.w - x0);
            let xi = x0 as isize;
            // The centre pixel has weight 1.
            for (i, y) in (y0..y1).enumerate() {
                let at = self.index(y, xi);
                wsum[i][..n].fill(1.0);
                for (c, s) in self.src.iter().enumerate() {
                    acc[i * CS + c][..n].copy_from_slice(&s[at..at + n]);
                }
            }
            for y in y0 - self.r as isize..y1 {
                for tap in self.taps.iter().filter(|t| t.dy > 0 || (t.dy == 0 && t.dx > 0)) {
                    let (direct, mirror) = (y >= y0, y + tap.dy < y1 && y + tap.dy >= y0);
                    if !direct && !mirror {
                        continue;
                    }
                    // Source columns p.x - x0 in lo..hi: 0..n for direct terms, the
                    // targets' sources -dx..n-dx for mirrored ones.
                    let (lo, hi) = match (direct, mirror) {
                        (true, true) => ((-tap.dx).min(0), (n as isize).max(n as isize - tap.dx)),
                        (true, false) => (0, n as isize),
                        _ => (-tap.dx, n as isize - tap.dx),
                    };
                    let m = (hi - lo) as usize;
                    let p = self.index(y, xi + lo);
                    let q = self.index(y + tap.dy, xi + lo + tap.dx);
                    let g0: [&[f32]; CG] = std::array::from_fn(|c| &self.gde[c][p..p + m]);
                    let g1: [&[f32]; CG] = std::array::from_fn(|c| &self.gde[c][q..q + m]);
                    for (k, wk) in wt[..m].iter_mut().enumerate() {
                        let mut d = 0.0f32;
                        for c in 0..CG {
                            d += (g0[c][k] - g1[c][k]).abs();
                        }
                        *wk = tap.weight * exp_neg(self.coef * d * d);
                    }
                    if direct {
                        // Target (y, x) reads its neighbour (y+dy, x+dx): weight k = x - lo.
                        let k0 = (-lo) as usize;
                        self.accumulate::<CS>(&wt[k0..k0 + n], q + k0, &mut acc, &mut wsum, (y - y0) as usize);
                    }
                    if mirror {
                        // Target (y+dy, x) reads (y, x-dx): weight k = x - dx - lo.
                        let k0 = (-tap.dx - lo) as usize;
                        self.accumulate::<CS>(&wt[k0..k0 + n], p + k0, &mut acc, &mut wsum, (y + tap.dy - y0) as usize);
                    }
                }
            }
            for (i, out_row) in out.chunks_mut(CS * self.w).enumerate() {
                for c in 0..CS {
                    let dst = &mut out_row[c * self.w + x0..][..n];
                    for ((o, &a), &s) in dst.iter_mut().zip(&acc[i * CS + c][..n]).zip(&wsum[i][..n]) {
                        *o = a / s;
                    }
                }
            }
        }
    }

    /// `acc[row] += wt · src[from..]`, `wsum[row] += wt`, over one tile.
    fn accumulate<const CS: usize>(&self, wt: &[f32], from: usize, acc: &mut [[f32; TILE]], wsum: &mut [[f32; TILE]], row: usize) {
        let n = wt.len();
        for (c, s) in self.src.iter().enumerate() {
            for ((a, &w), &v) in acc[row * CS + c][..n].iter_mut().zip(wt).zip(&s[from..from + n]) {
                *a += w * v;
            }
        }
        for (s, &w) in wsum[row][..n].iter_mut().zip(wt) {
            *s += w;
        }
    }

    /// Any channel counts, one output row: per tap the weights of a tile first, then one
    /// accumulation per channel.
    fn general(&self, y: usize, out: &mut [f32]) {
        let mut acc = vec![[0.0f32; TILE]; self.src.len()];
        let mut wsum = [0.0f32; TILE];
        let mut wt = [0.0f32; TILE];
        for x0 in (0..self.w).step_by(TILE) {
            let n = TILE.min(self.w - x0);
            let at = self.index(y as isize, x0 as isize);
            wsum[..n].fill(1.0);
            for (a, s) in acc.iter_mut().zip(self.src) {
                a[..n].copy_from_slice(&s[at..at + n]);
            }
            for tap in &self.taps {
                let q = self.index(y as isize + tap.dy, x0 as isize + tap.dx);
                wt[..n].fill(0.0);
                for g in self.gde {
                    for ((d, &g0), &g1) in wt[..n].iter_mut().zip(&g[at..at + n]).zip(&g[q..q + n]) {
                        *d += (g0 - g1).abs();
                    }
                }
                for (d, s) in wt[..n].iter_mut().zip(&mut wsum[..n]) {
                    *d = tap.weight * exp_neg(self.coef * *d * *d);
                    *s += *d;
                }
                for (a, s) in acc.iter_mut().zip(self.src) {
                    for ((a, &wt), &v) in a[..n].iter_mut().zip(&wt[..n]).zip(&s[q..q + n]) {
                        *a += wt * v;
                    }
                }
            }
            for (ch, a) in acc.iter().enumerate() {
                for ((o, &a), &s) in out[ch * self.w + x0..][..n].iter_mut().zip(&a[..n]).zip(&wsum[..n]) {
                    *o = a / s;
                }
            }
        }
    }
}

/// `exp(x)` for `x ≤ 0` to about 2e-7 relative, in branch-free arithmetic that the
/// compiler vectorises (the range weight is the hot spot of the filter).
#[inline]
pub(crate) fn exp_neg(x: f32) -> f32 {
    // exp(x) = 2^n · exp(r), n = round(x·log2 e), r = x - n·ln 2 in [-ln2/2, ln2/2], with
    // ln 2 split in two (Cody & Waite) so r keeps full precision for large |x|. Adding
    // 1.5·2²³ rounds to an integer held in the low mantissa bits: no float-to-int
    // conversion (`as` saturates, which does not vectorise on baseline x86-64).
    const SHIFT: f32 = 12_582_912.0;
    let x = x.max(-86.0);
    let z = x * std::f32::consts::LOG2_E + SHIFT;
    let nf = z - SHIFT;
    let r = x - nf * 0.693_359_4 - nf * -2.121_944_4e-4;
    let scale = f32::from_bits(z.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23);
    // Taylor series of exp(r) to degree 6 (relative error < 1.2e-7 on [-ln2/2, ln2/2]) in
    // Estrin's form: a short dependency chain, which matters more than the operation
    // count here. Plain `*` and `+`: `mul_add` is a libm call without the `fma` feature.
    let r2 = r * r;
    let p01 = 1.0 + r;
    let p23 = 0.5 + r * (1.0 / 6.0);
    let p45 = 1.0 / 24.0 + r * (1.0 / 120.0);
    (p01 + r2 * (p23 + r2 * (p45 + r2 * (1.0 / 720.0)))) * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_images::hashed;

    /// Straight transcription of the definition, exact `exp`, f64 sums.
    fn reference(img: &Planes, guide: &Planes, p: &BilateralParams) -> Planes {
        let r = p.radius() as isize;
        let (h, w) = (img.h, img.w);
        let b = Border::Reflect101;
        let mut out = Planes::zeros(img.c, h, w);
        for y in 0..h {
            for x in 0..w {
                let (mut acc, mut ws) = (vec![0.0f64; img.c], 0.0f64);
                for dy in -r..=r {
                    for dx in -r..=r {
                        if dy * dy + dx * dx > r * r {
                            continue;
                        }
                        let (yy, xx) = (b.index(y as isize + dy, h), b.index(x as isize + dx, w));
                        let d: f64 = (0..guide.c).map(|c| f64::from((guide.get(c, y, x) - guide.get(c, yy, xx)).abs())).sum();
                        let s = f64::from(p.sigma_s);
                        let sr = f64::from(p.sigma_r);
                        let wt = (-((dy * dy + dx * dx) as f64) / (2.0 * s * s) - d * d / (2.0 * sr * sr)).exp();
                        ws += wt;
                        for (c, a) in acc.iter_mut().enumerate() {
                            *a += wt * f64::from(img.get(c, yy, xx));
                        }
                    }
                }
                for (c, a) in acc.iter().enumerate() {
                    out.set(c, y, x, (a / ws) as f32);
                }
            }
        }
        out
    }

    #[test]
    fn exp_neg_is_accurate() {
        for i in 0..=20_000 {
            let x = -(i as f32) * 0.005;
            let (got, want) = (exp_neg(x), x.exp());
            assert!((got - want).abs() <= 3e-7 * want + 1e-30, "x={x}: {got} vs {want}");
        }
        assert!(exp_neg(-1e6) >= 0.0 && exp_neg(-1e6) < 1e-37 && exp_neg(0.0) == 1.0);
    }

    #[test]
    fn radius_rounds_half_to_even_like_cv_round() {
        let r = |s| BilateralParams::new(s, 0.1).map(|p| p.radius()).ok();
        assert_eq!((r(1.0), r(3.0), r(4.0), r(5.0), r(0.1)), (Some(2), Some(4), Some(6), Some(8), Some(1)));
    }

    #[test]
    fn matches_definition_colour_and_joint() {
        // 70 × 300: several bands and a partial second tile.
        let img = hashed(3, 70, 300, 1);
        let guide = hashed(1, 70, 300, 5);
        let two = hashed(2, 70, 300, 9);
        for p in [BilateralParams::new(2.0, 0.2).ok(), BilateralParams::new(1.0, 0.05).ok()].into_iter().flatten() {
            for (got, want) in [
                (bilateral_filter(&img, &p), reference(&img, &img, &p)),
                (joint_bilateral_filter(&img, &guide, &p), reference(&img, &guide, &p)),
                (joint_bilateral_filter(&guide, &img, &p), reference(&guide, &img, &p)),
                // Two channels: the general kernel.
                (bilateral_filter(&two, &p), reference(&two, &two, &p)),
                (joint_bilateral_filter(&img, &two, &p), reference(&img, &two, &p)),
            ] {
                let err = got.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(err < 2e-5, "{p:?}: max error {err}");
            }
        }
    }

    #[test]
    fn rejects_bad_params() {
        assert!(BilateralParams::new(0.0, 0.1).is_err());
        assert!(BilateralParams::new(3.0, -1.0).is_err());
        assert!(BilateralParams::new(f32::NAN, 0.1).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn constant_is_fixed_point(h in 1usize..12, w in 1usize..12, v in 0.0f32..=1.0, s in 0.5f32..4.0) {
            let p = BilateralParams::new(s, 0.1).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let out = bilateral_filter(&Planes::constant(3, h, w, v), &p);
            prop_assert!(out.data.iter().all(|o| (o - v).abs() < 1e-6));
        }

        #[test]
        fn keeps_shape_and_range(data in prop::collection::vec(0.0f32..=1.0, 3 * 7 * 9), sr in 0.01f32..1.0) {
            let img = Planes::from_vec(3, 7, 9, data);
            let p = BilateralParams::new(2.0, sr).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let out = bilateral_filter(&img, &p);
            prop_assert_eq!((out.c, out.h, out.w), (3, 7, 9));
            prop_assert!(out.data.iter().all(|o| (-1e-6..=1.0 + 1e-6).contains(o)));
        }
    }
}
