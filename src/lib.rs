//! csgis: CSGIS-Net structure-preserving image smoothing.
//!
//! The library behind the `csgis` binary: the network ([`model`]) and its inference
//! ([`infer`]), image I/O ([`io`]), classical operators ([`ops`]), metrics ([`metrics`]) and
//! the command line ([`cli`]), training data ([`data`]), checkpoint conversion ([`pth`]) and
//! training ([`train`]).

pub mod cli;
pub mod data;
pub mod error;
pub mod infer;
pub mod io;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod pth;
mod simd;
pub mod train;

pub use error::{Error, Result};
