//! Fast global smoother (Min, Choi, Lu, Ham, Sohn & Do 2014): a weighted-least-squares
//! smoother approximated by alternating 1-D solves, each an exact tridiagonal system.
//!
//! Every iteration `t = 0..T` solves, along every row and then along every column,
//! `(1 + λ_t·(w_{j-1} + w_j))·u_j − λ_t·w_{j-1}·u_{j-1} − λ_t·w_j·u_{j+1} = f_j`
//! (no coupling across the ends of a line) with the Thomas algorithm. The weight of
//! the pixel pair `(p, q)` comes from the guide: `w = exp(−‖G(p) − G(q)‖₂ / σr)`, the
//! Euclidean distance over the guide's channels. That is
//! `cv::ximgproc::fastGlobalSmootherFilter(guide, src, λ, 255·σr, attenuation, T)`
//! (opencv_contrib modules/ximgproc/src/fgs_filter.cpp):
//!
//! * REF: OpenCV requires an 8-bit guide and reads the weight from a table indexed by the
//!   integer squared distance, `exp(−√i / sigma_color)`. The guide here is rounded to
//!   8 bits the same way (`cvRound(255·g)`) and the same table is used, so on 8-bit data
//!   the weights are OpenCV's; a 16-bit image is smoothed at full precision but weighted
//!   by its 8-bit guide.
//! * REF: OpenCV's schedule is `λ_t = λ·attenuation^t` (the first pass uses `λ` itself),
//!   not the paper's `λ_t = 1.5·λ·4^{T−t−1}/(4^T − 1)`; its header says so ("lambda
//!   attenuation described in the paper is implemented a bit differently"). OpenCV's is
//!   used, so `λ` means what it means there. The paper's schedule is OpenCV's with
//!   attenuation 0.25 and `λ` scaled by `1.5·4^{T−1}/(4^T − 1)` (0.381 for T = 3).
//! * The guide stays fixed (OpenCV does not re-derive it from the output after each
//!   iteration, as the paper proposes for self-guided smoothing). Each channel of `src` is
//!   solved on its own with the same weights; the passes go horizontal, then vertical.
//! * The arithmetic is f32 like OpenCV's, but reordered: `1/m` once per pixel instead of
//!   two divisions, the elimination coefficients computed once for all channels. On 8-bit
//!   crops the outputs agree with OpenCV's to 77–81 dB, the f16 precision of the fixtures
//!   (`tests/ops_opencv.rs`).
//!
//! Layout: the row solves transpose bands of 16 rows into `[f32; 16]` steps (4 × 4 blocks)
//! and run vectorised across the band; the column solves sweep whole rows of a stripe of
//! columns per thread (column-at-a-time access thrashes the caches). Rayon runs bands and
//! stripes in parallel; the Thomas recursion itself is sequential along each line.
//!
//! # References
//! D. Min, S. Choi, J. Lu, B. Ham, K. Sohn, M. N. Do, "Fast Global Image Smoothing Based
//! on Weighted Least Squares", IEEE TIP 23(12), 2014, doi:10.1109/TIP.2014.2366600.

use rayon::prelude::*;

use super::bilateral::positive;
use super::Planes;
use crate::{Error, Result};

/// Parameters of [`fgs_smooth`] and [`joint_fgs_smooth`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FgsParams {
    /// Smoothness weight λ of the first iteration (> 0), OpenCV's `lambda` unchanged.
    pub lambda: f32,
    /// Colour sigma on the [0,1] scale (> 0), on the Euclidean distance of the guide.
    /// OpenCV's `sigma_color` on 8-bit guides is `255·sigma_r`.
    pub sigma_r: f32,
    /// Number of iterations `T` (≥ 1), each a horizontal and a vertical pass.
    pub iterations: usize,
    /// Factor on λ from one iteration to the next, in (0, 1]; OpenCV's
    /// `lambda_attenuation`. 1 keeps λ constant (OpenCV warns of streaks).
    pub attenuation: f32,
}

