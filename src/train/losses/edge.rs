//! L_edge, the class-balanced edge loss of paper eq. 5:
//!
//! `L_edge = −α Σ_{E⁺} log p − (1 − α) Σ_{E⁻} log(1 − p)`, `α = |E⁻| / |E|`, `p = σ(logit)`.
//!
//! As in the authors' `edgeLoss` (`shared/docs/reference-implementation.md` §2.2), α is counted
//! over the whole batch tensor, not per image, and the reduction is a sum, which is why eq. 11
//! weights the term by λe = 0.001. It is computed from logits with the stable
//! [`bce_with_logits`], so it stays finite for any logit.

use candle_core::{DType, Result, Tensor};

use crate::train::layers::bce_with_logits;

/// Class-balanced binary cross-entropy on edge logits, paper eq. 5, summed over all pixels.
///
/// `logits` and `edge_gt` have the same shape, normally `(N, 1, H, W)`. A target counts as an
/// edge when it is above 0.5 (the data are 0/1; the reference casts the label to an integer, so
/// it too treats only 1 as an edge). Edge pixels are weighted by `N_neg / N` and the others by
/// `N_pos / N`, both counted over the whole batch. With no edge pixel at all the loss is 0.
///
/// Differences from the authors' `edgeLoss` (a weighted BCE-with-logits, sum reduction): none
/// in value; the label is thresholded at 0.5 where theirs is cast to an integer.
pub fn edge_loss(logits: &Tensor, edge_gt: &Tensor) -> Result<Tensor> {
    if logits.dims() != edge_gt.dims() {
        candle_core::bail!(
            "edge_loss: logits {:?} and edge map {:?} differ",
            logits.shape(),
            edge_gt.shape()
        )
    }
    let target = edge_gt.gt(0.5)?.to_dtype(logits.dtype())?;
    let total = target.elem_count() as f64;
    let n_pos = target.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
    let n_neg = total - n_pos;
    // weight = t·N_neg/N + (1 − t)·N_pos/N = N_pos/N + t·(N_neg − N_pos)/N
    let weights = target.affine((n_neg - n_pos) / total, n_pos / total)?;
    (bce_with_logits(logits, &target)? * weights)?.sum_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};
    use candle_core::Device;

    fn naive(z: &[f64], t: &[f64]) -> f64 {
        let n = t.len() as f64;
        let pos = t.iter().filter(|&&v| v > 0.5).count() as f64;
        let alpha = (n - pos) / n;
        z.iter()
            .zip(t)
            .map(|(&z, &t)| {
                let p = 1.0 / (1.0 + (-z).exp());
                if t > 0.5 {
                    -alpha * p.ln()
                } else {
                    -(1.0 - alpha) * (1.0 - p).ln()
                }
            })
            .sum()
    }

    #[test]
    fn matches_eq5_by_hand() -> Result<()> {
        let z = ((rand_f64(&[2, 1, 3, 4], 1)? - 0.5)? * 8.0)?;
        let t = rand_f64(&[2, 1, 3, 4], 2)?.gt(0.7)?.to_dtype(DType::F64)?;
        let got = edge_loss(&z, &t)?.to_scalar::<f64>()?;
        let want = naive(&z.flatten_all()?.to_vec1::<f64>()?, &t.flatten_all()?.to_vec1::<f64>()?);
        assert!((got - want).abs() < 1e-10 * want.abs(), "{got} vs {want}");
        Ok(())
    }

    #[test]
    fn stable_for_huge_logits() -> Result<()> {
        let z = Tensor::new(&[[[[200f32, -200., 90., -90.]]]], &Device::Cpu)?;
        let t = Tensor::new(&[[[[0f32, 1., 1., 0.]]]], &Device::Cpu)?;
        let l = edge_loss(&z, &t)?.to_scalar::<f32>()?;
        // α = 0.5: wrong-sign logits cost 0.5·200 each, right-sign ones ≈ 0.
        assert!((l - 200.0).abs() < 1e-3, "{l}");
        Ok(())
    }

    #[test]
    fn no_edges_gives_zero() -> Result<()> {
        let z = rand_f64(&[1, 1, 2, 2], 3)?;
        let t = z.zeros_like()?;
        assert_eq!(edge_loss(&z, &t)?.to_scalar::<f64>()?, 0.0);
        Ok(())
    }

    #[test]
    fn gradients() -> Result<()> {
        let z = ((rand_f64(&[2, 1, 4, 3], 4)? - 0.5)? * 6.0)?;
        let t = rand_f64(&[2, 1, 4, 3], 5)?.gt(0.6)?.to_dtype(DType::F64)?;
        assert_grad_ok(&z, |z| edge_loss(z, &t), 6)
    }
}
