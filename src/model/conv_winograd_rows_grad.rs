//! The kernel gradient of the 3×3 "same" convolution by the row Winograd F(2, 3) of
//! [`super::conv_winograd_rows`], for f32 on AVX-512 CPUs.
//!
//! The forward gives output rows y and y + d as `[y₀, y₁] = Aᵀ m`, `mₖ = uₖ · tₖ` with
//! `u = G g` (each kernel column) and `t = Bᵀ r` (the four input rows). Its gradient with respect
//! to the kernel column is `dg = Gᵀ M`, `Mₖ = Σ dmₖ · tₖ` with `dm = A [dy₀, dy₁]`:
//! `dm₀ = dy₀, dm₁ = dy₀ + dy₁, dm₂ = dy₀ − dy₁, dm₃ = −dy₁`, and
//! `dg₀ = M₀ + (M₁ + M₂)/2, dg₁ = (M₁ − M₂)/2, dg₂ = (M₁ + M₂)/2 + M₃`. Summed over the row
//! pairs of a band, each `Mₖ[kx]` needs 4 · 3 products per pixel pair where the direct gradient
//! ([`super::conv_direct_grad`]) needs 2 · 9. [`accumulate8`] keeps 8 output channels × 3 kx = 24
//! accumulators of 16 pixels in registers: per 16 pixels it loads 3 shifted transformed input
//! vectors and 8 transformed gradient vectors for 24 FMAs.
//!
//! As in the direct gradient, each band's sums go to their own buffer and the buffers are added
//! in band order, so the result does not depend on the thread count.
#![allow(unsafe_code)]

use rayon::prelude::*;

use super::conv_cpu::{sum_in_order, Geometry};
use super::conv_direct::{avx512_present, tail_mask, PaddedBand, LANES};
#[cfg(target_arch = "x86_64")]
use super::conv_winograd_rows::transform_input_rows;
use super::conv_winograd_rows::pair_row;

/// Output channels whose 3 kx sums [`accumulate8`] keeps in registers: 24 accumulators, 3
/// input and 5 gradient vectors fill the 32 registers. (The compiler spilled them from
/// intrinsics code even at 6, so the full group is written in assembly.)
const GROUP: usize = 8;
/// Output pixels per band: enough row pairs to amortise the horizontal sums of the
/// accumulators, few enough that a band's transformed rows (about 4 · (c_in + c_out) · pixels
/// / 2 values, 1 MB at 64 + 64 channels) stay in L2. N 12/C 64 training step, 2 threads:
/// 1.31 s at 4096, 1.26–1.28 at 2048, 1.30 at 1024.
const BAND_PIXELS: usize = 2048;

/// A band's transformed input rows `[c_in][k][pair][stride]` and transformed output gradient
/// rows `[c_out][k][pair][vectors · 16]` (zeros past the row's end and for rows past the band).
#[derive(Default)]
struct Buffers {
    band: PaddedBand,
    x_t: Vec<f32>,
    dy_t: Vec<f32>,
}

/// dW = Σ dy ⊗ shifted x: `x` (n, c_in, h, w), `dy` (n, c_out, h, w) → (c_out, c_in·9).
/// Needs AVX-512F (asserted); [`super::conv_winograd_rows::suits`] says when to take it.
pub(super) fn kernel_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    assert!(avx512_present(), "row Winograd conv needs AVX-512F");
    let hw = g.hw();
    let k = 9 * g.c_in;
    let image = g.c_in * hw;
    let d = g.dilation;
    let band_rows = BAND_PIXELS.div_ceil(g.w.max(1)).max(4 * d).next_multiple_of(2 * d);
    let partials: Vec<Vec<f32>> = g
        .bands(band_rows * g.w)
        .into_par_iter()
        .map_init(Buffers::default, |buf: &mut Buffers, (img, y0, rows)| {
            let rows_ext = rows.next_multiple_of(2 * d);
            buf.band.fill(&x[img * image..(img + 1) * image], g, y0, rows_ext);
            let dy_img = &dy[img * g.c_out * hw..(img + 1) * g.c_out * hw];
            let mut part = vec![0.0f32; g.c_out * k];
            // SAFETY: AVX-512F is present (asserted above); `band_grad` reads the padded band,
            // rows y0..y0 + rows of `dy_img`, and its own buffers, inside their bounds.
            unsafe { band_grad(buf, dy_img, g, y0, rows, &mut part) };
            part
        })
        .collect();
    sum_in_order(&partials, g.c_out * k)
}

