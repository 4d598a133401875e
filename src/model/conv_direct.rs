//! A direct 3×3 "same" convolution for f32 on AVX-512 CPUs: no im2col block, no gemm packing.
//!
//! The im2col forward of [`super::conv_cpu`] copies every input value nine times into a column
//! block and the gemm crate then copies that block once more into its packed panels. Here the
//! input rows of a band are copied once, zero-padded, and a register-blocked kernel reads them
//! in place: each call of [`tile`] keeps `R × 8` accumulators of 16 pixels (R ≤ 3 vectors of
//! one output row, 8 output channels) and, for every input channel and tap, loads R input
//! vectors and broadcasts 8 weights: 11 loads for 24 FMAs. Bias and ReLU are applied to the
//! accumulators before the one store.
//!
//! Every output value is summed in the same order (input channel, then tap) whatever the band
//! split and thread count, so results are repeatable run to run. They differ from the im2col
//! path's in the last bits (another summation order).
//!
//! The path is chosen at run time: AVX-512F present and `CSGIS_CONV` not set to `im2col`
//! ([`direct_enabled`]). Everything else uses the im2col forward.
#![allow(unsafe_code)]

use rayon::prelude::*;

use super::conv_cpu::{avx2_forced, conv_mode, ConvMode, Epilogue, Geometry, OutPtr};

/// Output channels per register block.
pub(super) const OB: usize = 8;
/// f32 lanes per AVX-512 vector.
pub(super) const LANES: usize = 16;
/// Pixel vectors per register block (R ≤ this).
const RMAX: usize = 3;
/// Output pixels per band (whole rows, at least one, and at least 4 × the dilation so the
/// 2·d halo rows copied with a band add at most half): enough work per task to amortise the
/// padded copy.
const BAND_PIXELS: usize = 4096;

/// Narrower images go to the im2col path: a row of w < 32 pixels fills its last vector of 16
/// lanes only partly, and measured (bench/RESULTS.md, "Direct 3×3 convolution") the im2col
/// gemm ties or wins at 12² and 24².
pub(super) const MIN_WIDTH: usize = 32;

/// Whether [`forward`] should take this convolution: [`direct_enabled`] and rows of at least
/// `MIN_WIDTH` (32) pixels.
pub(super) fn suits(g: &Geometry) -> bool {
    g.w >= MIN_WIDTH && direct_enabled()
}

/// Which 3×3 forward f32 convolutions take on this machine, as the benches print it in their
/// headings: with AVX-512F `"row winograd (C ≥ 32, w ≥ 32) + winograd (d 1, C ≥ 64) + direct"`
/// (less as `CSGIS_CONV` turns paths off); with AVX2 and FMA only (or `CSGIS_CONV_ISA=avx2`)
/// `"winograd (d 1, C ≥ 64) + row winograd avx2 (C ≥ 32, w ≥ 32) + im2col"`; else
/// `"winograd (d 1, C ≥ 64) + im2col"` or `"im2col"`.
#[must_use]
pub fn conv_kernel() -> &'static str {
    let rows = direct_enabled() && super::conv_winograd_rows::enabled();
    let rows_avx2 = !avx512_kernels() && super::conv_winograd_rows_avx2::present() && super::conv_winograd_rows::enabled();
    if rows_avx2 {
        return if super::conv_winograd::enabled() {
            "winograd (d 1, C ≥ 64) + row winograd avx2 (C ≥ 32, w ≥ 32) + im2col"
        } else {
            "row winograd avx2 (C ≥ 32, w ≥ 32) + im2col"
        };
    }
    match (rows, super::conv_winograd::enabled(), direct_enabled()) {
        (true, true, _) => "row winograd (C ≥ 32, w ≥ 32) + winograd (d 1, C ≥ 64) + direct",
        (true, false, _) => "row winograd (C ≥ 32, w ≥ 32) + direct",
        (false, true, true) => "winograd (d 1, C ≥ 64) + direct",
        (false, true, false) => "winograd (d 1, C ≥ 64) + im2col",
        (false, false, true) => "direct",
        (false, false, false) => "im2col",
    }
}

/// Whether the direct kernel runs on this machine: AVX-512F is present and the environment
/// variable `CSGIS_CONV` is not `im2col` ([`conv_mode`]).
fn direct_enabled() -> bool {
    avx512_kernels() && conv_mode() >= ConvMode::Direct
}

