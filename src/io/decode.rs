//! Decoding: bytes → planar RGB in [0, 1] plus everything needed to write the result back the
//! way the input came (alpha, bit depth, grayscale, ICC profile). EXIF orientation is applied.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};
use crate::ops::Planes;

/// A decoded image.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// RGB planes in [0, 1] (grayscale inputs are replicated to three planes).
    pub rgb: Planes,
    /// The alpha plane in [0, 1], when the input has one; passed through untouched.
    pub alpha: Option<Vec<f32>>,
    /// The input was grayscale.
    pub gray: bool,
    /// The input had more than 8 bits per sample (16-bit or float).
    pub high_depth: bool,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
    /// The input's container format.
    pub format: ImageFormat,
}

/// Decodes an image from memory. `origin` names it in errors; images with more than
/// `max_pixels` pixels are refused before their pixels are decoded.
///
/// # Errors
/// [`Error::BadImage`] for empty input, an unknown format or too many pixels;
/// [`Error::Image`] for corrupt or truncated data.
pub fn decode(bytes: &[u8], origin: &Path, max_pixels: u64) -> Result<Decoded> {
    let bad = |reason: String| Error::BadImage { path: origin.to_path_buf(), reason };
    if bytes.is_empty() {
        return Err(bad("empty file".into()));
    }
    let image_err = |source| Error::Image { path: origin.to_path_buf(), source };
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::io(origin, e))?;
    let format = reader.format().ok_or_else(|| bad("unknown image format".into()))?;
    // The pixel limit below is ours; lift the codec's 512 MB allocation cap so that it does not
    // refuse images we accept, but keep a bound well above what `max_pixels` allows.
    let mut limits = Limits::no_limits();
    limits.max_alloc = Some(max_pixels.saturating_mul(16).max(1 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(image_err)?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(bad(format!("image has no pixels ({w}×{h})")));
    }
    if pixels > max_pixels {
        return Err(bad(format!("{w}×{h} = {pixels} pixels exceeds --max-pixels {max_pixels}")));
    }
    let icc = decoder.icc_profile().ok().flatten();
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(image_err)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(from_dynamic(&img, icc, format))
}

/// Reads and decodes an image file; see [`decode`].
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, else as [`decode`].
pub fn decode_file(path: &Path, max_pixels: u64) -> Result<Decoded> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path, max_pixels)
}

/// Splits a decoded image into RGB planes and alpha.
#[must_use]
pub fn from_dynamic(img: &DynamicImage, icc: Option<Vec<u8>>, format: ImageFormat) -> Decoded {
    use DynamicImage as D;
    let gray = matches!(img, D::ImageLuma8(_) | D::ImageLumaA8(_) | D::ImageLuma16(_) | D::ImageLumaA16(_));
    let high_depth = !matches!(img, D::ImageLuma8(_) | D::ImageLumaA8(_) | D::ImageRgb8(_) | D::ImageRgba8(_));
    let (rgb, alpha) = planes_of(img);
    Decoded { rgb, alpha, gray, high_depth, icc, format }
}

/// An image's RGB planes in [0, 1] (grey replicated) and its alpha plane, when it has one.
#[must_use]
pub fn planes_of(img: &DynamicImage) -> (Planes, Option<Vec<f32>>) {
    let has_alpha = img.color().has_alpha();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let rgba = img.to_rgba32f();
    let mut rgb = Planes::zeros(3, h, w);
    let mut alpha = has_alpha.then(|| vec![0.0; w * h]);
    for (i, px) in rgba.pixels().enumerate() {
        for c in 0..3 {
            rgb.data[c * w * h + i] = px.0[c].clamp(0.0, 1.0);
        }
        if let Some(a) = alpha.as_mut() {
            a[i] = px.0[3].clamp(0.0, 1.0);
        }
    }
    (rgb, alpha)
}
