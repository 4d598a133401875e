//! Convolution building blocks of the JESS/CSGIS network: a 3×3 convolution with bias,
//! optionally followed by BatchNorm, and the fold of that BatchNorm into the convolution.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Init, VarBuilder};

use super::conv_fused::conv3x3_bias;

/// A 3×3 convolution with bias, stride 1 and "same" padding (padding = dilation).
///
/// On the CPU it runs [`conv3x3_bias`]'s fused path (forward and backward); elsewhere candle's
/// `conv2d` and a broadcast add.
#[derive(Debug, Clone)]
pub struct Conv3x3 {
    weight: Tensor,
    bias: Tensor,
    dilation: usize,
}

impl Conv3x3 {
    /// A layer from its kernel (c_out, c_in, 3, 3) and bias (c_out).
    pub fn new(weight: Tensor, bias: Tensor, dilation: usize) -> Self {
        Self { weight, bias, dilation }
    }

    /// The kernel, (c_out, c_in, 3, 3).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, (c_out).
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// This convolution followed by `bn` in eval mode, as one convolution:
    /// `w' = w·γ/√(σ²+ε)`, `b' = (b − μ)·γ/√(σ²+ε) + β`.
    pub fn absorb_bn(&self, bn: &BatchNorm) -> Result<Self> {
        let inv_std = (bn.running_var() + bn.eps())?.sqrt()?.recip()?;
        let (scale, shift) = match bn.weight_and_bias() {
            Some((gamma, beta)) => ((inv_std * gamma)?, Some(beta)),
            None => (inv_std, None),
        };
        let weight = self.weight.broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?;
        let bias = ((&self.bias - bn.running_mean())? * &scale)?;
        let bias = match shift {
            Some(beta) => (bias + beta)?,
            None => bias,
        };
        // candle's BatchNorm keeps its running statistics as `Var`s, so the products above
        // would record a graph, and so would every forward through the folded layer, keeping
        // each feature map alive to the end (6 GB at 512² for CSGIS-Net). Folding is for
        // inference only: cut the graph here.
        Ok(Self { weight: weight.detach(), bias: bias.detach(), dilation: self.dilation })
    }

    /// A copy on `device` in `dtype`.
    pub fn to(&self, device: &Device, dtype: DType) -> Result<Self> {
        let convert = |t: &Tensor| t.to_device(device)?.to_dtype(dtype);
        Ok(Self { weight: convert(&self.weight)?, bias: convert(&self.bias)?, dilation: self.dilation })
    }
}

impl Conv3x3 {
    /// `relu(conv(x) + b)` in one op.
    pub fn forward_relu(&self, xs: &Tensor) -> Result<Tensor> {
        conv3x3_bias(xs, &self.weight, &self.bias, self.dilation, true)
    }
}

impl Module for Conv3x3 {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        conv3x3_bias(xs, &self.weight, &self.bias, self.dilation, false)
    }
}

/// A 3×3 convolution with bias, stride 1 and "same" padding (padding = dilation).
///
/// Weights are initialised as PyTorch's `nn.Conv2d` does (kaiming-uniform with a = √5, which
/// gives the bound 1/√fan_in for weights and bias), not with candle's kaiming-normal default.
pub fn conv3x3(c_in: usize, c_out: usize, dilation: usize, vb: VarBuilder) -> Result<Conv3x3> {
    let bound = 1.0 / ((c_in * 9) as f64).sqrt();
    let init = Init::Uniform { lo: -bound, up: bound };
    let weight = vb.get_with_hints((c_out, c_in, 3, 3), "weight", init)?;
    let bias = vb.get_with_hints(c_out, "bias", init)?;
    Ok(Conv3x3::new(weight, bias, dilation))
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
    conv: Conv3x3,
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
        Ok(Self { conv: self.conv.to(device, dtype)?, bn: None, relu: self.relu })
    }
}

impl ModuleT for ConvBn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match (&self.bn, train) {
            (None, _) if self.relu => self.conv.forward_relu(xs),
            (None, _) => self.conv.forward(xs),
            (Some(bn), true) => super::batch_norm_fused::batch_norm_train(bn, &self.conv.forward(xs)?, self.relu),
            (Some(bn), false) => {
                let ys = bn.forward_t(&self.conv.forward(xs)?, false)?;
                if self.relu {
                    ys.relu()
                } else {
                    Ok(ys)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, ModuleT, Tensor};
    use candle_nn::VarBuilder;

    #[test]
    fn a_folded_layer_records_no_graph() -> Result<()> {
        // Plain tensors in, as when weights are loaded from a file; candle's BatchNorm still
        // turns its running statistics into Vars.
        let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
        let layer = ConvBn::new(3, 4, 1, Activation::Relu, vb.pp("conv"), vb.pp("bn"))?;
        let x = Tensor::ones((1, 3, 5, 5), DType::F32, &Device::Cpu)?;
        let folded = layer.fold()?;
        assert!(!folded.forward_t(&x, false)?.track_op(), "a folded forward must keep no graph");
        Ok(())
    }
}
