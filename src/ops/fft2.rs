//! 2-D FFT of a row-major plane (rustfft rows, then columns through a transpose), and the
//! Fourier transfer functions of periodic forward differences, as MATLAB's `fft2`,
//! `ifft2` and `psf2otf([1, -1], [h, w])` compute them. Used by ILS and L0.
//!
//! Speed: rows go through rustfft in parallel bands (rayon, one scratch buffer per band),
//! the transposes are cache-blocked and parallel, and plans come from one process-wide
//! planner, so repeated sizes reuse their twiddle tables.

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use rayon::prelude::*;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Process-wide planner: plans are built once per length and shared.
static PLANNER: LazyLock<Mutex<FftPlanner<f32>>> = LazyLock::new(|| Mutex::new(FftPlanner::new()));

/// Planned forward and inverse transforms for one `h×w` size.
pub(crate) struct Fft2 {
    h: usize,
    w: usize,
    row_fwd: Arc<dyn Fft<f32>>,
    row_inv: Arc<dyn Fft<f32>>,
    col_fwd: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
}

impl Fft2 {
    /// Plans the transforms for `h` rows of `w` values.
    pub(crate) fn new(h: usize, w: usize) -> Self {
        let mut planner = PLANNER.lock().unwrap_or_else(PoisonError::into_inner);
        Self {
            h,
            w,
            row_fwd: planner.plan_fft_forward(w),
            row_inv: planner.plan_fft_inverse(w),
            col_fwd: planner.plan_fft_forward(h),
            col_inv: planner.plan_fft_inverse(h),
        }
    }

    /// In-place unnormalised forward transform (MATLAB `fft2`).
    ///
    /// # Panics
    /// 1. When `data.len() != h * w`.
    pub(crate) fn forward(&self, data: &mut [Complex32]) {
        self.transform(data, &*self.row_fwd, &*self.col_fwd);
    }

    /// In-place inverse transform scaled by `1 / (h·w)` (MATLAB `ifft2`).
    ///
    /// # Panics
    /// 1. When `data.len() != h * w`.
    pub(crate) fn inverse(&self, data: &mut [Complex32]) {
        self.transform(data, &*self.row_inv, &*self.col_inv);
        let scale = 1.0 / (self.h * self.w) as f32;
        data.par_chunks_mut(4096).for_each(|chunk| chunk.iter_mut().for_each(|v| *v *= scale));
    }

    fn transform(&self, data: &mut [Complex32], rows: &dyn Fft<f32>, cols: &dyn Fft<f32>) {
        let (h, w) = (self.h, self.w);
        assert_eq!(data.len(), h * w, "plane length must be h*w");
        if h == 0 || w == 0 {
            return;
        }
        run_rows(rows, data, w);
        let mut t = vec![Complex32::default(); h * w];
        transpose_into(data, h, w, &mut t);
        run_rows(cols, &mut t, h);
        transpose_into(&t, w, h, data);
    }
}

/// Runs `fft` on every `len`-long row of `buf`, in parallel bands of about 16k values.
fn run_rows(fft: &dyn Fft<f32>, buf: &mut [Complex32], len: usize) {
    let rows_per_band = (16_384 / len).max(1);
    buf.par_chunks_mut(len * rows_per_band).for_each(|band| {
        // rustfft transforms every consecutive length-n chunk of the buffer.
        let mut scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
        fft.process_with_scratch(band, &mut scratch);
    });
}

/// `dst` = the `w×h` transpose of the row-major `h×w` `src`, in 16×16 blocks: a
/// naive transpose misses the cache on every write once a column exceeds it.
fn transpose_into(src: &[Complex32], h: usize, w: usize, dst: &mut [Complex32]) {
    const B: usize = 16;
    dst.par_chunks_mut(h * B).enumerate().for_each(|(band, dst)| {
        // This band holds output rows (input columns) x0..x0 + nx.
        let x0 = band * B;
        let nx = B.min(w - x0);
        for y0 in (0..h).step_by(B) {
            for y in y0..(y0 + B).min(h) {
                for (j, &v) in src[y * w + x0..][..nx].iter().enumerate() {
                    dst[j * h + y] = v;
                }
            }
        }
    });
}

/// `|otf(Dx)|² + |otf(Dy)|²` for periodic forward differences on an `h×w` grid:
/// `(2 − 2cos(2πkx/w)) + (2 − 2cos(2πky/h))`, row-major over `(ky, kx)`.
pub(crate) fn diff_power_spectrum(h: usize, w: usize) -> Vec<f32> {
    let axis = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|k| 2.0 - 2.0 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos())
            .collect()
    };
    let (sx, sy) = (axis(w), axis(h));
    sy.iter().flat_map(|&vy| sx.iter().map(move |&vx| (vx + vy) as f32)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dft2(src: &[f32], h: usize, w: usize) -> Vec<Complex32> {
        let mut out = vec![Complex32::default(); h * w];
        for ky in 0..h {
            for kx in 0..w {
                let mut s = (0.0f64, 0.0f64);
                for y in 0..h {
                    for x in 0..w {
                        let ph = -2.0
                            * std::f64::consts::PI
                            * ((ky * y) as f64 / h as f64 + (kx * x) as f64 / w as f64);
                        s.0 += f64::from(src[y * w + x]) * ph.cos();
                        s.1 += f64::from(src[y * w + x]) * ph.sin();
                    }
                }
                out[ky * w + kx] = Complex32::new(s.0 as f32, s.1 as f32);
            }
        }
        out
    }

    #[test]
    fn forward_matches_naive_dft_and_inverse_round_trips() {
        let (h, w) = (5, 6);
        let src: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 5) as f32 / 4.0).collect();
        let fft = Fft2::new(h, w);
        let mut buf: Vec<Complex32> = src.iter().map(|&v| Complex32::new(v, 0.0)).collect();
        fft.forward(&mut buf);
        for (a, b) in buf.iter().zip(naive_dft2(&src, h, w)) {
            assert!((a - b).norm() < 1e-4);
        }
        fft.inverse(&mut buf);
        for (a, &b) in buf.iter().zip(&src) {
            assert!((a.re - b).abs() < 1e-5 && a.im.abs() < 1e-5);
        }
    }

    #[test]
    fn blocked_transpose_handles_partial_blocks() {
        let (h, w) = (37, 21);
        let src: Vec<Complex32> = (0..h * w).map(|i| Complex32::new(i as f32, -(i as f32))).collect();
        let mut dst = vec![Complex32::default(); h * w];
        transpose_into(&src, h, w, &mut dst);
        for y in 0..h {
            for x in 0..w {
                assert_eq!(dst[x * h + y], src[y * w + x]);
            }
        }
    }

    #[test]
    fn diff_spectrum_is_the_transform_of_the_periodic_laplacian() {
        // DxᵀDx + DyᵀDy has stencil 4 at (0,0) and −1 at the four periodic neighbours.
        let (h, w) = (4, 6);
        let mut psf = vec![0.0f32; h * w];
        psf[0] = 4.0;
        psf[1] = -1.0;
        psf[w - 1] = -1.0;
        psf[w] = -1.0;
        psf[(h - 1) * w] = -1.0;
        let spec = naive_dft2(&psf, h, w);
        for (a, b) in diff_power_spectrum(h, w).iter().zip(spec) {
            assert!((a - b.re).abs() < 1e-5 && b.im.abs() < 1e-5);
        }
    }
}
