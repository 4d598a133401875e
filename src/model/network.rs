//! The two network families csgis trains and runs, behind one type: CSGIS-Net (the paper's
//! backbone, the authors' key names) and csgis-lite (built for CPUs). Both return the paper's
//! E, S0 and S1, so the losses, the trainer and the smoother treat them alike.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::{CsgisNet, LiteConfig, LiteNet, NetConfig, NetOutput};

/// A network family and its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Arch {
    /// CSGIS-Net (`HDC_edge_refine`), N rHDC blocks of C channels.
    Csgis(NetConfig),
    /// csgis-lite with its four widths.
    Lite(LiteConfig),
}

/// The `arch` value of a lite weights file's metadata.
pub const LITE_ARCH_NAME: &str = "csgis-lite";
/// The `arch` value of a CSGIS-Net weights file's metadata (the authors' class name).
pub const CSGIS_ARCH_NAME: &str = "HDC_edge_refine";

impl Arch {
    /// The family's name as the weights metadata and `--arch` spell it.
    #[must_use]
    pub fn family(&self) -> &'static str {
        match self {
            Self::Csgis(_) => "csgis",
            Self::Lite(_) => "lite",
        }
    }

    /// A one-line description, e.g. "csgis-lite 16/32/64/128" or "CSGIS-Net N = 12, C = 64".
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Csgis(c) => format!("CSGIS-Net N = {}, C = {}", c.blocks, c.channels),
            Self::Lite(c) => {
                let [a, b, d, e] = c.widths;
                format!("csgis-lite {a}/{b}/{d}/{e}")
            }
        }
    }

    /// Receptive radius in pixels (see [`NetConfig::receptive_radius`]).
    #[must_use]
    pub fn receptive_radius(&self) -> usize {
        match self {
            Self::Csgis(c) => c.receptive_radius(),
            Self::Lite(c) => c.receptive_radius(),
        }
    }

    /// Multiply-accumulates per output pixel.
    #[must_use]
    pub fn macs_per_pixel(&self) -> usize {
        match self {
            Self::Csgis(c) => c.macs_per_pixel(),
            Self::Lite(c) => c.macs_per_pixel(),
        }
    }

    /// Resident bytes per processed pixel of a forward pass in f32 on the CPU, for `--tile
    /// auto`. CSGIS-Net: [`CSGIS_BYTES_PER_PIXEL_PER_CHANNEL`] × C. csgis-lite: measured peak
    /// 569 MB for an untiled 1024² image with the shipped widths (`/usr/bin/time -f %M`), i.e.
    /// 543 B per pixel, scaled by the full-resolution width and rounded up.
    #[must_use]
    pub fn inference_bytes_per_pixel(&self) -> usize {
        match self {
            Self::Csgis(c) => CSGIS_BYTES_PER_PIXEL_PER_CHANNEL * c.channels,
            Self::Lite(c) => 600 * c.full_res_channels() / LiteConfig::default().full_res_channels(),
        }
    }

    /// Every tensor the network has, with its shape.
    #[must_use]
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            Self::Csgis(c) => c.expected_tensors(),
            Self::Lite(c) => c.expected_tensors(),
        }
    }

    /// Keys (layer prefixes) that start at zero in training.
    #[must_use]
    pub fn zero_init_layers(&self) -> &'static [&'static str] {
        match self {
            Self::Csgis(_) => &[],
            Self::Lite(_) => &LiteNet::ZERO_INIT,
        }
    }

    /// The safetensors metadata that names this architecture, so `--weights` needs no flags.
    #[must_use]
    pub fn metadata(&self) -> Vec<(String, String)> {
        match self {
            Self::Csgis(c) => vec![
                ("arch".into(), CSGIS_ARCH_NAME.into()),
                ("num_block".into(), c.blocks.to_string()),
                ("channels".into(), c.channels.to_string()),
            ],
            Self::Lite(c) => vec![
                ("arch".into(), LITE_ARCH_NAME.into()),
                ("widths".into(), c.widths.map(|w| w.to_string()).join(",")),
            ],
        }
    }
}

/// Resident bytes per processed pixel per feature channel during a CSGIS-Net forward pass in
/// f32 on the CPU with candle 0.11.1. Measured peaks (`/usr/bin/time -f %M`, 422×422,
/// untiled): 485 for C = 8, N = 1 and 510 for C = 64, N = 2, i.e. about 125 f32 maps of C
/// channels alive at the peak, far more than the ~10 the network needs; rounded up.
pub const CSGIS_BYTES_PER_PIXEL_PER_CHANNEL: usize = 520;

/// A network of either family.
#[derive(Debug, Clone)]
pub enum Network {
    /// CSGIS-Net.
    Csgis(CsgisNet),
    /// csgis-lite.
    Lite(LiteNet),
}

impl Network {
    /// Builds a network of `arch` from `vb` (for training, or before [`Network::for_inference`]).
    pub fn new(arch: &Arch, vb: VarBuilder) -> Result<Self> {
        Ok(match arch {
            Arch::Csgis(c) => Self::Csgis(CsgisNet::new(c, vb)?),
            Arch::Lite(c) => Self::Lite(LiteNet::new(c, vb)?),
        })
    }

    /// The architecture.
    #[must_use]
    pub fn arch(&self) -> Arch {
        match self {
            Self::Csgis(n) => Arch::Csgis(*n.config()),
            Self::Lite(n) => Arch::Lite(*n.config()),
        }
    }

    /// The network as inference runs it (CSGIS-Net's BatchNorm folded; lite unchanged).
    pub fn for_inference(&self) -> Result<Self> {
        Ok(match self {
            Self::Csgis(n) => Self::Csgis(n.fold()?),
            Self::Lite(n) => Self::Lite(n.clone()),
        })
    }

    /// A copy on `device` in `dtype` (of an inference network).
    pub fn to(&self, device: &Device, dtype: DType) -> Result<Self> {
        Ok(match self {
            Self::Csgis(n) => Self::Csgis(n.to(device, dtype)?),
            Self::Lite(n) => Self::Lite(n.to(device, dtype)?),
        })
    }

    /// Runs the network: E, S0 and S1 for a batch of RGB images in [0, 1].
    ///
    /// # Shapes
    /// `xs`: (b, 3, h, w) → edge logits (b, 1, h, w), S0 and S1 (b, 3, h, w).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<NetOutput> {
        match self {
            Self::Csgis(n) => n.forward_t(xs, train),
            Self::Lite(n) => n.forward_t(xs, train),
        }
    }
}
