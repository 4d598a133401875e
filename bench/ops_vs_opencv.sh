#!/usr/bin/env bash
# csgis's box, bilateral, guided, rolling guidance, L0 and FGS next to OpenCV's, one run.
#
# Usage: bench/ops_vs_opencv.sh [THREADS] [SIDE]
#   THREADS  threads for both sides (cv2.setNumThreads / RAYON_NUM_THREADS); default: all CPUs
#   SIDE     image side in pixels; default 1024 (an RGB SIDE×SIDE float32 image)
#
# Needs python3 with numpy and opencv-contrib-python-headless. Builds benches/ops.rs with
# the bench (release) profile, then bench/ops_vs_opencv.py times both and prints the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-$(nproc)}"
side="${2:-1024}"
# An explicit target keeps the bench build beside the other benches' (target/<triple>/release).
target="$(rustc -vV | sed -n 's/^host: //p')"

# The path of the bench executable, from cargo's JSON messages.
exe=$(cargo bench --target "$target" --bench ops --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ops" and m.get("executable"):
        print(m["executable"])')
[ -n "$exe" ] || { echo "ops_vs_opencv.sh: could not build benches/ops.rs" >&2; exit 2; }
python3 bench/ops_vs_opencv.py --threads "$threads" --side "$side" --rust-bench "$exe"
