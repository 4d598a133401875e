//! The 3×3 "same" convolution by Winograd's minimal filtering F(2×2, 3×3): 16 products per
//! 2×2 output tile and channel pair instead of 36, for the wide undilated layers where the
//! products dominate.
//!
//! For a 4×4 input tile d and a kernel g, the 2×2 output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`
//! (Lavin and Gray, *Fast Algorithms for Convolutional Neural Networks*, 2016). Summed over
//! input channels, each of the 16 positions of the transformed tile is a matrix product
//! `M_k [c_out, tiles] = U_k [c_out, c_in] · V_k [c_in, tiles]`, which runs through the gemm
//! kernels of [`super::gemm`]. The transforms use only additions (and halvings for the kernel),
//! so the result differs from the direct sum by a few rounding steps, not more.
//!
//! [`suits`] takes this path for dilation 1 and at least [`MIN_CHANNELS`] input and output
//! channels. Measured per layer (bench/RESULTS.md, "Winograd F(2×2, 3×3)"), it beats the direct
//! AVX-512 kernel by 10–20 % at 64→64 on 256² and loses at 32 channels (the transforms cost as
//! much as the products saved). Dilated layers keep the direct kernel: run on the d² polyphase
//! sub-images (every d-th row and column, commit 6f61510), Winograd lost 15–45 % to it at every
//! dilation > 1 (the strided gathers and scatters and the narrower sub-images).
//! Since the row Winograd of [`super::conv_winograd_rows`] (F(2, 3) along the rows only, no
//! gathers) beat this path at 64→64 on 256² too (193 against 164–174 GFLOP/s), this one runs only
//! where that one does not: rows narrower than 32 px or no AVX-512F.
//! `CSGIS_CONV=direct` or `im2col` turns the path off.

use rayon::prelude::*;

use super::conv_cpu::{conv_mode, ConvMode, Epilogue, Geometry, OutPtr};
use super::gemm::{gemm_into, MatMut, MatRef};

/// Narrower layers go to the direct or im2col kernels: with few channels the transforms, not
/// the products, set the pace (measured per shape, bench/RESULTS.md "Winograd F(2×2, 3×3)").
pub(super) const MIN_CHANNELS: usize = 64;

/// Transformed tiles per work unit (whole tile rows, at least one): V and M
/// of a unit, (c_in + c_out) · 16 · tiles values, stay in L2 (1 MB at 64 + 64 channels).
const BAND_TILES: usize = 128;

/// Whether the Winograd forward takes this convolution: [`enabled`], dilation 1, and at least
/// [`MIN_CHANNELS`] input and output channels.
pub(super) fn suits(g: &Geometry) -> bool {
    enabled() && g.dilation == 1 && g.c_in >= MIN_CHANNELS && g.c_out >= MIN_CHANNELS
}

/// Whether the path is on: `CSGIS_CONV` is not `im2col`, `direct` or `rows` ([`conv_mode`]).
pub(super) fn enabled() -> bool {
    conv_mode() == ConvMode::All
}

/// `U = G g Gᵀ` for every (co, ci), laid out `[16][c_out][c_in]` (position k = 4a + b of the
/// 4×4 transformed kernel first), computed in f64.
fn transform_kernel<T: Float>(weight: &[T], g: &Geometry) -> Vec<T> {
    let (c_in, c_out) = (g.c_in, g.c_out);
    let mut u = vec![T::zero(); 16 * c_out * c_in];
    for co in 0..c_out {
        for ci in 0..c_in {
            let taps = &weight[(co * c_in + ci) * 9..][..9];
            let k: [f64; 9] = std::array::from_fn(|t| taps[t].to_f64());
            // G g: 4 rows of 3.
            let mut gg = [[0.0f64; 3]; 4];
            for c in 0..3 {
                let (g0, g1, g2) = (k[c], k[3 + c], k[6 + c]);
                gg[0][c] = g0;
                gg[1][c] = 0.5 * (g0 + g1 + g2);
                gg[2][c] = 0.5 * (g0 - g1 + g2);
                gg[3][c] = g2;
            }
            // (G g) Gᵀ: 4 × 4.
            for (a, row) in gg.iter().enumerate() {
                let [g0, g1, g2] = *row;
                let out = [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2];
                for (b, &v) in out.iter().enumerate() {
                    u[((a * 4 + b) * c_out + co) * c_in + ci] = T::from_f64(v);
                }
            }
        }
    }
    u
}

