//! csgis: CSGIS-Net structure-preserving image smoothing.
//!
//! The library behind the `csgis` binary: the network ([`model`]), classical operators
//! ([`ops`]) and their shared pixel container.

pub mod data;
pub mod error;
pub mod ops;

pub use error::{Error, Result};
