#!/usr/bin/env bash
# Rebuilds, deterministically, the data the csgis-lite campaign trains and is scored on
# (runs/CAMPAIGN.md): the training sources minus the held-out files, the photo-background and
# flat-background GT sets, and the held-out set. Downloads are cached by fetch_data.sh.
#
#   scripts/campaign_data.sh CSGIS_BIN DATA_DIR      # e.g. target/release/csgis /work/data
#
# Measured 2026-12-01 on the 2-core machine (other work running): fetch 2 min, photo synth
# 40 min (260 draws → 206 GTs), flat synth 4 min (220 → 220), held-out 30 min.
set -euo pipefail
BIN=${1:?usage: campaign_data.sh CSGIS_BIN DATA_DIR}; D=${2:?}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$D/src/photos" ] || bash "$here/fetch_data.sh" "$D/src"
python3 "$here/heldout.py" split "$D/src" "$D/heldout-src"
mkdir -p "$D/onetex" && cp "$D/src/textures/extremetuxracer-data__dirt01.png" "$D/onetex/"
# One precomputed pair per GT (the campaign blends textures at sample time from src/textures).
"$BIN" dataset synth --photos "$D/src/photos" --clipart "$D/src/clipart" --textures "$D/onetex" \
  --count 260 --size 320x240 --test 0 -o "$D/train-photo"
"$BIN" dataset synth --photos "$D/src/photos" --clipart "$D/src/clipart" --textures "$D/onetex" \
  --count 220 --size 320x240 --flat-share 1 --seed 1 --test 0 -o "$D/train-flat"
bash "$here/heldout_build.sh" "$BIN" "$D/heldout-src" "$D/heldout"
