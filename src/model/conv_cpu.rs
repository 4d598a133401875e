//! A fast 3×3 "same" convolution on the CPU, forward and backward, as candle custom ops.
//!
//! candle 0.11.1 runs a CPU conv2d by copying the input to NHWC on one thread and building an
//! im2col block per 512-pixel tile, and its input gradient goes through a direct
//! `conv_transpose2d` loop with no gemm (`shared/docs/candle-notes.md` §4). For the only
//! convolution CSGIS-Net has (3×3, stride 1, padding = dilation) this module does better:
//!
//! * **forward**: the output is cut into bands of whole rows; each band builds its im2col block
//!   `[9·C_in, P]` straight from the NCHW input (whole-row copies, zeros at the borders) and makes
//!   one gemm `W [C_out, 9·C_in] × col → out [C_out, P]`, written in place into the NCHW output.
//!   Bands run in parallel with rayon; each gemm is single-threaded.
//! * **input gradient**: the same forward with the kernel transposed and flipped,
//!   `dx = conv(dy, flip(Wᵀ))`, because for stride 1 and symmetric padding the transposed
//!   convolution is an ordinary one.
//! * **kernel gradient**: per band `dW += dy_band [C_out, P] × col_bandᵀ [P, 9·C_in]`, summed over
//!   bands and images.
//!
//! f32 and f64 (the finite-difference checks) are supported; other dtypes and devices go through
//! candle's own `conv2d` ([`conv3x3_same`] chooses).

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType,
};
use rayon::prelude::*;

use super::gemm::{gemm_into, MatMut, MatRef};

/// Size of the im2col block of one forward band, in values (512 KB of f32): whole rows, as
/// many as fit, so the block is still in L2 when the gemm packs it. Per-shape measurements
/// (bench/RESULTS.md, "Forward band size") put every layer shape the models use at its best
/// near this size; the earlier fixed 2048-pixel bands (4.7 MB blocks at 64 channels) ran
/// 10–25 % slower, and a tap-by-tap "shifted slab" product without im2col lost to both.
const FORWARD_COL_VALUES: usize = 128 * 1024;

/// Output pixels per band of the kernel gradient, whose bands each produce a full
/// (c_out, 9·c_in) partial sum: larger bands, fewer partials to add.
const KERNEL_GRAD_BAND_PIXELS: usize = 2048;

/// Which 3×3 convolution paths the environment variable `CSGIS_CONV` leaves on (read once;
/// benches use it for A/B runs of one binary). Each mode allows the paths of those below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ConvMode {
    /// `im2col`: im2col + gemm only.
    Im2col,
    /// `direct`: also the direct AVX-512 kernels.
    Direct,
    /// `rows`: also the row Winograd F(2, 3).
    Rows,
    /// Unset (or any other value): also the 2-D Winograd F(2×2, 3×3).
    All,
}

/// The [`ConvMode`] of this process.
pub(super) fn conv_mode() -> ConvMode {
    static MODE: std::sync::OnceLock<ConvMode> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("CSGIS_CONV").as_deref() {
        Ok("im2col") => ConvMode::Im2col,
        Ok("direct") => ConvMode::Direct,
        Ok("rows") => ConvMode::Rows,
        _ => ConvMode::All,
    })
}

/// Whether `CSGIS_CONV_ISA=avx2` asks an AVX-512 machine to take the convolution paths of an
/// AVX2-only one (read once, beside [`conv_mode`]).
pub(super) fn avx2_forced() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("CSGIS_CONV_ISA").is_ok_and(|v| v == "avx2"))
}

/// `conv2d(x, w, padding = dilation, stride 1, dilation)` for a 3×3 kernel, with autograd.
///
/// On a CPU tensor of f32 or f64 this runs [`Conv3x3`]; anywhere else it is candle's `conv2d`.
///
/// # Shapes
/// `x`: (n, c_in, h, w); `w`: (c_out, c_in, 3, 3) → (n, c_out, h, w).
pub fn conv3x3_same(x: &Tensor, w: &Tensor, dilation: usize) -> Result<Tensor> {
    if cpu_float(&[x, w]) {
        x.contiguous()?.apply_op2(&w.contiguous()?, Conv3x3 { dilation })
    } else {
        x.conv2d(w, dilation, 1, dilation, 1)
    }
}

