#!/usr/bin/env bash
# The Table 1-style comparison on the project's held-out set (scripts/heldout_build.sh):
# for each split (photo, cartoon) one Markdown row per method, PSNR / SSIM by the numerics
# contract: the textured input, each model given as NAME=WEIGHTS, and each of the nine
# classical operators at its best `eval --sweep` setting on that split. Operators listed in
# SUBSET_SWEEP (default: the slow iterative ones) are swept on every SUBSET-th pair (default 3)
# and their best setting is then scored on the whole split; the others are swept on all pairs.
# Finally, for the first model, the number of images where it scores below the input.
# SPLITS (default "photo cartoon") and METHODS (default: all nine) narrow the run.
#
#   scripts/heldout_table.sh CSGIS_BIN HELDOUT_DIR NAME=WEIGHTS [NAME=WEIGHTS ...]
set -euo pipefail
BIN=${1:?usage: heldout_table.sh CSGIS_BIN HELDOUT_DIR NAME=WEIGHTS...}; HO=${2:?}; shift 2
SUBSET_SWEEP=${SUBSET_SWEEP:-"rtv wls ils sdf l0"}
SUBSET=${SUBSET:-3}
METHODS=${METHODS:-"bilateral guided rgf l0 rtv wls ils sdf fgs"}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
summary() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read().splitlines()[-1]); print("%.2f | %.3f" % (d["psnr"], d["ssim"]))'; }
# "lambda=0.01 sigma_s=3" -> "--lambda 0.01 --sigma-s 3"
flags_of() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read().splitlines()[-1]); m=d["method"].split()
print(" ".join("--%s %s" % tuple(kv.replace("_", "-").split("=", 1)) for kv in m[1:] if "=" in kv))'; }
for split in ${SPLITS:-photo cartoon}; do
  D=$HO/$split
  n=$(ls "$D/input" | wc -l)
  echo; echo "### $split ($n pairs)"; echo
  echo "| method | PSNR (dB) | SSIM | setting |"
  echo "|---|---|---|---|"
  "$BIN" eval --pred "$D/input" --gt "$D/gt" --json -q > "$TMP/input.jsonl"
  echo "| input (no smoothing) | $(summary < "$TMP/input.jsonl") | |"
  first=
  for spec in "$@"; do
    "$BIN" eval --method csgis --weights "${spec#*=}" --input "$D/input" --gt "$D/gt" --json -q > "$TMP/${spec%%=*}.jsonl"
    echo "| ${spec%%=*} | $(summary < "$TMP/${spec%%=*}.jsonl") | |"
    first=${first:-${spec%%=*}}
  done
  mkdir -p "$TMP/sub/input" "$TMP/sub/gt"; rm -f "$TMP"/sub/*/*
  ls "$D/input" | awk -v k="$SUBSET" 'NR % k == 1' | while read -r f; do
    ln -s "$(realpath "$D/input/$f")" "$TMP/sub/input/$f"; ln -s "$(realpath "$D/gt/$f")" "$TMP/sub/gt/$f"
  done
  for m in $METHODS; do
    if [[ " $SUBSET_SWEEP " == *" $m "* ]]; then
      flags=$("$BIN" eval --method "$m" --sweep --input "$TMP/sub/input" --gt "$TMP/sub/gt" --json -q | flags_of)
      # shellcheck disable=SC2086
      row=$("$BIN" eval --method "$m" $flags --input "$D/input" --gt "$D/gt" --json -q | summary)
      echo "| $m (best of --sweep on 1/$SUBSET) | $row | $flags |"
    else
      out=$("$BIN" eval --method "$m" --sweep --input "$D/input" --gt "$D/gt" --json -q)
      echo "| $m (best of --sweep) | $(summary <<< "$out") | $(flags_of <<< "$out") |"
    fi
  done
  if [ -n "$first" ]; then
    python3 - "$TMP/input.jsonl" "$TMP/$first.jsonl" "$first" <<'PY'
import json, sys
load = lambda p: {d["name"]: d for d in map(json.loads, open(p)) if "name" in d}
inp, mod = load(sys.argv[1]), load(sys.argv[2])
below = sorted(k for k in mod if mod[k]["psnr"] <= inp[k]["psnr"])
worst = min(mod[k]["psnr"] - inp[k]["psnr"] for k in mod)
print(f"\n{sys.argv[3]}: {len(mod) - len(below)}/{len(mod)} images above the input's PSNR "
      f"(smallest gain {worst:+.2f} dB){': below on ' + ', '.join(below[:8]) if below else ''}")
PY
  fi
done