/// The float types the transforms run on (f32, and f64 for the tests).
pub(super) trait Float: candle_core::WithDType + Default {}
impl Float for f32 {}
impl Float for f64 {}

/// One work unit: tile rows `i0 .. i0 + rows` (output rows 2·i0 ..) of image `img`.
#[derive(Debug, Clone, Copy)]
struct Unit {
    img: usize,
    i0: usize,
    rows: usize,
}

fn units(g: &Geometry) -> Vec<Unit> {
    let per = (BAND_TILES / g.w.div_ceil(2).max(1)).max(1);
    let th = g.h.div_ceil(2);
    (0..g.n)
        .flat_map(|img| (0..th).step_by(per).map(move |i0| Unit { img, i0, rows: per.min(th - i0) }))
        .collect()
}

/// Scratch buffers of one thread.
#[derive(Default)]
struct Scratch<T> {
    /// Four input rows de-interleaved: `[4][tw + 1]` even padded columns, then odd.
    even: Vec<T>,
    odd: Vec<T>,
    /// The same after Bᵀ down the rows.
    mix_even: Vec<T>,
    mix_odd: Vec<T>,
    /// `[16][c_in][tiles]`.
    v: Vec<T>,
    /// `[16][c_out][tiles]`.
    m: Vec<T>,
    /// Aᵀ down the rows of M: `[8][tw]`.
    s: Vec<T>,
    /// The four outputs of each tile of a tile row: `[4][tw]`.
    y: Vec<T>,
}

/// y = epilogue(conv(x, w)): `x` (n, c_in, h, w), `weight` (c_out, c_in·9) → (n, c_out, h, w),
/// dilation 1 (asserted; [`suits`] says when to take it).
#[allow(unsafe_code)]
pub(super) fn forward<T: Float>(x: &[T], weight: &[T], g: &Geometry, epilogue: Epilogue<'_, T>) -> Vec<T> {
    assert_eq!(g.dilation, 1, "the Winograd forward runs undilated kernels only");
    let u = transform_kernel(weight, g);
    let len = g.n * g.c_out * g.hw();
    // Not zero-filled: the units together write every output value.
    let mut out: Vec<T> = Vec::with_capacity(len);
    let out_ptr = OutPtr(out.as_mut_ptr());
    units(g).into_par_iter().for_each_init(Scratch::default, |s: &mut Scratch<T>, unit| {
        run_unit(x, &u, g, unit, epilogue, s, out_ptr.get(), len);
    });
    // SAFETY: the units cover every image and tile row, and each writes every pixel of its
    // rows, so all `len` values are set.
    unsafe { out.set_len(len) };
    out
}

