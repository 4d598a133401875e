//! The 3×3 "same" convolution by Winograd's F(2, 3) along the rows and direct sums along the
//! columns, for f32 on AVX-512 CPUs, at any dilation.
//!
//! Two output rows y and y + d of a column need the four input rows y − d, y, y + d, y + 2d.
//! Winograd's minimal filtering F(2, 3) (Lavin and Gray, 2016) gets them from four products
//! per kernel column instead of six: with the input rows r₀…r₃ transformed to
//! `t₀ = r₀ − r₂, t₁ = r₁ + r₂, t₂ = r₂ − r₁, t₃ = r₁ − r₃` and each kernel column (g₀, g₁, g₂)
//! to `u₀ = g₀, u₁ = (g₀ + g₁ + g₂)/2, u₂ = (g₀ − g₁ + g₂)/2, u₃ = g₂`, the products
//! `mₖ = Σ_ci Σ_kx uₖ[kx] · tₖ(x + kx·d)` give `y₀ = m₀ + m₁ + m₂` and `y₁ = m₁ − m₂ − m₃`.
//! Each `mₖ` is a 1×3 convolution over the transformed rows, which the register-blocked kernel
//! of [`super::conv_direct`] computes the same way (R vectors of 16 pixels × 8 output channels,
//! loads of contiguous rows, no gathers): 12 FMAs per output pair and input channel where the
//! direct kernel needs 18, at every dilation. Bias and ReLU are applied before the one store.
//!
//! The transforms only add, subtract and halve, so results differ from the direct sum by a few
//! rounding steps. Every output is summed in the same order whatever the band split and thread
//! count.
#![allow(unsafe_code)]

use super::conv_cpu::{conv_mode, ConvMode, Epilogue, Geometry};
use super::conv_direct::{avx512_present, store_bands, tail_mask, vector_groups, PaddedBand, LANES, OB};

/// Layers with fewer input or output channels take the direct kernel: measured per shape
/// (bench/RESULTS.md, "Row Winograd"), 16→16 lost 7–15 % to it, 32→32 tied, 64→64 won
/// 25–40 % at every dilation and 128→128 d4 39 %.
pub(super) const MIN_CHANNELS: usize = 32;

/// Output pixels per band (whole row pairs). Only a band's first pair is transformed without
/// a prefetch ahead of it, so bands are twice the direct kernel's; 2-thread model bench at
/// 256², alternated runs on a noisy machine: 750–800 ms against 775–925 at 4096.
const BAND_PIXELS: usize = 8192;

/// Whether this forward takes the convolution: the direct kernel would ([`super::conv_direct::suits`]),
/// at least [`MIN_CHANNELS`] input and output channels, and `CSGIS_CONV` is not `direct`
/// (read once by [`enabled`]).
pub(super) fn suits(g: &Geometry) -> bool {
    super::conv_direct::suits(g) && g.c_in >= MIN_CHANNELS && g.c_out >= MIN_CHANNELS && enabled()
}

/// Whether the path is on: `CSGIS_CONV` is not `direct` or `im2col` ([`conv_mode`]).
pub(super) fn enabled() -> bool {
    conv_mode() >= ConvMode::Rows
}

/// The kernel (c_out, c_in, 3, 3) transformed along its rows and regrouped as
/// `[block][k][c_in][kx][8]` (k = 0..4 the transformed row), zeros past c_out; computed in f64.
pub(super) fn pack_weights(weight: &[f32], g: &Geometry) -> Vec<f32> {
    let blocks = g.c_out.div_ceil(OB);
    let mut packed = vec![0.0; blocks * 4 * g.c_in * 3 * OB];
    for co in 0..g.c_out {
        let (b, o) = (co / OB, co % OB);
        for ci in 0..g.c_in {
            let taps = &weight[(co * g.c_in + ci) * 9..][..9];
            for kx in 0..3 {
                let (g0, g1, g2) = (f64::from(taps[kx]), f64::from(taps[3 + kx]), f64::from(taps[6 + kx]));
                let u = [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2];
                for (k, &v) in u.iter().enumerate() {
                    packed[(((b * 4 + k) * g.c_in + ci) * 3 + kx) * OB + o] = v as f32;
                }
            }
        }
    }
    packed
}

