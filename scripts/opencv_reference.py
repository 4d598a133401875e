#!/usr/bin/env python3
"""Write the OpenCV reference outputs that tests/ops_opencv.rs compares csgis's operators with.

Usage (from the repository root; needs numpy and opencv-contrib-python-headless, not
needed at test time):

    python3 scripts/opencv_reference.py [--fixtures /work/shared/fixtures/images]

For each crop below it writes tests/data/ops/<crop>__opencv.safetensors holding
  input           U8  [c, h, w]   the 8-bit crop, RGB (or gray) planar
  <operator>      F16 [c, h, w]   OpenCV's output on float32 input = input / 255
and the parameters of every operator in the safetensors metadata ("params", JSON).
The operators run on float32 data in [0, 1] (the 8-bit paths quantise their output and,
for the bilateral filters, read the range weight from a 0..255 table); every operator
here is symmetric in the channels, so RGB vs OpenCV's BGR order does not matter.

Operators and settings (OpenCV 5.0.0 / 4.x contrib, float32 input):
  bilateral     cv2.bilateralFilter(x, d=-1, sigmaColor=0.1, sigmaSpace=3)    radius 4
  guided        cv2.ximgproc.guidedFilter(x, x, radius=5, eps=0.01)
                (eps >= 1e-2 on purpose: below it OpenCV replaces |det| < 1e-6 by 1)
  rgf_input     cv2.ximgproc.rollingGuidanceFilter(x, d=-1, sigmaColor=0.1,
                sigmaSpace=4, numOfIter=4): OpenCV starts from the input as guide
  rgf_constant  Zhang et al.'s start from a constant guide: a disc Gaussian
                (cv2.filter2D, radius 6, reflect-101), then 3 jointBilateralFilter passes
  l0_opencv     cv2.ximgproc.l0Smooth(x, lambda=0.02, kappa=2.0)
  l0_xu         not OpenCV: l0_xu() below, a float64 numpy transcription of Xu's MATLAB
                L0Smoothing.m (periodic differences), lambda=0.01, kappa=2.0. OpenCV's
                l0Smooth mixes replicated differences with a circular solve, which bends
                images whose opposite borders differ; csgis defaults to Xu's version.
                (l0Smooth also overwrites a float32 input in place: it gets a copy here.)
  fgs           cv2.ximgproc.fastGlobalSmootherFilter(guide=crop, src=x, lambda=10,
                sigma_color=16, lambda_attenuation=0.25, num_iter=3): the guide must be
                8-bit, so it is the uint8 crop itself; the source is the float32 x, so the
                output is not quantised (an 8-bit source gives an 8-bit output).
"""

import argparse
import json
import os
import struct

import cv2
import numpy as np

CROPS = [
    # name, file, top, left, height, width
    ("astronaut_96x80", "structure_astronaut.png", 20, 150, 96, 80),
    ("chelsea_96x80", "structure_chelsea.png", 40, 120, 96, 80),
    ("brick_gray_96x80", "texture_brick.png", 60, 30, 96, 80),
]

SIGMA_R = 0.1
BILATERAL = dict(sigma_s=3.0, sigma_r=SIGMA_R)
GUIDED = dict(radius=5, eps=0.01)
RGF = dict(sigma_s=4.0, sigma_r=SIGMA_R, iterations=4)
L0_OPENCV = dict(lambda_=0.02, kappa=2.0)
L0_XU = dict(lambda_=0.01, kappa=2.0)
FGS = dict(lambda_=10.0, sigma_r=16.0 / 255.0, iterations=3, attenuation=0.25)


def disc_gaussian(x, sigma_s):
    """The first rolling-guidance pass from a constant guide: Gaussian weights on the disc."""
    r = max(int(np.rint(1.5 * sigma_s)), 1)  # cvRound: half to even, as np.rint
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    k = np.exp(-(yy**2 + xx**2) / (2.0 * sigma_s**2)) * ((yy**2 + xx**2) <= r * r)
    k = (k / k.sum()).astype(np.float32)
    return cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT_101)


