//! The CSGIS-Net training objective, paper eq. 11:
//!
//! `L_total = λe·L_edge + L_re(S0) + L_re(S1) + L_DTV(S0) + L_DTV(S1) + λc·L_c + λseg·L_seg`
//!
//! with λe = 0.001 and λc = λseg = 1 (§3.4). One module per term: [`edge`] (eq. 5), [`recon`]
//! with [`mod@ssim`] (eq. 6), [`dtv`] (eq. 7), [`contrast`] (eq. 8–9), [`seg`] (eq. 10).
//! [`LossTerms`] holds the already-summed S0 + S1 terms; [`LossWeights::total`] applies eq. 11.

pub mod blur;
pub mod contrast;
pub mod dtv;
pub mod edge;
pub mod recon;
pub mod seg;
pub mod ssim;

pub use contrast::{contrastive_loss, ContrastConfig, MeanSpace};
pub use dtv::{dtv_loss, gd_loss_reference_code};
pub use edge::edge_loss;
pub use recon::{recon_loss, recon_loss_pair, ReconConfig};
pub use seg::seg_loss;
pub use ssim::ssim;

use candle_core::{Result, Tensor};

/// The scalar loss terms of one batch; `None` marks a term that was not computed.
#[derive(Debug, Clone, Default)]
pub struct LossTerms {
    /// L_edge (eq. 5), summed over the batch.
    pub edge: Option<Tensor>,
    /// L_re(S0) + L_re(S1) (eq. 6).
    pub re: Option<Tensor>,
    /// L_DTV(S0) + L_DTV(S1) (eq. 7).
    pub dtv: Option<Tensor>,
    /// L_c (eq. 9).
    pub contrastive: Option<Tensor>,
    /// L_seg (eq. 10).
    pub seg: Option<Tensor>,
}

/// The λ weights of eq. 11, one per [`LossTerms`] field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    /// λe (paper and code: 0.001).
    pub edge: f64,
    /// Weight of the reconstruction terms (paper: 1).
    pub re: f64,
    /// Weight of the DTV terms (paper: 1; the authors' code: 0, logged only).
    pub dtv: f64,
    /// λc (paper and code: 1).
    pub contrastive: f64,
    /// λseg (paper and code: 1).
    pub seg: f64,
}

impl Default for LossWeights {
    /// The paper's eq. 11 weights.
    fn default() -> Self {
        Self { edge: 0.001, re: 1.0, dtv: 1.0, contrastive: 1.0, seg: 1.0 }
    }
}

impl LossWeights {
    /// The authors' training script: DTV is computed but left out of the total.
    pub fn reference_code() -> Self {
        Self { dtv: 0.0, ..Self::default() }
    }

    /// `Σ λ_k · term_k` over the terms present, eq. 11. Terms whose weight is 0 are skipped.
    /// Fails when no term contributes.
    pub fn total(&self, terms: &LossTerms) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for (term, weight) in terms.weighted(self) {
            if weight == 0.0 {
                continue;
            }
            let scaled = (term * weight)?;
            total = Some(match total {
                None => scaled,
                Some(t) => (t + scaled)?,
            });
        }
        total.ok_or_else(|| candle_core::Error::Msg("loss total: no weighted term present".into()))
    }
}

impl LossTerms {
    /// The present terms paired with their weights, in field order.
    fn weighted<'a>(&'a self, w: &LossWeights) -> Vec<(&'a Tensor, f64)> {
        [
            (&self.edge, w.edge),
            (&self.re, w.re),
            (&self.dtv, w.dtv),
            (&self.contrastive, w.contrastive),
            (&self.seg, w.seg),
        ]
        .into_iter()
        .filter_map(|(t, w)| t.as_ref().map(|t| (t, w)))
        .collect()
    }

    /// The unweighted values for logging, by field name, present terms only.
    pub fn values(&self) -> Result<Vec<(&'static str, f64)>> {
        let named = [
            ("edge", &self.edge),
            ("re", &self.re),
            ("dtv", &self.dtv),
            ("contrastive", &self.contrastive),
            ("seg", &self.seg),
        ];
        named
            .into_iter()
            .filter_map(|(n, t)| t.as_ref().map(|t| (n, t)))
            .map(|(n, t)| Ok((n, t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn total_applies_eq11_weights() -> Result<()> {
        let s = |v: f64| Tensor::new(v, &Device::Cpu).ok();
        let terms =
            LossTerms { edge: s(1000.0), re: s(2.0), dtv: s(3.0), contrastive: None, seg: s(0.5) };
        let paper = LossWeights::default().total(&terms)?.to_scalar::<f64>()?;
        assert!((paper - (1.0 + 2.0 + 3.0 + 0.5)).abs() < 1e-12);
        let code = LossWeights::reference_code().total(&terms)?.to_scalar::<f64>()?;
        assert!((code - 3.5).abs() < 1e-12);
        assert_eq!(terms.values()?.len(), 4);
        assert!(LossWeights::default().total(&LossTerms::default()).is_err());
        Ok(())
    }
}
