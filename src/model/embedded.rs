//! The models embedded in the binary, so that one file can be copied anywhere:
//! `weights/lite.safetensors` (csgis-lite, the default) and `weights/csgis.safetensors`
//! (CSGIS-Net, `--model full`), each when it existed at build time (build.rs sets the cfgs).

/// The embedded CSGIS-Net safetensors bytes, or `None` when the build had no
/// `weights/csgis.safetensors`.
#[cfg(csgis_embedded_weights)]
pub const EMBEDDED_WEIGHTS: Option<&[u8]> =
    Some(include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/weights/csgis.safetensors")));

/// The embedded CSGIS-Net safetensors bytes, or `None` when the build had no
/// `weights/csgis.safetensors`.
#[cfg(not(csgis_embedded_weights))]
pub const EMBEDDED_WEIGHTS: Option<&[u8]> = None;

/// The embedded csgis-lite safetensors bytes, or `None` when the build had no
/// `weights/lite.safetensors`.
#[cfg(csgis_embedded_lite)]
pub const EMBEDDED_LITE: Option<&[u8]> =
    Some(include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/weights/lite.safetensors")));

/// The embedded csgis-lite safetensors bytes, or `None` when the build had no
/// `weights/lite.safetensors`.
#[cfg(not(csgis_embedded_lite))]
pub const EMBEDDED_LITE: Option<&[u8]> = None;