/// Input transform, products and output transform of one unit.
#[allow(unsafe_code, clippy::too_many_arguments)]
fn run_unit<T: Float>(x: &[T], u: &[T], g: &Geometry, unit: Unit, ep: Epilogue<'_, T>, s: &mut Scratch<T>, out: *mut T, len: usize) {
    let tw = g.w.div_ceil(2);
    let tiles = unit.rows * tw;
    let (c_in, c_out, hw) = (g.c_in, g.c_out, g.hw());
    let pad = tw + 1;
    let zero = T::zero();
    for buf in [&mut s.even, &mut s.odd, &mut s.mix_even, &mut s.mix_odd] {
        buf.resize(4 * pad, zero);
    }
    s.v.resize(16 * c_in * tiles, zero);
    s.m.resize(16 * c_out * tiles, zero);
    s.s.resize(8 * tw, zero);
    s.y.resize(4 * tw, zero);
    let x_img = &x[unit.img * c_in * hw..(unit.img + 1) * c_in * hw];
    let k_stride = c_in * tiles;
    for ci in 0..c_in {
        let plane = &x_img[ci * hw..(ci + 1) * hw];
        for ti in 0..unit.rows {
            let i = unit.i0 + ti;
            for k in 0..4 {
                // Input row 2i − 1 + k split into even and odd padded columns (padded column
                // c + 1 is column c); column −1 and columns past w are 0.
                let even = &mut s.even[k * pad..(k + 1) * pad];
                let odd = &mut s.odd[k * pad..(k + 1) * pad];
                let r = (2 * i + k) as isize - 1;
                if r < 0 || r as usize >= g.h {
                    even.fill(zero);
                    odd.fill(zero);
                } else {
                    deinterleave(&plane[r as usize * g.w..][..g.w], even, odd);
                }
            }
            // Bᵀ down the rows, for the even and the odd columns.
            for (rows, mixed) in [(&s.even, &mut s.mix_even), (&s.odd, &mut s.mix_odd)] {
                let (m0, rest) = mixed.split_at_mut(pad);
                let (m1, rest) = rest.split_at_mut(pad);
                let (m2, m3) = rest.split_at_mut(pad);
                bt(&rows[..pad], &rows[pad..2 * pad], &rows[2 * pad..3 * pad], &rows[3 * pad..], m0, m1, m2, m3);
            }
            // B along the columns: tile t takes even t, odd t, even t + 1, odd t + 1.
            for a in 0..4 {
                let (e, o) = (&s.mix_even[a * pad..(a + 1) * pad], &s.mix_odd[a * pad..(a + 1) * pad]);
                let at = 4 * a * k_stride + ci * tiles + ti * tw;
                let (v0, rest) = s.v[at..].split_at_mut(k_stride);
                let (v1, rest) = rest.split_at_mut(k_stride);
                let (v2, v3) = rest.split_at_mut(k_stride);
                bt(&e[..tw], &o[..tw], &e[1..], &o[1..], &mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
            }
        }
    }
    for k in 0..16 {
        let lhs = MatRef { data: &u[k * c_out * c_in..(k + 1) * c_out * c_in], rows: c_out, cols: c_in, row_stride: c_in, col_stride: 1 };
        let rhs = MatRef { data: &s.v[k * c_in * tiles..(k + 1) * c_in * tiles], rows: c_in, cols: tiles, row_stride: tiles, col_stride: 1 };
        let dst = MatMut::new(&mut s.m);
        gemm_into(&dst, k * c_out * tiles, tiles, lhs, rhs, false);
    }
    let m_stride = c_out * tiles;
    for co in 0..c_out {
        let bias = ep.bias.map_or(zero, |b| b[co]);
        for ti in 0..unit.rows {
            let q = |k: usize| &s.m[k * m_stride + co * tiles + ti * tw..][..tw];
            // Aᵀ down the rows of each 4×4 tile, then A along its columns, then bias and ReLU.
            {
                let (s0, s1) = s.s.split_at_mut(4 * tw);
                for b in 0..4 {
                    at(q(b), q(4 + b), q(8 + b), q(12 + b), &mut s0[b * tw..][..tw], &mut s1[b * tw..][..tw], zero, false);
                }
            }
            let (y01, y23) = s.y.split_at_mut(2 * tw);
            for (half, y) in [(0, y01), (1, y23)] {
                let sh = &s.s[half * 4 * tw..(half + 1) * 4 * tw];
                let (ya, yb) = y.split_at_mut(tw);
                at(&sh[..tw], &sh[tw..2 * tw], &sh[2 * tw..3 * tw], &sh[3 * tw..], ya, yb, bias, ep.relu);
            }
            for a in 0..2 {
                let r = 2 * (unit.i0 + ti) + a;
                if r >= g.h {
                    continue;
                }
                let row = (unit.img * c_out + co) * hw + r * g.w;
                assert!(row + g.w <= len, "output row past the end");
                // SAFETY: the row lies inside the output (checked above) and belongs to this
                // unit alone (its image and tile row), so no other thread writes it.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.add(row), g.w) };
                interleave(&s.y[2 * a * tw..][..tw], &s.y[(2 * a + 1) * tw..][..tw], dst);
            }
        }
    }
}

crate::multiversion! {
    /// `odd[t] = line[2t]`, `even[t + 1] = line[2t + 1]` (column c of the row at padded
    /// column c + 1), zeros everywhere else.
    fn deinterleave<T: Float>(line: &[T], even: &mut [T], odd: &mut [T]) -> () {
        let zero = T::zero();
        let n = line.len() / 2;
        let (pairs, rest) = line.split_at(2 * n);
        {
            let (odd, even) = (&mut odd[..n], &mut even[1..=n]);
            for t in 0..n {
                odd[t] = pairs[2 * t];
                even[t] = pairs[2 * t + 1];
            }
        }
        even[0] = zero;
        let mut o = n;
        if let [last] = rest {
            odd[n] = *last;
            o += 1;
        }
        odd[o..].fill(zero);
        even[n + 1..].fill(zero);
    }
}

crate::multiversion! {
    /// `dst[2t] = even[t]`, `dst[2t + 1] = odd[t]` for every t that fits `dst`.
    fn interleave<T: Float>(even: &[T], odd: &[T], dst: &mut [T]) -> () {
        let n = dst.len() / 2;
        let (pairs, rest) = dst.split_at_mut(2 * n);
        let (e, o) = (&even[..n], &odd[..n]);
        for t in 0..n {
            pairs[2 * t] = e[t];
            pairs[2 * t + 1] = o[t];
        }
        if let [last] = rest {
            *last = even[n];
        }
    }
}

crate::multiversion! {
    /// Bᵀ applied elementwise to four sequences: (a − c, b + c, c − b, b − d).
    #[allow(clippy::too_many_arguments)]
    fn bt<T: Float>(a: &[T], b: &[T], c: &[T], d: &[T], o0: &mut [T], o1: &mut [T], o2: &mut [T], o3: &mut [T]) -> () {
        let n = o0.len();
        let (a, b, c, d) = (&a[..n], &b[..n], &c[..n], &d[..n]);
        let (o1, o2, o3) = (&mut o1[..n], &mut o2[..n], &mut o3[..n]);
        for i in 0..n {
            o0[i] = a[i] - c[i];
            o1[i] = b[i] + c[i];
            o2[i] = c[i] - b[i];
            o3[i] = b[i] - d[i];
        }
    }
}

crate::multiversion! {
    /// Aᵀ applied elementwise to four sequences, plus `bias`, then a ReLU if `relu`:
    /// (a + b + c, b − c − d).
    #[allow(clippy::too_many_arguments)]
    fn at<T: Float>(a: &[T], b: &[T], c: &[T], d: &[T], o0: &mut [T], o1: &mut [T], bias: T, relu: bool) -> () {
        let n = o0.len();
        let (a, b, c, d, o1) = (&a[..n], &b[..n], &c[..n], &d[..n], &mut o1[..n]);
        let zero = T::zero();
        for i in 0..n {
            let (p, q) = (a[i] + b[i] + c[i] + bias, b[i] - c[i] - d[i] + bias);
            o0[i] = if relu && p < zero { zero } else { p };
            o1[i] = if relu && q < zero { zero } else { q };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conv_cpu::forward as im2col_forward;
    use crate::model::conv_direct::tests::{assert_same_on_one_thread, random};

    #[test]
    fn matches_the_im2col_path_in_f64_on_every_edge_case() {
        // Odd sizes (partial tiles), a one-pixel image, single rows and columns, channel
        // counts off any block size, several units per image (w = 300: one tile row each).
        let cases = [
            (1, 3, 2, 1, 1, 1),
            (2, 4, 5, 7, 9, 1),
            (1, 5, 3, 16, 16, 1),
            (1, 2, 4, 5, 300, 1),
            (2, 3, 3, 11, 13, 1),
            (1, 4, 2, 9, 1, 1),
            (1, 2, 2, 1, 6, 1),
            (1, 6, 7, 33, 47, 1),
        ];
        for (i, &(n, c_in, c_out, h, w, dilation)) in cases.iter().enumerate() {
            let g = Geometry { n, c_in, c_out, h, w, dilation };
            let x: Vec<f64> = random(n * c_in * h * w, i as u64).iter().map(|&v| f64::from(v)).collect();
            let k: Vec<f64> = random(c_out * c_in * 9, 100 + i as u64).iter().map(|&v| f64::from(v)).collect();
            let b: Vec<f64> = random(c_out, 200 + i as u64).iter().map(|&v| f64::from(v)).collect();
            for (bias, relu) in [(None, false), (Some(&b[..]), true)] {
                let ep = Epilogue { bias, relu };
                let ours = forward(&x, &k, &g, ep);
                let theirs = im2col_forward(&x, &k, &g, ep);
                let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(diff < 1e-12, "case {i} {:?}: {diff}", (n, c_in, c_out, h, w, dilation));
            }
        }
    }

    #[test]
    fn f32_stays_within_the_parity_tolerance_at_64_channels() {
        let g = Geometry { n: 1, c_in: 64, c_out: 64, h: 37, w: 71, dilation: 1 };
        let x = random(g.n * g.c_in * g.hw(), 7);
        let k: Vec<f32> = random(g.c_out * g.c_in * 9, 8).iter().map(|v| v * 0.1).collect();
        let ours = forward(&x, &k, &g, Epilogue::NONE);
        let theirs = im2col_forward(&x, &k, &g, Epilogue::NONE);
        let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let g = Geometry { n: 2, c_in: 33, c_out: 40, h: 31, w: 300, dilation: 1 };
        let x = random(g.n * g.c_in * g.hw(), 1);
        let k = random(g.c_out * g.c_in * 9, 2);
        assert_same_on_one_thread(|| forward(&x, &k, &g, Epilogue::NONE));
    }
}