/// The image row that transformed row k of output row pair (y, y + d) reads, y + (k − 1)·d,
/// or `None` outside the image (zero padding).
pub(super) fn source_row(g: &Geometry, y: usize, k: usize) -> Option<usize> {
    (y + k * g.dilation).checked_sub(g.dilation).filter(|&sy| sy < g.h)
}

/// Output row pair p of a band (band-local): rows y and y + d with y = (p / d) · 2d + p % d.
pub(super) fn pair_row(p: usize, d: usize) -> usize {
    (p / d) * 2 * d + p % d
}

/// `t₀ = r₀ − r₂, t₁ = r₁ + r₂, t₂ = r₂ − r₁, t₃ = r₁ − r₃` over `len` values (Bᵀ of F(2, 3)).
///
/// # Safety
/// AVX-512F must be present, and `len` values readable at each of `rows` and writable at each
/// of `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transform_input_rows(rows: [*const f32; 4], out: [*mut f32; 4], len: usize) {
    use std::arch::x86_64::*;
    let [r0, r1, r2, r3] = rows;
    let [t0, t1, t2, t3] = out;
    let mut i = 0;
    while i < len {
        let mask: u16 = if len - i >= LANES { u16::MAX } else { (1u16 << (len - i)) - 1 };
        let ld = |p: *const f32| _mm512_maskz_loadu_ps(mask, p.add(i));
        let (a0, a1, a2, a3) = (ld(r0), ld(r1), ld(r2), ld(r3));
        _mm512_mask_storeu_ps(t0.add(i), mask, _mm512_sub_ps(a0, a2));
        _mm512_mask_storeu_ps(t1.add(i), mask, _mm512_add_ps(a1, a2));
        _mm512_mask_storeu_ps(t2.add(i), mask, _mm512_sub_ps(a2, a1));
        _mm512_mask_storeu_ps(t3.add(i), mask, _mm512_sub_ps(a1, a3));
        i += LANES;
    }
}

/// The four transformed rows of one row pair, `[k][c_in][stride]`: made while the previous
/// pair's products run, so they are in L2 (c_in · 4 rows; 278 KB at 64 channels and 256 px)
/// when read. A whole band's (2 MB) ran 30 % slower.
#[derive(Default)]
struct TransformedPair {
    /// 4 · c_in rows of [`PaddedBand::stride_for`] values.
    data: Vec<f32>,
}