/// Whether the AVX-512 convolution kernels (direct and row Winograd) may run: AVX-512F is
/// present and `CSGIS_CONV_ISA` is not `avx2`, which makes an AVX-512 machine take the paths
/// of an AVX2-only one ([`super::conv_winograd_rows_avx2`], im2col), to test and time them.
pub(super) fn avx512_kernels() -> bool {
    avx512_present() && !avx2_forced()
}

pub(super) fn avx512_present() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The kernel (c_out, c_in, 3, 3) regrouped as `[block][c_in][tap][8]`, zeros past c_out, so
/// the 8 weights one tap broadcasts are adjacent.
fn pack_weights(weight: &[f32], g: &Geometry) -> Vec<f32> {
    let blocks = g.c_out.div_ceil(OB);
    let mut packed = vec![0.0; blocks * g.c_in * 9 * OB];
    for co in 0..g.c_out {
        let (b, o) = (co / OB, co % OB);
        for ci in 0..g.c_in {
            for tap in 0..9 {
                packed[((b * g.c_in + ci) * 9 + tap) * OB + o] = weight[(co * g.c_in + ci) * 9 + tap];
            }
        }
    }
    packed
}

/// Zero-padded copy of input rows `y0 − d .. y0 + rows + d` of one image, every channel: rows
/// of `stride` values, the image's column 0 at offset d. `stride` leaves room for the last
/// vector of a row to be loaded whole.
#[derive(Default)]
pub(super) struct PaddedBand {
    /// `c_in` planes of `plane` values.
    pub(super) data: Vec<f32>,
    /// Values per padded row.
    pub(super) stride: usize,
    /// Values per padded plane.
    pub(super) plane: usize,
}

impl PaddedBand {
    /// Values per padded row: w rounded up to whole vectors, plus 2·d, so the last vector of a
    /// row can be loaded whole at every tap.
    pub(super) fn stride_for(g: &Geometry) -> usize {
        g.w.div_ceil(LANES) * LANES + 2 * g.dilation
    }

    /// Copies rows `y0 − d .. y0 + rows + d` of every channel of `x_img` (one image).
    pub(super) fn fill(&mut self, x_img: &[f32], g: &Geometry, y0: usize, rows: usize) {
        let d = g.dilation;
        self.stride = Self::stride_for(g);
        let prows = rows + 2 * d;
        self.plane = prows * self.stride;
        // Every value is written below (a copied row, its padding, or a row of zeros), so a
        // buffer kept from the last band is not cleared first.
        self.data.resize(g.c_in * self.plane, 0.0);
        for ci in 0..g.c_in {
            let src = &x_img[ci * g.hw()..(ci + 1) * g.hw()];
            let dst_plane = &mut self.data[ci * self.plane..(ci + 1) * self.plane];
            for (r, dst) in dst_plane.chunks_exact_mut(self.stride).enumerate() {
                let sy = (y0 + r) as isize - d as isize;
                if sy < 0 || sy >= g.h as isize {
                    dst.fill(0.0);
                    continue;
                }
                let sy = sy as usize;
                dst[..d].fill(0.0);
                dst[d..d + g.w].copy_from_slice(&src[sy * g.w..(sy + 1) * g.w]);
                dst[d + g.w..].fill(0.0);
            }
        }
    }
}

/// y = epilogue(conv(x, w)) for f32: `x` (n, c_in, h, w), `weight` (c_out, c_in·9) →
/// (n, c_out, h, w). Needs AVX-512F (asserted); [`suits`] says when to take it.
pub(super) fn forward(x: &[f32], weight: &[f32], g: &Geometry, epilogue: Epilogue<'_, f32>) -> Vec<f32> {
    assert!(avx512_present(), "direct conv needs AVX-512F");
    let hw = g.hw();
    let packed = pack_weights(weight, g);
    let band_rows = BAND_PIXELS.div_ceil(g.w.max(1)).max(4 * g.dilation);
    let image = g.c_in * hw;
    // SAFETY: AVX-512F is present (asserted above). `run_band` reads `band` and `packed`
    // inside their bounds and stores every channel and column of rows y0..y0 + rows of the
    // band's image and nothing else (masked stores), as `store_bands` asks.
    unsafe {
        store_bands(g, band_rows, epilogue.bias, PaddedBand::default, |band, (img, y0, rows), bias, out| {
            band.fill(&x[img * image..(img + 1) * image], g, y0, rows);
            run_band(band, &packed, bias, g, rows, epilogue.relu, out, hw)
        })
    }
}

