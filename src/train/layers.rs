//! Differentiable building blocks that candle 0.11.1 lacks or gets wrong.
//!
//! `shared/docs/candle-notes.md` §1 measured these defects, and each function here is its workaround:
//! * `max_pool2d` backward scales the gradient by 1/(k·k) (finding 3) and mis-routes odd sizes
//!   (finding 4): [`max_pool2x2`] and [`avg_pool2x2`] use reshape + reduce instead.
//! * `upsample_bilinear2d` has no backward (finding 5): [`bilinear_resize`] multiplies by
//!   interpolation matrices, `Y = A_h · X · A_wᵀ`, PyTorch's `align_corners=False` rule.
//! * `conv2d` backward fails for stride 2 when H and W differ in parity (finding 2):
//!   [`conv2d_strided`] appends one zero row or column so both agree.
//! * `binary_cross_entropy_with_logit` overflows for large logits (finding 7): [`softplus`] and
//!   [`bce_with_logits`] use `relu(z) + log(1 + exp(−|z|))`.
//! * grouped convolution runs one small conv per group (finding 2 of §2): [`depthwise_conv3x3`]
//!   sums nine shifted, per-channel scaled views instead.

use candle_core::{DType, Device, Result, Tensor, D};

/// 2×2 max-pooling with stride 2 (PyTorch `max_pool2d(x, 2)`, floor mode) on `(N, C, H, W)`.
///
/// An odd last row or column is dropped, as PyTorch does. The gradient reaches each window's
/// maximum with weight 1; tied maxima (rare on real-valued data) each get the full gradient.
pub fn max_pool2x2(xs: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    trim_even(xs, h, w)?.reshape((n, c, ho, 2, wo, 2))?.max(5)?.max(3)
}

/// 2×2 average pooling with stride 2 (floor mode) on `(N, C, H, W)`.
pub fn avg_pool2x2(xs: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    trim_even(xs, h, w)?.reshape((n, c, ho, 2, wo, 2))?.sum(5)?.sum(3)?.affine(0.25, 0.)
}

fn trim_even(xs: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    if h < 2 || w < 2 {
        candle_core::bail!("2x2 pooling needs at least 2x2 pixels, got {h}x{w}")
    }
    let xs = if h % 2 == 1 { xs.narrow(2, 0, h - 1)? } else { xs.clone() };
    if w % 2 == 1 {
        xs.narrow(3, 0, w - 1)
    } else {
        Ok(xs)
    }
}

/// The `(out, in)` matrix of 1-D linear interpolation with PyTorch's `align_corners=False` rule:
/// source coordinate `(i + 0.5)·in/out − 0.5`, clamped at 0, neighbours clamped at `in − 1`.
pub fn interp_matrix(in_len: usize, out_len: usize, dtype: DType, dev: &Device) -> Result<Tensor> {
    if in_len == 0 || out_len == 0 {
        candle_core::bail!("interpolation between lengths {in_len} and {out_len}")
    }
    let scale = in_len as f64 / out_len as f64;
    let mut m = vec![0f64; out_len * in_len];
    for i in 0..out_len {
        let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(in_len - 1);
        let i1 = (i0 + 1).min(in_len - 1);
        let lambda = src - i0 as f64;
        m[i * in_len + i0] += 1.0 - lambda;
        m[i * in_len + i1] += lambda;
    }
    Tensor::from_vec(m, (out_len, in_len), dev)?.to_dtype(dtype)
}

/// Bilinear resize of `(N, C, H, W)` to `(N, C, out_h, out_w)`, as PyTorch's
/// `F.interpolate(mode="bilinear", align_corners=False)` with an explicit `size`.
///
/// Built from two matrix products, so it is differentiable with respect to `xs`.
pub fn bilinear_resize(xs: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    if (h, w) == (out_h, out_w) {
        return Ok(xs.clone());
    }
    let a_h = interp_matrix(h, out_h, xs.dtype(), xs.device())?;
    let a_w_t = interp_matrix(w, out_w, xs.dtype(), xs.device())?.t()?;
    let rows = xs.broadcast_matmul(&a_w_t)?; // (N, C, H, out_w)
    a_h.broadcast_matmul(&rows)
}

