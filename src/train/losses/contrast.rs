//! L_c, the contrastive constraint of paper §3.3, eq. 8–9:
//!
//! `L_c = max{d(G(S̃1), G(Ĩ_P)) − d(G(S̃1), G(Ĩ_N)) + α, 0} + max{d(E(S̃1), E(Ĩ_P)) − d(E(S̃1), E(Ĩ_N)) + β, 0}`
//!
//! `S̃` are VGG16 feature maps at relu1_2 and relu2_2, `G` the channel Gram matrix and `E` the
//! expectation (channel mean). The anchor is S1, the positive the GT, and the negatives
//! `I_N = {I, I_over}` (the textured input, under-smoothed, and an over-smoothed image); each
//! negative contributes its own pair of hinge terms.
//!
//! Choices and differences from the authors' code (`shared/docs/reference-implementation.md`
//! §2.4):
//! * Gram `G = F·Fᵀ / (C·H·W)` per sample; its distance is the **sum** of squared differences,
//!   over both taps and the batch, as coded. The margin on it is 0.04 (the code's k2; the paper
//!   names this margin α).
//! * The mean term: the paper's `E(S̃)` is read as the spatial mean of each VGG channel, with an
//!   L1 distance averaged over batch and channels and summed over taps
//!   ([`MeanSpace::VggChannels`]). The code instead compares the channel-mean **grey image** of
//!   the RGB pixels, L1 averaged over batch and pixels ([`MeanSpace::ImageGrey`]). Margin 0.3.
//! * The code draws one negative per batch (OV or OB with probability ½); here the caller passes
//!   the negatives to use, one or both.
//! * The code's VGG is torchvision's with unnormalised [0, 1] input; ours is the Caffe VGG16 with
//!   its own preprocessing ([`crate::train::vgg`]), which sees pixels on the 0–255 scale. Its
//!   features are therefore multiplied by [`ContrastConfig::feature_scale`] (default 1/255)
//!   before the Gram and mean, which puts them on the [0, 1]-input scale the authors' margins
//!   were chosen for. Unscaled, the Gram distances of a fresh network are about 255⁴ ≈ 4·10⁹
//!   times larger (a first-step loss near 10¹¹ measured here) and swamp every other term.

use candle_core::{Result, Tensor};

use crate::train::vgg::{Vgg16Features, VggTaps};

/// Where the first-order ("expectation") triplet of eq. 9 compares images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeanSpace {
    /// Spatial mean of every VGG channel at each tap (the paper's `E(S̃)`).
    VggChannels,
    /// Per-pixel mean over the RGB channels of the images themselves (the authors' code).
    ImageGrey,
}

/// Settings of L_c.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContrastConfig {
    /// Hinge margin of the Gram triplet (code: k2 = 0.04).
    pub gram_margin: f64,
    /// Hinge margin of the mean triplet (code: k1 = 0.3).
    pub mean_margin: f64,
    /// Space of the mean triplet.
    pub mean_space: MeanSpace,
    /// Factor applied to the VGG features before the distances (1/255; see the module doc).
    pub feature_scale: f64,
}

impl Default for ContrastConfig {
    fn default() -> Self {
        Self { gram_margin: 0.04, mean_margin: 0.3, mean_space: MeanSpace::VggChannels, feature_scale: 1.0 / 255.0 }
    }
}

impl ContrastConfig {
    /// The authors' code: the mean triplet on grey images.
    pub fn reference_code() -> Self {
        Self { mean_space: MeanSpace::ImageGrey, ..Self::default() }
    }
}

/// Channel Gram matrices `F·Fᵀ / (C·H·W)` of `(N, C, H, W)` features, shape `(N, C, C)`.
pub fn gram(features: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = features.dims4()?;
    let f = features.reshape((n, c, h * w))?;
    f.matmul(&f.t()?)? / (c * h * w) as f64
}

