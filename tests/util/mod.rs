//! Test environment for end-to-end CLI tests: a temporary directory, fixture paths and a
//! runner for the `csgis` binary.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use image::{DynamicImage, ImageBuffer, Rgb, Rgba};

/// The tiny reference network (C = 8, N = 1): fast enough for CLI tests.
pub fn tiny_weights() -> PathBuf {
    fixture("jess-w8-n1/weights.safetensors")
}

/// A committed fixture under tests/data; fails loudly when missing.
pub fn fixture(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel);
    assert!(p.exists(), "missing test fixture {}", p.display());
    p
}

/// A temporary working directory.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs csgis with `args` in the temporary directory, feeding `stdin`.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_csgis"))
            .args(args)
            .current_dir(self.dir.path())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn csgis");
        if let Some(bytes) = stdin {
            child.stdin.take().expect("stdin").write_all(bytes).expect("write stdin");
        }
        child.wait_with_output().expect("wait")
    }

    /// `csgis smooth --weights <tiny> ARGS...`
    pub fn smooth(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let w = tiny_weights();
        let mut all = vec!["smooth", "--weights", w.to_str().expect("utf8")];
        all.extend_from_slice(args);
        self.run(&all, stdin)
    }

    /// Writes a smooth colour test pattern (w×h, RGB8) as `rel`.
    pub fn write_rgb(&self, rel: &str, w: u32, h: u32) -> PathBuf {
        let img = ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, ((x + y) % 64 * 4) as u8])
        });
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        DynamicImage::ImageRgb8(img).save(&p).expect("save");
        p
    }

    /// Writes an RGBA8 pattern with a varying alpha as `rel`.
    pub fn write_rgba(&self, rel: &str, w: u32, h: u32) -> PathBuf {
        let img = ImageBuffer::from_fn(w, h, |x, y| Rgba([(x * 5) as u8, (y * 7) as u8, 90, ((x * 13 + y) % 256) as u8]));
        let p = self.path(rel);
        DynamicImage::ImageRgba8(img).save(&p).expect("save");
        p
    }
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing stderr on failure.
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stderr:\n{}", stderr(o));
}

/// Decodes an image file or buffer.
pub fn load(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("decodable image")
}

/// Largest absolute difference between two 8-bit RGB images.
pub fn max_diff_u8(a: &DynamicImage, b: &DynamicImage) -> u8 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}
