//! Inference: running a loaded network over whole images, tiled when they are large, and the
//! engines (network or classical operator) that smooth an image.

pub mod device;
pub mod engine;
pub mod tile;

use candle_core::{DType, Device};

use crate::error::Result;
use crate::io::tensor::{planes_to_tensor, tensor_to_planes};
use crate::model::{Arch, Network};
use crate::ops::Planes;
pub use device::{effective_dtype, open_device, DeviceChoice, Precision};
pub use engine::{blend, build_engine, load_model, ClassicalEngine, EmbeddedModel, Engine, ModelSource, NetEngine};
pub use tile::{feather_weight, tile_grid, Tile};

/// Width of the feathered band on each side of a tile seam, in pixels.
pub const FEATHER: usize = 8;

/// How images are cut for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiling {
    /// Whole image at once.
    Off,
    /// Cores of at most `tile` pixels a side.
    Fixed(usize),
    /// Tile size from the image and a memory budget in bytes.
    Auto {
        /// Bytes the forward pass may use.
        budget: usize,
    },
}

/// A network on a device, ready to smooth images.
#[derive(Debug)]
pub struct Smoother {
    net: Network,
    device: Device,
    dtype: DType,
    tiling: Tiling,
    context: usize,
    /// Whether `context` was given explicitly (`--tile-overlap`).
    context_fixed: bool,
}

/// The result of smoothing one image.
#[derive(Debug, Clone)]
pub struct Smoothed {
    /// S1, unclipped.
    pub image: Planes,
    /// The predicted edge probability (sigmoid of the logits), one plane.
    pub edges: Planes,
}

impl Smoother {
    /// Wraps an inference network ([`Network::for_inference`]). `context` is the tile context
    /// margin; `None` uses the receptive radius + [`FEATHER`] ([`Smoother::exact_context`]).
    #[must_use]
    pub fn new(net: Network, device: Device, dtype: DType, tiling: Tiling, context: Option<usize>) -> Self {
        let context_fixed = context.is_some();
        let context = context.unwrap_or_else(|| Self::exact_context(&net.arch()));
        Self { net, device, dtype, tiling, context, context_fixed }
    }

    /// The context margin that covers the receptive field of `arch`: exact tiling for
    /// CSGIS-Net; for csgis-lite, whose pooling grid moves with the tile, seams agree to
    /// float rounding of the far context only.
    #[must_use]
    pub fn exact_context(arch: &Arch) -> usize {
        arch.receptive_radius() + FEATHER
    }

    /// The device this smoother runs on.
    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Core tile size and context margin for a `w`×`h` image, or `None` to run it whole.
    ///
    /// Under [`Tiling::Auto`] the processed region (core + 2·context) is sized to the budget;
    /// when the exact context does not fit in it, the context shrinks to a quarter of the
    /// region (tiling is then approximate, with feathered seams) unless `--tile-overlap` fixed it.
    #[must_use]
    pub fn tile_plan(&self, w: usize, h: usize) -> Option<(usize, usize)> {
        match self.tiling {
            Tiling::Off => None,
            Tiling::Fixed(t) => (t < w.max(h)).then_some((t, self.context)),
            Tiling::Auto { budget } => {
                let per_pixel = self.net.arch().inference_bytes_per_pixel();
                let max_pixels = (budget / per_pixel).max(1);
                if w * h <= max_pixels {
                    return None;
                }
                let side = (max_pixels as f64).sqrt() as usize;
                let context = if self.context_fixed { self.context } else { self.context.min(side / 4) };
                Some((side.saturating_sub(2 * context).max(32), context))
            }
        }
    }

    /// Runs the network on one region.
    fn run(&self, img: &Planes) -> Result<Smoothed> {
        let xs = planes_to_tensor(img, &self.device, self.dtype)?;
        let out = self.net.forward_t(&xs, false)?;
        let edges = candle_nn::ops::sigmoid(&out.edge_logits)?;
        Ok(Smoothed { image: tensor_to_planes(&out.s1)?, edges: tensor_to_planes(&edges)? })
    }

    /// Smooths an RGB image in [0, 1], tiling as configured.
    ///
    /// # Errors
    /// [`crate::Error::Tensor`] when the device fails (for example, out of memory).
    pub fn smooth(&self, img: &Planes) -> Result<Smoothed> {
        let (w, h) = (img.w, img.h);
        let Some((tile, context)) = self.tile_plan(w, h) else {
            return self.run(img);
        };
        let feather = FEATHER.min(context).min(tile / 4);
        let mut acc = Planes::zeros(4, h, w); // S1 (3) ‖ edges (1)
        let mut weight = vec![0.0f32; w * h];
        for t in tile_grid(w, h, tile, context, feather) {
            let (ix0, iy0, ix1, iy1) = t.input;
            let crop = Planes::from_fn(3, iy1 - iy0, ix1 - ix0, |c, y, x| img.get(c, y + iy0, x + ix0));
            let out = self.run(&crop)?;
            let (kx0, ky0, kx1, ky1) = t.keep;
            for y in ky0..ky1 {
                for x in kx0..kx1 {
                    let wt = feather_weight(&t, x, y, w, h, feather);
                    weight[y * w + x] += wt;
                    for c in 0..3 {
                        let v = out.image.get(c, y - iy0, x - ix0);
                        acc.data[(c * h + y) * w + x] += wt * v;
                    }
                    acc.data[(3 * h + y) * w + x] += wt * out.edges.get(0, y - iy0, x - ix0);
                }
            }
        }
        for (i, v) in acc.data.iter_mut().enumerate() {
            *v /= weight[i % (w * h)].max(f32::MIN_POSITIVE);
        }
        let n = w * h;
        Ok(Smoothed {
            image: Planes::from_vec(3, h, w, acc.data[..3 * n].to_vec()),
            edges: Planes::from_vec(1, h, w, acc.data[3 * n..].to_vec()),
        })
    }
}

/// Memory available to this process in bytes (`MemAvailable` on Linux), if known.
#[must_use]
pub fn available_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The default `--tile auto` budget for the forward pass on the CPU: half the available memory,
/// at most 1 GiB. A 24-megapixel image also holds about 0.8 GB of full-size planes (input,
/// accumulated output, weights) during inference, so the process stays near 2 GB.
#[must_use]
pub fn auto_budget() -> usize {
    let cap = 1 << 30; // 1 GiB
    available_memory().map_or(cap, |m| (m / 2).min(cap))
}