/// The frame of the register-blocked forwards: pads `bias` with zeros to whole blocks of
/// [`OB`], allocates the (n, c_out, h, w) output uninitialised (a serial memset of the whole
/// map cost the second thread its share), and runs `band(state, (img, y0, rows), bias, out)`
/// for every band of `band_rows` rows in parallel, `state` one per thread from `init` and
/// `out` pointing at channel 0 of the band's first output row (channels `hw` apart).
///
/// # Safety
/// `band` must store every value of channels 0..c_out, columns 0..w, rows y0..y0 + rows of
/// image `img` through `out`, and nothing else; the output is returned as initialised.
pub(super) unsafe fn store_bands<S>(
    g: &Geometry,
    band_rows: usize,
    bias: Option<&[f32]>,
    init: impl Fn() -> S + Sync + Send,
    band: impl Fn(&mut S, (usize, usize, usize), &[f32], *mut f32) + Sync + Send,
) -> Vec<f32> {
    let hw = g.hw();
    let mut padded = vec![0.0f32; g.c_out.div_ceil(OB) * OB];
    if let Some(b) = bias {
        padded[..g.c_out].copy_from_slice(b);
    }
    let len = g.n * g.c_out * hw;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let out_ptr = OutPtr(out.as_mut_ptr());
    g.bands(band_rows * g.w).into_par_iter().for_each_init(init, |state, (img, y0, rows)| {
        let first = img * g.c_out * hw + y0 * g.w;
        let last = first + (g.c_out - 1) * hw + rows * g.w - 1;
        assert!(last < len, "band reaches {last}, output has {len}");
        // SAFETY: `first` and the band's last value lie inside `out` (checked above); the
        // bands' rows are disjoint, so no two tasks write the same value.
        band(state, (img, y0, rows), &padded, unsafe { out_ptr.get().add(first) });
    });
    // SAFETY: the bands cover every image and row, and each stores every channel and column
    // of its rows (the caller's promise), so all `len` values are initialised.
    unsafe { out.set_len(len) };
    out
}

/// The store mask of a row's last vector, which holds the row's last `tail` pixels (all 16
/// lanes for `tail` ≥ 16).
pub(super) fn tail_mask(tail: usize) -> u16 {
    if tail >= LANES {
        u16::MAX
    } else {
        (1u16 << tail) - 1
    }
}

/// The row's `vectors` vectors of 16 pixels cut into register blocks `(first, count)` of 3,
/// or of 2 where 3 would leave a block of 1 (whose loads do too little work per broadcast):
/// 16 → 3, 3, 3, 3, 2, 2; 4 → 2, 2; 1 → 1.
pub(super) fn vector_groups(vectors: usize) -> impl Iterator<Item = (usize, usize)> {
    let groups = vectors.div_ceil(RMAX);
    // Blocks of 3 first, then of 2: 3·threes + 2·(groups − threes) = vectors.
    let threes = vectors.saturating_sub(2 * groups);
    (0..groups).scan(0, move |v0, i| {
        let nv = if vectors == 1 { 1 } else if i < threes { 3 } else { 2 };
        let first = *v0;
        *v0 += nv;
        Some((first, nv))
    })
}

