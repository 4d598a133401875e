//! Reading and writing the dataset's files: RGB images as [`Planes`], 8-bit maps (edges,
//! labels) as [`Gray8`], GIMP `.pat` textures, and atomic PNG writes.
//!
//! Label maps follow PASCAL VOC 2012 `SegmentationClass`: one class index per pixel,
//! 255 = ignore, stored as a palette PNG with the VOC colour map. Reading accepts a
//! palette PNG (raw indices, not colours), an 8-bit grey index PNG, or an RGB rendering
//! of the VOC palette (mapped back through [`voc_colormap`]).
//!
//! Every write goes through [`crate::io::write_atomic`] (temporary file, then rename), so
//! a killed `dataset build` never leaves a truncated PNG behind (style.md §10.7).

use std::io::BufReader;
use std::path::Path;

use image::imageops::FilterType;
use image::{ImageBuffer, Rgb};

use crate::io::quantize8;
#[cfg(test)]
use crate::io::quantized;
use crate::ops::Planes;
use crate::{Error, Result};

/// The label value that the losses ignore (VOC's "void").
pub const IGNORE: u8 = 255;

/// An 8-bit single-channel map (edge label or class-index label), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gray8 {
    /// Height in pixels.
    pub h: usize,
    /// Width in pixels.
    pub w: usize,
    /// `h * w` values.
    pub data: Vec<u8>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadImage { path: path.to_path_buf(), reason: reason.into() }
}

/// Decodes an image file (PNG, JPEG, WebP, TIFF through [`crate::io::decode_file`], or a GIMP
/// `.pat` pattern) as RGB in [0, 1]; grey images are replicated to three planes and alpha is
/// dropped.
///
/// # Errors
/// [`Error::Io`] or [`Error::Image`] when the file cannot be read or decoded,
/// [`Error::BadImage`] for a malformed `.pat`.
pub fn load_rgb(path: &Path) -> Result<Planes> {
    Ok(load_rgba(path)?.0)
}

/// Decodes an image as RGB planes plus its alpha plane (all ones when it has none).
///
/// # Errors
/// As [`load_rgb`].
pub fn load_rgba(path: &Path) -> Result<(Planes, Vec<f32>)> {
    let (planes, alpha) = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pat")) {
        crate::io::decode::planes_of(&decode_gimp_pat(path)?)
    } else {
        let d = crate::io::decode_file(path, u64::MAX)?;
        (d.rgb, d.alpha)
    };
    if planes.data.is_empty() {
        return Err(bad(path, "empty image"));
    }
    let alpha = alpha.unwrap_or_else(|| vec![1.0; planes.plane_len()]);
    Ok((planes, alpha))
}

/// Reads a GIMP pattern: a big-endian header (header size, version, width, height,
/// bytes per pixel, magic `GPAT`, name), then raw 8-bit pixels (1–4 bytes per pixel).
fn decode_gimp_pat(path: &Path) -> Result<image::DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let word = |i: usize| -> Option<usize> {
        let b = bytes.get(i * 4..i * 4 + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let header = (|| Some((word(0)?, word(2)?, word(3)?, word(4)?)))();
    let Some((hdr, w, h, bpp)) = header else {
        return Err(bad(path, "truncated GIMP pattern header"));
    };
    if bytes.get(20..24) != Some(b"GPAT".as_slice()) || !(1..=4).contains(&bpp) {
        return Err(bad(path, "not a GIMP pattern (no GPAT magic or bad depth)"));
    }
    let pixels = bytes
        .get(hdr..hdr + w * h * bpp)
        .ok_or_else(|| bad(path, "GIMP pattern shorter than its header says"))?
        .to_vec();
    let (w32, h32) = (w as u32, h as u32);
    let img = match bpp {
        1 => image::GrayImage::from_raw(w32, h32, pixels).map(image::DynamicImage::ImageLuma8),
        2 => image::GrayAlphaImage::from_raw(w32, h32, pixels).map(image::DynamicImage::ImageLumaA8),
        3 => image::RgbImage::from_raw(w32, h32, pixels).map(image::DynamicImage::ImageRgb8),
        _ => image::RgbaImage::from_raw(w32, h32, pixels).map(image::DynamicImage::ImageRgba8),
    };
    img.ok_or_else(|| bad(path, "GIMP pattern size mismatch"))
}

/// Resizes so that the longer side is at most `max_side` (Lanczos-3); smaller images
/// are returned unchanged.
#[must_use]
pub fn fit_max_side(p: &Planes, max_side: usize) -> Planes {
    let long = p.h.max(p.w);
    if long <= max_side || max_side == 0 {
        return p.clone();
    }
    let scale = max_side as f64 / long as f64;
    let nw = ((p.w as f64 * scale).round() as usize).max(1);
    let nh = ((p.h as f64 * scale).round() as usize).max(1);
    resize(p, nh, nw, FilterType::Lanczos3)
}

/// Resizes every plane to `h × w` with the given filter.
#[must_use]
pub fn resize(p: &Planes, h: usize, w: usize, filter: FilterType) -> Planes {
    let mut out = Planes::zeros(p.c, h, w);
    for ch in 0..p.c {
        let src = p.plane(ch);
        let buf: ImageBuffer<image::Luma<f32>, Vec<f32>> =
            ImageBuffer::from_fn(p.w as u32, p.h as u32, |x, y| image::Luma([src[y as usize * p.w + x as usize]]));
        let r = image::imageops::resize(&buf, w as u32, h as u32, filter);
        out.plane_mut(ch).copy_from_slice(&r.into_raw()[..h * w]);
    }
    out.clamped()
}

/// Writes `bytes` to `path` atomically ([`crate::io::write_atomic`]), creating the folder.
///
/// # Errors
/// [`Error::Io`] naming the folder or the file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::io::write_atomic(path, bytes, crate::io::Existing::Replace)
}