/// `Σ_taps Σ_batch ‖G(a) − G(b)‖²_F`, the Gram distance of eq. 8 as the authors code it.
pub fn gram_distance(a: &[Tensor], b: &[Tensor]) -> Result<Tensor> {
    sum_over_taps(a, b, |x, y| (gram(x)? - gram(y)?)?.sqr()?.sum_all())
}

/// `Σ_taps mean_{n,c} |E(a) − E(b)|` with `E` the spatial mean per channel.
pub fn channel_mean_distance(a: &[Tensor], b: &[Tensor]) -> Result<Tensor> {
    sum_over_taps(a, b, |x, y| {
        let ex = x.mean(3)?.mean(2)?;
        let ey = y.mean(3)?.mean(2)?;
        (ex - ey)?.abs()?.mean_all()
    })
}

/// `mean_{n,h,w} |mean_c(a) − mean_c(b)|` on images (the authors' pixel triplet distance).
pub fn grey_distance(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    (a.mean_keepdim(1)? - b.mean_keepdim(1)?)?.abs()?.mean_all()
}

fn sum_over_taps<F>(a: &[Tensor], b: &[Tensor], f: F) -> Result<Tensor>
where
    F: Fn(&Tensor, &Tensor) -> Result<Tensor>,
{
    if a.len() != b.len() || a.is_empty() {
        candle_core::bail!("contrast: {} and {} feature taps", a.len(), b.len())
    }
    let mut total = f(&a[0], &b[0])?;
    for (x, y) in a.iter().zip(b).skip(1) {
        total = (total + f(x, y)?)?;
    }
    Ok(total)
}

/// The hinge of eq. 9: `max(d_ap − d_an + margin, 0)`.
pub fn triplet(d_ap: &Tensor, d_an: &Tensor, margin: f64) -> Result<Tensor> {
    ((d_ap - d_an)? + margin)?.relu()
}