/// Computes one band: `out` points at channel 0 of the band's first output row, channels lie
/// `hw` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_band(band: &PaddedBand, packed: &[f32], bias: &[f32], g: &Geometry, rows: usize, relu: bool, out: *mut f32, hw: usize) {
    let blocks = g.c_out.div_ceil(OB);
    let vectors = g.w.div_ceil(LANES);
    let mut k = TileArgs { plane: band.plane, stride: band.stride, dilation: g.dilation, c_in: g.c_in, relu, out_stride: hw, channels: OB };
    debug_assert_eq!(packed.len(), blocks * g.c_in * 9 * OB);
    for r in 0..rows {
        for (v0, nv) in vector_groups(vectors) {
            let x0 = v0 * LANES;
            // Lanes of the last vector that lie inside the row.
            let tail_mask = tail_mask(g.w - (x0 + (nv - 1) * LANES));
            let inp = band.data.as_ptr().add(r * band.stride + x0);
            for b in 0..blocks {
                let w = packed.as_ptr().add(b * g.c_in * 9 * OB);
                let bias = bias.as_ptr().add(b * OB);
                k.channels = OB.min(g.c_out - b * OB);
                let out = out.add(b * OB * hw + r * g.w + x0);
                match nv {
                    3 => tile::<3>(inp, w, bias, out, &k, tail_mask),
                    2 => tile::<2>(inp, w, bias, out, &k, tail_mask),
                    _ => tile::<1>(inp, w, bias, out, &k, tail_mask),
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn run_band(_: &PaddedBand, _: &[f32], _: &[f32], _: &Geometry, _: usize, _: bool, _: *mut f32, _: usize) {
    unreachable!("direct conv is only enabled on x86-64")
}

/// What every [`tile`] call of a band shares.
struct TileArgs {
    /// Values per padded input plane.
    plane: usize,
    /// Values per padded input row.
    stride: usize,
    dilation: usize,
    c_in: usize,
    relu: bool,
    /// Values between two output channels.
    out_stride: usize,
    /// Output channels of this block that exist (≤ 8); the rest are computed, not stored.
    channels: usize,
}

/// R vectors of 16 output pixels × 8 output channels. `inp` points at the padded input row of
/// the output row's top-left tap, `w` at the block's packed weights, `out` at channel 0 of the
/// first pixel; `tail_mask` selects the lanes of the last vector to store.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const R: usize>(inp: *const f32, w: *const f32, bias: *const f32, out: *mut f32, k: &TileArgs, tail_mask: u16) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); R]; OB];
    for (o, row) in acc.iter_mut().enumerate() {
        let b = _mm512_set1_ps(*bias.add(o));
        for a in row.iter_mut() {
            *a = b;
        }
    }
    let d = k.dilation;
    let mut wp = w;
    for ci in 0..k.c_in {
        let plane = inp.add(ci * k.plane);
        for ky in 0..3 {
            let row = plane.add(ky * d * k.stride);
            for kx in 0..3 {
                let src = row.add(kx * d);
                let mut xv = [_mm512_setzero_ps(); R];
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
    }
    let zero = _mm512_setzero_ps();
    for (o, row) in acc.iter().enumerate().take(k.channels) {
        let dst = out.add(o * k.out_stride);
        for (r, &a) in row.iter().enumerate() {
            let v = if k.relu { _mm512_max_ps(a, zero) } else { a };
            let mask = if r + 1 == R { tail_mask } else { u16::MAX };
            _mm512_mask_storeu_ps(dst.add(r * LANES), mask, v);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::conv_cpu::forward as im2col_forward;

    /// Deterministic values in [−1, 1) (a linear congruential generator), for this module's
    /// tests and [`super::super::conv_direct_grad`]'s.
    pub(in crate::model) fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Asserts that `run` gives the same values on a one-thread pool as on the global pool,
    /// for this module's tests and the other CPU convolution kernels'.
    pub(in crate::model) fn assert_same_on_one_thread<T: PartialEq + std::fmt::Debug + Send>(run: impl Fn() -> Vec<T> + Send + Sync) {
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let a = one.install(&run);
        assert_eq!(a, run());
    }

    /// One convolution to compare: (n, c_in, c_out, h, w, dilation).
    pub(in crate::model) type Case = (usize, usize, usize, usize, usize, usize);

    /// Asserts that `forward` matches the im2col forward within `tol(c_in)` (max abs) on every
    /// case, with and without bias and ReLU.
    pub(in crate::model) fn assert_forward_matches_im2col(forward: fn(&[f32], &[f32], &Geometry, Epilogue<'_, f32>) -> Vec<f32>, cases: &[Case], tol: fn(usize) -> f32) {
        for (i, &(n, c_in, c_out, h, w, dilation)) in cases.iter().enumerate() {
            let g = Geometry { n, c_in, c_out, h, w, dilation };
            let x = random(n * c_in * h * w, i as u64);
            let k = random(c_out * c_in * 9, 100 + i as u64);
            let b = random(c_out, 200 + i as u64);
            for (bias, relu) in [(None, false), (Some(&b[..]), false), (Some(&b[..]), true), (None, true)] {
                let ep = Epilogue { bias, relu };
                let ours = forward(&x, &k, &g, ep);
                let theirs = im2col_forward(&x, &k, &g, ep);
                assert_eq!(ours.len(), theirs.len());
                let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(diff < tol(c_in), "case {i} {:?} bias {} relu {relu}: {diff}", cases[i], bias.is_some());
            }
        }
    }

    /// The kernel gradients' edge cases: widths across 16 and 48 lanes, c_out off the groups
    /// of output channels, dilations up to 8 with images smaller than the padding, several
    /// bands per image.
    pub(in crate::model) const KERNEL_GRAD_CASES: [Case; 9] = [
        (1, 3, 16, 5, 32, 1),
        (2, 5, 7, 9, 33, 1),
        (1, 4, 8, 16, 47, 2),
        (1, 16, 16, 33, 64, 1),
        (2, 8, 11, 5, 49, 3),
        (1, 3, 17, 9, 97, 8),
        (3, 7, 2, 130, 40, 2),
        (2, 5, 9, 300, 40, 1),
        (1, 6, 4, 40, 33, 8),
    ];

    /// Asserts that `kernel_grad` gives bit-identical results on one thread and on the pool,
    /// on a shape with several bands per image.
    pub(in crate::model) fn assert_kernel_grad_same_on_one_thread(kernel_grad: fn(&[f32], &[f32], &Geometry) -> Vec<f32>) {
        let g = Geometry { n: 2, c_in: 6, c_out: 10, h: 90, w: 50, dilation: 2 };
        let x = random(g.n * g.c_in * g.hw(), 1);
        let dy = random(g.n * g.c_out * g.hw(), 2);
        assert_same_on_one_thread(|| kernel_grad(&x, &dy, &g));
    }

    /// Asserts that `kernel_grad` matches the im2col kernel gradient within 1e-5 of the largest
    /// value on every case.
    pub(in crate::model) fn assert_kernel_grad_matches_im2col(kernel_grad: fn(&[f32], &[f32], &Geometry) -> Vec<f32>, cases: &[Case]) {
        for (i, &(n, c_in, c_out, h, w, dilation)) in cases.iter().enumerate() {
            let g = Geometry { n, c_in, c_out, h, w, dilation };
            let x = random(n * c_in * h * w, i as u64);
            let dy = random(n * c_out * h * w, 100 + i as u64);
            let ours = kernel_grad(&x, &dy, &g);
            let theirs = crate::model::conv_cpu::kernel_grad(&x, &dy, &g);
            assert_eq!(ours.len(), theirs.len());
            let scale = theirs.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-5 * scale, "case {i} {:?}: {diff} (largest value {scale})", cases[i]);
        }
    }

    #[test]
    fn matches_the_im2col_path_on_every_edge_case() {
        if !avx512_present() {
            eprintln!("no AVX-512F here: the direct path is never taken, nothing to compare");
            return;
        }
        // Widths below, at and across 16 and 48 lanes; channel counts off the block of 8;
        // dilations up to 8 with images smaller than the padding; bands split by BAND_PIXELS.
        let cases: [Case; 10] = [
            (1, 3, 16, 1, 1, 1),
            (2, 5, 3, 7, 9, 1),
            (1, 4, 8, 16, 16, 2),
            (1, 16, 16, 33, 47, 1),
            (2, 8, 11, 5, 49, 3),
            (1, 3, 17, 9, 97, 8),
            (1, 2, 1, 4, 6, 8),
            (3, 7, 24, 130, 20, 2),
            (2, 5, 9, 300, 40, 1),
            (1, 6, 4, 40, 33, 8),
        ];
        assert_forward_matches_im2col(forward, &cases, |_| 1e-5);
    }

    #[test]
    fn vector_groups_cover_the_row_in_blocks_of_two_and_three() {
        for vectors in 1..40 {
            let groups: Vec<_> = vector_groups(vectors).collect();
            let mut next = 0;
            for &(first, count) in &groups {
                assert_eq!(first, next);
                assert!((1..=RMAX).contains(&count) && (count > 1 || vectors == 1), "{vectors}: {groups:?}");
                next += count;
            }
            assert_eq!(next, vectors);
            assert_eq!(groups.len(), vectors.div_ceil(RMAX));
        }
        assert_eq!(vector_groups(16).map(|g| g.1).collect::<Vec<_>>(), [3, 3, 3, 3, 2, 2]);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !avx512_present() {
            return;
        }
        let g = Geometry { n: 2, c_in: 6, c_out: 10, h: 70, w: 50, dilation: 2 };
        let x = random(g.n * g.c_in * g.hw(), 1);
        let k = random(g.c_out * g.c_in * 9, 2);
        assert_same_on_one_thread(|| forward(&x, &k, &g, Epilogue::NONE));
    }
}