impl FgsParams {
    /// Validated parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] when λ or σr is not a positive finite number, `iterations`
    /// is 0, or `attenuation` is outside (0, 1].
    pub fn new(lambda: f32, sigma_r: f32, iterations: usize, attenuation: f32) -> Result<Self> {
        positive("lambda", lambda, "a positive smoothness weight")?;
        positive("sigma_r", sigma_r, "a positive colour sigma on the [0,1] scale")?;
        if iterations == 0 {
            return Err(Error::InvalidParam { name: "iterations", value: "0".into(), expected: "at least 1 iteration" });
        }
        if !(attenuation > 0.0 && attenuation <= 1.0) {
            return Err(Error::InvalidParam {
                name: "attenuation",
                value: attenuation.to_string(),
                expected: "a factor in (0, 1]",
            });
        }
        Ok(Self { lambda, sigma_r, iterations, attenuation })
    }

    /// λ of every iteration, `λ·attenuation^t`, multiplied up in f32 as OpenCV does.
    #[must_use]
    pub fn schedule(&self) -> Vec<f32> {
        std::iter::successors(Some(self.lambda), |l| Some(l * self.attenuation)).take(self.iterations).collect()
    }
}

impl Default for FgsParams {
    /// λ = 100, σr = 16/255 (OpenCV's `sigma_color` 16), 3 iterations, attenuation 0.25
    /// (OpenCV's defaults for the last two): removes fine texture, keeps strong edges.
    fn default() -> Self {
        Self { lambda: 100.0, sigma_r: 16.0 / 255.0, iterations: 3, attenuation: 0.25 }
    }
}

/// Fast global smoothing of every channel, the image guiding itself.
///
/// # Examples
/// ```
/// use csgis::ops::{fgs_smooth, FgsParams, Planes};
/// // Fine stripes on a large step: the stripes are flattened, the step stays.
/// let img = Planes::from_fn(1, 32, 32, |_, _, x| if x < 16 { 0.2 } else { 0.8 } + 0.02 * (x % 2) as f32);
/// let out = fgs_smooth(&img, &FgsParams::default());
/// assert!((out.get(0, 16, 5) - out.get(0, 16, 6)).abs() < 0.005);
/// assert!(out.get(0, 16, 20) - out.get(0, 16, 11) > 0.5);
/// ```
#[must_use]
pub fn fgs_smooth(img: &Planes, p: &FgsParams) -> Planes {
    joint_fgs_smooth(img, img, p)
}

/// Fast global smoothing of `img` with the weights from `guide` (any number of channels,
/// rounded to 8 bits; OpenCV takes 1 or 3).
///
/// # Panics
/// 1. When `guide` and `img` differ in height or width.
#[must_use]
pub fn joint_fgs_smooth(img: &Planes, guide: &Planes, p: &FgsParams) -> Planes {
    assert_eq!((img.h, img.w), (guide.h, guide.w), "fast global smoother: guide size must match");
    let (h, w) = (img.h, img.w);
    let mut out = img.clone();
    if h == 0 || w == 0 || img.c == 0 || guide.c == 0 {
        return out;
    }
    let weights = Weights::new(guide, p.sigma_r);
    // The vertical pass's elimination coefficients, reused by every iteration.
    let mut e = vec![0.0f32; h * w];
    for lambda in p.schedule() {
        let mut planes = out.planes_mut();
        horizontal_pass(&mut planes, &weights.right, w, lambda);
        vertical_pass(&mut planes, &weights.down, w, lambda, &mut e);
    }
    out
}

/// Rows one horizontal task solves together: they are transposed into the lanes of
/// `[f32; BAND]` steps, so that the solve runs along the row vectorised across the band.
const BAND: usize = 16;

/// One step of a band: the band's rows at one column.
type Lanes = [f32; BAND];

/// Pair weights of a guide: the vertical ones as a plane, the horizontal ones transposed
/// into bands.
struct Weights {
    /// `right[b][x][r]`: the weight of the pair (x, x+1) on row r of band b; 0 in the last
    /// column and in the lanes past the image's last row.
    right: Vec<Vec<Lanes>>,
    /// `down[y·w + x]`: weight of the pair (y, y+1) in column x; 0 in the last row.
    down: Vec<f32>,
}

