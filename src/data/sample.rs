//! The trainer's sampling API: random crops, horizontal flips, rotations and colour
//! jitter, one geometry for every field of a pair (reference-implementation.md §3.2).
//!
//! Per sample, in this order (torchvision's, as the CSGIS loader composes them):
//! 1. a `crop × crop` window at a uniform random position (128 by default);
//! 2. a horizontal flip with probability 0.5;
//! 3. a rotation by a uniform angle in [−45°, 45°] about the window centre, no expand:
//!    bilinear for the input, GT and negative, nearest for the edge and label; corners
//!    that fall outside the window are black (0) in images and edges and **255
//!    (ignore)** in labels;
//! 4. colour jitter in random order, one draw applied identically to input, GT and the
//!    over-smoothed negative: brightness factor in [0.3, 1.7], contrast factor in [0.3, 1.7]
//!    about the GT's mean luma, hue shift in [−0.3, 0.3] of a turn. Edge and label are not
//!    jittered. (Jittering the negative too keeps the contrastive triplet about smoothness:
//!    a negative of another colour than the anchor is trivially far from it.)
//!
//! REF: the reference loader crops the negative but neither flips, rotates nor jitters it, and
//! fills rotated label corners with class 0 (reference-implementation.md §2.4, §8 items 5
//! and 6). Here all five fields share the geometry and label corners are ignored.
//!
//! Everything is drawn from one [`Rng`] seeded by the caller; [`sample_seed`] derives
//! that seed from (base seed, epoch, index), so a sample never depends on thread order.

use crate::data::imageio::{load_gray8, load_label, load_rgb, IGNORE};
use crate::data::manifest::Entry;
use crate::data::rng::{combine, Rng};
use crate::data::texture_draw::{add_layer, TextureDrawConfig, TexturePool};
use crate::ops::Planes;
use crate::{Error, Result};

/// Augmentation settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleConfig {
    /// Side of the square crop in pixels (128).
    pub crop: usize,
    /// Whether to apply the flip, rotation and jitter (false gives plain random crops,
    /// for validation).
    pub augment: bool,
    /// Probability of a horizontal flip (0.5).
    pub flip_p: f32,
    /// Largest rotation in degrees, either way (45).
    pub max_rotation_deg: f32,
    /// Brightness factor range (0.3, 1.7).
    pub brightness: (f32, f32),
    /// Contrast factor range (0.3, 1.7).
    pub contrast: (f32, f32),
    /// Largest hue shift as a fraction of a turn (0.3).
    pub hue: f32,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            crop: 128,
            augment: true,
            flip_p: 0.5,
            max_rotation_deg: 45.0,
            brightness: (0.3, 1.7),
            contrast: (0.3, 1.7),
            hue: 0.3,
        }
    }
}

/// One augmented training sample; every field is `crop × crop`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Textured input, RGB in [0, 1].
    pub input: Planes,
    /// Smooth ground truth, RGB in [0, 1].
    pub gt: Planes,
    /// Edge label, one plane of 0.0 or 1.0.
    pub edge: Planes,
    /// Over-smoothed negative, RGB in [0, 1].
    pub negative: Planes,
    /// Class indices, row-major, 255 = ignore; `None` when the entry has no label.
    pub label: Option<Vec<u8>>,
}

/// The full-size fields of one entry, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    /// Textured input.
    pub input: Planes,
    /// Ground truth.
    pub gt: Planes,
    /// Edge map as 0/255 (or any 8-bit map; above 127 is an edge).
    pub edge: Vec<u8>,
    /// Over-smoothed negative.
    pub negative: Planes,
    /// Class-index label map.
    pub label: Option<Vec<u8>>,
}

/// The seed of sample `index` in `epoch` under a base `seed`.
#[must_use]
pub fn sample_seed(seed: u64, epoch: u64, index: u64) -> u64 {
    combine(&[seed, epoch, index])
}

/// Decodes an entry's files, checking that they share one size.
///
/// # Errors
/// Decoding errors, or [`Error::Dataset`] when the sizes differ.
pub fn load_fields(entry: &Entry) -> Result<Fields> {
    load_fields_from(entry, true)
}

