//! Box mean in O(1) per pixel: the building block of the guided filter.
//!
//! The window sum is taken separably from running sums: down every column (one running
//! sum per column, vectorised), then along the row of column sums. Accumulators are `f64`,
//! so a 1024-pixel sweep loses nothing to cancellation, and the cost does not depend on the
//! radius. This is OpenCV's `cv::boxFilter(src, dst, -1, (2r+1, 2r+1), normalize = true)`,
//! which also sums in `double` for `float` input (imgproc/src/box_filter.simd.hpp).
//!
//! Both passes run in one sweep per band of rows (rayon over bands), with no intermediate
//! plane. The row pass, a serial chain of additions, is split into [`LANES`] interleaved
//! segments so the additions pipeline.

use rayon::prelude::*;

use super::{Border, Planes};

/// Independent running sums per row in the horizontal pass.
const LANES: usize = 8;

/// Mean over the `(2·radius + 1)²` window centred on every pixel of one plane.
///
/// `src` holds `h` rows of `w` values; pixels outside the plane are read through
/// `border`. The result has the same layout.
///
/// # Panics
/// 1. When `src.len() != h * w`.
#[must_use]
pub fn box_mean_plane(src: &[f32], h: usize, w: usize, radius: usize, border: Border) -> Vec<f32> {
    let mut out = vec![0.0f32; h * w];
    box_mean_into(src, h, w, radius, border, &mut out);
    out
}

/// [`box_mean_plane`] writing into `out` (`h * w` values).
fn box_mean_into(src: &[f32], h: usize, w: usize, radius: usize, border: Border, out: &mut [f32]) {
    assert_eq!(src.len(), h * w, "box_mean_plane: plane length must be h*w");
    assert_eq!(out.len(), h * w, "box_mean_plane: output length must be h*w");
    if h == 0 || w == 0 {
        return;
    }
    let (k, r) = (2 * radius + 1, radius);
    let rows: Vec<usize> = (0..h + 2 * r).map(|i| border.index(i as isize - r as isize, h)).collect();
    let cols: Vec<usize> = (0..w + 2 * r).map(|i| border.index(i as isize - r as isize, w)).collect();
    let norm = 1.0 / (k * k) as f64;
    // Each band re-sums its first window once: keep bands long, but enough to balance.
    let band = h.div_ceil(4 * rayon::current_num_threads()).max(16);
    out.par_chunks_mut(w * band).enumerate().for_each(|(b, out_band)| {
        let y0 = b * band;
        let mut colsum = vec![0.0f64; w];
        let mut padded = vec![0.0f64; w + 2 * r];
        let mut step = vec![0.0f64; w];
        for &yy in &rows[y0..y0 + k - 1] {
            for (a, &v) in colsum.iter_mut().zip(&src[yy * w..][..w]) {
                *a += f64::from(v);
            }
        }
        for (i, out_row) in out_band.chunks_mut(w).enumerate() {
            let y = y0 + i;
            let add = &src[rows[y + k - 1] * w..][..w];
            let sub = &src[rows[y] * w..][..w];
            for (((a, p), &ad), &sb) in colsum.iter_mut().zip(&mut padded[r..r + w]).zip(add).zip(sub) {
                *a += f64::from(ad);
                *p = *a;
                *a -= f64::from(sb);
            }
            for j in (0..r).chain(r + w..w + 2 * r) {
                padded[j] = padded[r + cols[j]];
            }
            window_sums(&padded, k, norm, &mut step, out_row);
        }
    });
}