/// Numerically stable `softplus(z) = log(1 + exp(z)) = relu(z) + log(1 + exp(−|z|))`.
///
/// Finite for every finite `z`; its candle gradient equals `sigmoid(z)` everywhere, `z = 0`
/// included (candle takes `relu'(0) = 1` and `|·|'(0) = 1`).
pub fn softplus(z: &Tensor) -> Result<Tensor> {
    z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// Element-wise binary cross-entropy on logits, `−t·log σ(z) − (1−t)·log(1 − σ(z))`,
/// computed as `softplus(z) − z·t`, unreduced.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    softplus(logits)? - (logits * targets)?
}

/// Convolution without padding (pad beforehand) that survives candle's stride-2 backward.
///
/// candle's conv2d backward takes the transposed convolution's output padding from H and applies
/// it to W as well, which fails when `(H − k_eff)` and `(W − k_eff)` differ in parity
/// (`candle-notes.md` finding 2). This appends one zero row or column to the dimension whose
/// remainder is even; no output window reads it, so the output is unchanged.
pub fn conv2d_strided(
    xs: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
    groups: usize,
) -> Result<Tensor> {
    let (_, _, h, w) = xs.dims4()?;
    let (_, _, kh, kw) = weight.dims4()?;
    let (eh, ew) = (dilation * (kh - 1) + 1, dilation * (kw - 1) + 1);
    if h < eh || w < ew {
        candle_core::bail!("conv2d: input {h}x{w} smaller than the dilated kernel {eh}x{ew}")
    }
    let xs = if stride > 1 && (h - eh) % stride != (w - ew) % stride {
        // Only stride 2 is used here; grow the dimension with the even remainder.
        if (h - eh) % 2 == 0 {
            xs.pad_with_zeros(2, 0, 1)?
        } else {
            xs.pad_with_zeros(3, 0, 1)?
        }
    } else {
        xs.clone()
    };
    xs.conv2d(weight, 0, stride, dilation, groups)
}

/// Depthwise 3×3 convolution (`groups = C`) of an already padded `(N, C, H, W)` input with
/// weight `(C, 1, 3, 3)`, stride 1 or 2, any dilation, as nine shifted scaled views.
///
/// Same result as `conv2d(xs, weight, padding 0, stride, dilation, groups = C)`, which candle
/// runs as C separate convolutions plus a concatenation. Stride 2 subsamples the stride-1 result.
pub fn depthwise_conv3x3(
    xs: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let span = 2 * dilation;
    if weight.dims4()? != (c, 1, 3, 3) || h <= span || w <= span || !(1..=2).contains(&stride) {
        candle_core::bail!(
            "depthwise_conv3x3: input {:?}, weight {:?}, stride {stride}",
            xs.shape(),
            weight.shape()
        )
    }
    let (ho, wo) = (h - span, w - span);
    let mut acc: Option<Tensor> = None;
    for i in 0..3 {
        let rows = xs.narrow(2, i * dilation, ho)?;
        for j in 0..3 {
            let tap = weight.narrow(2, i, 1)?.narrow(3, j, 1)?.reshape((1, c, 1, 1))?;
            let term = rows.narrow(3, j * dilation, wo)?.broadcast_mul(&tap)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
    }
    let out = acc.ok_or_else(|| candle_core::Error::Msg("depthwise_conv3x3: no taps".into()))?;
    if stride == 1 {
        return Ok(out);
    }
    // Keep rows/columns 0, 2, 4, ...: pad to even, split each axis in pairs, keep the first.
    let out = out.pad_with_zeros(2, 0, ho % 2)?.pad_with_zeros(3, 0, wo % 2)?;
    let (hs, ws) = (ho.div_ceil(2), wo.div_ceil(2));
    out.reshape((n, c, hs, 2, ws, 2))?.narrow(5, 0, 1)?.narrow(3, 0, 1)?.reshape((n, c, hs, ws))
}

/// Zero-pads the last two dimensions of `(N, C, H, W)`: `top`/`bottom` rows, `left`/`right` columns.
pub fn pad2d(xs: &Tensor, top: usize, bottom: usize, left: usize, right: usize) -> Result<Tensor> {
    xs.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)
}

