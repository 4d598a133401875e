//! The 3×3 convolution with its bias and ReLU in one custom op, forward and backward.
//!
//! Written as candle ops, `relu(conv(x, w) + b)` is three graph nodes: the bias add broadcasts
//! and allocates, the ReLU allocates again, and the backward pays for each node (a zero-filled
//! gradient buffer and an add per node, a strided reduction over batch and pixels for the bias,
//! four passes for the ReLU mask). Here the forward adds the bias and clamps each band right
//! after its gemm, while it is in cache, and the backward makes one masked gradient `dz`, then
//! `dx = conv(dz, flip(Wᵀ))`, `dW = Σ dz·colᵀ` ([`super::conv_cpu`]) and `db = Σ dz` per channel.
//!
//! f32 and f64 on the CPU; anywhere else [`conv3x3_bias`] is candle's conv2d, broadcast add
//! and ReLU.

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use super::conv_cpu::{contiguous, conv3x3_same, cpu_float, dims4, flipped_transposed, Conv3x3, ConvFloat, Conv3x3KernelGrad, Epilogue, Geometry};

/// `relu?(conv2d(x, w, padding = dilation) + b)` for a 3×3 kernel, with autograd.
///
/// # Shapes
/// `x`: (n, c_in, h, w); `w`: (c_out, c_in, 3, 3); `b`: (c_out) → (n, c_out, h, w).
pub fn conv3x3_bias(x: &Tensor, w: &Tensor, b: &Tensor, dilation: usize, relu: bool) -> Result<Tensor> {
    if cpu_float(&[x, w, b]) {
        return x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Conv3x3Bias { dilation, relu });
    }
    let y = conv3x3_same(x, w, dilation)?.broadcast_add(&b.reshape((1, (), 1, 1))?)?;
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

/// The fused forward op: (x, w, b) → relu?(conv(x, w) + b), stride 1, padding = dilation.
#[derive(Debug, Clone, Copy)]
pub struct Conv3x3Bias {
    /// Dilation of the kernel (and the zero padding on every side).
    pub dilation: usize,
    /// Whether a ReLU follows the bias.
    pub relu: bool,
}

fn typed_forward<T: ConvFloat>(op: &Conv3x3Bias, s: [(&CpuStorage, &Layout); 3], g: &Geometry) -> Result<CpuStorage> {
    let x = contiguous::<T>(s[0].0, s[0].1, "input")?;
    let w = contiguous::<T>(s[1].0, s[1].1, "kernel")?;
    let b = contiguous::<T>(s[2].0, s[2].1, "bias")?;
    Ok(T::to_cpu_storage_owned(T::conv_forward(x, w, g, Epilogue { bias: Some(b), relu: op.relu })))
}

impl CustomOp3 for Conv3x3Bias {
    fn name(&self) -> &'static str {
        "conv3x3-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c_in, h, w) = dims4(l1, "input")?;
        let (c_out, wc_in, kh, kw) = dims4(l2, "kernel")?;
        if (kh, kw) != (3, 3) || wc_in != c_in || l3.dims() != [c_out] {
            candle_core::bail!("conv3x3-bias: kernel {:?} and bias {:?} do not fit input {:?}", l2.dims(), l3.dims(), l1.dims())
        }
        if s1.dtype() != s2.dtype() || s1.dtype() != s3.dtype() {
            candle_core::bail!("conv3x3-bias: dtypes differ")
        }
        let g = Geometry { n, c_in, c_out, h, w, dilation: self.dilation };
        let s = [(s1, l1), (s2, l2), (s3, l3)];
        let out = match s1.dtype() {
            DType::F32 => typed_forward::<f32>(self, s, &g)?,
            DType::F64 => typed_forward::<f64>(self, s, &g)?,
            d => candle_core::bail!("conv3x3-bias: unsupported dtype {d:?} on the CPU path"),
        };
        Ok((out, Shape::from((n, c_out, h, w))))
    }

    /// Gradients only for the arguments that need one.
    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dz = if self.relu { dy.apply_op2_no_bwd(y, &ReluGrad)? } else { dy };
        let dx = if x.track_op() {
            Some(dz.apply_op2_no_bwd(&flipped_transposed(w)?, &Conv3x3 { dilation: self.dilation })?)
        } else {
            None
        };
        let dw = if w.track_op() { Some(x.apply_op2_no_bwd(&dz, &Conv3x3KernelGrad { dilation: self.dilation })?) } else { None };
        let db = if b.track_op() { Some(dz.apply_op1_no_bwd(&ChannelSum)?) } else { None };
        Ok((dx, dw, db))
    }
}

