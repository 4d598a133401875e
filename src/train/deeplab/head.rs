//! The DeepLabv3+ head (Chen et al., ECCV 2018) as VainF's `DeepLabHeadV3Plus`: ASPP on the
//! high-level features, a 48-channel projection of the low-level ones, concatenation at stride
//! 4 and a classifier. Keys follow VainF: `project.*`, `aspp.convs.{0..4}.*`, `aspp.project.*`,
//! `classifier.{0,1,3}.*`.
//!
//! VainF's decoder has **one** 3×3 conv (304 → 256) before the 1×1 classifier, where the
//! DeepLabv3+ paper uses two; we follow VainF so its VOC checkpoint loads. Upsampling uses the
//! differentiable [`bilinear_resize`] (candle's `upsample_bilinear2d` has no backward).

use candle_core::{Result, Tensor};
use candle_nn::{ModuleT, VarBuilder};

use super::conv_bn::{Act, ConvBn, ConvSpec};
use crate::train::layers::{bilinear_resize, global_avg_pool};

/// Atrous spatial pyramid pooling: 1×1, three dilated 3×3 and an image-pooling branch, each
/// `out` channels, concatenated and projected back to `out` (then dropout in training).
#[derive(Debug, Clone)]
pub struct Aspp {
    branches: Vec<ConvBn>,
    pooling: ConvBn,
    project: ConvBn,
    dropout: f32,
}

impl Aspp {
    /// ASPP with the given dilation `rates` (6/12/18 at output stride 16, 12/24/36 at 8).
    pub fn new(
        cin: usize,
        out: usize,
        rates: [usize; 3],
        dropout: f32,
        vb: VarBuilder,
    ) -> Result<Self> {
        let convs = vb.pp("convs");
        let mut branches = vec![ConvBn::seq(ConvSpec::dense(cin, out, 1), Act::Relu, convs.pp(0))?];
        for (i, &r) in rates.iter().enumerate() {
            let spec = ConvSpec { dilation: r, padding: r, ..ConvSpec::dense(cin, out, 3) };
            branches.push(ConvBn::seq(spec, Act::Relu, convs.pp(i + 1))?);
        }
        // Index 0 of the pooling Sequential is AdaptiveAvgPool2d, which has no weights.
        let pooling = ConvBn::new(ConvSpec::dense(cin, out, 1), Act::Relu, convs.pp(4), "1", "2")?;
        let project = ConvBn::seq(ConvSpec::dense(5 * out, out, 1), Act::Relu, vb.pp("project"))?;
        Ok(Self { branches, pooling, project, dropout })
    }
}

impl ModuleT for Aspp {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let (n, _, h, w) = xs.dims4()?;
        if train && n < 2 {
            // BatchNorm over a 1×1 map of one sample has no variance (PyTorch refuses it too).
            candle_core::bail!("ASPP image pooling needs a batch of at least 2 in train mode")
        }
        let mut outs = Vec::with_capacity(5);
        for b in &self.branches {
            outs.push(b.forward_t(xs, train)?);
        }
        let pooled = self.pooling.forward_t(&global_avg_pool(xs)?, train)?;
        outs.push(bilinear_resize(&pooled, h, w)?);
        let ys = self.project.forward_t(&Tensor::cat(&outs, 1)?, train)?;
        if train && self.dropout > 0.0 {
            candle_nn::ops::dropout(&ys, self.dropout)
        } else {
            Ok(ys)
        }
    }
}

/// VainF's `DeepLabHeadV3Plus`.
#[derive(Debug, Clone)]
pub struct DeepLabHead {
    project: ConvBn,
    aspp: Aspp,
    fuse: ConvBn,
    classifier_w: Tensor,
    classifier_b: Tensor,
}

/// Channel counts of the head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadSpec {
    /// Channels of the high-level (ASPP input) features.
    pub high_channels: usize,
    /// Channels of the low-level features.
    pub low_channels: usize,
    /// Channels of the low-level projection (48 in DeepLabv3+).
    pub low_proj: usize,
    /// Channels of every ASPP branch and of the decoder conv (256).
    pub aspp: usize,
    /// Number of classes (21 for VOC).
    pub num_classes: usize,
    /// ASPP dilation rates.
    pub rates: [usize; 3],
    /// Dropout after the ASPP projection in training (0.1).
    pub dropout: f32,
}

impl DeepLabHead {
    /// Builds the head under `vb` (VainF's `classifier.*`).
    pub fn new(spec: &HeadSpec, vb: VarBuilder) -> Result<Self> {
        let project = ConvBn::seq(
            ConvSpec::dense(spec.low_channels, spec.low_proj, 1),
            Act::Relu,
            vb.pp("project"),
        )?;
        let aspp =
            Aspp::new(spec.high_channels, spec.aspp, spec.rates, spec.dropout, vb.pp("aspp"))?;
        let head = vb.pp("classifier");
        let fuse_spec =
            ConvSpec { padding: 1, ..ConvSpec::dense(spec.low_proj + spec.aspp, spec.aspp, 3) };
        let fuse = ConvBn::seq(fuse_spec, Act::Relu, head.clone())?;
        let cls = head.pp(3);
        let classifier_w = cls.get_with_hints(
            (spec.num_classes, spec.aspp, 1, 1),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let classifier_b =
            cls.get_with_hints(spec.num_classes, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self { project, aspp, fuse, classifier_w, classifier_b })
    }

    /// Stride-4 class logits from the low-level and high-level features.
    pub fn forward_t(
        &self,
        low_level: &Tensor,
        high_level: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        let low = self.project.forward_t(low_level, train)?;
        let (_, _, h, w) = low.dims4()?;
        let high = bilinear_resize(&self.aspp.forward_t(high_level, train)?, h, w)?;
        let fused = self.fuse.forward_t(&Tensor::cat(&[&low, &high], 1)?, train)?;
        fused
            .conv2d(&self.classifier_w, 0, 1, 1, 1)?
            .broadcast_add(&self.classifier_b.reshape((1, (), 1, 1))?)
    }
}
