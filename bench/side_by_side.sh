#!/usr/bin/env bash
# csgis beside PyTorch (eager) and onnxruntime on the CPU, same networks, same loss, same
# threads, one run (issue 10, "Side-by-side benchmark").
#
# Usage: THREADS=2 bench/side_by_side.sh
#
# What it does:
#   1. Makes a Python venv at $CSGIS_BENCH_VENV (default ${XDG_CACHE_HOME:-~/.cache}/csgis-bench/venv)
#      with python3 (3.11 here), reused when present, and pip-installs PyPI's default
#      torch==2.15.0 wheel (it runs on the CPU; its CUDA dependency wheels come along, about
#      5.5 GB on disk, 2-3 minutes at ~50 MB/s the first time), onnx, onnxruntime, onnxscript
#      and numpy. Versions: TORCH_VERSION (2.15.0), ORT_VERSION (any).
#   2. Runs bench/side_by_side.py: builds CSGIS-Net (N 1/C 8, N 3/C 16, N 12/C 64) and csgis-lite
#      in PyTorch layer for layer as src/model/ defines them, times a training step with the loss
#      of benches/train_step.rs (edge BCE + L1 + 4-scale SSIM + DTV on S0 and S1, Adam) and
#      inference (BatchNorm folded) in PyTorch eager and in onnxruntime (torch.onnx.export).
#   3. Runs `cargo bench --bench train_step` and `cargo bench --bench model` with
#      RAYON_NUM_THREADS=$THREADS (built with an explicit --target, so target/release/csgis is
#      never touched; the 24 MP part of the model bench is skipped).
#   4. Prints one Markdown table with the machine's CPU, flags, threads, load and versions.
#
# Environment:
#   THREADS=N      threads for every side (torch intra-op, onnxruntime intra-op with inter-op 1,
#                  candle/rayon); default 2
#   SKIP_FULL=1    leave out the N 12, C 64 training row on both sides (it is the longest)
#   SKIP_TORCH=1 / SKIP_CSGIS=1   run one side only (the table shows — for the other)
#   NO_ONNX=1      PyTorch only for inference
#   KEEP_LOGS=DIR  keep the raw outputs in DIR (default: a temporary folder, removed)
#
# A whole run at THREADS=2 on the 2-vCPU build machine takes about 20-30 minutes after the
# first install (most of it the 8 × 128² and N 12 training steps and N 12 inference at 512²,
# each side), plus the first build of the two benches (18 min cold on a loaded machine); with
# SKIP_FULL=1 a few minutes less. CSGIS_LABEL names the csgis build in the header (default: git HEAD).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
venv="${CSGIS_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/csgis-bench/venv}"
torch_version="${TORCH_VERSION:-2.15.0}"
ort_spec="onnxruntime${ORT_VERSION:+==$ORT_VERSION}"
say() { echo "side_by_side.sh: $*" >&2; }

if [ "${SKIP_TORCH:-0}" != 1 ]; then
  if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c "import torch, onnx, onnxruntime, numpy; assert torch.__version__.split('+')[0] == '$torch_version'" 2>/dev/null; then
    say "installing torch==$torch_version, onnx, onnxruntime into $venv (several GB the first time)"
    "$venv/bin/pip" install --quiet "torch==$torch_version" "setuptools>=77.0.3" onnx "$ort_spec" onnxscript numpy >&2
  fi
  py="$venv/bin/python"
else
  py=python3
fi

if [ -n "${KEEP_LOGS:-}" ]; then logs="$KEEP_LOGS"; mkdir -p "$logs"; else logs="$(mktemp -d)"; trap 'rm -rf "$logs"' EXIT; fi
: >"$logs/torch.jsonl"; : >"$logs/train_step.md"; : >"$logs/model.md"

cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
has() { case " ${flags#*:} " in *" $1 "*) echo "$1 yes";; *) echo "$1 no";; esac; }
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
others="$(pgrep -fa 'csgis train' | grep -v pgrep | wc -l || true)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
t0=$SECONDS

if [ "${SKIP_TORCH:-0}" != 1 ]; then
  say "PyTorch / onnxruntime side, $threads threads"
  py_args=(--threads "$threads")
  [ "${SKIP_FULL:-0}" = 1 ] && py_args+=(--skip-full)
  [ "${NO_ONNX:-0}" = 1 ] && py_args+=(--no-onnx)
  OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" "$py" bench/side_by_side.py "${py_args[@]}" >"$logs/torch.jsonl"
fi
t_torch=$((SECONDS - t0))

if [ "${SKIP_CSGIS:-0}" != 1 ]; then
  # An explicit target keeps the bench build in target/<triple>/release, away from
  # target/release/csgis (which a training run may be executing).
  target="$(rustc -vV | sed -n 's/^host: //p')"
  say "csgis side: cargo bench --bench train_step, --bench model ($threads threads)"
  RAYON_NUM_THREADS="$threads" CSGIS_BENCH_SKIP_FULL="${SKIP_FULL:-0}" \
    cargo bench --quiet --target "$target" --bench train_step >"$logs/train_step.md"
  RAYON_NUM_THREADS="$threads" CSGIS_BENCH_SKIP_24MP=1 \
    cargo bench --quiet --target "$target" --bench model >"$logs/model.md"
fi
t_all=$((SECONDS - t0))
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

meta="$(grep -m1 '"kind": "meta"' "$logs/torch.jsonl" || echo '{}')"
echo "## Side by side: csgis, PyTorch and onnxruntime on the CPU ($started)"
echo
echo "- CPU: $cpu, $(nproc) CPUs online; $(has avx2), $(has avx512f), $(has fma)"
echo "- threads: $threads for every side (torch intra-op $threads / inter-op 1; onnxruntime intra-op $threads / inter-op 1; RAYON_NUM_THREADS=$threads), f32"
echo "- torch side: $meta"
echo "- csgis: ${CSGIS_LABEL:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes under src/')}"
echo "- csgis's matrix kernels (picked at run time, bench header): $(grep -ho 'gemm kernels [a-z0-9]*' "$logs/train_step.md" "$logs/model.md" 2>/dev/null | sort -u | sed 's/gemm kernels //' | tr '\n' ' ')"
echo "- csgis's 3×3 convolution paths (picked at run time, bench header): $(grep -ho '3×3 conv .*' "$logs/model.md" 2>/dev/null | sort -u | sed 's/3×3 conv //' | tr '\n' ' ')"
echo "- load average before / after: $load_before / $load_after; other 'csgis train' processes running: $others$( [ "$others" -gt 0 ] && echo ' (they hold a core: contention, every side alike)')"
echo "- wall: ${t_torch} s PyTorch + onnxruntime, $((t_all - t_torch)) s csgis"
echo
python3 bench/side_by_side_report.py --torch-json "$logs/torch.jsonl" --train-md "$logs/train_step.md" --model-md "$logs/model.md"
