//! L_DTV, the edge-guided ("distinctive") TV regulariser of paper eq. 7:
//!
//! `L_DTV(S, S_gt) = L1(S, S_gt, E⁺) + TV(S, S_gt, E⁻)`
//!
//! The L1 term keeps structure on the edge pixels E⁺; the TV term "encourages smoothness in the
//! non-edge domain" E⁻ (§3.2). The paper gives no formula for either, so [`dtv_loss`] takes the
//! plain reading: the mean absolute error over edge pixels, plus the anisotropic L1 total
//! variation of S (forward differences, no wrap) over non-edge pixels, each averaged over the
//! pixels it covers. `S_gt` enters only the L1 term; TV is taken of the prediction, not of
//! `S − S_gt`, because the text motivates it as smoothness.
//!
//! The authors' code differs (`shared/docs/reference-implementation.md` §2.3): its `GDLoss` has
//! no edge-L1 term; its TV is squared, wraps around at the border, is masked by (1 − edge), and
//! is divided by C·(H−1)·W and C·H·(W−1), then by the batch. It is computed as
//! `10·GD(S0) + GD(S1)` but **only logged, never trained on**. [`gd_loss_reference_code`]
//! reproduces it for logging parity.

use candle_core::{Result, Tensor};

fn check(s: &Tensor, edge: &Tensor) -> Result<(usize, usize, usize, usize)> {
    let (n, c, h, w) = s.dims4()?;
    let (en, ec, eh, ew) = edge.dims4()?;
    if en != n || ec != 1 || eh != h || ew != w || h < 2 || w < 2 {
        candle_core::bail!(
            "dtv: image {:?} needs a (N, 1, H, W) edge map, got {:?}",
            s.shape(),
            edge.shape()
        )
    }
    Ok((n, c, h, w))
}

/// `Σ mask·v / Σ mask` over broadcast `(N, C, H, W)` values, 0 when the mask is empty.
fn masked_mean(v: &Tensor, mask: &Tensor, channels: usize) -> Result<Tensor> {
    let count =
        mask.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? * channels as f64;
    let total = v.broadcast_mul(mask)?.sum_all()?;
    if count == 0.0 {
        total.zeros_like()
    } else {
        total / count
    }
}

/// L_DTV of one prediction, paper eq. 7: mean `|S − S_gt|` over edge pixels plus the mean
/// anisotropic TV `|∂x S| + |∂y S|` over non-edge pixels (see the module doc for the reading).
///
/// `s`, `gt`: `(N, C, H, W)`; `edge`: `(N, 1, H, W)`, edge where above 0.5. Differences are
/// forward (`S[i+1] − S[i]`) and belong to pixel `i`; the last row/column has none in its
/// direction. Eq. 11 adds it for both S0 and S1 with weight 1.
pub fn dtv_loss(s: &Tensor, gt: &Tensor, edge: &Tensor) -> Result<Tensor> {
    let (_, c, h, w) = check(s, edge)?;
    let on_edge = edge.gt(0.5)?.to_dtype(s.dtype())?;
    let off_edge = (1.0 - &on_edge)?;
    let l1 = masked_mean(&(s - gt)?.abs()?, &on_edge, c)?;
    let dy = (s.narrow(2, 1, h - 1)? - s.narrow(2, 0, h - 1)?)?.abs()?;
    let dx = (s.narrow(3, 1, w - 1)? - s.narrow(3, 0, w - 1)?)?.abs()?;
    // Pad each difference map back to H×W with zeros so both share the pixel mask.
    let tv = (dy.pad_with_zeros(2, 0, 1)? + dx.pad_with_zeros(3, 0, 1)?)?;
    l1 + masked_mean(&tv, &off_edge, c)?
}

/// The authors' `GDLoss` (logged only in their training): squared forward differences with
/// circular wrap, masked by (1 − edge), normalised by C·(H−1)·W and C·H·(W−1), then by N.
pub fn gd_loss_reference_code(s: &Tensor, edge: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = check(s, edge)?;
    let off_edge = (1.0 - edge.gt(0.5)?.to_dtype(s.dtype())?)?;
    let rolled_y = Tensor::cat(&[s.narrow(2, 1, h - 1)?, s.narrow(2, 0, 1)?], 2)?;
    let rolled_x = Tensor::cat(&[s.narrow(3, 1, w - 1)?, s.narrow(3, 0, 1)?], 3)?;
    let vy = (rolled_y - s)?.sqr()?.broadcast_mul(&off_edge)?.sum_all()?;
    let vx = (rolled_x - s)?.sqr()?.broadcast_mul(&off_edge)?.sum_all()?;
    let vy = (vy / (c * (h - 1) * w) as f64)?;
    let vx = (vx / (c * h * (w - 1)) as f64)?;
    (vy + vx)? / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};
    use candle_core::{DType, Device};

    #[test]
    fn hand_computed_example() -> Result<()> {
        let dev = Device::Cpu;
        // 1×1×2×2 image, one edge pixel at (0,0).
        let s = Tensor::new(&[[[[1f64, 3.], [4., 8.]]]], &dev)?;
        let gt = Tensor::new(&[[[[0.5f64, 0.], [0., 0.]]]], &dev)?;
        let e = Tensor::new(&[[[[1f64, 0.], [0., 0.]]]], &dev)?;
        // L1 on E+: |1 − 0.5| = 0.5. TV on E−: pixel (0,1): |8−3| = 5 (no x-neighbour);
        // pixel (1,0): |8−4| = 4 (no y-neighbour); pixel (1,1): 0. Mean over 3 = 3.
        let l = dtv_loss(&s, &gt, &e)?.to_scalar::<f64>()?;
        assert!((l - 3.5).abs() < 1e-12, "{l}");
        // Reference GD: wrap differences, squared, off-edge only.
        // y: (0,1): (8−3)² = 25, (1,0): (1−4)² = 9, (1,1): (3−8)² = 25 → 59 / (1·1·2)
        // x: (0,1): (1−3)² = 4, (1,0): (8−4)² = 16, (1,1): (4−8)² = 16 → 36 / (1·2·1)
        let g = gd_loss_reference_code(&s, &e)?.to_scalar::<f64>()?;
        assert!((g - (59.0 / 2.0 + 36.0 / 2.0)).abs() < 1e-12, "{g}");
        Ok(())
    }

    #[test]
    fn constant_image_without_edges_is_free() -> Result<()> {
        let s = Tensor::full(0.3f64, (2, 3, 5, 4), &Device::Cpu)?;
        let e = Tensor::zeros((2, 1, 5, 4), DType::F64, &Device::Cpu)?;
        assert_eq!(dtv_loss(&s, &s, &e)?.to_scalar::<f64>()?, 0.0);
        Ok(())
    }

    #[test]
    fn gradients() -> Result<()> {
        let s = rand_f64(&[2, 2, 4, 5], 1)?;
        let gt = rand_f64(&[2, 2, 4, 5], 2)?;
        let e = rand_f64(&[2, 1, 4, 5], 3)?.gt(0.6)?.to_dtype(DType::F64)?;
        assert_grad_ok(&s, |s| dtv_loss(s, &gt, &e), 4)?;
        assert_grad_ok(&s, |s| gd_loss_reference_code(s, &e), 5)
    }
}