/// Adds one band's kernel gradient into `part` (c_out, c_in·9), `buf.band` already filled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn band_grad(buf: &mut Buffers, dy_img: &[f32], g: &Geometry, y0: usize, rows: usize, part: &mut [f32]) {
    use std::arch::x86_64::*;
    let (w, hw, d) = (g.w, g.hw(), g.dilation);
    let rows_ext = rows.next_multiple_of(2 * d);
    let pairs = rows_ext / 2;
    let stride = buf.band.stride;
    let vectors = w.div_ceil(LANES);
    let wv = vectors * LANES;
    let x_plane = pairs * stride;
    let dy_plane = pairs * wv;
    buf.x_t.resize(g.c_in * 4 * x_plane, 0.0);
    buf.dy_t.resize(g.c_out * 4 * dy_plane, 0.0);
    assert!(dy_img.len() >= g.c_out * hw && part.len() == g.c_out * g.c_in * 9);
    let band = &buf.band;
    for ci in 0..g.c_in {
        for p in 0..pairs {
            let y = pair_row(p, d);
            let src = band.data.as_ptr().add(ci * band.plane + y * stride);
            let rows4 = [0, 1, 2, 3].map(|k| src.add(k * d * stride));
            let out = [0, 1, 2, 3].map(|k| buf.x_t.as_mut_ptr().add((ci * 4 + k) * x_plane + p * stride));
            transform_input_rows(rows4, out, stride);
        }
    }
    let tail_mask = tail_mask(w - (vectors - 1) * LANES);
    let zero = _mm512_setzero_ps();
    let dy_t = buf.dy_t.as_mut_ptr();
    for co in 0..g.c_out {
        let src = dy_img.as_ptr().add(co * hw + y0 * w);
        for p in 0..pairs {
            let y = pair_row(p, d);
            let at = |k: usize| dy_t.add((co * 4 + k) * dy_plane + p * wv);
            for v in 0..vectors {
                let mask = if v + 1 == vectors { tail_mask } else { u16::MAX };
                // Lanes past the row's end and rows past the band load as 0.
                let a = if y < rows { _mm512_maskz_loadu_ps(mask, src.add(y * w + v * LANES)) } else { zero };
                let b = if y + d < rows { _mm512_maskz_loadu_ps(mask, src.add((y + d) * w + v * LANES)) } else { zero };
                _mm512_storeu_ps(at(0).add(v * LANES), a);
                _mm512_storeu_ps(at(1).add(v * LANES), _mm512_add_ps(a, b));
                _mm512_storeu_ps(at(2).add(v * LANES), _mm512_sub_ps(a, b));
                _mm512_storeu_ps(at(3).add(v * LANES), _mm512_sub_ps(zero, b));
            }
        }
    }
    let k9 = 9 * g.c_in;
    let args = SumArgs { pairs, vectors, stride, wv, co_stride: 4 * dy_plane, dilation: d };
    // Transformed row k outside the input channels, so the group's gradient rows of k stay
    // in L1 while every input channel's rows of k stream past them.
    let mut m = vec![[[[0.0f32; 3]; GROUP]; 4]; g.c_in];
    for co0 in (0..g.c_out).step_by(GROUP) {
        let group = GROUP.min(g.c_out - co0);
        for k in 0..4 {
            let dyt = buf.dy_t.as_ptr().add((co0 * 4 + k) * dy_plane);
            for (ci, mc) in m.iter_mut().enumerate() {
                let xt = buf.x_t.as_ptr().add((ci * 4 + k) * x_plane);
                mc[k] = match group {
                    8 => accumulate8(dyt, xt, &args),
                    7 => accumulate::<7>(dyt, xt, &args),
                    6 => accumulate::<6>(dyt, xt, &args),
                    5 => accumulate::<5>(dyt, xt, &args),
                    4 => accumulate::<4>(dyt, xt, &args),
                    3 => accumulate::<3>(dyt, xt, &args),
                    2 => accumulate::<2>(dyt, xt, &args),
                    _ => accumulate::<1>(dyt, xt, &args),
                };
            }
        }
        for (ci, mc) in m.iter().enumerate() {
            for j in 0..group {
                let taps = &mut part[(co0 + j) * k9 + ci * 9..][..9];
                for kx in 0..3 {
                    let (m0, m1, m2, m3) = (mc[0][j][kx], mc[1][j][kx], mc[2][j][kx], mc[3][j][kx]);
                    taps[kx] = m0 + 0.5 * (m1 + m2);
                    taps[3 + kx] = 0.5 * (m1 - m2);
                    taps[6 + kx] = 0.5 * (m1 + m2) + m3;
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn band_grad(_: &mut Buffers, _: &[f32], _: &Geometry, _: usize, _: usize, _: &mut [f32]) {
    unreachable!("the row Winograd conv is only enabled on x86-64")
}

/// What every [`accumulate`] call of a band shares.
struct SumArgs {
    pairs: usize,
    vectors: usize,
    /// Values per transformed input row.
    stride: usize,
    /// Values per transformed gradient row.
    wv: usize,
    /// Values between two output channels' transformed gradients.
    co_stride: usize,
    dilation: usize,
}

/// `sums[j][kx] = Σ over the band's pairs and pixels of dm[j](p) · t(p + kx·d)` for G output
/// channels and one transformed row k of one input channel: `dyt` points at channel 0's
/// transformed gradient rows of k, `xt` at the input channel's transformed rows of k.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn accumulate<const G: usize>(dyt: *const f32, xt: *const f32, a: &SumArgs) -> [[f32; 3]; GROUP] {
    use std::arch::x86_64::*;
    let d = a.dilation;
    let mut acc = [[_mm512_setzero_ps(); 3]; G];
    // One flat loop over the band's vectors (nested loops over pairs and vectors made the
    // compiler rotate the accumulators through registers and the stack). The gradient rows
    // are contiguous; the input rows are `stride` apart, so the input offset jumps by
    // `stride - wv` after a row's last vector. Offsets step by addition, not by a division
    // by `vectors` per vector.
    let n = a.pairs * a.vectors;
    let row_jump = a.stride - a.wv;
    let (mut x_off, mut v) = (0usize, 0usize);
    let mut i = 0;
    while i < n {
        let xb = xt.add(x_off);
        let db = dyt.add(i * LANES);
        v += 1;
        let last = v == a.vectors;
        x_off += LANES + if last { row_jump } else { 0 };
        v = if last { 0 } else { v };
        let x0 = _mm512_loadu_ps(xb);
        let x1 = _mm512_loadu_ps(xb.add(d));
        let x2 = _mm512_loadu_ps(xb.add(2 * d));
        let mut j = 0;
        while j < G {
            let dv = _mm512_loadu_ps(db.add(j * a.co_stride));
            acc[j][0] = _mm512_fmadd_ps(dv, x0, acc[j][0]);
            acc[j][1] = _mm512_fmadd_ps(dv, x1, acc[j][1]);
            acc[j][2] = _mm512_fmadd_ps(dv, x2, acc[j][2]);
            j += 1;
        }
        i += 1;
    }
    let mut sums = [[0.0f32; 3]; GROUP];
    for (s, row) in sums.iter_mut().zip(&acc) {
        for (t, v) in s.iter_mut().zip(row) {
            *t = _mm512_reduce_add_ps(*v);
        }
    }
    sums
}

/// [`accumulate`] for a full group of 8 output channels, in assembly: 24 accumulators, 3 input
/// and 5 gradient registers, 11 loads per 24 FMAs. The compiler's code for the intrinsics
/// version (with 6 or 8 channels) moved the accumulators round a chain of registers and through
/// the stack on every iteration; here they stay put.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn accumulate8(dyt: *const f32, xt: *const f32, a: &SumArgs) -> [[f32; 3]; GROUP] {
    use std::arch::x86_64::*;
    // The loops count down from `pairs` and `vectors` and test after the body.
    assert!(a.pairs > 0 && a.vectors > 0, "an empty band");
    let mut acc = [0.0f32; 3 * GROUP * LANES];
    let cs = a.co_stride * 4;
    // SAFETY: the caller hands a full group: 8 channels of `pairs * wv` gradient values each,
    // `co_stride` apart, and input rows of `stride ≥ wv + 2d` values; `acc` holds 24 vectors.
    std::arch::asm!(
        "vpxord zmm0, zmm0, zmm0",
        "vpxord zmm1, zmm1, zmm1",
        "vpxord zmm2, zmm2, zmm2",
        "vpxord zmm3, zmm3, zmm3",
        "vpxord zmm4, zmm4, zmm4",
        "vpxord zmm5, zmm5, zmm5",
        "vpxord zmm6, zmm6, zmm6",
        "vpxord zmm7, zmm7, zmm7",
        "vpxord zmm8, zmm8, zmm8",
        "vpxord zmm9, zmm9, zmm9",
        "vpxord zmm10, zmm10, zmm10",
        "vpxord zmm11, zmm11, zmm11",
        "vpxord zmm12, zmm12, zmm12",
        "vpxord zmm13, zmm13, zmm13",
        "vpxord zmm14, zmm14, zmm14",
        "vpxord zmm15, zmm15, zmm15",
        "vpxord zmm16, zmm16, zmm16",
        "vpxord zmm17, zmm17, zmm17",
        "vpxord zmm18, zmm18, zmm18",
        "vpxord zmm19, zmm19, zmm19",
        "vpxord zmm20, zmm20, zmm20",
        "vpxord zmm21, zmm21, zmm21",
        "vpxord zmm22, zmm22, zmm22",
        "vpxord zmm23, zmm23, zmm23",
        "2:",
        "mov {v}, {vectors}",
        "3:",
        "vmovups zmm24, [{x}]",
        "vmovups zmm25, [{x} + {d}]",
        "vmovups zmm26, [{x} + {d}*2]",
        "vmovups zmm27, [{dy}]",
        "vfmadd231ps zmm0, zmm27, zmm24",
        "vfmadd231ps zmm1, zmm27, zmm25",
        "vfmadd231ps zmm2, zmm27, zmm26",
        "vmovups zmm28, [{dy} + {cs}]",
        "vfmadd231ps zmm3, zmm28, zmm24",
        "vfmadd231ps zmm4, zmm28, zmm25",
        "vfmadd231ps zmm5, zmm28, zmm26",
        "vmovups zmm29, [{dy} + {cs}*2]",
        "vfmadd231ps zmm6, zmm29, zmm24",
        "vfmadd231ps zmm7, zmm29, zmm25",
        "vfmadd231ps zmm8, zmm29, zmm26",
        "vmovups zmm30, [{dy} + {cs3}]",
        "vfmadd231ps zmm9, zmm30, zmm24",
        "vfmadd231ps zmm10, zmm30, zmm25",
        "vfmadd231ps zmm11, zmm30, zmm26",
        "vmovups zmm31, [{dy4}]",
        "vfmadd231ps zmm12, zmm31, zmm24",
        "vfmadd231ps zmm13, zmm31, zmm25",
        "vfmadd231ps zmm14, zmm31, zmm26",
        "vmovups zmm27, [{dy4} + {cs}]",
        "vfmadd231ps zmm15, zmm27, zmm24",
        "vfmadd231ps zmm16, zmm27, zmm25",
        "vfmadd231ps zmm17, zmm27, zmm26",
        "vmovups zmm28, [{dy4} + {cs}*2]",
        "vfmadd231ps zmm18, zmm28, zmm24",
        "vfmadd231ps zmm19, zmm28, zmm25",
        "vfmadd231ps zmm20, zmm28, zmm26",
        "vmovups zmm29, [{dy4} + {cs3}]",
        "vfmadd231ps zmm21, zmm29, zmm24",
        "vfmadd231ps zmm22, zmm29, zmm25",
        "vfmadd231ps zmm23, zmm29, zmm26",
        "add {x}, 64",
        "add {dy}, 64",
        "add {dy4}, 64",
        "dec {v}",
        "jnz 3b",
        "add {x}, {jump}",
        "dec {pairs}",
        "jnz 2b",
        "vmovups [{out} + 0], zmm0",
        "vmovups [{out} + 64], zmm1",
        "vmovups [{out} + 128], zmm2",
        "vmovups [{out} + 192], zmm3",
        "vmovups [{out} + 256], zmm4",
        "vmovups [{out} + 320], zmm5",
        "vmovups [{out} + 384], zmm6",
        "vmovups [{out} + 448], zmm7",
        "vmovups [{out} + 512], zmm8",
        "vmovups [{out} + 576], zmm9",
        "vmovups [{out} + 640], zmm10",
        "vmovups [{out} + 704], zmm11",
        "vmovups [{out} + 768], zmm12",
        "vmovups [{out} + 832], zmm13",
        "vmovups [{out} + 896], zmm14",
        "vmovups [{out} + 960], zmm15",
        "vmovups [{out} + 1024], zmm16",
        "vmovups [{out} + 1088], zmm17",
        "vmovups [{out} + 1152], zmm18",
        "vmovups [{out} + 1216], zmm19",
        "vmovups [{out} + 1280], zmm20",
        "vmovups [{out} + 1344], zmm21",
        "vmovups [{out} + 1408], zmm22",
        "vmovups [{out} + 1472], zmm23",
        x = inout(reg) xt => _,
        dy = inout(reg) dyt => _,
        dy4 = inout(reg) dyt.add(4 * a.co_stride) => _,
        cs = in(reg) cs,
        cs3 = in(reg) 3 * cs,
        d = in(reg) 4 * a.dilation,
        v = out(reg) _,
        vectors = in(reg) a.vectors,
        pairs = inout(reg) a.pairs => _,
        jump = in(reg) 4 * (a.stride - a.wv),
        out = in(reg) acc.as_mut_ptr(),
        out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _, out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _, out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _, out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _, out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
        options(nostack),
    );
    let mut sums = [[0.0f32; 3]; GROUP];
    for (j, s) in sums.iter_mut().enumerate() {
        for (kx, t) in s.iter_mut().enumerate() {
            *t = _mm512_reduce_add_ps(_mm512_loadu_ps(acc.as_ptr().add((3 * j + kx) * LANES)));
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conv_direct::tests::{assert_kernel_grad_matches_im2col, assert_kernel_grad_same_on_one_thread, KERNEL_GRAD_CASES};

    #[test]
    fn matches_the_im2col_kernel_gradient_on_every_edge_case() {
        if !avx512_present() {
            eprintln!("no AVX-512F here: the row Winograd path is never taken, nothing to compare");
            return;
        }
        // The direct gradient's cases, a height that ends inside a group of 2·d rows, and
        // channels across whole groups of 8.
        let mut cases = KERNEL_GRAD_CASES.to_vec();
        cases.extend([(1, 6, 4, 41, 33, 8), (2, 32, 24, 37, 64, 3)]);
        assert_kernel_grad_matches_im2col(kernel_grad, &cases);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !avx512_present() {
            return;
        }
        assert_kernel_grad_same_on_one_thread(kernel_grad);
    }
}
