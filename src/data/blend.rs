//! Texture blending, eq. 14–16 of the paper (§4.1, "Texture Blending"):
//!
//! * eq. 14: I_gray = 0.299·R + 0.587·G + 0.114·B of the texture;
//! * eq. 15: μ = the mean of I_gray over the H × W pixels that are used;
//! * eq. 16: I = I_GT + (I_gray − μ), the same zero-mean layer added to every channel,
//!   then clipped to [0, 1] (the reference wrote 8-bit PNGs, which saturate).
//!
//! A texture smaller than the GT is tiled periodically from the top-left, pixel (y, x)
//! taking texture pixel (y mod h_t, x mod w_t); a larger one is cropped from the
//! top-left. Both are what the reference `dataset_utils/blend_conc.py` does
//! (reference-implementation.md §3.1).
//!
//! REF: the reference converts with the RGB weights applied to OpenCV's BGR data (R and
//! B weights swapped) and subtracts the mean of the whole texture before tiling; we
//! follow eq. 14–15 as printed: correct channel weights, mean over the part used.

use crate::ops::Planes;

/// The eq. 14 grey texture tiled or cropped from the top-left to `h × w`.
#[must_use]
pub fn texture_layer(texture: &Planes, h: usize, w: usize) -> Vec<f32> {
    let gray = texture.luma();
    let (th, tw) = (gray.h.max(1), gray.w.max(1));
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h {
        let row = &gray.data[(y % th) * gray.w..(y % th) * gray.w + gray.w];
        out.extend((0..w).map(|x| row[x % tw]));
    }
    out
}

/// Blends a texture onto a smooth ground truth, eq. 14–16: the texture's grey layer
/// minus its mean (over the part used) is added to every channel, then clipped to [0, 1].
///
/// The result has the GT's size and channel count.
///
/// # Examples
/// ```
/// use csgis::ops::Planes;
/// use csgis::data::blend_texture;
/// let gt = Planes::constant(3, 4, 4, 0.5);
/// let tex = Planes::from_fn(1, 2, 2, |_, y, x| if (x + y) % 2 == 0 { 0.4 } else { 0.6 });
/// let input = blend_texture(&gt, &tex);
/// assert!((input.get(0, 0, 0) - 0.4).abs() < 1e-6);
/// assert!((input.get(2, 0, 1) - 0.6).abs() < 1e-6);
/// ```
#[must_use]
pub fn blend_texture(gt: &Planes, texture: &Planes) -> Planes {
    let layer = texture_layer(texture, gt.h, gt.w);
    let n = layer.len();
    // f64 sum: a 400 × 400 layer loses ~1e-4 in an f32 running sum.
    let mean = if n == 0 { 0.0 } else { (layer.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64) as f32 };
    let mut out = gt.clone();
    for plane in out.planes_mut() {
        for (v, &t) in plane.iter_mut().zip(&layer) {
            *v = (*v + t - mean).clamp(0.0, 1.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eq. 14–16 written out on the 0–255 scale, loop by loop, as a reader of the
    /// paper would: independent of `texture_layer`'s slicing.
    fn direct(gt: &[[[u8; 3]; 9]; 7], tex: &[[[u8; 3]; 4]; 3]) -> Vec<f64> {
        let gray = |p: [u8; 3]| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
        let mut mu = 0.0;
        for y in 0..7 {
            for x in 0..9 {
                mu += gray(tex[y % 3][x % 4]);
            }
        }
        mu /= 63.0;
        let mut out = vec![0.0; 3 * 63];
        for c in 0..3 {
            for y in 0..7 {
                for x in 0..9 {
                    let v = f64::from(gt[y][x][c]) + gray(tex[y % 3][x % 4]) - mu;
                    out[(c * 7 + y) * 9 + x] = v.clamp(0.0, 255.0);
                }
            }
        }
        out
    }

    #[test]
    fn matches_eq_14_to_16_on_a_smaller_texture() {
        let mut gt = [[[0u8; 3]; 9]; 7];
        let mut tex = [[[0u8; 3]; 4]; 3];
        for (y, row) in gt.iter_mut().enumerate() {
            for (x, px) in row.iter_mut().enumerate() {
                *px = [(y * 37 + x * 11) as u8, (200 - y * 20 - x) as u8, (x * 29 % 256) as u8];
            }
        }
        for (y, row) in tex.iter_mut().enumerate() {
            for (x, px) in row.iter_mut().enumerate() {
                *px = [(y * 90 + x * 40) as u8, (255 - x * 60) as u8, (y * 120) as u8];
            }
        }
        let gt_p = Planes::from_fn(3, 7, 9, |c, y, x| f32::from(gt[y][x][c]) / 255.0);
        let tex_p = Planes::from_fn(3, 3, 4, |c, y, x| f32::from(tex[y][x][c]) / 255.0);
        let got = blend_texture(&gt_p, &tex_p);
        let want = direct(&gt, &tex);
        assert!(want.iter().any(|&v| v == 0.0 || v == 255.0), "the case should exercise clipping");
        for (g, w) in got.data.iter().zip(&want) {
            assert!((f64::from(*g) * 255.0 - w).abs() <= 1.0, "{} vs {w}", g * 255.0);
        }
    }

    #[test]
    fn larger_texture_is_cropped_from_the_top_left() {
        let tex = Planes::from_fn(1, 10, 10, |_, y, x| (y * 10 + x) as f32 / 100.0);
        let layer = texture_layer(&tex, 2, 3);
        assert_eq!(layer, vec![0.0, 0.01, 0.02, 0.1, 0.11, 0.12]);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stays_in_range_and_adds_a_zero_mean_layer(
            h in 1usize..12, w in 1usize..12, th in 1usize..6, tw in 1usize..6, seed in any::<u64>()
        ) {
            let mut r = crate::data::rng::Rng::new(seed);
            let gt = Planes::from_vec(3, h, w, (0..3 * h * w).map(|_| r.uniform(0.3, 0.7)).collect());
            let mut r2 = crate::data::rng::Rng::new(seed ^ 1);
            let tex = Planes::from_vec(3, th, tw, (0..3 * th * tw).map(|_| r2.uniform(0.4, 0.6)).collect());
            let out = blend_texture(&gt, &tex);
            prop_assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
            // No clipping can happen here (|layer| < 0.2), so the added layer is zero-mean.
            let diff: f32 = out.data.iter().zip(&gt.data).map(|(a, b)| a - b).sum();
            prop_assert!(diff.abs() < 1e-3);
        }

        #[test]
        fn a_flat_texture_leaves_the_gt_unchanged(v in 0.0f32..1.0) {
            let gt = Planes::from_fn(3, 5, 6, |c, y, x| ((c + y + x) % 7) as f32 / 7.0);
            let out = blend_texture(&gt, &Planes::constant(3, 2, 2, v));
            prop_assert!(out.data.iter().zip(&gt.data).all(|(a, b)| (a - b).abs() < 1e-6));
        }
    }
}