/// [`load_fields`]; without `read_input` the precomputed input is not decoded and `input` is a
/// copy of the GT (sample-time blending makes its own).
fn load_fields_from(entry: &Entry, read_input: bool) -> Result<Fields> {
    let gt = load_rgb(&entry.gt)?;
    let input = if read_input { load_rgb(&entry.input)? } else { gt.clone() };
    let negative = load_rgb(&entry.oversmoothed)?;
    let edge = load_gray8(&entry.edge)?;
    let label = entry.label.as_deref().map(load_label).transpose()?;
    let dims = [(input.h, input.w, &entry.input), (negative.h, negative.w, &entry.oversmoothed), (edge.h, edge.w, &entry.edge)];
    let label_dims = label.as_ref().zip(entry.label.as_ref()).map(|(l, p)| (l.h, l.w, p));
    for (h, w, path) in dims.into_iter().chain(label_dims) {
        if (h, w) != (gt.h, gt.w) {
            return Err(Error::Dataset {
                path: path.clone(),
                reason: format!("{w}x{h}, but the GT is {}x{}", gt.w, gt.h),
            });
        }
    }
    Ok(Fields { input, gt, edge: edge.data, negative, label: label.map(|l| l.data) })
}

/// Loads an entry and draws one augmented sample from it.
///
/// # Errors
/// As [`load_fields`], or [`Error::Dataset`] when the image is smaller than the crop.
pub fn sample(entry: &Entry, cfg: &SampleConfig, seed: u64) -> Result<Sample> {
    sample_with(entry, cfg, None, seed)
}

/// [`sample`] with the input blended at sample time from `textures` ([`augment_with`]); the
/// entry's precomputed input is then not read.
///
/// # Errors
/// As [`sample`].
pub fn sample_with(entry: &Entry, cfg: &SampleConfig, textures: Option<(&TexturePool, &TextureDrawConfig)>, seed: u64) -> Result<Sample> {
    let fields = load_fields_from(entry, textures.is_none())?;
    if fields.gt.h < cfg.crop || fields.gt.w < cfg.crop {
        return Err(Error::Dataset {
            path: entry.gt.clone(),
            reason: format!("{}x{} is smaller than the {} crop", fields.gt.w, fields.gt.h, cfg.crop),
        });
    }
    Ok(augment_with(&fields, cfg, textures, seed))
}

/// Where each output pixel reads from, in crop coordinates; `None` outside the crop.
struct Warp {
    src: Vec<Option<(f32, f32)>>,
}

impl Warp {
    fn new(size: usize, flip: bool, angle_rad: f32) -> Self {
        let c = (size as f32 - 1.0) / 2.0;
        let (s, co) = angle_rad.sin_cos();
        let limit = size as f32 - 0.5;
        let src = (0..size * size)
            .map(|i| {
                let (y, x) = ((i / size) as f32 - c, (i % size) as f32 - c);
                // Inverse of a counter-clockwise rotation (image y points down).
                let sx = co * x - s * y + c;
                let sy = s * x + co * y + c;
                let sx = if flip { size as f32 - 1.0 - sx } else { sx };
                ((-0.5..limit).contains(&sx) && (-0.5..limit).contains(&sy)).then_some((sy, sx))
            })
            .collect();
        Self { src }
    }

