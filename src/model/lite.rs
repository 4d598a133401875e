//! csgis-lite: a multi-scale smoothing network built for CPUs, trained with the same losses
//! and data as CSGIS-Net (the paper's contribution is in the training, not the backbone).
//!
//! An encoder–decoder with four scales (1, 1/2, 1/4, 1/8), 2×2 average pooling down, nearest
//! upsampling and additive skips up, and a dilated bottleneck at 1/8, so most of the work runs
//! at low resolution while the receptive field at full resolution is about 220 px. The heads
//! mirror the paper's: edge logits E from the last decoder features D; S0 = x + smooth(D);
//! S1 = S0 + refine([D ‖ E ‖ S0]). The smooth head and the refinement's last convolution start
//! at zero ([`LiteNet::ZERO_INIT`]), so an untrained network returns its input exactly and can
//! never start below the input's score. No BatchNorm: small batches made its statistics swing.
//!
//! Every convolution is 3×3 with "same" padding and a ReLU except the heads. Inputs of any size
//! are padded (edge replicate) to a multiple of 8 and the outputs cropped back.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::layers::{conv3x3, Conv3x3};
use super::resample::{avg_pool2, upsample2};
use super::NetOutput;

/// The widths of csgis-lite at its four scales (full, 1/2, 1/4, 1/8 resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiteConfig {
    /// Feature channels at full, half, quarter and eighth resolution.
    pub widths: [usize; 4],
}

impl Default for LiteConfig {
    /// The shipped size: 16, 32, 64, 128 channels (about 32 k multiply-adds per pixel).
    fn default() -> Self {
        Self { widths: [16, 32, 64, 128] }
    }
}

/// Dilations of the three bottleneck convolutions at 1/8 resolution.
const BOTTLENECK_DILATIONS: [usize; 3] = [2, 4, 2];

/// How many times the network halves the resolution; inputs are padded to `2^LEVELS`.
const LEVELS: usize = 3;

/// One 3×3 layer as `expected_tensors` and the builder see it: key, c_in, c_out, dilation,
/// and the scale it runs at (0 = full, 3 = 1/8).
struct LayerSpec {
    key: &'static str,
    c_in: usize,
    c_out: usize,
    dilation: usize,
    scale: usize,
}

impl LiteConfig {
    /// The 3×3 layers in the order the forward pass runs them.
    fn layers(&self) -> Vec<LayerSpec> {
        let [w0, w1, w2, w3] = self.widths;
        let l = |key, c_in, c_out, dilation, scale| LayerSpec { key, c_in, c_out, dilation, scale };
        let [d0, d1, d2] = BOTTLENECK_DILATIONS;
        vec![
            l("enc0.0", 3, w0, 1, 0),
            l("enc0.1", w0, w0, 1, 0),
            l("enc1.0", w0, w1, 1, 1),
            l("enc1.1", w1, w1, 1, 1),
            l("enc2.0", w1, w2, 1, 2),
            l("enc2.1", w2, w2, 1, 2),
            l("enc3.0", w2, w3, 1, 3),
            l("bottleneck.0", w3, w3, d0, 3),
            l("bottleneck.1", w3, w3, d1, 3),
            l("bottleneck.2", w3, w3, d2, 3),
            l("up2", w3, w2, 1, 3),
            l("fuse2", w2, w2, 1, 2),
            l("up1", w2, w1, 1, 2),
            l("fuse1", w1, w1, 1, 1),
            l("up0", w1, w0, 1, 1),
            l("fuse0", w0, w0, 1, 0),
            l("edge", w0, 1, 1, 0),
            l("smooth", w0, 3, 1, 0),
            l("refine.0", w0 + 4, w0, 1, 0),
            l("refine.1", w0, 3, 1, 0),
        ]
    }

