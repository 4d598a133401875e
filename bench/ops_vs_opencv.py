#!/usr/bin/env python3
"""Time csgis's local filters, L0 and FGS next to OpenCV's on one image, same thread count.

Usage: bench/ops_vs_opencv.sh [THREADS] [SIDE]   (builds the Rust bench, then runs this)
       python3 bench/ops_vs_opencv.py --threads N --side S --rust-bench PATH

Needs numpy and opencv-contrib-python-headless. The input is a fixture image resized to
SIDE×SIDE RGB (float32, [0, 1]), written once and read by both sides. OpenCV runs with
cv2.setNumThreads(N), csgis with RAYON_NUM_THREADS=N. Per operator the two sides take
turns (ROUNDS rounds of: csgis runs, then OpenCV runs), so a load change on a shared
machine hits both; each figure is the minimum over all runs after warm-ups, the least
disturbed estimate. ratio = csgis / OpenCV (below 1: csgis is faster).

OpenCV's FGS needs an 8-bit guide: it gets the 8-bit image (made once, outside the timing)
as guide and the float32 image as source; csgis rounds its guide to 8 bits inside the call.
"""

import argparse
import json
import os
import subprocess
import tempfile
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = "/work/shared/fixtures/images/structure_astronaut.png"
ROUNDS = 2

# op name (as the Rust bench prints it) -> (runs, OpenCV call on float32 HxWx3 input x and
# its 8-bit version x8)
OPENCV = {
    "box": (9, lambda x, x8: cv2.boxFilter(x, -1, (17, 17), borderType=cv2.BORDER_REFLECT)),
    "bilateral": (5, lambda x, x8: cv2.bilateralFilter(x, -1, 0.1, 3.0)),
    "guided": (5, lambda x, x8: cv2.ximgproc.guidedFilter(x, x, 8, 0.04)),
    "rgf": (3, lambda x, x8: cv2.ximgproc.rollingGuidanceFilter(x, d=-1, sigmaColor=0.1, sigmaSpace=4.0, numOfIter=4)),
    # l0Smooth overwrites a float32 input in place: give it a copy (the copy is < 1 ms).
    "l0": (3, lambda x, x8: cv2.ximgproc.l0Smooth(x.copy(), None, 0.02, 2.0)),
    "fgs": (9, lambda x, x8: cv2.ximgproc.fastGlobalSmootherFilter(x8, x, 10.0, 16.0, lambda_attenuation=0.25, num_iter=3)),
}


def min_ms(runs, f):
    f()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    return min(ts)


def make_input(side, path):
    img = cv2.imread(os.environ.get("CSGIS_BENCH_IMAGE", FIXTURE), cv2.IMREAD_COLOR)
    img = cv2.cvtColor(cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
    x = img.astype(np.float32) / np.float32(255.0)
    np.ascontiguousarray(x.transpose(2, 0, 1)).astype("<f4").tofile(path)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--side", type=int, default=1024)
    ap.add_argument("--rust-bench", required=True, help="the built benches/ops.rs executable")
    args = ap.parse_args()

    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "input.f32")
        x = make_input(args.side, path)
        x8 = np.rint(x * 255.0).astype(np.uint8)
        env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), CSGIS_BENCH_INPUT=f"{path},{args.side}", CSGIS_BENCH_JSON="1")

        def rust(op):
            out = subprocess.run([args.rust_bench, "--bench"], env=dict(env, CSGIS_BENCH_ONLY=op), check=True,
                                 capture_output=True, text=True).stdout
            return [json.loads(line) for line in out.splitlines() if line.strip()]

        rows = []
        for op, (runs, f) in OPENCV.items():
            best_rust, best_cv = {}, float("inf")
            for _ in range(ROUNDS):
                for r in rust(op):
                    prev = best_rust.get(r["op"])
                    if prev is None or r["ms"] < prev["ms"]:
                        best_rust[r["op"]] = r
                best_cv = min(best_cv, min_ms(runs, lambda: f(x, x8)))
            for name, r in best_rust.items():
                rows.append((name, r, best_cv if name == op else None))

    print(f"{args.side}×{args.side} RGB float32, {args.threads} thread(s), OpenCV {cv2.__version__}, "
          f"{os.cpu_count()} CPUs visible, min over {ROUNDS} alternating rounds\n")
    print("| operator | csgis parameters | csgis ms | OpenCV ms | csgis / OpenCV |")
    print("|---|---|---:|---:|---:|")
    for name, r, cv in rows:
        if cv is None:
            print(f"| {name} | {r['params']} | {r['ms']:.1f} | – | – |")
        else:
            print(f"| {name} | {r['params']} | {r['ms']:.1f} | {cv:.1f} | {r['ms'] / cv:.2f} |")


if __name__ == "__main__":
    main()
