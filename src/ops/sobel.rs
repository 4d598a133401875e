//! 3×3 Sobel derivatives, as OpenCV's `cv::Sobel(src, dst, ddepth, 1, 0, 3)` and
//! `(.., 0, 1, 3)` with the default `BORDER_REFLECT_101`.
//!
//! `gx` correlates with `[-1 0 1]` along a row and `[1 2 1]ᵀ` down a column; `gy` is the
//! transpose. No scaling: a unit step gives a response of 4. The CSGIS dataset builder
//! (`blend_conc.py`) thresholds `0.5·|gx| + 0.5·|gy|` of the 0–255 image at 50; on the [0, 1]
//! scale that threshold is 50/255 (reference-implementation.md §2.2).

use rayon::prelude::*;

use super::{Border, Planes};

/// Sobel `gx` (d/dx, along a row) and `gy` (d/dy, down a column) of one row-major
/// `h×w` plane, reflect-101 border.
///
/// # Panics
/// 1. When `plane.len() != h * w`.
#[must_use]
pub fn sobel_plane(plane: &[f32], h: usize, w: usize) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(plane.len(), h * w, "plane length must be h*w");
    let mut gx = vec![0.0; h * w];
    let mut gy = vec![0.0; h * w];
    if h == 0 || w == 0 {
        return (gx, gy);
    }
    let prev = |i: usize, n: usize| Border::Reflect101.index(i as isize - 1, n);
    let next = |i: usize, n: usize| Border::Reflect101.index(i as isize + 1, n);
    gx.par_chunks_mut(w).zip(gy.par_chunks_mut(w)).enumerate().for_each(|(y, (rx, ry))| {
        let up = &plane[prev(y, h) * w..][..w];
        let mid = &plane[y * w..][..w];
        let down = &plane[next(y, h) * w..][..w];
        for x in 0..w {
            let (l, r) = (prev(x, w), next(x, w));
            rx[x] = (up[r] + 2.0 * mid[r] + down[r]) - (up[l] + 2.0 * mid[l] + down[l]);
            ry[x] = (down[l] + 2.0 * down[x] + down[r]) - (up[l] + 2.0 * up[x] + up[r]);
        }
    });
    (gx, gy)
}

/// Sobel `gx` and `gy` of every channel of `img`.
#[must_use]
pub fn sobel_gradients(img: &Planes) -> (Planes, Planes) {
    let (mut gx, mut gy) = (Planes::zeros(img.c, img.h, img.w), Planes::zeros(img.c, img.h, img.w));
    gx.planes_mut().into_par_iter().zip(gy.planes_mut()).enumerate().for_each(|(ch, (dx, dy))| {
        let (px, py) = sobel_plane(img.plane(ch), img.h, img.w);
        dx.copy_from_slice(&px);
        dy.copy_from_slice(&py);
    });
    (gx, gy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vertical_step_has_only_gx() {
        // Columns 0..3 are 0, 3..6 are 1.
        let p = Planes::from_fn(1, 4, 6, |_, _, x| if x >= 3 { 1.0 } else { 0.0 });
        let (gx, gy) = sobel_gradients(&p);
        assert_eq!(gx.get(0, 1, 2), 4.0);
        assert_eq!(gx.get(0, 1, 3), 4.0);
        assert_eq!(gx.get(0, 1, 1), 0.0);
        assert!(gy.data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn matches_opencv_on_a_ramp_with_reflect101_border() {
        // p(y, x) = x² : interior gx = 4·((x+1)² − (x−1)²)/… ; at x = 0 reflect-101 mirrors
        // column 1 onto column -1, so gx = 0 there (cv2.Sobel gives the same).
        let p = Planes::from_fn(1, 3, 5, |_, _, x| (x * x) as f32);
        let (gx, _) = sobel_gradients(&p);
        let row: Vec<f32> = (0..5).map(|x| gx.get(0, 1, x)).collect();
        assert_eq!(row, vec![0.0, 16.0, 32.0, 48.0, 0.0]);
    }

    #[test]
    fn gy_of_horizontal_ramp() {
        let p = Planes::from_fn(1, 5, 3, |_, y, _| y as f32);
        let (_, gy) = sobel_gradients(&p);
        assert_eq!(gy.get(0, 2, 1), 8.0);
        assert_eq!(gy.get(0, 0, 1), 0.0);
    }

    #[test]
    fn tiny_planes_do_not_panic() {
        let (gx, gy) = sobel_plane(&[0.5], 1, 1);
        assert_eq!((gx, gy), (vec![0.0], vec![0.0]));
        let (gx, _) = sobel_plane(&[0.0, 1.0], 1, 2);
        assert_eq!(gx, vec![0.0, 0.0]);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn constant_planes_have_zero_gradient(h in 1usize..10, w in 1usize..10, v in 0.0f32..1.0) {
            let (gx, gy) = sobel_gradients(&Planes::constant(3, h, w, v));
            prop_assert!(gx.data.iter().chain(&gy.data).all(|&g| g.abs() < 1e-6));
            prop_assert_eq!((gx.c, gx.h, gx.w), (3, h, w));
        }
    }
}