    /// Warps one plane of the crop; `nearest` or bilinear (taps clamped to the crop).
    fn apply<T: Copy>(&self, size: usize, crop: impl Fn(usize, usize) -> T, fill: T, lerp: Option<fn(T, T, f32) -> T>) -> Vec<T> {
        let last = size - 1;
        self.src
            .iter()
            .map(|s| {
                let Some((sy, sx)) = *s else { return fill };
                match lerp {
                    None => crop((sy.round().max(0.0) as usize).min(last), (sx.round().max(0.0) as usize).min(last)),
                    Some(f) => {
                        let (y0, x0) = (sy.floor().max(0.0) as usize, sx.floor().max(0.0) as usize);
                        let (y0, x0) = (y0.min(last), x0.min(last));
                        let (y1, x1) = ((y0 + 1).min(last), (x0 + 1).min(last));
                        let (fy, fx) = ((sy - y0 as f32).clamp(0.0, 1.0), (sx - x0 as f32).clamp(0.0, 1.0));
                        let top = f(crop(y0, x0), crop(y0, x1), fx);
                        let bottom = f(crop(y1, x0), crop(y1, x1), fx);
                        f(top, bottom, fy)
                    }
                }
            })
            .collect()
    }
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// Applies one draw of the augmentation to decoded fields.
///
/// # Panics
/// 1. When the fields are smaller than `cfg.crop` (checked by [`sample`]).
#[must_use]
pub fn augment(f: &Fields, cfg: &SampleConfig, seed: u64) -> Sample {
    augment_with(f, cfg, None, seed)
}

/// [`augment`], with the input made at sample time when `textures` is given: the warped GT
/// plus a freshly drawn texture layer ([`TexturePool::draw_layer`]) inside the rotated window,
/// before the colour jitter (which then applies to the blend). `f.input` is not read then.
///
/// # Panics
/// 1. When the fields are smaller than `cfg.crop` (checked by [`sample`]).
#[must_use]
pub fn augment_with(f: &Fields, cfg: &SampleConfig, textures: Option<(&TexturePool, &TextureDrawConfig)>, seed: u64) -> Sample {
    let mut rng = Rng::new(seed);
    let (h, w, s) = (f.gt.h, f.gt.w, cfg.crop);
    assert!(h >= s && w >= s, "augment: image smaller than the crop");
    let oy = rng.below(h - s + 1);
    let ox = rng.below(w - s + 1);
    let flip = cfg.augment && rng.chance(cfg.flip_p);
    let angle = if cfg.augment { rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg).to_radians() } else { 0.0 };
    let warp = Warp::new(s, flip, angle);
    let at = |y: usize, x: usize| (oy + y) * w + ox + x;
    let warp_planes = |p: &Planes| {
        let n = p.plane_len();
        let data = (0..p.c)
            .flat_map(|ch| warp.apply(s, |y, x| p.data[ch * n + at(y, x)], 0.0, Some(lerp)))
            .collect();
        Planes::from_vec(p.c, s, s, data)
    };
    let mut gt = warp_planes(&f.gt);
    let mut input = match textures {
        None => warp_planes(&f.input),
        Some((pool, tcfg)) => match pool.draw_layer(&mut rng, s, s, tcfg) {
            Some(layer) => add_layer(&gt, &layer, |i| warp.src[i].is_some()),
            None => gt.clone(),
        },
    };
    let mut negative = warp_planes(&f.negative);
    let edge = warp.apply(s, |y, x| if f.edge[at(y, x)] > 127 { 1.0 } else { 0.0 }, 0.0, None);
    let label = f.label.as_ref().map(|l| warp.apply(s, |y, x| l[at(y, x)], IGNORE, None));
    if cfg.augment {
        let b = rng.uniform(cfg.brightness.0, cfg.brightness.1);
        let c = rng.uniform(cfg.contrast.0, cfg.contrast.1);
        let hue = rng.uniform(-cfg.hue, cfg.hue);
        let mut order = [0usize, 1, 2];
        rng.shuffle(&mut order);
        for op in order {
            match op {
                0 => [&mut input, &mut gt, &mut negative].into_iter().for_each(|p| scale_about(p, b, 0.0)),
                1 => {
                    let m = gt.luma().data.iter().sum::<f32>() / (s * s) as f32;
                    [&mut input, &mut gt, &mut negative].into_iter().for_each(|p| scale_about(p, c, m));
                }
                _ => [&mut input, &mut gt, &mut negative].into_iter().for_each(|p| shift_hue(p, hue)),
            }
        }
    }
    Sample { input, gt, edge: Planes::from_vec(1, s, s, edge), negative, label }
}

