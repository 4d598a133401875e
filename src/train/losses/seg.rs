//! L_seg, the semantic term of paper eq. 10: `L_seg = CrossEntropy(φ(S1), Seg_gt)`, φ being the
//! frozen DeepLabv3+ ([`crate::train::deeplab`]).
//!
//! PyTorch `CrossEntropyLoss(ignore_index=255)` with mean reduction, as the authors configure it
//! (`shared/docs/reference-implementation.md` §2.5). candle's `cross_entropy` has no ignore index
//! and takes rank-2 input only (`candle-notes.md` finding 6), so this one masks by hand.
//!
//! The authors' code feeds the textured input, not S1, to the frozen DeepLab, so their L_seg has
//! no gradient and does not train anything; feeding S1, as the paper states, is the caller's job.

use candle_core::{DType, Result, Tensor};

/// The label that marks void pixels (VOC boundaries): they contribute nothing.
pub const IGNORE_INDEX: u32 = 255;

/// Mean cross-entropy of `(N, C, H, W)` logits against `(N, H, W)` integer labels, skipping
/// [`IGNORE_INDEX`]; paper eq. 10. Returns 0 when every pixel is ignored.
///
/// Labels may be any integer dtype; values other than 255 must be below C.
pub fn seg_loss(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = logits.dims4()?;
    if labels.dims() != [n, h, w] {
        candle_core::bail!(
            "seg_loss: logits {:?} need labels (N, H, W), got {:?}",
            logits.shape(),
            labels.shape()
        )
    }
    let labels = labels.to_dtype(DType::U32)?;
    let keep = labels.ne(IGNORE_INDEX)?;
    let safe = keep.where_cond(&labels, &labels.zeros_like()?)?;
    if safe.max_all()?.to_scalar::<u32>()? as usize >= c {
        candle_core::bail!("seg_loss: a label is >= the {c} classes and is not {IGNORE_INDEX}")
    }
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let picked = log_p.gather(&safe.unsqueeze(1)?.contiguous()?, 1)?.squeeze(1)?;
    let mask = keep.to_dtype(logits.dtype())?;
    let count = keep.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
    let total = (picked * mask)?.sum_all()?.neg()?;
    if count == 0.0 {
        total.zeros_like()
    } else {
        total / count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};
    use candle_core::Device;

    #[test]
    fn matches_hand_computed_with_ignore() -> Result<()> {
        let dev = Device::Cpu;
        // Two pixels, three classes (NCHW order: class-major); the second pixel is void.
        let logits = Tensor::new(&[1f64, -1.0, 0.5, 3.0, 2.0, 0.0], &dev)?.reshape((1, 3, 1, 2))?;
        let l0 = [1f64, 0.5, 2.0];
        let labels = Tensor::new(&[[[2u8, 255]]], &dev)?;
        let got = seg_loss(&logits, &labels)?.to_scalar::<f64>()?;
        let lse = l0.iter().map(|v| v.exp()).sum::<f64>().ln();
        assert!((got - (lse - l0[2])).abs() < 1e-12, "{got}");
        let all_void = Tensor::new(&[[[255u8, 255]]], &dev)?;
        assert_eq!(seg_loss(&logits, &all_void)?.to_scalar::<f64>()?, 0.0);
        Ok(())
    }

    #[test]
    fn rejects_out_of_range_labels() -> Result<()> {
        let logits = rand_f64(&[1, 3, 1, 2], 1)?;
        let labels = Tensor::new(&[[[3u32, 0]]], &Device::Cpu)?;
        assert!(seg_loss(&logits, &labels).is_err());
        Ok(())
    }

    #[test]
    fn gradients() -> Result<()> {
        let logits = (rand_f64(&[2, 4, 3, 3], 2)? * 4.0)?;
        let raw: Vec<u32> = (0..18).map(|i| if i % 5 == 0 { 255 } else { i % 4 }).collect();
        let labels = Tensor::from_vec(raw, (2, 3, 3), &Device::Cpu)?;
        assert_grad_ok(&logits, |z| seg_loss(z, &labels), 3)
    }
}