/// Mean over the spatial dimensions, kept: `(N, C, H, W) → (N, C, 1, 1)` (global average pool).
pub fn global_avg_pool(xs: &Tensor) -> Result<Tensor> {
    xs.mean_keepdim(D::Minus1)?.mean_keepdim(D::Minus2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};

    #[test]
    fn max_pool_matches_naive_and_gradients() -> Result<()> {
        let x = rand_f64(&[2, 3, 7, 6], 1)?;
        let y = max_pool2x2(&x)?;
        assert_eq!(y.dims(), &[2, 3, 3, 3]);
        let w = x.narrow(2, 2, 2)?.narrow(3, 4, 2)?.flatten_all()?.to_vec1::<f64>()?;
        let got = y.narrow(2, 1, 1)?.narrow(3, 2, 1)?.flatten_all()?.to_vec1::<f64>()?;
        let want = w[..4].iter().cloned().fold(f64::MIN, f64::max);
        assert_eq!(got[0], want);
        assert_grad_ok(&x, max_pool2x2, 2)
    }

    #[test]
    fn max_pool_gradient_is_one_at_the_maximum() -> Result<()> {
        let x = Tensor::arange(0f64, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
        let var = candle_core::Var::from_tensor(&x)?;
        let grads = max_pool2x2(var.as_tensor())?.sum_all()?.backward()?;
        let g = grads.get(&var).expect("grad").flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(g.iter().sum::<f64>(), 4.0);
        assert_eq!(g[5], 1.0);
        assert_eq!(g[15], 1.0);
        Ok(())
    }

    #[test]
    fn avg_pool_values_and_gradients() -> Result<()> {
        let x = Tensor::arange(0f64, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
        let y = avg_pool2x2(&x)?.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(y, vec![2.5, 4.5, 10.5, 12.5]);
        assert_grad_ok(&rand_f64(&[1, 2, 5, 7], 2)?, avg_pool2x2, 3)
    }

    #[test]
    fn interp_matrix_matches_pytorch_rule() -> Result<()> {
        // PyTorch: F.interpolate(torch.arange(4.).view(1,1,1,4), size=(1,8), mode="bilinear")
        // gives [0, .25, .75, 1.25, 1.75, 2.25, 2.75, 3].
        let x = Tensor::arange(0f64, 4., &Device::Cpu)?.reshape((1, 1, 1, 4))?;
        let y = bilinear_resize(&x, 1, 8)?.flatten_all()?.to_vec1::<f64>()?;
        let want = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{y:?}");
        }
        // Downscaling 4 -> 2 averages pairs: sources 0.5 and 2.5.
        let y = bilinear_resize(&x, 1, 2)?.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(y, vec![0.5, 2.5]);
        Ok(())
    }

    #[test]
    fn bilinear_matches_candle_forward() -> Result<()> {
        let x = rand_f64(&[2, 3, 5, 7], 4)?;
        for &(oh, ow) in &[(11, 13), (3, 4), (10, 14), (1, 1)] {
            let ours = bilinear_resize(&x, oh, ow)?;
            let theirs = x.upsample_bilinear2d(oh, ow, false)?;
            let d = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(d < 1e-12, "{oh}x{ow}: {d}");
        }
        Ok(())
    }

    #[test]
    fn bilinear_gradients() -> Result<()> {
        let x = rand_f64(&[1, 2, 4, 5], 5)?;
        assert_grad_ok(&x, |x| bilinear_resize(x, 7, 3), 6)
    }

    #[test]
    fn softplus_is_stable_and_correct() -> Result<()> {
        let z = Tensor::new(&[-1000f64, -40., -1., 0., 1., 40., 1000.], &Device::Cpu)?;
        let sp = softplus(&z)?.to_vec1::<f64>()?;
        let want = [
            0.0,
            (-40f64).exp().ln_1p(),
            (-1f64).exp().ln_1p(),
            2f64.ln(),
            1f64.exp().ln_1p(),
            40.0 + (-40f64).exp().ln_1p(),
            1000.0,
        ];
        for (a, b) in sp.iter().zip(want) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{sp:?}");
        }
        let zf = z.to_dtype(DType::F32)?;
        let sp32 = softplus(&zf)?.to_vec1::<f32>()?;
        assert!(sp32.iter().all(|v| v.is_finite()));
        // Gradient = sigmoid(z), including z = 0.
        let var = candle_core::Var::from_tensor(&z)?;
        let g = softplus(var.as_tensor())?.sum_all()?.backward()?;
        let g = g.get(&var).expect("grad").to_vec1::<f64>()?;
        assert_eq!(g[3], 0.5);
        assert!((g[2] - 1.0 / (1.0 + 1f64.exp())).abs() < 1e-15);
        Ok(())
    }

    #[test]
    fn bce_with_logits_gradients() -> Result<()> {
        let z = (rand_f64(&[1, 1, 4, 5], 7)? * 6.0)?;
        let t = rand_f64(&[1, 1, 4, 5], 8)?.ge(0.5)?.to_dtype(DType::F64)?;
        assert_grad_ok(&z, |z| bce_with_logits(z, &t), 9)
    }

    #[test]
    fn strided_conv_survives_mixed_parity() -> Result<()> {
        // 9x8 input, k3, stride 2: plain candle backward fails here.
        let x = rand_f64(&[1, 2, 9, 8], 10)?;
        let k = rand_f64(&[3, 2, 3, 3], 11)?;
        let y = conv2d_strided(&x, &k, 2, 1, 1)?;
        let plain = x.conv2d(&k, 0, 2, 1, 1)?;
        assert_eq!(y.dims(), plain.dims());
        assert_eq!((y - &plain)?.abs()?.max_all()?.to_scalar::<f64>()?, 0.0);
        assert_grad_ok(&x, |x| conv2d_strided(x, &k, 2, 1, 1), 12)?;
        assert_grad_ok(&k, |k| conv2d_strided(&x, k, 2, 1, 1), 13)
    }

    #[test]
    fn dilated_and_grouped_conv_gradients() -> Result<()> {
        let x = rand_f64(&[2, 4, 9, 11], 14)?;
        let k = rand_f64(&[6, 2, 3, 3], 15)?;
        // dilation 2, groups 2, padding 2 (the rHDC and ASPP shapes)
        assert_grad_ok(&x, |x| x.conv2d(&k, 2, 1, 2, 2), 16)?;
        assert_grad_ok(&k, |k| x.conv2d(k, 2, 1, 2, 2), 17)?;
        let k3 = rand_f64(&[4, 4, 3, 3], 18)?;
        assert_grad_ok(&x, |x| x.conv2d(&k3, 3, 1, 3, 1), 19)
    }

    #[test]
    fn depthwise_matches_grouped_conv() -> Result<()> {
        let x = rand_f64(&[2, 5, 11, 10], 20)?;
        let k = rand_f64(&[5, 1, 3, 3], 21)?;
        for &(stride, dil) in &[(1, 1), (1, 2), (2, 1), (2, 2)] {
            let ours = depthwise_conv3x3(&x, &k, stride, dil)?;
            let theirs = x.conv2d(&k, 0, stride, dil, 5)?;
            assert_eq!(ours.dims(), theirs.dims(), "s{stride} d{dil}");
            let d = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(d < 1e-12, "s{stride} d{dil}: {d}");
        }
        assert_grad_ok(&x, |x| depthwise_conv3x3(x, &k, 2, 2), 22)?;
        assert_grad_ok(&k, |k| depthwise_conv3x3(&x, k, 2, 1), 23)
    }
}