/// `out[x] = norm · Σ padded[x..x + k]`: differences of consecutive windows, summed in
/// [`LANES`] interleaved segments that each start from a directly summed window.
fn window_sums(padded: &[f64], k: usize, norm: f64, step: &mut [f64], out: &mut [f32]) {
    let w = out.len();
    for ((d, &a), &s) in step[1..].iter_mut().zip(&padded[k..]).zip(&padded[..w - 1]) {
        *d = a - s;
    }
    let seg = w.div_ceil(LANES);
    let mut sums = [0.0f64; LANES];
    for (l, s) in sums.iter_mut().enumerate() {
        let x0 = l * seg;
        if x0 < w {
            *s = padded[x0..x0 + k].iter().sum();
            out[x0] = (*s * norm) as f32;
        }
    }
    for j in 1..seg {
        for (l, s) in sums.iter_mut().enumerate() {
            let x = l * seg + j;
            if x < w {
                *s += step[x];
                out[x] = (*s * norm) as f32;
            }
        }
    }
}

/// Box mean of every channel over a `(2·radius + 1)²` window.
///
/// Same as `cv2.boxFilter(img, -1, (2r+1, 2r+1), borderType=…)` with `normalize=True`.
///
/// # Examples
/// ```
/// use csgis::ops::{box_filter, Border, Planes};
/// let img = Planes::from_fn(1, 4, 4, |_, y, x| (y * 4 + x) as f32 / 15.0);
/// let out = box_filter(&img, 1, Border::Reflect101);
/// assert_eq!((out.c, out.h, out.w), (1, 4, 4));
/// // Interior pixel: mean of its 3×3 neighbourhood, which is the pixel itself on a ramp.
/// assert!((out.get(0, 1, 1) - img.get(0, 1, 1)).abs() < 1e-6);
/// ```
#[must_use]
pub fn box_filter(img: &Planes, radius: usize, border: Border) -> Planes {
    let mut out = Planes::zeros(img.c, img.h, img.w);
    out.planes_mut().into_par_iter().enumerate().for_each(|(ch, dst)| {
        box_mean_into(img.plane(ch), img.h, img.w, radius, border, dst);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (2r+1)² summation.
    fn reference(src: &[f32], h: usize, w: usize, r: usize, border: Border) -> Vec<f32> {
        let ri = r as isize;
        let mut out = vec![0.0; h * w];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0f64;
                for dy in -ri..=ri {
                    for dx in -ri..=ri {
                        let yy = border.index(y as isize + dy, h);
                        let xx = border.index(x as isize + dx, w);
                        s += f64::from(src[yy * w + xx]);
                    }
                }
                out[y * w + x] = (s / ((2 * r + 1) * (2 * r + 1)) as f64) as f32;
            }
        }
        out
    }

    #[test]
    fn matches_direct_sum_for_every_border() {
        let (h, w) = (37, 23);
        let src: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 251) as f32 / 250.0).collect();
        for border in [Border::Reflect101, Border::Reflect, Border::Replicate] {
            for r in [0, 1, 3, 8, 30] {
                let got = box_mean_plane(&src, h, w, r, border);
                let want = reference(&src, h, w, r, border);
                let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(err < 1e-6, "{border:?} r={r}: max error {err}");
            }
        }
    }

    #[test]
    fn radius_zero_is_identity() {
        let img = Planes::from_fn(2, 5, 3, |c, y, x| (c + y * x) as f32 / 10.0);
        assert_eq!(box_filter(&img, 0, Border::Reflect), img);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn constant_is_fixed_point(h in 1usize..20, w in 1usize..20, r in 0usize..6, v in 0.0f32..=1.0) {
            let img = Planes::constant(3, h, w, v);
            let out = box_filter(&img, r, Border::Reflect);
            prop_assert!(out.data.iter().all(|o| (o - v).abs() < 1e-6));
        }

        #[test]
        fn stays_in_input_range(data in prop::collection::vec(0.0f32..=1.0, 60), r in 0usize..5) {
            let img = Planes::from_vec(1, 6, 10, data);
            let out = box_filter(&img, r, Border::Reflect101);
            prop_assert_eq!((out.c, out.h, out.w), (1, 6, 10));
            prop_assert!(out.data.iter().all(|o| (-1e-6..=1.0 + 1e-6).contains(o)));
        }
    }
}