/// Whether the custom ops of this crate can run on `tensors`: all on the CPU, all f32 or all
/// f64. Everything else goes through candle's own ops.
pub(crate) fn cpu_float(tensors: &[&Tensor]) -> bool {
    let Some(first) = tensors.first() else { return false };
    matches!(first.dtype(), DType::F32 | DType::F64)
        && tensors.iter().all(|t| t.device().is_cpu() && t.dtype() == first.dtype())
}

/// `Wᵀ` with both spatial axes flipped, (c_in, c_out, 3, 3): for stride 1 and symmetric
/// padding, the input gradient of a 3×3 convolution is the ordinary convolution of the output
/// gradient with this kernel.
pub(super) fn flipped_transposed(w: &Tensor) -> Result<Tensor> {
    let flip = Tensor::new(&[2u32, 1, 0], w.device())?;
    w.transpose(0, 1)?.contiguous()?.index_select(&flip, 2)?.index_select(&flip, 3)?.contiguous()
}

/// The forward custom op: (x, w) → y, stride 1, padding = dilation, no bias.
#[derive(Debug, Clone, Copy)]
pub struct Conv3x3 {
    /// Dilation of the kernel (and the zero padding on every side).
    pub dilation: usize,
}

/// The kernel-gradient custom op: (x, dy) → dW of shape (c_out, c_in, 3, 3).
#[derive(Debug, Clone, Copy)]
pub struct Conv3x3KernelGrad {
    /// Dilation of the forward convolution.
    pub dilation: usize,
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) n: usize,
    pub(super) c_in: usize,
    pub(super) c_out: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) dilation: usize,
}

/// What the forward does to each output after the product: add a per-channel bias, then
/// optionally clamp at zero. Done band by band while the band is still in cache.
#[derive(Debug, Clone, Copy)]
pub(super) struct Epilogue<'a, T> {
    /// One value per output channel, or none.
    pub(super) bias: Option<&'a [T]>,
    /// Apply a ReLU after the bias.
    pub(super) relu: bool,
}

impl<T> Epilogue<'_, T> {
    /// The plain convolution: nothing after the product.
    pub(super) const NONE: Self = Self { bias: None, relu: false };
}

impl Geometry {
    pub(super) fn hw(&self) -> usize {
        self.h * self.w
    }

    /// Row bands `(image, first_row, rows)` of about `pixels` pixels (whole rows, at least
    /// one) covering every output pixel.
    pub(super) fn bands(&self, pixels: usize) -> Vec<(usize, usize, usize)> {
        let rows = (pixels / self.w.max(1)).clamp(1, self.h.max(1));
        (0..self.n)
            .flat_map(|img| {
                (0..self.h)
                    .step_by(rows)
                    .map(move |y0| (img, y0, rows.min(self.h - y0)))
            })
            .collect()
    }
}

/// The start of an output buffer that parallel tasks fill, each its own disjoint region (the
/// direct and Winograd forwards, whose buffers start uninitialised).
#[derive(Clone, Copy)]
pub(super) struct OutPtr<T>(pub(super) *mut T);

// SAFETY: the tasks that share the pointer write disjoint regions, and the caller keeps the
// buffer alive and otherwise unused until the parallel loop ends.
#[allow(unsafe_code)]
unsafe impl<T> Send for OutPtr<T> {}
#[allow(unsafe_code)]
unsafe impl<T> Sync for OutPtr<T> {}

impl<T> OutPtr<T> {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the raw field).
    pub(super) fn get(self) -> *mut T {
        self.0
    }
}

pub(super) fn dims4(layout: &Layout, what: &str) -> Result<(usize, usize, usize, usize)> {
    match layout.shape().dims() {
        &[a, b, c, d] => Ok((a, b, c, d)),
        d => candle_core::bail!("conv3x3: {what} must be 4-D, got {d:?}"),
    }
}

pub(super) fn contiguous<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [T]> {
    let data = storage.as_slice::<T>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("conv3x3: {what} must be contiguous"),
    }
}