fn png_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::BadImage { path: path.to_path_buf(), reason: format!("PNG encoding failed: {e}") }
}

/// Writes an 8-bit PNG (`color` Rgb or Grayscale, or Indexed with `palette`).
fn write_png(
    path: &Path,
    (w, h): (usize, usize),
    color: png::ColorType,
    palette: Option<Vec<u8>>,
    data: &[u8],
) -> Result<()> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        if let Some(p) = palette {
            enc.set_palette(p);
        }
        let mut writer = enc.write_header().map_err(|e| png_error(path, e))?;
        writer.write_image_data(data).map_err(|e| png_error(path, e))?;
        writer.finish().map_err(|e| png_error(path, e))?;
    }
    write_file(path, &bytes)
}

/// Writes an RGB (3 planes) or grey (1 plane) image as an 8-bit PNG, atomically.
///
/// # Errors
/// [`Error::Io`] on a write failure, [`Error::BadImage`] for another channel count.
pub fn save_png(path: &Path, p: &Planes) -> Result<()> {
    let n = p.plane_len();
    let color = match p.c {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        c => return Err(bad(path, format!("cannot write {c} channels as PNG"))),
    };
    let mut bytes = Vec::with_capacity(p.data.len());
    for i in 0..n {
        for ch in 0..p.c {
            bytes.push(quantize8(p.data[ch * n + i]));
        }
    }
    write_png(path, (p.w, p.h), color, None, &bytes)
}

/// Writes an 8-bit grey PNG (an edge map), atomically.
///
/// # Errors
/// [`Error::Io`] on a write failure.
pub fn save_gray8(path: &Path, g: &Gray8) -> Result<()> {
    write_png(path, (g.w, g.h), png::ColorType::Grayscale, None, &g.data)
}

/// Writes a class-index map as a VOC-style palette PNG, atomically.
///
/// # Errors
/// [`Error::Io`] on a write failure.
pub fn save_label(path: &Path, g: &Gray8) -> Result<()> {
    let palette: Vec<u8> = voc_colormap().iter().flatten().copied().collect();
    write_png(path, (g.w, g.h), png::ColorType::Indexed, Some(palette), &g.data)
}

/// Reads an 8-bit grey PNG as its bytes (edge maps); a colour image gives its BT.709 luma.
///
/// # Errors
/// [`Error::Io`] or [`Error::Image`] when unreadable.
pub fn load_gray8(path: &Path) -> Result<Gray8> {
    let d = crate::io::decode_file(path, u64::MAX)?;
    let (rgb, n) = (&d.rgb, d.rgb.plane_len());
    let data = if d.gray {
        rgb.plane(0).iter().map(|&v| quantize8(v)).collect()
    } else {
        (0..n).map(|i| quantize8(0.2126 * rgb.data[i] + 0.7152 * rgb.data[n + i] + 0.0722 * rgb.data[2 * n + i])).collect()
    };
    Ok(Gray8 { h: rgb.h, w: rgb.w, data })
}

