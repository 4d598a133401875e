//! Convolution + BatchNorm + activation, the unit every DeepLabv3+/MobileNetV2 layer is made of
//! (PyTorch `nn.Sequential(Conv2d(bias=False), BatchNorm2d, ReLU/ReLU6)`, keys `.0` and `.1`).
//!
//! Convolutions route around candle 0.11.1's defects (`shared/docs/candle-notes.md`): depthwise
//! 3×3 layers use [`depthwise_conv3x3`] instead of C per-group convolutions, and stride-2 layers
//! use [`conv2d_strided`], whose backward works for odd or mixed-parity sizes.

use candle_core::{Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, ModuleT, VarBuilder};

use crate::train::layers::{conv2d_strided, depthwise_conv3x3};

/// The non-linearity after the normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// No activation (MobileNetV2's linear bottleneck).
    Linear,
    /// `max(x, 0)` (the DeepLab head).
    Relu,
    /// `min(max(x, 0), 6)` (MobileNetV2).
    Relu6,
}

/// Geometry of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Stride (1 or 2).
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Symmetric zero padding applied by the convolution itself.
    pub padding: usize,
    /// Depthwise (`groups = cin = cout`) instead of dense.
    pub depthwise: bool,
}

impl ConvSpec {
    /// A dense `k×k` convolution, stride 1, dilation 1, no padding.
    pub fn dense(cin: usize, cout: usize, kernel: usize) -> Self {
        Self { cin, cout, kernel, stride: 1, dilation: 1, padding: 0, depthwise: false }
    }
}

/// Conv (no bias) → BatchNorm → activation, with PyTorch key names `{prefix}.0.weight` and
/// `{prefix}.1.{weight,bias,running_mean,running_var}`.
#[derive(Debug, Clone)]
pub struct ConvBn {
    weight: Tensor,
    bn: BatchNorm,
    spec: ConvSpec,
    act: Act,
}

impl ConvBn {
    /// Loads or creates the layer under `vb` (conv at `vb.pp(conv_key)`, BN at `vb.pp(bn_key)`).
    pub fn new(
        spec: ConvSpec,
        act: Act,
        vb: VarBuilder,
        conv_key: &str,
        bn_key: &str,
    ) -> Result<Self> {
        let cin_per_group = if spec.depthwise { 1 } else { spec.cin };
        if spec.depthwise && (spec.cin != spec.cout || spec.kernel != 3) {
            candle_core::bail!("depthwise conv needs cin == cout and k = 3, got {spec:?}")
        }
        let weight = vb.pp(conv_key).get_with_hints(
            (spec.cout, cin_per_group, spec.kernel, spec.kernel),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bn = candle_nn::batch_norm(spec.cout, BatchNormConfig::default(), vb.pp(bn_key))?;
        Ok(Self { weight, bn, spec, act })
    }

    /// The usual `.0` / `.1` layout of `nn.Sequential(conv, bn, act)`.
    pub fn seq(spec: ConvSpec, act: Act, vb: VarBuilder) -> Result<Self> {
        Self::new(spec, act, vb, "0", "1")
    }

    /// The convolution alone (before BN).
    fn conv(&self, xs: &Tensor) -> Result<Tensor> {
        let s = &self.spec;
        if !s.depthwise && s.stride == 1 {
            return xs.conv2d(&self.weight, s.padding, 1, s.dilation, 1);
        }
        let xs = if s.padding > 0 {
            xs.pad_with_zeros(2, s.padding, s.padding)?.pad_with_zeros(3, s.padding, s.padding)?
        } else {
            xs.clone()
        };
        if s.depthwise {
            depthwise_conv3x3(&xs, &self.weight, s.stride, s.dilation)
        } else {
            conv2d_strided(&xs, &self.weight, s.stride, s.dilation, 1)
        }
    }
}

impl ModuleT for ConvBn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let ys = self.bn.forward_t(&self.conv(xs)?, train)?;
        match self.act {
            Act::Linear => Ok(ys),
            Act::Relu => ys.relu(),
            Act::Relu6 => ys.clamp(0f32, 6f32),
        }
    }
}
