#!/usr/bin/env bash
# Table 1-style comparison on one evaluation split of scripts/eval_splits.py: the textured
# input itself, csgis models, and each classical operator at its best setting from
# `csgis eval --sweep` (best mean PSNR over the split), or at its default setting for the
# operators listed in NO_SWEEP (space-separated; sweeping the sparse solvers is slow).
# Prints one Markdown row per method as soon as it is measured.
#
#   NO_SWEEP="wls ils sdf" scripts/eval_table.sh CSGIS_BIN SPLIT_DIR NAME=WEIGHTS [NAME=WEIGHTS ...]
set -euo pipefail
BIN=${1:?usage: eval_table.sh CSGIS_BIN SPLIT_DIR NAME=WEIGHTS...}; SPLIT=${2:?}; shift 2
summary() { tail -n 1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("%.2f | %.3f | %s" % (d["psnr"], d["ssim"], d.get("method", "")))'; }
echo "| method | PSNR (dB) | SSIM | setting |"
echo "|---|---|---|---|"
echo "| input (no smoothing) | $("$BIN" eval --pred "$SPLIT/input" --gt "$SPLIT/gt" --json -q | summary) |"
for spec in "$@"; do
  echo "| ${spec%%=*} | $("$BIN" eval --method csgis --weights "${spec#*=}" --input "$SPLIT/input" --gt "$SPLIT/gt" --json -q | summary) |"
done
for m in bilateral guided rgf l0 rtv wls ils sdf; do
  if [[ " ${NO_SWEEP:-} " == *" $m "* ]]; then
    echo "| $m (default, not swept) | $("$BIN" eval --method "$m" --input "$SPLIT/input" --gt "$SPLIT/gt" --json -q | summary) |"
  else
    echo "| $m (best of --sweep) | $("$BIN" eval --method "$m" --sweep --input "$SPLIT/input" --gt "$SPLIT/gt" --json -q | summary) |"
  fi
done
