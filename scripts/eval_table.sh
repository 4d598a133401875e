#!/usr/bin/env bash
# Table 1-style comparison on the evaluation splits of scripts/eval_splits.py:
# the textured input itself, csgis models, and every classical operator at its best setting
# from `csgis eval --sweep` (best mean PSNR over the split). Prints a Markdown table.
#
#   scripts/eval_table.sh CSGIS_BIN EVAL_DIR NAME=WEIGHTS [NAME=WEIGHTS ...]
set -euo pipefail
BIN=${1:?usage: eval_table.sh CSGIS_BIN EVAL_DIR NAME=WEIGHTS...}; EVAL=${2:?}; shift 2
SPLITS=(photo cartoon)
summary() { tail -n 1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("%.2f / %.3f" % (d["psnr"], d["ssim"]))'; }
declare -A ROW
rows=("input (no smoothing)")
for s in "${SPLITS[@]}"; do ROW["input (no smoothing)|$s"]=$("$BIN" eval --pred "$EVAL/$s/input" --gt "$EVAL/$s/gt" --json -q | summary); done
for spec in "$@"; do
  name=${spec%%=*}; w=${spec#*=}; rows+=("$name")
  for s in "${SPLITS[@]}"; do ROW["$name|$s"]=$("$BIN" eval --method csgis --weights "$w" --input "$EVAL/$s/input" --gt "$EVAL/$s/gt" --json -q | summary); done
done
for m in bilateral guided rgf l0 rtv wls ils sdf; do
  rows+=("$m (best of --sweep)")
  for s in "${SPLITS[@]}"; do ROW["$m (best of --sweep)|$s"]=$("$BIN" eval --method "$m" --sweep --input "$EVAL/$s/input" --gt "$EVAL/$s/gt" --json -q | summary); done
done
echo "| method | photo test split PSNR / SSIM ($(ls "$EVAL/photo/input" | wc -l) images) | cartoon split PSNR / SSIM ($(ls "$EVAL/cartoon/input" | wc -l) images) |"
echo "|---|---|---|"
for r in "${rows[@]}"; do echo "| $r | ${ROW["$r|photo"]} | ${ROW["$r|cartoon"]} |"; done
