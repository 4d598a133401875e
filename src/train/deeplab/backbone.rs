//! MobileNetV2 (Sandler et al., CVPR 2018) as the DeepLabv3+ backbone, following VainF's
//! DeepLabV3Plus-Pytorch `network/backbone/mobilenetv2.py`, whose VOC checkpoint the CSGIS code
//! loads (`shared/docs/reference-implementation.md` §2.5).
//!
//! VainF details kept so its weights load and behave the same:
//! * the stem is a 3×3 stride-2 conv **without padding**;
//! * an inverted residual zero-pads its **input** by the depthwise conv's dilation before the
//!   1×1 expansion (`fixed_padding`), so the border of the expanded map is `ReLU6(BN(0))`, not 0;
//! * channel counts are `int(c · width_mult)` (the stem rounds to a multiple of 8);
//! * output stride 16 (or 8): once the running stride reaches it, later stride-2 stages become
//!   stride 1 with a doubled dilation; the first block of such a stage keeps the previous one;
//! * `low_level_features` = features[0..4] (stride 4, 24 channels at width 1) and
//!   `high_level_features` = features[4..18] (320 channels); the final 1×1 conv to 1280 is unused.

use candle_core::{Result, Tensor};
use candle_nn::{ModuleT, VarBuilder};

use super::conv_bn::{Act, ConvBn, ConvSpec};
use crate::train::layers::pad2d;

/// `(t, c, n, s)`: expansion, output channels, repeats, first stride of each stage.
const STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Channels after `features[3]` (the low-level tap) at `width_mult`.
pub fn low_level_channels(width_mult: f64) -> usize {
    (24.0 * width_mult) as usize
}

/// Channels of the last inverted residual (the ASPP input) at `width_mult`.
pub fn high_level_channels(width_mult: f64) -> usize {
    (320.0 * width_mult) as usize
}

/// torchvision's `_make_divisible(v, 8)`.
fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (rounded as f64) < 0.9 * v {
        rounded + divisor
    } else {
        rounded
    }
}

/// MobileNetV2's inverted residual: [1×1 expand →] 3×3 depthwise → 1×1 linear projection.
#[derive(Debug, Clone)]
struct InvertedResidual {
    layers: Vec<ConvBn>,
    dilation: usize,
    residual: bool,
}

impl InvertedResidual {
    fn new(
        inp: usize,
        oup: usize,
        stride: usize,
        dilation: usize,
        expand: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let hidden = inp * expand;
        let vb = vb.pp("conv");
        let mut layers = Vec::with_capacity(3);
        let mut i = 0;
        if expand != 1 {
            layers.push(ConvBn::seq(ConvSpec::dense(inp, hidden, 1), Act::Relu6, vb.pp(i))?);
            i += 1;
        }
        let dw =
            ConvSpec { stride, dilation, depthwise: true, ..ConvSpec::dense(hidden, hidden, 3) };
        layers.push(ConvBn::seq(dw, Act::Relu6, vb.pp(i))?);
        // The projection is a bare conv at index i+1 and its BN at i+2.
        let (conv_key, bn_key) = ((i + 1).to_string(), (i + 2).to_string());
        layers.push(ConvBn::new(
            ConvSpec::dense(hidden, oup, 1),
            Act::Linear,
            vb,
            &conv_key,
            &bn_key,
        )?);
        Ok(Self { layers, dilation, residual: stride == 1 && inp == oup })
    }
}

impl ModuleT for InvertedResidual {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let d = self.dilation;
        let mut ys = pad2d(xs, d, d, d, d)?;
        for layer in &self.layers {
            ys = layer.forward_t(&ys, train)?;
        }
        if self.residual {
            xs + ys
        } else {
            Ok(ys)
        }
    }
}

/// The two feature taps DeepLabv3+ reads.
#[derive(Debug, Clone)]
pub struct BackboneFeatures {
    /// Output of `low_level_features` (stride 4).
    pub low_level: Tensor,
    /// Output of `high_level_features` (stride = the output stride).
    pub out: Tensor,
}

/// VainF's MobileNetV2 split into `low_level_features` and `high_level_features`.
#[derive(Debug, Clone)]
pub struct MobileNetV2 {
    stem: ConvBn,
    low: Vec<InvertedResidual>,
    high: Vec<InvertedResidual>,
}

impl MobileNetV2 {
    /// Builds the backbone under `vb` (`low_level_features.*`, `high_level_features.*`).
    pub fn new(width_mult: f64, output_stride: usize, vb: VarBuilder) -> Result<Self> {
        if ![8, 16, 32].contains(&output_stride) {
            candle_core::bail!("output stride {output_stride}: expected 8, 16 or 32")
        }
        let stem_ch = make_divisible(32.0 * width_mult, 8);
        let stem_spec = ConvSpec { stride: 2, ..ConvSpec::dense(3, stem_ch, 3) };
        let stem = ConvBn::seq(stem_spec, Act::Relu6, vb.pp("low_level_features").pp(0))?;
        let (mut current_stride, mut dilation) = (2, 1);
        let mut input = stem_ch;
        let mut blocks = Vec::with_capacity(17);
        for &(t, c, n, s) in &STAGES {
            let previous_dilation = dilation;
            let stride = if current_stride == output_stride {
                dilation *= s;
                1
            } else {
                current_stride *= s;
                s
            };
            let output = (c as f64 * width_mult) as usize;
            for i in 0..n {
                let index = blocks.len() + 1; // features[index]; 0 is the stem
                let vb = if index < 4 {
                    vb.pp("low_level_features").pp(index)
                } else {
                    vb.pp("high_level_features").pp(index - 4)
                };
                let (st, dil) = if i == 0 { (stride, previous_dilation) } else { (1, dilation) };
                blocks.push(InvertedResidual::new(input, output, st, dil, t, vb)?);
                input = output;
            }
        }
        let high = blocks.split_off(3);
        Ok(Self { stem, low: blocks, high })
    }

    /// Runs `(N, 3, H, W)` ImageNet-normalised RGB through both feature groups.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<BackboneFeatures> {
        let mut x = self.stem.forward_t(xs, train)?;
        for b in &self.low {
            x = b.forward_t(&x, train)?;
        }
        let low_level = x.clone();
        for b in &self.high {
            x = b.forward_t(&x, train)?;
        }
        Ok(BackboneFeatures { low_level, out: x })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisible_rounding() {
        assert_eq!(make_divisible(32.0, 8), 32);
        assert_eq!(make_divisible(8.0, 8), 8);
        assert_eq!(make_divisible(4.0, 8), 8);
        assert_eq!(make_divisible(44.8, 8), 48);
        assert_eq!(low_level_channels(1.0), 24);
        assert_eq!(high_level_channels(0.25), 80);
    }
}
