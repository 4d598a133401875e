//! The model embedded in the binary: `weights/csgis.safetensors` when it existed at build
//! time (build.rs sets `csgis_embedded_weights`), so that one file can be copied anywhere.

/// The embedded safetensors bytes, or `None` when the build had no `weights/csgis.safetensors`.
#[cfg(csgis_embedded_weights)]
pub const EMBEDDED_WEIGHTS: Option<&[u8]> =
    Some(include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/weights/csgis.safetensors")));

/// The embedded safetensors bytes, or `None` when the build had no `weights/csgis.safetensors`.
#[cfg(not(csgis_embedded_weights))]
pub const EMBEDDED_WEIGHTS: Option<&[u8]> = None;
