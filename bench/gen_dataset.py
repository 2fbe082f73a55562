"""Deterministic benchmark data: a tree of many small files, or one big file.

    python bench/gen_dataset.py DIR                    # 20,000 files, ~200 MiB
    python bench/gen_dataset.py DIR --files 200000     # ~2 GiB
    python bench/gen_dataset.py DIR --big-file 1G      # one file, DIR/big.bin

The tree looks like a person's folder: nested up to five levels, about 50
files per folder, names with the usual extensions, sizes spread from empty
to a few hundred KiB around a mean of 10 KiB (log-normal, as real file sizes
are). The same seed gives byte-identical output: the same paths, contents
and mtimes, so every tool in a run, and every run, sees the same data.
Bytes come from ``random.Random(seed)``, not ``os.urandom``: seeded, and
fast enough (about 700 MB/s) that generating is never the slow part.
"""

from __future__ import annotations

import argparse
import math
import os
import random
from collections import Counter
from pathlib import Path

MTIME = 1_704_067_200  # 2024-01-01 00:00 UTC: fixed, so trees are identical
MAX_DEPTH = 5
PER_FOLDER = 50  # files per folder, on average
MEAN_SIZE = 10 * 1024
SIGMA = 1.3  # spread of the log-normal sizes: median ~4.4 KiB, mean ~10 KiB
MU = math.log(MEAN_SIZE) - SIGMA**2 / 2
MAX_SIZE = 4 << 20
EMPTY_SHARE = 0.01
PIECE = 16 << 10  # randbytes is fastest in pieces of this size

FOLDER_WORDS = (
    "docs", "photos", "src", "projects", "archive", "music", "reports",
    "notes", "data", "backup", "drafts", "invoices", "scans", "build",
)  # fmt: skip
FILE_KINDS = (
    ("report", ".pdf"), ("IMG", ".jpg"), ("notes", ".md"), ("data", ".csv"),
    ("main", ".py"), ("letter", ".txt"), ("sheet", ".xlsx"), ("page", ".html"),
    ("track", ".mp3"), ("config", ".json"), ("scan", ".png"), ("log", ".log"),
)  # fmt: skip


def parse_size(text: str) -> int:
    """'1G', '100M', '512K' or a byte count, as bytes (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def file_size(rng: random.Random, mean: int = MEAN_SIZE) -> int:
    """One file size: log-normal around ``mean``, a few empty files."""
    if rng.random() < EMPTY_SHARE:
        return 0
    mu = MU if mean == MEAN_SIZE else math.log(mean) - SIGMA**2 / 2
    return min(MAX_SIZE, max(1, int(rng.lognormvariate(mu, SIGMA))))


def random_bytes(rng: random.Random, size: int) -> bytes:
    """``size`` seeded random bytes, generated in fast pieces."""
    if size <= PIECE:
        return rng.randbytes(size)
    pieces = [rng.randbytes(PIECE) for _ in range(size // PIECE)]
    pieces.append(rng.randbytes(size % PIECE))
    return b"".join(pieces)


def folder_tree(rng: random.Random, count: int) -> list[str]:
    """``count`` relative folder paths ("" is the root), at most MAX_DEPTH deep.

    Each new folder goes under a random existing one that is not yet at the
    deepest level, which gives the uneven shape of real trees: a few wide
    folders near the top, deeper narrow branches.
    """
    folders = [""]
    depth = {"": 0}
    open_parents = [""]
    while len(folders) < count:
        parent = rng.choice(open_parents)
        name = f"{rng.choice(FOLDER_WORDS)}-{len(folders):04d}"
        path = f"{parent}/{name}" if parent else name
        folders.append(path)
        depth[path] = depth[parent] + 1
        if depth[path] < MAX_DEPTH:
            open_parents.append(path)
    return folders


def small_files(
    root: Path, count: int, seed: int = 42, mean_size: int = MEAN_SIZE
) -> int:
    """Write ``count`` files in a nested tree under ``root``; returns bytes.

    Files are written folder by folder, each with a fixed mtime; folders get
    fixed mtimes last, so the whole tree is identical from run to run.
    ``mean_size`` moves the mean of the sizes (bench/scale.py's large trees
    use ~1 KiB); the default keeps the trees run.py has always made.
    """
    rng = random.Random(seed)
    folders = folder_tree(rng, max(1, round(count / PER_FOLDER)))
    per_folder = Counter(rng.randrange(len(folders)) for _ in range(count))
    total = 0
    index = 0
    for number, folder in enumerate(folders):
        where = root / folder
        where.mkdir(parents=True, exist_ok=True)
        for _ in range(per_folder[number]):
            stem, ext = rng.choice(FILE_KINDS)
            path = where / f"{stem}-{index:06d}{ext}"
            size = file_size(rng, mean_size)
            path.write_bytes(random_bytes(rng, size))
            os.utime(path, (MTIME + index, MTIME + index))
            total += size
            index += 1
    for folder in reversed(folders):
        os.utime(root / folder, (MTIME, MTIME))
    return total


def big_file(path: Path, size: int, seed: int = 42) -> None:
    """One file of ``size`` seeded random bytes, written 1 MiB at a time."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        left = size
        while left:
            block = min(left, 1 << 20)
            handle.write(random_bytes(rng, block))
            left -= block
    os.utime(path, (MTIME, MTIME))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="where to write (new or empty)")
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument(
        "--big-file", type=parse_size, metavar="SIZE", help="e.g. 1G: one file"
    )
    parser.add_argument(
        "--mean-size",
        type=parse_size,
        default=MEAN_SIZE,
        metavar="SIZE",
        help="mean file size of the tree (default 10K)",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.dir.exists() and any(args.dir.iterdir()):
        parser.error(f"{args.dir} is not empty")
    if args.big_file:
        big_file(args.dir / "big.bin", args.big_file, args.seed)
        print(f"{args.dir}: 1 file, {args.big_file:,} bytes")
    else:
        total = small_files(args.dir, args.files, args.seed, args.mean_size)
        print(f"{args.dir}: {args.files:,} files, {total:,} bytes")


if __name__ == "__main__":
    main()
