//! The JESS/CSGIS smoothing network (`HDC_edge_refine` in the authors' code).
//!
//! Four stages, all 3×3 convolutions at full resolution (reference-implementation.md §1.2):
//!
//! 1. feature extractor (`descriptor`): a plain conv 3→C, then N rHDC blocks → features F;
//! 2. edge interpreter (`interpreter1`): conv-BN-ReLU ×2, conv C→1 → edge logits E (no sigmoid);
//! 3. smooth interpreter (`interpreter2`) on [F ‖ E]: conv-BN-ReLU, 3 rHDC, conv-BN-ReLU,
//!    conv C→3 → S0;
//! 4. enhancement (`refine`) on [F ‖ E ‖ S0]: conv-BN-ReLU, 6 rHDC, conv C→3 → R; S1 = S0 + R.
//!
//! The concatenation order is features, then edge logits, then S0, and neither S0 nor S1 passes
//! through any activation or clamp: outputs are clipped only when written to disk. Note the
//! asymmetry the authors' code has: `refine` has no conv-BN-ReLU before its last conv, while
//! `interpreter2` has one.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{conv3x3, Activation, Conv3x3, ConvBn};
use super::rhdc::Rhdc;
use super::{NetConfig, NetOutput, REFINE_BLOCKS, SMOOTH_BLOCKS};

/// `conv-BN(-ReLU)` whose conv sits at Sequential index `i` and its BN at `i + 1`.
fn seq_conv_bn(c_in: usize, c_out: usize, i: usize, vb: &VarBuilder) -> Result<ConvBn> {
    ConvBn::new(c_in, c_out, 1, Activation::Relu, vb.pp(i.to_string()), vb.pp((i + 1).to_string()))
}

/// rHDC blocks at consecutive Sequential indices starting at `first`.
fn seq_blocks(channels: usize, first: usize, count: usize, vb: &VarBuilder) -> Result<Vec<Rhdc>> {
    (first..first + count).map(|i| Rhdc::new(channels, vb.pp(i.to_string()))).collect()
}

fn fold_all(blocks: &[Rhdc]) -> Result<Vec<Rhdc>> {
    blocks.iter().map(Rhdc::fold).collect()
}

fn run_blocks(blocks: &[Rhdc], xs: Tensor, train: bool) -> Result<Tensor> {
    blocks.iter().try_fold(xs, |xs, b| b.forward_t(&xs, train))
}

/// The whole network. Build it with [`CsgisNet::new`] (training, or before folding) and run
/// inference on [`CsgisNet::fold`]'s result.
#[derive(Debug, Clone)]
pub struct CsgisNet {
    config: NetConfig,
    // descriptor
    conv_in: Conv3x3,
    features: Vec<Rhdc>,
    // interpreter1
    edge_convs: [ConvBn; 2],
    edge_out: Conv3x3,
    // interpreter2
    smooth_in: ConvBn,
    smooth_blocks: Vec<Rhdc>,
    smooth_mid: ConvBn,
    smooth_out: Conv3x3,
    // refine
    refine_in: ConvBn,
    refine_blocks: Vec<Rhdc>,
    refine_out: Conv3x3,
}

impl CsgisNet {
    /// Builds the network from `vb`, whose tensor names are the authors' state_dict keys.
    pub fn new(cfg: &NetConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.channels;
        let d = vb.pp("descriptor");
        let e = vb.pp("interpreter1");
        let s = vb.pp("interpreter2");
        let r = vb.pp("refine");
        Ok(Self {
            config: *cfg,
            conv_in: conv3x3(3, c, 1, d.pp("conv_in"))?,
            features: (0..cfg.blocks)
                .map(|i| Rhdc::new(c, d.pp("res16").pp(i.to_string())))
                .collect::<Result<_>>()?,
            edge_convs: [seq_conv_bn(c, c, 0, &e)?, seq_conv_bn(c, c, 3, &e)?],
            edge_out: conv3x3(c, 1, 1, e.pp("6"))?,
            smooth_in: seq_conv_bn(c + 1, c, 0, &s)?,
            smooth_blocks: seq_blocks(c, 3, SMOOTH_BLOCKS, &s)?,
            smooth_mid: seq_conv_bn(c, c, 3 + SMOOTH_BLOCKS, &s)?,
            smooth_out: conv3x3(c, 3, 1, s.pp((3 + SMOOTH_BLOCKS + 3).to_string()))?,
            refine_in: seq_conv_bn(c + 4, c, 0, &r)?,
            refine_blocks: seq_blocks(c, 3, REFINE_BLOCKS, &r)?,
            refine_out: conv3x3(c, 3, 1, r.pp((3 + REFINE_BLOCKS).to_string()))?,
        })
    }

