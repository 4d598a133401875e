//! The smoothing networks in candle: CSGIS-Net (the JESS `HDC_edge_refine` backbone) and
//! csgis-lite ([`LiteNet`], built for CPUs), both behind [`Network`].
//!
//! [`CsgisNet`] is the network as the paper defines it and nothing else: no files, tiling or
//! device choice. [`weights`] reads safetensors with the authors' key names strictly and infers
//! the architecture ([`NetConfig`]) from them.

mod batch_norm_fused;
mod conv_cpu;
mod conv_direct;
mod conv_direct_grad;
mod conv_fused;
mod conv_winograd;
mod conv_winograd_rows;
mod conv_winograd_rows_avx2;
mod conv_winograd_rows_grad;
mod csgis;
mod embedded;
mod gemm;
mod layers;
mod lite;
mod network;
mod resample;
mod rhdc;
pub mod weights;

pub use csgis::CsgisNet;
pub use embedded::{EMBEDDED_LITE, EMBEDDED_WEIGHTS};
pub use conv_cpu::{conv3x3_same, Conv3x3 as Conv3x3Op, Conv3x3KernelGrad};
pub(crate) use conv_cpu::cpu_float;
pub use conv_direct::conv_kernel;
pub use gemm::kernel_isa;
pub use batch_norm_fused::batch_norm_train;
pub use conv_fused::{conv3x3_bias, Conv3x3Bias};
pub use layers::{conv3x3, Activation, Conv3x3, ConvBn};
pub use lite::{LiteConfig, LiteNet};
pub use resample::{avg_pool2, upsample2, Resample2};
pub use network::{Arch, Network, CSGIS_ARCH_NAME, LITE_ARCH_NAME};
pub use rhdc::Rhdc;
pub use weights::{load_weights, load_weights_file, LoadedModel};

use candle_core::Tensor;

/// rHDC blocks in the smooth interpreter (`interpreter2.{3,4,5}`).
pub const SMOOTH_BLOCKS: usize = 3;
/// rHDC blocks in the enhancement module (`refine.{3..8}`).
pub const REFINE_BLOCKS: usize = 6;

/// The two numbers that vary between CSGIS/JESS networks; everything else is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetConfig {
    /// N, the number of rHDC blocks in the feature extractor (`descriptor.res16`).
    pub blocks: usize,
    /// Feature width C of every internal convolution (64 in the paper).
    pub channels: usize,
}

impl NetConfig {
    /// The CSGIS training script's network: N = 12, C = 64.
    pub const CSGIS: Self = Self { blocks: 12, channels: 64 };
    /// The JESS release and CSGIS `show.py`: N = 20, C = 64.
    pub const JESS: Self = Self { blocks: 20, channels: 64 };
    /// A tiny network for tests: N = 1, C = 8.
    pub const TINY: Self = Self { blocks: 1, channels: 8 };

    /// How far (in pixels) an output pixel of S1 can see: the sum of the dilations of every
    /// 3×3 convolution on the longest path. Tiling with at least this much context on each
    /// side reproduces the untiled result exactly.
    #[must_use]
    pub fn receptive_radius(&self) -> usize {
        let rhdc = 1 + 2 + 3;
        let features = 1 + rhdc * self.blocks;
        let edge = features + 3;
        let s0 = edge + 1 + rhdc * SMOOTH_BLOCKS + 2;
        s0 + 1 + rhdc * REFINE_BLOCKS + 1
    }

    /// Multiply-accumulates per output pixel.
    #[must_use]
    pub fn macs_per_pixel(&self) -> usize {
        let c = self.channels;
        let conv = |i: usize, o: usize| i * o * 9;
        let rhdc = 3 * conv(c, c);
        conv(3, c)
            + self.blocks * rhdc
            + 2 * conv(c, c)
            + conv(c, 1)
            + conv(c + 1, c)
            + SMOOTH_BLOCKS * rhdc
            + conv(c, c)
            + conv(c, 3)
            + conv(c + 4, c)
            + REFINE_BLOCKS * rhdc
            + conv(c, 3)
    }

