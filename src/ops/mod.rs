//! Classical structure-preserving smoothing operators, pure Rust (no candle).
//!
//! Every operator takes planar `f32` RGB in [0, 1] ([`Planes`]) and returns a new image.
//! Each lives in its own file, with its paper, its reference implementation and how
//! far it agrees with it in the file's header:
//!
//! | operator | function | reference |
//! |---|---|---|
//! | box mean (building block) | [`box_filter`], [`box_mean_plane`] | `cv::boxFilter` |
//! | bilateral, joint bilateral | [`bilateral_filter`], [`joint_bilateral_filter`] | `cv::bilateralFilter`, `cv::ximgproc::jointBilateralFilter` |
//! | guided filter | [`guided_filter`] | `cv::ximgproc::guidedFilter` |
//! | rolling guidance | [`rolling_guidance`] | `cv::ximgproc::rollingGuidanceFilter`, Zhang's MATLAB |
//! | L0 gradient minimisation | [`l0_smooth`] | Xu's MATLAB `L0Smoothing.m`, `cv::ximgproc::l0Smooth` |
//! | fast global smoother | [`fgs_smooth`], [`joint_fgs_smooth`] | `cv::ximgproc::fastGlobalSmootherFilter` |
//!
//! Border rules follow OpenCV's names ([`Border`]).

mod method;
mod planes;

pub use method::Method;
pub use planes::Planes;

// Local filters (box, bilateral, guided, rolling guidance) and L0.
mod bilateral;
mod border;
mod box_filter;
mod guided;
mod l0;
mod rgf;

pub use bilateral::{bilateral_filter, joint_bilateral_filter, BilateralParams};
pub use border::Border;
pub use box_filter::{box_filter, box_mean_plane};
pub use guided::{guided_filter, GuidedParams};
pub use l0::{l0_smooth, L0Boundary, L0Params};
pub use rgf::{rolling_guidance, RgfParams, RgfStart};

// Gaussian, Sobel and the sparse-solver operators (RTV, WLS, SDF), ILS and FGS.
mod fft2;
mod fgs;
mod gaussian;
mod ils;
mod rtv;
mod sdf;
mod sobel;
mod sparse;
mod wls;

pub use fgs::{fgs_smooth, joint_fgs_smooth, FgsParams};
pub use gaussian::{gaussian_blur, gaussian_kernel_1d, GaussianParams};
pub use ils::{ils_smooth, IlsParams};
pub use rtv::{rtv_smooth, RtvParams};
pub use sdf::{sdf_smooth, SdfParams};
pub use sobel::{sobel_gradients, sobel_plane};
pub use wls::{wls_smooth, WlsParams};
pub(crate) use gaussian::{convolve_separable, gaussian_kernel_f64, Padding};
#[cfg(test)]
pub(crate) mod test_images;