/// `cvRound(255·v)` for v in [0, 1]: adding 1.5·2²³ rounds half to even and leaves the
/// integer in the low mantissa bits.
fn to_u8(v: f32) -> u8 {
    const MAGIC: f32 = 12_582_912.0;
    (v.clamp(0.0, 1.0) * 255.0 + MAGIC).to_bits() as u8
}

impl Weights {
    fn new(guide: &Planes, sigma_r: f32) -> Self {
        let (c, h, w) = (guide.c, guide.h, guide.w);
        // REF: LUT[i] = exp(−√i / sigma_color) on the integer squared distance i, in f32.
        let sigma_color = sigma_r * 255.0;
        let mut lut = vec![0.0f32; c * 255 * 255 + 1];
        lut.par_chunks_mut(4096).enumerate().for_each(|(k, chunk)| {
            for (i, v) in chunk.iter_mut().enumerate() {
                *v = (-((k * 4096 + i) as f32).sqrt() / sigma_color).exp();
            }
        });
        // REF: OpenCV's guide is 8-bit; a float guide would go through `convertTo`, which
        // rounds half to even and saturates. Each band rounds its rows and the next one.
        let mut down = vec![0.0f32; h * w];
        let right = down
            .par_chunks_mut(BAND * w)
            .enumerate()
            .map(|(b, down)| {
                let y0 = b * BAND;
                let rows = down.len() / w;
                let quant = |y: usize, q: &mut [u8]| {
                    for (ch, q) in q.chunks_exact_mut(w).enumerate() {
                        for (q, &g) in q.iter_mut().zip(&guide.plane(ch)[y * w..(y + 1) * w]) {
                            *q = to_u8(g);
                        }
                    }
                };
                let (mut q, mut q_next) = (vec![0u8; c * w], vec![0u8; c * w]);
                let mut d2 = vec![0u32; w];
                let mut right = vec![[0.0f32; BAND]; w];
                quant(y0, &mut q);
                for r in 0..rows {
                    let y = y0 + r;
                    // (x, x+1) on row y.
                    d2.fill(0);
                    for q in q.chunks_exact(w) {
                        for ((d, &a), &b) in d2.iter_mut().zip(q).zip(&q[1..]) {
                            let t = i32::from(a) - i32::from(b);
                            *d += (t * t) as u32;
                        }
                    }
                    for (lanes, &d) in right.iter_mut().zip(&d2[..w - 1]) {
                        lanes[r] = lut[d as usize];
                    }
                    // (y, y+1) in every column.
                    if y + 1 < h {
                        quant(y + 1, &mut q_next);
                        d2.fill(0);
                        for (q, qn) in q.chunks_exact(w).zip(q_next.chunks_exact(w)) {
                            for ((d, &a), &b) in d2.iter_mut().zip(q).zip(qn) {
                                let t = i32::from(a) - i32::from(b);
                                *d += (t * t) as u32;
                            }
                        }
                        for (o, &d) in down[r * w..(r + 1) * w].iter_mut().zip(&d2) {
                            *o = lut[d as usize];
                        }
                        std::mem::swap(&mut q, &mut q_next);
                    }
                }
                right
            })
            .collect();
        Self { right, down }
    }
}

