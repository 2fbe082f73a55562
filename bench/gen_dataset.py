"""Deterministic benchmark data: many small files, or one big file.

    python bench/gen_dataset.py DIR --files 20000          # ~200 MB, nested
    python bench/gen_dataset.py DIR --big-file 1G          # one file

The same seed gives byte-identical trees (contents and mtimes), so every
tool in a run, and every run, sees the same data.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

MTIME = 1_704_067_200  # 2024-01-01, fixed so trees are identical
FAN_OUT = 8  # folders per folder
PER_FOLDER = 40  # files per leaf folder


def size_arg(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    suffix = text[-1].upper()
    if suffix in units:
        return int(float(text[:-1]) * units[suffix])
    return int(text)


def folder_for(index: int) -> str:
    """A path three levels deep, FAN_OUT wide, PER_FOLDER files per leaf."""
    leaf = index // PER_FOLDER
    parts = []
    for _ in range(3):
        parts.append(f"d{leaf % FAN_OUT}")
        leaf //= FAN_OUT
    parts.append(f"g{leaf}")
    return "/".join(reversed(parts))


def small_files(root: Path, count: int, seed: int, mean_kib: float = 10.0) -> int:
    """``count`` files of 1..(2*mean) KiB; returns the bytes written."""
    rng = random.Random(seed)
    total = 0
    top = int(2 * mean_kib * 1024)
    for index in range(count):
        folder = root / folder_for(index)
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1024, top)
        path = folder / f"file-{index:06d}.dat"
        path.write_bytes(rng.randbytes(size))
        os.utime(path, (MTIME + index, MTIME + index))
        total += size
    return total


def big_file(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        left = size
        while left:
            block = min(left, 8 << 20)
            handle.write(rng.randbytes(block))
            left -= block
    os.utime(path, (MTIME, MTIME))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--big-file", type=size_arg, default=None, metavar="SIZE")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.dir.exists() and any(args.dir.iterdir()):
        raise SystemExit(f"{args.dir} is not empty")
    if args.big_file:
        big_file(args.dir / "big.bin", args.big_file, args.seed)
        print(f"{args.dir}: 1 file, {args.big_file:,} bytes")
    else:
        total = small_files(args.dir, args.files, args.seed)
        print(f"{args.dir}: {args.files:,} files, {total:,} bytes")


if __name__ == "__main__":
    main()