/// Fills `col` ([9·c_in, rows·w]) with the shifted rows of image `x_img` ([c_in, h, w]) for
/// output rows `y0..y0 + rows`, zeros where a tap falls outside the image.
fn im2col<T: WithDType>(x_img: &[T], g: &Geometry, y0: usize, rows: usize, col: &mut [T]) {
    let (h, w, d) = (g.h as isize, g.w, g.dilation as isize);
    let p = rows * w;
    let zero = T::zero();
    for ci in 0..g.c_in {
        let plane = &x_img[ci * g.hw()..(ci + 1) * g.hw()];
        for ky in 0..3isize {
            for kx in 0..3isize {
                let r = (ci * 3 + ky as usize) * 3 + kx as usize;
                let dst_rows = &mut col[r * p..(r + 1) * p];
                let dx = (kx - 1) * d;
                for (j, dst) in dst_rows.chunks_exact_mut(w).enumerate() {
                    let sy = (y0 + j) as isize + (ky - 1) * d;
                    if sy < 0 || sy >= h || dx.unsigned_abs() >= w {
                        dst.fill(zero);
                        continue;
                    }
                    let src = &plane[sy as usize * w..(sy as usize + 1) * w];
                    let s = dx.unsigned_abs();
                    if dx >= 0 {
                        dst[..w - s].copy_from_slice(&src[s..]);
                        dst[w - s..].fill(zero);
                    } else {
                        dst[..s].fill(zero);
                        dst[s..].copy_from_slice(&src[..w - s]);
                    }
                }
            }
        }
    }
}

/// Resizes `col` and fills it with band `(img, y0, rows)` of `x` (n, c_in, h, w); returns the
/// band's pixel count P.
fn band_columns<T: WithDType>(x: &[T], g: &Geometry, (img, y0, rows): (usize, usize, usize), col: &mut Vec<T>) -> usize {
    let p = rows * g.w;
    let image = g.c_in * g.hw();
    col.resize(9 * g.c_in * p, T::zero());
    im2col(&x[img * image..(img + 1) * image], g, y0, rows, col);
    p
}

/// y = epilogue(conv(x, w)): `x` (n, c_in, h, w), `weight` (c_out, c_in·9) → (n, c_out, h, w).
pub(super) fn forward<T: WithDType>(x: &[T], weight: &[T], g: &Geometry, epilogue: Epilogue<'_, T>) -> Vec<T> {
    let hw = g.hw();
    let k = 9 * g.c_in;
    let mut out = vec![T::zero(); g.n * g.c_out * hw];
    // Every band writes its own rows of every output channel: disjoint regions of `out`.
    let out_mat = MatMut::new(&mut out);
    let band_pixels = FORWARD_COL_VALUES / k.max(1);
    g.bands(band_pixels).into_par_iter().for_each_init(Vec::new, |col: &mut Vec<T>, band| {
        let p = band_columns(x, g, band, col);
        let lhs = MatRef { data: weight, rows: g.c_out, cols: k, row_stride: k, col_stride: 1 };
        let rhs = MatRef { data: col, rows: k, cols: p, row_stride: p, col_stride: 1 };
        let (img, y0, _) = band;
        let offset = img * g.c_out * hw + y0 * g.w;
        gemm_into(&out_mat, offset, hw, lhs, rhs, false);
        if epilogue.bias.is_some() || epilogue.relu {
            out_mat.for_each_row(offset, hw, g.c_out, p, |co, row| apply_epilogue(row, co, epilogue));
        }
    });
    out
}

/// The forward and kernel gradient of one float type: f32 takes [`super::conv_direct`]'s and
/// [`super::conv_direct_grad`]'s kernels where they run (AVX-512F, rows of 32 px or more), f64
/// and f32 elsewhere the im2col [`forward`] and [`kernel_grad`].
pub(super) trait ConvFloat: WithDType {
    /// y = epilogue(conv(x, w)), as [`forward`].
    fn conv_forward(x: &[Self], weight: &[Self], g: &Geometry, epilogue: Epilogue<'_, Self>) -> Vec<Self>;
    /// dW from x and dy, as [`kernel_grad`].
    fn conv_kernel_grad(x: &[Self], dy: &[Self], g: &Geometry) -> Vec<Self>;
}

impl ConvFloat for f64 {
    fn conv_forward(x: &[f64], weight: &[f64], g: &Geometry, epilogue: Epilogue<'_, f64>) -> Vec<f64> {
        forward(x, weight, g, epilogue)
    }

    fn conv_kernel_grad(x: &[f64], dy: &[f64], g: &Geometry) -> Vec<f64> {
        kernel_grad(x, dy, g)
    }
}

impl ConvFloat for f32 {
    fn conv_forward(x: &[f32], weight: &[f32], g: &Geometry, epilogue: Epilogue<'_, f32>) -> Vec<f32> {
        if super::conv_winograd_rows::suits(g) {
            super::conv_winograd_rows::forward(x, weight, g, epilogue)
        } else if super::conv_winograd::suits(g) {
            super::conv_winograd::forward(x, weight, g, epilogue)
        } else if super::conv_direct::suits(g) {
            super::conv_direct::forward(x, weight, g, epilogue)
        } else if super::conv_winograd_rows_avx2::suits(g) {
            super::conv_winograd_rows_avx2::forward(x, weight, g, epilogue)
        } else {
            forward(x, weight, g, epilogue)
        }
    }

