//! The row Winograd F(2, 3) forward of [`super::conv_winograd_rows`] for CPUs with AVX2 and
//! FMA but no AVX-512F: the same transforms and packed weights, vectors of 8 lanes and 16
//! registers.
//!
//! [`row_products`] keeps 4 output channels × R ≤ 2 vectors of 8 pixels (8 accumulators, 2
//! input vectors and one broadcast weight) and, per input channel and tap, does 8 FMAs for 2
//! loads and 4 broadcasts. A block of 8 packed output channels is done in two halves of 4. The input rows of a pair are transformed just before its products, by a loop
//! the compiler vectorises. It is the forward only: on such CPUs the kernel gradient stays the
//! im2col one ([`super::conv_cpu`]).
//!
//! `CSGIS_CONV_ISA=avx2` makes an AVX-512 machine take this path (and none of the AVX-512
//! convolutions), to test and time it there.
#![allow(unsafe_code)]

use super::conv_cpu::{conv_mode, ConvMode, Epilogue, Geometry};
use super::conv_direct::{avx512_kernels, store_bands, PaddedBand, MIN_WIDTH, OB};
use super::conv_winograd_rows::{pack_weights, pair_row, source_row, PairArgs, MIN_CHANNELS};

/// f32 lanes per AVX2 vector.
const LANES: usize = 8;
/// Output channels per register block: half of a packed block of [`OB`].
const HALF: usize = OB / 2;
/// Pixel vectors per register block (R ≤ this): 8 accumulators, 2 input vectors and a
/// broadcast. With 3 (12 accumulators, all 16 registers) the compiler spilled one accumulator
/// on every tap and the kernel waited on the store.
const RMAX: usize = 2;
/// Output pixels per band (whole row pairs), as the AVX-512 path's.
const BAND_PIXELS: usize = 8192;

/// Whether this forward takes the convolution: AVX2 and FMA without the AVX-512 kernels, at
/// least [`MIN_CHANNELS`] input and output channels, rows of at least 32 px, and `CSGIS_CONV`
/// leaves the row Winograd on.
pub(super) fn suits(g: &Geometry) -> bool {
    present() && !avx512_kernels() && conv_mode() >= ConvMode::Rows && g.w >= MIN_WIDTH && g.c_in >= MIN_CHANNELS && g.c_out >= MIN_CHANNELS
}

/// Whether the CPU has AVX2 and FMA.
pub(super) fn present() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// What a band's thread keeps: the pair's transformed rows `[k][c_in][stride]` and a row of
/// zeros standing for the rows outside the image.
#[derive(Default)]
struct PairBuffers {
    data: Vec<f32>,
    zeros: Vec<f32>,
}

impl PairBuffers {
    /// Transforms the input rows y − d … y + 2d of row pair (y, y + d), every channel: each
    /// row zero-padded by d columns on the left and to `stride` on the right. Inlined into
    /// [`run_band`], so the loop is compiled for AVX2.
    #[inline(always)]
    fn fill(&mut self, x_img: &[f32], g: &Geometry, stride: usize, y: usize) {
        let (c_in, d, w) = (g.c_in, g.dilation, g.w);
        self.data.resize(4 * c_in * stride, 0.0);
        self.zeros.resize(w, 0.0);
        for ci in 0..c_in {
            let plane = &x_img[ci * g.hw()..(ci + 1) * g.hw()];
            let rows: [&[f32]; 4] = std::array::from_fn(|k| match source_row(g, y, k) {
                Some(sy) => &plane[sy * w..(sy + 1) * w],
                None => &self.zeros[..],
            });
            // Rows (k, ci) of the `[k][c_in][stride]` layout.
            let mut out = self.data.chunks_exact_mut(stride).skip(ci).step_by(c_in);
            let out: [&mut [f32]; 4] = std::array::from_fn(|_| out.next().expect("four transformed rows"));
            transform_rows(rows, out, d);
        }
    }
}

