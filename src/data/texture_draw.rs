//! Texture blending at sample time: every training sample draws its own texture layer, so no two
//! steps see the same pair (the precomputed pairs of `dataset build` stay for the paper's fixed
//! protocol).
//!
//! Per sample: a texture from the pool, a scale in [0.5, 2] (log-uniform), a rotation by a
//! uniform angle and a mirror flip with probability ½, a uniform offset (textures tile
//! periodically), and a strength: the layer's standard deviation is set to a uniform draw in
//! [10, 70] grey levels (8-bit scale), the spread measured in the project's texture sources
//! (weights/README.md). The layer is the grey texture minus its mean over the crop (eq. 14–15),
//! rescaled, and added to every channel of the GT (eq. 16), then clipped.

use crate::data::rng::Rng;
use crate::ops::Planes;

/// Ranges of the per-sample texture draw.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextureDrawConfig {
    /// Smallest and largest scale factor of the texture (0.5, 2).
    pub scale: (f32, f32),
    /// Smallest and largest standard deviation of the layer on the [0, 1] scale (10/255, 70/255).
    pub std: (f32, f32),
}

impl Default for TextureDrawConfig {
    fn default() -> Self {
        Self { scale: (0.5, 2.0), std: (10.0 / 255.0, 70.0 / 255.0) }
    }
}

/// The grey textures a sample draws from (eq. 14 already applied: one plane each).
#[derive(Debug, Clone, Default)]
pub struct TexturePool {
    /// One grey plane per texture.
    pub textures: Vec<Planes>,
}

/// Bilinear read of a periodic (tiled) plane at real coordinates.
fn periodic_bilinear(t: &Planes, y: f32, x: f32) -> f32 {
    let (h, w) = (t.h as i64, t.w as i64);
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let at = |yy: i64, xx: i64| t.data[(yy.rem_euclid(h) * w + xx.rem_euclid(w)) as usize];
    let (y0, x0) = (y0 as i64, x0 as i64);
    let top = at(y0, x0) + (at(y0, x0 + 1) - at(y0, x0)) * fx;
    let bottom = at(y0 + 1, x0) + (at(y0 + 1, x0 + 1) - at(y0 + 1, x0)) * fx;
    top + (bottom - top) * fy
}

impl TexturePool {
    /// Draws one zero-mean texture layer of `h × w` pixels; `None` when the pool is empty or the
    /// drawn texture is flat.
    pub fn draw_layer(&self, rng: &mut Rng, h: usize, w: usize, cfg: &TextureDrawConfig) -> Option<Vec<f32>> {
        if self.textures.is_empty() {
            return None;
        }
        let t = &self.textures[rng.below(self.textures.len())];
        let scale = (rng.uniform(cfg.scale.0.ln(), cfg.scale.1.ln())).exp();
        let angle = rng.uniform(0.0, std::f32::consts::TAU);
        let flip = rng.chance(0.5);
        let (oy, ox) = (rng.uniform(0.0, t.h as f32), rng.uniform(0.0, t.w as f32));
        let target_std = rng.uniform(cfg.std.0, cfg.std.1);
        let (s, c) = angle.sin_cos();
        let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
        let mut layer: Vec<f32> = (0..h * w)
            .map(|i| {
                let (v, u) = ((i / w) as f32 - cy, (i % w) as f32 - cx);
                let u = if flip { -u } else { u };
                let (tu, tv) = ((c * u - s * v) / scale, (s * u + c * v) / scale);
                periodic_bilinear(t, tv + oy, tu + ox)
            })
            .collect();
        let n = layer.len() as f64;
        let mean = layer.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = layer.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        if var.sqrt() < 1e-3 {
            return None;
        }
        let gain = (f64::from(target_std) / var.sqrt()) as f32;
        let mean = mean as f32;
        layer.iter_mut().for_each(|v| *v = (*v - mean) * gain);
        Some(layer)
    }
}

/// Adds `layer` to every channel of `gt` where `inside` holds (eq. 16), clipped to [0, 1].
#[must_use]
pub fn add_layer(gt: &Planes, layer: &[f32], inside: impl Fn(usize) -> bool) -> Planes {
    let mut out = gt.clone();
    for plane in out.planes_mut() {
        for (i, (v, &t)) in plane.iter_mut().zip(layer).enumerate() {
            if inside(i) {
                *v = (*v + t).clamp(0.0, 1.0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> TexturePool {
        let t = Planes::from_fn(1, 17, 23, |_, y, x| ((y * 7 + x * 3) % 11) as f32 / 11.0);
        TexturePool { textures: vec![t] }
    }

    #[test]
    fn layer_is_zero_mean_with_the_drawn_strength() {
        let cfg = TextureDrawConfig::default();
        for seed in 0..20 {
            let layer = pool().draw_layer(&mut Rng::new(seed), 48, 40, &cfg).expect("layer");
            let n = layer.len() as f32;
            let mean = layer.iter().sum::<f32>() / n;
            let std = (layer.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
            assert!(mean.abs() < 1e-4, "{mean}");
            assert!(std >= cfg.std.0 * 0.999 && std <= cfg.std.1 * 1.001, "{std}");
        }
    }

    #[test]
    fn draws_are_deterministic_and_differ_between_seeds() {
        let cfg = TextureDrawConfig::default();
        let a = pool().draw_layer(&mut Rng::new(5), 16, 16, &cfg);
        assert_eq!(a, pool().draw_layer(&mut Rng::new(5), 16, 16, &cfg));
        assert_ne!(a, pool().draw_layer(&mut Rng::new(6), 16, 16, &cfg));
    }

    #[test]
    fn flat_textures_and_empty_pools_give_no_layer() {
        let cfg = TextureDrawConfig::default();
        assert!(TexturePool::default().draw_layer(&mut Rng::new(1), 8, 8, &cfg).is_none());
        let flat = TexturePool { textures: vec![Planes::constant(1, 9, 9, 0.4)] };
        assert!(flat.draw_layer(&mut Rng::new(1), 8, 8, &cfg).is_none());
    }

    #[test]
    fn add_layer_clips_and_respects_the_mask() {
        let gt = Planes::constant(3, 1, 3, 0.9);
        let out = add_layer(&gt, &[0.5, -0.2, 0.3], |i| i != 2);
        assert_eq!(out.get(0, 0, 0), 1.0);
        assert!((out.get(1, 0, 1) - 0.7).abs() < 1e-6);
        assert_eq!(out.get(2, 0, 2), 0.9);
    }
}