    /// The architecture this network was built with.
    #[must_use]
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The same network with every BatchNorm folded into the convolution before it.
    /// Only valid for inference (`train = false`).
    pub fn fold(&self) -> Result<Self> {
        let [e0, e1] = &self.edge_convs;
        Ok(Self {
            config: self.config,
            conv_in: self.conv_in.clone(),
            features: fold_all(&self.features)?,
            edge_convs: [e0.fold()?, e1.fold()?],
            edge_out: self.edge_out.clone(),
            smooth_in: self.smooth_in.fold()?,
            smooth_blocks: fold_all(&self.smooth_blocks)?,
            smooth_mid: self.smooth_mid.fold()?,
            smooth_out: self.smooth_out.clone(),
            refine_in: self.refine_in.fold()?,
            refine_blocks: fold_all(&self.refine_blocks)?,
            refine_out: self.refine_out.clone(),
        })
    }

    /// A folded copy of this (folded) network on `device` in `dtype`.
    pub fn to(&self, device: &Device, dtype: DType) -> Result<Self> {
        let convert = |blocks: &[Rhdc]| -> Result<Vec<Rhdc>> {
            blocks.iter().map(|b| b.to(device, dtype)).collect()
        };
        let [e0, e1] = &self.edge_convs;
        Ok(Self {
            config: self.config,
            conv_in: self.conv_in.to(device, dtype)?,
            features: convert(&self.features)?,
            edge_convs: [e0.to(device, dtype)?, e1.to(device, dtype)?],
            edge_out: self.edge_out.to(device, dtype)?,
            smooth_in: self.smooth_in.to(device, dtype)?,
            smooth_blocks: convert(&self.smooth_blocks)?,
            smooth_mid: self.smooth_mid.to(device, dtype)?,
            smooth_out: self.smooth_out.to(device, dtype)?,
            refine_in: self.refine_in.to(device, dtype)?,
            refine_blocks: convert(&self.refine_blocks)?,
            refine_out: self.refine_out.to(device, dtype)?,
        })
    }

    /// Runs the network on a batch of RGB images in [0, 1].
    ///
    /// # Shapes
    /// `xs`: (b, 3, h, w) → edge logits (b, 1, h, w), S0 and S1 (b, 3, h, w).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<NetOutput> {
        let features = self.conv_in.forward(xs)?;
        let features = run_blocks(&self.features, features, train)?; // (b, c, h, w)

        let mut edge = features.clone();
        for conv in &self.edge_convs {
            edge = conv.forward_t(&edge, train)?;
        }
        let edge_logits = self.edge_out.forward(&edge)?; // (b, 1, h, w)

        let x1 = Tensor::cat(&[&features, &edge_logits], 1)?; // (b, c+1, h, w): F ‖ E
        let ys = self.smooth_in.forward_t(&x1, train)?;
        let ys = run_blocks(&self.smooth_blocks, ys, train)?;
        let ys = self.smooth_mid.forward_t(&ys, train)?;
        let s0 = self.smooth_out.forward(&ys)?; // (b, 3, h, w)

        let x2 = Tensor::cat(&[&x1, &s0], 1)?; // (b, c+4, h, w): F ‖ E ‖ S0
        let ys = self.refine_in.forward_t(&x2, train)?;
        let ys = run_blocks(&self.refine_blocks, ys, train)?;
        let refine = self.refine_out.forward(&ys)?;
        let s1 = (&s0 + refine)?;
        Ok(NetOutput { edge_logits, s0, s1 })
    }
}
