#!/usr/bin/env python3
"""Learning curves of one or more `csgis train` runs from their log.jsonl: the weighted total
loss and each term (smoothed over 50 steps) against steps, validation PSNR and SSIM, and the
learning rate.

  scripts/plot_log.py -o curves.png runs/lite-ablation [runs/other ...]

Needs matplotlib (pip install matplotlib).
"""
import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def smooth(v, k=50):
    out, acc = [], []
    for x in v:
        acc.append(x)
        acc = acc[-k:]
        out.append(sum(acc) / len(acc))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("runs", nargs="+", type=Path)
    a = ap.parse_args()
    fig, ax = plt.subplots(1, 4, figsize=(20, 4.5))
    for run in a.runs:
        lines = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if l.strip()]
        steps = [l for l in lines if "loss" in l]
        vals = [l for l in lines if "val_psnr" in l]
        x = [l["step"] for l in steps]
        ax[0].plot(x, smooth([l["loss"] for l in steps]), label=f"{run.name}: total")
        for term, w in (("re", 1.0), ("edge", 0.001), ("dtv", 1.0), ("contrastive", 1.0), ("seg", 1.0)):
            if any(term in l for l in steps):
                ax[0].plot(x, smooth([w * l.get(term, 0.0) for l in steps]), "--", label=f"{run.name}: {term}" + (" ×0.001" if w != 1 else ""))
        ax[1].plot([l["step"] for l in vals], [l["val_psnr"] for l in vals], "o-", label=run.name)
        ax[2].plot([l["step"] for l in vals], [l["val_ssim"] for l in vals], "o-", label=run.name)
        ax[3].plot(x, [l["lr"] for l in steps], label=run.name)
    for a_, t in zip(ax, ["weighted loss terms (50-step mean)", "validation PSNR (dB)", "validation SSIM", "learning rate"]):
        a_.set_title(t)
        a_.set_xlabel("step")
        a_.grid(alpha=0.3)
        a_.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(a.output, dpi=80)


if __name__ == "__main__":
    main()
