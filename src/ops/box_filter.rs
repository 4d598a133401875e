//! Box mean in O(1) per pixel: the building block of the guided filter.
//!
//! The window sum is taken separably from 1-D integral images (running prefix sums):
//! first along every row, then down every column, with `f64` accumulators so a
//! 1024-pixel sweep loses nothing to cancellation. The cost does not depend on the
//! radius. This is OpenCV's `cv::boxFilter(src, dst, -1, (2r+1, 2r+1), normalize = true)`,
//! which also sums in `double` for `float` input (imgproc/src/box_filter.simd.hpp).
//!
//! Rows are swept in parallel (rayon) in the first pass, bands of rows in the second.

use rayon::prelude::*;

use super::{Border, Planes};

/// Rows per task in the vertical pass: each band re-sums its first window once.
const BAND: usize = 32;

/// Mean over the `(2·radius + 1)²` window centred on every pixel of one plane.
///
/// `src` holds `h` rows of `w` values; pixels outside the plane are read through
/// `border`. The result has the same layout.
///
/// # Panics
/// 1. When `src.len() != h * w`.
#[must_use]
pub fn box_mean_plane(src: &[f32], h: usize, w: usize, radius: usize, border: Border) -> Vec<f32> {
    assert_eq!(src.len(), h * w, "box_mean_plane: plane length must be h*w");
    if h == 0 || w == 0 {
        return Vec::new();
    }
    let k = 2 * radius + 1;
    let r = radius as isize;
    let cols: Vec<usize> = (0..w + 2 * radius).map(|i| border.index(i as isize - r, w)).collect();
    let rows: Vec<usize> = (0..h + 2 * radius).map(|i| border.index(i as isize - r, h)).collect();

    // Pass 1: horizontal window sums, a sliding prefix difference per row.
    let mut hsum = vec![0.0f32; h * w];
    hsum.par_chunks_mut(w).zip(src.par_chunks(w)).for_each(|(out, row)| {
        let mut acc: f64 = cols[..k - 1].iter().map(|&c| f64::from(row[c])).sum();
        for (x, o) in out.iter_mut().enumerate() {
            acc += f64::from(row[cols[x + k - 1]]);
            *o = acc as f32;
            acc -= f64::from(row[cols[x]]);
        }
    });

    // Pass 2: vertical sums of the row sums, one running accumulator per column.
    let norm = 1.0 / (k * k) as f64;
    let mut out = vec![0.0f32; h * w];
    out.par_chunks_mut(w * BAND).enumerate().for_each(|(band, out_band)| {
        let y0 = band * BAND;
        let mut acc = vec![0.0f64; w];
        for &yy in &rows[y0..y0 + k - 1] {
            for (a, &v) in acc.iter_mut().zip(&hsum[yy * w..][..w]) {
                *a += f64::from(v);
            }
        }
        for (i, out_row) in out_band.chunks_mut(w).enumerate() {
            let y = y0 + i;
            let add = &hsum[rows[y + k - 1] * w..][..w];
            let sub = &hsum[rows[y] * w..][..w];
            for (((a, o), &ad), &sb) in acc.iter_mut().zip(out_row.iter_mut()).zip(add).zip(sub) {
                *a += f64::from(ad);
                *o = (*a * norm) as f32;
                *a -= f64::from(sb);
            }
        }
    });
    out
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
    let n = img.plane_len();
    let data = (0..img.c)
        .into_par_iter()
        .flat_map_iter(|ch| box_mean_plane(img.plane(ch), img.h, img.w, radius, border))
        .collect::<Vec<f32>>();
    debug_assert_eq!(data.len(), img.c * n);
    Planes::from_vec(img.c, img.h, img.w, data)
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
