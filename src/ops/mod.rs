//! Classical structure-preserving smoothing operators, pure Rust (no candle).
//!
//! Every operator takes planar `f32` RGB in [0, 1] ([`Planes`]) and returns a new image.

mod planes;

pub use planes::Planes;

// Gaussian, Sobel and the sparse-solver operators (RTV, WLS, SDF) and ILS.
mod fft2;
mod gaussian;
mod ils;
mod rtv;
mod sdf;
mod sobel;
mod sparse;
mod wls;

pub use gaussian::{gaussian_blur, gaussian_kernel_1d, GaussianParams};
pub use ils::{ils_smooth, IlsParams};
pub use rtv::{rtv_smooth, RtvParams};
pub use sdf::{sdf_smooth, SdfParams};
pub use sobel::{sobel_gradients, sobel_plane};
pub use wls::{wls_smooth, WlsParams};
pub(crate) use gaussian::{convolve_separable, gaussian_kernel_f64, Padding};
