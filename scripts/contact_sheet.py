#!/usr/bin/env python3
"""Contact sheet: one row per image name, one column per folder, with a header line.

  scripts/contact_sheet.py -o docs/sheet.png --names a.png b.png \
      --column input=eval/photo/input --column "rtv (best)"=runs/rtv --column csgis=runs/csgis \
      --column gt=eval/photo/gt

Every column folder must hold a file with each name (any extension is tried: .png, .jpg).
Images are shown at --height pixels high. Needs Pillow.
"""
import argparse
from pathlib import Path

from PIL import Image, ImageDraw


def find(folder: Path, name: str) -> Path:
    stem = Path(name).stem
    for ext in (".png", ".jpg", ".jpeg", ".webp", ".tif"):
        p = folder / f"{stem}{ext}"
        if p.exists():
            return p
    raise SystemExit(f"contact_sheet: {folder} has no image named {stem}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--names", nargs="+", required=True)
    ap.add_argument("--column", action="append", required=True, help="LABEL=FOLDER")
    ap.add_argument("--height", type=int, default=180)
    args = ap.parse_args()
    cols = [(c.split("=", 1)[0], Path(c.split("=", 1)[1])) for c in args.column]
    rows = [[Image.open(find(folder, n)).convert("RGB") for _, folder in cols] for n in args.names]
    scale = lambda im: im.resize((round(im.width * args.height / im.height), args.height), Image.LANCZOS)
    rows = [[scale(im) for im in r] for r in rows]
    col_w = [max(r[i].width for r in rows) for i in range(len(cols))]
    head, pad = 18, 4
    sheet = Image.new("RGB", (sum(col_w) + pad * (len(cols) + 1), head + len(rows) * (args.height + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    x = pad
    for (label, _), w in zip(cols, col_w):
        draw.text((x + 2, 3), label, fill="black")
        x += w + pad
    for j, r in enumerate(rows):
        x = pad
        for im, w in zip(r, col_w):
            sheet.paste(im, (x, head + j * (args.height + pad)))
            x += w + pad
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, optimize=True)
    print(f"contact_sheet: {len(rows)} rows x {len(cols)} columns -> {args.output}")


if __name__ == "__main__":
    main()
