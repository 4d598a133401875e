//! Planar `f32` images: the one pixel container of the classical operators and metrics.
//!
//! Channel-major (`c`, `h`, `w`) storage maps straight onto a CHW tensor and lets every
//! operator work one channel plane at a time. Intensities are on the [0, 1] scale.

/// A planar image: `c` planes of `h` rows of `w` pixels, stored channel-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    /// Number of channels (planes).
    pub c: usize,
    /// Height in pixels.
    pub h: usize,
    /// Width in pixels.
    pub w: usize,
    /// `c * h * w` values, index `(ch * h + y) * w + x`.
    pub data: Vec<f32>,
}

impl Planes {
    /// An image of zeros.
    #[must_use]
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Self { c, h, w, data: vec![0.0; c * h * w] }
    }

    /// An image whose every value is `v`.
    #[must_use]
    pub fn constant(c: usize, h: usize, w: usize, v: f32) -> Self {
        Self { c, h, w, data: vec![v; c * h * w] }
    }

    /// Wraps existing planar data.
    ///
    /// # Panics
    /// 1. When `data.len() != c * h * w`.
    #[must_use]
    pub fn from_vec(c: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), c * h * w, "planar data length must be c*h*w");
        Self { c, h, w, data }
    }

    /// Builds an image from a function of (channel, row, column).
    #[must_use]
    pub fn from_fn(c: usize, h: usize, w: usize, f: impl Fn(usize, usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(c * h * w);
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    data.push(f(ch, y, x));
                }
            }
        }
        Self { c, h, w, data }
    }

    /// Pixels per plane (`h * w`).
    #[must_use]
    pub fn plane_len(&self) -> usize {
        self.h * self.w
    }

    /// One channel plane, row-major.
    #[must_use]
    pub fn plane(&self, ch: usize) -> &[f32] {
        let n = self.plane_len();
        &self.data[ch * n..(ch + 1) * n]
    }

    /// One channel plane, mutable.
    pub fn plane_mut(&mut self, ch: usize) -> &mut [f32] {
        let n = self.plane_len();
        &mut self.data[ch * n..(ch + 1) * n]
    }

    /// All planes as separate mutable slices (for per-channel parallel loops).
    pub fn planes_mut(&mut self) -> Vec<&mut [f32]> {
        let n = self.plane_len().max(1);
        self.data.chunks_mut(n).collect()
    }

    /// The value at (channel, row, column).
    #[must_use]
    pub fn get(&self, ch: usize, y: usize, x: usize) -> f32 {
        self.data[(ch * self.h + y) * self.w + x]
    }

    /// Sets the value at (channel, row, column).
    pub fn set(&mut self, ch: usize, y: usize, x: usize, v: f32) {
        self.data[(ch * self.h + y) * self.w + x] = v;
    }

    /// The same image with every value clamped to [0, 1].
    #[must_use]
    pub fn clamped(&self) -> Self {
        Self { data: self.data.iter().map(|v| v.clamp(0.0, 1.0)).collect(), ..*self }
    }

    /// Luma (0.299 R + 0.587 G + 0.114 B) of an RGB image as a 1-channel image;
    /// a 1-channel image is returned unchanged.
    #[must_use]
    pub fn luma(&self) -> Self {
        if self.c == 1 {
            return self.clone();
        }
        let n = self.plane_len();
        let (r, g, b) = (self.plane(0), self.plane(1), self.plane(2));
        let data = (0..n).map(|i| 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]).collect();
        Self { c: 1, h: self.h, w: self.w, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexing_is_channel_major() {
        let p = Planes::from_fn(3, 2, 4, |c, y, x| (c * 100 + y * 10 + x) as f32);
        assert_eq!(p.get(2, 1, 3), 213.0);
        assert_eq!(p.plane(1)[4], 110.0);
        assert_eq!(p.data.len(), 24);
    }

    #[test]
    fn luma_of_gray_rgb_is_the_gray() {
        let p = Planes::constant(3, 2, 2, 0.5);
        let l = p.luma();
        assert_eq!(l.c, 1);
        assert!(l.data.iter().all(|v| (v - 0.5).abs() < 1e-6));
    }
}