/// `t₀ = r₀ − r₂, t₁ = r₁ + r₂, t₂ = r₂ − r₁, t₃ = r₁ − r₃` (Bᵀ of F(2, 3)) into columns
/// d … d + w of the four output rows, zeros around them.
#[inline(always)]
fn transform_rows(rows: [&[f32]; 4], out: [&mut [f32]; 4], d: usize) {
    let w = rows[0].len();
    let [r0, r1, r2, r3] = rows;
    let (r1, r2, r3) = (&r1[..w], &r2[..w], &r3[..w]);
    let [t0, t1, t2, t3] = out;
    for t in [&mut *t0, &mut *t1, &mut *t2, &mut *t3] {
        t[..d].fill(0.0);
        t[d + w..].fill(0.0);
    }
    let (t0, t1, t2, t3) = (&mut t0[d..d + w], &mut t1[d..d + w], &mut t2[d..d + w], &mut t3[d..d + w]);
    for i in 0..w {
        let (a0, a1, a2, a3) = (r0[i], r1[i], r2[i], r3[i]);
        t0[i] = a0 - a2;
        t1[i] = a1 + a2;
        t2[i] = a2 - a1;
        t3[i] = a1 - a3;
    }
}

/// y = epilogue(conv(x, w)) for f32: `x` (n, c_in, h, w), `weight` (c_out, c_in·9) →
/// (n, c_out, h, w). Needs AVX2 and FMA (asserted); [`suits`] says when to take it.
pub(super) fn forward(x: &[f32], weight: &[f32], g: &Geometry, epilogue: Epilogue<'_, f32>) -> Vec<f32> {
    assert!(present(), "the AVX2 row Winograd conv needs AVX2 and FMA");
    let hw = g.hw();
    let d = g.dilation;
    let packed = pack_weights(weight, g);
    let band_rows = BAND_PIXELS.div_ceil(g.w.max(1)).max(4 * d).next_multiple_of(2 * d);
    let image = g.c_in * hw;
    // SAFETY: AVX2 and FMA are present (asserted above). `run_band` reads `buf` and `packed`
    // inside their bounds and stores every channel and column of rows y0..y0 + rows of the
    // band's image and nothing else (masked stores), as `store_bands` asks.
    unsafe {
        store_bands(g, band_rows, epilogue.bias, PairBuffers::default, |buf, (img, y0, rows), bias, out| {
            run_band(&x[img * image..(img + 1) * image], y0, buf, &packed, bias, g, rows, epilogue.relu, out, hw)
        })
    }
}