/// Solves every row of every plane (`planes[ch]`, `h × w`) in place, a band at a time.
fn horizontal_pass(planes: &mut [&mut [f32]], wt: &[Vec<Lanes>], w: usize, lambda: f32) {
    let c = planes.len();
    let block = BAND * w;
    let mut bands: Vec<Vec<&mut [f32]>> = (0..wt.len()).map(|_| Vec::with_capacity(c)).collect();
    for plane in planes.iter_mut() {
        for (b, chunk) in plane.chunks_mut(block).enumerate() {
            bands[b].push(chunk);
        }
    }
    // Each thread's scratch: `c` channels of `w` steps, then the band's `w` coefficients.
    // Lanes past a short last band hold stale finite values with zero weights.
    bands.into_par_iter().zip(wt.par_iter()).for_each_init(
        || vec![[0.0f32; BAND]; (c + 1) * w],
        |scratch, (mut chans, wt)| {
            let rows = chans[0].len() / w;
            let (data, e) = scratch.split_at_mut(c * w);
            for (chan, s) in chans.iter().zip(data.chunks_mut(w)) {
                to_lanes(chan, rows, w, s);
            }
            solve_band(data, wt, e, w, lambda);
            for (chan, s) in chans.iter_mut().zip(data.chunks(w)) {
                from_lanes(s, rows, w, chan);
            }
        },
    );
}

/// Rows `rows × w` into `w` lane steps, in 4 × 4 blocks (shuffles, not scalar moves).
fn to_lanes(src: &[f32], rows: usize, w: usize, dst: &mut [Lanes]) {
    let (rows4, w4) = (rows / 4 * 4, w / 4 * 4);
    for r0 in (0..rows4).step_by(4) {
        let rs: [&[f32]; 4] = std::array::from_fn(|k| &src[(r0 + k) * w..(r0 + k + 1) * w]);
        for (x, d) in (0..w4).step_by(4).zip(dst.chunks_exact_mut(4)) {
            let b: [[f32; 4]; 4] = std::array::from_fn(|k| rs[k][x..x + 4].try_into().expect("4"));
            for (i, d) in d.iter_mut().enumerate() {
                d[r0..r0 + 4].copy_from_slice(&[b[0][i], b[1][i], b[2][i], b[3][i]]);
            }
        }
    }
    for r in 0..rows {
        let x0 = if r < rows4 { w4 } else { 0 };
        for (d, &v) in dst[x0..w].iter_mut().zip(&src[r * w + x0..(r + 1) * w]) {
            d[r] = v;
        }
    }
}

/// The inverse of [`to_lanes`].
fn from_lanes(src: &[Lanes], rows: usize, w: usize, dst: &mut [f32]) {
    let (rows4, w4) = (rows / 4 * 4, w / 4 * 4);
    for r0 in (0..rows4).step_by(4) {
        let block = &mut dst[r0 * w..(r0 + 4) * w];
        let (r01, r23) = block.split_at_mut(2 * w);
        let (d0, d1) = r01.split_at_mut(w);
        let (d2, d3) = r23.split_at_mut(w);
        for (x, s) in (0..w4).step_by(4).zip(src.chunks_exact(4)) {
            let b: [[f32; 4]; 4] = std::array::from_fn(|i| s[i][r0..r0 + 4].try_into().expect("4"));
            d0[x..x + 4].copy_from_slice(&[b[0][0], b[1][0], b[2][0], b[3][0]]);
            d1[x..x + 4].copy_from_slice(&[b[0][1], b[1][1], b[2][1], b[3][1]]);
            d2[x..x + 4].copy_from_slice(&[b[0][2], b[1][2], b[2][2], b[3][2]]);
            d3[x..x + 4].copy_from_slice(&[b[0][3], b[1][3], b[2][3], b[3][3]]);
        }
    }
    for r in 0..rows {
        let x0 = if r < rows4 { w4 } else { 0 };
        for (v, s) in dst[r * w + x0..(r + 1) * w].iter_mut().zip(&src[x0..w]) {
            *v = s[r];
        }
    }
}