/// L_c, paper eq. 9, for anchor `s1`, positive `gt` and each of `negatives`, all `(N, 3, H, W)`
/// RGB in [0, 1] with H, W even; the sum over negatives of the Gram and mean hinge terms on
/// VGG16 relu1_2 and relu2_2 (see the module doc for the distances and the code's differences).
///
/// One VGG forward runs on the concatenated batch; only `s1` carries gradient.
pub fn contrastive_loss(
    vgg: &Vgg16Features,
    s1: &Tensor,
    gt: &Tensor,
    negatives: &[&Tensor],
    cfg: &ContrastConfig,
) -> Result<Tensor> {
    if negatives.is_empty() {
        candle_core::bail!("contrastive_loss needs at least one negative")
    }
    let n = s1.dim(0)?;
    let mut batch = vec![s1.clone(), gt.detach()];
    batch.extend(negatives.iter().map(|t| t.detach()));
    let taps = vgg.forward(&Tensor::cat(&batch, 0)?)?;
    let part = |i: usize| -> Result<Vec<Tensor>> {
        let VggTaps { relu1_2, relu2_2, .. } = &taps;
        let scale = |t: &Tensor| t.narrow(0, i * n, n)?.affine(cfg.feature_scale, 0.0);
        Ok(vec![scale(relu1_2)?, scale(relu2_2)?])
    };
    let (anchor, positive) = (part(0)?, part(1)?);
    let mean_d = |i: usize| -> Result<Tensor> {
        match cfg.mean_space {
            MeanSpace::VggChannels => channel_mean_distance(&anchor, &part(i)?),
            MeanSpace::ImageGrey => grey_distance(s1, &batch[i]),
        }
    };
    let gram_ap = gram_distance(&anchor, &positive)?;
    let mean_ap = mean_d(1)?;
    let mut total: Option<Tensor> = None;
    for i in 2..batch.len() {
        let neg = part(i)?;
        let term = (triplet(&gram_ap, &gram_distance(&anchor, &neg)?, cfg.gram_margin)?
            + triplet(&mean_ap, &mean_d(i)?, cfg.mean_margin)?)?;
        total = Some(match total {
            None => term,
            Some(t) => (t + term)?,
        });
    }
    total.ok_or_else(|| candle_core::Error::Msg("contrastive_loss: no negative".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};
    use crate::train::vgg::VggDepth;
    use candle_core::Device;

    #[test]
    fn gram_by_hand() -> Result<()> {
        // One sample, 2 channels, 1×2 pixels: F = [[1, 2], [3, 4]].
        let f = Tensor::new(&[1f64, 2., 3., 4.], &Device::Cpu)?.reshape((1, 2, 1, 2))?;
        let g = gram(&f)?.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(g, vec![5.0 / 4.0, 11.0 / 4.0, 11.0 / 4.0, 25.0 / 4.0]);
        Ok(())
    }

    #[test]
    fn hinge_and_distances() -> Result<()> {
        let dev = Device::Cpu;
        let d = |v: f64| Tensor::new(v, &dev);
        assert_eq!(triplet(&d(0.1)?, &d(0.5)?, 0.3)?.to_scalar::<f64>()?, 0.0);
        assert!((triplet(&d(0.5)?, &d(0.4)?, 0.3)?.to_scalar::<f64>()? - 0.4).abs() < 1e-12);
        let a = rand_f64(&[2, 3, 4, 4], 1)?;
        let b = rand_f64(&[2, 3, 4, 4], 2)?;
        assert_eq!(
            gram_distance(std::slice::from_ref(&a), std::slice::from_ref(&a))?
                .to_scalar::<f64>()?,
            0.0
        );
        let gd = grey_distance(&a, &b)?.to_scalar::<f64>()?;
        assert!(gd > 0.0);
        let cm =
            channel_mean_distance(&[a.clone(), a.clone()], &[b.clone(), b])?.to_scalar::<f64>()?;
        assert!(cm > 0.0);
        Ok(())
    }

    fn tiny_vgg() -> Result<Vgg16Features> {
        crate::train::vgg::tests::random_vgg(VggDepth::Relu2_2, 0.03, 0.01)
    }

    #[test]
    fn gradients_reach_the_anchor() -> Result<()> {
        let vgg = tiny_vgg()?;
        let s1 = rand_f64(&[1, 3, 4, 4], 3)?;
        let gt = rand_f64(&[1, 3, 4, 4], 4)?;
        let ob = rand_f64(&[1, 3, 4, 4], 5)?;
        let ov = ((&gt * 0.9)? + 0.05)?;
        for space in [MeanSpace::VggChannels, MeanSpace::ImageGrey] {
            let cfg = |m: f64| ContrastConfig { gram_margin: m, mean_margin: m, mean_space: space, feature_scale: 1.0 };
            let loss = |s: &Tensor, m: f64| contrastive_loss(&vgg, s, &gt, &[&ob, &ov], &cfg(m));
            // All four hinges (2 negatives x 2 terms) active: raising the margins by 1 adds 4.
            let (l1, l2) =
                (loss(&s1, 1.0)?.to_scalar::<f64>()?, loss(&s1, 2.0)?.to_scalar::<f64>()?);
            assert!((l2 - l1 - 4.0).abs() < 1e-9, "{l1} {l2}");
            assert_grad_ok(&s1, |s| loss(s, 1.0)?.reshape(1), 6)?;
        }
        Ok(())
    }

    #[test]
    fn anchor_equal_to_positive_is_margin_bounded() -> Result<()> {
        let vgg = tiny_vgg()?;
        let gt = rand_f64(&[2, 3, 4, 4], 7)?;
        let neg = rand_f64(&[2, 3, 4, 4], 8)?;
        let l = contrastive_loss(&vgg, &gt, &gt, &[&neg], &ContrastConfig::reference_code())?;
        let l = l.to_scalar::<f64>()?;
        assert!((0.0..=0.34 + 1e-12).contains(&l), "{l}");
        Ok(())
    }
}