def l0_xu(img, lambda_, kappa, beta_max=1e5):
    """Xu et al.'s L0Smoothing.m in numpy (float64): periodic differences and solve."""
    s = img.astype(np.float64)
    if s.ndim == 2:
        s = s[:, :, None]
    n, m, _ = s.shape
    wy = 2.0 - 2.0 * np.cos(2.0 * np.pi * np.arange(n) / n)
    wx = 2.0 - 2.0 * np.cos(2.0 * np.pi * np.arange(m) / m)
    denom2 = (wy[:, None] + wx[None, :])[:, :, None]  # |psf2otf([1,-1])|² + |psf2otf([1;-1])|²
    normin1 = np.fft.fft2(s, axes=(0, 1))
    beta = 2.0 * lambda_
    while beta < beta_max:
        h = np.roll(s, -1, axis=1) - s
        v = np.roll(s, -1, axis=0) - s
        t = (h**2 + v**2).sum(axis=2) < lambda_ / beta
        h[t] = 0.0
        v[t] = 0.0
        normin2 = (np.roll(h, 1, axis=1) - h) + (np.roll(v, 1, axis=0) - v)
        fs = (normin1 + beta * np.fft.fft2(normin2, axes=(0, 1))) / (1.0 + beta * denom2)
        s = np.real(np.fft.ifft2(fs, axes=(0, 1)))
        beta *= kappa
    return s[:, :, 0] if img.ndim == 2 else s


def run_all(x, crop):
    out = {}
    out["bilateral"] = cv2.bilateralFilter(x, -1, BILATERAL["sigma_r"], BILATERAL["sigma_s"])
    out["guided"] = cv2.ximgproc.guidedFilter(x, x, GUIDED["radius"], GUIDED["eps"])
    out["rgf_input"] = cv2.ximgproc.rollingGuidanceFilter(
        x, d=-1, sigmaColor=RGF["sigma_r"], sigmaSpace=RGF["sigma_s"], numOfIter=RGF["iterations"]
    )
    g = disc_gaussian(x, RGF["sigma_s"])
    for _ in range(RGF["iterations"] - 1):
        g = cv2.ximgproc.jointBilateralFilter(g, x, -1, RGF["sigma_r"], RGF["sigma_s"])
    out["rgf_constant"] = g
    # l0Smooth writes its last iterate into a float32 input (S shares src's buffer), so copy.
    out["l0_opencv"] = cv2.ximgproc.l0Smooth(x.copy(), None, L0_OPENCV["lambda_"], L0_OPENCV["kappa"])
    out["l0_xu"] = l0_xu(x, **L0_XU)
    out["fgs"] = cv2.ximgproc.fastGlobalSmootherFilter(
        crop, x, FGS["lambda_"], FGS["sigma_r"] * 255.0, lambda_attenuation=FGS["attenuation"], num_iter=FGS["iterations"]
    )
    return out


def planar(a):
    return a[None] if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer (the format is an 8-byte header length, JSON, raw data)."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        dtype = {np.dtype(np.uint8): "U8", np.dtype(np.float16): "F16"}[arr.dtype]
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", default="/work/shared/fixtures/images")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ops"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cv2.setNumThreads(1)
    params = {"bilateral": BILATERAL, "guided": GUIDED, "rgf": RGF, "l0_opencv": L0_OPENCV, "l0_xu": L0_XU, "fgs": FGS}
    for name, file, top, left, h, w in CROPS:
        img = cv2.imread(os.path.join(args.fixtures, file), cv2.IMREAD_UNCHANGED)
        if img.ndim == 3:
            img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)
        crop = np.ascontiguousarray(img[top : top + h, left : left + w])
        x = crop.astype(np.float32) / np.float32(255.0)
        tensors = {"input": planar(crop)}
        for op, y in run_all(x, crop).items():
            tensors[op] = planar(y).astype(np.float16)
        meta = {"source": file, "crop": f"{top},{left},{h},{w}", "opencv": cv2.__version__, "params": json.dumps(params)}
        path = os.path.normpath(os.path.join(args.out, name + "__opencv.safetensors"))
        write_safetensors(path, tensors, meta)
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