/// [`solve_lanes`] for one band: `data` holds `c` channels of `w` steps, `wt` the weights.
fn solve_band(data: &mut [Lanes], wt: &[Lanes], e: &mut [Lanes], w: usize, lambda: f32) {
    let mut ap = [0.0f32; BAND];
    let mut ep = [0.0f32; BAND];
    for x in 0..w {
        let mut inv = [0.0f32; BAND];
        let mut q = [0.0f32; BAND];
        for r in 0..BAND {
            let a = lambda * wt[x][r];
            let m = 1.0 + a + ap[r] * (1.0 - ep[r]);
            let s = 1.0 / m;
            ep[r] = a * s;
            inv[r] = s;
            q[r] = ap[r] * s;
            ap[r] = a;
        }
        e[x] = ep;
        for chan in data.chunks_mut(w) {
            let prev = if x > 0 { chan[x - 1] } else { [0.0; BAND] };
            let cur = &mut chan[x];
            for r in 0..BAND {
                cur[r] = cur[r] * inv[r] + q[r] * prev[r];
            }
        }
    }
    for chan in data.chunks_mut(w) {
        for x in (0..w - 1).rev() {
            let next = chan[x + 1];
            let cur = &mut chan[x];
            for r in 0..BAND {
                cur[r] += e[x][r] * next[r];
            }
        }
    }
}

/// Solves every column of every plane in place: stripes of columns, one per thread, each
/// swept a whole stripe-row at a time (column-by-column access would thrash the caches).
fn vertical_pass(planes: &mut [&mut [f32]], wt: &[f32], w: usize, lambda: f32, e: &mut [f32]) {
    let h = wt.len() / w;
    let stripe = w.div_ceil(rayon::current_num_threads()).next_multiple_of(16);
    let n_stripes = w.div_ceil(stripe);
    // stripes[s][ch][y]: row y of stripe s in channel ch, disjoint borrows of the planes.
    let mut stripes: Vec<Vec<Vec<&mut [f32]>>> =
        (0..n_stripes).map(|_| (0..planes.len()).map(|_| Vec::with_capacity(h)).collect()).collect();
    for (ch, plane) in planes.iter_mut().enumerate() {
        for row in plane.chunks_mut(w) {
            for (s, piece) in row.chunks_mut(stripe).enumerate() {
                stripes[s][ch].push(piece);
            }
        }
    }
    stripes.into_par_iter().zip(e.par_chunks_mut(h * stripe)).enumerate().for_each_init(
        || vec![0.0f32; 3 * stripe],
        |tmp, (s, (mut chans, e))| {
            let x0 = s * stripe;
            let n = chans[0][0].len();
            let wrows: Vec<&[f32]> = (0..h).map(|y| &wt[y * w + x0..y * w + x0 + n]).collect();
            solve_lanes(&mut chans, &wrows, lambda, e, tmp);
        },
    );
}