/// `v ← clamp((v − m)·k + m)`: brightness with m = 0, contrast about the mean m.
fn scale_about(p: &mut Planes, k: f32, m: f32) {
    p.data.iter_mut().for_each(|v| *v = ((*v - m) * k + m).clamp(0.0, 1.0));
}

/// Rotates the hue of every RGB pixel by `shift` turns (HSV round trip).
fn shift_hue(p: &mut Planes, shift: f32) {
    if p.c < 3 || shift == 0.0 {
        return;
    }
    let n = p.plane_len();
    for i in 0..n {
        let (r, g, b) = (p.data[i], p.data[n + i], p.data[2 * n + i]);
        let max = r.max(g).max(b);
        let min = r.min(g).min(b);
        let d = max - min;
        if d <= 0.0 {
            continue;
        }
        let h6 = if max == r {
            ((g - b) / d).rem_euclid(6.0)
        } else if max == g {
            (b - r) / d + 2.0
        } else {
            (r - g) / d + 4.0
        };
        let h6 = (h6 + shift * 6.0).rem_euclid(6.0);
        let chan = |k: f32| {
            let t = (k + h6).rem_euclid(6.0);
            max - d * t.min(4.0 - t).clamp(0.0, 1.0)
        };
        p.data[i] = chan(5.0);
        p.data[n + i] = chan(3.0);
        p.data[2 * n + i] = chan(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Planes, b: &Planes) -> f32 {
        a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// 8 × 8 blocks, each a distinct colour that encodes its block id; label = block id.
    fn blocks(h: usize, w: usize) -> Fields {
        let id = |y: usize, x: usize| ((y / 8) * 16 + x / 8) as u8 % 250;
        let img = Planes::from_fn(3, h, w, |c, y, x| if c == 0 { f32::from(id(y, x)) / 255.0 } else { 0.5 });
        Fields {
            input: img.clone(),
            gt: img.clone(),
            edge: (0..h * w).map(|i| if (i % w) / 8 % 2 == 0 { 255 } else { 0 }).collect(),
            negative: img,
            label: Some((0..h * w).map(|i| id(i / w, i % w)).collect()),
        }
    }

    #[test]
    fn geometry_is_identical_across_fields() {
        let f = blocks(160, 200);
        let cfg = SampleConfig { hue: 0.0, brightness: (1.0, 1.0), contrast: (1.0, 1.0), ..SampleConfig::default() };
        for seed in 0..20 {
            let s = augment(&f, &cfg, sample_seed(1, 0, seed));
            assert!(s.input == s.gt, "input and GT differ");
            // Jitter with unit factors is the identity up to float rounding.
            assert!(max_diff(&s.input, &s.negative) < 1e-5, "input and negative differ");
            let label = s.label.as_ref().unwrap();
            let (mut agree, mut inside) = (0, 0);
            for (i, &l) in label.iter().enumerate() {
                if l == IGNORE {
                    assert_eq!(s.edge.data[i], 0.0);
                    continue;
                }
                inside += 1;
                // Away from block borders bilinear and nearest read the same block.
                agree += usize::from((s.input.data[i] * 255.0).round() as u8 == l);
            }
            assert!(agree as f32 > 0.8 * inside as f32, "seed {seed}: {agree}/{inside}");
        }
    }

    #[test]
    fn ignore_survives_every_transform() {
        let mut f = blocks(150, 150);
        let label = f.label.as_mut().unwrap();
        for (i, v) in label.iter_mut().enumerate() {
            if (i / 150 + i % 150) % 3 == 0 {
                *v = IGNORE;
            }
        }
        for seed in 0..30 {
            let s = augment(&f, &SampleConfig::default(), seed);
            let label = s.label.unwrap();
            assert!(label.contains(&IGNORE));
            // Nearest sampling invents no class: every value is a source value or 255.
            assert!(label.iter().all(|&v| v == IGNORE || v < 250));
        }
        let all_ignore = Fields { label: Some(vec![IGNORE; 150 * 150]), ..blocks(150, 150) };
        let s = augment(&all_ignore, &SampleConfig::default(), 7);
        assert!(s.label.unwrap().iter().all(|&v| v == IGNORE));
    }

    #[test]
    fn same_seed_same_sample_and_corners_are_black_or_ignored() {
        let f = blocks(140, 140);
        let cfg = SampleConfig { max_rotation_deg: 45.0, ..SampleConfig::default() };
        let seed = sample_seed(3, 2, 1);
        assert!(augment(&f, &cfg, seed) == augment(&f, &cfg, seed), "not deterministic");
        assert!(augment(&f, &cfg, seed).input != augment(&f, &cfg, seed + 1).input, "seed ignored");
        let plain = augment(&f, &SampleConfig { augment: false, ..cfg }, seed);
        assert!(plain.label.unwrap().iter().all(|&v| v != IGNORE));
    }

    #[test]
    fn sample_time_textures_add_a_fresh_layer_to_the_gt() {
        let f = blocks(140, 150);
        let tex = Planes::from_fn(1, 13, 11, |_, y, x| ((y * 5 + x * 3) % 7) as f32 / 7.0);
        let pool = TexturePool { textures: vec![tex] };
        let tcfg = TextureDrawConfig::default();
        let cfg = SampleConfig { hue: 0.0, brightness: (1.0, 1.0), contrast: (1.0, 1.0), ..SampleConfig::default() };
        let a = augment_with(&f, &cfg, Some((&pool, &tcfg)), 3);
        let b = augment_with(&f, &cfg, Some((&pool, &tcfg)), 4);
        assert!(a.input != a.gt, "no texture was added");
        assert!(a.input != b.input, "two draws gave the same input");
        assert!(a == augment_with(&f, &cfg, Some((&pool, &tcfg)), 3), "not deterministic");
        // Outside the rotated window the input is as black as the GT.
        for (i, &e) in a.label.as_ref().unwrap().iter().enumerate() {
            if e == IGNORE && a.gt.data[i] == 0.0 {
                assert_eq!(a.input.data[i], 0.0);
            }
        }
    }

    #[test]
    fn hue_shift_of_a_full_turn_is_the_identity() {
        let mut p = Planes::from_fn(3, 4, 4, |c, y, x| ((c * 5 + y * 3 + x) % 9) as f32 / 9.0);
        let orig = p.clone();
        shift_hue(&mut p, 1.0);
        assert!(p.data.iter().zip(&orig.data).all(|(a, b)| (a - b).abs() < 1e-5));
        shift_hue(&mut p, 1.0 / 3.0);
        // A third of a turn maps red to green.
        let mut red = Planes::from_fn(3, 1, 1, |c, _, _| if c == 0 { 1.0 } else { 0.0 });
        shift_hue(&mut red, 1.0 / 3.0);
        assert!((red.data[1] - 1.0).abs() < 1e-5 && red.data[0].abs() < 1e-5);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn outputs_have_the_crop_size_and_valid_values(seed in any::<u64>(), crop in 8usize..40) {
            let (h, w) = (crop + 7, crop + 13);
            let img = Planes::from_fn(3, h, w, |c, y, x| ((c + y * x) % 17) as f32 / 17.0);
            let f = Fields {
                input: img.clone(), gt: img.clone(), negative: img,
                edge: (0..h * w).map(|i| if i % 3 == 0 { 255 } else { 0 }).collect(),
                label: Some((0..h * w).map(|i| if i % 5 == 0 { IGNORE } else { (i % 21) as u8 }).collect()),
            };
            let s = augment(&f, &SampleConfig { crop, ..SampleConfig::default() }, seed);
            prop_assert_eq!((s.input.h, s.input.w, s.edge.c), (crop, crop, 1));
            prop_assert!(s.input.data.iter().chain(&s.gt.data).all(|v| (0.0..=1.0).contains(v)));
            prop_assert!(s.edge.data.iter().all(|&v| v == 0.0 || v == 1.0));
            prop_assert!(s.label.unwrap().iter().all(|&v| v == IGNORE || v < 21));
        }
    }
}
