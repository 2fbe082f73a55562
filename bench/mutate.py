"""Deterministic changes to a tree: edit, create and delete N files each.

    python bench/mutate.py DIR --edits 100 --creates 100 --deletes 100

Edits keep the size and write new bytes (mtime now); creations are new
1-16 KiB files in existing folders; deletions remove existing files. The
same seed picks the same files in identical trees.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def files_of(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and ".accord" not in p.parts
    )


def mutate(root: Path, edits: int, creates: int, deletes: int, seed: int) -> None:
    rng = random.Random(seed)
    files = files_of(root)
    chosen = rng.sample(files, edits + deletes)
    for path in chosen[:edits]:
        size = path.stat().st_size
        path.write_bytes(rng.randbytes(size))
    for path in chosen[edits:]:
        path.unlink()
    folders = sorted({p.parent for p in files})
    for index in range(creates):
        folder = rng.choice(folders)
        (folder / f"new-{seed}-{index:05d}.dat").write_bytes(
            rng.randbytes(rng.randint(1024, 16 * 1024))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--deletes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    mutate(args.dir, args.edits, args.creates, args.deletes, args.seed)


if __name__ == "__main__":
    main()
