//! csgis: CSGIS-Net structure-preserving image smoothing.
//!
//! The library behind the `csgis` binary: the network ([`model`]), classical operators
//! ([`ops`]) and their shared pixel container, and the training data ([`data`]).

pub mod cli;
pub mod data;
pub mod error;
pub mod infer;
pub mod io;
pub mod metrics;
pub mod model;
pub mod ops;

pub use error::{Error, Result};
