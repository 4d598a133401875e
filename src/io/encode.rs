//! Encoding: planar RGB (clipped to [0, 1] here, and only here) back to PNG, JPEG, WebP or TIFF,
//! restoring the input's alpha, grayscale, bit depth and ICC profile where the format allows.

use std::io::Cursor;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::tiff::TiffEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageBuffer, ImageEncoder, ImageFormat};

use crate::error::{Error, Result};
use crate::ops::Planes;

/// An output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    /// PNG (8 or 16 bit, alpha, ICC).
    Png,
    /// JPEG (8 bit, no alpha; quality 95).
    Jpeg,
    /// WebP, lossless (8 bit, alpha).
    WebP,
    /// TIFF (8 or 16 bit, alpha).
    Tiff,
}

impl OutFormat {
    /// The format for a codec's container format, if csgis writes it.
    #[must_use]
    pub fn from_image_format(f: ImageFormat) -> Option<Self> {
        match f {
            ImageFormat::Png => Some(Self::Png),
            ImageFormat::Jpeg => Some(Self::Jpeg),
            ImageFormat::WebP => Some(Self::WebP),
            ImageFormat::Tiff => Some(Self::Tiff),
            _ => None,
        }
    }

    /// The format named by a file extension (case-insensitive), if csgis writes it.
    #[must_use]
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "webp" => Some(Self::WebP),
            "tif" | "tiff" => Some(Self::Tiff),
            _ => None,
        }
    }

    /// The canonical extension.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::WebP => "webp",
            Self::Tiff => "tiff",
        }
    }

    fn supports_16_bit(self) -> bool {
        matches!(self, Self::Png | Self::Tiff)
    }

    fn supports_alpha(self) -> bool {
        !matches!(self, Self::Jpeg)
    }
}

/// What to write besides the RGB pixels.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions<'a> {
    /// Alpha plane in [0, 1], written where the format has alpha.
    pub alpha: Option<&'a [f32]>,
    /// Write grayscale (luma of the RGB result).
    pub gray: bool,
    /// Write 16 bits per sample where the format allows.
    pub high_depth: bool,
    /// ICC profile to embed where the encoder supports it.
    pub icc: Option<&'a [u8]>,
}

/// Quantises a value to 8 bits: clipped to [0, 1], then rounded to the nearest of 256 steps.
/// The one 8-bit quantiser: image outputs, dataset files and `eval`'s scoring all use it.
#[must_use]
pub fn quantize8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The 8-bit quantised copy of an image, back on the [0, 1] scale: what a reader of the
/// written 8-bit file will see.
#[must_use]
pub fn quantized(p: &Planes) -> Planes {
    Planes { data: p.data.iter().map(|&v| f32::from(quantize8(v)) / 255.0).collect(), ..*p }
}

fn quantize16(v: f32) -> u16 {
    (v.clamp(0.0, 1.0) * 65535.0).round() as u16
}

/// Interleaves planes (1–4 of them, each `w*h`) into samples.
fn interleave<T: Copy>(planes: &[&[f32]], q: impl Fn(f32) -> T) -> Vec<T> {
    let n = planes.first().map_or(0, |p| p.len());
    let mut out = Vec::with_capacity(n * planes.len());
    for i in 0..n {
        for p in planes {
            out.push(q(p[i]));
        }
    }
    out
}

/// Builds the image to write: channels chosen by gray/alpha, depth by `high_depth`.
fn to_dynamic(rgb: &Planes, opts: &EncodeOptions, format: OutFormat) -> DynamicImage {
    let (w, h) = (rgb.w as u32, rgb.h as u32);
    let luma: Vec<f32>;
    let mut planes: Vec<&[f32]> = if opts.gray {
        luma = rgb.luma().data;
        vec![&luma]
    } else {
        vec![rgb.plane(0), rgb.plane(1), rgb.plane(2)]
    };
    let alpha = opts.alpha.filter(|_| format.supports_alpha());
    if let Some(a) = alpha {
        planes.push(a);
    }
    // TIFF has no gray+alpha in the encoder: widen to RGBA.
    if format == OutFormat::Tiff && opts.gray && alpha.is_some() {
        planes = vec![planes[0], planes[0], planes[0], planes[1]];
    }
    let sixteen = opts.high_depth && format.supports_16_bit();
    let buf_err = "buffer length matches dimensions by construction";
    macro_rules! build {
        ($variant:ident, $q:expr) => {
            DynamicImage::$variant(ImageBuffer::from_raw(w, h, interleave(&planes, $q)).expect(buf_err))
        };
    }
    match (planes.len(), sixteen) {
        (1, false) => build!(ImageLuma8, quantize8),
        (2, false) => build!(ImageLumaA8, quantize8),
        (3, false) => build!(ImageRgb8, quantize8),
        (4, false) => build!(ImageRgba8, quantize8),
        (1, true) => build!(ImageLuma16, quantize16),
        (2, true) => build!(ImageLumaA16, quantize16),
        (3, true) => build!(ImageRgb16, quantize16),
        _ => build!(ImageRgba16, quantize16),
    }
}

