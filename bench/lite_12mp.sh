#!/usr/bin/env bash
# Inference cost of csgis-lite on a 12-megapixel photo beside FGS (csgis's and OpenCV's) and
# beside the CSGIS-Net backbone (N = 12, C = 64), same machine, same threads, one run.
#
#   bench/lite_12mp.sh CSGIS_BIN LITE_WEIGHTS [THREADS]
#
# The CSGIS-Net backbone takes about 15 minutes for 12 MP on two cores, so it is timed on a
# 512² image and scaled by the pixel count (its cost is linear in pixels: no global op);
# its weights come from one training step on tests/data/tiny-dataset (`--preset full`),
# which does not change the cost. Needs python3 with numpy and opencv-contrib-python-headless.
set -euo pipefail
BIN=${1:?usage: lite_12mp.sh CSGIS_BIN LITE_WEIGHTS [THREADS]}; LITE=${2:?}; T=${3:-2}
export RAYON_NUM_THREADS=$T
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
python3 - "$W" <<'PY'
import sys, cv2, numpy as np
rng = np.random.default_rng(0)
# A smooth structure with texture on top, 4000x3000 (12 MP), and a 512² crop of it.
y, x = np.mgrid[0:3000, 0:4000].astype(np.float32)
base = np.stack([128 + 80 * np.sin(x / 300), 128 + 80 * np.cos(y / 250), 128 + 60 * np.sin((x + y) / 400)], -1)
img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
cv2.imwrite(f"{sys.argv[1]}/photo12mp.png", img)
cv2.imwrite(f"{sys.argv[1]}/crop512.png", img[:512, :512])
PY
t() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n 1; }
echo "| what | image | seconds | peak RSS (MB) | s per MP |"
echo "|---|---|---|---|---|"
row() { read -r s kb <<< "$3"; printf "| %s | %s | %.1f | %d | %.2f |\n" "$1" "$2" "$s" $((kb / 1024)) "$(python3 -c "print($s / $4)")"; }
row "csgis-lite ($("$BIN" --version | cut -d' ' -f2), --tile auto)" "4000×3000" "$(t "$BIN" smooth -q --weights "$LITE" --tile auto "$W/photo12mp.png" -o "$W/lite")" 12
row "csgis --method fgs --lambda 100 --sigma-r 0.06" "4000×3000" "$(t "$BIN" smooth -q --method fgs --lambda 100 --sigma-r 0.06 "$W/photo12mp.png" -o "$W/fgs")" 12
s=$(python3 - "$W" "$T" <<'PY'
import sys, time, cv2
cv2.setNumThreads(int(sys.argv[2]))
im = cv2.imread(f"{sys.argv[1]}/photo12mp.png")
t = time.perf_counter(); cv2.ximgproc.fastGlobalSmootherFilter(im, im, 100, 0.06 * 255); print(time.perf_counter() - t)
PY
)
printf "| OpenCV fastGlobalSmootherFilter (λ 100, σ 15.3, 8-bit) | 4000×3000 | %.1f | | %.2f |\n" "$s" "$(python3 -c "print($s / 12)")"
# Random-ish N 12, C 64 weights: one step on the repository's tiny fixture dataset.
"$BIN" -q train --arch csgis --preset full --data "$(dirname "$0")/../tests/data/tiny-dataset" --out "$W/full" \
  --steps 1 --val-every 1 --val-samples 1 --batch 2 --crop 32 --no-contrastive --no-semantic --device cpu
r=$(t "$BIN" smooth -q --weights "$W/full/last.safetensors" "$W/crop512.png" -o "$W/csgis")
read -r s kb <<< "$r"
printf "| CSGIS-Net N 12, C 64 (untiled) | 512×512 | %.1f | %d | %.2f (12 MP: ≈ %.0f s) |\n" "$s" $((kb / 1024)) "$(python3 -c "print($s / 0.262144)")" "$(python3 -c "print($s / 0.262144 * 12)")"