    /// Every tensor the network has, with its shape, under the authors' key names
    /// (`num_batches_tracked` excluded).
    #[must_use]
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let c = self.channels;
        let mut out = Vec::new();
        let mut conv = |key: String, c_in: usize, c_out: usize| {
            out.push((format!("{key}.weight"), vec![c_out, c_in, 3, 3]));
            out.push((format!("{key}.bias"), vec![c_out]));
        };
        conv("descriptor.conv_in".into(), 3, c);
        let mut bns = Vec::new();
        let mut rhdc = |prefix: String, conv: &mut dyn FnMut(String, usize, usize)| {
            for k in 1..=3 {
                conv(format!("{prefix}.conv_3x3_{k}"), c, c);
                bns.push(format!("{prefix}.bn_conv_3x3_{k}"));
            }
        };
        for i in 0..self.blocks {
            rhdc(format!("descriptor.res16.{i}"), &mut conv);
        }
        conv("interpreter1.0".into(), c, c);
        conv("interpreter1.3".into(), c, c);
        conv("interpreter1.6".into(), c, 1);
        conv("interpreter2.0".into(), c + 1, c);
        for i in 3..3 + SMOOTH_BLOCKS {
            rhdc(format!("interpreter2.{i}"), &mut conv);
        }
        conv("interpreter2.6".into(), c, c);
        conv("interpreter2.9".into(), c, 3);
        conv("refine.0".into(), c + 4, c);
        for i in 3..3 + REFINE_BLOCKS {
            rhdc(format!("refine.{i}"), &mut conv);
        }
        conv("refine.9".into(), c, 3);
        let seq_bns = ["interpreter1.1", "interpreter1.4", "interpreter2.1", "interpreter2.7", "refine.1"];
        bns.extend(seq_bns.iter().map(|s| s.to_string()));
        for bn in bns {
            for p in ["weight", "bias", "running_mean", "running_var"] {
                out.push((format!("{bn}.{p}"), vec![c]));
            }
        }
        out
    }
}

/// What the network returns.
///
/// # Shapes
/// For an input of (b, 3, h, w): `edge_logits` (b, 1, h, w); `s0`, `s1` (b, 3, h, w).
#[derive(Debug, Clone)]
pub struct NetOutput {
    /// Raw edge logits (apply a sigmoid for an edge probability).
    pub edge_logits: Tensor,
    /// The smooth interpreter's output S0.
    pub s0: Tensor,
    /// The final output S1 = S0 + R, unclipped.
    pub s1: Tensor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_reference_table() {
        // reference-implementation.md §1.4 and §1.5: 484 tensors for N = 12, counting the 68 BN
        // `num_batches_tracked` entries; 2,528,519 parameters.
        let t = NetConfig::CSGIS.expected_tensors();
        let bn_layers = t.iter().filter(|(k, _)| k.ends_with("running_mean")).count();
        assert_eq!(bn_layers, 68);
        assert_eq!(t.len() + bn_layers, 484);
        let params: usize = t
            .iter()
            .filter(|(k, _)| !k.contains("running_"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(params, 2_528_519);
        assert_eq!(NetConfig::JESS.expected_tensors().len() + 92, 652);
    }

    #[test]
    fn receptive_radius_matches_the_reference() {
        // §1.4: receptive field 271 px (N = 12) and 367 px (N = 20), i.e. radius 135 / 183.
        assert_eq!(2 * NetConfig::CSGIS.receptive_radius() + 1, 271);
        assert_eq!(2 * NetConfig::JESS.receptive_radius() + 1, 367);
    }

    #[test]
    fn macs_match_the_reference() {
        // §1.4: 2.52 M MACs per pixel for N = 12.
        let m = NetConfig::CSGIS.macs_per_pixel() as f64 / 1e6;
        assert!((m - 2.52).abs() < 0.01, "{m}");
    }
}