    fn conv_kernel_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
        if super::conv_winograd_rows::suits(g) {
            super::conv_winograd_rows_grad::kernel_grad(x, dy, g)
        } else if super::conv_direct::suits(g) {
            super::conv_direct_grad::kernel_grad(x, dy, g)
        } else {
            kernel_grad(x, dy, g)
        }
    }
}

/// `row = relu?(row + bias[channel])` in place.
fn apply_epilogue<T: WithDType>(row: &mut [T], channel: usize, epilogue: Epilogue<'_, T>) {
    let zero = T::zero();
    match (epilogue.bias, epilogue.relu) {
        (Some(b), true) => {
            let b = b[channel];
            row.iter_mut().for_each(|v| {
                let s = *v + b;
                *v = if s > zero { s } else { zero };
            });
        }
        (Some(b), false) => {
            let b = b[channel];
            row.iter_mut().for_each(|v| *v += b);
        }
        (None, true) => row.iter_mut().for_each(|v| *v = if *v > zero { *v } else { zero }),
        (None, false) => {}
    }
}

/// dW = Σ_bands dy_band · col_bandᵀ: `x` (n, c_in, h, w), `dy` (n, c_out, h, w) → (c_out, c_in·9).
///
/// Each band's product goes to its own buffer and the buffers are summed in band order, so the
/// result does not depend on how rayon schedules the bands (a resumed training run must repeat
/// the same losses bit for bit).
pub(super) fn kernel_grad<T: WithDType>(x: &[T], dy: &[T], g: &Geometry) -> Vec<T> {
    let hw = g.hw();
    let k = 9 * g.c_in;
    let partials: Vec<Vec<T>> = g
        .bands(KERNEL_GRAD_BAND_PIXELS)
        .into_par_iter()
        .map_init(Vec::new, |col: &mut Vec<T>, band| {
            let p = band_columns(x, g, band, col);
            let (img, y0, _) = band;
            let start = img * g.c_out * hw + y0 * g.w;
            let lhs = MatRef { data: &dy[start..], rows: g.c_out, cols: p, row_stride: hw, col_stride: 1 };
            let rhs = MatRef { data: col, rows: p, cols: k, row_stride: 1, col_stride: p };
            let mut part = vec![T::zero(); g.c_out * k];
            gemm_into(&MatMut::new(&mut part), 0, k, lhs, rhs, false);
            part
        })
        .collect();
    sum_in_order(&partials, g.c_out * k)
}

/// The element-wise sum of `partials` (each `len` long), added in their order, so that a
/// result summed over bands does not depend on how rayon scheduled them.
pub(super) fn sum_in_order<T: WithDType>(partials: &[Vec<T>], len: usize) -> Vec<T> {
    let mut sum = vec![T::zero(); len];
    for part in partials {
        for (acc, v) in sum.iter_mut().zip(part) {
            *acc += *v;
        }
    }
    sum
}

/// What a custom op computes from its two (contiguous, same-dtype) arguments.
#[derive(Debug, Clone, Copy)]
enum Compute {
    /// (x, w) → y.
    Forward,
    /// (x, dy) → dW.
    KernelGrad,
}

impl Compute {
    fn run<T: ConvFloat>(self, a: &[T], b: &[T], g: &Geometry) -> Vec<T> {
        match self {
            Self::Forward => T::conv_forward(a, b, g, Epilogue::NONE),
            Self::KernelGrad => T::conv_kernel_grad(a, b, g),
        }
    }

    fn typed<T: ConvFloat>(self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, g: &Geometry) -> Result<CpuStorage> {
        let a = contiguous::<T>(s1, l1, "first argument")?;
        let b = contiguous::<T>(s2, l2, "second argument")?;
        Ok(T::to_cpu_storage_owned(self.run(a, b, g)))
    }

    /// Runs on f32 or f64 storage; other dtypes and mixed dtypes are errors.
    fn dispatch(self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, g: &Geometry) -> Result<CpuStorage> {
        if s1.dtype() != s2.dtype() {
            candle_core::bail!("conv3x3: dtypes differ ({:?} and {:?})", s1.dtype(), s2.dtype())
        }
        match s1.dtype() {
            DType::F32 => self.typed::<f32>(s1, l1, s2, l2, g),
            DType::F64 => self.typed::<f64>(s1, l1, s2, l2, g),
            d => candle_core::bail!("conv3x3: unsupported dtype {d:?} on the CPU path"),
        }
    }
}

