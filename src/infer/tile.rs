//! The tile grid for tiled inference, and feathered blending weights. Pure arithmetic.
//!
//! The image is cut into cores of at most `tile` pixels a side. Each tile runs on its core
//! plus `context` pixels of real image on every side (fewer at the image border), and its
//! result is kept on the core plus a feather band of `feather` pixels, where the weight ramps
//! linearly so that neighbouring tiles' weights sum to one. When `context ≥ receptive radius +
//! feather`, every kept pixel saw everything it depends on, and tiling is exact up to rounding.

/// One tile, in image coordinates (half-open ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// The core this tile is responsible for: `(x0, y0, x1, y1)`.
    pub core: (usize, usize, usize, usize),
    /// The region the network runs on: core plus context, clipped to the image.
    pub input: (usize, usize, usize, usize),
    /// The region whose results are blended: core plus feather band, clipped to the image.
    pub keep: (usize, usize, usize, usize),
}

/// Splits `len` into `ceil(len / tile)` nearly equal spans.
fn spans(len: usize, tile: usize) -> Vec<(usize, usize)> {
    let n = len.div_ceil(tile.max(1)).max(1);
    (0..n).map(|i| (i * len / n, (i + 1) * len / n)).collect()
}

/// The tiles covering a `w`×`h` image. Weights sum to one when `feather ≤ tile / 4` (every
/// core is then at least twice the feather band wide).
#[must_use]
pub fn tile_grid(w: usize, h: usize, tile: usize, context: usize, feather: usize) -> Vec<Tile> {
    let grow = |a: usize, b: usize, by: usize, len: usize| (a.saturating_sub(by), (b + by).min(len));
    let mut tiles = Vec::new();
    for &(y0, y1) in &spans(h, tile) {
        for &(x0, x1) in &spans(w, tile) {
            let (ix0, ix1) = grow(x0, x1, context, w);
            let (iy0, iy1) = grow(y0, y1, context, h);
            let (kx0, kx1) = grow(x0, x1, feather, w);
            let (ky0, ky1) = grow(y0, y1, feather, h);
            tiles.push(Tile { core: (x0, y0, x1, y1), input: (ix0, iy0, ix1, iy1), keep: (kx0, ky0, kx1, ky1) });
        }
    }
    tiles
}

/// 1-D ramp: 1 inside `[a, b)` away from its ends, falling linearly across `a ± feather` and
/// `b ± feather` (only where there is a neighbour, i.e. not at the image border).
fn ramp(v: usize, a: usize, b: usize, len: usize, feather: usize) -> f32 {
    if feather == 0 {
        return f32::from(u8::from(v >= a && v < b));
    }
    let f2 = 2.0 * feather as f32;
    let p = v as f32 + 0.5;
    let left = if a == 0 { 1.0 } else { ((p - (a as f32 - feather as f32)) / f2).clamp(0.0, 1.0) };
    let right = if b == len { 1.0 } else { (((b + feather) as f32 - p) / f2).clamp(0.0, 1.0) };
    left.min(right)
}

/// The blending weight of pixel (x, y) in `tile` for a `w`×`h` image.
#[must_use]
pub fn feather_weight(tile: &Tile, x: usize, y: usize, w: usize, h: usize, feather: usize) -> f32 {
    let (x0, y0, x1, y1) = tile.core;
    ramp(x, x0, x1, w, feather) * ramp(y, y0, y1, h, feather)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn weights_cover_every_pixel_and_sum_to_one(w in 1usize..300, h in 1usize..200, tile in 8usize..96, feather in 0usize..12) {
            let feather = feather.min(tile / 4);
            let tiles = tile_grid(w, h, tile, feather + 5, feather);
            let mut sum = vec![0.0f32; w * h];
            for t in &tiles {
                let (kx0, ky0, kx1, ky1) = t.keep;
                let (ix0, iy0, ix1, iy1) = t.input;
                prop_assert!(ix0 <= kx0 && iy0 <= ky0 && kx1 <= ix1 && ky1 <= iy1);
                for y in ky0..ky1 {
                    for x in kx0..kx1 {
                        sum[y * w + x] += feather_weight(t, x, y, w, h, feather);
                    }
                }
            }
            for s in sum {
                prop_assert!((s - 1.0).abs() < 1e-5, "weight sum {}", s);
            }
        }

        #[test]
        fn cores_partition_the_image(w in 1usize..500, tile in 1usize..128) {
            let tiles = tile_grid(w, 1, tile, 0, 0);
            let mut covered = 0;
            for t in &tiles {
                prop_assert!(t.core.2 - t.core.0 <= tile);
                covered += t.core.2 - t.core.0;
            }
            prop_assert_eq!(covered, w);
        }
    }
}
