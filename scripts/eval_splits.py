#!/usr/bin/env python3
"""Builds the two evaluation splits of weights/README.md as flat folders that `csgis eval`
pairs by file name.

  scripts/eval_splits.py --dataset DATA/voc-smooth --clipart DATA/src/clipart \
      --textures DATA/src/textures --csgis target/release/csgis -o DATA/eval

* OUT/photo/{input,gt}/<gt>__<texture>.png: the dataset's *test* split (GTs never seen in
  training), every --photo-stride-th texture of each test GT. Files are symlinks.
* OUT/cartoon/{input,gt}/<art>__<texture>.png: an NKS-like split. Each GT is one clip-art image
  that the training synthesis never used (checked against DATA/voc-smooth/records), flattened
  on white and fitted into 320x240; the input is `csgis dataset blend` of that GT with
  --cartoon-textures textures (paper eq. 14-16, the same blending as training).

Needs Pillow (pip install pillow). Deterministic for a given --seed.
"""
import argparse
import json
import os
import random
import subprocess
from pathlib import Path

from PIL import Image


def photo_split(dataset: Path, out: Path, stride: int) -> int:
    count = 0
    for line in (dataset / "manifest.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["split"] != "test":
            continue
        inp = Path(e["input"])
        tex_index = sorted(os.listdir(dataset / inp.parent)).index(inp.name)
        if tex_index % stride:
            continue
        name = f"{Path(e['gt']).stem}__{inp.stem}.png"
        for sub, target in (("input", dataset / e["input"]), ("gt", dataset / e["gt"])):
            link = out / sub / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(target.resolve())
        count += 1
    return count


def used_clipart(dataset: Path) -> set:
    used = set()
    for rec in (dataset / "records").glob("*.json"):
        text = rec.read_text()
        used.update(Path(tok.strip('",')).name for tok in text.split() if tok.strip('",').endswith(".png"))
    return used


def cartoon_gt(src: Path, size=(320, 240)) -> Image.Image:
    art = Image.open(src).convert("RGBA")
    art.thumbnail((int(size[0] * 0.9), int(size[1] * 0.9)), Image.LANCZOS)
    canvas = Image.new("RGBA", size, (255, 255, 255, 255))
    canvas.alpha_composite(art, ((size[0] - art.width) // 2, (size[1] - art.height) // 2))
    return canvas.convert("RGB")


def cartoon_split(args, out: Path) -> int:
    used = used_clipart(args.dataset)
    rng = random.Random(args.seed)
    pool = sorted(p for p in args.clipart.rglob("*.png") if p.name not in used)
    textures = sorted(p for p in args.textures.iterdir() if p.is_file())
    rng.shuffle(pool)
    chosen_tex = rng.sample(textures, args.cartoon_textures)
    count, made = 0, 0
    (out / "gt").mkdir(parents=True, exist_ok=True)
    (out / "input").mkdir(parents=True, exist_ok=True)
    src_dir = out / "src"
    src_dir.mkdir(exist_ok=True)
    for art in pool:
        if made == args.cartoons:
            break
        img = cartoon_gt(art)
        # Skip near-empty art (mostly white after flattening): nothing to smooth around.
        grey = img.convert("L")
        if sum(1 for v in grey.getdata() if v < 200) < 0.05 * img.width * img.height:
            continue
        stem = art.stem.replace(" ", "_")
        gt_path = src_dir / f"{stem}.png"
        img.save(gt_path)
        made += 1
        for tex in chosen_tex:
            name = f"{stem}__{tex.stem}.png"
            target = out / "input" / name
            if not target.exists():
                subprocess.run([args.csgis, "dataset", "blend", "--gt", gt_path, "--texture", tex, "-o", target], check=True)
            link = out / "gt" / name
            if not link.exists():
                link.symlink_to(gt_path.resolve())
            count += 1
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--clipart", type=Path, required=True)
    ap.add_argument("--textures", type=Path, required=True)
    ap.add_argument("--csgis", required=True)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--photo-stride", type=int, default=8)
    ap.add_argument("--cartoons", type=int, default=8)
    ap.add_argument("--cartoon-textures", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n_photo = photo_split(args.dataset, args.output / "photo", args.photo_stride)
    n_cartoon = cartoon_split(args, args.output / "cartoon")
    print(f"eval_splits: photo {n_photo} pairs, cartoon {n_cartoon} pairs in {args.output}")


if __name__ == "__main__":
    main()
