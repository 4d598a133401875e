//! Border rules: where a filter reads when its window leaves the image.
//!
//! The names and index maps are OpenCV's `cv::BorderTypes` and `cv::borderInterpolate`
//! (core/src/copy.cpp), because every operator here is checked against OpenCV:
//!
//! | rule         | OpenCV                | `…|abcd|…`          | used by                              |
//! |--------------|-----------------------|---------------------|--------------------------------------|
//! | `Reflect101` | `BORDER_REFLECT_101`  | `dcb|abcd|cba`      | bilateral, rolling guidance (default)|
//! | `Reflect`    | `BORDER_REFLECT`      | `cba|abcd|dcb`      | guided filter's box means            |
//! | `Replicate`  | `BORDER_REPLICATE`    | `aaa|abcd|ddd`      | L0's forward differences             |
//!
//! Offsets far outside the image (a window wider than the image) keep reflecting, as
//! OpenCV's loop in `borderInterpolate` does.

/// How a filter extends a plane past its edges (OpenCV's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Border {
    /// Mirror without repeating the edge pixel, `dcb|abcd|cba` (OpenCV's default).
    #[default]
    Reflect101,
    /// Mirror repeating the edge pixel, `cba|abcd|dcb`.
    Reflect,
    /// Repeat the edge pixel, `aaa|abcd|ddd`.
    Replicate,
}

impl Border {
    /// The in-image index that position `i` reads from, in a line of `n` pixels.
    ///
    /// # Panics
    /// 1. When `n == 0`.
    #[must_use]
    pub fn index(self, i: isize, n: usize) -> usize {
        assert!(n > 0, "border index into an empty line");
        let n = n as isize;
        if (0..n).contains(&i) {
            return i as usize;
        }
        if n == 1 {
            return 0;
        }
        match self {
            Border::Replicate => i.clamp(0, n - 1) as usize,
            Border::Reflect => {
                // Period 2n: 0..n-1 forwards, then n-1..0 backwards.
                let m = i.rem_euclid(2 * n);
                (if m < n { m } else { 2 * n - 1 - m }) as usize
            }
            Border::Reflect101 => {
                // Period 2n-2: the edge pixels are not repeated.
                let m = i.rem_euclid(2 * n - 2);
                (if m < n { m } else { 2 * n - 2 - m }) as usize
            }
        }
    }

    /// `plane` (`h` rows of `w`) padded by `pad` pixels on every side with this rule;
    /// the result has `(h + 2·pad) × (w + 2·pad)` values, row-major.
    #[must_use]
    pub fn pad_plane(self, plane: &[f32], h: usize, w: usize, pad: usize) -> Vec<f32> {
        let pw = w + 2 * pad;
        let cols: Vec<usize> = (0..pw).map(|x| self.index(x as isize - pad as isize, w)).collect();
        let mut out = Vec::with_capacity(pw * (h + 2 * pad));
        for y in 0..h + 2 * pad {
            let row = &plane[self.index(y as isize - pad as isize, h) * w..][..w];
            out.extend(cols.iter().map(|&x| row[x]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(b: Border, n: usize, from: isize, to: isize) -> Vec<usize> {
        (from..to).map(|i| b.index(i, n)).collect()
    }

    #[test]
    fn index_maps_match_opencv() {
        // borderInterpolate on n = 4, positions -3..7.
        assert_eq!(line(Border::Reflect101, 4, -3, 7), [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(line(Border::Reflect, 4, -3, 7), [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
        assert_eq!(line(Border::Replicate, 4, -3, 7), [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]);
    }

    #[test]
    fn far_offsets_keep_reflecting() {
        assert_eq!(line(Border::Reflect101, 3, -6, 0), [2, 1, 0, 1, 2, 1]);
        assert_eq!(line(Border::Reflect, 2, -5, 0), [0, 0, 1, 1, 0]);
        assert_eq!(line(Border::Reflect101, 1, -3, 3), [0; 6]);
    }

    #[test]
    fn pad_plane_reflects_rows_and_columns() {
        let p = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 rows of 3
        let out = Border::Reflect101.pad_plane(&p, 2, 3, 1);
        #[rustfmt::skip]
        let want = [
            5.0, 4.0, 5.0, 6.0, 5.0,
            2.0, 1.0, 2.0, 3.0, 2.0,
            5.0, 4.0, 5.0, 6.0, 5.0,
            2.0, 1.0, 2.0, 3.0, 2.0,
        ];
        assert_eq!(out, want);
    }
}
