#!/usr/bin/env bash
# Builds the project's held-out evaluation set from the reserved sources (scripts/heldout.py
# split moves them out of the training sources): photo-like pairs (clip art over smoothed
# held-out photos, the training recipe) and cartoon pairs (held-out clip art on a flat
# ground), each blended with held-out textures by eq. 14-16 (`dataset synth`, native texture
# strength, tiled from the top-left). Deterministic for a given csgis.
#
#   scripts/heldout_build.sh CSGIS_BIN HELDOUT_SRC OUT
#
# Result: OUT/photo/{input,gt}/<gt>__<texture>.png and OUT/cartoon/{input,gt}/..., symlinks
# into OUT/synth-photo and OUT/synth-cartoon, ready for `csgis eval --input .. --gt ..`.
# Photo-like: 64 draws, 3 textures per kept GT; cartoon: 130 draws, 1 texture per GT.
set -euo pipefail
BIN=${1:?usage: heldout_build.sh CSGIS_BIN HELDOUT_SRC OUT}; SRC=${2:?}; OUT=${3:?}
mkdir -p "$OUT"
common=(--clipart "$SRC/clipart" --textures "$SRC/textures" --size 320x240 --val 0 --test 0 -q)
"$BIN" dataset synth --photos "$SRC/photos" "${common[@]}" --count 64 --seed 7 -o "$OUT/synth-photo"
"$BIN" dataset synth --photos "$SRC/photos" "${common[@]}" --count 130 --seed 8 --flat-share 1 -o "$OUT/synth-cartoon"
python3 - "$OUT" <<'PY'
import hashlib, json, os, sys
from pathlib import Path
out = Path(sys.argv[1])
for kind, per_gt in (("photo", 3), ("cartoon", 1)):
    ds = out / f"synth-{kind}"
    by_gt = {}
    for line in (ds / "manifest.jsonl").read_text().splitlines():
        e = json.loads(line)
        by_gt.setdefault(e["gt"], []).append(e["input"])
    n = 0
    for gt, inputs in sorted(by_gt.items()):
        inputs.sort()
        start = int(hashlib.sha256(gt.encode()).hexdigest(), 16) % len(inputs)
        for k in range(per_gt):
            inp = inputs[(start + k * 7) % len(inputs)]
            name = f"{Path(gt).stem}__{Path(inp).stem}.png"
            for sub, target in (("input", inp), ("gt", gt)):
                link = out / kind / sub / name
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.is_symlink():
                    link.symlink_to(os.path.relpath(ds / target, link.parent))
            n += 1
    print(f"heldout_build: {kind}: {len(by_gt)} GTs, {n} pairs", file=sys.stderr)
PY
