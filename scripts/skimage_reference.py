#!/usr/bin/env python3
"""Reference PSNR/SSIM values for `src/metrics.rs` (tests in `src/metrics/golden.rs`).

Writes, under tests/data/metrics/:
  <name>_a.png, <name>_b.png   16-bit RGB crops (<= 128 px) of /work/shared/fixtures/images
                               and a blurred and/or noised copy (seeded, reproducible);
  skimage_reference.json       per pair, computed in float64 on the 16-bit values / 65535:
    psnr            skimage.metrics.peak_signal_noise_ratio(a, b, data_range=1)
    ssim_gaussian   structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                    use_sample_covariance=False, data_range=1, channel_axis=-1)
                    (reflect padding, 5-pixel border cropped before the mean)
    ssim_default    structural_similarity(a, b, data_range=1, channel_axis=-1)
                    (7x7 uniform window, sample covariance, 3-pixel border cropped)
    ssim_csgis      the JESS/CSGIS pytorch_ssim convention re-implemented with scipy:
                    11x11 Gaussian sigma 1.5, ZERO padding 5, mean over every pixel and channel.

Usage: pip install scikit-image && python3 scripts/skimage_reference.py [fixtures_dir]
"""

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import skimage
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

FIXTURES = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fixtures/images")
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "metrics"

# name, source image, (top, left, height, width), blur sigma, noise std, seed
PAIRS = [
    ("astronaut_96x96__blur1_noise002", "structure_astronaut.png", (40, 60, 96, 96), 1.0, 0.02, 1),
    ("coffee_72x96__noise005", "structure_coffee.png", (30, 70, 72, 96), 0.0, 0.05, 2),
    ("pineapple_96x64__blur15", "cartoon_pineapple.png", (70, 90, 96, 64), 1.5, 0.0, 3),
]


def load_rgb(path):
    """RGB float64 in [0, 1]; alpha composited over white, gray replicated."""
    im = Image.open(path)
    if im.mode == "RGBA":
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0


def to_u16(x):
    return np.round(np.clip(x, 0.0, 1.0) * 65535.0).astype(np.uint16)


def write_png16(path, rgb16):
    """Minimal 16-bit RGB PNG writer (Pillow cannot write 16-bit RGB)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def ssim_csgis(a, b):
    """pytorch_ssim: F.conv2d(img, window, padding=5, groups=c) with a normalised 11x11
    Gaussian (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2, mean over everything."""
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()

    def filt(img):
        out = ndi.correlate1d(img, g, axis=0, mode="constant", cval=0.0)
        return ndi.correlate1d(out, g, axis=1, mode="constant", cval=0.0)

    maps = []
    for ch in range(a.shape[2]):
        p, q = a[..., ch], b[..., ch]
        mu1, mu2 = filt(p), filt(q)
        s11 = filt(p * p) - mu1 * mu1
        s22 = filt(q * q) - mu2 * mu2
        s12 = filt(p * q) - mu1 * mu2
        c1, c2 = 0.01**2, 0.03**2
        maps.append(((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2)))
    return float(np.mean(maps))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    records = []
    for name, src, (top, left, h, w), blur, noise, seed in PAIRS:
        img = load_rgb(FIXTURES / src)[top : top + h, left : left + w]
        assert img.shape == (h, w, 3), img.shape
        deg = img.copy()
        if blur > 0:
            deg = np.stack([ndi.gaussian_filter(deg[..., c], blur, mode="reflect") for c in range(3)], axis=-1)
        if noise > 0:
            deg = deg + np.random.default_rng(seed).normal(0.0, noise, deg.shape)
        a16, b16 = to_u16(img), to_u16(deg)
        write_png16(OUT / f"{name}_a.png", a16)
        write_png16(OUT / f"{name}_b.png", b16)
        a, b = a16.astype(np.float64) / 65535.0, b16.astype(np.float64) / 65535.0
        rec = {
            "name": name,
            "a": f"{name}_a.png",
            "b": f"{name}_b.png",
            "psnr": float(peak_signal_noise_ratio(a, b, data_range=1.0)),
            "ssim_gaussian": float(
                structural_similarity(
                    a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1
                )
            ),
            "ssim_default": float(structural_similarity(a, b, data_range=1.0, channel_axis=-1)),
            "ssim_csgis": ssim_csgis(a, b),
        }
        records.append(rec)
        print(json.dumps(rec))
    meta = {
        "script": "scripts/skimage_reference.py",
        "skimage": skimage.__version__,
        "numpy": np.__version__,
        "note": "metrics on the 16-bit PNG values / 65535, float64, data_range 1, all 3 channels",
        "pairs": records,
    }
    (OUT / "skimage_reference.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