    /// Every tensor of the network with its shape.
    #[must_use]
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        self.layers()
            .iter()
            .flat_map(|s| {
                [
                    (format!("{}.weight", s.key), vec![s.c_out, s.c_in, 3, 3]),
                    (format!("{}.bias", s.key), vec![s.c_out]),
                ]
            })
            .collect()
    }

    /// Multiply-accumulates per full-resolution pixel (a layer at scale s costs 1/4^s).
    #[must_use]
    pub fn macs_per_pixel(&self) -> usize {
        self.layers().iter().map(|s| s.c_in * s.c_out * 9 / (1 << (2 * s.scale))).sum()
    }

    /// How far (in full-resolution pixels) an output pixel can see: each 3×3 layer at scale s
    /// with dilation d adds d·2^s, each pooling/upsampling step 2^s more.
    #[must_use]
    pub fn receptive_radius(&self) -> usize {
        let convs: usize = self.layers().iter().map(|s| s.dilation << s.scale).sum();
        let resampling: usize = (0..LEVELS).map(|s| 2 << s).sum();
        convs + resampling
    }

    /// The widest feature map at full resolution, for memory estimates.
    #[must_use]
    pub fn full_res_channels(&self) -> usize {
        self.widths[0] + 4
    }
}

/// csgis-lite. Build it with [`LiteNet::new`] from a `VarBuilder` whose names are
/// [`LiteConfig::expected_tensors`].
#[derive(Debug, Clone)]
pub struct LiteNet {
    config: LiteConfig,
    convs: Vec<Conv3x3>,
}

/// Indices into `LiteNet::convs`, in [`LiteConfig::layers`] order.
mod idx {
    pub const ENC0: usize = 0;
    pub const ENC1: usize = 2;
    pub const ENC2: usize = 4;
    pub const ENC3: usize = 6;
    pub const BOTTLENECK: usize = 7;
    pub const UP2: usize = 10;
    pub const FUSE2: usize = 11;
    pub const UP1: usize = 12;
    pub const FUSE1: usize = 13;
    pub const UP0: usize = 14;
    pub const FUSE0: usize = 15;
    pub const EDGE: usize = 16;
    pub const SMOOTH: usize = 17;
    pub const REFINE: usize = 18;
}

