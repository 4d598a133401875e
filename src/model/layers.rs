//! Convolution building blocks of the JESS/CSGIS network: a 3×3 convolution with bias,
//! optionally followed by BatchNorm, and the fold of that BatchNorm into the convolution.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Init, VarBuilder};

/// A 3×3 convolution with bias, stride 1 and "same" padding (padding = dilation).
///
/// Weights are initialised as PyTorch's `nn.Conv2d` does (kaiming-uniform with a = √5, which
/// gives the bound 1/√fan_in for weights and bias), not with candle's kaiming-normal default.
pub fn conv3x3(c_in: usize, c_out: usize, dilation: usize, vb: VarBuilder) -> Result<Conv2d> {
    let bound = 1.0 / ((c_in * 9) as f64).sqrt();
    let init = Init::Uniform { lo: -bound, up: bound };
    let weight = vb.get_with_hints((c_out, c_in, 3, 3), "weight", init)?;
    let bias = vb.get_with_hints(c_out, "bias", init)?;
    let cfg = Conv2dConfig { padding: dilation, dilation, ..Default::default() };
    Ok(Conv2d::new(weight, Some(bias), cfg))
}

/// A copy of `conv` on `device` in `dtype`.
pub fn conv_to(conv: &Conv2d, device: &Device, dtype: DType) -> Result<Conv2d> {
    let weight = conv.weight().to_device(device)?.to_dtype(dtype)?;
    let bias = match conv.bias() {
        Some(b) => Some(b.to_device(device)?.to_dtype(dtype)?),
        None => None,
    };
    Ok(Conv2d::new(weight, bias, *conv.config()))
}

/// BatchNorm2d with PyTorch's defaults (eps 1e-5, momentum 0.1, affine).
pub fn batch_norm(channels: usize, vb: VarBuilder) -> Result<BatchNorm> {
    // REF: nn.BatchNorm2d(64) defaults; candle's BatchNormConfig::default() agrees, spelled out.
    let cfg = BatchNormConfig { eps: 1e-5, remove_mean: true, affine: true, momentum: 0.1 };
    candle_nn::batch_norm(channels, cfg, vb)
}

/// A convolution followed by BatchNorm and, when `relu` is set, a ReLU.
///
/// After [`ConvBn::fold`] the BatchNorm is absorbed into the convolution's weights and bias,
/// which is how inference runs.
#[derive(Debug, Clone)]
pub struct ConvBn {
    conv: Conv2d,
    bn: Option<BatchNorm>,
    relu: bool,
}

/// Whether a [`ConvBn`] ends with a ReLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `relu(bn(conv(x)))`.
    Relu,
    /// `bn(conv(x))`, no activation.
    Identity,
}

impl ConvBn {
    /// Builds `conv` from `vb.pp(conv_key)` and `bn` from `vb.pp(bn_key)`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        dilation: usize,
        activation: Activation,
        conv_vb: VarBuilder,
        bn_vb: VarBuilder,
    ) -> Result<Self> {
        let conv = conv3x3(c_in, c_out, dilation, conv_vb)?;
        let bn = batch_norm(c_out, bn_vb)?;
        Ok(Self { conv, bn: Some(bn), relu: activation == Activation::Relu })
    }

    /// The same layer with BatchNorm's running statistics and affine parameters folded into
    /// the convolution (inference only).
    pub fn fold(&self) -> Result<Self> {
        match &self.bn {
            None => Ok(self.clone()),
            Some(bn) => Ok(Self { conv: self.conv.absorb_bn(bn)?, bn: None, relu: self.relu }),
        }
    }
}

impl ConvBn {
    /// A folded copy on `device` in `dtype`.
    ///
    /// # Errors
    /// When the layer still has a BatchNorm: fold it first.
    pub fn to(&self, device: &Device, dtype: DType) -> Result<Self> {
        if self.bn.is_some() {
            candle_core::bail!("fold BatchNorm before converting a layer");
        }
        Ok(Self { conv: conv_to(&self.conv, device, dtype)?, bn: None, relu: self.relu })
    }
}

impl ModuleT for ConvBn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let xs = self.conv.forward(xs)?;
        let xs = match &self.bn {
            Some(bn) => bn.forward_t(&xs, train)?,
            None => xs,
        };
        if self.relu {
            xs.relu()
        } else {
            Ok(xs)
        }
    }
}