impl TransformedPair {
    /// Transforms the input rows y − d … y + 2d of output row pair (y, y + d) of `channels`
    /// straight from `x_img` (one image, c_in planes of h × w): each row zero-padded by d columns on the left
    /// and to `stride` on the right, rows outside the image as zeros. No padded copy of the band
    /// is made (that copy cost 14 % of inference at 256²).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fill(&mut self, x_img: &[f32], g: &Geometry, stride: usize, y: usize, channels: std::ops::Range<usize>) {
        use std::arch::x86_64::*;
        let (c_in, d, w) = (g.c_in, g.dilation, g.w);
        self.data.resize(4 * c_in * stride, 0.0);
        assert!(x_img.len() >= c_in * g.hw());
        let dst0 = self.data.as_mut_ptr();
        // Lanes of the vector at padded column i that hold image columns (i − d + lane in 0..w).
        let lane_mask = |i: usize| -> u16 {
            let lo = d.saturating_sub(i).min(LANES);
            let hi = (w + d).saturating_sub(i).min(LANES);
            if hi <= lo { 0 } else { (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as u16 }
        };
        for ci in channels {
            let plane = x_img.as_ptr().add(ci * g.hw());
            let rows: [Option<*const f32>; 4] = std::array::from_fn(|k| source_row(g, y, k).map(|sy| plane.add(sy * w)));
            let out: [*mut f32; 4] = std::array::from_fn(|k| dst0.add((k * c_in + ci) * stride));
            let mut i = 0;
            while i < stride {
                let mask = lane_mask(i);
                let store = tail_mask(stride - i);
                // SAFETY: only the lanes of `mask` are read, and they hold columns 0..w of an
                // image row (the address of the vector's first lane may lie before the row,
                // hence wrapping arithmetic); the stores stay inside the transformed row.
                let ld = |r: Option<*const f32>| match r {
                    Some(row) if mask != 0 => _mm512_maskz_loadu_ps(mask, row.wrapping_add(i).wrapping_sub(d)),
                    _ => _mm512_setzero_ps(),
                };
                let (a0, a1, a2, a3) = (ld(rows[0]), ld(rows[1]), ld(rows[2]), ld(rows[3]));
                _mm512_mask_storeu_ps(out[0].add(i), store, _mm512_sub_ps(a0, a2));
                _mm512_mask_storeu_ps(out[1].add(i), store, _mm512_add_ps(a1, a2));
                _mm512_mask_storeu_ps(out[2].add(i), store, _mm512_sub_ps(a2, a1));
                _mm512_mask_storeu_ps(out[3].add(i), store, _mm512_sub_ps(a1, a3));
                i += LANES;
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn fill(&mut self, _: &[f32], _: &Geometry, _: usize, _: usize, _: std::ops::Range<usize>) {
        unreachable!("the row Winograd conv is only enabled on x86-64")
    }
}

/// y = epilogue(conv(x, w)) for f32: `x` (n, c_in, h, w), `weight` (c_out, c_in·9) →
/// (n, c_out, h, w). Needs AVX-512F (asserted); [`suits`] says when to take it.
pub(super) fn forward(x: &[f32], weight: &[f32], g: &Geometry, epilogue: Epilogue<'_, f32>) -> Vec<f32> {
    assert!(avx512_present(), "row Winograd conv needs AVX-512F");
    let hw = g.hw();
    let d = g.dilation;
    let packed = pack_weights(weight, g);
    // Whole groups of 2·d rows (d pairs), so pairs never straddle two bands.
    let band_rows = BAND_PIXELS.div_ceil(g.w.max(1)).max(4 * d).next_multiple_of(2 * d);
    let image = g.c_in * hw;
    // SAFETY: AVX-512F is present (asserted above). `run_band` reads its buffers and `packed`
    // inside their bounds and stores every channel and column of rows y0..y0 + rows of the
    // band's image and nothing else (masked stores), as `store_bands` asks.
    unsafe {
        store_bands(g, band_rows, epilogue.bias, <[TransformedPair; 2]>::default, |t, (img, y0, rows), bias, out| {
            run_band(&x[img * image..(img + 1) * image], y0, t, &packed, bias, g, rows, epilogue.relu, out, hw)
        })
    }
}

/// What every [`pair_tile`] call of a band shares (and the AVX2 path's).
pub(super) struct PairArgs {
    /// Values per transformed (k, ci) plane.
    pub(super) plane: usize,
    pub(super) dilation: usize,
    pub(super) c_in: usize,
    pub(super) relu: bool,
    /// Values between two output channels.
    pub(super) out_stride: usize,
    /// Output channels of this register block that exist (≤ 8; ≤ 4 on AVX2).
    pub(super) channels: usize,
    /// Values between output rows y and y + d.
    pub(super) second_row: usize,
    /// Whether row y + d exists (is inside the band).
    pub(super) store_second: bool,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_band(x_img: &[f32], y0: usize, t: &mut [TransformedPair; 2], packed: &[f32], bias: &[f32], g: &Geometry, rows: usize, relu: bool, out: *mut f32, hw: usize) {
    let d = g.dilation;
    let blocks = g.c_out.div_ceil(OB);
    let vectors = g.w.div_ceil(LANES);
    let pairs = rows.next_multiple_of(2 * d) / 2;
    let stride = PaddedBand::stride_for(g);
    let mut k = PairArgs {
        plane: stride,
        dilation: d,
        c_in: g.c_in,
        relu,
        out_stride: hw,
        channels: OB,
        second_row: d * g.w,
        store_second: true,
    };
    let block_weights = 4 * g.c_in * 3 * OB;
    debug_assert_eq!(packed.len(), blocks * block_weights);
    // The pairs of the band that exist (the last band of an image may end inside a group).
    let mut ys = (0..pairs).map(|p| pair_row(p, d)).filter(|&y| y < rows);
    let Some(mut y) = ys.next() else { return };
    t[0].fill(x_img, g, stride, y0 + y, 0..g.c_in);
    // Input channels whose rows of the next pair are fetched and transformed beside block b's
    // products: the rows of the 64 planes of a 256² image lie 256 KB apart and share one set
    // of L2, so rows fetched for all channels at once evicted each other before their use.
    let chunk = |b: usize| b * g.c_in / blocks..(b + 1) * g.c_in / blocks;
    loop {
        let next = ys.next();
        // The missing row y + d of a band that ends inside a group is computed from the zero
        // padding and not stored.
        k.store_second = y + d < rows;
        if let Some(ny) = next {
            prefetch_rows(x_img, g, y0 + ny, chunk(0));
        }
        let [cur, following] = &mut *t;
        // Blocks outside, pixels inside: a block's weights (4 · c_in · 3 · 8 values, 24 KB
        // at 64 channels) stay in L1 while the pair's transformed rows stream from L2.
        for b in 0..blocks {
            if let (Some(ny), true) = (next, b + 1 < blocks) {
                prefetch_rows(x_img, g, y0 + ny, chunk(b + 1));
            }
            let w = packed.as_ptr().add(b * block_weights);
            let bias = bias.as_ptr().add(b * OB);
            k.channels = OB.min(g.c_out - b * OB);
            for (v0, nv) in vector_groups(vectors) {
                let x0 = v0 * LANES;
                let tail_mask = tail_mask(g.w - (x0 + (nv - 1) * LANES));
                let inp = cur.data.as_ptr().add(x0);
                let out = out.add(b * OB * hw + y * g.w + x0);
                match nv {
                    3 => pair_tile::<3>(inp, w, bias, out, &k, tail_mask),
                    2 => pair_tile::<2>(inp, w, bias, out, &k, tail_mask),
                    _ => pair_tile::<1>(inp, w, bias, out, &k, tail_mask),
                }
            }
            if let Some(ny) = next {
                following.fill(x_img, g, stride, y0 + ny, chunk(b));
            }
        }
        match next {
            Some(ny) => {
                t.swap(0, 1);
                y = ny;
            }
            None => break,
        }
    }
}

/// Asks for the input rows of the pair at `y` (y − d … y + 2d) of channels `channels` to be
/// brought into the cache, one block's products ahead of their transform. Without it the
/// transform waited for every row: the hardware prefetcher does not follow 4 · c_in short
/// streams whose rows lie a plane apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn prefetch_rows(x_img: &[f32], g: &Geometry, y: usize, channels: std::ops::Range<usize>) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    const LINE: usize = 16;
    for ci in channels {
        for k in 0..4 {
            let Some(sy) = source_row(g, y, k) else { continue };
            let row = &x_img[(ci * g.h + sy) * g.w..][..g.w];
            for i in (0..g.w).step_by(LINE) {
                _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().add(i).cast());
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn run_band(_: &[f32], _: usize, _: &mut [TransformedPair; 2], _: &[f32], _: &[f32], _: &Geometry, _: usize, _: bool, _: *mut f32, _: usize) {
    unreachable!("the row Winograd conv is only enabled on x86-64")
}

/// `acc = Σ_ci Σ_kx w · t(x + kx·d)` for one transformed row k: R vectors of 16 pixels × 8
/// output channels in registers, stored once at the end. Kept out of line so that its 24
/// accumulators are not spilled around the combination of the four rows in [`pair_tile`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn row_products<const R: usize>(row0: *const f32, w: *const f32, plane: usize, c_in: usize, d: usize) -> [[std::arch::x86_64::__m512; R]; OB] {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    let mut acc = [[zero; R]; OB];
    let mut wp = w;
    for ci in 0..c_in {
        let row = row0.add(ci * plane);
        for kx in 0..3 {
            let src = row.add(kx * d);
            let mut xv = [zero; R];
            for (r, v) in xv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(src.add(r * LANES));
            }
            for (o, row) in acc.iter_mut().enumerate() {
                let wv = _mm512_set1_ps(*wp.add(o));
                for (a, v) in row.iter_mut().zip(&xv) {
                    *a = _mm512_fmadd_ps(*v, wv, *a);
                }
            }
            wp = wp.add(OB);
        }
    }
    acc
}

/// Output rows y and y + d, R vectors of 16 pixels × 8 output channels. `inp` points at the
/// transformed row k = 0 of input channel 0 for the tile's first pixel, `w` at the block's
/// packed weights, `out` at channel 0 of the first pixel of row y.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn pair_tile<const R: usize>(inp: *const f32, w: *const f32, bias: *const f32, out: *mut f32, k: &PairArgs, tail_mask: u16) {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    // m₀ … m₃, then y₀ = m₀ + m₁ + m₂ and y₁ = m₁ − m₂ − m₃.
    let m: [_; 4] = std::array::from_fn(|t| row_products::<R>(inp.add(t * k.c_in * k.plane), w.add(t * k.c_in * 3 * OB), k.plane, k.c_in, k.dilation));
    for o in 0..k.channels {
        let b = _mm512_set1_ps(*bias.add(o));
        let dst = out.add(o * k.out_stride);
        for r in 0..R {
            let mask = if r + 1 == R { tail_mask } else { u16::MAX };
            let (m0, m1, m2, m3) = (m[0][o][r], m[1][o][r], m[2][o][r], m[3][o][r]);
            let mut v0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(m0, m1), m2), b);
            let mut v1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(m1, m2), m3), b);
            if k.relu {
                v0 = _mm512_max_ps(v0, zero);
                v1 = _mm512_max_ps(v1, zero);
            }
            _mm512_mask_storeu_ps(dst.add(r * LANES), mask, v0);
            if k.store_second {
                _mm512_mask_storeu_ps(dst.add(k.second_row + r * LANES), mask, v1);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::conv_direct::tests::{assert_forward_matches_im2col, assert_same_on_one_thread, random, Case};

    /// The forward's edge cases (n, c_in, c_out, h, w, d), shared with the AVX2 path's test:
    /// heights that end inside a group of 2·d rows, odd and even; widths across 16 and 48
    /// lanes; channel counts off the block of 8; dilations up to 8 with images smaller than
    /// the padding; bands split by BAND_PIXELS; fewer input channels than output blocks
    /// (empty chunks of the interleaved transform).
    pub(in crate::model) const FORWARD_CASES: [Case; 12] = [
        (1, 3, 16, 1, 33, 1),
        (2, 5, 3, 7, 40, 1),
        (1, 4, 8, 16, 32, 2),
        (1, 16, 16, 33, 47, 1),
        (2, 8, 11, 5, 49, 3),
        (1, 3, 17, 9, 97, 8),
        (1, 2, 1, 4, 36, 8),
        (3, 7, 24, 130, 36, 2),
        (2, 5, 9, 300, 40, 1),
        (1, 6, 4, 41, 33, 8),
        (1, 64, 64, 37, 64, 3),
        (1, 2, 24, 230, 40, 2),
    ];

    #[test]
    fn matches_the_im2col_path_on_every_edge_case() {
        if !avx512_present() {
            eprintln!("no AVX-512F here: the row Winograd path is never taken, nothing to compare");
            return;
        }
        assert_forward_matches_im2col(forward, &FORWARD_CASES, |c_in| 1e-5 * (c_in as f32).sqrt().max(1.0));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !avx512_present() {
            return;
        }
        let g = Geometry { n: 2, c_in: 16, c_out: 10, h: 70, w: 50, dilation: 2 };
        let x = random(g.n * g.c_in * g.hw(), 1);
        let k = random(g.c_out * g.c_in * 9, 2);
        assert_same_on_one_thread(|| forward(&x, &k, &g, Epilogue::NONE));
    }
}
