//! Classical structure-preserving smoothing operators, pure Rust (no candle).
//!
//! Every operator takes planar `f32` RGB in [0, 1] ([`Planes`]) and returns a new image.

mod planes;

pub use planes::Planes;
