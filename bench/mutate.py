"""Deterministic changes to one folder: edit, create and delete files.

    python bench/mutate.py DIR                      # 100 + 100 + 100 changes
    python bench/mutate.py DIR --edits 10 --creates 0 --deletes 5 --seed 3

Edits rewrite a non-empty file with new bytes of the same size (so only the
content and the mtime tell the change: the hard case for a size check);
creations are new files in existing folders, sized like the generated
ones; deletions remove existing files. The same seed on identical trees
picks the same files and writes the same bytes and mtimes. accord's own
``.accord`` folder at the root is left alone.
"""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass
from pathlib import Path

from gen_dataset import MTIME, file_size, random_bytes

CHANGED_MTIME = MTIME + 366 * 86_400  # a year after the generated mtimes


@dataclass(frozen=True)
class Changes:
    edited: int
    created: int
    deleted: int

    def __str__(self) -> str:
        return f"{self.edited} edited, {self.created} created, {self.deleted} deleted"


def files_of(root: Path) -> list[Path]:
    """Every file under ``root`` in a stable order, accord's folder left out."""
    found = []
    for folder, dirs, files in os.walk(root):
        if folder == str(root) and ".accord" in dirs:
            dirs.remove(".accord")
        found.extend(Path(folder, name) for name in files)
    return sorted(found)


def mutate(
    root: Path,
    edits: int = 100,
    creates: int = 100,
    deletes: int = 100,
    seed: int = 7,
    new_inodes: bool = False,
) -> Changes:
    """Apply the changes to ``root``; raises ValueError if it has too few files.

    ``new_inodes``: an edit removes the file and writes a new one under the
    same name (as many editors save), instead of rewriting it in place, so
    a tree of hard links to another tree (bench/scale.py) is changed
    without changing the other.
    """
    rng = random.Random(seed)
    files = files_of(root)
    sizes = {path: path.stat().st_size for path in files}
    editable = [path for path in files if sizes[path] > 0]
    if edits > len(editable) or edits + deletes > len(files):
        raise ValueError(
            f"{root} has too few files for {edits} edits and {deletes} deletions"
        )
    edited = rng.sample(editable, edits)
    kept = set(edited)
    deleted = rng.sample([path for path in files if path not in kept], deletes)
    stamp = CHANGED_MTIME
    for path in edited:
        if new_inodes:
            path.unlink()
        path.write_bytes(random_bytes(rng, sizes[path]))
        os.utime(path, (stamp, stamp))
        stamp += 1
    for path in deleted:
        path.unlink()
    folders = sorted({path.parent for path in files})
    for index in range(creates):
        path = rng.choice(folders) / f"new-{seed}-{index:05d}.dat"
        path.write_bytes(random_bytes(rng, file_size(rng)))
        os.utime(path, (stamp, stamp))
        stamp += 1
    return Changes(edits, creates, deletes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="the folder to change")
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--deletes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not args.dir.is_dir():
        parser.error(f"{args.dir} is not a folder")
    try:
        changes = mutate(args.dir, args.edits, args.creates, args.deletes, args.seed)
    except ValueError as error:
        parser.error(str(error))
    print(f"{args.dir}: {changes}")


if __name__ == "__main__":
    main()
