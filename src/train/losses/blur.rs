//! The SSIM window as one custom op: a separable, symmetric blur with zero padding ("same"
//! size), forward and backward in one pass each over the planes, in parallel.
//!
//! candle's `conv2d` with a 1-channel 11×1 kernel builds an im2col block per tile and its
//! backward runs `conv_transpose2d` as a direct loop (`shared/docs/candle-notes.md` §4); in a
//! training step of csgis-lite that was the largest cost. A zero-padded "same" correlation with
//! a symmetric kernel is a symmetric linear map, so its gradient is the same blur of the
//! output gradient: [`SeparableBlur::bwd`] applies the op again.

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// A separable "same" blur of every (H, W) plane of an (N, C, H, W) tensor with one symmetric
/// 1-D kernel along both axes, zero padding.
#[derive(Debug, Clone)]
pub struct SeparableBlur {
    /// The 1-D taps (odd length, symmetric).
    pub taps: Vec<f64>,
}

fn blur_plane<T: WithDType>(src: &[T], dst: &mut [T], tmp: &mut [T], h: usize, w: usize, taps: &[T]) {
    let r = taps.len() / 2;
    // Vertical pass into tmp.
    for y in 0..h {
        let row = &mut tmp[y * w..(y + 1) * w];
        row.iter_mut().for_each(|v| *v = T::zero());
        for (k, &t) in taps.iter().enumerate() {
            let sy = y as isize + k as isize - r as isize;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            let s = &src[sy as usize * w..(sy as usize + 1) * w];
            for (o, &v) in row.iter_mut().zip(s) {
                *o += t * v;
            }
        }
    }
    // Horizontal pass into dst.
    for y in 0..h {
        let s = &tmp[y * w..(y + 1) * w];
        let d = &mut dst[y * w..(y + 1) * w];
        for x in 0..w {
            let lo = x.saturating_sub(r);
            let hi = (x + r + 1).min(w);
            let mut acc = T::zero();
            for (sx, &v) in s.iter().enumerate().take(hi).skip(lo) {
                acc += taps[sx + r - x] * v;
            }
            d[x] = acc;
        }
    }
}

impl SeparableBlur {
    fn run<T: WithDType>(&self, src: &[T], planes: usize, h: usize, w: usize) -> Vec<T> {
        let taps: Vec<T> = self.taps.iter().map(|&t| T::from_f64(t)).collect();
        let n = h * w;
        let mut out = vec![T::zero(); planes * n];
        out.par_chunks_mut(n).zip(src.par_chunks(n)).for_each_init(
            || vec![T::zero(); n],
            |tmp, (dst, s)| blur_plane(s, dst, tmp, h, w, &taps),
        );
        out
    }
}

impl CustomOp1 for SeparableBlur {
    fn name(&self) -> &'static str {
        "separable-blur"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = layout.shape().dims();
        let &[n, c, h, w] = dims else { candle_core::bail!("separable-blur: expected 4-D input, got {dims:?}") };
        let Some((start, end)) = layout.contiguous_offsets() else { candle_core::bail!("separable-blur: input must be contiguous") };
        let out = match storage.dtype() {
            DType::F32 => CpuStorage::F32(self.run(&storage.as_slice::<f32>()?[start..end], n * c, h, w)),
            DType::F64 => CpuStorage::F64(self.run(&storage.as_slice::<f64>()?[start..end], n * c, h, w)),
            d => candle_core::bail!("separable-blur: unsupported dtype {d:?}"),
        };
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(blur_same(grad_res, &self.taps)?))
    }
}

/// Blurs every plane of `xs` (N, C, H, W) with the symmetric 1-D kernel `taps` along both
/// axes, zero padding, same size; differentiable. CPU f32/f64 use [`SeparableBlur`], other
/// devices two candle convolutions.
pub fn blur_same(xs: &Tensor, taps: &[f64]) -> Result<Tensor> {
    if crate::model::cpu_float(&[xs]) {
        return xs.contiguous()?.apply_op1(SeparableBlur { taps: taps.to_vec() });
    }
    candle_blur(xs, taps)
}

/// The same blur as two candle convolutions (11×1, then 1×11) on zero-padded planes: the path
/// off the CPU, and the reference [`SeparableBlur`] is tested against.
fn candle_blur(xs: &Tensor, taps: &[f64]) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let k = taps.len();
    let g = Tensor::from_vec(taps.to_vec(), k, xs.device())?.to_dtype(xs.dtype())?;
    let pad = k / 2;
    xs.reshape((n * c, 1, h, w))?
        .pad_with_zeros(2, pad, pad)?
        .pad_with_zeros(3, pad, pad)?
        .conv2d(&g.reshape((1, 1, k, 1))?, 0, 1, 1, 1)?
        .conv2d(&g.reshape((1, 1, 1, k))?, 0, 1, 1, 1)?
        .reshape((n, c, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};
    use crate::train::losses::ssim::{gaussian_window, SSIM_SIGMA, SSIM_WINDOW};

    #[test]
    fn matches_candles_convolutions() -> Result<()> {
        let taps = gaussian_window(SSIM_WINDOW, SSIM_SIGMA);
        for (h, w) in [(16, 13), (4, 20), (11, 11)] {
            let x = rand_f64(&[2, 3, h, w], 1)?;
            let d = (blur_same(&x, &taps)? - candle_blur(&x, &taps)?)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(d < 1e-12, "{h}x{w}: {d}");
            let x32 = x.to_dtype(DType::F32)?;
            let d = (blur_same(&x32, &taps)? - candle_blur(&x32, &taps)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-5, "f32 {h}x{w}: {d}");
        }
        Ok(())
    }

    #[test]
    fn gradient_passes_finite_differences() -> Result<()> {
        let taps = gaussian_window(SSIM_WINDOW, SSIM_SIGMA);
        assert_grad_ok(&rand_f64(&[1, 2, 9, 14], 2)?, |x| blur_same(x, &taps), 3)
    }
}