/// Computes one band: `out` points at channel 0 of the band's first output row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_band(x_img: &[f32], y0: usize, buf: &mut PairBuffers, packed: &[f32], bias: &[f32], g: &Geometry, rows: usize, relu: bool, out: *mut f32, hw: usize) {
    let d = g.dilation;
    let blocks = g.c_out.div_ceil(OB);
    let vectors = g.w.div_ceil(LANES);
    let pairs = rows.next_multiple_of(2 * d) / 2;
    let stride = PaddedBand::stride_for(g);
    let mut k = PairArgs { plane: stride, dilation: d, c_in: g.c_in, relu, out_stride: hw, channels: HALF, second_row: d * g.w, store_second: true };
    let block_weights = 4 * g.c_in * 3 * OB;
    debug_assert_eq!(packed.len(), blocks * block_weights);
    for p in 0..pairs {
        let y = pair_row(p, d);
        if y >= rows {
            continue;
        }
        // The missing row y + d of a band that ends inside a group is computed from the zero
        // padding and not stored.
        k.store_second = y + d < rows;
        buf.fill(x_img, g, stride, y0 + y);
        for b in 0..blocks {
            for half in 0..2 {
                let c0 = b * OB + half * HALF;
                if c0 >= g.c_out {
                    break;
                }
                k.channels = HALF.min(g.c_out - c0);
                let w = packed.as_ptr().add(b * block_weights + half * HALF);
                let bias = bias.as_ptr().add(c0);
                let mut v0 = 0;
                while v0 < vectors {
                    let nv = RMAX.min(vectors - v0);
                    let x0 = v0 * LANES;
                    let tail = g.w - (x0 + (nv - 1) * LANES);
                    let inp = buf.data.as_ptr().add(x0);
                    let out = out.add(c0 * hw + y * g.w + x0);
                    match nv {
                        2 => pair_tile::<2>(inp, w, bias, out, &k, tail),
                        _ => pair_tile::<1>(inp, w, bias, out, &k, tail),
                    }
                    v0 += nv;
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn run_band(_: &[f32], _: usize, _: &mut PairBuffers, _: &[f32], _: &[f32], _: &Geometry, _: usize, _: bool, _: *mut f32, _: usize) {
    unreachable!("the row Winograd conv is only enabled on x86-64")
}

/// `acc = Σ_ci Σ_kx w · t(x + kx·d)` for one transformed row k: R vectors of 8 pixels × 4
/// output channels. `w` points at the half block's first weight of row k (packed rows of
/// [`OB`] values), `row0` at input channel 0's transformed row at the tile's first pixel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn row_products<const R: usize>(row0: *const f32, w: *const f32, plane: usize, c_in: usize, d: usize) -> [[std::arch::x86_64::__m256; R]; HALF] {
    use std::arch::x86_64::*;
    let zero = _mm256_setzero_ps();
    let mut acc = [[zero; R]; HALF];
    let mut wp = w;
    for ci in 0..c_in {
        let row = row0.add(ci * plane);
        for kx in 0..3 {
            let src = row.add(kx * d);
            let mut xv = [zero; R];
            for (r, v) in xv.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(src.add(r * LANES));
            }
            for (o, acc_o) in acc.iter_mut().enumerate() {
                let wv = _mm256_broadcast_ss(&*wp.add(o));
                for (a, v) in acc_o.iter_mut().zip(&xv) {
                    *a = _mm256_fmadd_ps(*v, wv, *a);
                }
            }
            wp = wp.add(OB);
        }
    }
    acc
}

/// Output rows y and y + d, R vectors of 8 pixels × up to 4 output channels; `tail` is the
/// number of pixels of the last vector to store (≥ 8 stores it whole).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn pair_tile<const R: usize>(inp: *const f32, w: *const f32, bias: *const f32, out: *mut f32, k: &PairArgs, tail: usize) {
    use std::arch::x86_64::*;
    let zero = _mm256_setzero_ps();
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let tail_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail.min(LANES) as i32), lanes);
    let all = _mm256_set1_epi32(-1);
    // m₀ … m₃, then y₀ = m₀ + m₁ + m₂ and y₁ = m₁ − m₂ − m₃.
    let m: [_; 4] = std::array::from_fn(|t| row_products::<R>(inp.add(t * k.c_in * k.plane), w.add(t * k.c_in * 3 * OB), k.plane, k.c_in, k.dilation));
    for o in 0..k.channels {
        let b = _mm256_broadcast_ss(&*bias.add(o));
        let dst = out.add(o * k.out_stride);
        for r in 0..R {
            let mask = if r + 1 == R { tail_mask } else { all };
            let (m0, m1, m2, m3) = (m[0][o][r], m[1][o][r], m[2][o][r], m[3][o][r]);
            let mut v0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(m0, m1), m2), b);
            let mut v1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(m1, m2), m3), b);
            if k.relu {
                v0 = _mm256_max_ps(v0, zero);
                v1 = _mm256_max_ps(v1, zero);
            }
            _mm256_maskstore_ps(dst.add(r * LANES), mask, v0);
            if k.store_second {
                _mm256_maskstore_ps(dst.add(k.second_row + r * LANES), mask, v1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conv_direct::tests::{assert_forward_matches_im2col, assert_same_on_one_thread, random};
    use crate::model::conv_winograd_rows::tests::FORWARD_CASES;

    #[test]
    fn matches_the_im2col_path_on_every_edge_case() {
        if !present() {
            eprintln!("no AVX2 and FMA here: the AVX2 row Winograd path is never taken, nothing to compare");
            return;
        }
        // The AVX-512 path's cases, and a row of 25 px (three vectors of 8, the last of 1).
        let mut cases = FORWARD_CASES.to_vec();
        cases.push((1, 5, 6, 9, 25, 1));
        assert_forward_matches_im2col(forward, &cases, |c_in| 1e-5 * (c_in as f32).sqrt().max(1.0));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !present() {
            return;
        }
        let g = Geometry { n: 2, c_in: 6, c_out: 10, h: 90, w: 50, dilation: 2 };
        let x = random(g.n * g.c_in * g.hw(), 1);
        let weight = random(g.c_out * g.c_in * 9, 2);
        assert_same_on_one_thread(|| forward(&x, &weight, &g, Epilogue::NONE));
    }
}
