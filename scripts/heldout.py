#!/usr/bin/env python3
"""The project's own held-out set: source files reserved from training, chosen once by a hash
of their path and listed in scripts/heldout.txt (committed, so every machine reserves the
same files).

  scripts/heldout.py split SRC HELDOUT     # move the listed files of SRC into HELDOUT
  scripts/heldout.py choose SRC > scripts/heldout.txt   # (re)make the list; done once

SRC is fetch_data.sh's output (photos/, textures/, clipart/<class>/...). After `split`,
SRC holds only training files and HELDOUT the reserved ones, same layout. The reserved
share: 1 in 6 photos, 1 in 7 textures and 1 in 40 clip-art files (ranked by sha256 of the
relative path; clip art at least 130 files for the cartoon pairs).
"""
import hashlib
import shutil
import sys
from pathlib import Path

SHARES = {"photos": 6, "textures": 7, "clipart": 40}
LIST = Path(__file__).with_name("heldout.txt")


def rank(rel: str) -> str:
    return hashlib.sha256(rel.encode()).hexdigest()


def choose(src: Path) -> list:
    chosen = []
    for top, share in SHARES.items():
        files = sorted(str(p.relative_to(src)) for p in (src / top).rglob("*") if p.is_file())
        files.sort(key=rank)
        chosen += sorted(files[: max(1, len(files) // share)])
    return chosen


def split(src: Path, dst: Path) -> None:
    names = [l.strip() for l in LIST.read_text().splitlines() if l.strip() and not l.startswith("#")]
    moved = missing = 0
    for rel in names:
        a, b = src / rel, dst / rel
        if a.exists():
            b.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(a), str(b))
            moved += 1
        elif not b.exists():
            missing += 1
    print(f"heldout: {moved} moved, {len(names) - moved - missing} already there, {missing} missing", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "choose":
        print("# held-out source files (scripts/heldout.py); never train on these")
        print("\n".join(choose(Path(sys.argv[2]))))
    elif len(sys.argv) == 4 and sys.argv[1] == "split":
        split(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(__doc__)