impl LiteNet {
    /// Keys of the layers that start at zero so the untrained network is the identity.
    pub const ZERO_INIT: [&'static str; 2] = ["smooth", "refine.1"];

    /// Builds the network from `vb` (PyTorch's default initialisation for new variables).
    pub fn new(cfg: &LiteConfig, vb: VarBuilder) -> Result<Self> {
        let convs = cfg
            .layers()
            .iter()
            .map(|s| conv3x3(s.c_in, s.c_out, s.dilation, vb.pp(s.key)))
            .collect::<Result<_>>()?;
        Ok(Self { config: *cfg, convs })
    }

    /// The architecture this network was built with.
    #[must_use]
    pub fn config(&self) -> &LiteConfig {
        &self.config
    }

    /// A copy on `device` in `dtype`.
    pub fn to(&self, device: &Device, dtype: DType) -> Result<Self> {
        let convs = self.convs.iter().map(|c| c.to(device, dtype)).collect::<Result<_>>()?;
        Ok(Self { config: self.config, convs })
    }

    fn conv(&self, i: usize, xs: &Tensor) -> Result<Tensor> {
        self.convs[i].forward(xs)
    }

    fn conv_relu(&self, i: usize, xs: &Tensor) -> Result<Tensor> {
        self.convs[i].forward_relu(xs)
    }

    /// Two conv-ReLU layers starting at `i`.
    fn double(&self, i: usize, xs: &Tensor) -> Result<Tensor> {
        self.conv_relu(i + 1, &self.conv_relu(i, xs)?)
    }

    /// Decoder step: conv at the coarse scale, upsample, add the skip, conv-ReLU.
    fn up(&self, up: usize, fuse: usize, coarse: &Tensor, skip: &Tensor) -> Result<Tensor> {
        let u = upsample2(&self.conv(up, coarse)?)?;
        self.conv_relu(fuse, &(u + skip)?.relu()?)
    }

    /// Runs the network on a batch of RGB images in [0, 1]; `train` is accepted for symmetry
    /// with CSGIS-Net (the network behaves the same in both modes).
    ///
    /// # Shapes
    /// `xs`: (b, 3, h, w), any h, w ≥ 1 → edge logits (b, 1, h, w), S0 and S1 (b, 3, h, w).
    pub fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<NetOutput> {
        let (_, _, h, w) = xs.dims4()?;
        let m = 1 << LEVELS;
        let (ph, pw) = (h.next_multiple_of(m) - h, w.next_multiple_of(m) - w);
        let x = if ph + pw > 0 { xs.pad_with_same(2, 0, ph)?.pad_with_same(3, 0, pw)? } else { xs.clone() };

        let e0 = self.double(idx::ENC0, &x)?;
        let e1 = self.double(idx::ENC1, &avg_pool2(&e0)?)?;
        let e2 = self.double(idx::ENC2, &avg_pool2(&e1)?)?;
        let e3 = self.conv_relu(idx::ENC3, &avg_pool2(&e2)?)?;
        let mut b = e3.clone();
        for i in 0..BOTTLENECK_DILATIONS.len() {
            b = self.conv_relu(idx::BOTTLENECK + i, &b)?;
        }
        let b = (b + e3)?;
        let d2 = self.up(idx::UP2, idx::FUSE2, &b, &e2)?;
        let d1 = self.up(idx::UP1, idx::FUSE1, &d2, &e1)?;
        let d0 = self.up(idx::UP0, idx::FUSE0, &d1, &e0)?;

        let edge_logits = self.conv(idx::EDGE, &d0)?;
        let s0 = (&x + self.conv(idx::SMOOTH, &d0)?)?;
        let r = self.conv_relu(idx::REFINE, &Tensor::cat(&[&d0, &edge_logits, &s0], 1)?)?;
        let s1 = (&s0 + self.conv(idx::REFINE + 1, &r)?)?;
        let crop = |t: Tensor| -> Result<Tensor> {
            if ph + pw > 0 {
                t.narrow(2, 0, h)?.narrow(3, 0, w)
            } else {
                Ok(t)
            }
        };
        Ok(NetOutput { edge_logits: crop(edge_logits)?, s0: crop(s0)?, s1: crop(s1)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    #[test]
    fn shipped_size_is_under_forty_thousand_macs_and_sees_far() {
        let cfg = LiteConfig::default();
        assert_eq!(cfg.macs_per_pixel(), 31_968);
        assert!(2 * cfg.receptive_radius() + 1 >= 128, "{}", cfg.receptive_radius());
        assert_eq!(cfg.expected_tensors().len(), 40);
    }

    #[test]
    fn untrained_network_returns_its_input_exactly_at_any_size() -> crate::Result<()> {
        // The trainer's initialisation: PyTorch's defaults, then the ZERO_INIT heads at zero.
        let arch = crate::model::Arch::Lite(LiteConfig { widths: [4, 6, 8, 10] });
        let (_vm, crate::model::Network::Lite(net)) = crate::train::trainer::new_network(&arch, 3, &Device::Cpu)? else {
            unreachable!("a lite arch builds a lite network")
        };
        for (h, w) in [(16, 16), (13, 21), (1, 5)] {
            let x = Tensor::rand(0f32, 1f32, (2, 3, h, w), &Device::Cpu)?;
            let out = net.forward_t(&x, true)?;
            assert_eq!(out.edge_logits.dims(), &[2, 1, h, w]);
            for s in [&out.s0, &out.s1] {
                let d = (s - &x)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert_eq!(d, 0.0, "{h}x{w}");
            }
        }
        Ok(())
    }

    #[test]
    fn gradients_reach_every_layer_once_the_heads_move() -> Result<()> {
        let cfg = LiteConfig { widths: [4, 6, 8, 10] };
        let varmap = VarMap::new();
        let net = LiteNet::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
        crate::train::init::seeded_pytorch_init(&varmap, 7)?;
        let x = (Tensor::arange(0f32, (3 * 32 * 48) as f32, &Device::Cpu)?.reshape((1, 3, 32, 48))? * 0.37)?.sin()?;
        let out = net.forward_t(&x, true)?;
        let loss = ((out.s1.sqr()?.sum_all()? + out.edge_logits.sum_all()?)? + out.s0.sum_all()?)?;
        let grads = loss.backward()?;
        for (name, var) in varmap.data().lock().expect("lock").iter() {
            let g = grads.get(var.as_tensor()).expect(name);
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0, "{name} has no gradient");
        }
        Ok(())
    }
}