/// Reads a class-index label map: palette PNG indices, grey values, or VOC colours.
///
/// # Errors
/// [`Error::Io`] when unreadable, [`Error::BadImage`] for a 16-bit map or an RGB
/// colour that is not in the VOC palette.
pub fn load_label(path: &Path) -> Result<Gray8> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut dec = png::Decoder::new(BufReader::new(file));
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut reader = dec.read_info().map_err(|e| bad(path, format!("not a readable PNG: {e}")))?;
    let size = reader.output_buffer_size().ok_or_else(|| bad(path, "PNG too large"))?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| bad(path, format!("PNG decode: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let depth = info.bit_depth as usize;
    let row = |y: usize| &buf[y * info.line_size..(y + 1) * info.line_size];
    let mut data = Vec::with_capacity(w * h);
    match (info.color_type, depth) {
        (png::ColorType::Indexed | png::ColorType::Grayscale, 1 | 2 | 4 | 8) => {
            let per_byte = 8 / depth;
            let mask = ((1u16 << depth) - 1) as u8;
            for y in 0..h {
                let r = row(y);
                for x in 0..w {
                    let shift = 8 - depth * (x % per_byte + 1);
                    data.push((r[x / per_byte] >> shift) & mask);
                }
            }
        }
        (png::ColorType::Rgb | png::ColorType::Rgba, 8) => {
            let ch = if info.color_type == png::ColorType::Rgb { 3 } else { 4 };
            let cmap = voc_colormap();
            for y in 0..h {
                for px in row(y)[..w * ch].chunks_exact(ch) {
                    let idx = cmap.iter().position(|c| c[..] == px[..3]);
                    data.push(idx.ok_or_else(|| bad(path, "colour not in the VOC palette"))? as u8);
                }
            }
        }
        (ct, d) => return Err(bad(path, format!("unsupported label PNG ({ct:?}, {d} bits)"))),
    }
    Ok(Gray8 { h, w, data })
}

/// The PASCAL VOC colour map (bit-interleaved class index; 255 is (224, 224, 192)).
#[must_use]
pub fn voc_colormap() -> [[u8; 3]; 256] {
    let mut map = [[0u8; 3]; 256];
    for (i, entry) in map.iter_mut().enumerate() {
        let mut c = i;
        for j in 0..8 {
            for (k, v) in entry.iter_mut().enumerate() {
                *v |= (((c >> k) & 1) as u8) << (7 - j);
            }
            c >>= 3;
        }
    }
    map
}

/// Converts RGB planes to an interleaved `image` buffer (for resampling and display).
#[must_use]
pub fn to_rgb_image(p: &Planes) -> ImageBuffer<Rgb<u8>, Vec<u8>> {
    let n = p.plane_len();
    ImageBuffer::from_fn(p.w as u32, p.h as u32, |x, y| {
        let i = y as usize * p.w + x as usize;
        let v = |ch: usize| quantize8(p.data[ch.min(p.c - 1) * n + i]);
        Rgb([v(0), v(1), v(2)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_colormap_matches_known_entries() {
        let m = voc_colormap();
        assert_eq!(m[0], [0, 0, 0]);
        assert_eq!(m[1], [128, 0, 0]);
        assert_eq!(m[15], [192, 128, 128]);
        assert_eq!(m[255], [224, 224, 192]);
    }

    #[test]
    fn label_round_trips_through_palette_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.png");
        let g = Gray8 { h: 3, w: 4, data: vec![0, 1, 2, 255, 20, 19, 0, 0, 7, 255, 3, 1] };
        save_label(&path, &g).unwrap();
        assert_eq!(load_label(&path).unwrap(), g);
    }

    #[test]
    fn png_round_trip_is_8_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let p = Planes::from_fn(3, 5, 7, |c, y, x| ((c * 31 + y * 7 + x * 3) % 256) as f32 / 255.0);
        save_png(&path, &p).unwrap();
        assert_eq!(load_rgb(&path).unwrap(), quantized(&p));
    }

    #[test]
    fn gimp_pattern_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pat");
        let name = b"test\0";
        let hdr = 24 + name.len();
        let mut bytes = Vec::new();
        for v in [hdr as u32, 1, 2, 1, 1] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(b"GPAT");
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(&[0, 255]);
        std::fs::write(&path, bytes).unwrap();
        let p = load_rgb(&path).unwrap();
        assert_eq!((p.c, p.h, p.w), (3, 1, 2));
        assert_eq!(p.get(1, 0, 1), 1.0);
    }

    #[test]
    fn fit_max_side_keeps_aspect() {
        let p = Planes::constant(3, 100, 400, 0.5);
        let q = fit_max_side(&p, 200);
        assert_eq!((q.h, q.w), (50, 200));
        assert!(q.data.iter().all(|v| (v - 0.5).abs() < 1e-4));
    }
}