fn write_with<E: ImageEncoder>(img: &DynamicImage, mut enc: E, icc: Option<&[u8]>) -> image::ImageResult<()> {
    if let Some(icc) = icc {
        // Formats whose encoder cannot embed a profile write the pixels without it.
        let _ = enc.set_icc_profile(icc.to_vec());
    }
    img.write_with_encoder(enc)
}

/// Encodes `rgb` (values outside [0, 1] are clipped) in `format`.
///
/// # Errors
/// [`Error::Image`] when the encoder fails; `target` names the file in the message.
pub fn encode(rgb: &Planes, opts: &EncodeOptions, format: OutFormat, target: &Path) -> Result<Vec<u8>> {
    let img = to_dynamic(rgb, opts, format);
    let mut out = Cursor::new(Vec::new());
    let result = match format {
        OutFormat::Png => write_with(&img, PngEncoder::new(&mut out), opts.icc),
        OutFormat::Jpeg => write_with(&img, JpegEncoder::new_with_quality(&mut out, 95), opts.icc),
        OutFormat::WebP => write_with(&img, WebPEncoder::new_lossless(&mut out), opts.icc),
        OutFormat::Tiff => write_with(&img, TiffEncoder::new(&mut out), opts.icc),
    };
    result.map_err(|source| Error::Image { path: target.to_path_buf(), source })?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::decode::decode;

    fn ramp() -> Planes {
        Planes::from_fn(3, 5, 7, |c, y, x| (c as f32 * 0.2 + y as f32 * 0.1 + x as f32 * 0.01).min(1.0))
    }

    #[test]
    fn sixteen_bit_png_round_trips_exactly_on_the_16_bit_grid() {
        let img = Planes::from_fn(3, 4, 6, |c, y, x| ((c * 7919 + y * 131 + x * 17) % 65536) as f32 / 65535.0);
        let opts = EncodeOptions { high_depth: true, ..Default::default() };
        for f in [OutFormat::Png, OutFormat::Tiff] {
            let bytes = encode(&img, &opts, f, Path::new("t")).expect("encode");
            let back = decode(&bytes, Path::new("t"), 1 << 20).expect("decode");
            assert!(back.high_depth);
            let err = img.data.iter().zip(&back.rgb.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(err < 0.5 / 65535.0, "{f:?}: {err}");
        }
    }

    #[test]
    fn alpha_and_gray_survive_where_the_format_allows() {
        let rgb = ramp();
        let alpha: Vec<f32> = (0..35).map(|i| i as f32 / 34.0).collect();
        for f in [OutFormat::Png, OutFormat::WebP, OutFormat::Tiff] {
            let opts = EncodeOptions { alpha: Some(&alpha), gray: true, ..Default::default() };
            let back = decode(&encode(&rgb, &opts, f, Path::new("t")).expect("encode"), Path::new("t"), 1 << 20)
                .expect("decode");
            let a = back.alpha.expect("alpha kept");
            assert!(a.iter().zip(&alpha).all(|(x, y)| (x - y).abs() <= 0.5 / 255.0 + 1e-6), "{f:?}");
            // WebP has no grayscale mode and TIFF has no gray+alpha: both come back as RGBA.
            assert!(f != OutFormat::Png || back.gray, "{f:?}");
        }
        let jpeg = encode(&rgb, &EncodeOptions { alpha: Some(&alpha), ..Default::default() }, OutFormat::Jpeg, Path::new("t"));
        assert!(decode(&jpeg.expect("jpeg"), Path::new("t"), 1 << 20).expect("decode").alpha.is_none());
    }

    #[test]
    fn values_are_clipped_only_here() {
        let img = Planes::from_vec(3, 1, 2, vec![-0.5, 1.5, 0.25, 0.25, 2.0, -1.0]);
        let back = decode(&encode(&img, &EncodeOptions::default(), OutFormat::Png, Path::new("t")).unwrap(), Path::new("t"), 64).unwrap();
        assert_eq!(back.rgb.data, vec![0.0, 1.0, 64.0 / 255.0, 64.0 / 255.0, 1.0, 0.0]);
    }

    #[test]
    fn decode_refuses_bad_input_with_a_reason() {
        let p = Path::new("x.png");
        assert!(decode(b"", p, 10).unwrap_err().to_string().contains("empty file"));
        assert!(decode(b"hello world, not an image", p, 10).unwrap_err().to_string().contains("unknown image format"));
        let png = encode(&ramp(), &EncodeOptions::default(), OutFormat::Png, p).unwrap();
        assert!(decode(&png, p, 10).unwrap_err().to_string().contains("exceeds --max-pixels"));
        assert!(decode(&png[..png.len() / 2], p, 1000).is_err());
    }
}
