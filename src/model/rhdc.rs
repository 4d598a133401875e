//! The residual hybrid dilated convolution block (rHDC) of JESS-Net and CSGIS-Net.
//!
//! Three 3×3 convolutions with dilations 1, 2 and 3, each followed by BatchNorm and ReLU, and
//! an identity skip added after the last ReLU (reference-implementation.md §1.1). Checkpoint
//! names: `conv_3x3_{1,2,3}` and `bn_conv_3x3_{1,2,3}`.

use candle_core::{DType, Device, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{Activation, ConvBn};

/// One rHDC block: `x + relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))))`.
#[derive(Debug, Clone)]
pub struct Rhdc {
    convs: [ConvBn; 3],
}

impl Rhdc {
    /// Builds a block of `channels` → `channels` from `vb` (a prefix such as `descriptor.res16.0`).
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let layer = |k: usize| {
            ConvBn::new(
                channels,
                channels,
                k,
                Activation::Relu,
                vb.pp(format!("conv_3x3_{k}")),
                vb.pp(format!("bn_conv_3x3_{k}")),
            )
        };
        Ok(Self { convs: [layer(1)?, layer(2)?, layer(3)?] })
    }

    /// The block with BatchNorm folded into its convolutions.
    pub fn fold(&self) -> Result<Self> {
        let [a, b, c] = &self.convs;
        Ok(Self { convs: [a.fold()?, b.fold()?, c.fold()?] })
    }
}

impl Rhdc {
    /// A folded copy on `device` in `dtype`.
    pub fn to(&self, device: &Device, dtype: DType) -> Result<Self> {
        let [a, b, c] = &self.convs;
        Ok(Self { convs: [a.to(device, dtype)?, b.to(device, dtype)?, c.to(device, dtype)?] })
    }
}

impl ModuleT for Rhdc {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut ys = xs.clone();
        for conv in &self.convs {
            ys = conv.forward_t(&ys, train)?;
        }
        ys + xs
    }
}
