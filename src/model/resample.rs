//! 2× resampling for the multi-scale networks as custom ops: 2×2 sum pooling and nearest
//! upsampling, each times a constant, each the other's adjoint (so each backward is one pass of
//! the other). As candle ops they were a reshape and two strided reductions (pooling) and a
//! broadcast whose backward reduces over interleaved axes (upsampling).

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::conv_cpu::{contiguous, cpu_float, dims4};

/// 2×2 average pooling, stride 2, of an input with even height and width, with autograd.
///
/// # Shapes
/// (n, c, h, w) → (n, c, h/2, w/2).
pub fn avg_pool2(xs: &Tensor) -> Result<Tensor> {
    if cpu_float(&[xs]) {
        return xs.contiguous()?.apply_op1(Resample2 { down: true, scale: 0.25 });
    }
    let (n, c, h, w) = xs.dims4()?;
    xs.reshape((n, c, h / 2, 2, w / 2, 2))?.sum(5)?.sum(3)? * 0.25
}

/// Nearest-neighbour ×2 upsampling, with autograd.
///
/// # Shapes
/// (n, c, h, w) → (n, c, 2h, 2w).
pub fn upsample2(xs: &Tensor) -> Result<Tensor> {
    if cpu_float(&[xs]) {
        return xs.contiguous()?.apply_op1(Resample2 { down: false, scale: 1.0 });
    }
    let (n, c, h, w) = xs.dims4()?;
    xs.reshape((n, c, h, 1, w, 1))?.broadcast_as((n, c, h, 2, w, 2))?.reshape((n, c, 2 * h, 2 * w))
}

/// `scale · pool2(x)` (2×2 sums) when `down`, else `scale · up2(x)` (each pixel copied 2×2).
#[derive(Debug, Clone, Copy)]
pub struct Resample2 {
    /// Pool (halve) rather than upsample (double).
    pub down: bool,
    /// The constant factor.
    pub scale: f64,
}

impl Resample2 {
    fn run<T: WithDType>(&self, src: &[T], (planes, h, w): (usize, usize, usize)) -> Vec<T> {
        let s = T::from_f64(self.scale);
        if self.down {
            let (oh, ow) = (h / 2, w / 2);
            let mut out = vec![T::zero(); planes * oh * ow];
            out.par_chunks_mut((oh * ow).max(1)).enumerate().for_each(|(p, dst)| {
                let plane = &src[p * h * w..(p + 1) * h * w];
                for (y, row) in dst.chunks_exact_mut(ow.max(1)).enumerate().take(oh) {
                    let (r0, r1) = (&plane[2 * y * w..(2 * y + 1) * w], &plane[(2 * y + 1) * w..(2 * y + 2) * w]);
                    for (x, v) in row.iter_mut().enumerate() {
                        *v = ((r0[2 * x] + r0[2 * x + 1]) + (r1[2 * x] + r1[2 * x + 1])) * s;
                    }
                }
            });
            out
        } else {
            let (oh, ow) = (2 * h, 2 * w);
            let mut out = vec![T::zero(); planes * oh * ow];
            out.par_chunks_mut((oh * ow).max(1)).enumerate().for_each(|(p, dst)| {
                let plane = &src[p * h * w..(p + 1) * h * w];
                for (y, pair) in dst.chunks_exact_mut(2 * ow.max(1)).enumerate().take(h) {
                    let (top, bottom) = pair.split_at_mut(ow);
                    for (x, &v) in plane[y * w..(y + 1) * w].iter().enumerate() {
                        top[2 * x] = v * s;
                        top[2 * x + 1] = v * s;
                    }
                    bottom.copy_from_slice(top);
                }
            });
            out
        }
    }
}

impl CustomOp1 for Resample2 {
    fn name(&self) -> &'static str {
        if self.down {
            "pool2"
        } else {
            "upsample2"
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = dims4(l, "input")?;
        if self.down && (h % 2 != 0 || w % 2 != 0) {
            candle_core::bail!("pool2: height and width must be even, got {h}x{w}")
        }
        let dims = (n * c, h, w);
        let out = match s.dtype() {
            DType::F32 => f32::to_cpu_storage_owned(self.run(contiguous::<f32>(s, l, "input")?, dims)),
            DType::F64 => f64::to_cpu_storage_owned(self.run(contiguous::<f64>(s, l, "input")?, dims)),
            d => candle_core::bail!("{}: unsupported dtype {d:?}", self.name()),
        };
        let shape = if self.down { (n, c, h / 2, w / 2) } else { (n, c, 2 * h, 2 * w) };
        Ok((out, Shape::from(shape)))
    }

    /// The adjoint: pooling's is upsampling with the same factor, and the reverse.
    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let adjoint = Self { down: !self.down, scale: self.scale };
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&adjoint)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};

    #[test]
    fn matches_the_candle_compositions() -> Result<()> {
        let x = rand_f64(&[2, 3, 6, 10], 1)?;
        let pooled = (x.reshape((2, 3, 3, 2, 5, 2))?.sum(5)?.sum(3)? * 0.25)?;
        assert_eq!((avg_pool2(&x)? - pooled)?.abs()?.max_all()?.to_scalar::<f64>()?, 0.0);
        let up = x.reshape((2, 3, 6, 1, 10, 1))?.broadcast_as((2, 3, 6, 2, 10, 2))?.reshape((2, 3, 12, 20))?;
        assert_eq!((upsample2(&x)? - up)?.abs()?.max_all()?.to_scalar::<f64>()?, 0.0);
        Ok(())
    }

    #[test]
    fn gradients_pass_finite_differences() -> Result<()> {
        assert_grad_ok(&rand_f64(&[1, 2, 4, 6], 1)?, avg_pool2, 2)?;
        assert_grad_ok(&rand_f64(&[2, 2, 3, 2], 3)?, upsample2, 4)
    }

    #[test]
    fn odd_sizes_are_an_error_not_a_panic() {
        let x = Tensor::zeros((1, 1, 3, 4), DType::F32, &candle_core::Device::Cpu).unwrap();
        assert!(avg_pool2(&x).is_err());
    }
}