impl Conv3x3 {
    fn geometry(&self, lx: &Layout, lw: &Layout) -> Result<Geometry> {
        let (n, c_in, h, w) = dims4(lx, "input")?;
        let (c_out, wc_in, kh, kw) = dims4(lw, "kernel")?;
        if (kh, kw) != (3, 3) || wc_in != c_in {
            candle_core::bail!("conv3x3: kernel {:?} does not fit input {:?}", lw.dims(), lx.dims())
        }
        Ok(Geometry { n, c_in, c_out, h, w, dilation: self.dilation })
    }
}

impl CustomOp2 for Conv3x3 {
    fn name(&self) -> &'static str {
        "conv3x3"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(l1, l2)?;
        Ok((Compute::Forward.dispatch(s1, l1, s2, l2, &g)?, Shape::from((g.n, g.c_out, g.h, g.w))))
    }

    /// Gradients only for the arguments that need one: a frozen kernel (VGG16) or a leaf input
    /// (the image) costs nothing.
    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = if x.track_op() {
            Some(dy.apply_op2(&flipped_transposed(w)?, *self)?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2(&dy, Conv3x3KernelGrad { dilation: self.dilation })?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

impl CustomOp2 for Conv3x3KernelGrad {
    fn name(&self) -> &'static str {
        "conv3x3-kernel-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c_in, h, w) = dims4(l1, "input")?;
        let (dn, c_out, dh, dw) = dims4(l2, "output gradient")?;
        if (dn, dh, dw) != (n, h, w) {
            candle_core::bail!("conv3x3: gradient {:?} does not fit input {:?}", l2.dims(), l1.dims())
        }
        let g = Geometry { n, c_in, c_out, h, w, dilation: self.dilation };
        Ok((Compute::KernelGrad.dispatch(s1, l1, s2, l2, &g)?, Shape::from((c_out, c_in, 3, 3))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64 as random};
    use candle_core::Var;

    #[test]
    fn forward_matches_candle_for_every_dilation_and_odd_sizes() -> Result<()> {
        for (d, h, w) in [(1, 7, 9), (2, 11, 5), (3, 4, 13), (8, 9, 9), (1, 1, 1), (2, 70, 40)] {
            let x = random(&[2, 5, h, w], d as u64)?;
            let k = random(&[4, 5, 3, 3], 100 + d as u64)?;
            let ours = conv3x3_same(&x, &k, d)?;
            let theirs = x.conv2d(&k, d, 1, d, 1)?;
            let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-12, "dilation {d}, {h}x{w}: {diff}");
            // f32 too
            let ours = conv3x3_same(&x.to_dtype(DType::F32)?, &k.to_dtype(DType::F32)?, d)?;
            let theirs = x.conv2d(&k, d, 1, d, 1)?.to_dtype(DType::F32)?;
            let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "f32 dilation {d}: {diff}");
        }
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        for (d, h, w) in [(1, 6, 5), (2, 7, 6), (3, 5, 8)] {
            let x = random(&[2, 3, h, w], 7 + d as u64)?;
            let k = random(&[4, 3, 3, 3], 9 + d as u64)?;
            assert_grad_ok(&x, |x| conv3x3_same(x, &k, d), 30 + d as u64)?;
            assert_grad_ok(&k, |k| conv3x3_same(&x, k, d), 40 + d as u64)?;
        }
        Ok(())
    }

    #[test]
    fn gradients_match_candle_on_a_band_split_image() -> Result<()> {
        // Per image, 3 bands of 51 rows (2048 / 40) in the kernel gradient and 2 bands of 91
        // rows (128 Ki values / 36 per pixel / 40) in the forward.
        let x = Var::from_tensor(&random(&[2, 4, 120, 40], 3)?)?;
        let k = Var::from_tensor(&random(&[6, 4, 3, 3], 4)?)?;
        let r = random(&[2, 6, 120, 40], 5)?;
        let ours = conv3x3_same(&x, &k, 2)?.mul(&r)?.sum_all()?.backward()?;
        let theirs = x.conv2d(&k, 2, 1, 2, 1)?.mul(&r)?.sum_all()?.backward()?;
        for v in [x.as_tensor(), k.as_tensor()] {
            let a = ours.get(v).unwrap();
            let b = theirs.get(v).unwrap();
            let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-10, "{diff}");
        }
        Ok(())
    }
}
