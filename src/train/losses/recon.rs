//! L_re, the reconstruction loss of paper eq. 6, applied to S0 and S1 as eq. 11 does:
//!
//! `L_re(S, S_gt) = L1(S, S_gt) + Σ_{i=0..3} (1 − SSIM(P_{2^i}(S), P_{2^i}(S_gt)))`
//!
//! `P_{2^i}` is i successive 2×2 max-pools (full, ½, ¼, ⅛ resolution). The paper prints the sum
//! of SSIMs; minimising it only makes sense as the dissimilarity 1 − SSIM, which is what the
//! authors' code minimises too. Their code (`shared/docs/reference-implementation.md` §2.1)
//! weights the SSIM part by 0.1, i.e. `L1 + 0.1·(4 − Σ SSIM)`: [`ReconConfig::reference_code`].

use candle_core::{Result, Tensor};

use super::ssim::ssim;
use crate::train::layers::max_pool2x2;

/// Settings of L_re.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconConfig {
    /// Number of pyramid levels, the first at full resolution (paper and code: 4).
    pub scales: usize,
    /// Weight of `Σ (1 − SSIM)` against the L1 term (paper: 1; authors' code: 0.1).
    pub ssim_weight: f64,
}

impl Default for ReconConfig {
    /// The paper's eq. 6: four scales, SSIM weight 1.
    fn default() -> Self {
        Self { scales: 4, ssim_weight: 1.0 }
    }
}

impl ReconConfig {
    /// The authors' code: `L1 + 0.1·(4 − Σ SSIM)`.
    pub fn reference_code() -> Self {
        Self { scales: 4, ssim_weight: 0.1 }
    }
}

/// Mean absolute error over every element (PyTorch `L1Loss`, mean reduction).
pub fn l1_loss(s: &Tensor, gt: &Tensor) -> Result<Tensor> {
    (s - gt)?.abs()?.mean_all()
}

/// L_re of one prediction, paper eq. 6: L1 plus `ssim_weight · Σ_i (1 − SSIM)` over the
/// max-pool pyramid (see the module doc for the sign and the authors' 0.1 weight).
///
/// `s` and `gt` are `(N, C, H, W)`; each level needs at least 2×2 pixels before pooling.
pub fn recon_loss(s: &Tensor, gt: &Tensor, cfg: &ReconConfig) -> Result<Tensor> {
    let mut total = l1_loss(s, gt)?;
    let (mut a, mut b) = (s.clone(), gt.clone());
    for level in 0..cfg.scales {
        if level > 0 {
            a = max_pool2x2(&a)?;
            b = max_pool2x2(&b)?;
        }
        let dissim = (1.0 - ssim(&a, &b)?)?;
        total = (total + (dissim * cfg.ssim_weight)?)?;
    }
    Ok(total)
}

/// `L_re(S0, S_gt) + L_re(S1, S_gt)`, the two reconstruction terms of eq. 11.
pub fn recon_loss_pair(s0: &Tensor, s1: &Tensor, gt: &Tensor, cfg: &ReconConfig) -> Result<Tensor> {
    recon_loss(s0, gt, cfg)? + recon_loss(s1, gt, cfg)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};

    #[test]
    fn identical_images_cost_nothing() -> Result<()> {
        let x = rand_f64(&[1, 3, 16, 16], 1)?;
        let l = recon_loss(&x, &x, &ReconConfig::default())?.to_scalar::<f64>()?;
        assert!(l.abs() < 1e-12, "{l}");
        Ok(())
    }

    #[test]
    fn decomposes_into_l1_and_pyramid() -> Result<()> {
        let s = rand_f64(&[2, 3, 16, 16], 2)?;
        let gt = rand_f64(&[2, 3, 16, 16], 3)?;
        let l1 = l1_loss(&s, &gt)?.to_scalar::<f64>()?;
        let mut sum_ssim = 0.0;
        let (mut a, mut b) = (s.clone(), gt.clone());
        for i in 0..4 {
            if i > 0 {
                a = max_pool2x2(&a)?;
                b = max_pool2x2(&b)?;
            }
            sum_ssim += ssim(&a, &b)?.to_scalar::<f64>()?;
        }
        assert_eq!(a.dims(), &[2, 3, 2, 2]);
        let paper = recon_loss(&s, &gt, &ReconConfig::default())?.to_scalar::<f64>()?;
        assert!((paper - (l1 + 4.0 - sum_ssim)).abs() < 1e-12);
        let code = recon_loss(&s, &gt, &ReconConfig::reference_code())?.to_scalar::<f64>()?;
        assert!((code - (l1 + 0.1 * (4.0 - sum_ssim))).abs() < 1e-12);
        let pair = recon_loss_pair(&s, &gt, &gt, &ReconConfig::default())?.to_scalar::<f64>()?;
        assert!((pair - paper).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn gradients() -> Result<()> {
        let s = rand_f64(&[1, 2, 8, 8], 4)?;
        let gt = rand_f64(&[1, 2, 8, 8], 5)?;
        assert_grad_ok(&s, |s| recon_loss(s, &gt, &ReconConfig::default()), 6)
    }
}