/// (dy, y) → dy where y > 0, else 0: the ReLU's backward from its output.
#[derive(Debug, Clone, Copy)]
struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "relu-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: WithDType>(s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<CpuStorage> {
            let dy = contiguous::<T>(s1, l1, "gradient")?;
            let y = contiguous::<T>(s2, l2, "output")?;
            let zero = T::zero();
            Ok(T::to_cpu_storage_owned(dy.iter().zip(y).map(|(&g, &v)| if v > zero { g } else { zero }).collect()))
        }
        if l1.dims() != l2.dims() || s1.dtype() != s2.dtype() {
            candle_core::bail!("relu-grad: {:?} and {:?} differ", l1.dims(), l2.dims())
        }
        let out = match s1.dtype() {
            DType::F32 => run::<f32>(s1, l1, s2, l2)?,
            DType::F64 => run::<f64>(s1, l1, s2, l2)?,
            d => candle_core::bail!("relu-grad: unsupported dtype {d:?}"),
        };
        Ok((out, l1.shape().clone()))
    }
}

/// (n, c, h, w) → (c): the sum over images and pixels of each channel, in a fixed order.
#[derive(Debug, Clone, Copy)]
struct ChannelSum;

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: WithDType>(s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
            let (n, c, h, w) = dims4(l, "gradient")?;
            let data = contiguous::<T>(s, l, "gradient")?;
            let hw = h * w;
            let sums = (0..c)
                .into_par_iter()
                .map(|ch| {
                    (0..n).fold(T::zero(), |acc, img| {
                        let plane = &data[(img * c + ch) * hw..(img * c + ch + 1) * hw];
                        acc + plane.iter().fold(T::zero(), |a, &v| a + v)
                    })
                })
                .collect();
            Ok(T::to_cpu_storage_owned(sums))
        }
        let out = match s.dtype() {
            DType::F32 => run::<f32>(s, l)?,
            DType::F64 => run::<f64>(s, l)?,
            d => candle_core::bail!("channel-sum: unsupported dtype {d:?}"),
        };
        Ok((out, Shape::from(l.dims()[1])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64 as random};
    use candle_core::Var;

    /// The unfused composition the op replaces.
    fn unfused(x: &Tensor, w: &Tensor, b: &Tensor, d: usize, relu: bool) -> Result<Tensor> {
        let y = x.conv2d(w, d, 1, d, 1)?.broadcast_add(&b.reshape((1, (), 1, 1))?)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }

    #[test]
    fn forward_matches_the_unfused_ops() -> Result<()> {
        for (d, h, w, relu) in [(1, 7, 9, true), (2, 11, 5, false), (3, 70, 40, true), (1, 1, 1, true)] {
            let x = random(&[2, 5, h, w], d as u64)?;
            let k = random(&[4, 5, 3, 3], 10 + d as u64)?;
            let b = random(&[4], 20 + d as u64)?;
            let diff = (conv3x3_bias(&x, &k, &b, d, relu)? - unfused(&x, &k, &b, d, relu)?)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-12, "f64 d{d} {h}x{w}: {diff}");
            let f = |t: &Tensor| t.to_dtype(DType::F32);
            let ours = conv3x3_bias(&f(&x)?, &f(&k)?, &f(&b)?, d, relu)?;
            let diff = (ours - f(&unfused(&x, &k, &b, d, relu)?)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "f32 d{d}: {diff}");
        }
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        for (d, relu) in [(1, true), (2, false), (3, true)] {
            let x = random(&[2, 3, 6, 7], 7 + d as u64)?;
            let k = random(&[4, 3, 3, 3], 9 + d as u64)?;
            let b = random(&[4], 11 + d as u64)?;
            assert_grad_ok(&x, |x| conv3x3_bias(x, &k, &b, d, relu), 30 + d as u64)?;
            assert_grad_ok(&k, |k| conv3x3_bias(&x, k, &b, d, relu), 40 + d as u64)?;
            assert_grad_ok(&b, |b| conv3x3_bias(&x, &k, b, d, relu), 50 + d as u64)?;
        }
        Ok(())
    }

    #[test]
    fn gradients_match_the_unfused_ops_on_a_band_split_batch() -> Result<()> {
        let x = Var::from_tensor(&random(&[2, 4, 120, 40], 3)?)?;
        let k = Var::from_tensor(&random(&[6, 4, 3, 3], 4)?)?;
        let b = Var::from_tensor(&random(&[6], 5)?)?;
        let r = random(&[2, 6, 120, 40], 6)?;
        let ours = conv3x3_bias(&x, &k, &b, 2, true)?.mul(&r)?.sum_all()?.backward()?;
        let theirs = unfused(&x, &k, &b, 2, true)?.mul(&r)?.sum_all()?.backward()?;
        for v in [x.as_tensor(), k.as_tensor(), b.as_tensor()] {
            let diff = (ours.get(v).unwrap() - theirs.get(v).unwrap())?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-10, "{diff}");
        }
        Ok(())
    }
}