/// The Thomas algorithm down `steps` steps of `n` independent lanes, every channel at once:
/// `chans[ch][s]` is step s of channel ch (n lanes), `wts[s]` the weights between step s
/// and s + 1 (0 at the last step). `e` holds `steps × n` coefficients, `tmp` three rows.
///
/// With `a_s = λ·w_s` (`a_{−1} = a_{n−1} = 0`), forward:
/// `m_s = 1 + a_s + a_{s−1}·(1 − e_{s−1})`, `e_s = a_s / m_s`,
/// `d_s = (f_s + a_{s−1}·d_{s−1}) / m_s`; backward `u_s = d_s + e_s·u_{s+1}`.
/// This is OpenCV's recursion with its negative `coef = −a` and `interD = −e`.
fn solve_lanes(chans: &mut [Vec<&mut [f32]>], wts: &[&[f32]], lambda: f32, e: &mut [f32], tmp: &mut [f32]) {
    let steps = wts.len();
    let n = wts[0].len();
    let e = &mut e[..steps * n];
    let (ap, rest) = tmp.split_at_mut(n);
    let (inv, rest) = rest.split_at_mut(n);
    let q = &mut rest[..n];
    let inv = &mut inv[..n];
    // Step 0: m = 1 + a.
    for (((ap, inv), e), &wv) in ap.iter_mut().zip(inv.iter_mut()).zip(e[..n].iter_mut()).zip(wts[0]) {
        let a = lambda * wv;
        *inv = 1.0 / (1.0 + a);
        *e = a * *inv;
        *ap = a;
    }
    for rows in chans.iter_mut() {
        for (v, &s) in rows[0].iter_mut().zip(inv.iter()) {
            *v *= s;
        }
    }
    for (s, wrow) in wts.iter().enumerate().skip(1) {
        let (e_prev, e_cur) = e[(s - 1) * n..(s + 1) * n].split_at_mut(n);
        for (((ap, e_prev), e_cur), ((inv, q), &wv)) in
            ap.iter_mut().zip(&*e_prev).zip(e_cur.iter_mut()).zip(inv.iter_mut().zip(q.iter_mut()).zip(*wrow))
        {
            let a = lambda * wv;
            let m = 1.0 + a + *ap * (1.0 - e_prev);
            let r = 1.0 / m;
            *e_cur = a * r;
            *inv = r;
            *q = *ap * r;
            *ap = a;
        }
        for rows in chans.iter_mut() {
            let (prev, cur) = rows.split_at_mut(s);
            for ((c, &p), (&r, &q)) in cur[0].iter_mut().zip(&*prev[s - 1]).zip(inv.iter().zip(q.iter())) {
                *c = *c * r + q * p;
            }
        }
    }
    for s in (0..steps - 1).rev() {
        let es = &e[s * n..(s + 1) * n];
        for rows in chans.iter_mut() {
            let (cur, next) = rows.split_at_mut(s + 1);
            for ((c, &nx), &es) in cur[s].iter_mut().zip(&*next[0]).zip(es) {
                *c += es * nx;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_images::{assert_denoises_step, hashed};
    use super::*;

    /// Dense Gaussian elimination of one line's system, in f64.
    fn solve_line(f: &[f64], wts: &[f64], lambda: f64) -> Vec<f64> {
        let n = f.len();
        let mut a = vec![vec![0.0; n + 1]; n];
        for j in 0..n {
            let left = if j > 0 { lambda * wts[j - 1] } else { 0.0 };
            let right = if j + 1 < n { lambda * wts[j] } else { 0.0 };
            a[j][j] = 1.0 + left + right;
            if j > 0 {
                a[j][j - 1] = -left;
            }
            if j + 1 < n {
                a[j][j + 1] = -right;
            }
            a[j][n] = f[j];
        }
        for k in 0..n {
            let (top, rest) = a.split_at_mut(k + 1);
            let pivot = &top[k];
            for row in rest {
                let m = row[k] / pivot[k];
                for (v, &p) in row[k..].iter_mut().zip(&pivot[k..]) {
                    *v -= m * p;
                }
            }
        }
        let mut u = vec![0.0; n];
        for k in (0..n).rev() {
            let s: f64 = (k + 1..n).map(|j| a[k][j] * u[j]).sum();
            u[k] = (a[k][n] - s) / a[k][k];
        }
        u
    }

    /// OpenCV's weight of two 8-bit colours.
    fn weight(p: &[u8], q: &[u8], sigma_color: f64) -> f64 {
        let d2: f64 = p.iter().zip(q).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
        (-d2.sqrt() / sigma_color).exp()
    }

    /// The whole smoother in f64 with dense solves: OpenCV's algorithm, written plainly.
    fn reference(img: &Planes, p: &FgsParams) -> Vec<Vec<Vec<f64>>> {
        let (c, h, w) = (img.c, img.h, img.w);
        let px = |y: usize, x: usize| -> Vec<u8> {
            (0..c).map(|ch| (img.get(ch, y, x) * 255.0).round() as u8).collect()
        };
        let sc = f64::from(p.sigma_r) * 255.0;
        let mut u: Vec<Vec<Vec<f64>>> =
            (0..c).map(|ch| (0..h).map(|y| (0..w).map(|x| f64::from(img.get(ch, y, x))).collect()).collect()).collect();
        for lambda in p.schedule() {
            let lambda = f64::from(lambda);
            for y in 0..h {
                let wts: Vec<f64> = (0..w.saturating_sub(1)).map(|x| weight(&px(y, x), &px(y, x + 1), sc)).collect();
                for plane in &mut u {
                    plane[y] = solve_line(&plane[y], &wts, lambda);
                }
            }
            for x in 0..w {
                let wts: Vec<f64> = (0..h.saturating_sub(1)).map(|y| weight(&px(y, x), &px(y + 1, x), sc)).collect();
                for plane in &mut u {
                    let col: Vec<f64> = (0..h).map(|y| plane[y][x]).collect();
                    for (y, v) in solve_line(&col, &wts, lambda).into_iter().enumerate() {
                        plane[y][x] = v;
                    }
                }
            }
        }
        u
    }

    #[test]
    fn matches_dense_row_then_column_solves() {
        // 8-bit values, so that the guide rounding is exact; sizes around BAND (16) and the
        // 4 × 4 transposes, partial bands, several vertical stripes (on more than one
        // thread) and 2 channels.
        for (c, h, w) in [(3, 9, 70), (2, 37, 66), (3, 17, 5), (1, 5, 3), (3, 1, 5), (3, 4, 1)] {
            let img = Planes::from_fn(c, h, w, |ch, y, x| ((ch * 37 + y * 101 + x * 53) % 256) as f32 / 255.0);
            let p = FgsParams::new(30.0, 0.2, 2, 0.25).expect("valid");
            let out = fgs_smooth(&img, &p);
            let want = reference(&img, &p);
            for (ch, plane) in want.iter().enumerate() {
                for (y, row) in plane.iter().enumerate() {
                    for (x, &exp) in row.iter().enumerate() {
                        let got = f64::from(out.get(ch, y, x));
                        assert!((got - exp).abs() < 1e-5, "{c}x{h}x{w} ({ch},{y},{x}): {got} vs {exp}");
                    }
                }
            }
        }
    }

    #[test]
    fn joint_guide_sets_the_weights() {
        // A 1-channel image guided by a 3-channel one equals that channel of the 3-channel
        // self-guided result.
        let img = hashed(3, 9, 70, 5);
        let p = FgsParams::default();
        let all = fgs_smooth(&img, &p);
        let single = Planes::from_vec(1, 9, 70, img.plane(1).to_vec());
        assert_eq!(joint_fgs_smooth(&single, &img, &p).plane(0), all.plane(1));
    }

    #[test]
    fn schedule_is_opencvs() {
        let p = FgsParams::new(10.0, 0.1, 3, 0.25).expect("valid");
        assert_eq!(p.schedule(), vec![10.0, 2.5, 0.625]);
    }

    #[test]
    fn noisy_step_keeps_step_and_loses_noise() {
        assert_denoises_step(0.03, |img| fgs_smooth(img, &FgsParams::default()));
    }

    #[test]
    fn rejects_bad_params() {
        assert!(FgsParams::new(10.0, 0.06, 3, 0.25).is_ok());
        assert!(FgsParams::new(0.0, 0.06, 3, 0.25).is_err());
        assert!(FgsParams::new(10.0, -0.06, 3, 0.25).is_err());
        assert!(FgsParams::new(10.0, 0.06, 0, 0.25).is_err());
        assert!(FgsParams::new(10.0, 0.06, 3, 0.0).is_err());
        assert!(FgsParams::new(10.0, 0.06, 3, 1.5).is_err());
        assert!(FgsParams::new(10.0, 0.06, 3, f32::NAN).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::super::test_images::{hashed, is_within_range};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn output_is_a_convex_combination(
            c in 1usize..4, h in 1usize..12, w in 1usize..12, seed in 0usize..1000, lambda in 0.1f32..1000.0,
        ) {
            let img = hashed(c, h, w, seed);
            let out = fgs_smooth(&img, &FgsParams { lambda, ..FgsParams::default() });
            prop_assert!(is_within_range(&img, &out, 1e-4));
        }

        #[test]
        fn constant_is_fixed_point(h in 1usize..10, w in 1usize..10, v in 0.0f32..=1.0) {
            let out = fgs_smooth(&Planes::constant(3, h, w, v), &FgsParams::default());
            prop_assert!(out.data.iter().all(|o| (o - v).abs() < 1e-5));
        }
    }
}
