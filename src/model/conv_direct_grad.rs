//! The kernel gradient of the 3×3 "same" convolution for f32 on AVX-512 CPUs, without im2col
//! columns or gemm packing.
//!
//! dW[co][ci][tap] = Σ over images and pixels of dy[co](p) · x[ci](p + tap). The im2col path of
//! [`super::conv_cpu::kernel_grad`] writes every input value nine times into a column block,
//! and the gemm crate copies that block again into packed panels before a product whose inner
//! dimension is the whole band. Here a band's input rows are copied once, zero-padded
//! ([`PaddedBand`], shared with the forward), and [`accumulate`] keeps 3 output channels × 9
//! taps = 27 accumulators of 16 pixels in registers while it walks the band: per 16 pixels it
//! loads 3 gradient vectors and 9 shifted input vectors for 27 FMAs. The lanes are added up once
//! per band.
//!
//! Each band's sums go to their own buffer and the buffers are added in band order
//! ([`super::conv_cpu::sum_in_order`]), so the result does not depend on the thread count or on
//! rayon's scheduling (a resumed training run repeats the same losses bit for bit).
#![allow(unsafe_code)]

use rayon::prelude::*;

use super::conv_cpu::{sum_in_order, Geometry};
use super::conv_direct::{avx512_present, tail_mask, PaddedBand, LANES};

/// Output channels whose 9 taps one [`accumulate`] call keeps in registers (27 accumulators of
/// the 32 AVX-512 registers).
const GROUP: usize = 3;
/// Output pixels per band: enough rows to amortise the horizontal sums of the accumulators.
const BAND_PIXELS: usize = 4096;

/// dW = Σ dy ⊗ shifted x: `x` (n, c_in, h, w), `dy` (n, c_out, h, w) → (c_out, c_in·9).
/// Needs AVX-512F (asserted); [`super::conv_direct::suits`] says when to take it.
pub(super) fn kernel_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    assert!(avx512_present(), "direct conv needs AVX-512F");
    let hw = g.hw();
    let k = 9 * g.c_in;
    let image = g.c_in * hw;
    let band_rows = BAND_PIXELS.div_ceil(g.w.max(1)).max(4 * g.dilation);
    let partials: Vec<Vec<f32>> = g
        .bands(band_rows * g.w)
        .into_par_iter()
        .map_init(
            PaddedBand::default,
            |band: &mut PaddedBand, (img, y0, rows)| {
                band.fill(&x[img * image..(img + 1) * image], g, y0, rows);
                let mut part = vec![0.0f32; g.c_out * k];
                let dy_img = &dy[img * g.c_out * hw..(img + 1) * g.c_out * hw];
                assert!(dy_img.len() >= g.c_out * hw && band.data.len() >= g.c_in * band.plane);
                for co0 in (0..g.c_out).step_by(GROUP) {
                    let group = GROUP.min(g.c_out - co0);
                    for ci in 0..g.c_in {
                        let mut sums = [[0.0f32; 9]; GROUP];
                        // SAFETY: AVX-512F is present (asserted above). `accumulate` reads rows
                        // y0..y0 + rows of channels co0..co0 + group of `dy_img` (masked to w
                        // columns) and the padded rows of channel ci of `band`, all inside the
                        // slices (lengths checked above; the band's stride leaves room for whole
                        // vectors).
                        unsafe {
                            let dy0 = dy_img.as_ptr().add(co0 * hw + y0 * g.w);
                            let x0 = band.data.as_ptr().add(ci * band.plane);
                            match group {
                                3 => accumulate::<3>(dy0, x0, g, band.stride, rows, &mut sums),
                                2 => accumulate::<2>(dy0, x0, g, band.stride, rows, &mut sums),
                                _ => accumulate::<1>(dy0, x0, g, band.stride, rows, &mut sums),
                            }
                        }
                        for (j, taps) in sums.iter().enumerate().take(group) {
                            part[(co0 + j) * k + ci * 9..(co0 + j) * k + ci * 9 + 9].copy_from_slice(taps);
                        }
                    }
                }
                part
            },
        )
        .collect();
    sum_in_order(&partials, g.c_out * k)
}

/// `sums[j][tap] = Σ over the band of dy[j](p) · x(p + tap)` for G output channels and one
/// input channel: `dy` points at channel 0's first band row (channels `hw` apart, rows `w`
/// apart), `x` at the padded input plane (rows `stride` apart, the band's first output row at
/// padded row d).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn accumulate<const G: usize>(dy: *const f32, x: *const f32, g: &Geometry, stride: usize, rows: usize, sums: &mut [[f32; 9]; GROUP]) {
    use std::arch::x86_64::*;
    let (w, hw, d) = (g.w, g.hw(), g.dilation);
    let vectors = w.div_ceil(LANES);
    let tail_mask = tail_mask(w - (vectors - 1) * LANES);
    let mut acc = [[_mm512_setzero_ps(); 9]; G];
    for r in 0..rows {
        for v in 0..vectors {
            let mask = if v + 1 == vectors { tail_mask } else { u16::MAX };
            let mut dyv = [_mm512_setzero_ps(); G];
            for (j, dv) in dyv.iter_mut().enumerate() {
                // Lanes past the row's end load as 0, so the input there does not count.
                *dv = _mm512_maskz_loadu_ps(mask, dy.add(j * hw + r * w + v * LANES));
            }
            let base = x.add(r * stride + v * LANES);
            for ky in 0..3 {
                for kx in 0..3 {
                    let xv = _mm512_loadu_ps(base.add(ky * d * stride + kx * d));
                    for (a, dv) in acc.iter_mut().zip(&dyv) {
                        a[ky * 3 + kx] = _mm512_fmadd_ps(*dv, xv, a[ky * 3 + kx]);
                    }
                }
            }
        }
    }
    for (s, a) in sums.iter_mut().zip(&acc) {
        for (t, v) in a.iter().enumerate() {
            s[t] = _mm512_reduce_add_ps(*v);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn accumulate<const G: usize>(_: *const f32, _: *const f32, _: &Geometry, _: usize, _: usize, _: &mut [[f32; 9]; GROUP]) {
    unreachable!("direct conv is only enabled on x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conv_direct::tests::{assert_kernel_grad_matches_im2col, assert_kernel_grad_same_on_one_thread, KERNEL_GRAD_CASES};

    #[test]
    fn matches_the_im2col_kernel_gradient_on_every_edge_case() {
        if !avx512_present() {
            eprintln!("no AVX-512F here: the direct path is never taken, nothing to compare");
            return;
        }
        assert_kernel_grad_matches_im2col(kernel_grad, &KERNEL_GRAD_CASES);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !avx512_present() {
            return;
        }
        assert_kernel_grad_same_on_one_thread(kernel_grad);
    }
}
