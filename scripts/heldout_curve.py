#!/usr/bin/env python3
"""Held-out learning curve of a campaign: PSNR and SSIM of each scored checkpoint, photo and
cartoon splits, with the best classical operator of each split as a line.

  scripts/heldout_curve.py runs/lite-ablation/heldout.tsv -o docs/lite-heldout-curve.png

The TSV (comment lines start with #) has the columns step, set, photo_psnr, photo_ssim,
cartoon_psnr, cartoon_ssim; `set` names the build of the held-out set (points of different
builds get different markers). Needs matplotlib.
"""
import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Best operator per split on the rebuilt held-out set (weights/README.md): (label, PSNR, SSIM).
OPERATORS = {"photo": ("RTV", 24.02, 0.784), "cartoon": ("RTV / FGS", 25.78, 0.898)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tsv")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    rows = list(csv.DictReader((l for l in open(args.tsv) if not l.startswith("#")), delimiter="\t"))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for col, split in enumerate(["photo", "cartoon"]):
        for row, metric in enumerate(["psnr", "ssim"]):
            ax = axes[row][col]
            for build, marker in [("first", "s"), ("rebuilt", "o")]:
                pts = sorted((int(r["step"]), float(r[f"{split}_{metric}"])) for r in rows if r["set"] == build)
                if pts:
                    ax.plot(*zip(*pts), marker=marker, ms=3, lw=0.8, label=f"csgis-lite ({build} held-out set)")
            name, psnr, ssim = OPERATORS[split]
            # The cartoon SSIM line is FGS's (0.898), the PSNR line RTV's (25.78).
            ax.axhline(psnr if metric == "psnr" else ssim, color="grey", ls="--", lw=0.8, label=f"best operator ({name})")
            ax.set_title(f"{split}, {metric.upper()}")
            ax.grid(alpha=0.3)
            if row == 1:
                ax.set_xlabel("training step (batch 12 × 96²)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)


if __name__ == "__main__":
    main()
